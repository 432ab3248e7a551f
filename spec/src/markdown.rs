//! Markdown tables generated from the layout table, the feature bits, the
//! section names and the vendor registry.
//!
//! Each table is also a named [`Block`](crate::Block) that [`crate::splice`]
//! puts between the markers of the same name in `SPEC.md` and `VENDORS.md`.

use std::fmt::Write as _;

use xsplice_abi::layout::{self, FieldType, Layout};
use xsplice_abi::{Compat, FeatureInfo, Incompat};

use crate::consts::sections;
use crate::header::layout_align;
use crate::registry::VENDOR_REGISTRY;

/// The block name of a layout: `record-v1`, `record-v2`, `record-v3` for
/// records, the C struct name without `xsplice_` and with dashes otherwise
/// (`note-desc`, `vendor-entry`).
///
/// ```
/// use xsplice_abi::layout;
/// assert_eq!(xsplice_spec::markdown::block_name(&layout::RECORD_V3), "record-v3");
/// assert_eq!(xsplice_spec::markdown::block_name(&layout::NOTE_DESC), "note-desc");
/// ```
pub fn block_name(layout: &Layout) -> String {
    match layout.version {
        Some(v) => format!("record-v{}", v.number()),
        None => layout
            .c_name
            .strip_prefix("xsplice_")
            .unwrap_or(layout.c_name)
            .replace('_', "-"),
    }
}

/// Escapes the characters that would break a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('*', "\\*")
}

fn type_cell(ty: FieldType, size: usize) -> String {
    match ty {
        FieldType::U8 => "`u8`".into(),
        FieldType::U16 => "`u16`".into(),
        FieldType::U32 => "`u32`".into(),
        FieldType::U64 => "`u64`".into(),
        FieldType::Pointer => "`u64` address (relocated)".into(),
        FieldType::Rel32 => "`i32` offset from the field (relocated)".into(),
        FieldType::Bytes => format!("`u8[{size}]`"),
        FieldType::Reserved => format!("`u8[{size}]` zero"),
        other => format!("`{}` ({size} bytes)", other.c_type()),
    }
}

fn feature_name(bit: Incompat) -> String {
    bit.info().map_or_else(
        || format!("`{:#x}`", bit.bits()),
        |i| format!("`{}`", i.name),
    )
}

/// The caption of a layout: its C name, size, alignment and meaning.
pub fn layout_caption(layout: &Layout) -> String {
    let mut s = format!(
        "`struct {}`: {} bytes, alignment {}; {}.",
        layout.c_name,
        layout.size,
        layout_align(layout),
        layout.doc
    );
    if let Some(v) = layout.version {
        let _ = write!(
            s,
            " Record version {}, version tag {} at offset 40.",
            v.number(),
            v.tag()
        );
    }
    s
}

/// The field table of one layout: offset, size, field, type, since,
/// deprecated, feature bit, meaning.
pub fn field_table(layout: &Layout) -> String {
    let mut s = String::from(
        "| offset | size | field | type | since | deprecated | feature bit | meaning |\n\
         |---:|---:|---|---|---|---|---|---|\n",
    );
    for f in layout.fields {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {} | {} | {} | {} | {} |",
            f.offset,
            f.size,
            f.name,
            type_cell(f.ty, f.size),
            f.since,
            f.deprecated
                .map_or_else(|| "—".to_string(), |v| v.to_string()),
            f.feature.map_or_else(|| "—".to_string(), feature_name),
            cell(f.doc),
        );
    }
    s
}

/// Caption and field table of one layout: the content of its block.
pub fn layout_block(layout: &Layout) -> String {
    format!("{}\n\n{}", layout_caption(layout), field_table(layout))
}

