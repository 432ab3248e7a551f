//! The loader's typed errors. Each names the place: section, record index,
//! relocation index, symbol, offset.

use alloc::string::String;

use xsplice_abi::{Addr, NoteError, RecordIndex};

use crate::Arch;

/// Defines an index newtype: which table an index counts in is part of its
/// type, so a symbol index cannot be passed where a section index is meant.
macro_rules! index {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub usize);

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

index!(
    /// Index of a section header in the ELF file.
    SectionIndex
);
index!(
    /// Index of a symbol in `.symtab`.
    SymbolIndex
);
index!(
    /// Index of a relocation within its relocation section.
    RelocIndex
);

/// Why a payload cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The input is larger than [`crate::LoadOptions::max_size`].
    #[error("payload is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The ELF header is not that of a supported payload.
    #[error("ELF header: {0}")]
    Header(HeaderProblem),
    /// A section header or a section's contents is malformed.
    #[error("section {index} `{name}`: {problem}")]
    Section {
        /// Section index.
        index: SectionIndex,
        /// Section name (empty when the name itself is unreadable).
        name: String,
        /// What is wrong.
        problem: SectionProblem,
    },
    /// A required section is missing.
    #[error("missing section `{0}`")]
    MissingSection(&'static str),
    /// A symbol is malformed or cannot be resolved.
    #[error("symbol {index} `{name}`: {problem}")]
    Symbol {
        /// Symbol index in `.symtab`.
        index: SymbolIndex,
        /// Symbol name.
        name: String,
        /// What is wrong.
        problem: SymbolProblem,
    },
    /// A relocation cannot be applied.
    #[error("section `{section}`: relocation {index} ({rtype}) against `{symbol}`: {problem}")]
    Relocation {
        /// The section being relocated.
        section: String,
        /// Index of the relocation within its relocation section.
        index: RelocIndex,
        /// Relocation type name.
        rtype: &'static str,
        /// Symbol name (or `section+offset` for section symbols).
        symbol: String,
        /// What is wrong.
        problem: RelocProblem,
    },
    /// `.xsplice.funcs` breaks a rule of the record ABI.
    #[error("`.xsplice.funcs`: {0}")]
    Records(xsplice_abi::Error),
    /// The ABI note is malformed or disagrees with the records.
    #[error("`.note.xsplice`: {0}")]
    Note(NoteProblem),
    /// A record is well-formed but cannot be used.
    #[error("{record} `{name}`: {problem}")]
    Record {
        /// Record index.
        record: RecordIndex,
        /// The record's function name (empty when unreadable).
        name: String,
        /// What is wrong.
        problem: RecordProblem,
    },
    /// `.xsplice.vendor` is malformed, or holds a critical entry this loader
    /// does not know.
    #[error("`.xsplice.vendor`: {0}")]
    Vendor(VendorProblem),
    /// A build-id note (`.xsplice.depends` or `.note.gnu.build-id`) is malformed.
    #[error("`{section}`: malformed GNU build-id note: {why}")]
    BuildId {
        /// The section.
        section: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// The target refused an allocation.
    #[error("target: {0}")]
    Target(crate::TargetError),
    /// An architecture-specific table (or the ARCH bit) breaks a rule, or
    /// the target cannot honour it (SPEC.md section 17).
    #[error("`{section}`: {problem}")]
    Arch {
        /// The section at fault (`.note.xsplice` for an ARCH bit without
        /// any table).
        section: &'static str,
        /// What is wrong.
        problem: crate::arch_tables::ArchProblem,
    },
    /// The payload's signature is missing, untrusted, wrong or malformed
    /// under [`crate::LoadOptions::signature_policy`]. Checked before any
    /// ELF parsing.
    #[error("signature: {0}")]
    Signature(crate::signature::SignatureError),
}

/// What is wrong with the ELF header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// Not an ELF file, or shorter than its header.
    #[error("not an ELF file")]
    NotElf,
    /// Not ELF64.
    #[error("ELF class {0} is not ELF64")]
    NotElf64(u8),
    /// Not little-endian.
    #[error("data encoding {0} is not little-endian")]
    NotLittleEndian(u8),
    /// Not a relocatable object.
    #[error("e_type {0} is not ET_REL (a payload is a relocatable object)")]
    NotRelocatable(u16),
    /// Unsupported machine.
    #[error("e_machine {0} is not EM_X86_64 (62) or EM_AARCH64 (183)")]
    Machine(u16),
    /// The payload is for another machine than the target.
    #[error("payload is for {payload}, the target is {target}")]
    WrongArch {
        /// The payload's machine.
        payload: Arch,
        /// The target's machine.
        target: Arch,
    },
    /// A relocatable payload has program headers.
    #[error("{0} program headers (a relocatable payload has none)")]
    ProgramHeaders(u16),
    /// Section header entry size is not 64.
    #[error("e_shentsize {0} is not 64")]
    SectionEntrySize(u16),
    /// The section header table is not inside the file.
    #[error("section header table (offset {offset:#x}, {count} entries) is outside the file")]
    SectionTable {
        /// `e_shoff`.
        offset: u64,
        /// Section count.
        count: u64,
    },
    /// Too many sections for the limits.
    #[error("{0} sections exceed the limit")]
    TooManySections(u64),
    /// `e_shstrndx` is out of range.
    #[error("e_shstrndx {0} is out of range")]
    StringTableIndex(u64),
}

