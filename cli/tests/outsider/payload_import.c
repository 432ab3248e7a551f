/*
 * A v1 payload whose replacement calls puts(): in a dynamically linked
 * image puts lives in libc.so, whose address is unknown when patching.
 * Build: gcc -O2 -fpic -c -DGREET_SIZE=.. payload_import.c
 */
#include <stdio.h>
#include "xsplice_wire.h"

const char *new_greet(void) {
    puts("new greet");
    return "imported";
}

XSPLICE_FUNCS struct xsplice_patch_func_v1 xsplice_funcs[] = {
    {.new_addr = (void *)new_greet, .new_size = 5, .old_size = GREET_SIZE, .name = "greet"},
};
