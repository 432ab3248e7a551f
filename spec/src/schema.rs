//! JSON Schemas: the canonical view and the ABI note through schemars, and
//! one schema per raw layout built from the layout table.

use std::fmt;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use xsplice_abi::layout::{self, Field, FieldType, Layout};
use xsplice_abi::{AbiNote, Incompat, PatchFunc, RecordVersion, EXPECT_MAX};

/// The JSON Schema dialect of every schema generated here.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The largest value of an unsigned integer of `size` bytes.
fn max_for(size: usize) -> u64 {
    match size {
        1 => u64::from(u8::MAX),
        2 => u64::from(u16::MAX),
        4 => u64::from(u32::MAX),
        _ => u64::MAX,
    }
}

/// Every value made of the bits of `mask`, in increasing order (the set of
/// incompat values a record version may carry; at most 2^popcount values).
fn subsets(mask: u32) -> Vec<u32> {
    let mut out = vec![0u32];
    let mut sub = mask;
    while sub != 0 {
        out.push(sub);
        sub = (sub - 1) & mask;
    }
    out.sort_unstable();
    out
}

fn field_schema(layout: &Layout, f: &Field) -> Value {
    let mut s = Map::new();
    s.insert("description".into(), json!(f.doc));
    s.insert("x-offset".into(), json!(f.offset));
    s.insert("x-size".into(), json!(f.size));
    s.insert("x-type".into(), json!(f.type_name().to_string()));
    s.insert("x-since".into(), json!(f.since.to_string()));
    if let Some(d) = f.deprecated {
        s.insert("x-deprecated".into(), json!(d.to_string()));
        s.insert("deprecated".into(), json!(true));
    }
    if let Some(info) = f.feature.and_then(|b| b.info()) {
        s.insert("x-feature".into(), json!(info.name));
    }
    match f.ty {
        FieldType::Bytes | FieldType::Reserved => {
            let item = if f.ty == FieldType::Reserved {
                json!({ "const": 0 })
            } else {
                json!({ "type": "integer", "minimum": 0, "maximum": 255 })
            };
            s.insert("type".into(), json!("array"));
            s.insert("items".into(), item);
            s.insert("minItems".into(), json!(f.size));
            s.insert("maxItems".into(), json!(f.size));
            if f.ty == FieldType::Reserved {
                s.insert("x-reserved".into(), json!(true));
            }
        }
        _ => {
            s.insert("type".into(), json!("integer"));
            s.insert("minimum".into(), json!(0));
            s.insert("maximum".into(), json!(max_for(f.size)));
            if f.ty == FieldType::Pointer {
                s.insert("x-relocated".into(), json!(true));
            }
        }
    }
    // Constraints the layout table implies for particular fields.
    match (layout.version, f.name) {
        (Some(v), "version") => {
            s.insert("const".into(), json!(v.tag()));
        }
        (Some(v), "size") => {
            // The size rule: a larger record is accepted when its unknown
            // tail is zero; a smaller one never.
            s.insert("minimum".into(), json!(v.known_size()));
        }
        (Some(v), "incompat") => {
            s.insert(
                "enum".into(),
                json!(subsets(Incompat::allowed_in(v).bits())),
            );
        }
        (None, "incompat") => {
            s.insert("enum".into(), json!(subsets(Incompat::all().bits())));
        }
        (_, "expect_len") => {
            s.insert("maximum".into(), json!(EXPECT_MAX));
        }
        (None, "magic") if layout.c_name == layout::SIG_FOOTER.c_name => {
            s.insert(
                "const".into(),
                json!(xsplice_abi::signature::MAGIC.to_vec()),
            );
        }
        (None, "record_version") => {
            let numbers: Vec<u16> = RecordVersion::ALL.iter().map(|v| v.number()).collect();
            s.insert("enum".into(), json!(numbers));
        }
        _ => {}
    }
    Value::Object(s)
}

/// The JSON Schema of a raw layout: an object with one property per field
/// (integers bounded by their size, byte arrays of their exact length,
/// reserved bytes `const 0`), each annotated with `x-offset`, `x-size`,
/// `x-type`, `x-since` and, where it applies, `x-feature` and
/// `x-deprecated`. The instances it describes are what [`layout_to_json`]
/// produces from the raw bytes.
///
/// Besides the field types it states what the layout table implies: the
/// version tag's value, the size rule's minimum, the incompat values a
/// version can carry, and `expect_len ≤ 32`. Rules across fields (a field
/// non-zero only under its feature bit, `expect` zero past `expect_len`)
/// are not expressible in JSON Schema and are stated in `SPEC.md`.
pub fn schema_layout(layout: &Layout) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in layout.fields {
        props.insert(f.name.into(), field_schema(layout, f));
        required.push(f.name);
    }
    let mut s = Map::new();
    s.insert("$schema".into(), json!(DIALECT));
    s.insert("title".into(), json!(layout.c_name));
    let mut description = format!("{} ({} bytes", layout.doc, layout.size);
    if let Some(v) = layout.version {
        let _ = write!(description, ", record version {}", v.number());
    }
    description.push_str(
        "). Generated from the xsplice-abi layout table by `cargo run -p xsplice-spec --bin gen`.",
    );
    s.insert("description".into(), json!(description));
    s.insert("type".into(), json!("object"));
    s.insert("x-c-struct".into(), json!(layout.c_name));
    s.insert("x-size".into(), json!(layout.size));
    if let Some(v) = layout.version {
        s.insert("x-record-version".into(), json!(v.number()));
        s.insert("x-version-tag".into(), json!(v.tag()));
    }
    s.insert("properties".into(), Value::Object(props));
    s.insert("required".into(), json!(required));
    s.insert("additionalProperties".into(), json!(false));
    Value::Object(s)
}

