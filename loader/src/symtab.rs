//! The symbol table of an executable (an image patched offline, or the
//! running process), as a [`SymbolSource`] (feature `std`).
//!
//! Rules: a global (or weak) definition wins; otherwise a name with exactly
//! one local definition resolves to it (static functions are patchable by
//! name when unambiguous); `sympos` n picks the n-th local definition in
//! symbol-table order.

use std::collections::{HashMap, HashSet};
use std::string::{String, ToString};
use std::vec::Vec;

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
    /// Reads `.symtab` (`.dynsym` when stripped), adding `bias` (the load bias of a running PIE) to
    /// every address.
    pub(crate) fn from_elf(elf: &Elf<'_>, bias: u64) -> SymbolTable {
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
            let Some(name) = strtab.get_at(s.st_name).filter(|n| !n.is_empty()) else {
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
        SymbolTable { by_name, imports }
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
}
