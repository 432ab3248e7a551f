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

use core::mem::size_of;

use crate::features::Incompat;
use crate::raw::{
    AltInstrEntry, BugFrameEntry, ExTableEntry, LedgerEntry, LedgerExport, LedgerFooter,
    LedgerHeader, LedgerHook, LedgerRegion, LedgerSite, NoteDesc, Prefix, RecordV1, RecordV2,
    RecordV3, VendorEntryHeader,
};
use crate::signature::{Ed25519Block, SigFooter};
use crate::version::{FormatVersion, RecordVersion};

/// The type of a field as the C header and the schemas spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A signed 32-bit offset from the field's own address (`.long sym - .`,
    /// an `R_X86_64_PC32` / `R_AARCH64_PREL32` relocation).
    Rel32,
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
            FieldType::Rel32 => "int32_t",
            FieldType::U64 | FieldType::Pointer => "uint64_t",
        }
    }

    /// The natural alignment of the C type (LP64).
    pub const fn c_align(self) -> usize {
        match self {
            FieldType::U8 | FieldType::Bytes | FieldType::Reserved => 1,
            FieldType::U16 => 2,
            FieldType::U32 | FieldType::Rel32 => 4,
            FieldType::U64 | FieldType::Pointer => 8,
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
            FieldType::Rel32 => f.write_str("rel32"),
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

/// `(offset, size)` of a field of a wire struct, from the struct itself:
/// `offset_of!`, and `size_of_val` on a field of a zeroed instance. The
/// table cannot disagree with [`crate::raw`]; the compat suite's literal
/// pins check both against the specification.
macro_rules! at {
    ($t:ty, $($path:ident).+) => {{
        const ZERO: $t = zerocopy::transmute!([0u8; size_of::<$t>()]);
        (
            core::mem::offset_of!($t, $($path).+),
            core::mem::size_of_val(&ZERO.$($path).+),
        )
    }};
}

const V1_0: FormatVersion = FormatVersion::new(1, 0);
const V2_0: FormatVersion = FormatVersion::new(2, 0);
const V3_0: FormatVersion = FormatVersion::new(3, 0);

const fn field(
    name: &'static str,
    (offset, size): (usize, usize),
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
        at!(Prefix, new_addr),
        FieldType::Pointer,
        V1_0,
        "replacement code (R_*_ABS64 relocation); 0 only with NOP",
    ),
    field(
        "new_size",
        at!(Prefix, new_size),
        FieldType::U64,
        V1_0,
        "bytes of replacement code (NOP: bytes to NOP out)",
    ),
    field(
        "old_addr",
        at!(Prefix, old_addr),
        FieldType::Pointer,
        V1_0,
        "code to patch; 0 = resolve name in the target",
    ),
    field(
        "old_size",
        at!(Prefix, old_size),
        FieldType::U64,
        V1_0,
        "size of the patched function",
    ),
    field(
        "name",
        at!(Prefix, name),
        FieldType::Pointer,
        V1_0,
        "pointer to the NUL-terminated name, at most 127 bytes",
    ),
];

const TAGS: [Field; 4] = [
    field(
        "version",
        at!(RecordV2, version),
        FieldType::U16,
        V2_0,
        "record version tag (0 = untagged v1)",
    ),
    field(
        "size",
        at!(RecordV2, size),
        FieldType::U16,
        V2_0,
        "record size in bytes",
    ),
    field(
        "incompat",
        at!(RecordV2, incompat),
        FieldType::U32,
        V2_0,
        "incompatible feature bits: unknown ones refuse the payload",
    ),
    field(
        "compat",
        at!(RecordV2, compat),
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
        at!(RecordV1, pad),
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
        at!(RecordV2, reserved),
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
            at!(RecordV3, patch_offset),
            FieldType::U32,
            V3_0,
            "patch site offset from old_addr",
        ),
        Incompat::PATCH_OFFSET,
    ),
    gated(
        field(
            "sympos",
            at!(RecordV3, sympos),
            FieldType::U32,
            V3_0,
            "n-th local symbol called name (0 = unique)",
        ),
        Incompat::SYMPOS,
    ),
    gated(
        field(
            "expect_len",
            at!(RecordV3, expect_len),
            FieldType::U8,
            V3_0,
            "number of valid bytes in expect (at most 32)",
        ),
        Incompat::EXPECT,
    ),
    field(
        "reserved0",
        at!(RecordV3, reserved0),
        FieldType::Reserved,
        V3_0,
        "reserved, must be zero",
    ),
    gated(
        field(
            "expect",
            at!(RecordV3, expect),
            FieldType::Bytes,
            V3_0,
            "bytes expected at the patch site; zero past expect_len",
        ),
        Incompat::EXPECT,
    ),
    field(
        "reserved1",
        at!(RecordV3, reserved1),
        FieldType::Reserved,
        V3_0,
        "reserved for 3.x fields under new feature bits, must be zero",
    ),
];

