//! The stop-the-world step: every other thread of the process parks in a
//! signal handler until released.
//!
//! # Protocol
//!
//! Rounds are numbered (`gen`, from 1, never reused). The patcher, holding
//! the process-wide patch lock:
//!
//! 1. publishes the round (`ACTIVE = gen`);
//! 2. lists `/proc/self/task`, gives each new thread id a slot (its report
//!    cleared) and then sends it [`signal()`] with `tgkill`;
//! 3. waits (futex on `PENDING`, which the last thread to arrive wakes;
//!    bounded by the timeout) until every slot holds a report of this
//!    round; a thread that exited meanwhile (`tgkill` answers `ESRCH`) is
//!    dropped;
//! 4. lists `/proc/self/task` again: a thread created before its creator
//!    stopped appears here and goes back to step 2. Stopped threads create
//!    none, so a listing with no new thread ends the rendezvous.
//!
//! The handler reads the round; if one is active and not yet released, it
//! finds its own slot by thread id and stores, in one atomic word, a tag of
//! the round and the PC of the interrupted instruction (from the
//! `ucontext`: `REG_RIP` on x86-64, `pc` on AArch64); it wakes the patcher
//! when it is the last. It then sleeps on the `RELEASE_WORD` futex until
//! `RELEASED >= gen`, executes a serialising instruction (`isb` on
//! AArch64) and returns.
//!
//! Only a report tagged with the current round counts, so a handler of an
//! earlier round that is still running (a signal the thread had blocked
//! during a timed-out round, or a thread preempted in the handler) cannot
//! make a thread look stopped, nor give it another's PC: at worst it
//! overwrites a current report, the thread then looks missing, and the
//! rendezvous times out, writing nothing. `PENDING` only decides when to
//! wake the patcher, which checks every slot's report itself.
//!
//! Everything the handler does is async-signal-safe: atomics, `gettid`,
//! `futex` system calls; `errno` is saved and restored. It runs with every
//! blockable signal blocked (`sa_mask` full), so no other handler runs on
//! a parked thread while it is stopped.
//!
//! The patcher's side allocates nothing and takes no lock: a parked thread
//! may hold the allocator's lock, so allocating while the world is stopped
//! could deadlock. The slot table is a static array; `/proc/self/task` is
//! read with `getdents64` into a stack buffer.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{cpu, qemu};
use crate::{exe, TargetError};

/// The most threads a rendezvous stops (the slot table is static).
pub const MAX_THREADS: usize = 1024;

/// One thread of the current round.
struct Slot {
    /// Thread id (written by the patcher before `COUNT` covers the slot).
    tid: AtomicI32,
    /// `tag(gen) << PC_BITS | pc`: the round it stopped for and where (the
    /// address of the next instruction it executes); 0 before it stops.
    report: AtomicU64,
    /// The thread exited before stopping (patcher only).
    gone: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            tid: AtomicI32::new(0),
            report: AtomicU64::new(0),
            gone: AtomicBool::new(false),
        }
    }
}

/// User-space addresses fit in 47 bits on x86-64, 48 on AArch64 (unless
/// a mapping was asked for above them).
const PC_BITS: u32 = cpu::PC_BITS;
const PC_MASK: u64 = (1 << PC_BITS) - 1;
/// Sites must end at or below this address: a PC that does not fit in a
/// report is reported as this, which must lie outside every site.
pub const PC_LIMIT: u64 = PC_MASK;

/// The round's tag in a report: never 0, so a cleared report matches no
/// round. Rounds `2^(64 - PC_BITS) - 1` apart (131,071 on x86-64, 65,535
/// on AArch64) share a tag; a handler that lingers that long is as good
/// as dead.
// Cannot overflow: `gen % TAGS + 1` is at most `TAGS`, below
// `2^(64 - PC_BITS)`, so the shift keeps every bit.
#[allow(clippy::arithmetic_side_effects)]
fn tag(gen: u64) -> u64 {
    const TAGS: u64 = (1 << (64 - PC_BITS)) - 1;
    (gen % TAGS + 1) << PC_BITS
}

/// The PC of a report of round `gen`, if it is one. A PC that does not fit
/// in `PC_BITS` is reported as `PC_MASK`, above any site.
fn report_pc(report: u64, gen: u64) -> Option<u64> {
    (report & !PC_MASK == tag(gen)).then_some(report & PC_MASK)
}

