//! Exception tables and bug frames of payloads, honoured in this process
//! (SPEC.md 17.3, 17.5) through `SIGSEGV`/`SIGBUS` and `SIGILL` (x86-64)
//! or `SIGTRAP` (AArch64) handlers.
//!
//! * A `SIGSEGV` or `SIGBUS` whose faulting instruction (the PC of the
//!   signal frame) is the `insn` of a registered exception-table entry
//!   resumes at its `fixup`: the kernel's `copy_from_user` idiom. A bad
//!   pointer becomes an error code instead of a crash.
//! * A `SIGILL` at the `ud2` (x86-64), or a `SIGTRAP` at the `brk #0x800`
//!   (AArch64), of a registered bug frame writes `xsplice payload
//!   #ID:LINE: WARN: message` (or `BUG`) to stderr. A WARN resumes after
//!   the trap instruction; a BUG aborts the process.
//! * Any other fault goes to the handler that was installed before (Rust's
//!   stack-overflow handler, say), or, when there was none, to the default
//!   action: the handler restores it and returns, so the faulting
//!   instruction runs again and the process dies of the original signal.
//!
//! The handlers run on any thread at any time, so they neither allocate
//! nor lock. Registration builds an immutable snapshot of every registered
//! entry, sorted, and publishes it with one atomic pointer store; a handler
//! reads whichever snapshot is current. A replaced snapshot is retired, not
//! freed: a handler on another thread may still be reading it. Each
//! register or unregister keeps one such snapshot for the life of the
//! process (entries × 16 bytes plus messages), a bounded cost for a
//! patcher.

use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};
use std::boxed::Box;
use std::collections::BTreeMap;
use std::format;
use std::sync::{Mutex, Once, OnceLock};
use std::vec::Vec;

use xsplice_abi::arch::BugKind;

use super::cpu;
use crate::arch_tables::ArchTables;
use crate::TargetError;

/// One bug frame, with its report preformatted (no formatting in a handler).
struct Bug {
    loc: u64,
    resume: u64,
    kind: BugKind,
    report: Vec<u8>,
}

/// Everything registered, sorted by address, as the handlers see it.
#[derive(Default)]
struct Snapshot {
    /// `(insn, fixup)`, sorted by `insn`.
    ex: Vec<(u64, u64)>,
    /// Sorted by `loc`.
    bugs: Vec<Bug>,
}

/// The registered payloads, by (target serial, payload id).
type Key = (u64, u32);

struct Registry {
    ex: BTreeMap<Key, Vec<(u64, u64)>>,
    bugs: BTreeMap<Key, Vec<Bug>>,
    /// Snapshots replaced while a handler may still read them. Boxed: a
    /// handler holds a pointer to the snapshot itself, which must not move
    /// when this vector grows.
    #[allow(clippy::vec_box)]
    retired: Vec<Box<Snapshot>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    ex: BTreeMap::new(),
    bugs: BTreeMap::new(),
    retired: Vec::new(),
});

static CURRENT: AtomicPtr<Snapshot> = AtomicPtr::new(core::ptr::null_mut());

/// The signals handled, and the actions installed before ours.
static PREVIOUS: OnceLock<[(i32, Previous); 3]> = OnceLock::new();
static INSTALL: Once = Once::new();

/// A previous `sigaction`, kept for chaining.
#[derive(Clone, Copy)]
struct Previous {
    handler: libc::sighandler_t,
    flags: i32,
}

const SIGNALS: [i32; 3] = [libc::SIGSEGV, libc::SIGBUS, cpu::TRAP_SIGNAL];

/// Installs the handlers once per process.
fn install() -> Result<(), TargetError> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        let mut prev = [(
            0,
            Previous {
                handler: libc::SIG_DFL,
                flags: 0,
            },
        ); 3];
        for (slot, sig) in prev.iter_mut().zip(SIGNALS) {
            // SAFETY: a zeroed sigaction is a valid out-parameter; this
            // only reads the current action.
            let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
            // SAFETY: valid signal number and out-pointer.
            if unsafe { libc::sigaction(sig, core::ptr::null(), &mut old) } != 0 {
                result = Err(super::os("sigaction"));
                return;
            }
            *slot = (
                sig,
                Previous {
                    handler: old.sa_sigaction,
                    flags: old.sa_flags,
                },
            );
        }
        // The previous actions are known before any of ours can run.
        let _ = PREVIOUS.set(prev);
        for sig in SIGNALS {
            // SAFETY: zeroed is a valid sigaction; the fields are then set.
            let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
            act.sa_sigaction = handler as *const () as libc::sighandler_t;
            // On the alternate stack where the thread has one (Rust's
            // stack-overflow detection relies on it for SIGSEGV).
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `act` is fully initialised; the handler is
            // async-signal-safe (no allocation, no lock).
            if unsafe { libc::sigaction(sig, &act, core::ptr::null_mut()) } != 0 {
                result = Err(super::os("sigaction"));
                return;
            }
        }
    });
    result
}

