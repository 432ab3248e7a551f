//! The bytes written at a patch site, per architecture.
//!
//! x86-64 redirects with a 5-byte `jmp rel32` (`e9`, ±2 GiB) and NOPs out
//! with the recommended multi-byte NOP forms; AArch64 redirects with a
//! 4-byte `b imm26` (±128 MiB) and NOPs with `nop` (`d503201f`). An AArch64
//! destination out of `b` range is reached from a function's entry by the
//! 12-byte [`LONG_JUMP_AARCH64`] sequence `adrp x16, dest; add x16, x16,
//! :lo12:dest; br x16` (±4 GiB) when the old function has the room: x16
//! (IP0) may be clobbered at a function's entry, since any call may go
//! through a linker veneer, but not in the middle of a function, so a site
//! past the entry (`PATCH_OFFSET`) never gets it.

use alloc::vec::Vec;

use crate::reloc::{exact, low32};
use crate::{Addr, Arch};

/// Why the patch bytes for a site cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The new code is out of the branch's range from the site.
    #[error("new code at {dest} is out of {arch} branch range from the site {site}")]
    OutOfRange {
        /// The site.
        site: Addr,
        /// The destination.
        dest: Addr,
        /// Architecture.
        arch: Arch,
    },
    /// A branch site or destination is misaligned (AArch64: 4 bytes).
    #[error("site {site} or destination {dest} is not 4-byte aligned")]
    Misaligned {
        /// The site.
        site: Addr,
        /// The destination.
        dest: Addr,
    },
    /// The new code is out of `b` range and the old function has no room
    /// for the long sequence at its entry.
    #[error("new code at {dest} is out of aarch64 branch range (±128 MiB) from the site {site}, and the long branch (adrp x16; add x16; br x16) needs {needed} bytes at the function's entry: {room} available (none past the entry)")]
    NoRoomForLongJump {
        /// The site.
        site: Addr,
        /// The destination.
        dest: Addr,
        /// Bytes the long sequence needs.
        needed: u64,
        /// Bytes of the old function from the site (0 past its entry).
        room: u64,
    },
    /// A NOP length that is not a whole number of instructions.
    #[error("cannot NOP out {len} bytes on {arch}")]
    NopLength {
        /// The length.
        len: u64,
        /// Architecture.
        arch: Arch,
    },
}

/// The bytes that redirect execution from `site` to `dest`.
///
/// ```
/// use xsplice_loader::{patch::jump, Addr, Arch};
/// assert_eq!(jump(Arch::X86_64, Addr(0x1000), Addr(0x2000)).unwrap(), [0xe9, 0xfb, 0x0f, 0, 0]);
/// assert_eq!(jump(Arch::Aarch64, Addr(0x1000), Addr(0x2000)).unwrap(), 0x1400_0400u32.to_le_bytes());
/// ```
pub fn jump(arch: Arch, site: Addr, dest: Addr) -> Result<Vec<u8>, PatchError> {
    let out_of_range = PatchError::OutOfRange { site, dest, arch };
    match arch {
        Arch::X86_64 => {
            // From the end of the five-byte `jmp rel32`.
            let rel = i32::try_from(exact(dest.0, -5, site.0)).map_err(|_| out_of_range)?;
            let mut bytes = alloc::vec![0xe9];
            bytes.extend_from_slice(&rel.to_le_bytes());
            Ok(bytes)
        }
        Arch::Aarch64 => {
            if site.0 % 4 != 0 || dest.0 % 4 != 0 {
                return Err(PatchError::Misaligned { site, dest });
            }
            let words = exact(dest.0, 0, site.0) / 4;
            if !(-(1i128 << 25)..(1i128 << 25)).contains(&words) {
                return Err(out_of_range);
            }
            let insn = 0x1400_0000u32 | (low32(words) & 0x03ff_ffff);
            Ok(insn.to_le_bytes().to_vec())
        }
    }
}

/// Bytes of the AArch64 long branch (`adrp x16; add x16; br x16`).
pub const LONG_JUMP_AARCH64: u64 = 12;

/// Like [`jump`], but an AArch64 destination out of `b` range gets the
/// [`LONG_JUMP_AARCH64`] sequence when `room` allows: `room` is the old
/// function's size when `site` is its entry, and 0 for a site past it.
///
/// ```
/// use xsplice_loader::{patch::jump_with_room, Addr, Arch};
/// let far = Addr(0x1000 + (256 << 20));
/// assert_eq!(jump_with_room(Arch::Aarch64, Addr(0x1000), far, 16).unwrap().len(), 12);
/// assert!(jump_with_room(Arch::Aarch64, Addr(0x1000), far, 8).is_err());
/// ```
pub fn jump_with_room(
    arch: Arch,
    site: Addr,
    dest: Addr,
    room: u64,
) -> Result<Vec<u8>, PatchError> {
    match jump(arch, site, dest) {
        Err(PatchError::OutOfRange { .. }) if arch == Arch::Aarch64 => {
            let no_room = PatchError::NoRoomForLongJump {
                site,
                dest,
                needed: LONG_JUMP_AARCH64,
                room,
            };
            if room < LONG_JUMP_AARCH64 {
                return Err(no_room);
            }
            let pages = exact(dest.0 & !0xfff, 0, site.0 & !0xfff) >> 12;
            if !(-(1i128 << 20)..(1i128 << 20)).contains(&pages) {
                return Err(PatchError::OutOfRange { site, dest, arch });
            }
            let imm = low32(pages);
            let words = [
                // adrp x16, dest
                0x9000_0010 | ((imm & 3) << 29) | (((imm >> 2) & 0x7ffff) << 5),
                // add x16, x16, :lo12:dest
                0x9100_0210 | ((low32(dest.0.into()) & 0xfff) << 10),
                // br x16
                0xd61f_0200,
            ];
            Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
        }
        other => other,
    }
}

