//! Live patching of the running process (Linux x86-64 and AArch64,
//! feature `std`).
//!
//! The process plays the hypervisor: its own executable's `.symtab` (read
//! from `/proc/self/exe`, shifted by the load bias) is the symbol table,
//! payload regions are anonymous mappings placed within ±1 GiB of the
//! executable's text, nearest first (so `jmp rel32`, PC32 relocations and
//! AArch64's `adrp` reach, and an AArch64 `b` in all but huge
//! executables), and code is written with every other thread stopped.
//!
//! The steps below are the same on both machines; what differs (where a
//! signal frame keeps the PC, how a parked thread serialises, how code is
//! stored and made visible to instruction fetch) lives in one small module
//! per machine, `x86_64.rs` and `aarch64.rs` (the latter's doc records the
//! AArch64 decisions: 32-bit stores, no `/proc/self/mem`, `dc cvau`/`ic
//! ivau` maintenance, `isb`). Under qemu-user the emulator's own helper
//! thread is left out of the rendezvous (`qemu.rs`). The ptrace target
//! (`crate::ptrace`) stays x86-64 only.
//!
//! # The stop-the-world step
//!
//! [`Target::quiesce`] is a rendezvous, as Xen's is of CPUs:
//!
//! 1. **Stop.** Every other thread of the process (`/proc/self/task`) gets
//!    a real-time signal ([`rendezvous_signal`]) with `tgkill`; its handler
//!    reports the interrupted program counter and sleeps on a futex. The
//!    patcher waits until every thread has arrived, at most
//!    [`RendezvousOptions::timeout`] (default 30 ms, Xen's default
//!    livepatch timeout), then lists the threads again until no new one
//!    appeared (a thread created before its creator stopped). A thread that
//!    does not arrive — it blocks the signal, or never gets a CPU — gives
//!    [`TargetError::RendezvousTimeout`] naming it, and nothing is written.
//! 2. **Check.** No stopped thread may be inside the bytes being written: a
//!    PC in the interior of a site, `(site, site + len)`, would resume in
//!    the middle of the new bytes. A PC *at* the site's first byte is an
//!    instruction boundary in the old and the new bytes alike: the thread
//!    has not begun that instruction and fetches the new one (step 4).
//!    With [`SitePolicy::Function`], a PC anywhere in the function the
//!    action retires (the old function on apply, the replacement on
//!    revert) also counts. Either way the threads are released, the
//!    patcher sleeps [`RendezvousOptions::backoff`] × attempt and tries
//!    again, at most [`RendezvousOptions::retries`] times, then refuses
//!    with [`TargetError::ThreadInSite`] (thread, PC, record): nothing was
//!    written.
//! 3. **Write.** Only at the sites announced for the action (any other
//!    address is refused). No stopped thread executes those bytes, so the
//!    order and width of the stores do not matter: no torn instruction
//!    can be fetched, whatever the copy does. The bytes go through
//!    `/proc/self/mem` (the kernel writes the page through its own
//!    mapping) or, where the kernel refuses that, through the page made
//!    writable for the write (see W^X below) with one volatile store per
//!    byte (per aligned 32-bit instruction word on AArch64), so no byte
//!    outside the site is ever rewritten.
//! 4. **Serialise and release.** The Intel SDM, vol. 3A §8.1.3 "Handling
//!    Self- and Cross-Modifying Code" (§9.1.3 in editions since 2023; the
//!    AMD APM vol. 2 §7.6.1 says the same), asks the modifying processor to
//!    write the code and then set a flag, and every executing processor to
//!    wait for the flag and execute a serialising instruction before it
//!    runs the new code. The release (a store and a futex wake) is the
//!    flag; each parked thread, once woken, executes `iretq` to itself
//!    (serialising: §8.3 "Serializing Instructions") before it leaves the
//!    handler. On AArch64 the writer cleans and invalidates the caches
//!    over the written bytes (Arm ARM B2.2.5, B2.4.4) and each parked
//!    thread executes `isb` instead. Where the kernel offers it, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)`
//!    runs before the release too, so every CPU running this process
//!    serialises before its next return to user space. On the patcher's
//!    own core the write is self-modifying code, which the processor
//!    detects by physical address whatever the linear address written
//!    (SDM vol. 3A §11.6 "Self-Modifying Code"), and the system call
//!    returns before any patched code runs.
//!
//! # What neither policy covers
//!
//! Only the top frame is checked. A thread whose *caller* is the old
//! function (a return address deeper in its stack) keeps running the old
//! code when it returns: after apply that is harmless (the old function's
//! bytes are intact past its first instruction), but after revert a thread
//! may still return into the payload's replacement, so its text must stay
//! mapped — see the `# Safety` of [`ProcessTarget::new`]. Threads that are
//! in the middle of the old function keep running old code until they next
//! call it: old and new code run side by side for a while.
//!
//! # Threads in system calls, and threads that block the signal
//!
//! The handler is installed with `SA_RESTART` and every blockable signal
//! masked while it runs. Interrupted system calls restart, except those
//! that Linux never restarts after a handler (signal(7): `nanosleep`,
//! `poll`, `epoll_wait`, `select`, timed semaphore and `io_getevents`
//! waits, ...), which return `EINTR` as with any signal: code that copes
//! with signals (Rust's `thread::sleep`, `read_exact`, ...) retries them. A thread that blocks the signal cannot be stopped:
//! the rendezvous times out, naming it, and writes nothing; its pending
//! signal is recognised as stale when it unblocks.
//!
//! # What is writable, and when (W^X)
//!
//! Payload text is mapped read+execute, read-only data read-only, data
//! read+write; the executable's text keeps its read+execute mapping. Code
//! is written through `/proc/self/mem`, a second, kernel-side path to the
//! same pages: no user mapping of code is ever writable, and no
//! protection changes (hence no TLB shootdown). Kernels can forbid those
//! writes (`proc_mem.force_override=never`, Linux 6.12 and later); the
//! target then, and after [`ProcessTarget::with_mprotect_writes`], makes
//! the page(s) of a site read+write+execute for that one write, while
//! every other thread is stopped, and read+execute again before they are
//! released. Execute cannot be dropped during that write: the page may
//! hold the patcher's own code. A second writable *mapping* of the
//! executable's text would need a file to map it from, and
//! `/proc/self/exe` is not writable. On AArch64 the target always writes
//! the second way, with 32-bit stores, and never opens `/proc/self/mem`
//! (`aarch64.rs` says why).
//!
//! Nothing in the rendezvous or the critical section allocates or takes a
//! lock: a stopped thread may hold the allocator's lock.

