//! The payload writer on real inputs: every gcc-built fixture rewritten into
//! every record version that can express it, payloads built from a plain
//! gcc object, and large payloads, all loaded back through the loader.
#![cfg(feature = "write")]

mod common;

use common::{fixture, Bump, Table};
use goblin::elf::Elf;
use xsplice_abi::vendor::{VendorId, VendorTarget};
use xsplice_abi::{Addr, ErrorKind, Incompat, PatchFunc, RecordIndex, RecordVersion};
use xsplice_loader::write::{
    rewrite_version, rewrite_version_with, NewCode, OldTarget, Patch, PatchProblem, PayloadBuilder,
    VendorField, WriteError,
};
use xsplice_loader::{
    load, HeaderProblem, LoadError, LoadOptions, LoadedPayload, RecordProblem, Symbol,
};

const FIXTURES: [&str; 16] = [
    "live_v1-nopic.o",
    "live_v1-pic.o",
    "live_v1-large.o",
    "live_v2-nopic.o",
    "live_v2-pic.o",
    "live_v2-large.o",
    "live_v3-nopic.o",
    "live_v3-pic.o",
    "live_v3-large.o",
    "live_v3-aarch64-nopic.o",
    "live_v3-aarch64-pic.o",
    "features_v3-nopic.o",
    "features_v3-pic.o",
    "features_v3-large.o",
    "features_v3-aarch64-nopic.o",
    "features_v3-aarch64-pic.o",
];

const INPUT: &str = "build_input.obj";

fn bump(aarch64: bool) -> Bump {
    // arm64 branches reach ±128 MiB: place the payload near the target there.
    if aarch64 {
        Bump { next: 0x100_0000 }
    } else {
        Bump::default()
    }
}

fn is_aarch64(bytes: &[u8]) -> bool {
    Elf::parse(bytes).unwrap().header.e_machine == goblin::elf::header::EM_AARCH64
}

fn load_with(bytes: &[u8], table: &Table, opts: &LoadOptions) -> Result<LoadedPayload, LoadError> {
    load(bytes, opts, table, &mut bump(is_aarch64(bytes)))
}

