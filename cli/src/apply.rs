//! `xsplice apply`: offline patching of an executable image.
//!
//! The image may already be patched: its ledger (see
//! `xsplice_loader::ledger`) restores the stack, so the payloads given go
//! on top of what earlier runs applied, and the output carries the new
//! ledger. Nothing is written unless every payload applies; the output is
//! written to a temporary file and renamed into place.

use std::path::{Path, PathBuf};

use xsplice_loader::engine::{Engine, State};
use xsplice_loader::image::ImageTarget;
use xsplice_loader::LoadOptions;

use crate::error::{engine_error, CliError};
use crate::{files, load, Output, Verbosity};

/// What to apply where.
pub(crate) struct Request<'a> {
    /// The image.
    pub image: &'a Path,
    /// The patched image to write.
    pub output: &'a Path,
    /// Payloads, bottom of the stack first.
    pub payloads: &'a [PathBuf],
    /// The last payload replaces the others.
    pub replace: bool,
    /// Allow overwriting an input.
    pub force: bool,
    /// Loader options: the signature policy and trusted keys.
    pub opts: LoadOptions,
    /// The CPU features alternatives are applied for.
    pub cpu: &'a crate::cpu::CpuArgs,
}

/// Loads and applies each payload in order (with `replace`, the last one
/// replaces the stack), then writes the patched image with mode 0755.
pub(crate) fn run(req: &Request<'_>, v: Verbosity) -> Result<Output, CliError> {
    let mut inputs: Vec<&Path> = vec![req.image];
    inputs.extend(req.payloads.iter().map(PathBuf::as_path));
    files::refuse_overwrite(req.output, &inputs, req.force)?;

    let mut target = load::open_image(req.image)?;
    target.set_cpu_features(req.cpu.resolve(target.arch())?);
    let mut engine = load::open_engine(target, req.image, &req.opts)?;
    let mut out = Output::default();
    let last = req.payloads.len().saturating_sub(1);
    for (i, path) in req.payloads.iter().enumerate() {
        let bytes = files::read(path, req.opts.max_size as u64, "payload")?;
        let err = |e| engine_error(path, &e, Some(req.image));
        let id = engine
            .load(&files::display_name(path), &bytes)
            .map_err(err)?;
        let replacing = req.replace && i == last && !engine.applied().is_empty();
        if replacing {
            engine.replace(id).map_err(err)?;
        } else {
            engine.apply(id).map_err(err)?;
        }
        let p = engine.payload(id).map_err(err)?;
        out.line(format!(
            "{} {}: {} record{} ({}, format {})",
            if replacing {
                "replaced with"
            } else {
                "applied"
            },
            path.display(),
            p.records.len(),
            if p.records.len() == 1 { "" } else { "s" },
            p.record_version,
            p.format
        ));
        if p.signature != xsplice_loader::signature::SignatureStatus::Unsigned {
            let sig = crate::sign::SignatureReport::from(&p.signature);
            out.line(format!("  signature: {}", sig.text()));
        }
        for r in &p.records {
            let what = if r.func.is_nop() {
                format!("{} bytes of NOPs", r.func.new_size)
            } else {
                format!("jump to {}", r.func.new_addr)
            };
            out.line(format!(
                "  record {} {}: site {} -> {what}",
                r.index.0,
                crate::text::esc(&r.name),
                r.site
            ));
        }
        for w in &p.warnings {
            out.warn(format!("{}: {w}", path.display()));
        }
        // spec/SPEC.md section 12: name every hook section not run. None
        // ever runs offline: not the apply hooks now, nor the revert hooks
        // when `xsplice revert` takes the payload out.
        let hook_sections: Vec<&str> = xsplice_abi::sections::HookPoint::ALL
            .iter()
            .filter(|point| p.hooks.iter().any(|h| h.point == **point))
            .map(|point| point.section())
            .collect();
        if !hook_sections.is_empty() {
            out.warn(format!(
                "{}: hooks not run (an offline image cannot run payload code, on apply or \
                 revert): {}",
                path.display(),
                hook_sections.join(", ")
            ));
        }
    }
    if v.verbose {
        for (name, used, size) in engine.target().arena_usage() {
            out.line(format!("  arena {name}: {used} of {size} bytes used"));
        }
    }
    release_reverted(&mut engine, req.image)?;
    write_image(engine.target(), req.output, req.image)?;
    out.line(format!("wrote {} (mode 0755)", req.output.display()));
    if v.quiet {
        out.stdout.clear();
    }
    Ok(out)
}

/// Unloads every payload that is loaded but not applied (those `--replace`
/// reverted): an offline image gets their arena bytes back, so the ledger
/// accounts for every byte the output differs in.
pub(crate) fn release_reverted(
    engine: &mut Engine<ImageTarget>,
    image: &Path,
) -> Result<(), CliError> {
    let idle: Vec<_> = engine
        .ids()
        .filter(|id| engine.state(*id).is_ok_and(|s| s != State::Applied))
        .collect();
    for id in idle {
        engine
            .unload(id)
            .map_err(|e| engine_error(image, &e, Some(image)))?;
    }
    Ok(())
}

/// Writes the patched image and its ledger trailer to `output`, mode 0755.
pub(crate) fn write_image(
    target: &ImageTarget,
    output: &Path,
    image: &Path,
) -> Result<(), CliError> {
    let bytes = target
        .to_file()
        .map_err(|e| CliError::new(format!("{}: {e}", image.display())))?;
    files::write(output, &bytes, 0o755)
}
