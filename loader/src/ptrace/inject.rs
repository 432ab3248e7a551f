//! Running code in a stopped thread of the target: a system call, or a
//! call of an `int fn(void)`, then the thread's registers restored exactly.
//!
//! Both run in one thread while every other thread stays stopped (the
//! caller holds a [`Stopped`] rendezvous), so a byte borrowed for a
//! `syscall` instruction is never seen by another thread.
//!
//! * **System call**: `rip` is pointed at a `syscall` instruction, `rax`
//!   and the argument registers set, `orig_rax` set to -1 (so the kernel's
//!   syscall-restart logic leaves the injected registers alone) and the
//!   thread single-stepped over it. The instruction is the one the thread
//!   just executed when it was stopped inside a system call (`rip - 2`
//!   holds `0f 05`), or else two bytes written at its `rip` and restored
//!   afterwards.
//! * **Call**: `rsp` moves below the red zone, is aligned as the SysV ABI
//!   wants at a call, and a return address of 0 is pushed; `rip` is the
//!   function. When it returns, the thread faults on address 0: that
//!   `SIGSEGV` stop (never delivered) ends the call, and `eax` is the
//!   result. Any other fault is reported, not delivered either.
//!
//! In both cases the saved registers are written back, so a thread that
//! was stopped in an interrupted system call still carries
//! `-ERESTARTSYS`/`-ERESTARTNOINTR`/`-ERESTARTNOHAND`/
//! `-ERESTART_RESTARTBLOCK` in `rax` and the call number in `orig_rax`: at
//! detach the kernel restarts the call, as gdb relies on after an inferior
//! call.

use std::time::{Duration, Instant};
use std::vec::Vec;

use super::stop::{Stopped, Thread};
use super::sys::{self, Mem, Stop};
use super::PtraceError;
use crate::exe;
use crate::reloc::low32;

/// The `syscall` instruction.
const SYSCALL: [u8; 2] = [0x0f, 0x05];
/// Bytes left below the stack pointer before an injected call: the 128-byte
/// red zone and some margin.
const STACK_GAP: u64 = 256;

/// The thread injections run in: preferably one stopped inside a system
/// call (its `syscall` instruction is reused, no code byte is borrowed) and
/// not on its way to a signal (that signal stays untouched); else one not
/// on its way to a signal; else the first.
fn pick(stopped: &Stopped) -> Result<&Thread, PtraceError> {
    let quiet = || stopped.threads.iter().filter(|t| t.pending == 0);
    quiet()
        .find(|t| (t.regs.orig_rax as i64) >= 0)
        .or_else(|| quiet().next())
        .or_else(|| stopped.threads.first())
        .ok_or(PtraceError::NoThread)
}

/// Whether a stop for `sig` is asynchronous (sent by someone), rather
/// than caused by the injected code: it is deferred, not reported.
fn asynchronous(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGTRAP | libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE
    )
}

/// Resumes `tid` (one step, or until it stops) until `done` says the
/// injected code finished, deferring asynchronous signals into `deferred`
/// (re-sent after the registers are restored, so none is lost). A thread
/// that does not finish by `deadline` is interrupted and reported.
fn run(
    tid: i32,
    step: bool,
    deadline: Instant,
    deferred: &mut Vec<i32>,
    done: impl Fn(Stop, &sys::Regs) -> bool,
) -> Result<sys::Regs, PtraceError> {
    loop {
        let resumed = if step {
            sys::single_step(tid)
        } else {
            sys::cont(tid)
        };
        resumed.map_err(|errno| PtraceError::Resume { tid, errno })?;
        let stop = match sys::wait(tid, deadline) {
            Ok(Some(Stop::Gone)) => return Err(PtraceError::ThreadGone { tid }),
            Ok(Some(stop)) => stop,
            Ok(None) => {
                // Take the thread back before its registers are restored.
                let _ = sys::interrupt(tid);
                let _ = sys::wait(tid, exe::deadline(Instant::now(), Duration::from_secs(1)));
                return Err(PtraceError::InjectionTimeout { tid });
            }
            Err(errno) => return Err(PtraceError::Wait { tid, errno }),
        };
        let regs = sys::get_regs(tid).map_err(|errno| PtraceError::Regs { tid, errno })?;
        if done(stop, &regs) {
            return Ok(regs);
        }
        match stop {
            Stop::Signal(sig) if asynchronous(sig) => deferred.push(sig),
            Stop::Event => {}
            other => {
                return Err(PtraceError::Injected {
                    tid,
                    signal: stop_signal(other),
                    pc: regs.rip,
                })
            }
        }
    }
}

