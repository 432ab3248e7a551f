//! Record decode of every version: `decode` over a section, `decode_record`
//! on raw bytes, and the encode → decode round trip into every version able
//! to express a decoded record.
//!
//! Input: one selector byte (the section's `sh_entsize`), then the section.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_abi::{decode, decode_record, encode, RecordVersion};

/// `sh_entsize` values worth trying: gcc's 0, each known size, an
/// oversized record, and nonsense.
const ENTSIZES: [u64; 8] = [0, 64, 128, 72, 192, 1, 4096, u64::MAX];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, section)) = data.split_first() else {
        return;
    };
    let entsize = ENTSIZES[usize::from(sel) % ENTSIZES.len()];
    if let Ok(records) = decode(section, entsize) {
        assert_eq!(records.len(), records.iter().count());
        for record in records.iter().flatten() {
            let _ = record.warnings();
            for to in RecordVersion::ALL {
                let Ok(bytes) = encode(&record.func, to) else {
                    // Only a version that cannot express the record may refuse it.
                    assert_ne!(
                        to, record.version,
                        "a decoded record must re-encode as itself"
                    );
                    continue;
                };
                let again = decode_record(bytes.as_bytes(), to, to.known_size())
                    .expect("an encoded record decodes");
                assert_eq!(again.func, record.func, "round trip through {to:?}");
            }
        }
    }
    for version in RecordVersion::ALL {
        for size in [version.known_size(), section.len()] {
            let _ = decode_record(section, version, size);
        }
    }
});
