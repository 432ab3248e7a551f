//! Hand-assembled functions for the live tests and the pause benchmark,
//! whose exact bytes matter (`#[path]`-included: the names are global).
//! Each is padded to 16 bytes (`int3` on x86-64, zeros, `udf`, on
//! AArch64, where the last takes 32), its symbol size. The AArch64 twins keep the roles with 4-byte instructions
//! and a 4-byte patch: a PC is never inside a site, only at it or past it.
#![allow(dead_code)]

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.xsplice_asm,\"ax\",@progbits",
    // (b) The first instruction is exactly the 5 bytes of the patch.
    ".p2align 4",
    ".globl xsplice_stress_mov",
    ".type xsplice_stress_mov,@function",
    "xsplice_stress_mov:",
    "mov eax, 41",
    "ret",
    ".p2align 4, 0xcc",
    ".size xsplice_stress_mov, .-xsplice_stress_mov",
    // (c) The entry is a hot loop of exactly 5 bytes: threads sit at +0
    // and +3 (between `dec` and `jnz`).
    ".globl xsplice_stress_loop",
    ".type xsplice_stress_loop,@function",
    "xsplice_stress_loop:",
    "2:",
    "dec rdi",
    "jnz 2b",
    "mov eax, 41",
    "ret",
    ".p2align 4, 0xcc",
    ".size xsplice_stress_loop, .-xsplice_stress_loop",
    // Spins at +1 and +4, both inside the 5 patched bytes, while the byte
    // at `rdi` is non-zero.
    ".globl xsplice_stress_spin",
    ".type xsplice_stress_spin,@function",
    "xsplice_stress_spin:",
    "nop",
    "2:",
    "cmp byte ptr [rdi], 0",
    "jne 2b",
    "mov eax, 41",
    "ret",
    ".p2align 4, 0xcc",
    ".size xsplice_stress_spin, .-xsplice_stress_spin",
    // Spins at +5 and +8, past the patched bytes but inside the function,
    // while the byte at `rdi` is non-zero.
    ".globl xsplice_stress_wait",
    ".type xsplice_stress_wait,@function",
    "xsplice_stress_wait:",
    "mov eax, 41",
    "2:",
    "cmp byte ptr [rdi], 0",
    "jne 2b",
    "ret",
    ".p2align 4, 0xcc",
    ".size xsplice_stress_wait, .-xsplice_stress_wait",
    ".popsection",
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.xsplice_asm,\"ax\",@progbits",
    // (b) The first instruction is exactly the 4 bytes of the patch.
    ".p2align 4",
    ".globl xsplice_stress_mov",
    ".type xsplice_stress_mov,@function",
    "xsplice_stress_mov:",
    "mov x0, #41",
    "ret",
    ".p2align 4, 0",
    ".size xsplice_stress_mov, .-xsplice_stress_mov",
    // (c) The entry is a hot loop: threads sit at +0 (the site) and +4.
    ".globl xsplice_stress_loop",
    ".type xsplice_stress_loop,@function",
    "xsplice_stress_loop:",
    "2:",
    "subs x0, x0, #1",
    "b.ne 2b",
    "mov x0, #41",
    "ret",
    ".size xsplice_stress_loop, .-xsplice_stress_loop",
    // Spins at +0 (the site) and +4 while the byte at `x0` is non-zero.
    ".p2align 4",
    ".globl xsplice_stress_spin",
    ".type xsplice_stress_spin,@function",
    "xsplice_stress_spin:",
    "2:",
    "ldrb w1, [x0]",
    "cbnz w1, 2b",
    "mov x0, #41",
    "ret",
    ".size xsplice_stress_spin, .-xsplice_stress_spin",
    // Spins at +4 and +8, past the patched bytes but inside the function,
    // while the byte at `x0` is non-zero.
    ".p2align 4",
    ".globl xsplice_stress_wait",
    ".type xsplice_stress_wait,@function",
    "xsplice_stress_wait:",
    "mov x2, #41",
    "2:",
    "ldrb w1, [x0]",
    "cbnz w1, 2b",
    "mov x0, x2",
    "ret",
    ".p2align 4, 0",
    ".size xsplice_stress_wait, .-xsplice_stress_wait",
    ".popsection",
);

extern "C" {
    /// `mov eax, 41; ret` (`mov x0, #41; ret`).
    pub fn xsplice_stress_mov() -> i64;
    /// Loops `n` times (`n >= 1`), returns 41.
    pub fn xsplice_stress_loop(n: u64) -> i64;
    /// Spins inside its first 5 bytes (x86-64), or at and past its first 4
    /// (AArch64), while `*flag != 0`, returns 41.
    pub fn xsplice_stress_spin(flag: *const u8) -> i64;
    /// Spins past its first patch-size bytes while `*flag != 0`, returns 41.
    pub fn xsplice_stress_wait(flag: *const u8) -> i64;
}

/// The address of a function, for reading its bytes and comparing PCs.
pub fn addr_of(f: *const ()) -> u64 {
    f as u64
}
