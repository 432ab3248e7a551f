//! [`rewrite_version`]: a payload's records in another version (what
//! `xsplice upgrade` runs).

use alloc::string::String;
use alloc::vec::Vec;

use object::build::elf::{Builder, SectionData, SectionId, SymbolId};
use object::build::Id;
use object::elf;
use xsplice_abi::sections::{FUNCS, NOTE};
use xsplice_abi::{encode, AbiNote, Incompat, RecordVersion, NOTE_NAME, NOTE_TYPE};

use super::obj::{
    abi_note, add_section, find_section, read_object, reference_into, section_bytes, self_check,
    write_out, PREFIX,
};
use super::WriteError;
use crate::elf::note;
use crate::{LoadError, LoadOptions};

/// Where offsets of the old `.xsplice.funcs` go in the new one.
struct Remap {
    old: u64,
    new: u64,
    count: u64,
}

impl Remap {
    /// A place in the shared prefix of a record (a relocated field).
    fn field(&self, offset: u64) -> Option<u64> {
        let (index, within) = (offset.checked_div(self.old)?, offset.checked_rem(self.old)?);
        if index >= self.count || within >= PREFIX {
            return None;
        }
        index.checked_mul(self.new)?.checked_add(within)
    }

    /// A place a symbol or a relocation target may be: a field of the
    /// prefix, a record start, or the end of the section.
    fn point(&self, offset: u64) -> Option<u64> {
        if Some(offset) == self.count.checked_mul(self.old) {
            return self.count.checked_mul(self.new);
        }
        self.field(offset)
    }
}

/// Gives every relocation section whose `sh_info` was read without
/// `SHF_INFO_LINK` its target section, so that removing a section cannot
/// leave a stale index behind.
fn link_relocation_targets(b: &mut Builder<'_>) {
    let ids: Vec<(usize, SectionId)> = b
        .sections
        .iter()
        .map(|s| (s.id().index(), s.id()))
        .collect();
    for s in b.sections.iter_mut() {
        let is_rel = s.sh_type == elf::SHT_RELA || s.sh_type == elf::SHT_REL;
        if !is_rel || s.sh_info_section.is_some() || s.sh_info == 0 {
            continue;
        }
        // Builder section ids are ELF section indices minus one.
        let Some(index) = (s.sh_info as usize).checked_sub(1) else {
            continue;
        };
        s.sh_info_section = ids.iter().find(|(i, _)| *i == index).map(|(_, id)| *id);
    }
}

/// Rewrites a payload's records into version `to`: what `xsplice upgrade`
/// runs. The payload must load with [`LoadOptions::default`]; see
/// [`rewrite_version_with`].
pub fn rewrite_version(payload: &[u8], to: RecordVersion) -> Result<Vec<u8>, WriteError> {
    rewrite_version_with(payload, to, &LoadOptions::default())
}

