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
    let mut out = Output::default();
    if json {
        out.line(to_json(&report)?);
    } else {
        out.stdout = report.text(v.verbose);
    }
    Ok(out)
}

/// Pretty JSON of a serializable value.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("cannot encode JSON: {e}")))
}
