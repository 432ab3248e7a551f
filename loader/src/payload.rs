//! The load pipeline: validated ELF → section layout → symbol resolution →
//! relocation → record decoding and checks → [`LoadedPayload`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xsplice_abi::sections::{self, HookPoint};
use xsplice_abi::vendor::{VendorEntries, VendorTarget};
use xsplice_abi::{
    AbiNote, Addr, FormatVersion, Incompat, NoteError, PatchFunc, RecordIndex, RecordVersion,
    Warning, NOTE_NAME, NOTE_TYPE,
};

use crate::arch_tables::{self, ArchTables};
use crate::elf::PayloadElf;
use crate::error::{LoadError, NoteProblem, RecordProblem, SectionProblem, VendorProblem};
use crate::layout::{lay_out, loaded_bytes, Layout};
use crate::link::{relocate, resolve_symbols};
use crate::signature::SignatureStatus;
use crate::{notes, patch, Allocator, Arch, LoadOptions, RegionKind, Symbol, SymbolSource};

pub use xsplice_abi::NAME_MAX;

/// One region of a loaded payload: its final address and relocated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Text (RX), read-only (R) or data (RW).
    pub kind: RegionKind,
    /// Address the target allocated.
    pub addr: Addr,
    /// Alignment the region needs.
    pub align: u64,
    /// Relocated contents, ready to be copied to `addr`.
    pub bytes: Vec<u8>,
}

impl Region {
    /// Whether `[addr, addr+len)` lies inside this region.
    pub fn contains(&self, addr: Addr, len: u64) -> bool {
        let end = self.addr.0.saturating_add(self.bytes.len() as u64);
        addr.0 >= self.addr.0 && addr.0.checked_add(len).is_some_and(|e| e <= end)
    }

    /// The bytes at `[addr, addr+len)`, if inside.
    pub fn slice(&self, addr: Addr, len: u64) -> Option<&[u8]> {
        if !self.contains(addr, len) {
            return None;
        }
        let start = usize::try_from(addr.0 - self.addr.0).ok()?;
        self.bytes
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// Where one loaded section went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSection {
    /// Section name.
    pub name: String,
    /// Region it was placed in.
    pub kind: RegionKind,
    /// Final address.
    pub addr: Addr,
    /// Size in bytes.
    pub size: u64,
}

/// A record after relocation, decoding and resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRecord {
    /// Index in `.xsplice.funcs`.
    pub index: RecordIndex,
    /// The function name.
    pub name: String,
    /// The canonical view, relocated (as the record holds it).
    pub func: PatchFunc,
    /// The function to patch: `func.old_addr`, or the target symbol named
    /// `name` when that is 0.
    pub old_addr: Addr,
    /// The patch site: `old_addr + patch_offset`.
    pub site: Addr,
}

/// A hook pointer from a `.xsplice.hooks.*` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// When it runs.
    pub point: HookPoint,
    /// Its index within its section.
    pub index: usize,
    /// The function's address.
    pub addr: Addr,
}

/// A vendor entry, copied out of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorEntry {
    /// Offset within `.xsplice.vendor`.
    pub offset: usize,
    /// Vendor id.
    pub vendor: u32,
    /// Kind.
    pub kind: u16,
    /// CRITICAL flag.
    pub critical: bool,
    /// Record index, or `None` for the whole payload.
    pub record: Option<RecordIndex>,
    /// Data.
    pub data: Vec<u8>,
    /// Whether the loader was told it knows this (vendor, kind).
    pub known: bool,
}

/// A global symbol the payload defines, visible to payloads loaded later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Name.
    pub name: String,
    /// Address and size.
    pub symbol: Symbol,
}

/// Something accepted that a `check` should mention.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadWarning {
    /// A record warning from the ABI decoder.
    Record {
        /// The record.
        record: RecordIndex,
        /// The warning text.
        what: String,
    },
    /// The note has compat bits this loader does not know.
    NoteUnknownCompat {
        /// The bits.
        bits: u32,
    },
    /// An alternative names a CPU feature number this loader does not know
    /// for the payload's machine: it is never applied.
    UnknownCpuFeature {
        /// Entry index in `.xsplice.altinstructions`.
        entry: usize,
        /// The feature number.
        number: u16,
    },
    /// A non-critical vendor entry this loader does not know was skipped.
    UnknownVendorEntry {
        /// Offset.
        offset: usize,
        /// Vendor id.
        vendor: u32,
        /// Kind.
        kind: u16,
    },
}

