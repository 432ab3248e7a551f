//! Linking: symbol resolution (payload definitions, then the target, then
//! loaded payloads) and the relocation driver, which hands each resolved
//! relocation to the per-architecture arithmetic in `reloc`.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use goblin::elf::section_header as sh;
use goblin::elf::sym;
use xsplice_abi::arch::ArchTable;
use xsplice_abi::layout::{FieldType, Layout as EntryLayout};
use xsplice_abi::sections::{self, HookPoint};
use xsplice_abi::{Addr, RecordVersion};

/// Size of one hook pointer (a relocated u64).
const HOOK_POINTER: u64 = core::mem::size_of::<u64>() as u64;

use crate::elf::PayloadElf;
use crate::error::{LoadError, RelocIndex, RelocProblem, SectionIndex, SymbolIndex, SymbolProblem};
use crate::layout::{reloc_target, Layout, GOT_SYMBOL};
use crate::payload::Export;
use crate::reloc;
use crate::{Arch, RegionKind, Symbol, SymbolSource};

/// Resolves every symbol to an address (`None` for symbols in unloaded
/// sections, which only matter if a loaded section refers to them).
pub(crate) fn resolve_symbols(
    elf: &PayloadElf<'_>,
    layout: &Layout,
    symbols: &dyn SymbolSource,
) -> Result<(Vec<Option<u64>>, Vec<Export>), LoadError> {
    let count = elf.symbol_count();
    let mut addrs = Vec::with_capacity(count);
    let mut exports: Vec<Export> = Vec::new();
    let mut globals = BTreeMap::new();
    let referenced = referenced_symbols(elf, count);
    for i in 0..count {
        let Some(s) = elf.symbol(i) else {
            addrs.push(None);
            continue;
        };
        let name = elf.symbol_name(i, &s)?;
        let err = |problem| LoadError::Symbol {
            index: SymbolIndex(i),
            name: name.to_string(),
            problem,
        };
        // goblin widened the 16-bit field; anything wider is out of range.
        let shndx = u32::try_from(s.st_shndx).unwrap_or(u32::MAX);
        let addr = if i == 0 {
            Some(0)
        } else if s.st_type() == sym::STT_SECTION
            && (shndx == sh::SHN_UNDEF || shndx >= sh::SHN_LORESERVE)
        {
            // A fuzzing find: `upgrade` wrote such a symbol back as
            // absolute, which changed what the relocation against it meant.
            return Err(err(SymbolProblem::SectionSymbolWithoutSection(
                u16::try_from(s.st_shndx).unwrap_or(u16::MAX),
            )));
        } else if shndx == sh::SHN_UNDEF {
            if name == GOT_SYMBOL {
                layout.got_addr()
            } else if let Some(found) = symbols.lookup(name) {
                Some(found.addr.0)
            } else if let Some(entry) = symbols.lookup_import(name) {
                Some(entry.addr.0)
            } else if s.st_bind() == sym::STB_WEAK {
                Some(0)
            } else if referenced.get(i).copied().unwrap_or(false) {
                return Err(err(SymbolProblem::Unresolved));
            } else {
                None
            }
        } else if shndx == sh::SHN_ABS {
            Some(s.st_value)
        } else if shndx == sh::SHN_COMMON {
            return Err(err(SymbolProblem::Common));
        } else if shndx >= sh::SHN_LORESERVE || s.st_shndx >= elf.sections.len() {
            let shndx = u16::try_from(s.st_shndx).unwrap_or(u16::MAX);
            return Err(err(SymbolProblem::Section(shndx)));
        } else {
            // A symbol may mark its section's end, not lie past it.
            let size = elf.sections.get(s.st_shndx).map_or(0, |h| h.sh_size);
            if s.st_value > size {
                return Err(err(SymbolProblem::PastSection {
                    value: s.st_value,
                    size,
                }));
            }
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

/// Which symbols a relocation of a loaded section names, in one pass over
/// the relocations (a per-symbol scan would be quadratic in the input).
fn referenced_symbols(elf: &PayloadElf<'_>, count: usize) -> Vec<bool> {
    let mut used = vec![false; count];
    for rs in 1..elf.sections.len() {
        if !reloc_target(elf, rs).is_some_and(|t| elf.is_alloc(t)) {
            continue;
        }
        for r in elf.relocations(rs).iter().flat_map(|r| r.iter()) {
            if let Some(u) = used.get_mut(r.r_sym) {
                *u = true;
            }
        }
    }
    used
}

/// Applies every relocation of every loaded section.
pub(crate) fn relocate(
    elf: &PayloadElf<'_>,
    layout: &mut Layout,
    addrs: &[Option<u64>],
    record_shape: (RecordVersion, u64),
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
        let rule = FormatRule::of(section_name, record_shape);
        for (index, r) in relocs.iter().enumerate() {
            let symbol_name = || {
                elf.symbol(r.r_sym)
                    .and_then(|s| elf.symbol_name(r.r_sym, &s).ok())
                    .unwrap_or("?")
                    .to_string()
            };
            let err = |problem| LoadError::Relocation {
                section: section_name.to_string(),
                index: RelocIndex(index),
                rtype: reloc::type_name(elf.arch, r.r_type),
                symbol: symbol_name(),
                problem,
            };
            let s = match addrs.get(r.r_sym) {
                Some(Some(a)) => *a,
                Some(None) => {
                    return Err(LoadError::Symbol {
                        index: SymbolIndex(r.r_sym),
                        name: symbol_name(),
                        problem: SymbolProblem::NotLoaded,
                    })
                }
                None => return Err(err(RelocProblem::SymbolIndex(r.r_sym))),
            };
            if !rule.allows(elf.arch, r.r_type, r.r_offset) {
                return Err(err(RelocProblem::FormatField));
            }
            let home = rule
                .is_pointer_table()
                .then(|| Home::of(elf, layout, r.r_sym))
                .flatten();
            let stub = layout.stub_addr(rs, index);
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
            if let Some(home) = home {
                home.holds(s.wrapping_add_signed(a)).map_err(err)?;
            }
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
                stub,
                pic: position_independent,
            };
            let applied = reloc::apply(elf.arch, bytes, &input).map_err(err)?;
            let value = applied.value;
            if let (Some(code), Some(off)) = (applied.stub, layout.stubs.get(&(rs, index))) {
                write_stub(layout, *off, &code).map_err(err)?;
            }
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
                let at = off
                    .checked_add(slot)
                    .and_then(|at| usize::try_from(at).ok())
                    .unwrap_or(usize::MAX);
                if let Some(dst) = ro.bytes.get_mut(at..at.saturating_add(8)) {
                    dst.copy_from_slice(&value.to_le_bytes());
                }
            }
        }
    }
    Ok(())
}