// The machine-specific bits (PC in a signal frame, serialisation, code
// stores, cache maintenance), one small module per machine; everything
// else is shared.
#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
mod cpu;
mod faults;
mod qemu;
mod rendezvous;

use core::time::Duration;
use std::sync::Mutex;
use std::vec::Vec;

use crate::arch_tables::{ArchTables, CpuFeatures};
use crate::engine::{CodeWriter, HookOutcome, PayloadId, Site, Target};
use crate::exe::{self, Executable, Mapping};
use crate::payload::{Hook, Region};
use crate::symtab::SymbolTable;
use crate::{Addr, Allocator, Arch, RegionKind, TargetError};
use xsplice_abi::arch::ArchTable;

pub use rendezvous::MAX_THREADS;

/// Serialises every patcher of this process.
static PATCH_LOCK: Mutex<()> = Mutex::new(());

const PAGE: u64 = 4096;
/// How far from the executable's text payload regions may be placed: half
/// of x86-64's `rel32` and well inside AArch64's `adrp` (±4 GiB), which
/// address the payload's data. Code nearer than 128 MiB is tried first
/// (AArch64 `b`); beyond, the long branch and veneers take over.
const REACH: u64 = 1 << 30;

/// `membarrier(2)` commands (linux/membarrier.h).
const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

/// The signal the rendezvous stops threads with (`SIGRTMIN + 7`). The
/// process must not use it for anything else; [`ProcessTarget::new`]
/// refuses with [`TargetError::SignalInUse`] when it already has a handler.
pub fn rendezvous_signal() -> i32 {
    rendezvous::signal()
}