fn feature_table(info: &[FeatureInfo], prefix: &str) -> String {
    let mut s = String::from(
        "| bit | mask | name | C macro | since | deprecated | oldest record | meaning |\n\
         |---:|---|---|---|---|---|---|---|\n",
    );
    for i in info {
        let _ = writeln!(
            s,
            "| {} | `{:#x}` | `{}` | `{}_{}` | {} | {} | v{} | {} |",
            i.bit,
            1u64 << i.bit,
            i.name,
            prefix,
            i.name,
            i.since,
            i.deprecated
                .map_or_else(|| "—".to_string(), |v| v.to_string()),
            i.min_record.number(),
            cell(i.doc),
        );
    }
    s
}

/// The table of incompat feature bits.
pub fn incompat_table() -> String {
    feature_table(Incompat::INFO, "XSPLICE_INCOMPAT")
}

/// The table of compat feature bits (a sentence while none is defined).
pub fn compat_table() -> String {
    if Compat::INFO.is_empty() {
        format!(
            "No compat bit is defined in format {}; every compat bit is unknown to a \
             loader of this format and is ignored (and reported by `check`).\n",
            xsplice_abi::FormatVersion::NEWEST
        )
    } else {
        feature_table(Compat::INFO, "XSPLICE_COMPAT")
    }
}

/// The table of section names.
pub fn sections_table() -> String {
    let mut s = String::from("| section | C macro | contents |\n|---|---|---|\n");
    for sec in sections() {
        let _ = writeln!(
            s,
            "| `{}` | `{}` | {} |",
            sec.name,
            sec.c_macro,
            cell(sec.contents)
        );
    }
    s
}

/// The vendor-id registry table.
pub fn vendor_registry_table() -> String {
    let mut s = String::from("| vendor id | C macro | holder |\n|---|---|---|\n");
    for r in &VENDOR_REGISTRY {
        let ids = if r.first == r.last {
            format!("`{:#x}`", r.first)
        } else {
            format!("`{:#x}`–`{:#x}`", r.first, r.last)
        };
        let mac = r
            .c_suffix
            .map_or_else(|| "—".to_string(), |m| format!("`XSPLICE_VENDOR_ID_{m}`"));
        let _ = writeln!(s, "| {ids} | {mac} | {} |", cell(r.holder));
    }
    s
}

/// `fields.md`: every layout's table, the feature bits and the section
/// names, as one Markdown document.
pub fn fields_markdown() -> String {
    let mut s = String::from(
        "# xsplice wire layouts\n\n\
         <!-- GENERATED by `cargo run -p xsplice-spec --bin gen` from the layout table of \
         xsplice-abi (abi/src/layout.rs). Do not edit. -->\n\n\
         Every integer is little-endian; every layout is naturally aligned (each field's \
         offset is a multiple of its size), so the C structs of `xsplice_abi.h` need no \
         packing. \"since\" is the format version that introduced the field at that \
         offset. The normative text is `spec/SPEC.md`.\n",
    );
    for l in layout::all() {
        let title = match l.version {
            Some(v) => format!("Record version {} (`{}`)", v.number(), l.c_name),
            None => format!("`{}`", l.c_name),
        };
        let _ = write!(s, "\n## {title}\n\n{}", layout_block(l));
    }
    let _ = write!(s, "\n## Incompat feature bits\n\n{}", incompat_table());
    let _ = write!(s, "\n## Compat feature bits\n\n{}", compat_table());
    let _ = write!(s, "\n## Sections\n\n{}", sections_table());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_row() {
        for l in layout::all() {
            let t = field_table(l);
            assert_eq!(t.lines().count(), 2 + l.fields.len(), "{}", l.c_name);
            for f in l.fields {
                assert!(t.contains(&format!("| {} | {} | `{}` |", f.offset, f.size, f.name)));
            }
        }
    }

    #[test]
    fn alignment_in_caption_matches_c() {
        assert!(layout_caption(&layout::RECORD_V3).contains("alignment 8"));
        assert!(layout_caption(&layout::NOTE_DESC).contains("alignment 4"));
    }
}
