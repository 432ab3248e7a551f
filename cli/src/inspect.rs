//! `xsplice inspect`.

use std::path::Path;

use xsplice_loader::LoadOptions;

use crate::error::CliError;
use crate::report::Report;
use crate::{load, Output, Verbosity};

/// Loads `payload` (dry run, or into an engine over `image` without
/// applying) and describes it.
pub(crate) fn run(
    payload: &Path,
    image: Option<&Path>,
    json: bool,
    opts: &LoadOptions,
    v: Verbosity,
) -> Result<Output, CliError> {
    let loaded = load::load(payload, image, opts)?;
    let report = Report::new(&payload.display().to_string(), &loaded);
    render(&report, json, |r| r.text(v.verbose))
}

/// A report as pretty JSON, or as the text `text` makes of it.
pub(crate) fn render<T: serde::Serialize>(
    report: &T,
    json: bool,
    text: impl FnOnce(&T) -> String,
) -> Result<Output, CliError> {
    let mut out = Output::default();
    if json {
        out.line(to_json(report)?);
    } else {
        out.stdout = text(report);
    }
    Ok(out)
}

/// Pretty JSON of a serializable value.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))
}
