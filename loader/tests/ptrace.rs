//! Patching another process through ptrace: the example server
//! (`examples/server/`, built by gcc here) runs four worker threads calling
//! `with_vat` in a tight loop while this test applies and reverts the fix
//! in it, many times. Every result the server sees is the old or the new
//! value, never anything else, and it never crashes.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "../../examples/server/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Built, Server};
use xsplice_loader::engine::{CodeWriter, Engine, EngineError, Target};
use xsplice_loader::ptrace::{PtraceError, PtraceOptions, PtraceTarget};
use xsplice_loader::{Addr, Allocator, LoadOptions, Region, RegionKind, SymbolSource, TargetError};

/// Builds the example, or skips (loudly) when gcc is missing.
fn built(name: &str) -> Option<Built> {
    match harness::build(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")), name) {
        Ok(b) => Some(b),
        Err(e) => {
            harness::skip(&e);
            None
        }
    }
}

/// Attaches to the server, or skips when this machine forbids ptrace.
/// (A 10 s timeout: a loaded test machine may leave a thread without a CPU
/// for longer than the default second.)
fn attach(server: &Server) -> Option<PtraceTarget> {
    let opts = PtraceOptions {
        timeout: Duration::from_secs(10),
        ..PtraceOptions::default()
    };
    // Opening /proc/PID/mem may be allowed where PTRACE_SEIZE is not
    // (seccomp): probe with one rendezvous.
    let probe = PtraceTarget::attach(server.pid, opts)
        .map_err(TargetError::from)
        .and_then(|mut t| t.quiesce_sites(&[], &mut |_| Ok(())).map(|_| t));
    match probe {
        Ok(t) => Some(t),
        Err(
            e @ TargetError::Ptrace(PtraceError::Permission { .. } | PtraceError::Attach { .. }),
        ) => {
            harness::skip(&format!("ptrace is not permitted here: {e}"));
            None
        }
        Err(e) => panic!("attach: {e}"),
    }
}

/// The example built as `name`, its server running with `threads`
/// workers, an engine on it, and `with_vat`'s address and first bytes.
struct Rig {
    b: Built,
    server: Server,
    engine: Engine<PtraceTarget>,
    site: Addr,
    original: [u8; 16],
}

fn rig(name: &str, threads: u32) -> Option<Rig> {
    let b = built(name)?;
    let server = Server::start(&b.server, threads, 50);
    let target = attach(&server)?;
    let site = target.lookup("with_vat").unwrap().addr;
    let original = read_code(&target, site);
    Some(Rig {
        b,
        server,
        engine: Engine::new(target, LoadOptions::default()),
        site,
        original,
    })
}

fn read_code(t: &PtraceTarget, addr: Addr) -> [u8; 16] {
    let mut b = [0u8; 16];
    t.read(addr, &mut b).unwrap();
    b
}

