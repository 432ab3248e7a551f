//! gcc-built payloads of every record version and code model load,
//! relocate and decode to the records their C sources describe.

mod common;

use common::{expected, fixture, Bump, Table};
use xsplice_abi::{Incompat, RecordVersion};
use xsplice_loader::{load, Arch, LoadOptions, LoadedPayload, PatchRecord};

fn load_fixture(name: &str) -> LoadedPayload {
    let table = Table::demo();
    // arm64 branches reach ±128 MiB: place the payload near the target there.
    let mut bump = if name.contains("aarch64") {
        Bump { next: 0x100_0000 }
    } else {
        Bump::default()
    };
    load(&fixture(name), &LoadOptions::default(), &table, &mut bump)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Finds the target of every `call rel32` (e8) or `jmp rel32` (e9) in `code`
/// that lands exactly on `target`.
fn calls_to(code: &[u8], at: u64, target: u64) -> usize {
    code.windows(5)
        .enumerate()
        .filter(|(i, w)| {
            (w[0] == 0xe8 || w[0] == 0xe9) && {
                let rel = i32::from_le_bytes([w[1], w[2], w[3], w[4]]) as i64;
                (at as i64 + *i as i64 + 5 + rel) as u64 == target
            }
        })
        .count()
}

/// The `xsplice_demo_scale` record (whose replacement calls back into the
/// target) and its relocated replacement code.
fn scale_code(p: &LoadedPayload) -> (&PatchRecord, &[u8]) {
    let scale = p
        .records
        .iter()
        .find(|r| r.name == "xsplice_demo_scale")
        .unwrap();
    (
        scale,
        p.bytes_at(scale.func.new_addr, scale.func.new_size)
            .unwrap(),
    )
}

/// Compares every record with expected.json.
fn check_records(name: &str, p: &LoadedPayload) {
    let exp = expected(name);
    assert_eq!(
        p.record_version.number() as u64,
        exp["record_version"].as_u64().unwrap(),
        "{name}"
    );
    assert_eq!(
        p.record_size as u64,
        exp["record_size"].as_u64().unwrap(),
        "{name}"
    );
    let recs = exp["records"].as_array().unwrap();
    assert_eq!(p.records.len(), recs.len(), "{name}");
    let table = Table::demo();
    for (r, e) in p.records.iter().zip(recs) {
        let f = &r.func;
        assert_eq!(r.name, e["name"].as_str().unwrap(), "{name}");
        assert_eq!(
            f.new_size,
            e["new_size"].as_u64().unwrap(),
            "{name} {}",
            r.name
        );
        assert_eq!(
            f.old_size,
            e["old_size"].as_u64().unwrap(),
            "{name} {}",
            r.name
        );
        assert_eq!(
            f.incompat.bits() as u64,
            e["incompat"].as_u64().unwrap(),
            "{name} {}",
            r.name
        );
        assert_eq!(f.patch_offset as u64, e["patch_offset"].as_u64().unwrap());
        assert_eq!(f.sympos as u64, e["sympos"].as_u64().unwrap());
        let hex: String = f
            .expect
            .as_slice()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, e["expect"].as_str().unwrap());
        // old_addr: relocated against the target's symbol, or 0 and resolved by name.
        match e["old_function"].as_str() {
            Some(sym) => assert_eq!(f.old_addr.0, table.addr(sym), "{name} {}", r.name),
            None => assert!(f.old_addr.is_null()),
        }
        let resolved = if f.sympos != 0 {
            table.locals[&(r.name.clone(), f.sympos)].addr.0
        } else {
            table.addr(&r.name)
        };
        assert_eq!(r.old_addr.0, resolved, "{name} {}", r.name);
        assert_eq!(r.site.0, resolved + f.patch_offset as u64);
        if f.incompat.contains(Incompat::NOP) {
            assert!(f.new_addr.is_null());
        } else {
            // new_addr was relocated into the payload's text.
            let text = p.text().unwrap();
            assert!(text.contains(f.new_addr, f.new_size), "{name} {}", r.name);
        }
    }
}