/// Which stopped threads make the rendezvous back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SitePolicy {
    /// A thread inside the bytes being written (the interior of a site).
    /// The minimum for correctness, and the default.
    #[default]
    Bytes,
    /// Also a thread anywhere in a function the action retires (the old
    /// function on apply, the replacement on revert): the top-frame form of
    /// a consistency model. Deeper frames are not checked.
    Function,
}

/// How [`ProcessTarget`] stops the other threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RendezvousOptions {
    /// How long to wait for the threads to stop, per attempt (default
    /// 30 ms, Xen's default).
    pub timeout: Duration,
    /// How many times to try again while a thread is inside a site
    /// (default 8).
    pub retries: u32,
    /// Sleep before the n-th retry: n × this (default 50 µs).
    pub backoff: Duration,
    /// Which threads count as inside (default [`SitePolicy::Bytes`]).
    pub policy: SitePolicy,
}

impl Default for RendezvousOptions {
    fn default() -> Self {
        RendezvousOptions {
            timeout: Duration::from_millis(30),
            retries: 8,
            backoff: Duration::from_micros(50),
            policy: SitePolicy::Bytes,
        }
    }
}

/// What the rendezvous did so far (counters since the target was made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RendezvousStats {
    /// Rendezvous attempts (each stops every other thread once).
    pub rounds: u64,
    /// Attempts given up because a thread was inside a site.
    pub retries: u64,
    /// Actions refused: timeout, or a thread inside a site at every try.
    pub refusals: u64,
    /// Threads stopped by the last successful rendezvous.
    pub last_threads: usize,
    /// How long the other threads stayed stopped in the last successful
    /// action: from the first signal to the release.
    pub last_pause: Duration,
    /// The longest such pause.
    pub max_pause: Duration,
}

/// The running process as a patch target.
///
/// Every write happens inside [`Target::quiesce`], with every other thread
/// stopped and none inside the bytes written (see the module doc); the
/// [`CodeWriter`] of the target itself refuses writes outside it.
#[derive(Debug)]
pub struct ProcessTarget {
    symbols: SymbolTable,
    /// Executable segments of the executable, at run-time addresses.
    text: Vec<(u64, u64)>,
    /// Every loaded segment of the executable (readable).
    loaded: Vec<(u64, u64)>,
    maps: Vec<Mapping>,
    build_id: Option<Vec<u8>>,
    opts: RendezvousOptions,
    stats: RendezvousStats,
    /// `membarrier` SYNC_CORE is registered for this process.
    sync_core: bool,
    /// `/proc/self/mem`, opened for writing: code is written through it,
    /// so no page of code is ever writable. `None` where the kernel refuses
    /// (then pages are made writable only while the threads are stopped).
    mem: Option<std::fs::File>,
    /// This target's number among the process's targets: the key of its
    /// payloads' exception tables and bug frames in the fault handlers.
    serial: u64,
}

/// The next [`ProcessTarget::serial`].
static SERIAL: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn err(what: &'static str) -> TargetError {
    TargetError::Unsupported(what)
}

