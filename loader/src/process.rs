//! Live patching of the running process (Linux x86-64, feature `std`).
//!
//! The process plays the hypervisor: its own executable's `.symtab` (read
//! from `/proc/self/exe`, shifted by the load bias) is the symbol table,
//! payload regions are anonymous mappings placed within ±1 GiB of the
//! executable's text (so `jmp rel32` and PC32 relocations reach), and code
//! is written through `mprotect`.
//!
//! Contract (what a hypervisor's rendezvous would guarantee): while
//! [`Target::quiesce`] runs, no other thread may execute the bytes being
//! patched. This target serialises patchers with a process-wide lock but
//! does not stop other threads; the caller arranges that. x86 keeps
//! instruction fetch coherent with stores on the same core, so the
//! instruction-cache flush is a no-op here.
//!
//! W^X: payload text is mapped read+execute, read-only data read-only,
//! data read+write. A code page being patched is read+write+execute only
//! for the duration of the copy, then read+execute again.

use std::string::ToString;
use std::sync::Mutex;
use std::vec::Vec;

use crate::engine::{CodeWriter, HookOutcome, Target};
use crate::exe::{self, Executable, Mapping};
use crate::payload::{Hook, Region};
use crate::symtab::SymbolTable;
use crate::{Addr, Allocator, Arch, RegionKind, Symbol, SymbolSource, TargetError};

/// Serialises every patcher of this process.
static PATCH_LOCK: Mutex<()> = Mutex::new(());

const PAGE: u64 = 4096;
/// How far from the executable's text payload regions may be placed.
const REACH: u64 = 1 << 30;

/// The running process as a patch target.
#[derive(Debug)]
pub struct ProcessTarget {
    symbols: SymbolTable,
    /// Executable segments of the executable, at run-time addresses.
    text: Vec<(u64, u64)>,
    /// Every loaded segment of the executable (readable).
    loaded: Vec<(u64, u64)>,
    maps: Vec<Mapping>,
    build_id: Option<Vec<u8>>,
}

fn err(what: &str) -> TargetError {
    TargetError::Other(what.to_string())
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn page_up(a: u64) -> u64 {
    a.saturating_add(PAGE - 1) & !(PAGE - 1)
}

impl ProcessTarget {
    /// Reads the executable's symbols and segments.
    pub fn new() -> Result<Self, TargetError> {
        let bytes =
            std::fs::read("/proc/self/exe").map_err(|e| TargetError::Other(e.to_string()))?;
        // SAFETY: getauxval only reads the auxiliary vector the kernel gave
        // this process; AT_PHDR is always present for a dynamically loaded
        // or static ELF executable on Linux.
        let at_phdr = unsafe { libc::getauxval(libc::AT_PHDR) };
        let exe = Executable::parse(&bytes, at_phdr).map_err(err)?;
        Ok(ProcessTarget {
            symbols: exe.symbols,
            text: exe.text,
            loaded: exe.loaded,
            maps: Vec::new(),
            build_id: exe.build_id,
        })
    }

    fn in_ranges<'r>(
        ranges: impl IntoIterator<Item = &'r (u64, u64)>,
        addr: u64,
        len: u64,
    ) -> bool {
        let end = addr.saturating_add(len);
        ranges.into_iter().any(|&(lo, hi)| addr >= lo && end <= hi)
    }

    /// Whether `[addr, addr+len)` lies in one of this target's mappings of
    /// the given kinds. Allocation-free: `write_code` calls it inside the
    /// critical section.
    fn in_maps(&self, kinds: &[RegionKind], addr: u64, len: u64) -> bool {
        exe::in_maps(&self.maps, kinds, addr, len)
    }

    /// Whether `[addr, addr+len)` is code this target may rewrite.
    fn writable_code(&self, addr: u64, len: u64) -> bool {
        Self::in_ranges(&self.text, addr, len) || self.in_maps(&[RegionKind::Text], addr, len)
    }

    fn mprotect(addr: u64, len: u64, prot: i32) -> Result<(), TargetError> {
        let start = page_down(addr);
        let end = page_up(addr.saturating_add(len));
        // SAFETY: the range is page-aligned and lies in the executable's own
        // segments or in a mapping this target created; changing protection
        // does not invalidate any Rust reference (no reference to code or to
        // payload regions is ever held).
        let rc =
            unsafe { libc::mprotect(start as *mut libc::c_void, (end - start) as usize, prot) };
        if rc != 0 {
            return Err(TargetError::Other(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        Ok(())
    }
}

impl SymbolSource for ProcessTarget {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.symbols.lookup(name)
    }

    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        self.symbols.lookup_local(name, pos)
    }
}

impl Allocator for ProcessTarget {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let len = page_up(size.max(1));
        let align = align.max(PAGE);
        let (lo, hi) = self
            .text
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), &(a, b)| (lo.min(a), hi.max(b)));
        // Try hints just past the text, then just before it, 16 MiB apart.
        let step = 16u64 << 20;
        let above = (1..64).map(|k| hi.saturating_add(k * step));
        let below = (1..64).filter_map(|k| lo.checked_sub(k * step + len));
        for hint in above.chain(below) {
            let hint = hint / align * align;
            let reach_ok = hint.saturating_add(len) <= lo.saturating_add(REACH)
                && hint.saturating_add(REACH) >= hi;
            if !reach_ok {
                continue;
            }
            // SAFETY: an anonymous private mapping at a hint address with
            // MAP_FIXED_NOREPLACE never replaces an existing mapping; the
            // result is checked before use.
            let p = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            if p as u64 != hint {
                // An old kernel treating the flag as a hint: give it back.
                // SAFETY: `p` is the mapping just created, of `len` bytes.
                unsafe { libc::munmap(p, len as usize) };
                continue;
            }
            self.maps.push(Mapping {
                addr: hint,
                len,
                kind,
            });
            return Ok(Addr(hint));
        }
        Err(TargetError::OutOfMemory {
            kind: kind.name(),
            size,
        })
    }
}

