//! [`PayloadBuilder`]: a payload of any record version from a compiler-built
//! object.

use alloc::string::ToString;
use alloc::vec::Vec;

use object::build::elf::{Relocation, SectionData, SymbolId};
use object::elf;
use xsplice_abi::sections::{BUILD_ID, DEPENDS, FUNCS, NOTE, VENDOR};
use xsplice_abi::vendor::{VendorEntry as AbiVendorEntry, VendorTarget};
use xsplice_abi::{encode, AbiNote, Addr, Expect, Incompat, PatchFunc, RecordVersion};

use super::obj::{
    abi_note, add_section, build_id_note, check_name, find_section, new_symbol, old_symbol,
    read_object, self_check, write_out, NAME, NEW_ADDR, OLD_ADDR, RELA_FUNCS, RELA_SIZE,
};
use super::{NewCode, OldTarget, Patch, PatchProblem, VendorField, WriteError, STRINGS};
use crate::{Arch, LoadOptions, LoadedPayload};

/// What a record-field relocation is against.
enum RelocTarget {
    Symbol(SymbolId),
    /// The `.xsplice.strings` section symbol.
    Strings,
}

/// Builds a payload from a relocatable object holding the replacement code.
///
/// Configure with the `&mut self` methods, then [`PayloadBuilder::build`]
/// (which may be called again, e.g. after changing the version). See the
/// [module documentation](crate::write) for what is written and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadBuilder {
    object: Vec<u8>,
    arch: Arch,
    version: RecordVersion,
    patches: Vec<Patch>,
    build_id: Option<Vec<u8>>,
    depends: Option<Vec<u8>>,
    vendor: Vec<VendorField>,
}

impl PayloadBuilder {
    /// Starts from a relocatable object (ELF64 little-endian `ET_REL`,
    /// x86-64 or AArch64) holding the new functions. An object that already
    /// has `.xsplice.funcs` is a payload and is refused.
    pub fn from_object(object: &[u8]) -> Result<PayloadBuilder, WriteError> {
        let (b, arch) = read_object(object)?;
        if find_section(&b, FUNCS).is_some() {
            return Err(WriteError::SectionExists(FUNCS));
        }
        Ok(PayloadBuilder {
            object: object.to_vec(),
            arch,
            version: RecordVersion::LATEST,
            patches: Vec::new(),
            build_id: None,
            depends: None,
            vendor: Vec::new(),
        })
    }

    /// The input's machine.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The record version to write (default [`RecordVersion::LATEST`]).
    pub fn version(&mut self, version: RecordVersion) -> &mut Self {
        self.version = version;
        self
    }

    /// Adds a patch; its record index is the number of patches added before.
    pub fn patch(&mut self, patch: Patch) -> &mut Self {
        self.patches.push(patch);
        self
    }

    /// The payload's own build-id (`.note.gnu.build-id`); none by default.
    pub fn build_id(&mut self, id: impl Into<Vec<u8>>) -> &mut Self {
        self.build_id = Some(id.into());
        self
    }

    /// The build-id of the image or payload this one is built against
    /// (`.xsplice.depends`).
    pub fn depends(&mut self, id: impl Into<Vec<u8>>) -> &mut Self {
        self.depends = Some(id.into());
        self
    }

    /// Adds a vendor entry to `.xsplice.vendor`.
    pub fn vendor(&mut self, field: VendorField) -> &mut Self {
        self.vendor.push(field);
        self
    }

    /// Writes the payload, and checks it loads (a dry run, see the
    /// [module documentation](crate::write), default [`LoadOptions`] knowing the
    /// vendor entries written).
    pub fn build(&self) -> Result<Vec<u8>, WriteError> {
        self.build_loaded().map(|(bytes, _)| bytes)
    }