fn os(op: &'static str) -> TargetError {
    TargetError::Os {
        op,
        errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    }
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn page_up(a: u64) -> u64 {
    a.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// Calls the C function `int fn(void)` at `addr`: the one place where an
/// address becomes a function.
///
/// # Safety
///
/// `addr` must be the entry of a function with the C ABI and the signature
/// `int (void)`, in executable memory that stays mapped during the call,
/// and running it must be sound in this process (it may do anything its
/// code does).
unsafe fn call_c_int_fn(addr: u64) -> i32 {
    let entry = addr as *const ();
    // SAFETY: on x86-64 and AArch64 Linux a function pointer and a data
    // pointer have the same size and representation; the caller guarantees that a
    // function of this signature is there.
    let f = unsafe { core::mem::transmute::<*const (), extern "C" fn() -> i32>(entry) };
    f()
}

impl ProcessTarget {
    /// Reads the executable's symbols and segments, installs the
    /// rendezvous signal handler and registers for `membarrier` SYNC_CORE
    /// where the kernel has it.
    ///
    /// # Safety
    ///
    /// The target stops every other thread and checks their current
    /// instruction before it writes (module doc); what stays the caller's
    /// duty:
    ///
    /// - every payload loaded through it is trusted code built for this
    ///   very executable: its hooks and replacement functions run;
    /// - a thread may still be running, or hold a return address into, a
    ///   payload's replacement after the payload is reverted (only the top
    ///   frame is checked): the caller must not unload a reverted payload
    ///   while any thread may still execute its code;
    /// - nothing else in the process rewrites the patched code, or uses
    ///   [`rendezvous_signal`], or maps the executable's text other than
    ///   read+execute (the target puts it back to read+execute);
    /// - no task outside this thread group shares the address space while
    ///   an action runs (a `vfork` child that has not yet called `exec`,
    ///   `clone(CLONE_VM)` without `CLONE_THREAD`): the rendezvous stops
    ///   the threads listed in `/proc/self/task` only.
    pub unsafe fn new() -> Result<Self, TargetError> {
        let bytes = std::fs::read("/proc/self/exe").map_err(|e| TargetError::Os {
            op: "read /proc/self/exe",
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        // SAFETY: getauxval only reads the auxiliary vector the kernel gave
        // this process; AT_PHDR is always present for a dynamically loaded
        // or static ELF executable on Linux.
        let at_phdr = unsafe { libc::getauxval(libc::AT_PHDR) };
        let Executable {
            symbols,
            text,
            loaded,
            build_id,
        } = Executable::parse(&bytes, at_phdr).map_err(err)?;
        rendezvous::install()?;
        Ok(ProcessTarget {
            symbols,
            text,
            loaded,
            maps: Vec::new(),
            build_id,
            opts: RendezvousOptions::default(),
            stats: RendezvousStats::default(),
            sync_core: register_sync_core(),
            mem: if cpu::PROC_MEM_WRITES {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/proc/self/mem")
                    .ok()
            } else {
                None
            },
            serial: SERIAL.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The same target, writing code by making its pages
    /// read+write+execute while the other threads are stopped, rather than
    /// through `/proc/self/mem` (what it does where the kernel refuses
    /// those writes).
    pub fn with_mprotect_writes(mut self) -> Self {
        self.mem = None;
        self
    }

    /// The same target with other rendezvous options.
    pub fn with_rendezvous(mut self, opts: RendezvousOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Changes the rendezvous options (e.g. through
    /// [`crate::engine::Engine::target_mut`]).
    pub fn set_rendezvous(&mut self, opts: RendezvousOptions) {
        self.opts = opts;
    }

    /// The rendezvous options.
    pub fn rendezvous(&self) -> RendezvousOptions {
        self.opts
    }

    /// What the rendezvous did so far.
    pub fn stats(&self) -> RendezvousStats {
        self.stats
    }

    /// Whether `membarrier` SYNC_CORE serialises the cores at each release
    /// (Linux 4.16 and later, unless a seccomp filter hides it).
    pub fn membarrier_sync_core(&self) -> bool {
        self.sync_core
    }

    /// Whether `[addr, addr+len)` lies in one of this target's mappings of
    /// the given kinds. Allocation-free: `write_code` calls it inside the
    /// critical section.
    fn in_maps(&self, kinds: &[RegionKind], addr: u64, len: u64) -> bool {
        exe::in_maps(&self.maps, kinds, addr, len)
    }

    /// Whether `[addr, addr+len)` is code this target may rewrite.
    fn writable_code(&self, addr: u64, len: u64) -> bool {
        Executable::within(&self.text, addr, len) || self.in_maps(&[RegionKind::Text], addr, len)
    }

    fn mprotect(addr: u64, len: u64, prot: i32) -> Result<(), TargetError> {
        let start = page_down(addr);
        let end = page_up(addr.saturating_add(len));
        // `end >= start` (`page_up` saturates to the last page, which is
        // `page_down` of any address in it); checked all the same.
        let bytes = end
            .checked_sub(start)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(TargetError::BadAddress(Addr(addr)))?;
        // SAFETY: the range is page-aligned and lies in the executable's own
        // segments or in a mapping this target created; changing protection
        // does not invalidate any Rust reference (no reference to code or to
        // payload regions is ever held).
        let rc = unsafe { libc::mprotect(start as *mut libc::c_void, bytes, prot) };
        if rc != 0 {
            return Err(os("mprotect"));
        }
        Ok(())
    }

    /// Whether code is written through `/proc/self/mem` (no page of code
    /// is ever writable), rather than by making the page writable while
    /// the other threads are stopped.
    pub fn writes_through_proc_mem(&self) -> bool {
        self.mem.is_some()
    }

    /// Writes `bytes` at `addr`, in code this target may rewrite. Only
    /// called with every other thread stopped and none inside the bytes.
    fn write_stopped(&self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        use std::os::unix::fs::FileExt;
        let len = bytes.len() as u64;
        if !self.writable_code(addr.0, len) {
            return Err(TargetError::BadAddress(addr));
        }
        // The kernel writes the page through its own mapping (a private
        // page of the process, copied on write if it was shared), whatever
        // the protection of the process's mapping: one system call, no
        // protection change, no TLB shootdown. Allocation-free.
        if let Some(mem) = &self.mem {
            if mem.write_at(bytes, addr.0).is_ok_and(|n| n == bytes.len()) {
                return Ok(());
            }
            // Refused (a kernel built or booted without forced writes to
            // `/proc/pid/mem`) or short: write it all the other way.
        }
        let rx = libc::PROT_READ | libc::PROT_EXEC;
        Self::mprotect(addr.0, len, rx | libc::PROT_WRITE)?;
        // SAFETY: the destination lies in the executable's text or a
        // payload text mapping (checked above) and was just made writable;
        // no Rust reference points into code.
        unsafe { cpu::store_code(addr.0, bytes) };
        Self::mprotect(addr.0, len, rx)
    }

    /// `membarrier` SYNC_CORE: every CPU running a thread of this process
    /// serialises before it returns to user space.
    fn sync_cores(&self) {
        if self.sync_core {
            // SAFETY: a registered membarrier command with no pointer
            // arguments.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                    0,
                )
            };
        }
    }

    fn note_pause(&mut self, threads: usize, pause: Duration) {
        self.stats.last_threads = threads;
        self.stats.last_pause = pause;
        self.stats.max_pause = self.stats.max_pause.max(pause);
    }
}

/// Registers the process for `membarrier` SYNC_CORE; whether it worked.
fn register_sync_core() -> bool {
    // SAFETY: membarrier with integer arguments only.
    let supported = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) };
    if supported < 0
        || supported & libc::c_long::from(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) == 0
    {
        return false;
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
            0,
            0,
        )
    };
    rc == 0
}

/// The first stopped thread inside a site, under `policy`:
/// `(tid, pc, record, whole_function)`.
fn thread_in_site(
    parked: impl Iterator<Item = (i32, u64)>,
    sites: &[Site],
    policy: SitePolicy,
) -> Option<(i32, u64, &Site, bool)> {
    parked.into_iter().find_map(|(tid, pc)| {
        let interior = sites
            .iter()
            .find(|s| s.bytes.start < pc && pc < s.bytes.end)
            .map(|s| (tid, pc, s, false));
        interior.or_else(|| match policy {
            SitePolicy::Bytes => None,
            SitePolicy::Function => sites
                .iter()
                .find(|s| s.retired.contains(&pc))
                .map(|s| (tid, pc, s, true)),
        })
    })
}

/// The writer handed to the critical section: writes only inside the
/// announced sites.
struct StoppedWriter<'a> {
    target: &'a ProcessTarget,
    sites: &'a [Site],
}

impl CodeWriter for StoppedWriter<'_> {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        let end = addr.0.saturating_add(bytes.len() as u64);
        if !self
            .sites
            .iter()
            .any(|s| addr.0 >= s.bytes.start && end <= s.bytes.end)
        {
            return Err(TargetError::BadAddress(addr));
        }
        self.target.write_stopped(addr, bytes)
    }

    /// Cache maintenance over the bytes written, where the machine needs
    /// it (AArch64); x86-64 serialises once, at the release (module doc).
    fn flush_icache(&mut self, addr: Addr, len: usize) {
        if self.target.writable_code(addr.0, len as u64) {
            // SAFETY: the range lies in the executable's text or a payload
            // text mapping (checked just above), both readable.
            unsafe { cpu::sync_icache(addr.0, len) };
        }
    }
}

crate::symtab::symbol_source_via!(ProcessTarget, symbols);

impl Allocator for ProcessTarget {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let len = page_up(size.max(1));
        let out_of_memory = || TargetError::OutOfMemory {
            kind: kind.name(),
            size,
        };
        let bytes = usize::try_from(len).map_err(|_| out_of_memory())?;
        let align = align.max(PAGE);
        let (lo, hi) = exe::span(&self.text);
        // Try hints 16 MiB apart (up to 63 steps), nearest the text first,
        // past it and before it in turn: the nearer, the likelier an
        // AArch64 `b` (±128 MiB) reaches from every site.
        const STEP: u64 = 16 << 20;
        let distances = core::iter::successors(Some(STEP), |d| d.checked_add(STEP)).take(63);
        let hints = distances.flat_map(|d| {
            let above = hi.saturating_add(d);
            let below = d.checked_add(len).and_then(|n| lo.checked_sub(n));
            core::iter::once(above).chain(below)
        });
        for hint in hints {
            let hint = exe::align_down(hint, align);
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
                    bytes,
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
                unsafe { libc::munmap(p, bytes) };
                continue;
            }
            self.maps.push(Mapping {
                addr: hint,
                len,
                kind,
            });
            return Ok(Addr(hint));
        }
        Err(out_of_memory())
    }
}

