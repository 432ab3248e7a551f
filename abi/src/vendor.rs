//! Vendor extensions: entries of the `.xsplice.vendor` section.
//!
//! Vendor fields never take core reserved bytes. Each entry is a 16-byte
//! [`VendorEntryHeader`] followed by `len` data bytes and zero padding to a
//! multiple of 8. An entry marked CRITICAL that a loader does not know makes
//! it refuse the payload (like a critical X.509 extension); an unknown
//! non-critical entry is skipped and reported (like a PNG ancillary chunk).
//! Vendor ids are assigned in `spec/VENDORS.md`; ids from `0x8000_0000` up
//! are private and need no registration.
//!
//! ```
//! use xsplice_abi::vendor::{VendorEntries, VendorEntry, VendorId, VendorTarget};
//! let entry = VendorEntry {
//!     vendor: VendorId(0x8000_0001),
//!     kind: 1,
//!     critical: false,
//!     target: VendorTarget::Payload,
//!     data: b"abc",
//! };
//! let mut buf = [0u8; 64];
//! let n = entry.encode_into(&mut buf).unwrap();
//! assert_eq!(n, 24); // 16 header + 3 data + 5 padding
//! let mut it = VendorEntries::new(&buf[..n]);
//! assert_eq!(it.next(), Some(Ok((0, entry))));
//! assert_eq!(it.next(), None);
//! ```

use core::fmt;

use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, IntoBytes};

pub use crate::raw::VendorEntryHeader;
use crate::version::RecordIndex;

/// The size of an entry header.
pub const HEADER_SIZE: usize = core::mem::size_of::<VendorEntryHeader>();
/// Entry alignment within the section.
pub const ALIGN: usize = 8;
/// Flag bit 0: a loader that does not know the entry must refuse the payload.
pub const FLAG_CRITICAL: u16 = 1;
/// `record` value meaning "the whole payload".
pub const WHOLE_PAYLOAD: u32 = 0xFFFF_FFFF;

/// A vendor id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VendorId(pub u32);

impl VendorId {
    /// The first private/experimental id.
    pub const PRIVATE_START: u32 = 0x8000_0000;

    /// Whether the id is in the private/experimental range.
    pub const fn is_private(self) -> bool {
        self.0 >= Self::PRIVATE_START
    }
}

impl fmt::Display for VendorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// What a vendor entry applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VendorTarget {
    /// One record of `.xsplice.funcs`.
    Record(RecordIndex),
    /// The whole payload.
    Payload,
}

/// One vendor entry, borrowing its data from the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorEntry<'a> {
    /// Vendor id.
    pub vendor: VendorId,
    /// Vendor-defined kind.
    pub kind: u16,
    /// Whether a loader that does not know `(vendor, kind)` must refuse.
    pub critical: bool,
    /// What it applies to.
    pub target: VendorTarget,
    /// The entry's data.
    pub data: &'a [u8],
}

/// What is wrong with the vendor section; `offset` is the entry's offset in
/// the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VendorError {
    /// Fewer than 16 bytes left for a header.
    TruncatedHeader {
        /// Entry offset.
        offset: usize,
    },
    /// The data runs past the end of the section.
    TruncatedData {
        /// Entry offset.
        offset: usize,
        /// Declared length.
        len: u32,
    },
    /// Vendor id 0 is reserved.
    ReservedVendor {
        /// Entry offset.
        offset: usize,
    },
    /// A flag other than CRITICAL is set.
    UnknownFlags {
        /// Entry offset.
        offset: usize,
        /// The flags.
        flags: u16,
    },
    /// A padding byte after the data is non-zero.
    NonZeroPadding {
        /// Offset of the byte.
        offset: usize,
    },
    /// The output buffer is too small (writer only).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VendorError::TruncatedHeader { offset } => {
                write!(f, "vendor entry at offset {offset:#x}: truncated header")
            }
            VendorError::TruncatedData { offset, len } => {
                write!(
                    f,
                    "vendor entry at offset {offset:#x}: {len} data bytes run past the section"
                )
            }
            VendorError::ReservedVendor { offset } => {
                write!(
                    f,
                    "vendor entry at offset {offset:#x}: vendor id 0 is reserved"
                )
            }
            VendorError::UnknownFlags { offset, flags } => {
                write!(
                    f,
                    "vendor entry at offset {offset:#x}: unknown flags {flags:#x}"
                )
            }
            VendorError::NonZeroPadding { offset } => {
                write!(
                    f,
                    "vendor section: non-zero padding byte at offset {offset:#x}"
                )
            }
            VendorError::BufferTooSmall { needed } => {
                write!(f, "vendor entry needs {needed} bytes of output")
            }
        }
    }
}

impl core::error::Error for VendorError {}

/// Rounds `n` up to [`ALIGN`], or `None` on overflow.
fn padded(n: usize) -> Option<usize> {
    Some(n.checked_add(ALIGN - 1)? & !(ALIGN - 1))
}

