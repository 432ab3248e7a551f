//! The `inspect` report: one model, printed as text or as JSON.
//!
//! The JSON shape is a stable interface documented in `cli/JSON.md`:
//! addresses are lowercase hex strings with `0x`, sizes, counts, indices and
//! bit masks are plain numbers, byte strings (build-ids, EXPECT bytes,
//! vendor data) are lowercase hex without `0x`. Keys are never removed in a
//! 0.x release without a CHANGELOG entry; new keys may be added.

use serde::Serialize;
use xsplice_abi::{AbiNote, Addr, FormatVersion, Incompat};
use xsplice_loader::LoadedPayload;

use crate::load::Loaded;
use crate::text::{esc, name_list};

/// Lowercase hex of bytes, no prefix.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// An address as `0x...` lowercase hex.
pub(crate) fn addr(a: Addr) -> String {
    format!("{:#x}", a.0)
}

/// The names of the defined incompat bits set in `bits`.
pub(crate) fn incompat_names(bits: Incompat) -> Vec<String> {
    Incompat::INFO
        .iter()
        .filter(|i| bits.bits() & (1u32 << i.bit) != 0)
        .map(|i| i.name.to_string())
        .collect()
}

/// `major.minor`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Format {
    /// Major: equals the record version.
    pub major: u16,
    /// Minor.
    pub minor: u16,
}

impl From<FormatVersion> for Format {
    fn from(f: FormatVersion) -> Self {
        Format {
            major: f.major,
            minor: f.minor,
        }
    }
}

/// The image a payload was loaded against.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImageReport {
    /// Path as given.
    pub path: String,
    /// Its GNU build-id, hex.
    pub build_id: Option<String>,
    /// Payloads already applied to it (its ledger), bottom first.
    pub applied: Vec<String>,
}

/// The ABI note.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NoteReport {
    /// Declared format.
    pub format: Format,
    /// Declared record version.
    pub record_version: u16,
    /// Declared record size.
    pub record_size: u16,
    /// Names of the incompat bits of the union.
    pub incompat: Vec<String>,
    /// The incompat union as a number.
    pub incompat_bits: u32,
    /// The payload compat bits.
    pub compat_bits: u32,
}

impl From<&AbiNote> for NoteReport {
    fn from(n: &AbiNote) -> Self {
        NoteReport {
            format: n.format.into(),
            record_version: n.record_version.number(),
            record_size: n.record_size,
            incompat: incompat_names(n.incompat),
            incompat_bits: n.incompat.bits(),
            compat_bits: n.compat.bits(),
        }
    }
}

/// One record.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecordReport {
    /// Index in `.xsplice.funcs`.
    pub index: u32,
    /// Function name.
    pub name: String,
    /// Replacement code address (relocated).
    pub new_addr: String,
    /// Replacement size (NOP: bytes to NOP out).
    pub new_size: u64,
    /// `old_addr` as stored (relocated); `0x0` = by name.
    pub old_addr: String,
    /// The function patched: `old_addr`, or the symbol `name` resolved in
    /// the image; `null` when resolved by name without an image.
    pub resolved_old_addr: Option<String>,
    /// The patch site, `resolved_old_addr + patch_offset` (`null` likewise).
    pub site: Option<String>,
    /// Size of the patched function.
    pub old_size: u64,
    /// Names of the incompat bits set.
    pub incompat: Vec<String>,
    /// Incompat bits as a number.
    pub incompat_bits: u32,
    /// Compat bits as a number (unknown ones included).
    pub compat_bits: u32,
    /// PATCH_OFFSET.
    pub patch_offset: u32,
    /// SYMPOS.
    pub sympos: u32,
    /// EXPECT bytes, hex ("" when none).
    pub expect: String,
}

/// One hook pointer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HookReport {
    /// `load`, `preapply`, ... (the section name's last part).
    pub point: String,
    /// Index within its section.
    pub index: usize,
    /// Address of the hook function.
    pub addr: String,
}

/// One vendor entry.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VendorReport {
    /// Offset within `.xsplice.vendor`.
    pub offset: usize,
    /// Vendor id.
    pub vendor: u32,
    /// Kind.
    pub kind: u16,
    /// CRITICAL flag.
    pub critical: bool,
    /// Record index, or `null` for the whole payload.
    pub record: Option<u32>,
    /// Data length.
    pub len: usize,
    /// Data, hex.
    pub data: String,
    /// Whether this loader knows `(vendor, kind)`.
    pub known: bool,
}