impl core::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadWarning::Record { record, what } => write!(f, "{record}: {what}"),
            LoadWarning::NoteUnknownCompat { bits } => {
                write!(f, "`.note.xsplice`: unknown compat bits {bits:#x} ignored")
            }
            LoadWarning::UnknownCpuFeature { entry, number } => write!(
                f,
                "`.xsplice.altinstructions` entry {entry}: unknown CPU feature number {number}, left unapplied"
            ),
            LoadWarning::UnknownVendorEntry { offset, vendor, kind } => write!(
                f,
                "`.xsplice.vendor`: unknown entry at offset {offset:#x} (vendor {vendor:#010x}, kind {kind}) skipped"
            ),
        }
    }
}

/// A payload laid out, relocated and decoded: everything the patch engine
/// needs, with no further parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedPayload {
    /// Machine.
    pub arch: Arch,
    /// The regions, with relocated bytes, to be mapped at their addresses.
    pub regions: Vec<Region>,
    /// Every loaded section.
    pub sections: Vec<LoadedSection>,
    /// The format version (from the note; 1.0 for a legacy payload).
    pub format: FormatVersion,
    /// The ABI note, when present.
    pub note: Option<AbiNote>,
    /// The record version shared by every record.
    pub record_version: RecordVersion,
    /// The record size shared by every record.
    pub record_size: usize,
    /// The records.
    pub records: Vec<PatchRecord>,
    /// The payload's own build-id.
    pub build_id: Option<Vec<u8>>,
    /// The build-id this payload depends on.
    pub depends: Option<Vec<u8>>,
    /// Hooks, in section then array order.
    pub hooks: Vec<Hook>,
    /// Vendor entries.
    pub vendor: Vec<VendorEntry>,
    /// Global symbols the payload defines.
    pub exports: Vec<Export>,
    /// Warnings.
    pub warnings: Vec<LoadWarning>,
    /// The payload's signature and whether it verified.
    pub signature: SignatureStatus,
    /// The architecture-specific tables, resolved (SPEC.md section 17).
    pub arch_tables: ArchTables,
}

impl LoadedPayload {
    /// The hooks that run at `point`, in order.
    pub fn hooks_at(&self, point: HookPoint) -> impl Iterator<Item = &Hook> + '_ {
        self.hooks.iter().filter(move |h| h.point == point)
    }

    /// The text region, if the payload has code.
    pub fn text(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.kind == RegionKind::Text)
    }

    /// The relocated bytes at `[addr, addr+len)` in any region.
    pub fn bytes_at(&self, addr: Addr, len: u64) -> Option<&[u8]> {
        self.regions.iter().find_map(|r| r.slice(addr, len))
    }
}

/// Reads the ABI note, if the payload has one.
fn read_note(elf: &PayloadElf<'_>) -> Result<Option<AbiNote>, LoadError> {
    let Some(i) = elf.find(sections::NOTE) else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for n in notes::notes(elf.data(i)) {
        let n = n.map_err(|e| LoadError::Note(NoteProblem::Framing(e)))?;
        if n.name == NOTE_NAME.as_slice() && n.ntype == NOTE_TYPE {
            found.push(n.desc);
        }
    }
    match found.as_slice() {
        [desc] => AbiNote::decode(desc)
            .map(Some)
            .map_err(|e| LoadError::Note(NoteProblem::Descriptor(e))),
        other => Err(LoadError::Note(NoteProblem::Count(other.len()))),
    }
}

fn read_build_id(
    elf: &PayloadElf<'_>,
    section: &'static str,
) -> Result<Option<Vec<u8>>, LoadError> {
    let Some(i) = elf.find(section) else {
        return Ok(None);
    };
    notes::build_id(elf.data(i))
        .map(|id| Some(id.to_vec()))
        .map_err(|why| LoadError::BuildId { section, why })
}

