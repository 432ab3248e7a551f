//! Offline patching of an executable image (feature `std`).
//!
//! The image is an ELF64 executable that reserves the arena sections
//! `.xsplice.arena.text` (alloc+exec), `.xsplice.arena.rodata` (alloc) and
//! `.xsplice.arena.data` (alloc+write), PROGBITS. Payload regions are
//! placed in the arenas, patch sites are rewritten in the image's own text,
//! and the result is a new executable file that runs with the fix.
//!
//! Decisions, written down here and in `spec/SPEC.md`:
//! * Read-only payload data goes to `.xsplice.arena.rodata`, or to the text
//!   arena when the image has no rodata arena (readable, and still W^X).
//!   Writable data needs `.xsplice.arena.data`.
//! * Hooks are not run: an offline target cannot execute image code.
//!   [`HookOutcome::Skipped`] is reported for each.
//! * Symbols come from the image's `.symtab` (rules in `SymbolTable`: a
//!   global wins, else a unique local; `sympos` picks among locals).
//! * Addresses are link-time virtual addresses. For a position-independent
//!   (ET_DYN) image that is right for every PC-relative reference (calls,
//!   jumps, `lea`, relaxed GOT loads), which is what gcc emits by default;
//!   a payload whose code or data needs an absolute address is refused for
//!   such an image, since nothing would fix it up at run time.
//! * What was applied is kept in a ledger ([`crate::ledger`]) appended after
//!   the image's ELF bytes (a trailer ending in a 16-byte footer; the
//!   kernel and ELF readers ignore bytes no header points to), so a later
//!   run continues the stack: arenas continue after the space in use,
//!   revert restores sites *and* arena bytes, and when the last payload is
//!   reverted the trailer goes, leaving the original file byte for byte.
//!   Any image works, with no section to reserve; `strip` and `objcopy`
//!   drop the trailer (a stripped image cannot be patched anyway: it has no
//!   `.symtab`).

use std::string::{String, ToString};
use std::vec::Vec;

use goblin::elf::section_header as sh;
use goblin::elf::Elf;
use xsplice_abi::sections;

use crate::engine::{CodeWriter, HookOutcome, Site, Target};
use crate::ledger::{self, LedgerError, Original, Placed};
use crate::payload::{Hook, Region};
pub use crate::symtab::SymbolPresence;
use crate::symtab::SymbolTable;
use crate::{Addr, Allocator, Arch, CpuFeatures, RegionKind, TargetError};

/// Largest image accepted.
pub const MAX_IMAGE: usize = 256 << 20;

