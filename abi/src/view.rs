//! The canonical view: what every record version decodes into.

use core::fmt;
use core::mem::offset_of;

use crate::error::ErrorKind;
use crate::features::{Compat, Incompat};
use crate::raw::RecordV3;
use crate::version::RecordVersion;

/// An address in the target's address space (after relocation).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Addr(pub u64);

impl Addr {
    /// The null address (`old_addr` 0 means "resolve by name").
    pub const NULL: Addr = Addr(0);

    /// Whether this is the null address.
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// `self + off`, or `None` on overflow.
    pub fn checked_add(self, off: u64) -> Option<Addr> {
        self.0.checked_add(off).map(Addr)
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The longest function name a record may point to, in bytes, NUL excluded.
pub const NAME_MAX: usize = 127;

/// The largest number of expected bytes a record can carry.
pub const EXPECT_MAX: usize = 32;

/// Bytes expected at the patch site before apply (the v3 EXPECT feature).
///
/// Holds up to [`EXPECT_MAX`] bytes inline, so the canonical view needs no
/// allocation. Bytes past the length are always zero, which is also what the
/// wire format requires of `expect[expect_len..]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expect {
    len: u8,
    bytes: [u8; EXPECT_MAX],
}

impl Expect {
    /// No expected bytes.
    pub const EMPTY: Expect = Expect {
        len: 0,
        bytes: [0; EXPECT_MAX],
    };

    /// Expected bytes from a slice of at most [`EXPECT_MAX`] bytes.
    ///
    /// ```
    /// use xsplice_abi::Expect;
    /// let e = Expect::new(&[0xf3, 0x0f, 0x1e, 0xfa]).unwrap();
    /// assert_eq!(e.as_slice(), &[0xf3, 0x0f, 0x1e, 0xfa]);
    /// assert!(Expect::new(&[0; 33]).is_none());
    /// ```
    pub fn new(src: &[u8]) -> Option<Expect> {
        let mut bytes = [0u8; EXPECT_MAX];
        bytes.get_mut(..src.len())?.copy_from_slice(src);
        Some(Expect {
            len: u8::try_from(src.len()).ok()?,
            bytes,
        })
    }

    /// The expected bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Number of expected bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no bytes are expected.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The full 32-byte array as stored in a v3 record.
    pub(crate) fn raw(&self) -> &[u8; EXPECT_MAX] {
        &self.bytes
    }

    /// Rebuilds from the raw record fields, checking the length and that the
    /// bytes past it are zero.
    pub(crate) fn from_raw(len: u8, bytes: [u8; EXPECT_MAX]) -> Result<Expect, ErrorKind> {
        let n = usize::from(len);
        if n > EXPECT_MAX {
            return Err(ErrorKind::ExpectTooLong { len });
        }
        if let Some(pos) = bytes.iter().skip(n).position(|&b| b != 0) {
            return Err(ErrorKind::NonZeroReserved {
                field: "expect",
                offset: offset_of!(RecordV3, expect)
                    .saturating_add(n)
                    .saturating_add(pos),
            });
        }
        Ok(Expect { len, bytes })
    }
}

impl fmt::Debug for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Expect(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(feature = "serde")]
mod expect_serde {
    //! `Expect` is a lowercase hex string in human formats: what a person
    //! compares against `objdump` output.
    use super::{Expect, EXPECT_MAX};

    impl serde::Serialize for Expect {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let hex = |n: u8| char::from_digit(u32::from(n), 16).map_or(b'0', |c| c as u8);
            let mut buf = [0u8; EXPECT_MAX * 2];
            for (out, b) in buf.chunks_exact_mut(2).zip(self.as_slice()) {
                out.copy_from_slice(&[hex(b >> 4), hex(b & 0xf)]);
            }
            let text = buf.get(..self.len().saturating_mul(2)).unwrap_or(&[]);
            s.serialize_str(core::str::from_utf8(text).map_err(serde::ser::Error::custom)?)
        }
    }

    impl<'de> serde::Deserialize<'de> for Expect {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Expect;
                fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    f.write_str("a hex string of at most 32 bytes")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Expect, E> {
                    let digits = v.as_bytes();
                    if digits.len() % 2 != 0 || digits.len() > EXPECT_MAX * 2 {
                        return Err(E::custom(
                            "expect: an even number of hex digits, at most 64",
                        ));
                    }
                    if digits
                        .iter()
                        .any(|d| !matches!(d, b'0'..=b'9' | b'a'..=b'f'))
                    {
                        return Err(E::custom("expect: lowercase hex digits only"));
                    }
                    let mut bytes = [0u8; EXPECT_MAX];
                    for (out, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
                        let s = core::str::from_utf8(pair).map_err(E::custom)?;
                        *out = u8::from_str_radix(s, 16).map_err(E::custom)?;
                    }
                    let len = u8::try_from(digits.len() / 2).map_err(E::custom)?;
                    Ok(Expect { len, bytes })
                }
            }
            d.deserialize_str(V)
        }
    }

    #[cfg(feature = "schemars")]
    impl schemars::JsonSchema for Expect {
        fn schema_name() -> alloc::borrow::Cow<'static, str> {
            "Expect".into()
        }
        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "type": "string",
                "pattern": "^([0-9a-f]{2}){0,32}$",
                "description": "Bytes expected at the patch site, as lowercase hex (at most 32 bytes)."
            })
        }
    }
}

