/*
 * payload.c - a format 3.1 payload with every architecture-specific table,
 * written with the generated header's assembler macros (x86-64 and AArch64).
 *
 * Built by gcc at test time (loader/tests/arch.rs). Macros select the
 * variants the refusal tests need:
 *   NO_ARCH_BIT   tables present, note without ARCH
 *   ONLY_BIT      ARCH in the note, no table
 *   RECORD_ARCH   ARCH in a record (only the note may carry it)
 *   MINOR0        ARCH in a note declaring format 3.0
 *   BAD_REPL      an alternative with repl_len > orig_len
 *   OUTSIDE       an exception-table fixup outside the payload (a target function)
 *   BAD_SIZE      a 4-byte .xsplice.ex_table
 *   WRONG_RELOC   an ABS32 relocation in .xsplice.ex_table
 *   OBJECT_ONLY   no records and no note: an input for `xsplice build`
 *   ALT_ONLY      alternatives only (no exception table, no bug frames):
 *                 what an offline image can take
 *   OLD_NAME=f    the record patches f instead of xsplice_demo_answer
 */
#include "xsplice_abi.h"

extern long xsplice_demo_base(void);

#ifndef ONLY_BIT
#if defined(__aarch64__)
# define LOAD "1:\tldr %0, [%1]\n2:\n"
# define FIXUP ".pushsection .text.xsplice_fixup, \"ax\"\n3:\tmov %0, #-14\n\tb 2b\n.popsection\n"
# define ORIG_POP "mov %0, #-1"
# define REPL_POP "mov %0, #7"
# define ONE "mov %0, #1"
# define TWO "mov %0, #2"
# define THREE "mov %0, #3"
# define FOUR "mov %0, #4"
# define FEATURE XSPLICE_ARM64_FEATURE_ATOMICS
#else
# define LOAD "1:\tmovq (%1), %0\n2:\n"
# define FIXUP ".pushsection .text.xsplice_fixup, \"ax\"\n3:\tmovq $-14, %0\n\tjmp 2b\n.popsection\n"
# define ORIG_POP "movq $-1, %0"
# define REPL_POP "popcntq %1, %0"
# define ONE "movq $1, %0"
# define TWO "movq $2, %0"
# define THREE "movq $3, %0"
# define FOUR "movq $4, %0"
# define FEATURE XSPLICE_X86_FEATURE_POPCNT
#endif

#ifdef OUTSIDE
# define FIXUP_LABEL xsplice_demo_base
#else
# define FIXUP_LABEL 3b
#endif

#ifndef ALT_ONLY
/* Reads *p; a fault returns -14 (EFAULT) through the exception table. */
long xsplice_arch_read(const long *p)
{
	long v;
	__asm__ volatile(LOAD FIXUP XSPLICE_EX_TABLE(1b, FIXUP_LABEL)
			 : "=r"(v) : "r"(p) : "memory");
	return v;
}

#endif /* ALT_ONLY */

/* -1 without the feature; with it, popcnt (x86-64) or 7 (AArch64). */
long xsplice_arch_popcnt(long x)
{
	long r;
	__asm__ volatile(XSPLICE_ALTERNATIVE(ORIG_POP, REPL_POP, FEATURE)
			 : "=r"(r) : "r"(x));
	return r;
}

/* 1, or 2 when the feature is ABSENT (bit 15). */
long xsplice_arch_negated(void)
{
	long r;
	__asm__ volatile(XSPLICE_ALTERNATIVE(ONE, TWO, XSPLICE_ALT_FEATURE_ABSENT | FEATURE)
			 : "=r"(r));
	return r;
}

/* 3, and an alternative naming feature 99, which no loader knows. */
long xsplice_arch_unknown(void)
{
	long r;
	__asm__ volatile(XSPLICE_ALTERNATIVE(THREE, FOUR, 99) : "=r"(r));
	return r;
}

#ifndef ALT_ONLY
/* Returns x; a negative x hits a WARN trap first. */
long xsplice_arch_warn(long x)
{
	if (x < 0)
		__asm__ volatile(XSPLICE_BUG_INSN(XSPLICE_BUG_KIND_WARN, "negative value"));
	return x;
}

/* Stops: a BUG trap. */
void xsplice_arch_bug(void)
{
	__asm__ volatile(XSPLICE_BUG_INSN(XSPLICE_BUG_KIND_BUG, "cannot go on"));
}

#endif /* ALT_ONLY */

#ifdef BAD_REPL
__asm__(".pushsection .text\n"
	"881:\tnop\n882:\n"
	".pushsection .xsplice.altinstr_replacement, \"ax\"\n883:\tnop\n\tnop\n884:\n.popsection\n"
	XSPLICE_ALTINSTR(881b, 882b-881b, 883b, 884b-883b, 1)
	".popsection\n");
#endif
#ifdef BAD_SIZE
__asm__(".pushsection .xsplice.ex_table, \"a\"\n\t.long 0\n\t.popsection\n");
#endif
#ifdef WRONG_RELOC
__asm__(".pushsection .xsplice.ex_table, \"a\"\n\t.long xsplice_arch_read\n\t.long xsplice_arch_read - .\n\t.popsection\n");
#endif
#endif /* ONLY_BIT */

long xsplice_arch_answer(void)
{
	return 44;
}

#ifndef OBJECT_ONLY
#ifdef OLD_NAME
# define OLD_NAME_STR XSPLICE_STR(OLD_NAME)
#else
# define OLD_NAME_STR "xsplice_demo_answer"
#endif
#ifdef RECORD_ARCH
# define RECORD_INCOMPAT XSPLICE_INCOMPAT_ARCH
#else
# define RECORD_INCOMPAT 0
#endif

static struct xsplice_patch_func_v3 xsplice_funcs[]
	__attribute__((section(XSPLICE_SEC_FUNCS), used, aligned(8))) = {
	{
		.new_addr = XSPLICE_ADDR(xsplice_arch_answer),
		.new_size = 8,
		.old_addr = 0,
		.old_size = 16,
		.name = XSPLICE_ADDR(OLD_NAME_STR),
		.version = XSPLICE_RECORD_TAG_V3,
		.size = XSPLICE_RECORD_SIZE_V3,
		.incompat = RECORD_INCOMPAT,
	},
};

#ifdef NO_ARCH_BIT
# define NOTE_INCOMPAT 0
#else
# define NOTE_INCOMPAT XSPLICE_INCOMPAT_ARCH
#endif
#ifdef MINOR0
# define NOTE_MINOR 0
#else
# define NOTE_MINOR 1
#endif

static const struct xsplice_abi_note xsplice_note
	__attribute__((section(XSPLICE_SEC_NOTE), used, aligned(4))) = {
	XSPLICE_NOTE_NAMESZ, XSPLICE_NOTE_DESC_SIZE, XSPLICE_NOTE_TYPE, XSPLICE_NOTE_NAME,
	{ 3, NOTE_MINOR, 3, XSPLICE_RECORD_SIZE_V3, NOTE_INCOMPAT | RECORD_INCOMPAT, 0, { 0 } },
};
#endif /* OBJECT_ONLY */