    /// [`PayloadBuilder::build`], also giving the payload as the writer's
    /// self-check loaded it (a [`crate::DryRun::packed`] load): what a tool
    /// shows about the payload it just wrote, without loading it again.
    pub fn build_loaded(&self) -> Result<(Vec<u8>, LoadedPayload), WriteError> {
        let (mut b, _) = read_object(&self.object)?;
        let mut wanted = vec![FUNCS, RELA_FUNCS, NOTE, STRINGS];
        if self.build_id.is_some() {
            wanted.push(BUILD_ID);
        }
        if self.depends.is_some() {
            wanted.push(DEPENDS);
        }
        if !self.vendor.is_empty() {
            wanted.push(VENDOR);
        }
        if let Some(name) = wanted.into_iter().find(|n| find_section(&b, n).is_some()) {
            return Err(WriteError::SectionExists(name));
        }
        if self.patches.is_empty() {
            return Err(WriteError::NoPatches);
        }
        let symtab = b
            .sections
            .iter()
            .find(|s| matches!(s.data, SectionData::Symbol))
            .map(|s| s.id())
            .ok_or(WriteError::Input("no symbol table"))?;

        let size = self.version.known_size() as u64;
        // Capacities are hints: a product that overflows just starts empty.
        let records_len = self.patches.len().checked_mul(self.version.known_size());
        let mut funcs = Vec::with_capacity(records_len.unwrap_or(0));
        let mut strings = Vec::new();
        let mut relocs = Vec::with_capacity(self.patches.len().checked_mul(3).unwrap_or(0));
        let mut names = alloc::collections::BTreeMap::new();
        let mut union = Incompat::empty();
        for (index, p) in self.patches.iter().enumerate() {
            let name = p.name();
            let perr = |problem| WriteError::Patch {
                index,
                name: name.to_string(),
                problem,
            };
            check_name(name).map_err(perr)?;
            if let Some(first) = names.insert(name, index) {
                return Err(perr(PatchProblem::DuplicateName { first }));
            }
            // The place of a field of this record in `.xsplice.funcs`.
            let field = |offset: u64| {
                (index as u64)
                    .checked_mul(size)
                    .and_then(|base| base.checked_add(offset))
                    .ok_or(WriteError::Input("too many patches for one section"))
            };
            let mut incompat = Incompat::empty();
            let new_size = match &p.new {
                NewCode::Function { symbol, size } => {
                    let (id, st_size) = new_symbol(&b, symbol).map_err(perr)?;
                    relocs.push((field(NEW_ADDR)?, RelocTarget::Symbol(id), 0));
                    size.or((st_size != 0).then_some(st_size))
                        .ok_or_else(|| perr(PatchProblem::NewSizeUnknown(symbol.clone())))?
                }
                NewCode::Nop { size } => {
                    incompat |= Incompat::NOP;
                    *size
                }
            };
            if let OldTarget::Symbol(symbol) = &p.old {
                let id = old_symbol(&mut b, symbol).map_err(perr)?;
                relocs.push((field(OLD_ADDR)?, RelocTarget::Symbol(id), 0));
            }
            let at = i64::try_from(strings.len()).unwrap_or(i64::MAX);
            strings.extend(name.as_bytes());
            strings.push(0);
            relocs.push((field(NAME)?, RelocTarget::Strings, at));
            let expect = match &p.expect {
                None => Expect::EMPTY,
                Some(bytes) => {
                    incompat |= Incompat::EXPECT;
                    Expect::new(bytes)
                        .ok_or_else(|| perr(PatchProblem::ExpectTooLong(bytes.len())))?
                }
            };
            if p.patch_offset != 0 {
                incompat |= Incompat::PATCH_OFFSET;
            }
            if p.sympos != 0 {
                incompat |= Incompat::SYMPOS;
            }
            let func = PatchFunc {
                new_addr: Addr::NULL,
                new_size,
                old_addr: Addr::NULL,
                old_size: p.old_size,
                name: Addr::NULL,
                incompat,
                compat: p.compat,
                patch_offset: p.patch_offset,
                sympos: p.sympos,
                expect,
            };
            let record = encode(&func, self.version).map_err(|source| WriteError::Record {
                index,
                name: name.to_string(),
                source,
            })?;
            union |= incompat;
            funcs.extend_from_slice(record.as_bytes());
        }
        let vendor = self.vendor_section()?;
        let build_id = self
            .build_id
            .as_deref()
            .map(|id| build_id_note(BUILD_ID, id))
            .transpose()?;
        let depends = self
            .depends
            .as_deref()
            .map(|id| build_id_note(DEPENDS, id))
            .transpose()?;

        let alloc = elf::SHF_ALLOC;
        let strings_id = add_section(
            &mut b,
            STRINGS,
            elf::SHT_PROGBITS,
            alloc,
            1,
            0,
            SectionData::Data(strings.into()),
        );
        let strings_sym = {
            let s = b.symbols.add();
            s.section = Some(strings_id);
            s.set_st_info(elf::STB_LOCAL, elf::STT_SECTION);
            s.id()
        };
        let funcs_id = add_section(
            &mut b,
            FUNCS,
            elf::SHT_PROGBITS,
            alloc,
            8,
            size,
            SectionData::Data(funcs.into()),
        );
        let r_type = crate::elf::abs64(self.arch);
        let relocs = relocs
            .into_iter()
            .map(|(r_offset, target, r_addend)| Relocation {
                r_offset,
                symbol: Some(match target {
                    RelocTarget::Symbol(id) => id,
                    RelocTarget::Strings => strings_sym,
                }),
                r_type,
                r_addend,
            })
            .collect();
        let rela = add_section(
            &mut b,
            RELA_FUNCS,
            elf::SHT_RELA,
            elf::SHF_INFO_LINK,
            8,
            RELA_SIZE,
            SectionData::Relocation(relocs),
        );
        let rela = b.sections.get_mut(rela);
        rela.sh_link_section = Some(symtab);
        rela.sh_info_section = Some(funcs_id);
        if self.version != RecordVersion::V1 {
            // Architecture tables carried from the input announce themselves
            // (payload-level ARCH, format minor 1).
            let arch = xsplice_abi::arch::ArchTable::ALL
                .iter()
                .any(|t| find_section(&b, t.section()).is_some());
            let arch = if arch {
                Incompat::ARCH
            } else {
                Incompat::empty()
            };
            let n = AbiNote::new(self.version, union | arch);
            add_section(
                &mut b,
                NOTE,
                elf::SHT_NOTE,
                alloc,
                4,
                0,
                SectionData::Note(abi_note(&n).into()),
            );
        }
        if let Some(n) = build_id {
            add_section(
                &mut b,
                BUILD_ID,
                elf::SHT_NOTE,
                alloc,
                4,
                0,
                SectionData::Note(n.into()),
            );
        }
        if let Some(n) = depends {
            add_section(
                &mut b,
                DEPENDS,
                elf::SHT_PROGBITS,
                alloc,
                4,
                0,
                SectionData::Data(n.into()),
            );
        }
        if let Some(v) = vendor {
            add_section(
                &mut b,
                VENDOR,
                elf::SHT_PROGBITS,
                alloc,
                8,
                0,
                SectionData::Data(v.into()),
            );
        }
        let out = write_out(b)?;
        let known: Vec<(u32, u16)> = self.vendor.iter().map(|v| (v.vendor.0, v.kind)).collect();
        let loaded = self_check(&out, &LoadOptions::default(), &known)?;
        Ok((out, loaded))
    }

