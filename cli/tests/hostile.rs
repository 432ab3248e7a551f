//! Hostile input through the command line (issue 12): text from a payload
//! cannot forge output lines or terminal escapes, non-regular files are
//! refused up front, limits name the flag that raises them, and outputs of
//! any valid name are written.

mod common;

use common::*;

/// `fix.o` with its record name `hv_sum` rewritten in place to a newline,
/// an ESC and a forged `error:` line.
fn hostile_fix() -> Vec<u8> {
    let mut b = std::fs::read(root().join(FIX)).unwrap();
    let at = b
        .windows(7)
        .position(|w| w == b"hv_sum\0")
        .expect("the name is in .rodata.str1.1");
    b[at..at + 6].copy_from_slice(b"\n\x1b[2J\n");
    b
}

#[test]
fn names_from_a_payload_are_escaped() {
    let d = tmp("hostile-names");
    let p = d.join("evil.o");
    std::fs::write(&p, hostile_fix()).unwrap();
    for args in [
        vec!["inspect", s(&p)],
        vec!["check", s(&p), "-v"],
        vec!["inspect", s(&p), "--json"],
    ] {
        let r = ok(&args);
        assert!(
            !r.stdout.contains('\x1b'),
            "{args:?}: raw ESC in {:?}",
            r.stdout
        );
        assert!(
            !r.stdout.lines().any(|l| l.starts_with("[2J")),
            "{args:?}: a name broke a line: {:?}",
            r.stdout
        );
    }
    let text = ok(&["inspect", s(&p)]).stdout;
    assert!(text.contains("\\n\\u{1b}[2J\\n"), "{text}");
    let v = json(&["inspect", s(&p), "--json"]);
    assert_eq!(
        v["records"][0]["name"], "\n\x1b[2J\n",
        "JSON keeps the data"
    );
}

#[test]
fn only_regular_files_are_read() {
    let d = tmp("hostile-fifo");
    let fifo = d.join("fifo");
    let ok_fifo = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok_fifo, "mkfifo");
    let r = fails(&["check", s(&fifo)]);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    let out = d.join("out");
    let r = fails(&["apply", "--image", "/dev/zero", "-o", s(&out), FIX]);
    assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    assert!(!out.exists());
}

#[test]
fn limits_are_options_and_errors_name_them() {
    let r = fails(&["check", FIX, "--max-size", "1000"]);
    assert!(
        r.stderr.contains("hint: raise the limit with --max-size"),
        "{}",
        r.stderr
    );
    let r = fails(&["check", FIX, "--max-name", "4"]);
    assert!(r.stderr.contains("--max-name"), "{}", r.stderr);
    let r = fails(&["inspect", FIX, "--max-sections", "3"]);
    assert!(r.stderr.contains("--max-sections"), "{}", r.stderr);
    let r = fails(&["check", FIX, "--image", HV, "--max-alloc", "16"]);
    assert!(r.stderr.contains("--max-alloc"), "{}", r.stderr);
    ok(&["check", FIX, "--max-size", "3000", "--max-name", "64"]);
}

#[test]
fn an_output_name_of_255_bytes_is_written() {
    let d = tmp("hostile-longname");
    let out = d.join("o".repeat(255));
    ok(&["apply", "--image", HV, "-o", s(&out), FIX]);
    assert_eq!(run_exe(&out).0, FIXED_V3);
}
