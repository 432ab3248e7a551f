//! The ELF room: everything the loader and the writer know about ELF as
//! such, in one place. Reading a payload ([`PayloadElf`], on goblin, every
//! count and size bounded by the input first), note framing in both
//! directions ([`note`]), and the relocation numbers the format's own
//! sections use. The writer (feature `write`, on the `object` crate) frames
//! its notes and picks its relocation types here, so what it writes is
//! what the reader reads.

pub(crate) mod note;
mod read;

#[cfg(feature = "write")]
pub(crate) use read::check_header;
pub(crate) use read::PayloadElf;

use crate::Arch;

/// The plain 64-bit absolute relocation of a machine: the only one the
/// pointer fields of records and hooks may carry (SPEC §3).
pub(crate) const fn abs64(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => goblin::elf::reloc::R_X86_64_64,
        Arch::Aarch64 => goblin::elf::reloc::R_AARCH64_ABS64,
    }
}

/// The 32-bit PC-relative relocation of a machine: the only one the
/// `rel32` fields of the architecture tables may carry (SPEC §17).
pub(crate) const fn rel32(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => goblin::elf::reloc::R_X86_64_PC32,
        Arch::Aarch64 => goblin::elf::reloc::R_AARCH64_PREL32,
    }
}
