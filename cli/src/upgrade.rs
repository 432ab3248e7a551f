//! `xsplice upgrade`: rewrite a payload's records into another version,
//! through `xsplice_loader::write::rewrite_version`.

use std::path::Path;

use xsplice_abi::RecordVersion;
use xsplice_loader::write::{rewrite_version, WriteError};
use xsplice_loader::{DryRun, LoadOptions};

use crate::error::{load_error, CliError};
use crate::{files, Output, Verbosity};

/// Rewrites `payload` as record version `to` into `output`.
pub(crate) fn run(
    payload: &Path,
    to: u16,
    output: &Path,
    force: bool,
    sign: Option<&Path>,
    v: Verbosity,
) -> Result<Output, CliError> {
    files::refuse_overwrite(output, &[payload], force)?;
    let to = RecordVersion::from_number(to)
        .ok_or_else(|| CliError::new(format!("no record version {to}")))?;
    let bytes = files::read(payload, files::payload_limit(), "payload")?;
    let before = DryRun::default()
        .load(&bytes, &LoadOptions::default())
        .map_err(|e| load_error(payload, &e, None))?;
    // A signature covers the input's bytes, not the rewritten ones.
    let (elf, dropped) = crate::sign::without_signature(payload, &bytes)?;
    let rewritten = rewrite_version(elf, to).map_err(|e| {
        let err = CliError::new(format!("{}: {e}", payload.display()));
        match e {
            WriteError::Record { .. } => err.hint(format!(
                "a {to} record cannot express a feature this payload uses; choose a newer --to"
            )),
            _ => err,
        }
    })?;
    let after = DryRun::default()
        .load(&rewritten, &LoadOptions::default())
        .map_err(|e| {
            CliError::new(format!(
                "{}: the rewritten payload does not load: {e}",
                output.display()
            ))
        })?;
    let mut out = Output::default();
    let (rewritten, signed) = match sign {
        Some(key) => {
            let (bytes, line) = crate::sign::sign_output(key, output, &rewritten)?;
            (bytes, Some(line))
        }
        None => (rewritten, None),
    };
    files::write(output, &rewritten, 0o644)?;
    if let Some(d) = dropped {
        out.warn(format!(
            "{}: dropped the input's signature ({d}): it does not cover the rewritten bytes{}",
            payload.display(),
            if sign.is_some() {
                ""
            } else {
                "; sign the output with --sign KEY"
            }
        ));
    }
    if !v.quiet {
        out.line(format!(
            "upgraded {} ({} x {}, format {}) -> {} ({} x {}, format {})",
            payload.display(),
            before.records.len(),
            before.record_version,
            before.format,
            output.display(),
            after.records.len(),
            after.record_version,
            after.format
        ));
        if let Some(line) = signed {
            out.line(line);
        }
    }
    for w in &after.warnings {
        out.warn(w.to_string());
    }
    Ok(out)
}