/// The section a symbol of the payload is defined in, as laid out.
///
/// A pointer field of a record or hook table relocated against a symbol of
/// the payload must land inside that symbol's section: symbol + addend
/// reaching into a neighbouring section depends on how the loader lays
/// sections out, which differs between record versions (`upgrade` moves
/// them) and between loaders. gcc never emits one (a string is its
/// section's symbol plus the offset inside it). Symbols the payload does
/// not define (resolved against the target) are not concerned.
#[derive(Debug, Clone, Copy)]
struct Home {
    section: usize,
    base: u64,
    size: u64,
}

impl Home {
    fn of(elf: &PayloadElf<'_>, layout: &Layout, symbol: usize) -> Option<Home> {
        let section = elf
            .symbol(symbol)
            .map(|sym| sym.st_shndx)
            .filter(|&i| i != 0 && i < sh::SHN_LORESERVE as usize)?;
        Some(Home {
            section,
            base: layout.addr_of(section)?,
            size: elf.sections.get(section)?.sh_size,
        })
    }

    fn holds(self, value: u64) -> Result<(), RelocProblem> {
        if value
            .checked_sub(self.base)
            .is_some_and(|off| off < self.size)
        {
            Ok(())
        } else {
            Err(RelocProblem::PointerLeavesSection {
                section: SectionIndex(self.section),
                value,
            })
        }
    }
}

/// Writes a stub's code at `off` in the text region.
fn write_stub(layout: &mut Layout, off: u64, code: &[u8]) -> Result<(), RelocProblem> {
    let width = code.len();
    let text = layout
        .regions
        .iter_mut()
        .find(|g| g.kind == RegionKind::Text)
        .ok_or(RelocProblem::Place { offset: off, width })?;
    let dst = reloc::place_mut(&mut text.bytes, off, width)?;
    dst.copy_from_slice(code);
    Ok(())
}

/// What relocations the format's own sections may carry: their fields are
/// read from the relocated bytes, so only the pointer fields may be
/// relocated, and only by a plain 64-bit absolute relocation.
#[derive(Debug, Clone, Copy)]
enum FormatRule {
    /// Any relocation (code and data of the payload).
    Any,
    /// `.xsplice.funcs` of this record version and size: ABS64 at the
    /// pointer fields of the version's layout (`new_addr`, `old_addr`,
    /// `name`), taken from the abi's layout table.
    Records(RecordVersion, u64),
    /// `.xsplice.hooks.*`: ABS64 at each 8-byte pointer.
    Hooks,
    /// Architecture-specific tables: PC-relative 32-bit relocations at the
    /// `rel32` fields of the entry layout (from the abi's layout table),
    /// nothing else.
    Rel32(&'static EntryLayout),
    /// Notes and vendor entries: no relocation at all.
    None,
}

impl FormatRule {
    fn of(section: &str, (version, size): (RecordVersion, u64)) -> FormatRule {
        if section == sections::FUNCS {
            FormatRule::Records(version, size.max(1))
        } else if HookPoint::from_section(section).is_some() {
            FormatRule::Hooks
        } else if let Some(t) = ArchTable::from_section(section) {
            FormatRule::Rel32(t.layout())
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

    /// Whether the section's relocated fields are pointers the loader reads
    /// (records and hooks), as opposed to code and data of the payload.
    fn is_pointer_table(self) -> bool {
        matches!(self, FormatRule::Records(..) | FormatRule::Hooks)
    }

    fn allows(self, arch: Arch, rtype: u32, offset: u64) -> bool {
        let abs64 = rtype == crate::elf::abs64(arch);
        let rel32 = rtype == crate::elf::rel32(arch);
        match self {
            FormatRule::Any => true,
            FormatRule::Records(version, size) => {
                let within = offset.checked_rem(size).unwrap_or(u64::MAX);
                abs64
                    && xsplice_abi::layout::record(version)
                        .fields
                        .iter()
                        .any(|f| f.ty == FieldType::Pointer && f.offset as u64 == within)
            }
            FormatRule::Hooks => abs64 && offset % HOOK_POINTER == 0,
            FormatRule::Rel32(layout) => {
                let within = offset.checked_rem(layout.size as u64).unwrap_or(u64::MAX);
                rel32
                    && layout
                        .fields
                        .iter()
                        .any(|f| f.ty == FieldType::Rel32 && f.offset as u64 == within)
            }
            FormatRule::None => false,
        }
    }
}
