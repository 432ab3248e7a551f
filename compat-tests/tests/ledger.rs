//! The ledger (spec/SPEC.md section 16): literal layout pins, and golden
//! files written by `golden/make_ledger_golden.py` from hand-typed offsets,
//! decoded field by field and re-encoded byte-identical.

use std::mem::{offset_of, size_of};
use std::path::PathBuf;

use xsplice_abi::layout::{self, Layout};
use xsplice_abi::ledger::IdKind;
use xsplice_abi::raw::{LedgerEntry, LedgerFooter, LedgerHeader};
use xsplice_abi::sections::HookPoint;
use xsplice_abi::{Addr, FormatVersion, RecordIndex, RecordVersion};
use xsplice_loader::ledger::{
    split_trailer, Entry, Identity, Ledger, LedgerError, LedgerProblem, Original, Placed, Site,
};
use xsplice_loader::{Export, Hook, RegionKind, Symbol};

fn golden(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/ledger")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pinned(l: &Layout, expected: &[(&str, usize, usize)], size: usize) {
    assert_eq!(l.size, size, "{}", l.c_name);
    let got: Vec<_> = l
        .fields
        .iter()
        .map(|f| (f.name, f.offset, f.size))
        .collect();
    assert_eq!(got, expected, "{}", l.c_name);
}

#[test]
fn ledger_layouts_are_pinned() {
    pinned(
        &layout::LEDGER_HEADER,
        &[
            ("magic", 0, 8),
            ("version", 8, 2),
            ("header_size", 10, 2),
            ("entry_count", 12, 4),
            ("total_size", 16, 4),
            ("reserved", 20, 12),
        ],
        32,
    );
    pinned(
        &layout::LEDGER_ENTRY,
        &[
            ("entry_size", 0, 4),
            ("header_size", 4, 2),
            ("record_version", 6, 2),
            ("format_major", 8, 2),
            ("format_minor", 10, 2),
            ("id_kind", 12, 1),
            ("id_len", 13, 1),
            ("depends_len", 14, 1),
            ("reserved0", 15, 1),
            ("name_len", 16, 2),
            ("region_count", 18, 2),
            ("site_count", 20, 4),
            ("export_count", 24, 4),
            ("hook_count", 28, 4),
            ("reserved1", 32, 32),
        ],
        64,
    );
    pinned(
        &layout::LEDGER_REGION,
        &[
            ("addr", 0, 8),
            ("size", 8, 8),
            ("kind", 16, 1),
            ("orig", 17, 1),
            ("fill", 18, 1),
            ("reserved", 19, 5),
        ],
        24,
    );
    pinned(
        &layout::LEDGER_SITE,
        &[
            ("addr", 0, 8),
            ("record", 8, 4),
            ("len", 12, 1),
            ("reserved0", 13, 1),
            ("name_len", 14, 2),
            ("reserved1", 16, 8),
        ],
        24,
    );
    pinned(
        &layout::LEDGER_EXPORT,
        &[
            ("addr", 0, 8),
            ("size", 8, 8),
            ("name_len", 16, 2),
            ("reserved", 18, 6),
        ],
        24,
    );
    pinned(
        &layout::LEDGER_HOOK,
        &[
            ("addr", 0, 8),
            ("index", 8, 4),
            ("point", 12, 1),
            ("reserved", 13, 3),
        ],
        16,
    );
    pinned(
        &layout::LEDGER_FOOTER,
        &[
            ("ledger_size", 0, 4),
            ("version", 4, 2),
            ("reserved", 6, 2),
            ("magic", 8, 8),
        ],
        16,
    );
    assert_eq!(size_of::<LedgerHeader>(), 32);
    assert_eq!(size_of::<LedgerEntry>(), 64);
    assert_eq!(size_of::<LedgerFooter>(), 16);
    assert_eq!(offset_of!(LedgerEntry, site_count), 20);
    assert_eq!(xsplice_abi::ledger::LEDGER_MAGIC, *b"XSPLEDG\0");
    assert_eq!(xsplice_abi::ledger::LEDGER_VERSION, 1);
    assert_eq!(IdKind::BuildId.code(), 1);
    assert_eq!(IdKind::Sha256.code(), 2);
    // The hook point code is the position in the life cycle.
    assert_eq!(HookPoint::ALL[4], HookPoint::PreRevert);
}

