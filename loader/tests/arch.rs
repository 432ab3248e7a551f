//! Architecture-specific tables (format 3.1, SPEC.md section 17) on
//! gcc-built payloads: `tests/arch/payload.c`, written with the generated
//! header's assembler macros, is compiled at test time (x86-64 with gcc,
//! AArch64 with `aarch64-linux-gnu-gcc`), loaded, checked entry by entry,
//! and its alternatives applied or kept per CPU features on an in-memory
//! target. Refusals are pinned to their exact messages.
//!
//! Without a compiler a test prints why it is skipped; under
//! `XSPLICE_REQUIRE_TOOLS=1` (CI) a missing compiler is a failure.

mod common;

use common::memory::Memory;
use common::{Bump, Table};
use xsplice_abi::arch::BugKind;
use xsplice_abi::{FormatVersion, Incompat};
use xsplice_loader::arch_tables::Alternative;
use xsplice_loader::engine::{Engine, EngineError};
use xsplice_loader::{
    load, Arch, ArchProblem, CpuFeatures, LoadError, LoadOptions, LoadWarning, LoadedPayload,
};

/// Whether `compiler` runs (see [`common::have_tool`]).
fn have(compiler: &str, test: &str) -> bool {
    common::have_tool(compiler, test)
}

/// Builds `payload.c` with `compiler` and `flags`; the object's bytes.
fn build(compiler: &str, flags: &[&str]) -> Vec<u8> {
    std::fs::read(common::build_arch(compiler, flags)).unwrap()
}

/// Memory for `arch` with `cpu` features, honouring every table or none.
fn mem(arch: Arch, cpu: CpuFeatures, honour: bool) -> Memory {
    Memory {
        arch,
        cpu,
        honour,
        ..Memory::new(Table::demo())
    }
}

/// Loads with plain `load` (no target: no alternatives applied).
fn load_plain(bytes: &[u8], opts: &LoadOptions) -> Result<LoadedPayload, LoadError> {
    load(bytes, opts, &Table::demo(), &mut Bump::default())
}

/// Whether alternative `a` was applied in `mem`: its original bytes are now
/// the replacement followed by NOPs.
fn applied(mem: &Memory, a: &Alternative) -> bool {
    let orig = mem.bytes(a.orig.0, usize::from(a.orig_len));
    let repl = mem.bytes(a.repl.0, usize::from(a.repl_len));
    let fill = xsplice_loader::patch::nops(mem.arch, u64::from(a.orig_len - a.repl_len)).unwrap();
    [repl, fill].concat() == orig
}

/// Checks every table of a payload built for `arch`.
fn check_tables(p: &LoadedPayload, arch: Arch) {
    assert_eq!(p.arch, arch);
    assert_eq!(p.format, FormatVersion::new(3, 1));
    assert_eq!(p.note.unwrap().incompat, Incompat::ARCH);
    let t = &p.arch_tables;
    let text = p.text().unwrap();
    let ex = t.ex_entries();
    assert_eq!(ex.len(), 1);
    let read = p
        .exports
        .iter()
        .find(|e| e.name == "xsplice_arch_read")
        .unwrap()
        .symbol;
    // The faulting load is inside xsplice_arch_read; the fixup elsewhere in text.
    assert!(ex[0].insn.0 >= read.addr.0 && ex[0].insn.0 < read.addr.0 + read.size);
    assert!(text.contains(ex[0].fixup, 1));
    assert!(!(read.addr.0..read.addr.0 + read.size).contains(&ex[0].fixup.0));

    let alts = t.alt_entries();
    assert_eq!(alts.len(), 3);
    // POPCNT on x86-64, ATOMICS on AArch64: both number 1.
    let feature = 1;
    assert_eq!(
        alts.iter()
            .map(|a| (a.feature.number, a.feature.when_absent, a.known))
            .collect::<Vec<_>>(),
        [
            (feature, false, true),
            (feature, true, true),
            (99, false, false)
        ]
    );
    for a in alts {
        assert!(a.repl_len <= a.orig_len);
        assert!(text.contains(a.orig, u64::from(a.orig_len)));
        assert!(text.contains(a.repl, u64::from(a.repl_len)));
    }
    assert!(p.warnings.contains(&LoadWarning::UnknownCpuFeature {
        entry: 2,
        number: 99
    }));

    let bugs = t.bug_entries();
    assert_eq!(bugs.len(), 2);
    assert_eq!(
        (bugs[1].kind, bugs[1].msg.as_str()),
        (BugKind::Bug, "cannot go on")
    );
    assert_eq!(bugs[0].msg, "negative value");
    assert_eq!(bugs[0].kind, BugKind::Warn);
    assert_eq!(
        bugs[0].line,
        common::arch_line_of("XSPLICE_BUG_KIND_WARN, \"negative value\"")
    );
    assert_eq!(
        p.bytes_at(bugs[0].loc, 2).unwrap(),
        &xsplice_loader::arch_tables::trap(arch)[..2]
    );
}

