/*
 * payload.c - a minimal v3 payload written with the generated xsplice_abi.h.
 *
 * spec/tests/c_header.rs compiles it with -c and checks that every address
 * field initialised with XSPLICE_ADDR() became an ABS64 relocation
 * (R_X86_64_64 / R_AARCH64_ABS64) in .rela.xsplice.funcs: the uint64_t
 * fields of the header work as static initializers. It then loads the
 * object with xsplice-loader: the header and SPEC.md are all a C author
 * needs to write a payload the loader accepts.
 */
#include "xsplice_abi.h"

extern int xsplice_spec_target(void);

int xsplice_spec_replacement(void)
{
	return 2;
}

static struct xsplice_patch_func_v3 xsplice_funcs[]
	__attribute__((section(XSPLICE_SEC_FUNCS), used, aligned(8))) = {
	{
		.new_addr = XSPLICE_ADDR(xsplice_spec_replacement),
		.new_size = 16,
		.old_addr = XSPLICE_ADDR(xsplice_spec_target),
		.old_size = 16,
		.name = XSPLICE_ADDR("xsplice_spec_target"),
		.version = XSPLICE_RECORD_TAG_V3,
		.size = XSPLICE_RECORD_SIZE_V3,
	},
};

static const struct xsplice_abi_note xsplice_note
	__attribute__((section(XSPLICE_SEC_NOTE), used, aligned(4))) = {
	XSPLICE_NOTE_NAMESZ,
	XSPLICE_NOTE_DESC_SIZE,
	XSPLICE_NOTE_TYPE,
	XSPLICE_NOTE_NAME,
	{
		.format_major = 3,
		.format_minor = 0,
		.record_version = 3,
		.record_size = XSPLICE_RECORD_SIZE_V3,
	},
};