/// Why an image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Over [`MAX_IMAGE`].
    #[error("image is {0} bytes, over the 256 MiB limit")]
    TooLarge(usize),
    /// Not a parseable ELF file: goblin's message. (goblin's error is
    /// neither `Clone` nor `PartialEq`, which this enum is; the variant is
    /// the typed part, the text only explains it.)
    #[error("not an ELF image: {0}")]
    Parse(String),
    /// An allocated section's contents lie outside the file.
    #[error("section {index}: its contents lie outside the file")]
    SectionOutsideFile {
        /// Section header index.
        index: crate::SectionIndex,
    },
    /// Not an ELF64 little-endian executable for x86-64 or AArch64.
    #[error("not an ELF64 little-endian x86-64/AArch64 executable (class/type/machine)")]
    Kind,
    /// An arena section has the wrong type or flags.
    #[error("section `{name}`: {why}")]
    Arena {
        /// Section name.
        name: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// No symbol table.
    #[error("image has no .symtab (it must not be stripped)")]
    NoSymbols,
    /// The ledger trailer is malformed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[derive(Debug, Clone)]
struct Section {
    addr: u64,
    size: u64,
    offset: u64,
    file_backed: bool,
}

#[derive(Debug, Clone)]
struct Arena {
    name: &'static str,
    addr: u64,
    size: u64,
    used: u64,
}

/// An executable image patched offline.
#[derive(Debug, Clone)]
pub struct ImageTarget {
    /// The ELF bytes (without the ledger trailer).
    bytes: Vec<u8>,
    /// The ledger: read from the trailer, replaced by `ledger_write`.
    ledger: Option<Vec<u8>>,
    /// Regions placed in the arenas, with what they held before.
    placed: Vec<Placed>,
    arch: Arch,
    sections: Vec<Section>,
    arenas: [Option<Arena>; 3],
    symbols: SymbolTable,
    build_id: Option<Vec<u8>>,
    skipped_hooks: usize,
    /// ET_DYN: loaded at an address chosen at run time.
    pie: bool,
    /// The CPU the patched image will run on, for alternatives.
    cpu: CpuFeatures,
}

impl ImageTarget {
    /// Parses an executable image.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ImageError> {
        if bytes.len() > MAX_IMAGE {
            return Err(ImageError::TooLarge(bytes.len()));
        }
        let (elf, ledger) = ledger::split_trailer(&bytes)?;
        let (elf_len, ledger) = (elf.len(), ledger.map(<[u8]>::to_vec));
        let mut bytes = bytes;
        bytes.truncate(elf_len);
        let elf = Elf::parse(&bytes).map_err(|e| ImageError::Parse(e.to_string()))?;
        let arch = Arch::from_machine(elf.header.e_machine).ok_or(ImageError::Kind)?;
        let exec_or_dyn = matches!(
            elf.header.e_type,
            goblin::elf::header::ET_EXEC | goblin::elf::header::ET_DYN
        );
        if !elf.is_64 || !elf.little_endian || !exec_or_dyn {
            return Err(ImageError::Kind);
        }
        let mut sections = Vec::new();
        let mut arenas: [Option<Arena>; 3] = [None, None, None];
        let mut build_id = None;
        for (index, s) in elf.section_headers.iter().enumerate() {
            let alloc = s.sh_flags & u64::from(sh::SHF_ALLOC) != 0;
            let file_backed = s.sh_type != sh::SHT_NOBITS;
            let end = s.sh_offset.checked_add(s.sh_size);
            if alloc && file_backed && end.is_none_or(|e| e > bytes.len() as u64) {
                return Err(ImageError::SectionOutsideFile {
                    index: crate::SectionIndex(index),
                });
            }
            if alloc {
                sections.push(Section {
                    addr: s.sh_addr,
                    size: s.sh_size,
                    offset: s.sh_offset,
                    file_backed,
                });
            }
            let name = elf.shdr_strtab.get_at(s.sh_name).unwrap_or("");
            if name == sections::BUILD_ID {
                let start = usize::try_from(s.sh_offset).unwrap_or(usize::MAX);
                let data = bytes
                    .get(
                        start
                            ..start
                                .saturating_add(usize::try_from(s.sh_size).unwrap_or(usize::MAX)),
                    )
                    .unwrap_or(&[]);
                build_id = crate::elf::note::build_id(data).ok().map(<[u8]>::to_vec);
            }
            for (kind, arena_name) in [
                (RegionKind::Text, sections::ARENA_TEXT),
                (RegionKind::ReadOnly, sections::ARENA_RODATA),
                (RegionKind::Data, sections::ARENA_DATA),
            ] {
                if name != arena_name {
                    continue;
                }
                let flags = s.sh_flags;
                let has = |f: u32| flags & u64::from(f) != 0;
                let why = if s.sh_type != sh::SHT_PROGBITS {
                    Some("must be PROGBITS (file-backed) so that payloads can be written into it")
                } else if !has(sh::SHF_ALLOC) {
                    Some("must be SHF_ALLOC")
                } else if kind == RegionKind::Text && !has(sh::SHF_EXECINSTR) {
                    Some("must be executable")
                } else if kind == RegionKind::Data && !has(sh::SHF_WRITE) {
                    Some("must be writable")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(ImageError::Arena {
                        name: arena_name,
                        why,
                    });
                }
                if let Some(slot) = arenas.get_mut(kind as usize) {
                    *slot = Some(Arena {
                        name: arena_name,
                        addr: s.sh_addr,
                        size: s.sh_size,
                        used: 0,
                    });
                }
            }
        }
        let symbols = SymbolTable::from_elf(&elf, &bytes, 0);
        if symbols.is_empty() {
            return Err(ImageError::NoSymbols);
        }
        let pie = elf.header.e_type == goblin::elf::header::ET_DYN;
        drop(elf);
        Ok(ImageTarget {
            bytes,
            ledger,
            placed: Vec::new(),
            arch,
            sections,
            arenas,
            symbols,
            build_id,
            skipped_hooks: 0,
            pie,
            cpu: CpuFeatures::NONE,
        })
    }

    /// Sets the CPU features the patched image will run on: payload
    /// alternatives are applied for them at load (`xsplice apply
    /// --cpu-features`). An offline image cannot ask the CPU, so the
    /// default is none and the original code stays.
    pub fn set_cpu_features(&mut self, cpu: CpuFeatures) {
        self.cpu = cpu;
    }

    /// The image's machine.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The (patched) image's ELF bytes, without the ledger trailer.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The (patched) image file: its ELF bytes, then the ledger trailer
    /// when something is applied.
    pub fn to_file(&self) -> Result<Vec<u8>, LedgerError> {
        match &self.ledger {
            Some(l) if !is_empty_ledger(l) => ledger::with_trailer(&self.bytes, l),
            _ => Ok(self.bytes.clone()),
        }
    }

    /// The ledger bytes read from the image or last written, if any.
    pub fn ledger_bytes(&self) -> Option<&[u8]> {
        self.ledger.as_deref()
    }

    /// Recomputes an arena's use from the regions placed in it: arenas are
    /// used as stacks, so freeing the top region frees its space.
    fn recount(&mut self) {
        for arena in self.arenas.iter_mut().flatten() {
            let end = arena.addr.saturating_add(arena.size);
            arena.used = self
                .placed
                .iter()
                .map(|p| p.addr.0.saturating_add(p.size))
                .filter(|e| *e > arena.addr && *e <= end)
                .filter_map(|e| e.checked_sub(arena.addr))
                .max()
                .unwrap_or(0);
        }
    }

    /// How many hooks were skipped because an offline image cannot run them.
    pub fn skipped_hooks(&self) -> usize {
        self.skipped_hooks
    }

    /// `(arena name, used, size)` for each arena present.
    pub fn arena_usage(&self) -> impl Iterator<Item = (&'static str, u64, u64)> + '_ {
        self.arenas
            .iter()
            .flatten()
            .map(|a| (a.name, a.used, a.size))
    }

    /// The file range backing `[addr, addr+len)`, which must lie in one
    /// allocated, file-backed section.
    fn file_range(&self, addr: Addr, len: usize) -> Result<core::ops::Range<usize>, TargetError> {
        let end = addr
            .0
            .checked_add(len as u64)
            .ok_or(TargetError::BadAddress(addr))?;
        let s = self
            .sections
            .iter()
            .find(|s| s.file_backed && addr.0 >= s.addr && end <= s.addr.saturating_add(s.size))
            .ok_or(TargetError::BadAddress(addr))?;
        let bad = || TargetError::BadAddress(addr);
        let offset = addr
            .0
            .checked_sub(s.addr)
            .and_then(|d| s.offset.checked_add(d));
        let start = offset
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(bad)?;
        Ok(start..start.checked_add(len).ok_or_else(bad)?)
    }
}

impl ImageTarget {
    /// How the image's symbol table knows `name`, to explain why a payload
    /// symbol or a record's function did not resolve: imported from a
    /// shared library, defined only as several static symbols, or absent.
    pub fn symbol_presence(&self, name: &str) -> SymbolPresence {
        self.symbols.presence(name)
    }
}

crate::symtab::symbol_source_via!(ImageTarget, symbols);

impl Allocator for ImageTarget {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let has = |k: RegionKind| self.arenas.get(k as usize).is_some_and(Option::is_some);
        let from = match kind {
            RegionKind::ReadOnly if !has(RegionKind::ReadOnly) => RegionKind::Text,
            k => k,
        };
        let Some(arena) = self.arenas.get_mut(from as usize).and_then(Option::as_mut) else {
            let name = match kind {
                RegionKind::Data => sections::ARENA_DATA,
                _ => sections::ARENA_TEXT,
            };
            return Err(TargetError::ArenaMissing {
                section: name,
                kind,
                size,
            });
        };
        let a = align.max(1);
        let start = arena
            .addr
            .checked_add(arena.used)
            .and_then(|u| u.checked_next_multiple_of(a));
        let limit = arena.addr.saturating_add(arena.size);
        let used = start
            .and_then(|s| s.checked_add(size))
            .filter(|end| *end <= limit)
            .and_then(|end| end.checked_sub(arena.addr));
        match (start, used) {
            (Some(start), Some(used)) => {
                arena.used = used;
                Ok(Addr(start))
            }
            _ => Err(TargetError::ArenaFull {
                section: arena.name,
                used: arena.used,
                capacity: arena.size,
                size,
                align: a,
            }),
        }
    }
}

