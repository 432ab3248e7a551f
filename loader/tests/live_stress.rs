//! Live patching while other threads run the patched code (Linux x86-64
//! and AArch64, where CI runs it under qemu-user).
//!
//! 1, 2 and 4 threads call, in a tight loop, (a) compiler-built functions,
//! (b) a function whose first instruction is exactly the 5-byte patch, (c)
//! a function whose entry is a 5-byte hot loop; the main thread applies and
//! reverts meanwhile. Every result must be the old or the new value, and
//! the process must not crash. Then the refusals: a thread that blocks the
//! rendezvous signal, a thread that stays inside a site, a thread inside
//! the retired function under the strict policy — each leaves every byte
//! as it was.
//!
//! `XSPLICE_STRESS_ITERS` sets the apply/revert cycles per case and thread
//! count (default: 200, or fewer if they take more than a second); the
//! counts are printed (`--nocapture`).
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    feature = "write"
))]

#[path = "common/asm.rs"]
mod asm;
mod common;
#[path = "common/demo.rs"]
mod demo;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use asm::{
    addr_of, xsplice_stress_loop, xsplice_stress_mov, xsplice_stress_spin, xsplice_stress_wait,
};
use common::native_fixture as fixture;
use demo::{answer, base, code_bytes, scale, xsplice_demo_answer, xsplice_demo_scale};
#[cfg(target_arch = "x86_64")]
use xsplice_abi::RecordIndex;
use xsplice_loader::engine::{Engine, EngineError, PayloadId, State};
use xsplice_loader::process::{rendezvous_signal, ProcessTarget, RendezvousOptions, SitePolicy};
use xsplice_loader::write::{OldTarget, Patch, PayloadBuilder};
use xsplice_loader::{LoadOptions, TargetError};

/// One test at a time: a rendezvous stops every thread of the process, so
/// the threads of one test would be in the way of another's.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn engine() -> Engine<ProcessTarget> {
    engine_with(Writes::Default)
}

fn engine_with(writes: Writes) -> Engine<ProcessTarget> {
    // SAFETY: the payloads are built for the functions of this binary;
    // nothing else patches code or uses the rendezvous signal; payloads
    // are unloaded only after the threads running them are joined.
    let target = unsafe { ProcessTarget::new() }.unwrap();
    let target = match writes {
        Writes::Default => target,
        Writes::Mprotect => target.with_mprotect_writes(),
    };
    Engine::new(target, LoadOptions::default())
}

/// How code is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// Through `/proc/self/mem` where the kernel allows it (the default).
    Default,
    /// By making the page writable while the threads are stopped.
    Mprotect,
}

/// A payload replacing `old` (16 bytes) with `xsplice_new_answer`, which
/// returns 45 (`compat-tests/fixtures/build_input.c`).
fn payload(old: &str) -> Vec<u8> {
    let mut b = PayloadBuilder::from_object(&fixture("build_input.obj")).unwrap();
    b.patch(Patch::replace(
        OldTarget::Name(old.into()),
        "xsplice_new_answer",
        16,
    ));
    b.build().unwrap()
}

fn tid() -> i32 {
    // SAFETY: gettid takes no argument.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Apply/revert cycles per case and thread count, and the time they may
/// take: `XSPLICE_STRESS_ITERS` cycles without a time limit, or by default
/// 200 cycles within 1 s (a machine busy with other work gets fewer; the
/// count is printed, and at least `MIN_CYCLES` must run).
fn budget() -> (usize, Option<Duration>) {
    match std::env::var("XSPLICE_STRESS_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => (n, None),
        None => (200, Some(Duration::from_secs(1))),
    }
}

/// The fewest cycles a stress run must make, whatever the load.
const MIN_CYCLES: usize = 20;

fn mov() -> i64 {
    // SAFETY: `mov eax, 41; ret` or its replacement, both `long (void)`.
    unsafe { black_box(xsplice_stress_mov as unsafe extern "C" fn() -> i64)() }
}

fn hot_loop(n: u64) -> i64 {
    // SAFETY: the loop runs `n >= 1` times; the replacement ignores `n`.
    unsafe { black_box(xsplice_stress_loop as unsafe extern "C" fn(u64) -> i64)(n) }
}

/// What a calling thread saw.
#[derive(Default)]
struct Seen {
    old: AtomicU64,
    new: AtomicU64,
    wrong: AtomicU64,
}

/// One kind of patched function.
struct Case {
    name: &'static str,
    payload: Vec<u8>,
    /// The first bytes of every patched function, to compare at the end.
    functions: Vec<usize>,
    /// Calls the function(s) once: Some(true) new, Some(false) old, None
    /// for a value that is neither.
    probe: fn() -> Option<bool>,
}

/// Apply/revert cycles with `threads` callers; what it counted.
#[derive(Debug, Default)]
struct Report {
    applied: u64,
    refused_applies: u64,
    refused_reverts: u64,
    retries: u64,
    rounds: u64,
    max_pause: Duration,
    old: u64,
    new: u64,
    wrong: u64,
}

/// Sets the flag when dropped, so that a failing assertion in the main
/// thread stops the callers before `thread::scope` joins them.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Whether an engine error is a refusal of the rendezvous (retry later).
fn refused(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Target(
            TargetError::ThreadInSite { .. } | TargetError::RendezvousTimeout { .. }
        )
    )
}

