//! The load pipeline, in the order the data flows: validated ELF
//! ([`crate::elf`]) → section layout ([`crate::layout`]) → symbol
//! resolution and relocation ([`crate::link`]) → record decoding
//! ([`xsplice_abi`]) and checks ([`records`]) → the payload's other tables
//! ([`tables`]) → [`LoadedPayload`] ([`types`]).

mod records;
mod tables;
mod types;

use alloc::string::ToString;
use alloc::vec::Vec;

use xsplice_abi::sections;
use xsplice_abi::{Addr, NoteError};

pub use types::{
    Export, Hook, LoadWarning, LoadedPayload, LoadedSection, PatchRecord, Region, VendorEntry,
};
pub use xsplice_abi::NAME_MAX;

use crate::arch_tables;
use crate::elf::PayloadElf;
use crate::error::{LoadError, NoteProblem, SectionProblem};
use crate::layout::{lay_out, loaded_bytes};
use crate::link::{relocate, resolve_symbols};
use crate::{Allocator, LoadOptions, SymbolSource};
use records::{check_note, check_records};
use tables::{read_build_id, read_hooks, read_note, read_vendor};

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
        let unsupported = n.incompat.difference(opts.incompat_supported);
        if let Some(bit) = unsupported.iter().next() {
            return Err(LoadError::Note(NoteProblem::Descriptor(
                NoteError::UnknownIncompat {
                    // At most 64: it fits.
                    bit: u8::try_from(bit.bits().trailing_zeros()).unwrap_or(u8::MAX),
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
    let (records, union) = check_records(&elf, &layout, symbols, &decoded, &mut warnings)?;

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
