//! The layout table: every field of every on-disk structure, with its
//! offset, size, type, since-version, deprecation and meaning.
//!
//! This table is the single source from which `xsplice-spec` generates the
//! specification's field tables, the C header and the JSON Schemas. A unit
//! test checks it against the zerocopy structs of [`crate::raw`]; the compat
//! suite checks it against hard-coded numbers, so neither can drift.
//!
//! ```
//! use xsplice_abi::{layout, RecordVersion};
//! let v3 = layout::record(RecordVersion::V3);
//! let f = v3.field("expect").unwrap();
//! assert_eq!((f.offset, f.size), (64, 32));
//! ```

use crate::features::Incompat;
use crate::version::{FormatVersion, RecordVersion};

/// The type of a field as the C header and the schemas spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `uint8_t`.
    U8,
    /// `uint16_t`, little-endian.
    U16,
    /// `uint32_t`, little-endian.
    U32,
    /// `uint64_t`, little-endian.
    U64,
    /// A 64-bit address filled by a relocation.
    Pointer,
    /// A byte array of the field's size.
    Bytes,
    /// Reserved bytes that must be zero.
    Reserved,
}

impl FieldType {
    /// The C type name (arrays take the field size as their length).
    pub const fn c_type(self) -> &'static str {
        match self {
            FieldType::U8 | FieldType::Bytes | FieldType::Reserved => "uint8_t",
            FieldType::U16 => "uint16_t",
            FieldType::U32 => "uint32_t",
            FieldType::U64 | FieldType::Pointer => "uint64_t",
        }
    }

    /// Whether the C declaration is an array.
    pub const fn is_array(self) -> bool {
        matches!(self, FieldType::Bytes | FieldType::Reserved)
    }
}

/// One field of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Field name, as in the specification and the C header.
    pub name: &'static str,
    /// Byte offset.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Type.
    pub ty: FieldType,
    /// The format version that introduced the field at this offset.
    pub since: FormatVersion,
    /// The format version that deprecated it, if any.
    pub deprecated: Option<FormatVersion>,
    /// The feature bit that must be set for the field to be non-zero.
    pub feature: Option<Incompat>,
    /// One-line meaning.
    pub doc: &'static str,
}

/// A structure's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The C struct name.
    pub c_name: &'static str,
    /// One-line meaning.
    pub doc: &'static str,
    /// The record version, for record layouts.
    pub version: Option<RecordVersion>,
    /// Total size in bytes.
    pub size: usize,
    /// Fields in offset order, covering every byte exactly once.
    pub fields: &'static [Field],
}

impl Field {
    /// The field's type as the specification, the schemas and the CLI spell
    /// it: `u8`, `u16`, `u32`, `u64`, `pointer`, `u8[N]` or `reserved[N]`.
    ///
    /// ```
    /// use xsplice_abi::{layout, RecordVersion};
    /// let v3 = layout::record(RecordVersion::V3);
    /// assert_eq!(v3.field("expect").unwrap().type_name().to_string(), "u8[32]");
    /// assert_eq!(v3.field("name").unwrap().type_name().to_string(), "pointer");
    /// ```
    pub fn type_name(&self) -> impl core::fmt::Display + '_ {
        TypeName(self)
    }
}

struct TypeName<'a>(&'a Field);

impl core::fmt::Display for TypeName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.ty {
            FieldType::U8 => f.write_str("u8"),
            FieldType::U16 => f.write_str("u16"),
            FieldType::U32 => f.write_str("u32"),
            FieldType::U64 => f.write_str("u64"),
            FieldType::Pointer => f.write_str("pointer"),
            FieldType::Bytes => write!(f, "u8[{}]", self.0.size),
            FieldType::Reserved => write!(f, "reserved[{}]", self.0.size),
        }
    }
}