static SLOTS: [Slot; MAX_THREADS] = [const { Slot::new() }; MAX_THREADS];
/// Slots in use in the current round.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The round in progress, 0 when none.
static ACTIVE: AtomicU64 = AtomicU64::new(0);
/// The last round released.
static RELEASED: AtomicU64 = AtomicU64::new(0);
/// The last round started (patcher only, under the patch lock).
static LAST_GEN: AtomicU64 = AtomicU64::new(0);
/// Futex word: bumped at every release.
static RELEASE_WORD: AtomicU32 = AtomicU32::new(0);
/// Futex word: threads signalled in this round that have not arrived yet
/// (nor exited); the last to arrive wakes the patcher.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// The rendezvous signal: `SIGRTMIN + 7`, a real-time signal (queued, no
/// default meaning to any library we know of; glibc keeps the first two
/// for itself and already offsets `SIGRTMIN` past them).
pub fn signal() -> i32 {
    // `SIGRTMIN` is at most 64: the addition cannot saturate.
    libc::SIGRTMIN().saturating_add(7)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn os(op: &'static str) -> TargetError {
    TargetError::Os { op, errno: errno() }
}

fn gettid() -> i32 {
    // SAFETY: gettid takes no argument and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    i32::try_from(tid).unwrap_or(0)
}

/// `futex(FUTEX_WAIT_PRIVATE)`: sleeps while `*word == expected`, at most
/// `timeout`. Returns on wake-up, timeout, `EINTR` or `EAGAIN` alike: every
/// caller re-checks its condition in a loop.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32; the timespec (if any) lives
    // for the call; FUTEX_WAIT only reads them.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        )
    };
}

/// `futex(FUTEX_WAKE_PRIVATE)`: wakes up to `n` sleepers on `word`.
fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access
    // memory beyond the futex key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        )
    };
}

/// The signal handler. Async-signal-safe: see the module doc.
extern "C" fn on_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    let errno_at = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno_at };
    if let Some(gen) = arrive(ctx) {
        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            futex_wake(&PENDING, 1);
        }
        wait_release(gen);
    }
    // SAFETY: as above.
    unsafe { *errno_at = saved };
}

/// Reports this thread's PC in its slot of the active round; the round, or
/// `None` when there is nothing to stop for.
fn arrive(ctx: *mut c_void) -> Option<u64> {
    let gen = ACTIVE.load(Ordering::SeqCst);
    if gen == 0 || RELEASED.load(Ordering::SeqCst) >= gen {
        return None;
    }
    let tid = gettid();
    let count = COUNT.load(Ordering::Acquire).min(MAX_THREADS);
    let slot = SLOTS
        .iter()
        .take(count)
        .find(|s| s.tid.load(Ordering::Relaxed) == tid)?;
    // SAFETY: the kernel passes a valid `ucontext_t` as the third argument
    // of an SA_SIGINFO handler; it is only read.
    let pc = unsafe { ctx.cast::<libc::ucontext_t>().as_ref() }.map_or(0, cpu::pc);
    let pc = if pc > PC_MASK { PC_MASK } else { pc };
    slot.report.store(tag(gen) | pc, Ordering::SeqCst);
    Some(gen)
}

/// Sleeps until round `gen` is released, then serialises.
fn wait_release(gen: u64) {
    loop {
        let word = RELEASE_WORD.load(Ordering::Acquire);
        if RELEASED.load(Ordering::Acquire) >= gen {
            break;
        }
        futex_wait(&RELEASE_WORD, word, None);
    }
    // Intel SDM vol. 3A §8.1.3, Arm ARM B2.2.5: the executing processor
    // waits for the modifying one's flag (RELEASED), then serialises (an
    // `isb` on AArch64) before executing the modified code.
    cpu::serialize();
}

/// Installs the handler of [`signal()`], unless another handler has it.
pub fn install() -> Result<(), TargetError> {
    cpu::init();
    qemu::detect();
    let sig = signal();
    let ours = on_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void)
        as libc::sighandler_t;
    // SAFETY: a zeroed sigaction is a valid out-parameter; sigaction with
    // a null new action only reads the current one.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaction(sig, core::ptr::null(), &mut old) } != 0 {
        return Err(os("sigaction"));
    }
    if old.sa_sigaction == ours {
        return Ok(());
    }
    if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
        return Err(TargetError::SignalInUse { signal: sig });
    }
    // SAFETY: zeroed is a valid sigaction; the fields are then set.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = ours;
    // SA_RESTART: system calls the signal interrupts restart where Linux
    // allows it (signal(7) lists those that never do).
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: sa_mask is a sigset_t owned by `act`; then installs the
    // handler, which is async-signal-safe.
    unsafe {
        libc::sigfillset(&mut act.sa_mask);
        if libc::sigaction(sig, &act, core::ptr::null_mut()) != 0 {
            return Err(os("sigaction"));
        }
    }
    Ok(())
}