/// One loaded section.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SectionReport {
    /// Section name.
    pub name: String,
    /// `text`, `rodata` or `data`.
    pub region: &'static str,
    /// Address it was placed at.
    pub addr: String,
    /// Size.
    pub size: u64,
}

/// Everything `inspect` says about a payload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// The payload path as given.
    pub file: String,
    /// The image it was loaded against; `null` for a dry run.
    pub image: Option<ImageReport>,
    /// `x86_64` or `aarch64`.
    pub arch: &'static str,
    /// The format version (1.0 for a legacy payload without the note).
    pub format: Format,
    /// The ABI note, `null` for a v1 legacy payload.
    pub note: Option<NoteReport>,
    /// Record version (1, 2, 3).
    pub record_version: u16,
    /// Record size in bytes.
    pub record_size: usize,
    /// The records.
    pub records: Vec<RecordReport>,
    /// The payload's own build-id, hex.
    pub build_id: Option<String>,
    /// The build-id it depends on, hex.
    pub depends: Option<String>,
    /// Hooks.
    pub hooks: Vec<HookReport>,
    /// Vendor entries.
    pub vendor: Vec<VendorReport>,
    /// Loaded sections.
    pub sections: Vec<SectionReport>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Dry run: names resolved to the placeholder (empty with an image).
    pub unresolved: Vec<String>,
    /// The signature and whether it verified against the --trusted-key keys.
    pub signature: crate::sign::SignatureReport,
}

impl Report {
    /// Builds the report of a loaded payload.
    pub fn new(file: &str, loaded: &Loaded) -> Report {
        let p: &LoadedPayload = &loaded.payload;
        let dry = loaded.unresolved.is_some();
        let placeholder = xsplice_loader::PLACEHOLDER;
        let records = p
            .records
            .iter()
            .map(|r| {
                let f = &r.func;
                // In a dry run, a by-name record, or an old_addr relocated
                // against an undefined symbol, holds no real address.
                let unresolved = dry && (f.old_addr.is_null() || f.old_addr == placeholder);
                RecordReport {
                    index: r.index.0,
                    name: r.name.clone(),
                    new_addr: addr(f.new_addr),
                    new_size: f.new_size,
                    old_addr: addr(f.old_addr),
                    resolved_old_addr: (!unresolved).then(|| addr(r.old_addr)),
                    site: (!unresolved).then(|| addr(r.site)),
                    old_size: f.old_size,
                    incompat: incompat_names(f.incompat),
                    incompat_bits: f.incompat.bits(),
                    compat_bits: f.compat.bits(),
                    patch_offset: f.patch_offset,
                    sympos: f.sympos,
                    expect: hex(f.expect.as_slice()),
                }
            })
            .collect();
        Report {
            file: file.to_string(),
            image: loaded.image.as_ref().map(|i| ImageReport {
                path: i.path.clone(),
                build_id: i.build_id.as_deref().map(hex),
                applied: i.applied.clone(),
            }),
            arch: p.arch.name(),
            format: p.format.into(),
            note: p.note.as_ref().map(NoteReport::from),
            record_version: p.record_version.number(),
            record_size: p.record_size,
            records,
            build_id: p.build_id.as_deref().map(hex),
            depends: p.depends.as_deref().map(hex),
            hooks: p
                .hooks
                .iter()
                .map(|h| HookReport {
                    point: h
                        .point
                        .section()
                        .trim_start_matches(".xsplice.hooks.")
                        .to_string(),
                    index: h.index,
                    addr: addr(h.addr),
                })
                .collect(),
            vendor: p
                .vendor
                .iter()
                .map(|v| VendorReport {
                    offset: v.offset,
                    vendor: v.vendor,
                    kind: v.kind,
                    critical: v.critical,
                    record: v.record.map(|r| r.0),
                    len: v.data.len(),
                    data: hex(&v.data),
                    known: v.known,
                })
                .collect(),
            sections: p
                .sections
                .iter()
                .map(|s| SectionReport {
                    name: s.name.clone(),
                    region: s.kind.name(),
                    addr: addr(s.addr),
                    size: s.size,
                })
                .collect(),
            warnings: p.warnings.iter().map(ToString::to_string).collect(),
            unresolved: loaded.unresolved.clone().unwrap_or_default(),
            signature: (&p.signature).into(),
        }
    }

