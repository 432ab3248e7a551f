/* A v2 payload with its own build-id note and a pre-apply hook, written by
 * hand from the wire format: the bottom of a stack. */
#include <stdint.h>

struct rec {
	uint64_t new_addr, new_size, old_addr, old_size;
	const char *name;
	uint16_t version, size;
	uint32_t incompat, compat;
	uint8_t reserved[12];
};

int newer_compute(int a, int b) { return 1000 + a + b; }
static int hook_pre(void) { return 0; }

struct rec funcs[] __attribute__((section(".xsplice.funcs"))) = {
	{ (uint64_t)newer_compute, 8, 0, 16, "compute", 2, 64, 0, 0, { 0 } },
};
int (*pre[])(void) __attribute__((section(".xsplice.hooks.preapply"))) = { hook_pre };

struct note {
	uint32_t namesz, descsz, type;
	char name[8];
	uint16_t major, minor, record_version, record_size;
	uint32_t incompat, compat;
	uint8_t reserved[8];
};
const struct note abi __attribute__((section(".note.xsplice"), aligned(4))) = {
	8, 24, 1, "XSPLICE", 2, 0, 2, 64, 0, 0, { 0 }
};

struct build_id {
	uint32_t namesz, descsz, type;
	char name[4];
	uint8_t id[8];
};
const struct build_id own __attribute__((section(".note.gnu.build-id"), aligned(4))) = {
	4, 8, 3, "GNU", { 9, 9, 9, 9, 9, 9, 9, 9 }
};
