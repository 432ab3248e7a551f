/*
 * An executable prepared for offline patching, written from DESIGN.md:
 * "reserves .xsplice.arena.text (alloc+exec), .xsplice.arena.rodata (alloc)
 * and .xsplice.arena.data (alloc+write), PROGBITS, page-aligned".
 *
 * Build: gcc -O2 -fno-ipa-ra [-fcf-protection=...] [-static | -pie -fPIE] image.c -o image
 * (-fno-ipa-ra: spec/SPEC.md section 12; without it gcc lets main() keep
 * values in registers the original callee does not touch, and a replacement
 * that touches them breaks main: the v2 payload printed compute=302.)
 * Run:   ./image            prints the observable behaviour
 *        ./image dump NAME  prints the first 16 bytes of function NAME in hex
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TEXT_ARENA_IN_C
/* What gcc makes of a C array: a section "aw", not executable (refused). */
__attribute__((section(".xsplice.arena.text"), aligned(4096), used))
char xsplice_arena_text[65536] = {1};
#else
/* Text arena: gcc would mark a C array "aw", so assemble it directly. */
__asm__(".pushsection .xsplice.arena.text,\"ax\",@progbits\n"
        ".balign 4096\n"
        ".zero 65536\n"
        ".popsection\n");
#endif
/* Data arenas: plain C arrays in named sections. */
__attribute__((section(".xsplice.arena.rodata"), aligned(4096), used))
const char xsplice_arena_rodata[65536] = {1};
__attribute__((section(".xsplice.arena.data"), aligned(4096), used))
char xsplice_arena_data[65536] = {1};

int counter;
int scale = 3;

__attribute__((noinline)) int helper(int x) { return x + 1000 + (int)(counter & 0); }

/* Patched by the payloads: replaced (v1/v2/v3). */
__attribute__((noinline)) int compute(int x) { return x * scale + 7; }

/* Patched by the payloads: NOPped out (v2/v3 NOP). */
__attribute__((noinline)) void bump(void) { counter += 1; }

/* Patched by the payloads: replaced by code that calls back into the image. */
__attribute__((noinline)) const char *greet(void) { return counter > 100 ? "big" : "hello"; }

/* One byte (`ret`): too short for a 5-byte jump, whatever old_size says. */
void idle(void) {}

static void dump(const char *name) {
    const unsigned char *p = NULL;
    if (!strcmp(name, "compute")) p = (const unsigned char *)compute;
    else if (!strcmp(name, "bump")) p = (const unsigned char *)bump;
    else if (!strcmp(name, "greet")) p = (const unsigned char *)greet;
    if (!p) {
        fputs("no such function\n", stderr);
        exit(2);
    }
    for (int i = 0; i < 16; i++) printf("%02x", p[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "dump")) { dump(argv[2]); return 0; }
    int x = argc + 9; /* 10, not a constant the compiler can fold */
    bump(); bump(); bump();
    printf("compute=%d counter=%d greet=%s\n", compute(x), counter, greet());
    return 0;
}
