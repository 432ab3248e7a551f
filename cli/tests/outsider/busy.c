/*
 * A multi-threaded program for live patching by PID: THREADS (default 4) threads call
 * compute() in a tight loop; the main thread prints compute(10) every 10 ms,
 * so a patch applied with `xsplice apply --pid` shows up on stdout.
 * Build: gcc -O2 -fno-ipa-ra -pthread busy.c -o busy ; run: ./busy SECONDS
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int scale = 3;
#ifndef THREADS
#define THREADS 4
#endif

static atomic_int stop;
static atomic_long calls;

__attribute__((noinline)) int compute(int x) { return x * scale + 7; }

static void *spin(void *arg) {
    volatile int sink = 0;
    int x = (int)(long)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < 1000; i++) sink += compute(x + i);
        atomic_fetch_add_explicit(&calls, 1000, memory_order_relaxed);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, spin, (void *)i);
    fputs("busy: started\n", stderr);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    volatile int ten = 10;
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int n = 0; n < seconds * 100; n++) {
        printf("compute=%d calls=%ld\n", compute(ten), atomic_load(&calls));
        fflush(stdout);
        nanosleep(&tick, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("done\n");
    return 0;
}
