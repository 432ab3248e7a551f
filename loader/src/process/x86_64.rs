//! What `ProcessTarget` does differently on x86-64: where a signal frame
//! keeps the PC, how a parked thread serialises, how code bytes are stored
//! and made visible to instruction fetch. The rendezvous, the checks and
//! the fault tables are the same on every machine (`super`).

use core::sync::atomic::{AtomicBool, Ordering};

use crate::Arch;

/// The machine.
pub(super) const ARCH: Arch = Arch::X86_64;

/// User-space addresses on x86-64 fit in 47 bits (unless a mapping was
/// asked for above them, with 5-level paging).
pub(super) const PC_BITS: u32 = 47;

/// The signal the bug-frame trap (`ud2`) raises.
pub(super) const TRAP_SIGNAL: libc::c_int = libc::SIGILL;

/// Code is written through `/proc/self/mem` where the kernel allows it, so
/// no page of code is ever writable (module doc of `super`).
pub(super) const PROC_MEM_WRITES: bool = true;

/// The interrupted program counter of a signal frame (`REG_RIP`).
pub(super) fn pc(uc: &libc::ucontext_t) -> u64 {
    uc.uc_mcontext
        .gregs
        .get(libc::REG_RIP as usize)
        .map_or(0, |&rip| rip as u64)
}

/// Makes the signal frame resume at `pc`.
pub(super) fn set_pc(uc: &mut libc::ucontext_t, pc: u64) {
    if let Some(rip) = uc.uc_mcontext.gregs.get_mut(libc::REG_RIP as usize) {
        *rip = pc as i64;
    }
}

/// Stores `bytes` at `addr`, one volatile byte store each: every byte of
/// the site is written exactly once, and no thread executes them (every
/// other thread is stopped outside the site), so the width does not matter.
///
/// # Safety
///
/// `[addr, addr + bytes.len())` must be mapped writable, and no Rust
/// reference may point into it.
pub(super) unsafe fn store_code(addr: u64, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        // SAFETY: the caller guarantees the range is writable memory that
        // no reference aliases.
        unsafe { core::ptr::write_volatile((addr as *mut u8).wrapping_add(i), b) };
    }
}

/// Nothing to do after a code write on x86-64: a write to code is detected
/// by the processor (SDM vol. 3A §11.6 "Self-Modifying Code"), and every
/// other thread serialises when it is released ([`serialize`]).
///
/// # Safety
///
/// None needed here; the AArch64 twin needs the range mapped readable, and
/// the callers guarantee it.
pub(super) unsafe fn sync_icache(_addr: u64, _len: usize) {}

/// What [`serialize`] needs to know, found once per process.
pub(super) fn init() {
    SHADOW_STACK.store(shadow_stack_enabled(), Ordering::Relaxed);
}

/// The process runs with user shadow stacks (CET), under which a
/// same-privilege `iretq` would pop a shadow-stack frame nobody pushed.
static SHADOW_STACK: AtomicBool = AtomicBool::new(false);

/// `arch_prctl(ARCH_SHSTK_STATUS)`: whether this thread has a shadow stack
/// (glibc enables it for every thread of a process, or for none).
fn shadow_stack_enabled() -> bool {
    const ARCH_SHSTK_STATUS: libc::c_int = 0x5005;
    const ARCH_SHSTK_SHSTK: u64 = 1;
    let mut features = 0u64;
    // SAFETY: ARCH_SHSTK_STATUS writes one u64 through the pointer; kernels
    // without shadow-stack support fail with EINVAL and write nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_SHSTK_STATUS,
            &mut features as *mut u64,
        )
    };
    rc == 0 && features & ARCH_SHSTK_SHSTK != 0
}

/// Executes a serialising instruction (Intel SDM vol. 3A §8.3
/// "Serializing Instructions"): `iretq` to the next instruction, which is
/// allowed at CPL 3 and, unlike `cpuid`, does not exit to a hypervisor;
/// `cpuid` under user shadow stacks.
pub(super) fn serialize() {
    if SHADOW_STACK.load(Ordering::Relaxed) {
        // SAFETY: cpuid leaf 0 only writes eax, ebx, ecx, edx; rbx, which
        // LLVM reserves, is saved and restored around it.
        unsafe {
            core::arch::asm!(
                "mov {t}, rbx",
                "cpuid",
                "mov rbx, {t}",
                t = out(reg) _,
                inout("eax") 0 => _,
                out("ecx") _,
                out("edx") _,
                options(nostack, preserves_flags),
            );
        }
        return;
    }
    // SAFETY: builds a 5-quadword interrupt frame on this thread's stack
    // describing the current state (same SS, the RSP before the pushes,
    // same RFLAGS, same CS, the label after `iretq`) and pops it with
    // `iretq`: control and every register but the scratch one continue
    // unchanged. The block uses the stack, so `nostack` is not given.
    unsafe {
        core::arch::asm!(
            "mov {t:e}, ss",
            "push {t}",
            "lea {t}, [rsp + 8]",
            "push {t}",
            "pushfq",
            "mov {t:e}, cs",
            "push {t}",
            "lea {t}, [rip + 2f]",
            "push {t}",
            "iretq",
            "2:",
            t = out(reg) _,
        );
    }
}