/// The most bytes a NOP record may write ([`nops`] refuses more, and the
/// loader refuses such a record at load). Xen's own limit is far smaller
/// (its patch buffer); 4 KiB covers any function body worth NOPing out.
pub const MAX_NOP: u64 = 4096;

/// `len` bytes of NOPs, at most [`MAX_NOP`].
///
/// ```
/// use xsplice_loader::{patch::nops, Arch};
/// assert_eq!(nops(Arch::X86_64, 3).unwrap(), [0x0f, 0x1f, 0x00]);
/// assert!(nops(Arch::Aarch64, 6).is_err());
/// ```
pub fn nops(arch: Arch, len: u64) -> Result<Vec<u8>, PatchError> {
    if len > MAX_NOP {
        return Err(PatchError::NopLength { len, arch });
    }
    let n = usize::try_from(len).map_err(|_| PatchError::NopLength { len, arch })?;
    match arch {
        Arch::X86_64 => {
            // Intel SDM's recommended NOPs of 1 to 8 bytes.
            const NOPS: [&[u8]; 8] = [
                &[0x90],
                &[0x66, 0x90],
                &[0x0f, 0x1f, 0x00],
                &[0x0f, 0x1f, 0x40, 0x00],
                &[0x0f, 0x1f, 0x44, 0x00, 0x00],
                &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
                &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
                &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
            ];
            // The longest as often as it fits, then the one for the rest.
            let [.., longest] = NOPS;
            let mut out = longest.repeat(n / 8);
            if let Some(rest) = (n % 8).checked_sub(1).and_then(|i| NOPS.get(i)) {
                out.extend_from_slice(rest);
            }
            Ok(out)
        }
        Arch::Aarch64 => {
            if n % 4 != 0 {
                return Err(PatchError::NopLength { len, arch });
            }
            Ok(0xd503_201fu32.to_le_bytes().repeat(n / 4))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let far = Addr(0x1000 + (1u64 << 31) + 8);
        assert!(matches!(
            jump(Arch::X86_64, Addr(0x1000), far),
            Err(PatchError::OutOfRange { .. })
        ));
        // The furthest forward jump: rel32 = i32::MAX.
        let max = Addr(0x1000 + 5 + i32::MAX as u64);
        assert_eq!(
            &jump(Arch::X86_64, Addr(0x1000), max).unwrap()[1..],
            &i32::MAX.to_le_bytes()
        );
        let back = jump(Arch::Aarch64, Addr(0x10_0000), Addr(0x0f_fffc)).unwrap();
        assert_eq!(back, 0x17ff_ffffu32.to_le_bytes());
        assert!(jump(Arch::Aarch64, Addr(0), Addr(128 << 20)).is_err());
        assert!(jump(Arch::Aarch64, Addr(0), Addr((128 << 20) - 4)).is_ok());
    }

    #[test]
    fn long_jump_on_aarch64() {
        let site = Addr(0x40_1000);
        let dest = Addr(0x1040_2468);
        let b = jump_with_room(Arch::Aarch64, site, dest, 12).unwrap();
        let w = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let adrp = w(0);
        assert_eq!(adrp & 0x9f00_001f, 0x9000_0010);
        let pages = ((adrp >> 29) & 3) | (((adrp >> 5) & 0x7ffff) << 2);
        assert_eq!(u64::from(pages), (0x1040_2000 - 0x40_1000) >> 12);
        assert_eq!(w(4), 0x9100_0210 | (0x468 << 10));
        assert_eq!(w(8), 0xd61f_0200);
        assert_eq!(
            jump_with_room(Arch::Aarch64, site, dest, 0),
            Err(PatchError::NoRoomForLongJump {
                site,
                dest,
                needed: 12,
                room: 0
            })
        );
        // In range: the 4-byte branch whatever the room.
        assert_eq!(
            jump_with_room(Arch::Aarch64, site, Addr(0x40_2000), 64)
                .unwrap()
                .len(),
            4
        );
        // x86-64 is unchanged.
        assert!(jump_with_room(Arch::X86_64, site, Addr(1 << 40), 64).is_err());
    }

    #[test]
    fn nops_are_bounded() {
        assert!(nops(Arch::X86_64, MAX_NOP).is_ok());
        assert_eq!(
            nops(Arch::X86_64, u64::MAX),
            Err(PatchError::NopLength {
                len: u64::MAX,
                arch: Arch::X86_64
            })
        );
    }

    #[test]
    fn nop_lengths() {
        for n in 0..40u64 {
            assert_eq!(nops(Arch::X86_64, n).unwrap().len() as u64, n);
        }
        assert_eq!(
            nops(Arch::Aarch64, 8).unwrap(),
            [0x1f, 0x20, 0x03, 0xd5, 0x1f, 0x20, 0x03, 0xd5]
        );
    }
}
