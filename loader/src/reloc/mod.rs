//! Relocation arithmetic per architecture.
//!
//! The loader resolves S (symbol), A (addend), P (place), GOT (the GOT the
//! loader builds in the payload's read-only region) and the symbol's GOT slot,
//! then hands them here with the bytes of the section being relocated. These
//! functions only compute and store values, with every overflow reported.

use crate::error::RelocProblem;
use crate::Arch;

pub(crate) mod aarch64;
pub(crate) mod x86_64;

/// Everything one relocation needs, resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Input {
    /// Relocation type.
    pub rtype: u32,
    /// Offset of the place within the section.
    pub offset: u64,
    /// Symbol value S.
    pub s: u64,
    /// Addend A (explicit for RELA; read from the place for REL).
    pub a: i64,
    /// Address of the place P.
    pub p: u64,
    /// Address of the GOT.
    pub got: u64,
    /// Address of the symbol's GOT slot, when it has one.
    pub slot: Option<u64>,
    /// Address of the stub reserved in the payload's text for this
    /// relocation (AArch64 veneers and out-of-line GOT relaxations), if any.
    pub stub: Option<u64>,
    /// Whether the target is position-independent (absolute addresses are
    /// refused): prefer PC-relative sequences even where they cost a stub.
    pub pic: bool,
}

/// Size in bytes of one stub (four AArch64 instructions).
pub(crate) const STUB_SIZE: u64 = 16;

/// [`STUB_SIZE`] as a length, for the stub's byte array.
// 16 fits any usize: the cast cannot truncate.
#[allow(clippy::cast_possible_truncation)]
pub(crate) const STUB_LEN: usize = STUB_SIZE as usize;

/// The result of one relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Whether the stored value is absolute.
    pub value: Value,
    /// Code to write at [`Input::stub`], when the relocation went through it.
    pub stub: Option<[u8; STUB_LEN]>,
}

/// What the loader must prepare for a relocation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GotUse {
    /// Nothing.
    None,
    /// The GOT's address.
    Base,
    /// A slot for the symbol (and so the GOT).
    Slot,
}

/// Whether a relocated value holds an absolute address (directly, or
/// through a GOT slot the code reads) or only distances within the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value {
    /// PC- or GOT-relative: right wherever the image is loaded.
    Relative,
    /// An absolute address: right only at the addresses used when patching.
    Absolute,
}

/// Applies one relocation to `section`.
pub(crate) fn apply(arch: Arch, section: &mut [u8], r: &Input) -> Result<Applied, RelocProblem> {
    let applied = match arch {
        Arch::X86_64 => Ok(Applied {
            value: x86_64::apply(section, r)?,
            stub: None,
        }),
        Arch::Aarch64 => aarch64::apply(section, r),
    };
    applied.map_err(|e| match e {
        RelocProblem::Overflow { value, bits, .. } => RelocProblem::Overflow {
            value,
            bits,
            place: r.p,
        },
        other => other,
    })
}

/// Whether the loader reserves a stub for a relocation: `undefined` says
/// whether its symbol is undefined in the payload (resolved in the target,
/// so possibly out of branch range).
pub(crate) fn wants_stub(arch: Arch, rtype: u32, undefined: bool) -> bool {
    match arch {
        Arch::X86_64 => false,
        Arch::Aarch64 => aarch64::wants_stub(rtype, undefined),
    }
}

/// What GOT support a relocation type needs.
pub(crate) fn got_use(arch: Arch, rtype: u32) -> GotUse {
    match arch {
        Arch::X86_64 => x86_64::got_use(rtype),
        Arch::Aarch64 => aarch64::got_use(rtype),
    }
}

/// Reads the implicit addend of a REL relocation, for the data types whose
/// addend is the place's value.
pub(crate) fn implicit_addend(
    arch: Arch,
    section: &[u8],
    rtype: u32,
    offset: u64,
) -> Result<i64, RelocProblem> {
    let width = match arch {
        Arch::X86_64 => x86_64::rel_width(rtype),
        Arch::Aarch64 => aarch64::rel_width(rtype),
    }
    .ok_or(RelocProblem::RelForm)?;
    // Sign-extended from the field width.
    match *place(section, offset, width)? {
        [a, b] => Ok(i16::from_le_bytes([a, b]).into()),
        [a, b, c, d] => Ok(i32::from_le_bytes([a, b, c, d]).into()),
        [a, b, c, d, e, f, g, h] => Ok(i64::from_le_bytes([a, b, c, d, e, f, g, h])),
        _ => Err(RelocProblem::RelForm),
    }
}

/// The name of a relocation type, for messages.
pub(crate) fn type_name(arch: Arch, rtype: u32) -> &'static str {
    let machine = match arch {
        Arch::X86_64 => goblin::elf::header::EM_X86_64,
        Arch::Aarch64 => goblin::elf::header::EM_AARCH64,
    };
    goblin::elf::reloc::r_to_str(rtype, machine)
}

/// The `width` bytes at `offset`, or the error naming them.
pub(crate) fn place(section: &[u8], offset: u64, width: usize) -> Result<&[u8], RelocProblem> {
    let start = usize::try_from(offset).map_err(|_| RelocProblem::Place { offset, width })?;
    section
        .get(
            start
                ..start
                    .checked_add(width)
                    .ok_or(RelocProblem::Place { offset, width })?,
        )
        .ok_or(RelocProblem::Place { offset, width })
}

