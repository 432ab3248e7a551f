//! Live patching of another process through `ptrace(2)` (feature `std`,
//! Linux x86-64).
//!
//! x86-64 only, by decision: the target injects x86-64 system calls into
//! the traced thread, and the AArch64 path could not be tested in CI,
//! which runs AArch64 code under qemu-user, where a guest cannot ptrace
//! another guest. The in-process target ([`crate::process`]) covers
//! AArch64.
//!
//! [`PtraceTarget`] makes a running process, named by its PID, a
//! [`Target`] for the [`Engine`](crate::engine::Engine). The specification
//! is `spec/SPEC.md`, section "Live processes"; in short:
//!
//! * **Symbols** come from the process's executable (`/proc/PID/exe`, its
//!   `.symtab`), shifted by the load bias read from `/proc/PID/auxv`
//!   (`AT_PHDR`), so PIE and non-PIE executables alike. The build-id of
//!   the executable is the target's build-id: a payload whose
//!   `.xsplice.depends` names another binary is refused by the engine.
//!   Shared libraries are not searched.
//! * **Memory** is read and written through `/proc/PID/mem`. The kernel
//!   writes there with forced access, so the text of the executable is
//!   rewritten without ever being made writable in the target, and payload
//!   regions get their final permissions when they are created: text
//!   `r-x`, read-only data `r--`, data `rw-` (W^X throughout).
//! * **Payload regions** are anonymous private mappings created by a
//!   `mmap(MAP_FIXED_NOREPLACE)` injected into a stopped thread when the
//!   engine maps them (`allocate` only reserves the address, so a payload
//!   refused while loading leaves nothing in the process), at an
//!   address chosen from `/proc/PID/maps` within ±1 GiB of the
//!   executable's text (so `jmp rel32` and PC32 relocations reach),
//!   preferring the free space just *below* the executable (above it the
//!   heap grows). One free page is kept on each side of every region, so
//!   the kernel never merges two regions into one mapping and a later run
//!   finds a region's length from its address alone in `/proc/PID/maps`.
//! * **Rendezvous** ([`Target::quiesce`]): every thread of
//!   `/proc/PID/task` is attached with `PTRACE_SEIZE` and stopped with
//!   `PTRACE_INTERRUPT`; the task list is read again until it holds no
//!   thread that is not stopped (threads created meanwhile are caught by
//!   the next scan; once all are stopped, none can be created). Each stop
//!   is awaited with a deadline ([`PtraceOptions::timeout`]): a thread that
//!   does not stop fails the action with [`PtraceError::Timeout`] naming
//!   it (a thread exiting meanwhile is skipped), before anything is
//!   written. Then every stopped thread's PC is checked against the sites
//!   the engine announces (and each write against the PCs again): a PC in
//!   the interior of bytes to be written (with [`PcPolicy::Function`],
//!   anywhere in the code a site retires: the old function on apply, the
//!   replacement on revert) undoes any writes made, releases every thread,
//!   backs off and tries again, up to [`PtraceOptions::retries`] times,
//!   then refuses with [`PtraceError::Busy`] naming the thread, its PC and
//!   the site. Neither policy looks at return addresses deeper in the
//!   stacks: a thread that is *inside a call* made by an old function
//!   returns into the old code, which is left intact (the jump only
//!   replaces its first bytes).
//! * **Unmapping** a region waits the same way until no thread's PC is
//!   inside it and no word of any thread's stack (from its stack pointer
//!   up, conservatively: any value) points into it, then refuses with
//!   [`PtraceError::InUse`]: a thread blocked in a call made by a
//!   reverted payload's code keeps that code mapped.
//! * **Detach** leaves every thread as it was: registers are never changed
//!   by the rendezvous (and restored exactly after an injection), a thread
//!   that stopped on its way to a signal gets that signal back with
//!   `PTRACE_DETACH`, and a thread stopped inside a system call keeps the
//!   `-ERESTART*` value the kernel put in `rax`, so the kernel restarts
//!   the call at detach as if nothing had happened.
//! * **Cross-modifying code**: the new bytes are written while every
//!   thread of the target is stopped inside the kernel, and each resumes
//!   only after the write completed, by a return from the kernel; no
//!   thread can be executing, or have prefetched in flight, the bytes as
//!   they change. x86 keeps instruction fetch coherent with stores, so no
//!   flush is needed.
//! * **Hooks** run in the target: an injected call in one stopped thread
//!   while the others stay stopped (so a hook must not wait for another
//!   thread: it would time out, [`PtraceOptions::hook_timeout`]).
//! * **State across runs**: [`Target::ledger_read`] and
//!   [`Target::ledger_write`] keep the engine's ledger in the target
//!   itself, in a shared memory file named `xsplice-ledger` (visible in
//!   `/proc/PID/maps` as `/memfd:xsplice-ledger (deleted)`), so separate
//!   runs of the patcher agree on what is applied, and the record dies with
//!   the process.
//! * **A process that dies mid-action** takes everything with it: all the
//!   patcher writes is in the process's own memory, and nothing outside it
//!   (no file, no shared state) is changed, so nothing half-written
//!   survives. The error is [`PtraceError::NoSuchProcess`].
//! * **Serialisation of patchers**: a target holds an exclusive `flock` on
//!   the process's executable file while it exists; a second patcher of a
//!   process of the same executable waits for it up to 2 s, then is refused
//!   with [`PtraceError::Locked`].

