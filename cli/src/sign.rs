//! Payload signatures on the command line: `xsplice sign`, the trust flags
//! every loading command shares (`--trusted-key`, `--require-signature`),
//! and the signature part of `inspect`'s report.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use xsplice_loader::signature::{
    self, KeyId, SignaturePolicy, SignatureStatus, SigningKey, Trailer, TrustedKey,
};
use xsplice_loader::{DryRun, LoadOptions};

use crate::error::{load_error, CliError};
use crate::{files, keys, Output, Verbosity};

/// The signature flags of every command that loads payloads (`inspect`,
/// `check`, `apply`, ...): flatten this into a command's arguments and build
/// its [`LoadOptions`] with [`TrustArgs::load_options`].
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TrustArgs {
    /// A public key (PEM, as `openssl pkey -pubout` or `xsplice keygen` writes it) whose signatures are trusted; repeat for more.
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// Refuse payloads that are not signed by one of the --trusted-key keys.
    #[arg(long, requires = "trusted_keys")]
    pub require_signature: bool,
}

impl TrustArgs {
    /// The loader options these flags ask for: the trusted keys and the
    /// policy (require, or verify signatures when present).
    pub fn load_options(&self) -> Result<LoadOptions, CliError> {
        let mut trusted = Vec::with_capacity(self.trusted_keys.len());
        for p in &self.trusted_keys {
            trusted.push(TrustedKey::new(keys::read_public(p)?));
        }
        Ok(LoadOptions {
            signature_policy: if self.require_signature {
                SignaturePolicy::Require
            } else {
                SignaturePolicy::VerifyIfPresent
            },
            trusted_keys: trusted,
            ..LoadOptions::default()
        })
    }
}

/// `xsplice sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The payload to sign (a signed one is re-signed: its block is replaced).
    payload: PathBuf,
    /// The private key (PEM PKCS#8, as `openssl genpkey -algorithm ed25519` or `xsplice keygen` writes it).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Where to write the signed payload.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Allow OUT to be the input payload itself.
    #[arg(long)]
    force: bool,
}

/// `payload` signed with `key`, and what it was signed with before (if
/// anything). The payload must load (dry run) first: a signature vouches
/// for a payload, so a malformed one is refused rather than signed.
pub(crate) fn sign_bytes(
    path: &Path,
    bytes: &[u8],
    key: &SigningKey,
) -> Result<(Vec<u8>, Option<SignatureStatus>), CliError> {
    let (elf, before) = without_signature(path, bytes)?;
    let opts = LoadOptions {
        signature_policy: SignaturePolicy::Ignore,
        ..LoadOptions::default()
    };
    DryRun::default()
        .load(elf, &opts)
        .map_err(|e| load_error(path, &e, None))?;
    let signed =
        signature::sign(elf, key).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    Ok((signed, before))
}

/// The ELF bytes of `bytes` and, when it was signed, what signed it (the
/// trailer dropped).
pub(crate) fn without_signature<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(&'a [u8], Option<SignatureStatus>), CliError> {
    let split =
        signature::split(bytes).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    let before = match split.trailer {
        Trailer::None => None,
        Trailer::Ed25519(b) => Some(SignatureStatus::Unverified {
            key_id: KeyId(b.key_id),
        }),
        Trailer::UnknownScheme { algorithm, version } => {
            Some(SignatureStatus::UnknownScheme { algorithm, version })
        }
    };
    Ok((split.elf, before))
}

/// Reads the key at `key_path` and signs `bytes`, the payload about to be
/// written to `out_path` (`build --sign`, `upgrade --sign`): the signed
/// bytes and the line that says so.
pub(crate) fn sign_output(
    key_path: &Path,
    out_path: &Path,
    bytes: &[u8],
) -> Result<(Vec<u8>, String), CliError> {
    let key = keys::read_private(key_path)?;
    let (signed, _) = sign_bytes(out_path, bytes, &key)?;
    let line = format!(
        "signed {} with key {}",
        out_path.display(),
        KeyId::of(key.verifying_key().as_bytes())
    );
    Ok((signed, line))
}

/// `xsplice sign --key KEY PAYLOAD -o OUT`.
pub(crate) fn run(a: &SignArgs, v: Verbosity) -> Result<Output, CliError> {
    files::refuse_overwrite(&a.output, &[&a.payload, &a.key], a.force)?;
    let key = keys::read_private(&a.key)?;
    let bytes = files::read(&a.payload, files::payload_limit(), "payload")?;
    let (signed, before) = sign_bytes(&a.payload, &bytes, &key)?;
    files::write(&a.output, &signed, 0o644)?;
    let mut out = Output::default();
    if !v.quiet {
        let id = KeyId::of(key.verifying_key().as_bytes());
        out.line(format!(
            "signed {} -> {} with key {id} (Ed25519, {} bytes signed)",
            a.payload.display(),
            a.output.display(),
            signed.len().saturating_sub(88)
        ));
        if let Some(b) = before {
            out.line(format!("  replaced the previous signature ({b})"));
        }
    }
    Ok(out)
}

/// The signature in `inspect`'s report (see `cli/JSON.md`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SignatureReport {
    /// `unsigned`, `verified`, `unverified` (the key is not trusted) or `unknown-scheme`.
    pub status: &'static str,
    /// The signer's key id (16 hex digits), for Ed25519 signatures.
    pub key_id: Option<String>,
    /// The footer's algorithm, for an unknown scheme.
    pub algorithm: Option<u16>,
    /// The footer's version, for an unknown scheme.
    pub version: Option<u16>,
}

impl From<&SignatureStatus> for SignatureReport {
    fn from(s: &SignatureStatus) -> Self {
        let (status, key_id, scheme) = match s {
            SignatureStatus::Unverified { key_id } => ("unverified", Some(key_id), None),
            SignatureStatus::Verified { key_id } => ("verified", Some(key_id), None),
            SignatureStatus::UnknownScheme { algorithm, version } => {
                ("unknown-scheme", None, Some((*algorithm, *version)))
            }
            _ => ("unsigned", None, None),
        };
        SignatureReport {
            status,
            key_id: key_id.map(ToString::to_string),
            algorithm: scheme.map(|s| s.0),
            version: scheme.map(|s| s.1),
        }
    }
}

impl SignatureReport {
    /// One line for the text report.
    pub fn text(&self) -> String {
        match (self.status, &self.key_id, self.algorithm, self.version) {
            ("verified", Some(k), ..) => format!("verified (Ed25519, key {k})"),
            ("unverified", Some(k), ..) => {
                format!("unverified (Ed25519, key {k}: not a --trusted-key)")
            }
            ("unknown-scheme", _, Some(a), Some(v)) => {
                format!("unknown scheme (algorithm {a}, version {v}): not verified")
            }
            _ => "unsigned".to_string(),
        }
    }
}
