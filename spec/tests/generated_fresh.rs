//! Fails when a committed generated file, or a generated block of SPEC.md or
//! VENDORS.md, differs from what the generator produces now.

use std::path::Path;

#[test]
fn committed_artefacts_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stale = xsplice_spec::check(root).unwrap_or_else(|e| panic!("{e}"));
    if !stale.is_empty() {
        let list: Vec<String> = stale.iter().map(ToString::to_string).collect();
        panic!(
            "{} generated file(s) are stale:\n{}\n\nRegenerate with `{}` and commit the result.",
            stale.len(),
            list.join("\n"),
            xsplice_spec::REGENERATE
        );
    }
}

/// The documents carry every table they are meant to carry: a marker
/// deleted by mistake would otherwise leave a table silently unmaintained.
#[test]
fn documents_splice_every_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join("SPEC.md")).unwrap();
    let vendors = std::fs::read_to_string(root.join("VENDORS.md")).unwrap();
    for block in xsplice_spec::blocks() {
        let doc = if block.name == "vendor-registry" {
            &vendors
        } else {
            &spec
        };
        let begin = format!("{}{} -->", xsplice_spec::BEGIN_PREFIX, block.name);
        assert!(doc.contains(&begin), "missing marker `{begin}`");
    }
}
