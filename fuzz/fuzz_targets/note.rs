//! The `.note.xsplice` descriptor: whatever decodes re-encodes to a
//! descriptor that decodes to the same note.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_abi::AbiNote;
use zerocopy::IntoBytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = AbiNote::decode(data) {
        let desc = note.encode();
        let again = AbiNote::decode(desc.as_bytes()).expect("an encoded note decodes");
        assert_eq!(again, note);
    }
});
