//! Architecture-specific tables (format minor 1, incompat bit ARCH):
//! exception tables, alternative instructions and bug frames.
//!
//! Each table is an array of fixed-size little-endian entries whose address
//! fields are `rel32`: an `i32` offset from the field's own address, what
//! `.long target - .` assembles to (`R_X86_64_PC32` / `R_AARCH64_PREL32` in
//! the object). So the tables hold no absolute address, and a loader resolves
//! each field with [`rel32_target`] once the section has its final address.
//!
//! This module parses the (relocated) bytes of a table into typed entries and
//! checks what needs no address: the section size, `repl_len ≤ orig_len`,
//! the bug-frame kind and reserved bytes. Whether an address lies inside the
//! payload is the loader's to check, since only it knows the layout.
//!
//! ```
//! use xsplice_abi::arch::{self, AltFeature, ArchTable};
//! // One alternative: 5 bytes at orig, 3 bytes of replacement, POPCNT (1).
//! let mut bytes = [0u8; 12];
//! bytes[0..4].copy_from_slice(&0x40i32.to_le_bytes());
//! bytes[4..8].copy_from_slice(&(-8i32).to_le_bytes());
//! bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
//! bytes[10] = 5;
//! bytes[11] = 3;
//! let alts: Vec<_> = arch::alt_entries(&bytes)?.collect();
//! assert_eq!(alts[0].feature, AltFeature { number: 1, when_absent: false });
//! // Fields resolve from their own address: the entry is at 0x1000.
//! assert_eq!(arch::rel32_target(0x1000, 0, ArchTable::AltInstructions, 0, alts[0].orig), Some(0x1040));
//! assert_eq!(arch::rel32_target(0x1000, 0, ArchTable::AltInstructions, 4, alts[0].repl), Some(0x1004 - 8));
//! # Ok::<(), xsplice_abi::arch::ArchError>(())
//! ```

use core::fmt;

use zerocopy::FromBytes;

use crate::raw::{AltInstrEntry, BugFrameEntry, ExTableEntry};
use crate::sections;

/// Bytes of one `.xsplice.ex_table` entry.
pub const EX_TABLE_ENTRY_SIZE: usize = core::mem::size_of::<ExTableEntry>();
/// Bytes of one `.xsplice.altinstructions` entry.
pub const ALT_ENTRY_SIZE: usize = core::mem::size_of::<AltInstrEntry>();
/// Bytes of one `.xsplice.bug_frames` entry.
pub const BUG_FRAME_ENTRY_SIZE: usize = core::mem::size_of::<BugFrameEntry>();
/// Alignment of the three tables.
pub const TABLE_ALIGN: u64 = 4;
/// Bit 15 of an alternative's `feature`: apply when the feature is absent.
pub const ALT_FEATURE_ABSENT: u16 = 0x8000;
/// Bits 0-14 of an alternative's `feature`: the feature number.
pub const ALT_FEATURE_MASK: u16 = 0x7fff;
/// The x86-64 trap a bug frame names: `ud2`.
pub const BUG_TRAP_X86_64: [u8; 2] = [0x0f, 0x0b];
/// The AArch64 trap a bug frame names: `brk #0x800` (0xd4210000).
pub const BUG_TRAP_AARCH64: [u8; 4] = [0x00, 0x00, 0x21, 0xd4];

/// One of the three architecture-specific tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum ArchTable {
    /// `.xsplice.ex_table`.
    ExTable,
    /// `.xsplice.altinstructions`.
    AltInstructions,
    /// `.xsplice.bug_frames`.
    BugFrames,
}

impl ArchTable {
    /// The three tables.
    pub const ALL: [ArchTable; 3] = [
        ArchTable::ExTable,
        ArchTable::AltInstructions,
        ArchTable::BugFrames,
    ];