fn load_ok(bytes: &[u8], what: &str) -> LoadedPayload {
    load_with(bytes, &Table::demo(), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// What a record means, independent of where its name string landed.
fn canonical(p: &LoadedPayload) -> Vec<(String, PatchFunc, Addr, Addr)> {
    p.records
        .iter()
        .map(|r| {
            let mut f = r.func;
            f.name = Addr::NULL;
            (r.name.clone(), f, r.old_addr, r.site)
        })
        .collect()
}

fn union(p: &LoadedPayload) -> Incompat {
    p.records
        .iter()
        .fold(Incompat::empty(), |a, r| a | r.func.incompat)
}

/// The rewritten payload means what the original meant, in version `to`.
fn assert_same_payload(orig: &LoadedPayload, new: &LoadedPayload, to: RecordVersion, what: &str) {
    assert_eq!(canonical(new), canonical(orig), "{what}");
    for r in &new.records {
        if !r.func.is_nop() {
            assert!(
                new.text()
                    .unwrap()
                    .contains(r.func.new_addr, r.func.new_size),
                "{what} {}",
                r.name
            );
        }
    }
    assert_eq!(new.record_version, to, "{what}");
    assert_eq!(new.record_size, to.known_size(), "{what}");
    assert_eq!(new.format.major, to.number(), "{what}");
    match &new.note {
        None => assert_eq!(to, RecordVersion::V1, "{what}"),
        Some(n) => {
            assert_eq!(n.record_version, to, "{what}");
            assert_eq!(n.incompat, union(orig), "{what}");
        }
    }
    assert_eq!(new.build_id, orig.build_id, "{what}");
    assert_eq!(new.depends, orig.depends, "{what}");
    assert_eq!(new.hooks, orig.hooks, "{what}");
    assert_eq!(new.vendor, orig.vendor, "{what}");
    assert_eq!(new.warnings, orig.warnings, "{what}");
    let names = |p: &LoadedPayload| p.exports.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(new), names(orig), "{what}");
    // The code is untouched: identical once relocated when the regions are
    // laid out alike (the records, the note and the GOT move otherwise).
    let layout = |p: &LoadedPayload| {
        p.regions
            .iter()
            .map(|r| (r.kind, r.addr, r.bytes.len()))
            .collect::<Vec<_>>()
    };
    if layout(new) == layout(orig) {
        assert_eq!(new.text(), orig.text(), "{what}");
    }
}

type Reloc = (u64, u32, String, i64);
type KeptSection = (String, u32, u64, u64, u64, Vec<u8>, Vec<Reloc>);

/// A symbol's name; a section symbol is named by its section.
fn symbol_name(elf: &Elf, index: usize) -> String {
    let s = elf.syms.get(index).unwrap();
    if s.st_type() == goblin::elf::sym::STT_SECTION {
        let sh = &elf.section_headers[s.st_shndx];
        elf.shdr_strtab.get_at(sh.sh_name).unwrap().to_string()
    } else {
        elf.strtab.get_at(s.st_name).unwrap().to_string()
    }
}

/// Whether a section is one a rewrite changes.
fn rewritten(name: &str) -> bool {
    matches!(
        name,
        ".xsplice.funcs"
            | ".rela.xsplice.funcs"
            | ".note.xsplice"
            | ".symtab"
            | ".strtab"
            | ".shstrtab"
    )
}

/// Every section a rewrite must keep, as the file holds it (name, type,
/// flags, alignment, entsize, bytes, relocations with symbols by name), and
/// every symbol not defined in a section the rewrite changes.
fn kept(bytes: &[u8]) -> (Vec<KeptSection>, Vec<String>) {
    let elf = Elf::parse(bytes).unwrap();
    let name = |i: usize| {
        elf.shdr_strtab
            .get_at(elf.section_headers[i].sh_name)
            .unwrap()
    };
    let mut sections = Vec::new();
    for (i, sh) in elf.section_headers.iter().enumerate().skip(1) {
        if rewritten(name(i)) || sh.sh_type == goblin::elf::section_header::SHT_RELA {
            continue;
        }
        let data = if sh.sh_type == goblin::elf::section_header::SHT_NOBITS {
            Vec::new()
        } else {
            bytes[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize].to_vec()
        };
        let mut relocs: Vec<Reloc> = elf
            .shdr_relocs
            .iter()
            .filter(|(r, _)| elf.section_headers[*r].sh_info as usize == i)
            .flat_map(|(_, rs)| rs.iter())
            .map(|r| {
                let addend = r.r_addend.unwrap_or(0);
                (r.r_offset, r.r_type, symbol_name(&elf, r.r_sym), addend)
            })
            .collect();
        relocs.sort();
        sections.push((
            name(i).to_string(),
            sh.sh_type,
            sh.sh_flags,
            sh.sh_addralign,
            sh.sh_entsize,
            data,
            relocs,
        ));
    }
    sections.sort();
    let mut symbols: Vec<String> = (1..elf.syms.len())
        .filter_map(|i| {
            let s = elf.syms.get(i).unwrap();
            let defined = s.st_shndx != 0 && s.st_shndx < elf.section_headers.len();
            let section = defined.then(|| name(s.st_shndx));
            if section.is_some_and(rewritten) {
                return None;
            }
            Some(format!(
                "{} {} {} {section:?} {:#x} {}",
                symbol_name(&elf, i),
                s.st_type(),
                s.st_bind(),
                s.st_value,
                s.st_size
            ))
        })
        .collect();
    symbols.sort();
    (sections, symbols)
}

/// The oldest version every record of `p` fits.
fn min_version(p: &LoadedPayload) -> RecordVersion {
    p.records
        .iter()
        .map(|r| r.func.min_version().unwrap())
        .max()
        .unwrap()
}

/// A section header of `bytes` by name.
fn section(bytes: &[u8], name: &str) -> Option<goblin::elf::SectionHeader> {
    let elf = Elf::parse(bytes).unwrap();
    elf.section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
        .cloned()
}

fn section_data<'a>(bytes: &'a [u8], name: &str) -> &'a [u8] {
    let s = section(bytes, name).unwrap();
    &bytes[s.sh_offset as usize..(s.sh_offset + s.sh_size) as usize]
}

/// `(offset, type)` of every relocation of `.xsplice.funcs`.
fn funcs_relocs(bytes: &[u8]) -> Vec<(u64, u32)> {
    let elf = Elf::parse(bytes).unwrap();
    let funcs = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".xsplice.funcs"))
        .unwrap();
    let mut out: Vec<_> = elf
        .shdr_relocs
        .iter()
        .filter(|(i, _)| elf.section_headers[*i].sh_info as usize == funcs)
        .flat_map(|(_, rs)| rs.iter().map(|r| (r.r_offset, r.r_type)))
        .collect();
    out.sort();
    out
}

