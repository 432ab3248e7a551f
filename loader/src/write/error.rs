//! Why a payload cannot be written.

use alloc::string::String;

use xsplice_abi::sections::NOTE;

use super::obj::{PREFIX, RELA_FUNCS};
use crate::NAME_MAX;

use crate::LoadError;

/// What is wrong with one [`Patch`](super::Patch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchProblem {
    /// The name is empty, too long, or holds a NUL byte.
    #[error("name {0} (names are 1 to {NAME_MAX} bytes, no NUL)")]
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
    /// [`OldTarget::Symbol`](super::OldTarget::Symbol) names a symbol the input defines.
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
    /// The input's ELF header breaks a rule of the payload format (the
    /// reader's own check).
    #[error("ELF header: {0}")]
    Header(crate::HeaderProblem),
    /// The `object` crate cannot read or write the ELF file: its message.
    /// (`object`'s error is neither `Clone` nor `PartialEq`, which this enum
    /// is; the variant is the typed part, the text only explains it.)
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
    #[error("`{RELA_FUNCS}`: relocation {index} at offset {offset:#x} is outside the {PREFIX}-byte record prefix")]
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

pub(super) fn elf_err(e: object::build::Error) -> WriteError {
    WriteError::Elf(e.to_string())
}