impl Layout {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const V1_0: FormatVersion = FormatVersion::new(1, 0);
const V2_0: FormatVersion = FormatVersion::new(2, 0);
const V3_0: FormatVersion = FormatVersion::new(3, 0);

const fn field(
    name: &'static str,
    offset: usize,
    size: usize,
    ty: FieldType,
    since: FormatVersion,
    doc: &'static str,
) -> Field {
    Field {
        name,
        offset,
        size,
        ty,
        since,
        deprecated: None,
        feature: None,
        doc,
    }
}

const fn gated(f: Field, feature: Incompat) -> Field {
    Field {
        feature: Some(feature),
        ..f
    }
}

const PREFIX: [Field; 5] = [
    field(
        "new_addr",
        0,
        8,
        FieldType::Pointer,
        V1_0,
        "replacement code (R_*_ABS64 relocation); 0 only with NOP",
    ),
    field(
        "new_size",
        8,
        8,
        FieldType::U64,
        V1_0,
        "bytes of replacement code (NOP: bytes to NOP out)",
    ),
    field(
        "old_addr",
        16,
        8,
        FieldType::Pointer,
        V1_0,
        "code to patch; 0 = resolve name in the target",
    ),
    field(
        "old_size",
        24,
        8,
        FieldType::U64,
        V1_0,
        "size of the patched function",
    ),
    field(
        "name",
        32,
        8,
        FieldType::Pointer,
        V1_0,
        "pointer to the NUL-terminated name, at most 127 bytes",
    ),
];

const TAGS: [Field; 4] = [
    field(
        "version",
        40,
        2,
        FieldType::U16,
        V2_0,
        "record version tag (0 = untagged v1)",
    ),
    field("size", 42, 2, FieldType::U16, V2_0, "record size in bytes"),
    field(
        "incompat",
        44,
        4,
        FieldType::U32,
        V2_0,
        "incompatible feature bits: unknown ones refuse the payload",
    ),
    field(
        "compat",
        48,
        4,
        FieldType::U32,
        V2_0,
        "compatible feature bits: unknown ones are ignored",
    ),
];

static V1_FIELDS: [Field; 6] = [
    PREFIX[0],
    PREFIX[1],
    PREFIX[2],
    PREFIX[3],
    PREFIX[4],
    field(
        "pad",
        40,
        24,
        FieldType::Reserved,
        V1_0,
        "padding, must be zero; read-only once loaded",
    ),
];

static V2_FIELDS: [Field; 10] = [
    PREFIX[0],
    PREFIX[1],
    PREFIX[2],
    PREFIX[3],
    PREFIX[4],
    TAGS[0],
    TAGS[1],
    TAGS[2],
    TAGS[3],
    field(
        "reserved",
        52,
        12,
        FieldType::Reserved,
        V2_0,
        "reserved, must be zero",
    ),
];

static V3_FIELDS: [Field; 15] = [
    PREFIX[0],
    PREFIX[1],
    PREFIX[2],
    PREFIX[3],
    PREFIX[4],
    TAGS[0],
    TAGS[1],
    TAGS[2],
    TAGS[3],
    gated(
        field(
            "patch_offset",
            52,
            4,
            FieldType::U32,
            V3_0,
            "patch site offset from old_addr",
        ),
        Incompat::PATCH_OFFSET,
    ),
    gated(
        field(
            "sympos",
            56,
            4,
            FieldType::U32,
            V3_0,
            "n-th local symbol called name (0 = unique)",
        ),
        Incompat::SYMPOS,
    ),
    gated(
        field(
            "expect_len",
            60,
            1,
            FieldType::U8,
            V3_0,
            "number of valid bytes in expect (at most 32)",
        ),
        Incompat::EXPECT,
    ),
    field(
        "reserved0",
        61,
        3,
        FieldType::Reserved,
        V3_0,
        "reserved, must be zero",
    ),
    gated(
        field(
            "expect",
            64,
            32,
            FieldType::Bytes,
            V3_0,
            "bytes expected at the patch site; zero past expect_len",
        ),
        Incompat::EXPECT,
    ),
    field(
        "reserved1",
        96,
        32,
        FieldType::Reserved,
        V3_0,
        "reserved for 3.x fields under new feature bits, must be zero",
    ),
];

static NOTE_FIELDS: [Field; 7] = [
    field(
        "format_major",
        0,
        2,
        FieldType::U16,
        V2_0,
        "format major version (equals the record version)",
    ),
    field(
        "format_minor",
        2,
        2,
        FieldType::U16,
        V2_0,
        "format minor version",
    ),
    field(
        "record_version",
        4,
        2,
        FieldType::U16,
        V2_0,
        "version of every record (1, 2, 3)",
    ),
    field(
        "record_size",
        6,
        2,
        FieldType::U16,
        V2_0,
        "size of every record",
    ),
    field(
        "incompat",
        8,
        4,
        FieldType::U32,
        V2_0,
        "union of the records' incompat bits",
    ),
    field("compat", 12, 4, FieldType::U32, V2_0, "payload compat bits"),
    field(
        "reserved",
        16,
        8,
        FieldType::Reserved,
        V2_0,
        "reserved, must be zero",
    ),
];

static VENDOR_FIELDS: [Field; 5] = [
    field(
        "vendor",
        0,
        4,
        FieldType::U32,
        V1_0,
        "vendor id: 0 reserved, 0x80000000 and up private",
    ),
    field("kind", 4, 2, FieldType::U16, V1_0, "vendor-defined kind"),
    field(
        "flags",
        6,
        2,
        FieldType::U16,
        V1_0,
        "bit 0 CRITICAL: unknown entry refuses the payload",
    ),
    field(
        "record",
        8,
        4,
        FieldType::U32,
        V1_0,
        "record index, or 0xFFFFFFFF for the whole payload",
    ),
    field(
        "len",
        12,
        4,
        FieldType::U32,
        V1_0,
        "data bytes that follow; zero padding to 8",
    ),
];

static SIG_BLOCK_FIELDS: [Field; 2] = [
    field(
        "sig",
        0,
        64,
        FieldType::Bytes,
        V1_0,
        "Ed25519 signature (RFC 8032, pure) of the ELF bytes before the block",
    ),
    field(
        "key_id",
        64,
        8,
        FieldType::Bytes,
        V1_0,
        "first 8 bytes of SHA-256 of the signer's 32-byte public key",
    ),
];

static SIG_FOOTER_FIELDS: [Field; 4] = [
    field(
        "block_len",
        0,
        4,
        FieldType::U32,
        V1_0,
        "bytes between the signed ELF bytes and the footer (72 for Ed25519)",
    ),
    field(
        "algorithm",
        4,
        2,
        FieldType::U16,
        V1_0,
        "signature algorithm: 1 = Ed25519",
    ),
    field(
        "version",
        6,
        2,
        FieldType::U16,
        V1_0,
        "signature block version: 1",
    ),
    field(
        "magic",
        8,
        8,
        FieldType::Bytes,
        V1_0,
        "\"XSPLSIG\\0\": the last 8 bytes of a signed payload",
    ),
];

/// The v1 record layout.
pub static RECORD_V1: Layout = Layout {
    c_name: "xsplice_patch_func_v1",
    doc: "the seed's untagged 64-byte record",
    version: Some(RecordVersion::V1),
    size: 64,
    fields: &V1_FIELDS,
};

/// The v2 record layout.
pub static RECORD_V2: Layout = Layout {
    c_name: "xsplice_patch_func_v2",
    doc: "64 bytes with version, size and feature tags carved from the padding",
    version: Some(RecordVersion::V2),
    size: 64,
    fields: &V2_FIELDS,
};

/// The v3 record layout.
pub static RECORD_V3: Layout = Layout {
    c_name: "xsplice_patch_func_v3",
    doc: "the 128-byte padded successor",
    version: Some(RecordVersion::V3),
    size: 128,
    fields: &V3_FIELDS,
};

/// The ABI note descriptor layout.
pub static NOTE_DESC: Layout = Layout {
    c_name: "xsplice_note_desc",
    doc: "descriptor of the .note.xsplice ELF note (name \"XSPLICE\", type 1)",
    version: None,
    size: 24,
    fields: &NOTE_FIELDS,
};

/// The vendor entry header layout.
pub static VENDOR_ENTRY: Layout = Layout {
    c_name: "xsplice_vendor_entry",
    doc: "header of one .xsplice.vendor entry, followed by len data bytes",
    version: None,
    size: 16,
    fields: &VENDOR_FIELDS,
};

/// The Ed25519 signature block (algorithm 1, version 1), appended after the
/// ELF bytes and followed by the [`SIG_FOOTER`].
pub static SIG_BLOCK: Layout = Layout {
    c_name: "xsplice_sig_block",
    doc: "Ed25519 signature block between a payload's ELF bytes and the signature footer",
    version: None,
    size: 72,
    fields: &SIG_BLOCK_FIELDS,
};

/// The footer that ends a signed payload.
pub static SIG_FOOTER: Layout = Layout {
    c_name: "xsplice_sig_footer",
    doc: "footer ending a signed payload: file = ELF bytes, block, footer",
    version: None,
    size: 16,
    fields: &SIG_FOOTER_FIELDS,
};

/// The layout of a record version.
pub fn record(version: RecordVersion) -> &'static Layout {
    match version {
        RecordVersion::V1 => &RECORD_V1,
        RecordVersion::V2 => &RECORD_V2,
        RecordVersion::V3 => &RECORD_V3,
    }
}

