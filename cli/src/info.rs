//! `xsplice layout`, `xsplice schema`: what the libraries know about the
//! format, printed.

use serde::Serialize;
use xsplice_abi::layout::{self, Field, Layout};
use xsplice_abi::{FormatVersion, RecordVersion};

use crate::error::CliError;
use crate::inspect::to_json;
use crate::Output;

/// One field of `layout --json`.
#[derive(Debug, Serialize)]
struct FieldJson {
    name: &'static str,
    offset: usize,
    size: usize,
    #[serde(rename = "type")]
    ty: String,
    since: String,
    deprecated: Option<String>,
    feature: Option<&'static str>,
    doc: &'static str,
}

/// One layout of `layout --json`.
#[derive(Debug, Serialize)]
struct LayoutJson {
    c_name: &'static str,
    doc: &'static str,
    record_version: Option<u16>,
    size: usize,
    fields: Vec<FieldJson>,
}

fn version_string(v: FormatVersion) -> String {
    v.to_string()
}

fn feature_name(f: &Field) -> Option<&'static str> {
    f.feature.and_then(|b| b.info()).map(|i| i.name)
}

fn layout_json(l: &Layout) -> LayoutJson {
    LayoutJson {
        c_name: l.c_name,
        doc: l.doc,
        record_version: l.version.map(RecordVersion::number),
        size: l.size,
        fields: l
            .fields
            .iter()
            .map(|f| FieldJson {
                name: f.name,
                offset: f.offset,
                size: f.size,
                ty: f.type_name().to_string(),
                since: version_string(f.since),
                deprecated: f.deprecated.map(version_string),
                feature: feature_name(f),
                doc: f.doc,
            })
            .collect(),
    }
}

fn layout_text(l: &Layout) -> String {
    let mut o = format!("{} ({} bytes): {}\n", l.c_name, l.size, l.doc);
    o.push_str(&format!(
        "  {:>6} {:>5}  {:<14}{:<14}{:<7}{:<14}{}\n",
        "offset", "size", "type", "field", "since", "feature", "meaning"
    ));
    for f in l.fields {
        let mut since = f.since.to_string();
        if let Some(d) = f.deprecated {
            since.push_str(&format!(" (deprecated {d})"));
        }
        o.push_str(&format!(
            "  {:>6} {:>5}  {:<14}{:<14}{:<7}{:<14}{}\n",
            f.offset,
            f.size,
            f.type_name().to_string(),
            f.name,
            since,
            feature_name(f).unwrap_or("-"),
            f.doc
        ));
    }
    o
}

/// Every layout, or the record layout of one version.
pub(crate) fn layout(version: Option<u16>, json: bool) -> Result<Output, CliError> {
    let layouts: Vec<&'static Layout> = match version {
        Some(n) => {
            let v = RecordVersion::from_number(n)
                .ok_or_else(|| CliError::new(format!("no record version {n}")))?;
            vec![layout::record(v)]
        }
        None => layout::all().to_vec(),
    };
    let mut out = Output::default();
    if json {
        let docs: Vec<LayoutJson> = layouts.iter().map(|l| layout_json(l)).collect();
        out.line(match (version, docs.as_slice()) {
            (Some(_), [one]) => to_json(one)?,
            _ => to_json(&docs)?,
        });
    } else {
        let texts: Vec<String> = layouts.iter().map(|l| layout_text(l)).collect();
        out.stdout = texts.join("\n");
    }
    Ok(out)
}

/// Which schema `xsplice schema` prints.
#[derive(Debug, Default)]
pub(crate) struct SchemaChoice {
    /// A raw record layout.
    pub version: Option<u16>,
    /// The decoded ABI note.
    pub note: bool,
    /// The raw note descriptor.
    pub note_desc: bool,
    /// The raw vendor entry header.
    pub vendor: bool,
    /// The canonical view.
    pub view: bool,
}

/// Prints a JSON Schema, byte for byte what `spec/generated/` holds.
pub(crate) fn schema(c: &SchemaChoice) -> Result<Output, CliError> {
    let value = if c.note {
        xsplice_spec::schema_note()
    } else if c.note_desc {
        xsplice_spec::schema_layout(&layout::NOTE_DESC)
    } else if c.vendor {
        xsplice_spec::schema_layout(&layout::VENDOR_ENTRY)
    } else if c.view {
        xsplice_spec::schema_patch_func()
    } else {
        let n = c.version.unwrap_or(RecordVersion::LATEST.number());
        let v = RecordVersion::from_number(n)
            .ok_or_else(|| CliError::new(format!("no record version {n}")))?;
        xsplice_spec::schema_record(v)
    };
    Ok(Output {
        stdout: xsplice_spec::to_pretty_json(&value),
        stderr: Vec::new(),
    })
}