/// Builds and publishes the snapshot of `reg`.
fn publish(reg: &mut Registry) {
    let mut snap = Snapshot::default();
    for v in reg.ex.values() {
        snap.ex.extend_from_slice(v);
    }
    snap.ex.sort_unstable();
    for v in reg.bugs.values() {
        snap.bugs.extend(v.iter().map(|b| Bug {
            loc: b.loc,
            resume: b.resume,
            kind: b.kind,
            report: b.report.clone(),
        }));
    }
    snap.bugs.sort_unstable_by_key(|b| b.loc);
    let new = Box::into_raw(Box::new(snap));
    let old = CURRENT.swap(new, Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw` here and is no longer
        // published; it is kept (never freed) since a handler may hold it.
        reg.retired.push(unsafe { Box::from_raw(old) });
    }
}

/// Registers a payload's exception-table entries and bug frames.
pub(super) fn register(serial: u64, id: u32, tables: &ArchTables) -> Result<(), TargetError> {
    install()?;
    let key = (serial, id);
    let ex = tables
        .ex_entries()
        .iter()
        .map(|e| (e.insn.0, e.fixup.0))
        .collect();
    let bugs = tables
        .bug_entries()
        .iter()
        .map(|b| Bug {
            loc: b.loc.0,
            resume: b.resume(cpu::ARCH).0,
            kind: b.kind,
            report: format!(
                "xsplice payload #{id}:{}: {}: {}\n",
                b.line,
                b.kind.name(),
                b.msg.escape_debug()
            )
            .into_bytes(),
        })
        .collect();
    let mut reg = REGISTRY
        .lock()
        .map_err(|_| TargetError::Unsupported("the fault-table registry is poisoned"))?;
    reg.ex.insert(key, ex);
    reg.bugs.insert(key, bugs);
    publish(&mut reg);
    Ok(())
}

/// Removes what [`register`] registered for the payload.
pub(super) fn unregister(serial: u64, id: u32) -> Result<(), TargetError> {
    let mut reg = REGISTRY
        .lock()
        .map_err(|_| TargetError::Unsupported("the fault-table registry is poisoned"))?;
    reg.ex.remove(&(serial, id));
    reg.bugs.remove(&(serial, id));
    publish(&mut reg);
    Ok(())
}

/// Writes all of `bytes` to stderr with `write(2)` (async-signal-safe).
fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writes from a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        let Ok(n) = usize::try_from(n) else {
            return;
        };
        if n == 0 {
            return;
        }
        rest = rest.get(n..).unwrap_or(&[]);
    }
}

/// The signal handler for SIGSEGV, SIGBUS and the trap signal.
extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid, writable `ucontext_t` as the third
    // argument of an SA_SIGINFO handler; it is only used in this call.
    let Some(uc) = (unsafe { ctx.cast::<libc::ucontext_t>().as_mut() }) else {
        chain(sig, info, ctx);
        return;
    };
    let pc = cpu::pc(uc);
    // SAFETY: CURRENT is null or a snapshot published by `publish`, which
    // is never freed and never mutated once published.
    let snap = unsafe { CURRENT.load(Ordering::Acquire).as_ref() };
    if let Some(snap) = snap {
        if sig == libc::SIGSEGV || sig == libc::SIGBUS {
            if let Ok(i) = snap.ex.binary_search_by_key(&pc, |(insn, _)| *insn) {
                if let Some((_, fixup)) = snap.ex.get(i) {
                    cpu::set_pc(uc, *fixup);
                    return;
                }
            }
        } else if sig == cpu::TRAP_SIGNAL {
            if let Ok(i) = snap.bugs.binary_search_by_key(&pc, |b| b.loc) {
                if let Some(b) = snap.bugs.get(i) {
                    write_stderr(&b.report);
                    match b.kind {
                        BugKind::Warn => {
                            cpu::set_pc(uc, b.resume);
                            return;
                        }
                        // SAFETY: abort is async-signal-safe and does not return.
                        BugKind::Bug => unsafe { libc::abort() },
                    }
                }
            }
        }
    }
    chain(sig, info, ctx);
}

/// Hands a fault that is not ours to the action installed before ours.
fn chain(sig: i32, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let prev = PREVIOUS
        .get()
        .and_then(|p| p.iter().find(|(s, _)| *s == sig))
        .map(|(_, p)| *p);
    match prev {
        Some(p) if p.handler != libc::SIG_DFL && p.handler != libc::SIG_IGN => {
            if p.flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action was installed with
                // SA_SIGINFO, so its handler has this signature.
                let f = unsafe {
                    core::mem::transmute::<
                        libc::sighandler_t,
                        extern "C" fn(i32, *mut libc::siginfo_t, *mut c_void),
                    >(p.handler)
                };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number.
                let f = unsafe {
                    core::mem::transmute::<libc::sighandler_t, extern "C" fn(i32)>(p.handler)
                };
                f(sig);
            }
        }
        _ => {
            // No handler before ours (or SIG_IGN, which would spin on a
            // synchronous fault): the default action, taken when the
            // faulting instruction runs again on return.
            // SAFETY: zeroed is a valid sigaction (SIG_DFL, no flags).
            let act: libc::sigaction = unsafe { core::mem::zeroed() };
            // SAFETY: valid signal number and action.
            unsafe { libc::sigaction(sig, &act, core::ptr::null_mut()) };
        }
    }
}
