//! The C11 header `xsplice_abi.h`, generated from the layout table.

use std::fmt::Write as _;

use xsplice_abi::layout::{self, FieldType, Layout};
use xsplice_abi::vendor;
use xsplice_abi::{Compat, FormatVersion, Incompat, RecordVersion, EXPECT_MAX};

use crate::consts::{
    sections, DEPENDS_NOTE_NAME, DEPENDS_NOTE_TYPE, NAME_MAX, PATCH_SIZE_AARCH64,
    PATCH_SIZE_X86_64, V1_DRAFT_SIZE,
};
use crate::registry::VENDOR_REGISTRY;

/// The natural alignment of a field type in C (LP64).
pub(crate) fn c_align(ty: FieldType) -> usize {
    match ty {
        FieldType::U8 | FieldType::Bytes | FieldType::Reserved => 1,
        FieldType::U16 => 2,
        FieldType::U32 => 4,
        FieldType::U64 | FieldType::Pointer => 8,
    }
}

/// The alignment of a layout's C struct: the largest alignment of its fields.
pub(crate) fn layout_align(layout: &Layout) -> usize {
    layout
        .fields
        .iter()
        .map(|f| c_align(f.ty))
        .max()
        .unwrap_or(1)
}

/// Whether a C struct declared field by field lands exactly on the layout:
/// every field offset is a multiple of its type's alignment, the fields
/// tile the struct with no gap (so the compiler inserts no padding), and the
/// size is a multiple of the struct's alignment (no tail padding). When this
/// holds, the header needs no `packed` attribute.
///
/// ```
/// for l in xsplice_abi::layout::all() {
///     assert!(xsplice_spec::is_naturally_aligned(l), "{}", l.c_name);
/// }
/// ```
pub fn is_naturally_aligned(layout: &Layout) -> bool {
    let mut at = 0;
    for f in layout.fields {
        if f.offset != at || f.offset % c_align(f.ty) != 0 {
            return false;
        }
        at = f.offset + f.size;
    }
    at == layout.size && layout.size % layout_align(layout) == 0
}

/// The `#define` prefix of a layout's size constant: `XSPLICE_PATCH_FUNC_V3`.
fn upper(c_name: &str) -> String {
    c_name.to_ascii_uppercase()
}

/// A C string literal for an ASCII name (the names of the format are ASCII
/// without quotes or backslashes; anything else is escaped octally).
fn c_string(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\{b:03o}");
        }
    }
    s.push('"');
    s
}

fn comment_doc(doc: &str) -> String {
    doc.replace("*/", "* /")
}

fn struct_decl(out: &mut String, l: &Layout) {
    let what = match l.version {
        Some(v) => format!(
            "Record version {} (version tag {}), {} bytes",
            v.number(),
            v.tag(),
            l.size
        ),
        None => format!("{} bytes", l.size),
    };
    let _ = writeln!(out, "/* {what}: {}. */", comment_doc(l.doc));
    let _ = writeln!(out, "struct {} {{", l.c_name);
    for f in l.fields {
        let decl = if f.ty.is_array() {
            format!("{} {}[{}];", f.ty.c_type(), f.name, f.size)
        } else {
            format!("{} {};", f.ty.c_type(), f.name)
        };
        let mut note = String::new();
        if let Some(bit) = f.feature.and_then(|b| b.info()) {
            let _ = write!(note, "[{}] ", bit.name);
        }
        if f.since != FormatVersion::new(1, 0) || l.version.is_none() {
            let _ = write!(note, "since {}; ", f.since);
        }
        if let Some(d) = f.deprecated {
            let _ = write!(note, "deprecated since {d}; ");
        }
        let _ = writeln!(
            out,
            "\t{decl:<24} /* {:>3} {note}{} */",
            f.offset,
            comment_doc(f.doc)
        );
    }
    out.push_str("};\n");
    let n = l.c_name;
    let _ = writeln!(
        out,
        "_Static_assert(sizeof(struct {n}) == {}, \"{n}: size\");",
        l.size
    );
    let align = layout_align(l);
    let assert_align =
        format!("_Static_assert(_Alignof(struct {n}) == {align}, \"{n}: alignment\");");
    if align == 8 {
        // i386 aligns uint64_t to 4 inside structs; offsets and sizes are
        // the same there, only the struct's alignment differs.
        let _ = writeln!(
            out,
            "#if defined(__LP64__) || defined(_LP64)\n{assert_align}\n#endif"
        );
    } else {
        let _ = writeln!(out, "{assert_align}");
    }
    for f in l.fields {
        let _ = writeln!(
            out,
            "_Static_assert(offsetof(struct {n}, {f}) == {o}, \"{n}.{f}: offset\");",
            f = f.name,
            o = f.offset
        );
        let _ = writeln!(
            out,
            "_Static_assert(sizeof(((struct {n} *)0)->{f}) == {s}, \"{n}.{f}: size\");",
            f = f.name,
            s = f.size
        );
    }
    let _ = writeln!(out, "#define {}_SIZE {}", upper(n), l.size);
    out.push('\n');
}

