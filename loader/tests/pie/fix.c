/* A v3 payload for img.c: replaces a global, a static (resolved by name)
 * and a function returning a string literal of the payload, and updates
 * an image variable. */
#include <stdint.h>

struct xsplice_patch_func {
	uint64_t new_addr, new_size, old_addr, old_size;
	const char *name;
	uint16_t version, size;
	uint32_t incompat, compat, patch_offset, sympos;
	uint8_t expect_len, reserved0[3], expect[32], reserved1[32];
};

extern int counter;
extern int compute(int, int);

int new_compute(int a, int b) { counter++; return a + b; }
int new_is_allowed(int x) { return x < 100; }
const char *new_greet(void) { return "hello new"; }

__attribute__((section(".xsplice.funcs"), used)) struct xsplice_patch_func funcs[] = {
	{ (uint64_t)new_compute, 16, (uint64_t)compute, 16, "compute", 3, 128 },
	{ (uint64_t)new_is_allowed, 16, 0, 8, "is_allowed", 3, 128 },
	{ (uint64_t)new_greet, 8, 0, 8, "greet", 3, 128 },
};

struct note {
	uint32_t namesz, descsz, type;
	char name[8];
	uint16_t format_major, format_minor, record_version, record_size;
	uint32_t incompat, compat;
	uint8_t reserved[8];
};
__attribute__((section(".note.xsplice"), used, aligned(4))) const struct note xsplice_note = {
	8, 24, 1, "XSPLICE", 3, 0, 3, 128, 0, 0, { 0 }
};