static NOTE_FIELDS: [Field; 7] = [
    field(
        "format_major",
        at!(NoteDesc, format_major),
        FieldType::U16,
        V2_0,
        "format major version (equals the record version)",
    ),
    field(
        "format_minor",
        at!(NoteDesc, format_minor),
        FieldType::U16,
        V2_0,
        "format minor version",
    ),
    field(
        "record_version",
        at!(NoteDesc, record_version),
        FieldType::U16,
        V2_0,
        "version of every record (1, 2, 3)",
    ),
    field(
        "record_size",
        at!(NoteDesc, record_size),
        FieldType::U16,
        V2_0,
        "size of every record",
    ),
    field(
        "incompat",
        at!(NoteDesc, incompat),
        FieldType::U32,
        V2_0,
        "union of the records' incompat bits",
    ),
    field(
        "compat",
        at!(NoteDesc, compat),
        FieldType::U32,
        V2_0,
        "payload compat bits",
    ),
    field(
        "reserved",
        at!(NoteDesc, reserved),
        FieldType::Reserved,
        V2_0,
        "reserved, must be zero",
    ),
];

static VENDOR_FIELDS: [Field; 5] = [
    field(
        "vendor",
        at!(VendorEntryHeader, vendor),
        FieldType::U32,
        V1_0,
        "vendor id: 0 reserved, 0x80000000 and up private",
    ),
    field(
        "kind",
        at!(VendorEntryHeader, kind),
        FieldType::U16,
        V1_0,
        "vendor-defined kind",
    ),
    field(
        "flags",
        at!(VendorEntryHeader, flags),
        FieldType::U16,
        V1_0,
        "bit 0 CRITICAL: unknown entry refuses the payload",
    ),
    field(
        "record",
        at!(VendorEntryHeader, record),
        FieldType::U32,
        V1_0,
        "record index, or 0xFFFFFFFF for the whole payload",
    ),
    field(
        "len",
        at!(VendorEntryHeader, len),
        FieldType::U32,
        V1_0,
        "data bytes that follow; zero padding to 8",
    ),
];

static SIG_BLOCK_FIELDS: [Field; 2] = [
    field(
        "sig",
        at!(Ed25519Block, sig),
        FieldType::Bytes,
        V1_0,
        "Ed25519 signature (RFC 8032, pure) of the ELF bytes before the block",
    ),
    field(
        "key_id",
        at!(Ed25519Block, key_id),
        FieldType::Bytes,
        V1_0,
        "first 8 bytes of SHA-256 of the signer's 32-byte public key",
    ),
];

static SIG_FOOTER_FIELDS: [Field; 4] = [
    field(
        "block_len",
        at!(SigFooter, block_len),
        FieldType::U32,
        V1_0,
        "bytes between the signed ELF bytes and the footer (72 for Ed25519)",
    ),
    field(
        "algorithm",
        at!(SigFooter, algorithm),
        FieldType::U16,
        V1_0,
        "signature algorithm: 1 = Ed25519",
    ),
    field(
        "version",
        at!(SigFooter, version),
        FieldType::U16,
        V1_0,
        "signature block version: 1",
    ),
    field(
        "magic",
        at!(SigFooter, magic),
        FieldType::Bytes,
        V1_0,
        "\"XSPLSIG\\0\": the last 8 bytes of a signed payload",
    ),
];

const V3_1: FormatVersion = FormatVersion::new(3, 1);

static EX_TABLE_FIELDS: [Field; 2] = [
    field(
        "insn",
        at!(ExTableEntry, insn),
        FieldType::Rel32,
        V3_1,
        "an instruction that may fault",
    ),
    field(
        "fixup",
        at!(ExTableEntry, fixup),
        FieldType::Rel32,
        V3_1,
        "where execution resumes after that fault",
    ),
];