fn stress(case: &Case, threads: usize, writes: Writes) -> Report {
    let (max_cycles, time) = budget();
    let mut cycles = 0;
    let mut e = engine_with(writes);
    let id = e.load(case.name, &case.payload).unwrap();
    let pristine: Vec<[u8; 5]> = case.functions.iter().map(|&f| code_bytes(f)).collect();
    let seen = Seen::default();
    let stop = AtomicBool::new(false);
    let started = AtomicU64::new(0);
    let mut report = Report::default();
    thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        for _ in 0..threads {
            s.spawn(|| {
                started.fetch_add(1, Ordering::SeqCst);
                while !stop.load(Ordering::Relaxed) {
                    let counter = match (case.probe)() {
                        Some(false) => &seen.old,
                        Some(true) => &seen.new,
                        None => &seen.wrong,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while started.load(Ordering::SeqCst) < threads as u64 {
            thread::yield_now();
        }
        let start = Instant::now();
        while cycles < max_cycles
            && (cycles < MIN_CYCLES || time.is_none_or(|t| start.elapsed() < t))
        {
            cycles += 1;
            match e.apply(id) {
                Ok(()) => report.applied += 1,
                Err(err) if refused(&err) => {
                    report.refused_applies += 1;
                    assert_ne!(e.state(id).unwrap(), State::Applied);
                    continue;
                }
                Err(err) => panic!("{}: apply: {err}", case.name),
            }
            loop {
                match e.revert(id) {
                    Ok(()) => break,
                    Err(err) if refused(&err) => report.refused_reverts += 1,
                    Err(err) => panic!("{}: revert: {err}", case.name),
                }
            }
        }
    });
    let after: Vec<[u8; 5]> = case.functions.iter().map(|&f| code_bytes(f)).collect();
    assert_eq!(after, pristine, "{}: bytes restored", case.name);
    e.unload(id).unwrap();
    let stats = e.target().stats();
    report.retries = stats.retries;
    report.rounds = stats.rounds;
    report.max_pause = stats.max_pause;
    report.old = seen.old.load(Ordering::SeqCst);
    report.new = seen.new.load(Ordering::SeqCst);
    report.wrong = seen.wrong.load(Ordering::SeqCst);
    println!(
        "{} with {threads} thread(s), {writes:?} writes: {cycles} cycles, {} applied, {} applies and {} reverts refused, \
         {} retries in {} rendezvous, max pause {:?}; calls: {} old, {} new, {} wrong",
        case.name,
        report.applied,
        report.refused_applies,
        report.refused_reverts,
        report.retries,
        report.rounds,
        report.max_pause,
        report.old,
        report.new,
        report.wrong
    );
    assert_eq!(report.wrong, 0, "{}: wrong values", case.name);
    assert!(
        report.applied > 0,
        "{}: nothing applied: {report:?}",
        case.name
    );
    assert!(report.old > 0, "{}: {report:?}", case.name);
    report
}

fn run(case: &Case) {
    for threads in [1, 2, 4] {
        stress(case, threads, Writes::Default);
    }
}

#[test]
fn stress_compiler_built_functions() {
    let _serial = serial();
    assert_eq!(base(), 1000);
    let case = Case {
        name: "(a) rustc-built xsplice_demo_answer + xsplice_demo_scale",
        payload: fixture("live_v3-nopic.o"),
        functions: vec![
            xsplice_demo_answer as *const () as usize,
            xsplice_demo_scale as *const () as usize,
        ],
        probe: || match (answer(), scale(10)) {
            (41, 20) => Some(false),
            (44, 1050) => Some(true),
            // A call of each straddled an apply or a revert.
            (41, 1050) | (44, 20) => Some(false),
            _ => None,
        },
    };
    run(&case);
}

#[test]
fn stress_five_byte_first_instruction() {
    let _serial = serial();
    let f = addr_of(xsplice_stress_mov as *const ()) as usize;
    let (bytes, name) = if cfg!(target_arch = "x86_64") {
        ([0xb8, 0x29, 0, 0, 0], "(b) mov eax, 41; ret")
    } else {
        ([0x20, 0x05, 0x80, 0xd2, 0xc0], "(b) mov x0, #41; ret")
    };
    assert_eq!(code_bytes(f), bytes, "{name}");
    let case = Case {
        name,
        payload: payload("xsplice_stress_mov"),
        functions: vec![f],
        probe: || match mov() {
            41 => Some(false),
            45 => Some(true),
            _ => None,
        },
    };
    run(&case);
    // The other way of writing code, where `/proc/self/mem` is refused.
    stress(&case, 4, Writes::Mprotect);
}

#[test]
fn stress_hot_loop_entry() {
    let _serial = serial();
    let f = addr_of(xsplice_stress_loop as *const ()) as usize;
    let (bytes, name) = if cfg!(target_arch = "x86_64") {
        ([0x48, 0xff, 0xcf, 0x75, 0xfb], "(c) 1: dec rdi; jnz 1b")
    } else {
        (
            [0x00, 0x04, 0x00, 0xf1, 0xe1],
            "(c) 1: subs x0, x0, #1; b.ne 1b",
        )
    };
    assert_eq!(code_bytes(f), bytes, "{name}");
    let case = Case {
        name,
        payload: payload("xsplice_stress_loop"),
        functions: vec![f],
        probe: || match hot_loop(64) {
            41 => Some(false),
            45 => Some(true),
            _ => None,
        },
    };
    // Whether threads are ever caught at +3 depends on the CPU: where
    // `dec` and `jnz` are macro-fused, no interrupt lands between them.
    // The counts are printed; `thread_inside_a_site_retries_then_refuses`
    // pins a thread inside a site for sure.
    run(&case);
}

/// A thread that blocks the signal never arrives: the typed timeout, naming
/// it, and not a byte written. Once it unblocks, the stale signal is
/// harmless and the next apply succeeds.
#[test]
fn blocked_signal_times_out_and_writes_nothing() {
    let _serial = serial();
    let mut e = engine();
    let timeout = Duration::from_millis(20);
    e.target_mut().set_rendezvous(RendezvousOptions {
        timeout,
        ..RendezvousOptions::default()
    });
    let id = e.load("mov", &payload("xsplice_stress_mov")).unwrap();
    let f = addr_of(xsplice_stress_mov as *const ()) as usize;
    let before = code_bytes(f);
    let (tid_tx, tid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let blocker = thread::spawn(move || {
        // SAFETY: a sigset on the stack, filled then passed to
        // pthread_sigmask for this thread only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, rendezvous_signal());
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
            tid_tx.send(tid()).unwrap();
            go_rx.recv().unwrap();
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        mov()
    });
    let blocked = tid_rx.recv().unwrap();
    let t0 = Instant::now();
    let err = e.apply(id).unwrap_err();
    let waited = t0.elapsed();
    match err {
        EngineError::Target(TargetError::RendezvousTimeout { tid, timeout: t }) => {
            assert_eq!((tid, t), (blocked, timeout));
        }
        other => panic!("expected a rendezvous timeout, got {other}"),
    }
    assert!(waited >= timeout, "{waited:?}");
    assert_eq!(code_bytes(f), before, "nothing written");
    assert_eq!(mov(), 41);
    assert_eq!(e.state(id).unwrap(), State::Loaded);
    assert_eq!(e.target().stats().refusals, 1);
    go_tx.send(()).unwrap();
    assert_eq!(blocker.join().unwrap(), 41);
    e.apply(id).unwrap();
    assert_eq!(mov(), 45);
    e.revert(id).unwrap();
    assert_eq!(code_bytes(f), before);
}

/// Starts a thread running `f(flag)` with the flag set, and waits until it
/// spins; returns its tid and handle. Clearing the flag ends it.
fn spinner(
    f: unsafe extern "C" fn(*const u8) -> i64,
    flag: &'static AtomicU8,
) -> (i32, thread::JoinHandle<i64>) {
    flag.store(1, Ordering::SeqCst);
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        tx.send(tid()).unwrap();
        // SAFETY: the flag outlives the call; the function only reads it.
        unsafe { f(flag.as_ptr()) }
    });
    let tid = rx.recv().unwrap();
    // Time to get from the send into the loop: the thread has run in user
    // mode for a clock tick or more (on a loaded machine a fixed sleep was
    // not always enough; the path from the send to the loop is a few
    // instructions, so a tick of user time means it spins).
    let deadline = Instant::now() + Duration::from_secs(10);
    while user_ticks(tid) < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    (tid, h)
}

/// User-mode clock ticks of thread `tid` of this process
/// (`/proc/self/task/TID/stat`, field 14, after the parenthesised name).
fn user_ticks(tid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(11))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

fn load_with(
    e: &mut Engine<ProcessTarget>,
    old: &str,
    retries: u32,
    policy: SitePolicy,
) -> PayloadId {
    e.target_mut().set_rendezvous(RendezvousOptions {
        retries,
        policy,
        // These tests are about where threads stop, not how fast: a loaded
        // machine may take longer than the default 30 ms to schedule them.
        timeout: Duration::from_secs(2),
        ..RendezvousOptions::default()
    });
    e.load(old, &payload(old)).unwrap()
}

/// A thread that stays inside the 5 bytes: the action retries, then
/// refuses naming the thread, its PC and the record; nothing is written.
/// (x86-64: an AArch64 `b` site has no inside; the next test is its twin.)
#[cfg(target_arch = "x86_64")]
#[test]
fn thread_inside_a_site_retries_then_refuses() {
    static FLAG: AtomicU8 = AtomicU8::new(1);
    let _serial = serial();
    let mut e = engine();
    let id = load_with(&mut e, "xsplice_stress_spin", 3, SitePolicy::Bytes);
    let f = addr_of(xsplice_stress_spin as *const ());
    let before = code_bytes(f as usize);
    let (spinning, h) = spinner(xsplice_stress_spin, &FLAG);
    let err = e.apply(id).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("target: thread {spinning} stopped at 0x"))
            && message.ends_with(
                "inside the bytes to write of record 0, at each of 4 attempts: nothing written"
            ),
        "{message}"
    );
    match err {
        EngineError::Target(TargetError::ThreadInSite {
            tid,
            pc,
            record,
            whole_function,
            attempts,
        }) => {
            assert_eq!(tid, spinning);
            assert!([f + 1, f + 4].contains(&pc.0), "pc {pc} for f at {f:#x}");
            assert_eq!(record, RecordIndex(0));
            assert!(!whole_function);
            assert_eq!(attempts, 4);
        }
        other => panic!("expected ThreadInSite, got {other}"),
    }
    assert_eq!(code_bytes(f as usize), before, "nothing written");
    let stats = e.target().stats();
    assert_eq!((stats.retries, stats.refusals, stats.rounds), (3, 1, 4));
    FLAG.store(0, Ordering::SeqCst);
    assert_eq!(h.join().unwrap(), 41);
    e.apply(id).unwrap();
    // SAFETY: the replacement ignores its argument.
    assert_eq!(unsafe { xsplice_stress_spin(FLAG.as_ptr()) }, 45);
    e.revert(id).unwrap();
    assert_eq!(code_bytes(f as usize), before);
}