    /// The table's section name.
    pub const fn section(self) -> &'static str {
        match self {
            ArchTable::ExTable => sections::EX_TABLE,
            ArchTable::AltInstructions => sections::ALTINSTRUCTIONS,
            ArchTable::BugFrames => sections::BUG_FRAMES,
        }
    }

    /// Bytes of one entry.
    pub const fn entry_size(self) -> usize {
        match self {
            ArchTable::ExTable => EX_TABLE_ENTRY_SIZE,
            ArchTable::AltInstructions => ALT_ENTRY_SIZE,
            ArchTable::BugFrames => BUG_FRAME_ENTRY_SIZE,
        }
    }

    /// The entry's layout in the layout table (its `rel32` fields are
    /// those of type [`crate::layout::FieldType::Rel32`]).
    pub fn layout(self) -> &'static crate::layout::Layout {
        match self {
            ArchTable::ExTable => &crate::layout::EX_TABLE_ENTRY,
            ArchTable::AltInstructions => &crate::layout::ALT_ENTRY,
            ArchTable::BugFrames => &crate::layout::BUG_FRAME_ENTRY,
        }
    }

    /// The table whose section is `name`.
    ///
    /// ```
    /// use xsplice_abi::arch::ArchTable;
    /// assert_eq!(ArchTable::from_section(".xsplice.bug_frames"), Some(ArchTable::BugFrames));
    /// assert_eq!(ArchTable::from_section(".xsplice.altinstr_replacement"), None);
    /// ```
    pub fn from_section(name: &str) -> Option<ArchTable> {
        Self::ALL.into_iter().find(|t| t.section() == name)
    }
}

impl fmt::Display for ArchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.section())
    }
}

/// Resolves a `rel32` field: the address of entry `index` of `table` at
/// `section_addr`, plus `field_offset`, plus `value`. `None` on overflow.
pub fn rel32_target(
    section_addr: u64,
    index: usize,
    table: ArchTable,
    field_offset: usize,
    value: i32,
) -> Option<u64> {
    let entry = u64::try_from(index)
        .ok()?
        .checked_mul(table.entry_size() as u64)?;
    section_addr
        .checked_add(entry)?
        .checked_add(field_offset as u64)?
        .checked_add_signed(i64::from(value))
}

/// An alternative's `feature` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct AltFeature {
    /// The CPU feature number (bits 0-14): see [`X86_64_FEATURES`] and
    /// [`AARCH64_FEATURES`].
    pub number: u16,
    /// Bit 15: apply the alternative when the feature is absent.
    pub when_absent: bool,
}

impl AltFeature {
    /// Splits the raw field.
    pub const fn from_raw(raw: u16) -> AltFeature {
        AltFeature {
            number: raw & ALT_FEATURE_MASK,
            when_absent: raw & ALT_FEATURE_ABSENT != 0,
        }
    }

    /// The raw field.
    pub const fn raw(self) -> u16 {
        (self.number & ALT_FEATURE_MASK)
            | if self.when_absent {
                ALT_FEATURE_ABSENT
            } else {
                0
            }
    }

    /// Whether the alternative applies on a CPU for which `has` says which
    /// feature numbers are present.
    pub fn applies(self, has: impl Fn(u16) -> bool) -> bool {
        has(self.number) != self.when_absent
    }
}

/// A CPU feature number an alternative may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFeature {
    /// The number (bits 0-14 of `feature`).
    pub number: u16,
    /// Its name, as in the specification and the C header.
    pub name: &'static str,
}

/// x86-64 feature numbers.
pub const X86_64_FEATURES: [CpuFeature; 10] = [
    CpuFeature {
        number: 1,
        name: "POPCNT",
    },
    CpuFeature {
        number: 2,
        name: "SSE4_2",
    },
    CpuFeature {
        number: 3,
        name: "AVX",
    },
    CpuFeature {
        number: 4,
        name: "AVX2",
    },
    CpuFeature {
        number: 5,
        name: "BMI1",
    },
    CpuFeature {
        number: 6,
        name: "BMI2",
    },
    CpuFeature {
        number: 7,
        name: "ERMS",
    },
    CpuFeature {
        number: 8,
        name: "FSRM",
    },
    CpuFeature {
        number: 9,
        name: "AVX512F",
    },
    CpuFeature {
        number: 10,
        name: "ADX",
    },
];