mod inject;
mod stop;
mod sys;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;
use std::vec::Vec;

use crate::engine::{CodeWriter, HookOutcome, Site, Target};
use crate::exe::{self, Executable, Mapping};
use crate::ledger::Placed;
use crate::payload::{Hook, Region};
use crate::{Addr, Allocator, Arch, RegionKind, TargetError};

use stop::Stopped;
use sys::Mem;

const PAGE: u64 = 4096;
/// How far from the executable's text payload regions may be placed.
const REACH: u64 = 1 << 30;
/// The lowest address regions are placed at (Linux's default
/// `vm.mmap_min_addr`).
const MIN_ADDR: u64 = 0x10000;
/// How much of a thread's stack `unmap` scans for words pointing into the
/// region it would unmap.
const STACK_SCAN: u64 = 8 << 20;
/// How long `attach` waits for another patcher of the same executable.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Largest executable read from `/proc/PID/exe`.
const MAX_EXE: u64 = 256 << 20;
/// The name of the ledger's memory file in the target.
pub const LEDGER_NAME: &str = "xsplice-ledger";
/// Size of the ledger mapping: the header and at most
/// `LEDGER_SIZE - 16` bytes of ledger.
pub const LEDGER_SIZE: u64 = 1 << 20;
/// The first 8 bytes of the ledger mapping; the next 8 are the ledger's
/// length (little-endian), then the ledger.
const LEDGER_MAGIC: [u8; 8] = *b"XSPLDGR1";
/// Bytes before the ledger in its mapping: the magic and the length.
const LEDGER_HEADER_LEN: usize = LEDGER_MAGIC.len() + core::mem::size_of::<u64>();
/// [`LEDGER_HEADER_LEN`] as an address offset.
const LEDGER_HEADER: u64 = LEDGER_HEADER_LEN as u64;
/// The most ledger bytes the mapping holds.
// Cannot truncate: the assertion below checks the round trip at compile time.
#[allow(clippy::cast_possible_truncation)]
const LEDGER_CAPACITY: usize = (LEDGER_SIZE - LEDGER_HEADER) as usize;
const _: () = assert!(LEDGER_CAPACITY as u64 == LEDGER_SIZE - LEDGER_HEADER);

/// Which thread positions make the rendezvous back off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcPolicy {
    /// A PC in the interior of the bytes being written (the rule of
    /// [`Target::quiesce`]): the thread would resume in the middle of the
    /// new bytes.
    #[default]
    Site,
    /// Also a PC anywhere in the code a write retires (the old function on
    /// apply, the replacement on revert: [`Site::retired`]): no thread is
    /// running it in its top frame when it goes out of service.
    Function,
}

/// Tunables of a [`PtraceTarget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtraceOptions {
    /// How long every thread has to stop (default 1 s).
    pub timeout: Duration,
    /// How many times the rendezvous backs off and retries when a thread's
    /// PC is in the way (default 20).
    pub retries: u32,
    /// Which PCs are in the way (default [`PcPolicy::Site`]).
    pub policy: PcPolicy,
    /// How long a hook may run (default 5 s).
    pub hook_timeout: Duration,
}

impl Default for PtraceOptions {
    fn default() -> Self {
        PtraceOptions {
            timeout: Duration::from_secs(1),
            retries: 20,
            policy: PcPolicy::Site,
            hook_timeout: Duration::from_secs(5),
        }
    }
}

/// The text of an errno.
fn os(errno: &i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(*errno)
}

