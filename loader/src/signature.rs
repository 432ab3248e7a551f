//! Payload signatures: the Ed25519 block appended after a payload's ELF
//! bytes, checked before any ELF parsing.
//!
//! ```text
//! file = S || sig[64] || key_id[8] || footer[16]
//! ```
//!
//! [`check`] splits a file into `S` (the ELF bytes) and its signature
//! trailer ([`split`]), applies a [`SignaturePolicy`] with a set of
//! [`TrustedKey`]s, and returns the exact bytes the ELF parser may see. The
//! loader's [`load`](crate::load) calls it first, so an attacker's bytes reach
//! the ELF parser only once the signature over them has been verified (when
//! a signature is required). [`sign`] is the writer side: it appends (or
//! replaces) the block.
//!
//! The layouts are [`xsplice_abi::signature`]'s; this module adds the
//! cryptography: `ed25519-dalek` (RFC 8032, strict verification) and
//! SHA-256 for the key id, both `no_std` without allocation.
//!
//! # Building for a kernel target
//!
//! `curve25519-dalek` picks an AVX2 backend on every x86-64 target, which a
//! soft-float target such as `x86_64-unknown-none` cannot compile: build
//! with `RUSTFLAGS='--cfg curve25519_dalek_backend="serial"'` there (this
//! workspace sets it in `.cargo/config.toml`). `sha2` uses its portable code
//! on `target_os = "none"` by itself.
//!
//! # Example
//!
//! ```
//! use xsplice_loader::signature::{
//!     check, sign, SignaturePolicy, SignatureStatus, SigningKey, TrustedKey,
//! };
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let elf = b"\x7fELF pretend these are the ELF bytes";
//! let signed = sign(elf, &key)?;
//! let trusted = [TrustedKey::new(key.verifying_key())];
//! let (s, status) = check(&signed, SignaturePolicy::Require, &trusted)?;
//! assert_eq!(s, elf);
//! assert_eq!(status, SignatureStatus::Verified { key_id: trusted[0].id() });
//!
//! // One flipped bit in the signed bytes, and the payload is refused.
//! let mut bad = signed.clone();
//! bad[3] ^= 1;
//! assert!(check(&bad, SignaturePolicy::Require, &trusted).is_err());
//! # Ok::<(), xsplice_loader::signature::SignatureError>(())
//! ```

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, Signer as _};
use sha2::{Digest as _, Sha256};
use xsplice_abi::signature::{
    Ed25519Block, SigFooter, ED25519_BLOCK_LEN, FOOTER_SIZE, KEY_ID_SIZE,
};
use zerocopy::{FromBytes as _, IntoBytes as _};

/// The Ed25519 key types, so that a user of this module needs no direct
/// dependency on `ed25519-dalek`.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// A key id: the first 8 bytes of SHA-256 of the raw 32-byte public key.
///
/// It only tells a verifier which trusted key to try; the signature is
/// always checked with the full key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_SIZE]);

impl KeyId {
    /// The id of a raw Ed25519 public key.
    pub fn of(public_key: &[u8; 32]) -> KeyId {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; KEY_ID_SIZE];
        for (d, s) in id.iter_mut().zip(digest.iter()) {
            *d = *s;
        }
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    /// Lower-case hex, 16 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A public key whose signatures a loader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    key: VerifyingKey,
    id: KeyId,
}

impl TrustedKey {
    /// Trusts `key`.
    pub fn new(key: VerifyingKey) -> TrustedKey {
        TrustedKey {
            id: KeyId::of(key.as_bytes()),
            key,
        }
    }

    /// Trusts the raw 32-byte public key `bytes`; `None` when they are not
    /// a point on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<TrustedKey> {
        VerifyingKey::from_bytes(bytes).ok().map(TrustedKey::new)
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// What a loader does with signatures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SignaturePolicy {
    /// Nothing is verified. A well-formed trailer is still split off, so
    /// the ELF parser sees only `S`; a malformed one is left in place and
    /// the whole file goes to the parser (ELF readers ignore trailing
    /// bytes).
    Ignore,
    /// An unsigned payload is accepted. A signature by a trusted key must
    /// verify; a signature by a key that is not trusted, or by an unknown
    /// scheme, is accepted and reported (an unsigned payload would be
    /// accepted too, so refusing it would protect nothing). A malformed
    /// trailer is refused.
    #[default]
    VerifyIfPresent,
    /// Only payloads whose Ed25519 signature verifies under a trusted key
    /// are accepted.
    Require,
}

