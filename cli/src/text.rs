//! Text from payloads is data: how it is printed.
//!
//! Names in a payload (records, symbols, sections) are untrusted bytes. A
//! name with a newline could forge an `error:` line on stdout, and one with
//! a terminal escape could rewrite the screen; so every such string is
//! escaped at the place it is formatted ([`esc`]), and every `error:`,
//! `warning:` and `hint:` line is made one line of printable text
//! ([`one_line`]). JSON output needs nothing more: serde_json escapes
//! control characters in strings.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

/// `s` with every control character (C0, DEL, C1) and backslash escaped
/// as Rust does (`\n`, `\u{1b}`, `\\`); borrowed when there is none.
///
/// ```text
/// esc("hv_sum")            -> hv_sum
/// esc("a\nerror: forged")  -> a\nerror: forged   (one line)
/// ```
pub(crate) fn esc(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() || c == '\\' {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of printable text: line breaks become spaces (messages of the
/// OS and of libraries may span lines), other control characters are
/// escaped.
pub(crate) fn one_line(s: &str) -> String {
    let joined = s
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    esc(&joined).into_owned()
}

/// Compares names as people read them: runs of digits by value, so
/// `old_2` sorts before `old_10`.
pub(crate) fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, rx) = x.split_at(n);
                let (dy, ry) = y.split_at(m);
                fn trim(d: &[u8]) -> &[u8] {
                    let z = d.iter().take_while(|c| **c == b'0').count();
                    d.get(z..).unwrap_or(&[])
                }
                let (tx, ty) = (trim(dx), trim(dy));
                let ord = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
                if ord != Ordering::Equal {
                    return ord;
                }
                (x, y) = (rx, ry);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                (x, y) = (x.get(1..).unwrap_or(&[]), y.get(1..).unwrap_or(&[]));
            }
        }
    }
}

/// How many names a text list shows before it says how many more there are.
pub(crate) const SHOWN: usize = 20;

/// A comma-separated list of names, sorted naturally and escaped; past
/// [`SHOWN`] names (unless `all`) it ends with `… and N more (-v lists
/// all)`. `--json` always has every name.
pub(crate) fn name_list(names: &[String], all: bool) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort_by(|a, b| natural(a, b));
    let shown = if all { sorted.len() } else { SHOWN };
    let mut out = sorted
        .iter()
        .take(shown)
        .map(|n| esc(n))
        .collect::<Vec<_>>()
        .join(", ");
    if sorted.len() > shown {
        let _ = write!(out, ", … and {} more (-v lists all)", sorted.len() - shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_forge_lines_or_escapes() {
        assert_eq!(esc("hv_sum"), "hv_sum");
        assert_eq!(esc("a\nerror: forged"), "a\\nerror: forged");
        assert_eq!(esc("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(esc("back\\slash"), "back\\\\slash");
        assert_eq!(one_line("one\ntwo\r\n  three\u{7}"), "one two three\\u{7}");
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["old_10", "old_2", "old_1", "old_01x", "a", "old_"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["a", "old_", "old_1", "old_01x", "old_2", "old_10"]);
    }

    #[test]
    fn long_lists_say_how_many_more() {
        let names: Vec<String> = (0..6000).map(|i| format!("old_{i}")).collect();
        let short = name_list(&names, false);
        assert!(short.starts_with("old_0, old_1, old_2, old_3"), "{short}");
        assert!(
            short.ends_with("old_19, … and 5980 more (-v lists all)"),
            "{short}"
        );
        assert_eq!(name_list(&names, true).matches(", ").count(), 5999);
        assert_eq!(name_list(&[], false), "none");
    }
}