/// The JSON Schema of the raw record fields of one record version
/// (`record-v1.schema.json` …). See [`schema_layout`].
pub fn schema_record(version: RecordVersion) -> Value {
    schema_layout(layout::record(version))
}

/// The JSON Schema (schemars) of the canonical view [`PatchFunc`], as
/// serialized by `xsplice-abi`'s `serde` feature.
pub fn schema_patch_func() -> Value {
    Value::from(schemars::schema_for!(PatchFunc))
}

/// The JSON Schema (schemars) of the decoded ABI note [`AbiNote`].
pub fn schema_note() -> Value {
    Value::from(schemars::schema_for!(AbiNote))
}

/// Why raw bytes could not be turned into the JSON object of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawJsonError {
    /// Fewer bytes than the layout's size.
    Truncated {
        /// The layout's size.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
}

impl fmt::Display for RawJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawJsonError::Truncated { needed, available } => {
                write!(f, "layout needs {needed} bytes, {available} available")
            }
        }
    }
}

impl std::error::Error for RawJsonError {}

/// The raw fields of `bytes` read as `layout`: a JSON object with one
/// integer (little-endian) or byte array per field, exactly the instances
/// [`schema_layout`] describes. Bytes past the layout's size are ignored.
/// No rule is checked here: that is the schema's job (and the decoder's).
///
/// ```
/// use xsplice_abi::{encode, layout, PatchFunc, RecordVersion};
/// let rec = encode(&PatchFunc { new_size: 48, ..PatchFunc::default() }, RecordVersion::V2)?;
/// let json = xsplice_spec::layout_to_json(&layout::RECORD_V2, rec.as_bytes())?;
/// assert_eq!(json["new_size"], 48);
/// assert_eq!(json["version"], 2);
/// assert_eq!(json["reserved"].as_array().map(Vec::len), Some(12));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn layout_to_json(layout: &Layout, bytes: &[u8]) -> Result<Value, RawJsonError> {
    let truncated = RawJsonError::Truncated {
        needed: layout.size,
        available: bytes.len(),
    };
    let record = bytes.get(..layout.size).ok_or(truncated)?;
    let mut out = Map::new();
    for f in layout.fields {
        let raw = record.get(f.offset..f.offset + f.size).ok_or(truncated)?;
        let value = if f.ty.is_array() {
            json!(raw)
        } else {
            let mut le = [0u8; 8];
            le.get_mut(..raw.len())
                .ok_or(truncated)?
                .copy_from_slice(raw);
            json!(u64::from_le_bytes(le))
        };
        out.insert(f.name.into(), value);
    }
    Ok(Value::Object(out))
}

/// Pretty-prints JSON with object keys sorted and two-space indentation,
/// ending in a newline.
///
/// The output does not depend on whether `serde_json`'s `preserve_order`
/// feature is enabled somewhere in the build, so the committed files compare
/// equal from any build configuration.
pub fn to_pretty_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value, 0);
    out.push('\n');
    out
}

fn write_json(out: &mut String, value: &Value, depth: usize) {
    let indent = |out: &mut String, d: usize| {
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            // Arrays of scalars stay on one line: byte arrays and enums read
            // better that way.
            if items.iter().all(|v| !v.is_array() && !v.is_object()) {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&v.to_string());
                }
                out.push(']');
                return;
            }
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_json(out, v, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                if let Some(v) = map.get(*k) {
                    write_json(out, v, depth + 1);
                }
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_of_masks() {
        assert_eq!(subsets(0), vec![0]);
        assert_eq!(subsets(1), vec![0, 1]);
        assert_eq!(subsets(0b1010), vec![0, 2, 8, 10]);
        assert_eq!(subsets(0xf), (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn pretty_json_is_sorted_and_stable() {
        let v = json!({"b": [1, 2], "a": {"y": null, "x": [{"k": "v"}]}, "c": []});
        assert_eq!(
            to_pretty_json(&v),
            "{\n  \"a\": {\n    \"x\": [\n      {\n        \"k\": \"v\"\n      }\n    ],\n    \"y\": null\n  },\n  \"b\": [1, 2],\n  \"c\": []\n}\n"
        );
        let back: Value = serde_json::from_str(&to_pretty_json(&v)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn record_schema_annotations() {
        let s = schema_record(RecordVersion::V3);
        let p = &s["properties"];
        assert_eq!(p["expect"]["x-offset"], 64);
        assert_eq!(p["expect"]["x-size"], 32);
        assert_eq!(p["expect"]["x-feature"], "EXPECT");
        assert_eq!(p["expect_len"]["maximum"], 32);
        assert_eq!(p["size"]["minimum"], 128);
        assert_eq!(p["new_addr"]["maximum"], u64::MAX);
        assert_eq!(p["incompat"]["enum"].as_array().unwrap().len(), 16);
        assert_eq!(
            schema_record(RecordVersion::V2)["properties"]["incompat"]["enum"],
            json!([0, 1])
        );
        assert!(schema_record(RecordVersion::V1)["properties"]
            .get("version")
            .is_none());
    }
}