    /// The report as text; `verbose` adds the section list.
    pub fn text(&self, verbose: bool) -> String {
        let mut o = String::new();
        let mut kv = |k: &str, v: &str| {
            o.push_str(&format!("{k:<12}{v}\n"));
        };
        kv("file", &self.file);
        match &self.image {
            Some(i) => {
                kv(
                    "image",
                    &format!(
                        "{} (build-id {})",
                        i.path,
                        i.build_id.as_deref().unwrap_or("none")
                    ),
                );
                if !i.applied.is_empty() {
                    kv("patched by", &i.applied.join(", "));
                }
            }
            None => kv("image", "none (dry run: synthetic addresses)"),
        }
        kv("arch", self.arch);
        kv("signature", &self.signature.text());
        kv(
            "format",
            &format!("{}.{}", self.format.major, self.format.minor),
        );
        match &self.note {
            Some(n) => kv(
                "note",
                &format!(
                    "format {}.{}, records v{} of {} bytes, incompat {} ({:#x}), compat {:#x}",
                    n.format.major,
                    n.format.minor,
                    n.record_version,
                    n.record_size,
                    names_or_none(&n.incompat),
                    n.incompat_bits,
                    n.compat_bits
                ),
            ),
            None => kv("note", "none (v1 legacy)"),
        }
        kv(
            "records",
            &format!(
                "{} x v{}, {} bytes each",
                self.records.len(),
                self.record_version,
                self.record_size
            ),
        );
        kv("build-id", self.build_id.as_deref().unwrap_or("none"));
        kv("depends", self.depends.as_deref().unwrap_or("none"));
        for r in &self.records {
            o.push_str(&format!("\nrecord {}  {}\n", r.index, esc(&r.name)));
            let mut f = |k: &str, v: String| o.push_str(&format!("  {k:<14}{v}\n"));
            f("new_addr", r.new_addr.clone());
            f("new_size", r.new_size.to_string());
            let by_name = r.old_addr == "0x0";
            let resolved = match &r.resolved_old_addr {
                Some(a) if by_name => format!("0x0 (by name) -> {a}"),
                Some(_) => r.old_addr.clone(),
                None if by_name => "0x0 (by name) -> unresolved (no image given)".to_string(),
                None => format!(
                    "{} (dry-run placeholder of an undefined symbol: unresolved, no image given)",
                    r.old_addr
                ),
            };
            f("old_addr", resolved);
            f("old_size", r.old_size.to_string());
            if let Some(site) = &r.site {
                f("site", site.clone());
            }
            f(
                "incompat",
                format!("{} ({:#x})", names_or_none(&r.incompat), r.incompat_bits),
            );
            f("compat", format!("{:#x}", r.compat_bits));
            f("patch_offset", r.patch_offset.to_string());
            f("sympos", r.sympos.to_string());
            f(
                "expect",
                if r.expect.is_empty() {
                    "none".to_string()
                } else {
                    r.expect.clone()
                },
            );
        }
        if !self.hooks.is_empty() {
            o.push_str("\nhooks\n");
            for h in &self.hooks {
                o.push_str(&format!(
                    "  {:<14}{}\n",
                    format!("{}[{}]", h.point, h.index),
                    h.addr
                ));
            }
        }
        if !self.vendor.is_empty() {
            o.push_str("\nvendor entries\n");
            for v in &self.vendor {
                o.push_str(&format!(
                    "  offset {:#x}: vendor {:#010x} kind {}, {}, {}{}, {} bytes{}{}\n",
                    v.offset,
                    v.vendor,
                    v.kind,
                    v.record
                        .map_or_else(|| "whole payload".to_string(), |r| format!("record {r}")),
                    if v.critical {
                        "critical"
                    } else {
                        "non-critical"
                    },
                    if v.known { ", known" } else { ", unknown" },
                    v.len,
                    if v.data.is_empty() { "" } else { ": " },
                    v.data
                ));
            }
        }
        if verbose {
            o.push_str("\nsections\n");
            for s in &self.sections {
                o.push_str(&format!(
                    "  {:<26}{:<8}{:<20}{}\n",
                    esc(&s.name),
                    s.region,
                    s.addr,
                    s.size
                ));
            }
        }
        if !self.warnings.is_empty() {
            o.push_str("\nwarnings\n");
            for w in &self.warnings {
                o.push_str(&format!("  {}\n", esc(w)));
            }
        }
        if self.image.is_none() {
            o.push_str(&format!(
                "\nunresolved (no image given): {}\n",
                name_list(&self.unresolved, verbose)
            ));
        }
        o
    }
}

fn names_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join("|")
    }
}