fn tgkill(tid: i32, sig: i32) -> Result<(), i32> {
    // SAFETY: getpid cannot fail; tgkill only sends a signal to a thread of
    // this process (or reports that it does not exist).
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

fn parse_tid(name: &[u8]) -> Option<i32> {
    i32::try_from(parse_decimal(name)?).ok()
}

/// A decimal number of ASCII digits only.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A stopped world: every other thread is parked until [`Stopped::release`]
/// (or drop).
pub struct Stopped {
    gen: u64,
    count: usize,
    /// When the first signal was sent.
    pub started: Instant,
}

impl Stopped {
    /// `(tid, pc)` of every parked thread (the PC is `2^PC_BITS - 1`, above
    /// any code, when the report is not of this round: it cannot be, once
    /// the rendezvous has succeeded).
    pub fn parked(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        SLOTS
            .iter()
            .take(self.count)
            .filter(|s| !s.gone.load(Ordering::Relaxed))
            .map(|s| {
                let report = s.report.load(Ordering::SeqCst);
                let pc = report_pc(report, self.gen).unwrap_or(PC_MASK);
                (s.tid.load(Ordering::Relaxed), pc)
            })
    }

    /// Threads parked.
    pub fn threads(&self) -> usize {
        self.parked().count()
    }

    /// Lets every parked thread run again.
    pub fn release(self) {
        // Drop does it.
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        release(self.gen);
    }
}

fn release(gen: u64) {
    ACTIVE.store(0, Ordering::SeqCst);
    RELEASED.store(gen, Ordering::SeqCst);
    RELEASE_WORD.fetch_add(1, Ordering::Release);
    futex_wake(&RELEASE_WORD, i32::MAX);
}

/// Stops every thread of the process but the caller, waiting at most
/// `timeout` in all. The caller must hold the patch lock (one rendezvous at
/// a time) and must not block the signal itself.
pub fn stop(timeout: Duration) -> Result<Stopped, TargetError> {
    let deadline = exe::deadline(Instant::now(), timeout);
    let dir = TaskDir::open()?;
    let gen = LAST_GEN.load(Ordering::Relaxed).saturating_add(1);
    LAST_GEN.store(gen, Ordering::Relaxed);
    COUNT.store(0, Ordering::SeqCst);
    PENDING.store(0, Ordering::SeqCst);
    ACTIVE.store(gen, Ordering::SeqCst);
    // From here, dropping `stopped` releases the round.
    let mut stopped = Stopped {
        gen,
        count: 0,
        started: Instant::now(),
    };
    let me = gettid();
    let sig = signal();
    let mut first = true;
    loop {
        // 2. New threads get a slot, then the signal.
        let before = stopped.count;
        dir.each_task(|tid| {
            if tid == me || qemu::known(tid) {
                return Ok(());
            }
            let count = stopped.count;
            let known = SLOTS
                .iter()
                .take(count)
                .any(|s| s.tid.load(Ordering::Relaxed) == tid);
            if known {
                return Ok(());
            }
            let slot = SLOTS
                .get(count)
                .ok_or(TargetError::TooManyThreads { max: MAX_THREADS })?;
            slot.tid.store(tid, Ordering::Relaxed);
            slot.report.store(0, Ordering::SeqCst);
            slot.gone.store(false, Ordering::Relaxed);
            PENDING.fetch_add(1, Ordering::SeqCst);
            stopped.count = count.saturating_add(1);
            COUNT.store(stopped.count, Ordering::Release);
            Ok(())
        })?;
        if stopped.count == before {
            return Ok(stopped);
        }
        if first {
            // The pause starts with the first signal.
            stopped.started = Instant::now();
            first = false;
        }
        for slot in SLOTS.iter().take(stopped.count).skip(before) {
            match tgkill(slot.tid.load(Ordering::Relaxed), sig) {
                Ok(()) => {}
                Err(libc::ESRCH) => drop_gone(slot),
                Err(errno) => {
                    return Err(TargetError::Os {
                        op: "tgkill",
                        errno,
                    })
                }
            }
        }
        // 3. Wait for every slot of this round.
        wait_all(&stopped, deadline, timeout)?;
    }
}

/// Marks a slot whose thread no longer exists: it will never arrive.
fn drop_gone(slot: &Slot) {
    if !slot.gone.swap(true, Ordering::Relaxed) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long the patcher sleeps between checks that missing threads still
/// exist.
const SLICE: Duration = Duration::from_millis(1);

fn wait_all(stopped: &Stopped, deadline: Instant, timeout: Duration) -> Result<(), TargetError> {
    let missing = || {
        SLOTS.iter().take(stopped.count).filter(|s| {
            !s.gone.load(Ordering::Relaxed)
                && report_pc(s.report.load(Ordering::SeqCst), stopped.gen).is_none()
        })
    };
    let mut checked = Instant::now();
    loop {
        // PENDING only decides when to look: a handler of an earlier round
        // may have decremented it (see the module doc), the reports decide.
        let pending = PENDING.load(Ordering::SeqCst);
        if missing().next().is_none() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline || now.duration_since(checked) >= SLICE {
            // A thread that exited after the signal was sent never arrives;
            // neither does an exited main thread, a zombie until the whole
            // process exits (it stays in `/proc/self/task`).
            for slot in missing() {
                let tid = slot.tid.load(Ordering::Relaxed);
                if tgkill(tid, 0) == Err(libc::ESRCH) || exited(tid) || qemu::own_thread(tid) {
                    drop_gone(slot);
                }
            }
            checked = now;
            if now >= deadline {
                if let Some(slot) = missing().next() {
                    let tid = slot.tid.load(Ordering::Relaxed);
                    return Err(TargetError::RendezvousTimeout { tid, timeout });
                }
                return Ok(());
            }
            continue;
        }
        futex_wait(
            &PENDING,
            pending,
            Some(deadline.saturating_duration_since(now).min(SLICE)),
        );
    }
}

/// Whether thread `tid` has exited (state `Z` or `X` in
/// `/proc/self/task/<tid>/stat`), read without allocating.
fn exited(tid: i32) -> bool {
    let mut buf = [0u8; 512];
    let stat = read_task_file(tid, b"/stat\0", &mut buf).unwrap_or(&[]);
    matches!(stat_state(stat), Some(b'Z' | b'X'))
}

/// The start of `/proc/self/task/<tid><tail>` (`tail` NUL-terminated),
/// read without allocating into `buf`.
pub(super) fn read_task_file<'b>(tid: i32, tail: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut path = [0u8; 48];
    let path = task_path(tid, tail, &mut path)?;
    // SAFETY: `path` is NUL-terminated; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: reads at most `buf.len()` bytes into buf.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: fd was opened above and is not used after this.
    unsafe { libc::close(fd) };
    buf.get(..usize::try_from(n).ok()?)
}

/// `/proc/self/task/<tid><tail>` in `buf` (`tail` ends with a NUL).
fn task_path<'b>(tid: i32, tail: &[u8], buf: &'b mut [u8; 48]) -> Option<&'b [u8]> {
    const HEAD: &[u8] = b"/proc/self/task/";
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(tid).ok()?;
    let mut i = digits.len();
    loop {
        i = i.checked_sub(1)?;
        *digits.get_mut(i)? = char::from_digit(n % 10, 10).and_then(|c| u8::try_from(c).ok())?;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = digits.get(i..)?;
    let end = HEAD
        .len()
        .checked_add(digits.len())?
        .checked_add(tail.len())?;
    let out = buf.get_mut(..end)?;
    let (head, rest) = out.split_at_mut(HEAD.len());
    let (mid, rest) = rest.split_at_mut(digits.len());
    head.copy_from_slice(HEAD);
    mid.copy_from_slice(digits);
    rest.copy_from_slice(tail);
    Some(out)
}

