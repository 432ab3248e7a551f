//! The symbol table of an executable (an image patched offline, or the
//! running process), as a [`SymbolSource`] (feature `std`).
//!
//! Rules: a global (or weak) definition wins; otherwise a name with exactly
//! one local definition resolves to it (static functions are patchable by
//! name when unambiguous); `sympos` n picks the n-th local definition in
//! symbol-table order.

use std::string::{String, ToString};
use std::vec::Vec;

use goblin::elf::section_header as sh;
use goblin::elf::sym;
use goblin::elf::Elf;

use crate::{Addr, Symbol, SymbolSource};

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    symbol: Symbol,
    global: bool,
}

/// Defined function, object and untyped symbols of an executable.
#[derive(Debug, Clone, Default)]
pub(crate) struct SymbolTable {
    entries: Vec<Entry>,
}

impl SymbolTable {
    /// Reads `.symtab` (`.dynsym` when stripped), adding `bias` (the load bias of a running PIE) to
    /// every address.
    pub(crate) fn from_elf(elf: &Elf<'_>, bias: u64) -> SymbolTable {
        // A stripped image may still carry its dynamic symbols.
        let (syms, strtab) = if elf.syms.is_empty() {
            (&elf.dynsyms, &elf.dynstrtab)
        } else {
            (&elf.syms, &elf.strtab)
        };
        let entries = syms
            .iter()
            .filter(|s| {
                s.st_shndx != sh::SHN_UNDEF as usize && s.st_shndx < sh::SHN_LORESERVE as usize
            })
            .filter(|s| {
                matches!(
                    s.st_type(),
                    sym::STT_FUNC | sym::STT_OBJECT | sym::STT_NOTYPE
                )
            })
            .filter_map(|s| {
                let name = strtab.get_at(s.st_name)?;
                (!name.is_empty()).then(|| Entry {
                    name: name.to_string(),
                    symbol: Symbol {
                        addr: Addr(s.st_value.wrapping_add(bias)),
                        size: s.st_size,
                    },
                    global: s.st_bind() != sym::STB_LOCAL,
                })
            })
            .collect();
        SymbolTable { entries }
    }

    /// The `[start, end)` of the sized symbol that contains `addr` (the
    /// function around a patch site), if any.
    pub(crate) fn containing(&self, addr: u64) -> Option<(u64, u64)> {
        self.entries
            .iter()
            .map(|e| {
                (
                    e.symbol.addr.0,
                    e.symbol.addr.0.saturating_add(e.symbol.size),
                )
            })
            .find(|&(lo, hi)| lo <= addr && addr < hi)
    }

    /// Whether the table is empty (a stripped executable).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl SymbolSource for SymbolTable {
    fn lookup(&self, name: &str) -> Option<Symbol> {
        if let Some(g) = self.entries.iter().find(|s| s.global && s.name == name) {
            return Some(g.symbol);
        }
        let mut locals = self.entries.iter().filter(|s| !s.global && s.name == name);
        match (locals.next(), locals.next()) {
            (Some(only), None) => Some(only.symbol),
            _ => None,
        }
    }

    fn lookup_local(&self, name: &str, pos: u32) -> Option<Symbol> {
        let n = usize::try_from(pos).ok()?.checked_sub(1)?;
        self.entries
            .iter()
            .filter(|s| !s.global && s.name == name)
            .nth(n)
            .map(|s| s.symbol)
    }
}
