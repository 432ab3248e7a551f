//! The record checks of a load: each decoded record's name, sizes, new
//! code and patch site, against the laid-out payload and the target's
//! symbols; and the ABI note against the records.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xsplice_abi::sections;
use xsplice_abi::{AbiNote, Addr, FormatVersion, Incompat, RecordVersion, Records};

use super::{LoadWarning, PatchRecord, NAME_MAX};
use crate::elf::PayloadElf;
use crate::error::{LoadError, NoteProblem, RecordProblem};
use crate::layout::Layout;
use crate::{patch, RegionKind, SymbolSource};

/// Checks every decoded record and resolves its patch site; gives the
/// records and the union of their incompat bits.
pub(super) fn check_records(
    elf: &PayloadElf<'_>,
    layout: &Layout,
    symbols: &dyn SymbolSource,
    decoded: &Records<'_>,
    warnings: &mut Vec<LoadWarning>,
) -> Result<(Vec<PatchRecord>, Incompat), LoadError> {
    let mut union = Incompat::empty();
    let mut records = Vec::with_capacity(decoded.len());
    // Names seen so far: a map, so a payload of many records stays O(n log n).
    let mut names = BTreeMap::new();
    let text = layout
        .region(RegionKind::Text)
        .map(|t| (t.addr.0, t.addr.0.saturating_add(t.bytes.len() as u64)));
    let strings = StringSections::new(elf, layout);
    for rec in decoded.iter() {
        let rec = rec.map_err(LoadError::Records)?;
        for w in rec.warnings().iter() {
            warnings.push(LoadWarning::Record {
                record: rec.index,
                warning: w,
            });
        }
        union |= rec.func.incompat;
        let name = strings
            .check(rec.func.name)
            .and_then(|()| read_name(layout, rec.func.name))
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
            warnings.push(LoadWarning::NewPastText {
                record: rec.index,
                new_size: f.new_size,
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
    Ok((records, union))
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
    let start = ptr
        .0
        .checked_sub(region.addr.0)
        .and_then(|d| usize::try_from(d).ok())
        .ok_or(RecordProblem::NameOutside(ptr))?;
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
pub(super) fn check_note(
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
    if note.incompat.difference(Incompat::payload_level()) != union {
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