/// AArch64: a thread spinning at a site (`+0`, the `b` to write) and just
/// past it (`+4`) is never inside the 4 bytes, so the apply goes ahead
/// while it spins; its next pass through the entry fetches the new `b`
/// (the cache maintenance and the `isb` at the release make it visible)
/// and returns the replacement's 45, although the flag still says spin.
#[cfg(target_arch = "aarch64")]
#[test]
fn thread_spinning_at_a_site_runs_the_new_code() {
    static FLAG: AtomicU8 = AtomicU8::new(1);
    let _serial = serial();
    let mut e = engine();
    let id = load_with(&mut e, "xsplice_stress_spin", 0, SitePolicy::Bytes);
    let f = addr_of(xsplice_stress_spin as *const ());
    let before = code_bytes(f as usize);
    let (_spinning, h) = spinner(xsplice_stress_spin, &FLAG);
    e.apply(id).unwrap();
    assert_eq!(
        h.join().unwrap(),
        45,
        "the spinning thread took the new code"
    );
    assert_eq!(FLAG.load(Ordering::SeqCst), 1, "the flag never cleared");
    assert_eq!(e.target().stats().retries, 0);
    e.revert(id).unwrap();
    assert_eq!(code_bytes(f as usize), before);
    FLAG.store(0, Ordering::SeqCst);
    // SAFETY: the flag is clear: the original returns at once.
    assert_eq!(unsafe { xsplice_stress_spin(FLAG.as_ptr()) }, 41);
}

