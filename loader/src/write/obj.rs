//! The writer's ELF primitives, on the `object` crate's builder: reading
//! the input object, finding and adding sections, the symbols a record
//! names, the notes, writing the file out and loading it back.

use alloc::string::String;
use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use object::build::elf::{Builder, Relocation, SectionData, SectionId, SymbolId};
use object::elf;
use xsplice_abi::raw::Prefix;
use xsplice_abi::{AbiNote, NOTE_NAME, NOTE_TYPE};
use zerocopy::IntoBytes as _;

use super::error::elf_err;
use super::{PatchProblem, WriteError};
use crate::elf::note::{self, GNU_NAME, NT_GNU_BUILD_ID};
use crate::{Arch, LoadOptions, LoadedPayload, NAME_MAX};

/// The relocation section of `.xsplice.funcs`.
pub(super) const RELA_FUNCS: &str = ".rela.xsplice.funcs";
/// Offsets of the relocated fields, in the prefix every record version
/// shares (from the abi's wire struct, never typed here).
pub(super) const NEW_ADDR: u64 = offset_of!(Prefix, new_addr) as u64;
pub(super) const OLD_ADDR: u64 = offset_of!(Prefix, old_addr) as u64;
pub(super) const NAME: u64 = offset_of!(Prefix, name) as u64;
/// The prefix every record version shares.
pub(super) const PREFIX: u64 = size_of::<Prefix>() as u64;
/// ELF64 RELA entry size.
pub(super) const RELA_SIZE: u64 = size_of::<elf::Rela64<object::LittleEndian>>() as u64;

/// Reads the object and checks it is what the loader accepts.
pub(super) fn read_object(bytes: &[u8]) -> Result<(Builder<'_>, Arch), WriteError> {
    // The reader's header rules, then the object crate's parse.
    let (_, arch) = crate::elf::check_header(bytes).map_err(WriteError::Header)?;
    let b = Builder::read(bytes).map_err(elf_err)?;
    Ok((b, arch))
}

pub(super) fn find_section(b: &Builder<'_>, name: &str) -> Option<SectionId> {
    b.sections
        .iter()
        .find(|s| s.name.as_slice() == name.as_bytes())
        .map(|s| s.id())
}

/// The first relocation (its section's name and its index) that refers
/// to a symbol defined in `section`, outside `section`'s own relocations:
/// what deleting `section` would silently drop. One pass over the symbols
/// and one over the relocations.
pub(super) fn reference_into(b: &Builder<'_>, section: SectionId) -> Option<(String, usize)> {
    use object::build::Id;
    let ids = b.symbols.iter().map(|s| s.id().index().saturating_add(1));
    let mut inside = alloc::vec![false; ids.max().unwrap_or(0)];
    for s in b.symbols.iter().filter(|s| s.section == Some(section)) {
        if let Some(flag) = inside.get_mut(s.id().index()) {
            *flag = true;
        }
    }
    b.sections
        .iter()
        .filter(|s| s.sh_info_section != Some(section))
        .find_map(|s| {
            let SectionData::Relocation(relocs) = &s.data else {
                return None;
            };
            let refers = |r: &Relocation| {
                r.symbol
                    .is_some_and(|id| inside.get(id.index()).copied().unwrap_or(false))
            };
            let index = relocs.iter().position(refers)?;
            Some((
                String::from_utf8_lossy(s.name.as_slice()).into_owned(),
                index,
            ))
        })
}

pub(super) fn section_bytes<'a>(data: &'a SectionData<'_>) -> Option<&'a [u8]> {
    match data {
        SectionData::Data(d) | SectionData::Note(d) => Some(d.as_slice()),
        _ => None,
    }
}

pub(super) fn add_section<'data>(
    b: &mut Builder<'data>,
    name: &'static str,
    sh_type: u32,
    sh_flags: u32,
    align: u64,
    entsize: u64,
    data: SectionData<'data>,
) -> SectionId {
    let s = b.sections.add();
    s.name = name.into();
    s.sh_type = sh_type;
    s.sh_flags = u64::from(sh_flags);
    s.sh_addralign = align;
    s.sh_entsize = entsize;
    s.data = data;
    s.id()
}

