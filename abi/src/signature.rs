//! The payload signature trailer: a signature block and a 16-byte footer
//! appended after a payload's ELF bytes.
//!
//! ```text
//! file = S || sig[64] || key_id[8] || footer[16]
//! ```
//!
//! `S` is everything before the block: the ELF bytes, which is what is
//! signed and what a loader parses. ELF readers ignore trailing bytes, so a
//! signed payload is still an ordinary object file for `readelf` and `gcc`.
//! The trailer sits *outside* the ELF so that it can be found and checked
//! from the end of the file without parsing a single ELF header, and so that
//! signing never changes the bytes it signs.
//!
//! The footer ([`SigFooter`]) is generic: `block_len` tells where `S` ends
//! whatever the scheme, so a loader that meets an unknown `algorithm` or
//! `version` can still report "signed by an unknown scheme" and find the
//! ELF bytes. The one scheme defined so far is Ed25519 (RFC 8032, pure, no
//! prehash) with a 72-byte [`Ed25519Block`].
//!
//! This module only knows bytes; the cryptography is the loader's.
//!
//! ```
//! use xsplice_abi::signature::{SigFooter, ALGORITHM_ED25519, FOOTER_SIZE, MAGIC};
//! let footer = SigFooter::ed25519();
//! let bytes = zerocopy::IntoBytes::as_bytes(&footer);
//! assert_eq!(bytes.len(), FOOTER_SIZE);
//! assert_eq!(&bytes[8..], MAGIC);
//! let back = SigFooter::from_tail(bytes).unwrap();
//! assert_eq!(back.algorithm.get(), ALGORITHM_ED25519);
//! assert_eq!(back.block_len.get(), 72);
//! ```

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::raw::wire;

/// The footer's magic, the last 8 bytes of a signed payload.
pub const MAGIC: &[u8; 8] = b"XSPLSIG\0";
/// Size of the footer.
pub const FOOTER_SIZE: usize = core::mem::size_of::<SigFooter>();
/// `algorithm` of Ed25519 (RFC 8032, pure: the message is `S` itself).
pub const ALGORITHM_ED25519: u16 = 1;
/// The footer `version` defined so far.
pub const VERSION: u16 = 1;
/// Size of an Ed25519 signature.
pub const ED25519_SIG_SIZE: usize = 64;
/// Size of a key id: the first 8 bytes of SHA-256 of the raw public key.
pub const KEY_ID_SIZE: usize = 8;
/// `block_len` of an Ed25519 block: the signature and the key id.
#[allow(clippy::cast_possible_truncation)] // 72: a const the compiler checks.
pub const ED25519_BLOCK_LEN: u32 = core::mem::size_of::<Ed25519Block>() as u32;

wire! {
    /// The 16-byte footer that ends a signed payload.
    pub struct SigFooter {
        /// Bytes between the end of `S` and the footer (72 for Ed25519 v1).
        pub block_len: U32,
        /// Signature algorithm ([`ALGORITHM_ED25519`]).
        pub algorithm: U16,
        /// Block format version ([`VERSION`]).
        pub version: U16,
        /// [`MAGIC`].
        pub magic: [u8; 8],
    }
}

impl SigFooter {
    /// The footer of an Ed25519, version 1 block.
    pub fn ed25519() -> Self {
        SigFooter {
            block_len: U32::new(ED25519_BLOCK_LEN),
            algorithm: U16::new(ALGORITHM_ED25519),
            version: U16::new(VERSION),
            magic: *MAGIC,
        }
    }

    /// The footer at the end of `file`, when its last 16 bytes end with
    /// [`MAGIC`]; `None` means the file carries no signature trailer. The
    /// other fields are not checked here.
    pub fn from_tail(file: &[u8]) -> Option<&SigFooter> {
        let (_, footer) = SigFooter::ref_from_suffix(file).ok()?;
        (&footer.magic == MAGIC).then_some(footer)
    }

    /// Whether the footer names the Ed25519 version 1 scheme.
    pub fn is_ed25519_v1(&self) -> bool {
        self.algorithm.get() == ALGORITHM_ED25519 && self.version.get() == VERSION
    }
}

/// The 72-byte block of the Ed25519 scheme, between `S` and the footer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Ed25519Block {
    /// The Ed25519 signature of `S` (what `openssl pkeyutl -sign -rawin` makes).
    pub sig: [u8; ED25519_SIG_SIZE],
    /// The first 8 bytes of SHA-256 of the signer's 32-byte public key.
    pub key_id: [u8; KEY_ID_SIZE],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<SigFooter>(), FOOTER_SIZE);
        assert_eq!(
            core::mem::size_of::<Ed25519Block>(),
            ED25519_BLOCK_LEN as usize
        );
    }

    #[test]
    fn tail_needs_magic_and_length() {
        assert!(SigFooter::from_tail(b"XSPLSIG\0").is_none());
        let mut f = [0u8; 20];
        assert!(SigFooter::from_tail(&f).is_none());
        if let Some(tail) = f.get_mut(12..) {
            tail.copy_from_slice(MAGIC);
        }
        let footer = SigFooter::from_tail(&f).unwrap();
        assert!(!footer.is_ed25519_v1());
    }
}
