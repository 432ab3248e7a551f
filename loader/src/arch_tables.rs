//! The architecture-specific tables of format 3.1 (SPEC.md section 17):
//! exception tables, alternatives and bug frames.
//!
//! Loading them is in three steps. Before any memory is asked for,
//! `precheck` holds each table's section header to the rules (flags,
//! alignment, entry size, size) and checks that the ABI note's ARCH bit and
//! the tables go together. After relocation, `resolve` turns every `rel32`
//! into an address and checks it names the payload's own memory. Last, the
//! engine applies the alternatives for the target's CPU features
//! ([`apply_alternatives`]) before the text is mapped, and hands exception
//! tables and bug frames to the target, which must honour them or refuse.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use goblin::elf::section_header as sh;
use xsplice_abi::arch::{self, AltFeature, ArchError, ArchTable, BugKind};
use xsplice_abi::{sections, AbiNote, Addr, Incompat};

use crate::elf::PayloadElf;
use crate::error::LoadError;
use crate::layout::{loaded_bytes, Layout};
use crate::patch::{self, PatchError};
use crate::{Arch, RegionKind};

/// Longest bug-frame message read, in bytes, NUL excluded.
pub const BUG_MSG_MAX: usize = 1023;

/// The bytes read for a bug frame's message: the longest text and its NUL.
const BUG_MSG_WINDOW: u64 = BUG_MSG_MAX as u64 + 1;

/// The CPU features a target has, by feature number (SPEC.md 17.4).
///
/// Numbers 1 to 63 can be held; higher numbers are never present, so an
/// alternative naming one applies only when it asks for the feature's
/// absence (and is reported as unknown anyway).
///
/// ```
/// use xsplice_loader::{Arch, CpuFeatures};
/// let cpu = CpuFeatures::parse(Arch::X86_64, "popcnt,avx2").unwrap();
/// assert!(cpu.has(1) && cpu.has(4) && !cpu.has(3));
/// assert_eq!(cpu.names(Arch::X86_64).collect::<Vec<_>>(), ["POPCNT", "AVX2"]);
/// assert_eq!(CpuFeatures::parse(Arch::Aarch64, "popcnt"), Err("popcnt".to_string()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuFeatures(u64);

impl CpuFeatures {
    /// No feature: every alternative keeps the original code (unless it
    /// asks for a feature's absence).
    pub const NONE: CpuFeatures = CpuFeatures(0);

    /// Whether feature `number` is present.
    pub const fn has(self, number: u16) -> bool {
        number != 0 && number < 64 && self.0 & (1u64 << number) != 0
    }

    /// These features plus `number` (ignored when 64 or more).
    pub const fn with(self, number: u16) -> CpuFeatures {
        if number != 0 && number < 64 {
            CpuFeatures(self.0 | (1u64 << number))
        } else {
            self
        }
    }

    /// The features named in a comma-separated `list` (case-insensitive
    /// names of SPEC.md 17.4, or numbers); the unknown name on error.
    pub fn parse(arch: Arch, list: &str) -> Result<CpuFeatures, String> {
        let mut out = CpuFeatures::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let number = match arch::feature_by_name(known(arch), name) {
                Some(f) => f.number,
                None => name
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..64).contains(n))
                    .ok_or_else(|| String::from(name))?,
            };
            out = out.with(number);
        }
        Ok(out)
    }

    /// The features of the CPU this code runs on, when it is an `arch`
    /// machine (`cpuid` on x86-64, the kernel's HWCAP on AArch64); none for
    /// another machine.
    #[cfg(feature = "std")]
    pub fn native(arch: Arch) -> CpuFeatures {
        let mut out = CpuFeatures::NONE;
        #[cfg(target_arch = "x86_64")]
        if arch == Arch::X86_64 {
            let has = [
                std::is_x86_feature_detected!("popcnt"),
                std::is_x86_feature_detected!("sse4.2"),
                std::is_x86_feature_detected!("avx"),
                std::is_x86_feature_detected!("avx2"),
                std::is_x86_feature_detected!("bmi1"),
                std::is_x86_feature_detected!("bmi2"),
                std::is_x86_feature_detected!("ermsb"),
                fsrm(),
                std::is_x86_feature_detected!("avx512f"),
                std::is_x86_feature_detected!("adx"),
            ];
            for (f, present) in arch::X86_64_FEATURES.iter().zip(has) {
                if present {
                    out = out.with(f.number);
                }
            }
        }
        #[cfg(target_arch = "aarch64")]
        if arch == Arch::Aarch64 {
            let has = [
                std::arch::is_aarch64_feature_detected!("lse"),
                std::arch::is_aarch64_feature_detected!("crc"),
                std::arch::is_aarch64_feature_detected!("sha2"),
                std::arch::is_aarch64_feature_detected!("sve"),
            ];
            for (f, present) in arch::AARCH64_FEATURES.iter().zip(has) {
                if present {
                    out = out.with(f.number);
                }
            }
        }
        let _ = arch;
        out
    }

    /// The names of the known features present.
    pub fn names(self, arch: Arch) -> impl Iterator<Item = &'static str> {
        known(arch)
            .iter()
            .filter(move |f| self.has(f.number))
            .map(|f| f.name)
    }
}

