/*
 * A v1 payload whose replacement calls printf() and fputs() on stderr: in a
 * dynamically linked executable they live in libc.so, whose address is
 * unknown when patching; the executable's own calls go through its PLT
 * entries, and so do the payload's. `stderr` is the executable's copy of
 * libc's (a copy relocation, `stderr@GLIBC_2.2.5` in its .symtab). An
 * executable linked with -fno-plt has no PLT entries: the payload is
 * refused.
 * Build: gcc -O2 -fpic -c -DCOMPUTE_SIZE=.. payload_import.c
 */
#include <stdio.h>
#include "xsplice_wire.h"

extern int scale;

static int said;

int new_compute(int x) {
    if (!said) {
        said = 1;
        printf("payload called with %d\n", x);
        fputs("payload: on stderr\n", stderr);
    }
    return x * scale * 10 + 1;
}

XSPLICE_FUNCS struct xsplice_patch_func_v1 xsplice_funcs[] = {
    {.new_addr = (void *)new_compute, .new_size = 5, .old_size = COMPUTE_SIZE, .name = "compute"},
};
