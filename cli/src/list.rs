//! `xsplice list`: what a patched target has applied, from its ledger.
//!
//! The report is built from a [`Ledger`] alone (plus the target's name,
//! build-id and arena use), so every kind of target prints the same way.

use std::path::Path;

use serde::Serialize;
use xsplice_loader::engine::Target as _;
use xsplice_loader::ledger::Ledger;

use crate::error::CliError;
use crate::inspect::render;
use crate::report::hex;
use crate::text::esc;
use crate::{load, Output, Verbosity};

/// One patch site, as listed.
#[derive(Debug, Serialize)]
struct SiteReport {
    record: u32,
    function: String,
    addr: String,
    original: String,
    written: String,
}

/// One region, as listed.
#[derive(Debug, Serialize)]
struct RegionReport {
    kind: &'static str,
    addr: String,
    size: u64,
}

/// One applied payload, as listed.
#[derive(Debug, Serialize)]
struct EntryReport {
    name: String,
    identity: String,
    identity_kind: &'static str,
    depends: Option<String>,
    record_version: u16,
    format: String,
    regions: Vec<RegionReport>,
    sites: Vec<SiteReport>,
    exports: usize,
    hooks: usize,
}

/// An arena's use.
#[derive(Debug, Serialize)]
struct ArenaReport {
    name: &'static str,
    used: u64,
    size: u64,
}

/// What `list` prints.
#[derive(Debug, Serialize)]
pub(crate) struct ListReport {
    target: String,
    build_id: Option<String>,
    applied: Vec<EntryReport>,
    arenas: Vec<ArenaReport>,
}

impl ListReport {
    /// The report of `ledger` kept by `target`.
    pub(crate) fn new(
        target: String,
        build_id: Option<&[u8]>,
        ledger: &Ledger,
        arenas: impl Iterator<Item = (&'static str, u64, u64)>,
    ) -> Self {
        let applied = ledger
            .entries
            .iter()
            .map(|e| EntryReport {
                name: e.name.clone(),
                identity: hex(&e.identity.bytes),
                identity_kind: e.identity.kind.name(),
                depends: e.depends.as_deref().map(hex),
                record_version: e.record_version.number(),
                format: e.format.to_string(),
                regions: e
                    .regions
                    .iter()
                    .map(|r| RegionReport {
                        kind: r.kind.name(),
                        addr: format!("{}", r.addr),
                        size: r.size,
                    })
                    .collect(),
                sites: e
                    .sites
                    .iter()
                    .map(|s| SiteReport {
                        record: s.record.0,
                        function: s.name.clone(),
                        addr: format!("{}", s.addr),
                        original: hex(&s.old),
                        written: hex(&s.new),
                    })
                    .collect(),
                exports: e.exports.len(),
                hooks: e.hooks.len(),
            })
            .collect();
        ListReport {
            target,
            build_id: build_id.map(hex),
            applied,
            arenas: arenas
                .map(|(name, used, size)| ArenaReport { name, used, size })
                .collect(),
        }
    }

    /// The text form.
    pub(crate) fn text(&self, verbose: bool) -> String {
        let mut o = format!(
            "{} (build-id {})\n",
            self.target,
            self.build_id.as_deref().unwrap_or("none")
        );
        match self.applied.len() {
            0 => o.push_str("nothing applied\n"),
            n => o.push_str(&format!(
                "{n} payload{} applied, bottom first:\n",
                if n == 1 { "" } else { "s" }
            )),
        }
        for (i, e) in self.applied.iter().enumerate() {
            o.push_str(&format!(
                "  {}. {}  (v{}, format {}, {} {}, depends {})\n",
                i + 1,
                esc(&e.name),
                e.record_version,
                e.format,
                e.identity_kind,
                e.identity,
                e.depends.as_deref().unwrap_or("nothing")
            ));
            for s in &e.sites {
                o.push_str(&format!(
                    "     record {} {}: site {} {} -> {}\n",
                    s.record,
                    esc(&s.function),
                    s.addr,
                    s.original,
                    s.written
                ));
            }
            if verbose {
                for r in &e.regions {
                    o.push_str(&format!(
                        "     {} region {}, {} bytes\n",
                        r.kind, r.addr, r.size
                    ));
                }
            }
        }
        for a in &self.arenas {
            o.push_str(&format!(
                "arena {}: {} of {} bytes used\n",
                a.name, a.used, a.size
            ));
        }
        o
    }
}

/// Lists what is applied to an offline image.
pub(crate) fn image(image: &Path, json: bool, v: Verbosity) -> Result<Output, CliError> {
    let target = load::open_image(image)?;
    let engine = load::open_engine(target, image, &xsplice_loader::LoadOptions::default())?;
    let ledger = engine
        .ledger()
        .map_err(|e| CliError::new(format!("{}: {e}", image.display())))?;
    let report = ListReport::new(
        image.display().to_string(),
        engine.target().build_id(),
        &ledger,
        engine.target().arena_usage(),
    );
    render(&report, json, |r| r.text(v.verbose))
}