#[test]
fn every_table_resolves_inside_the_payload() {
    if !have("gcc", "every_table_resolves_inside_the_payload") {
        return;
    }
    for flags in [&["-fno-pic"][..], &["-fpic"][..]] {
        let p = load_plain(&build("gcc", flags), &LoadOptions::default()).unwrap();
        check_tables(&p, Arch::X86_64);
    }
}

#[test]
fn alternatives_follow_the_cpu_features() {
    if !have("gcc", "alternatives_follow_the_cpu_features") {
        return;
    }
    let bytes = build("gcc", &["-fno-pic"]);
    let popcnt = CpuFeatures::NONE.with(1);
    // (features, [popcnt applied, negated applied, unknown applied])
    for (cpu, want) in [
        (CpuFeatures::NONE, [false, true, false]),
        (popcnt, [true, false, false]),
    ] {
        let mut e = Engine::new(mem(Arch::X86_64, cpu, true), LoadOptions::default());
        let id = e.load("p", &bytes).unwrap();
        let alts = e.arch_tables(id).unwrap().alt_entries().to_vec();
        let got: Vec<bool> = alts.iter().map(|a| applied(e.target(), a)).collect();
        assert_eq!(got, want, "{cpu:?}");
    }
}

#[test]
fn aarch64_payload_loads_and_applies() {
    if !have("aarch64-linux-gnu-gcc", "aarch64_payload_loads_and_applies") {
        return;
    }
    let bytes = build("aarch64-linux-gnu-gcc", &[]);
    let p = load_plain(&bytes, &LoadOptions::default()).unwrap();
    check_tables(&p, Arch::Aarch64);
    let atomics = CpuFeatures::parse(Arch::Aarch64, "atomics").unwrap();
    let mut e = Engine::new(mem(Arch::Aarch64, atomics, true), LoadOptions::default());
    let id = e.load("p", &bytes).unwrap();
    let alts = e.arch_tables(id).unwrap().alt_entries().to_vec();
    let got: Vec<bool> = alts.iter().map(|a| applied(e.target(), a)).collect();
    assert_eq!(got, [true, false, false]);
}

#[test]
fn tables_register_at_apply_and_unregister_at_revert() {
    if !have("gcc", "tables_register_at_apply_and_unregister_at_revert") {
        return;
    }
    let bytes = build("gcc", &["-fno-pic"]);
    let mut e = Engine::new(
        mem(Arch::X86_64, CpuFeatures::NONE, true),
        LoadOptions::default(),
    );
    let id = e.load("p", &bytes).unwrap();
    assert!(e.target().registered.is_empty(), "nothing before apply");
    e.apply(id).unwrap();
    assert_eq!(e.target().registered.get(&id), Some(&(1, 2)));
    e.revert(id).unwrap();
    assert!(e.target().registered.is_empty());
    e.apply(id).unwrap();
    assert_eq!(e.target().registered.len(), 1);
    e.revert(id).unwrap();
    e.unload(id).unwrap();
    assert!(e.target().registered.is_empty());
}

#[test]
fn a_target_that_cannot_honour_a_table_refuses_the_payload() {
    if !have(
        "gcc",
        "a_target_that_cannot_honour_a_table_refuses_the_payload",
    ) {
        return;
    }
    let bytes = build("gcc", &["-fno-pic"]);
    let mut e = Engine::new(
        mem(Arch::X86_64, CpuFeatures::NONE, false),
        LoadOptions::default(),
    );
    let err = e.load("p", &bytes).unwrap_err();
    assert_eq!(
        err,
        EngineError::Load(LoadError::Arch {
            section: ".xsplice.ex_table",
            problem: ArchProblem::NotHonoured
        })
    );
    assert_eq!(
        err.to_string(),
        "`.xsplice.ex_table`: the target cannot honour this table"
    );
    // Refused before anything was allocated, so nothing was mapped.
    assert_eq!(e.target().next_region, 0x50_0000);
    assert_eq!(
        e.target().snapshot(),
        mem(Arch::X86_64, CpuFeatures::NONE, false).snapshot()
    );
}

