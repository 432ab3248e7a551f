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
//! These checks load as a [`crate::DryRun::packed`]: every undefined symbol
//! resolves to one placeholder address and the regions lie packed right above it,
//! so that short-range branches to the target (AArch64 `CALL26`, ±128 MiB)
//! fit as they do on a real target.
//!
//! The room: [`PayloadBuilder`] (`build.rs`) and [`rewrite_version`]
//! (`rewrite.rs`) on top of the `object` crate's ELF builder
//! (`obj.rs`: reading the input, sections, symbols, the self-check);
//! notes are framed by the reader's own framer (`crate::elf::note`).
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
//! * **The default version is [`RecordVersion::LATEST`](xsplice_abi::RecordVersion::LATEST)** (v3).
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
//! * **An input to rewrite must load** (as a dry run, with the given
//!   [`LoadOptions`](crate::LoadOptions)): an unknown CRITICAL vendor entry is refused unless
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

mod build;
mod error;
mod obj;
mod rewrite;

use alloc::string::String;
use alloc::vec::Vec;

use xsplice_abi::vendor::{VendorId, VendorTarget};
use xsplice_abi::Compat;

pub use build::PayloadBuilder;
pub use error::{PatchProblem, WriteError};
pub use rewrite::{rewrite_version, rewrite_version_with};

/// The section the builder puts record names in (alloc, read-only).
pub const STRINGS: &str = ".xsplice.strings";

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
