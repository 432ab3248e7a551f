//! x86-64 relocations (psABI), including the GOT forms gcc emits for
//! `-fpic` and for the large code model.
//!
//! GOTPCRELX/REX_GOTPCRELX are relaxed the way a linker would when the
//! symbol is within ±2 GiB: `mov foo@GOTPCREL(%rip), %reg` becomes
//! `lea foo(%rip), %reg`, `call *foo@GOTPCREL(%rip)` becomes
//! `addr32 call foo`, and `jmp *foo@GOTPCREL(%rip)` becomes `jmp foo; nop`.
//! Other forms, and symbols out of range, use the GOT slot the loader built.

use goblin::elf::reloc::*;

use super::{exact, place, place_mut, s_a, s_a_p, signed, store, unsigned, GotUse, Input, Value};
use crate::error::RelocProblem;

pub(crate) fn got_use(rtype: u32) -> GotUse {
    match rtype {
        R_X86_64_GOTPCREL
        | R_X86_64_GOTPCRELX
        | R_X86_64_REX_GOTPCRELX
        | R_X86_64_GOT64
        | R_X86_64_GOTPCREL64
        | R_X86_64_GOT32 => GotUse::Slot,
        R_X86_64_GOTPC64 | R_X86_64_GOTOFF64 | R_X86_64_PLTOFF64 | R_X86_64_GOTPC32 => GotUse::Base,
        _ => GotUse::None,
    }
}

pub(crate) fn rel_width(rtype: u32) -> Option<usize> {
    match rtype {
        R_X86_64_64 | R_X86_64_PC64 => Some(8),
        R_X86_64_32 | R_X86_64_32S | R_X86_64_PC32 | R_X86_64_PLT32 => Some(4),
        _ => None,
    }
}

fn slot(r: &Input) -> Result<u64, RelocProblem> {
    r.slot.ok_or(RelocProblem::Unsupported(r.rtype))
}

/// Tries the linker relaxation of a GOTPCRELX form; `Ok(true)` if done.
fn relax(section: &mut [u8], r: &Input, rex: bool) -> Result<bool, RelocProblem> {
    let Ok(disp) = signed(s_a_p(r), 32) else {
        return Ok(false);
    };
    let Some(at) = r.offset.checked_sub(2) else {
        return Ok(false);
    };
    let (op, modrm) = match place(section, at, 2)? {
        [op, modrm] => (*op, *modrm),
        _ => return Ok(false),
    };
    match (op, modrm, rex) {
        // mov disp(%rip), %reg64 -> lea disp(%rip), %reg64
        (0x8b, m, true) if m & 0xc7 == 0x05 => {
            place_mut(section, at, 1)?.copy_from_slice(&[0x8d]);
            store(section, r.offset, 4, disp)?;
            Ok(true)
        }
        // call *disp(%rip) -> addr32 call rel32
        (0xff, 0x15, false) => {
            place_mut(section, at, 2)?.copy_from_slice(&[0x67, 0xe8]);
            store(section, r.offset, 4, disp)?;
            Ok(true)
        }
        // jmp *disp(%rip) -> jmp rel32; nop  (the jump now starts one byte earlier)
        (0xff, 0x25, false) => {
            // The displacement is from the end of the instruction, one
            // byte earlier than the end of `jmp *disp(%rip)`'s.
            let Some(disp) = s_a_p(r).checked_add(1).and_then(|v| signed(v, 32).ok()) else {
                return Ok(false);
            };
            // `at` is `r.offset - 2`, so neither end can wrap.
            let (rel, nop) = (r.offset.checked_sub(1), r.offset.checked_add(3));
            let (Some(rel), Some(nop)) = (rel, nop) else {
                return Ok(false);
            };
            place_mut(section, at, 1)?.copy_from_slice(&[0xe9]);
            store(section, rel, 4, disp)?;
            place_mut(section, nop, 1)?.copy_from_slice(&[0x90]);
            Ok(true)
        }
        _ => Ok(false),
    }
}

