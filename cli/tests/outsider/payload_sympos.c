/*
 * A v3 payload replacing the static function `twin` picked by SYMPOS.
 * Build: gcc -O2 -fpic -c -DSYMPOS=n -DTWIN_SIZE=.. payload_sympos.c
 */
#include "xsplice_wire.h"

int new_twin(int x) { return x * 1000; }

XSPLICE_NOTE(3, 128, XSPLICE_INCOMPAT_SYMPOS);

XSPLICE_FUNCS struct xsplice_patch_func_v3 xsplice_funcs[] = {
    {
        .new_addr = (void *)new_twin,
        .new_size = 5,
        .old_size = TWIN_SIZE,
        .name = "twin",
        .version = 3,
        .size = 128,
        .incompat = XSPLICE_INCOMPAT_SYMPOS,
        .sympos = SYMPOS,
    },
};