static ALT_FIELDS: [Field; 5] = [
    field(
        "orig",
        at!(AltInstrEntry, orig),
        FieldType::Rel32,
        V3_1,
        "code to replace",
    ),
    field(
        "repl",
        at!(AltInstrEntry, repl),
        FieldType::Rel32,
        V3_1,
        "replacement bytes, in .xsplice.altinstr_replacement",
    ),
    field(
        "feature",
        at!(AltInstrEntry, feature),
        FieldType::U16,
        V3_1,
        "bits 0-14 CPU feature number; bit 15 = apply when the feature is absent",
    ),
    field(
        "orig_len",
        at!(AltInstrEntry, orig_len),
        FieldType::U8,
        V3_1,
        "bytes of code replaced",
    ),
    field(
        "repl_len",
        at!(AltInstrEntry, repl_len),
        FieldType::U8,
        V3_1,
        "bytes of replacement, at most orig_len; the rest is filled with NOPs",
    ),
];

static BUG_FRAME_FIELDS: [Field; 5] = [
    field(
        "loc",
        at!(BugFrameEntry, loc),
        FieldType::Rel32,
        V3_1,
        "the trap instruction (x86-64 ud2, AArch64 brk #0x800)",
    ),
    field(
        "msg",
        at!(BugFrameEntry, msg),
        FieldType::Rel32,
        V3_1,
        "NUL-terminated text in the payload",
    ),
    field(
        "line",
        at!(BugFrameEntry, line),
        FieldType::U32,
        V3_1,
        "source line",
    ),
    field(
        "kind",
        at!(BugFrameEntry, kind),
        FieldType::U16,
        V3_1,
        "0 BUG: report and stop; 1 WARN: report and resume after the trap",
    ),
    field(
        "reserved",
        at!(BugFrameEntry, reserved),
        FieldType::Reserved,
        V3_1,
        "reserved, must be zero",
    ),
];

/// Ledger layouts carry the ledger's own version, 1.0 (not a payload format version).
const L1_0: FormatVersion = FormatVersion::new(1, 0);