/// Loads an untrusted payload: validates it, lays it out through `alloc`,
/// resolves its undefined symbols and `old_addr == 0` records through
/// `symbols`, relocates it, and decodes and checks its records.
///
/// Nothing is written to the target: the result holds the relocated bytes
/// of each region, which the patch engine maps.
///
/// The signature is checked first ([`crate::signature::check`], under
/// [`LoadOptions::signature_policy`]), before any ELF parsing; the ELF
/// parser then sees exactly the signed bytes, never the trailer.
pub fn load(
    bytes: &[u8],
    opts: &LoadOptions,
    symbols: &dyn SymbolSource,
    alloc: &mut dyn Allocator,
) -> Result<LoadedPayload, LoadError> {
    // The size limit first: verifying hashes the whole input.
    if bytes.len() > opts.max_size {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: opts.max_size,
        });
    }
    let (bytes, signature) =
        crate::signature::check(bytes, opts.signature_policy, &opts.trusted_keys)
            .map_err(LoadError::Signature)?;
    let elf = PayloadElf::parse(bytes, opts)?;
    let funcs = elf
        .find(sections::FUNCS)
        .ok_or(LoadError::MissingSection(sections::FUNCS))?;
    if elf.symtab.is_none() {
        return Err(LoadError::MissingSection(".symtab"));
    }
    // Everything that needs no addresses is checked before the target is
    // asked for memory.
    let note = read_note(&elf)?;
    if let Some(n) = &note {
        let unsupported = n.incompat - opts.incompat_supported;
        if let Some(bit) = unsupported.iter().next() {
            return Err(LoadError::Note(NoteProblem::Descriptor(
                NoteError::UnknownIncompat {
                    bit: bit.bits().trailing_zeros() as u8,
                },
            )));
        }
    }
    arch_tables::precheck(&elf, note.as_ref(), &opts.unhonoured_tables)?;
    let build_id = read_build_id(&elf, sections::BUILD_ID)?;
    let depends = read_build_id(&elf, sections::DEPENDS)?;
    if !elf.is_alloc(funcs) {
        return Err(elf.section_err(funcs, SectionProblem::Contents("is not SHF_ALLOC")));
    }

    let entsize = elf.sections.get(funcs).map_or(0, |s| s.sh_entsize);
    // The section-level rules (version, size, entsize, length) hold on the
    // unrelocated bytes, since relocations may only touch pointer fields.
    let unrelocated = xsplice_abi::decode(elf.data(funcs), entsize).map_err(LoadError::Records)?;
    let record_shape = (unrelocated.version(), unrelocated.size() as u64);

    let mut layout = lay_out(&elf, opts, alloc)?;
    let (addrs, exports) = resolve_symbols(&elf, &layout, symbols)?;
    relocate(
        &elf,
        &mut layout,
        &addrs,
        record_shape,
        opts.position_independent,
    )?;

    let mut warnings = Vec::new();
    let funcs_bytes = loaded_bytes(&elf, &layout, funcs).unwrap_or(&[]);
    let decoded = xsplice_abi::decode(funcs_bytes, entsize).map_err(LoadError::Records)?;
    let mut union = Incompat::empty();
    let mut records = Vec::with_capacity(decoded.len());
    // Names seen so far: a map, so a payload of many records stays O(n log n).
    let mut names = alloc::collections::BTreeMap::new();
    let text = layout
        .region(RegionKind::Text)
        .map(|t| (t.addr.0, t.addr.0.saturating_add(t.bytes.len() as u64)));
    let strings = StringSections::new(&elf, &layout);
    for rec in decoded.iter() {
        let rec = rec.map_err(LoadError::Records)?;
        for w in rec.warnings().iter() {
            let what = match w {
                Warning::UnknownCompat { bit } => {
                    alloc::format!("unknown compat bit {bit} ignored")
                }
                other => other.to_string(),
            };
            warnings.push(LoadWarning::Record {
                record: rec.index,
                what,
            });
        }
        union |= rec.func.incompat;
        let name = strings
            .check(rec.func.name)
            .and_then(|()| read_name(&layout, rec.func.name))
            .map_err(|problem| LoadError::Record {
                record: rec.index,
                name: String::new(),
                problem,
            })?;
        let record_err = |problem| LoadError::Record {
            record: rec.index,
            name: name.clone(),
            problem,
        };
        if let Some(other) = names.insert(name.clone(), rec.index) {
            return Err(record_err(RecordProblem::DuplicateName(other.0)));
        }
        let f = rec.func;
        if f.is_nop() {
            // NOP records have no new code; their size is checked against
            // the instruction size when the patch bytes are made.
        } else if f.new_addr.is_null() {
            return Err(record_err(RecordProblem::NullNewAddr));
        } else if !text.is_some_and(|(lo, hi)| (lo..hi).contains(&f.new_addr.0)) {
            return Err(record_err(RecordProblem::NewOutsideText {
                addr: f.new_addr,
                size: f.new_size,
            }));
        } else if text.is_some_and(|(_, hi)| f.new_addr.0.saturating_add(f.new_size) > hi) {
            // Only new_addr is used to patch; a new_size running past the
            // text (a C author's estimate) is reported, not refused.
            warnings.push(LoadWarning::Record {
                record: rec.index,
                what: alloc::format!(
                    "new_size {:#x} runs past the end of the payload's text",
                    f.new_size
                ),
            });
        }
        if f.is_nop() && f.new_size > patch::MAX_NOP {
            return Err(record_err(RecordProblem::NopTooLong {
                len: f.new_size,
                max: patch::MAX_NOP,
            }));
        }
        let needed = if f.is_nop() {
            f.new_size
        } else {
            elf.arch.patch_size() as u64
        };
        if u64::from(f.patch_offset).saturating_add(needed) > f.old_size
            || f.old_size < elf.arch.patch_size() as u64
        {
            return Err(record_err(RecordProblem::OldTooSmall {
                old_size: f.old_size,
                patch_offset: f.patch_offset,
                needed,
                arch: elf.arch,
            }));
        }
        let old_addr = if f.old_addr.is_null() {
            let found = if f.sympos != 0 {
                symbols
                    .lookup_local(&name, f.sympos)
                    .ok_or(RecordProblem::NoSuchLocal(f.sympos))
            } else {
                symbols.lookup(&name).ok_or(RecordProblem::Unresolved)
            };
            let found = found.map_err(record_err)?;
            // NOPs or a jump past the function's own end would erase its
            // neighbour (an `old_size` larger than the function says nothing
            // about what follows it).
            let end = u64::from(f.patch_offset).saturating_add(needed);
            if found.size != 0 && end > found.size {
                let (end, size) = (end, found.size);
                return Err(record_err(if f.is_nop() {
                    RecordProblem::NopPastFunction { end, size }
                } else {
                    RecordProblem::PatchPastFunction { end, size }
                }));
            }
            found.addr
        } else {
            f.old_addr
        };
        let site = old_addr
            .checked_add(u64::from(f.patch_offset))
            .ok_or_else(|| record_err(RecordProblem::SiteOverflow))?;
        records.push(PatchRecord {
            index: rec.index,
            name,
            func: f,
            old_addr,
            site,
        });
    }

    let (record_version, record_size) = (decoded.version(), decoded.size());
    let format = check_note(
        note.as_ref(),
        record_version,
        record_size,
        union,
        &mut warnings,
    )?;
    let hooks = read_hooks(&elf, &layout)?;
    let arch_tables = arch_tables::resolve(&elf, &layout)?;
    for a in arch_tables.alt_entries().iter().filter(|a| !a.known) {
        warnings.push(LoadWarning::UnknownCpuFeature {
            entry: a.index,
            number: a.feature.number,
        });
    }
    let vendor = read_vendor(&elf, opts, records.len(), &mut warnings)?;
    let sections = (1..elf.sections.len())
        .filter_map(|i| {
            let p = (*layout.placements.get(i)?)?;
            Some(LoadedSection {
                name: elf.section_name(i).to_string(),
                kind: p.kind,
                addr: Addr(layout.addr_of(i)?),
                size: elf.sections.get(i)?.sh_size,
            })
        })
        .collect();
    Ok(LoadedPayload {
        arch: elf.arch,
        regions: layout.regions,
        sections,
        format,
        note,
        record_version,
        record_size,
        records,
        build_id,
        depends,
        hooks,
        vendor,
        exports,
        warnings,
        signature,
        arch_tables,
    })
}

