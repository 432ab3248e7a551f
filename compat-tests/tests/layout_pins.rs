//! Byte-for-byte layout pins. Every number here is typed in from the wire
//! format, NOT derived from `xsplice_abi::layout`: a moved field fails here,
//! and so does a layout table that drifts from the structs.

use core::mem::{align_of, offset_of, size_of};
use xsplice_abi::layout::{self, Layout};
use xsplice_abi::raw::{NoteDesc, RecordV1, RecordV2, RecordV3, VendorEntryHeader};

#[test]
fn sizes_and_alignment() {
    assert_eq!(size_of::<RecordV1>(), 64);
    assert_eq!(size_of::<RecordV2>(), 64);
    assert_eq!(size_of::<RecordV3>(), 128);
    assert_eq!(size_of::<NoteDesc>(), 24);
    assert_eq!(size_of::<VendorEntryHeader>(), 16);
    assert_eq!(align_of::<RecordV1>(), 1);
    assert_eq!(align_of::<RecordV2>(), 1);
    assert_eq!(align_of::<RecordV3>(), 1);
    assert_eq!(align_of::<NoteDesc>(), 1);
    assert_eq!(align_of::<VendorEntryHeader>(), 1);
}

#[test]
fn v1_offsets() {
    assert_eq!(offset_of!(RecordV1, prefix.new_addr), 0);
    assert_eq!(offset_of!(RecordV1, prefix.new_size), 8);
    assert_eq!(offset_of!(RecordV1, prefix.old_addr), 16);
    assert_eq!(offset_of!(RecordV1, prefix.old_size), 24);
    assert_eq!(offset_of!(RecordV1, prefix.name), 32);
    assert_eq!(offset_of!(RecordV1, pad), 40);
}

#[test]
fn v2_offsets() {
    assert_eq!(offset_of!(RecordV2, prefix.new_addr), 0);
    assert_eq!(offset_of!(RecordV2, prefix.new_size), 8);
    assert_eq!(offset_of!(RecordV2, prefix.old_addr), 16);
    assert_eq!(offset_of!(RecordV2, prefix.old_size), 24);
    assert_eq!(offset_of!(RecordV2, prefix.name), 32);
    assert_eq!(offset_of!(RecordV2, version), 40);
    assert_eq!(offset_of!(RecordV2, size), 42);
    assert_eq!(offset_of!(RecordV2, incompat), 44);
    assert_eq!(offset_of!(RecordV2, compat), 48);
    assert_eq!(offset_of!(RecordV2, reserved), 52);
}

#[test]
fn v3_offsets() {
    assert_eq!(offset_of!(RecordV3, prefix.new_addr), 0);
    assert_eq!(offset_of!(RecordV3, prefix.new_size), 8);
    assert_eq!(offset_of!(RecordV3, prefix.old_addr), 16);
    assert_eq!(offset_of!(RecordV3, prefix.old_size), 24);
    assert_eq!(offset_of!(RecordV3, prefix.name), 32);
    assert_eq!(offset_of!(RecordV3, version), 40);
    assert_eq!(offset_of!(RecordV3, size), 42);
    assert_eq!(offset_of!(RecordV3, incompat), 44);
    assert_eq!(offset_of!(RecordV3, compat), 48);
    assert_eq!(offset_of!(RecordV3, patch_offset), 52);
    assert_eq!(offset_of!(RecordV3, sympos), 56);
    assert_eq!(offset_of!(RecordV3, expect_len), 60);
    assert_eq!(offset_of!(RecordV3, reserved0), 61);
    assert_eq!(offset_of!(RecordV3, expect), 64);
    assert_eq!(offset_of!(RecordV3, reserved1), 96);
}