impl CodeWriter for ImageTarget {
    fn write_code(&mut self, addr: Addr, bytes: &[u8]) -> Result<(), TargetError> {
        let range = self.file_range(addr, bytes.len())?;
        self.bytes
            .get_mut(range)
            .ok_or(TargetError::BadAddress(addr))?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn flush_icache(&mut self, _addr: Addr, _len: usize) {
        // The image is a file: nothing executes it while it is patched.
    }
}

impl Target for ImageTarget {
    fn arch(&self) -> Arch {
        self.arch
    }

    /// The features given to [`ImageTarget::set_cpu_features`] (default
    /// none: alternatives keep the original code).
    fn cpu_features(&self) -> CpuFeatures {
        self.cpu
    }

    // `honours` and `register_tables` keep their defaults: an offline image
    // has no fault or trap handler to hand exception tables and bug frames
    // to, so payloads carrying them are refused at load (SPEC.md 17.6).

    fn position_independent(&self) -> bool {
        self.pie
    }

    fn map(&mut self, region: &Region) -> Result<(), TargetError> {
        let mut was = std::vec![0u8; region.bytes.len()];
        self.read(region.addr, &mut was)?;
        self.write_code(region.addr, &region.bytes)?;
        self.placed.push(Placed {
            kind: region.kind,
            addr: region.addr,
            size: region.bytes.len() as u64,
            original: Original::of(&was),
        });
        Ok(())
    }

