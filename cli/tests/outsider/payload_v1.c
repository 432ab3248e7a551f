/*
 * A v1 (legacy, untagged, no ABI note) payload replacing image.c's compute().
 * Build: gcc -O2 -c -DCOMPUTE_SIZE=<nm -S size of compute in the image> payload_v1.c
 */
#include "xsplice_wire.h"

#ifndef COMPUTE_SIZE
#error "define COMPUTE_SIZE (the image's compute size, from nm -S)"
#endif
#ifndef TARGET_NAME
#define TARGET_NAME "compute"
#endif
#ifndef NEW_SIZE
#define NEW_SIZE 5
#endif

extern int scale; /* resolved in the image */

int new_compute(int x) { return x * scale * 10 + 1; }

XSPLICE_FUNCS struct xsplice_patch_func_v1 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_compute,
        .new_size = NEW_SIZE,
        .old_addr = 0,
        .old_size = COMPUTE_SIZE,
        .name = TARGET_NAME,
    },
};
