//! Wire structs: each type here is exactly its on-disk bytes.
//!
//! Every field is an explicit little-endian, alignment-1 integer (or a byte
//! array), so the structs have no implicit padding, are `align_of == 1`, and
//! can be viewed in place over unaligned input with zerocopy's
//! [`FromBytes::ref_from_prefix`]. There is no logic here: rules live in the
//! decoder and encoder, documentation of each field in [`crate::layout`].

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// A wire struct: `repr(C)`, alignment 1, with the zerocopy derives that
/// make it its on-disk bytes. Every struct of the format is declared
/// through it, so none can miss a derive.
macro_rules! wire {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
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
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
    };
}
pub(crate) use wire;

wire! {
    /// The 40-byte prefix every record version shares.
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
}

wire! {
    /// Record version 1: the seed's `xsplice_patch_func`, untagged, 64 bytes.
    pub struct RecordV1 {
        /// The shared prefix.
        pub prefix: Prefix,
        /// Padding; must be zero. Its first two bytes double as the version tag
        /// of later versions, which is why a zero tag means v1.
        pub pad: [u8; 24],
    }
}

wire! {
    /// Record version 2: v1 with version, size and feature tags carved out of
    /// the padding, 64 bytes.
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
}

wire! {
    /// Record version 3: the padded successor, 128 bytes.
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
}

wire! {
    /// The `.note.xsplice` descriptor, 24 bytes.
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
}

wire! {
    /// The fixed header of one `.xsplice.vendor` entry, 16 bytes, followed by
    /// `len` data bytes and zero padding to a multiple of 8.
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
}

wire! {
    /// The ledger's header, 32 bytes: what a patched target has applied
    /// (see [`crate::ledger`]). Followed by `entry_count` entries.
    pub struct LedgerHeader {
        /// `"XSPLEDG\0"`.
        pub magic: [u8; 8],
        /// Ledger version (1).
        pub version: U16,
        /// Size of this header (32, or more under the size rule).
        pub header_size: U16,
        /// Number of entries (applied payloads), bottom of the stack first.
        pub entry_count: U32,
        /// Bytes of the whole ledger, this header included.
        pub total_size: U32,
        /// Reserved; must be zero.
        pub reserved: [u8; 12],
    }
}

wire! {
    /// The fixed part of one ledger entry (one applied payload), 64 bytes.
    /// Followed by `name`, `id` and `depends` bytes (zero padding to 8),
    /// then `region_count` regions, `site_count` sites, `export_count`
    /// exports and `hook_count` hooks.
    pub struct LedgerEntry {
        /// Bytes of the whole entry, variable parts included; a multiple of 8.
        pub entry_size: U32,
        /// Size of this fixed part (64, or more under the size rule).
        pub header_size: U16,
        /// Record version of the payload's records.
        pub record_version: U16,
        /// Format major version of the payload.
        pub format_major: U16,
        /// Format minor version of the payload.
        pub format_minor: U16,
        /// What `id` is: 1 = GNU build-id of the payload, 2 = SHA-256 of its file.
        pub id_kind: u8,
        /// Bytes of `id` (at most 64).
        pub id_len: u8,
        /// Bytes of the build-id the payload depends on (0: none; at most 64).
        pub depends_len: u8,
        /// Reserved; must be zero.
        pub reserved0: u8,
        /// Bytes of the payload's name (at most 4096).
        pub name_len: U16,
        /// Number of regions the payload occupies.
        pub region_count: U16,
        /// Number of patch sites written.
        pub site_count: U32,
        /// Number of symbols the payload exports to payloads above it.
        pub export_count: U32,
        /// Number of hooks kept for revert and unload.
        pub hook_count: U32,
        /// Reserved; must be zero.
        pub reserved1: [u8; 32],
    }
}

wire! {
    /// A region (memory) a ledger entry's payload occupies, 24 bytes;
    /// followed by `size` original bytes (padded to 8) when `orig` is 2.
    pub struct LedgerRegion {
        /// Start address.
        pub addr: U64,
        /// Size in bytes.
        pub size: U64,
        /// 0 text, 1 read-only data, 2 writable data.
        pub kind: u8,
        /// What the region held before: 0 not kept, 1 every byte `fill`, 2 the bytes follow.
        pub orig: u8,
        /// The byte every original byte had, when `orig` is 1.
        pub fill: u8,
        /// Reserved; must be zero.
        pub reserved: [u8; 5],
    }
}

wire! {
    /// A patch site written, 24 bytes; followed by `len` original bytes,
    /// `len` written bytes and `name_len` bytes of the record's name
    /// (padded to 8).
    pub struct LedgerSite {
        /// Address of the site.
        pub addr: U64,
        /// Index of the record that patched it.
        pub record: U32,
        /// Bytes written (at most 255).
        pub len: u8,
        /// Reserved; must be zero.
        pub reserved0: u8,
        /// Bytes of the record's function name (at most 127).
        pub name_len: U16,
        /// Reserved; must be zero.
        pub reserved1: [u8; 8],
    }
}

wire! {
    /// A symbol a payload exports, 24 bytes; followed by `name_len` bytes
    /// of name (padded to 8).
    pub struct LedgerExport {
        /// Address.
        pub addr: U64,
        /// Size in bytes.
        pub size: U64,
        /// Bytes of the name (at most 4096).
        pub name_len: U16,
        /// Reserved; must be zero.
        pub reserved: [u8; 6],
    }
}

wire! {
    /// A hook kept for revert and unload, 16 bytes.
    pub struct LedgerHook {
        /// Address of `int fn(void)`.
        pub addr: U64,
        /// Index in its hook section.
        pub index: U32,
        /// Hook point: its position in [`crate::sections::HookPoint::ALL`].
        pub point: u8,
        /// Reserved; must be zero.
        pub reserved: [u8; 3],
    }
}

wire! {
    /// The footer that ends a ledger stored after other bytes (an image's
    /// ELF bytes), 16 bytes: it says how many bytes before it are the ledger.
    pub struct LedgerFooter {
        /// Bytes of the ledger before this footer.
        pub ledger_size: U32,
        /// Footer version (1).
        pub version: U16,
        /// Reserved; must be zero.
        pub reserved: U16,
        /// `"XSPLEDG\0"`.
        pub magic: [u8; 8],
    }
}