/// Why an action on a traced process failed. Each names the process or
/// thread; `errno` values are shown with their system text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PtraceError {
    /// No process has this PID.
    #[error("no process with PID {pid}")]
    UnknownPid {
        /// The PID.
        pid: i32,
    },
    /// The process exited during the action.
    #[error("process {pid} is gone (it exited during the action)")]
    NoSuchProcess {
        /// The PID.
        pid: i32,
    },
    /// The kernel refused access to the process's memory or files.
    #[error("no permission to trace process {pid} (/proc/{pid}/{what}: {})", os(.errno))]
    Permission {
        /// The PID.
        pid: i32,
        /// The file of `/proc/PID` that was refused.
        what: &'static str,
        /// errno.
        errno: i32,
    },
    /// `PTRACE_SEIZE` of a thread failed (`EPERM`: ptrace scope, another
    /// tracer, or another user's process).
    #[error("cannot attach to thread {tid} of process {pid}: {}", os(.errno))]
    Attach {
        /// The PID.
        pid: i32,
        /// The thread.
        tid: i32,
        /// errno.
        errno: i32,
    },
    /// A thread did not stop in time.
    #[error("thread {tid} of process {pid} did not stop within {waited:?}")]
    Timeout {
        /// The PID.
        pid: i32,
        /// The thread that did not stop.
        tid: i32,
        /// How long the rendezvous waited.
        waited: Duration,
    },
    /// A thread kept its PC where the policy forbids, on every retry.
    #[error("thread {tid} is executing at {pc:#x}, inside the code to patch at {site:#x}, on every one of {attempts} attempts")]
    Busy {
        /// The thread.
        tid: i32,
        /// Its PC.
        pc: u64,
        /// The site being written.
        site: u64,
        /// Attempts made.
        attempts: u32,
    },
    /// A region stays mapped: a thread may still return into it (a word on
    /// its stack points there), on every retry.
    #[error("thread {tid} may still return into the payload region at {addr:#x} (its stack points there): the region stays mapped")]
    InUse {
        /// The thread.
        tid: i32,
        /// The region.
        addr: u64,
    },
    /// Reading or writing a thread's registers failed.
    #[error("registers of thread {tid}: {}", os(.errno))]
    Regs {
        /// The thread.
        tid: i32,
        /// errno.
        errno: i32,
    },
    /// `waitpid` failed.
    #[error("waiting for thread {tid}: {}", os(.errno))]
    Wait {
        /// The thread.
        tid: i32,
        /// errno.
        errno: i32,
    },
    /// Resuming a thread for an injection failed.
    #[error("resuming thread {tid}: {}", os(.errno))]
    Resume {
        /// The thread.
        tid: i32,
        /// errno.
        errno: i32,
    },
    /// The thread running injected code exited.
    #[error("thread {tid} exited while running injected code")]
    ThreadGone {
        /// The thread.
        tid: i32,
    },
    /// Injected code (a hook) did not finish in time; the thread was
    /// stopped and its registers restored.
    #[error("injected code in thread {tid} did not finish in time")]
    InjectionTimeout {
        /// The thread.
        tid: i32,
    },
    /// Injected code faulted (the signal is not delivered to the process).
    #[error("injected code in thread {tid} stopped with signal {signal} at {pc:#x}")]
    Injected {
        /// The thread.
        tid: i32,
        /// The signal.
        signal: i32,
        /// Where.
        pc: u64,
    },
    /// Reading or writing `/proc/PID/mem` failed.
    #[error("memory of process {pid} at {addr:#x}: {}", os(.errno))]
    Mem {
        /// The PID (or the thread).
        pid: i32,
        /// The address.
        addr: u64,
        /// errno.
        errno: i32,
    },
    /// The executable cannot be used.
    #[error("executable of process {pid}: {problem}")]
    Exe {
        /// The PID.
        pid: i32,
        /// What is wrong.
        problem: &'static str,
    },
    /// An injected system call failed in the target.
    #[error("{name} in process {pid} failed: {}", os(.errno))]
    Syscall {
        /// The PID.
        pid: i32,
        /// The system call.
        name: &'static str,
        /// errno returned by it.
        errno: i32,
    },
    /// The process has no thread to run injected code in.
    #[error("no stopped thread to run injected code in")]
    NoThread,
    /// Another patcher holds the lock of this executable.
    #[error("another xsplice is patching a process of the executable of process {pid}")]
    Locked {
        /// The PID.
        pid: i32,
    },
    /// The ledger does not fit its mapping.
    #[error("the ledger needs {needed} bytes; its mapping in the process holds {capacity}")]
    LedgerFull {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The ledger mapping does not start with its magic or its length is
    /// out of range.
    #[error("the `{LEDGER_NAME}` mapping of process {pid} at {addr:#x} is not a ledger")]
    LedgerCorrupt {
        /// The PID.
        pid: i32,
        /// The mapping.
        addr: u64,
    },
}

impl PtraceError {
    /// A failure reading `/proc/PID/what`.
    fn from_proc(pid: i32, what: &'static str, e: &std::io::Error) -> PtraceError {
        match e.kind() {
            std::io::ErrorKind::NotFound => PtraceError::NoSuchProcess { pid },
            _ => PtraceError::Permission {
                pid,
                what,
                errno: e.raw_os_error().unwrap_or(libc::EACCES),
            },
        }
    }
}

/// Another process, patched through `ptrace`. See the module docs.
#[derive(Debug)]
pub struct PtraceTarget {
    pid: i32,
    mem: Mem,
    exe: Executable,
    /// Regions mapped in the process (by this patcher, or adopted).
    maps: Vec<Mapping>,
    /// Addresses reserved by `allocate` for regions not mapped yet.
    pending: Vec<Mapping>,
    opts: PtraceOptions,
    pauses: Vec<Duration>,
    retries: u32,
    stopped_total: Duration,
    rendezvous: u32,
    /// Holds the `flock` on the executable for the target's lifetime.
    _lock: File,
}

fn page_up(a: u64) -> u64 {
    a.saturating_add(PAGE - 1) & !(PAGE - 1)
}

