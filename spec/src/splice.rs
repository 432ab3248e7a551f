//! Splicing generated blocks into hand-written Markdown between markers.

use std::fmt;

/// The opening marker's text before the block name.
pub const BEGIN_PREFIX: &str = "<!-- BEGIN GENERATED: ";
/// The closing marker's text before the block name.
pub const END_PREFIX: &str = "<!-- END GENERATED: ";
/// Closes both markers.
const MARKER_SUFFIX: &str = " -->";

/// A named piece of generated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The name used in the markers, e.g. `record-v3`.
    pub name: String,
    /// The text that goes between the markers.
    pub content: String,
}

/// What is wrong with the markers of a document. Lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpliceError {
    /// A `BEGIN` marker is not closed by ` -->` on its line.
    MalformedMarker {
        /// Line of the marker.
        line: usize,
    },
    /// A `BEGIN` marker has no matching `END` marker after it.
    Unterminated {
        /// The block name.
        name: String,
        /// Line of the `BEGIN` marker.
        line: usize,
    },
    /// Another marker appears between a `BEGIN` and its `END`.
    Nested {
        /// The block being spliced.
        name: String,
        /// Line of the inner marker.
        line: usize,
    },
    /// An `END` marker with no `BEGIN` before it.
    StrayEnd {
        /// Line of the marker.
        line: usize,
    },
    /// The document asks for a block the generator does not produce.
    UnknownBlock {
        /// The block name.
        name: String,
        /// Line of the `BEGIN` marker.
        line: usize,
    },
}

impl fmt::Display for SpliceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpliceError::MalformedMarker { line } => {
                write!(
                    f,
                    "line {line}: generated-block marker not closed by ` -->`"
                )
            }
            SpliceError::Unterminated { name, line } => write!(
                f,
                "line {line}: `{BEGIN_PREFIX}{name}{MARKER_SUFFIX}` has no matching END marker"
            ),
            SpliceError::Nested { name, line } => {
                write!(f, "line {line}: marker inside the generated block `{name}`")
            }
            SpliceError::StrayEnd { line } => {
                write!(f, "line {line}: END GENERATED marker without a BEGIN")
            }
            SpliceError::UnknownBlock { name, line } => {
                write!(f, "line {line}: no generated block is called `{name}`")
            }
        }
    }
}

impl std::error::Error for SpliceError {}

fn line_of(doc: &str, pos: usize) -> usize {
    doc.get(..pos).map_or(0, |s| s.matches('\n').count()) + 1
}

