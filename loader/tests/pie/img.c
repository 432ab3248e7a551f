/* A position-independent (ET_DYN, gcc's default) image prepared for offline
 * patching, written from the wire format alone: three arenas reserved with
 * top-level asm (a C array would get "aw" flags, never "ax"). */
#include <stdio.h>

__asm__(".pushsection .xsplice.arena.text,\"ax\",@progbits\n.balign 4096\n.fill 32768,1,0xcc\n.popsection");
__asm__(".pushsection .xsplice.arena.rodata,\"a\",@progbits\n.balign 4096\n.fill 8192,1,0\n.popsection");
__asm__(".pushsection .xsplice.arena.data,\"aw\",@progbits\n.balign 4096\n.fill 8192,1,0\n.popsection");

int counter = 5;
__attribute__((noinline)) static int is_allowed(int x) { return x < 10; }
__attribute__((noinline)) int compute(int a, int b) { return a - b; }
__attribute__((noinline)) const char *greet(void) { return "hello old"; }

int main(void)
{
	volatile int a = 7, b = 3, x = 12;
	printf("compute=%d allowed=%d greet=%s counter=%d\n", compute(a, b), is_allowed(x), greet(), counter);
	return 0;
}
