/*
 * fix_v1.c - the same fix as fix.c, as a legacy v1 payload: v1 records, no
 * ABI note, no .xsplice.depends.
 */
#include "../../compat-tests/fixtures/xsplice_fixture.h"

#define FIX_TAG "hv-fix-1/v1"
#include "fix_code.h"

#define HV_SUM_SIZE 76         /* st_size of hv_sum in hv */
#define HV_VERSION_SIZE 24     /* st_size of hv_version in hv */
#define FIX_HV_SUM_SIZE 88     /* st_size of fix_hv_sum in this object */
#define FIX_HV_VERSION_SIZE 35 /* st_size of fix_hv_version in this object */

static struct xsplice_patch_func_v1 xsplice_funcs[] XSPLICE_FUNCS = {
	{
		.new_addr = XSPLICE_ADDR(fix_hv_sum),
		.new_size = FIX_HV_SUM_SIZE,
		.old_addr = 0,
		.old_size = HV_SUM_SIZE,
		.name = "hv_sum",
	},
	{
		.new_addr = XSPLICE_ADDR(fix_hv_version),
		.new_size = FIX_HV_VERSION_SIZE,
		.old_addr = 0,
		.old_size = HV_VERSION_SIZE,
		.name = "hv_version",
	},
};
