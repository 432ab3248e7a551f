//! The xsplice payload format specification and its generated artefacts.
//!
//! This crate is the `spec/` room of the workspace. It holds:
//!
//! * [`specification`] — `spec/SPEC.md`, the normative specification of the
//!   payload format (prose by hand, field tables generated);
//! * [`vendor_guide`] — `spec/VENDORS.md`, how a vendor adds a field, with the
//!   vendor-id registry; its worked example runs as a doctest;
//! * generators for the artefacts committed under `spec/generated/`, all
//!   derived from the layout table of `xsplice-abi` ([`xsplice_abi::layout`]),
//!   never typed in by hand:
//!   * [`header()`] — `xsplice_abi.h`, a C11 header with a struct per layout
//!     and `_Static_assert`s on every size and offset;
//!   * [`schema_record`], [`schema_layout`], [`schema_patch_func`],
//!     [`schema_note`] — JSON Schemas (draft 2020-12);
//!   * [`fields_markdown`] and the other Markdown tables of [`markdown`];
//! * [`splice`] — replaces the text between
//!   `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`
//!   markers in a Markdown document with the block of that name;
//! * [`expected_outputs`], [`check`] and [`write()`] — what the `gen` binary
//!   (`cargo run -p xsplice-spec --bin gen`) writes, and the staleness check
//!   the test suite runs against the committed files.
//!
//! The compat suite (`compat-tests/`) deliberately does *not* use this crate:
//! it pins layouts with literal numbers, so a slip in the layout table fails
//! there even though everything generated here would follow the slip.
//!
//! # Example
//!
//! ```
//! use xsplice_abi::RecordVersion;
//!
//! let header = xsplice_spec::header();
//! assert!(header.contains("struct xsplice_patch_func_v3 {"));
//! assert!(header.contains("#define XSPLICE_INCOMPAT_EXPECT (1u << 3)"));
//!
//! let schema = xsplice_spec::schema_record(RecordVersion::V2);
//! assert_eq!(schema["properties"]["version"]["const"], 2);
//! assert_eq!(schema["properties"]["incompat"]["x-offset"], 44);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod consts;
mod generate;
mod header;
pub mod markdown;
mod registry;
mod schema;
mod splice;

pub use consts::{
    DEPENDS_NOTE_NAME, DEPENDS_NOTE_TYPE, NAME_MAX, PATCH_SIZE_AARCH64, PATCH_SIZE_X86_64,
    V1_DRAFT_SIZE,
};
pub use generate::{
    blocks, check, expected_outputs, write, GenError, Output, Stale, StaleKind, GENERATED_DIR,
    REGENERATE, SPLICED_DOCS,
};
pub use header::{header, is_naturally_aligned};
pub use markdown::fields_markdown;
pub use registry::{VendorRegistration, VENDOR_REGISTRY};
pub use schema::{
    layout_to_json, schema_layout, schema_note, schema_patch_func, schema_record, to_pretty_json,
    RawJsonError,
};
pub use splice::{splice, Block, SpliceError, BEGIN_PREFIX, END_PREFIX};

#[doc = include_str!("../SPEC.md")]
pub mod specification {}

#[doc = include_str!("../VENDORS.md")]
pub mod vendor_guide {}