/// The loaded sections a record name may point into, sorted by address:
/// data sections of the payload's own (the writer's `.xsplice.strings`
/// included), not the format's tables (records, vendor entries, depends,
/// hooks) nor notes, whose bytes a rewrite (`upgrade`) moves or re-encodes,
/// so a name there would silently change.
struct StringSections {
    /// `(start, end)` of each allowed section.
    spans: Vec<(u64, u64)>,
    /// `(start, end)` of every loaded section (to tell "outside" from "in a
    /// format section").
    all: Vec<(u64, u64)>,
}

impl StringSections {
    fn new(elf: &PayloadElf<'_>, layout: &Layout) -> Self {
        let mut spans = Vec::new();
        let mut all = Vec::new();
        for i in 1..elf.sections.len() {
            let (Some(start), Some(s)) = (layout.addr_of(i), elf.sections.get(i)) else {
                continue;
            };
            let span = (start, start.saturating_add(s.sh_size));
            all.push(span);
            let name = elf.section_name(i);
            let format_table = [sections::FUNCS, sections::VENDOR, sections::DEPENDS]
                .contains(&name)
                || name.starts_with(".xsplice.hooks.")
                || name.starts_with(".note");
            // Code and unwind tables are no place for a name either: their
            // bytes are relocated and laid out again by `upgrade` (a
            // fuzzing find: a name in `.eh_frame` changed through it).
            let not_data = elf.is_exec(i) || name == ".eh_frame";
            if !format_table && !not_data {
                spans.push(span);
            }
        }
        spans.sort_unstable();
        all.sort_unstable();
        StringSections { spans, all }
    }