/// Fast short `rep movsb` (CPUID leaf 7, EDX bit 4), which the standard
/// library's feature detection does not name.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn fsrm() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // The intrinsics are safe from Rust 1.87 on and unsafe before (the
    // MSRV is 1.85), hence the block and the allow.
    // SAFETY: `cpuid` exists on every x86-64 CPU and only reads; leaf 7 is
    // asked for only when leaf 0 says it exists.
    #[allow(unused_unsafe)]
    unsafe {
        let max = __cpuid(0).eax;
        max >= 7 && __cpuid_count(7, 0).edx & (1 << 4) != 0
    }
}

/// The feature numbers defined for `arch`.
pub fn known(arch: Arch) -> &'static [arch::CpuFeature] {
    match arch {
        Arch::X86_64 => &arch::X86_64_FEATURES,
        Arch::Aarch64 => &arch::AARCH64_FEATURES,
    }
}

/// Whether `number` is a feature number defined for `arch`.
pub fn is_known(arch: Arch, number: u16) -> bool {
    known(arch).iter().any(|f| f.number == number)
}

/// An exception-table entry, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExTableEntry {
    /// Entry index.
    pub index: usize,
    /// The instruction that may fault.
    pub insn: Addr,
    /// Where execution resumes after it faults.
    pub fixup: Addr,
}

/// An alternative, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alternative {
    /// Entry index.
    pub index: usize,
    /// The code to replace.
    pub orig: Addr,
    /// Its length.
    pub orig_len: u8,
    /// The replacement bytes.
    pub repl: Addr,
    /// Their length (at most `orig_len`).
    pub repl_len: u8,
    /// The feature it depends on.
    pub feature: AltFeature,
    /// Whether the feature number is defined for the payload's machine.
    pub known: bool,
}

impl Alternative {
    /// Whether it applies on a CPU with `cpu` (never when the feature
    /// number is unknown).
    pub fn applies(&self, cpu: CpuFeatures) -> bool {
        self.known && self.feature.applies(|n| cpu.has(n))
    }
}

/// A bug frame, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BugFrame {
    /// Entry index.
    pub index: usize,
    /// The trap instruction.
    pub loc: Addr,
    /// The message (lossily decoded as UTF-8).
    pub msg: String,
    /// Its address.
    pub msg_addr: Addr,
    /// Source line.
    pub line: u32,
    /// BUG or WARN.
    pub kind: BugKind,
}

impl BugFrame {
    /// Where execution resumes after a WARN: past the trap instruction.
    pub fn resume(&self, arch: Arch) -> Addr {
        Addr(self.loc.0.wrapping_add(trap(arch).len() as u64))
    }
}

/// The trap instruction a bug frame names on `arch`.
pub const fn trap(arch: Arch) -> &'static [u8] {
    match arch {
        Arch::X86_64 => &arch::BUG_TRAP_X86_64,
        Arch::Aarch64 => &arch::BUG_TRAP_AARCH64,
    }
}

/// A payload's architecture-specific tables, resolved: the typed views the
/// engine applies (alternatives) and hands to the target (the others).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchTables {
    /// `.xsplice.ex_table`, when present.
    pub ex_table: Option<Vec<ExTableEntry>>,
    /// `.xsplice.altinstructions`, when present.
    pub alternatives: Option<Vec<Alternative>>,
    /// `.xsplice.bug_frames`, when present.
    pub bug_frames: Option<Vec<BugFrame>>,
}