/// The signature trailer of a file, as [`split`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailer<'a> {
    /// No footer: the file ends without the magic.
    None,
    /// An Ed25519 version 1 block.
    Ed25519(&'a Ed25519Block),
    /// A footer naming a scheme this loader does not know.
    UnknownScheme {
        /// The footer's `algorithm`.
        algorithm: u16,
        /// The footer's `version`.
        version: u16,
    },
}

/// The signature found on a payload, and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureStatus {
    /// The file carries no signature trailer.
    Unsigned,
    /// The Ed25519 signature verifies under the trusted key with this id.
    Verified {
        /// The signer's key id.
        key_id: KeyId,
    },
    /// An Ed25519 signature that was not verified: its key is not trusted,
    /// or the policy is [`SignaturePolicy::Ignore`].
    Unverified {
        /// The signer's key id, as the block claims it.
        key_id: KeyId,
    },
    /// Signed by a scheme this loader does not know.
    UnknownScheme {
        /// The footer's `algorithm`.
        algorithm: u16,
        /// The footer's `version`.
        version: u16,
    },
}

impl fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureStatus::Unsigned => f.write_str("unsigned"),
            SignatureStatus::Verified { key_id } => write!(f, "verified, key {key_id}"),
            SignatureStatus::Unverified { key_id } => {
                write!(f, "unverified (key {key_id} is not trusted)")
            }
            SignatureStatus::UnknownScheme { algorithm, version } => write!(
                f,
                "unknown scheme (algorithm {algorithm}, version {version})"
            ),
        }
    }
}

/// Why a payload's signature is refused. Offsets are from the start of
/// the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A signature is required and the file has no signature trailer.
    #[error("a signature is required and the payload is unsigned (no `XSPLSIG` footer)")]
    Unsigned,
    /// The signer's key id names no trusted key.
    #[error("signed by key {key_id}, which is not trusted (block at offset {offset})")]
    UnknownKey {
        /// The key id in the block.
        key_id: KeyId,
        /// Offset of the block.
        offset: usize,
    },
    /// The signature does not verify under the trusted key its id names.
    #[error("the signature (block at offset {offset}) does not verify under trusted key {key_id}")]
    BadSignature {
        /// The key id in the block.
        key_id: KeyId,
        /// Offset of the block.
        offset: usize,
    },
    /// A signature is required and the footer names an unknown scheme.
    #[error(
        "signed by an unknown scheme: algorithm {algorithm}, version {version} (footer at offset {offset})"
    )]
    UnknownScheme {
        /// The footer's `algorithm`.
        algorithm: u16,
        /// The footer's `version`.
        version: u16,
        /// Offset of the footer.
        offset: usize,
    },
    /// The footer claims more bytes than the file has before it.
    #[error(
        "malformed signature footer at offset {offset}: block_len {block_len} is more than the {available} bytes before it"
    )]
    FooterOverrun {
        /// Offset of the footer.
        offset: usize,
        /// The footer's `block_len`.
        block_len: u32,
        /// Bytes before the footer.
        available: usize,
    },
    /// An Ed25519 footer whose `block_len` is not 72.
    #[error(
        "malformed signature footer at offset {offset}: block_len {block_len}, an Ed25519 block is {expected} bytes"
    )]
    BlockLength {
        /// Offset of the footer.
        offset: usize,
        /// The footer's `block_len`.
        block_len: u32,
        /// The scheme's block length.
        expected: u32,
    },
}

/// A file split at its signature trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split<'a> {
    /// `S`: the bytes before the block (the whole file when unsigned).
    pub elf: &'a [u8],
    /// The trailer.
    pub trailer: Trailer<'a>,
}

