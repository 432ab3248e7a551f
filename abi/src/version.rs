//! Record versions, format versions and the supported range.

use core::fmt;

/// The version of a patch-function record, read from the u16 tag at offset 40.
///
/// A tag of 0 is v1 (the seed record had no tag, only zero padding); 1 is
/// never written. Every other value is refused by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "serde", serde(into = "u16", try_from = "u16"))]
#[non_exhaustive]
pub enum RecordVersion {
    /// The seed's untagged 64-byte record.
    V1,
    /// 64 bytes with version, size and feature tags.
    V2,
    /// The 128-byte padded successor.
    V3,
}

impl RecordVersion {
    /// Every supported record version, oldest first.
    pub const ALL: [RecordVersion; 3] = [RecordVersion::V1, RecordVersion::V2, RecordVersion::V3];

    /// The newest record version this crate writes.
    pub const LATEST: RecordVersion = RecordVersion::V3;

    /// The version number (1, 2 or 3).
    pub const fn number(self) -> u16 {
        match self {
            RecordVersion::V1 => 1,
            RecordVersion::V2 => 2,
            RecordVersion::V3 => 3,
        }
    }

    /// The value of the tag at offset 40 (0 for v1).
    pub const fn tag(self) -> u16 {
        match self {
            RecordVersion::V1 => 0,
            v => v.number(),
        }
    }

    /// The version a tag names, or `None` for an unsupported tag.
    pub const fn from_tag(tag: u16) -> Option<Self> {
        match tag {
            0 => Some(RecordVersion::V1),
            2 => Some(RecordVersion::V2),
            3 => Some(RecordVersion::V3),
            _ => None,
        }
    }

    /// The version with this number (1, 2, 3), or `None`.
    pub const fn from_number(n: u16) -> Option<Self> {
        match n {
            1 => Some(RecordVersion::V1),
            2 => Some(RecordVersion::V2),
            3 => Some(RecordVersion::V3),
            _ => None,
        }
    }

    /// The size in bytes of the layout this crate knows for the version.
    pub const fn known_size(self) -> usize {
        self.known_size_u16() as usize
    }

    /// [`known_size`](Self::known_size) as the `u16` of a record's `size`
    /// field and of the note's `record_size`.
    pub const fn known_size_u16(self) -> u16 {
        match self {
            RecordVersion::V1 => RECORD_SIZES[0],
            RecordVersion::V2 => RECORD_SIZES[1],
            RecordVersion::V3 => RECORD_SIZES[2],
        }
    }

    /// The format version a payload of this record version declares when
    /// written by this crate.
    pub const fn format(self) -> FormatVersion {
        FormatVersion {
            major: self.number(),
            minor: 0,
        }
    }
}

impl From<RecordVersion> for u16 {
    fn from(v: RecordVersion) -> u16 {
        v.number()
    }
}

impl TryFrom<u16> for RecordVersion {
    type Error = UnsupportedFormat;
    fn try_from(n: u16) -> Result<Self, UnsupportedFormat> {
        RecordVersion::from_number(n).ok_or(UnsupportedFormat::Major { major: n })
    }
}

impl fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// The index of a record within `.xsplice.funcs`.
///
/// A newtype so record indices cannot be confused with byte offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RecordIndex(pub u32);

impl fmt::Display for RecordIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.0)
    }
}

/// A payload format version, `major.minor`.
///
/// The major equals the record version of the payload; a minor adds fields
/// inside reserved bytes under new feature bits, new optional sections, or
/// new compat bits. It is semver without a patch level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct FormatVersion {
    /// Major version: equals the record version.
    pub major: u16,
    /// Minor version: additions old loaders may ignore.
    pub minor: u16,
}

impl FormatVersion {
    /// Builds a format version.
    pub const fn new(major: u16, minor: u16) -> Self {
        FormatVersion { major, minor }
    }

    /// The oldest format this crate reads.
    pub const OLDEST: FormatVersion = FormatVersion::new(1, 0);

