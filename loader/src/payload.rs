//! The load pipeline: validated ELF → section layout → symbol resolution →
//! relocation → record decoding and checks → [`LoadedPayload`].

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use goblin::elf::section_header as sh;
use goblin::elf::sym;
use xsplice_abi::sections::{self, HookPoint};
use xsplice_abi::vendor::{VendorEntries, VendorTarget};
use xsplice_abi::{
    AbiNote, Addr, FormatVersion, Incompat, PatchFunc, RecordIndex, RecordVersion, Warning,
    NOTE_NAME, NOTE_TYPE,
};

use crate::elf::PayloadElf;
use crate::error::{
    LoadError, NoteProblem, RecordProblem, RelocProblem, SectionProblem, SymbolProblem,
    VendorProblem,
};
use crate::reloc::{self, GotUse};
use crate::{notes, Allocator, Arch, LoadOptions, RegionKind, Symbol, SymbolSource};

pub use xsplice_abi::NAME_MAX;

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
        let start = usize::try_from(addr.0 - self.addr.0).ok()?;
        self.bytes
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// Where one loaded section went.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A record warning from the ABI decoder.
    Record {
        /// The record.
        record: RecordIndex,
        /// The warning text.
        what: String,
    },
    /// The note has compat bits this loader does not know.
    NoteUnknownCompat {
        /// The bits.
        bits: u32,
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
            LoadWarning::Record { record, what } => write!(f, "{record}: {what}"),
            LoadWarning::NoteUnknownCompat { bits } => {
                write!(f, "`.note.xsplice`: unknown compat bits {bits:#x} ignored")
            }
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

/// Where a section was placed within its region.
#[derive(Debug, Clone, Copy)]
struct Placement {
    kind: RegionKind,
    offset: u64,
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    let a = align.max(1);
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// The region a loaded section goes to.
fn region_of(name: &str, flags: u64) -> Option<RegionKind> {
    let write = flags & u64::from(sh::SHF_WRITE) != 0;
    let exec = flags & u64::from(sh::SHF_EXECINSTR) != 0;
    if write && exec {
        return None;
    }
    Some(if exec {
        RegionKind::Text
    } else if name.starts_with(".xsplice.") || !write {
        // Records and the other .xsplice.* tables are read-only once
        // relocated, even though gcc marks a C array of records writable.
        RegionKind::ReadOnly
    } else {
        RegionKind::Data
    })
}

struct Layout {
    placements: Vec<Option<Placement>>,
    regions: Vec<Region>,
    /// Offset of the GOT in the read-only region, and slot per symbol.
    got: Option<(u64, BTreeMap<usize, u64>)>,
}

impl Layout {
    fn region(&self, kind: RegionKind) -> Option<&Region> {
        self.regions.iter().find(|r| r.kind == kind)
    }

    fn addr_of(&self, section: usize) -> Option<u64> {
        let p = (*self.placements.get(section)?)?;
        Some(self.region(p.kind)?.addr.0.wrapping_add(p.offset))
    }

    fn got_addr(&self) -> Option<u64> {
        let (off, _) = self.got.as_ref()?;
        Some(self.region(RegionKind::ReadOnly)?.addr.0.wrapping_add(*off))
    }
}

/// Plans every allocated section into the three regions, reserves the GOT,
/// and asks the allocator for each region.
fn lay_out(
    elf: &PayloadElf<'_>,
    opts: &LoadOptions,
    alloc: &mut dyn Allocator,
) -> Result<Layout, LoadError> {
    let mut placements = vec![None; elf.sections.len()];
    let mut sizes = [0u64; 3];
    let mut aligns = [1u64; 3];
    for (i, s) in elf.sections.iter().enumerate().skip(1) {
        if !elf.is_alloc(i) || s.sh_type == sh::SHT_GROUP {
            continue;
        }
        let kind = region_of(elf.section_name(i), s.sh_flags)
            .ok_or_else(|| elf.section_err(i, SectionProblem::WritableExecutable))?;
        let k = kind as usize;
        let (size, align) = (sizes.get_mut(k), aligns.get_mut(k));
        let (Some(size), Some(align)) = (size, align) else {
            continue;
        };
        let off = align_up(*size, s.sh_addralign)
            .ok_or_else(|| elf.section_err(i, SectionProblem::AllocLimit(opts.max_alloc as u64)))?;
        *size = off.saturating_add(s.sh_size);
        *align = (*align).max(s.sh_addralign);
        if let Some(p) = placements.get_mut(i) {
            *p = Some(Placement { kind, offset: off });
        }
    }

    // GOT: one reserved word (so its address exists) plus a slot per symbol
    // that a GOT-slot relocation names, at the end of the read-only region.
    let mut slots = BTreeMap::new();
    let mut needs_got = false;
    for rs in 1..elf.sections.len() {
        let Some(target) = reloc_target(elf, rs) else {
            continue;
        };
        if !elf.is_alloc(target) {
            continue;
        }
        let Some(relocs) = elf.relocations(rs) else {
            continue;
        };
        for r in relocs.iter() {
            match reloc::got_use(elf.arch, r.r_type) {
                GotUse::None => {}
                GotUse::Base => needs_got = true,
                GotUse::Slot => {
                    needs_got = true;
                    let n = slots.len() as u64;
                    slots.entry(r.r_sym).or_insert(8 * (n + 1));
                }
            }
        }
    }
    needs_got |= references_got_symbol(elf);
    let ro = RegionKind::ReadOnly as usize;
    let got = if needs_got {
        let off = align_up(sizes.get(ro).copied().unwrap_or(0), 8).unwrap_or(u64::MAX);
        let len = 8 * (slots.len() as u64 + 1);
        if let Some(s) = sizes.get_mut(ro) {
            *s = off.saturating_add(len);
        }
        if let Some(a) = aligns.get_mut(ro) {
            *a = (*a).max(8);
        }
        Some((off, slots))
    } else {
        None
    };

    let total = sizes.iter().fold(0u64, |a, s| a.saturating_add(*s));
    if total > opts.max_alloc as u64 {
        return Err(elf.section_err(0, SectionProblem::AllocLimit(opts.max_alloc as u64)));
    }
    let mut regions = Vec::new();
    for kind in [RegionKind::Text, RegionKind::ReadOnly, RegionKind::Data] {
        let size = sizes.get(kind as usize).copied().unwrap_or(0);
        if size == 0 {
            continue;
        }
        let align = aligns.get(kind as usize).copied().unwrap_or(1);
        let addr = alloc
            .allocate(kind, size, align)
            .map_err(LoadError::Target)?;
        // Bounded by max_alloc above.
        let mut bytes = vec![0u8; usize::try_from(size).unwrap_or(0)];
        for (i, p) in placements.iter().enumerate() {
            let Some(p) = p.filter(|p| p.kind == kind) else {
                continue;
            };
            let data = elf.data(i);
            let start = usize::try_from(p.offset).unwrap_or(usize::MAX);
            if let Some(dst) = start
                .checked_add(data.len())
                .and_then(|end| bytes.get_mut(start..end))
            {
                dst.copy_from_slice(data);
            }
        }
        regions.push(Region {
            kind,
            addr,
            align,
            bytes,
        });
    }
    Ok(Layout {
        placements,
        regions,
        got,
    })
}

/// Whether some symbol is named `_GLOBAL_OFFSET_TABLE_`.
fn references_got_symbol(elf: &PayloadElf<'_>) -> bool {
    (1..elf.symbol_count()).any(|i| {
        elf.symbol(i)
            .and_then(|s| elf.symbol_name(i, &s).ok())
            .is_some_and(|n| n == GOT_SYMBOL)
    })
}

const GOT_SYMBOL: &str = "_GLOBAL_OFFSET_TABLE_";

/// The section a relocation section applies to, if `rs` is one.
fn reloc_target(elf: &PayloadElf<'_>, rs: usize) -> Option<usize> {
    let s = elf.sections.get(rs)?;
    (s.sh_type == sh::SHT_RELA || s.sh_type == sh::SHT_REL).then_some(s.sh_info as usize)
}

/// Resolves every symbol to an address (`None` for symbols in unloaded
/// sections, which only matter if a loaded section refers to them).
fn resolve_symbols(
    elf: &PayloadElf<'_>,
    layout: &Layout,
    symbols: &dyn SymbolSource,
) -> Result<(Vec<Option<u64>>, Vec<Export>), LoadError> {
    let count = elf.symbol_count();
    let mut addrs = Vec::with_capacity(count);
    let mut exports: Vec<Export> = Vec::new();
    let mut globals = BTreeMap::new();
    for i in 0..count {
        let Some(s) = elf.symbol(i) else {
            addrs.push(None);
            continue;
        };
        let name = elf.symbol_name(i, &s)?;
        let err = |problem| LoadError::Symbol {
            index: i,
            name: name.to_string(),
            problem,
        };
        let shndx = s.st_shndx as u32;
        let addr = if i == 0 {
            Some(0)
        } else if shndx == sh::SHN_UNDEF {
            if name == GOT_SYMBOL {
                layout.got_addr()
            } else if let Some(found) = symbols.lookup(name) {
                Some(found.addr.0)
            } else if s.st_bind() == sym::STB_WEAK {
                Some(0)
            } else if referenced(elf, i) {
                return Err(err(SymbolProblem::Unresolved));
            } else {
                None
            }
        } else if shndx == sh::SHN_ABS {
            Some(s.st_value)
        } else if shndx == sh::SHN_COMMON {
            return Err(err(SymbolProblem::Common));
        } else if shndx >= sh::SHN_LORESERVE || s.st_shndx >= elf.sections.len() {
            return Err(err(SymbolProblem::Section(s.st_shndx as u16)));
        } else {
            layout
                .addr_of(s.st_shndx)
                .map(|base| base.wrapping_add(s.st_value))
        };
        let global = s.st_bind() == sym::STB_GLOBAL || s.st_bind() == sym::STB_WEAK;
        let typ = s.st_type();
        if global && shndx != sh::SHN_UNDEF && typ != sym::STT_SECTION && typ != sym::STT_FILE {
            if globals.insert(name, i).is_some() {
                return Err(err(SymbolProblem::Duplicate));
            }
            if let Some(a) = addr.filter(|_| layout.addr_of(s.st_shndx).is_some()) {
                exports.push(Export {
                    name: name.to_string(),
                    symbol: Symbol {
                        addr: Addr(a),
                        size: s.st_size,
                    },
                });
            }
        }
        addrs.push(addr);
    }
    Ok((addrs, exports))
}

/// Whether a relocation of a loaded section names symbol `index`.
fn referenced(elf: &PayloadElf<'_>, index: usize) -> bool {
    (1..elf.sections.len()).any(|rs| {
        reloc_target(elf, rs).is_some_and(|t| elf.is_alloc(t))
            && elf
                .relocations(rs)
                .is_some_and(|r| r.iter().any(|r| r.r_sym == index))
    })
}

/// Applies every relocation of every loaded section.
fn relocate(
    elf: &PayloadElf<'_>,
    layout: &mut Layout,
    addrs: &[Option<u64>],
    record_size: u64,
    position_independent: bool,
) -> Result<(), LoadError> {
    let got_addr = layout.got_addr().unwrap_or(0);
    for rs in 1..elf.sections.len() {
        let Some(target) = reloc_target(elf, rs) else {
            continue;
        };
        let Some(Some(place)) = layout.placements.get(target).copied() else {
            continue;
        };
        let Some(relocs) = elf.relocations(rs) else {
            continue;
        };
        let section_name = elf.section_name(target);
        let section_size = elf.sections.get(target).map_or(0, |s| s.sh_size);
        let base = layout.addr_of(target).unwrap_or(0);
        let is_rela = elf
            .sections
            .get(rs)
            .is_some_and(|s| s.sh_type == sh::SHT_RELA);
        let rule = FormatRule::of(section_name, record_size);
        for (index, r) in relocs.iter().enumerate() {
            let symbol_name = || {
                elf.symbol(r.r_sym)
                    .and_then(|s| elf.symbol_name(r.r_sym, &s).ok())
                    .unwrap_or("?")
                    .to_string()
            };
            let err = |problem| LoadError::Relocation {
                section: section_name.to_string(),
                index,
                rtype: reloc::type_name(elf.arch, r.r_type),
                symbol: symbol_name(),
                problem,
            };
            let s = match addrs.get(r.r_sym) {
                Some(Some(a)) => *a,
                Some(None) => {
                    return Err(LoadError::Symbol {
                        index: r.r_sym,
                        name: symbol_name(),
                        problem: SymbolProblem::NotLoaded,
                    })
                }
                None => return Err(err(RelocProblem::SymbolIndex(r.r_sym))),
            };
            if !rule.allows(elf.arch, r.r_type, r.r_offset) {
                return Err(err(RelocProblem::FormatField));
            }
            let region = layout
                .regions
                .iter_mut()
                .find(|g| g.kind == place.kind)
                .ok_or_else(|| {
                    err(RelocProblem::Place {
                        offset: r.r_offset,
                        width: 0,
                    })
                })?;
            let start = usize::try_from(place.offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(section_size).unwrap_or(usize::MAX));
            let bytes = region.bytes.get_mut(start..end).ok_or_else(|| {
                err(RelocProblem::Place {
                    offset: r.r_offset,
                    width: 0,
                })
            })?;
            let a = match r.r_addend {
                Some(a) if is_rela => a,
                _ => reloc::implicit_addend(elf.arch, bytes, r.r_type, r.r_offset).map_err(err)?,
            };
            let slot = layout
                .got
                .as_ref()
                .and_then(|(_, slots)| slots.get(&r.r_sym))
                .map(|off| got_addr.wrapping_add(*off));
            let input = reloc::Input {
                rtype: r.r_type,
                offset: r.r_offset,
                s,
                a,
                p: base.wrapping_add(r.r_offset),
                got: got_addr,
                slot,
            };
            let value = reloc::apply(elf.arch, bytes, &input).map_err(err)?;
            // The format's own sections are read by the loader, never at run
            // time; code and data of a payload in a position-independent
            // image must not hold addresses nothing will fix up.
            if position_independent
                && value == reloc::Value::Absolute
                && matches!(rule, FormatRule::Any)
                && s != 0
            {
                return Err(err(RelocProblem::AbsoluteInPositionIndependent));
            }
        }
    }
    // Fill the GOT slots with the symbols' addresses.
    if let Some((off, slots)) = layout.got.clone() {
        if let Some(ro) = layout
            .regions
            .iter_mut()
            .find(|g| g.kind == RegionKind::ReadOnly)
        {
            for (symbol, slot) in slots {
                let value = addrs.get(symbol).copied().flatten().unwrap_or(0);
                let at = usize::try_from(off + slot).unwrap_or(usize::MAX);
                if let Some(dst) = ro.bytes.get_mut(at..at.saturating_add(8)) {
                    dst.copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
    Ok(())
}

/// What relocations the format's own sections may carry: their fields are
/// read from the relocated bytes, so only the pointer fields may be
/// relocated, and only by a plain 64-bit absolute relocation.
#[derive(Debug, Clone, Copy)]
enum FormatRule {
    /// Any relocation (code and data of the payload).
    Any,
    /// `.xsplice.funcs`: ABS64 at `new_addr`, `old_addr` and `name`.
    Records(u64),
    /// `.xsplice.hooks.*`: ABS64 at each 8-byte pointer.
    Hooks,
    /// Notes and vendor entries: no relocation at all.
    None,
}

impl FormatRule {
    fn of(section: &str, record_size: u64) -> FormatRule {
        if section == sections::FUNCS {
            FormatRule::Records(record_size.max(1))
        } else if HookPoint::from_section(section).is_some() {
            FormatRule::Hooks
        } else if [
            sections::NOTE,
            sections::DEPENDS,
            sections::VENDOR,
            sections::BUILD_ID,
        ]
        .contains(&section)
        {
            FormatRule::None
        } else {
            FormatRule::Any
        }
    }

    fn allows(self, arch: Arch, rtype: u32, offset: u64) -> bool {
        let abs64 = rtype
            == match arch {
                Arch::X86_64 => goblin::elf::reloc::R_X86_64_64,
                Arch::Aarch64 => goblin::elf::reloc::R_AARCH64_ABS64,
            };
        match self {
            FormatRule::Any => true,
            FormatRule::Records(size) => abs64 && matches!(offset % size, 0 | 16 | 32),
            FormatRule::Hooks => abs64 && offset % 8 == 0,
            FormatRule::None => false,
        }
    }
}

/// The relocated bytes of a loaded section.
fn loaded_bytes<'l>(elf: &PayloadElf<'_>, layout: &'l Layout, index: usize) -> Option<&'l [u8]> {
    let p = (*layout.placements.get(index)?)?;
    let size = usize::try_from(elf.sections.get(index)?.sh_size).ok()?;
    let start = usize::try_from(p.offset).ok()?;
    layout
        .region(p.kind)?
        .bytes
        .get(start..start.checked_add(size)?)
}

/// Reads the ABI note, if the payload has one.
fn read_note(elf: &PayloadElf<'_>) -> Result<Option<AbiNote>, LoadError> {
    let Some(i) = elf.find(sections::NOTE) else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for n in notes::notes(elf.data(i)) {
        let n = n.map_err(|e| LoadError::Note(NoteProblem::Framing(e)))?;
        if n.name == NOTE_NAME.as_slice() && n.ntype == NOTE_TYPE {
            found.push(n.desc);
        }
    }
    match found.as_slice() {
        [desc] => AbiNote::decode(desc)
            .map(Some)
            .map_err(|e| LoadError::Note(NoteProblem::Descriptor(e))),
        other => Err(LoadError::Note(NoteProblem::Count(other.len()))),
    }
}

fn read_build_id(
    elf: &PayloadElf<'_>,
    section: &'static str,
) -> Result<Option<Vec<u8>>, LoadError> {
    let Some(i) = elf.find(section) else {
        return Ok(None);
    };
    notes::build_id(elf.data(i))
        .map(|id| Some(id.to_vec()))
        .map_err(|why| LoadError::BuildId { section, why })
}

/// Loads an untrusted payload: validates it, lays it out through `alloc`,
/// resolves its undefined symbols and `old_addr == 0` records through
/// `symbols`, relocates it, and decodes and checks its records.
///
/// Nothing is written to the target: the result holds the relocated bytes
/// of each region, which the patch engine maps.
pub fn load(
    bytes: &[u8],
    opts: &LoadOptions,
    symbols: &dyn SymbolSource,
    alloc: &mut dyn Allocator,
) -> Result<LoadedPayload, LoadError> {
    let elf = PayloadElf::parse(bytes, opts)?;
    let funcs = elf
        .find(sections::FUNCS)
        .ok_or(LoadError::MissingSection(sections::FUNCS))?;
    if elf.symtab.is_none() {
        return Err(LoadError::MissingSection(".symtab"));
    }
    // Everything that needs no addresses is checked before the target is
    // asked for memory.
    let note = read_note(&elf)?;
    let build_id = read_build_id(&elf, sections::BUILD_ID)?;
    let depends = read_build_id(&elf, sections::DEPENDS)?;
    if !elf.is_alloc(funcs) {
        return Err(elf.section_err(funcs, SectionProblem::Contents("is not SHF_ALLOC")));
    }

    let entsize = elf.sections.get(funcs).map_or(0, |s| s.sh_entsize);
    // The section-level rules (version, size, entsize, length) hold on the
    // unrelocated bytes, since relocations may only touch pointer fields.
    let record_size = xsplice_abi::decode(elf.data(funcs), entsize)
        .map_err(LoadError::Records)?
        .size() as u64;

    let mut layout = lay_out(&elf, opts, alloc)?;
    let (addrs, exports) = resolve_symbols(&elf, &layout, symbols)?;
    relocate(
        &elf,
        &mut layout,
        &addrs,
        record_size,
        opts.position_independent,
    )?;

    let mut warnings = Vec::new();
    let funcs_bytes = loaded_bytes(&elf, &layout, funcs).unwrap_or(&[]);
    let decoded = xsplice_abi::decode(funcs_bytes, entsize).map_err(LoadError::Records)?;
    let mut union = Incompat::empty();
    let mut records = Vec::with_capacity(decoded.len());
    let text = layout
        .region(RegionKind::Text)
        .map(|t| (t.addr.0, t.addr.0.saturating_add(t.bytes.len() as u64)));
    for rec in decoded.iter() {
        let rec = rec.map_err(LoadError::Records)?;
        for w in rec.warnings().iter() {
            let what = match w {
                Warning::UnknownCompat { bit } => {
                    alloc::format!("unknown compat bit {bit} ignored")
                }
                other => other.to_string(),
            };
            warnings.push(LoadWarning::Record {
                record: rec.index,
                what,
            });
        }
        union |= rec.func.incompat;
        let name = read_name(&layout, rec.func.name).map_err(|problem| LoadError::Record {
            record: rec.index,
            name: String::new(),
            problem,
        })?;
        let record_err = |problem| LoadError::Record {
            record: rec.index,
            name: name.clone(),
            problem,
        };
        if let Some(other) = records.iter().find(|r: &&PatchRecord| r.name == name) {
            return Err(record_err(RecordProblem::DuplicateName(other.index.0)));
        }
        let f = rec.func;
        if f.is_nop() {
            // NOP records have no new code; their size is checked against
            // the instruction size when the patch bytes are made.
        } else if f.new_addr.is_null() {
            return Err(record_err(RecordProblem::NullNewAddr));
        } else if !text.is_some_and(|(lo, hi)| (lo..hi).contains(&f.new_addr.0)) {
            return Err(record_err(RecordProblem::NewOutsideText {
                addr: f.new_addr,
                size: f.new_size,
            }));
        } else if text.is_some_and(|(_, hi)| f.new_addr.0.saturating_add(f.new_size) > hi) {
            // Only new_addr is used to patch; a new_size running past the
            // text (a C author's estimate) is reported, not refused.
            warnings.push(LoadWarning::Record {
                record: rec.index,
                what: alloc::format!(
                    "new_size {:#x} runs past the end of the payload's text",
                    f.new_size
                ),
            });
        }
        let needed = if f.is_nop() {
            f.new_size
        } else {
            elf.arch.patch_size() as u64
        };
        if u64::from(f.patch_offset).saturating_add(needed) > f.old_size
            || f.old_size < elf.arch.patch_size() as u64
        {
            return Err(record_err(RecordProblem::OldTooSmall {
                old_size: f.old_size,
                patch_offset: f.patch_offset,
                needed,
                arch: elf.arch,
            }));
        }
        let old_addr = if f.old_addr.is_null() {
            let found = if f.sympos != 0 {
                symbols
                    .lookup_local(&name, f.sympos)
                    .ok_or(RecordProblem::NoSuchLocal(f.sympos))
            } else {
                symbols.lookup(&name).ok_or(RecordProblem::Unresolved)
            };
            found.map_err(record_err)?.addr
        } else {
            f.old_addr
        };
        let site = old_addr
            .checked_add(u64::from(f.patch_offset))
            .ok_or_else(|| record_err(RecordProblem::SiteOverflow))?;
        records.push(PatchRecord {
            index: rec.index,
            name,
            func: f,
            old_addr,
            site,
        });
    }

    let (record_version, record_size) = (decoded.version(), decoded.size());
    let format = check_note(
        note.as_ref(),
        record_version,
        record_size,
        union,
        &mut warnings,
    )?;
    let hooks = read_hooks(&elf, &layout)?;
    let vendor = read_vendor(&elf, opts, records.len(), &mut warnings)?;
    let sections = (1..elf.sections.len())
        .filter_map(|i| {
            let p = (*layout.placements.get(i)?)?;
            Some(LoadedSection {
                name: elf.section_name(i).to_string(),
                kind: p.kind,
                addr: Addr(layout.addr_of(i)?),
                size: elf.sections.get(i)?.sh_size,
            })
        })
        .collect();
    Ok(LoadedPayload {
        arch: elf.arch,
        regions: layout.regions,
        sections,
        format,
        note,
        record_version,
        record_size,
        records,
        build_id,
        depends,
        hooks,
        vendor,
        exports,
        warnings,
    })
}

/// Reads a record's name: NUL-terminated, at most [`NAME_MAX`] bytes,
/// inside a loaded section of the payload.
fn read_name(layout: &Layout, ptr: Addr) -> Result<String, RecordProblem> {
    let region = layout
        .regions
        .iter()
        .find(|r| r.contains(ptr, 1))
        .ok_or(RecordProblem::NameOutside(ptr))?;
    let start =
        usize::try_from(ptr.0 - region.addr.0).map_err(|_| RecordProblem::NameOutside(ptr))?;
    let tail = region.bytes.get(start..).unwrap_or(&[]);
    let window = tail.get(..tail.len().min(NAME_MAX + 1)).unwrap_or(&[]);
    let end = window
        .iter()
        .position(|&b| b == 0)
        .ok_or(RecordProblem::NameTooLong)?;
    let name = core::str::from_utf8(window.get(..end).unwrap_or(&[]))
        .map_err(|_| RecordProblem::NameInvalid)?;
    if name.is_empty() {
        return Err(RecordProblem::NameInvalid);
    }
    Ok(name.to_string())
}

/// Checks the note against the records; returns the payload's format.
fn check_note(
    note: Option<&AbiNote>,
    version: RecordVersion,
    size: usize,
    union: Incompat,
    warnings: &mut Vec<LoadWarning>,
) -> Result<FormatVersion, LoadError> {
    let Some(note) = note else {
        if version != RecordVersion::V1 {
            return Err(LoadError::Note(NoteProblem::MissingForVersion(version)));
        }
        return Ok(FormatVersion::new(1, 0));
    };
    let disagree = |field, note: u64, records: u64| {
        LoadError::Note(NoteProblem::Disagrees {
            field,
            note,
            records,
        })
    };
    if note.record_version != version {
        return Err(disagree(
            "record_version",
            u64::from(note.record_version.number()),
            u64::from(version.number()),
        ));
    }
    if usize::from(note.record_size) != size {
        return Err(disagree(
            "record_size",
            u64::from(note.record_size),
            size as u64,
        ));
    }
    if note.incompat != union {
        return Err(disagree(
            "incompat",
            u64::from(note.incompat.bits()),
            u64::from(union.bits()),
        ));
    }
    let unknown = note.compat.unknown();
    if !unknown.is_empty() {
        warnings.push(LoadWarning::NoteUnknownCompat {
            bits: unknown.bits(),
        });
    }
    Ok(note.format)
}

fn read_hooks(elf: &PayloadElf<'_>, layout: &Layout) -> Result<Vec<Hook>, LoadError> {
    let mut hooks = Vec::new();
    let text = layout.region(RegionKind::Text);
    for point in HookPoint::ALL {
        let Some(i) = elf.find(point.section()) else {
            continue;
        };
        let bytes = loaded_bytes(elf, layout, i).unwrap_or(&[]);
        if bytes.len() % 8 != 0 {
            return Err(elf.section_err(
                i,
                SectionProblem::Contents("size is not a multiple of 8 (an array of u64 pointers)"),
            ));
        }
        for (index, word) in bytes.chunks_exact(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let addr = Addr(u64::from_le_bytes(w));
            if !text.is_some_and(|t| t.contains(addr, 1)) {
                return Err(elf.section_err(
                    i,
                    SectionProblem::Contents("a hook pointer is not inside the payload's text"),
                ));
            }
            hooks.push(Hook { point, index, addr });
        }
    }
    Ok(hooks)
}

fn read_vendor(
    elf: &PayloadElf<'_>,
    opts: &LoadOptions,
    record_count: usize,
    warnings: &mut Vec<LoadWarning>,
) -> Result<Vec<VendorEntry>, LoadError> {
    let Some(i) = elf.find(sections::VENDOR) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in VendorEntries::new(elf.data(i)) {
        let (offset, e) = e.map_err(|e| LoadError::Vendor(VendorProblem::Malformed(e)))?;
        let record = match e.target {
            VendorTarget::Record(r) => {
                if r.0 as usize >= record_count {
                    return Err(LoadError::Vendor(VendorProblem::NoSuchRecord {
                        offset,
                        record: r.0,
                        count: record_count,
                    }));
                }
                Some(r)
            }
            VendorTarget::Payload => None,
        };
        let known = opts.known_vendor_entries.contains(&(e.vendor.0, e.kind));
        if !known {
            if e.critical {
                return Err(LoadError::Vendor(VendorProblem::UnknownCritical {
                    offset,
                    vendor: e.vendor.0,
                    kind: e.kind,
                }));
            }
            warnings.push(LoadWarning::UnknownVendorEntry {
                offset,
                vendor: e.vendor.0,
                kind: e.kind,
            });
        }
        out.push(VendorEntry {
            offset,
            vendor: e.vendor.0,
            kind: e.kind,
            critical: e.critical,
            record,
            data: e.data.to_vec(),
            known,
        });
    }
    Ok(out)
}
