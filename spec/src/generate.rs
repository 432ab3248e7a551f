//! What the `gen` binary writes, and the staleness check.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use xsplice_abi::layout;

use crate::header::header;
use crate::markdown::{
    block_name, compat_table, fields_markdown, incompat_table, layout_block, sections_table,
    vendor_registry_table,
};
use crate::schema::{schema_layout, schema_note, schema_patch_func, to_pretty_json};
use crate::splice::{splice, Block, SpliceError};

/// The directory, relative to the spec crate, that holds the generated
/// files. The generator owns it: a file there that it does not produce is
/// reported by [`check`] and removed by [`write()`].
pub const GENERATED_DIR: &str = "generated";

/// Hand-written documents, relative to the spec crate, whose generated
/// blocks are re-spliced.
pub const SPLICED_DOCS: [&str; 2] = ["SPEC.md", "VENDORS.md"];

/// The command that regenerates everything.
pub const REGENERATE: &str = "cargo run -p xsplice-spec --bin gen";

/// One file the generator produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Path relative to the spec crate directory.
    pub path: PathBuf,
    /// The full contents.
    pub contents: String,
}

/// Every generated block that a document may splice, by name.
///
/// ```
/// let names: Vec<String> = xsplice_spec::blocks().into_iter().map(|b| b.name).collect();
/// assert!(names.contains(&"record-v3".to_string()));
/// assert!(names.contains(&"vendor-registry".to_string()));
/// ```
pub fn blocks() -> Vec<Block> {
    let mut out: Vec<Block> = layout::all()
        .iter()
        .map(|l| Block {
            name: block_name(l),
            content: layout_block(l),
        })
        .collect();
    for (name, content) in [
        ("incompat-bits", incompat_table()),
        ("compat-bits", compat_table()),
        ("sections", sections_table()),
        ("vendor-registry", vendor_registry_table()),
    ] {
        out.push(Block {
            name: name.into(),
            content,
        });
    }
    out
}

/// The files under [`GENERATED_DIR`], generated from the layout table.
fn generated_files() -> Vec<Output> {
    let dir = Path::new(GENERATED_DIR);
    let mut out = vec![
        Output {
            path: dir.join("xsplice_abi.h"),
            contents: header(),
        },
        Output {
            path: dir.join("fields.md"),
            contents: fields_markdown(),
        },
    ];
    for l in layout::all() {
        out.push(Output {
            path: dir.join(format!("{}.schema.json", block_name(l))),
            contents: to_pretty_json(&schema_layout(l)),
        });
    }
    out.push(Output {
        path: dir.join("note.schema.json"),
        contents: to_pretty_json(&schema_note()),
    });
    out.push(Output {
        path: dir.join("patch-func.schema.json"),
        contents: to_pretty_json(&schema_patch_func()),
    });
    out
}

/// An error of the generator: a file it could not read or write, or a
/// document whose markers are wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum GenError {
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// A document's generated-block markers are wrong.
    Splice {
        /// The document.
        path: PathBuf,
        /// What is wrong.
        error: SpliceError,
    },
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            GenError::Splice { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for GenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GenError::Io { error, .. } => Some(error),
            GenError::Splice { error, .. } => Some(error),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> GenError + '_ {
    move |error| GenError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Everything the generator writes under `root` (the spec crate directory):
/// the files of [`GENERATED_DIR`] and the [`SPLICED_DOCS`] with their
/// generated blocks re-spliced (which needs their current text).
pub fn expected_outputs(root: &Path) -> Result<Vec<Output>, GenError> {
    let mut out = generated_files();
    let blocks = blocks();
    for doc in SPLICED_DOCS {
        let path = root.join(doc);
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let contents = splice(&text, &blocks).map_err(|error| GenError::Splice {
            path: path.clone(),
            error,
        })?;
        out.push(Output {
            path: PathBuf::from(doc),
            contents,
        });
    }
    Ok(out)
}

/// A committed file that differs from what the generator produces now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// Path relative to the spec crate directory.
    pub path: PathBuf,
    /// What differs.
    pub kind: StaleKind,
}