/// AArch64 feature numbers.
pub const AARCH64_FEATURES: [CpuFeature; 4] = [
    CpuFeature {
        number: 1,
        name: "ATOMICS",
    },
    CpuFeature {
        number: 2,
        name: "CRC32",
    },
    CpuFeature {
        number: 3,
        name: "SHA2",
    },
    CpuFeature {
        number: 4,
        name: "SVE",
    },
];

/// The feature called `name` (case-insensitive) in `table`.
///
/// ```
/// use xsplice_abi::arch::{feature_by_name, X86_64_FEATURES};
/// assert_eq!(feature_by_name(&X86_64_FEATURES, "popcnt").map(|f| f.number), Some(1));
/// ```
pub fn feature_by_name(table: &'static [CpuFeature], name: &str) -> Option<&'static CpuFeature> {
    table.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// What a bug frame does when its trap fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum BugKind {
    /// 0: report and stop.
    Bug,
    /// 1: report and resume after the trap instruction.
    Warn,
}

impl BugKind {
    /// The kind with this raw value.
    pub const fn from_raw(raw: u16) -> Option<BugKind> {
        match raw {
            0 => Some(BugKind::Bug),
            1 => Some(BugKind::Warn),
            _ => None,
        }
    }

    /// The raw value.
    pub const fn raw(self) -> u16 {
        match self {
            BugKind::Bug => 0,
            BugKind::Warn => 1,
        }
    }

    /// `"BUG"` or `"WARN"`.
    pub const fn name(self) -> &'static str {
        match self {
            BugKind::Bug => "BUG",
            BugKind::Warn => "WARN",
        }
    }
}

/// An exception-table entry, fields as stored (offsets from each field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExEntry {
    /// `insn` rel32 (field offset 0).
    pub insn: i32,
    /// `fixup` rel32 (field offset 4).
    pub fixup: i32,
}

/// An alternative entry, fields as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltEntry {
    /// `orig` rel32 (field offset 0).
    pub orig: i32,
    /// `repl` rel32 (field offset 4).
    pub repl: i32,
    /// `feature`.
    pub feature: AltFeature,
    /// `orig_len`.
    pub orig_len: u8,
    /// `repl_len` (at most `orig_len`).
    pub repl_len: u8,
}

/// A bug-frame entry, fields as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BugEntry {
    /// `loc` rel32 (field offset 0).
    pub loc: i32,
    /// `msg` rel32 (field offset 4).
    pub msg: i32,
    /// `line`.
    pub line: u32,
    /// `kind`.
    pub kind: BugKind,
}

/// What is wrong with a table's bytes. The message does not repeat the
/// section name: the caller, which found the section, names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchError {
    /// The section size is not a multiple of the entry size.
    SectionSize {
        /// The table.
        table: ArchTable,
        /// Its size.
        len: usize,
    },
    /// An alternative's `repl_len` exceeds its `orig_len`.
    ReplTooLong {
        /// Entry index.
        index: usize,
        /// `orig_len`.
        orig_len: u8,
        /// `repl_len`.
        repl_len: u8,
    },
    /// A bug frame's `kind` is neither 0 (BUG) nor 1 (WARN).
    BugKind {
        /// Entry index.
        index: usize,
        /// The value found.
        kind: u16,
    },
    /// A bug frame's reserved field is non-zero.
    NonZeroReserved {
        /// Entry index.
        index: usize,
    },
}

impl fmt::Display for ArchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArchError::SectionSize { table, len } => write!(
                f,
                "size {len} is not a multiple of the {}-byte entry",
                table.entry_size()
            ),
            ArchError::ReplTooLong {
                index,
                orig_len,
                repl_len,
            } => write!(
                f,
                "entry {index}: repl_len {repl_len} (offset 11) exceeds orig_len {orig_len}"
            ),
            ArchError::BugKind { index, kind } => write!(
                f,
                "entry {index}: kind {kind} (offset 12) is neither 0 (BUG) nor 1 (WARN)"
            ),
            ArchError::NonZeroReserved { index } => {
                write!(f, "entry {index}: reserved (offset 14) is non-zero")
            }
        }
    }
}

impl core::error::Error for ArchError {}

