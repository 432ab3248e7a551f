//! Section layout: every allocated section is placed, with its alignment,
//! in one of three regions (text RX, read-only R, data RW), the GOT is
//! reserved at the end of the read-only region, the stubs (AArch64 veneers
//! and out-of-line GOT relaxations) at the end of the text region, and the
//! target's allocator
//! is asked for each region. The regions' bytes start as the file's
//! section contents (zeros for NOBITS) and are relocated in place.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use goblin::elf::section_header as sh;

use crate::elf::PayloadElf;
use crate::error::{LoadError, SectionProblem};
use crate::payload::Region;
use crate::reloc::{self, GotUse};
use crate::{Allocator, LoadOptions, RegionKind};

/// Where a section was placed within its region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub(crate) kind: RegionKind,
    pub(crate) offset: u64,
}

fn align_up(v: u64, align: u64) -> Option<u64> {
    v.checked_next_multiple_of(align.max(1))
}

/// The region a loaded section goes to.
pub(crate) fn region_of(name: &str, flags: u64) -> Option<RegionKind> {
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

pub(crate) struct Layout {
    pub(crate) placements: Vec<Option<Placement>>,
    pub(crate) regions: Vec<Region>,
    /// Offset of the GOT in the read-only region, and slot per symbol.
    pub(crate) got: Option<(u64, BTreeMap<usize, u64>)>,
    /// Offset in the text region of the stub reserved for a relocation,
    /// keyed by (relocation section, index within it).
    pub(crate) stubs: BTreeMap<(usize, usize), u64>,
}

impl Layout {
    pub(crate) fn region(&self, kind: RegionKind) -> Option<&Region> {
        self.regions.iter().find(|r| r.kind == kind)
    }

    pub(crate) fn addr_of(&self, section: usize) -> Option<u64> {
        let p = (*self.placements.get(section)?)?;
        Some(self.region(p.kind)?.addr.0.wrapping_add(p.offset))
    }

    /// Address of the stub reserved for relocation `index` of section `rs`.
    pub(crate) fn stub_addr(&self, rs: usize, index: usize) -> Option<u64> {
        let off = self.stubs.get(&(rs, index))?;
        Some(self.region(RegionKind::Text)?.addr.0.wrapping_add(*off))
    }

    pub(crate) fn got_addr(&self) -> Option<u64> {
        let (off, _) = self.got.as_ref()?;
        Some(self.region(RegionKind::ReadOnly)?.addr.0.wrapping_add(*off))
    }
}

/// Plans every allocated section into the three regions, reserves the GOT,
/// and asks the allocator for each region.
pub(crate) fn lay_out(
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
    let mut stubs = Vec::new();
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
        for (index, r) in relocs.iter().enumerate() {
            let undefined = elf
                .symbol(r.r_sym)
                .is_some_and(|s| s.st_shndx == sh::SHN_UNDEF as usize);
            if reloc::wants_stub(elf.arch, r.r_type, undefined) {
                stubs.push((rs, index));
            }
            match reloc::got_use(elf.arch, r.r_type) {
                GotUse::None => {}
                GotUse::Base => needs_got = true,
                GotUse::Slot => {
                    needs_got = true;
                    // Slot 0 is the GOT's reserved first word. Sizes
                    // saturate here: an impossible size fails allocation.
                    let n = slots.len() as u64;
                    slots
                        .entry(r.r_sym)
                        .or_insert(n.saturating_add(1).saturating_mul(8));
                }
            }
        }
    }
    needs_got |= references_got_symbol(elf);
    let ro = RegionKind::ReadOnly as usize;
    let got = if needs_got {
        let off = align_up(sizes.get(ro).copied().unwrap_or(0), 8).unwrap_or(u64::MAX);
        let len = (slots.len() as u64).saturating_add(1).saturating_mul(8);
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

    // Stubs: one per relocation that may need one, after the text.
    let tx = RegionKind::Text as usize;
    let mut stub_at = BTreeMap::new();
    if !stubs.is_empty() {
        let mut off = align_up(sizes.get(tx).copied().unwrap_or(0), 4).unwrap_or(u64::MAX);
        for key in stubs {
            stub_at.insert(key, off);
            off = off.saturating_add(reloc::STUB_SIZE);
        }
        if let Some(s) = sizes.get_mut(tx) {
            *s = off;
        }
        if let Some(a) = aligns.get_mut(tx) {
            *a = (*a).max(4);
        }
    }

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
        stubs: stub_at,
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

pub(crate) const GOT_SYMBOL: &str = "_GLOBAL_OFFSET_TABLE_";

/// The section a relocation section applies to, if `rs` is one.
pub(crate) fn reloc_target(elf: &PayloadElf<'_>, rs: usize) -> Option<usize> {
    let s = elf.sections.get(rs)?;
    (s.sh_type == sh::SHT_RELA || s.sh_type == sh::SHT_REL).then_some(s.sh_info as usize)
}

/// The relocated bytes of a loaded section.
pub(crate) fn loaded_bytes<'l>(
    elf: &PayloadElf<'_>,
    layout: &'l Layout,
    index: usize,
) -> Option<&'l [u8]> {
    let p = (*layout.placements.get(index)?)?;
    let size = usize::try_from(elf.sections.get(index)?.sh_size).ok()?;
    let start = usize::try_from(p.offset).ok()?;
    layout
        .region(p.kind)?
        .bytes
        .get(start..start.checked_add(size)?)
}
