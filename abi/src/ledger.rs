//! Constants and small typed values of the ledger: the record a patched
//! target keeps of what was applied to it.
//!
//! The ledger is not part of a payload. It lives with the target (after an
//! offline image's ELF bytes, in a live process's memory) so that stacking,
//! revert and listing work across separate runs of a patcher. Its wire
//! structs are [`crate::raw::LedgerHeader`] and friends; its layouts are in
//! [`crate::layout::all`] (after the payload layouts); the encoder and decoder live in the loader,
//! which needs `alloc`. The same evolution rules as records apply: a header
//! or entry whose size tag is larger than the layout known here is read
//! when the unknown tail is zero; a new ledger version is a new major.

use core::mem::size_of;

use crate::raw::{
    LedgerEntry, LedgerExport, LedgerFooter, LedgerHeader, LedgerHook, LedgerRegion, LedgerSite,
};

/// The magic at the start of a ledger and at the end of its footer.
pub const LEDGER_MAGIC: [u8; 8] = *b"XSPLEDG\0";
/// The ledger version this crate writes and reads.
pub const LEDGER_VERSION: u16 = 1;
/// Size of [`LedgerHeader`].
pub const LEDGER_HEADER_SIZE: usize = size_of::<LedgerHeader>();
/// Size of [`LedgerEntry`].
pub const LEDGER_ENTRY_SIZE: usize = size_of::<LedgerEntry>();
/// Size of [`LedgerRegion`].
pub const LEDGER_REGION_SIZE: usize = size_of::<LedgerRegion>();
/// Size of [`LedgerSite`].
pub const LEDGER_SITE_SIZE: usize = size_of::<LedgerSite>();
/// Size of [`LedgerExport`].
pub const LEDGER_EXPORT_SIZE: usize = size_of::<LedgerExport>();
/// Size of [`LedgerHook`].
pub const LEDGER_HOOK_SIZE: usize = size_of::<LedgerHook>();
/// Size of [`LedgerFooter`].
pub const LEDGER_FOOTER_SIZE: usize = size_of::<LedgerFooter>();
/// Alignment of every variable part of the ledger.
pub const LEDGER_ALIGN: usize = 8;
/// Longest payload or export name kept.
pub const LEDGER_NAME_MAX: usize = 4096;
/// Longest identity or dependency build-id kept.
pub const LEDGER_ID_MAX: usize = 64;

/// How a ledger entry identifies its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// The payload's own GNU build-id.
    BuildId,
    /// The SHA-256 of the payload file (it has no build-id).
    Sha256,
}

impl IdKind {
    /// The value of `id_kind`.
    pub const fn code(self) -> u8 {
        match self {
            IdKind::BuildId => 1,
            IdKind::Sha256 => 2,
        }
    }

    /// The kind with this `id_kind` value.
    ///
    /// ```
    /// use xsplice_abi::ledger::IdKind;
    /// assert_eq!(IdKind::from_code(2), Some(IdKind::Sha256));
    /// assert_eq!(IdKind::from_code(0), None);
    /// ```
    pub const fn from_code(code: u8) -> Option<IdKind> {
        match code {
            1 => Some(IdKind::BuildId),
            2 => Some(IdKind::Sha256),
            _ => None,
        }
    }

    /// The name used in messages and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            IdKind::BuildId => "build-id",
            IdKind::Sha256 => "sha256",
        }
    }
}

/// What a ledger region held before the payload was placed there, so that
/// reverting an offline image gives back its bytes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrigCode {
    /// Not kept (a live target frees the memory instead).
    NotKept,
    /// Every byte was the `fill` value.
    Fill,
    /// The original bytes follow the region.
    Bytes,
}

impl OrigCode {
    /// The value of `orig`.
    pub const fn code(self) -> u8 {
        match self {
            OrigCode::NotKept => 0,
            OrigCode::Fill => 1,
            OrigCode::Bytes => 2,
        }
    }

    /// The kind with this `orig` value.
    pub const fn from_code(code: u8) -> Option<OrigCode> {
        match code {
            0 => Some(OrigCode::NotKept),
            1 => Some(OrigCode::Fill),
            2 => Some(OrigCode::Bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_multiples_of_the_alignment() {
        for s in [
            LEDGER_HEADER_SIZE,
            LEDGER_ENTRY_SIZE,
            LEDGER_REGION_SIZE,
            LEDGER_SITE_SIZE,
            LEDGER_EXPORT_SIZE,
            LEDGER_HOOK_SIZE,
            LEDGER_FOOTER_SIZE,
        ] {
            assert_eq!(s % LEDGER_ALIGN, 0);
        }
    }

    #[test]
    fn codes_round_trip() {
        for k in [IdKind::BuildId, IdKind::Sha256] {
            assert_eq!(IdKind::from_code(k.code()), Some(k));
        }
        for o in [OrigCode::NotKept, OrigCode::Fill, OrigCode::Bytes] {
            assert_eq!(OrigCode::from_code(o.code()), Some(o));
        }
        assert_eq!(OrigCode::from_code(3), None);
    }
}