impl ArchTables {
    /// Whether the payload carries `table` (possibly empty).
    pub fn has(&self, table: ArchTable) -> bool {
        match table {
            ArchTable::ExTable => self.ex_table.is_some(),
            ArchTable::AltInstructions => self.alternatives.is_some(),
            ArchTable::BugFrames => self.bug_frames.is_some(),
        }
    }

    /// Whether the payload carries none of the tables.
    pub fn is_empty(&self) -> bool {
        ArchTable::ALL.iter().all(|t| !self.has(*t))
    }

    /// Whether there is anything to hand the target (exception-table or
    /// bug-frame entries).
    pub fn needs_registration(&self) -> bool {
        self.ex_table.as_ref().is_some_and(|t| !t.is_empty())
            || self.bug_frames.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// The exception-table entries (empty when absent).
    pub fn ex_entries(&self) -> &[ExTableEntry] {
        self.ex_table.as_deref().unwrap_or(&[])
    }

    /// The alternatives (empty when absent).
    pub fn alt_entries(&self) -> &[Alternative] {
        self.alternatives.as_deref().unwrap_or(&[])
    }

    /// The bug frames (empty when absent).
    pub fn bug_entries(&self) -> &[BugFrame] {
        self.bug_frames.as_deref().unwrap_or(&[])
    }
}

/// What is wrong with an architecture-specific table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchProblem {
    /// The ABI note sets ARCH but the payload has none of the tables.
    #[error("the ABI note sets incompat bit ARCH but the payload has none of `.xsplice.ex_table`, `.xsplice.altinstructions`, `.xsplice.bug_frames`")]
    BitWithoutTable,
    /// A table is present but the ABI note does not set ARCH (or there is
    /// no note: a legacy payload cannot carry the tables).
    #[error("present, but the ABI note does not set incompat bit ARCH (bit 4, format 3.1)")]
    TableWithoutBit,
    /// Flags: must be alloc, not executable.
    #[error("flags {0:#x}: must be SHF_ALLOC and not SHF_EXECINSTR")]
    Flags(u64),
    /// `sh_addralign` must be a multiple of 4.
    #[error("sh_addralign {0} is not a multiple of 4")]
    Align(u64),
    /// `sh_entsize` is neither 0 nor the entry size.
    #[error("sh_entsize {found} is neither 0 nor the {entry}-byte entry size")]
    EntSize {
        /// The value found.
        found: u64,
        /// The entry size.
        entry: usize,
    },
    /// Not a PROGBITS section.
    #[error("section type {0} is not SHT_PROGBITS")]
    Type(u32),
    /// The replacement code section is not executable.
    #[error("must be SHF_ALLOC | SHF_EXECINSTR (flags {0:#x})")]
    ReplacementFlags(u64),
    /// A byte-level rule (size, `repl_len`, bug kind, reserved).
    #[error("{0}")]
    Entries(ArchError),
    /// A field names an address outside what it must be inside.
    #[error("entry {entry}: `{field}` {addr} (length {len}) is not inside the payload's {inside}")]
    Outside {
        /// Entry index.
        entry: usize,
        /// Field.
        field: &'static str,
        /// The resolved address (0 on overflow).
        addr: Addr,
        /// Bytes the field names.
        len: u64,
        /// "text" or "loaded sections".
        inside: &'static str,
    },
    /// A bug frame's message has no NUL inside its section (or is longer
    /// than [`BUG_MSG_MAX`]).
    #[error("entry {entry}: `msg` at {addr} has no NUL within {max} bytes inside its section")]
    MsgUnterminated {
        /// Entry index.
        entry: usize,
        /// Address.
        addr: Addr,
        /// The limit.
        max: usize,
    },
    /// A bug frame's `loc` is not the architecture's trap instruction.
    #[error("entry {entry}: `loc` {addr} holds {found:02x?}, not the {arch} trap {expected:02x?}")]
    NotATrap {
        /// Entry index.
        entry: usize,
        /// Address.
        addr: Addr,
        /// Bytes found.
        found: Vec<u8>,
        /// The trap.
        expected: &'static [u8],
        /// Machine.
        arch: Arch,
    },
    /// An alternative's NOP fill cannot be made (AArch64: not a multiple of 4).
    #[error("entry {entry}: {problem}")]
    Fill {
        /// Entry index.
        entry: usize,
        /// Why.
        problem: PatchError,
    },
    /// The target cannot honour this table; loading the payload as if it
    /// were absent would be unsafe.
    #[error("the target cannot honour this table")]
    NotHonoured,
}