/// One patch-function record, independent of its on-disk version.
///
/// Every record version decodes into this view and [`crate::encode`] writes
/// it back into any version able to express it. Invariants (checked by both
/// directions): a field is non-zero only when its feature bit is set, and a
/// NOP record has `new_addr` 0.
//
// Decision (a plain comment: doc comments become the JSON Schema's
// description): unlike the loader's result types, this view is not
// `#[non_exhaustive]`. Toolchains build records with it, and a record is
// plain data whose every field has a meaning of zero ("feature unused"),
// so the idiom is a struct literal ending in `..PatchFunc::default()`,
// which keeps compiling when a later format adds a field. Adding a field
// is still a minor-version change of this crate, recorded in the CHANGELOG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct PatchFunc {
    /// Address of the replacement code (0 for NOP records).
    pub new_addr: Addr,
    /// Bytes of replacement code, or bytes to NOP out.
    pub new_size: u64,
    /// Address of the code to patch; 0 means "resolve `name` in the target".
    pub old_addr: Addr,
    /// Size of the patched function.
    pub old_size: u64,
    /// Address of the NUL-terminated function name.
    pub name: Addr,
    /// Incompatible feature bits.
    pub incompat: Incompat,
    /// Compatible feature bits, unknown ones included.
    pub compat: Compat,
    /// Patch site offset from `old_addr` (PATCH_OFFSET).
    pub patch_offset: u32,
    /// Which local symbol called `name` (SYMPOS); 0 = the unique one.
    pub sympos: u32,
    /// Bytes expected at the patch site (EXPECT).
    pub expect: Expect,
}

impl PatchFunc {
    /// Checks the view against the rules of a record version: every incompat
    /// bit known and expressible in `version`, every field non-zero only under
    /// its bit, NOP records with `new_addr` 0, and (v1) no compat bits.
    ///
    /// The decoder and the encoder both call this, so a record that decodes
    /// always encodes back and vice versa.
    pub fn check(&self, version: RecordVersion) -> Result<(), ErrorKind> {
        if let Some(bit) = Incompat::first_unknown(self.incompat.bits()) {
            return Err(ErrorKind::UnknownIncompat { bit });
        }
        if let Some(feature) = (self.incompat & Incompat::payload_level()).iter().next() {
            return Err(ErrorKind::PayloadLevelFeature { feature });
        }
        let outside = self.incompat.difference(Incompat::allowed_in(version));
        if let Some(feature) = outside.iter().next() {
            return Err(ErrorKind::FeatureNotInVersion { feature, version });
        }
        if version == RecordVersion::V1 && !self.compat.is_empty() {
            return Err(ErrorKind::CompatNotInV1 {
                compat: self.compat.bits(),
            });
        }
        if self.incompat.contains(Incompat::NOP) && !self.new_addr.is_null() {
            return Err(ErrorKind::NopWithNewAddr {
                new_addr: self.new_addr.0,
            });
        }
        let gated = [
            (
                self.patch_offset != 0,
                "patch_offset",
                offset_of!(RecordV3, patch_offset),
                Incompat::PATCH_OFFSET,
            ),
            (
                self.sympos != 0,
                "sympos",
                offset_of!(RecordV3, sympos),
                Incompat::SYMPOS,
            ),
            (
                !self.expect.is_empty(),
                "expect_len",
                offset_of!(RecordV3, expect_len),
                Incompat::EXPECT,
            ),
        ];
        for (set, field, offset, feature) in gated {
            if set && !self.incompat.contains(feature) {
                return Err(ErrorKind::FieldWithoutFeature {
                    field,
                    offset,
                    feature,
                });
            }
        }
        Ok(())
    }

    /// The oldest record version that can express this view, if any.
    ///
    /// ```
    /// use xsplice_abi::{Incompat, PatchFunc, RecordVersion};
    /// let mut f = PatchFunc { new_addr: xsplice_abi::Addr(0x1000), ..PatchFunc::default() };
    /// assert_eq!(f.min_version(), Some(RecordVersion::V1));
    /// f.new_addr = xsplice_abi::Addr(0);
    /// f.incompat = Incompat::NOP;
    /// assert_eq!(f.min_version(), Some(RecordVersion::V2));
    /// ```
    pub fn min_version(&self) -> Option<RecordVersion> {
        RecordVersion::ALL
            .into_iter()
            .find(|v| self.check(*v).is_ok())
    }

    /// The patch site: `old_addr + patch_offset`, or `None` on overflow.
    pub fn patch_site(&self) -> Option<Addr> {
        self.old_addr.checked_add(u64::from(self.patch_offset))
    }

    /// Whether this record NOPs out code rather than redirecting it.
    pub fn is_nop(&self) -> bool {
        self.incompat.contains(Incompat::NOP)
    }
}