#[test]
fn every_fixture_into_every_expressible_version() {
    for name in FIXTURES {
        let input = fixture(name);
        let orig = load_ok(&input, name);
        let min = min_version(&orig);
        let old_relocs = funcs_relocs(&input);
        for to in RecordVersion::ALL {
            let what = format!("{name} -> {to}");
            let result = rewrite_version(&input, to);
            if to < min {
                let err = result.expect_err(&what);
                assert!(
                    matches!(&err, WriteError::Record { source, .. }
                        if matches!(source.kind, ErrorKind::FeatureNotInVersion { version, .. } if version == to)),
                    "{what}: {err}"
                );
                continue;
            }
            let out = result.unwrap_or_else(|e| panic!("{what}: {e}"));
            let new = load_ok(&out, &what);
            assert_same_payload(&orig, &new, to, &what);
            // Everything but the records and the note is as gcc wrote it.
            assert_eq!(kept(&out), kept(&input), "{what}");

            // The section and its relocations moved with the record size.
            let funcs = section(&out, ".xsplice.funcs").unwrap();
            assert_eq!(funcs.sh_entsize, to.known_size() as u64, "{what}");
            assert_eq!(
                funcs.sh_size,
                (orig.records.len() * to.known_size()) as u64,
                "{what}"
            );
            let old_size = orig.record_size as u64;
            let moved: Vec<_> = old_relocs
                .iter()
                .map(|(off, t)| (off / old_size * to.known_size() as u64 + off % old_size, *t))
                .collect();
            assert_eq!(funcs_relocs(&out), moved, "{what}");
            assert_eq!(
                section(&out, ".note.xsplice").is_some(),
                to != RecordVersion::V1,
                "{what}"
            );
        }
    }
}

#[test]
fn round_trip_v1_v3_v2_v1_keeps_the_records_and_bytes() {
    let input = fixture("live_v1-nopic.o");
    let orig = load_ok(&input, "v1");
    let v3 = rewrite_version(&input, RecordVersion::V3).unwrap();
    let v2 = rewrite_version(&v3, RecordVersion::V2).unwrap();
    let v1 = rewrite_version(&v2, RecordVersion::V1).unwrap();
    assert_same_payload(&orig, &load_ok(&v3, "v3"), RecordVersion::V3, "v1->v3");
    assert_same_payload(&orig, &load_ok(&v2, "v2"), RecordVersion::V2, "v3->v2");
    assert_same_payload(&orig, &load_ok(&v1, "v1"), RecordVersion::V1, "v2->v1");
    // Back to v1, the unrelocated records are the bytes gcc wrote.
    assert_eq!(
        section_data(&v1, ".xsplice.funcs"),
        section_data(&input, ".xsplice.funcs")
    );
    assert_eq!(funcs_relocs(&v1), funcs_relocs(&input));
    // Rewriting into the same version changes nothing a loader sees.
    let again = rewrite_version(&v3, RecordVersion::V3).unwrap();
    assert_eq!(canonical(&load_ok(&again, "v3 again")), canonical(&orig));
}