impl CodeWriter for ProcessTarget {
    /// Refused: code is written only inside [`Target::quiesce`], through
    /// the writer it hands the critical section.
    fn write_code(&mut self, _addr: Addr, _bytes: &[u8]) -> Result<(), TargetError> {
        Err(TargetError::Unsupported(
            "ProcessTarget writes code only inside quiesce, with every other thread stopped",
        ))
    }

    fn flush_icache(&mut self, _addr: Addr, _len: usize) {}
}

impl Target for ProcessTarget {
    fn arch(&self) -> Arch {
        cpu::ARCH
    }

    /// This CPU's features (`cpuid` on x86-64, HWCAP on AArch64):
    /// alternatives are applied for the machine the process runs on.
    fn cpu_features(&self) -> CpuFeatures {
        CpuFeatures::native(cpu::ARCH)
    }

    /// All three tables: exception tables and bug frames through the
    /// `SIGSEGV`/`SIGBUS`/`SIGILL` handlers (`process/faults.rs`).
    fn honours(&self, _table: ArchTable) -> bool {
        true
    }

    fn register_tables(&mut self, id: PayloadId, tables: &ArchTables) -> Result<(), TargetError> {
        faults::register(self.serial, id.0, tables)
    }

    fn unregister_tables(&mut self, id: PayloadId) -> Result<(), TargetError> {
        faults::unregister(self.serial, id.0)
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
        Self::mprotect(m.addr, m.len, prot)?;
        if m.kind == RegionKind::Text {
            // The copy went through the data cache: make it visible to
            // instruction fetch before anything jumps there (AArch64).
            // SAFETY: the mapping was created by `allocate` with at least
            // `region.bytes.len()` bytes and is read+execute now.
            unsafe { cpu::sync_icache(m.addr, region.bytes.len()) };
        }
        Ok(())
    }

    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        let pos = self
            .maps
            .iter()
            .position(|m| m.addr == region.addr.0)
            .ok_or(TargetError::BadAddress(region.addr))?;
        // `allocate` mapped this many bytes, so the length fits a `usize`.
        let bytes = self
            .maps
            .get(pos)
            .and_then(|m| usize::try_from(m.len).ok())
            .ok_or(TargetError::BadAddress(region.addr))?;
        let m = self.maps.remove(pos);
        // SAFETY: the mapping was created by `allocate`; the engine unmaps a
        // region only when its payload is not applied, so no patch site
        // jumps into it, and no thread still runs its code (the caller's
        // duty, in the `# Safety` of `ProcessTarget::new`).
        unsafe { libc::munmap(m.addr as *mut libc::c_void, bytes) };
        Ok(())
    }

    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let len = buf.len() as u64;
        let readable = Executable::within(&self.loaded, addr.0, len)
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

    /// Stops every other thread, checks none is inside `sites`, runs
    /// `critical`, serialises and releases (module doc). Retries while a
    /// thread is inside a site; refuses, writing nothing, on a timeout or
    /// when the retries are spent.
    fn quiesce(
        &mut self,
        sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        let _guard = PATCH_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = sites.iter().find(|s| s.bytes.end > rendezvous::PC_LIMIT) {
            return Err(TargetError::BadAddress(Addr(s.bytes.start)));
        }
        let opts = self.opts;
        let mut attempts = 0u32;
        loop {
            attempts = attempts.saturating_add(1);
            self.stats.rounds = self.stats.rounds.saturating_add(1);
            let stopped = match rendezvous::stop(opts.timeout) {
                Ok(s) => s,
                Err(e) => {
                    self.stats.refusals = self.stats.refusals.saturating_add(1);
                    return Err(e);
                }
            };
            let hit = thread_in_site(stopped.parked(), sites, opts.policy)
                .map(|(tid, pc, site, whole)| (tid, pc, site.record, whole));
            let Some((tid, pc, record, whole_function)) = hit else {
                let result = critical(&mut StoppedWriter {
                    target: self,
                    sites,
                });
                self.sync_cores();
                let threads = stopped.threads();
                let started = stopped.started;
                stopped.release();
                self.note_pause(threads, started.elapsed());
                return result;
            };
            stopped.release();
            if attempts > opts.retries {
                self.stats.refusals = self.stats.refusals.saturating_add(1);
                return Err(TargetError::ThreadInSite {
                    tid,
                    pc: Addr(pc),
                    record,
                    whole_function,
                    attempts,
                });
            }
            self.stats.retries = self.stats.retries.saturating_add(1);
            std::thread::sleep(opts.backoff.saturating_mul(attempts));
        }
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
        // declares hooks as `int fn(void)` with the C ABI; payloads are
        // trusted code (the `# Safety` of `ProcessTarget::new`).
        Ok(HookOutcome::Returned(unsafe { call_c_int_fn(hook.addr.0) }))
    }
}

