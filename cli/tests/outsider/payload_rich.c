/*
 * A v1 payload whose replacement has what gcc emits for ordinary C: a switch
 * (a jump table in .rodata), a cold path (.text.unlikely / `.cold`), static
 * data (.data, .bss), a double constant (.rodata.cst8) and calls into the
 * image; with -DTLS also a thread-local counter (refused, with a hint).
 * Build: gcc -O2 -fpic|-fpie|-fno-pic -c -DCOMPUTE_SIZE=.. payload_rich.c
 */
#include "xsplice_wire.h"

extern int scale;
extern int helper(int);

static int calls;
static int table[4] = {1, 2, 3, 4};
#ifdef TLS
__thread int tls_counter;
#endif

__attribute__((noinline, cold)) static int slow(int x) { return x - 1; }

int new_compute(int x) {
    calls++;
    double d = x * 1.5;
    switch (x & 7) {
    case 0: x += 11; break;
    case 1: x += 3; break;
    case 2: x *= 7; break;
    case 3: x -= 9; break;
    case 4: x ^= 5; break;
    case 5: x += 100; break;
    case 6: x = -x; break;
    default: x += table[x & 3]; break;
    }
    if (__builtin_expect(x == 123456, 0)) return slow(x) + helper(x);
#ifdef TLS
    tls_counter++;
#endif
    return x + (int)d + calls * scale - 3;
}

XSPLICE_FUNCS struct xsplice_patch_func_v1 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_compute,
        .new_size = 5,
        .old_size = COMPUTE_SIZE,
        .name = "compute",
    },
};
