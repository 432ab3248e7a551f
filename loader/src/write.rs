//! The payload writer: builds payloads of any record version from a
//! compiler-built object ([`PayloadBuilder`]), and rewrites a payload's
//! records into another version ([`rewrite_version`], what `xsplice upgrade`
//! runs).
//!
//! # Why the writer lives in the loader crate
//!
//! `xsplice-abi` knows bytes and layouts and nothing about ELF, and stays
//! that way: a hypervisor links it `no_std` and allocation-free. Writing a
//! payload is ELF work — sections, symbols, `R_*_ABS64` relocations, note
//! framing — and it must agree exactly with what the reader accepts. This
//! crate already holds that knowledge (section roles, note framing, the
//! record checks), so the writer sits next to the reader, behind the
//! `write` feature (which pulls in `std` and the `object` crate), and every
//! payload it writes is loaded back through [`crate::load`] before it is
//! returned. A writer bug, or a patch the loader would refuse (say an
//! `old_size` smaller than the jump), is then a [`WriteError::Unloadable`]
//! here rather than a refusal on the target.
//!
//! These checks load against a *probe* target: like [`crate::DryRun`],
//! every undefined symbol resolves to one placeholder address, but the
//! regions are placed right above it, so that short-range branches to the
//! target (AArch64 `CALL26`, ±128 MiB) fit as they do on a real target.
//!
//! # What is written
//!
//! [`PayloadBuilder::build`] starts from a relocatable object (gcc output
//! holding the replacement functions) and adds:
//!
//! | section | type, flags, align | contents |
//! |---|---|---|
//! | `.xsplice.funcs` | PROGBITS, `A`, 8, `sh_entsize` = record size | one record per [`Patch`], encoded with [`xsplice_abi::encode`] |
//! | `.rela.xsplice.funcs` | RELA, `I` | `R_X86_64_64` / `R_AARCH64_ABS64`: `new_addr` (offset 0) against the new function's symbol, `name` (32) against the section symbol of `.xsplice.strings` plus the string's offset, `old_addr` (16) against an undefined symbol for [`OldTarget::Symbol`] |
//! | [`STRINGS`] (`.xsplice.strings`) | PROGBITS, `A`, 1 | the records' NUL-terminated names, with a local section symbol |
//! | `.note.xsplice` | NOTE, `A`, 4 | the ABI note (v2 and v3 only; incompat = union over the records) |
//! | `.note.gnu.build-id` | NOTE, `A`, 4 | a GNU build-id note, when [`PayloadBuilder::build_id`] is given |
//! | `.xsplice.depends` | PROGBITS, `A`, 4 | a GNU build-id note, when [`PayloadBuilder::depends`] is given (PROGBITS, as gas makes a non-`.note*` section) |
//! | `.xsplice.vendor` | PROGBITS, `A`, 8 | the [`VendorField`]s, encoded with [`xsplice_abi::vendor::VendorEntry::encode_into`] |
//!
//! Everything else in the input is written back unchanged (the `object`
//! crate's ELF builder re-lays the file out; symbol indices may change,
//! locals first as ELF requires). That includes the architecture-specific
//! tables of format 3.1 (`.xsplice.ex_table`, `.xsplice.altinstructions`
//! with `.xsplice.altinstr_replacement`, `.xsplice.bug_frames`) and their
//! relocations: when the input has any of them, the note sets the
//! payload-level ARCH bit and says format minor 1. A v1 payload has no note
//! to carry the bit, so such an input cannot be written as v1
//! ([`WriteError::Unloadable`]).
//!
//! # Decisions
//!
//! * **Records are read-only.** `.xsplice.funcs` is written `A` (not `WA`
//!   like a C array): loaded records are never written, from v2 on.
//! * **Feature bits are derived, not given.** NOP from [`NewCode::Nop`],
//!   PATCH_OFFSET from a non-zero [`Patch::patch_offset`], SYMPOS from a
//!   non-zero [`Patch::sympos`], EXPECT from [`Patch::expect`] being `Some`.
//!   A version that cannot express one is a [`WriteError::Record`] carrying
//!   the [`xsplice_abi::Error`] of [`xsplice_abi::encode`], never silent loss.
//! * **The default version is [`RecordVersion::LATEST`]** (v3).
//! * **No build-id by default.** A build-id names a build for `depends`
//!   chains; the toolchain that produced the code knows it. A hash invented
//!   here would look like a sha1 without being one, and would change with
//!   the writer's layout rather than with the code. An input that already
//!   has `.note.gnu.build-id` keeps it.
//! * **Sections are added, never merged.** An input that already has
//!   `.xsplice.funcs` is a payload: [`PayloadBuilder::from_object`] refuses
//!   it (use [`rewrite_version`]). An input that has any section the builder
//!   is asked to write (`.note.xsplice`, `.xsplice.strings`, a build-id,
//!   depends or vendor section) is refused too, naming the section.
//! * **The new function** is looked up by symbol name; it must be defined
//!   exactly once in an executable section. Its size defaults to its
//!   `st_size`. Local (static) functions are allowed: the relocation names
//!   the symbol itself.
//! * **`OldTarget::Symbol`** reuses the input's undefined symbol of that
//!   name when there is one, and adds an undefined global otherwise; a
//!   symbol *defined* in the input is refused (the patched code is the
//!   target's, not the payload's). The record's name is the symbol's name.
//! * **Rewriting keeps every record, in order**, so vendor entries and
//!   anything else indexing records stay valid. Relocations of
//!   `.xsplice.funcs` must lie in the 40-byte prefix every version shares
//!   (`new_addr` 0, `old_addr` 16, `name` 32); each moves to
//!   `index × new size + field offset`. Symbols defined in `.xsplice.funcs`
//!   (gcc's array symbol) and relocations elsewhere pointing into it are
//!   moved the same way (record starts and the section end map exactly).
//!   The note's compat bits are kept; its format minor is kept when the
//!   major does not change and reset to 0 when it does.
//! * **An input to rewrite must load** (the probe target, with the given
//!   [`LoadOptions`]): an unknown CRITICAL vendor entry is refused unless
//!   the options list it, since the writer cannot know whether the entry
//!   depends on the record layout.
//!
//! Limits: ELF64 little-endian `ET_REL` for x86-64 and AArch64 only, as the
//! loader; section groups (`SHT_GROUP`, C++ COMDAT) are not supported by the
//! `object` crate's builder and give a [`WriteError::Elf`].
//!
//! # Example
//!
//! ```
//! use xsplice_abi::RecordVersion;
//! use xsplice_loader::write::{OldTarget, Patch, PayloadBuilder};
//! use xsplice_loader::{DryRun, LoadOptions};
//!
//! let object = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../compat-tests/fixtures/build_input.obj"
//! ))?;
//! let payload = PayloadBuilder::from_object(&object)?
//!     .version(RecordVersion::V2)
//!     .patch(Patch::replace(
//!         OldTarget::Name("xsplice_demo_answer".into()),
//!         "xsplice_new_answer",
//!         16,
//!     ))
//!     .build_id(vec![0xab; 20])
//!     .build()?;
//! let loaded = DryRun::default().load(&payload, &LoadOptions::default())?;
//! assert_eq!(loaded.records[0].name, "xsplice_demo_answer");
//! assert_eq!(loaded.record_version, RecordVersion::V2);
//!
//! // `xsplice upgrade`: the same records as v3.
//! let v3 = xsplice_loader::write::rewrite_version(&payload, RecordVersion::V3)?;
//! let loaded = DryRun::default().load(&v3, &LoadOptions::default())?;
//! assert_eq!(loaded.record_size, 128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use object::build::elf::{Builder, Relocation, SectionData, SectionId, SymbolId};
use object::build::Id;
use object::elf;
use xsplice_abi::sections::{BUILD_ID, DEPENDS, FUNCS, NOTE, VENDOR};
use xsplice_abi::vendor::{VendorEntry as AbiVendorEntry, VendorId, VendorTarget};
use xsplice_abi::{
    encode, AbiNote, Addr, Compat, Expect, Incompat, PatchFunc, RecordVersion, NOTE_NAME, NOTE_TYPE,
};