impl VendorEntry<'_> {
    /// Bytes this entry takes in the section, padding included.
    pub fn encoded_len(&self) -> Option<usize> {
        padded(HEADER_SIZE.checked_add(self.data.len())?)
    }

    /// Writes the entry (header, data, zero padding) into `out`, returning
    /// the number of bytes written.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, VendorError> {
        let too_small = VendorError::BufferTooSmall { needed: usize::MAX };
        let total = self.encoded_len().ok_or(too_small)?;
        let len = u32::try_from(self.data.len()).map_err(|_| too_small)?;
        let dst = out
            .get_mut(..total)
            .ok_or(VendorError::BufferTooSmall { needed: total })?;
        let header = VendorEntryHeader {
            vendor: U32::new(self.vendor.0),
            kind: U16::new(self.kind),
            flags: U16::new(if self.critical { FLAG_CRITICAL } else { 0 }),
            record: U32::new(match self.target {
                VendorTarget::Record(r) => r.0,
                VendorTarget::Payload => WHOLE_PAYLOAD,
            }),
            len: U32::new(len),
        };
        dst.fill(0);
        let (head, rest) = dst.split_at_mut(HEADER_SIZE);
        head.copy_from_slice(header.as_bytes());
        rest.get_mut(..self.data.len())
            .ok_or(too_small)?
            .copy_from_slice(self.data);
        Ok(total)
    }
}

/// Walks the entries of a `.xsplice.vendor` section.
///
/// Yields `(offset, entry)` pairs; after the first error it yields nothing
/// more, since the next entry's position is then unknown.
#[derive(Debug, Clone)]
pub struct VendorEntries<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> VendorEntries<'a> {
    /// Starts walking `section`.
    pub fn new(section: &'a [u8]) -> Self {
        VendorEntries {
            bytes: section,
            offset: 0,
            failed: false,
        }
    }

    fn entry(&self) -> Result<(VendorEntry<'a>, usize), VendorError> {
        let offset = self.offset;
        let rest = self.bytes.get(offset..).unwrap_or(&[]);
        let (h, after) = VendorEntryHeader::ref_from_prefix(rest)
            .map_err(|_| VendorError::TruncatedHeader { offset })?;
        let len = h.len.get();
        let data_len =
            usize::try_from(len).map_err(|_| VendorError::TruncatedData { offset, len })?;
        let data = after
            .get(..data_len)
            .ok_or(VendorError::TruncatedData { offset, len })?;
        if h.vendor.get() == 0 {
            return Err(VendorError::ReservedVendor { offset });
        }
        let flags = h.flags.get();
        if flags & !FLAG_CRITICAL != 0 {
            return Err(VendorError::UnknownFlags { offset, flags });
        }
        let used = HEADER_SIZE
            .checked_add(data_len)
            .ok_or(VendorError::TruncatedData { offset, len })?;
        // The padding may be cut short by the end of the section: the last
        // entry needs no trailing padding.
        let end = padded(used)
            .ok_or(VendorError::TruncatedData { offset, len })?
            .min(rest.len());
        if let Some(p) = rest
            .get(used..end)
            .and_then(|pad| pad.iter().position(|&b| b != 0))
        {
            return Err(VendorError::NonZeroPadding {
                offset: offset.saturating_add(used).saturating_add(p),
            });
        }
        let record = h.record.get();
        let entry = VendorEntry {
            vendor: crate::vendor::VendorId(h.vendor.get()),
            kind: h.kind.get(),
            critical: flags & FLAG_CRITICAL != 0,
            target: if record == WHOLE_PAYLOAD {
                VendorTarget::Payload
            } else {
                VendorTarget::Record(RecordIndex(record))
            },
            data,
        };
        Ok((entry, offset.saturating_add(end)))
    }
}

impl<'a> Iterator for VendorEntries<'a> {
    type Item = Result<(usize, VendorEntry<'a>), VendorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset >= self.bytes.len() {
            return None;
        }
        let at = self.offset;
        match self.entry() {
            Ok((entry, next)) => {
                self.offset = next;
                Some(Ok((at, entry)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{vec, vec::Vec};

    #[test]
    fn bad_entries_name_their_offset() {
        let mut buf = [0u8; 64];
        let e = VendorEntry {
            vendor: VendorId(7),
            kind: 2,
            critical: true,
            target: VendorTarget::Record(RecordIndex(1)),
            data: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
        };
        let n = e.encode_into(&mut buf).unwrap();
        assert_eq!(n, 32);
        let two = {
            let m = e.encode_into(&mut buf[n..]).unwrap();
            n + m
        };
        let all: Vec<_> = VendorEntries::new(&buf[..two]).collect();
        assert_eq!(all, vec![Ok((0, e)), Ok((32, e))]);

        let mut bad = buf;
        bad[32 + 12] = 0xff; // second entry's len
        let errs: Vec<_> = VendorEntries::new(&bad[..two]).collect();
        assert_eq!(
            errs[1],
            Err(VendorError::TruncatedData {
                offset: 32,
                len: 0xff
            })
        );
        assert_eq!(errs.len(), 2);

        let mut pad = buf;
        pad[30] = 1;
        assert_eq!(
            VendorEntries::new(&pad[..two]).next(),
            Some(Err(VendorError::NonZeroPadding { offset: 30 }))
        );
        let mut zero = buf;
        zero[..4].fill(0);
        assert_eq!(
            VendorEntries::new(&zero[..two]).next(),
            Some(Err(VendorError::ReservedVendor { offset: 0 }))
        );
        assert_eq!(
            VendorEntries::new(&buf[..10]).next(),
            Some(Err(VendorError::TruncatedHeader { offset: 0 }))
        );
    }
}
