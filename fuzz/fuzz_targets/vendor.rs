//! `.xsplice.vendor` entries: every entry the walker yields re-encodes to
//! bytes that walk back to the same entry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_abi::vendor::VendorEntries;

fuzz_target!(|data: &[u8]| {
    for (offset, entry) in VendorEntries::new(data).map_while(Result::ok) {
        assert!(offset < data.len());
        let len = entry.encoded_len().expect("a decoded entry has a length");
        let mut buf = vec![0u8; len];
        assert_eq!(entry.encode_into(&mut buf), Ok(len));
        let again = VendorEntries::new(&buf).next();
        assert_eq!(again, Some(Ok((0, entry))));
    }
});