impl PtraceTarget {
    /// Opens process `pid`: reads its executable's symbols and segments and
    /// its memory file. Nothing is stopped or written yet.
    pub fn attach(pid: i32, opts: PtraceOptions) -> Result<Self, PtraceError> {
        if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(PtraceError::UnknownPid { pid });
        }
        let perm = |what| {
            move |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::NotFound => PtraceError::NoSuchProcess { pid },
                _ => PtraceError::Permission {
                    pid,
                    what,
                    errno: sys::io_errno(e),
                },
            }
        };
        let mem = Mem::open(pid).map_err(perm("mem"))?;
        let file = File::open(format!("/proc/{pid}/exe")).map_err(perm("exe"))?;
        // Another patcher may hold the lock for a moment (or a child forked
        // by this program, until it execs): wait up to LOCK_WAIT for it.
        let since = std::time::Instant::now();
        // SAFETY: flock on a file descriptor we own; no memory involved.
        while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            if since.elapsed() >= LOCK_WAIT {
                return Err(PtraceError::Locked { pid });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let size = file.metadata().map_err(perm("exe"))?.len();
        if size > MAX_EXE {
            return Err(PtraceError::Exe {
                pid,
                problem: "the executable is over 256 MiB",
            });
        }
        // Read through the descriptor just measured and locked, bounded
        // whatever the file does meanwhile.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&file, MAX_EXE), &mut bytes)
            .map_err(perm("exe"))?;
        let at_phdr = sys::at_phdr(pid)
            .map_err(perm("auxv"))?
            .ok_or(PtraceError::Exe {
                pid,
                problem: "its auxiliary vector has no AT_PHDR",
            })?;
        let exe = Executable::parse(&bytes, at_phdr)
            .map_err(|problem| PtraceError::Exe { pid, problem })?;
        Ok(PtraceTarget {
            pid,
            mem,
            exe,
            maps: Vec::new(),
            pending: Vec::new(),
            opts,
            pauses: Vec::new(),
            retries: 0,
            stopped_total: Duration::ZERO,
            rendezvous: 0,
            _lock: file,
        })
    }

    /// The process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// How long the threads stayed stopped in each rendezvous that wrote
    /// code (one per apply or revert), oldest first.
    pub fn pauses(&self) -> &[Duration] {
        &self.pauses
    }

    /// How many times a rendezvous backed off because a PC was in the way.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Maps a memory error: the process is gone, or the address is bad.
    fn mem_error(&self, addr: u64, errno: i32) -> PtraceError {
        if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
            PtraceError::NoSuchProcess { pid: self.pid }
        } else {
            PtraceError::Mem {
                pid: self.pid,
                addr,
                errno,
            }
        }
    }

    /// Stops every thread (see the module docs), backing off while a
    /// thread's PC is in the interior of the bytes of one of `sites` (under
    /// [`PcPolicy::Function`], anywhere in the code a site retires), then
    /// runs `critical` with the threads stopped; a write `critical` makes
    /// over a thread's PC, announced or not, is refused the same way,
    /// `critical` undoing its earlier writes. Returns how long the threads
    /// were stopped.
    pub fn quiesce_sites(
        &mut self,
        sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<Duration, TargetError> {
        let ((), pause) = self.retrying(|t, stopped| {
            if let Some(hit) = t.in_the_way(stopped, sites) {
                return Ok(Attempt::InTheWay(hit));
            }
            let mut w = Writer {
                target: t,
                stopped,
                busy: None,
            };
            let r = critical(&mut w);
            Ok(match w.busy {
                Some(hit) => Attempt::InTheWay(hit),
                None => Attempt::Done(r?),
            })
        })?;
        self.pauses.push(pause);
        Ok(pause)
    }

    /// Runs `f` with every thread stopped; while `f` finds a thread in the
    /// way, releases them all, backs off (growing from 0.4 ms to 12.8 ms)
    /// and tries again, at most [`PtraceOptions::retries`] times, then
    /// refuses with [`PtraceError::Busy`]. Returns `f`'s result and how
    /// long the threads were stopped for it.
    fn retrying<R>(
        &mut self,
        mut f: impl FnMut(&Self, &Stopped) -> Result<Attempt<R>, TargetError>,
    ) -> Result<(R, Duration), TargetError> {
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let stopped = Stopped::all(self.pid, self.opts.timeout)?;
            let result = f(self, &stopped);
            let pause = self.account(stopped);
            match result? {
                Attempt::Done(r) => return Ok((r, pause)),
                Attempt::InTheWay((tid, pc, site)) if attempt > self.opts.retries => {
                    return Err(PtraceError::Busy {
                        tid,
                        pc,
                        site,
                        attempts: attempt,
                    }
                    .into())
                }
                Attempt::InTheWay(_) => {
                    self.retries = self.retries.saturating_add(1);
                    // Let the threads run on past the site.
                    std::thread::sleep(Duration::from_micros(200u64 << attempt.min(6)));
                }
            }
        }
    }

    /// The thread in the way of writing `sites`, under the policy: its
    /// PC, and the site.
    fn in_the_way(&self, stopped: &Stopped, sites: &[Site]) -> Option<(i32, u64, u64)> {
        let strict = self.opts.policy == PcPolicy::Function;
        stopped.threads.iter().find_map(|t| {
            let pc = t.regs.rip;
            sites
                .iter()
                .find(|s| interior(&s.bytes, pc) || (strict && s.retired.contains(&pc)))
                .map(|s| (t.tid, pc, s.bytes.start))
        })
    }

    /// The first stopped thread with a word on its stack, from `rsp` to the
    /// end of the mapping holding it (at most [`STACK_SCAN`] bytes), that
    /// points into `region`, and that word: a return address into the
    /// region would be one. Conservative: any such value counts.
    fn stack_refers(
        &self,
        stopped: &Stopped,
        region: core::ops::Range<u64>,
    ) -> Result<Option<(i32, u64)>, PtraceError> {
        let lines =
            sys::maps(self.pid).map_err(|e| PtraceError::from_proc(self.pid, "maps", &e))?;
        let mut buf = std::vec![0u8; 64 << 10];
        for t in &stopped.threads {
            let sp = t.regs.rsp & !7;
            let Some(stack) = lines.iter().find(|l| l.start <= sp && sp < l.end) else {
                continue;
            };
            let end = stack.end.min(sp.saturating_add(STACK_SCAN));
            let mut at = sp;
            while at < end {
                // `at < end`: the subtraction cannot saturate.
                let n = usize::try_from(end.saturating_sub(at))
                    .unwrap_or(buf.len())
                    .min(buf.len());
                let chunk = buf.get_mut(..n).unwrap_or(&mut []);
                if self.mem.read(at, chunk).is_err() {
                    break;
                }
                let hit = chunk
                    .chunks_exact(8)
                    .filter_map(|w| <[u8; 8]>::try_from(w).ok().map(u64::from_ne_bytes))
                    .find(|w| region.contains(w));
                if let Some(word) = hit {
                    return Ok(Some((t.tid, word)));
                }
                at = at.saturating_add(n as u64);
            }
        }
        Ok(None)
    }

    /// Runs injected system calls with every thread stopped.
    fn with_stopped<R>(
        &mut self,
        f: impl FnOnce(&Self, &Stopped) -> Result<R, PtraceError>,
    ) -> Result<R, PtraceError> {
        let stopped = Stopped::all(self.pid, self.opts.timeout)?;
        let result = f(self, &stopped);
        self.account(stopped);
        result
    }

    /// Releases the threads, adding how long they were stopped to the
    /// totals.
    fn account(&mut self, stopped: Stopped) -> Duration {
        let pause = stopped.elapsed();
        drop(stopped);
        self.stopped_total = self.stopped_total.saturating_add(pause);
        self.rendezvous = self.rendezvous.saturating_add(1);
        pause
    }

    /// How long the threads have been stopped in all, by every rendezvous
    /// (writing code, mapping regions, running hooks, retries), and how
    /// many rendezvous there were.
    pub fn stopped_total(&self) -> (Duration, u32) {
        (self.stopped_total, self.rendezvous)
    }

    /// Runs system call `nr` in the target; a negative result is an error.
    fn syscall(
        &self,
        stopped: &Stopped,
        name: &'static str,
        nr: i64,
        args: [u64; 6],
    ) -> Result<u64, PtraceError> {
        let rc = inject::syscall(stopped, &self.mem, nr, args, self.opts.timeout)?;
        if (-4095..0).contains(&rc) {
            return Err(PtraceError::Syscall {
                pid: self.pid,
                name,
                errno: i32::try_from(rc.unsigned_abs()).unwrap_or(libc::EINVAL),
            });
        }
        Ok(rc as u64)
    }

    /// A free address for `len` bytes aligned to `align` within reach of
    /// the executable's text, with a free page on each side: the highest
    /// below the text, else the lowest above it (an address reserved for a
    /// region not mapped yet is not free).
    fn free_slot(&self, len: u64, align: u64) -> Result<Option<u64>, PtraceError> {
        let lines =
            sys::maps(self.pid).map_err(|e| PtraceError::from_proc(self.pid, "maps", &e))?;
        let (lo, hi) = exe::span(&self.exe.text);
        let low_limit = hi.saturating_sub(REACH);
        let high_limit = lo.saturating_add(REACH);
        // Taken: the process's mappings and the addresses reserved for
        // regions not mapped yet. The gaps between them, and the one below
        // the first (down to the usual `vm.mmap_min_addr`).
        let mut taken: Vec<(u64, u64)> = lines
            .iter()
            .map(|l| (l.start, l.end))
            .chain(
                self.pending
                    .iter()
                    .map(|m| (m.addr, m.addr.saturating_add(m.len))),
            )
            .collect();
        taken.sort_unstable();
        let mut gaps = Vec::with_capacity(taken.len());
        let mut end_so_far = MIN_ADDR;
        for &(start, end) in &taken {
            if start > end_so_far {
                gaps.push((end_so_far, start));
            }
            end_so_far = end_so_far.max(end);
        }
        let mut below: Option<u64> = None;
        let mut above: Option<u64> = None;
        for (g0, g1) in gaps {
            let (Some(first), Some(last_end)) = (g0.checked_add(PAGE), g1.checked_sub(PAGE)) else {
                continue;
            };
            if g1 <= lo {
                let Some(start) = last_end.checked_sub(len) else {
                    continue;
                };
                let start = exe::align_down(start, align);
                if start >= first && start >= low_limit {
                    below = below.max(Some(start));
                }
            } else if g0 >= hi {
                let start = first.div_ceil(align).saturating_mul(align);
                let end = start.saturating_add(len);
                if end <= last_end && end <= high_limit && above.is_none() {
                    above = Some(start);
                }
            }
        }
        Ok(below.or(above))
    }

    /// Where the ledger is mapped in the process, if it is.
    fn ledger_addr(&self) -> Result<Option<u64>, PtraceError> {
        let lines =
            sys::maps(self.pid).map_err(|e| PtraceError::from_proc(self.pid, "maps", &e))?;
        let memfd = format!("/memfd:{LEDGER_NAME}");
        Ok(lines
            .iter()
            .find(|l| {
                l.path.starts_with(&memfd)
                    && l.end.saturating_sub(l.start) == LEDGER_SIZE
                    && l.perms.starts_with("rw")
            })
            .map(|l| l.start))
    }

    /// Creates the ledger mapping in the process: a memory file made by an
    /// injected `memfd_create` (its name written in a scratch page mapped
    /// for the purpose), sized, mapped shared read+write, its descriptor
    /// closed again. Returns its address.
    fn ledger_create(&mut self) -> Result<u64, PtraceError> {
        self.with_stopped(|t, stopped| {
            let prot = u64::from((libc::PROT_READ | libc::PROT_WRITE) as u32);
            let anon = u64::from((libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u32);
            let scratch = t.syscall(
                stopped,
                "mmap",
                libc::SYS_mmap,
                [0, PAGE, prot, anon, u64::MAX, 0],
            )?;
            let made = (|| {
                let mut name = Vec::from(LEDGER_NAME.as_bytes());
                name.push(0);
                t.mem
                    .write(scratch, &name)
                    .map_err(|errno| t.mem_error(scratch, errno))?;
                let cloexec = u64::from(libc::MFD_CLOEXEC);
                let fd = t.syscall(
                    stopped,
                    "memfd_create",
                    libc::SYS_memfd_create,
                    [scratch, cloexec, 0, 0, 0, 0],
                )?;
                let mapped = t
                    .syscall(
                        stopped,
                        "ftruncate",
                        libc::SYS_ftruncate,
                        [fd, LEDGER_SIZE, 0, 0, 0, 0],
                    )
                    .and_then(|_| {
                        let shared = u64::from(libc::MAP_SHARED as u32);
                        t.syscall(
                            stopped,
                            "mmap",
                            libc::SYS_mmap,
                            [0, LEDGER_SIZE, prot, shared, fd, 0],
                        )
                    });
                let _ = t.syscall(stopped, "close", libc::SYS_close, [fd, 0, 0, 0, 0, 0]);
                mapped
            })();
            let _ = t.syscall(
                stopped,
                "munmap",
                libc::SYS_munmap,
                [scratch, PAGE, 0, 0, 0, 0],
            );
            let addr = made?;
            t.mem
                .write(addr, &LEDGER_MAGIC)
                .map_err(|errno| t.mem_error(addr, errno))?;
            Ok(addr)
        })
    }

    /// Whether `[addr, addr+len)` lies in one of this patcher's regions of
    /// the given kinds.
    fn in_maps(&self, kinds: &[RegionKind], addr: u64, len: u64) -> bool {
        exe::in_maps(&self.maps, kinds, addr, len)
    }
}

