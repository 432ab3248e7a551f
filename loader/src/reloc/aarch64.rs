//! AArch64 relocations (ELF for the Arm 64-bit Architecture, RELA).
//!
//! Instruction fields are patched in place; the GOT forms gcc emits for
//! `-fpic` use the slot the loader built, holding `S` (a non-zero addend on
//! a GOT form is refused, since the slot holds the symbol alone).

use goblin::elf::reloc::*;

use super::{either, place, s_a, s_a_p, signed, store, GotUse, Input, Value};
use crate::error::RelocProblem;

pub(crate) fn got_use(rtype: u32) -> GotUse {
    match rtype {
        R_AARCH64_ADR_GOT_PAGE | R_AARCH64_LD64_GOT_LO12_NC | R_AARCH64_LD64_GOTPAGE_LO15 => {
            GotUse::Slot
        }
        _ => GotUse::None,
    }
}

/// Whether a type stores an absolute address (directly or via the GOT).
pub(crate) fn value(rtype: u32) -> Value {
    match rtype {
        // The LO12 forms pair with ADRP: page offsets do not move with a
        // page-aligned load base, so only full addresses and GOT slots count.
        R_AARCH64_ABS64
        | R_AARCH64_ABS32
        | R_AARCH64_ABS16
        | R_AARCH64_ADR_GOT_PAGE
        | R_AARCH64_LD64_GOT_LO12_NC
        | R_AARCH64_LD64_GOTPAGE_LO15 => Value::Absolute,
        _ => Value::Relative,
    }
}

pub(crate) fn rel_width(rtype: u32) -> Option<usize> {
    match rtype {
        R_AARCH64_ABS64 | R_AARCH64_PREL64 => Some(8),
        R_AARCH64_ABS32 | R_AARCH64_PREL32 => Some(4),
        R_AARCH64_ABS16 | R_AARCH64_PREL16 => Some(2),
        _ => None,
    }
}

fn page(x: i128) -> i128 {
    x & !0xfff
}

fn read_insn(section: &[u8], offset: u64) -> Result<u32, RelocProblem> {
    let b = place(section, offset, 4)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(b);
    Ok(u32::from_le_bytes(w))
}

/// Replaces the bits of `mask` in the instruction with `bits`.
fn patch(section: &mut [u8], offset: u64, mask: u32, bits: u32) -> Result<(), RelocProblem> {
    let insn = (read_insn(section, offset)? & !mask) | (bits & mask);
    store(section, offset, 4, i128::from(insn))
}

fn aligned(v: i128, align: u32) -> Result<i128, RelocProblem> {
    if v % i128::from(align) != 0 {
        return Err(RelocProblem::Misaligned { value: v, align });
    }
    Ok(v)
}

/// ADR/ADRP immediate: immlo in bits 29-30, immhi in bits 5-23.
fn adr_imm(section: &mut [u8], offset: u64, imm: i128) -> Result<(), RelocProblem> {
    let imm = imm as u32;
    let bits = ((imm & 3) << 29) | (((imm >> 2) & 0x7ffff) << 5);
    patch(section, offset, (3 << 29) | (0x7ffff << 5), bits)
}

/// ADD/LDR/STR unsigned 12-bit immediate in bits 10-21.
fn imm12(section: &mut [u8], offset: u64, v: i128) -> Result<(), RelocProblem> {
    patch(section, offset, 0xfff << 10, ((v as u32) & 0xfff) << 10)
}

fn slot(r: &Input) -> Result<i128, RelocProblem> {
    if r.a != 0 {
        return Err(RelocProblem::Unsupported(r.rtype));
    }
    r.slot
        .map(i128::from)
        .ok_or(RelocProblem::Unsupported(r.rtype))
}

