//! The cross-version matrix and the evolution rules: forward compatibility by
//! the size rule, unknown bits, fields without their bits.

use xsplice_abi::{
    decode, encode, Addr, Compat, ErrorKind, Expect, Incompat, PatchFunc, RecordIndex,
    RecordVersion, Warning,
};

fn sample() -> PatchFunc {
    PatchFunc {
        new_addr: Addr(0x1000),
        new_size: 0x20,
        old_addr: Addr(0xffff_8000_0000_4000),
        old_size: 0x40,
        name: Addr(0x2000),
        ..PatchFunc::default()
    }
}

fn views() -> Vec<(PatchFunc, RecordVersion)> {
    let nop = PatchFunc {
        new_addr: Addr(0),
        incompat: Incompat::NOP,
        ..sample()
    };
    let off = PatchFunc {
        incompat: Incompat::PATCH_OFFSET,
        patch_offset: 4,
        ..sample()
    };
    let pos = PatchFunc {
        incompat: Incompat::SYMPOS,
        sympos: 3,
        ..sample()
    };
    let exp = PatchFunc {
        incompat: Incompat::EXPECT,
        expect: Expect::new(&[0x55, 0x48, 0x89, 0xe5]).unwrap(),
        ..sample()
    };
    let compat = PatchFunc {
        compat: Compat::from_bits_retain(1 << 5),
        ..sample()
    };
    vec![
        (sample(), RecordVersion::V1),
        (nop, RecordVersion::V2),
        (compat, RecordVersion::V2),
        (off, RecordVersion::V3),
        (pos, RecordVersion::V3),
        (exp, RecordVersion::V3),
    ]
}

/// Every view round-trips through every version that can hold it, and is
/// refused with a typed error by every version that cannot.
#[test]
fn every_view_through_every_version() {
    for (view, min) in views() {
        assert_eq!(view.min_version(), Some(min), "{view:?}");
        for v in RecordVersion::ALL {
            let enc = encode(&view, v);
            if v >= min {
                let enc = enc.unwrap();
                assert_eq!(enc.as_bytes().len(), v.known_size());
                let recs = decode(enc.as_bytes(), 0).unwrap();
                assert_eq!(recs.version(), v);
                assert_eq!(recs.get(0).unwrap().unwrap().func, view, "{v}");
            } else {
                let err = enc.unwrap_err();
                assert!(
                    matches!(
                        err.kind,
                        ErrorKind::FeatureNotInVersion { version, .. } if version == v
                    ) || matches!(err.kind, ErrorKind::CompatNotInV1 { .. }),
                    "{view:?} into {v}: {err}"
                );
            }
        }
    }
}

#[test]
fn expect_into_v2_is_refused_not_lost() {
    let (exp, _) = views().pop().unwrap();
    let err = encode(&exp, RecordVersion::V2).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::FeatureNotInVersion {
            feature: Incompat::EXPECT,
            version: RecordVersion::V2
        }
    );
    assert!(err.to_string().contains("EXPECT"), "{err}");
}

fn v3_bytes() -> Vec<u8> {
    encode(&sample(), RecordVersion::V3)
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn forward_compat_size_160() {
    let mut rec = v3_bytes();
    rec.extend([0u8; 32]);
    rec[42..44].copy_from_slice(&160u16.to_le_bytes());
    let recs = decode(&rec, 0).unwrap();
    assert_eq!((recs.version(), recs.size()), (RecordVersion::V3, 160));
    assert_eq!(recs.get(0).unwrap().unwrap().func, sample());
    assert!(decode(&rec, 160).is_ok());

    rec[150] = 0x5a;
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::NonZeroTail { offset: 150 });
    assert_eq!(err.record, Some(RecordIndex(0)));
    assert!(err.to_string().contains("offset 150"), "{err}");
}

#[test]
fn unknown_incompat_bit_refused_by_number() {
    let mut rec = v3_bytes();
    rec[44..48].copy_from_slice(&(1u32 << 9).to_le_bytes());
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnknownIncompat { bit: 9 });
    assert!(err.to_string().contains("unknown incompat bit 9"), "{err}");
}

