//! The validated ELF view of a payload.
//!
//! Every count and size is bounded by the input's length *before* goblin is
//! asked to parse a table (goblin's OOM on malformed input, m4b/goblin#120,
//! is why): the header is checked by hand, then section headers, then each
//! table. After [`PayloadElf::parse`] succeeds, every section's file range,
//! link and info index is known to be valid.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{self, header64::Header};
use goblin::elf::reloc::RelocSection;
use goblin::elf::section_header::{self as sh, SectionHeader};
use goblin::elf::sym::{self, Sym};

use crate::error::{HeaderProblem, LoadError, SectionProblem, SymbolProblem};
use crate::{Arch, LoadOptions};

// The ELF64 structure sizes, from goblin (the one set of ELF constants).
/// ELF64 header size.
const EHDR_SIZE: usize = header::header64::SIZEOF_EHDR;
/// ELF64 section header size.
const SHDR_SIZE: u64 = sh::section_header64::SIZEOF_SHDR as u64;
/// ELF64 symbol size.
pub(crate) const SYM_SIZE: u64 = sym::sym64::SIZEOF_SYM as u64;
/// ELF64 RELA entry size.
const RELA_SIZE: u64 = goblin::elf::reloc::reloc64::SIZEOF_RELA as u64;
/// ELF64 REL entry size.
const REL_SIZE: u64 = goblin::elf::reloc::reloc64::SIZEOF_REL as u64;
/// Largest section alignment honoured.
const MAX_ALIGN: u64 = 64 * 1024;

/// A validated relocatable payload.
#[derive(Debug)]
pub(crate) struct PayloadElf<'a> {
    pub bytes: &'a [u8],
    pub arch: Arch,
    pub sections: Vec<SectionHeader>,
    shstrtab: &'a [u8],
    /// Index of `.symtab`, if any.
    pub symtab: Option<usize>,
    strtab: &'a [u8],
    ctx: Ctx,
    /// [`LoadOptions::max_name`]: no name is scanned further.
    max_name: usize,
}

/// The ELF header rules of a payload, the reader's and the writer's: ELF64,
/// little-endian, `ET_REL`, x86-64 or AArch64, no program headers.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(Header, Arch), HeaderProblem> {
    let ident = bytes.get(..EHDR_SIZE).ok_or(HeaderProblem::NotElf)?;
    if ident.get(..4) != Some(header::ELFMAG.as_slice()) {
        return Err(HeaderProblem::NotElf);
    }
    let class = ident.get(header::EI_CLASS).copied().unwrap_or(0);
    if class != header::ELFCLASS64 {
        return Err(HeaderProblem::NotElf64(class));
    }
    let data = ident.get(header::EI_DATA).copied().unwrap_or(0);
    if data != header::ELFDATA2LSB {
        return Err(HeaderProblem::NotLittleEndian(data));
    }
    let h = Header::parse(bytes).map_err(|_| HeaderProblem::NotElf)?;
    if h.e_type != header::ET_REL {
        return Err(HeaderProblem::NotRelocatable(h.e_type));
    }
    let arch = Arch::from_machine(h.e_machine).ok_or(HeaderProblem::Machine(h.e_machine))?;
    if h.e_phnum != 0 {
        return Err(HeaderProblem::ProgramHeaders(h.e_phnum));
    }
    Ok((h, arch))
}

fn header_err(p: HeaderProblem) -> LoadError {
    LoadError::Header(p)
}