/// The entries of `bytes` as `T`, after the size rule.
fn entries<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable>(
    table: ArchTable,
    bytes: &[u8],
) -> Result<impl Iterator<Item = T> + '_, ArchError> {
    let size = table.entry_size();
    if bytes.len().checked_rem(size) != Some(0) {
        return Err(ArchError::SectionSize {
            table,
            len: bytes.len(),
        });
    }
    Ok(bytes
        .chunks_exact(size)
        .filter_map(|c| T::read_from_bytes(c).ok()))
}

/// The entries of a `.xsplice.ex_table`.
pub fn ex_entries(bytes: &[u8]) -> Result<impl Iterator<Item = ExEntry> + '_, ArchError> {
    Ok(
        entries::<ExTableEntry>(ArchTable::ExTable, bytes)?.map(|e| ExEntry {
            insn: e.insn.get(),
            fixup: e.fixup.get(),
        }),
    )
}

/// The entries of a `.xsplice.altinstructions`; every `repl_len` is
/// checked against its `orig_len` first.
pub fn alt_entries(bytes: &[u8]) -> Result<impl Iterator<Item = AltEntry> + '_, ArchError> {
    for (index, e) in entries::<AltInstrEntry>(ArchTable::AltInstructions, bytes)?.enumerate() {
        if e.repl_len > e.orig_len {
            return Err(ArchError::ReplTooLong {
                index,
                orig_len: e.orig_len,
                repl_len: e.repl_len,
            });
        }
    }
    Ok(
        entries::<AltInstrEntry>(ArchTable::AltInstructions, bytes)?.map(|e| AltEntry {
            orig: e.orig.get(),
            repl: e.repl.get(),
            feature: AltFeature::from_raw(e.feature.get()),
            orig_len: e.orig_len,
            repl_len: e.repl_len,
        }),
    )
}

/// The entries of a `.xsplice.bug_frames`; every `kind` and reserved field
/// is checked first.
pub fn bug_entries(bytes: &[u8]) -> Result<impl Iterator<Item = BugEntry> + '_, ArchError> {
    for (index, e) in entries::<BugFrameEntry>(ArchTable::BugFrames, bytes)?.enumerate() {
        if BugKind::from_raw(e.kind.get()).is_none() {
            return Err(ArchError::BugKind {
                index,
                kind: e.kind.get(),
            });
        }
        if e.reserved.get() != 0 {
            return Err(ArchError::NonZeroReserved { index });
        }
    }
    Ok(
        entries::<BugFrameEntry>(ArchTable::BugFrames, bytes)?.filter_map(|e| {
            Some(BugEntry {
                loc: e.loc.get(),
                msg: e.msg.get(),
                line: e.line.get(),
                kind: BugKind::from_raw(e.kind.get())?,
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rule_and_checks() {
        assert_eq!(
            ex_entries(&[0; 12]).err(),
            Some(ArchError::SectionSize {
                table: ArchTable::ExTable,
                len: 12
            })
        );
        let mut alt = [0u8; 24];
        alt[22] = 2;
        alt[23] = 3;
        assert_eq!(
            alt_entries(&alt).err(),
            Some(ArchError::ReplTooLong {
                index: 1,
                orig_len: 2,
                repl_len: 3
            })
        );
        let mut bug = [0u8; 16];
        bug[12] = 2;
        assert_eq!(
            bug_entries(&bug).err(),
            Some(ArchError::BugKind { index: 0, kind: 2 })
        );
        bug[12] = 1;
        bug[15] = 1;
        assert_eq!(
            bug_entries(&bug).err(),
            Some(ArchError::NonZeroReserved { index: 0 })
        );
        bug[15] = 0;
        let got: Vec<_> = bug_entries(&bug).unwrap().collect();
        assert_eq!(got[0].kind, BugKind::Warn);
    }

    #[test]
    fn feature_field() {
        let f = AltFeature::from_raw(0x8001);
        assert_eq!(
            f,
            AltFeature {
                number: 1,
                when_absent: true
            }
        );
        assert_eq!(f.raw(), 0x8001);
        assert!(!f.applies(|n| n == 1));
        assert!(f.applies(|_| false));
        assert_eq!(rel32_target(0, 0, ArchTable::ExTable, 0, -1), None);
    }

    extern crate std;
    use std::vec::Vec;
}
