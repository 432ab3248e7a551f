/* The second static `twin` of the twin image (see image_twin.c). */
__attribute__((noinline)) static int twin(int x) { return x * 11 + 5; }
int twin_b(int x) { return twin(x); }