    fn find(spans: &[(u64, u64)], ptr: Addr) -> Option<(u64, u64)> {
        let i = spans.partition_point(|(s, _)| *s <= ptr.0);
        spans
            .get(i.checked_sub(1)?)
            .copied()
            .filter(|(_, e)| ptr.0 < *e)
    }

    /// Whether a name at `ptr` starts in an allowed section and its NUL
    /// lies inside that section (checked by [`read_name`] on the span).
    fn check(&self, ptr: Addr) -> Result<(), RecordProblem> {
        match Self::find(&self.spans, ptr) {
            Some(_) => Ok(()),
            None if Self::find(&self.all, ptr).is_some() => {
                Err(RecordProblem::NameInFormatSection(ptr))
            }
            None => Err(RecordProblem::NameOutside(ptr)),
        }
    }
}

/// Reads a record's name: NUL-terminated, at most [`NAME_MAX`] bytes,
/// inside a loaded section of the payload.
fn read_name(layout: &Layout, ptr: Addr) -> Result<String, RecordProblem> {
    let region = layout
        .regions
        .iter()
        .find(|r| r.contains(ptr, 1))
        .ok_or(RecordProblem::NameOutside(ptr))?;
    let start =
        usize::try_from(ptr.0 - region.addr.0).map_err(|_| RecordProblem::NameOutside(ptr))?;
    let tail = region.bytes.get(start..).unwrap_or(&[]);
    let window = tail.get(..tail.len().min(NAME_MAX + 1)).unwrap_or(&[]);
    let end = window
        .iter()
        .position(|&b| b == 0)
        .ok_or(RecordProblem::NameTooLong)?;
    let name = core::str::from_utf8(window.get(..end).unwrap_or(&[]))
        .map_err(|_| RecordProblem::NameInvalid)?;
    if name.is_empty() {
        return Err(RecordProblem::NameInvalid);
    }
    Ok(name.to_string())
}

