/*
 * fix_sum.c - a stackable fix for hv: replaces hv_sum only (v3 records).
 *
 * It carries its own GNU build-id (.note.gnu.build-id) so that a payload
 * applied on top of it can depend on it, and depends on hv's build-id, so it
 * applies only directly on hv. fix_version.c is built to go on top of it:
 *
 *   xsplice apply --image hv  -o hv1 fix_sum.o
 *   xsplice apply --image hv1 -o hv2 fix_version.o
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

extern long hv_scale(long x);

/* Fixed: visits all n elements. */
__attribute__((noinline)) long fix_hv_sum(const long *v, long n)
{
	long s = 0;

	for (long i = 0; i < n; i++)
		s += hv_scale(v[i]);
	return s;
}

static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(fix_hv_sum),
		.new_size = 88,  /* st_size of fix_hv_sum here (an estimate is fine) */
		.old_addr = 0,   /* resolve "hv_sum" in the image */
		.old_size = 76,  /* st_size of hv_sum in hv */
		.name = "hv_sum",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
};

XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);

/* This payload's own build-id: "fix_sum" then 0x01 up to 20 bytes. */
XSPLICE_BUILD_ID_NOTE(xsplice_build_id, ".note.gnu.build-id",
	'f', 'i', 'x', '_', 's', 'u', 'm', 0x01, 0x01, 0x01,
	0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01);

/* Built against hv (its sha1 build-id). */
XSPLICE_BUILD_ID_NOTE(xsplice_depends, XSPLICE_SEC_DEPENDS,
	0xb1, 0xb2, 0x4e, 0x01, 0x36, 0x40, 0x11, 0x15, 0xe7, 0x74,
	0x11, 0x04, 0xb0, 0xb9, 0xaa, 0xe7, 0xb8, 0xed, 0x0e, 0xe1);
