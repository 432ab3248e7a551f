//! The payload ABI note: the descriptor of the `.note.xsplice` ELF note.
//!
//! The note framing itself (namesz, descsz, type) is ELF and belongs to the
//! loader; this module knows the name, the type and the descriptor bytes.

use core::fmt;

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::FromBytes;

use crate::features::{Compat, Incompat};
use crate::raw::NoteDesc;
use crate::version::{FormatVersion, RecordVersion, UnsupportedFormat};

/// The note name, NUL included (namesz 8).
pub const NOTE_NAME: &[u8; 8] = b"XSPLICE\0";
/// The note type.
pub const NOTE_TYPE: u32 = 1;
/// The size of the descriptor this crate knows.
pub const NOTE_DESC_SIZE: usize = core::mem::size_of::<NoteDesc>();

/// The decoded ABI note: what a payload says about all its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct AbiNote {
    /// The payload's format version.
    pub format: FormatVersion,
    /// The version of every record in `.xsplice.funcs`.
    pub record_version: RecordVersion,
    /// The size of every record in `.xsplice.funcs`.
    pub record_size: u16,
    /// Union of the incompat bits of all records.
    pub incompat: Incompat,
    /// Payload compat bits (unknown ones kept).
    pub compat: Compat,
}

/// What is wrong with an ABI note descriptor. Offsets are within the
/// descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// The descriptor is shorter than 24 bytes.
    Truncated {
        /// Its length.
        len: usize,
    },
    /// A byte past the known descriptor is non-zero (the size rule).
    NonZeroTail {
        /// Offset of the byte.
        offset: usize,
    },
    /// A reserved byte is non-zero.
    NonZeroReserved {
        /// Offset of the byte.
        offset: usize,
    },
    /// The format version is outside the supported range.
    Unsupported(UnsupportedFormat),
    /// The record version field names no supported version.
    UnknownRecordVersion {
        /// The value found.
        version: u16,
    },
    /// The format major differs from the record version.
    MajorMismatch {
        /// Format major.
        major: u16,
        /// Record version.
        record_version: u16,
    },
    /// The record size is smaller than the record version's layout.
    RecordSizeTooSmall {
        /// The value found.
        size: u16,
        /// The record version.
        version: RecordVersion,
    },
    /// An unknown incompat bit in the payload-wide union.
    UnknownIncompat {
        /// The bit number.
        bit: u8,
    },
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NoteError::Truncated { len } => {
                write!(f, "ABI note descriptor is {len} bytes, at least {NOTE_DESC_SIZE} needed")
            }
            NoteError::NonZeroTail { offset } => write!(
                f,
                "ABI note descriptor has a non-zero byte at offset {offset}, past the known {NOTE_DESC_SIZE} bytes"
            ),
            NoteError::NonZeroReserved { offset } => {
                write!(f, "ABI note reserved byte at offset {offset} is non-zero")
            }
            NoteError::Unsupported(e) => write!(f, "ABI note: {e}"),
            NoteError::UnknownRecordVersion { version } => {
                write!(f, "ABI note names unsupported record version {version} (offset 4)")
            }
            NoteError::MajorMismatch { major, record_version } => write!(
                f,
                "ABI note format major {major} differs from its record version {record_version}"
            ),
            NoteError::RecordSizeTooSmall { size, version } => write!(
                f,
                "ABI note record size {size} (offset 6) is smaller than the {version} layout"
            ),
            NoteError::UnknownIncompat { bit } => {
                write!(f, "ABI note has unknown incompat bit {bit} (offset 8)")
            }
        }
    }
}

impl core::error::Error for NoteError {}

impl AbiNote {
    /// The note this crate writes for records of `version` whose incompat
    /// bits are `incompat` (the union over all records).
    pub fn new(version: RecordVersion, incompat: Incompat) -> AbiNote {
        AbiNote {
            format: version.format(),
            record_version: version,
            record_size: version.known_size_u16(),
            incompat,
            compat: Compat::empty(),
        }
    }