/// Runs system call `nr` with `args` in a stopped thread and returns its
/// raw result (a negative errno on failure).
pub(crate) fn syscall(
    stopped: &Stopped,
    mem: &Mem,
    nr: i64,
    args: [u64; 6],
    timeout: Duration,
) -> Result<i64, PtraceError> {
    let t = pick(stopped)?;
    let saved = t.regs;
    let tid = t.tid;
    // The `syscall` just before the PC, if the thread stopped right after one.
    let syscall_before = saved.rip.checked_sub(2).filter(|&at| {
        let mut before = [0u8; 2];
        mem.read(at, &mut before).is_ok() && before == SYSCALL
    });
    let (site, borrowed) = if let Some(at) = syscall_before {
        (at, None)
    } else {
        let mut old = [0u8; 2];
        mem.read(saved.rip, &mut old)
            .and_then(|()| mem.write(saved.rip, &SYSCALL))
            .map_err(|errno| PtraceError::Mem {
                pid: tid,
                addr: saved.rip,
                errno,
            })?;
        (saved.rip, Some(old))
    };
    let mut regs = saved;
    regs.rip = site;
    regs.rax = nr as u64;
    regs.orig_rax = u64::MAX;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    let mut deferred = Vec::new();
    let after = site.saturating_add(SYSCALL.len() as u64);
    let result = sys::set_regs(tid, &regs)
        .map_err(|errno| PtraceError::Regs { tid, errno })
        .and_then(|()| {
            run(
                tid,
                true,
                exe::deadline(Instant::now(), timeout),
                &mut deferred,
                |_, r| r.rip == after,
            )
        });
    let restored = restore(stopped.pid(), tid, &saved, mem, borrowed, &deferred);
    let after = result?;
    restored?;
    Ok(after.rax as i64)
}

/// Calls `int fn(void)` at `addr` in a stopped thread; returns its value.
pub(crate) fn call(
    stopped: &Stopped,
    mem: &Mem,
    addr: u64,
    timeout: Duration,
) -> Result<i32, PtraceError> {
    let t = pick(stopped)?;
    let saved = t.regs;
    let tid = t.tid;
    let sp = (saved.rsp.saturating_sub(STACK_GAP) & !15).saturating_sub(8);
    mem.write(sp, &0u64.to_ne_bytes())
        .map_err(|errno| PtraceError::Mem {
            pid: tid,
            addr: sp,
            errno,
        })?;
    let mut regs = saved;
    regs.rip = addr;
    regs.rsp = sp;
    regs.rax = 0;
    regs.orig_rax = u64::MAX;
    let deadline = exe::deadline(Instant::now(), timeout);
    let mut deferred = Vec::new();
    let result = sys::set_regs(tid, &regs)
        .map_err(|errno| PtraceError::Regs { tid, errno })
        .and_then(|()| {
            run(tid, false, deadline, &mut deferred, |stop, r| {
                stop == Stop::Signal(libc::SIGSEGV) && r.rip == 0
            })
        });
    let restored = restore(stopped.pid(), tid, &saved, mem, None, &deferred);
    let after = result?;
    restored?;
    // The low 32 bits of rax: the hook returns a C int.
    Ok(low32(after.rax.into()) as i32)
}

fn stop_signal(stop: Stop) -> i32 {
    match stop {
        Stop::Signal(s) => s,
        Stop::Event | Stop::Gone => 0,
    }
}

/// Writes back the saved registers and any borrowed code bytes, and sends
/// the deferred signals again (they stay pending until the detach).
fn restore(
    pid: i32,
    tid: i32,
    saved: &sys::Regs,
    mem: &Mem,
    borrowed: Option<[u8; 2]>,
    deferred: &[i32],
) -> Result<(), PtraceError> {
    for &sig in deferred {
        sys::tgkill(pid, tid, sig);
    }
    let bytes = match borrowed {
        Some(old) => mem
            .write(saved.rip, &old)
            .map_err(|errno| PtraceError::Mem {
                pid: tid,
                addr: saved.rip,
                errno,
            }),
        None => Ok(()),
    };
    sys::set_regs(tid, saved).map_err(|errno| PtraceError::Regs { tid, errno })?;
    bytes
}