use crate::notes::{self, GNU_NAME, NT_GNU_BUILD_ID};
use crate::{
    Allocator, Arch, LoadError, LoadOptions, LoadedPayload, RegionKind, Symbol, SymbolSource,
    TargetError, NAME_MAX,
};

/// The section the builder puts record names in (alloc, read-only).
pub const STRINGS: &str = ".xsplice.strings";

/// The relocation section of `.xsplice.funcs`.
const RELA_FUNCS: &str = ".rela.xsplice.funcs";
/// Offsets of the relocated fields, the same in every record version.
const NEW_ADDR: u64 = 0;
const OLD_ADDR: u64 = 16;
const NAME: u64 = 32;
/// The prefix every record version shares.
const PREFIX: u64 = 40;
/// ELF64 RELA entry size.
const RELA_SIZE: u64 = 24;

/// The function a record patches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OldTarget {
    /// Resolved by name in the target when the payload is loaded
    /// (`old_addr` 0). With [`Patch::sympos`], the n-th local symbol of that
    /// name.
    Name(String),
    /// `old_addr` relocated against an undefined symbol of this name, which
    /// is also the record's name.
    Symbol(String),
}

impl OldTarget {
    /// The record's name.
    pub fn name(&self) -> &str {
        match self {
            OldTarget::Name(n) | OldTarget::Symbol(n) => n,
        }
    }
}