/// AArch64: payload text placed beyond `b` reach (±128 MiB) of the patched
/// functions. The engine writes the 12-byte long branch (`adrp x16; add
/// x16; br x16`) at both entries, only with every other thread stopped
/// outside those 12 bytes (a caller caught at `+4` or `+8` would make the
/// rendezvous retry: qemu-user interrupts a thread only between the blocks
/// it translated, never inside the straight-line sequence, so there the
/// unit test `which_pcs_are_inside_a_site` covers that check), and the
/// payload's call back into the executable
/// (`xsplice_demo_base`) goes through a veneer. A thread calling both
/// functions all along sees only old or new results.
#[cfg(target_arch = "aarch64")]
#[test]
fn far_payload_takes_the_long_branch() {
    use xsplice_loader::engine::Target;
    use xsplice_loader::{Allocator, Region, RegionKind};
    const BR_X16: u32 = 0xd61f_0200;
    let _serial = serial();
    let mut e = engine();
    let answer_fn = xsplice_demo_answer as *const () as usize;
    let scale_fn = xsplice_demo_scale as *const () as usize;
    let answer_at = answer_fn as u64;
    // Take every free hint near the executable with a one-page filler (the
    // target tries hints 16 MiB apart, nearest first), until the next
    // regions can only land beyond the reach of a `b`.
    let mut fillers = Vec::new();
    loop {
        let a = e
            .target_mut()
            .allocate(RegionKind::Data, 4096, 4096)
            .unwrap();
        fillers.push(a);
        if a.0.abs_diff(answer_at) > 160 << 20 {
            break;
        }
        assert!(fillers.len() < 64, "no far address");
    }
    let id = e.load("far", &fixture("live_v3-nopic.o")).unwrap();
    let text = e.payload(id).unwrap().regions[0].addr.0;
    assert!(text.abs_diff(answer_at) > 128 << 20, "text at {text:#x}");
    let word = |f: usize, i: usize| {
        let b = code_bytes_at::<12>(f);
        u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap())
    };
    let pristine = [word(answer_fn, 0), word(scale_fn, 0)];
    let stop = AtomicBool::new(false);
    let wrong = AtomicU64::new(0);
    let mut applied = 0;
    thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if !matches!((answer(), scale(10)), (41 | 44, 20 | 1050)) {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for _ in 0..20 {
            match e.apply(id) {
                Ok(()) => applied += 1,
                Err(err) if refused(&err) => continue,
                Err(err) => panic!("apply: {err}"),
            }
            for f in [answer_fn, scale_fn] {
                assert_eq!(word(f, 0) & 0x9f00_001f, 0x9000_0010, "adrp x16");
                assert_eq!(word(f, 2), BR_X16, "br x16");
            }
            while let Err(err) = e.revert(id) {
                assert!(refused(&err), "revert: {err}");
            }
        }
    });
    let stats = e.target().stats();
    println!(
        "far payload: {applied} of 20 applies; {} retries (a caller inside the 12 bytes) in {} rendezvous",
        stats.retries, stats.rounds
    );
    assert!(applied > 0);
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
    e.apply(id).unwrap();
    assert_eq!(
        (answer(), scale(10)),
        (44, 1050),
        "new code, base() via a veneer"
    );
    e.revert(id).unwrap();
    assert_eq!((answer(), scale(10)), (41, 20));
    assert_eq!([word(answer_fn, 0), word(scale_fn, 0)], pristine);
    e.unload(id).unwrap();
    for addr in fillers {
        let filler = Region {
            kind: RegionKind::Data,
            addr,
            align: 4096,
            bytes: Vec::new(),
        };
        e.target_mut().unmap(&filler).unwrap();
    }
}

