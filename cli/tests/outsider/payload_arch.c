/*
 * A format 2.1 payload (v2 records, incompat ARCH in the note) with an
 * alternative written as DESIGN.md's "format minor .1" describes: the
 * replacement adds 1, or 2 when the CPU has POPCNT (feature 1). With
 * -DEX_TABLE it also carries an exception-table entry, which neither an
 * offline image nor a process patched by PID can honour.
 * Build: gcc -O2 -fpic -c -DCOMPUTE_SIZE=.. [-DEX_TABLE] payload_arch.c
 */
#include "xsplice_wire.h"

#define XSPLICE_INCOMPAT_ARCH (1u << 4)

extern int scale;

int new_compute(int x) {
    int add;
    __asm__(/* orig: mov $1, %eax (5 bytes); repl: mov $2, %eax */
            "1: movl $1, %0\n"
            "2:\n"
            ".pushsection .xsplice.altinstr_replacement,\"ax\",@progbits\n"
            "3: movl $2, %0\n"
            "4:\n"
            ".popsection\n"
            ".pushsection .xsplice.altinstructions,\"a\",@progbits\n"
            ".balign 4\n"
            ".long 1b - .\n"
            ".long 3b - .\n"
            ".short 1\n"            /* feature 1: POPCNT, when present */
            ".byte 2b - 1b\n"       /* orig_len */
            ".byte 4b - 3b\n"       /* repl_len */
            ".popsection\n"
            : "=a"(add));
#ifdef EX_TABLE
    int v = 0;
    __asm__ volatile("5: movl 8, %0\n6:\n"
                     ".pushsection .xsplice.ex_table,\"a\",@progbits\n"
                     ".balign 4\n.long 5b - .\n.long 6b - .\n.popsection\n"
                     : "+r"(v));
    add += v;
#endif
    return x * scale * 10 + add;
}

/* Format 2.1: v2 records, ARCH in the note only (never in a record). */
__attribute__((section(".note.xsplice"), aligned(4), used))
static const struct xsplice_abi_note xsplice_note = {
    8, 24, 1, "XSPLICE", 2, 1, 2, 64, XSPLICE_INCOMPAT_ARCH, 0, {0},
};

XSPLICE_FUNCS struct xsplice_patch_func_v2 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_compute,
        .new_size = 5,
        .old_size = COMPUTE_SIZE,
        .name = "compute",
        .version = 2,
        .size = 64,
    },
};