/// How a committed file differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleKind {
    /// The file does not exist.
    Missing,
    /// The file exists under [`GENERATED_DIR`] but the generator does not
    /// produce it.
    Orphan,
    /// The contents differ, first at this 1-based line.
    Differs {
        /// The first differing line.
        line: usize,
        /// That line as generated now (empty past the end).
        expected: String,
        /// That line as committed (empty past the end).
        found: String,
    },
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = Path::new("spec").join(&self.path);
        match &self.kind {
            StaleKind::Missing => write!(f, "{} is missing", p.display())?,
            StaleKind::Orphan => write!(f, "{} is not produced by the generator", p.display())?,
            StaleKind::Differs {
                line,
                expected,
                found,
            } => write!(
                f,
                "{} is stale: line {line} is\n    {found:?}\n  but the generator now writes\n    {expected:?}\n ",
                p.display()
            )?,
        }
        write!(f, " (regenerate with `{REGENERATE}`)")
    }
}

fn first_difference(expected: &str, found: &str) -> StaleKind {
    let mut e = expected.split_inclusive('\n');
    let mut g = found.split_inclusive('\n');
    let mut line = 1;
    loop {
        match (e.next(), g.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                return StaleKind::Differs {
                    line,
                    expected: a.unwrap_or_default().trim_end_matches('\n').to_string(),
                    found: b.unwrap_or_default().trim_end_matches('\n').to_string(),
                }
            }
        }
    }
}

fn orphans(root: &Path, outputs: &[Output]) -> Result<Vec<PathBuf>, GenError> {
    let dir = root.join(GENERATED_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let rel = Path::new(GENERATED_DIR).join(entry.file_name());
        if !outputs.iter().any(|o| o.path == rel) {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Compares every file under `root` (the spec crate directory) with what
/// the generator produces now; an empty list means everything is fresh.
pub fn check(root: &Path) -> Result<Vec<Stale>, GenError> {
    let outputs = expected_outputs(root)?;
    let mut stale = Vec::new();
    for o in &outputs {
        let path = root.join(&o.path);
        match fs::read_to_string(&path) {
            Ok(found) if found == o.contents => {}
            Ok(found) => stale.push(Stale {
                path: o.path.clone(),
                kind: first_difference(&o.contents, &found),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => stale.push(Stale {
                path: o.path.clone(),
                kind: StaleKind::Missing,
            }),
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    for path in orphans(root, &outputs)? {
        stale.push(Stale {
            path,
            kind: StaleKind::Orphan,
        });
    }
    Ok(stale)
}

/// Writes every output under `root` (the spec crate directory) whose
/// contents changed, and removes orphans from [`GENERATED_DIR`]. Returns
/// the paths written or removed, relative to `root`.
pub fn write(root: &Path) -> Result<Vec<PathBuf>, GenError> {
    let outputs = expected_outputs(root)?;
    let dir = root.join(GENERATED_DIR);
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut changed = Vec::new();
    for o in &outputs {
        let path = root.join(&o.path);
        let current = fs::read_to_string(&path).ok();
        if current.as_deref() != Some(o.contents.as_str()) {
            fs::write(&path, &o.contents).map_err(io_err(&path))?;
            changed.push(o.path.clone());
        }
    }
    for rel in orphans(root, &outputs)? {
        let path = root.join(&rel);
        fs::remove_file(&path).map_err(io_err(&path))?;
        changed.push(rel);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_names_are_unique() {
        let b = blocks();
        for (i, x) in b.iter().enumerate() {
            assert!(b.iter().skip(i + 1).all(|y| y.name != x.name), "{}", x.name);
        }
    }

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(
            first_difference("a\nb\nc\n", "a\nB\nc\n"),
            StaleKind::Differs {
                line: 2,
                expected: "b".into(),
                found: "B".into()
            }
        );
        assert_eq!(
            first_difference("a\n", "a\nextra\n"),
            StaleKind::Differs {
                line: 2,
                expected: String::new(),
                found: "extra".into()
            }
        );
    }
}
