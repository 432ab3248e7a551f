/*
 * A v3 payload: replaces compute() after PATCH_OFFSET bytes (4 when the image
 * starts its functions with ENDBR64), checking EXPECT bytes at the patch site,
 * and NOPs out bump()'s body past the same offset.
 * Build: gcc -O2 -c -DCOMPUTE_SIZE=.. -DBUMP_SIZE=.. -DPATCH_OFFSET=0|4
 *        -DEXPECT_LEN=n -DEXPECT_BYTES='{0x..,...}' payload_v3.c
 */
#include "xsplice_wire.h"

#if !defined(COMPUTE_SIZE) || !defined(BUMP_SIZE)
#error "define COMPUTE_SIZE and BUMP_SIZE (from nm -S of the image)"
#endif
#ifndef PATCH_OFFSET
#define PATCH_OFFSET 0
#endif
#ifndef EXPECT_LEN
#define EXPECT_LEN 0
#define EXPECT_BYTES {0}
#endif
#ifndef NEW_SIZE
#define NEW_SIZE 5
#endif

#define OFFSET_BIT (PATCH_OFFSET ? XSPLICE_INCOMPAT_PATCH_OFFSET : 0)
#define EXPECT_BIT (EXPECT_LEN ? XSPLICE_INCOMPAT_EXPECT : 0)

extern int scale;

int new_compute(int x) { return x * scale * 1000 + 3; }

XSPLICE_NOTE(3, 128, OFFSET_BIT | EXPECT_BIT | XSPLICE_INCOMPAT_NOP);

XSPLICE_FUNCS struct xsplice_patch_func_v3 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_compute,
        .new_size = NEW_SIZE,
        .old_size = COMPUTE_SIZE,
        .name = "compute",
        .version = 3,
        .size = 128,
        .incompat = OFFSET_BIT | EXPECT_BIT,
        .patch_offset = PATCH_OFFSET,
        .expect_len = EXPECT_LEN,
        .expect = EXPECT_BYTES,
    },
    {
        .new_addr = 0,
        .new_size = BUMP_SIZE - 1 - PATCH_OFFSET,
        .old_size = BUMP_SIZE,
        .name = "bump",
        .version = 3,
        .size = 128,
        .incompat = XSPLICE_INCOMPAT_NOP | OFFSET_BIT,
        .patch_offset = PATCH_OFFSET,
    },
};