/// The first `N` bytes of the function at `f`.
#[cfg(target_arch = "aarch64")]
fn code_bytes_at<const N: usize>(f: usize) -> [u8; N] {
    // SAFETY: reads the first bytes of a function of this binary, longer
    // than `N` (text is readable).
    unsafe { *(f as *const [u8; N]) }
}

/// A thread inside the old function but past its first bytes: the default
/// policy applies (the thread finishes the old code), the strict one
/// refuses.
#[test]
fn strict_policy_refuses_a_thread_in_the_old_function() {
    static FLAG: AtomicU8 = AtomicU8::new(1);
    let _serial = serial();
    let mut e = engine();
    let id = load_with(&mut e, "xsplice_stress_wait", 1, SitePolicy::Function);
    let f = addr_of(xsplice_stress_wait as *const ());
    let before = code_bytes(f as usize);
    let (spinning, h) = spinner(xsplice_stress_wait, &FLAG);
    match e.apply(id).unwrap_err() {
        EngineError::Target(TargetError::ThreadInSite {
            tid,
            pc,
            whole_function,
            attempts,
            ..
        }) => {
            assert_eq!(tid, spinning);
            let past = if cfg!(target_arch = "x86_64") { 5 } else { 4 };
            assert!([f + past, f + 8].contains(&pc.0), "pc {pc} for f at {f:#x}");
            assert!(whole_function);
            assert_eq!(attempts, 2);
        }
        other => panic!("expected ThreadInSite, got {other}"),
    }
    assert_eq!(code_bytes(f as usize), before, "nothing written");
    e.target_mut().set_rendezvous(RendezvousOptions::default());
    e.apply(id).unwrap();
    assert_ne!(code_bytes(f as usize), before);
    FLAG.store(0, Ordering::SeqCst);
    assert_eq!(h.join().unwrap(), 41, "the old code ran to its end");
    e.revert(id).unwrap();
    assert_eq!(code_bytes(f as usize), before);
}

