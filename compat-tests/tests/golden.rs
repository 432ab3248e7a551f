//! Golden byte files: decoded field by field, re-encoded byte-identical.

use std::path::PathBuf;

use xsplice_abi::vendor::{VendorEntries, VendorId, VendorTarget};
use xsplice_abi::{
    decode, encode, AbiNote, Addr, Compat, Expect, FormatVersion, Incompat, PatchFunc, RecordIndex,
    RecordVersion,
};

const HV_TEXT: u64 = 0xffff_82d0_8020_0000;
const PL_TEXT: u64 = 0xffff_82d0_c000_0000;
const PL_STR: u64 = 0xffff_82d0_c001_0000;

fn golden(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn basic() -> PatchFunc {
    PatchFunc {
        new_addr: Addr(PL_TEXT),
        new_size: 0x30,
        old_addr: Addr(HV_TEXT + 0x1000),
        old_size: 0x40,
        name: Addr(PL_STR),
        ..PatchFunc::default()
    }
}

/// Decodes `rel` with `entsize`, checks version and size, compares each
/// record with `expected`, and re-encodes the records byte for byte.
fn check(rel: &str, entsize: u64, version: RecordVersion, size: usize, expected: &[PatchFunc]) {
    let bytes = golden(rel);
    let records = decode(&bytes, entsize).unwrap();
    assert_eq!(records.version(), version, "{rel}");
    assert_eq!(records.size(), size, "{rel}");
    assert_eq!(records.len(), expected.len(), "{rel}");
    let mut again = Vec::new();
    for (i, (rec, want)) in records.iter().zip(expected).enumerate() {
        let rec = rec.unwrap();
        assert_eq!(rec.index, RecordIndex(i as u32));
        assert_eq!(rec.version, version);
        assert_eq!(&rec.func, want, "{rel} record {i}");
        assert!(rec.warnings().is_empty());
        let mut enc = encode(&rec.func, version).unwrap().as_bytes().to_vec();
        enc.resize(size, 0); // the size rule: a longer record's tail is zero
        again.extend(enc);
    }
    assert_eq!(again, bytes, "{rel} re-encodes byte-identical");
}

#[test]
fn v1_basic() {
    let bytes = golden("v1/basic.bin");
    // Field by field, straight from the bytes, before trusting the decoder.
    assert_eq!(&bytes[0..8], &PL_TEXT.to_le_bytes());
    assert_eq!(&bytes[8..16], &0x30u64.to_le_bytes());
    assert_eq!(&bytes[16..24], &(HV_TEXT + 0x1000).to_le_bytes());
    assert_eq!(&bytes[24..32], &0x40u64.to_le_bytes());
    assert_eq!(&bytes[32..40], &PL_STR.to_le_bytes());
    assert!(bytes[40..64].iter().all(|&b| b == 0));
    check("v1/basic.bin", 0, RecordVersion::V1, 64, &[basic()]);
    check("v1/basic.bin", 64, RecordVersion::V1, 64, &[basic()]);
}

#[test]
fn v1_two_records() {
    let first = PatchFunc {
        old_addr: Addr(0),
        ..basic()
    };
    let second = PatchFunc {
        new_addr: Addr(PL_TEXT + 0x40),
        new_size: 0x18,
        old_addr: Addr(HV_TEXT + 0x2000),
        old_size: 0x20,
        name: Addr(PL_STR + 0x10),
        ..PatchFunc::default()
    };
    check(
        "v1/two-records.bin",
        0,
        RecordVersion::V1,
        64,
        &[first, second],
    );
}

#[test]
fn v1_draft_pad64_by_entsize() {
    check(
        "v1/draft-pad64.bin",
        104,
        RecordVersion::V1,
        104,
        &[basic()],
    );
    // With entsize 0 (gcc's, for a C array) 104 bytes are not a whole
    // number of 64-byte records, so they can only be a draft (SPEC 2.3).
    check("v1/draft-pad64.bin", 0, RecordVersion::V1, 104, &[basic()]);
}

fn nop(new_size: u64) -> PatchFunc {
    PatchFunc {
        new_addr: Addr(0),
        new_size,
        old_addr: Addr(HV_TEXT + 0x3000),
        old_size: 0x10,
        name: Addr(PL_STR + 0x20),
        incompat: Incompat::NOP,
        ..PatchFunc::default()
    }
}

#[test]
fn v2_files() {
    let bytes = golden("v2/basic.bin");
    assert_eq!(&bytes[40..42], &2u16.to_le_bytes());
    assert_eq!(&bytes[42..44], &64u16.to_le_bytes());
    check("v2/basic.bin", 0, RecordVersion::V2, 64, &[basic()]);
    check("v2/basic.bin", 64, RecordVersion::V2, 64, &[basic()]);
    assert_eq!(&golden("v2/nop.bin")[44..48], &1u32.to_le_bytes());
    check("v2/nop.bin", 0, RecordVersion::V2, 64, &[nop(5)]);
    let second = PatchFunc {
        new_size: 8,
        old_addr: Addr(HV_TEXT + 0x2000),
        old_size: 0x20,
        name: Addr(PL_STR + 0x10),
        ..nop(8)
    };
    check(
        "v2/two-records.bin",
        0,
        RecordVersion::V2,
        64,
        &[
            PatchFunc {
                old_addr: Addr(0),
                ..basic()
            },
            second,
        ],
    );
}

#[test]
fn v3_files() {
    check("v3/basic.bin", 0, RecordVersion::V3, 128, &[basic()]);
    check("v3/basic.bin", 128, RecordVersion::V3, 128, &[basic()]);

    let bytes = golden("v3/all-features.bin");
    assert_eq!(&bytes[44..48], &0xeu32.to_le_bytes());
    assert_eq!(&bytes[52..56], &4u32.to_le_bytes());
    assert_eq!(&bytes[56..60], &2u32.to_le_bytes());
    assert_eq!(bytes[60], 8);
    let expect = [0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5];
    assert_eq!(&bytes[64..72], &expect);
    let all = PatchFunc {
        new_addr: Addr(PL_TEXT + 0x80),
        new_size: 0x60,
        old_addr: Addr(0),
        old_size: 0x90,
        name: Addr(PL_STR + 0x30),
        incompat: Incompat::PATCH_OFFSET | Incompat::SYMPOS | Incompat::EXPECT,
        compat: Compat::empty(),
        patch_offset: 4,
        sympos: 2,
        expect: Expect::new(&expect).unwrap(),
    };
    check("v3/all-features.bin", 0, RecordVersion::V3, 128, &[all]);

    let nop6 = PatchFunc {
        incompat: Incompat::NOP | Incompat::PATCH_OFFSET,
        patch_offset: 4,
        ..nop(6)
    };
    check("v3/nop.bin", 0, RecordVersion::V3, 128, &[nop6]);

    let full: Vec<u8> = (0x80..0xa0).collect();
    let e32 = PatchFunc {
        old_addr: Addr(HV_TEXT),
        incompat: Incompat::EXPECT,
        expect: Expect::new(&full).unwrap(),
        ..basic()
    };
    check("v3/expect-32.bin", 0, RecordVersion::V3, 128, &[e32]);
}

#[test]
fn notes() {
    let v2 = golden("note/v2.bin");
    let note = AbiNote::decode(&v2).unwrap();
    assert_eq!(note.format, FormatVersion::new(2, 0));
    assert_eq!(note.record_version, RecordVersion::V2);
    assert_eq!(note.record_size, 64);
    assert_eq!(note.incompat, Incompat::NOP);
    assert_eq!(note.compat, Compat::empty());
    assert_eq!(zerocopy::IntoBytes::as_bytes(&note.encode()), &v2[..]);

    let v3 = golden("note/v3.bin");
    let note = AbiNote::decode(&v3).unwrap();
    assert_eq!(
        note,
        AbiNote::new(RecordVersion::V3, Incompat::from_bits_retain(0xe))
    );
    assert_eq!(zerocopy::IntoBytes::as_bytes(&note.encode()), &v3[..]);
}

#[test]
fn vendor_entries() {
    let bytes = golden("vendor/two-entries.bin");
    let entries: Vec<_> = VendorEntries::new(&bytes).map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);
    let (off0, e0) = entries[0];
    assert_eq!(
        (off0, e0.vendor, e0.kind, e0.critical),
        (0, VendorId(0x8000_0001), 1, false)
    );
    assert_eq!(e0.target, VendorTarget::Record(RecordIndex(0)));
    assert_eq!(e0.data, b"abc");
    let (off1, e1) = entries[1];
    assert_eq!(
        (off1, e1.vendor, e1.kind, e1.critical),
        (24, VendorId(0x8000_0002), 7, true)
    );
    assert_eq!(e1.target, VendorTarget::Payload);
    assert_eq!(e1.data, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut again = vec![0u8; 48];
    let n = e0.encode_into(&mut again).unwrap();
    let m = e1.encode_into(&mut again[n..]).unwrap();
    assert_eq!(n + m, 48);
    assert_eq!(again, bytes);
}
