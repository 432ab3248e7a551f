//! Decoding `.xsplice.funcs`: version detection, the size rule, and the
//! feature checks, into the canonical [`PatchFunc`] view.

use core::mem::{offset_of, size_of};

use zerocopy::FromBytes;

use crate::error::{Error, ErrorKind};
use crate::features::{Compat, Incompat};
use crate::raw::{Prefix, RecordV1, RecordV2, RecordV3};
use crate::version::{RecordIndex, RecordVersion};
use crate::view::{Addr, Expect, PatchFunc};

/// Smallest record of any version.
const MIN_RECORD: usize = size_of::<RecordV1>();
/// The seed's first draft of the v1 record: the prefix and `pad[64]`.
pub const V1_DRAFT: usize = size_of::<Prefix>() + 64;

/// One decoded record: the canonical view plus what the wire said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Index in the section.
    pub index: RecordIndex,
    /// The canonical view.
    pub func: PatchFunc,
    /// The record version it was stored as.
    pub version: RecordVersion,
    /// Its size in bytes on disk (at least the version's known size).
    pub size: usize,
}

impl DecodedRecord {
    /// Things a loader accepts but a `check` should mention.
    pub fn warnings(&self) -> Warnings {
        Warnings {
            unknown_compat: self.func.compat.unknown(),
            incompat: self.func.incompat,
        }
    }
}

/// Warnings about an accepted record; iterate them with [`Warnings::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Warnings {
    unknown_compat: Compat,
    incompat: Incompat,
}

/// One warning about an accepted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A compat bit this crate does not know; ignored as the rule says.
    UnknownCompat {
        /// The bit number.
        bit: u8,
    },
    /// A feature marked deprecated: still read, writers should stop.
    Deprecated {
        /// The feature's specification entry.
        feature: &'static crate::FeatureInfo,
    },
}

impl core::fmt::Display for Warning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Warning::UnknownCompat { bit } => write!(f, "unknown compat bit {bit} ignored"),
            Warning::Deprecated { feature } => match feature.deprecated {
                Some(v) => write!(f, "feature {} is deprecated since format {v}", feature.name),
                None => write!(f, "feature {} is deprecated", feature.name),
            },
        }
    }
}

impl Warnings {
    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Every warning, in bit order.
    pub fn iter(&self) -> impl Iterator<Item = Warning> + '_ {
        let compat = (0u8..32)
            .filter(|b| self.unknown_compat.bits() & (1u32 << b) != 0)
            .map(|bit| Warning::UnknownCompat { bit });
        let deprecated = Incompat::INFO
            .iter()
            .filter(|i| i.deprecated.is_some())
            .filter(|i| self.incompat.bits() & (1u32 << i.bit) != 0)
            .map(|feature| Warning::Deprecated { feature });
        compat.chain(deprecated)
    }
}

/// The records of one `.xsplice.funcs` section, validated at the section
/// level (version, size, entsize, length) and decoded lazily one by one.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    bytes: &'a [u8],
    version: RecordVersion,
    size: usize,
}

/// Reads the version tag and declared size of the record starting `bytes`.
fn read_tag(bytes: &[u8]) -> Result<(RecordVersion, Option<u16>), ErrorKind> {
    let (v2, _) = RecordV2::ref_from_prefix(bytes).map_err(|_| ErrorKind::Truncated {
        needed: MIN_RECORD,
        available: bytes.len(),
    })?;
    let tag = v2.version.get();
    let version = RecordVersion::from_tag(tag).ok_or(ErrorKind::UnsupportedVersion { tag })?;
    Ok(match version {
        RecordVersion::V1 => (version, None),
        _ => (version, Some(v2.size.get())),
    })
}

/// Decodes the records of a `.xsplice.funcs` section.
///
/// `entsize` is the section's `sh_entsize`: 0 (what gcc emits for a plain C
/// array) lets the first record's tag decide the record size; otherwise it
/// must equal that size. Section-level rules are checked here; each record is
/// checked as it is read from [`Records::iter`].
///
/// ```
/// use xsplice_abi::{decode, ErrorKind};
/// let mut section = [0u8; 128];
/// section[40] = 7; // version tag 7
/// let err = decode(&section, 0).unwrap_err();
/// assert_eq!(err.kind, ErrorKind::UnsupportedVersion { tag: 7 });
/// assert_eq!(err.to_string(), "record 0 (section offset 0x28): unsupported record version 7 (version tag at offset 40)");
/// ```
pub fn decode(section: &[u8], entsize: u64) -> Result<Records<'_>, Error> {
    if section.is_empty() {
        return Err(Error::section(ErrorKind::Empty));
    }
    let (version, declared) = read_tag(section).map_err(|k| Error::at(0, 0, k))?;
    let size: u64 = match declared {
        // gcc emits sh_entsize 0 for a C array: a v1 section that is a whole
        // number of the seed's 104-byte drafts but not of 64-byte records can
        // only be the draft (when both divide, 64 is read, as the spec says).
        None if entsize == 0
            && section.len() % MIN_RECORD != 0
            && section.len() % V1_DRAFT == 0 =>
        {
            V1_DRAFT as u64
        }
        None if entsize == 0 => MIN_RECORD as u64,
        None => entsize,
        Some(size) => u64::from(size),
    };
    if size < version.known_size() as u64 {
        return Err(Error::at(0, 0, ErrorKind::SizeTooSmall { version, size }));
    }
    if entsize != 0 && entsize != size {
        return Err(Error::section(ErrorKind::EntsizeMismatch { entsize, size }));
    }
    let size = usize::try_from(size).map_err(|_| {
        Error::section(ErrorKind::SectionSize {
            len: section.len(),
            size: usize::MAX,
        })
    })?;
    if section.len().checked_rem(size) != Some(0) {
        return Err(Error::section(ErrorKind::SectionSize {
            len: section.len(),
            size,
        }));
    }
    Ok(Records {
        bytes: section,
        version,
        size,
    })
}

