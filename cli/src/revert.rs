//! `xsplice revert`: take payloads off a patched image.
//!
//! The image's ledger says what is applied. Only the top of the stack can
//! be reverted (a payload below may be what the top was built against);
//! `--all` reverts every payload, top first. Reverting restores each site's
//! original bytes and the arena bytes the payload took, so reverting
//! everything gives back the unpatched file byte for byte.

use std::path::Path;

use xsplice_loader::engine::{Engine, PayloadId, Target};

use crate::apply::{release_reverted, write_image};
use crate::error::{engine_error, CliError};
use crate::{files, load, Output};

/// What to revert.
pub(crate) enum Which<'a> {
    /// The top of the stack.
    Top,
    /// The payload of this name, which must be the top.
    Named(&'a str),
    /// Every payload, top first.
    All,
}

/// Whether `name` (as given on the command line) names the ledger entry
/// recorded as `recorded`: the same string, or the same file name.
fn names(recorded: &str, name: &str) -> bool {
    recorded == name || Path::new(recorded).file_name() == Path::new(name).file_name()
}

/// The payloads `which` names, in the order to revert them.
pub(crate) fn pick<T: Target>(
    engine: &Engine<T>,
    which: &Which<'_>,
) -> Result<Vec<PayloadId>, CliError> {
    let stack = engine.applied();
    let Some(&top) = stack.last() else {
        return Err(CliError::new("nothing is applied".to_string())
            .hint("`xsplice list` shows what is applied"));
    };
    let name_of = |id: PayloadId| engine.name(id).unwrap_or_default().to_string();
    match which {
        Which::Top => Ok(vec![top]),
        Which::All => Ok(stack.iter().rev().copied().collect()),
        Which::Named(name) => {
            let found = stack.iter().rev().find(|id| names(&name_of(**id), name));
            match found {
                Some(&id) if id == top => Ok(vec![id]),
                Some(&id) => Err(CliError::new(format!(
                    "`{}` is not the top of the stack (`{}` is)",
                    name_of(id),
                    name_of(top)
                ))
                .hint("only the top of the stack can be reverted: revert the payloads above it first, or use --all")),
                None => Err(CliError::new(format!("no applied payload is called `{name}`"))
                    .hint("`xsplice list` shows what is applied")),
            }
        }
    }
}

/// Reverts payloads of `image` and writes the result to `output`.
pub(crate) fn run(
    image: &Path,
    output: &Path,
    which: &Which<'_>,
    force: bool,
) -> Result<Output, CliError> {
    files::refuse_overwrite(output, &[image], force)?;
    let target = load::open_image(image)?;
    let mut engine = load::open_engine(target, image, &xsplice_loader::LoadOptions::default())?;
    let mut out = Output::default();
    for id in pick(&engine, which)? {
        let name = engine.name(id).unwrap_or_default().to_string();
        let sites = engine.entry(id).map(|e| e.sites.len()).unwrap_or(0);
        engine
            .revert(id)
            .map_err(|e| engine_error(Path::new(&name), &e, Some(image)))?;
        out.line(format!(
            "reverted {name}: {sites} site{} restored",
            if sites == 1 { "" } else { "s" }
        ));
    }
    release_reverted(&mut engine, image)?;
    write_image(engine.target(), output, image)?;
    let left = engine.applied().len();
    out.line(format!(
        "wrote {} (mode 0755): {}",
        output.display(),
        match left {
            0 => "nothing applied".to_string(),
            1 => "1 payload still applied".to_string(),
            n => format!("{n} payloads still applied"),
        }
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn a_payload_is_named_by_its_path_or_file_name() {
        assert!(names(
            "examples/hypervisor/fix.o",
            "examples/hypervisor/fix.o"
        ));
        assert!(names("examples/hypervisor/fix.o", "fix.o"));
        assert!(names("examples/hypervisor/fix.o", "/tmp/elsewhere/fix.o"));
        assert!(!names("examples/hypervisor/fix.o", "fix_v1.o"));
    }
}
