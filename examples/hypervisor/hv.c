/*
 * hv.c - a toy "hypervisor" image for offline patching with xsplice.
 *
 * Linked non-PIE at the default fixed address (0x400000), with a sha1
 * build-id and its symbol table kept. hv_sum has an off-by-one bug (it skips
 * the last element); fix.o replaces it, and replaces hv_version (1 -> 2).
 *
 * The image reserves the xsplice arena sections (DESIGN.md "Offline images")
 * where a patcher places the payload's sections before writing out the
 * patched executable:
 *   .xsplice.arena.text    64 KiB  "ax" (R+X segment), filled with int3
 *   .xsplice.arena.rodata  16 KiB  "a"  (R segment),   zero
 *   .xsplice.arena.data    16 KiB  "aw" (RW segment),  zero
 * all PROGBITS and page-aligned. They are emitted by top-level asm because a
 * C array in a named section always gets "aw".
 */
#include <stdio.h>

#define XSPLICE_ARENA(sec, flags, sym, size, fill)                      \
	asm(".pushsection " sec ",\"" flags "\",@progbits\n"             \
	    "\t.balign 4096\n"                                            \
	    "\t.globl " sym "\n"                                          \
	    "\t.type " sym ", @object\n"                                  \
	    sym ":\n"                                                      \
	    "\t.fill " #size ", 1, " #fill "\n"                           \
	    "\t.size " sym ", " #size "\n"                                \
	    "\t.popsection\n")

XSPLICE_ARENA(".xsplice.arena.text", "ax", "xsplice_arena_text", 65536, 0xcc);
XSPLICE_ARENA(".xsplice.arena.rodata", "a", "xsplice_arena_rodata", 16384, 0);
XSPLICE_ARENA(".xsplice.arena.data", "aw", "xsplice_arena_data", 16384, 0);

/* Image globals the fix refers to (relocations against the image). */
long hv_data[] = { 1, 2, 3, 4 };
long hv_weight = 1;
volatile unsigned long hv_queries;
const char *hv_fix_tag = "none";

__attribute__((noipa, used)) long hv_scale(long x)
{
	return x * hv_weight;
}

/* BUG: skips the last element. */
__attribute__((noipa, used)) long hv_sum(const long *v, long n)
{
	long s = 0;

	for (long i = 0; i + 1 < n; i++)
		s += hv_scale(v[i]);
	return s;
}

__attribute__((noipa, used)) int hv_version(void)
{
	hv_queries = hv_queries + 1;
	return 1;
}

int main(void)
{
	long n = sizeof hv_data / sizeof hv_data[0];
	int version = hv_version();
	long sum = hv_sum(hv_data, n);
	long expected = 0;

	for (long i = 0; i < n; i++)
		expected += hv_data[i] * hv_weight;
	printf("hv: version %d, sum = %ld (expected %ld), fix %s: %s\n", version, sum,
	       expected, hv_fix_tag, sum == expected ? "OK" : "BUG");
	return sum == expected ? 0 : 1;
}
