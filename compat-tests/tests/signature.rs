//! The signature trailer: layout pins typed in from the wire format (not
//! derived from `xsplice_abi::layout`), and the golden files of
//! `golden/signature/` read field by field.

use core::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;

use xsplice_abi::layout;
use xsplice_abi::signature::{
    Ed25519Block, SigFooter, ALGORITHM_ED25519, ED25519_BLOCK_LEN, FOOTER_SIZE, KEY_ID_SIZE, MAGIC,
    VERSION,
};
use zerocopy::{FromBytes, IntoBytes};

fn golden(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/signature")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn pins() {
    assert_eq!(size_of::<SigFooter>(), 16);
    assert_eq!(align_of::<SigFooter>(), 1);
    assert_eq!(offset_of!(SigFooter, block_len), 0);
    assert_eq!(offset_of!(SigFooter, algorithm), 4);
    assert_eq!(offset_of!(SigFooter, version), 6);
    assert_eq!(offset_of!(SigFooter, magic), 8);
    assert_eq!(size_of::<Ed25519Block>(), 72);
    assert_eq!(offset_of!(Ed25519Block, sig), 0);
    assert_eq!(offset_of!(Ed25519Block, key_id), 64);
    assert_eq!(MAGIC, b"XSPLSIG\0");
    assert_eq!((FOOTER_SIZE, ED25519_BLOCK_LEN, KEY_ID_SIZE), (16, 72, 8));
    assert_eq!((ALGORITHM_ED25519, VERSION), (1, 1));

    let fields = |l: &layout::Layout| -> Vec<(&str, usize, usize)> {
        l.fields
            .iter()
            .map(|f| (f.name, f.offset, f.size))
            .collect()
    };
    assert_eq!(layout::SIG_BLOCK.size, 72);
    assert_eq!(
        fields(&layout::SIG_BLOCK),
        [("sig", 0, 64), ("key_id", 64, 8)]
    );
    assert_eq!(layout::SIG_FOOTER.size, 16);
    assert_eq!(
        fields(&layout::SIG_FOOTER),
        [
            ("block_len", 0, 4),
            ("algorithm", 4, 2),
            ("version", 6, 2),
            ("magic", 8, 8)
        ]
    );
}

#[test]
fn golden_footer() {
    let bytes = golden("footer-ed25519-v1.bin");
    assert_eq!(
        bytes,
        [0x48, 0, 0, 0, 1, 0, 1, 0, b'X', b'S', b'P', b'L', b'S', b'I', b'G', 0]
    );
    let f = SigFooter::from_tail(&bytes).unwrap();
    assert_eq!(f.block_len.get(), 72);
    assert!(f.is_ed25519_v1());
    assert_eq!(SigFooter::ed25519().as_bytes(), &bytes[..]);
}

#[test]
fn golden_signed_file() {
    let file = golden("signed-rfc8032.bin");
    assert_eq!(file.len(), 44 + 72 + 16);
    let (s, rest) = file.split_at(44);
    assert_eq!(s, b"xsplice signature golden: these are bytes S\n");
    let (block, footer) = rest.split_at(72);
    assert_eq!(footer, golden("footer-ed25519-v1.bin"));
    let block = Ed25519Block::ref_from_bytes(block).unwrap();
    // SHA-256 of the RFC 8032 TEST 1 public key, first 8 bytes.
    assert_eq!(
        block.key_id,
        [0x21, 0xfe, 0x31, 0xdf, 0xa1, 0x54, 0xa2, 0x61]
    );
    assert_eq!(&block.sig[..4], &[0x38, 0xd2, 0xd2, 0x12]);
}
