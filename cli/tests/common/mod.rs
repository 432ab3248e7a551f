//! Helpers shared by the CLI's end-to-end tests: run the `xsplice` binary
//! from the workspace root, expect success or exactly one `error:` line,
//! scratch directories, and running patched executables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The workspace root: every command runs there, with relative paths, so
/// `file` in the JSON is stable.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

pub fn xsplice(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_xsplice"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let run = Run {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap_or(-1),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("internal error"),
        "{args:?}: {}",
        run.stderr
    );
    run
}

/// Runs and expects success.
pub fn ok(args: &[&str]) -> Run {
    let r = xsplice(args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

/// Runs and expects exit 1 with exactly one `error:` line on stderr.
pub fn fails(args: &[&str]) -> Run {
    let r = xsplice(args);
    assert_eq!(
        r.code, 1,
        "{args:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    let errors = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .count();
    assert_eq!(errors, 1, "{args:?}: {}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{args:?}: {}", r.stderr);
    for l in r.stderr.lines() {
        assert!(
            l.starts_with("error: ") || l.starts_with("hint: "),
            "{args:?}: unexpected stderr line {l:?}"
        );
    }
    r
}

pub fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args).stdout).unwrap()
}

/// A fresh directory for one test's outputs.
pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xsplice-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs an executable, retrying while another test's fork briefly holds the
/// freshly written file open (ETXTBSY, os error 26).
pub fn run_exe(exe: &Path) -> (String, i32) {
    let mut tries = 0;
    let out = loop {
        match Command::new(exe).output() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    (
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
        out.status.code().unwrap_or(-1),
    )
}

pub const HV: &str = "examples/hypervisor/hv";
pub const FIX: &str = "examples/hypervisor/fix.o";
pub const FIX_V1: &str = "examples/hypervisor/fix_v1.o";
pub const FIXED_V3: &str = "hv: version 2, sum = 10 (expected 10), fix hv-fix-1/v3: OK";
pub const HV_BUILD_ID: &str = "b1b24e0136401115e7741104b0b9aae7b8ed0ee1";

pub fn fixture(name: &str) -> String {
    format!("compat-tests/fixtures/{name}")
}

pub fn records(v: &Value) -> &Vec<Value> {
    v["records"].as_array().unwrap()
}
