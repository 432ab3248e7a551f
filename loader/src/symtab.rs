//! The symbol table of an executable (an image patched offline, or the
//! running process), as a [`SymbolSource`] (feature `std`).
//!
//! Names are looked up without a symbol version (`stdout@GLIBC_2.2.5`
//! defines `stdout`). Rules: a global (or weak) definition wins; otherwise a name with exactly
//! one local definition resolves to it (static functions are patchable by
//! name when unambiguous); `sympos` n picks the n-th local definition in
//! symbol-table order.
//!
//! An x86-64 executable that calls a shared-library function goes through a
//! PLT entry, a `jmp *slot(%rip)` whose GOT slot the dynamic linker fills:
//! a payload's call to that function resolves to the PLT entry (see
//! [`crate::SymbolSource::lookup_import`]), so it goes where the
//! executable's own calls go. An entry counts only when its code is such a
//! jump and its slot is the one a `JUMP_SLOT`/`GLOB_DAT` relocation of the
//! name fills, so no linker's PLT layout is assumed.

use std::collections::{HashMap, HashSet};
use std::string::{String, ToString};
use std::vec::Vec;

use goblin::elf::reloc::{R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT};
use goblin::elf::section_header as sh;
use goblin::elf::sym;
use goblin::elf::Elf;

use crate::{Addr, Symbol, SymbolSource};

/// The definitions of one name.
#[derive(Debug, Clone, Default)]
struct Defs {
    /// The first global (or weak) definition.
    global: Option<Symbol>,
    /// Local definitions, in symbol-table order (for `sympos`).
    locals: Vec<Symbol>,
}

/// Defined function, object and untyped symbols of an executable, indexed
/// by name: every lookup is one hash probe, so resolving a payload costs
/// time linear in its symbols whatever the size of the table.
#[derive(Debug, Clone, Default)]
pub(crate) struct SymbolTable {
    by_name: HashMap<String, Defs>,
    /// Names the executable leaves undefined (imports from shared
    /// libraries), without their `@VERSION`: only to explain a failed lookup.
    imports: HashSet<String>,
    /// Imported functions the executable calls through a PLT entry: the
    /// entry's address, by name.
    plt: HashMap<String, Symbol>,
}

/// How an executable's symbol table knows a name: what a failed lookup
/// tells the user (a name imported from a shared library, or defined only
/// as several static symbols, is not "missing").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SymbolPresence {
    /// A global (or weak) definition.
    pub global: bool,
    /// The number of local (static) definitions.
    pub locals: usize,
    /// An undefined entry: the executable imports the name from a shared
    /// library at run time, so its address is not known when patching.
    pub imported: bool,
}

