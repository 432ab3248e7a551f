//! The upgrade/rewrite round trip: a payload that loads is rewritten into
//! each record version; a rewrite that succeeds must load again, in that
//! version, with the same records (names, sizes, features, targets), the
//! replacements at the same place of the same sections, the same exports,
//! vendor entries, build id and dependency, and — in the ELF files — every
//! section the rewrite does not own with the same bytes and the same
//! relocations (by symbol name, not index).
//!
//! Narrowed: the rewrite changes the size of `.xsplice.funcs` (64 or 128
//! bytes a record) and adds or drops `.note.xsplice`, so the loader's
//! layout may move what follows them (sections, the GOT it builds), and
//! code that takes an absolute or GOT-relative address (the large code
//! model's `movabs`) then legitimately holds another value after
//! relocation. So relocated code is not compared; the unrelocated bytes and
//! the relocations that produce it are.
#![no_main]

use goblin::elf::section_header::{
    SHF_ALLOC, SHT_NOBITS, SHT_RELA, SHT_STRTAB, SHT_SYMTAB, SHT_SYMTAB_SHNDX,
};
use libfuzzer_sys::fuzz_target;
use xsplice_abi::{Addr, PatchFunc, RecordVersion};
use xsplice_loader::write::rewrite_version;
use xsplice_loader::{DryRun, LoadOptions, LoadedPayload, LoadedSection};

/// Sections the rewrite itself changes.
const REWRITTEN: [&str; 3] = [".xsplice.funcs", ".rela.xsplice.funcs", ".note.xsplice"];

/// Where a loaded address is: its section's name and the offset in it.
/// `None` for the end of a section (a symbol may mark one): what follows
/// it depends on the layout.
fn place(p: &LoadedPayload, addr: Addr) -> Option<(&str, u64)> {
    let ends = |s: &&LoadedSection| s.size > 0 && s.addr.0.wrapping_add(s.size) == addr.0;
    if p.sections.iter().any(|s| ends(&s)) {
        return None;
    }
    p.sections
        .iter()
        .find(|s| addr.0 >= s.addr.0 && addr.0 - s.addr.0 < s.size.max(1))
        .map(|s| (s.name.as_str(), addr.0 - s.addr.0))
}

/// A section the rewrite does not own: name, type, flags, alignment, size,
/// contents, and its relocations as (offset, type, symbol, addend).
type SectionView = (String, u32, u64, u64, u64, Vec<u8>, Vec<Reloc>);
/// A relocation's symbol is named by what it is, not by its index.
type Reloc = (u64, u32, String, i64);

