//! The architecture-specific tables honoured for real in this process by
//! `ProcessTarget` (SPEC.md 17.6): a gcc-built payload (`tests/arch/
//! payload.c`, written with the generated header's macros) is applied to
//! the test binary itself. Its replacement reads through a bad pointer and
//! gets -14 from its exception-table fixup; its alternatives follow this
//! CPU's `cpuid` (x86-64) or HWCAP (AArch64); a WARN prints and resumes, a
//! BUG aborts (in a child process); after revert the fixup is gone (a
//! child dies of SIGSEGV). On x86-64 and AArch64 (under qemu-user in CI).
//!
//! The children are this binary again, running one `#[ignore]`d test with
//! `XSPLICE_ARCH_CHILD` set to the payload object's path.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;
#[path = "common/demo.rs"]
mod demo;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use xsplice_loader::engine::{Engine, PayloadId};
use xsplice_loader::process::ProcessTarget;
use xsplice_loader::{LoadOptions, LoadedPayload};

const CHILD: &str = "XSPLICE_ARCH_CHILD";

/// Builds the payload with gcc (-fpic: it is mapped near the executable
/// but not below 2 GiB); `None` when gcc is missing (a failure under
/// `XSPLICE_REQUIRE_TOOLS=1`).
fn build() -> Option<PathBuf> {
    const TEST: &str = "tables_are_honoured_live";
    let cc = if cfg!(target_arch = "aarch64") {
        common::aarch64_cc(TEST)?
    } else {
        common::have_tool("gcc", TEST).then_some("gcc")?
    };
    Some(common::build_arch(cc, &["-fpic"]))
}

/// Whether the CPU has the feature the payload's alternatives name
/// (`FEATURE` in `tests/arch/payload.c`), and what the replacement of
/// `xsplice_arch_popcnt` returns for `0b1011`.
fn feature() -> (bool, i64) {
    #[cfg(target_arch = "x86_64")]
    return (std::is_x86_feature_detected!("popcnt"), 3);
    #[cfg(target_arch = "aarch64")]
    return (std::arch::is_aarch64_feature_detected!("lse"), 7);
}

/// This test binary, to run one test of it in a child: through the cargo
/// runner the tests were started with, when there is one for AArch64
/// (`CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER`, inherited from cargo;
/// CI's qemu-user, since the kernel cannot run an AArch64 binary on
/// x86-64 without binfmt_misc), else directly.
fn this_binary() -> Command {
    let exe = std::env::current_exe().unwrap();
    let runner = std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER")
        .ok()
        .filter(|_| cfg!(target_arch = "aarch64"));
    let mut words = runner.iter().flat_map(|r| r.split_whitespace());
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// An engine over this process with the payload at `path` applied.
fn applied(path: &Path) -> (Engine<ProcessTarget>, PayloadId) {
    // SAFETY: the payload is built from this repository for this binary;
    // the test never unloads a payload whose code may still run.
    let target = unsafe { ProcessTarget::new() }.unwrap();
    let mut e = Engine::new(target, LoadOptions::default());
    let id = e.load("arch", &std::fs::read(path).unwrap()).unwrap();
    e.apply(id).unwrap();
    (e, id)
}

/// The address of a function the payload defines.
fn func(p: &LoadedPayload, name: &str) -> usize {
    p.exports
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not exported"))
        .symbol
        .addr
        .0 as usize
}

/// `long f(const long *)` of the payload.
fn read_fn(p: &LoadedPayload) -> extern "C" fn(*const i64) -> i64 {
    // SAFETY: the payload defines xsplice_arch_read with this C signature.
    unsafe { std::mem::transmute(func(p, "xsplice_arch_read")) }
}

/// `long f(long)` of the payload.
fn long_fn(p: &LoadedPayload, name: &str) -> extern "C" fn(i64) -> i64 {
    // SAFETY: the payload defines these functions as `long f(long)` (the
    // argument is ignored by those that take none).
    unsafe { std::mem::transmute(func(p, name)) }
}

/// An address that is never mapped (the first page).
const BAD: *const i64 = 0x10 as *const i64;

#[test]
fn tables_are_honoured_live() {
    let Some(path) = build() else {
        return;
    };
    let (mut e, id) = applied(&path);
    assert_eq!(demo::answer(), 44);
    let p = e.payload(id).unwrap().clone();
    let read = read_fn(&p);
    let x = 42i64;
    assert_eq!(read(&x), 42);
    // The load faults; the exception table resumes at the fixup.
    assert_eq!(read(BAD), -14);
    assert_eq!(read(BAD), -14, "and again: the process keeps running");

    // Alternatives as this CPU says.
    let (popcnt, replaced) = feature();
    let count = long_fn(&p, "xsplice_arch_popcnt");
    assert_eq!(count(0b1011), if popcnt { replaced } else { -1 });
    let negated = long_fn(&p, "xsplice_arch_negated");
    assert_eq!(negated(0), if popcnt { 1 } else { 2 });
    let unknown = long_fn(&p, "xsplice_arch_unknown");
    assert_eq!(unknown(0), 3, "an unknown feature number is never applied");

    e.revert(id).unwrap();
    assert_eq!(demo::answer(), 41);

    let child = |name: &str| {
        this_binary()
            .args([
                "--ignored",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                name,
            ])
            .env(CHILD, &path)
            .output()
            .unwrap()
    };
    let warn = child("child_warn");
    let err = String::from_utf8_lossy(&warn.stderr);
    assert!(warn.status.success(), "{:?}\n{err}", warn.status);
    let line = common::arch_line_of("XSPLICE_BUG_KIND_WARN, \"negative value\"");
    assert!(
        err.contains(&format!(":{line}: WARN: negative value\n")),
        "{err}"
    );
    assert!(err.contains("after the WARN: -5"), "{err}");

    let bug = child("child_bug");
    let err = String::from_utf8_lossy(&bug.stderr);
    assert_eq!(bug.status.signal(), Some(libc::SIGABRT), "{err}");
    assert!(err.contains(": BUG: cannot go on\n"), "{err}");
    assert!(!err.contains("after the BUG"), "{err}");

    let chained = child("child_chain");
    let err = String::from_utf8_lossy(&chained.stderr);
    assert_eq!(
        chained.status.code(),
        Some(42),
        "{:?}\n{err}",
        chained.status
    );
    assert!(err.contains("fixed up while applied"), "{err}");

    let gone = child("child_fault_after_revert");
    let err = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.signal(), Some(libc::SIGSEGV), "{err}");
    assert!(err.contains("fixed up while applied"), "{err}");
}