impl<'a> Records<'a> {
    /// The record version shared by every record.
    pub fn version(&self) -> RecordVersion {
        self.version
    }

    /// The record size shared by every record.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.size).unwrap_or(0)
    }

    /// Always false: [`decode`] refuses an empty section.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes record `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<Result<DecodedRecord, Error>> {
        let start = index.checked_mul(self.size)?;
        let bytes = self.bytes.get(start..start.checked_add(self.size)?)?;
        Some(
            decode_record(bytes, self.version, self.size)
                .map(|mut r| {
                    r.index = RecordIndex(u32::try_from(index).unwrap_or(u32::MAX));
                    r
                })
                .map_err(|k| Error::at(index, start, k)),
        )
    }

    /// Decodes every record in order.
    pub fn iter(&self) -> RecordsIter<'a> {
        RecordsIter {
            records: *self,
            next: 0,
        }
    }
}

impl<'a> IntoIterator for &Records<'a> {
    type Item = Result<DecodedRecord, Error>;
    type IntoIter = RecordsIter<'a>;
    fn into_iter(self) -> RecordsIter<'a> {
        self.iter()
    }
}

/// Iterator over the decoded records of a section.
#[derive(Debug, Clone)]
pub struct RecordsIter<'a> {
    records: Records<'a>,
    next: usize,
}

impl Iterator for RecordsIter<'_> {
    type Item = Result<DecodedRecord, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.records.get(self.next)?;
        self.next = self.next.saturating_add(1);
        Some(item)
    }
}

/// The first non-zero byte of `bytes`, as an offset from `base`.
fn first_nonzero(bytes: &[u8], base: usize) -> Option<usize> {
    bytes
        .iter()
        .position(|&b| b != 0)
        .map(|p| base.saturating_add(p))
}

fn reserved(bytes: &[u8], field: &'static str, base: usize) -> Result<(), ErrorKind> {
    match first_nonzero(bytes, base) {
        Some(offset) => Err(ErrorKind::NonZeroReserved { field, offset }),
        None => Ok(()),
    }
}

fn prefix_view(p: &Prefix) -> PatchFunc {
    PatchFunc {
        new_addr: Addr(p.new_addr.get()),
        new_size: p.new_size.get(),
        old_addr: Addr(p.old_addr.get()),
        old_size: p.old_size.get(),
        name: Addr(p.name.get()),
        ..PatchFunc::default()
    }
}

/// Decodes one record of a known version and size: `bytes` must hold at
/// least `size` bytes, of which the first `version.known_size()` are the
/// layout and the rest must be zero.
///
/// This is the building block of [`decode`]; it is public for tools that
/// meet records outside a section (a hex dump, a fuzzer).
pub fn decode_record(
    bytes: &[u8],
    version: RecordVersion,
    size: usize,
) -> Result<DecodedRecord, ErrorKind> {
    let known = version.known_size();
    let record = bytes.get(..size).ok_or(ErrorKind::Truncated {
        needed: size,
        available: bytes.len(),
    })?;
    let (found, declared) = read_tag(record)?;
    if found != version {
        return Err(ErrorKind::VersionMismatch {
            expected: version,
            found: found.tag(),
        });
    }
    if let Some(declared) = declared {
        if usize::from(declared) != size {
            return Err(ErrorKind::SizeMismatch {
                expected: size as u64,
                found: u64::from(declared),
            });
        }
    }
    // An unknown incompat bit is named before any reserved or tail byte is
    // blamed: a newer minor's field under a new bit lives in those bytes.
    if version != RecordVersion::V1 {
        let (tags, _) = RecordV2::ref_from_prefix(record).map_err(|_| ErrorKind::Truncated {
            needed: MIN_RECORD,
            available: record.len(),
        })?;
        if let Some(bit) = Incompat::first_unknown(tags.incompat.get()) {
            return Err(ErrorKind::UnknownIncompat { bit });
        }
    }
    if let Some(offset) = record
        .get(known..)
        .and_then(|tail| first_nonzero(tail, known))
    {
        return Err(ErrorKind::NonZeroTail { offset });
    }
    let truncated = || ErrorKind::Truncated {
        needed: known,
        available: record.len(),
    };
    let func = match version {
        RecordVersion::V1 => {
            let (r, _) = RecordV1::ref_from_prefix(record).map_err(|_| truncated())?;
            reserved(&r.pad, "pad", offset_of!(RecordV1, pad))?;
            prefix_view(&r.prefix)
        }
        RecordVersion::V2 => {
            let (r, _) = RecordV2::ref_from_prefix(record).map_err(|_| truncated())?;
            reserved(&r.reserved, "reserved", offset_of!(RecordV2, reserved))?;
            PatchFunc {
                incompat: Incompat::from_bits_retain(r.incompat.get()),
                compat: Compat::from_bits_retain(r.compat.get()),
                ..prefix_view(&r.prefix)
            }
        }
        RecordVersion::V3 => {
            let (r, _) = RecordV3::ref_from_prefix(record).map_err(|_| truncated())?;
            reserved(&r.reserved0, "reserved0", offset_of!(RecordV3, reserved0))?;
            reserved(&r.reserved1, "reserved1", offset_of!(RecordV3, reserved1))?;
            PatchFunc {
                incompat: Incompat::from_bits_retain(r.incompat.get()),
                compat: Compat::from_bits_retain(r.compat.get()),
                patch_offset: r.patch_offset.get(),
                sympos: r.sympos.get(),
                expect: Expect::from_raw(r.expect_len, r.expect)?,
                ..prefix_view(&r.prefix)
            }
        }
    };
    func.check(version)?;
    Ok(DecodedRecord {
        index: RecordIndex(0),
        func,
        version,
        size,
    })
}

