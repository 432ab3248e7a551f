//! `xsplice check`.

use std::path::Path;

use serde::Serialize;

use crate::error::{engine_error, CliError};
use crate::inspect::to_json;
use crate::report::{hex, Format, ImageReport};
use crate::{load, Output, Verbosity};
use xsplice_loader::engine::PlannedWrite;

/// The verdict of `check --json` (see `cli/JSON.md`).
#[derive(Debug, Serialize)]
struct Verdict {
    /// The payload path as given.
    file: String,
    /// The image checked against, `null` without `--image`.
    image: Option<ImageReport>,
    /// Whether the payload would load (and, with an image, apply).
    ok: bool,
    /// The error, on one line, when not ok.
    error: Option<String>,
    /// Hints that go with the error.
    hints: Vec<String>,
    /// Number of records (`null` when the payload did not load).
    records: Option<usize>,
    /// Record version (`null` likewise).
    record_version: Option<u16>,
    /// Record size (`null` likewise).
    record_size: Option<usize>,
    /// Format version (`null` likewise).
    format: Option<Format>,
    /// Warnings.
    warnings: Vec<String>,
    /// Without an image: names resolved to the placeholder.
    unresolved: Vec<String>,
    /// The signature (`null` when the payload did not load).
    signature: Option<crate::sign::SignatureReport>,
    /// With `--image`: what `apply` would write (`null` otherwise).
    plan: Option<Vec<PlannedSite>>,
}

/// One site of the patch plan: what `apply` writes and what it replaces.
#[derive(Debug, Serialize)]
struct PlannedSite {
    /// Record index.
    record: u32,
    /// The record's name.
    name: String,
    /// The patch site.
    site: String,
    /// The bytes there now (what `revert` puts back), hex.
    old: String,
    /// The bytes `apply` writes, hex.
    new: String,
}

impl From<&PlannedWrite> for PlannedSite {
    fn from(w: &PlannedWrite) -> Self {
        let s = w.site();
        PlannedSite {
            record: s.record.0,
            name: s.name.clone(),
            site: s.addr.to_string(),
            old: hex(&s.old),
            new: hex(&s.new),
        }
    }
}

/// Loads `payload` fully; with `image`, also runs the engine's check
/// (symbols, branch ranges, EXPECT bytes, dependencies). Writes nothing.
pub(crate) fn run(
    payload: &Path,
    image: Option<&Path>,
    json: bool,
    opts: &xsplice_loader::LoadOptions,
    v: Verbosity,
) -> Result<Output, CliError> {
    let image_report = |build_id: Option<String>, applied: Vec<String>| {
        image.map(|p| ImageReport {
            path: p.display().to_string(),
            build_id,
            applied,
        })
    };
    let result = load::load(payload, image, opts).and_then(|mut loaded| {
        let plan = match loaded.image.as_mut() {
            Some(img) => {
                let id = img.id;
                let plan = img
                    .engine
                    .check(id)
                    .map_err(|e| engine_error(payload, &e, image))?;
                Some(plan)
            }
            None => None,
        };
        Ok((loaded, plan))
    });
    let (loaded, plan) = match result {
        Ok(l) => l,
        Err(mut e) => {
            if json {
                let verdict = Verdict {
                    file: payload.display().to_string(),
                    image: image_report(None, Vec::new()),
                    ok: false,
                    error: Some(crate::text::one_line(&e.message)),
                    hints: e.hints.clone(),
                    records: None,
                    record_version: None,
                    record_size: None,
                    format: None,
                    warnings: Vec::new(),
                    unresolved: Vec::new(),
                    signature: None,
                    plan: None,
                };
                let mut doc = to_json(&verdict)?;
                doc.push('\n');
                e.stdout = Some(doc);
            }
            return Err(e);
        }
    };
    let p = &loaded.payload;
    let warnings: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
    let unresolved = loaded.unresolved.clone().unwrap_or_default();
    let applied = loaded
        .image
        .as_ref()
        .map(|i| i.applied.clone())
        .unwrap_or_default();
    let mut out = Output::default();
    if json {
        let verdict = Verdict {
            file: payload.display().to_string(),
            image: image_report(
                loaded
                    .image
                    .as_ref()
                    .and_then(|i| i.build_id.as_deref().map(crate::report::hex)),
                applied.clone(),
            ),
            ok: true,
            error: None,
            hints: Vec::new(),
            records: Some(p.records.len()),
            record_version: Some(p.record_version.number()),
            record_size: Some(p.record_size),
            format: Some(p.format.into()),
            warnings,
            unresolved,
            signature: Some((&p.signature).into()),
            plan: plan
                .as_ref()
                .map(|plan| plan.writes().iter().map(PlannedSite::from).collect()),
        };
        out.line(to_json(&verdict)?);
        return Ok(out);
    }
    if v.quiet {
        return Ok(out);
    }
    out.line(format!(
        "ok: {} record{}, record version {}, format {}",
        p.records.len(),
        if p.records.len() == 1 { "" } else { "s" },
        p.record_version,
        p.format
    ));
    out.line(format!(
        "  signature: {}",
        crate::sign::SignatureReport::from(&p.signature).text()
    ));
    let t = &p.arch_tables;
    if !t.is_empty() {
        let count = |present: bool, n: usize| {
            if present {
                n.to_string()
            } else {
                "absent".to_string()
            }
        };
        out.line(format!(
            "  arch tables (ARCH): ex_table {}, alternatives {}, bug_frames {}; every entry inside the payload",
            count(t.ex_table.is_some(), t.ex_entries().len()),
            count(t.alternatives.is_some(), t.alt_entries().len()),
            count(t.bug_frames.is_some(), t.bug_entries().len()),
        ));
    }
    if let Some(img) = image {
        out.line(format!(
            "  would apply to {}: symbols resolved, branch ranges, EXPECT bytes and dependencies checked",
            img.display()
        ));
        if !applied.is_empty() {
            out.line(format!(
                "  {} is patched by: {} (bottom first)",
                img.display(),
                applied.join(", ")
            ));
        }
        if v.verbose {
            for s in plan.iter().flat_map(|plan| plan.writes()).map(|w| w.site()) {
                out.line(format!(
                    "  {} `{}`: site {}: {} -> {}",
                    s.record,
                    crate::text::esc(&s.name),
                    s.addr,
                    hex(&s.old),
                    hex(&s.new)
                ));
            }
        }
    } else {
        if !unresolved.is_empty() {
            out.line(format!(
                "  unresolved (no image given): {}",
                crate::text::name_list(&unresolved, v.verbose)
            ));
        }
        out.line(
            "  not checked without --image: symbols, branch ranges, EXPECT bytes, dependencies",
        );
    }
    for w in &warnings {
        out.warn(w);
    }
    Ok(out)
}
