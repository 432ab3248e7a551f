/*
 * A v2 payload: replaces compute() and greet(), NOPs out bump()'s body.
 * Build: gcc -O2 -c -DCOMPUTE_SIZE=.. -DGREET_SIZE=.. -DBUMP_SIZE=.. payload_v2.c
 * (sizes from nm -S of the image; bump's last byte is its ret, kept).
 */
#include "xsplice_wire.h"

#if !defined(COMPUTE_SIZE) || !defined(GREET_SIZE) || !defined(BUMP_SIZE)
#error "define COMPUTE_SIZE, GREET_SIZE and BUMP_SIZE (from nm -S of the image)"
#endif
#ifndef NEW_SIZE
#define NEW_SIZE 5
#endif

extern int scale;
extern int helper(int);

int new_compute(int x) { return x * scale * 100 + 2; }

const char *new_greet(void) { return helper(1) == 1001 ? "patched-v2" : "broken"; }

XSPLICE_NOTE(2, 64, XSPLICE_INCOMPAT_NOP);

XSPLICE_FUNCS struct xsplice_patch_func_v2 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_compute,
        .new_size = NEW_SIZE,
        .old_size = COMPUTE_SIZE,
        .name = "compute",
        .version = 2,
        .size = 64,
    },
    {
        .new_addr = (void *)new_greet,
        .new_size = NEW_SIZE,
        .old_size = GREET_SIZE,
        .name = "greet",
        .version = 2,
        .size = 64,
    },
    {
        .new_addr = 0,
        .new_size = BUMP_SIZE - 1,
        .old_size = BUMP_SIZE,
        .name = "bump",
        .version = 2,
        .size = 64,
        .incompat = XSPLICE_INCOMPAT_NOP,
    },
};