/// The fixed beginning of the header.
const TOP: &str = r#"/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * xsplice_abi.h - the xsplice live-patching payload wire format, for C.
 *
 * GENERATED by `cargo run -p xsplice-spec --bin gen` from the layout table of
 * the xsplice-abi crate (abi/src/layout.rs). Do not edit: change the table and
 * regenerate. The normative text is spec/SPEC.md.
 *
 * C11. Little-endian ELF64 only (x86-64, AArch64). Every layout is naturally
 * aligned, so the structs need no packing attribute; the _Static_asserts below
 * prove the offsets on the compiler at hand.
 *
 * Address fields (new_addr, old_addr, name) are uint64_t, not pointers, so the
 * struct is the same on every LP64 compiler. Initialise them with
 * XSPLICE_ADDR(sym): gcc and clang accept (uint64_t)(uintptr_t)&sym in a static
 * initializer and emit an R_X86_64_64 / R_AARCH64_ABS64 relocation, which the
 * loader resolves (spec/tests/c_header.rs checks this with gcc). On LP64,
 * (unsigned long)&sym is the same thing. A string literal works the same way:
 *
 *   static struct xsplice_patch_func_v3 funcs[]
 *   __attribute__((section(XSPLICE_SEC_FUNCS), used, aligned(8))) = {
 *       .new_addr = XSPLICE_ADDR(my_fixed_fn), .new_size = 48,
 *       .old_addr = 0, .old_size = 64, .name = XSPLICE_ADDR("fn"),
 *       .version = XSPLICE_RECORD_TAG_V3, .size = XSPLICE_RECORD_SIZE_V3,
 *   };
 */
#ifndef XSPLICE_ABI_H
#define XSPLICE_ABI_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "xsplice payloads are little-endian");
#endif

/* Address of a function or object as a uint64_t record field (an address
 * constant: the compiler emits an ABS64 relocation for it). */
#define XSPLICE_ADDR(sym) ((uint64_t)(uintptr_t)(sym))

"#;

