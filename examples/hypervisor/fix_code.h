/*
 * fix_code.h - the replacement code shared by fix.c (v3 records) and
 * fix_v1.c (v1 records). Include once, after defining FIX_TAG.
 *
 * Everything the fix touches in the image is an undefined symbol here, so a
 * patcher must resolve it against hv's symbol table:
 *   hv_scale    call            (-fno-pic: R_X86_64_PLT32)
 *   hv_queries  load + store    (R_X86_64_PC32)
 *   hv_fix_tag  store a pointer (R_X86_64_PC32); the string literal FIX_TAG
 *               lives in the payload's .rodata.str1.1 and its address is an
 *               R_X86_64_32S immediate (-fno-pic assumes the small code
 *               model: everything below 2 GiB, true for hv and its arena)
 */
#ifndef FIX_TAG
# error "define FIX_TAG before including fix_code.h"
#endif

extern long hv_scale(long x);
extern volatile unsigned long hv_queries;
extern const char *hv_fix_tag;

/* Fixed: visits all n elements. */
__attribute__((noinline)) long fix_hv_sum(const long *v, long n)
{
	long s = 0;

	for (long i = 0; i < n; i++)
		s += hv_scale(v[i]);
	return s;
}

/* Version 2, and records which fix is live. */
__attribute__((noinline)) int fix_hv_version(void)
{
	hv_queries = hv_queries + 1;
	hv_fix_tag = FIX_TAG;
	return 2;
}
