//! What a load gives: the laid-out, relocated, decoded payload and the
//! pieces it is made of. Plain data, no ELF: the engine and the targets
//! read these.

use alloc::string::String;
use alloc::vec::Vec;

use xsplice_abi::sections::HookPoint;
use xsplice_abi::{AbiNote, Addr, FormatVersion, PatchFunc, RecordIndex, RecordVersion, Warning};

use crate::arch_tables::ArchTables;
use crate::signature::SignatureStatus;
use crate::{Arch, RegionKind, Symbol};

/// One region of a loaded payload: its final address and relocated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Text (RX), read-only (R) or data (RW).
    pub kind: RegionKind,
    /// Address the target allocated.
    pub addr: Addr,
    /// Alignment the region needs.
    pub align: u64,
    /// Relocated contents, ready to be copied to `addr`.
    pub bytes: Vec<u8>,
}

impl Region {
    /// Whether `[addr, addr+len)` lies inside this region.
    pub fn contains(&self, addr: Addr, len: u64) -> bool {
        let end = self.addr.0.saturating_add(self.bytes.len() as u64);
        addr.0 >= self.addr.0 && addr.0.checked_add(len).is_some_and(|e| e <= end)
    }

    /// The bytes at `[addr, addr+len)`, if inside.
    pub fn slice(&self, addr: Addr, len: u64) -> Option<&[u8]> {
        if !self.contains(addr, len) {
            return None;
        }
        let start = usize::try_from(addr.0.checked_sub(self.addr.0)?).ok()?;
        self.bytes
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// Where one loaded section went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadedSection {
    /// Section name.
    pub name: String,
    /// Region it was placed in.
    pub kind: RegionKind,
    /// Final address.
    pub addr: Addr,
    /// Size in bytes.
    pub size: u64,
}

/// A record after relocation, decoding and resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PatchRecord {
    /// Index in `.xsplice.funcs`.
    pub index: RecordIndex,
    /// The function name.
    pub name: String,
    /// The canonical view, relocated (as the record holds it).
    pub func: PatchFunc,
    /// The function to patch: `func.old_addr`, or the target symbol named
    /// `name` when that is 0.
    pub old_addr: Addr,
    /// The patch site: `old_addr + patch_offset`.
    pub site: Addr,
}

/// A hook pointer from a `.xsplice.hooks.*` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// When it runs.
    pub point: HookPoint,
    /// Its index within its section.
    pub index: usize,
    /// The function's address.
    pub addr: Addr,
}

/// A vendor entry, copied out of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VendorEntry {
    /// Offset within `.xsplice.vendor`.
    pub offset: usize,
    /// Vendor id.
    pub vendor: u32,
    /// Kind.
    pub kind: u16,
    /// CRITICAL flag.
    pub critical: bool,
    /// Record index, or `None` for the whole payload.
    pub record: Option<RecordIndex>,
    /// Data.
    pub data: Vec<u8>,
    /// Whether the loader was told it knows this (vendor, kind).
    pub known: bool,
}

/// A global symbol the payload defines, visible to payloads loaded later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Name.
    pub name: String,
    /// Address and size.
    pub symbol: Symbol,
}

/// Something accepted that a `check` should mention.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadWarning {
    /// A record warning from the ABI decoder (an unknown compat bit, a
    /// deprecated feature), kept typed.
    Record {
        /// The record.
        record: RecordIndex,
        /// What the decoder said.
        warning: Warning,
    },
    /// `new_size` runs past the end of the payload's text. Only `new_addr`
    /// is used to patch, and a C author can only estimate the size, so this
    /// is reported, not refused.
    NewPastText {
        /// The record.
        record: RecordIndex,
        /// Its `new_size`.
        new_size: u64,
    },
    /// The note has compat bits this loader does not know.
    NoteUnknownCompat {
        /// The bits.
        bits: u32,
    },
    /// An alternative names a CPU feature number this loader does not know
    /// for the payload's machine: it is never applied.
    UnknownCpuFeature {
        /// Entry index in `.xsplice.altinstructions`.
        entry: usize,
        /// The feature number.
        number: u16,
    },
    /// A non-critical vendor entry this loader does not know was skipped.
    UnknownVendorEntry {
        /// Offset.
        offset: usize,
        /// Vendor id.
        vendor: u32,
        /// Kind.
        kind: u16,
    },
}

impl core::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadWarning::Record { record, warning } => write!(f, "{record}: {warning}"),
            LoadWarning::NewPastText { record, new_size } => write!(
                f,
                "{record}: new_size {new_size:#x} runs past the end of the payload's text"
            ),
            LoadWarning::NoteUnknownCompat { bits } => {
                write!(f, "`.note.xsplice`: unknown compat bits {bits:#x} ignored")
            }
            LoadWarning::UnknownCpuFeature { entry, number } => write!(
                f,
                "`.xsplice.altinstructions` entry {entry}: unknown CPU feature number {number}, left unapplied"
            ),
            LoadWarning::UnknownVendorEntry { offset, vendor, kind } => write!(
                f,
                "`.xsplice.vendor`: unknown entry at offset {offset:#x} (vendor {vendor:#010x}, kind {kind}) skipped"
            ),
        }
    }
}

/// A payload laid out, relocated and decoded: everything the patch engine
/// needs, with no further parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadedPayload {
    /// Machine.
    pub arch: Arch,
    /// The regions, with relocated bytes, to be mapped at their addresses.
    pub regions: Vec<Region>,
    /// Every loaded section.
    pub sections: Vec<LoadedSection>,
    /// The format version (from the note; 1.0 for a legacy payload).
    pub format: FormatVersion,
    /// The ABI note, when present.
    pub note: Option<AbiNote>,
    /// The record version shared by every record.
    pub record_version: RecordVersion,
    /// The record size shared by every record.
    pub record_size: usize,
    /// The records.
    pub records: Vec<PatchRecord>,
    /// The payload's own build-id.
    pub build_id: Option<Vec<u8>>,
    /// The build-id this payload depends on.
    pub depends: Option<Vec<u8>>,
    /// Hooks, in section then array order.
    pub hooks: Vec<Hook>,
    /// Vendor entries.
    pub vendor: Vec<VendorEntry>,
    /// Global symbols the payload defines.
    pub exports: Vec<Export>,
    /// Warnings.
    pub warnings: Vec<LoadWarning>,
    /// The payload's signature and whether it verified.
    pub signature: SignatureStatus,
    /// The architecture-specific tables, resolved (SPEC.md section 17).
    pub arch_tables: ArchTables,
}

impl LoadedPayload {
    /// The hooks that run at `point`, in order.
    pub fn hooks_at(&self, point: HookPoint) -> impl Iterator<Item = &Hook> + '_ {
        self.hooks.iter().filter(move |h| h.point == point)
    }

    /// The text region, if the payload has code.
    pub fn text(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.kind == RegionKind::Text)
    }

    /// The relocated bytes at `[addr, addr+len)` in any region.
    pub fn bytes_at(&self, addr: Addr, len: u64) -> Option<&[u8]> {
        self.regions.iter().find_map(|r| r.slice(addr, len))
    }
}