    /// Decodes a descriptor, applying the size rule to a longer one.
    ///
    /// ```
    /// use xsplice_abi::{AbiNote, Incompat, RecordVersion};
    /// let note = AbiNote::new(RecordVersion::V3, Incompat::EXPECT);
    /// let bytes = note.encode();
    /// assert_eq!(AbiNote::decode(zerocopy::IntoBytes::as_bytes(&bytes)), Ok(note));
    /// ```
    pub fn decode(desc: &[u8]) -> Result<AbiNote, NoteError> {
        let (raw, tail) = NoteDesc::ref_from_prefix(desc)
            .map_err(|_| NoteError::Truncated { len: desc.len() })?;
        if let Some(p) = tail.iter().position(|&b| b != 0) {
            return Err(NoteError::NonZeroTail {
                offset: NOTE_DESC_SIZE.saturating_add(p),
            });
        }
        if let Some(p) = raw.reserved.iter().position(|&b| b != 0) {
            return Err(NoteError::NonZeroReserved {
                offset: core::mem::offset_of!(NoteDesc, reserved).saturating_add(p),
            });
        }
        let format = FormatVersion::new(raw.format_major.get(), raw.format_minor.get());
        format.check_supported().map_err(NoteError::Unsupported)?;
        let rv = raw.record_version.get();
        let record_version = RecordVersion::from_number(rv)
            .ok_or(NoteError::UnknownRecordVersion { version: rv })?;
        if format.major != rv {
            return Err(NoteError::MajorMismatch {
                major: format.major,
                record_version: rv,
            });
        }
        let record_size = raw.record_size.get();
        if usize::from(record_size) < record_version.known_size() {
            return Err(NoteError::RecordSizeTooSmall {
                size: record_size,
                version: record_version,
            });
        }
        if let Some(bit) = Incompat::first_unknown(raw.incompat.get()) {
            return Err(NoteError::UnknownIncompat { bit });
        }
        Ok(AbiNote {
            format,
            record_version,
            record_size,
            incompat: Incompat::from_bits_retain(raw.incompat.get()),
            compat: Compat::from_bits_retain(raw.compat.get()),
        })
    }

    /// The descriptor bytes of this note.
    pub fn encode(&self) -> NoteDesc {
        NoteDesc {
            format_major: U16::new(self.format.major),
            format_minor: U16::new(self.format.minor),
            record_version: U16::new(self.record_version.number()),
            record_size: U16::new(self.record_size),
            incompat: U32::new(self.incompat.bits()),
            compat: U32::new(self.compat.bits()),
            reserved: [0; 8],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn size_rule_and_reserved() {
        let note = AbiNote::new(RecordVersion::V2, Incompat::NOP);
        let mut long = [0u8; 32];
        long[..24].copy_from_slice(note.encode().as_bytes());
        assert_eq!(AbiNote::decode(&long), Ok(note));
        long[30] = 1;
        assert_eq!(
            AbiNote::decode(&long),
            Err(NoteError::NonZeroTail { offset: 30 })
        );
        long[30] = 0;
        long[17] = 1;
        assert_eq!(
            AbiNote::decode(&long),
            Err(NoteError::NonZeroReserved { offset: 17 })
        );
        assert_eq!(
            AbiNote::decode(&long[..10]),
            Err(NoteError::Truncated { len: 10 })
        );
    }

    #[test]
    fn major_must_match_record_version() {
        let mut raw = AbiNote::new(RecordVersion::V3, Incompat::empty()).encode();
        raw.format_major = U16::new(2);
        assert_eq!(
            AbiNote::decode(raw.as_bytes()),
            Err(NoteError::MajorMismatch {
                major: 2,
                record_version: 3
            })
        );
        raw.format_major = U16::new(9);
        assert_eq!(
            AbiNote::decode(raw.as_bytes()),
            Err(NoteError::Unsupported(UnsupportedFormat::Major {
                major: 9
            }))
        );
    }
}
