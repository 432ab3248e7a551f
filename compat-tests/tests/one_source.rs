//! Issue 9: a layout fact (an offset, a size) is written once, in
//! `abi/src/raw.rs`, and derived everywhere else (`offset_of!`, `size_of`,
//! the layout table, goblin's ELF constants). This test reads the library
//! sources and refuses a new size or offset constant set from a number
//! literal outside `raw.rs`, so a copy cannot creep back in unnoticed.
//!
//! The constants below are allowed because they are definitions, not
//! copies of a layout: the patch instruction sizes of each machine, the
//! Ed25519 sizes that define the signature block's arrays, and capacities
//! the loader chooses.

use std::path::{Path, PathBuf};

/// `(file, constant)` pairs that define a number rather than copy a layout.
const DEFINITIONS: &[(&str, &str)] = &[
    ("abi/src/sections.rs", "PATCH_SIZE_X86_64"),
    ("abi/src/sections.rs", "PATCH_SIZE_AARCH64"),
    ("abi/src/signature.rs", "ED25519_SIG_SIZE"),
    ("abi/src/signature.rs", "KEY_ID_SIZE"),
    ("loader/src/ptrace/mod.rs", "LEDGER_SIZE"),
    ("loader/src/reloc/mod.rs", "STUB_SIZE"),
];

/// Words in a constant's name that make it a size or an offset.
const LAYOUT_WORDS: &[&str] = &["OFF", "SIZE", "LEN", "WIDTH", "BYTES"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `const NAME: TYPE = <number>...` → `NAME`, when the value starts with a
/// digit (or a parenthesis or minus sign before one).
fn literal_constant(line: &str) -> Option<&str> {
    let rest = line.trim_start();
    let rest = rest
        .strip_prefix("pub(crate) ")
        .or_else(|| rest.strip_prefix("pub(super) "))
        .or_else(|| rest.strip_prefix("pub "))
        .unwrap_or(rest);
    let rest = rest.strip_prefix("const ")?;
    let (name, rest) = rest.split_once(':')?;
    let (_, value) = rest.split_once('=')?;
    let value = value.trim_start().trim_start_matches(['(', '-']);
    value
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(name.trim())
}

fn offending(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for crate_dir in ["abi/src", "loader/src", "spec/src", "cli/src"] {
        rust_files(&root.join(crate_dir), &mut files);
    }
    let mut found = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "abi/src/raw.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let Some(name) = literal_constant(line) else {
                continue;
            };
            let layout = LAYOUT_WORDS.iter().any(|w| name.contains(w));
            if layout && !DEFINITIONS.contains(&(rel.as_str(), name)) {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn no_layout_literal_outside_the_wire_structs() {
    let found = offending(&root());
    assert!(
        found.is_empty(),
        "size or offset constants typed as numbers outside abi/src/raw.rs \
         (derive them from the wire structs, or list a true definition in DEFINITIONS):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_copied_layout_fact() {
    // The scanner itself: what it must catch and what it must let pass.
    assert_eq!(
        literal_constant("const HEADER_SIZE: usize = 16;"),
        Some("HEADER_SIZE")
    );
    assert_eq!(
        literal_constant("    pub(crate) const NAME_OFF: u64 = 32;"),
        Some("NAME_OFF")
    );
    assert_eq!(literal_constant("pub const X: i64 = -8;"), Some("X"));
    assert_eq!(
        literal_constant("pub const HEADER_SIZE: usize = size_of::<VendorEntryHeader>();"),
        None
    );
    assert_eq!(literal_constant("let size = 16;"), None);
    // Every allowed definition still exists (a stale entry would hide a
    // renamed copy).
    let root = root();
    for (file, name) in DEFINITIONS {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            text.lines().any(|l| literal_constant(l) == Some(name)),
            "{file}: no constant {name} set from a literal any more; drop it from DEFINITIONS"
        );
    }
}
