//! What `ProcessTarget` does differently on AArch64: where a signal frame
//! keeps the PC, how a parked thread synchronises its instruction stream,
//! how code bytes are stored and made visible to instruction fetch. The
//! rendezvous, the checks and the fault tables are the same on every
//! machine (`super`).
//!
//! # Decisions
//!
//! * **Stores.** Every instruction word of a site is written with one
//!   aligned 32-bit store. A 4-byte `b` is then single-copy atomic (Arm ARM
//!   B2.2.1), and a `b`, like a `nop`, is one of the instructions the
//!   architecture lets another PE fetch while it is being rewritten (B2.2.5
//!   "Concurrent modification and execution of instructions"). The
//!   rendezvous stops every other thread anyway; the 12-byte long branch
//!   (`adrp x16; add x16; br x16`, `crate::patch::LONG_JUMP_AARCH64`) is
//!   three stores that no thread could see as a whole, and is only ever
//!   written that way: with every other thread stopped and none with its PC
//!   inside the 12 bytes (SPEC.md 11.2).
//! * **Through the mapping, not `/proc/self/mem`.** The page of a site is
//!   made read+write+execute for the write, while the other threads are
//!   stopped, and read+execute again before they run: the 32-bit stores
//!   above are this code's own, not whatever width the kernel's copy
//!   routine uses, and an emulator running the process (qemu-user, which
//!   CI uses) sees the store and drops the code it translated from that
//!   page, whereas a write through `/proc/self/mem` bypasses it and leaves
//!   the old translation running.
//! * **Cache maintenance.** AArch64 instruction fetch does not snoop data
//!   writes: after the stores, [`sync_icache`] cleans the data cache to the
//!   point of unification (`dc cvau`), `dsb ish`, invalidates the
//!   instruction cache (`ic ivau`, broadcast to the inner-shareable
//!   domain), `dsb ish`, `isb` (Arm ARM B2.4.4; SPEC.md 11.2), line by
//!   line with the line sizes of `CTR_EL0`, skipping a step its `IDC`/`DIC`
//!   bits say the hardware makes unnecessary. Freshly mapped payload text
//!   gets the same. Each parked thread executes `isb` when released
//!   ([`serialize`]), and returning from the signal handler (an exception
//!   return) is a context synchronisation event as well.
//! * **Reach.** Payload regions are placed nearest the executable's text
//!   first (`super`'s allocator), so a `b` (±128 MiB) reaches them from
//!   any site of an executable under about 100 MiB of text; beyond that the
//!   engine writes the long branch where the function has room, and the
//!   loader builds veneers for the payload's calls back into the
//!   executable.

use crate::Arch;

/// The machine.
pub(super) const ARCH: Arch = Arch::Aarch64;

/// User-space addresses on AArch64 Linux fit in 48 bits (52 only for a
/// mapping asked for above them); a PIE is loaded near `0xaaaa_0000_0000`,
/// above 47 bits.
pub(super) const PC_BITS: u32 = 48;

/// The signal the bug-frame trap (`brk #0x800`) raises.
pub(super) const TRAP_SIGNAL: libc::c_int = libc::SIGTRAP;

/// Code is written through its (briefly writable) mapping: see the module
/// doc.
pub(super) const PROC_MEM_WRITES: bool = false;

/// The interrupted program counter of a signal frame.
pub(super) fn pc(uc: &libc::ucontext_t) -> u64 {
    uc.uc_mcontext.pc
}

/// Makes the signal frame resume at `pc`.
pub(super) fn set_pc(uc: &mut libc::ucontext_t, pc: u64) {
    uc.uc_mcontext.pc = pc;
}