    /// The `.xsplice.vendor` contents, if any entry was added.
    fn vendor_section(&self) -> Result<Option<Vec<u8>>, WriteError> {
        if self.vendor.is_empty() {
            return Ok(None);
        }
        let count = self.patches.len();
        let mut out = Vec::new();
        for (index, v) in self.vendor.iter().enumerate() {
            if v.vendor.0 == 0 {
                return Err(WriteError::VendorReserved { index });
            }
            if let VendorTarget::Record(r) = v.target {
                if usize::try_from(r.0).map_or(true, |r| r >= count) {
                    return Err(WriteError::VendorRecord {
                        index,
                        record: r.0,
                        count,
                    });
                }
            }
            let entry = AbiVendorEntry {
                vendor: v.vendor,
                kind: v.kind,
                critical: v.critical,
                target: v.target,
                data: &v.data,
            };
            let len = entry
                .encoded_len()
                .filter(|_| u32::try_from(v.data.len()).is_ok())
                .ok_or(WriteError::VendorTooLarge { index })?;
            let start = out.len();
            let end = start
                .checked_add(len)
                .ok_or(WriteError::VendorTooLarge { index })?;
            out.resize(end, 0);
            let dst = out
                .get_mut(start..)
                .ok_or(WriteError::VendorTooLarge { index })?;
            entry
                .encode_into(dst)
                .map_err(|_| WriteError::VendorTooLarge { index })?;
        }
        Ok(Some(out))
    }
}