    /// The newest format this crate knows completely.
    pub const NEWEST: FormatVersion = FormatVersion::new(3, 1);

    /// Whether a loader built on this crate accepts a payload declaring this
    /// format, and if not, why.
    ///
    /// Every minor of a supported major is accepted: minors only add things
    /// an old loader may ignore, and anything it may not ignore is guarded by
    /// an incompat bit that is checked separately.
    ///
    /// ```
    /// use xsplice_abi::{FormatVersion, UnsupportedFormat};
    /// assert!(FormatVersion::new(3, 7).check_supported().is_ok());
    /// assert_eq!(
    ///     FormatVersion::new(4, 0).check_supported(),
    ///     Err(UnsupportedFormat::Major { major: 4 })
    /// );
    /// ```
    pub const fn check_supported(self) -> Result<(), UnsupportedFormat> {
        if self.major >= Self::OLDEST.major && self.major <= Self::NEWEST.major {
            Ok(())
        } else {
            Err(UnsupportedFormat::Major { major: self.major })
        }
    }

    /// This version as semver, with patch level 0.
    #[cfg(feature = "semver")]
    pub fn to_semver(self) -> semver::Version {
        semver::Version::new(u64::from(self.major), u64::from(self.minor), 0)
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a format version is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsupportedFormat {
    /// The major version is outside the supported range.
    Major {
        /// The refused major version.
        major: u16,
    },
}

impl fmt::Display for UnsupportedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsupportedFormat::Major { major } => write!(
                f,
                "format major version {major} is not supported (this loader accepts {})",
                SUPPORTED_FORMATS
            ),
        }
    }
}

impl core::error::Error for UnsupportedFormat {}

/// The supported format range, as a semver requirement string.
pub(crate) const SUPPORTED_FORMATS: &str = ">=1.0.0, <4.0.0";

/// The range of format versions this crate accepts, as a `semver::VersionReq`
/// (`>=1.0.0, <4.0.0`).
///
/// [`FormatVersion::check_supported`] is the allocation-free form of the same
/// rule; a test keeps the two in agreement.
///
/// ```
/// let req = xsplice_abi::supported_formats();
/// assert!(req.matches(&semver::Version::new(2, 5, 0)));
/// assert!(!req.matches(&semver::Version::new(4, 0, 0)));
/// ```
#[cfg(feature = "semver")]
pub fn supported_formats() -> semver::VersionReq {
    // The string is a constant checked by a unit test; parsing it cannot fail.
    semver::VersionReq::parse(SUPPORTED_FORMATS).unwrap_or(semver::VersionReq::STAR)
}

#[cfg(all(test, feature = "semver"))]
mod tests {
    use super::*;

    #[test]
    fn semver_range_agrees_with_const_check() {
        let req = semver::VersionReq::parse(SUPPORTED_FORMATS).unwrap();
        assert_eq!(supported_formats(), req);
        for major in 0..8u16 {
            for minor in [0u16, 1, 9, u16::MAX] {
                let v = FormatVersion::new(major, minor);
                assert_eq!(
                    req.matches(&v.to_semver()),
                    v.check_supported().is_ok(),
                    "{v}"
                );
            }
        }
    }
}

/// The sizes of the wire structs of v1, v2 and v3, taken from the structs
/// themselves (one source of truth: `raw`), as the `u16` the `size` tag holds.
#[allow(clippy::cast_possible_truncation)] // each size is asserted to fit below
const RECORD_SIZES: [u16; 3] = {
    use core::mem::size_of;
    let sizes = [
        size_of::<crate::raw::RecordV1>(),
        size_of::<crate::raw::RecordV2>(),
        size_of::<crate::raw::RecordV3>(),
    ];
    assert!(sizes[0] <= u16::MAX as usize && sizes[1] <= u16::MAX as usize);
    assert!(sizes[2] <= u16::MAX as usize);
    [sizes[0] as u16, sizes[1] as u16, sizes[2] as u16]
};