/// Rewrites a payload's records into version `to`.
///
/// The payload must load with `opts` (as a dry run, see the
/// [module documentation](crate::write)). Every record is
/// decoded from the unrelocated `.xsplice.funcs` with
/// [`xsplice_abi::decode`], re-encoded as `to` (a feature `to` cannot
/// express is a [`WriteError::Record`] naming it), and the relocations,
/// `sh_entsize` and `.note.xsplice` (removed for v1) follow. Everything
/// else is kept; the result is loaded back with `opts` before it is
/// returned.
pub fn rewrite_version_with(
    payload: &[u8],
    to: RecordVersion,
    opts: &LoadOptions,
) -> Result<Vec<u8>, WriteError> {
    let loaded = crate::DryRun::packed()
        .load(payload, opts)
        .map_err(WriteError::InvalidPayload)?;
    let (mut b, _) = read_object(payload)?;
    let funcs = find_section(&b, FUNCS).ok_or(WriteError::Input("no `.xsplice.funcs`"))?;
    let section = b.sections.get(funcs);
    let bytes = section_bytes(&section.data)
        .ok_or(WriteError::Input("`.xsplice.funcs` has no contents"))?;
    let invalid = |e| WriteError::InvalidPayload(LoadError::Records(e));
    let records = xsplice_abi::decode(bytes, section.sh_entsize).map_err(invalid)?;
    // A hint: a product that overflows just starts empty.
    let mut data = Vec::with_capacity(records.len().checked_mul(to.known_size()).unwrap_or(0));
    let mut union = Incompat::empty();
    for rec in records.iter() {
        let rec = rec.map_err(invalid)?;
        let index = rec.index.0 as usize;
        let record = encode(&rec.func, to).map_err(|source| WriteError::Record {
            index,
            name: loaded
                .records
                .get(index)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            source,
        })?;
        union |= rec.func.incompat;
        data.extend_from_slice(record.as_bytes());
    }
    let remap = Remap {
        old: records.size() as u64,
        new: to.known_size() as u64,
        count: records.len() as u64,
    };

    link_relocation_targets(&mut b);
    // The relocations of the records.
    for s in b.sections.iter_mut() {
        if s.sh_info_section != Some(funcs) {
            continue;
        }
        let SectionData::Relocation(relocs) = &mut s.data else {
            return Err(WriteError::Input(
                "the relocations of `.xsplice.funcs` are not static relocations",
            ));
        };
        for (index, r) in relocs.iter_mut().enumerate() {
            r.r_offset = remap.field(r.r_offset).ok_or(WriteError::FuncsRelocation {
                index,
                offset: r.r_offset,
            })?;
        }
    }
    // Symbols defined in the records (gcc's array symbol, the section symbol).
    let mut moved: Vec<(SymbolId, u64, u64)> = Vec::new();
    for s in b.symbols.iter_mut() {
        if s.section != Some(funcs) {
            continue;
        }
        let what = || format!("symbol `{}`", String::from_utf8_lossy(s.name.as_slice()));
        let value = remap
            .point(s.st_value)
            .ok_or_else(|| WriteError::FuncsReference {
                what: what(),
                offset: s.st_value,
            })?;
        let old_end = s.st_value.saturating_add(s.st_size);
        let end = remap
            .point(old_end)
            .ok_or_else(|| WriteError::FuncsReference {
                what: what(),
                offset: old_end,
            })?;
        moved.push((s.id(), s.st_value, value));
        s.st_value = value;
        s.st_size = end.saturating_sub(value);
    }
    // Relocations elsewhere that point into the records.
    for s in b.sections.iter_mut() {
        if s.sh_info_section == Some(funcs) {
            continue;
        }
        let is_rel = s.sh_type == elf::SHT_REL;
        let section = String::from_utf8_lossy(s.name.as_slice()).into_owned();
        let SectionData::Relocation(relocs) = &mut s.data else {
            continue;
        };
        for (index, r) in relocs.iter_mut().enumerate() {
            let Some(&(_, old_value, new_value)) =
                moved.iter().find(|(id, _, _)| Some(*id) == r.symbol)
            else {
                continue;
            };
            let what = || format!("`{section}` relocation {index}");
            let target = old_value.wrapping_add_signed(r.r_addend);
            let new_target = remap.point(target).filter(|_| !is_rel).ok_or_else(|| {
                WriteError::FuncsReference {
                    what: what(),
                    offset: target,
                }
            })?;
            r.r_addend = new_target.wrapping_sub(new_value) as i64;
        }
    }
    let s = b.sections.get_mut(funcs);
    s.data = SectionData::Data(data.into());
    s.sh_entsize = to.known_size() as u64;

    // The ABI note.
    let new_note = (to != RecordVersion::V1).then(|| {
        // Payload-level bits (ARCH) are the note's own: they stay.
        let payload_level = loaded.note.map_or(Incompat::empty(), |n| {
            n.incompat & Incompat::payload_level()
        });
        let mut n = AbiNote::new(to, union | payload_level);
        if let Some(old) = loaded.note {
            n.compat = old.compat;
            if old.record_version == to {
                n.format = old.format;
            }
        }
        n
    });
    match find_section(&b, NOTE) {
        Some(id) => {
            let s = b.sections.get(id);
            let is_note = matches!(s.data, SectionData::Note(_));
            let old = section_bytes(&s.data).unwrap_or(&[]);
            let mut rebuilt = Vec::with_capacity(old.len());
            for n in note::notes(old) {
                let n = n.map_err(|e| {
                    WriteError::InvalidPayload(LoadError::Note(crate::NoteProblem::Framing(e)))
                })?;
                if n.name == NOTE_NAME.as_slice() && n.ntype == NOTE_TYPE {
                    if let Some(new) = &new_note {
                        rebuilt.extend(abi_note(new));
                    }
                } else {
                    rebuilt.extend(note::frame(n.name, n.ntype, n.desc).unwrap_or_default());
                }
            }
            if rebuilt.is_empty() {
                if let Some((section, index)) = reference_into(&b, id) {
                    return Err(WriteError::NoteReference { section, index });
                }
                let global = |s: &&object::build::elf::Symbol<'_>| {
                    s.section == Some(id) && s.st_bind() != elf::STB_LOCAL
                };
                if let Some(s) = b.symbols.iter().find(global) {
                    let name = String::from_utf8_lossy(s.name.as_slice()).into_owned();
                    return Err(WriteError::NoteExport { name });
                }
                b.sections.get_mut(id).delete = true;
            } else {
                b.sections.get_mut(id).data = if is_note {
                    SectionData::Note(rebuilt.into())
                } else {
                    SectionData::Data(rebuilt.into())
                };
            }
        }
        None => {
            if let Some(n) = &new_note {
                add_section(
                    &mut b,
                    NOTE,
                    elf::SHT_NOTE,
                    elf::SHF_ALLOC,
                    4,
                    0,
                    SectionData::Note(abi_note(n).into()),
                );
            }
        }
    }
    let out = write_out(b)?;
    self_check(&out, opts, &[])?;
    Ok(out)
}