/// What is wrong with a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SectionProblem {
    /// Contents outside the file.
    #[error("contents (offset {offset:#x}, size {size:#x}) are outside the file")]
    OutOfFile {
        /// `sh_offset`.
        offset: u64,
        /// `sh_size`.
        size: u64,
    },
    /// The name offset is outside the section-name string table.
    #[error("name offset {0:#x} is outside the section-name table")]
    BadName(u32),
    /// The name is longer than [`crate::LoadOptions::max_name`] (raise it
    /// with `--max-name`).
    #[error("name is longer than {0} bytes (the limit, --max-name)")]
    NameTooLong(usize),
    /// A string table is not NUL-terminated.
    #[error("string table is not NUL-terminated")]
    StringTableNotTerminated,
    /// Wrong table entry size.
    #[error("sh_entsize {found} should be {expected}")]
    EntrySize {
        /// Found.
        found: u64,
        /// Expected.
        expected: u64,
    },
    /// Table size not a multiple of its entry size.
    #[error("size {size:#x} is not a multiple of the entry size {entsize}")]
    Ragged {
        /// `sh_size`.
        size: u64,
        /// Entry size.
        entsize: u64,
    },
    /// `sh_link` out of range or of the wrong type.
    #[error("sh_link {0} does not name a valid section")]
    Link(u32),
    /// `sh_info` out of range.
    #[error("sh_info {0} does not name a valid section")]
    Info(u32),
    /// Alignment not a power of two or too large.
    #[error("sh_addralign {0:#x} is not a power of two up to 64 KiB")]
    Alignment(u64),
    /// An allocated section is both writable and executable.
    #[error("is both writable and executable")]
    WritableExecutable,
    /// More than one symbol table.
    #[error("is a second symbol table")]
    SecondSymtab,
    /// The loaded image would exceed [`crate::LoadOptions::max_alloc`].
    #[error("allocated size exceeds the {0}-byte limit")]
    AllocLimit(u64),
    /// The section's contents are not valid for its role.
    #[error("{0}")]
    Contents(&'static str),
}