/// How many apply/revert rounds: small by default, `XSPLICE_PTRACE_LOOPS`
/// for a longer run.
fn loops() -> u32 {
    std::env::var("XSPLICE_PTRACE_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[test]
fn apply_and_revert_while_threads_run() {
    let Some(b) = built("apply_revert") else {
        return;
    };
    let mut server = Server::start(&b.server, 4, 50);
    let before = server.tick();
    assert_eq!(before.vat, 1100, "the bug is live: {before:?}");
    let Some(target) = attach(&server) else {
        return;
    };
    let site = target.lookup("with_vat").unwrap().addr;
    let original = read_code(&target, site);
    let probes = target.pauses().len();
    let fix = std::fs::read(&b.fix).unwrap();
    let mut engine = Engine::new(target, LoadOptions::default());
    let id = engine.load("fix.o", &fix).unwrap();

    engine.apply(id).unwrap();
    let t = server.settled();
    assert_eq!((t.vat, t.old, t.fixes), (1200, 0, 1), "fixed: {t:?}");
    assert!(t.new > 0, "the workers run: {t:?}");
    assert_eq!(
        read_code(engine.target(), site)[0],
        0xe9,
        "a jmp rel32 at with_vat"
    );

    // The same payload again: refused, nothing written.
    let patched = read_code(engine.target(), site);
    assert!(matches!(
        engine.apply(id),
        Err(EngineError::WrongState { .. })
    ));
    assert_eq!(read_code(engine.target(), site), patched);

    engine.revert(id).unwrap();
    let t = server.settled();
    assert_eq!((t.vat, t.new, t.fixes), (1100, 0, 0), "reverted: {t:?}");
    assert_eq!(read_code(engine.target(), site), original);

    let n = loops();
    for _ in 0..n {
        engine.apply(id).unwrap();
        engine.revert(id).unwrap();
    }
    let t = server.settled();
    assert_eq!(
        (t.vat, t.new, t.fixes),
        (1100, 0, 0),
        "after {n} rounds: {t:?}"
    );
    assert_eq!(read_code(engine.target(), site), original);
    assert!(server.alive());
    let pauses = engine.target().pauses().get(probes..).unwrap_or(&[]);
    let mut sorted: Vec<Duration> = pauses.to_vec();
    sorted.sort();
    let at = |q: usize| {
        sorted
            .get(sorted.len() * q / 100)
            .copied()
            .unwrap_or_default()
    };
    eprintln!(
        "ptrace rendezvous, 4 busy threads + main + idler, {} writes: median {:?}, p90 {:?}, p99 {:?}, max {:?}, {} retries",
        sorted.len(),
        at(50),
        at(90),
        at(99),
        sorted.last().copied().unwrap_or_default(),
        engine.target().retries(),
    );
    assert_eq!(sorted.len(), 2 * n as usize + 2);
}

#[test]
fn ledger_lives_in_the_process() {
    let Some(b) = built("ledger") else {
        return;
    };
    let server = Server::start(&b.server, 2, 50);
    let Some(mut target) = attach(&server) else {
        return;
    };
    assert_eq!(target.ledger_read().unwrap(), None);
    target.ledger_write(b"first").unwrap();
    assert_eq!(
        target.ledger_read().unwrap().as_deref(),
        Some(&b"first"[..])
    );
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.pid)).unwrap();
    assert!(maps.contains("/memfd:xsplice-ledger"), "{maps}");
    drop(target);

    // A later patcher finds it; growing and shrinking work; too large is refused.
    let mut again = attach(&server).unwrap();
    assert_eq!(again.ledger_read().unwrap().as_deref(), Some(&b"first"[..]));
    let big = vec![7u8; 100_000];
    again.ledger_write(&big).unwrap();
    assert_eq!(again.ledger_read().unwrap(), Some(big));
    again.ledger_write(b"x").unwrap();
    assert_eq!(again.ledger_read().unwrap().as_deref(), Some(&b"x"[..]));
    let huge = vec![0u8; 2 << 20];
    assert!(matches!(
        again.ledger_write(&huge),
        Err(TargetError::Ptrace(PtraceError::LedgerFull { .. }))
    ));
    assert_eq!(again.ledger_read().unwrap().as_deref(), Some(&b"x"[..]));
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.pid)).unwrap();
    assert_eq!(maps.matches("/memfd:xsplice-ledger").count(), 1, "{maps}");
}

#[test]
fn unknown_and_gone_processes() {
    assert_eq!(
        PtraceTarget::attach(i32::MAX, PtraceOptions::default()).unwrap_err(),
        PtraceError::UnknownPid { pid: i32::MAX }
    );
    let Some(b) = built("gone") else {
        return;
    };
    let mut server = Server::start(&b.server, 1, 50);
    let Some(target) = attach(&server) else {
        return;
    };
    let pid = server.pid;
    drop(std::mem::replace(
        &mut server,
        Server::start(&b.server, 1, 50),
    ));
    let fix = std::fs::read(&b.fix).unwrap();
    let mut engine = Engine::new(target, LoadOptions::default());
    let err = engine.load("fix.o", &fix).unwrap_err();
    assert_eq!(
        err,
        EngineError::Load(xsplice_loader::LoadError::Target(TargetError::Ptrace(
            PtraceError::NoSuchProcess { pid }
        ))),
        "{err}"
    );
}