/// The payload path in a child; `None` in a normal run.
fn child_payload() -> Option<PathBuf> {
    std::env::var_os(CHILD).map(PathBuf::from)
}

#[test]
#[ignore = "run by tables_are_honoured_live in a child process"]
fn child_warn() {
    let Some(path) = child_payload() else { return };
    let (e, id) = applied(&path);
    let warn = long_fn(e.payload(id).unwrap(), "xsplice_arch_warn");
    eprintln!("after the WARN: {}", warn(-5));
}

#[test]
#[ignore = "run by tables_are_honoured_live in a child process"]
fn child_bug() {
    let Some(path) = child_payload() else { return };
    let (e, id) = applied(&path);
    let bug = long_fn(e.payload(id).unwrap(), "xsplice_arch_bug");
    bug(0);
    eprintln!("after the BUG");
}

#[test]
#[ignore = "run by tables_are_honoured_live in a child process"]
fn child_fault_after_revert() {
    let Some(path) = child_payload() else { return };
    let (mut e, id) = applied(&path);
    let read = read_fn(e.payload(id).unwrap());
    assert_eq!(read(BAD), -14);
    eprintln!("fixed up while applied");
    e.revert(id).unwrap();
    // No longer registered: this fault is the process's own.
    read(BAD);
    eprintln!("still alive: the table was not unregistered");
}

/// A SIGSEGV handler installed before the target's: it exits with 42.
extern "C" fn exit_42(_sig: i32, _info: *mut libc::siginfo_t, _ctx: *mut std::ffi::c_void) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) }
}

#[test]
#[ignore = "run by tables_are_honoured_live in a child process"]
fn child_chain() {
    let Some(path) = child_payload() else { return };
    // SAFETY: a zeroed sigaction is valid; the handler only calls _exit.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = exit_42 as *const () as libc::sighandler_t;
        act.sa_flags = libc::SA_SIGINFO;
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &act, std::ptr::null_mut()),
            0
        );
    }
    let (mut e, id) = applied(&path);
    let read = read_fn(e.payload(id).unwrap());
    // Ours: fixed up, the earlier handler never sees it.
    assert_eq!(read(BAD), -14);
    eprintln!("fixed up while applied");
    e.revert(id).unwrap();
    // Not ours any more: the earlier handler gets it.
    read(BAD);
    eprintln!("not chained");
}