    fn unmap(&mut self, region: &Region) -> Result<(), TargetError> {
        // Put back what the arena held, and free the space.
        let Some(pos) = self.placed.iter().position(|p| p.addr == region.addr) else {
            return Err(TargetError::BadAddress(region.addr));
        };
        let p = self.placed.remove(pos);
        let len = usize::try_from(p.size).map_err(|_| TargetError::BadAddress(p.addr))?;
        match p.original {
            Original::Fill(b) => self.write_code(p.addr, &std::vec![b; len])?,
            Original::Bytes(b) => self.write_code(p.addr, &b)?,
            Original::NotKept => {}
        }
        self.recount();
        Ok(())
    }

    fn original(&self, addr: Addr) -> Original {
        self.placed
            .iter()
            .find(|p| p.addr == addr)
            .map_or(Original::NotKept, |p| p.original.clone())
    }

    fn adopt(&mut self, region: &Placed) -> Result<(), TargetError> {
        let len = usize::try_from(region.size).map_err(|_| TargetError::BadAddress(region.addr))?;
        self.file_range(region.addr, len)?;
        self.placed.push(region.clone());
        self.recount();
        Ok(())
    }

    fn ledger_read(&self) -> Result<Option<Vec<u8>>, TargetError> {
        Ok(self.ledger.clone())
    }

    fn ledger_write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        self.ledger = Some(bytes.to_vec());
        Ok(())
    }

    fn read(&self, addr: Addr, buf: &mut [u8]) -> Result<(), TargetError> {
        let range = self.file_range(addr, buf.len())?;
        buf.copy_from_slice(self.bytes.get(range).ok_or(TargetError::BadAddress(addr))?);
        Ok(())
    }

    fn quiesce(
        &mut self,
        _sites: &[Site],
        critical: &mut dyn FnMut(&mut dyn CodeWriter) -> Result<(), TargetError>,
    ) -> Result<(), TargetError> {
        // Offline: nothing runs, so the world is already stopped.
        critical(self)
    }

    fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    fn run_hook(&mut self, _hook: &Hook) -> Result<HookOutcome, TargetError> {
        self.skipped_hooks = self.skipped_hooks.saturating_add(1);
        Ok(HookOutcome::Skipped)
    }
}

/// Whether ledger bytes hold no entry (then the image needs no trailer).
fn is_empty_ledger(bytes: &[u8]) -> bool {
    ledger::Ledger::decode(bytes).is_ok_and(|l| l.is_empty())
}