#[test]
fn live_payloads_every_version_and_code_model() {
    let table = Table::demo();
    for v in ["v1", "v2", "v3"] {
        for flavour in ["nopic", "pic", "large"] {
            let name = format!("live_{v}-{flavour}.o");
            let p = load_fixture(&name);
            assert_eq!(p.arch, Arch::X86_64);
            check_records(&name, &p);
            let version = RecordVersion::from_number(v[1..].parse().unwrap()).unwrap();
            assert_eq!(p.record_version, version);
            assert_eq!(p.note.is_some(), version != RecordVersion::V1, "{name}");
            assert_eq!(p.format.major, version.number());
            // The scale replacement calls back into the target: the relocated
            // call (direct, or through the GOT/PLT forms) must reach it.
            let (scale, code) = scale_code(&p);
            if flavour != "large" {
                assert_eq!(
                    calls_to(code, scale.func.new_addr.0, table.addr("xsplice_demo_base")),
                    1,
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn large_model_goes_through_the_got() {
    // Large PIE: movabs $_GLOBAL_OFFSET_TABLE_-., %r; movabs $base@PLTOFF, %r;
    // add; call *%r. Recompute the call target from the relocated bytes.
    let p = load_fixture("live_v3-large.o");
    let table = Table::demo();
    let (scale, code) = scale_code(&p);
    // Find `lea -7(%rip),%rX` (GOT base computation start) and the two movabs imm64.
    let movabs: Vec<(usize, i64)> = code
        .windows(10)
        .enumerate()
        .filter(|(_, w)| (w[0] == 0x48 || w[0] == 0x49) && (0xb8..=0xbf).contains(&w[1]))
        .map(|(i, w)| (i, i64::from_le_bytes(w[2..10].try_into().unwrap())))
        .collect();
    assert!(movabs.len() >= 2, "{movabs:?}");
    // lea disp32(%rip), %r15 computes the address the GOTPC64 value is relative to.
    let lea_at = code
        .windows(3)
        .position(|w| (w[0] == 0x48 || w[0] == 0x4c) && w[1] == 0x8d && w[2] & 0xc7 == 0x05)
        .unwrap();
    let disp = i32::from_le_bytes(code[lea_at + 3..lea_at + 7].try_into().unwrap()) as i64;
    let anchor = scale.func.new_addr.0 as i64 + lea_at as i64 + 7 + disp;
    let got = anchor + movabs[0].1;
    let target = (got + movabs[1].1) as u64;
    assert_eq!(target, table.addr("xsplice_demo_base"));
}

#[test]
fn features_payload_decodes_every_feature() {
    for flavour in ["nopic", "pic", "large"] {
        let name = format!("features_v3-{flavour}.o");
        let p = load_fixture(&name);
        check_records(&name, &p);
        assert_eq!(p.note.unwrap().incompat, Incompat::all() - Incompat::ARCH);
        assert_eq!(
            p.build_id.as_deref(),
            Some(&(0xa0..=0xb3).collect::<Vec<u8>>()[..])
        );
        assert_eq!(
            p.depends.as_deref(),
            Some(&(0x01..=0x14).collect::<Vec<u8>>()[..])
        );
        let points: Vec<_> = p.hooks.iter().map(|h| h.point.section()).collect();
        assert_eq!(
            points,
            [".xsplice.hooks.preapply", ".xsplice.hooks.postapply"]
        );
        assert_eq!(p.vendor.len(), 2);
        assert_eq!(p.vendor[0].vendor, 0x8000_0001);
        assert_eq!(p.vendor[0].data, b"abc");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }
}

#[test]
fn aarch64_payloads() {
    for name in [
        "live_v3-aarch64-nopic.o",
        "live_v3-aarch64-pic.o",
        "features_v3-aarch64-nopic.o",
        "features_v3-aarch64-pic.o",
    ] {
        let p = load_fixture(name);
        assert_eq!(p.arch, Arch::Aarch64);
        check_records(name, &p);
    }
    // The relocated `bl xsplice_demo_base` of the scale replacement reaches it.
    let p = load_fixture("live_v3-aarch64-nopic.o");
    let (scale, code) = scale_code(&p);
    let target = Table::demo().addr("xsplice_demo_base") as i64;
    let found = code.chunks_exact(4).enumerate().any(|(i, w)| {
        let insn = u32::from_le_bytes(w.try_into().unwrap());
        if insn & 0xfc00_0000 != 0x9400_0000 && insn & 0xfc00_0000 != 0x1400_0000 {
            return false;
        }
        let imm = ((insn & 0x3ff_ffff) << 6) as i32 >> 6;
        scale.func.new_addr.0 as i64 + 4 * i as i64 + 4 * imm as i64 == target
    });
    assert!(found);
}