/// Threads come and go during the rendezvous: new ones are found by the
/// second listing, exited ones are dropped.
#[test]
fn threads_created_and_exiting_meanwhile() {
    let _serial = serial();
    let mut e = engine();
    let id = e.load("v3", &fixture("live_v3-nopic.o")).unwrap();
    let stop = AtomicBool::new(false);
    let wrong = AtomicU64::new(0);
    let spawned = AtomicU64::new(0);
    let mut applied = 0;
    thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let h = thread::spawn(answer);
                if !matches!(h.join(), Ok(41 | 44)) {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                spawned.fetch_add(1, Ordering::Relaxed);
            }
        });
        let (cycles, time) = budget();
        let start = Instant::now();
        for n in 0..cycles / 2 {
            if n >= MIN_CYCLES && time.is_some_and(|t| start.elapsed() >= t) {
                break;
            }
            match e.apply(id) {
                Ok(()) => applied += 1,
                Err(err) if refused(&err) => continue,
                Err(err) => panic!("apply: {err}"),
            }
            while let Err(err) = e.revert(id) {
                assert!(refused(&err), "revert: {err}");
            }
        }
    });
    assert!(applied > 0);
    println!(
        "{} threads spawned during {} rendezvous",
        spawned.load(Ordering::SeqCst),
        e.target().stats().rounds
    );
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
    assert_eq!(e.state(id).unwrap(), State::Reverted);
    assert_eq!(answer(), 41);
}

/// A thread blocked in a restartable system call is stopped and released
/// without the call failing: `read` on a pipe is interrupted by each
/// rendezvous, restarts (`SA_RESTART`), and returns the byte written after.
#[test]
fn blocked_read_restarts() {
    let _serial = serial();
    let mut fds = [0; 2];
    // SAFETY: pipe fills the two fds it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [rd, wr] = fds;
    let reader = thread::spawn(move || {
        let mut b = 0u8;
        // SAFETY: reads one byte into `b` from the pipe's read end; the raw
        // call, so an EINTR would be seen here rather than retried.
        let n = unsafe { libc::read(rd, (&mut b as *mut u8).cast(), 1) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        (n, b, errno)
    });
    thread::sleep(Duration::from_millis(20));
    let mut e = engine();
    let id = e.load("mov", &payload("xsplice_stress_mov")).unwrap();
    for _ in 0..20 {
        e.apply(id).unwrap();
        e.revert(id).unwrap();
    }
    assert!(
        e.target().stats().last_threads >= 2,
        "the reader was stopped"
    );
    // SAFETY: writes one byte from a local to the pipe's write end.
    assert_eq!(unsafe { libc::write(wr, [7u8].as_ptr().cast(), 1) }, 1);
    let (n, b, errno) = reader.join().unwrap();
    assert_eq!((n, b), (1, 7), "read failed: errno {errno:?}");
    // SAFETY: closes the fds opened above, used no more.
    unsafe {
        libc::close(rd);
        libc::close(wr);
    }
}
