//! Ed25519 key files, in the formats openssl writes and reads: a PKCS#8
//! private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
//! -algorithm ed25519` writes it: version 1, no public key inside) and an
//! SPKI public key (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout`
//! writes it). `xsplice keygen`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use clap::Args;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
    KeypairBytes,
};
use xsplice_loader::signature::{KeyId, SigningKey, VerifyingKey};

use crate::error::CliError;
use crate::files;
use crate::{Output, Verbosity};

/// Largest key file read: PEM keys are a few hundred bytes.
const KEY_LIMIT: u64 = 64 * 1024;

/// `xsplice keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (PEM PKCS#8, mode 0600); the public key goes to KEY.pub.
    #[arg(short, long, value_name = "KEY")]
    output: PathBuf,
    /// Overwrite KEY and KEY.pub if they exist.
    #[arg(long)]
    force: bool,
}

/// `KEY.pub` beside `KEY`.
fn public_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Reads the PEM file at `path` and decodes it with `decode`; `what` and
/// `hint` go into the error.
fn read_key<T, E: std::fmt::Display>(
    path: &Path,
    what: &str,
    decode: impl FnOnce(&str) -> Result<T, E>,
    hint: &str,
) -> Result<T, CliError> {
    let bytes = files::read(path, KEY_LIMIT, what)?;
    let pem = String::from_utf8(bytes)
        .map_err(|_| CliError::new(format!("{}: {what} is not PEM text", path.display())))?;
    decode(&pem).map_err(|e| {
        CliError::new(format!("{}: not a PEM Ed25519 {what}: {e}", path.display())).hint(hint)
    })
}

/// Reads a PEM PKCS#8 Ed25519 private key (`openssl genpkey -algorithm
/// ed25519`, or `xsplice keygen`).
pub(crate) fn read_private(path: &Path) -> Result<SigningKey, CliError> {
    read_key(
        path,
        "private key",
        SigningKey::from_pkcs8_pem,
        "make one with `xsplice keygen -o KEY` or `openssl genpkey -algorithm ed25519 -out KEY`",
    )
}

/// Reads a PEM SPKI Ed25519 public key (`openssl pkey -pubout`, or the
/// `.pub` file of `xsplice keygen`).
pub(crate) fn read_public(path: &Path) -> Result<VerifyingKey, CliError> {
    read_key(
        path,
        "public key",
        VerifyingKey::from_public_key_pem,
        "extract it with `openssl pkey -in KEY -pubout -out KEY.pub`, or use the KEY.pub of `xsplice keygen`",
    )
}

/// The private key as PEM PKCS#8 v1 (no public key inside), byte for byte
/// what `openssl genpkey -algorithm ed25519` writes.
fn private_pem(key: &SigningKey) -> Result<String, CliError> {
    let bytes = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    bytes
        .to_pkcs8_pem(LineEnding::LF)
        .map(|s| s.as_str().to_string())
        .map_err(|e| CliError::new(format!("cannot encode the private key: {e}")))
}

/// The public key as PEM SPKI, what `openssl pkey -pubout` writes.
fn public_pem(key: &VerifyingKey) -> Result<String, CliError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| CliError::new(format!("cannot encode the public key: {e}")))
}

/// Creates `path` with `mode` and writes `text`; never leaves the secret
/// readable by others, even briefly. Without `force` an existing file is
/// refused.
fn create(path: &Path, text: &str, mode: u32, force: bool) -> Result<(), CliError> {
    let cannot =
        |e: std::io::Error| CliError::new(format!("cannot write `{}`: {e}", path.display()));
    if fs::symlink_metadata(path).is_ok() {
        if !force {
            return Err(
                CliError::new(format!("refusing to overwrite `{}`", path.display()))
                    .hint("choose another -o, or pass --force"),
            );
        }
        fs::remove_file(path).map_err(cannot)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(cannot)?;
    f.write_all(text.as_bytes()).map_err(cannot)
}

/// `xsplice keygen -o KEY`: a new Ed25519 key pair from the OS random source.
pub(crate) fn keygen(a: &KeygenArgs, v: Verbosity) -> Result<Output, CliError> {
    let public = public_path(&a.output);
    for p in [&a.output, &public] {
        if !a.force && fs::symlink_metadata(p).is_ok() {
            return Err(
                CliError::new(format!("refusing to overwrite `{}`", p.display()))
                    .hint("choose another -o, or pass --force"),
            );
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| CliError::new(format!("no randomness for a new key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let vk = key.verifying_key();
    create(&a.output, &private_pem(&key)?, 0o600, a.force)?;
    create(&public, &public_pem(&vk)?, 0o644, a.force)?;
    let mut out = Output::default();
    if !v.quiet {
        out.line(format!(
            "wrote {} (private, mode 0600) and {} (public); key id {}",
            a.output.display(),
            public.display(),
            KeyId::of(vk.as_bytes())
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of RFC 8032's first test vector, in the PEM that
    /// `openssl pkey` prints for it.
    #[test]
    fn pem_matches_openssl() {
        let seed: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(
            private_pem(&key).unwrap(),
            "-----BEGIN PRIVATE KEY-----\n\
             MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n\
             -----END PRIVATE KEY-----\n"
        );
        assert_eq!(
            public_pem(&key.verifying_key()).unwrap(),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
             -----END PUBLIC KEY-----\n"
        );
    }
}