pub(crate) fn apply(section: &mut [u8], r: &Input) -> Result<Value, RelocProblem> {
    let off = r.offset;
    match r.rtype {
        R_X86_64_NONE => return Ok(Value::Relative),
        R_X86_64_64 => store(section, off, 8, s_a(r))?,
        R_X86_64_32 => store(section, off, 4, unsigned(s_a(r), 32)?)?,
        R_X86_64_32S => store(section, off, 4, signed(s_a(r), 32)?)?,
        R_X86_64_GOTPCREL => store(section, off, 4, signed(exact(slot(r)?, r.a, r.p), 32)?)?,
        R_X86_64_GOTPCRELX | R_X86_64_REX_GOTPCRELX => {
            if relax(section, r, r.rtype == R_X86_64_REX_GOTPCRELX)? {
                return Ok(Value::Relative);
            }
            store(section, off, 4, signed(exact(slot(r)?, r.a, r.p), 32)?)?
        }
        R_X86_64_GOTPCREL64 => store(section, off, 8, exact(slot(r)?, r.a, r.p))?,
        R_X86_64_GOT32 => store(section, off, 4, signed(exact(slot(r)?, r.a, r.got), 32)?)?,
        R_X86_64_GOT64 => store(section, off, 8, exact(slot(r)?, r.a, r.got))?,
        // Distances only: right wherever the image is loaded.
        R_X86_64_PC32 | R_X86_64_PLT32 => {
            store(section, off, 4, signed(s_a_p(r), 32)?)?;
            return Ok(Value::Relative);
        }
        R_X86_64_PC64 => {
            store(section, off, 8, s_a_p(r))?;
            return Ok(Value::Relative);
        }
        R_X86_64_GOTPC32 => {
            store(section, off, 4, signed(exact(r.got, r.a, r.p), 32)?)?;
            return Ok(Value::Relative);
        }
        R_X86_64_GOTPC64 => {
            store(section, off, 8, exact(r.got, r.a, r.p))?;
            return Ok(Value::Relative);
        }
        // The loader builds no PLT: a PLT entry's address is the symbol's.
        R_X86_64_GOTOFF64 | R_X86_64_PLTOFF64 => {
            store(section, off, 8, exact(r.s, r.a, r.got))?;
            return Ok(Value::Relative);
        }
        t => return Err(RelocProblem::Unsupported(t)),
    }
    // Every arm that falls through stored an absolute address or made the
    // code read one from a GOT slot.
    Ok(Value::Absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(rtype: u32, offset: u64, s: u64, a: i64, p: u64) -> Input {
        Input {
            rtype,
            offset,
            s,
            a,
            p,
            got: 0x9000,
            slot: Some(0x9008),
            stub: None,
            pic: false,
        }
    }

    #[test]
    fn pc32_and_overflow() {
        let mut sec = [0u8; 8];
        apply(&mut sec, &input(R_X86_64_PC32, 2, 0x1000, -4, 0x2000)).unwrap();
        assert_eq!(&sec[2..6], &(-0x1004i32).to_le_bytes());
        let err = apply(&mut sec, &input(R_X86_64_PC32, 2, 0x1_0000_0000, 0, 0)).unwrap_err();
        assert_eq!(
            err,
            RelocProblem::Overflow {
                value: 0x1_0000_0000,
                bits: 32,
                place: 0,
            }
        );
        let err = apply(&mut sec, &input(R_X86_64_64, 4, 1, 0, 0)).unwrap_err();
        assert_eq!(
            err,
            RelocProblem::Place {
                offset: 4,
                width: 8
            }
        );
    }

    #[test]
    fn relaxes_mov_call_jmp() {
        // 48 8b 05 <disp32>: mov foo@GOTPCREL(%rip), %rax
        let mut mov = [0x48, 0x8b, 0x05, 0, 0, 0, 0];
        apply(
            &mut mov,
            &input(R_X86_64_REX_GOTPCRELX, 3, 0x5000, -4, 0x1003),
        )
        .unwrap();
        assert_eq!(mov[1], 0x8d);
        assert_eq!(&mov[3..], &(0x5000i32 - 4 - 0x1003).to_le_bytes());
        // ff 15 <disp32>: call *foo@GOTPCREL(%rip)
        let mut call = [0xff, 0x15, 0, 0, 0, 0];
        apply(&mut call, &input(R_X86_64_GOTPCRELX, 2, 0x5000, -4, 0x1002)).unwrap();
        assert_eq!(&call[..2], &[0x67, 0xe8]);
        // ff 25 <disp32>: jmp *foo@GOTPCREL(%rip)
        let mut jmp = [0xff, 0x25, 0, 0, 0, 0];
        apply(&mut jmp, &input(R_X86_64_GOTPCRELX, 2, 0x5000, -4, 0x1002)).unwrap();
        assert_eq!(jmp[0], 0xe9);
        // jmp starts at 0x1000, ends at 0x1005.
        assert_eq!(&jmp[1..5], &(0x5000i32 - 0x1005).to_le_bytes());
        assert_eq!(jmp[5], 0x90);
        // add foo@GOTPCREL(%rip), %rax is not relaxed: uses the slot.
        let mut add = [0x48, 0x03, 0x05, 0, 0, 0, 0];
        apply(
            &mut add,
            &input(R_X86_64_REX_GOTPCRELX, 3, 0x5000, -4, 0x1003),
        )
        .unwrap();
        assert_eq!(add[1], 0x03);
        assert_eq!(&add[3..], &(0x9008i32 - 4 - 0x1003).to_le_bytes());
    }

    #[test]
    fn large_model() {
        let mut sec = [0u8; 8];
        apply(&mut sec, &input(R_X86_64_GOTPC64, 0, 0, 6, 0x1000)).unwrap();
        assert_eq!(sec, (0x9000i64 + 6 - 0x1000).to_le_bytes());
        apply(&mut sec, &input(R_X86_64_GOTOFF64, 0, 0x5000, 8, 0)).unwrap();
        assert_eq!(sec, (0x5008i64 - 0x9000).to_le_bytes());
        apply(&mut sec, &input(R_X86_64_GOT64, 0, 0x5000, 0, 0)).unwrap();
        assert_eq!(sec, 8i64.to_le_bytes());
    }
}
