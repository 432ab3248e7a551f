//! The generated C header against real compilers: it compiles warning-free,
//! C and Rust agree on the bytes of every record version, the ABI note and a
//! vendor entry. What a payload written with it (`c/payload.c`) becomes —
//! `XSPLICE_ADDR()` initializers as ABS64 relocations, and a payload the
//! loader takes — is checked in `compat-tests/tests/c_payload.rs`.
//!
//! Every test needs gcc; without it a test says why it is skipped, and
//! fails under `XSPLICE_REQUIRE_TOOLS=1`. The AArch64 checks also need
//! `aarch64-linux-gnu-gcc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use xsplice_abi::vendor::{VendorEntries, VendorId, VendorTarget};
use xsplice_abi::{
    decode, Addr, Compat, Expect, FormatVersion, Incompat, PatchFunc, RecordIndex, RecordVersion,
};

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated_dir() -> PathBuf {
    spec_dir().join("generated")
}

fn c_dir() -> PathBuf {
    spec_dir().join("tests").join("c")
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("xsplice-spec-{name}"))
}

/// Whether `compiler` runs; prints a skip message when it does not.
fn have(compiler: &str, test: &str) -> bool {
    match Command::new(compiler).arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            skip(test, compiler);
            false
        }
    }
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn compile_header(compiler: &str, extra: &[&str]) {
    let obj = tmp(&format!("header-{compiler}-{}.o", extra.len()));
    run(Command::new(compiler)
        .args(["-std=c11", "-Wall", "-Werror"])
        .args(extra)
        .args(["-x", "c", "-c"])
        .arg(generated_dir().join("xsplice_abi.h"))
        .arg("-o")
        .arg(&obj));
}

#[test]
fn header_compiles_with_gcc() {
    if !have("gcc", "header_compiles_with_gcc") {
        return;
    }
    // The command of the brief, then stricter.
    compile_header("gcc", &[]);
    compile_header("gcc", &["-Wextra", "-pedantic"]);
}

#[test]
fn header_compiles_for_aarch64() {
    if !have("aarch64-linux-gnu-gcc", "header_compiles_for_aarch64") {
        return;
    }
    compile_header("aarch64-linux-gnu-gcc", &["-Wextra", "-pedantic"]);
}

/// What fill.c writes, as the canonical view.
fn expected_records() -> [PatchFunc; 3] {
    let v1 = PatchFunc {
        new_addr: Addr(0xffff_82d0_c000_0000),
        new_size: 0x30,
        old_addr: Addr(0xffff_82d0_8020_1000),
        old_size: 0x40,
        name: Addr(0xffff_82d0_c001_0000),
        ..PatchFunc::default()
    };
    let v2 = PatchFunc {
        new_addr: Addr(0),
        new_size: 5,
        old_addr: Addr(0xffff_82d0_8020_3000),
        old_size: 0x10,
        name: Addr(0xffff_82d0_c001_0010),
        incompat: Incompat::NOP,
        compat: Compat::from_bits_retain(0x4000_0000),
        ..PatchFunc::default()
    };
    let v3 = PatchFunc {
        new_addr: Addr(0xffff_82d0_c000_0100),
        new_size: 0x58,
        old_addr: Addr(0),
        old_size: 0x4c,
        name: Addr(0xffff_82d0_c001_0020),
        incompat: Incompat::PATCH_OFFSET | Incompat::SYMPOS | Incompat::EXPECT,
        compat: Compat::from_bits_retain(0x8000_0000),
        patch_offset: 4,
        sympos: 2,
        expect: Expect::new(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5]).unwrap(),
    };
    [v1, v2, v3]
}

#[test]
fn c_and_rust_agree_on_every_byte() {
    if !have("gcc", "c_and_rust_agree_on_every_byte") {
        return;
    }
    let exe = tmp("fill");
    run(Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(generated_dir())
        .arg(c_dir().join("fill.c"))
        .arg("-o")
        .arg(&exe));
    let bytes = run(&mut Command::new(&exe)).stdout;
    assert_eq!(
        bytes.len(),
        64 + 64 + 128 + 24 + 16 + 8,
        "fill.c output size"
    );

    let (v1, rest) = bytes.split_at(64);
    let (v2, rest) = rest.split_at(64);
    let (v3, rest) = rest.split_at(128);
    let (note, vendor) = rest.split_at(24);

    let expected = expected_records();
    for ((bytes, version), want) in [
        (v1, RecordVersion::V1),
        (v2, RecordVersion::V2),
        (v3, RecordVersion::V3),
    ]
    .into_iter()
    .zip(expected)
    {
        // sh_entsize 0: the record's own tag decides, as for gcc output.
        let records = decode(bytes, 0).unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_eq!(records.version(), version);
        assert_eq!(records.len(), 1);
        let rec = records.get(0).unwrap().unwrap();
        assert_eq!(rec.func, want, "{version} record written by C");
        // And byte-for-byte: Rust's encoder writes exactly what C wrote.
        let again = xsplice_abi::encode(&rec.func, version).unwrap();
        assert_eq!(again.as_bytes(), bytes, "{version} bytes");
    }

    let note = xsplice_abi::AbiNote::decode(note).unwrap();
    assert_eq!(note.format, FormatVersion::new(3, 0));
    assert_eq!(note.record_version, RecordVersion::V3);
    assert_eq!(note.record_size, 128);
    assert_eq!(
        note.incompat,
        Incompat::PATCH_OFFSET | Incompat::SYMPOS | Incompat::EXPECT
    );
    assert_eq!(note.compat, Compat::empty());

    let entries: Vec<_> = VendorEntries::new(vendor).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (offset, entry) = entries[0].unwrap();
    assert_eq!(offset, 0);
    assert_eq!(entry.vendor, VendorId(1));
    assert_eq!(entry.kind, 7);
    assert!(entry.critical);
    assert_eq!(entry.target, VendorTarget::Record(RecordIndex(2)));
    assert_eq!(entry.data, b"abc");
}

/// `readelf -rW` lines of `.rela.xsplice.funcs`: (offset, type).
/// A missing tool: a loud skip, or a failure under `XSPLICE_REQUIRE_TOOLS=1`
/// (CI), where a skipped check would pass while checking nothing.
fn skip(test: &str, tool: &str) {
    let what = format!("`{tool}` (for {test})");
    assert!(
        std::env::var("XSPLICE_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "{what} is missing and XSPLICE_REQUIRE_TOOLS=1 (CI) forbids skipping"
    );
    eprintln!("SKIPPED {test}: `{tool}` is not installed");
}