/// What is wrong with a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolProblem {
    /// The name offset is outside the string table.
    #[error("name offset {0:#x} is outside the string table")]
    BadName(u32),
    /// The name is not valid UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
    /// The name is longer than [`crate::LoadOptions::max_name`] (raise it
    /// with `--max-name`).
    #[error("name is longer than {0} bytes (the limit, --max-name)")]
    NameTooLong(usize),
    /// `st_shndx` out of range.
    #[error("section index {0} is out of range")]
    Section(u16),
    /// COMMON symbols are refused: compile with `-fno-common`.
    #[error("is a COMMON symbol (compile with -fno-common)")]
    Common,
    /// Two global definitions of one name.
    #[error("is defined twice")]
    Duplicate,
    /// Neither the target nor a loaded payload defines it.
    #[error("is undefined in the target and in every loaded payload")]
    Unresolved,
    /// Defined in a section that is not loaded, but referenced by a loaded one.
    #[error("is defined in a section that is not loaded")]
    NotLoaded,
    /// A section symbol (`STT_SECTION`) that names no section (undefined,
    /// absolute, COMMON): it stands for nothing, and resolving it by its
    /// (empty) name would give it whatever meaning the target's table has.
    #[error("is a section symbol of no section (index {0:#x})")]
    SectionSymbolWithoutSection(u16),
    /// Its value lies past the end of its section: its address would be
    /// inside whatever the layout puts next (and so change with it).
    #[error("value {value:#x} is past the end of its section ({size:#x} bytes)")]
    PastSection {
        /// `st_value`.
        value: u64,
        /// The section's `sh_size`.
        size: u64,
    },
}

/// What is wrong with a relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelocProblem {
    /// The type is not supported for this machine.
    #[error("unsupported relocation type {0}")]
    Unsupported(u32),
    /// The REL (implicit addend) form is not supported for this type.
    #[error("REL form (implicit addend) is not supported for this type")]
    RelForm,
    /// The place is outside the section.
    #[error("offset {offset:#x} (+{width}) is outside the section")]
    Place {
        /// `r_offset`.
        offset: u64,
        /// Bytes written.
        width: usize,
    },
    /// The symbol index is out of range.
    #[error("symbol index {0} is out of range")]
    SymbolIndex(usize),
    /// A relocation of a format section that touches something other than
    /// a pointer field, or is not a plain 64-bit absolute relocation.
    #[error("relocates a field of a format section in a way the format forbids (only ABS64 at new_addr, old_addr, name and hook pointers; PC32 or PREL32 at the rel32 fields of the architecture tables)")]
    FormatField,
    /// An absolute address in code or data of a payload for a target loaded
    /// at an address unknown when patching (a PIE image patched offline).
    #[error("stores an absolute address, but the target is position-independent")]
    AbsoluteInPositionIndependent,
    /// The value does not fit the field.
    #[error("value {value} does not fit the {bits}-bit field (place {place:#x})")]
    Overflow {
        /// The computed value, in the field's units (a branch counts
        /// instructions, an ADRP pages), signed.
        value: i128,
        /// Field width.
        bits: u32,
        /// Address of the place P. (The target is the relocation's symbol
        /// plus addend; a field more would make every load error larger.)
        place: u64,
    },
    /// The instruction at the place is not one the relocation type applies
    /// to (a GOT load relaxed with its ADRP must be a 64-bit `ldr`).
    #[error("the instruction {0:#010x} at the place is not the 64-bit load this relocation type expects")]
    Instruction(u32),
    /// A pointer of a record or hook table whose symbol plus addend leaves
    /// the symbol's section: where it lands would depend on the layout.
    #[error(
        "the pointer {value:#x} (symbol + addend) lies outside the symbol's section {section}"
    )]
    PointerLeavesSection {
        /// Index of the symbol's section.
        section: SectionIndex,
        /// The address symbol + addend, as laid out.
        value: u64,
    },
    /// The value is not aligned as the instruction needs.
    #[error("value {value:#x} is not {align}-byte aligned")]
    Misaligned {
        /// The computed value.
        value: i128,
        /// Required alignment.
        align: u32,
    },
}

/// How the ABI note is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteProblem {
    /// The descriptor breaks a rule of the ABI.
    #[error("{0}")]
    Descriptor(NoteError),
    /// The ELF note framing is malformed.
    #[error("malformed note: {0}")]
    Framing(&'static str),
    /// The section holds no XSPLICE note, or more than one.
    #[error("expected exactly one note named XSPLICE of type 1, found {0}")]
    Count(usize),
    /// A payload without the note must have v1 records.
    #[error("absent, but the records are {0} (a payload without the note is a v1 legacy payload)")]
    MissingForVersion(xsplice_abi::RecordVersion),
    /// The note disagrees with the records.
    #[error("says {field} is {note}, but the records have {records}")]
    Disagrees {
        /// The field.
        field: &'static str,
        /// The note's value.
        note: u64,
        /// The records' value.
        records: u64,
    },
}

