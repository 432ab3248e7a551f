//! `xsplice apply|check|list|revert --pid` on the example server
//! (`examples/server/`, built by gcc here) while its worker threads call
//! the patched function in a tight loop.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[path = "../../examples/server/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, Output};

use harness::{Built, Server};

/// Runs `xsplice ARGS`. Commands that stop the threads of a process get
/// `--timeout 10000`: a loaded test machine may leave a thread without a
/// CPU for longer than the default second.
fn xsplice(args: &[&str]) -> Output {
    let stops =
        matches!(args.first(), Some(&("apply" | "revert" | "check"))) && args.contains(&"--pid");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice"));
    cmd.args(args);
    if stops {
        cmd.args(["--timeout", "10000"]);
    }
    cmd.output().expect("run xsplice")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let o = xsplice(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {out}{err}");
    out
}

/// Runs a command that must be refused (exit 1, one `error:` line first);
/// returns its stderr.
fn refused(args: &[&str]) -> String {
    let o = xsplice(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {out}{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn built(name: &str) -> Option<Built> {
    match harness::build(Path::new(env!("CARGO_TARGET_TMPDIR")), name) {
        Ok(b) => Some(b),
        Err(e) => {
            harness::skip(&e);
            None
        }
    }
}

/// A payload made by `xsplice build` from the fix's code alone
/// (`-DFIX_CODE_ONLY`) with one `--patch` and extra arguments.
fn build_payload(b: &Built, name: &str, patch: &str, extra: &[&str]) -> std::path::PathBuf {
    let plain = b.dir.join("plain.o");
    let out = b.dir.join(name);
    let gcc = Command::new("gcc")
        .args([
            "-O2",
            "-fpie",
            "-fno-stack-protector",
            "-DFIX_CODE_ONLY",
            "-c",
        ])
        .arg(harness::example_dir().join("fix.c"))
        .arg("-o")
        .arg(&plain)
        .status()
        .unwrap();
    assert!(gcc.success());
    let mut args = vec![
        "build",
        plain.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--patch",
        patch,
    ];
    args.extend_from_slice(extra);
    ok(&args);
    out
}

/// Payload text mappings (anonymous `r-xp`) left in process `pid`.
fn payload_text(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_end().ends_with(" r-xp 00000000 00:00 0"))
        .map(String::from)
        .collect()
}

/// `check --pid`, or a skip when ptrace is refused on this machine.
/// Returns the address of the patch site, read from the output.
fn check(pid: &str, payload: &Path) -> Option<u64> {
    let o = xsplice(&["check", "--pid", pid, payload.to_str().unwrap()]);
    let (out, err) = text(&o);
    if !o.status.success() && (err.contains("no permission") || err.contains("cannot attach")) {
        harness::skip(&format!("ptrace is refused here: {err}"));
        return None;
    }
    assert!(o.status.success(), "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    let site = out
        .split_whitespace()
        .skip_while(|w| *w != "site")
        .nth(1)
        .expect("a site in the output");
    Some(u64::from_str_radix(site.trim_start_matches("0x"), 16).unwrap())
}

/// The code bytes at `addr` in process `pid`.
fn code(pid: i32, addr: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut b = vec![0u8; 16];
    mem.read_exact_at(&mut b, addr).unwrap();
    b
}

#[test]
fn fix_a_running_server_by_pid() {
    let Some(b) = built("cli_pid") else {
        return;
    };
    let mut server = Server::start(&b.server, 4, 50);
    let pid = server.pid.to_string();
    assert_eq!(server.tick().vat, 1100);
    let Some(site) = check(&pid, &b.fix) else {
        return;
    };
    let original = code(server.pid, site);

    // A payload for another program altogether: its symbols are not there.
    let hv_fix = harness::example_dir().join("../hypervisor/fix.o");
    let err = refused(&["apply", "--pid", &pid, hv_fix.to_str().unwrap()]);
    assert!(
        err.contains(&format!("hint: `/proc/{pid}/exe` does not define it")),
        "{err}"
    );
    assert_eq!(code(server.pid, site), original, "a refusal writes nothing");

    // A payload bound to another build of the server: refused, untouched.
    let other = build_payload(
        &b,
        "other.o",
        "with_vat=fix_with_vat,old-size=16",
        &["--depends", "00112233445566778899aabbccddeeff00112233"],
    );
    let err = refused(&["apply", "--pid", &pid, other.to_str().unwrap()]);
    assert!(
        err.contains("hint: the payload was built for another binary"),
        "{err}"
    );
    assert_eq!(code(server.pid, site), original, "a refusal writes nothing");
    assert_eq!(server.settled().vat, 1100);

    // The fix, applied by PID while the workers run.
    let out = ok(&["apply", "--pid", &pid, b.fix.to_str().unwrap()]);
    assert!(
        out.contains("applied") && out.contains("threads stopped for"),
        "{out}"
    );
    let t = server.settled();
    assert_eq!((t.vat, t.old, t.fixes), (1200, 0, 1), "{t:?}");
    let patched = code(server.pid, site);
    assert_eq!(patched[0], 0xe9, "a jmp rel32 at with_vat");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains("/memfd:xsplice-ledger"), "{maps}");

    // A later run sees the stack, in text and JSON.
    let (out, err) = text(&xsplice(&["list", "--pid", &pid]));
    assert!(
        out.contains("1 payload applied") && out.contains("with_vat"),
        "{out}{err}"
    );
    let o = xsplice(&["list", "--pid", &pid, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["target"], format!("process {pid}"));
    assert_eq!(doc["applied"][0]["sites"][0]["function"], "with_vat");
    assert_eq!(
        doc["applied"][0]["sites"][0]["addr"],
        format!("{site:#x}"),
        "{doc}"
    );

    // The same payload again: refused by name, nothing written.
    let err = refused(&["apply", "--pid", &pid, b.fix.to_str().unwrap()]);
    assert!(err.contains("already applied"), "{err}");
    assert_eq!(code(server.pid, site), patched);
    let t = server.settled();
    assert_eq!((t.vat, t.fixes), (1200, 1), "{t:?}");

    // Replace it, in another run, by another payload with the same fix and
    // no hooks: fix.o's postrevert hook runs, its regions go.
    let other_fix = b.payload("bad_hooks.c", &[], "same_fix.o").unwrap();
    let out = ok(&[
        "apply",
        "--pid",
        &pid,
        "--replace",
        other_fix.to_str().unwrap(),
    ]);
    assert!(out.starts_with("replaced the stack with"), "{out}");
    let t = server.settled();
    assert_eq!((t.vat, t.old, t.fixes), (1200, 0, 0), "{t:?}");
    let (out, _) = text(&xsplice(&["list", "--pid", &pid]));
    assert!(
        out.contains("1 payload applied") && out.contains("same_fix.o"),
        "{out}"
    );
    assert_eq!(
        payload_text(server.pid).len(),
        1,
        "only the new payload's text"
    );
    ok(&["revert", "--pid", &pid]);
    assert_eq!(code(server.pid, site), original);
    ok(&["apply", "--pid", &pid, b.fix.to_str().unwrap()]);
    server.settled();

    // Revert in yet another run: the bug is back, the code bytes too, and
    // the payload's regions are gone from the process.
    let out = ok(&["revert", "--pid", &pid]);
    assert!(
        out.starts_with("reverted ") && out.contains("fix.o in process"),
        "{out}"
    );
    let t = server.settled();
    assert_eq!((t.vat, t.new, t.fixes), (1100, 0, 0), "{t:?}");
    assert_eq!(code(server.pid, site), original);
    let (out, _) = text(&xsplice(&["list", "--pid", &pid]));
    assert!(out.contains("nothing applied"), "{out}");
    refused(&["revert", "--pid", &pid]);

    // Apply and revert by PID, run after run.
    let rounds: u32 = std::env::var("XSPLICE_PID_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut pauses = Vec::new();
    for _ in 0..rounds {
        for args in [
            vec!["apply", "--pid", &pid, b.fix.to_str().unwrap()],
            vec!["revert", "--pid", &pid, "--all"],
        ] {
            let out = ok(&args);
            pauses.extend(
                out.split("threads stopped for ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok()),
            );
        }
    }
    let t = server.settled();
    assert_eq!((t.vat, t.new, t.fixes), (1100, 0, 0), "{t:?}");
    assert_eq!(code(server.pid, site), original);
    assert!(server.alive());
    pauses.sort_unstable();
    eprintln!(
        "{rounds} apply/revert rounds by PID: pause median {} µs, max {} µs",
        pauses.get(pauses.len() / 2).copied().unwrap_or(0),
        pauses.last().copied().unwrap_or(0)
    );
    assert_eq!(pauses.len(), 2 * rounds as usize);
    assert_eq!(payload_text(server.pid), Vec::<String>::new());
}

/// A server with one extra thread parked by `var`, and a payload patching
/// `patch` in it (not applied).
struct Parked {
    server: Server,
    pid: String,
    payload: String,
    site: u64,
    original: Vec<u8>,
}

fn parked(name: &str, var: &str, patch: &str) -> Option<Parked> {
    let b = built(name)?;
    let server = Server::start_with(&b.server, 1, 50, Some(var));
    let pid = server.pid.to_string();
    let payload = build_payload(&b, "parked_fix.o", patch, &[]);
    let site = check(&pid, &payload)?;
    let original = code(server.pid, site);
    Some(Parked {
        server,
        pid,
        payload: payload.to_str().unwrap().to_string(),
        site,
        original,
    })
}

#[test]
fn a_thread_always_inside_the_site_makes_apply_refuse() {
    // spin()'s entry is a hot loop: a thread's PC is always at offset 1 or
    // 4, in the interior of the 5 bytes where the jump would go.
    let Some(mut t) = parked("cli_busy", "SERVER_SPIN", "spin=fix_with_vat,old-size=7") else {
        return;
    };
    let err = refused(&["apply", "--pid", &t.pid, &t.payload]);
    assert!(err.contains("inside the code to patch"), "{err}");
    assert!(
        err.contains("\nhint: a thread kept executing the code to patch"),
        "{err}"
    );
    assert_eq!(code(t.server.pid, t.site), t.original, "nothing written");
    assert_eq!(
        payload_text(t.server.pid),
        Vec::<String>::new(),
        "regions released"
    );
    let (out, _) = text(&xsplice(&["list", "--pid", &t.pid]));
    assert!(out.contains("nothing applied"), "{out}");
    t.server.settled();
    assert!(t.server.alive());
}

#[test]
fn errors_name_the_process() {
    let err = refused(&["list", "--pid", "2147483647"]);
    assert!(
        err.starts_with("error: process 2147483647: no process with PID 2147483647\nhint: "),
        "{err}"
    );
    let o = xsplice(&["apply", "--pid", "1", "--image", "x", "fix.o"]);
    assert_eq!(o.status.code(), Some(2), "--pid and --image conflict");
    // A process of another user, when this does not run as root: reading
    // it is refused, with a hint on why.
    let euid = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))?
            .split_whitespace()
            .nth(1)
            .map(String::from)
    };
    let (me, init) = (euid("self"), euid("1"));
    if me.as_deref() != Some("0") && me.is_some() && init.is_some() && me != init {
        let o = xsplice(&["list", "--pid", "1"]);
        let (_, err) = text(&o);
        assert!(
            err.starts_with("error: process 1: no permission to trace process 1"),
            "{err}"
        );
        assert!(err.contains("\nhint: "), "{err}");
    }
}

#[test]
fn strict_waits_for_no_thread_inside_the_old_function() {
    // A thread loops in park() forever, past its first 8 bytes: a jump at
    // the entry is safe, but the thread is inside the old function.
    let Some(mut t) = parked("cli_strict", "SERVER_PARK", "park=fix_with_vat,old-size=12") else {
        return;
    };
    let p = t.payload.as_str();
    let err = refused(&["apply", "--pid", &t.pid, "--strict", p]);
    assert!(err.contains("inside the code to patch"), "{err}");
    assert_eq!(code(t.server.pid, t.site), t.original, "nothing written");
    // The default policy only looks at the bytes written.
    ok(&["apply", "--pid", &t.pid, p]);
    assert_eq!(code(t.server.pid, t.site)[0], 0xe9);
    ok(&["revert", "--pid", &t.pid]);
    assert_eq!(code(t.server.pid, t.site), t.original);
    t.server.settled();
    assert!(t.server.alive());
}
