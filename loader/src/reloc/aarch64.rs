//! AArch64 relocations (ELF for the Arm 64-bit Architecture, RELA).
//!
//! Instruction fields are patched in place. The GOT forms gcc emits are
//! relaxed the way linkers do, so that position-independent payloads need
//! no absolute address when their targets are in reach:
//!
//! - `-fPIC` (`ADR_GOT_PAGE` + `LD64_GOT_LO12_NC`): `adrp x, :got:sym` becomes
//!   `adrp x, sym` and `ldr x, [x, :got_lo12:sym]` becomes
//!   `add x, x, :lo12:sym`, when `sym` is within ±2 GiB of the GOT (one rule
//!   both halves of the pair see alike, whatever their places).
//! - `-fPIC -mcmodel=tiny` (`GOT_LD_PREL19`): `ldr x, :got:sym` (a literal
//!   load) becomes `adr x, sym` when `sym` is within ±1 MiB; beyond, it reads
//!   the slot when that is within ±1 MiB and the target allows absolute
//!   addresses, and otherwise goes out of line like `LD64_GOTPAGE_LO15`.
//! - `-fpic`/`-fpie` (`LD64_GOTPAGE_LO15`): `ldr x, [g, #:gotpage_lo15:sym]`,
//!   where `g` holds the GOT's page, cannot become one PC-relative
//!   instruction. On a position-independent target it becomes a branch to a
//!   stub in the payload's text: `adrp x, sym; add x, x, :lo12:sym; b back`.
//!   Elsewhere it reads the GOT slot, which is faster.
//!
//! Forms not relaxed read the slot the loader built, holding `S` (a non-zero
//! addend on a GOT form is refused, since the slot holds the symbol alone).
//!
//! `CALL26`/`JUMP26` out of ±128 MiB (a payload calling into an image whose
//! arena is far from its code) go through a veneer in the stub reserved for
//! each call to an undefined symbol: `adrp x16, sym; add x16, x16,
//! :lo12:sym; br x16` (x16 is IP0, which AAPCS64 lets veneers clobber).

use goblin::elf::reloc::*;

use super::{
    diff, either, exact, low32, place, s_a, s_a_p, signed, store, Applied, GotUse, Input, Value,
    STUB_LEN,
};
use crate::error::RelocProblem;

pub(crate) fn got_use(rtype: u32) -> GotUse {
    match rtype {
        R_AARCH64_ADR_GOT_PAGE
        | R_AARCH64_LD64_GOT_LO12_NC
        | R_AARCH64_LD64_GOTPAGE_LO15
        | R_AARCH64_GOT_LD_PREL19 => GotUse::Slot,
        _ => GotUse::None,
    }
}

/// Whether a relocation gets a stub: calls and jumps into the target
/// (veneers), and the GOT loads that may be relaxed out of line.
pub(crate) fn wants_stub(rtype: u32, undefined: bool) -> bool {
    match rtype {
        R_AARCH64_CALL26 | R_AARCH64_JUMP26 => undefined,
        R_AARCH64_LD64_GOTPAGE_LO15 | R_AARCH64_GOT_LD_PREL19 => true,
        _ => false,
    }
}

