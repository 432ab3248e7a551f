//! Feature bits.
//!
//! `incompat` bits change how a record must be applied: a loader that meets
//! one it does not know must refuse the payload. `compat` bits only add
//! information: unknown ones are ignored (and reported). This is the ext4
//! scheme, applied per record and summarised in the ABI note.

use crate::version::{FormatVersion, RecordVersion};

/// Incompatible feature bits of a record (`incompat` at offset 44).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Incompat(u32);

bitflags::bitflags! {
    impl Incompat: u32 {
        /// `new_addr` is 0; write `new_size` bytes of NOPs at the patch site.
        const NOP = 1 << 0;
        /// The patch site is `old_addr + patch_offset` (e.g. past ENDBR64).
        const PATCH_OFFSET = 1 << 1;
        /// `sympos` picks the n-th local symbol called `name`.
        const SYMPOS = 1 << 2;
        /// `expect[..expect_len]` must equal the bytes at the patch site.
        const EXPECT = 1 << 3;
    }
}

/// Compatible feature bits of a record (`compat` at offset 48).
///
/// None are defined yet; the first minor versions will add them. Unknown
/// compat bits are preserved by the decoder and reported as warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Compat(u32);

bitflags::bitflags! {
    impl Compat: u32 {
        // No compat bit is defined in format 3.0. The line below keeps
        // unknown bits when converting from raw values.
        const _ = !0;
    }
}

/// What the specification says about one feature bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureInfo {
    /// The bit's name as written in the specification and the C header.
    pub name: &'static str,
    /// Bit number.
    pub bit: u8,
    /// Whether the bit is an incompat bit (else compat).
    pub incompat: bool,
    /// The format version that introduced the bit.
    pub since: FormatVersion,
    /// The format version that deprecated it, if any.
    pub deprecated: Option<FormatVersion>,
    /// The oldest record version whose layout can express the bit.
    pub min_record: RecordVersion,
    /// One-line meaning.
    pub doc: &'static str,
}

const INCOMPAT_INFO: [FeatureInfo; 4] = [
    FeatureInfo {
        name: "NOP",
        bit: 0,
        incompat: true,
        since: FormatVersion::new(2, 0),
        deprecated: None,
        min_record: RecordVersion::V2,
        doc: "new_addr is 0; write new_size bytes of NOPs at the patch site",
    },
    FeatureInfo {
        name: "PATCH_OFFSET",
        bit: 1,
        incompat: true,
        since: FormatVersion::new(3, 0),
        deprecated: None,
        min_record: RecordVersion::V3,
        doc: "the patch site is old_addr + patch_offset (e.g. 4 past ENDBR64)",
    },
    FeatureInfo {
        name: "SYMPOS",
        bit: 2,
        incompat: true,
        since: FormatVersion::new(3, 0),
        deprecated: None,
        min_record: RecordVersion::V3,
        doc: "sympos picks the n-th local symbol called name",
    },
    FeatureInfo {
        name: "EXPECT",
        bit: 3,
        incompat: true,
        since: FormatVersion::new(3, 0),
        deprecated: None,
        min_record: RecordVersion::V3,
        doc: "expect[..expect_len] must equal the bytes at the patch site before apply",
    },
];

impl Incompat {
    /// The specification entry of every defined incompat bit, by bit number.
    pub const INFO: &'static [FeatureInfo] = &INCOMPAT_INFO;

    /// The specification entry of a single defined bit, or `None` when
    /// `self` is not exactly one defined bit.
    pub fn info(self) -> Option<&'static FeatureInfo> {
        Self::INFO
            .iter()
            .find(|i| 1u32.checked_shl(u32::from(i.bit)) == Some(self.bits()))
    }

    /// The bits of `self` that a record of `version` can carry.
    pub fn allowed_in(version: RecordVersion) -> Incompat {
        Self::INFO
            .iter()
            .filter(|i| i.min_record <= version)
            .fold(Incompat::empty(), |acc, i| {
                acc | Incompat::from_bits_retain(1 << i.bit)
            })
    }

    /// The lowest set bit number of a raw value that is not a defined bit.
    pub(crate) fn first_unknown(raw: u32) -> Option<u8> {
        let unknown = raw & !Incompat::all().bits();
        (unknown != 0)
            .then(|| u8::try_from(unknown.trailing_zeros()).ok())
            .flatten()
    }
}

impl Compat {
    /// The specification entry of every defined compat bit (none yet).
    pub const INFO: &'static [FeatureInfo] = &[];

    /// The bits of `self` this crate does not know.
    pub fn unknown(self) -> Compat {
        let known = Self::INFO.iter().fold(0u32, |acc, i| acc | (1 << i.bit));
        Compat::from_bits_retain(self.bits() & !known)
    }
}

impl core::fmt::Display for Incompat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        bitflags::parser::to_writer(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_matches_flags() {
        for i in Incompat::INFO {
            let flag = Incompat::from_bits_retain(1 << i.bit);
            let named = Incompat::from_name(i.name).unwrap();
            assert_eq!(flag, named, "{}", i.name);
            assert_eq!(flag.info(), Some(i));
        }
        assert_eq!(Incompat::INFO.len(), Incompat::all().iter().count());
    }

    #[test]
    fn allowed_per_version() {
        assert_eq!(Incompat::allowed_in(RecordVersion::V1), Incompat::empty());
        assert_eq!(Incompat::allowed_in(RecordVersion::V2), Incompat::NOP);
        assert_eq!(Incompat::allowed_in(RecordVersion::V3), Incompat::all());
    }

    #[test]
    fn first_unknown_bit() {
        assert_eq!(Incompat::first_unknown(0xF), None);
        assert_eq!(Incompat::first_unknown(0x10), Some(4));
        assert_eq!(Incompat::first_unknown(0x8000_0001), Some(31));
    }
}