#[test]
fn signals_are_not_lost_and_system_calls_restart() {
    let Some(b) = built("signals") else {
        return;
    };
    let mut server = Server::start(&b.server, 2, 50);
    let Some(mut target) = attach(&server) else {
        return;
    };
    // Real-time signals queue (none coalesce), so every one sent must be
    // counted by the server's handler.
    const SENT: u64 = 200;
    let pid = server.pid;
    let sender = std::thread::spawn(move || {
        for _ in 0..SENT {
            // SAFETY: kill takes integers; the server is our child.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGRTMIN()) }, 0);
            std::thread::sleep(Duration::from_micros(300));
        }
    });
    // Meanwhile: rendezvous after rendezvous, and system calls injected
    // (mmap, munmap; the first ledger write runs six) into threads blocked
    // in read() or nanosleep(), or running.
    target.ledger_write(b"some ledger").unwrap();
    let mut rounds = 0u32;
    while !sender.is_finished() {
        target
            .quiesce_sites(&[], &mut |_| Ok(()))
            .expect("rendezvous");
        let addr = target.allocate(RegionKind::Data, 4096, 4096).unwrap();
        let region = Region {
            kind: RegionKind::Data,
            addr,
            align: 4096,
            bytes: vec![1; 64],
        };
        target.map(&region).unwrap();
        target.unmap(&region).unwrap();
        rounds += 1;
    }
    sender.join().unwrap();
    let mut t = server.settled();
    for _ in 0..40 {
        if t.signals == SENT {
            break;
        }
        t = server.tick();
    }
    assert_eq!(t.signals, SENT, "every signal delivered: {t:?}");
    assert_eq!(t.eintr, 0, "no read() interrupted: {t:?}");
    eprintln!("{rounds} rendezvous while {SENT} signals arrived: none lost, no EINTR");
    assert!(rounds > 0 && server.alive());
}

#[test]
fn a_thread_that_does_not_stop_in_time_fails_the_action_and_is_released() {
    let Some(b) = built("timeout") else {
        return;
    };
    let mut server = Server::start(&b.server, 4, 50);
    // A zero timeout: the first thread not stopped at the first look fails
    // the rendezvous (with 4 busy workers on this machine, nearly always).
    let opts = PtraceOptions {
        timeout: Duration::ZERO,
        ..PtraceOptions::default()
    };
    let mut target = match PtraceTarget::attach(server.pid, opts) {
        Ok(t) => t,
        Err(e) => return harness::skip(&format!("ptrace is not permitted here: {e}")),
    };
    let site = target.lookup("with_vat").unwrap().addr;
    let original = read_code(&target, site);
    let mut timeouts = 0;
    for _ in 0..20 {
        // The bytes already there: harmless if every thread did stop.
        match target.write_code(site, original.get(..5).unwrap()) {
            Err(TargetError::Ptrace(PtraceError::Timeout { pid, tid, .. })) => {
                assert_eq!(pid, server.pid);
                let task = format!("/proc/{pid}/task/{tid}");
                assert!(
                    std::path::Path::new(&task).exists(),
                    "names a thread: {task}"
                );
                timeouts += 1;
            }
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
        assert_eq!(read_code(&target, site), original, "nothing written");
    }
    assert!(timeouts > 0, "no rendezvous timed out");
    // Every thread was released: the workers still run.
    let t = server.settled();
    assert!(t.old > 0 && t.new == 0, "{t:?}");
    assert!(server.alive());
}

#[test]
fn hooks_that_fail_or_hang_leave_the_process_as_it_was() {
    let Some(r) = rig("bad_hooks", 2) else {
        return;
    };
    let Rig {
        b,
        mut server,
        mut engine,
        site,
        original,
    } = r;
    let fail = std::fs::read(b.payload("bad_hooks.c", &["FAIL"], "fail.o").unwrap()).unwrap();
    let hang = std::fs::read(b.payload("bad_hooks.c", &["HANG"], "hang.o").unwrap()).unwrap();

    // A postapply hook returning 7: the apply is undone.
    let id = engine.load("fail.o", &fail).unwrap();
    let err = engine.apply(id).unwrap_err();
    assert!(
        matches!(err, EngineError::HookFailed { ret: 7, .. }),
        "{err}"
    );
    assert_eq!(read_code(engine.target(), site), original);
    engine.unload(id).unwrap();

    // A load hook that never returns: stopped after the hook timeout, its
    // thread's registers restored, the payload refused and unmapped.
    drop(engine);
    let opts = PtraceOptions {
        timeout: Duration::from_secs(10),
        hook_timeout: Duration::from_millis(300),
        ..PtraceOptions::default()
    };
    let target = PtraceTarget::attach(server.pid, opts).unwrap();
    let mut hung = Engine::new(target, LoadOptions::default());
    let err = hung.load("hang.o", &hang).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Target(TargetError::Ptrace(PtraceError::InjectionTimeout { .. }))
        ),
        "{err}"
    );
    assert_eq!(read_code(hung.target(), site), original);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.pid)).unwrap();
    let text: Vec<&str> = maps
        .lines()
        .filter(|l| l.trim_end().ends_with(" r-xp 00000000 00:00 0"))
        .collect();
    assert!(text.is_empty(), "payload text left: {text:?}");
    // Every thread runs on as before (the one that ran the hook included).
    let t = server.settled();
    assert_eq!((t.vat, t.new, t.eintr), (1100, 0, 0), "{t:?}");
    assert!(t.old > 0 && server.alive());
}

