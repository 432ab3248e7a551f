//! One negative test per validation rule: a real gcc-built payload is
//! mutated in one place and the loader's error names what and where.
//! Plus: no truncation or byte flip makes the loader panic.

mod common;

use common::{fixture, Bump, Table};
use goblin::elf::Elf;
use proptest::prelude::*;
use xsplice_abi::ErrorKind;
use xsplice_loader::{
    load, DryRun, HeaderProblem, LoadError, LoadOptions, LoadedPayload, NoteProblem, RecordProblem,
    RelocIndex, RelocProblem, SectionIndex, SectionProblem, SymbolProblem, VendorProblem,
};

fn try_load(bytes: &[u8]) -> Result<LoadedPayload, LoadError> {
    load(
        bytes,
        &LoadOptions::default(),
        &Table::demo(),
        &mut Bump::default(),
    )
}

fn err(bytes: &[u8]) -> LoadError {
    try_load(bytes).expect_err("the mutation must be refused")
}

/// File offset of a section's header and of its contents.
fn section(bytes: &[u8], name: &str) -> (usize, usize) {
    let elf = Elf::parse(bytes).unwrap();
    let shoff = elf.header.e_shoff as usize;
    let (i, s) = elf
        .section_headers
        .iter()
        .enumerate()
        .find(|(_, s)| elf.shdr_strtab.get_at(s.sh_name) == Some(name))
        .unwrap_or_else(|| panic!("no {name}"));
    (shoff + 64 * i, s.sh_offset as usize)
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

// Section header field offsets (ELF64).
const SH_NAME: usize = 0;
const SH_FLAGS: usize = 8;
const SH_OFFSET: usize = 24;
const SH_SIZE: usize = 32;
const SH_LINK: usize = 40;
const SH_INFO: usize = 44;
const SH_ENTSIZE: usize = 56;

fn v3() -> Vec<u8> {
    fixture("live_v3-nopic.o")
}

#[test]
fn header_rules() {
    let mut b = v3();
    b[4] = 1;
    assert_eq!(err(&b), LoadError::Header(HeaderProblem::NotElf64(1)));
    let mut b = v3();
    b[5] = 2;
    assert_eq!(
        err(&b),
        LoadError::Header(HeaderProblem::NotLittleEndian(2))
    );
    let mut b = v3();
    put_u16(&mut b, 16, 2);
    assert_eq!(err(&b), LoadError::Header(HeaderProblem::NotRelocatable(2)));
    let mut b = v3();
    put_u16(&mut b, 18, 3);
    assert_eq!(err(&b), LoadError::Header(HeaderProblem::Machine(3)));
    let mut b = v3();
    put_u16(&mut b, 56, 1);
    assert_eq!(err(&b), LoadError::Header(HeaderProblem::ProgramHeaders(1)));
    let mut b = v3();
    put_u16(&mut b, 58, 40);
    assert_eq!(
        err(&b),
        LoadError::Header(HeaderProblem::SectionEntrySize(40))
    );
    let mut b = v3();
    let near_end = b.len() as u64 - 10;
    put_u64(&mut b, 40, near_end);
    assert!(matches!(
        err(&b),
        LoadError::Header(HeaderProblem::SectionTable { .. })
    ));
    let mut b = v3();
    put_u16(&mut b, 60, 0xfff0);
    assert_eq!(
        err(&b),
        LoadError::Header(HeaderProblem::TooManySections(0xfff0))
    );
    let mut b = v3();
    put_u16(&mut b, 60, 200);
    assert!(matches!(
        err(&b),
        LoadError::Header(HeaderProblem::SectionTable { count: 200, .. })
    ));
    let mut b = v3();
    let n = u16::from_le_bytes([b[60], b[61]]);
    put_u16(&mut b, 62, n);
    assert_eq!(
        err(&b),
        LoadError::Header(HeaderProblem::StringTableIndex(n as u64))
    );
    assert_eq!(
        err(b"not an elf file at all, just text............................................"),
        LoadError::Header(HeaderProblem::NotElf)
    );
    assert_eq!(err(&[]), LoadError::Header(HeaderProblem::NotElf));
    let opts = LoadOptions {
        max_size: 100,
        ..LoadOptions::default()
    };
    let e = load(&v3(), &opts, &Table::demo(), &mut Bump::default()).unwrap_err();
    assert!(matches!(e, LoadError::TooLarge { limit: 100, .. }));
}

#[test]
fn section_rules() {
    let b0 = v3();
    // Contents outside the file.
    let (hdr, _) = section(&b0, ".text");
    let mut b = b0.clone();
    put_u64(&mut b, hdr + SH_OFFSET, b0.len() as u64);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::OutOfFile { .. },
            ..
        }
    ));
    // Writable and executable.
    let mut b = b0.clone();
    put_u64(&mut b, hdr + SH_FLAGS, 0x7);
    let e = err(&b);
    assert!(
        matches!(&e, LoadError::Section { problem: SectionProblem::WritableExecutable, name, .. } if name == ".text"),
        "{e}"
    );
    // Symbol table with a wrong entry size.
    let (sym, _) = section(&b0, ".symtab");
    let mut b = b0.clone();
    put_u64(&mut b, sym + SH_ENTSIZE, 16);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::EntrySize {
                found: 16,
                expected: 24
            },
            ..
        }
    ));
    // Symbol table size not a multiple of its entries.
    let mut b = b0.clone();
    let size = u64::from_le_bytes(b[sym + SH_SIZE..sym + SH_SIZE + 8].try_into().unwrap());
    put_u64(&mut b, sym + SH_SIZE, size - 5);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::Ragged { .. },
            ..
        }
    ));
    // Relocation section linked to a non-symtab, and applying to no section.
    let (rela, _) = section(&b0, ".rela.xsplice.funcs");
    let mut b = b0.clone();
    put_u32(&mut b, rela + SH_LINK, 1);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::Link(1),
            ..
        }
    ));
    let mut b = b0.clone();
    put_u32(&mut b, rela + SH_INFO, 999);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::Info(999),
            ..
        }
    ));
    // String table not NUL-terminated.
    let (strtab, data) = section(&b0, ".strtab");
    let mut b = b0.clone();
    let len = u64::from_le_bytes(
        b[strtab + SH_SIZE..strtab + SH_SIZE + 8]
            .try_into()
            .unwrap(),
    ) as usize;
    b[data + len - 1] = b'x';
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::StringTableNotTerminated,
            ..
        }
    ));
    // Section name outside the name table.
    let mut b = b0.clone();
    put_u32(&mut b, hdr + SH_NAME, 0xffff);
    assert!(matches!(
        err(&b),
        LoadError::Section {
            problem: SectionProblem::BadName(0xffff),
            ..
        }
    ));
    // No .xsplice.funcs: rename it to .xsplice.funcz.
    let (funcs, _) = section(&b0, ".xsplice.funcs");
    let (_, shstr) = section(&b0, ".shstrtab");
    let mut b = b0.clone();
    let name_off = u32::from_le_bytes(b[funcs..funcs + 4].try_into().unwrap()) as usize;
    let at = shstr + name_off + ".xsplice.func".len();
    b[at] = b'z';
    assert_eq!(err(&b), LoadError::MissingSection(".xsplice.funcs"));
}

