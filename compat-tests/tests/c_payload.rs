//! The payload a C author writes with the generated header
//! (`spec/tests/c/payload.c`, `XSPLICE_ADDR` and the v3 record struct),
//! compiled by gcc for x86-64 and AArch64, loads: one v3 record, the note
//! agreeing, the name and both addresses relocated. The spec crate checks
//! the relocations the header makes (`spec/tests/c_header.rs`); whether the
//! loader takes the result is this crate's question, so the spec crate
//! does not depend on the loader.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{have, root, skip};
use xsplice_abi::RecordVersion;
use xsplice_loader::{DryRun, LoadOptions, PLACEHOLDER};

/// `payload.c` built by `compiler` as the spec test builds it.
fn build(compiler: &str) -> Option<Vec<u8>> {
    if !have(compiler) {
        skip(compiler);
        return None;
    }
    let obj = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("xsplice-compat-c-payload-{compiler}.o"));
    let out = Command::new(compiler)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-O2",
            "-I",
        ])
        .arg(root().join("spec/generated"))
        .arg("-c")
        .arg(root().join("spec/tests/c/payload.c"))
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read(&obj).unwrap())
}

fn loads(compiler: &str) {
    let Some(bytes) = build(compiler) else {
        return;
    };
    let p = DryRun::default()
        .load(&bytes, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{compiler}: the loader refused payload.c: {e}"));
    assert_eq!(p.record_version, RecordVersion::V3);
    assert_eq!(p.note.map(|n| n.format.major), Some(3));
    assert_eq!(p.records.len(), 1);
    let r = &p.records[0];
    assert_eq!(r.name, "xsplice_spec_target");
    assert_eq!((r.func.new_size, r.func.old_size), (16, 16));
    assert!(p.text().is_some_and(|t| t.contains(r.func.new_addr, 1)));
    assert_eq!(r.func.old_addr, PLACEHOLDER);
}

#[test]
fn header_payload_loads_x86_64() {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIPPED: the host gcc does not target x86-64");
        return;
    }
    loads("gcc");
}

#[test]
fn header_payload_loads_aarch64() {
    loads("aarch64-linux-gnu-gcc");
}
