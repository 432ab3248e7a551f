//! A running executable as a live target sees it (feature `std`, Linux
//! x86-64 and AArch64): its symbols, its segments and its build-id, at run-time
//! addresses. Shared by the in-process target (`/proc/self/exe`) and the
//! ptrace target (`/proc/PID/exe`), which differ only in where the bytes
//! and the program-header address come from.

use std::vec::Vec;

use goblin::elf::program_header as ph;
use goblin::elf::Elf;

use crate::symtab::SymbolTable;
use crate::RegionKind;

/// What a live target needs to know about its executable.
#[derive(Debug, Clone)]
pub(crate) struct Executable {
    /// The `.symtab` (or `.dynsym`), shifted by the load bias.
    pub symbols: SymbolTable,
    /// Executable segments, `[start, end)` at run-time addresses.
    pub text: Vec<(u64, u64)>,
    /// Every loaded segment, `[start, end)` at run-time addresses.
    pub loaded: Vec<(u64, u64)>,
    /// The GNU build-id, if the executable has one.
    pub build_id: Option<Vec<u8>>,
}

impl Executable {
    /// Reads `bytes`, the executable file of a process whose auxiliary
    /// vector gives `at_phdr` (`AT_PHDR`, the run-time address of the
    /// program headers): the load bias is `at_phdr` minus their link-time
    /// address, which holds for PIE and non-PIE alike.
    pub(crate) fn parse(bytes: &[u8], at_phdr: u64) -> Result<Self, &'static str> {
        let elf = Elf::parse(bytes).map_err(|_| "the executable is not a readable ELF file")?;
        let phdr_vaddr = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == ph::PT_PHDR)
            .map(|p| p.p_vaddr)
            .or_else(|| {
                elf.program_headers
                    .iter()
                    .find(|p| p.p_type == ph::PT_LOAD && p.p_offset == 0)
                    .map(|p| p.p_vaddr.wrapping_add(elf.header.e_phoff))
            })
            .ok_or("the executable has no PT_PHDR nor a PT_LOAD at offset 0")?;
        let bias = at_phdr.wrapping_sub(phdr_vaddr);
        let segment = |p: &ph::ProgramHeader| {
            let start = p.p_vaddr.wrapping_add(bias);
            (start, start.saturating_add(p.p_memsz))
        };
        let loads = || {
            elf.program_headers
                .iter()
                .filter(|p| p.p_type == ph::PT_LOAD)
        };
        let text: Vec<_> = loads()
            .filter(|p| p.p_flags & ph::PF_X != 0)
            .map(segment)
            .collect();
        let loaded = loads().map(segment).collect();
        if text.is_empty() {
            return Err("the executable has no executable segment");
        }
        let build_id = elf.section_headers.iter().find_map(|s| {
            (elf.shdr_strtab.get_at(s.sh_name) == Some(xsplice_abi::sections::BUILD_ID)).then(
                || {
                    let start = usize::try_from(s.sh_offset).ok()?;
                    let data =
                        bytes.get(start..start.checked_add(usize::try_from(s.sh_size).ok()?)?)?;
                    crate::elf::note::build_id(data).ok().map(<[u8]>::to_vec)
                },
            )?
        });
        let symbols = SymbolTable::from_elf(&elf, bytes, bias);
        if symbols.is_empty() {
            return Err("the executable has no .symtab (it must not be stripped)");
        }
        Ok(Executable {
            symbols,
            text,
            loaded,
            build_id,
        })
    }

    /// Whether `[addr, addr+len)` lies inside one of `ranges`.
    pub(crate) fn within(ranges: &[(u64, u64)], addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        ranges.iter().any(|&(lo, hi)| addr >= lo && end <= hi)
    }
}

/// The lowest start and highest end of `ranges`.
pub(crate) fn span(ranges: &[(u64, u64)]) -> (u64, u64) {
    ranges
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), &(a, b)| (lo.min(a), hi.max(b)))
}

/// A payload region a live target created: `[addr, addr+len)` of `kind`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mapping {
    /// Start (page-aligned).
    pub addr: u64,
    /// Length (whole pages).
    pub len: u64,
    /// What it holds, hence its permissions.
    pub kind: RegionKind,
}

/// Whether `[addr, addr+len)` lies in one of `maps` of the given kinds.
/// Allocation-free: the in-process target calls it inside the critical
/// section.
pub(crate) fn in_maps(maps: &[Mapping], kinds: &[RegionKind], addr: u64, len: u64) -> bool {
    let end = addr.saturating_add(len);
    maps.iter()
        .filter(|m| kinds.contains(&m.kind))
        .any(|m| addr >= m.addr && end <= m.addr.saturating_add(m.len))
}
