/*
 * A v2 payload with hooks, as DESIGN.md describes them: arrays of relocated
 * pointers to `int fn(void)` (0 = success) in `.xsplice.hooks.<point>`.
 * A process patched by PID runs them (scale becomes 4 on apply, 3 again on
 * revert); an offline image cannot, and says so.
 * Build: gcc -O2 -fpic -c -DCOMPUTE_SIZE=.. payload_hooks.c
 */
#include "xsplice_wire.h"

extern int scale;

int new_compute(int x) { return x * scale * 10 + 1; }

static int check_ready(void) { return scale == 3 ? 0 : -1; }
static int on_apply(void) {
    scale = 4;
    return 0;
}
static int on_revert(void) {
    scale = 3;
    return 0;
}

#define HOOKS(point) __attribute__((section(".xsplice.hooks." #point), used)) static int (*const point##_hooks[])(void)

HOOKS(preapply) = {check_ready};
HOOKS(apply) = {on_apply};
HOOKS(revert) = {on_revert};

XSPLICE_NOTE(2, 64, 0);

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