#[test]
fn refusals_name_the_section_and_the_rule() {
    if !have("gcc", "refusals_name_the_section_and_the_rule") {
        return;
    }
    let cases: [(&str, &str); 8] = [
        (
            "-DNO_ARCH_BIT",
            "`.xsplice.ex_table`: present, but the ABI note does not set incompat bit ARCH (bit 4, format 3.1)",
        ),
        (
            "-DONLY_BIT",
            "`.note.xsplice`: the ABI note sets incompat bit ARCH but the payload has none of `.xsplice.ex_table`, `.xsplice.altinstructions`, `.xsplice.bug_frames`",
        ),
        (
            "-DRECORD_ARCH",
            "`.xsplice.funcs`: record 0 (section offset 0x2c): incompat bit ARCH (incompat at offset 44) is payload-level: only the ABI note may carry it, never a record",
        ),
        (
            "-DMINOR0",
            "`.note.xsplice`: ABI note sets incompat bit ARCH (offset 8) but declares format 3.0: the bit needs format minor 1 or later",
        ),
        (
            "-DBAD_REPL",
            "`.xsplice.altinstructions`: entry 0: repl_len 2 (offset 11) exceeds orig_len 1",
        ),
        ("-DOUTSIDE", "`.xsplice.ex_table`: entry 0: `fixup` 0x401200 (length 1) is not inside the payload's text"),
        (
            "-DBAD_SIZE",
            "`.xsplice.ex_table`: size 12 is not a multiple of the 8-byte entry",
        ),
        (
            "-DWRONG_RELOC",
            "section `.xsplice.ex_table`: relocation 0 (X86_64_32) against `xsplice_arch_read`: relocates a field of a format section in a way the format forbids (only ABS64 at new_addr, old_addr, name and hook pointers; PC32 or PREL32 at the rel32 fields of the architecture tables)",
        ),
    ];
    for (flag, want) in cases {
        let err =
            load_plain(&build("gcc", &["-fno-pic", flag]), &LoadOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), want, "{flag}");
    }
}

#[test]
fn a_loader_without_arch_refuses_by_the_bit() {
    if !have("gcc", "a_loader_without_arch_refuses_by_the_bit") {
        return;
    }
    // An older loader, or one whose target honours none of the tables.
    let old = LoadOptions {
        incompat_supported: Incompat::all() - Incompat::ARCH,
        ..LoadOptions::default()
    };
    let err = load_plain(&build("gcc", &["-fno-pic"]), &old).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`.note.xsplice`: ABI note has unknown incompat bit 4 (offset 8)"
    );
}

/// `xsplice build` carries the tables from the object, and the note says so;
/// `upgrade` keeps them.
#[cfg(feature = "write")]
#[test]
fn the_writer_carries_the_tables() {
    use xsplice_abi::RecordVersion;
    use xsplice_loader::write::{rewrite_version, OldTarget, Patch, PayloadBuilder};
    if !have("gcc", "the_writer_carries_the_tables") {
        return;
    }
    let object = build("gcc", &["-fno-pic", "-DOBJECT_ONLY"]);
    let payload = PayloadBuilder::from_object(&object)
        .unwrap()
        .patch(Patch::replace(
            OldTarget::Name("xsplice_demo_answer".into()),
            "xsplice_arch_answer",
            16,
        ))
        .build()
        .unwrap();
    let p = load_plain(&payload, &LoadOptions::default()).unwrap();
    check_tables(&p, Arch::X86_64);
    let v2 = rewrite_version(&payload, RecordVersion::V2).unwrap();
    let p = load_plain(&v2, &LoadOptions::default()).unwrap();
    assert_eq!(p.format, FormatVersion::new(2, 1));
    assert_eq!(p.arch_tables.alt_entries().len(), 3);
    // v1 has no note to carry ARCH: refused, not silently dropped.
    assert!(rewrite_version(&payload, RecordVersion::V1).is_err());
}