/// Stores `bytes` at `addr`: each aligned 4-byte instruction word with one
/// 32-bit store (module doc), a part that is not one (never for the
/// engine's writes, which are whole instructions at aligned sites) byte
/// by byte.
///
/// # Safety
///
/// `[addr, addr + bytes.len())` must be mapped writable, and no Rust
/// reference may point into it.
pub(super) unsafe fn store_code(addr: u64, bytes: &[u8]) {
    let mut at = addr;
    let mut rest = bytes;
    while !rest.is_empty() {
        let word = (at % 4 == 0).then(|| rest.first_chunk::<4>()).flatten();
        let step = if let Some(word) = word {
            // SAFETY: `at` is 4-aligned and the 4 bytes lie in the range
            // the caller guarantees writable and unaliased.
            unsafe { core::ptr::write_volatile(at as *mut u32, u32::from_le_bytes(*word)) };
            4
        } else {
            if let Some(&b) = rest.first() {
                // SAFETY: as above, one byte of the range.
                unsafe { core::ptr::write_volatile(at as *mut u8, b) };
            }
            1
        };
        at = at.wrapping_add(step as u64);
        rest = rest.get(step..).unwrap_or(&[]);
    }
}

/// `CTR_EL0`, the cache type register (readable at EL0 on Linux: the
/// kernel sets `SCTLR_EL1.UCT`, or traps and emulates the read).
fn cache_type() -> u64 {
    let ctr: u64;
    // SAFETY: reads a system register into a general register; no memory
    // access, no other effect.
    unsafe {
        core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags))
    };
    ctr
}

/// Makes the code just written at `[addr, addr + len)` visible to
/// instruction fetch on every PE (module doc).
///
/// # Safety
///
/// `[addr, addr + len)` must be mapped readable (a cache operation by
/// address on an unmapped one faults): code this target wrote or mapped.
pub(super) unsafe fn sync_icache(addr: u64, len: usize) {
    if len == 0 {
        return;
    }
    let ctr = cache_type();
    let end = addr.saturating_add(len as u64);
    // DminLine (bits 19:16) and IminLine (bits 3:0): log2 of the smallest
    // line, in 4-byte words.
    let dline = 4u64 << ((ctr >> 16) & 0xf);
    let iline = 4u64 << (ctr & 0xf);
    let idc = ctr & (1 << 28) != 0;
    let dic = ctr & (1 << 29) != 0;
    if !idc {
        for_each_line(addr, end, dline, |line| {
            // SAFETY: cleans one data-cache line by address to the point of
            // unification: no architectural change to memory contents; the
            // line lies in a readable mapping (the caller's guarantee), so
            // it cannot fault.
            unsafe {
                core::arch::asm!("dc cvau, {}", in(reg) line, options(nostack, preserves_flags))
            };
        });
    }
    // SAFETY: a barrier: no memory access of its own.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
    if !dic {
        for_each_line(addr, end, iline, |line| {
            // SAFETY: invalidates one instruction-cache line by address,
            // for every PE of the inner-shareable domain: it only makes
            // later fetches read memory; the line is mapped (as above).
            unsafe {
                core::arch::asm!("ic ivau, {}", in(reg) line, options(nostack, preserves_flags))
            };
        });
    }
    // SAFETY: barriers: no memory access of their own; `isb` flushes this
    // PE's pipeline so it fetches the new instructions.
    unsafe { core::arch::asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}

/// Calls `op` with the start of every `line`-byte cache line (`line` a
/// power of two) that `[addr, end)` touches.
fn for_each_line(addr: u64, end: u64, line: u64, mut op: impl FnMut(u64)) {
    // For a power of two, `-line` is the mask `!(line - 1)`.
    let mut at = addr & line.wrapping_neg();
    while at < end {
        op(at);
        at = at.saturating_add(line);
    }
}

/// Nothing to find out at start-up on AArch64.
pub(super) fn init() {}

/// A context synchronisation event (`isb`): this PE discards instructions
/// it fetched before the release, so it runs the new code (Arm ARM
/// B2.2.5: every PE that executes modified code issues an `isb` after the
/// modifying PE's maintenance completes).
pub(super) fn serialize() {
    // SAFETY: `isb` only synchronises this PE's context; no memory access.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}
