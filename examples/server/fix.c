/*
 * fix.c - the fix for server.c's with_vat(): a v3 payload with one record
 * (resolved by name in the server's symbol table) and hooks that the
 * patcher runs inside the server.
 *
 * Build: gcc -O2 -fpie -fno-stack-protector -c fix.c -o fix.o
 * (-fpie: the server is PIE, so every reference to it is PC-relative.)
 *
 * With -DFIX_CODE_ONLY the object holds only fix_with_vat, the input of
 * `xsplice build plain.o -o fix2.o --patch with_vat=fix_with_vat,old-size=16
 * --depends HEX` (a payload bound to the server build whose build-id is HEX,
 * as `readelf -n server` prints it).
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

extern long vat_percent;
extern volatile long server_fixes;

/* Fixed: charges vat_percent. */
__attribute__((noinline)) long fix_with_vat(long cents)
{
	return cents + cents * vat_percent / 100;
}

#ifndef FIX_CODE_ONLY
static int fix_applied(void)
{
	server_fixes = server_fixes + 1;
	return 0;
}

static int fix_reverted(void)
{
	server_fixes = server_fixes - 1;
	return 0;
}

static int (*const postapply[])(void)
	__attribute__((section(".xsplice.hooks.postapply"), used)) = { fix_applied };
static int (*const postrevert[])(void)
	__attribute__((section(".xsplice.hooks.postrevert"), used)) = { fix_reverted };

static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(fix_with_vat),
		.old_addr = 0,
		/* A lower bound of with_vat's size in any gcc -O2 build (32
		 * bytes with gcc 12): the loader checks the jump fits in it. */
		.old_size = 16,
		.new_size = 16,
		.name = "with_vat",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
};

XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);
#endif
