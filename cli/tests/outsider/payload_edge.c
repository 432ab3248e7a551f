/*
 * A v3-style record at the edges DESIGN.md draws: a record `size` larger
 * than 128 with a tail (accepted when the tail is zero), version tags other
 * than 0/2/3, unknown compat and incompat bits.
 * Build: gcc -O2 -fpic -c -DCOMPUTE_SIZE=.. [-DVERSION=n] [-DTAIL=byte]
 *        [-DCOMPAT=bits] [-DINCOMPAT=bits] payload_edge.c
 */
#include "xsplice_wire.h"

#ifndef VERSION
#define VERSION 3
#endif
#ifndef TAIL
#define TAIL 0
#endif
#ifndef COMPAT
#define COMPAT 0
#endif
#ifndef INCOMPAT
#define INCOMPAT 0
#endif

extern int scale;

int new_compute(int x) { return x * scale * 10 + 1; }

/* A record 32 bytes longer than the v3 layout: a future minor's size. */
struct record_160 {
    struct xsplice_patch_func_v3 v3;
    uint8_t future[32];
};

XSPLICE_NOTE(3, 160, INCOMPAT);

XSPLICE_FUNCS struct record_160 xsplice_funcs[] = {
    {
        .v3 =
            {
                .new_addr = (void *)new_compute,
                .new_size = 5,
                .old_size = COMPUTE_SIZE,
                .name = "compute",
                .version = VERSION,
                .size = 160,
                .incompat = INCOMPAT,
                .compat = COMPAT,
            },
        .future = {[5] = TAIL},
    },
};