impl<'a> PayloadElf<'a> {
    /// Validates the header, the section table and every section's
    /// placement, links and tables.
    pub fn parse(bytes: &'a [u8], opts: &LoadOptions) -> Result<Self, LoadError> {
        if bytes.len() > opts.max_size {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit: opts.max_size,
            });
        }
        let (h, arch) = check_header(bytes).map_err(header_err)?;
        if let Some(target) = opts.arch.filter(|t| *t != arch) {
            return Err(header_err(HeaderProblem::WrongArch {
                payload: arch,
                target,
            }));
        }
        if u64::from(h.e_shentsize) != SHDR_SIZE {
            return Err(header_err(HeaderProblem::SectionEntrySize(h.e_shentsize)));
        }
        let ctx = Ctx::new(Container::Big, Endian::Little);
        let len = bytes.len() as u64;
        let table_err = |count: u64| HeaderProblem::SectionTable {
            offset: h.e_shoff,
            count,
        };
        // Section 0 holds the real count when e_shnum is 0 (SHN_LORESERVE overflow).
        let first_end = h.e_shoff.checked_add(SHDR_SIZE);
        if h.e_shoff == 0 || first_end.is_none_or(|e| e > len) {
            return Err(header_err(table_err(u64::from(h.e_shnum))));
        }
        let shoff = usize::try_from(h.e_shoff).map_err(|_| header_err(table_err(0)))?;
        let zero =
            SectionHeader::parse(bytes, shoff, 1, ctx).map_err(|_| header_err(table_err(1)))?;
        let count = match h.e_shnum {
            0 => zero.first().map_or(0, |s| s.sh_size),
            n => u64::from(n),
        };
        if count > opts.max_sections as u64 {
            return Err(header_err(HeaderProblem::TooManySections(count)));
        }
        let end = count
            .checked_mul(SHDR_SIZE)
            .and_then(|s| s.checked_add(h.e_shoff));
        if count == 0 || end.is_none_or(|e| e > len) {
            return Err(header_err(table_err(count)));
        }
        let count_usize = usize::try_from(count).map_err(|_| header_err(table_err(count)))?;
        let sections = SectionHeader::parse(bytes, shoff, count_usize, ctx)
            .map_err(|_| header_err(table_err(count)))?;
        let shstrndx = match u32::from(h.e_shstrndx) {
            sh::SHN_XINDEX => zero.first().map_or(0, |s| s.sh_link),
            n => n,
        };
        if shstrndx == 0 || u64::from(shstrndx) >= count {
            return Err(header_err(HeaderProblem::StringTableIndex(shstrndx.into())));
        }

        let mut elf = PayloadElf {
            bytes,
            arch,
            sections,
            shstrtab: &[],
            symtab: None,
            strtab: &[],
            ctx,
            max_name: opts.max_name,
        };
        for i in 0..elf.sections.len() {
            elf.check_placement(i)?;
        }
        elf.shstrtab = elf.string_table(shstrndx)?;
        for i in 1..elf.sections.len() {
            elf.check_section(i, opts)?;
        }
        if let Some(symtab) = elf.symtab {
            let link = elf.header(symtab).map_or(0, |s| s.sh_link);
            elf.strtab = elf.string_table(link)?;
        }
        Ok(elf)
    }

    fn header(&self, index: usize) -> Option<&SectionHeader> {
        self.sections.get(index)
    }

    /// An error about section `index`.
    pub fn section_err(&self, index: usize, problem: SectionProblem) -> LoadError {
        LoadError::Section {
            index: crate::error::SectionIndex(index),
            name: self.section_name(index).to_string(),
            problem,
        }
    }

    fn check_placement(&self, i: usize) -> Result<(), LoadError> {
        let Some(s) = self.header(i) else {
            return Ok(());
        };
        if s.sh_type == sh::SHT_NOBITS || s.sh_type == sh::SHT_NULL {
            return Ok(());
        }
        let end = s.sh_offset.checked_add(s.sh_size);
        if end.is_none_or(|e| e > self.bytes.len() as u64) {
            let problem = SectionProblem::OutOfFile {
                offset: s.sh_offset,
                size: s.sh_size,
            };
            // The name table may itself be the broken section: name by index only.
            return Err(LoadError::Section {
                index: crate::error::SectionIndex(i),
                name: String::new(),
                problem,
            });
        }
        Ok(())
    }

    fn string_table(&self, link: u32) -> Result<&'a [u8], LoadError> {
        let index = usize::try_from(link).unwrap_or(usize::MAX);
        let s = self
            .header(index)
            .ok_or(self.section_err(0, SectionProblem::Link(link)))?;
        if s.sh_type != sh::SHT_STRTAB {
            return Err(self.section_err(index, SectionProblem::Contents("is not a string table")));
        }
        let data = self.data(index);
        if data.last() != Some(&0) {
            return Err(LoadError::Section {
                index: crate::error::SectionIndex(index),
                name: String::new(),
                problem: SectionProblem::StringTableNotTerminated,
            });
        }
        Ok(data)
    }

    fn check_section(&mut self, i: usize, opts: &LoadOptions) -> Result<(), LoadError> {
        let Some(s) = self.header(i).cloned() else {
            return Ok(());
        };
        if s.sh_name >= self.shstrtab.len() {
            return Err(LoadError::Section {
                index: crate::error::SectionIndex(i),
                name: String::new(),
                // goblin widened the 32-bit field, so it narrows back.
                problem: SectionProblem::BadName(u32::try_from(s.sh_name).unwrap_or(u32::MAX)),
            });
        }
        // A name must end within `max_name` bytes: names are compared and
        // copied, so their length bounds the work and memory per section.
        let name_ok = self.shstrtab.get(s.sh_name..).is_some_and(|b| {
            b.iter()
                .take(opts.max_name.saturating_add(1))
                .any(|&c| c == 0)
        });
        if !name_ok {
            return Err(LoadError::Section {
                index: crate::error::SectionIndex(i),
                name: String::new(),
                problem: SectionProblem::NameTooLong(opts.max_name),
            });
        }
        if s.sh_addralign > MAX_ALIGN || (s.sh_addralign > 1 && !s.sh_addralign.is_power_of_two()) {
            return Err(self.section_err(i, SectionProblem::Alignment(s.sh_addralign)));
        }
        let alloc = s.sh_flags & u64::from(sh::SHF_ALLOC) != 0;
        if alloc && s.sh_size > opts.max_alloc as u64 {
            return Err(self.section_err(i, SectionProblem::AllocLimit(opts.max_alloc as u64)));
        }
        let count = self.sections.len();
        match s.sh_type {
            sh::SHT_SYMTAB => {
                if self.symtab.is_some() {
                    return Err(self.section_err(i, SectionProblem::SecondSymtab));
                }
                self.check_table(i, &s, SYM_SIZE)?;
                if s.sh_link as usize >= count || s.sh_link == 0 {
                    return Err(self.section_err(i, SectionProblem::Link(s.sh_link)));
                }
                // The symbol table and its strings are link-time data: a
                // loaded copy would be payload memory that `upgrade`, which
                // rebuilds both, silently drops (a fuzzing find).
                for t in [i, s.sh_link as usize] {
                    if self.is_alloc(t) {
                        return Err(self.section_err(
                            t,
                            SectionProblem::Contents(
                                "the symbol table and its strings must not be SHF_ALLOC",
                            ),
                        ));
                    }
                }
                self.symtab = Some(i);
            }
            sh::SHT_RELA | sh::SHT_REL => {
                let entsize = if s.sh_type == sh::SHT_RELA {
                    RELA_SIZE
                } else {
                    REL_SIZE
                };
                self.check_table(i, &s, entsize)?;
                let link_ok = self
                    .header(s.sh_link as usize)
                    .is_some_and(|l| l.sh_type == sh::SHT_SYMTAB);
                if !link_ok {
                    return Err(self.section_err(i, SectionProblem::Link(s.sh_link)));
                }
                if s.sh_info == 0 || s.sh_info as usize >= count {
                    return Err(self.section_err(i, SectionProblem::Info(s.sh_info)));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_table(&self, i: usize, s: &SectionHeader, entsize: u64) -> Result<(), LoadError> {
        if s.sh_entsize != entsize {
            return Err(self.section_err(
                i,
                SectionProblem::EntrySize {
                    found: s.sh_entsize,
                    expected: entsize,
                },
            ));
        }
        if s.sh_size.checked_rem(entsize) != Some(0) {
            return Err(self.section_err(
                i,
                SectionProblem::Ragged {
                    size: s.sh_size,
                    entsize,
                },
            ));
        }
        Ok(())
    }

    /// The name of section `index` (empty when unreadable).
    pub fn section_name(&self, index: usize) -> &'a str {
        self.header(index)
            .and_then(|s| cstr(self.shstrtab, s.sh_name))
            .unwrap_or("")
    }

    /// The index of the first section called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        (1..self.sections.len()).find(|&i| self.section_name(i) == name)
    }

    /// The file bytes of section `index` (empty for NOBITS); placement was
    /// validated by [`PayloadElf::parse`].
    pub fn data(&self, index: usize) -> &'a [u8] {
        let Some(s) = self.header(index) else {
            return &[];
        };
        if s.sh_type == sh::SHT_NOBITS {
            return &[];
        }
        let start = usize::try_from(s.sh_offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(s.sh_size).unwrap_or(usize::MAX));
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// Number of symbols.
    pub fn symbol_count(&self) -> usize {
        self.symtab
            .and_then(|i| self.header(i))
            .map_or(0, |s| usize::try_from(s.sh_size / SYM_SIZE).unwrap_or(0))
    }

    /// Symbol `index`.
    pub fn symbol(&self, index: usize) -> Option<Sym> {
        let s = self.header(self.symtab?)?;
        let offset = usize::try_from(s.sh_offset)
            .ok()?
            .checked_add(index.checked_mul(usize::try_from(SYM_SIZE).ok()?)?)?;
        if index >= self.symbol_count() {
            return None;
        }
        Sym::parse(self.bytes, offset, 1, self.ctx)
            .ok()?
            .into_iter()
            .next()
    }

    /// The name of a symbol: its string, or for a section symbol the
    /// section's name.
    pub fn symbol_name(&self, index: usize, s: &Sym) -> Result<&'a str, LoadError> {
        if s.st_type() == sym::STT_SECTION {
            return Ok(self.section_name(s.st_shndx));
        }
        let off = u32::try_from(s.st_name).unwrap_or(u32::MAX);
        let bytes = self
            .strtab
            .get(s.st_name..)
            .ok_or_else(|| LoadError::Symbol {
                index: crate::error::SymbolIndex(index),
                name: String::new(),
                problem: SymbolProblem::BadName(off),
            })?;
        let scan = bytes.get(..bytes.len().min(self.max_name.saturating_add(1)));
        let end = match scan.unwrap_or(&[]).iter().position(|&b| b == 0) {
            Some(end) => end,
            None if bytes.len() > self.max_name => {
                return Err(LoadError::Symbol {
                    index: crate::error::SymbolIndex(index),
                    name: String::new(),
                    problem: SymbolProblem::NameTooLong(self.max_name),
                })
            }
            None => bytes.len(),
        };
        core::str::from_utf8(bytes.get(..end).unwrap_or(&[])).map_err(|_| LoadError::Symbol {
            index: crate::error::SymbolIndex(index),
            name: String::new(),
            problem: SymbolProblem::NotUtf8,
        })
    }

    /// The relocation table of section `index` (REL or RELA).
    pub fn relocations(&self, index: usize) -> Option<RelocSection<'a>> {
        let s = self.header(index)?;
        let is_rela = s.sh_type == sh::SHT_RELA;
        RelocSection::parse(
            self.bytes,
            usize::try_from(s.sh_offset).ok()?,
            usize::try_from(s.sh_size).ok()?,
            is_rela,
            self.ctx,
        )
        .ok()
    }

    /// Whether section `index` is loaded (SHF_ALLOC).
    pub fn is_alloc(&self, index: usize) -> bool {
        self.has_flag(index, sh::SHF_ALLOC)
    }

    /// Whether section `index` is code (SHF_EXECINSTR).
    pub fn is_exec(&self, index: usize) -> bool {
        self.has_flag(index, sh::SHF_EXECINSTR)
    }

    fn has_flag(&self, index: usize, flag: u32) -> bool {
        self.header(index)
            .is_some_and(|s| s.sh_flags & u64::from(flag) != 0)
    }
}

/// The NUL-terminated UTF-8 string at `off` in `table`.
fn cstr(table: &[u8], off: usize) -> Option<&str> {
    let bytes = table.get(off..)?;
    let end = bytes.iter().position(|&b| b == 0)?;
    core::str::from_utf8(bytes.get(..end)?).ok()
}
