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

/// The result of one relocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Whether the stored value is absolute.
    pub value: Value,
    /// Code to write at [`Input::stub`], when the relocation went through it.
    pub stub: Option<[u8; STUB_SIZE as usize]>,
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
    let bytes = place(section, offset, width)?;
    let mut buf = [0u8; 8];
    buf.get_mut(..width)
        .ok_or(RelocProblem::RelForm)?
        .copy_from_slice(bytes);
    let raw = u64::from_le_bytes(buf);
    // Sign-extend from the field width.
    let shift = 64 - 8 * width as u32;
    Ok(((raw << shift) as i64) >> shift)
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

/// `S + A` in 128-bit arithmetic so that nothing wraps silently.
pub(crate) fn s_a(r: &Input) -> i128 {
    i128::from(r.s) + i128::from(r.a)
}

/// `S + A - P`.
pub(crate) fn s_a_p(r: &Input) -> i128 {
    s_a(r) - i128::from(r.p)
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
    let lim = 1i128 << (bits - 1);
    if v < -lim || v >= lim {
        return Err(overflow(v, bits));
    }
    Ok(v)
}

/// Checks that `v` fits an unsigned field of `bits` bits.
pub(crate) fn unsigned(v: i128, bits: u32) -> Result<i128, RelocProblem> {
    if v < 0 || v >= (1i128 << bits) {
        return Err(overflow(v, bits));
    }
    Ok(v)
}

/// Checks that `v` fits `bits` bits either signed or unsigned (ABS32, ABS16).
pub(crate) fn either(v: i128, bits: u32) -> Result<i128, RelocProblem> {
    if v < -(1i128 << (bits - 1)) || v >= (1i128 << bits) {
        return Err(overflow(v, bits));
    }
    Ok(v)
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
