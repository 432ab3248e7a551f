//! The payload a C author writes with the generated header
//! (`spec/tests/c/payload.c`, `XSPLICE_ADDR` and the v3 record struct),
//! compiled by gcc for x86-64 and AArch64: its `.xsplice.funcs` carries
//! exactly the plain 64-bit absolute relocations the format allows, at
//! `new_addr`, `old_addr` and `name`, and the loader takes it (one v3
//! record, the note agreeing, the name and both addresses relocated).
//! The spec crate checks that the header compiles and agrees with the
//! Rust layouts byte for byte; this crate, which knows the loader, checks
//! what a payload built with it becomes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{have, root, skip};
use xsplice_abi::RecordVersion;
use xsplice_loader::{DryRun, LoadOptions, PLACEHOLDER};

/// `payload.c` built by `compiler`, strictly (`-Werror -pedantic`); the
/// object's path.
fn build(compiler: &str) -> Option<PathBuf> {
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
    Some(obj)
}

/// The relocations of `.xsplice.funcs` as (offset, type name), from
/// `readelf -rW`.
fn funcs_relocations(obj: &Path) -> Option<Vec<(u64, String)>> {
    let out = Command::new("readelf").arg("-rW").arg(obj).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut in_funcs = false;
    let mut relocs = Vec::new();
    for line in text.lines() {
        if line.starts_with("Relocation section") {
            in_funcs = line.contains("'.rela.xsplice.funcs'");
            continue;
        }
        let mut cols = line.split_whitespace();
        if let (true, Some(off), Some(_info), Some(ty)) =
            (in_funcs, cols.next(), cols.next(), cols.next())
        {
            if let Ok(off) = u64::from_str_radix(off, 16) {
                relocs.push((off, ty.to_string()));
            }
        }
    }
    Some(relocs)
}

fn loads(compiler: &str, abs64: &str) {
    let Some(obj) = build(compiler) else {
        return;
    };
    match funcs_relocations(&obj) {
        Some(relocs) => {
            // new_addr at 0, old_addr at 16, name at 32.
            let want: Vec<(u64, String)> = [0u64, 16, 32]
                .into_iter()
                .map(|o| (o, abs64.to_string()))
                .collect();
            assert_eq!(relocs, want, "{compiler}: relocations of .xsplice.funcs");
        }
        None => skip("readelf"),
    }
    let bytes = std::fs::read(&obj).unwrap();
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
    loads("gcc", "R_X86_64_64");
}

#[test]
fn header_payload_loads_aarch64() {
    loads("aarch64-linux-gnu-gcc", "R_AARCH64_ABS64");
}