fn expected_entry() -> Entry {
    let mut id = b"fix_sum".to_vec();
    id.extend([1u8; 13]);
    Entry {
        name: "fix_sum.o".into(),
        identity: Identity::build_id(&id),
        depends: Some(
            [
                0xb1, 0xb2, 0x4e, 0x01, 0x36, 0x40, 0x11, 0x15, 0xe7, 0x74, 0x11, 0x04, 0xb0, 0xb9,
                0xaa, 0xe7, 0xb8, 0xed, 0x0e, 0xe1,
            ]
            .to_vec(),
        ),
        record_version: RecordVersion::V3,
        format: FormatVersion::new(3, 0),
        regions: vec![
            Placed {
                kind: RegionKind::Text,
                addr: Addr(0x40_2000),
                size: 88,
                original: Original::Fill(0xcc),
            },
            Placed {
                kind: RegionKind::ReadOnly,
                addr: Addr(0x41_4000),
                size: 5,
                original: Original::Bytes(vec![1, 2, 3, 4, 5]),
            },
        ],
        sites: vec![Site {
            record: RecordIndex(0),
            name: "hv_sum".into(),
            addr: Addr(0x40_1132),
            old: vec![0x41, 0x55, 0x41, 0x54, 0x55],
            new: vec![0xe9, 0xc9, 0x0e, 0x00, 0x00],
        }],
        exports: vec![Export {
            name: "fix_hv_sum".into(),
            symbol: Symbol {
                addr: Addr(0x40_2000),
                size: 88,
            },
        }],
        hooks: vec![Hook {
            point: HookPoint::PreRevert,
            index: 0,
            addr: Addr(0x40_2058),
        }],
    }
}

#[test]
fn golden_ledgers_decode_and_re_encode_byte_identical() {
    let empty = golden("empty.bin");
    assert_eq!(Ledger::decode(&empty).unwrap(), Ledger::default());
    assert_eq!(Ledger::default().encode().unwrap(), empty);

    let one = golden("one-entry.bin");
    let ledger = Ledger::decode(&one).unwrap();
    assert_eq!(ledger.entries, vec![expected_entry()]);
    assert_eq!(ledger.encode().unwrap(), one);
}

#[test]
fn golden_trailer_splits_at_its_footer() {
    let file = golden("trailer.bin");
    let (body, ledger) = split_trailer(&file).unwrap();
    assert_eq!(body, b"\x7fELF-body");
    assert_eq!(ledger, Some(&golden("one-entry.bin")[..]));
}

#[test]
fn the_size_rule_holds_for_entries() {
    // Grow the entry's fixed part from 64 to 72 bytes: zero tail accepted.
    let one = golden("one-entry.bin");
    let at = 32 + 64;
    let mut grown = one[..at].to_vec();
    grown.extend([0u8; 8]);
    grown.extend(&one[at..]);
    let entry_size = u32::from_le_bytes(one[32..36].try_into().unwrap()) + 8;
    grown[32..36].copy_from_slice(&entry_size.to_le_bytes());
    grown[36..38].copy_from_slice(&72u16.to_le_bytes());
    let total = one.len() as u32 + 8;
    grown[16..20].copy_from_slice(&total.to_le_bytes());
    assert_eq!(
        Ledger::decode(&grown).unwrap().entries,
        vec![expected_entry()]
    );
    // A non-zero byte in the unknown tail is refused, naming its offset.
    grown[at + 3] = 7;
    assert_eq!(
        Ledger::decode(&grown).unwrap_err(),
        LedgerError {
            offset: at + 3,
            problem: LedgerProblem::NonZeroReserved
        }
    );
    // An unknown ledger version is refused by number.
    let mut v2 = one.clone();
    v2[8] = 2;
    assert_eq!(
        Ledger::decode(&v2).unwrap_err().problem,
        LedgerProblem::UnsupportedVersion(2)
    );
}