/// The flags the tables must have, the ones they must not. A writable
/// table (`"aw"`, what a C array would be) is accepted as records are: it is
/// mapped read-only once relocated, like every `.xsplice.*` section.
const WANT: u64 = sh::SHF_ALLOC as u64;
const FORBID: u64 = sh::SHF_EXECINSTR as u64;

/// Checks every table's section header, and the ARCH bit against the
/// tables present, before anything is allocated.
pub(crate) fn precheck(
    elf: &PayloadElf<'_>,
    note: Option<&AbiNote>,
    unhonoured: &[ArchTable],
) -> Result<(), LoadError> {
    let err = |section, problem| LoadError::Arch { section, problem };
    let mut any = false;
    for table in ArchTable::ALL {
        let Some(i) = elf.find(table.section()) else {
            continue;
        };
        any = true;
        let s = elf.sections.get(i).cloned().unwrap_or_default();
        let section = table.section();
        if s.sh_type != sh::SHT_PROGBITS {
            return Err(err(section, ArchProblem::Type(s.sh_type)));
        }
        if s.sh_flags & WANT != WANT || s.sh_flags & FORBID != 0 {
            return Err(err(section, ArchProblem::Flags(s.sh_flags)));
        }
        if s.sh_addralign % arch::TABLE_ALIGN != 0 {
            return Err(err(section, ArchProblem::Align(s.sh_addralign)));
        }
        if s.sh_entsize != 0 && s.sh_entsize != table.entry_size() as u64 {
            return Err(err(
                section,
                ArchProblem::EntSize {
                    found: s.sh_entsize,
                    entry: table.entry_size(),
                },
            ));
        }
        if s.sh_size.checked_rem(table.entry_size() as u64) != Some(0) {
            return Err(err(
                section,
                ArchProblem::Entries(ArchError::SectionSize {
                    table,
                    len: usize::try_from(s.sh_size).unwrap_or(usize::MAX),
                }),
            ));
        }
        if !note.is_some_and(|n| n.incompat.contains(Incompat::ARCH)) {
            return Err(err(section, ArchProblem::TableWithoutBit));
        }
        if unhonoured.contains(&table) {
            return Err(err(section, ArchProblem::NotHonoured));
        }
    }
    if let Some(i) = elf.find(sections::ALTINSTR_REPLACEMENT) {
        let flags = elf.sections.get(i).map_or(0, |s| s.sh_flags);
        let exec = (sh::SHF_ALLOC | sh::SHF_EXECINSTR) as u64;
        if flags & exec != exec {
            return Err(err(
                sections::ALTINSTR_REPLACEMENT,
                ArchProblem::ReplacementFlags(flags),
            ));
        }
    }
    if !any && note.is_some_and(|n| n.incompat.contains(Incompat::ARCH)) {
        return Err(err(sections::NOTE, ArchProblem::BitWithoutTable));
    }
    Ok(())
}

/// Reads a table's relocated bytes and its address, when present.
fn table_bytes<'l>(
    elf: &PayloadElf<'_>,
    layout: &'l Layout,
    table: ArchTable,
) -> Option<(u64, &'l [u8])> {
    let i = elf.find(table.section())?;
    Some((
        layout.addr_of(i).unwrap_or(0),
        loaded_bytes(elf, layout, i).unwrap_or(&[]),
    ))
}

/// Where resolved addresses must lie.
struct Bounds<'l> {
    layout: &'l Layout,
    /// `(start, end)` of every loaded section, sorted.
    sections: Vec<(u64, u64)>,
}

impl Bounds<'_> {
    fn in_text(&self, addr: u64, len: u64) -> bool {
        self.layout
            .region(RegionKind::Text)
            .is_some_and(|t| t.contains(Addr(addr), len.max(1)))
    }

    /// The loaded section containing `addr`.
    fn section_of(&self, addr: u64) -> Option<(u64, u64)> {
        self.sections
            .iter()
            .copied()
            .find(|(s, e)| (*s..*e).contains(&addr))
    }

    /// The bytes at `[addr, addr+len)` of the layout's regions.
    fn bytes(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.layout
            .regions
            .iter()
            .find_map(|r| r.slice(Addr(addr), len))
    }
}