/// Whether `pc` is in the interior of `bytes` (after its first byte): a
/// thread there would resume in the middle of the new bytes. A thread at
/// the first byte fetches the new instruction whole when it resumes.
fn interior(bytes: &core::ops::Range<u64>, pc: u64) -> bool {
    pc > bytes.start && pc < bytes.end
}

/// What one attempt of a rendezvous came to.
enum Attempt<R> {
    /// Done, with this result.
    Done(R),
    /// A thread (tid, PC) is in the way of this site: back off and retry.
    InTheWay((i32, u64, u64)),
}

/// The [`CodeWriter`] of a rendezvous: refuses a write over a stopped
/// thread's PC (recording it, so the rendezvous retries).
struct Writer<'a> {
    target: &'a PtraceTarget,
    stopped: &'a Stopped,
    busy: Option<(i32, u64, u64)>,
}

impl CodeWriter for Writer<'_> {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        let t = self.target;
        let len = bytes.len() as u64;
        let code = Executable::within(&t.exe.text, addr.0, len)
            || t.in_maps(&[RegionKind::Text], addr.0, len);
        if !code {
            return Err(TargetError::BadAddress(addr));
        }
        if self.busy.is_none() {
            let written = addr.0..addr.0.saturating_add(len);
            let hit = self
                .stopped
                .threads
                .iter()
                .find(|th| interior(&written, th.regs.rip))
                .map(|th| (th.tid, th.regs.rip, addr.0));
            if let Some(hit) = hit {
                self.busy = Some(hit);
                return Err(PtraceError::Busy {
                    tid: hit.0,
                    pc: hit.1,
                    site: hit.2,
                    attempts: 0,
                }
                .into());
            }
        }
        t.mem
            .write(addr.0, bytes)
            .map_err(|errno| t.mem_error(addr.0, errno).into())
    }

    fn flush_icache(&mut self, _addr: Addr, _len: usize) {
        // x86-64: instruction fetch is coherent with stores (module docs).
    }
}

