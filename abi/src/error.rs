//! Errors of record decoding and encoding.

use core::fmt;
use core::mem::offset_of;

use crate::features::Incompat;
use crate::raw::{Prefix, RecordV2, RecordV3};
use crate::version::{RecordIndex, RecordVersion};

/// Where the fields that errors name sit, from the wire structs.
const VERSION_AT: usize = offset_of!(RecordV2, version);
const SIZE_AT: usize = offset_of!(RecordV2, size);
const INCOMPAT_AT: usize = offset_of!(RecordV2, incompat);
const EXPECT_LEN_AT: usize = offset_of!(RecordV3, expect_len);

/// What is wrong with a record or a record section.
///
/// Offsets are byte offsets *within the record* (the field's offset in the
/// layout); [`Error`] adds the record index and the offset within the
/// section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer bytes than a record needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The section holds no record.
    Empty,
    /// The version tag at offset 40 names no supported version.
    UnsupportedVersion {
        /// The tag found.
        tag: u16,
    },
    /// A record declares a size smaller than its version's layout.
    SizeTooSmall {
        /// The record version.
        version: RecordVersion,
        /// The declared size.
        size: u64,
    },
    /// The section's `sh_entsize` disagrees with the records' size.
    EntsizeMismatch {
        /// `sh_entsize`.
        entsize: u64,
        /// Size declared by the first record.
        size: u64,
    },
    /// The section length is not a multiple of the record size.
    SectionSize {
        /// Section length.
        len: usize,
        /// Record size.
        size: usize,
    },
    /// A record's version differs from the first record's.
    VersionMismatch {
        /// Version of the first record.
        expected: RecordVersion,
        /// Tag found in this record.
        found: u16,
    },
    /// A record's size differs from the first record's.
    SizeMismatch {
        /// Size of the first record.
        expected: u64,
        /// Size found in this record.
        found: u64,
    },
    /// A byte past the known layout is non-zero (the size rule).
    NonZeroTail {
        /// Offset of the first non-zero byte.
        offset: usize,
    },
    /// A padding or reserved byte is non-zero.
    NonZeroReserved {
        /// The field.
        field: &'static str,
        /// Offset of the first non-zero byte.
        offset: usize,
    },
    /// An incompat bit this crate does not know.
    UnknownIncompat {
        /// The bit number.
        bit: u8,
    },
    /// A known incompat bit that the record version cannot express.
    FeatureNotInVersion {
        /// The feature.
        feature: Incompat,
        /// The record version.
        version: RecordVersion,
    },
    /// A field is non-zero but its feature bit is clear.
    FieldWithoutFeature {
        /// The field.
        field: &'static str,
        /// The field's offset.
        offset: usize,
        /// The bit that must be set.
        feature: Incompat,
    },
    /// A NOP record has a non-zero `new_addr`.
    NopWithNewAddr {
        /// The value found.
        new_addr: u64,
    },
    /// `expect_len` is larger than the 32-byte `expect` array.
    ExpectTooLong {
        /// The value found.
        len: u8,
    },
    /// Compat bits cannot be written into a v1 record, which has no tags.
    CompatNotInV1 {
        /// The bits.
        compat: u32,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: {needed} bytes needed, {available} available")
            }
            ErrorKind::Empty => f.write_str("no record in the section"),
            ErrorKind::UnsupportedVersion { tag } => {
                write!(f, "unsupported record version {tag} (version tag at offset {VERSION_AT})")
            }
            ErrorKind::SizeTooSmall { version, size } => write!(
                f,
                "record size {size} is smaller than the {version} layout ({} bytes) (size at offset {SIZE_AT})",
                version.known_size()
            ),
            ErrorKind::EntsizeMismatch { entsize, size } => {
                write!(f, "sh_entsize {entsize} differs from the record size {size}")
            }
            ErrorKind::SectionSize { len, size } => {
                write!(f, "section length {len} is not a multiple of the record size {size}")
            }
            ErrorKind::VersionMismatch { expected, found } => write!(
                f,
                "version tag {found} at offset {VERSION_AT} differs from the first record's {expected}"
            ),
            ErrorKind::SizeMismatch { expected, found } => {
                write!(
                    f,
                    "size {found} at offset {SIZE_AT} differs from the first record's {expected}"
                )
            }
            ErrorKind::NonZeroTail { offset } => write!(
                f,
                "non-zero byte at offset {offset}, past the known layout (unknown fields must be zero)"
            ),
            ErrorKind::NonZeroReserved { field, offset } => {
                write!(f, "non-zero byte in `{field}` at offset {offset} (must be zero)")
            }
            ErrorKind::UnknownIncompat { bit } => {
                write!(f, "unknown incompat bit {bit} (incompat at offset {INCOMPAT_AT})")
            }
            ErrorKind::FeatureNotInVersion { feature, version } => {
                write!(f, "incompat feature {feature} cannot be expressed in a {version} record")
            }
            ErrorKind::FieldWithoutFeature { field, offset, feature } => write!(
                f,
                "`{field}` at offset {offset} is non-zero but incompat bit {feature} is clear"
            ),
            ErrorKind::NopWithNewAddr { new_addr } => {
                write!(f, "NOP record has new_addr {new_addr:#x} at offset 0 (must be 0)")
            }
            ErrorKind::ExpectTooLong { len } => {
                write!(
                    f,
                    "expect_len {len} at offset {EXPECT_LEN_AT} exceeds {}",
                    crate::EXPECT_MAX
                )
            }
            ErrorKind::CompatNotInV1 { compat } => {
                write!(f, "compat bits {compat:#x} cannot be expressed in a v1 record")
            }
        }
    }
}

