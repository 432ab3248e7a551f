//! The signature trailer: `split` and `strip` frame every input without
//! panicking, and `check` runs under each policy with the RFC 8032 TEST 1
//! key trusted (the key of `compat-tests/golden/signature/signed-rfc8032.bin`,
//! so the seed reaches verification).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xsplice_loader::signature::{check, split, strip, SignaturePolicy, TrustedKey};

/// RFC 8032 section 7.1 TEST 1 public key.
const RFC8032_TEST1: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    let trusted = [TrustedKey::from_bytes(&RFC8032_TEST1).expect("a valid key")];
    if let Ok(s) = split(data) {
        assert!(s.elf.len() <= data.len());
        assert_eq!(strip(data), Ok(s.elf));
    }
    for policy in [
        SignaturePolicy::Ignore,
        SignaturePolicy::default(),
        SignaturePolicy::Require,
    ] {
        if let Ok((elf, _)) = check(data, policy, &trusted) {
            assert!(elf.len() <= data.len());
        }
    }
});
