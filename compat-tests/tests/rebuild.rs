//! The committed compiler-built files are what their sources build: the
//! fixtures (`compat-tests/fixtures/regen.sh --check`) and the example
//! image and payloads (`examples/hypervisor/build.sh --check`), each
//! rebuilt in a temporary directory and compared byte for byte.
//!
//! Needs gcc (every CI machine has it); the AArch64 objects also need
//! `aarch64-linux-gnu-gcc`, which `.ci/run` installs. Without it this test
//! says so and checks nothing, rather than failing on a missing tool.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn check(script: &str) {
    let out = Command::new("bash")
        .arg(root().join(script))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} --check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn example_image_and_payloads_rebuild_identically() {
    if !have("gcc") {
        skip("gcc");
        return;
    }
    check("examples/hypervisor/build.sh");
}

#[test]
fn fixtures_rebuild_identically() {
    if !have("gcc") || !have("aarch64-linux-gnu-gcc") {
        skip("gcc or aarch64-linux-gnu-gcc (.ci/run installs gcc-aarch64-linux-gnu)");
        return;
    }
    check("compat-tests/fixtures/regen.sh");
}

/// A missing tool: a loud skip, or a failure under `XSPLICE_REQUIRE_TOOLS=1`
/// (CI), where a skipped check would pass while checking nothing.
fn skip(what: &str) {
    assert!(
        std::env::var("XSPLICE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{what} is missing and XSPLICE_REQUIRE_TOOLS=1 (CI) forbids skipping"
    );
    eprintln!("SKIPPED: {what} not found");
}