/// The C11 header `xsplice_abi.h`: a struct per layout of the table, with
/// `_Static_assert`s on the size, alignment, and the offset and size of
/// every field, and `#define`s for section names, the ABI note, feature
/// bits, record versions and sizes, and vendor-entry constants.
///
/// Address fields (`new_addr`, `old_addr`, `name`) are `uint64_t`; a static
/// initializer writes `XSPLICE_ADDR(sym)`, i.e. `(uint64_t)(uintptr_t)&sym`,
/// which gcc and clang accept as an address constant on LP64 and emit as an
/// `R_X86_64_64` / `R_AARCH64_ABS64` relocation.
pub fn header() -> String {
    let mut h = String::from(TOP);

    h.push_str("/* ---- format versions -------------------------------------------------- */\n\n");
    let _ = writeln!(
        h,
        "/* Supported format range: >={}.0.0, <{}.0.0. */",
        FormatVersion::OLDEST.major,
        FormatVersion::NEWEST.major + 1
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_FORMAT_MAJOR_OLDEST {}",
        FormatVersion::OLDEST.major
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_FORMAT_MAJOR_NEWEST {}",
        FormatVersion::NEWEST.major
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_FORMAT_MINOR_NEWEST {}",
        FormatVersion::NEWEST.minor
    );
    h.push('\n');

    h.push_str("/* ---- record versions and sizes ---------------------------------------- */\n\n");
    if let Some(f) = layout::RECORD_V2.field("version") {
        let _ = writeln!(
            h,
            "#define XSPLICE_RECORD_TAG_OFFSET {} /* u16 version tag; 0 = untagged v1 */",
            f.offset
        );
    }
    if let Some(f) = layout::RECORD_V2.field("size") {
        let _ = writeln!(h, "#define XSPLICE_RECORD_SIZE_OFFSET {}", f.offset);
    }
    for v in RecordVersion::ALL {
        let _ = writeln!(
            h,
            "#define XSPLICE_RECORD_TAG_V{n} {t} /* value at offset 40 */\n\
             #define XSPLICE_RECORD_SIZE_V{n} {s}",
            n = v.number(),
            t = v.tag(),
            s = layout::record(v).size
        );
    }
    let _ = writeln!(
        h,
        "#define XSPLICE_RECORD_SIZE_V1_DRAFT {V1_DRAFT_SIZE} /* sh_entsize of the seed's pad[64] draft */"
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_NAME_MAX {NAME_MAX} /* bytes of a name, NUL excluded */"
    );
    let _ = writeln!(h, "#define XSPLICE_EXPECT_MAX {EXPECT_MAX}");
    let _ = writeln!(
        h,
        "#define XSPLICE_PATCH_SIZE_X86_64 {PATCH_SIZE_X86_64} /* e9 rel32 */"
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_PATCH_SIZE_AARCH64 {PATCH_SIZE_AARCH64} /* b imm26 */"
    );
    h.push('\n');

    h.push_str(
        "/* ---- feature bits ------------------------------------------------------ */\n\n",
    );
    h.push_str("/* incompat: a loader that meets an unknown bit refuses the payload. */\n");
    for i in Incompat::INFO {
        let _ = writeln!(
            h,
            "#define XSPLICE_INCOMPAT_{} (1u << {}) /* since {}: {} */",
            i.name,
            i.bit,
            i.since,
            comment_doc(i.doc)
        );
    }
    let _ = writeln!(
        h,
        "#define XSPLICE_INCOMPAT_KNOWN {:#x}u",
        Incompat::all().bits()
    );
    h.push_str("/* compat: unknown bits are ignored. */\n");
    for i in Compat::INFO {
        let _ = writeln!(
            h,
            "#define XSPLICE_COMPAT_{} (1u << {}) /* since {}: {} */",
            i.name,
            i.bit,
            i.since,
            comment_doc(i.doc)
        );
    }
    let known_compat = Compat::INFO.iter().fold(0u32, |a, i| a | (1u32 << i.bit));
    let _ = writeln!(h, "#define XSPLICE_COMPAT_KNOWN {known_compat:#x}u");
    h.push('\n');

    h.push_str(
        "/* ---- section names ----------------------------------------------------- */\n\n",
    );
    for s in sections() {
        let _ = writeln!(h, "#define {} \"{}\"", s.c_macro, s.name);
    }
    h.push_str("/* Sections whose name starts with this prefix are mapped read-only. */\n");
    h.push_str("#define XSPLICE_SEC_PREFIX \".xsplice.\"\n\n");

    h.push_str(
        "/* ---- notes ------------------------------------------------------------- */\n\n",
    );
    let name = xsplice_abi::NOTE_NAME;
    let bare = name.strip_suffix(b"\0").unwrap_or(name);
    let _ = writeln!(
        h,
        "#define XSPLICE_NOTE_NAME {} /* namesz {} with the NUL */",
        c_string(bare),
        name.len()
    );
    let _ = writeln!(h, "#define XSPLICE_NOTE_NAMESZ {}", name.len());
    let _ = writeln!(h, "#define XSPLICE_NOTE_TYPE {}", xsplice_abi::NOTE_TYPE);
    let _ = writeln!(
        h,
        "#define XSPLICE_NOTE_DESC_SIZE {}",
        xsplice_abi::NOTE_DESC_SIZE
    );
    let gnu = DEPENDS_NOTE_NAME;
    let gnu_bare = gnu.strip_suffix(b"\0").unwrap_or(gnu);
    let _ = writeln!(
        h,
        "#define XSPLICE_DEPENDS_NOTE_NAME {} /* .xsplice.depends: a GNU build-id note */",
        c_string(gnu_bare)
    );
    let _ = writeln!(h, "#define XSPLICE_DEPENDS_NOTE_NAMESZ {}", gnu.len());
    let _ = writeln!(
        h,
        "#define XSPLICE_DEPENDS_NOTE_TYPE {DEPENDS_NOTE_TYPE} /* NT_GNU_BUILD_ID */"
    );
    h.push('\n');

    h.push_str(
        "/* ---- vendor extensions ------------------------------------------------- */\n\n",
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_VENDOR_HEADER_SIZE {}",
        vendor::HEADER_SIZE
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_VENDOR_ALIGN {} /* entries are zero-padded to this */",
        vendor::ALIGN
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_VENDOR_FLAG_CRITICAL {:#06x}u",
        vendor::FLAG_CRITICAL
    );
    let _ = writeln!(
        h,
        "#define XSPLICE_VENDOR_WHOLE_PAYLOAD {:#010X}u /* record: the whole payload */",
        vendor::WHOLE_PAYLOAD
    );
    for r in &VENDOR_REGISTRY {
        if let Some(m) = r.c_suffix {
            let _ = writeln!(
                h,
                "#define XSPLICE_VENDOR_ID_{m} {:#x}u /* {} */",
                r.first,
                comment_doc(r.holder)
            );
        }
    }
    let _ = writeln!(
        h,
        "#define XSPLICE_VENDOR_PADDED(len) (((len) + {a}u) & ~{a}u)",
        a = vendor::ALIGN - 1
    );
    h.push('\n');

    signature_defines(&mut h);

    h.push_str(
        "/* ---- layouts ----------------------------------------------------------- */\n\n",
    );
    for l in layout::all() {
        struct_decl(&mut h, l);
    }
    h.push_str(ABI_NOTE);
    h.push_str("#endif /* XSPLICE_ABI_H */\n");
    h
}

/// The constants of the signature trailer (`file = S || block || footer`).
fn signature_defines(h: &mut String) {
    use xsplice_abi::signature as sig;
    h.push_str(
        "/* ---- signatures: file = ELF bytes || struct xsplice_sig_block || struct xsplice_sig_footer */\n\n",
    );
    let magic = sig::MAGIC.strip_suffix(b"\0").unwrap_or(sig::MAGIC);
    let defines = [
        (
            "MAGIC",
            c_string(magic),
            "8 bytes with the NUL: the file's last bytes",
        ),
        (
            "ALG_ED25519",
            sig::ALGORITHM_ED25519.to_string(),
            "RFC 8032, pure: the message is the ELF bytes",
        ),
        ("VERSION", sig::VERSION.to_string(), "the block version"),
        (
            "ED25519_BLOCK_LEN",
            format!("{}u", sig::ED25519_BLOCK_LEN),
            "block_len of an Ed25519 block: sig and key_id",
        ),
        (
            "KEY_ID_SIZE",
            sig::KEY_ID_SIZE.to_string(),
            "SHA-256 of the raw public key, first bytes",
        ),
    ];
    for (name, value, note) in defines {
        let _ = writeln!(h, "#define XSPLICE_SIG_{name} {value} /* {note} */");
    }
    h.push('\n');
}

/// The whole `.note.xsplice` ELF note as one C object: what a C author
/// places in the section (the note framing is ELF, so the layout table,
/// which knows only the descriptor, does not carry it).
const ABI_NOTE: &str = "\
/* The whole ABI note: the ELF note header, the name and the descriptor.
 * Define one, 4-byte aligned, in section XSPLICE_SEC_NOTE:
 *   static const struct xsplice_abi_note note
 *       __attribute__((section(XSPLICE_SEC_NOTE), used, aligned(4))) = {
 *       XSPLICE_NOTE_NAMESZ, XSPLICE_NOTE_DESC_SIZE, XSPLICE_NOTE_TYPE,
 *       XSPLICE_NOTE_NAME, { 3, 0, 3, XSPLICE_RECORD_SIZE_V3, 0, 0, { 0 } } };
 */
struct xsplice_abi_note {
\tuint32_t namesz; /* XSPLICE_NOTE_NAMESZ */
\tuint32_t descsz; /* XSPLICE_NOTE_DESC_SIZE */
\tuint32_t type; /* XSPLICE_NOTE_TYPE */
\tchar name[8]; /* XSPLICE_NOTE_NAME, NUL included */
\tstruct xsplice_note_desc desc;
};
_Static_assert(sizeof(struct xsplice_abi_note) == 44, \"xsplice_abi_note: size\");
_Static_assert(offsetof(struct xsplice_abi_note, name) == 12, \"xsplice_abi_note.name: offset\");
_Static_assert(offsetof(struct xsplice_abi_note, desc) == 20, \"xsplice_abi_note.desc: offset\");

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_is_naturally_aligned() {
        for l in layout::all() {
            assert!(is_naturally_aligned(l), "{}", l.c_name);
        }
    }

    #[test]
    fn header_has_every_field_assert() {
        let h = header();
        for l in layout::all() {
            for f in l.fields {
                let needle = format!(
                    "_Static_assert(offsetof(struct {}, {}) == {},",
                    l.c_name, f.name, f.offset
                );
                assert!(h.contains(&needle), "{needle}");
            }
        }
        assert!(h.contains("#define XSPLICE_INCOMPAT_NOP (1u << 0)"));
        assert!(h.contains("#define XSPLICE_VENDOR_WHOLE_PAYLOAD 0xFFFFFFFFu"));
        assert!(h.contains("#define XSPLICE_NOTE_NAME \"XSPLICE\""));
        assert!(!h.contains("{{"));
    }
}
