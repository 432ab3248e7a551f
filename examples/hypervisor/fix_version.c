/*
 * fix_version.c - the second payload of a stack: replaces hv_version
 * (1 -> 3) and tags the fix "hv-fix-2/stack". Its .xsplice.depends names
 * fix_sum.o's build-id, so it applies only on top of fix_sum.o, never on
 * the bare image.
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

extern volatile unsigned long hv_queries;
extern const char *hv_fix_tag;

__attribute__((noinline)) int fix_hv_version(void)
{
	hv_queries = hv_queries + 1;
	hv_fix_tag = "hv-fix-2/stack";
	return 3;
}

static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(fix_hv_version),
		.new_size = 35,
		.old_addr = 0,
		.old_size = 24, /* st_size of hv_version in hv */
		.name = "hv_version",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
};

XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);

/* Its own build-id: "fix_version" then 0x02 up to 20 bytes. */
XSPLICE_BUILD_ID_NOTE(xsplice_build_id, ".note.gnu.build-id",
	'f', 'i', 'x', '_', 'v', 'e', 'r', 's', 'i', 'o',
	'n', 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02);

/* Built on top of fix_sum.o (its build-id). */
XSPLICE_BUILD_ID_NOTE(xsplice_depends, XSPLICE_SEC_DEPENDS,
	'f', 'i', 'x', '_', 's', 'u', 'm', 0x01, 0x01, 0x01,
	0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01);