#[test]
fn unknown_compat_bit_accepted_with_warning() {
    let mut rec = v3_bytes();
    rec[48..52].copy_from_slice(&(1u32 << 3 | 1 << 30).to_le_bytes());
    let got = decode(&rec, 0).unwrap().get(0).unwrap().unwrap();
    let warnings: Vec<_> = got.warnings().iter().collect();
    assert_eq!(
        warnings,
        vec![
            Warning::UnknownCompat { bit: 3 },
            Warning::UnknownCompat { bit: 30 }
        ]
    );
    // The bits survive a round trip.
    assert_eq!(
        encode(&got.func, RecordVersion::V3).unwrap().as_bytes(),
        &rec[..]
    );
}

#[test]
fn field_without_its_bit_refused() {
    for (offset, field, feature) in [
        (52usize, "patch_offset", Incompat::PATCH_OFFSET),
        (56, "sympos", Incompat::SYMPOS),
        (60, "expect_len", Incompat::EXPECT),
    ] {
        let mut rec = v3_bytes();
        rec[offset] = 1;
        let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::FieldWithoutFeature {
                field,
                offset,
                feature
            }
        );
    }
    // NOP set but new_addr non-zero.
    let mut rec = v3_bytes();
    rec[44] = 1;
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::NopWithNewAddr { new_addr: 0x1000 });
}

#[test]
fn bad_records_name_what_and_where() {
    // Truncated.
    let err = decode(&v3_bytes()[..100], 0).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::SectionSize {
            len: 100,
            size: 128
        }
    );
    // Unknown version 7.
    let mut rec = v3_bytes();
    rec[40] = 7;
    let err = decode(&rec, 0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedVersion { tag: 7 });
    // Tag 1 is never written.
    rec[40] = 1;
    assert_eq!(
        decode(&rec, 0).unwrap_err().kind,
        ErrorKind::UnsupportedVersion { tag: 1 }
    );
    // Wrong size for v3.
    let mut rec = v3_bytes();
    rec[42] = 64;
    rec[43] = 0;
    assert_eq!(
        decode(&rec, 0).unwrap_err().kind,
        ErrorKind::SizeTooSmall {
            version: RecordVersion::V3,
            size: 64
        }
    );
    // Non-zero v1 padding (byte 50, not the tag).
    let mut v1 = encode(&sample(), RecordVersion::V1)
        .unwrap()
        .as_bytes()
        .to_vec();
    v1[50] = 1;
    let err = decode(&v1, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::NonZeroReserved {
            field: "pad",
            offset: 50
        }
    );
    // Non-zero reserved byte in v3.
    let mut rec = v3_bytes();
    rec[100] = 1;
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::NonZeroReserved {
            field: "reserved1",
            offset: 100
        }
    );
    assert_eq!(err.section_offset, Some(100));
    // Second record of two: the index and section offset are named.
    let mut two = v3_bytes();
    two.extend(v3_bytes());
    two[128 + 62] = 1;
    let err = decode(&two, 0).unwrap().get(1).unwrap().unwrap_err();
    assert_eq!(err.record, Some(RecordIndex(1)));
    assert_eq!(err.section_offset, Some(128 + 62));
    assert_eq!(
        err.to_string(),
        "record 1 (section offset 0xbe): non-zero byte in `reserved0` at offset 62 (must be zero)"
    );
    // expect_len above 32.
    let mut rec = encode(&views()[5].0, RecordVersion::V3)
        .unwrap()
        .as_bytes()
        .to_vec();
    rec[60] = 33;
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::ExpectTooLong { len: 33 });
    // Bytes past expect_len must be zero.
    let mut rec = encode(&views()[5].0, RecordVersion::V3)
        .unwrap()
        .as_bytes()
        .to_vec();
    rec[64 + 10] = 1;
    let err = decode(&rec, 0).unwrap().get(0).unwrap().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::NonZeroReserved {
            field: "expect",
            offset: 74
        }
    );
}

#[test]
fn mixed_sizes_in_one_section_refused() {
    let mut two = encode(&sample(), RecordVersion::V2)
        .unwrap()
        .as_bytes()
        .to_vec();
    two.extend(encode(&sample(), RecordVersion::V1).unwrap().as_bytes());
    let err = decode(&two, 0).unwrap().get(1).unwrap().unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::VersionMismatch {
            expected: RecordVersion::V2,
            found: 0
        }
    );
}
