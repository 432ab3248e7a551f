//! The on-disk ABI of xsplice live-patching payloads.
//!
//! This crate is the single source of truth for *bytes and layouts*. It knows
//! nothing about ELF: the loader finds the `.xsplice.funcs` section, applies
//! its relocations and hands the relocated bytes here.
//!
//! What lives here:
//!
//! * [`raw`] — the wire structs of every record version ([`raw::RecordV1`],
//!   [`raw::RecordV2`], [`raw::RecordV3`]), the ABI note descriptor and the
//!   vendor entry header. They are `repr(C)` structs of explicit little-endian,
//!   alignment-1 integers, so a struct *is* its on-disk bytes and parses from
//!   unaligned input without copying.
//! * [`PatchFunc`] — the one canonical view every record version decodes into,
//!   and that [`encode`] writes back into any version able to express it.
//! * [`Records`] / [`decode`] — version detection, the size rule (a record
//!   larger than the layout this crate knows is accepted only when its unknown
//!   tail is zero), feature-bit checks, and warnings for unknown compat bits.
//! * [`Incompat`] and [`Compat`] feature bits, each knowing the format
//!   version that introduced it.
//! * [`AbiNote`] — the `.note.xsplice` descriptor.
//! * [`vendor`] — `.xsplice.vendor` extension entries.
//! * [`signature`] — the signature block and footer appended after the ELF
//!   bytes of a signed payload.
//! * [`layout`] — a table of every field of every layout, from which the
//!   specification, the C header and the JSON Schemas are generated.
//! * [`ledger`] — constants of the ledger a patched target keeps of what
//!   was applied (its wire structs are in [`raw`]).
//! * [`sections`] — every section name of the format.
//!
//! Nothing here allocates or panics on input; every error names the record
//! index, the field and the byte offset at fault.
//!
//! # Example
//!
//! Decode a v3 record written by a toolchain, and re-encode it as v2:
//!
//! ```
//! use xsplice_abi::{decode, encode, Addr, PatchFunc, RecordVersion};
//!
//! let func = PatchFunc {
//!     new_addr: Addr(0xffff_8000_0010_0000),
//!     new_size: 48,
//!     old_addr: Addr(0),
//!     old_size: 64,
//!     name: Addr(0xffff_8000_0020_0000),
//!     ..PatchFunc::default()
//! };
//! let bytes = encode(&func, RecordVersion::V3)?;
//! assert_eq!(bytes.as_bytes().len(), 128);
//!
//! // A section holding one record; `sh_entsize` 0 is what gcc emits.
//! let records = decode(bytes.as_bytes(), 0)?;
//! assert_eq!(records.version(), RecordVersion::V3);
//! let first = records.iter().next().unwrap()?;
//! assert_eq!(first.func, func);
//!
//! // Nothing in this record needs v3, so v2 can hold it too.
//! let v2 = encode(&first.func, RecordVersion::V2)?;
//! assert_eq!(v2.as_bytes().len(), 64);
//! # Ok::<(), xsplice_abi::Error>(())
//! ```
//!
//! # Cargo features
//!
//! | feature | what it adds |
//! |---|---|
//! | `std` | implies `semver` |
//! | `semver` | [`supported_formats`] as a `semver::VersionReq` (needs `alloc`) |
//! | `serde` | `Serialize`/`Deserialize` for [`PatchFunc`], [`AbiNote`] and the feature bits |
//! | `schemars` | `JsonSchema` for the same (implies `serde`) |
//!
//! No feature is on by default: a hypervisor gets a `no_std`, allocation-free
//! crate.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]
// Tests compute expected offsets freely.
#![cfg_attr(
    test,
    allow(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "schemars")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod decode;
mod encode;
mod error;
mod features;
pub mod layout;
pub mod ledger;
mod note;
pub mod raw;
pub mod sections;
pub mod signature;
pub mod vendor;
mod version;
mod view;

pub use decode::{
    decode, decode_record, DecodedRecord, Records, RecordsIter, Warning, Warnings, V1_DRAFT,
};
pub use encode::{encode, EncodedRecord};
pub use error::{Error, ErrorKind};
pub use features::{Compat, FeatureInfo, Incompat};
pub use note::{AbiNote, NoteError, NOTE_DESC_SIZE, NOTE_NAME, NOTE_TYPE};
#[cfg(feature = "semver")]
pub use version::supported_formats;
pub use version::{FormatVersion, RecordIndex, RecordVersion, UnsupportedFormat};
pub use view::{Addr, Expect, PatchFunc, EXPECT_MAX, NAME_MAX};
