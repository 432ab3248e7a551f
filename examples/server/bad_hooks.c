/*
 * bad_hooks.c - payloads for server.c whose hooks misbehave, for the tests
 * of the patcher's hook injection (the fix itself is fix.c's):
 *
 *   -DHANG  a load hook that never returns: the patcher must stop the
 *           thread running it, restore that thread and refuse the payload
 *   -DFAIL  a postapply hook that returns 7: the apply must be undone
 *   -DBLOCK the replacement calls the server's server_pause() (2 s): a
 *           thread inside that call has a return address into the
 *           payload's code, which must stay mapped after a revert
 *
 * Build: gcc -O2 -fpie -fno-stack-protector -DHANG -c bad_hooks.c -o hang.o
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

extern long vat_percent;

extern void server_pause(void);

__attribute__((noinline)) long bad_with_vat(long cents)
{
#ifdef BLOCK
	server_pause();
#endif
	return cents + cents * vat_percent / 100;
}

#ifdef HANG
static int hang(void)
{
	for (;;)
		__asm__ volatile("pause");
	return 0;
}

static int (*const load_hooks[])(void)
	__attribute__((section(".xsplice.hooks.load"), used)) = { hang };
#endif

#ifdef FAIL
static int fail(void)
{
	return 7;
}

static int (*const postapply[])(void)
	__attribute__((section(".xsplice.hooks.postapply"), used)) = { fail };
#endif

static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(bad_with_vat),
		.old_addr = 0,
		.old_size = 16, /* a lower bound, as in fix.c */
		.new_size = 16,
		.name = "with_vat",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
};

XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);