/// The `.note.xsplice` note of `n`.
pub(super) fn abi_note(n: &AbiNote) -> Vec<u8> {
    // A 24-byte descriptor and an 8-byte name always fit the u32 sizes.
    note::frame(NOTE_NAME, NOTE_TYPE, n.encode().as_bytes()).unwrap_or_default()
}

/// A GNU build-id note for `section`.
pub(super) fn build_id_note(section: &'static str, id: &[u8]) -> Result<Vec<u8>, WriteError> {
    if id.is_empty() {
        return Err(WriteError::BuildId {
            section,
            why: "is empty",
        });
    }
    note::frame(GNU_NAME, NT_GNU_BUILD_ID, id).ok_or(WriteError::BuildId {
        section,
        why: "is too large",
    })
}

/// Loads what was written: the writer never returns what the reader refuses.
pub(super) fn self_check(
    out: &[u8],
    base: &LoadOptions,
    known: &[(u32, u16)],
) -> Result<LoadedPayload, WriteError> {
    let mut opts = base.clone();
    opts.max_size = opts.max_size.max(out.len());
    opts.known_vendor_entries.extend_from_slice(known);
    crate::DryRun::packed()
        .load(out, &opts)
        .map_err(WriteError::Unloadable)
}

pub(super) fn write_out(b: Builder<'_>) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    b.write(&mut out).map_err(elf_err)?;
    Ok(out)
}

pub(super) fn check_name(name: &str) -> Result<(), PatchProblem> {
    if name.is_empty() {
        Err(PatchProblem::Name("is empty"))
    } else if name.len() > NAME_MAX {
        Err(PatchProblem::Name("is too long"))
    } else if name.contains('\0') {
        Err(PatchProblem::Name("holds a NUL byte"))
    } else {
        Ok(())
    }
}

/// Whether a symbol is a named one (not a section or file symbol).
pub(super) fn is_named(st_type: u8) -> bool {
    st_type != elf::STT_SECTION && st_type != elf::STT_FILE
}

/// The symbol of the new function and its `st_size`.
pub(super) fn new_symbol(b: &Builder<'_>, name: &str) -> Result<(SymbolId, u64), PatchProblem> {
    let mut found = None;
    let mut undefined = false;
    for s in &b.symbols {
        if s.name.as_slice() != name.as_bytes() || !is_named(s.st_type()) {
            continue;
        }
        match s.section {
            Some(section) => {
                if found.is_some() {
                    return Err(PatchProblem::NewSymbolAmbiguous(name.to_string()));
                }
                found = Some((s.id(), s.st_size, section));
            }
            None => undefined = true,
        }
    }
    let Some((id, size, section)) = found else {
        return Err(if undefined {
            PatchProblem::NewSymbolUndefined(name.to_string())
        } else {
            PatchProblem::NewSymbolMissing(name.to_string())
        });
    };
    let code = u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR);
    if b.sections.get(section).sh_flags & code != code {
        return Err(PatchProblem::NewSymbolNotCode(name.to_string()));
    }
    Ok((id, size))
}

/// The undefined symbol an `old_addr` relocation names, added if missing.
pub(super) fn old_symbol(b: &mut Builder<'_>, name: &str) -> Result<SymbolId, PatchProblem> {
    let mut undefined = None;
    for s in &b.symbols {
        if s.name.as_slice() != name.as_bytes() || !is_named(s.st_type()) {
            continue;
        }
        if s.section.is_some() || s.st_shndx != elf::SHN_UNDEF {
            return Err(PatchProblem::OldSymbolDefined(name.to_string()));
        }
        undefined = Some(s.id());
    }
    if let Some(id) = undefined {
        return Ok(id);
    }
    let s = b.symbols.add();
    s.name = name.as_bytes().to_vec().into();
    s.set_st_info(elf::STB_GLOBAL, elf::STT_NOTYPE);
    s.st_shndx = elf::SHN_UNDEF;
    Ok(s.id())
}
