/*
 * fix.c - the replacement code of the AArch64 twin: hv_sum with the
 * off-by-one fixed, hv_version returning 2. It holds only code; the
 * records, old sizes and the dependency on the image's build-id are added
 * by `xsplice build --image hv --depends-image` (see README.md), so the same
 * source serves every image kind (static, PIE, static-pie) and every code
 * model (-fno-pic, -fpic, -fPIC, -fpie).
 */
#define FIX_TAG "hv-fix-arm64"
#include "../hypervisor/fix_code.h"