/// What the patch site gets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NewCode {
    /// A jump to a function defined in the input object.
    Function {
        /// The function's symbol name.
        symbol: String,
        /// `new_size`; `None` takes the symbol's `st_size`.
        size: Option<u64>,
    },
    /// NOPs (the NOP feature, v2 and later): `new_addr` 0.
    Nop {
        /// Bytes to NOP out (`new_size`).
        size: u64,
    },
}

/// One patch: becomes one record of `.xsplice.funcs`.
///
/// Feature bits are derived from the fields (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Patch {
    /// The function to patch, and the record's name.
    pub old: OldTarget,
    /// The replacement.
    pub new: NewCode,
    /// `old_size`: the size of the patched function.
    pub old_size: u64,
    /// Patch site offset from the function (PATCH_OFFSET when non-zero).
    pub patch_offset: u32,
    /// Which local symbol of the name (SYMPOS when non-zero).
    pub sympos: u32,
    /// Bytes expected at the patch site before apply (EXPECT when `Some`),
    /// at most 32.
    pub expect: Option<Vec<u8>>,
    /// Compat bits of the record (none can be written into v1).
    pub compat: Compat,
}

impl Patch {
    /// Redirects `old` to the function `new_symbol` of the input object,
    /// whose `st_size` is the record's `new_size`.
    pub fn replace(old: OldTarget, new_symbol: impl Into<String>, old_size: u64) -> Patch {
        Patch {
            old,
            new: NewCode::Function {
                symbol: new_symbol.into(),
                size: None,
            },
            old_size,
            patch_offset: 0,
            sympos: 0,
            expect: None,
            compat: Compat::empty(),
        }
    }

    /// NOPs out `nop_size` bytes at the patch site of `old`.
    pub fn nop(old: OldTarget, nop_size: u64, old_size: u64) -> Patch {
        Patch {
            new: NewCode::Nop { size: nop_size },
            ..Patch::replace(old, String::new(), old_size)
        }
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        self.old.name()
    }
}

/// A vendor entry to write into `.xsplice.vendor` (an owned
/// [`xsplice_abi::vendor::VendorEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorField {
    /// Vendor id (0 is reserved).
    pub vendor: VendorId,
    /// Vendor-defined kind.
    pub kind: u16,
    /// Whether a loader that does not know `(vendor, kind)` must refuse.
    pub critical: bool,
    /// A record (by index in the order patches were added) or the payload.
    pub target: VendorTarget,
    /// The data.
    pub data: Vec<u8>,
}

/// What is wrong with one [`Patch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchProblem {
    /// The name is empty, too long, or holds a NUL byte.
    #[error("name {0} (names are 1 to 127 bytes, no NUL)")]
    Name(&'static str),
    /// Another patch has the same name.
    #[error("same name as patch {first}")]
    DuplicateName {
        /// Index of the first patch with the name.
        first: usize,
    },
    /// No symbol of the input has the new function's name.
    #[error("new function `{0}` is not in the object's symbol table")]
    NewSymbolMissing(String),
    /// The new function's symbol is undefined in the input.
    #[error("new function `{0}` is undefined in the object (the replacement code must be in it)")]
    NewSymbolUndefined(String),
    /// Several symbols define the new function's name.
    #[error("new function `{0}` is defined more than once in the object")]
    NewSymbolAmbiguous(String),
    /// The new function's symbol is not in an allocated executable section.
    #[error("new function `{0}` is not in an executable section")]
    NewSymbolNotCode(String),
    /// The new function's `st_size` is 0 and no size was given.
    #[error("new function `{0}` has st_size 0: give its size")]
    NewSizeUnknown(String),
    /// [`OldTarget::Symbol`] names a symbol the input defines.
    #[error("old function `{0}` is defined in the object; old_addr must name target code")]
    OldSymbolDefined(String),
    /// More than 32 expected bytes.
    #[error("{0} expected bytes, at most 32")]
    ExpectTooLong(usize),
}

