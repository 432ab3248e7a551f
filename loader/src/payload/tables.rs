//! The payload's own tables besides the records: the ABI note, build-id
//! notes, hooks and vendor entries.

use alloc::vec::Vec;

use xsplice_abi::sections::{self, HookPoint};
use xsplice_abi::vendor::{VendorEntries, VendorTarget};
use xsplice_abi::{AbiNote, Addr, NOTE_NAME, NOTE_TYPE};

use super::{Hook, LoadWarning, VendorEntry};
use crate::elf::note;
use crate::elf::PayloadElf;
use crate::error::{LoadError, NoteProblem, SectionProblem, VendorProblem};
use crate::layout::{loaded_bytes, Layout};
use crate::{LoadOptions, RegionKind};

/// Reads the ABI note, if the payload has one.
pub(super) fn read_note(elf: &PayloadElf<'_>) -> Result<Option<AbiNote>, LoadError> {
    let Some(i) = elf.find(sections::NOTE) else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for n in note::notes(elf.data(i)) {
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

pub(super) fn read_build_id(
    elf: &PayloadElf<'_>,
    section: &'static str,
) -> Result<Option<Vec<u8>>, LoadError> {
    let Some(i) = elf.find(section) else {
        return Ok(None);
    };
    note::build_id(elf.data(i))
        .map(|id| Some(id.to_vec()))
        .map_err(|why| LoadError::BuildId { section, why })
}

pub(super) fn read_hooks(elf: &PayloadElf<'_>, layout: &Layout) -> Result<Vec<Hook>, LoadError> {
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

pub(super) fn read_vendor(
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