/// Why a decoded record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordProblem {
    /// The name pointer does not point into an allocated payload section.
    #[error("name pointer {0} is not inside the payload")]
    NameOutside(Addr),
    /// The name pointer points into a format section (`.xsplice.*`), a
    /// note, code or `.eh_frame`, not into the payload's own data: a
    /// rewrite would change it.
    #[error("name pointer {0} points into a format section, a note, code or .eh_frame")]
    NameInFormatSection(Addr),
    /// The name is not NUL-terminated within 128 bytes.
    #[error("name is not NUL-terminated within 128 bytes")]
    NameTooLong,
    /// The name is empty or not UTF-8.
    #[error("name is empty or not UTF-8")]
    NameInvalid,
    /// Two records name the same function.
    #[error("names the same function as record {0}")]
    DuplicateName(u32),
    /// `new_addr` is outside the payload's executable sections.
    #[error("new code {addr}+{size:#x} is not inside the payload's text")]
    NewOutsideText {
        /// `new_addr`.
        addr: Addr,
        /// `new_size`.
        size: u64,
    },
    /// `new_addr` is 0 but the NOP bit is clear.
    #[error("new_addr is 0 but the NOP bit is clear")]
    NullNewAddr,
    /// The patch does not fit the old function.
    #[error("old_size {old_size} is too small: patch_offset {patch_offset} + {needed} bytes needed on {arch}")]
    OldTooSmall {
        /// `old_size`.
        old_size: u64,
        /// `patch_offset`.
        patch_offset: u32,
        /// Bytes written at the site.
        needed: u64,
        /// Architecture.
        arch: Arch,
    },
    /// `old_addr` is 0 and the target has no such symbol (or only several
    /// local ones, which need SYMPOS).
    #[error("function is not in the target's symbol table as a global or a unique local symbol")]
    Unresolved,
    /// `old_addr` is 0 and sympos names a local symbol that does not exist.
    #[error("has no local symbol number {0} of that name")]
    NoSuchLocal(u32),
    /// The patch site address overflows.
    #[error("patch site overflows the address space")]
    SiteOverflow,
    /// A NOP record longer than [`crate::patch::MAX_NOP`]: the bytes are
    /// written in the stop-the-world section, and no function needs more.
    #[error("NOP of {len} bytes is longer than {max}")]
    NopTooLong {
        /// `new_size`.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// NOPs that run past the end of the function the target's symbol
    /// table gives (they would erase the next function).
    #[error("NOPs end {end} bytes into a function of {size} bytes")]
    NopPastFunction {
        /// `patch_offset + new_size`.
        end: u64,
        /// The function's size in the target.
        size: u64,
    },
    /// The jump written at the site would run past the end of the function
    /// the target's symbol table gives, into whatever follows it.
    #[error(
        "the patch ends {end} bytes into a function of {size} bytes (its size in the \
         target's symbol table): it would overwrite what follows"
    )]
    PatchPastFunction {
        /// `patch_offset` + the patch size.
        end: u64,
        /// The function's size in the target.
        size: u64,
    },
    /// A NOP record on arm64 must NOP whole instructions.
    #[error("NOP size {0} is not a multiple of the instruction size")]
    NopSize(u64),
}

/// How the vendor section is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VendorProblem {
    /// Malformed entry.
    #[error("{0}")]
    Malformed(xsplice_abi::vendor::VendorError),
    /// A critical entry this loader does not know.
    #[error(
        "entry at offset {offset:#x}: unknown CRITICAL entry (vendor {vendor:#010x}, kind {kind})"
    )]
    UnknownCritical {
        /// Entry offset.
        offset: usize,
        /// Vendor id.
        vendor: u32,
        /// Kind.
        kind: u16,
    },
    /// An entry names a record that does not exist.
    #[error("entry at offset {offset:#x} names record {record}, but there are {count}")]
    NoSuchRecord {
        /// Entry offset.
        offset: usize,
        /// Record index named.
        record: u32,
        /// Record count.
        count: usize,
    },
}