#[test]
fn record_rules() {
    let b0 = v3();
    let (funcs, data) = section(&b0, ".xsplice.funcs");
    // Size not a multiple of the record size.
    let mut b = b0.clone();
    put_u64(&mut b, funcs + SH_SIZE, 200);
    assert!(
        matches!(err(&b), LoadError::Records(e) if e.kind == ErrorKind::SectionSize { len: 200, size: 128 })
    );
    // sh_entsize disagreeing with the record size.
    let mut b = b0.clone();
    put_u64(&mut b, funcs + SH_ENTSIZE, 64);
    assert!(
        matches!(err(&b), LoadError::Records(e) if e.kind == ErrorKind::EntsizeMismatch { entsize: 64, size: 128 })
    );
    // Unknown version 7 in the first record.
    let mut b = b0.clone();
    put_u16(&mut b, data + 40, 7);
    let e = err(&b);
    assert!(
        matches!(e, LoadError::Records(e) if e.kind == ErrorKind::UnsupportedVersion { tag: 7 })
    );
    assert!(
        e.to_string().starts_with("`.xsplice.funcs`: record 0"),
        "{e}"
    );
    // Unknown incompat bit in the second record.
    let mut b = b0.clone();
    put_u32(&mut b, data + 128 + 44, 1 << 12);
    assert!(
        matches!(err(&b), LoadError::Records(e) if e.kind == ErrorKind::UnknownIncompat { bit: 12 } && e.record.unwrap().0 == 1)
    );
    // Non-zero reserved byte.
    let mut b = b0.clone();
    b[data + 100] = 1;
    assert!(
        matches!(err(&b), LoadError::Records(e) if e.kind == ErrorKind::NonZeroReserved { field: "reserved1", offset: 100 })
    );
    // old_size too small for a 5-byte jump.
    let mut b = b0.clone();
    put_u64(&mut b, data + 24, 4);
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Record {
                problem: RecordProblem::OldTooSmall {
                    old_size: 4,
                    needed: 5,
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("record 0 `xsplice_demo_answer`"),
        "{e}"
    );
    // A field without its bit.
    let mut b = b0.clone();
    put_u32(&mut b, data + 52, 4);
    assert!(
        matches!(err(&b), LoadError::Records(e) if matches!(e.kind, ErrorKind::FieldWithoutFeature { field: "patch_offset", .. }))
    );
    // The function is not in the target.
    let mut table = Table::demo();
    table.globals.remove("xsplice_demo_answer");
    let e = load(&b0, &LoadOptions::default(), &table, &mut Bump::default()).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Record {
                problem: RecordProblem::Unresolved,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn note_rules() {
    let b0 = v3();
    let (_, note) = section(&b0, ".note.xsplice");
    let desc = note + 12 + 8;
    // The note disagrees with the records.
    let mut b = b0.clone();
    put_u16(&mut b, desc + 6, 160);
    assert!(matches!(
        err(&b),
        LoadError::Note(NoteProblem::Disagrees {
            field: "record_size",
            note: 160,
            records: 128
        })
    ));
    let mut b = b0.clone();
    put_u32(&mut b, desc + 8, 1);
    assert!(matches!(
        err(&b),
        LoadError::Note(NoteProblem::Disagrees {
            field: "incompat",
            note: 1,
            records: 0
        })
    ));
    // A v3 payload without the note.
    let (hdr, _) = section(&b0, ".note.xsplice");
    let (_, shstr) = section(&b0, ".shstrtab");
    let mut b = b0.clone();
    let name_off = u32::from_le_bytes(b[hdr..hdr + 4].try_into().unwrap()) as usize;
    b[shstr + name_off + 1] = b'N';
    assert!(matches!(
        err(&b),
        LoadError::Note(NoteProblem::MissingForVersion(_))
    ));
    // Format 9.0.
    let mut b = b0.clone();
    put_u16(&mut b, desc, 9);
    assert!(matches!(
        err(&b),
        LoadError::Note(NoteProblem::Descriptor(_))
    ));
    // Framing: a descriptor size running past the section.
    let mut b = b0.clone();
    put_u32(&mut b, note + 4, 4096);
    assert!(matches!(err(&b), LoadError::Note(NoteProblem::Framing(_))));
}

#[test]
fn symbol_and_relocation_rules() {
    let b0 = v3();
    // An undefined symbol the target does not have.
    let mut table = Table::demo();
    table.globals.remove("xsplice_demo_base");
    let e = load(&b0, &LoadOptions::default(), &table, &mut Bump::default()).unwrap_err();
    assert!(
        matches!(&e, LoadError::Symbol { problem: SymbolProblem::Unresolved, name, .. } if name == "xsplice_demo_base"),
        "{e}"
    );
    // An unsupported relocation type, named with its index and symbol.
    let (_, rela) = section(&b0, ".rela.text");
    let mut b = b0.clone();
    put_u32(&mut b, rela + 8, 99);
    let e = err(&b);
    assert!(
        matches!(&e, LoadError::Relocation { problem: RelocProblem::Unsupported(99), index: RelocIndex(0), section, .. } if section == ".text"),
        "{e}"
    );
    // Records may only be relocated at their pointer fields, by ABS64.
    let (_, frela) = section(&b0, ".rela.xsplice.funcs");
    let mut b = b0.clone();
    put_u64(&mut b, frela, 40); // onto the version tag
    assert!(matches!(
        err(&b),
        LoadError::Relocation {
            problem: RelocProblem::FormatField,
            ..
        }
    ));
    let mut b = b0.clone();
    put_u32(&mut b, frela + 8, 2); // R_X86_64_PC32 instead of R_X86_64_64
    let e = err(&b);
    assert!(
        matches!(&e, LoadError::Relocation { problem: RelocProblem::FormatField, section, .. } if section == ".xsplice.funcs"),
        "{e}"
    );
    // A relocation outside its section.
    let mut b = b0.clone();
    put_u64(&mut b, rela, 0xffff);
    assert!(matches!(
        err(&b),
        LoadError::Relocation {
            problem: RelocProblem::Place { offset: 0xffff, .. },
            ..
        }
    ));
    // A symbol index out of range.
    let mut b = b0.clone();
    put_u32(&mut b, rela + 12, 0xffff);
    assert!(matches!(
        err(&b),
        LoadError::Relocation {
            problem: RelocProblem::SymbolIndex(0xffff),
            ..
        }
    ));
    // PC32 overflow: the payload placed 4 GiB away from the target.
    let e = load(
        &b0,
        &LoadOptions::default(),
        &Table::demo(),
        &mut Bump {
            next: 0x1_0000_0000,
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            LoadError::Relocation {
                problem: RelocProblem::Overflow { bits: 32, .. },
                ..
            }
        ),
        "{e}"
    );
    // COMMON symbols are refused: make the undefined xsplice_demo_base COMMON.
    let elf = Elf::parse(&b0).unwrap();
    let idx = elf
        .syms
        .iter()
        .position(|s| elf.strtab.get_at(s.st_name) == Some("xsplice_demo_base"))
        .unwrap();
    let (_, symtab) = section(&b0, ".symtab");
    let mut b = b0.clone();
    put_u16(&mut b, symtab + 24 * idx + 6, 0xfff2);
    assert!(matches!(
        err(&b),
        LoadError::Symbol {
            problem: SymbolProblem::Common,
            ..
        }
    ));
}

#[test]
fn vendor_rules() {
    let b0 = fixture("features_v3-nopic.o");
    let (_, vendor) = section(&b0, ".xsplice.vendor");
    let mut b = b0.clone();
    put_u16(&mut b, vendor + 6, 1); // CRITICAL
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Vendor(VendorProblem::UnknownCritical {
                offset: 0,
                vendor: 0x8000_0001,
                kind: 1
            })
        ),
        "{e}"
    );
    // ... accepted when the loader knows it.
    let opts = LoadOptions {
        known_vendor_entries: vec![(0x8000_0001, 1)],
        ..LoadOptions::default()
    };
    assert!(load(&b, &opts, &Table::demo(), &mut Bump::default()).is_ok());
    // An entry naming a record that does not exist.
    let mut b = b0.clone();
    put_u32(&mut b, vendor + 8, 40);
    assert!(matches!(
        err(&b),
        LoadError::Vendor(VendorProblem::NoSuchRecord {
            record: 40,
            count: 4,
            ..
        })
    ));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for name in [
        "live_v1-pic.o",
        "live_v3-large.o",
        "features_v3-nopic.o",
        "live_v3-aarch64-pic.o",
    ] {
        let b = fixture(name);
        for len in 0..b.len() {
            let mut dry = DryRun::default();
            assert!(
                dry.load(&b[..len], &LoadOptions::default()).is_err(),
                "{name} truncated to {len}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn byte_flips_never_panic(at in any::<prop::sample::Index>(), value in any::<u8>(), which in 0usize..4) {
        let name = ["live_v1-nopic.o", "live_v2-pic.o", "live_v3-large.o", "features_v3-pic.o"][which];
        let mut b = fixture(name);
        let i = at.index(b.len());
        b[i] = value;
        let mut dry = DryRun::default();
        let _ = dry.load(&b, &LoadOptions::default());
        let _ = try_load(&b);
    }
}

/// Issue 12: a NOP record of `u64::MAX` bytes made `Engine::prepare`
/// allocate without bound (a panic, or an abort in a hypervisor). It is a
/// typed load error now, and so is a NOP running past its function.
#[test]
fn nop_records_are_bounded() {
    let b0 = fixture("features_v3-nopic.o");
    let (funcs, data) = section(&b0, ".xsplice.funcs");
    let size = u64::from_le_bytes(b0[funcs + SH_SIZE..funcs + SH_SIZE + 8].try_into().unwrap());
    let nop = (0..size as usize / 128)
        .map(|i| data + 128 * i)
        .find(|r| u32::from_le_bytes(b0[r + 44..r + 48].try_into().unwrap()) & 1 != 0)
        .expect("the fixture has a NOP record");
    let mut b = b0.clone();
    put_u64(&mut b, nop + 8, u64::MAX);
    put_u64(&mut b, nop + 24, u64::MAX);
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Record {
                problem: RecordProblem::NopTooLong {
                    len: u64::MAX,
                    max: 4096
                },
                ..
            }
        ),
        "{e}"
    );
    // 0x41 bytes of NOPs in a function of 0x40 (the demo table's size).
    let mut b = b0.clone();
    put_u64(&mut b, nop + 8, 0x41);
    put_u64(&mut b, nop + 24, 0x100);
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Record {
                problem: RecordProblem::NopPastFunction {
                    end: 0x41,
                    size: 0x40
                },
                ..
            }
        ),
        "{e}"
    );
}

