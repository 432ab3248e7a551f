//! Signature checking in the loader: the golden file made by openssl
//! verifies, verification runs before any ELF parsing, the parser sees
//! exactly the signed bytes, and no mutation of a signed payload's trailer
//! makes the loader panic or accepts it under `Require`.

use proptest::prelude::*;
use xsplice_loader::signature::{
    check, sign, split, SignatureError, SignaturePolicy, SignatureStatus, SigningKey, TrustedKey,
};
use xsplice_loader::{DryRun, LoadError, LoadOptions};

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The public key of RFC 8032 section 7.1 TEST 1, which signed the golden file.
const RFC_PUBLIC: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

#[test]
fn golden_made_by_openssl_verifies() {
    let file = read("compat-tests/golden/signature/signed-rfc8032.bin");
    let key = TrustedKey::from_bytes(&RFC_PUBLIC).unwrap();
    assert_eq!(key.id().to_string(), "21fe31dfa154a261");
    let (s, status) = check(&file, SignaturePolicy::Require, &[key]).unwrap();
    assert_eq!(s, b"xsplice signature golden: these are bytes S\n");
    assert_eq!(status, SignatureStatus::Verified { key_id: key.id() });
    // The same key signs the same bytes identically (Ed25519 is deterministic).
    let secret: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    assert_eq!(sign(s, &SigningKey::from_bytes(&secret)).unwrap(), file);
}

fn require(keys: Vec<TrustedKey>) -> LoadOptions {
    LoadOptions {
        signature_policy: SignaturePolicy::Require,
        trusted_keys: keys,
        ..LoadOptions::default()
    }
}

#[test]
fn verification_comes_before_parsing() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let opts = require(vec![TrustedKey::new(key.verifying_key())]);
    // Garbage is refused for want of a signature, not by the ELF parser.
    let e = DryRun::default().load(b"not ELF", &opts).unwrap_err();
    assert_eq!(e, LoadError::Signature(SignatureError::Unsigned));
    // Signed garbage passes the signature and then meets the parser.
    let signed = sign(b"not ELF", &key).unwrap();
    let e = DryRun::default().load(&signed, &opts).unwrap_err();
    assert!(matches!(e, LoadError::Header(_)), "{e}");
    // A real payload, signed, loads and says so.
    let fix = read("examples/hypervisor/fix.o");
    let signed = sign(&fix, &key).unwrap();
    let p = DryRun::default().load(&signed, &opts).unwrap();
    assert!(matches!(p.signature, SignatureStatus::Verified { .. }));
    assert_eq!(p.records.len(), 2);
}

#[test]
fn parser_sees_exactly_s() {
    // A payload followed by junk, then signed: the junk is inside S, so it
    // is signed and parsed; with the trailer split off, what reaches the
    // parser is S byte for byte.
    let key = SigningKey::from_bytes(&[4; 32]);
    let mut s = read("examples/hypervisor/fix.o");
    s.extend_from_slice(b"trailing junk inside S");
    let signed = sign(&s, &key).unwrap();
    assert_eq!(split(&signed).unwrap().elf, &s[..]);
    let keys = [TrustedKey::new(key.verifying_key())];
    assert_eq!(
        check(&signed, SignaturePolicy::Require, &keys).unwrap().0,
        &s[..]
    );
}

fn signed_fixture() -> (Vec<u8>, TrustedKey) {
    let key = SigningKey::from_bytes(&[5; 32]);
    let signed = sign(&read("examples/hypervisor/fix.o"), &key).unwrap();
    (signed, TrustedKey::new(key.verifying_key()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Flips, truncations and appended bytes anywhere in the last 100 bytes
    /// (the trailer and the end of S): never a panic, under every policy,
    /// in `check` and in a full load; and under `Require` nothing but the
    /// original bytes is accepted.
    #[test]
    fn trailer_mutations(
        flips in prop::collection::vec((0usize..100, 1u8..=255), 0..4),
        cut in 0usize..40,
        append in prop::collection::vec(any::<u8>(), 0..3),
        block_len in prop::option::of(prop_oneof![Just(0u32), Just(71), Just(73), Just(u32::MAX), any::<u32>()]),
    ) {
        let (orig, key) = signed_fixture();
        let mut b = orig.clone();
        let n = b.len();
        for (at, x) in &flips {
            b[n - 1 - at] ^= x;
        }
        if let Some(len) = block_len {
            b[n - 16..n - 12].copy_from_slice(&len.to_le_bytes());
        }
        b.truncate(n - cut);
        b.extend_from_slice(&append);
        for policy in [SignaturePolicy::Ignore, SignaturePolicy::VerifyIfPresent, SignaturePolicy::Require] {
            let r = check(&b, policy, &[key]);
            if let Ok((s, _)) = r {
                prop_assert!(s.len() <= b.len());
            }
            if policy == SignaturePolicy::Require && b != orig {
                prop_assert!(r.is_err(), "accepted a mutated payload");
            }
        }
        let _ = DryRun::default().load(&b, &require(vec![key]));
        let _ = DryRun::default().load(&b, &LoadOptions::default());
    }
}