/// Replaces the text between every `<!-- BEGIN GENERATED: name -->` and
/// `<!-- END GENERATED: name -->` pair of `doc` with the content of the
/// block called `name` (on lines of its own), leaving everything else
/// untouched. Splicing is idempotent: splicing the output again gives the
/// same text.
///
/// ```
/// use xsplice_spec::{splice, Block};
/// let doc = "intro\n<!-- BEGIN GENERATED: t -->\nold\n<!-- END GENERATED: t -->\nend\n";
/// let blocks = [Block { name: "t".into(), content: "| a |\n".into() }];
/// let out = splice(doc, &blocks)?;
/// assert_eq!(out, "intro\n<!-- BEGIN GENERATED: t -->\n| a |\n<!-- END GENERATED: t -->\nend\n");
/// assert_eq!(splice(&out, &blocks)?, out);
/// # Ok::<(), xsplice_spec::SpliceError>(())
/// ```
pub fn splice(doc: &str, blocks: &[Block]) -> Result<String, SpliceError> {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    let mut consumed = 0usize;
    loop {
        let begin = rest.find(BEGIN_PREFIX);
        let end = rest.find(END_PREFIX);
        let begin = match (begin, end) {
            (None, None) => break,
            (Some(b), Some(e)) if e < b => {
                return Err(SpliceError::StrayEnd {
                    line: line_of(doc, consumed + e),
                })
            }
            (None, Some(e)) => {
                return Err(SpliceError::StrayEnd {
                    line: line_of(doc, consumed + e),
                })
            }
            (Some(b), _) => b,
        };
        let line = line_of(doc, consumed + begin);
        let after_prefix = rest
            .get(begin + BEGIN_PREFIX.len()..)
            .ok_or(SpliceError::MalformedMarker { line })?;
        let close = after_prefix
            .find(MARKER_SUFFIX)
            .filter(|&c| !after_prefix.get(..c).is_some_and(|n| n.contains('\n')))
            .ok_or(SpliceError::MalformedMarker { line })?;
        let name = after_prefix.get(..close).unwrap_or_default().trim();
        let body_start = begin + BEGIN_PREFIX.len() + close + MARKER_SUFFIX.len();
        let end_marker = format!("{END_PREFIX}{name}{MARKER_SUFFIX}");
        let body = rest.get(body_start..).unwrap_or_default();
        let end_at = body
            .find(&end_marker)
            .ok_or_else(|| SpliceError::Unterminated {
                name: name.to_string(),
                line,
            })?;
        let inner = body.get(..end_at).unwrap_or_default();
        if let Some(p) = inner.find(BEGIN_PREFIX).or_else(|| inner.find(END_PREFIX)) {
            return Err(SpliceError::Nested {
                name: name.to_string(),
                line: line_of(doc, consumed + body_start + p),
            });
        }
        let block =
            blocks
                .iter()
                .find(|b| b.name == name)
                .ok_or_else(|| SpliceError::UnknownBlock {
                    name: name.to_string(),
                    line,
                })?;
        out.push_str(rest.get(..body_start).unwrap_or_default());
        out.push('\n');
        out.push_str(&block.content);
        if !block.content.ends_with('\n') {
            out.push('\n');
        }
        let next = body_start + end_at;
        consumed += next;
        rest = rest.get(next..).unwrap_or_default();
        // Emit the END marker itself and carry on after it.
        out.push_str(&end_marker);
        let skip = end_marker.len();
        consumed += skip;
        rest = rest.get(skip..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Vec<Block> {
        vec![
            Block {
                name: "a".into(),
                content: "A1\nA2\n".into(),
            },
            Block {
                name: "b".into(),
                content: "B".into(),
            },
        ]
    }

    #[test]
    fn splices_two_blocks_and_keeps_prose() {
        let doc = "x\n<!-- BEGIN GENERATED: a -->\n<!-- END GENERATED: a -->\ny\n\
                   <!-- BEGIN GENERATED: b -->stale\nstale\n<!-- END GENERATED: b -->z";
        let out = splice(doc, &blocks()).unwrap();
        assert_eq!(
            out,
            "x\n<!-- BEGIN GENERATED: a -->\nA1\nA2\n<!-- END GENERATED: a -->\ny\n\
             <!-- BEGIN GENERATED: b -->\nB\n<!-- END GENERATED: b -->z"
        );
        assert_eq!(splice(&out, &blocks()).unwrap(), out);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            splice("\n<!-- BEGIN GENERATED: a -->\n", &blocks()),
            Err(SpliceError::Unterminated {
                name: "a".into(),
                line: 2
            })
        );
        assert_eq!(
            splice("<!-- END GENERATED: a -->", &blocks()),
            Err(SpliceError::StrayEnd { line: 1 })
        );
        assert_eq!(
            splice(
                "<!-- BEGIN GENERATED: q -->\n<!-- END GENERATED: q -->",
                &blocks()
            ),
            Err(SpliceError::UnknownBlock {
                name: "q".into(),
                line: 1
            })
        );
        assert_eq!(
            splice(
                "<!-- BEGIN GENERATED: a -->\n<!-- BEGIN GENERATED: b -->\n<!-- END GENERATED: a -->",
                &blocks()
            ),
            Err(SpliceError::Nested {
                name: "a".into(),
                line: 2
            })
        );
        assert_eq!(
            splice("<!-- BEGIN GENERATED: a\n -->", &blocks()),
            Err(SpliceError::MalformedMarker { line: 1 })
        );
    }
}
