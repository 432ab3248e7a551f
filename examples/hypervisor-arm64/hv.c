/*
 * hv.c - the AArch64 twin of examples/hypervisor: the same toy image, built
 * by aarch64-linux-gnu-gcc. The C is architecture-neutral (the arena fill
 * byte 0xcc is `int3` on x86-64 and only filler here: nothing executes the
 * unused arena), so this file reuses it rather than copying it.
 */
#include "../hypervisor/hv.c"
