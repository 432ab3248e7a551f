//! A running executable as a live target sees it (feature `std`, Linux
//! x86-64 and AArch64): its symbols, its segments and its build-id, at run-time
//! addresses. Shared by the in-process target (`/proc/self/exe`) and the
//! ptrace target (`/proc/PID/exe`), which differ only in where the bytes
//! and the program-header address come from. Also the small helpers both
//! targets share: wait deadlines and address alignment.

use std::time::{Duration, Instant};
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

/// `from + timeout`, the deadline of a wait. A timeout past what the
/// monotonic clock can count (`Duration::MAX`, say) means "wait as long as
/// it takes": it becomes a century rather than a panic, and in the
/// impossible case that the clock cannot count a century either, the
/// deadline is `from` (the wait gives up at once, reporting a timeout).
pub(crate) fn deadline(from: Instant, timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    from.checked_add(timeout)
        .or_else(|| from.checked_add(CENTURY))
        .unwrap_or(from)
}

/// `addr` rounded down to a multiple of `align`; `addr` itself for an
/// `align` of 0.
pub(crate) fn align_down(addr: u64, align: u64) -> u64 {
    // The remainder is at most `addr`: the subtraction cannot saturate.
    addr.checked_rem(align)
        .map_or(addr, |r| addr.saturating_sub(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_of_a_timeout_past_the_clock_is_far_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_millis(5)),
            now + Duration::from_millis(5)
        );
        let forever = deadline(now, Duration::MAX);
        assert!(forever >= now + Duration::from_secs(365 * 24 * 60 * 60));
    }

    #[test]
    fn align_down_rounds_to_the_multiple_below() {
        assert_eq!(align_down(0x1234_5678, 0x1000), 0x1234_5000);
        assert_eq!(align_down(0x1234_5000, 0x1000), 0x1234_5000);
        assert_eq!(align_down(0x1234_5678, 3 << 12), 0x1234_5000);
        assert_eq!(align_down(0x1234_9abc, 3 << 12), 0x1234_8000);
        assert_eq!(align_down(u64::MAX, 1 << 12), 0xffff_ffff_ffff_f000);
        assert_eq!(align_down(77, 0), 77);
    }
}