/// Checks the note against the records; returns the payload's format.
fn check_note(
    note: Option<&AbiNote>,
    version: RecordVersion,
    size: usize,
    union: Incompat,
    warnings: &mut Vec<LoadWarning>,
) -> Result<FormatVersion, LoadError> {
    let Some(note) = note else {
        if version != RecordVersion::V1 {
            return Err(LoadError::Note(NoteProblem::MissingForVersion(version)));
        }
        return Ok(FormatVersion::new(1, 0));
    };
    let disagree = |field, note: u64, records: u64| {
        LoadError::Note(NoteProblem::Disagrees {
            field,
            note,
            records,
        })
    };
    if note.record_version != version {
        return Err(disagree(
            "record_version",
            u64::from(note.record_version.number()),
            u64::from(version.number()),
        ));
    }
    if usize::from(note.record_size) != size {
        return Err(disagree(
            "record_size",
            u64::from(note.record_size),
            size as u64,
        ));
    }
    // Payload-level bits (ARCH) are the note's own, not the records'.
    if note.incompat - Incompat::payload_level() != union {
        return Err(disagree(
            "incompat",
            u64::from(note.incompat.bits()),
            u64::from(union.bits()),
        ));
    }
    let unknown = note.compat.unknown();
    if !unknown.is_empty() {
        warnings.push(LoadWarning::NoteUnknownCompat {
            bits: unknown.bits(),
        });
    }
    Ok(note.format)
}

fn read_hooks(elf: &PayloadElf<'_>, layout: &Layout) -> Result<Vec<Hook>, LoadError> {
    let mut hooks = Vec::new();
    let text = layout.region(RegionKind::Text);
    for point in HookPoint::ALL {
        let Some(i) = elf.find(point.section()) else {
            continue;
        };
        let bytes = loaded_bytes(elf, layout, i).unwrap_or(&[]);
        if bytes.len() % 8 != 0 {
            return Err(elf.section_err(
                i,
                SectionProblem::Contents("size is not a multiple of 8 (an array of u64 pointers)"),
            ));
        }
        for (index, word) in bytes.chunks_exact(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let addr = Addr(u64::from_le_bytes(w));
            if !text.is_some_and(|t| t.contains(addr, 1)) {
                return Err(elf.section_err(
                    i,
                    SectionProblem::Contents("a hook pointer is not inside the payload's text"),
                ));
            }
            hooks.push(Hook { point, index, addr });
        }
    }
    Ok(hooks)
}

fn read_vendor(
    elf: &PayloadElf<'_>,
    opts: &LoadOptions,
    record_count: usize,
    warnings: &mut Vec<LoadWarning>,
) -> Result<Vec<VendorEntry>, LoadError> {
    let Some(i) = elf.find(sections::VENDOR) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in VendorEntries::new(elf.data(i)) {
        let (offset, e) = e.map_err(|e| LoadError::Vendor(VendorProblem::Malformed(e)))?;
        let record = match e.target {
            VendorTarget::Record(r) => {
                if r.0 as usize >= record_count {
                    return Err(LoadError::Vendor(VendorProblem::NoSuchRecord {
                        offset,
                        record: r.0,
                        count: record_count,
                    }));
                }
                Some(r)
            }
            VendorTarget::Payload => None,
            // A later kind of target this loader does not know: the entry
            // is kept for the whole payload (its data is still reported).
            _ => None,
        };
        let known = opts.known_vendor_entries.contains(&(e.vendor.0, e.kind));
        if !known {
            if e.critical {
                return Err(LoadError::Vendor(VendorProblem::UnknownCritical {
                    offset,
                    vendor: e.vendor.0,
                    kind: e.kind,
                }));
            }
            warnings.push(LoadWarning::UnknownVendorEntry {
                offset,
                vendor: e.vendor.0,
                kind: e.kind,
            });
        }
        out.push(VendorEntry {
            offset,
            vendor: e.vendor.0,
            kind: e.kind,
            critical: e.critical,
            record,
            data: e.data.to_vec(),
            known,
        });
    }
    Ok(out)
}
