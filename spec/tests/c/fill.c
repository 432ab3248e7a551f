/*
 * fill.c - fills one record of every version, a v3 ABI note descriptor and a
 * vendor entry through the generated xsplice_abi.h, and writes their bytes to
 * stdout in this order:
 *
 *   v1 record (64) | v2 record (64) | v3 record (128) | note descriptor (24) |
 *   vendor entry header (16) + "abc" + 5 bytes of zero padding
 *
 * spec/tests/c_header.rs decodes the bytes with xsplice-abi and checks every
 * value below, so C and Rust must agree on every offset. Every value is
 * distinct, so two swapped fields cannot go unnoticed.
 */
#include <stdio.h>
#include <string.h>

#include "xsplice_abi.h"

int main(void)
{
	struct xsplice_patch_func_v1 v1 = {
		.new_addr = 0xffff82d0c0000000u,
		.new_size = 0x30,
		.old_addr = 0xffff82d080201000u,
		.old_size = 0x40,
		.name = 0xffff82d0c0010000u,
	};
	struct xsplice_patch_func_v2 v2 = {
		.new_addr = 0,
		.new_size = 5,
		.old_addr = 0xffff82d080203000u,
		.old_size = 0x10,
		.name = 0xffff82d0c0010010u,
		.version = XSPLICE_RECORD_TAG_V2,
		.size = XSPLICE_RECORD_SIZE_V2,
		.incompat = XSPLICE_INCOMPAT_NOP,
		.compat = 0x40000000u,
	};
	struct xsplice_patch_func_v3 v3 = {
		.new_addr = 0xffff82d0c0000100u,
		.new_size = 0x58,
		.old_addr = 0,
		.old_size = 0x4c,
		.name = 0xffff82d0c0010020u,
		.version = XSPLICE_RECORD_TAG_V3,
		.size = XSPLICE_RECORD_SIZE_V3,
		.incompat = XSPLICE_INCOMPAT_PATCH_OFFSET | XSPLICE_INCOMPAT_SYMPOS |
			    XSPLICE_INCOMPAT_EXPECT,
		.compat = 0x80000000u,
		.patch_offset = 4,
		.sympos = 2,
		.expect_len = 8,
		.expect = { 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5 },
	};
	struct xsplice_note_desc note = {
		.format_major = XSPLICE_FORMAT_MAJOR_NEWEST,
		.format_minor = 0,
		.record_version = 3,
		.record_size = XSPLICE_RECORD_SIZE_V3,
		.incompat = XSPLICE_INCOMPAT_PATCH_OFFSET | XSPLICE_INCOMPAT_SYMPOS |
			    XSPLICE_INCOMPAT_EXPECT,
		.compat = 0,
	};
	struct xsplice_vendor_entry vendor = {
		.vendor = XSPLICE_VENDOR_ID_XSPLICE,
		.kind = 7,
		.flags = XSPLICE_VENDOR_FLAG_CRITICAL,
		.record = 2,
		.len = 3,
	};
	unsigned char data[XSPLICE_VENDOR_PADDED(3)];

	memset(data, 0, sizeof(data));
	memcpy(data, "abc", 3);

	if (fwrite(&v1, sizeof(v1), 1, stdout) != 1 ||
	    fwrite(&v2, sizeof(v2), 1, stdout) != 1 ||
	    fwrite(&v3, sizeof(v3), 1, stdout) != 1 ||
	    fwrite(&note, sizeof(note), 1, stdout) != 1 ||
	    fwrite(&vendor, sizeof(vendor), 1, stdout) != 1 ||
	    fwrite(data, sizeof(data), 1, stdout) != 1)
		return 1;
	return fflush(stdout) == 0 ? 0 : 1;
}