/// Issue 12: names are bounded (4,000 sections all named by one long string
/// took 42 s and a gigabyte; now the first is refused at once).
#[test]
fn long_names_are_refused() {
    let b0 = v3();
    let opts = LoadOptions {
        max_name: 4,
        ..LoadOptions::default()
    };
    let e = load(&b0, &opts, &Table::demo(), &mut Bump::default()).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Section {
                problem: SectionProblem::NameTooLong(4),
                ..
            }
        ),
        "{e}"
    );
    // Symbol names are held to the same limit (this fixture's section
    // names are at most 29 bytes, a hook symbol's name is 43).
    let opts = LoadOptions {
        max_name: 30,
        ..LoadOptions::default()
    };
    let b1 = fixture("features_v3-nopic.o");
    let e = load(&b1, &opts, &Table::demo(), &mut Bump::default()).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Symbol {
                problem: SymbolProblem::NameTooLong(30),
                ..
            }
        ),
        "{e}"
    );
}

/// Issue 12: a record name pointing into `.xsplice.funcs` (or a note) was
/// accepted, and `upgrade`, which re-encodes those sections, changed it.
#[test]
fn names_must_point_into_the_payloads_own_data() {
    let b0 = v3();
    let (rela, rela_data) = section(&b0, ".rela.xsplice.funcs");
    let count = u64::from_le_bytes(b0[rela + SH_SIZE..rela + SH_SIZE + 8].try_into().unwrap()) / 24;
    // The RELA entry for record 0's name field (offset 32).
    let entry = (0..count as usize)
        .map(|i| rela_data + 24 * i)
        .find(|e| u64::from_le_bytes(b0[*e..*e + 8].try_into().unwrap()) == 32)
        .expect("record 0's name is relocated");
    // Aim the name at symbol 6, `xsplice_funcs`, the records array itself.
    let mut b = b0.clone();
    let info = u64::from_le_bytes(b[entry + 8..entry + 16].try_into().unwrap());
    put_u64(&mut b, entry + 8, (6 << 32) | (info & 0xffff_ffff));
    put_u64(&mut b, entry + 16, 0);
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Record {
                problem: RecordProblem::NameInFormatSection(_),
                ..
            }
        ),
        "{e}"
    );
    // Aim it there from `.rodata.str1.1` with an addend instead: where that
    // lands depends on the layout, so it is refused before the name is read.
    let p = try_load(&b0).unwrap();
    let at = |name: &str| p.sections.iter().find(|s| s.name == name).unwrap().addr.0;
    let mut b = b0.clone();
    let addend = (at(".xsplice.funcs") - at(".rodata.str1.1")) as i64;
    b[entry + 16..entry + 24].copy_from_slice(&addend.to_le_bytes());
    let e = err(&b);
    assert!(
        matches!(
            e,
            LoadError::Relocation {
                ref section,
                problem: RelocProblem::PointerLeavesSection { section: SectionIndex(6), .. },
                ..
            } if section == ".xsplice.funcs"
        ),
        "{e}"
    );
}

/// A fuzzing find (fuzz/README.md): an SHF_ALLOC symbol string table was
/// loaded as payload memory, which `upgrade` dropped. It is refused.
#[test]
fn an_allocated_symbol_string_table_is_refused() {
    let b0 = v3();
    let (strtab, _) = section(&b0, ".strtab");
    let mut b = b0.clone();
    let flags = u64::from_le_bytes(
        b[strtab + SH_FLAGS..strtab + SH_FLAGS + 8]
            .try_into()
            .unwrap(),
    );
    put_u64(&mut b, strtab + SH_FLAGS, flags | 2);
    let e = err(&b);
    assert!(
        matches!(
            &e,
            LoadError::Section {
                name,
                problem: SectionProblem::Contents(_),
                ..
            } if name == ".strtab"
        ),
        "{e}"
    );
}