/// Resolves a rel32 field, or reports it outside.
fn field(
    base: u64,
    index: usize,
    table: ArchTable,
    offset: usize,
    value: i32,
) -> Result<u64, (usize, u64)> {
    arch::rel32_target(base, index, table, offset, value).ok_or((index, 0))
}

/// Resolves every entry of every table present and checks each address
/// against the payload's own memory.
pub(crate) fn resolve(elf: &PayloadElf<'_>, layout: &Layout) -> Result<ArchTables, LoadError> {
    let mut spans: Vec<(u64, u64)> = (1..elf.sections.len())
        .filter_map(|i| {
            let start = layout.addr_of(i)?;
            let size = elf.sections.get(i)?.sh_size;
            Some((start, start.saturating_add(size)))
        })
        .collect();
    spans.sort_unstable();
    let bounds = Bounds {
        layout,
        sections: spans,
    };
    let arch = elf.arch;
    let outside = |section, entry, field, addr, len, inside| LoadError::Arch {
        section,
        problem: ArchProblem::Outside {
            entry,
            field,
            addr: Addr(addr),
            len,
            inside,
        },
    };
    let entries_err = |table: ArchTable, e| LoadError::Arch {
        section: table.section(),
        problem: ArchProblem::Entries(e),
    };
    // A rel32 field that must name `len` bytes of the payload's text.
    let text_field = |t: ArchTable, base, index, off, value, name, len: u64| {
        let a = field(base, index, t, off, value)
            .map_err(|(i, a)| outside(t.section(), i, name, a, len, "text"))?;
        if bounds.in_text(a, len) {
            Ok(a)
        } else {
            Err(outside(t.section(), index, name, a, len, "text"))
        }
    };
    let mut out = ArchTables::default();

    if let Some((base, bytes)) = table_bytes(elf, layout, ArchTable::ExTable) {
        let t = ArchTable::ExTable;
        let mut v = Vec::with_capacity(bytes.len().checked_div(t.entry_size()).unwrap_or(0));
        for (index, e) in arch::ex_entries(bytes)
            .map_err(|e| entries_err(t, e))?
            .enumerate()
        {
            let insn = text_field(t, base, index, 0, e.insn, "insn", 1)?;
            let fixup = text_field(t, base, index, 4, e.fixup, "fixup", 1)?;
            v.push(ExTableEntry {
                index,
                insn: Addr(insn),
                fixup: Addr(fixup),
            });
        }
        out.ex_table = Some(v);
    }

    if let Some((base, bytes)) = table_bytes(elf, layout, ArchTable::AltInstructions) {
        let t = ArchTable::AltInstructions;
        let sec = t.section();
        let mut v = Vec::with_capacity(bytes.len().checked_div(t.entry_size()).unwrap_or(0));
        for (index, e) in arch::alt_entries(bytes)
            .map_err(|e| entries_err(t, e))?
            .enumerate()
        {
            let (ol, rl) = (u64::from(e.orig_len), u64::from(e.repl_len));
            let orig = text_field(t, base, index, 0, e.orig, "orig", ol)?;
            let repl = text_field(t, base, index, 4, e.repl, "repl", rl)?;
            // The fill must be whole instructions, checked now rather
            // than when a CPU happens to select the alternative.
            patch::nops(arch, u64::from(e.orig_len.saturating_sub(e.repl_len))).map_err(
                |problem| LoadError::Arch {
                    section: sec,
                    problem: ArchProblem::Fill {
                        entry: index,
                        problem,
                    },
                },
            )?;
            v.push(Alternative {
                index,
                orig: Addr(orig),
                orig_len: e.orig_len,
                repl: Addr(repl),
                repl_len: e.repl_len,
                feature: e.feature,
                known: is_known(arch, e.feature.number),
            });
        }
        out.alternatives = Some(v);
    }

    if let Some((base, bytes)) = table_bytes(elf, layout, ArchTable::BugFrames) {
        let t = ArchTable::BugFrames;
        let sec = t.section();
        let mut v = Vec::with_capacity(bytes.len().checked_div(t.entry_size()).unwrap_or(0));
        let trap = trap(arch);
        for (index, e) in arch::bug_entries(bytes)
            .map_err(|e| entries_err(t, e))?
            .enumerate()
        {
            let tlen = trap.len() as u64;
            let loc = text_field(t, base, index, 0, e.loc, "loc", tlen)?;
            let found = bounds.bytes(loc, tlen).unwrap_or(&[]);
            if found != trap {
                return Err(LoadError::Arch {
                    section: sec,
                    problem: ArchProblem::NotATrap {
                        entry: index,
                        addr: Addr(loc),
                        found: found.to_vec(),
                        expected: trap,
                        arch,
                    },
                });
            }
            let msg = field(base, index, t, 4, e.msg)
                .map_err(|(i, a)| outside(sec, i, "msg", a, 1, "loaded sections"))?;
            let (_, end) = bounds
                .section_of(msg)
                .ok_or_else(|| outside(sec, index, "msg", msg, 1, "loaded sections"))?;
            // `msg` lies in its section, so this never saturates; if it did,
            // the empty window would only fail the NUL search below.
            let window = end.saturating_sub(msg).min(BUG_MSG_WINDOW);
            let text = bounds.bytes(msg, window).unwrap_or(&[]);
            let nul = text.iter().position(|&b| b == 0).ok_or(LoadError::Arch {
                section: sec,
                problem: ArchProblem::MsgUnterminated {
                    entry: index,
                    addr: Addr(msg),
                    max: BUG_MSG_MAX,
                },
            })?;
            let text = text.get(..nul).unwrap_or(&[]);
            v.push(BugFrame {
                index,
                loc: Addr(loc),
                msg: String::from_utf8_lossy(text).into_owned(),
                msg_addr: Addr(msg),
                line: e.line,
                kind: e.kind,
            });
        }
        out.bug_frames = Some(v);
    }
    Ok(out)
}

