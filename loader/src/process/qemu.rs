//! Running under qemu-user, which CI uses to run the AArch64 build on
//! x86-64: the emulator's own threads are not threads of the program.
//!
//! qemu-user runs each guest thread on a host thread of its own, so
//! `/proc/self/task` lists them all, but it lists qemu's own helper thread
//! too (its RCU thread), which blocks every host signal and never runs
//! guest code: the rendezvous signal stays pending there, and the
//! rendezvous would time out on every attempt.
//!
//! # Decisions
//!
//! * **Detection.** qemu-user answers `/proc/self/exe` with the guest's
//!   executable but not `/proc/thread-self/exe`, which still names the
//!   emulator; on a real kernel the two always agree. Checked once, when
//!   the handler is installed.
//! * **Which threads are qemu's.** Under qemu-user only, a thread the
//!   rendezvous is still waiting for is the emulator's when all three
//!   hold: (1) the signal sent is pending and blocked in the kernel's view
//!   (`SigPnd & SigBlk` of `/proc/self/task/TID/status`); (2) it blocks
//!   every asynchronous signal (`SIGHUP`, `SIGINT`, `SIGUSR1`, `SIGUSR2`,
//!   `SIGALRM`, `SIGTERM`, `SIGCHLD`), as qemu creates its helper threads;
//!   (3) it started in the clock tick of the process or the next (field
//!   22 of `stat`), since qemu starts it before it loads the program. It is then
//!   recorded and never signalled again. A guest thread that blocks the
//!   rendezvous signal is still refused by timeout, as on a real kernel
//!   (qemu passes the guest's mask on to the kernel, so (1) alone would
//!   not tell them apart); a guest thread that met all three would be left
//!   running during the writes, a risk taken only under emulation.
//! * Nothing changes on a real kernel: the check never runs there.
//!
//! Allocation-free, like the rest of the rendezvous.

use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The process runs under qemu-user.
static QEMU_USER: AtomicBool = AtomicBool::new(false);

/// Emulator threads found so far (qemu-user has one; a few spare slots).
static OWN: [AtomicI32; 4] = [const { AtomicI32::new(0) }; 4];

/// Reads the target of the symbolic link `path` into `buf`.
fn readlink<'b>(path: &core::ffi::CStr, buf: &'b mut [u8; 512]) -> Option<&'b [u8]> {
    // SAFETY: `path` is NUL-terminated; readlink writes at most `buf.len()`
    // bytes into `buf`.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    buf.get(..usize::try_from(n).ok()?)
}

/// Finds out, once, whether the process runs under qemu-user.
pub(super) fn detect() {
    let mut a = [0u8; 512];
    let mut b = [0u8; 512];
    let exe = readlink(c"/proc/self/exe", &mut a);
    let thread = readlink(c"/proc/thread-self/exe", &mut b);
    let emulated = matches!((exe, thread), (Some(e), Some(t)) if e != t);
    QEMU_USER.store(emulated, Ordering::Relaxed);
}

/// Whether `tid` is a thread of the emulator found earlier.
pub(super) fn known(tid: i32) -> bool {
    tid != 0 && OWN.iter().any(|t| t.load(Ordering::Relaxed) == tid)
}

/// Whether `tid`, a thread the rendezvous waits for, is the emulator's
/// (module doc); if so it is recorded for later rounds. Always false on a
/// real kernel.
pub(super) fn own_thread(tid: i32) -> bool {
    if !QEMU_USER.load(Ordering::Relaxed) || tid == 0 {
        return false;
    }
    let mut buf = [0u8; 4096];
    let Some(status) = super::rendezvous::read_task_file(tid, b"/status\0", &mut buf) else {
        return false;
    };
    let (Some(pending), Some(blocked)) = (field(status, b"SigPnd:"), field(status, b"SigBlk:"))
    else {
        return false;
    };
    if pending & blocked == 0 || blocked & ASYNC != ASYNC {
        return false;
    }
    let main = i32::try_from(std::process::id()).unwrap_or(0);
    let (mine, process) = (start_tick(tid), start_tick(main));
    // The same tick, or the next where qemu's start-up straddled one.
    let (Some(mine), Some(process)) = (mine, process) else {
        return false;
    };
    if mine > process.saturating_add(1) {
        return false;
    }
    for slot in &OWN {
        if slot
            .compare_exchange(0, tid, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    true
}

/// When thread `tid` started, in clock ticks since boot (field 22 of
/// its `stat`).
fn start_tick(tid: i32) -> Option<u64> {
    let mut buf = [0u8; 512];
    let stat = super::rendezvous::read_task_file(tid, b"/stat\0", &mut buf)?;
    super::rendezvous::stat_field(stat, 22).and_then(super::rendezvous::parse_decimal)
}

/// The asynchronous signals a helper thread of qemu blocks (bit `n - 1`
/// for signal `n`).
const ASYNC: u64 = bit(libc::SIGHUP)
    | bit(libc::SIGINT)
    | bit(libc::SIGUSR1)
    | bit(libc::SIGUSR2)
    | bit(libc::SIGALRM)
    | bit(libc::SIGTERM)
    | bit(libc::SIGCHLD);

/// The bit of signal `sig` (1 to 31) in a `status` mask.
// Cannot overflow: only evaluated in the constant above, where an
// overflow would be a compile-time error.
#[allow(clippy::arithmetic_side_effects)]
const fn bit(sig: libc::c_int) -> u64 {
    1 << (sig - 1)
}

/// The hexadecimal value of the line starting with `name` in a `status`
/// file.
fn field(status: &[u8], name: &[u8]) -> Option<u64> {
    let line = status
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(name))?;
    let hex = line.trim_ascii();
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    hex.iter().try_fold(0u64, |acc, &c| {
        let d = char::from(c).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::{field, ASYNC};

    #[test]
    fn status_fields() {
        let s = b"Name:\tx\nSigPnd:\t0000040000000000\nShdPnd:\t0000000000000000\nSigBlk:\tfffffffe7ffbfa77\n";
        assert_eq!(field(s, b"SigPnd:"), Some(1 << 42));
        assert_eq!(field(s, b"SigBlk:"), Some(0xffff_fffe_7ffb_fa77));
        assert_eq!(field(s, b"SigIgn:"), None);
        assert_eq!(field(b"SigPnd:\tzz\n", b"SigPnd:"), None);
        assert_eq!(field(b"SigPnd:\t\n", b"SigPnd:"), None);
        assert_eq!(field(b"SigPnd:\t11112222333344445\n", b"SigPnd:"), None);
        // qemu 7.2's helper thread (first lines), a thread blocking one.
        assert_eq!(0xffff_fffe_7ffb_fa77 & ASYNC, ASYNC);
        assert_ne!(1 << 42 & ASYNC, ASYNC);
    }
}
