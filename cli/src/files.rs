//! Reading inputs (bounded) and writing outputs (atomically, with a mode).

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Largest payload read: the loader's default limit.
pub(crate) fn payload_limit() -> u64 {
    xsplice_loader::LoadOptions::default().max_size as u64
}

/// Largest image read: the offline target's limit.
pub(crate) const IMAGE_LIMIT: u64 = xsplice_loader::image::MAX_IMAGE as u64;

/// Reads a whole file of at most `limit` bytes; `what` names it in errors
/// ("payload", "image").
pub(crate) fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    let cannot =
        |e: std::io::Error| CliError::new(format!("cannot read {what} `{}`: {e}", path.display()));
    let meta = fs::metadata(path).map_err(cannot)?;
    if meta.is_dir() {
        return Err(CliError::new(format!(
            "cannot read {what} `{}`: is a directory",
            path.display()
        )));
    }
    // Only regular files: a FIFO would block the read forever and a device
    // (`/dev/zero`) never ends; both are refused before they are opened.
    if !meta.is_file() {
        return Err(CliError::new(format!(
            "cannot read {what} `{}`: not a regular file",
            path.display()
        )));
    }
    let over = |len: String| {
        let err = CliError::new(format!(
            "{}: {what} is {len}over the {limit}-byte limit",
            path.display()
        ));
        if what == "payload" {
            err.hint("raise the limit with --max-size BYTES")
        } else {
            err
        }
    };
    if meta.len() > limit {
        return Err(over(format!("{} bytes, ", meta.len())));
    }
    let file = fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(over(String::new()));
    }
    Ok(bytes)
}

/// Whether `a` and `b` name the same existing file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuses to write `out` over one of `inputs` unless `force`.
pub(crate) fn refuse_overwrite(out: &Path, inputs: &[&Path], force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    match inputs.iter().find(|i| same_file(out, i)) {
        Some(i) => Err(CliError::new(format!(
            "refusing to overwrite the input `{}` with the output `{}`",
            i.display(),
            out.display()
        ))
        .hint("write elsewhere with -o, or pass --force")),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` with permission bits `mode`: into a temporary
/// file beside it, then renamed over it, so a running executable at `path`
/// is never written in place and a failed write leaves no half file.
pub(crate) fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let cannot =
        |e: std::io::Error| CliError::new(format!("cannot write `{}`: {e}", path.display()));
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(CliError::new(format!(
            "cannot write `{}`: is a directory",
            path.display()
        )));
    }
    if path.file_name().is_none() {
        return Err(CliError::new(format!(
            "cannot write `{}`: not a file name",
            path.display()
        )));
    }
    // A short name of its own, so that any valid output name works (the
    // output's own name may already be at the file-name length limit).
    let tmp: PathBuf = path.with_file_name(format!(".xsplice-{}.tmp", std::process::id()));
    let result = fs::write(&tmp, bytes)
        .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(cannot(e));
    }
    Ok(())
}

/// The name a payload is known by in messages and in the engine.
pub(crate) fn display_name(path: &Path) -> String {
    path.display().to_string()
}