/// Splits `file` into its ELF bytes and its signature trailer, checking the
/// footer's framing (no cryptography). A file that does not end with the
/// magic is unsigned.
pub fn split(file: &[u8]) -> Result<Split<'_>, SignatureError> {
    let Some(footer) = SigFooter::from_tail(file) else {
        return Ok(Split {
            elf: file,
            trailer: Trailer::None,
        });
    };
    // `from_tail` found 16 bytes, so this does not wrap.
    let offset = file.len().saturating_sub(FOOTER_SIZE);
    let before = file.get(..offset).unwrap_or_default();
    let block_len = footer.block_len.get();
    let start = usize::try_from(block_len)
        .ok()
        .and_then(|n| offset.checked_sub(n))
        .ok_or(SignatureError::FooterOverrun {
            offset,
            block_len,
            available: offset,
        })?;
    let (elf, block) = before.split_at_checked(start).unwrap_or((before, &[]));
    if !footer.is_ed25519_v1() {
        return Ok(Split {
            elf,
            trailer: Trailer::UnknownScheme {
                algorithm: footer.algorithm.get(),
                version: footer.version.get(),
            },
        });
    }
    let block = Ed25519Block::ref_from_bytes(block).map_err(|_| SignatureError::BlockLength {
        offset,
        block_len,
        expected: ED25519_BLOCK_LEN,
    })?;
    Ok(Split {
        elf,
        trailer: Trailer::Ed25519(block),
    })
}

/// Applies `policy` to `file` with the `trusted` keys: returns the bytes
/// the ELF parser may see (`S`) and what was found, or why the payload is
/// refused.
///
/// Work is one SHA-512 pass over `S` when a signature is verified, nothing
/// else; nothing is allocated.
pub fn check<'a>(
    file: &'a [u8],
    policy: SignaturePolicy,
    trusted: &[TrustedKey],
) -> Result<(&'a [u8], SignatureStatus), SignatureError> {
    let split = match split(file) {
        Ok(s) => s,
        Err(_) if policy == SignaturePolicy::Ignore => {
            return Ok((file, SignatureStatus::Unsigned));
        }
        Err(e) => return Err(e),
    };
    let elf = split.elf;
    let block_offset = elf.len();
    let footer_offset = file.len().saturating_sub(FOOTER_SIZE);
    let status = match split.trailer {
        Trailer::None if policy == SignaturePolicy::Require => {
            return Err(SignatureError::Unsigned);
        }
        Trailer::None => SignatureStatus::Unsigned,
        Trailer::UnknownScheme { algorithm, version } => {
            if policy == SignaturePolicy::Require {
                return Err(SignatureError::UnknownScheme {
                    algorithm,
                    version,
                    offset: footer_offset,
                });
            }
            SignatureStatus::UnknownScheme { algorithm, version }
        }
        Trailer::Ed25519(block) => {
            let key_id = KeyId(block.key_id);
            if policy == SignaturePolicy::Ignore {
                return Ok((elf, SignatureStatus::Unverified { key_id }));
            }
            // Ids may collide (they are 64 bits); try every key with this id.
            let mut candidates = trusted.iter().filter(|k| k.id == key_id).peekable();
            if candidates.peek().is_none() {
                if policy == SignaturePolicy::Require {
                    return Err(SignatureError::UnknownKey {
                        key_id,
                        offset: block_offset,
                    });
                }
                return Ok((elf, SignatureStatus::Unverified { key_id }));
            }
            let sig = Signature::from_bytes(&block.sig);
            if !candidates.any(|k| k.key.verify_strict(elf, &sig).is_ok()) {
                return Err(SignatureError::BadSignature {
                    key_id,
                    offset: block_offset,
                });
            }
            SignatureStatus::Verified { key_id }
        }
    };
    Ok((elf, status))
}

/// The bytes of `file` without its signature trailer (the whole file when
/// it has none). A malformed trailer is an error: what it frames is unknown.
pub fn strip(file: &[u8]) -> Result<&[u8], SignatureError> {
    split(file).map(|s| s.elf)
}