/// A record error with its place: the record index and the byte offset of
/// the faulty field within the section, where known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The record, when the error concerns one.
    pub record: Option<RecordIndex>,
    /// Offset within the section of the faulty byte or field, when known.
    pub section_offset: Option<usize>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error about the section as a whole.
    pub(crate) fn section(kind: ErrorKind) -> Self {
        Error {
            record: None,
            section_offset: None,
            kind,
        }
    }

    /// An error about record `index`, which starts at `start` in the section.
    pub(crate) fn at(index: usize, start: usize, kind: ErrorKind) -> Self {
        Error {
            record: Some(RecordIndex(u32::try_from(index).unwrap_or(u32::MAX))),
            section_offset: kind
                .offset()
                .and_then(|o| start.checked_add(o))
                .or(Some(start)),
            kind,
        }
    }
}

impl ErrorKind {
    /// The offset within the record that the error is about, when it names one.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            ErrorKind::NonZeroTail { offset }
            | ErrorKind::NonZeroReserved { offset, .. }
            | ErrorKind::FieldWithoutFeature { offset, .. } => Some(offset),
            ErrorKind::UnsupportedVersion { .. } | ErrorKind::VersionMismatch { .. } => {
                Some(VERSION_AT)
            }
            ErrorKind::SizeTooSmall { .. } | ErrorKind::SizeMismatch { .. } => Some(SIZE_AT),
            ErrorKind::UnknownIncompat { .. } | ErrorKind::FeatureNotInVersion { .. } => {
                Some(INCOMPAT_AT)
            }
            ErrorKind::CompatNotInV1 { .. } => Some(offset_of!(RecordV2, compat)),
            ErrorKind::ExpectTooLong { .. } => Some(EXPECT_LEN_AT),
            ErrorKind::NopWithNewAddr { .. } => Some(offset_of!(Prefix, new_addr)),
            _ => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::section(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.record, self.section_offset) {
            (Some(r), Some(o)) => write!(f, "{r} (section offset {o:#x}): {}", self.kind),
            (Some(r), None) => write!(f, "{r}: {}", self.kind),
            (None, _) => write!(f, "{}", self.kind),
        }
    }
}

impl core::error::Error for Error {}