// The tag offset is part of the wire format; keep the constant honest.
// Every tagged version keeps the tag where v2 put it.
const _: () = assert!(offset_of!(RecordV3, version) == offset_of!(RecordV2, version));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_entsize_104_draft_is_read_by_the_size_rule() {
        let mut section = [0u8; 208];
        section[0] = 1;
        section[104] = 2;
        let recs = decode(&section, 104).unwrap();
        assert_eq!(
            (recs.version(), recs.size(), recs.len()),
            (RecordVersion::V1, 104, 2)
        );
        assert_eq!(recs.get(1).unwrap().unwrap().func.new_addr, Addr(2));
        section[100] = 9;
        let err = recs_err(&section, 104, 0);
        assert_eq!(err.kind, ErrorKind::NonZeroTail { offset: 100 });
    }

    fn recs_err(section: &[u8], entsize: u64, index: usize) -> Error {
        decode(section, entsize)
            .unwrap()
            .get(index)
            .unwrap()
            .unwrap_err()
    }

    #[test]
    fn v1_draft_without_entsize_when_unambiguous() {
        let mut section = [0u8; 312];
        section[0] = 1;
        section[104] = 2;
        section[208] = 3;
        let recs = decode(&section, 0).unwrap();
        assert_eq!((recs.size(), recs.len()), (104, 3));
        assert_eq!(recs.get(2).unwrap().unwrap().func.new_addr, Addr(3));
        // 8 drafts (832 bytes) are also 13 records of 64: read as 64.
        assert_eq!(decode(&[0u8; 832], 0).unwrap().size(), 64);
    }

    #[test]
    fn later_record_with_other_version_is_named() {
        let mut section = [0u8; 128];
        section[40] = 2;
        section[42] = 64;
        let err = recs_err(&section, 0, 1);
        assert_eq!(err.record, Some(RecordIndex(1)));
        assert_eq!(
            err.kind,
            ErrorKind::VersionMismatch {
                expected: RecordVersion::V2,
                found: 0
            }
        );
        assert_eq!(err.section_offset, Some(64 + 40));
    }

    #[test]
    fn unknown_incompat_is_named_before_reserved_bytes() {
        // A 3.x record using a reserved byte under a bit this crate lacks.
        let mut rec = [0u8; 160];
        rec[40] = 3;
        rec[42] = 160;
        rec[44..48].copy_from_slice(&(1u32 << 20).to_le_bytes());
        rec[100] = 7;
        rec[150] = 7;
        let err = recs_err(&rec, 0, 0);
        assert_eq!(err.kind, ErrorKind::UnknownIncompat { bit: 20 });
    }

    #[test]
    fn section_rules() {
        assert_eq!(decode(&[], 0).unwrap_err().kind, ErrorKind::Empty);
        assert_eq!(
            decode(&[0u8; 63], 0).unwrap_err().kind,
            ErrorKind::Truncated {
                needed: 64,
                available: 63
            }
        );
        assert_eq!(
            decode(&[0u8; 100], 0).unwrap_err().kind,
            ErrorKind::SectionSize { len: 100, size: 64 }
        );
        assert_eq!(
            decode(&[0u8; 64], 32).unwrap_err().kind,
            ErrorKind::SizeTooSmall {
                version: RecordVersion::V1,
                size: 32
            }
        );
        let mut v2 = [0u8; 64];
        v2[40] = 2;
        v2[42] = 64;
        assert_eq!(
            decode(&v2, 128).unwrap_err().kind,
            ErrorKind::EntsizeMismatch {
                entsize: 128,
                size: 64
            }
        );
    }
}