/// Every layout, records first.
pub fn all() -> [&'static Layout; 7] {
    [
        &RECORD_V1,
        &RECORD_V2,
        &RECORD_V3,
        &NOTE_DESC,
        &VENDOR_ENTRY,
        &SIG_BLOCK,
        &SIG_FOOTER,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::*;
    use core::mem::{offset_of, size_of};

    /// Every layout covers every byte exactly once, in order.
    #[test]
    fn fields_tile_the_struct() {
        for l in all() {
            let mut at = 0;
            for f in l.fields {
                assert_eq!(f.offset, at, "{}.{}", l.c_name, f.name);
                at += f.size;
            }
            assert_eq!(at, l.size, "{}", l.c_name);
        }
    }

    macro_rules! agree {
        ($layout:expr, $ty:ty, [$($field:ident $(. $sub:ident)?),*]) => {
            assert_eq!($layout.size, size_of::<$ty>());
            let mut n = 0;
            $(
                let name = agree!(@name $field $(. $sub)?);
                let f = $layout.field(name).unwrap();
                assert_eq!(f.offset, offset_of!($ty, $field $(. $sub)?), "{}", name);
                n += 1;
            )*
            assert_eq!(n, $layout.fields.len());
        };
        (@name $field:ident) => { stringify!($field) };
        (@name $field:ident . $sub:ident) => { stringify!($sub) };
    }

    #[test]
    fn table_agrees_with_structs() {
        agree!(
            RECORD_V1,
            RecordV1,
            [
                prefix.new_addr,
                prefix.new_size,
                prefix.old_addr,
                prefix.old_size,
                prefix.name,
                pad
            ]
        );
        agree!(
            RECORD_V2,
            RecordV2,
            [
                prefix.new_addr,
                prefix.new_size,
                prefix.old_addr,
                prefix.old_size,
                prefix.name,
                version,
                size,
                incompat,
                compat,
                reserved
            ]
        );
        agree!(
            RECORD_V3,
            RecordV3,
            [
                prefix.new_addr,
                prefix.new_size,
                prefix.old_addr,
                prefix.old_size,
                prefix.name,
                version,
                size,
                incompat,
                compat,
                patch_offset,
                sympos,
                expect_len,
                reserved0,
                expect,
                reserved1
            ]
        );
        agree!(
            NOTE_DESC,
            NoteDesc,
            [
                format_major,
                format_minor,
                record_version,
                record_size,
                incompat,
                compat,
                reserved
            ]
        );
        agree!(
            VENDOR_ENTRY,
            VendorEntryHeader,
            [vendor, kind, flags, record, len]
        );
        use crate::signature::{Ed25519Block, SigFooter};
        agree!(SIG_BLOCK, Ed25519Block, [sig, key_id]);
        agree!(
            SIG_FOOTER,
            SigFooter,
            [block_len, algorithm, version, magic]
        );
    }

    #[test]
    fn known_sizes_match_layouts() {
        for v in RecordVersion::ALL {
            assert_eq!(record(v).size, v.known_size());
        }
    }
}