/// Whether a type stores an absolute address when applied as written
/// (directly or via the GOT), before any relaxation.
fn value(rtype: u32) -> Value {
    match rtype {
        // The LO12 forms pair with ADRP: page offsets do not move with a
        // page-aligned load base, so only full addresses and GOT slots count.
        R_AARCH64_ABS64
        | R_AARCH64_ABS32
        | R_AARCH64_ABS16
        | R_AARCH64_ADR_GOT_PAGE
        | R_AARCH64_LD64_GOT_LO12_NC
        | R_AARCH64_LD64_GOTPAGE_LO15
        | R_AARCH64_GOT_LD_PREL19 => Value::Absolute,
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
    if v.checked_rem(i128::from(align)) != Some(0) {
        return Err(RelocProblem::Misaligned { value: v, align });
    }
    Ok(v)
}

/// ADR/ADRP immediate: immlo in bits 29-30, immhi in bits 5-23.
fn adr_imm(section: &mut [u8], offset: u64, imm: i128) -> Result<(), RelocProblem> {
    patch(section, offset, (3 << 29) | (0x7ffff << 5), adr_bits(imm))
}

/// ADD/LDR/STR unsigned 12-bit immediate in bits 10-21.
fn imm12(section: &mut [u8], offset: u64, v: i128) -> Result<(), RelocProblem> {
    patch(section, offset, 0xfff << 10, (low32(v) & 0xfff) << 10)
}

fn slot(r: &Input) -> Result<i128, RelocProblem> {
    if r.a != 0 {
        return Err(RelocProblem::Unsupported(r.rtype));
    }
    r.slot
        .map(i128::from)
        .ok_or(RelocProblem::Unsupported(r.rtype))
}

/// `ldr Xt, [Xn, #imm]` (64-bit, unsigned offset).
const LDR_X_IMM: (u32, u32) = (0xffc0_0000, 0xf940_0000);
/// `ldr Xt, label` (64-bit literal).
const LDR_X_LIT: (u32, u32) = (0xff00_0000, 0x5800_0000);
/// `adrp Xd, 0`.
const ADRP: u32 = 0x9000_0000;
/// `adr Xd, 0`.
const ADR: u32 = 0x1000_0000;
/// `add Xd, Xn, #0`.
const ADD_X_IMM: u32 = 0x9100_0000;
/// `b 0`.
const B: u32 = 0x1400_0000;
/// `br x16`.
const BR_X16: u32 = 0xd61f_0200;
/// `brk #0x7e5` (`xs`): fills the unused word of a stub.
const BRK: u32 = 0xd420_0000 | (0x7e5 << 5);

fn matches(insn: u32, (mask, bits): (u32, u32)) -> bool {
    insn & mask == bits
}

/// The page distance from `from` to `to`, as an ADRP immediate.
fn page_delta(to: i128, from: i128) -> Result<i128, RelocProblem> {
    signed(diff(page(to), page(from))? >> 12, 21)
}

/// ADR/ADRP immediate bits of `imm`.
fn adr_bits(imm: i128) -> u32 {
    let imm = low32(imm);
    ((imm & 3) << 29) | (((imm >> 2) & 0x7ffff) << 5)
}

/// `b` from `from` to `to`.
fn branch(to: i128, from: i128) -> Result<u32, RelocProblem> {
    let v = signed(aligned(diff(to, from)?, 4)? >> 2, 26)?;
    Ok(B | (low32(v) & 0x3ff_ffff))
}

/// A stub at `at` that computes `target` into register `rd`
/// (`adrp; add`) and ends with `last` (a branch back, or `br x16`).
fn stub(
    at: u64,
    rd: u32,
    target: i128,
    last: impl FnOnce(i128) -> Result<u32, RelocProblem>,
) -> Result<[u8; STUB_LEN], RelocProblem> {
    let words = [
        ADRP | adr_bits(page_delta(target, i128::from(at))?) | rd,
        ADD_X_IMM | ((low32(target) & 0xfff) << 10) | (rd << 5) | rd,
        last(exact(at, 8, 0))?,
        BRK,
    ];
    let mut out = [0u8; STUB_LEN];
    for (dst, w) in out.chunks_exact_mut(4).zip(words) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    Ok(out)
}

/// Replaces the GOT load at the place by a branch to a stub computing the
/// symbol's address into the load's register and branching back.
fn out_of_line(section: &mut [u8], r: &Input, at: u64) -> Result<Applied, RelocProblem> {
    let rt = read_insn(section, r.offset)? & 0x1f;
    let code = stub(at, rt, s_a(r), |from| branch(exact(r.p, 4, 0), from))?;
    let to_stub = branch(i128::from(at), i128::from(r.p))?;
    store(section, r.offset, 4, i128::from(to_stub))?;
    Ok(Applied {
        value: Value::Relative,
        stub: Some(code),
    })
}

/// Whether `-fPIC`'s GOT pair is relaxed: the symbol is within ±2 GiB of
/// the GOT, a rule that does not depend on which half asks.
fn relax_pair(r: &Input) -> bool {
    r.a == 0 && signed(exact(r.s, r.a, r.got), 32).is_ok()
}

pub(crate) fn apply(section: &mut [u8], r: &Input) -> Result<Applied, RelocProblem> {
    let p = i128::from(r.p);
    let off = r.offset;
    let relative = |()| Applied {
        value: Value::Relative,
        stub: None,
    };
    match r.rtype {
        R_AARCH64_ADR_GOT_PAGE if relax_pair(r) => {
            return adr_imm(section, off, page_delta(s_a(r), p)?).map(relative)
        }
        R_AARCH64_LD64_GOT_LO12_NC if relax_pair(r) => {
            let insn = read_insn(section, off)?;
            if matches(insn, LDR_X_IMM) {
                let add = ADD_X_IMM | ((low32(s_a(r)) & 0xfff) << 10) | (insn & 0x3ff);
                return store(section, off, 4, i128::from(add)).map(relative);
            }
            // Its ADRP now points at the symbol's page, not the slot's.
            return Err(RelocProblem::Instruction(insn));
        }
        R_AARCH64_GOT_LD_PREL19 if r.a == 0 => {
            let insn = read_insn(section, off)?;
            if matches(insn, LDR_X_LIT) {
                if let Ok(v) = signed(s_a_p(r), 21) {
                    let adr = ADR | adr_bits(v) | (insn & 0x1f);
                    return store(section, off, 4, i128::from(adr)).map(relative);
                }
                // The slot where it is allowed and in reach, else the stub.
                let slot_reach = slot(r).and_then(|s| signed(diff(s, p)? >> 2, 19));
                if let Some(at) = r.stub.filter(|_| r.pic || slot_reach.is_err()) {
                    return out_of_line(section, r, at);
                }
            }
        }
        R_AARCH64_LD64_GOTPAGE_LO15 if r.a == 0 && r.pic => {
            if let Some(at) = r.stub {
                if matches(read_insn(section, off)?, LDR_X_IMM) {
                    return out_of_line(section, r, at);
                }
            }
        }
        R_AARCH64_JUMP26 | R_AARCH64_CALL26 => {
            let direct = signed(aligned(s_a_p(r), 4)? >> 2, 26);
            let v = match (direct, r.stub) {
                (Ok(v), _) => v,
                (Err(e), None) => return Err(e),
                (Err(_), Some(at)) => {
                    // A veneer: the call reaches the stub, the stub the target.
                    let code = stub(at, 16, s_a(r), |_| Ok(BR_X16))?;
                    let v = signed(exact(at, 0, r.p) >> 2, 26)?;
                    patch(section, off, 0x3ff_ffff, low32(v) & 0x3ff_ffff)?;
                    return Ok(Applied {
                        value: Value::Relative,
                        stub: Some(code),
                    });
                }
            };
            return patch(section, off, 0x3ff_ffff, low32(v) & 0x3ff_ffff).map(relative);
        }
        _ => {}
    }
    apply_plain(section, r)?;
    Ok(Applied {
        value: value(r.rtype),
        stub: None,
    })
}

/// Applies a relocation as written (no relaxation, no stub).
fn apply_plain(section: &mut [u8], r: &Input) -> Result<(), RelocProblem> {
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
        R_AARCH64_ADR_PREL_PG_HI21 => adr_imm(section, off, page_delta(s_a(r), p)?),
        R_AARCH64_ADR_PREL_PG_HI21_NC => adr_imm(section, off, diff(page(s_a(r)), page(p))? >> 12),
        R_AARCH64_ADD_ABS_LO12_NC | R_AARCH64_LDST8_ABS_LO12_NC => imm12(section, off, s_a(r)),
        R_AARCH64_LDST16_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 2)? >> 1),
        R_AARCH64_LDST32_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 4)? >> 2),
        R_AARCH64_LDST64_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 8)? >> 3),
        R_AARCH64_LDST128_ABS_LO12_NC => imm12(section, off, aligned(s_a(r) & 0xfff, 16)? >> 4),
        R_AARCH64_TSTBR14 => {
            let v = signed(aligned(s_a_p(r), 4)? >> 2, 14)?;
            patch(section, off, 0x3fff << 5, (low32(v) & 0x3fff) << 5)
        }
        R_AARCH64_CONDBR19 => {
            let v = signed(aligned(s_a_p(r), 4)? >> 2, 19)?;
            patch(section, off, 0x7ffff << 5, (low32(v) & 0x7ffff) << 5)
        }
        R_AARCH64_ADR_GOT_PAGE => adr_imm(section, off, page_delta(slot(r)?, p)?),
        R_AARCH64_LD64_GOT_LO12_NC => imm12(section, off, aligned(slot(r)? & 0xfff, 8)? >> 3),
        R_AARCH64_LD64_GOTPAGE_LO15 => {
            let v = aligned(diff(slot(r)?, page(i128::from(r.got)))?, 8)?;
            let v = super::unsigned(v, 15)?;
            imm12(section, off, v >> 3)
        }
        R_AARCH64_GOT_LD_PREL19 => {
            let v = signed(aligned(diff(slot(r)?, p)?, 4)? >> 2, 19)?;
            patch(section, off, 0x7ffff << 5, (low32(v) & 0x7ffff) << 5)
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
            stub: None,
            pic: false,
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
        // Through the dispatcher, the error names the place and the target.
        assert_eq!(
            crate::reloc::apply(crate::Arch::Aarch64, &mut bl, &far),
            Err(RelocProblem::Overflow {
                value: 1 << 25,
                bits: 26,
                place: 0x1000,
            })
        );
        assert_eq!(
            crate::reloc::apply(crate::Arch::Aarch64, &mut bl, &far)
                .unwrap_err()
                .to_string(),
            "value 33554432 does not fit the 26-bit field (place 0x1000)"
        );
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

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn relaxes_the_fpic_got_pair() {
        // adrp x1, :got:sym ; ldr x2, [x1, :got_lo12:sym]
        let mut adrp = 0x9000_0001u32.to_le_bytes();
        let mut ldr = 0xf940_0022u32.to_le_bytes();
        let r = apply(
            &mut adrp,
            &input(R_AARCH64_ADR_GOT_PAGE, 0x12_3456, 0x10_0000),
        )
        .unwrap();
        assert_eq!(r.value, Value::Relative);
        let insn = u32::from_le_bytes(adrp);
        assert_eq!(((insn >> 29) & 3) | (((insn >> 5) & 0x7ffff) << 2), 0x23);
        let r = apply(
            &mut ldr,
            &input(R_AARCH64_LD64_GOT_LO12_NC, 0x12_3456, 0x10_0004),
        )
        .unwrap();
        assert_eq!(r.value, Value::Relative);
        // add x2, x1, #0x456
        assert_eq!(
            u32::from_le_bytes(ldr),
            0x9100_0000 | (0x456 << 10) | (1 << 5) | 2
        );
        // A symbol more than 2 GiB from the GOT keeps the slot (absolute).
        let far = 0x10_0000 + (3u64 << 30);
        let mut ldr = 0xf940_0022u32.to_le_bytes();
        let r = apply(&mut ldr, &input(R_AARCH64_LD64_GOT_LO12_NC, far, 0x10_0004)).unwrap();
        assert_eq!(r.value, Value::Absolute);
        assert_eq!((u32::from_le_bytes(ldr) >> 10) & 0xfff, 0x10 >> 3);
        // Relaxing a pair whose second half is not a 64-bit ldr is refused.
        let mut str_ = 0xf900_0022u32.to_le_bytes();
        assert_eq!(
            apply(&mut str_, &input(R_AARCH64_LD64_GOT_LO12_NC, 0x12_3456, 0)),
            Err(RelocProblem::Instruction(0xf900_0022))
        );
    }

    #[test]
    fn got_ld_prel19_becomes_adr_or_reads_the_slot() {
        // ldr x3, :got:sym
        let mut ldr = 0x5800_0003u32.to_le_bytes();
        let r = apply(
            &mut ldr,
            &input(R_AARCH64_GOT_LD_PREL19, 0x10_0100, 0x10_0000),
        )
        .unwrap();
        assert_eq!(r.value, Value::Relative);
        // adr x3, #0x100
        assert_eq!(u32::from_le_bytes(ldr), 0x1000_0003 | (0x40 << 5));
        let mut ldr = 0x5800_0003u32.to_le_bytes();
        let r = apply(
            &mut ldr,
            &input(R_AARCH64_GOT_LD_PREL19, 0x1000_0000, 0x10_0000),
        )
        .unwrap();
        assert_eq!(r.value, Value::Absolute);
        assert_eq!(u32::from_le_bytes(ldr), 0x5800_0003 | ((0x10 >> 2) << 5));
    }

    #[test]
    fn gotpage_lo15_goes_out_of_line_on_pic_targets() {
        // ldr x4, [x0, #:gotpage_lo15:sym] at 0x1000, stub at 0x2000
        let mut ldr = 0xf940_0004u32.to_le_bytes();
        let r = Input {
            stub: Some(0x2000),
            pic: true,
            ..input(R_AARCH64_LD64_GOTPAGE_LO15, 0x12_3456, 0x1000)
        };
        let out = apply(&mut ldr, &r).unwrap();
        assert_eq!(out.value, Value::Relative);
        assert_eq!(u32::from_le_bytes(ldr), 0x1400_0000 | (0x1000 >> 2));
        let code = out.stub.unwrap();
        let adrp = word(&code, 0);
        assert_eq!(adrp & 0x9f00_001f, 0x9000_0004);
        assert_eq!(((adrp >> 29) & 3) | (((adrp >> 5) & 0x7ffff) << 2), 0x121);
        assert_eq!(word(&code, 4), 0x9100_0000 | (0x456 << 10) | (4 << 5) | 4);
        // b 0x1004 from 0x2008
        assert_eq!(
            word(&code, 8),
            0x1400_0000 | ((-(0x1004i32) >> 2) as u32 & 0x3ff_ffff)
        );
    }

    #[test]
    fn far_calls_go_through_a_veneer() {
        let far = 0x1000 + (200u64 << 20);
        let mut bl = 0x9400_0000u32.to_le_bytes();
        let r = Input {
            stub: Some(0x3000),
            ..input(R_AARCH64_CALL26, far, 0x1000)
        };
        let out = apply(&mut bl, &r).unwrap();
        assert_eq!(u32::from_le_bytes(bl), 0x9400_0000 | (0x2000 >> 2));
        let code = out.stub.unwrap();
        assert_eq!(word(&code, 0) & 0x9f00_001f, 0x9000_0010);
        assert_eq!(word(&code, 4), 0x9100_0000 | (16 << 5) | 16);
        assert_eq!(word(&code, 8), 0xd61f_0200);
        // In reach: a direct call, no veneer.
        let near = Input {
            stub: Some(0x3000),
            ..input(R_AARCH64_CALL26, 0x2000, 0x1000)
        };
        assert_eq!(apply(&mut bl, &near).unwrap().stub, None);
    }
}