static LEDGER_HEADER_FIELDS: [Field; 6] = [
    field(
        "magic",
        at!(LedgerHeader, magic),
        FieldType::Bytes,
        L1_0,
        "\"XSPLEDG\\0\"",
    ),
    field(
        "version",
        at!(LedgerHeader, version),
        FieldType::U16,
        L1_0,
        "ledger version (1)",
    ),
    field(
        "header_size",
        at!(LedgerHeader, header_size),
        FieldType::U16,
        L1_0,
        "size of this header (32, or more under the size rule)",
    ),
    field(
        "entry_count",
        at!(LedgerHeader, entry_count),
        FieldType::U32,
        L1_0,
        "applied payloads that follow, bottom of the stack first",
    ),
    field(
        "total_size",
        at!(LedgerHeader, total_size),
        FieldType::U32,
        L1_0,
        "bytes of the whole ledger, this header included",
    ),
    field(
        "reserved",
        at!(LedgerHeader, reserved),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_ENTRY_FIELDS: [Field; 15] = [
    field(
        "entry_size",
        at!(LedgerEntry, entry_size),
        FieldType::U32,
        L1_0,
        "bytes of the whole entry, a multiple of 8",
    ),
    field(
        "header_size",
        at!(LedgerEntry, header_size),
        FieldType::U16,
        L1_0,
        "size of this fixed part (64, or more under the size rule)",
    ),
    field(
        "record_version",
        at!(LedgerEntry, record_version),
        FieldType::U16,
        L1_0,
        "record version of the payload",
    ),
    field(
        "format_major",
        at!(LedgerEntry, format_major),
        FieldType::U16,
        L1_0,
        "format major version of the payload",
    ),
    field(
        "format_minor",
        at!(LedgerEntry, format_minor),
        FieldType::U16,
        L1_0,
        "format minor version of the payload",
    ),
    field(
        "id_kind",
        at!(LedgerEntry, id_kind),
        FieldType::U8,
        L1_0,
        "1 = id is the payload's GNU build-id, 2 = SHA-256 of its file",
    ),
    field(
        "id_len",
        at!(LedgerEntry, id_len),
        FieldType::U8,
        L1_0,
        "bytes of id, at most 64",
    ),
    field(
        "depends_len",
        at!(LedgerEntry, depends_len),
        FieldType::U8,
        L1_0,
        "bytes of the build-id it depends on (0: none), at most 64",
    ),
    field(
        "reserved0",
        at!(LedgerEntry, reserved0),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
    field(
        "name_len",
        at!(LedgerEntry, name_len),
        FieldType::U16,
        L1_0,
        "bytes of the payload name, at most 4096",
    ),
    field(
        "region_count",
        at!(LedgerEntry, region_count),
        FieldType::U16,
        L1_0,
        "regions the payload occupies",
    ),
    field(
        "site_count",
        at!(LedgerEntry, site_count),
        FieldType::U32,
        L1_0,
        "patch sites written",
    ),
    field(
        "export_count",
        at!(LedgerEntry, export_count),
        FieldType::U32,
        L1_0,
        "symbols exported to payloads above",
    ),
    field(
        "hook_count",
        at!(LedgerEntry, hook_count),
        FieldType::U32,
        L1_0,
        "hooks kept for revert and unload",
    ),
    field(
        "reserved1",
        at!(LedgerEntry, reserved1),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_REGION_FIELDS: [Field; 6] = [
    field(
        "addr",
        at!(LedgerRegion, addr),
        FieldType::U64,
        L1_0,
        "start address",
    ),
    field(
        "size",
        at!(LedgerRegion, size),
        FieldType::U64,
        L1_0,
        "size in bytes",
    ),
    field(
        "kind",
        at!(LedgerRegion, kind),
        FieldType::U8,
        L1_0,
        "0 text, 1 read-only data, 2 writable data",
    ),
    field(
        "orig",
        at!(LedgerRegion, orig),
        FieldType::U8,
        L1_0,
        "former contents: 0 not kept, 1 every byte is fill, 2 the bytes follow",
    ),
    field(
        "fill",
        at!(LedgerRegion, fill),
        FieldType::U8,
        L1_0,
        "the former byte value when orig is 1",
    ),
    field(
        "reserved",
        at!(LedgerRegion, reserved),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_SITE_FIELDS: [Field; 6] = [
    field(
        "addr",
        at!(LedgerSite, addr),
        FieldType::U64,
        L1_0,
        "address of the site",
    ),
    field(
        "record",
        at!(LedgerSite, record),
        FieldType::U32,
        L1_0,
        "index of the record that patched it",
    ),
    field(
        "len",
        at!(LedgerSite, len),
        FieldType::U8,
        L1_0,
        "bytes written",
    ),
    field(
        "reserved0",
        at!(LedgerSite, reserved0),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
    field(
        "name_len",
        at!(LedgerSite, name_len),
        FieldType::U16,
        L1_0,
        "bytes of the record's function name, at most 127",
    ),
    field(
        "reserved1",
        at!(LedgerSite, reserved1),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_EXPORT_FIELDS: [Field; 4] = [
    field(
        "addr",
        at!(LedgerExport, addr),
        FieldType::U64,
        L1_0,
        "address",
    ),
    field(
        "size",
        at!(LedgerExport, size),
        FieldType::U64,
        L1_0,
        "size in bytes",
    ),
    field(
        "name_len",
        at!(LedgerExport, name_len),
        FieldType::U16,
        L1_0,
        "bytes of the name, at most 4096",
    ),
    field(
        "reserved",
        at!(LedgerExport, reserved),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_HOOK_FIELDS: [Field; 4] = [
    field(
        "addr",
        at!(LedgerHook, addr),
        FieldType::U64,
        L1_0,
        "address of int fn(void)",
    ),
    field(
        "index",
        at!(LedgerHook, index),
        FieldType::U32,
        L1_0,
        "index in its hook section",
    ),
    field(
        "point",
        at!(LedgerHook, point),
        FieldType::U8,
        L1_0,
        "0 load 1 preapply 2 apply 3 postapply 4 prerevert 5 revert 6 postrevert 7 unload",
    ),
    field(
        "reserved",
        at!(LedgerHook, reserved),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
];

static LEDGER_FOOTER_FIELDS: [Field; 4] = [
    field(
        "ledger_size",
        at!(LedgerFooter, ledger_size),
        FieldType::U32,
        L1_0,
        "bytes of the ledger before this footer",
    ),
    field(
        "version",
        at!(LedgerFooter, version),
        FieldType::U16,
        L1_0,
        "footer version (1)",
    ),
    field(
        "reserved",
        at!(LedgerFooter, reserved),
        FieldType::Reserved,
        L1_0,
        "reserved, must be zero",
    ),
    field(
        "magic",
        at!(LedgerFooter, magic),
        FieldType::Bytes,
        L1_0,
        "\"XSPLEDG\\0\"",
    ),
];

/// The v1 record layout.
pub static RECORD_V1: Layout = Layout {
    c_name: "xsplice_patch_func_v1",
    doc: "the seed's untagged 64-byte record",
    version: Some(RecordVersion::V1),
    size: size_of::<RecordV1>(),
    fields: &V1_FIELDS,
};

/// The v2 record layout.
pub static RECORD_V2: Layout = Layout {
    c_name: "xsplice_patch_func_v2",
    doc: "64 bytes with version, size and feature tags carved from the padding",
    version: Some(RecordVersion::V2),
    size: size_of::<RecordV2>(),
    fields: &V2_FIELDS,
};

/// The v3 record layout.
pub static RECORD_V3: Layout = Layout {
    c_name: "xsplice_patch_func_v3",
    doc: "the 128-byte padded successor",
    version: Some(RecordVersion::V3),
    size: size_of::<RecordV3>(),
    fields: &V3_FIELDS,
};

/// The ABI note descriptor layout.
pub static NOTE_DESC: Layout = Layout {
    c_name: "xsplice_note_desc",
    doc: "descriptor of the .note.xsplice ELF note (name \"XSPLICE\", type 1)",
    version: None,
    size: size_of::<NoteDesc>(),
    fields: &NOTE_FIELDS,
};

/// The vendor entry header layout.
pub static VENDOR_ENTRY: Layout = Layout {
    c_name: "xsplice_vendor_entry",
    doc: "header of one .xsplice.vendor entry, followed by len data bytes",
    version: None,
    size: size_of::<VendorEntryHeader>(),
    fields: &VENDOR_FIELDS,
};

/// The `.xsplice.ex_table` entry layout.
pub static EX_TABLE_ENTRY: Layout = Layout {
    c_name: "xsplice_ex_table_entry",
    doc: "one .xsplice.ex_table entry (format 3.1, incompat ARCH)",
    version: None,
    size: size_of::<ExTableEntry>(),
    fields: &EX_TABLE_FIELDS,
};

/// The `.xsplice.altinstructions` entry layout.
pub static ALT_ENTRY: Layout = Layout {
    c_name: "xsplice_alt_entry",
    doc: "one .xsplice.altinstructions entry (format 3.1, incompat ARCH)",
    version: None,
    size: size_of::<AltInstrEntry>(),
    fields: &ALT_FIELDS,
};

/// The `.xsplice.bug_frames` entry layout.
pub static BUG_FRAME_ENTRY: Layout = Layout {
    c_name: "xsplice_bug_frame_entry",
    doc: "one .xsplice.bug_frames entry (format 3.1, incompat ARCH)",
    version: None,
    size: size_of::<BugFrameEntry>(),
    fields: &BUG_FRAME_FIELDS,
};

/// The `xsplice_ledger_header` layout.
pub static LEDGER_HEADER: Layout = Layout {
    c_name: "xsplice_ledger_header",
    doc: "header of a ledger: what a patched target has applied",
    version: None,
    size: size_of::<LedgerHeader>(),
    fields: &LEDGER_HEADER_FIELDS,
};

/// The `xsplice_ledger_entry` layout.
pub static LEDGER_ENTRY: Layout = Layout {
    c_name: "xsplice_ledger_entry",
    doc: "one applied payload; followed by name, id, depends (padded to 8), regions, sites, exports, hooks",
    version: None,
    size: size_of::<LedgerEntry>(),
    fields: &LEDGER_ENTRY_FIELDS,
};

/// The `xsplice_ledger_region` layout.
pub static LEDGER_REGION: Layout = Layout {
    c_name: "xsplice_ledger_region",
    doc:
        "a region a payload occupies; followed by size original bytes (padded to 8) when orig is 2",
    version: None,
    size: size_of::<LedgerRegion>(),
    fields: &LEDGER_REGION_FIELDS,
};

/// The `xsplice_ledger_site` layout.
pub static LEDGER_SITE: Layout = Layout {
    c_name: "xsplice_ledger_site",
    doc: "a patch site; followed by len original bytes, len written bytes, the record name (padded to 8)",
    version: None,
    size: size_of::<LedgerSite>(),
    fields: &LEDGER_SITE_FIELDS,
};

/// The `xsplice_ledger_export` layout.
pub static LEDGER_EXPORT: Layout = Layout {
    c_name: "xsplice_ledger_export",
    doc: "a symbol a payload exports; followed by its name (padded to 8)",
    version: None,
    size: size_of::<LedgerExport>(),
    fields: &LEDGER_EXPORT_FIELDS,
};

/// The `xsplice_ledger_hook` layout.
pub static LEDGER_HOOK: Layout = Layout {
    c_name: "xsplice_ledger_hook",
    doc: "a hook kept for revert and unload",
    version: None,
    size: size_of::<LedgerHook>(),
    fields: &LEDGER_HOOK_FIELDS,
};

/// The `xsplice_ledger_footer` layout.
pub static LEDGER_FOOTER: Layout = Layout {
    c_name: "xsplice_ledger_footer",
    doc: "ends a ledger stored after an image's ELF bytes",
    version: None,
    size: size_of::<LedgerFooter>(),
    fields: &LEDGER_FOOTER_FIELDS,
};

/// The Ed25519 signature block (algorithm 1, version 1), appended after the
/// ELF bytes and followed by the [`SIG_FOOTER`].
pub static SIG_BLOCK: Layout = Layout {
    c_name: "xsplice_sig_block",
    doc: "Ed25519 signature block between a payload's ELF bytes and the signature footer",
    version: None,
    size: size_of::<Ed25519Block>(),
    fields: &SIG_BLOCK_FIELDS,
};

/// The footer that ends a signed payload.
pub static SIG_FOOTER: Layout = Layout {
    c_name: "xsplice_sig_footer",
    doc: "footer ending a signed payload: file = ELF bytes, block, footer",
    version: None,
    size: size_of::<SigFooter>(),
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

/// Every layout: the payload's (records first, then the signature block and
/// footer, then the architecture-specific table entries), then the ledger's.
pub fn all() -> &'static [&'static Layout] {
    &ALL
}

static ALL: [&Layout; 17] = [
    &RECORD_V1,
    &RECORD_V2,
    &RECORD_V3,
    &NOTE_DESC,
    &VENDOR_ENTRY,
    &SIG_BLOCK,
    &SIG_FOOTER,
    &EX_TABLE_ENTRY,
    &ALT_ENTRY,
    &BUG_FRAME_ENTRY,
    &LEDGER_HEADER,
    &LEDGER_ENTRY,
    &LEDGER_REGION,
    &LEDGER_SITE,
    &LEDGER_EXPORT,
    &LEDGER_HOOK,
    &LEDGER_FOOTER,
];

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
        agree!(EX_TABLE_ENTRY, ExTableEntry, [insn, fixup]);
        agree!(
            ALT_ENTRY,
            AltInstrEntry,
            [orig, repl, feature, orig_len, repl_len]
        );
        agree!(
            BUG_FRAME_ENTRY,
            BugFrameEntry,
            [loc, msg, line, kind, reserved]
        );
        agree!(
            LEDGER_HEADER,
            LedgerHeader,
            [
                magic,
                version,
                header_size,
                entry_count,
                total_size,
                reserved
            ]
        );
        agree!(
            LEDGER_ENTRY,
            LedgerEntry,
            [
                entry_size,
                header_size,
                record_version,
                format_major,
                format_minor,
                id_kind,
                id_len,
                depends_len,
                reserved0,
                name_len,
                region_count,
                site_count,
                export_count,
                hook_count,
                reserved1
            ]
        );
        agree!(
            LEDGER_REGION,
            LedgerRegion,
            [addr, size, kind, orig, fill, reserved]
        );
        agree!(
            LEDGER_SITE,
            LedgerSite,
            [addr, record, len, reserved0, name_len, reserved1]
        );
        agree!(
            LEDGER_EXPORT,
            LedgerExport,
            [addr, size, name_len, reserved]
        );
        agree!(LEDGER_HOOK, LedgerHook, [addr, index, point, reserved]);
        agree!(
            LEDGER_FOOTER,
            LedgerFooter,
            [ledger_size, version, reserved, magic]
        );
    }

    #[test]
    fn known_sizes_match_layouts() {
        for v in RecordVersion::ALL {
            assert_eq!(record(v).size, v.known_size());
        }
    }
}