/// The state letter of a `stat` line: the first field after the last `)`
/// (the command name in parentheses may itself hold any character).
fn stat_state(stat: &[u8]) -> Option<u8> {
    stat_field(stat, 3)?.first().copied()
}

/// Field `n` (1-based, as in proc(5)) of a `stat` line, `n >= 3`: the
/// fields after the command name, which is in parentheses and may itself
/// hold any character, are counted from the last `)`.
pub(super) fn stat_field(stat: &[u8], n: usize) -> Option<&[u8]> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close.checked_add(2)?..)?
        .split(|&b| b == b' ' || b == b'\n')
        .nth(n.checked_sub(3)?)
}

/// `/proc/self/task`, open for the rendezvous; listed again from the start
/// at each call of [`TaskDir::each_task`].
struct TaskDir(libc::c_int);

impl TaskDir {
    fn open() -> Result<TaskDir, TargetError> {
        const PATH: &core::ffi::CStr = c"/proc/self/task";
        // SAFETY: PATH is NUL-terminated; the fd is closed on drop.
        let fd = unsafe {
            libc::open(
                PATH.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(os("open /proc/self/task"));
        }
        Ok(TaskDir(fd))
    }

    /// Calls `f` with each thread id, without allocating.
    fn each_task(
        &self,
        mut f: impl FnMut(i32) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        // SAFETY: lseek on the directory fd owned by self.
        if unsafe { libc::lseek(self.0, 0, libc::SEEK_SET) } < 0 {
            return Err(os("lseek /proc/self/task"));
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: getdents64 writes at most `buf.len()` bytes into buf.
            let n =
                unsafe { libc::syscall(libc::SYS_getdents64, self.0, buf.as_mut_ptr(), buf.len()) };
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                return Err(os("getdents64 /proc/self/task"));
            }
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Ok(());
            }
            let mut at = 0usize;
            // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
            while let Some(rec) = buf.get(at..n) {
                let Some(&[lo, hi]) = rec.get(16..18) else {
                    break;
                };
                let reclen = usize::from(u16::from_le_bytes([lo, hi]));
                if reclen == 0 {
                    break;
                }
                let name = rec.get(19..reclen.min(rec.len())).unwrap_or(&[]);
                let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
                if let Some(tid) = parse_tid(name) {
                    f(tid)?;
                }
                at = at.saturating_add(reclen);
            }
        }
    }
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        // SAFETY: the fd was opened by `open` and is not used after this.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::{exited, parse_tid, report_pc, stat_field, stat_state, tag, task_path};

    #[test]
    fn reports_of_other_rounds_do_not_count() {
        let pc = 0x5555_0000_1234;
        let period = (1u64 << (64 - super::PC_BITS)) - 1;
        for gen in [1, 2, period - 1, period, period + 1, u64::MAX - 1] {
            let r = tag(gen) | pc;
            assert_eq!(report_pc(r, gen), Some(pc), "{gen}");
            assert_eq!(report_pc(r, gen + 1), None, "{gen}");
            assert_eq!(report_pc(0, gen), None, "a cleared report");
        }
    }

    #[test]
    fn stat_lines() {
        assert_eq!(stat_state(b"123 (a) b) Z 1 2 3"), Some(b'Z'));
        assert_eq!(stat_state(b"123 (worker) S 1 2"), Some(b'S'));
        assert_eq!(stat_state(b"123 (trunc"), None);
        let line = b"7 (a b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 19\n";
        assert_eq!(stat_field(line, 22), Some(&b"4242"[..]));
        assert_eq!(stat_field(line, 3), Some(&b"S"[..]));
        assert_eq!(stat_field(line, 2), None);
        assert_eq!(stat_field(line, 99), None);
        let mut buf = [0u8; 48];
        assert_eq!(
            task_path(4_194_304, b"/stat\0", &mut buf),
            Some(&b"/proc/self/task/4194304/stat\0"[..])
        );
        assert_eq!(
            task_path(0, b"/stat\0", &mut buf),
            Some(&b"/proc/self/task/0/stat\0"[..])
        );
        assert_eq!(task_path(-1, b"/stat\0", &mut buf), None);
        assert_eq!(
            task_path(7, b"/status\0", &mut buf),
            Some(&b"/proc/self/task/7/status\0"[..])
        );
        // This very thread is alive (reading /proc: not under Miri's isolation).
        if !cfg!(miri) {
            assert!(!exited(super::gettid()));
        }
    }

    #[test]
    fn task_names() {
        assert_eq!(parse_tid(b"1234"), Some(1234));
        assert_eq!(parse_tid(b"."), None);
        assert_eq!(parse_tid(b".."), None);
        assert_eq!(parse_tid(b""), None);
        assert_eq!(parse_tid(b"99999999999"), None);
    }
}