/// Mutable form of [`place`].
pub(crate) fn place_mut(
    section: &mut [u8],
    offset: u64,
    width: usize,
) -> Result<&mut [u8], RelocProblem> {
    let start = usize::try_from(offset).map_err(|_| RelocProblem::Place { offset, width })?;
    section
        .get_mut(
            start
                ..start
                    .checked_add(width)
                    .ok_or(RelocProblem::Place { offset, width })?,
        )
        .ok_or(RelocProblem::Place { offset, width })
}

/// `x + a - y` in 128-bit arithmetic, exactly: the relocation formulas are
/// all of this shape (`S + A - P`, `GOT + A - P`, `slot - GOT + A`, ...),
/// and the range checks then see the true value, never a wrapped one.
// Cannot overflow: the result lies within (-2^65, 2^65), far inside i128.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn exact(x: u64, a: i64, y: u64) -> i128 {
    i128::from(x) + i128::from(a) - i128::from(y)
}

/// `S + A`.
pub(crate) fn s_a(r: &Input) -> i128 {
    exact(r.s, r.a, 0)
}

/// `S + A - P`.
pub(crate) fn s_a_p(r: &Input) -> i128 {
    exact(r.s, r.a, r.p)
}

/// `to - from` for values computed by [`exact`] or widened from addresses.
/// Their distance always fits; a result that did not would be reported as
/// an overflow rather than stored wrapped.
pub(crate) fn diff(to: i128, from: i128) -> Result<i128, RelocProblem> {
    to.checked_sub(from).ok_or(overflow(to, 128))
}

/// The low 32 bits of `v` (two's complement), for instruction fields that
/// mask them further.
pub(crate) fn low32(v: i128) -> u32 {
    let [a, b, c, d, ..] = v.to_le_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// An overflow of `v` in a `bits`-bit field; [`apply`] fills in the place,
/// which the range checks do not know.
fn overflow(value: i128, bits: u32) -> RelocProblem {
    RelocProblem::Overflow {
        value,
        bits,
        place: 0,
    }
}

/// Checks that `v` fits a signed field of `bits` bits.
pub(crate) fn signed(v: i128, bits: u32) -> Result<i128, RelocProblem> {
    // It fits when every bit from the field's sign bit up copies the sign.
    match bits.checked_sub(1).and_then(|sign| v.checked_shr(sign)) {
        Some(0 | -1) => Ok(v),
        _ => Err(overflow(v, bits)),
    }
}

/// Checks that `v` fits an unsigned field of `bits` bits.
pub(crate) fn unsigned(v: i128, bits: u32) -> Result<i128, RelocProblem> {
    // It fits when no bit is set from `bits` up (a negative `v` has all).
    match v.checked_shr(bits) {
        Some(0) => Ok(v),
        _ => Err(overflow(v, bits)),
    }
}

/// Checks that `v` fits `bits` bits either signed or unsigned (ABS32, ABS16).
pub(crate) fn either(v: i128, bits: u32) -> Result<i128, RelocProblem> {
    unsigned(v, bits).or_else(|_| signed(v, bits))
}

/// Stores the low `width` bytes of `v` little-endian at `offset`.
pub(crate) fn store(
    section: &mut [u8],
    offset: u64,
    width: usize,
    v: i128,
) -> Result<(), RelocProblem> {
    let dst = place_mut(section, offset, width)?;
    let bytes = (v as u128).to_le_bytes();
    dst.copy_from_slice(
        bytes
            .get(..width)
            .ok_or(RelocProblem::Place { offset, width })?,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks_accept_exactly_the_field() {
        assert!(signed(127, 8).is_ok() && signed(-128, 8).is_ok());
        assert!(signed(128, 8).is_err() && signed(-129, 8).is_err());
        assert!(signed(0, 0).is_err());
        assert!(unsigned(255, 8).is_ok() && unsigned(0, 8).is_ok());
        assert!(unsigned(256, 8).is_err() && unsigned(-1, 8).is_err());
        assert!(either(-128, 8).is_ok() && either(255, 8).is_ok());
        assert!(either(-129, 8).is_err() && either(256, 8).is_err());
        assert_eq!(
            signed(1 << 40, 32),
            Err(RelocProblem::Overflow {
                value: 1 << 40,
                bits: 32,
                place: 0
            })
        );
    }

    #[test]
    fn formulas_do_not_wrap() {
        assert_eq!(
            exact(u64::MAX, i64::MAX, 0),
            (1i128 << 64) - 1 + i128::from(i64::MAX)
        );
        assert_eq!(
            exact(0, i64::MIN, u64::MAX),
            i128::from(i64::MIN) - i128::from(u64::MAX)
        );
        assert_eq!(low32(-1), u32::MAX);
        assert_eq!(low32(0x1_2345_6789), 0x2345_6789);
    }

    #[test]
    fn implicit_addends_are_sign_extended() {
        let section = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let r16 = goblin::elf::reloc::R_AARCH64_ABS16;
        assert_eq!(implicit_addend(Arch::Aarch64, &section, r16, 0), Ok(-2));
        let r32 = goblin::elf::reloc::R_X86_64_PC32;
        assert_eq!(implicit_addend(Arch::X86_64, &section, r32, 0), Ok(-2));
        let r64 = goblin::elf::reloc::R_X86_64_64;
        assert_eq!(
            implicit_addend(Arch::X86_64, &section, r64, 0),
            Ok(i64::MAX - 1)
        );
        assert!(implicit_addend(Arch::X86_64, &section, r64, 1).is_err());
    }
}