#[cfg(test)]
mod tests {
    use super::{thread_in_site, Site, SitePolicy};
    use xsplice_abi::RecordIndex;

    /// The AArch64 cases: a 4-byte `b` has no inside for a 4-aligned PC;
    /// the 12-byte long branch has two (its second and third instruction),
    /// which is why it is written only with no thread there.
    #[test]
    fn which_pcs_are_inside_a_site() {
        let site = |start: u64, len: u64| Site {
            record: RecordIndex(0),
            bytes: start..start + len,
            retired: start..start + 64,
        };
        let inside = |pc: u64, sites: &[Site], policy| {
            thread_in_site([(7, pc)].into_iter(), sites, policy).map(|(_, _, _, whole)| whole)
        };
        let b = [site(0x1000, 4)];
        for pc in [0x1000, 0x1004, 0x0ffc] {
            assert_eq!(inside(pc, &b, SitePolicy::Bytes), None, "{pc:#x}");
        }
        let long = [site(0x1000, 12)];
        assert_eq!(
            inside(0x1000, &long, SitePolicy::Bytes),
            None,
            "at the site"
        );
        assert_eq!(inside(0x1004, &long, SitePolicy::Bytes), Some(false));
        assert_eq!(inside(0x1008, &long, SitePolicy::Bytes), Some(false));
        assert_eq!(inside(0x100c, &long, SitePolicy::Bytes), None);
        // The strict policy: anywhere in the retired function.
        assert_eq!(inside(0x100c, &long, SitePolicy::Function), Some(true));
        assert_eq!(inside(0x1040, &long, SitePolicy::Function), None);
        // x86-64's 5-byte jmp: every interior byte.
        let jmp = [site(0x1000, 5)];
        assert_eq!(inside(0x1003, &jmp, SitePolicy::Bytes), Some(false));
    }
}
