/*
 * fix.c - the fix payload for hv (v3 records, ABI note format 3.0, and a
 * .xsplice.depends build-id note naming the hv image it was built against).
 *
 *   hv_sum      off-by-one fixed   -> fix_hv_sum
 *   hv_version  1 -> 2             -> fix_hv_version
 *
 * old_addr is 0: both are resolved by name in hv's symbol table. old_size is
 * the size of the function in hv, new_size that of the replacement in this
 * object; build.sh (check.py) verifies every hard-coded number below against
 * the built hv and fix.o.
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

#define FIX_TAG "hv-fix-1/v3"
#include "fix_code.h"

#define HV_SUM_SIZE 76         /* st_size of hv_sum in hv */
#define HV_VERSION_SIZE 24     /* st_size of hv_version in hv */
#define FIX_HV_SUM_SIZE 88     /* st_size of fix_hv_sum in this object */
#define FIX_HV_VERSION_SIZE 35 /* st_size of fix_hv_version in this object */

static struct xsplice_patch_func_v3 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(fix_hv_sum),
		.new_size = FIX_HV_SUM_SIZE,
		.old_addr = 0,
		.old_size = HV_SUM_SIZE,
		.name = "hv_sum",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
	{
		.new_addr = XSPLICE_ADDR(fix_hv_version),
		.new_size = FIX_HV_VERSION_SIZE,
		.old_addr = 0,
		.old_size = HV_VERSION_SIZE,
		.name = "hv_version",
		.version = XSPLICE_VERSION_V3,
		.size = XSPLICE_SIZE_V3,
	},
};

/* format 3.0, record version 3, record size 128, incompat 0, compat 0 */
XSPLICE_ABI_NOTE(3, 0, XSPLICE_VERSION_V3, XSPLICE_SIZE_V3, 0, 0);

/* The sha1 build-id of hv (readelf -n hv): b1b24e01...b8ed0ee1. */
XSPLICE_BUILD_ID_NOTE(xsplice_depends, XSPLICE_SEC_DEPENDS,
	0xb1, 0xb2, 0x4e, 0x01, 0x36, 0x40, 0x11, 0x15, 0xe7, 0x74,
	0x11, 0x04, 0xb0, 0xb9, 0xaa, 0xe7, 0xb8, 0xed, 0x0e, 0xe1);
