//! The ledger codec: `split_trailer` on a whole image file, `Ledger::decode`
//! on the trailer (or the whole input), and decode → encode → decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::ledger::{split_trailer, with_trailer, Ledger};

fn round_trip(bytes: &[u8]) {
    if let Ok(ledger) = Ledger::decode(bytes) {
        let encoded = ledger.encode().expect("a decoded ledger encodes");
        assert_eq!(Ledger::decode(&encoded).as_ref(), Ok(&ledger));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    if let Ok((body, Some(trailer))) = split_trailer(data) {
        round_trip(trailer);
        if let Ok(file) = with_trailer(body, trailer) {
            assert_eq!(split_trailer(&file), Ok((body, Some(trailer))));
        }
    }
});
