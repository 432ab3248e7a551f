//! Encoding the canonical view into any record version: the writer side that
//! toolchains use.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::error::Error;
use crate::raw::{Prefix, RecordV1, RecordV2, RecordV3};
use crate::version::RecordVersion;
use crate::view::PatchFunc;

/// A record encoded in one version, ready to be written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodedRecord {
    /// A v1 record.
    V1(RecordV1),
    /// A v2 record.
    V2(RecordV2),
    /// A v3 record.
    V3(RecordV3),
}

impl EncodedRecord {
    /// The record's bytes, exactly as they go on disk.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            EncodedRecord::V1(r) => r.as_bytes(),
            EncodedRecord::V2(r) => r.as_bytes(),
            EncodedRecord::V3(r) => r.as_bytes(),
        }
    }

    /// The record version.
    pub fn version(&self) -> RecordVersion {
        match self {
            EncodedRecord::V1(_) => RecordVersion::V1,
            EncodedRecord::V2(_) => RecordVersion::V2,
            EncodedRecord::V3(_) => RecordVersion::V3,
        }
    }
}

fn prefix(f: &PatchFunc) -> Prefix {
    Prefix {
        new_addr: U64::new(f.new_addr.0),
        new_size: U64::new(f.new_size),
        old_addr: U64::new(f.old_addr.0),
        old_size: U64::new(f.old_size),
        name: U64::new(f.name.0),
    }
}

/// Encodes `func` as a record of `version`.
///
/// A view that the version cannot express (for example an EXPECT record into
/// v2, or any feature into v1) is a typed error, never silent loss.
///
/// ```
/// use xsplice_abi::{encode, Expect, Incompat, PatchFunc, RecordVersion, ErrorKind};
/// let f = PatchFunc {
///     incompat: Incompat::EXPECT,
///     expect: Expect::new(&[0x55]).unwrap(),
///     ..PatchFunc::default()
/// };
/// let err = encode(&f, RecordVersion::V2).unwrap_err();
/// assert_eq!(
///     err.kind,
///     ErrorKind::FeatureNotInVersion { feature: Incompat::EXPECT, version: RecordVersion::V2 }
/// );
/// assert!(encode(&f, RecordVersion::V3).is_ok());
/// ```
pub fn encode(func: &PatchFunc, version: RecordVersion) -> Result<EncodedRecord, Error> {
    func.check(version).map_err(Error::from)?;
    let size = |v: RecordVersion| U16::new(v.known_size_u16());
    Ok(match version {
        RecordVersion::V1 => EncodedRecord::V1(RecordV1 {
            prefix: prefix(func),
            pad: [0; 24],
        }),
        RecordVersion::V2 => EncodedRecord::V2(RecordV2 {
            prefix: prefix(func),
            version: U16::new(version.tag()),
            size: size(version),
            incompat: U32::new(func.incompat.bits()),
            compat: U32::new(func.compat.bits()),
            reserved: [0; 12],
        }),
        RecordVersion::V3 => EncodedRecord::V3(RecordV3 {
            prefix: prefix(func),
            version: U16::new(version.tag()),
            size: size(version),
            incompat: U32::new(func.incompat.bits()),
            compat: U32::new(func.compat.bits()),
            patch_offset: U32::new(func.patch_offset),
            sympos: U32::new(func.sympos),
            // Expect holds at most 32 bytes, so its length fits a u8.
            expect_len: u8::try_from(func.expect.len()).unwrap_or(u8::MAX),
            reserved0: [0; 3],
            expect: *func.expect.raw(),
            reserved1: [0; 32],
        }),
    })
}