/// `None` when goblin refuses the file: it is stricter than the loader
/// (names must be UTF-8 in every string table, for one).
fn structure(file: &[u8]) -> Option<Vec<SectionView>> {
    let elf = goblin::elf::Elf::parse(file).ok()?;
    let name = |i: usize| {
        elf.section_headers
            .get(i)
            .and_then(|h| elf.shdr_strtab.get_at(h.sh_name))
            .unwrap_or("?")
            .to_string()
    };
    let symbol = |i: usize| -> String {
        let Some(sym) = elf.syms.get(i) else {
            return format!("#{i}?");
        };
        if sym.st_type() == goblin::elf::sym::STT_SECTION {
            return format!("section {}", name(sym.st_shndx));
        }
        if i == 0 {
            // STN_UNDEF: the loader takes 0, whatever the entry holds.
            return "none".to_string();
        }
        let sym_name = elf.strtab.get_at(sym.st_name).unwrap_or("?");
        if sym.st_shndx == 0 {
            // Resolved by name: the loader ignores the value (the writer
            // writes 0).
            return format!("{sym_name} undefined (bind {})", sym.st_bind());
        }
        let home = name(sym.st_shndx);
        format!(
            "{sym_name} in {home} at {:#x} (bind {}, type {})",
            sym.st_value,
            sym.st_bind(),
            sym.st_type()
        )
    };
    let mut out = Vec::new();
    for (i, h) in elf.section_headers.iter().enumerate() {
        let n = name(i);
        let is_rela = h.sh_type == SHT_RELA;
        // Index 0 is not a section (its fields are reserved; the writer
        // writes zeros), and the file's own tables (symbols, their names,
        // section names: unloaded) are rebuilt.
        let symbol_names = elf
            .section_headers
            .iter()
            .any(|t| t.sh_type == SHT_SYMTAB && t.sh_link as usize == i);
        let table = i == elf.header.e_shstrndx as usize
            || symbol_names
            || h.sh_type == SHT_SYMTAB
            || h.sh_type == SHT_SYMTAB_SHNDX
            || (h.sh_type == SHT_STRTAB && h.sh_flags & u64::from(SHF_ALLOC) == 0);
        if i == 0 || table || REWRITTEN.contains(&n.as_str()) || is_rela {
            continue;
        }
        let data = if h.sh_type == SHT_NOBITS {
            Vec::new()
        } else {
            usize::try_from(h.sh_offset)
                .ok()
                .zip(usize::try_from(h.sh_size).ok())
                .and_then(|(o, s)| file.get(o..o.checked_add(s)?))
                .unwrap_or_default()
                .to_vec()
        };
        let mut relocs: Vec<Reloc> = elf
            .shdr_relocs
            .iter()
            .filter(|(rel_index, _)| {
                elf.section_headers
                    .get(*rel_index)
                    .is_some_and(|r| r.sh_info as usize == i)
            })
            .flat_map(|(_, relocs)| relocs.iter())
            .map(|r| {
                (
                    r.r_offset,
                    r.r_type,
                    symbol(r.r_sym),
                    r.r_addend.unwrap_or(0),
                )
            })
            .collect();
        relocs.sort();
        out.push((
            n,
            h.sh_type,
            h.sh_flags,
            h.sh_addralign,
            h.sh_size,
            data,
            relocs,
        ));
    }
    out.sort();
    Some(out)
}

/// The exports, by name and place. One inside a section the rewrite owns
/// (gcc's array of records, made global) moves and resizes with the
/// records: only its section is compared.
fn exports(p: &LoadedPayload) -> Vec<(&str, Option<(&str, u64)>, u64)> {
    let mut v: Vec<_> = p
        .exports
        .iter()
        .map(|e| {
            let a = e.symbol.addr.0;
            let owned = p.sections.iter().find(|s| {
                REWRITTEN.contains(&s.name.as_str()) && a >= s.addr.0 && a - s.addr.0 < s.size
            });
            match owned {
                Some(s) => (e.name.as_str(), Some((s.name.as_str(), 0)), 0),
                None => (e.name.as_str(), place(p, e.symbol.addr), e.symbol.size),
            }
        })
        .collect();
    v.sort();
    v
}

/// What a record means, independent of where the dry run placed the
/// payload's sections: its name, its canonical view without the two
/// addresses into the payload, and where its replacement is.
type Meaning<'a> = (String, PatchFunc, Option<(&'a str, u64)>);

fn meaning(p: &LoadedPayload) -> Vec<Meaning<'_>> {
    p.records
        .iter()
        .map(|r| {
            let placed = PatchFunc {
                new_addr: Addr(0),
                name: Addr(0),
                ..r.func
            };
            (r.name.clone(), placed, place(p, r.func.new_addr))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions::default();
    let Ok(original) = DryRun::default().load(data, &opts) else {
        return;
    };
    for to in RecordVersion::ALL {
        let Ok(out) = rewrite_version(data, to) else {
            continue;
        };
        let again = DryRun::default()
            .load(&out, &opts)
            .expect("a rewritten payload loads");
        assert_eq!(again.record_version, to);
        assert_eq!(
            meaning(&again),
            meaning(&original),
            "records after --to {to:?}"
        );
        assert_eq!(
            exports(&again),
            exports(&original),
            "exports after --to {to:?}"
        );
        // Skipped when goblin refuses either file (see README: a rewrite
        // goblin refuses for a non-UTF-8 name is left open).
        if let (Some(read), Some(written)) = (structure(data), structure(&out)) {
            assert_eq!(written, read, "sections after --to {to:?}");
        }
        assert_eq!(
            again.vendor, original.vendor,
            "vendor entries after --to {to:?}"
        );
        assert_eq!(again.build_id, original.build_id);
        assert_eq!(again.depends, original.depends);
    }
});
