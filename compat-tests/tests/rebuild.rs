//! The committed compiler-built files are what their sources build: the
//! fixtures (`compat-tests/fixtures/regen.sh --check`) and the example
//! image and payloads (`examples/hypervisor/build.sh --check`), each
//! rebuilt in a temporary directory and compared byte for byte.
//!
//! Needs gcc (every CI machine has it); the AArch64 objects also need
//! `aarch64-linux-gnu-gcc`, which `.ci/run` installs. Without it this test
//! says so and checks nothing, rather than failing on a missing tool.

mod common;

use std::process::Command;

use common::{have, root, skip};

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
