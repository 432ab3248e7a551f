//! Format 3.1's architecture-specific tables: byte pins typed in from the
//! wire format (not derived from `xsplice_abi::layout`), and the golden files
//! of `golden/arch/` decoded field by field and re-encoded byte-identical.

use core::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;

use xsplice_abi::arch::{self, AltFeature, ArchTable, BugKind};
use xsplice_abi::layout::{self, FieldType};
use xsplice_abi::raw::{AltInstrEntry, BugFrameEntry, ExTableEntry};
use xsplice_abi::{
    decode, encode, AbiNote, Addr, ErrorKind, FormatVersion, Incompat, NoteError, PatchFunc,
    RecordVersion,
};
use zerocopy::IntoBytes;

fn golden(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A field's name, offset and size.
type Pin = (&'static str, usize, usize);

#[test]
fn entry_layouts_are_pinned() {
    assert_eq!(size_of::<ExTableEntry>(), 8);
    assert_eq!(size_of::<AltInstrEntry>(), 12);
    assert_eq!(size_of::<BugFrameEntry>(), 16);
    assert_eq!(align_of::<ExTableEntry>(), 1);
    assert_eq!(align_of::<AltInstrEntry>(), 1);
    assert_eq!(align_of::<BugFrameEntry>(), 1);
    assert_eq!(offset_of!(ExTableEntry, insn), 0);
    assert_eq!(offset_of!(ExTableEntry, fixup), 4);
    assert_eq!(offset_of!(AltInstrEntry, orig), 0);
    assert_eq!(offset_of!(AltInstrEntry, repl), 4);
    assert_eq!(offset_of!(AltInstrEntry, feature), 8);
    assert_eq!(offset_of!(AltInstrEntry, orig_len), 10);
    assert_eq!(offset_of!(AltInstrEntry, repl_len), 11);
    assert_eq!(offset_of!(BugFrameEntry, loc), 0);
    assert_eq!(offset_of!(BugFrameEntry, msg), 4);
    assert_eq!(offset_of!(BugFrameEntry, line), 8);
    assert_eq!(offset_of!(BugFrameEntry, kind), 12);
    assert_eq!(offset_of!(BugFrameEntry, reserved), 14);

    // The layout table says the same, with rel32 fields typed as such.
    let pins: [(&layout::Layout, &[Pin]); 3] = [
        (&layout::EX_TABLE_ENTRY, &[("insn", 0, 4), ("fixup", 4, 4)]),
        (
            &layout::ALT_ENTRY,
            &[
                ("orig", 0, 4),
                ("repl", 4, 4),
                ("feature", 8, 2),
                ("orig_len", 10, 1),
                ("repl_len", 11, 1),
            ],
        ),
        (
            &layout::BUG_FRAME_ENTRY,
            &[
                ("loc", 0, 4),
                ("msg", 4, 4),
                ("line", 8, 4),
                ("kind", 12, 2),
                ("reserved", 14, 2),
            ],
        ),
    ];
    for (l, fields) in pins {
        assert_eq!(l.fields.len(), fields.len(), "{}", l.c_name);
        for (name, offset, size) in fields {
            let f = l.field(name).unwrap();
            assert_eq!((f.offset, f.size), (*offset, *size), "{}.{name}", l.c_name);
            assert_eq!(f.since, FormatVersion::new(3, 1));
        }
        for f in l.fields.iter().filter(|f| f.offset < 8 && f.size == 4) {
            assert_eq!(f.ty, FieldType::Rel32, "{}.{}", l.c_name, f.name);
        }
    }
    // In the layout table after the payload layouts, before the ledger's.
    let names: Vec<&str> = layout::all().iter().map(|l| l.c_name).collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert_eq!(at("xsplice_ex_table_entry"), at("xsplice_sig_footer") + 1);
    assert_eq!(at("xsplice_alt_entry"), at("xsplice_ex_table_entry") + 1);
    assert_eq!(at("xsplice_bug_frame_entry"), at("xsplice_alt_entry") + 1);
    assert_eq!(
        at("xsplice_ledger_header"),
        at("xsplice_bug_frame_entry") + 1
    );
}

#[test]
fn names_bits_and_numbers_are_pinned() {
    assert_eq!(ArchTable::ExTable.section(), ".xsplice.ex_table");
    assert_eq!(
        ArchTable::AltInstructions.section(),
        ".xsplice.altinstructions"
    );
    assert_eq!(ArchTable::BugFrames.section(), ".xsplice.bug_frames");
    assert_eq!(
        xsplice_abi::sections::ALTINSTR_REPLACEMENT,
        ".xsplice.altinstr_replacement"
    );
    assert_eq!(Incompat::ARCH.bits(), 1 << 4);
    let info = Incompat::ARCH.info().unwrap();
    assert_eq!((info.name, info.bit, info.payload_level), ("ARCH", 4, true));
    assert_eq!(info.since, FormatVersion::new(3, 1));
    let x86: Vec<(u16, &str)> = arch::X86_64_FEATURES
        .iter()
        .map(|f| (f.number, f.name))
        .collect();
    assert_eq!(
        x86,
        [
            (1, "POPCNT"),
            (2, "SSE4_2"),
            (3, "AVX"),
            (4, "AVX2"),
            (5, "BMI1"),
            (6, "BMI2"),
            (7, "ERMS"),
            (8, "FSRM"),
            (9, "AVX512F"),
            (10, "ADX")
        ]
    );
    let arm: Vec<(u16, &str)> = arch::AARCH64_FEATURES
        .iter()
        .map(|f| (f.number, f.name))
        .collect();
    assert_eq!(arm, [(1, "ATOMICS"), (2, "CRC32"), (3, "SHA2"), (4, "SVE")]);
    assert_eq!(arch::BUG_TRAP_X86_64, [0x0f, 0x0b]);
    assert_eq!(u32::from_le_bytes(arch::BUG_TRAP_AARCH64), 0xd421_0000);
}

#[test]
fn golden_ex_table() {
    let b = golden("arch/ex_table.bin");
    let got: Vec<(i32, i32)> = arch::ex_entries(&b)
        .unwrap()
        .map(|e| (e.insn, e.fixup))
        .collect();
    assert_eq!(got, [(-0x100, 0x200), (-0x100, -4)]);
    // Entry 1's fixup field is at 8 + 4 from the section start.
    assert_eq!(
        arch::rel32_target(0x1000, 1, ArchTable::ExTable, 4, -4),
        Some(0x1000 + 12 - 4)
    );
    let re: Vec<u8> = [(-0x100, 0x200), (-0x100, -4)]
        .iter()
        .flat_map(|(i, f)| {
            ExTableEntry {
                insn: (*i).into(),
                fixup: (*f).into(),
            }
            .as_bytes()
            .to_vec()
        })
        .collect();
    assert_eq!(re, b);
}

#[test]
fn golden_altinstructions() {
    let b = golden("arch/altinstructions.bin");
    let got: Vec<_> = arch::alt_entries(&b)
        .unwrap()
        .map(|e| (e.orig, e.repl, e.feature, e.orig_len, e.repl_len))
        .collect();
    let f = |number, when_absent| AltFeature {
        number,
        when_absent,
    };
    assert_eq!(
        got,
        [
            (-0x40, 0x1000, f(1, false), 7, 5),
            (-0x4c, 0xff4, f(1, true), 5, 5),
            (0, 4, f(0x7fff, false), 0, 0),
        ]
    );
    let re: Vec<u8> = got
        .iter()
        .flat_map(|(o, r, feat, ol, rl)| {
            AltInstrEntry {
                orig: (*o).into(),
                repl: (*r).into(),
                feature: feat.raw().into(),
                orig_len: *ol,
                repl_len: *rl,
            }
            .as_bytes()
            .to_vec()
        })
        .collect();
    assert_eq!(re, b);
}

#[test]
fn golden_bug_frames() {
    let b = golden("arch/bug_frames.bin");
    let got: Vec<_> = arch::bug_entries(&b)
        .unwrap()
        .map(|e| (e.loc, e.msg, e.line, e.kind))
        .collect();
    assert_eq!(
        got,
        [
            (-0x300, 0x2000, 42, BugKind::Warn),
            (-0x310, 0x1ff0, u32::MAX, BugKind::Bug)
        ]
    );
}

#[test]
fn golden_note_with_arch() {
    let b = golden("note/v3.1-arch.bin");
    let note = AbiNote::decode(&b).unwrap();
    assert_eq!(note.format, FormatVersion::new(3, 1));
    assert_eq!(note.incompat, Incompat::ARCH);
    assert_eq!(AbiNote::new(RecordVersion::V3, Incompat::ARCH), note);
    assert_eq!(note.encode().as_bytes(), &b[..]);
    // The same bit in a format 3.0 note is refused.
    let mut minor0 = b.clone();
    minor0[2] = 0;
    assert_eq!(
        AbiNote::decode(&minor0),
        Err(NoteError::FeatureNeedsMinor {
            feature: Incompat::ARCH,
            format: FormatVersion::new(3, 0)
        })
    );
}

#[test]
fn a_record_never_carries_arch() {
    let func = PatchFunc {
        new_addr: Addr(0x1000),
        new_size: 8,
        old_size: 16,
        name: Addr(0x2000),
        ..PatchFunc::default()
    };
    let rec = encode(&func, RecordVersion::V3).unwrap();
    let mut bytes = rec.as_bytes().to_vec();
    bytes[44] |= 0x10;
    let err = decode(&bytes, 0)
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::PayloadLevelFeature {
            feature: Incompat::ARCH
        }
    );
    let with = PatchFunc {
        incompat: Incompat::ARCH,
        ..func
    };
    assert!(encode(&with, RecordVersion::V3).is_err());
}