#[test]
fn threads_that_come_and_go_during_the_rendezvous() {
    let Some(b) = built("churn") else {
        return;
    };
    // One worker, and a thread starting short-lived threads back to back.
    let mut server = Server::start_with(&b.server, 1, 50, Some("SERVER_CHURN"));
    let Some(target) = attach(&server) else {
        return;
    };
    let site = target.lookup("with_vat").unwrap().addr;
    let original = read_code(&target, site);
    let fix = std::fs::read(&b.fix).unwrap();
    let mut engine = Engine::new(target, LoadOptions::default());
    let id = engine.load("fix.o", &fix).unwrap();
    for _ in 0..loops() / 2 {
        engine.apply(id).unwrap();
        engine.revert(id).unwrap();
    }
    engine.apply(id).unwrap();
    let t = server.settled();
    assert_eq!((t.vat, t.old, t.fixes), (1200, 0, 1), "{t:?}");
    engine.revert(id).unwrap();
    let t = server.settled();
    assert_eq!((t.vat, t.new, t.fixes), (1100, 0, 0), "{t:?}");
    assert_eq!(read_code(engine.target(), site), original);
    assert!(server.alive());
}

#[test]
fn a_second_patcher_waits_then_is_refused() {
    let Some(b) = built("locked") else {
        return;
    };
    let server = Server::start(&b.server, 1, 50);
    let Some(first) = attach(&server) else {
        return;
    };
    let started = std::time::Instant::now();
    let second = PtraceTarget::attach(server.pid, PtraceOptions::default());
    assert_eq!(second.unwrap_err(), PtraceError::Locked { pid: server.pid });
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    drop(first);
    assert!(PtraceTarget::attach(server.pid, PtraceOptions::default()).is_ok());
}

#[test]
fn code_a_thread_will_return_into_stays_mapped() {
    let Some(Rig {
        b,
        mut server,
        mut engine,
        site,
        original,
    }) = rig("in_use", 2)
    else {
        return;
    };
    let block = std::fs::read(b.payload("bad_hooks.c", &["BLOCK"], "block.o").unwrap()).unwrap();
    let id = engine.load("block.o", &block).unwrap();
    let text = engine.payload(id).unwrap().regions.first().unwrap().addr;
    // The workers enter the replacement and sleep 2 s in server_pause(),
    // called from it: their stacks hold return addresses into it.
    engine.apply(id).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    engine.revert(id).unwrap();
    assert_eq!(read_code(engine.target(), site), original);
    let err = engine.unload(id).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Target(TargetError::Ptrace(PtraceError::InUse { .. }))
        ),
        "{err}"
    );
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.pid)).unwrap();
    assert!(
        maps.lines()
            .any(|l| l.starts_with(&format!("{:x}-", text.0))),
        "the payload's text is still mapped at {text}"
    );
    // The workers wake up, return through the payload's code, and call
    // the restored function from then on.
    std::thread::sleep(Duration::from_millis(2000));
    let t = server.settled();
    assert_eq!((t.vat, t.new), (1100, 0), "{t:?}");
    assert!(t.old > 0 && server.alive());
}