#[test]
fn features_into_v2_is_refused_naming_the_feature() {
    for name in ["features_v3-nopic.o", "features_v3-aarch64-pic.o"] {
        let input = fixture(name);
        let orig = load_ok(&input, name);
        // The first record v2 cannot hold, and its first feature v2 lacks.
        let (index, rec) = orig
            .records
            .iter()
            .enumerate()
            .find(|(_, r)| r.func.min_version() == Some(RecordVersion::V3))
            .unwrap();
        let feature = (rec.func.incompat - Incompat::allowed_in(RecordVersion::V2))
            .iter()
            .next()
            .unwrap();
        let err = rewrite_version(&input, RecordVersion::V2).unwrap_err();
        match &err {
            WriteError::Record {
                index: i,
                name: n,
                source,
            } => {
                assert_eq!((*i, n.as_str()), (index, rec.name.as_str()));
                assert_eq!(
                    source.kind,
                    ErrorKind::FeatureNotInVersion {
                        feature,
                        version: RecordVersion::V2
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        let feature_name = feature.info().unwrap().name;
        assert!(msg.contains(feature_name), "{msg}");
        assert!(msg.contains("v2") && msg.contains(&rec.name), "{msg}");
    }
}

#[test]
fn rewrite_refuses_what_does_not_load() {
    let err = rewrite_version(&fixture(INPUT), RecordVersion::V3).unwrap_err();
    assert_eq!(
        err,
        WriteError::InvalidPayload(LoadError::MissingSection(".xsplice.funcs"))
    );
    let mut bytes = fixture("live_v3-nopic.o");
    bytes.truncate(100);
    assert!(matches!(
        rewrite_version(&bytes, RecordVersion::V3),
        Err(WriteError::InvalidPayload(_))
    ));
}

/// `(st_value, st_size)` of a symbol of the input object.
fn input_symbol(bytes: &[u8], name: &str) -> (u64, u64) {
    let elf = Elf::parse(bytes).unwrap();
    let s = elf
        .syms
        .iter()
        .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
        .unwrap();
    (s.st_value, s.st_size)
}

use common::bench_payload::ENDBR64;

/// The patches of the builder test for `version`: what each version can hold.
fn demo_patches(version: RecordVersion) -> Vec<Patch> {
    let mut p = vec![
        Patch::replace(
            OldTarget::Name("xsplice_demo_answer".into()),
            "xsplice_new_answer",
            16,
        ),
        Patch::replace(
            OldTarget::Symbol("xsplice_demo_scale".into()),
            "xsplice_new_scale",
            16,
        ),
    ];
    if version >= RecordVersion::V2 {
        p.push(Patch::nop(
            OldTarget::Name("xsplice_demo_nop_site".into()),
            3,
            16,
        ));
    }
    if version >= RecordVersion::V3 {
        p.push(Patch {
            sympos: 2,
            ..Patch::replace(
                OldTarget::Name("xsplice_demo_local_helper".into()),
                "xsplice_new_helper",
                16,
            )
        });
        p.push(Patch {
            patch_offset: 4,
            expect: Some(ENDBR64.to_vec()),
            new: NewCode::Function {
                symbol: "xsplice_new_answer".into(),
                size: Some(5),
            },
            ..Patch::replace(OldTarget::Name("xsplice_demo_endbr_site".into()), "", 16)
        });
    }
    p
}

fn build_id() -> Vec<u8> {
    (0xa0..=0xb3).collect()
}

fn depends_id() -> Vec<u8> {
    (0x01..=0x14).collect()
}

fn demo_builder(input: &[u8], version: RecordVersion) -> PayloadBuilder {
    let mut b = PayloadBuilder::from_object(input).unwrap();
    b.version(version);
    for p in demo_patches(version) {
        b.patch(p);
    }
    b.build_id(build_id())
        .depends(depends_id())
        .vendor(VendorField {
            vendor: VendorId(0x8000_0001),
            kind: 1,
            critical: false,
            target: VendorTarget::Payload,
            data: b"abc".to_vec(),
        })
        .vendor(VendorField {
            vendor: VendorId(0x8000_0002),
            kind: 7,
            critical: true,
            target: VendorTarget::Record(RecordIndex(1)),
            data: (1..=9).collect(),
        });
    b
}

#[test]
fn build_every_version_from_a_gcc_object() {
    let input = fixture(INPUT);
    let table = Table::demo();
    let opts = LoadOptions {
        known_vendor_entries: vec![(0x8000_0002, 7)],
        ..LoadOptions::default()
    };
    for version in RecordVersion::ALL {
        let what = version.to_string();
        let out = demo_builder(&input, version).build().unwrap();
        let p = load_with(&out, &table, &opts).unwrap_or_else(|e| panic!("{what}: {e}"));
        let patches = demo_patches(version);
        assert_eq!(p.record_version, version);
        assert_eq!(p.record_size, version.known_size());
        assert_eq!(p.records.len(), patches.len());
        let text = p.text().unwrap();
        let mut union = Incompat::empty();
        for (r, want) in p.records.iter().zip(&patches) {
            let f = &r.func;
            assert_eq!(r.name, want.name(), "{what}");
            assert_eq!(f.old_size, want.old_size);
            assert_eq!(f.patch_offset, want.patch_offset);
            assert_eq!(f.sympos, want.sympos);
            assert_eq!(
                f.expect.as_slice(),
                want.expect.as_deref().unwrap_or_default()
            );
            let mut incompat = Incompat::empty();
            match &want.new {
                NewCode::Function { symbol, size } => {
                    let (value, st_size) = input_symbol(&input, symbol);
                    assert_eq!(f.new_addr.0, text.addr.0 + value, "{what} {}", r.name);
                    assert_eq!(f.new_size, size.unwrap_or(st_size), "{what} {}", r.name);
                }
                NewCode::Nop { size } => {
                    incompat |= Incompat::NOP;
                    assert!(f.new_addr.is_null());
                    assert_eq!(f.new_size, *size);
                }
            }
            if want.patch_offset != 0 {
                incompat |= Incompat::PATCH_OFFSET;
            }
            if want.sympos != 0 {
                incompat |= Incompat::SYMPOS;
            }
            if want.expect.is_some() {
                incompat |= Incompat::EXPECT;
            }
            assert_eq!(f.incompat, incompat, "{what} {}", r.name);
            union |= incompat;
            let resolved = match &want.old {
                OldTarget::Symbol(s) => {
                    // old_addr was relocated against the target's symbol.
                    assert_eq!(f.old_addr.0, table.addr(s));
                    table.addr(s)
                }
                OldTarget::Name(n) => {
                    assert!(f.old_addr.is_null());
                    if want.sympos != 0 {
                        table.locals[&(n.clone(), want.sympos)].addr.0
                    } else {
                        table.addr(n)
                    }
                }
            };
            assert_eq!(r.old_addr.0, resolved, "{what} {}", r.name);
            assert_eq!(r.site.0, resolved + u64::from(want.patch_offset));
        }
        match p.note {
            None => assert_eq!(version, RecordVersion::V1),
            Some(n) => {
                assert_eq!(n.record_version, version);
                assert_eq!(usize::from(n.record_size), version.known_size());
                assert_eq!(n.incompat, union);
                assert_eq!(n.format, version.format());
            }
        }
        assert_eq!(p.build_id, Some(build_id()));
        assert_eq!(p.depends, Some(depends_id()));
        let vendor: Vec<_> = p
            .vendor
            .iter()
            .map(|v| {
                (
                    v.vendor,
                    v.kind,
                    v.critical,
                    v.record,
                    v.data.clone(),
                    v.known,
                )
            })
            .collect();
        assert_eq!(
            vendor,
            [
                (0x8000_0001, 1, false, None, b"abc".to_vec(), false),
                (
                    0x8000_0002,
                    7,
                    true,
                    Some(RecordIndex(1)),
                    (1..=9).collect(),
                    true
                ),
            ]
        );
        // The rest of the object came through: the scale replacement's call
        // to the target is relocated.
        let scale = &p.records[1];
        let code = p
            .bytes_at(scale.func.new_addr, scale.func.new_size)
            .unwrap();
        let base = table.addr("xsplice_demo_base");
        let calls = code.windows(5).enumerate().filter(|(i, w)| {
            w[0] == 0xe8 && {
                let rel = i32::from_le_bytes([w[1], w[2], w[3], w[4]]) as i64;
                (scale.func.new_addr.0 as i64 + *i as i64 + 5 + rel) as u64 == base
            }
        });
        assert_eq!(calls.count(), 1, "{what}");

        // The sections as documented.
        let funcs = section(&out, ".xsplice.funcs").unwrap();
        assert_eq!(
            funcs.sh_flags,
            u64::from(goblin::elf::section_header::SHF_ALLOC)
        );
        assert_eq!(
            (funcs.sh_entsize, funcs.sh_addralign),
            (version.known_size() as u64, 8)
        );
        let strings = section(&out, ".xsplice.strings").unwrap();
        assert_eq!(
            strings.sh_flags,
            u64::from(goblin::elf::section_header::SHF_ALLOC)
        );
        assert!(funcs_relocs(&out)
            .iter()
            .all(|(_, t)| *t == goblin::elf::reloc::R_X86_64_64));
        let note = section(&out, ".note.xsplice");
        assert_eq!(note.is_some(), version != RecordVersion::V1);
        if let Some(n) = note {
            assert_eq!(
                (n.sh_type, n.sh_addralign),
                (goblin::elf::section_header::SHT_NOTE, 4)
            );
        }

        // Rewriting needs options that know the critical vendor entry.
        let err = rewrite_version(&out, version).unwrap_err();
        assert!(
            matches!(err, WriteError::InvalidPayload(LoadError::Vendor(_))),
            "{err}"
        );
        let again = rewrite_version_with(&out, version, &opts).unwrap();
        let q = load_with(&again, &table, &opts).unwrap();
        assert_eq!(canonical(&q), canonical(&p), "{what}");
        assert_eq!(q.vendor, p.vendor, "{what}");
    }
}

#[test]
fn built_payloads_rewrite_between_versions() {
    // Critical vendor entries need options that know them, so build without.
    let input = fixture(INPUT);
    let mut b = PayloadBuilder::from_object(&input).unwrap();
    for p in demo_patches(RecordVersion::V1) {
        b.patch(p);
    }
    b.version(RecordVersion::V1).build_id(build_id());
    let v1 = b.build().unwrap();
    let orig = load_ok(&v1, "built v1");
    for to in [RecordVersion::V3, RecordVersion::V2, RecordVersion::V1] {
        let out = rewrite_version(&v1, to).unwrap();
        assert_same_payload(&orig, &load_ok(&out, "rewritten"), to, &to.to_string());
    }
    // Built twice, the same bytes: the writer is deterministic.
    assert_eq!(b.build().unwrap(), v1);
    // A payload is not an input.
    assert_eq!(
        PayloadBuilder::from_object(&v1).unwrap_err(),
        WriteError::SectionExists(".xsplice.funcs")
    );
}

fn patch_problem(b: &PayloadBuilder) -> (usize, PatchProblem) {
    match b.build() {
        Err(WriteError::Patch { index, problem, .. }) => (index, problem),
        other => panic!("{other:?}"),
    }
}

#[test]
fn build_refusals() {
    let input = fixture(INPUT);
    let answer = |old: &str| Patch::replace(OldTarget::Name(old.into()), "xsplice_new_answer", 16);
    let fresh = || PayloadBuilder::from_object(&input).unwrap();

    // A feature the version cannot express is the encoder's error.
    let mut b = fresh();
    b.version(RecordVersion::V2).patch(Patch {
        expect: Some(ENDBR64.to_vec()),
        ..answer("a")
    });
    let err = b.build().unwrap_err();
    assert!(
        matches!(&err, WriteError::Record { index: 0, source, .. }
            if source.kind == ErrorKind::FeatureNotInVersion { feature: Incompat::EXPECT, version: RecordVersion::V2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("EXPECT"), "{err}");
    let mut b = fresh();
    b.version(RecordVersion::V1)
        .patch(answer("a"))
        .patch(Patch::nop(OldTarget::Name("b".into()), 3, 16));
    assert!(
        matches!(b.build(), Err(WriteError::Record { index: 1, source, .. })
            if source.kind == ErrorKind::FeatureNotInVersion { feature: Incompat::NOP, version: RecordVersion::V1 })
    );

    // The new function must be defined code in the object.
    let mut b = fresh();
    b.patch(Patch::replace(OldTarget::Name("a".into()), "nope", 16));
    assert_eq!(
        patch_problem(&b),
        (0, PatchProblem::NewSymbolMissing("nope".into()))
    );
    let mut b = fresh();
    b.patch(Patch::replace(
        OldTarget::Name("a".into()),
        "xsplice_demo_base",
        16,
    ));
    assert_eq!(
        patch_problem(&b),
        (
            0,
            PatchProblem::NewSymbolUndefined("xsplice_demo_base".into())
        )
    );
    let mut b = fresh();
    b.patch(Patch::replace(OldTarget::Name("a".into()), ".text", 16));
    assert_eq!(
        patch_problem(&b),
        (0, PatchProblem::NewSymbolMissing(".text".into()))
    );

    // Names: unique, 1..=127 bytes.
    let mut b = fresh();
    b.patch(answer("a")).patch(answer("b")).patch(answer("a"));
    assert_eq!(
        patch_problem(&b),
        (2, PatchProblem::DuplicateName { first: 0 })
    );
    let mut b = fresh();
    b.patch(answer(&"x".repeat(128)));
    assert!(matches!(patch_problem(&b), (0, PatchProblem::Name(_))));
    let mut b = fresh();
    b.patch(answer(""));
    assert!(matches!(patch_problem(&b), (0, PatchProblem::Name(_))));
    let mut b = fresh();
    b.patch(answer(&"x".repeat(127)));
    assert!(b.build().is_ok());

    // old_addr names target code, not the payload's.
    let mut b = fresh();
    b.patch(Patch::replace(
        OldTarget::Symbol("xsplice_new_scale".into()),
        "xsplice_new_answer",
        16,
    ));
    assert_eq!(
        patch_problem(&b),
        (
            0,
            PatchProblem::OldSymbolDefined("xsplice_new_scale".into())
        )
    );

    let mut b = fresh();
    b.patch(Patch {
        expect: Some(vec![0x90; 33]),
        ..answer("a")
    });
    assert_eq!(patch_problem(&b), (0, PatchProblem::ExpectTooLong(33)));

    // Payload-level refusals.
    assert_eq!(fresh().build().unwrap_err(), WriteError::NoPatches);
    assert_eq!(
        PayloadBuilder::from_object(&fixture("live_v3-nopic.o")).unwrap_err(),
        WriteError::SectionExists(".xsplice.funcs")
    );
    // The reader's header rules, named as the reader names them.
    assert_eq!(
        PayloadBuilder::from_object(b"not an object").unwrap_err(),
        WriteError::Header(HeaderProblem::NotElf)
    );
    let mut exec = fixture("live_v3-nopic.o");
    exec[16] = 2; // e_type = ET_EXEC
    assert_eq!(
        PayloadBuilder::from_object(&exec).unwrap_err(),
        WriteError::Header(HeaderProblem::NotRelocatable(2))
    );
    let mut b = fresh();
    b.patch(answer("a")).vendor(VendorField {
        vendor: VendorId(0x8000_0001),
        kind: 1,
        critical: false,
        target: VendorTarget::Record(RecordIndex(1)),
        data: vec![],
    });
    assert_eq!(
        b.build().unwrap_err(),
        WriteError::VendorRecord {
            index: 0,
            record: 1,
            count: 1
        }
    );
    let mut b = fresh();
    b.patch(answer("a")).build_id(vec![]);
    assert!(matches!(
        b.build(),
        Err(WriteError::BuildId {
            section: ".note.gnu.build-id",
            ..
        })
    ));

    // What the loader refuses is refused here, with the loader's reason.
    let mut b = fresh();
    b.patch(Patch {
        old_size: 4,
        ..answer("a")
    });
    assert!(
        matches!(
            b.build(),
            Err(WriteError::Unloadable(LoadError::Record {
                problem: RecordProblem::OldTooSmall { .. },
                ..
            }))
        ),
        "{:?}",
        b.build()
    );
}

/// An AArch64 object with code and no records: a gcc-built payload with its
/// xsplice sections removed.
fn aarch64_input() -> Vec<u8> {
    use object::build::elf::Builder;
    let bytes = fixture("live_v3-aarch64-nopic.o");
    let mut b = Builder::read(bytes.as_slice()).unwrap();
    for s in b.sections.iter_mut() {
        let name = String::from_utf8_lossy(s.name.as_slice()).into_owned();
        if name.starts_with(".xsplice.")
            || name.starts_with(".rela.xsplice.")
            || name == ".note.xsplice"
        {
            s.delete = true;
        }
    }
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    out
}

#[test]
fn build_from_an_aarch64_object() {
    let input = aarch64_input();
    assert!(section(&input, ".xsplice.funcs").is_none());
    for version in RecordVersion::ALL {
        let mut b = PayloadBuilder::from_object(&input).unwrap();
        assert_eq!(b.arch(), xsplice_loader::Arch::Aarch64);
        b.version(version)
            .patch(Patch::replace(
                OldTarget::Name("xsplice_demo_answer".into()),
                "xsplice_v3_answer",
                16,
            ))
            .patch(Patch::replace(
                OldTarget::Symbol("xsplice_demo_scale".into()),
                "xsplice_v3_answer",
                16,
            ));
        let out = b.build().unwrap();
        assert!(funcs_relocs(&out)
            .iter()
            .all(|(_, t)| *t == goblin::elf::reloc::R_AARCH64_ABS64));
        let p = load_ok(&out, "aarch64");
        let (value, size) = input_symbol(&input, "xsplice_v3_answer");
        let text = p.text().unwrap().addr.0;
        assert_eq!(p.records[0].func.new_addr.0, text + value);
        assert_eq!(p.records[0].func.new_size, size);
        assert_eq!(
            p.records[1].func.old_addr.0,
            Table::demo().addr("xsplice_demo_scale")
        );
        assert_eq!(p.record_version, version);
    }
}

fn bench_table(n: usize) -> Table {
    let mut t = Table::demo();
    for i in 0..n {
        t.globals.insert(
            common::bench_payload::func_name(i),
            Symbol {
                addr: Addr(0x60_0000 + 0x40 * i as u64),
                size: 0x40,
            },
        );
    }
    t
}

#[test]
fn two_hundred_records_of_every_version_load() {
    const N: usize = 200;
    let table = bench_table(N);
    for version in RecordVersion::ALL {
        let out = common::bench_payload::many(&fixture(INPUT), version, N);
        let p = load_with(&out, &table, &LoadOptions::default()).unwrap();
        assert_eq!(p.records.len(), N);
        assert_eq!(p.record_version, version);
        for (i, r) in p.records.iter().enumerate() {
            let name = common::bench_payload::func_name(i);
            assert_eq!(r.name, name);
            assert_eq!(r.old_addr.0, table.addr(&name));
        }
        let nops = p.records.iter().filter(|r| r.func.is_nop()).count();
        assert_eq!(
            nops,
            if version == RecordVersion::V1 {
                0
            } else {
                N / 10
            }
        );
    }
    // And they rewrite: v1 (no features) into every version and back.
    let v1 = common::bench_payload::many(&fixture(INPUT), RecordVersion::V1, N);
    let orig = load_with(&v1, &table, &LoadOptions::default()).unwrap();
    for to in RecordVersion::ALL {
        let out = rewrite_version(&v1, to).unwrap();
        let p = load_with(&out, &table, &LoadOptions::default()).unwrap();
        assert_same_payload(&orig, &p, to, &format!("200 -> {to}"));
    }
}

/// `live_v3-nopic.o` plus a data section holding one `R_X86_64_64` against
/// gcc's `xsplice_funcs` array symbol per addend.
fn with_refs(addends: &[i64]) -> Vec<u8> {
    use object::build::elf::{Builder, Relocation, SectionData};
    use object::elf;
    let bytes = fixture("live_v3-nopic.o");
    let mut b = Builder::read(bytes.as_slice()).unwrap();
    let funcs = b
        .symbols
        .iter()
        .find(|s| s.name.as_slice() == b"xsplice_funcs")
        .unwrap()
        .id();
    let symtab = b
        .sections
        .iter()
        .find(|s| matches!(s.data, SectionData::Symbol))
        .unwrap()
        .id();
    let data = b.sections.add();
    data.name = ".data.refs".into();
    data.sh_type = elf::SHT_PROGBITS;
    data.sh_flags = u64::from(elf::SHF_ALLOC | elf::SHF_WRITE);
    data.sh_addralign = 8;
    data.data = SectionData::Data(vec![0; 8 * addends.len()].into());
    let data = data.id();
    let rela = b.sections.add();
    rela.name = ".rela.data.refs".into();
    rela.sh_type = elf::SHT_RELA;
    rela.sh_flags = u64::from(elf::SHF_INFO_LINK);
    rela.sh_addralign = 8;
    rela.sh_entsize = 24;
    rela.sh_link_section = Some(symtab);
    rela.sh_info_section = Some(data);
    rela.data = SectionData::Relocation(
        addends
            .iter()
            .enumerate()
            .map(|(i, a)| Relocation {
                r_offset: 8 * i as u64,
                symbol: Some(funcs),
                r_type: elf::R_X86_64_64,
                r_addend: *a,
            })
            .collect(),
    );
    let mut out = Vec::new();
    b.write(&mut out).unwrap();
    out
}

/// The addends of `.rela.data.refs` and the size of `xsplice_funcs`.
fn refs(bytes: &[u8]) -> (Vec<i64>, u64) {
    let elf = Elf::parse(bytes).unwrap();
    let data = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".data.refs"))
        .unwrap();
    let addends = elf
        .shdr_relocs
        .iter()
        .filter(|(r, _)| elf.section_headers[*r].sh_info as usize == data)
        .flat_map(|(_, rs)| rs.iter().map(|r| r.r_addend.unwrap()))
        .collect();
    let size = elf
        .syms
        .iter()
        .find(|s| elf.strtab.get_at(s.st_name) == Some("xsplice_funcs"))
        .unwrap()
        .st_size;
    (addends, size)
}

#[test]
fn references_into_the_records_move_with_them() {
    // Record 1, its name field, and the end of the two 128-byte records.
    let input = with_refs(&[128, 128 + 32, 256]);
    assert_eq!(refs(&input), (vec![128, 160, 256], 256));
    let v1 = rewrite_version(&input, RecordVersion::V1).unwrap();
    assert_eq!(refs(&v1), (vec![64, 96, 128], 128));
    load_ok(&v1, "refs v1");
    let back = rewrite_version(&v1, RecordVersion::V3).unwrap();
    assert_eq!(refs(&back), refs(&input));

    // Record 1's `expect` (offset 64 of a v3 record) has no place in v1.
    let input = with_refs(&[128 + 64]);
    assert_eq!(
        rewrite_version(&input, RecordVersion::V1).unwrap_err(),
        WriteError::FuncsReference {
            what: "`.rela.data.refs` relocation 0".into(),
            offset: 192
        }
    );
}
