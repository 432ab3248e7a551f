//! The committed JSON Schemas against real data: every schema is valid
//! draft 2020-12, the decoded golden fixtures of `compat-tests/golden/`
//! (read-only) validate against the canonical-view schemas, their raw bytes
//! validate against the per-layout schemas, and broken instances do not.

use std::path::PathBuf;

use serde_json::{json, Value};
use xsplice_abi::{layout, AbiNote, RecordVersion};

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden(rel: &str) -> Vec<u8> {
    let path = spec_dir().join("../compat-tests/golden").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema(name: &str) -> Value {
    let path = spec_dir().join("generated").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&schema(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(v: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{instance:#}");
}

fn assert_invalid(v: &jsonschema::Validator, what: &str, instance: &Value) {
    assert!(
        !v.is_valid(instance),
        "{what} should be invalid:\n{instance:#}"
    );
}

const SCHEMAS: [&str; 7] = [
    "record-v1.schema.json",
    "record-v2.schema.json",
    "record-v3.schema.json",
    "note-desc.schema.json",
    "vendor-entry.schema.json",
    "note.schema.json",
    "patch-func.schema.json",
];

/// (golden file, sh_entsize to decode it with)
const GOLDEN_RECORDS: [(&str, u64); 10] = [
    ("v1/basic.bin", 0),
    ("v1/two-records.bin", 0),
    ("v1/draft-pad64.bin", 104),
    ("v2/basic.bin", 0),
    ("v2/nop.bin", 0),
    ("v2/two-records.bin", 0),
    ("v3/basic.bin", 0),
    ("v3/all-features.bin", 0),
    ("v3/nop.bin", 0),
    ("v3/expect-32.bin", 0),
];

#[test]
fn every_schema_is_valid_draft_2020_12() {
    for name in SCHEMAS {
        let s = schema(name);
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::meta::validate(&s) {
            panic!("{name} is not a valid schema: {e}");
        }
    }
}

#[test]
fn golden_records_validate_as_canonical_views() {
    let v = validator("patch-func.schema.json");
    let mut seen = 0;
    for (file, entsize) in GOLDEN_RECORDS {
        let bytes = golden(file);
        let records = xsplice_abi::decode(&bytes, entsize).unwrap();
        for rec in records.iter() {
            let rec = rec.unwrap();
            let json = serde_json::to_value(rec.func).unwrap();
            assert_valid(&v, &format!("{file} record {}", rec.index.0), &json);
            // The schema's view round-trips through serde.
            let back: xsplice_abi::PatchFunc = serde_json::from_value(json).unwrap();
            assert_eq!(back, rec.func);
            seen += 1;
        }
    }
    assert_eq!(seen, 12);
}

#[test]
fn golden_records_validate_as_raw_layouts() {
    for (file, entsize) in GOLDEN_RECORDS {
        let bytes = golden(file);
        let records = xsplice_abi::decode(&bytes, entsize).unwrap();
        let version = records.version();
        let v = validator(&format!("record-v{}.schema.json", version.number()));
        for chunk in bytes.chunks(records.size()) {
            let raw = xsplice_spec::layout_to_json(layout::record(version), chunk).unwrap();
            assert_valid(&v, file, &raw);
        }
    }
}

#[test]
fn golden_notes_validate() {
    let canonical = validator("note.schema.json");
    let raw = validator("note-desc.schema.json");
    for file in ["note/v2.bin", "note/v3.bin"] {
        let bytes = golden(file);
        let note = AbiNote::decode(&bytes).unwrap();
        assert_valid(&canonical, file, &serde_json::to_value(note).unwrap());
        let fields = xsplice_spec::layout_to_json(&layout::NOTE_DESC, &bytes).unwrap();
        assert_valid(&raw, file, &fields);
    }
}

#[test]
fn golden_vendor_entry_headers_validate() {
    let v = validator("vendor-entry.schema.json");
    let bytes = golden("vendor/two-entries.bin");
    for (offset, _) in xsplice_abi::vendor::VendorEntries::new(&bytes).map(Result::unwrap) {
        let header = xsplice_spec::layout_to_json(&layout::VENDOR_ENTRY, &bytes[offset..]).unwrap();
        assert_valid(&v, &format!("vendor entry at {offset}"), &header);
    }
}

fn raw(version: RecordVersion, file: &str) -> Value {
    xsplice_spec::layout_to_json(layout::record(version), &golden(file)).unwrap()
}

#[test]
fn broken_raw_records_are_invalid() {
    let v3 = validator("record-v3.schema.json");
    let good = raw(RecordVersion::V3, "v3/all-features.bin");
    assert_valid(&v3, "all-features", &good);

    let mut bad = good.clone();
    bad["reserved1"][5] = json!(1);
    assert_invalid(&v3, "non-zero reserved byte", &bad);

    let mut bad = good.clone();
    bad["version"] = json!(2);
    assert_invalid(&v3, "v2 tag in a v3 record", &bad);

    let mut bad = good.clone();
    bad["size"] = json!(64);
    assert_invalid(&v3, "size below the layout", &bad);

    let mut bigger = good.clone();
    bigger["size"] = json!(160);
    assert_valid(&v3, "size above the layout (size rule)", &bigger);

    let mut bad = good.clone();
    bad["incompat"] = json!(0x10);
    assert_invalid(&v3, "unknown incompat bit", &bad);

    let mut bad = good.clone();
    bad["expect_len"] = json!(33);
    assert_invalid(&v3, "expect_len over 32", &bad);

    let mut bad = good.clone();
    bad["patch_offset"] = json!(1u64 << 32);
    assert_invalid(&v3, "u32 field out of range", &bad);

    let mut bad = good;
    bad["vendor_field"] = json!(0);
    assert_invalid(&v3, "unknown property", &bad);

    let v2 = validator("record-v2.schema.json");
    let mut bad = raw(RecordVersion::V2, "v2/nop.bin");
    assert_valid(&v2, "v2 nop", &bad);
    bad["incompat"] = json!(2);
    assert_invalid(&v2, "PATCH_OFFSET in a v2 record", &bad);

    let v1 = validator("record-v1.schema.json");
    let mut bad = raw(RecordVersion::V1, "v1/basic.bin");
    bad["pad"][0] = json!(2);
    assert_invalid(&v1, "a v2 tag in v1 padding", &bad);
}

#[test]
fn broken_canonical_views_are_invalid() {
    let v = validator("patch-func.schema.json");
    let bytes = golden("v3/all-features.bin");
    let rec = xsplice_abi::decode(&bytes, 0)
        .unwrap()
        .get(0)
        .unwrap()
        .unwrap();
    let good = serde_json::to_value(rec.func).unwrap();
    assert_eq!(good["expect"], "f30f1efa554889e5");

    let mut bad = good.clone();
    bad["expect"] = json!("F30F");
    assert_invalid(&v, "upper-case hex", &bad);

    let mut bad = good.clone();
    bad["expect"] = json!("00".repeat(33));
    assert_invalid(&v, "33 expected bytes", &bad);

    let mut bad = good.clone();
    bad["new_size"] = json!(-1);
    assert_invalid(&v, "negative size", &bad);

    let mut bad = good;
    bad.as_object_mut().unwrap().remove("name");
    assert_invalid(&v, "missing name", &bad);
}

/// The schemas are also available from the library, for a CLI to print;
/// they equal the committed files.
#[test]
fn library_functions_return_the_committed_schemas() {
    for v in RecordVersion::ALL {
        assert_eq!(
            xsplice_spec::schema_record(v),
            schema(&format!("record-v{}.schema.json", v.number()))
        );
    }
    assert_eq!(xsplice_spec::schema_note(), schema("note.schema.json"));
    assert_eq!(
        xsplice_spec::schema_patch_func(),
        schema("patch-func.schema.json")
    );
}
