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
//! * **Which threads are qemu's.** A guest thread never blocks a host
//!   signal for long: qemu keeps the guest's signal mask itself and takes
//!   every host signal as it comes. So, under qemu-user only, a thread that
//!   the rendezvous is still waiting for and whose kernel status shows a
//!   signal both pending and blocked (`SigPnd & SigBlk`, with
//!   `ShdPnd` for the process-wide queue left out) is the emulator's: it
//!   is recorded and never signalled again. A guest thread that blocks the
//!   rendezvous signal is still refused by timeout, as on a real kernel:
//!   qemu holds that signal in its own queue, not the kernel's.
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
    if pending & blocked == 0 {
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
    use super::field;

    #[test]
    fn status_fields() {
        let s = b"Name:\tx\nSigPnd:\t0000040000000000\nShdPnd:\t0000000000000000\nSigBlk:\tfffffffe7ffbfa77\n";
        assert_eq!(field(s, b"SigPnd:"), Some(1 << 42));
        assert_eq!(field(s, b"SigBlk:"), Some(0xffff_fffe_7ffb_fa77));
        assert_eq!(field(s, b"SigIgn:"), None);
        assert_eq!(field(b"SigPnd:\tzz\n", b"SigPnd:"), None);
        assert_eq!(field(b"SigPnd:\t\n", b"SigPnd:"), None);
        assert_eq!(field(b"SigPnd:\t11112222333344445\n", b"SigPnd:"), None);
    }
}
