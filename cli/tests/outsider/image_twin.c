/*
 * An image with two static functions called `twin` (this file and
 * image_twin2.c), for SYMPOS: a record naming `twin` with sympos 0 is
 * ambiguous; sympos 1 and 2 pick them in symbol-table order.
 * Build: gcc -O2 -fno-ipa-ra image_twin.c image_twin2.c -o twin
 */
#include <stdio.h>

__asm__(".pushsection .xsplice.arena.text,\"ax\",@progbits\n"
        ".balign 4096\n.zero 4096\n.popsection\n"
        ".pushsection .xsplice.arena.rodata,\"a\",@progbits\n"
        ".balign 4096\n.zero 4096\n.popsection\n");

__attribute__((noinline)) static int twin(int x) { return x * 13 + 3; }
int twin_b(int);

int main(int argc, char **argv) {
    (void)argv;
    printf("a=%d b=%d\n", twin(argc + 1), twin_b(argc + 1));
    return 0;
}