/// Outside a rendezvous, each write makes its own: the threads are
/// stopped, checked and released around it.
impl CodeWriter for PtraceTarget {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        // The writer checks the written bytes against every thread's PC.
        self.quiesce_sites(&[], &mut |w| w.write_code(addr, bytes))
            .map(|_| ())
    }

    fn flush_icache(&mut self, _addr: Addr, _len: usize) {}
}

crate::symtab::symbol_source_via!(PtraceTarget, exe.symbols);

/// `allocate` only reserves an address; the mapping is made by
/// [`Target::map`], once the payload has loaded: a payload refused while
/// loading (an unresolved symbol, a bad relocation) leaves nothing in the
/// process.
impl Allocator for PtraceTarget {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let len = page_up(size.max(1));
        let align = align.max(PAGE);
        let addr = self
            .free_slot(len, align)?
            .ok_or(TargetError::OutOfMemory {
                kind: kind.name(),
                size,
            })?;
        self.pending.push(Mapping { addr, len, kind });
        Ok(Addr(addr))
    }
}

impl Target for PtraceTarget {
    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    /// The traced process runs on this machine: alternatives follow this
    /// CPU's `cpuid`. Exception tables and bug frames keep the default (not
    /// honoured: the tracer has no handler in the tracee), so payloads
    /// carrying them are refused.
    fn cpu_features(&self) -> crate::CpuFeatures {
        crate::CpuFeatures::native(Arch::X86_64)
    }