#[test]
fn note_and_vendor_offsets() {
    assert_eq!(offset_of!(NoteDesc, format_major), 0);
    assert_eq!(offset_of!(NoteDesc, format_minor), 2);
    assert_eq!(offset_of!(NoteDesc, record_version), 4);
    assert_eq!(offset_of!(NoteDesc, record_size), 6);
    assert_eq!(offset_of!(NoteDesc, incompat), 8);
    assert_eq!(offset_of!(NoteDesc, compat), 12);
    assert_eq!(offset_of!(NoteDesc, reserved), 16);
    assert_eq!(offset_of!(VendorEntryHeader, vendor), 0);
    assert_eq!(offset_of!(VendorEntryHeader, kind), 4);
    assert_eq!(offset_of!(VendorEntryHeader, flags), 6);
    assert_eq!(offset_of!(VendorEntryHeader, record), 8);
    assert_eq!(offset_of!(VendorEntryHeader, len), 12);
}

/// `(name, offset, size)` for every field, typed in from the wire format.
fn pinned(l: &Layout, expected: &[(&str, usize, usize)], size: usize) {
    assert_eq!(l.size, size, "{}", l.c_name);
    let got: Vec<_> = l
        .fields
        .iter()
        .map(|f| (f.name, f.offset, f.size))
        .collect();
    assert_eq!(got, expected, "{}", l.c_name);
}

const PREFIX: [(&str, usize, usize); 5] = [
    ("new_addr", 0, 8),
    ("new_size", 8, 8),
    ("old_addr", 16, 8),
    ("old_size", 24, 8),
    ("name", 32, 8),
];

#[test]
fn layout_table_agrees_with_pins() {
    let mut v1 = PREFIX.to_vec();
    v1.push(("pad", 40, 24));
    pinned(&layout::RECORD_V1, &v1, 64);

    let mut v2 = PREFIX.to_vec();
    v2.extend([
        ("version", 40, 2),
        ("size", 42, 2),
        ("incompat", 44, 4),
        ("compat", 48, 4),
    ]);
    let mut v3 = v2.clone();
    v2.push(("reserved", 52, 12));
    pinned(&layout::RECORD_V2, &v2, 64);

    v3.extend([
        ("patch_offset", 52, 4),
        ("sympos", 56, 4),
        ("expect_len", 60, 1),
        ("reserved0", 61, 3),
        ("expect", 64, 32),
        ("reserved1", 96, 32),
    ]);
    pinned(&layout::RECORD_V3, &v3, 128);

    pinned(
        &layout::NOTE_DESC,
        &[
            ("format_major", 0, 2),
            ("format_minor", 2, 2),
            ("record_version", 4, 2),
            ("record_size", 6, 2),
            ("incompat", 8, 4),
            ("compat", 12, 4),
            ("reserved", 16, 8),
        ],
        24,
    );
    pinned(
        &layout::VENDOR_ENTRY,
        &[
            ("vendor", 0, 4),
            ("kind", 4, 2),
            ("flags", 6, 2),
            ("record", 8, 4),
            ("len", 12, 4),
        ],
        16,
    );
}

#[test]
fn feature_bits_are_pinned() {
    use xsplice_abi::Incompat;
    assert_eq!(Incompat::NOP.bits(), 1);
    assert_eq!(Incompat::PATCH_OFFSET.bits(), 2);
    assert_eq!(Incompat::SYMPOS.bits(), 4);
    assert_eq!(Incompat::EXPECT.bits(), 8);
    assert_eq!(xsplice_abi::NOTE_NAME, b"XSPLICE\0");
    assert_eq!(xsplice_abi::NOTE_TYPE, 1);
    assert_eq!(xsplice_abi::sections::FUNCS, ".xsplice.funcs");
    assert_eq!(xsplice_abi::sections::NOTE, ".note.xsplice");
    assert_eq!(xsplice_abi::sections::DEPENDS, ".xsplice.depends");
    assert_eq!(xsplice_abi::sections::VENDOR, ".xsplice.vendor");
    assert_eq!(xsplice_abi::sections::ARENA_TEXT, ".xsplice.arena.text");
    assert_eq!(xsplice_abi::sections::ARENA_RODATA, ".xsplice.arena.rodata");
    assert_eq!(xsplice_abi::sections::ARENA_DATA, ".xsplice.arena.data");
}
