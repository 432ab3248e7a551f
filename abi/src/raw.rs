//! Wire structs: each type here is exactly its on-disk bytes.
//!
//! Every field is an explicit little-endian, alignment-1 integer (or a byte
//! array), so the structs have no implicit padding, are `align_of == 1`, and
//! can be viewed in place over unaligned input with zerocopy's
//! [`FromBytes::ref_from_prefix`]. There is no logic here: rules live in the
//! decoder and encoder, documentation of each field in [`crate::layout`].

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The 40-byte prefix every record version shares.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Prefix {
    /// Address of the replacement code (0 only for NOP records).
    pub new_addr: U64,
    /// Size of the replacement code, or bytes to NOP out.
    pub new_size: U64,
    /// Address of the code to patch; 0 means "resolve `name`".
    pub old_addr: U64,
    /// Size of the function being patched.
    pub old_size: U64,
    /// Pointer to the NUL-terminated function name.
    pub name: U64,
}

/// Record version 1: the seed's `xsplice_patch_func`, untagged, 64 bytes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RecordV1 {
    /// The shared prefix.
    pub prefix: Prefix,
    /// Padding; must be zero. Its first two bytes double as the version tag
    /// of later versions, which is why a zero tag means v1.
    pub pad: [u8; 24],
}

/// Record version 2: v1 with version, size and feature tags carved out of
/// the padding, 64 bytes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RecordV2 {
    /// The shared prefix.
    pub prefix: Prefix,
    /// Record version tag (2).
    pub version: U16,
    /// Record size in bytes (64, or more under the size rule).
    pub size: U16,
    /// Incompatible feature bits.
    pub incompat: U32,
    /// Compatible feature bits.
    pub compat: U32,
    /// Reserved; must be zero.
    pub reserved: [u8; 12],
}

/// Record version 3: the padded successor, 128 bytes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RecordV3 {
    /// The shared prefix.
    pub prefix: Prefix,
    /// Record version tag (3).
    pub version: U16,
    /// Record size in bytes (128, or more under the size rule).
    pub size: U16,
    /// Incompatible feature bits.
    pub incompat: U32,
    /// Compatible feature bits.
    pub compat: U32,
    /// Offset of the patch site from `old_addr` (PATCH_OFFSET).
    pub patch_offset: U32,
    /// Which local symbol called `name` is meant, 1-based; 0 = unique (SYMPOS).
    pub sympos: U32,
    /// Number of valid bytes in `expect` (EXPECT).
    pub expect_len: u8,
    /// Reserved; must be zero.
    pub reserved0: [u8; 3],
    /// Bytes expected at the patch site before apply (EXPECT).
    pub expect: [u8; 32],
    /// Reserved for 3.x fields under new feature bits; must be zero.
    pub reserved1: [u8; 32],
}

/// The `.note.xsplice` descriptor, 24 bytes.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct NoteDesc {
    /// Format major version (equals the record version).
    pub format_major: U16,
    /// Format minor version.
    pub format_minor: U16,
    /// Record version of every record in `.xsplice.funcs`.
    pub record_version: U16,
    /// Record size of every record in `.xsplice.funcs`.
    pub record_size: U16,
    /// Union of the incompat bits of all records.
    pub incompat: U32,
    /// Payload compat bits.
    pub compat: U32,
    /// Reserved; must be zero.
    pub reserved: [u8; 8],
}

/// The fixed header of one `.xsplice.vendor` entry, 16 bytes, followed by
/// `len` data bytes and zero padding to a multiple of 8.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct VendorEntryHeader {
    /// Vendor id (0 reserved; 0x8000_0000 and up private).
    pub vendor: U32,
    /// Vendor-defined kind.
    pub kind: U16,
    /// Flags; bit 0 is CRITICAL.
    pub flags: U16,
    /// Record index the entry applies to, or 0xFFFF_FFFF for the payload.
    pub record: U32,
    /// Length of the data that follows.
    pub len: U32,
}