    /// Creates the mapping reserved by `allocate` with an injected
    /// `mmap(MAP_FIXED_NOREPLACE)` and its final permissions, then writes
    /// the region's bytes through `/proc/PID/mem`.
    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        let addr = region.addr.0;
        let reserved = self
            .pending
            .iter()
            .position(|m| m.addr == addr && region.bytes.len() as u64 <= m.len);
        let Some(m) = reserved.and_then(|i| self.pending.get(i)).copied() else {
            return Err(TargetError::BadAddress(region.addr));
        };
        let prot = match m.kind {
            RegionKind::Text => libc::PROT_READ | libc::PROT_EXEC,
            RegionKind::ReadOnly => libc::PROT_READ,
            RegionKind::Data => libc::PROT_READ | libc::PROT_WRITE,
        };
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
        let args = [
            addr,
            m.len,
            u64::from(prot as u32),
            u64::from(flags as u32),
            u64::MAX,
            0,
        ];
        self.with_stopped(|t, stopped| {
            let got = t.syscall(stopped, "mmap", libc::SYS_mmap, args)?;
            if got != addr {
                // A kernel without MAP_FIXED_NOREPLACE took it as a hint.
                let _ = t.syscall(
                    stopped,
                    "munmap",
                    libc::SYS_munmap,
                    [got, m.len, 0, 0, 0, 0],
                );
                return Err(PtraceError::Syscall {
                    pid: t.pid,
                    name: "mmap(MAP_FIXED_NOREPLACE)",
                    errno: libc::EEXIST,
                });
            }
            Ok(())
        })?;
        self.pending.retain(|p| p.addr != addr);
        self.maps.push(m);
        self.mem
            .write(addr, &region.bytes)
            .map_err(|errno| self.mem_error(addr, errno).into())
    }

    /// Unmaps the region starting at `region.addr`: one this patcher made,
    /// or (after a ledger restore, `region.bytes` empty) the anonymous
    /// mapping starting there in `/proc/PID/maps`, whose length is the
    /// region's thanks to the free page kept around every region.
    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        let addr = region.addr.0;
        if let Some(i) = self.pending.iter().position(|m| m.addr == addr) {
            // Reserved, never mapped: nothing in the process.
            self.pending.remove(i);
            return Ok(());
        }
        let known = self.maps.iter().position(|m| m.addr == addr);
        let len = match known.and_then(|i| self.maps.get(i)) {
            Some(m) => m.len,
            None => sys::maps(self.pid)
                .map_err(|e| PtraceError::from_proc(self.pid, "maps", &e))?
                .iter()
                .find(|l| l.start == addr && l.path.is_empty())
                .and_then(|l| l.end.checked_sub(l.start))
                .ok_or(TargetError::BadAddress(region.addr))?,
        };
        // Never under a thread executing there, nor while a word of a
        // thread's stack points into it (a return address, conservatively).
        self.retrying(|t, stopped| {
            let span = usize::try_from(len).unwrap_or(usize::MAX);
            if let Some((tid, pc, _)) = stopped.pc_inside(&[(addr, span)]) {
                return Ok(Attempt::InTheWay((tid, pc, addr)));
            }
            if let Some((tid, word)) = t.stack_refers(stopped, addr..addr.saturating_add(len))? {
                return Ok(Attempt::InTheWay((tid, word, addr)));
            }
            let args = [addr, len, 0, 0, 0, 0];
            t.syscall(stopped, "munmap", libc::SYS_munmap, args)?;
            Ok(Attempt::Done(()))
        })
        .map_err(|e| match e {
            TargetError::Ptrace(PtraceError::Busy { tid, .. }) => {
                PtraceError::InUse { tid, addr }.into()
            }
            e => e,
        })?;
        if let Some(i) = known {
            self.maps.remove(i);
        }
        Ok(())
    }

    /// Records a region an earlier run created (from the ledger), so hooks
    /// in it may run and [`unmap`](Target::unmap) finds it.
    fn adopt(&mut self, region: &Placed) -> Result<(), TargetError> {
        if !self.maps.iter().any(|m| m.addr == region.addr.0) {
            self.maps.push(Mapping {
                addr: region.addr.0,
                len: page_up(region.size.max(1)),
                kind: region.kind,
            });
        }
        Ok(())
    }

    /// The ledger kept in the process by an earlier run, if any (see the
    /// module docs). `None` when the process has never been patched.
    fn ledger_read(&self) -> Result<Option<Vec<u8>>, TargetError> {
        let Some(addr) = self.ledger_addr()? else {
            return Ok(None);
        };
        let mut header = [0u8; LEDGER_HEADER_LEN];
        self.mem
            .read(addr, &mut header)
            .map_err(|errno| self.mem_error(addr, errno))?;
        let corrupt = PtraceError::LedgerCorrupt {
            pid: self.pid,
            addr,
        };
        let (magic, len) = header.split_at(LEDGER_MAGIC.len());
        let len = <[u8; 8]>::try_from(len)
            .map(u64::from_le_bytes)
            .map_err(|_| corrupt.clone())?;
        if magic != LEDGER_MAGIC || len > LEDGER_CAPACITY as u64 {
            return Err(corrupt.into());
        }
        if len == 0 {
            return Ok(None);
        }
        let mut bytes = std::vec![0u8; usize::try_from(len).map_err(|_| corrupt)?];
        let at = addr.wrapping_add(LEDGER_HEADER);
        self.mem
            .read(at, &mut bytes)
            .map_err(|errno| self.mem_error(at, errno))?;
        Ok(Some(bytes))
    }

    /// Stores the ledger in the process, creating its mapping on first use.
    /// The bytes are written before the length, so a reader never sees a
    /// length longer than what was written.
    fn ledger_write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        let capacity = LEDGER_CAPACITY;
        if bytes.len() > capacity {
            return Err(PtraceError::LedgerFull {
                needed: bytes.len(),
                capacity,
            }
            .into());
        }
        let addr = match self.ledger_addr()? {
            Some(a) => a,
            None if bytes.is_empty() => return Ok(()),
            None => self.ledger_create()?,
        };
        let at = addr.wrapping_add(LEDGER_HEADER);
        self.mem
            .write(at, bytes)
            .map_err(|errno| self.mem_error(at, errno))?;
        let len = (bytes.len() as u64).to_le_bytes();
        let at = addr.wrapping_add(LEDGER_MAGIC.len() as u64);
        self.mem
            .write(at, &len)
            .map_err(|errno| self.mem_error(at, errno))?;
        Ok(())
    }

    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        self.mem
            .read(addr.0, buf)
            .map_err(|errno| self.mem_error(addr.0, errno).into())
    }

    fn quiesce(
        &mut self,
        sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        self.quiesce_sites(sites, critical).map(|_| ())
    }

    fn build_id(&self) -> Option<&[u8]> {
        self.exe.build_id.as_deref()
    }

    /// Calls the hook in one stopped thread while the others stay stopped
    /// (see the module docs).
    fn run_hook(&mut self, hook: &Hook) -> Result<HookOutcome, TargetError> {
        if !self.in_maps(&[RegionKind::Text], hook.addr.0, 1) {
            return Err(TargetError::BadAddress(hook.addr));
        }
        let timeout = self.opts.hook_timeout;
        let ret =
            self.with_stopped(|t, stopped| inject::call(stopped, &t.mem, hook.addr.0, timeout))?;
        Ok(HookOutcome::Returned(ret))
    }
}