impl SymbolTable {
    /// Reads `.symtab` (`.dynsym` when stripped), and the PLT entries of
    /// the file `bytes` that `elf` was parsed from, adding `bias` (the load
    /// bias of a running PIE) to every address.
    pub(crate) fn from_elf(elf: &Elf<'_>, bytes: &[u8], bias: u64) -> SymbolTable {
        // A stripped image may still carry its dynamic symbols.
        let (syms, strtab) = if elf.syms.is_empty() {
            (&elf.dynsyms, &elf.dynstrtab)
        } else {
            (&elf.syms, &elf.strtab)
        };
        let mut by_name: HashMap<String, Defs> = HashMap::new();
        let imports = syms
            .iter()
            .filter(|s| s.st_shndx == sh::SHN_UNDEF as usize)
            .filter_map(|s| strtab.get_at(s.st_name))
            .filter_map(|n| n.split('@').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        let defined = syms
            .iter()
            .filter(|s| {
                s.st_shndx != sh::SHN_UNDEF as usize && s.st_shndx < sh::SHN_LORESERVE as usize
            })
            .filter(|s| {
                matches!(
                    s.st_type(),
                    sym::STT_FUNC | sym::STT_OBJECT | sym::STT_NOTYPE
                )
            });
        for s in defined {
            // binutils (2.35 on) writes a versioned name into .symtab:
            // `stdout@GLIBC_2.2.5` is the executable's copy of libc's
            // `stdout` (a copy relocation), and a payload names it `stdout`.
            let Some(name) = strtab
                .get_at(s.st_name)
                .and_then(|n| n.split('@').next())
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let symbol = Symbol {
                addr: Addr(s.st_value.wrapping_add(bias)),
                size: s.st_size,
            };
            let defs = by_name.entry(name.to_string()).or_default();
            if s.st_bind() == sym::STB_LOCAL {
                defs.locals.push(symbol);
            } else if defs.global.is_none() {
                defs.global = Some(symbol);
            }
        }
        let plt = plt_entries(elf, bytes, bias);
        SymbolTable {
            by_name,
            imports,
            plt,
        }
    }

    /// How the table knows `name` (see [`SymbolPresence`]).
    pub(crate) fn presence(&self, name: &str) -> SymbolPresence {
        let defs = self.by_name.get(name);
        SymbolPresence {
            global: defs.is_some_and(|d| d.global.is_some()),
            locals: defs.map_or(0, |d| d.locals.len()),
            imported: self.imports.contains(name),
        }
    }

    /// Whether the table is empty (a stripped executable).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// `[endbr64] [bnd] jmp *disp32(%rip)`: the start of a PLT entry that jumps
/// through a GOT slot; returns the slot's address. `addr` is the address of
/// `code[0]`.
fn plt_jump_slot(code: &[u8], addr: u64) -> Option<u64> {
    const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
    let rest = code.strip_prefix(&ENDBR64[..]).unwrap_or(code);
    let rest = rest.strip_prefix(&[0xf2][..]).unwrap_or(rest);
    let rest = rest.strip_prefix(&[0xff, 0x25][..])?;
    let disp = <[u8; 4]>::try_from(rest.get(..4)?).ok()?;
    // The jump's end: what is left of `code` after the displacement.
    let end = code.len().checked_sub(rest.len())?.checked_add(4)?;
    let next = addr.wrapping_add(u64::try_from(end).ok()?);
    Some(next.wrapping_add_signed(i64::from(i32::from_le_bytes(disp))))
}

/// The x86-64 PLT entries of an executable (`.plt`, `.plt.sec`, `.plt.got`)
/// that jump through the GOT slot of an imported name, by that name.
fn plt_entries(elf: &Elf<'_>, bytes: &[u8], bias: u64) -> HashMap<String, Symbol> {
    let mut out = HashMap::new();
    if elf.header.e_machine != goblin::elf::header::EM_X86_64 {
        return out;
    }
    // The GOT slots the dynamic linker fills with an imported address.
    let slots: HashMap<u64, &str> = elf
        .pltrelocs
        .iter()
        .chain(elf.dynrelas.iter())
        .filter(|r| matches!(r.r_type, R_X86_64_JUMP_SLOT | R_X86_64_GLOB_DAT))
        .filter_map(|r| {
            let s = elf.dynsyms.get(r.r_sym)?;
            let name = elf.dynstrtab.get_at(s.st_name)?;
            (s.st_shndx == sh::SHN_UNDEF as usize && !name.is_empty()).then_some((r.r_offset, name))
        })
        .collect();
    if slots.is_empty() {
        return out;
    }
    for h in &elf.section_headers {
        let name = elf.shdr_strtab.get_at(h.sh_name);
        if h.sh_type != sh::SHT_PROGBITS || !matches!(name, Some(".plt" | ".plt.sec" | ".plt.got"))
        {
            continue;
        }
        let (Ok(start), Ok(size)) = (usize::try_from(h.sh_offset), usize::try_from(h.sh_size))
        else {
            continue;
        };
        let Some(code) = bytes.get(start..start.saturating_add(size)) else {
            continue;
        };
        // Entries are 8 (`.plt.got`) or 16 bytes, and start aligned.
        for entry in (0..size).step_by(8) {
            let addr = h.sh_addr.wrapping_add(entry as u64);
            let Some(slot) = code.get(entry..).and_then(|c| plt_jump_slot(c, addr)) else {
                continue;
            };
            if let Some(name) = slots.get(&slot) {
                out.entry((*name).to_string()).or_insert(Symbol {
                    addr: Addr(addr.wrapping_add(bias)),
                    size: 0,
                });
            }
        }
    }
    out
}

impl SymbolSource for SymbolTable {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        let defs = self.by_name.get(name)?;
        match (defs.global, defs.locals.as_slice()) {
            (Some(g), _) => Some(g),
            (None, [only]) => Some(*only),
            _ => None,
        }
    }

    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        let n = usize::try_from(pos).ok()?.checked_sub(1)?;
        self.by_name.get(name)?.locals.get(n).copied()
    }

    fn lookup_import(&self, name: &str) -> Option<Symbol> {
        self.plt.get(name).copied()
    }
}

/// Implements [`SymbolSource`] for a target by forwarding every lookup to
/// the [`SymbolTable`] at `$($field).+` (the image's, the process's, the
/// traced process's executable).
macro_rules! symbol_source_via {
    ($target:ty, $($field:ident).+) => {
        impl $crate::SymbolSource for $target {
            fn lookup(&self, name: &str) -> Option<$crate::Symbol> {
                $crate::SymbolSource::lookup(&self.$($field).+, name)
            }

            fn lookup_local(&self, name: &str, pos: u32) -> Option<$crate::Symbol> {
                $crate::SymbolSource::lookup_local(&self.$($field).+, name, pos)
            }

            fn lookup_import(&self, name: &str) -> Option<$crate::Symbol> {
                $crate::SymbolSource::lookup_import(&self.$($field).+, name)
            }
        }
    };
}
pub(crate) use symbol_source_via;