/// The 88 bytes appended to `elf` when signing it with `key`: the
/// signature, the key id and the footer.
pub fn block(elf: &[u8], key: &SigningKey) -> [u8; 88] {
    let block = Ed25519Block {
        sig: key.sign(elf).to_bytes(),
        key_id: KeyId::of(key.verifying_key().as_bytes()).0,
    };
    let mut out = [0u8; 88];
    let (b, f) = out.split_at_mut(ED25519_BLOCK_LEN as usize);
    b.copy_from_slice(block.as_bytes());
    f.copy_from_slice(SigFooter::ed25519().as_bytes());
    out
}

/// Signs `file` with `key`: its ELF bytes (any existing trailer removed:
/// signing a signed payload replaces its block) followed by a new block.
pub fn sign(file: &[u8], key: &SigningKey) -> Result<Vec<u8>, SignatureError> {
    let elf = strip(file)?;
    let mut out = Vec::with_capacity(elf.len().saturating_add(88));
    out.extend_from_slice(elf);
    out.extend_from_slice(&block(elf, key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
        let id = KeyId::of(&[0; 32]);
        assert_eq!(id.to_string(), "66687aadf862bd77");
    }

    #[test]
    fn policies() {
        let elf = b"payload bytes";
        let signed = sign(elf, &key(1)).unwrap();
        assert_eq!(signed.len(), elf.len() + 88);
        let k1 = [TrustedKey::new(key(1).verifying_key())];
        let k2 = [TrustedKey::new(key(2).verifying_key())];
        let id1 = k1[0].id();
        use SignaturePolicy::*;
        assert_eq!(
            check(&signed, Require, &k1).unwrap(),
            (&elf[..], SignatureStatus::Verified { key_id: id1 })
        );
        assert_eq!(
            check(&signed, Require, &k2),
            Err(SignatureError::UnknownKey {
                key_id: id1,
                offset: elf.len()
            })
        );
        assert_eq!(
            check(&signed, VerifyIfPresent, &k2).unwrap().1,
            SignatureStatus::Unverified { key_id: id1 }
        );
        assert_eq!(check(elf, Require, &k1), Err(SignatureError::Unsigned));
        assert_eq!(
            check(elf, VerifyIfPresent, &k1).unwrap(),
            (&elf[..], SignatureStatus::Unsigned)
        );
        let mut bad = signed.clone();
        bad[elf.len()] ^= 0x40; // the signature's first byte
        assert!(matches!(
            check(&bad, VerifyIfPresent, &k1),
            Err(SignatureError::BadSignature { .. })
        ));
        assert_eq!(check(&bad, Ignore, &k1).unwrap().0, elf);
    }

    #[test]
    fn resigning_replaces_the_block() {
        let once = sign(b"abc", &key(1)).unwrap();
        let twice = sign(&once, &key(2)).unwrap();
        assert_eq!(twice.len(), once.len());
        assert_eq!(strip(&twice).unwrap(), b"abc");
        let k2 = [TrustedKey::new(key(2).verifying_key())];
        assert!(check(&twice, SignaturePolicy::Require, &k2).is_ok());
    }

    #[test]
    fn malformed_footers() {
        let mut f = sign(b"abc", &key(1)).unwrap();
        let at = f.len() - 16;
        // A footer claiming more than the file holds.
        f[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            split(&f),
            Err(SignatureError::FooterOverrun {
                offset: at,
                block_len: 1000,
                available: at
            })
        );
        assert_eq!(
            check(&f, SignaturePolicy::Ignore, &[]).unwrap(),
            (&f[..], SignatureStatus::Unsigned)
        );
        // An Ed25519 footer with a short block.
        f[at..at + 4].copy_from_slice(&70u32.to_le_bytes());
        assert!(matches!(
            split(&f),
            Err(SignatureError::BlockLength { block_len: 70, .. })
        ));
        // An unknown algorithm: S is still found.
        f[at..at + 4].copy_from_slice(&72u32.to_le_bytes());
        f[at + 4] = 9;
        assert_eq!(
            split(&f).unwrap(),
            Split {
                elf: b"abc",
                trailer: Trailer::UnknownScheme {
                    algorithm: 9,
                    version: 1
                }
            }
        );
        assert!(matches!(
            check(&f, SignaturePolicy::Require, &[]),
            Err(SignatureError::UnknownScheme { algorithm: 9, .. })
        ));
    }
}
