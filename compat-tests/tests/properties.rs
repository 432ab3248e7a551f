//! Property tests: arbitrary views round-trip through every version able to
//! hold them; arbitrary bytes never panic the decoders.

use proptest::prelude::*;
use xsplice_abi::vendor::VendorEntries;
use xsplice_abi::{
    decode, encode, AbiNote, Addr, Compat, Expect, Incompat, PatchFunc, RecordVersion,
};

fn view() -> impl Strategy<Value = PatchFunc> {
    (
        any::<[u64; 5]>(),
        any::<bool>(),
        prop::option::of(1u32..),
        prop::option::of(1u32..),
        prop::option::of(prop::collection::vec(any::<u8>(), 1..=32)),
        any::<u32>(),
    )
        .prop_map(
            |([new_addr, new_size, old_addr, old_size, name], nop, off, pos, exp, compat)| {
                let mut f = PatchFunc {
                    new_addr: Addr(if nop { 0 } else { new_addr }),
                    new_size,
                    old_addr: Addr(old_addr),
                    old_size,
                    name: Addr(name),
                    compat: Compat::from_bits_retain(compat),
                    ..PatchFunc::default()
                };
                f.incompat.set(Incompat::NOP, nop);
                if let Some(o) = off {
                    f.incompat |= Incompat::PATCH_OFFSET;
                    f.patch_offset = o;
                }
                if let Some(p) = pos {
                    f.incompat |= Incompat::SYMPOS;
                    f.sympos = p;
                }
                if let Some(e) = exp {
                    f.incompat |= Incompat::EXPECT;
                    f.expect = Expect::new(&e).unwrap();
                }
                f
            },
        )
}

proptest! {
    #[test]
    fn views_round_trip(f in view()) {
        for v in RecordVersion::ALL {
            match encode(&f, v) {
                Ok(enc) => {
                    let recs = decode(enc.as_bytes(), 0).unwrap();
                    prop_assert_eq!(recs.get(0).unwrap().unwrap().func, f);
                    prop_assert!(f.min_version().unwrap() <= v);
                }
                Err(_) => prop_assert!(f.min_version().is_none_or(|m| m > v)),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), entsize in prop_oneof![Just(0u64), Just(64), Just(128), any::<u64>()]) {
        if let Ok(recs) = decode(&bytes, entsize) {
            for r in recs.iter() {
                let _ = r.map(|r| r.warnings().iter().count());
            }
        }
        let _ = AbiNote::decode(&bytes);
        for e in VendorEntries::new(&bytes) {
            let _ = e;
        }
    }

    #[test]
    fn tagged_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 128..400), tag in 0u16..5, size in any::<u16>()) {
        bytes[40..42].copy_from_slice(&tag.to_le_bytes());
        bytes[42..44].copy_from_slice(&size.to_le_bytes());
        if let Ok(recs) = decode(&bytes, 0) {
            for r in recs.iter() {
                let _ = r;
            }
        }
    }
}