pub(crate) fn apply(section: &mut [u8], r: &Input) -> Result<(), RelocProblem> {
    let p = i128::from(r.p);
    let off = r.offset;
    match r.rtype {
        R_AARCH64_NONE => Ok(()),
        R_AARCH64_ABS64 => store(section, off, 8, s_a(r)),
        R_AARCH64_ABS32 => store(section, off, 4, either(s_a(r), 32)?),
        R_AARCH64_ABS16 => store(section, off, 2, either(s_a(r), 16)?),
        R_AARCH64_PREL64 => store(section, off, 8, s_a_p(r)),
        R_AARCH64_PREL32 => store(section, off, 4, either(s_a_p(r), 32)?),
        R_AARCH64_PREL16 => store(section, off, 2, either(s_a_p(r), 16)?),
        R_AARCH64_ADR_PREL_LO21 => adr_imm(section, off, signed(s_a_p(r), 21)?),
        R_AARCH64_ADR_PREL_PG_HI21 => {
            adr_imm(section, off, signed((page(s_a(r)) - page(p)) >> 12, 21)?)
        }
        R_AARCH64_ADR_PREL_PG_HI21_NC => adr_imm(section, off, (page(s_a(r)) - page(p)) >> 12),
        R_AARCH64_ADD_ABS_LO12_NC | R_AARCH64_LDST8_ABS_LO12_NC => imm12(section, off, s_a(r)),
        R_AARCH64_LDST16_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 2)? >> 1),
        R_AARCH64_LDST32_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 4)? >> 2),
        R_AARCH64_LDST64_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 8)? >> 3),
        R_AARCH64_LDST128_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 16)? >> 4),
        R_AARCH64_TSTBR14 => {
            let v = signed(aligned(s_a_p(r), 4)? >> 2, 14)?;
            patch(section, off, 0x3fff << 5, ((v as u32) & 0x3fff) << 5)
        }
        R_AARCH64_CONDBR19 => {
            let v = signed(aligned(s_a_p(r), 4)? >> 2, 19)?;
            patch(section, off, 0x7ffff << 5, ((v as u32) & 0x7ffff) << 5)
        }
        R_AARCH64_JUMP26 | R_AARCH64_CALL26 => {
            let v = signed(aligned(s_a_p(r), 4)? >> 2, 26)?;
            patch(section, off, 0x3ff_ffff, (v as u32) & 0x3ff_ffff)
        }
        R_AARCH64_ADR_GOT_PAGE => {
            adr_imm(section, off, signed((page(slot(r)?) - page(p)) >> 12, 21)?)
        }
        R_AARCH64_LD64_GOT_LO12_NC => imm12(section, off, aligned(slot(r)? & 0xfff, 8)? >> 3),
        R_AARCH64_LD64_GOTPAGE_LO15 => {
            let v = aligned(slot(r)? - page(i128::from(r.got)), 8)?;
            let v = super::unsigned(v, 15)?;
            imm12(section, off, v >> 3)
        }
        t => Err(RelocProblem::Unsupported(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(rtype: u32, s: u64, p: u64) -> Input {
        Input {
            rtype,
            offset: 0,
            s,
            a: 0,
            p,
            got: 0x10_0000,
            slot: Some(0x10_0010),
        }
    }

    #[test]
    fn call26_encodes_and_checks_range() {
        let mut bl = 0x9400_0000u32.to_le_bytes();
        apply(&mut bl, &input(R_AARCH64_CALL26, 0x2000, 0x1000)).unwrap();
        assert_eq!(u32::from_le_bytes(bl), 0x9400_0000 | (0x1000 >> 2));
        let far = input(R_AARCH64_CALL26, 0x1000 + (128 << 20), 0x1000);
        assert!(matches!(
            apply(&mut bl, &far),
            Err(RelocProblem::Overflow { bits: 26, .. })
        ));
        let odd = input(R_AARCH64_CALL26, 0x1002, 0x1000);
        assert!(matches!(
            apply(&mut bl, &odd),
            Err(RelocProblem::Misaligned { align: 4, .. })
        ));
    }

    #[test]
    fn adrp_add_ldr() {
        // adrp x0, sym  (0x90000000)
        let mut adrp = 0x9000_0000u32.to_le_bytes();
        apply(
            &mut adrp,
            &input(R_AARCH64_ADR_PREL_PG_HI21, 0x12_3456, 0x10_0000),
        )
        .unwrap();
        let insn = u32::from_le_bytes(adrp);
        let imm = ((insn >> 29) & 3) | (((insn >> 5) & 0x7ffff) << 2);
        assert_eq!(imm, 0x23);
        let mut add = 0x9100_0000u32.to_le_bytes();
        apply(&mut add, &input(R_AARCH64_ADD_ABS_LO12_NC, 0x12_3456, 0)).unwrap();
        assert_eq!((u32::from_le_bytes(add) >> 10) & 0xfff, 0x456);
        let mut ldr = 0xf940_0000u32.to_le_bytes();
        apply(&mut ldr, &input(R_AARCH64_LDST64_ABS_LO12_NC, 0x12_3458, 0)).unwrap();
        assert_eq!((u32::from_le_bytes(ldr) >> 10) & 0xfff, 0x458 >> 3);
        let mut got = 0xf940_0000u32.to_le_bytes();
        apply(&mut got, &input(R_AARCH64_LD64_GOTPAGE_LO15, 0, 0)).unwrap();
        assert_eq!((u32::from_le_bytes(got) >> 10) & 0xfff, 0x10 >> 3);
    }
}