/// Why a payload cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The `object` crate cannot read or write the ELF file.
    #[error("ELF: {0}")]
    Elf(String),
    /// The input is not an object the loader would accept.
    #[error("input: {0}")]
    Input(&'static str),
    /// The input already has a section the writer would add.
    #[error("input already has `{0}`")]
    SectionExists(&'static str),
    /// No patch was added.
    #[error("no patch: a payload needs at least one record")]
    NoPatches,
    /// A patch cannot be turned into a record.
    #[error("patch {index} `{name}`: {problem}")]
    Patch {
        /// Index of the patch (its record index).
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: PatchProblem,
    },
    /// A record cannot be encoded in the chosen version (a feature the
    /// version cannot express, compat bits in v1, ...).
    #[error("record {index} `{name}`: {source}")]
    Record {
        /// Record index.
        index: usize,
        /// Record name.
        name: String,
        /// The encoder's error, naming the feature and version.
        #[source]
        source: xsplice_abi::Error,
    },
    /// A vendor field targets a record the payload does not have.
    #[error("vendor field {index}: record {record} does not exist ({count} records)")]
    VendorRecord {
        /// Index of the vendor field.
        index: usize,
        /// The record it names.
        record: u32,
        /// Number of records.
        count: usize,
    },
    /// A vendor field uses the reserved vendor id 0.
    #[error("vendor field {index}: vendor id 0 is reserved")]
    VendorReserved {
        /// Index of the vendor field.
        index: usize,
    },
    /// A vendor field's data is too large for its `u32` length.
    #[error("vendor field {index}: data too large")]
    VendorTooLarge {
        /// Index of the vendor field.
        index: usize,
    },
    /// A build-id is empty or too large.
    #[error("`{section}`: build-id {why}")]
    BuildId {
        /// `.note.gnu.build-id` or `.xsplice.depends`.
        section: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A relocation of `.xsplice.funcs` is not in the prefix every record
    /// version shares, so it has no place in the other version.
    #[error("`{RELA_FUNCS}`: relocation {index} at offset {offset:#x} is outside the 40-byte record prefix")]
    FuncsRelocation {
        /// Index of the relocation in its section.
        index: usize,
        /// Its offset in `.xsplice.funcs`.
        offset: u64,
    },
    /// A symbol or relocation points inside a record, past the shared
    /// prefix, so it has no place in the other version.
    #[error("{what} points at `.xsplice.funcs`+{offset:#x}, which does not map to the new record layout")]
    FuncsReference {
        /// The symbol or relocation.
        what: String,
        /// The offset in `.xsplice.funcs`.
        offset: u64,
    },
    /// A relocation refers to a symbol defined in `.note.xsplice`, and the
    /// rewrite to version 1 removes the note (v1 payloads have none):
    /// the relocation would be dropped with it and the payload changed.
    #[error("`{section}` relocation {index} refers to `{NOTE}`, which a version 1 payload does not have")]
    NoteReference {
        /// The relocation section.
        section: String,
        /// Index of the relocation in it.
        index: usize,
    },
    /// A global symbol is defined in `.note.xsplice`, and the rewrite to
    /// version 1 removes the note: the payload would lose that export.
    #[error("symbol `{name}` is defined in `{NOTE}`, which a version 1 payload does not have")]
    NoteExport {
        /// The symbol.
        name: String,
    },
    /// The payload to rewrite does not load.
    #[error("the payload to rewrite does not load: {0}")]
    InvalidPayload(#[source] LoadError),
    /// The written payload does not load: a patch the loader refuses (for
    /// example an `old_size` smaller than the jump) or a writer bug.
    #[error("the written payload does not load: {0}")]
    Unloadable(#[source] LoadError),
}

fn elf_err(e: object::build::Error) -> WriteError {
    WriteError::Elf(e.to_string())
}

/// Reads the object and checks it is what the loader accepts.
fn read_object(bytes: &[u8]) -> Result<(Builder<'_>, Arch), WriteError> {
    let b = Builder::read(bytes).map_err(elf_err)?;
    if !b.is_64 {
        return Err(WriteError::Input("not ELF64"));
    }
    if b.endian != object::Endianness::Little {
        return Err(WriteError::Input("not little-endian"));
    }
    if b.header.e_type != elf::ET_REL {
        return Err(WriteError::Input("not a relocatable object (ET_REL)"));
    }
    if !b.segments.is_empty() {
        return Err(WriteError::Input("has program headers"));
    }
    let arch = Arch::from_machine(b.header.e_machine)
        .ok_or(WriteError::Input("machine is neither x86-64 nor AArch64"))?;
    Ok((b, arch))
}

/// The absolute 64-bit relocation of a machine.
fn abs64(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => elf::R_X86_64_64,
        Arch::Aarch64 => elf::R_AARCH64_ABS64,
    }
}

fn find_section(b: &Builder<'_>, name: &str) -> Option<SectionId> {
    b.sections
        .iter()
        .find(|s| s.name.as_slice() == name.as_bytes())
        .map(|s| s.id())
}

/// The first relocation (its section's name and its index) that refers
/// to a symbol defined in `section`, outside `section`'s own relocations:
/// what deleting `section` would silently drop. One pass over the symbols
/// and one over the relocations.
fn reference_into(b: &Builder<'_>, section: SectionId) -> Option<(String, usize)> {
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

fn section_bytes<'a>(data: &'a SectionData<'_>) -> Option<&'a [u8]> {
    match data {
        SectionData::Data(d) | SectionData::Note(d) => Some(d.as_slice()),
        _ => None,
    }
}

fn add_section<'data>(
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

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

/// One ELF note: `namesz`, `descsz`, `type`, name and descriptor padded to 4.
fn note(name: &[u8], ntype: u32, desc: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(12 + name.len() + desc.len() + 6);
    v.extend(u32::try_from(name.len()).ok()?.to_le_bytes());
    v.extend(u32::try_from(desc.len()).ok()?.to_le_bytes());
    v.extend(ntype.to_le_bytes());
    v.extend(name);
    pad4(&mut v);
    v.extend(desc);
    pad4(&mut v);
    Some(v)
}

/// The `.note.xsplice` note of `n`.
fn abi_note(n: &AbiNote) -> Vec<u8> {
    let d = n.encode();
    let mut desc = Vec::with_capacity(xsplice_abi::NOTE_DESC_SIZE);
    desc.extend(d.format_major.get().to_le_bytes());
    desc.extend(d.format_minor.get().to_le_bytes());
    desc.extend(d.record_version.get().to_le_bytes());
    desc.extend(d.record_size.get().to_le_bytes());
    desc.extend(d.incompat.get().to_le_bytes());
    desc.extend(d.compat.get().to_le_bytes());
    desc.extend(d.reserved);
    // A 24-byte descriptor and an 8-byte name always fit the u32 sizes.
    note(NOTE_NAME, NOTE_TYPE, &desc).unwrap_or_default()
}

/// A GNU build-id note for `section`.
fn build_id_note(section: &'static str, id: &[u8]) -> Result<Vec<u8>, WriteError> {
    if id.is_empty() {
        return Err(WriteError::BuildId {
            section,
            why: "is empty",
        });
    }
    note(GNU_NAME, NT_GNU_BUILD_ID, id).ok_or(WriteError::BuildId {
        section,
        why: "is too large",
    })
}

/// Where every undefined symbol of a probe load resolves.
const PROBE_SYMBOL: Addr = Addr(0x1000_0000);
/// Where probe regions start: 1 MiB above the placeholder, so every region
/// (at most [`LoadOptions::max_alloc`] in all) is within an AArch64 branch.
const PROBE_BASE: u64 = 0x1010_0000;

/// The symbol side of the probe target.
struct ProbeSymbols;

impl SymbolSource for ProbeSymbols {
    fn lookup(&self, _name: &str) -> Option<Symbol> {
        Some(Symbol {
            addr: PROBE_SYMBOL,
            size: 0,
        })
    }

    fn lookup_local(&self, name: &str, _pos: u32) -> Option<Symbol> {
        self.lookup(name)
    }
}

/// The allocator side of the probe target: regions packed upwards from
/// [`PROBE_BASE`], page-aligned.
struct ProbeAlloc(u64);

impl Allocator for ProbeAlloc {
    fn allocate(&mut self, kind: RegionKind, size: u64, align: u64) -> Result<Addr, TargetError> {
        let a = align.max(4096);
        let oom = TargetError::OutOfMemory {
            kind: kind.name(),
            size,
        };
        let start = self.0.checked_add(a - 1).ok_or(oom.clone())? / a * a;
        self.0 = start.checked_add(size).ok_or(oom)?;
        Ok(Addr(start))
    }
}

/// Loads `bytes` against the probe target.
fn probe(bytes: &[u8], opts: &LoadOptions) -> Result<LoadedPayload, LoadError> {
    crate::load(bytes, opts, &ProbeSymbols, &mut ProbeAlloc(PROBE_BASE))
}

/// Loads what was written: the writer never returns what the reader refuses.
fn self_check(
    out: &[u8],
    base: &LoadOptions,
    known: &[(u32, u16)],
) -> Result<LoadedPayload, WriteError> {
    let mut opts = base.clone();
    opts.max_size = opts.max_size.max(out.len());
    opts.known_vendor_entries.extend_from_slice(known);
    probe(out, &opts).map_err(WriteError::Unloadable)
}

fn write_out(b: Builder<'_>) -> Result<Vec<u8>, WriteError> {
    let mut out = Vec::new();
    b.write(&mut out).map_err(elf_err)?;
    Ok(out)
}

fn check_name(name: &str) -> Result<(), PatchProblem> {
    if name.is_empty() {
        Err(PatchProblem::Name("is empty"))
    } else if name.len() > NAME_MAX {
        Err(PatchProblem::Name("is longer than 127 bytes"))
    } else if name.contains('\0') {
        Err(PatchProblem::Name("holds a NUL byte"))
    } else {
        Ok(())
    }
}

/// Whether a symbol is a named one (not a section or file symbol).
fn is_named(st_type: u8) -> bool {
    st_type != elf::STT_SECTION && st_type != elf::STT_FILE
}

/// The symbol of the new function and its `st_size`.
fn new_symbol(b: &Builder<'_>, name: &str) -> Result<(SymbolId, u64), PatchProblem> {
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
fn old_symbol(b: &mut Builder<'_>, name: &str) -> Result<SymbolId, PatchProblem> {
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
/// [module documentation](self) for what is written and why.
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

    /// Writes the payload, and checks it loads (the probe target of the
    /// [module documentation](self), default [`LoadOptions`] knowing the
    /// vendor entries written).
    pub fn build(&self) -> Result<Vec<u8>, WriteError> {
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
        let mut funcs = Vec::with_capacity(self.patches.len() * self.version.known_size());
        let mut strings = Vec::new();
        let mut relocs = Vec::with_capacity(self.patches.len() * 3);
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
            let base = index as u64 * size;
            let mut incompat = Incompat::empty();
            let new_size = match &p.new {
                NewCode::Function { symbol, size } => {
                    let (id, st_size) = new_symbol(&b, symbol).map_err(perr)?;
                    relocs.push((base + NEW_ADDR, RelocTarget::Symbol(id), 0));
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
                relocs.push((base + OLD_ADDR, RelocTarget::Symbol(id), 0));
            }
            let at = i64::try_from(strings.len()).unwrap_or(i64::MAX);
            strings.extend(name.as_bytes());
            strings.push(0);
            relocs.push((base + NAME, RelocTarget::Strings, at));
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
        let r_type = abs64(self.arch);
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
        self_check(&out, &LoadOptions::default(), &known)?;
        Ok(out)
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
            out.resize(start + len, 0);
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

/// Where offsets of the old `.xsplice.funcs` go in the new one.
struct Remap {
    old: u64,
    new: u64,
    count: u64,
}

impl Remap {
    /// A place in the shared prefix of a record (a relocated field).
    fn field(&self, offset: u64) -> Option<u64> {
        let (index, within) = (offset / self.old, offset % self.old);
        (index < self.count && within < PREFIX).then(|| index * self.new + within)
    }

    /// A place a symbol or a relocation target may be: a field of the
    /// prefix, a record start, or the end of the section.
    fn point(&self, offset: u64) -> Option<u64> {
        if offset == self.count * self.old {
            return Some(self.count * self.new);
        }
        self.field(offset)
    }
}

/// Gives every relocation section whose `sh_info` was read without
/// `SHF_INFO_LINK` its target section, so that removing a section cannot
/// leave a stale index behind.
fn link_relocation_targets(b: &mut Builder<'_>) {
    let ids: Vec<(usize, SectionId)> = b
        .sections
        .iter()
        .map(|s| (s.id().index(), s.id()))
        .collect();
    for s in b.sections.iter_mut() {
        let is_rel = s.sh_type == elf::SHT_RELA || s.sh_type == elf::SHT_REL;
        if !is_rel || s.sh_info_section.is_some() || s.sh_info == 0 {
            continue;
        }
        // Builder section ids are ELF section indices minus one.
        let index = s.sh_info as usize - 1;
        s.sh_info_section = ids.iter().find(|(i, _)| *i == index).map(|(_, id)| *id);
    }
}

/// Rewrites a payload's records into version `to`: what `xsplice upgrade`
/// runs. The payload must load with [`LoadOptions::default`]; see
/// [`rewrite_version_with`].
pub fn rewrite_version(payload: &[u8], to: RecordVersion) -> Result<Vec<u8>, WriteError> {
    rewrite_version_with(payload, to, &LoadOptions::default())
}

/// Rewrites a payload's records into version `to`.
///
/// The payload must load with `opts` (against the probe target of the
/// [module documentation](self)). Every record is
/// decoded from the unrelocated `.xsplice.funcs` with
/// [`xsplice_abi::decode`], re-encoded as `to` (a feature `to` cannot
/// express is a [`WriteError::Record`] naming it), and the relocations,
/// `sh_entsize` and `.note.xsplice` (removed for v1) follow. Everything
/// else is kept; the result is loaded back with `opts` before it is
/// returned.
pub fn rewrite_version_with(
    payload: &[u8],
    to: RecordVersion,
    opts: &LoadOptions,
) -> Result<Vec<u8>, WriteError> {
    let loaded = probe(payload, opts).map_err(WriteError::InvalidPayload)?;
    let (mut b, _) = read_object(payload)?;
    let funcs = find_section(&b, FUNCS).ok_or(WriteError::Input("no `.xsplice.funcs`"))?;
    let section = b.sections.get(funcs);
    let bytes = section_bytes(&section.data)
        .ok_or(WriteError::Input("`.xsplice.funcs` has no contents"))?;
    let invalid = |e| WriteError::InvalidPayload(LoadError::Records(e));
    let records = xsplice_abi::decode(bytes, section.sh_entsize).map_err(invalid)?;
    let mut data = Vec::with_capacity(records.len() * to.known_size());
    let mut union = Incompat::empty();
    for rec in records.iter() {
        let rec = rec.map_err(invalid)?;
        let index = rec.index.0 as usize;
        let record = encode(&rec.func, to).map_err(|source| WriteError::Record {
            index,
            name: loaded
                .records
                .get(index)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            source,
        })?;
        union |= rec.func.incompat;
        data.extend_from_slice(record.as_bytes());
    }
    let remap = Remap {
        old: records.size() as u64,
        new: to.known_size() as u64,
        count: records.len() as u64,
    };

    link_relocation_targets(&mut b);
    // The relocations of the records.
    for s in b.sections.iter_mut() {
        if s.sh_info_section != Some(funcs) {
            continue;
        }
        let SectionData::Relocation(relocs) = &mut s.data else {
            return Err(WriteError::Input(
                "the relocations of `.xsplice.funcs` are not static relocations",
            ));
        };
        for (index, r) in relocs.iter_mut().enumerate() {
            r.r_offset = remap.field(r.r_offset).ok_or(WriteError::FuncsRelocation {
                index,
                offset: r.r_offset,
            })?;
        }
    }
    // Symbols defined in the records (gcc's array symbol, the section symbol).
    let mut moved: Vec<(SymbolId, u64, u64)> = Vec::new();
    for s in b.symbols.iter_mut() {
        if s.section != Some(funcs) {
            continue;
        }
        let what = || format!("symbol `{}`", String::from_utf8_lossy(s.name.as_slice()));
        let value = remap
            .point(s.st_value)
            .ok_or_else(|| WriteError::FuncsReference {
                what: what(),
                offset: s.st_value,
            })?;
        let old_end = s.st_value.saturating_add(s.st_size);
        let end = remap
            .point(old_end)
            .ok_or_else(|| WriteError::FuncsReference {
                what: what(),
                offset: old_end,
            })?;
        moved.push((s.id(), s.st_value, value));
        s.st_value = value;
        s.st_size = end.saturating_sub(value);
    }
    // Relocations elsewhere that point into the records.
    for s in b.sections.iter_mut() {
        if s.sh_info_section == Some(funcs) {
            continue;
        }
        let is_rel = s.sh_type == elf::SHT_REL;
        let section = String::from_utf8_lossy(s.name.as_slice()).into_owned();
        let SectionData::Relocation(relocs) = &mut s.data else {
            continue;
        };
        for (index, r) in relocs.iter_mut().enumerate() {
            let Some(&(_, old_value, new_value)) =
                moved.iter().find(|(id, _, _)| Some(*id) == r.symbol)
            else {
                continue;
            };
            let what = || format!("`{section}` relocation {index}");
            let target = old_value.wrapping_add_signed(r.r_addend);
            let new_target = remap.point(target).filter(|_| !is_rel).ok_or_else(|| {
                WriteError::FuncsReference {
                    what: what(),
                    offset: target,
                }
            })?;
            r.r_addend = new_target.wrapping_sub(new_value) as i64;
        }
    }
    let s = b.sections.get_mut(funcs);
    s.data = SectionData::Data(data.into());
    s.sh_entsize = to.known_size() as u64;

    // The ABI note.
    let new_note = (to != RecordVersion::V1).then(|| {
        // Payload-level bits (ARCH) are the note's own: they stay.
        let payload_level = loaded.note.map_or(Incompat::empty(), |n| {
            n.incompat & Incompat::payload_level()
        });
        let mut n = AbiNote::new(to, union | payload_level);
        if let Some(old) = loaded.note {
            n.compat = old.compat;
            if old.record_version == to {
                n.format = old.format;
            }
        }
        n
    });
    match find_section(&b, NOTE) {
        Some(id) => {
            let s = b.sections.get(id);
            let is_note = matches!(s.data, SectionData::Note(_));
            let old = section_bytes(&s.data).unwrap_or(&[]);
            let mut rebuilt = Vec::with_capacity(old.len());
            for n in notes::notes(old) {
                let n = n.map_err(|e| {
                    WriteError::InvalidPayload(LoadError::Note(crate::NoteProblem::Framing(e)))
                })?;
                if n.name == NOTE_NAME.as_slice() && n.ntype == NOTE_TYPE {
                    if let Some(new) = &new_note {
                        rebuilt.extend(abi_note(new));
                    }
                } else {
                    rebuilt.extend(note(n.name, n.ntype, n.desc).unwrap_or_default());
                }
            }
            if rebuilt.is_empty() {
                if let Some((section, index)) = reference_into(&b, id) {
                    return Err(WriteError::NoteReference { section, index });
                }
                let global = |s: &&object::build::elf::Symbol<'_>| {
                    s.section == Some(id) && s.st_bind() != elf::STB_LOCAL
                };
                if let Some(s) = b.symbols.iter().find(global) {
                    let name = String::from_utf8_lossy(s.name.as_slice()).into_owned();
                    return Err(WriteError::NoteExport { name });
                }
                b.sections.get_mut(id).delete = true;
            } else {
                b.sections.get_mut(id).data = if is_note {
                    SectionData::Note(rebuilt.into())
                } else {
                    SectionData::Data(rebuilt.into())
                };
            }
        }
        None => {
            if let Some(n) = &new_note {
                add_section(
                    &mut b,
                    NOTE,
                    elf::SHT_NOTE,
                    elf::SHF_ALLOC,
                    4,
                    0,
                    SectionData::Note(abi_note(n).into()),
                );
            }
        }
    }
    let out = write_out(b)?;
    self_check(&out, opts, &[])?;
    Ok(out)
}