impl CodeWriter for ProcessTarget {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        let len = bytes.len() as u64;
        if !self.writable_code(addr.0, len) {
            return Err(TargetError::BadAddress(addr));
        }
        let rx = libc::PROT_READ | libc::PROT_EXEC;
        Self::mprotect(addr.0, len, rx | libc::PROT_WRITE)?;
        // SAFETY: the destination lies in the executable's text or a payload
        // text mapping (checked above), was just made writable, and no Rust
        // reference points into code.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), addr.0 as *mut u8, bytes.len()) };
        Self::mprotect(addr.0, len, rx)
    }

    fn flush_icache(&mut self, _addr: Addr, _len: usize) {
        // x86-64 keeps instruction fetch coherent with stores (see module doc).
    }
}

impl Target for ProcessTarget {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        let m = *self
            .maps
            .iter()
            .find(|m| m.addr == region.addr.0 && region.bytes.len() as u64 <= m.len)
            .ok_or(TargetError::BadAddress(region.addr))?;
        Self::mprotect(m.addr, m.len, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: the mapping was created by `allocate` with at least
        // `region.bytes.len()` bytes and is writable now.
        unsafe {
            core::ptr::copy_nonoverlapping(
                region.bytes.as_ptr(),
                m.addr as *mut u8,
                region.bytes.len(),
            )
        };
        let prot = match m.kind {
            RegionKind::Text => libc::PROT_READ | libc::PROT_EXEC,
            RegionKind::ReadOnly => libc::PROT_READ,
            RegionKind::Data => libc::PROT_READ | libc::PROT_WRITE,
        };
        Self::mprotect(m.addr, m.len, prot)
    }

    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        let pos = self
            .maps
            .iter()
            .position(|m| m.addr == region.addr.0)
            .ok_or(TargetError::BadAddress(region.addr))?;
        let m = self.maps.remove(pos);
        // SAFETY: the mapping was created by `allocate`; the engine unmaps a
        // region only when its payload is not applied, so no patch site
        // jumps into it.
        unsafe { libc::munmap(m.addr as *mut libc::c_void, m.len as usize) };
        Ok(())
    }

    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let len = buf.len() as u64;
        let readable = Self::in_ranges(&self.loaded, addr.0, len)
            || self.in_maps(
                &[RegionKind::Text, RegionKind::ReadOnly, RegionKind::Data],
                addr.0,
                len,
            );
        if !readable {
            return Err(TargetError::BadAddress(addr));
        }
        // SAFETY: the range lies in a loaded segment of the executable or in
        // a mapping of this target, all of which are readable.
        unsafe { core::ptr::copy_nonoverlapping(addr.0 as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn quiesce(
        &mut self,
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        let _guard = PATCH_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        critical(self)
    }

    fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError> {
        if !self.in_maps(&[RegionKind::Text], hook.addr.0, 1) {
            return Err(TargetError::BadAddress(hook.addr));
        }
        // SAFETY: the address lies in a payload text mapping (checked above)
        // and the loader checked it against the payload's text; the format
        // declares hooks as `int fn(void)` with the C ABI. Running payload
        // code is what live patching is: the payload is trusted once loaded.
        let f: extern "C" fn() -> i32 = unsafe { core::mem::transmute(hook.addr.0 as usize) };
        Ok(HookOutcome::Returned(f()))
    }
}