/// What applying the alternatives did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltOutcome {
    /// Entry index.
    pub index: usize,
    /// Whether its replacement was written.
    pub applied: bool,
}

/// Applies the alternatives of a loaded payload to its text bytes for a CPU
/// with `cpu`, in table order, before the text is mapped. Entries with an
/// unknown feature number are left alone (the loader warned about them).
///
/// Each applied entry's `orig_len` bytes become its `repl_len` replacement
/// bytes followed by NOPs. Every range was checked to lie inside the text
/// and every fill to be whole instructions when the payload loaded.
pub fn apply_alternatives(
    payload: &mut crate::LoadedPayload,
    cpu: CpuFeatures,
) -> Result<Vec<AltOutcome>, ArchProblem> {
    let arch = payload.arch;
    let alts: Vec<Alternative> = payload.arch_tables.alt_entries().to_vec();
    let mut out = Vec::with_capacity(alts.len());
    for a in alts {
        let applied = a.applies(cpu);
        if applied {
            let fill_err = |problem| ArchProblem::Fill {
                entry: a.index,
                problem,
            };
            // Checked at load; kept as an error rather than a panic.
            let outside = ArchProblem::Outside {
                entry: a.index,
                field: "orig",
                addr: a.orig,
                len: u64::from(a.orig_len),
                inside: "text",
            };
            let text = payload
                .regions
                .iter_mut()
                .find(|r| r.kind == RegionKind::Text)
                .ok_or_else(|| outside.clone())?;
            let mut new = text
                .slice(a.repl, u64::from(a.repl_len))
                .unwrap_or(&[])
                .to_vec();
            new.extend(
                patch::nops(arch, u64::from(a.orig_len.saturating_sub(a.repl_len)))
                    .map_err(fill_err)?,
            );
            let start = usize::try_from(a.orig.0.wrapping_sub(text.addr.0)).unwrap_or(usize::MAX);
            let dst = text
                .bytes
                .get_mut(start..start.saturating_add(new.len()))
                .filter(|d| d.len() == usize::from(a.orig_len))
                .ok_or(outside)?;
            dst.copy_from_slice(&new);
        }
        out.push(AltOutcome {
            index: a.index,
            applied,
        });
    }
    Ok(out)
}

impl fmt::Display for AltOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.applied { "applied" } else { "kept" };
        write!(f, "alternative {}: {what}", self.index)
    }
}
