/*
 * server.c - a multi-threaded "server" to patch while it runs (xsplice
 * apply --pid). Worker threads call the buggy with_vat() in a tight loop
 * and count what it returns; the main thread prints one line per tick:
 *
 *   tick 12 vat 1100 old 48213 new 0 bad 0 fixes 0 signals 0 eintr 0
 *
 *   vat    the last value returned for 1000 cents
 *   old    results equal to the buggy value (10% VAT) during the tick
 *   new    results equal to the fixed value (20% VAT) during the tick
 *   bad    any other result: must stay 0 (a torn patch would show here)
 *   fixes  server_fixes, bumped by the fix payload's hooks
 *   signals  SIGUSR1 and SIGRTMIN signals handled (a patcher must lose none)
 *   eintr  read()s of an idle pipe that failed with EINTR: a patcher that
 *          stops threads must restart their system calls, so this stays 0
 *
 * Usage: server [THREADS [TICK_MS [TICKS]]]   (defaults 4, 100, forever)
 * With SERVER_MARKS=1, a byte on stdin makes the next tick boundary print
 * `mark` and reset the counts, so that the following tick counts only
 * results from after the byte was written (the tests' way to say "now").
 * With SERVER_SPIN=1 in the environment, one more thread runs spin(), whose
 * entry is a hot loop: its PC is always at offset 1 or 4, inside the 5 bytes
 * a jump would overwrite, so a patcher can never write one there and must
 * refuse. With SERVER_PARK=1,
 * one more thread loops in park() past its first 8 bytes forever: a jump at
 * its entry is safe, but the stricter "no thread inside the old function"
 * policy must refuse. With SERVER_CHURN=1, one more thread starts short-lived
 * threads one after the other (each calls with_vat() once, counted like the
 * workers', and exits): a patcher must catch threads that appear and vanish
 * while it stops the others.
 * Build: gcc -O2 -pthread -Wl,--build-id server.c -o server
 * (PIE by default; keep the symbol table: do not strip.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* The rate the fix reads; the bug ignores it. */
long vat_percent = 20;
/* Bumped by the fix's hooks, run in this process by the patcher. */
volatile long server_fixes;

/* Results of with_vat() per tick: old (buggy), new (fixed), anything else. */
static atomic_long n_old, n_new, n_bad;
static atomic_long last = 0;

static void count(long v)
{
	if (v == 1100)
		atomic_fetch_add_explicit(&n_old, 1, memory_order_relaxed);
	else if (v == 1200)
		atomic_fetch_add_explicit(&n_new, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&n_bad, 1, memory_order_relaxed);
	atomic_store_explicit(&last, v, memory_order_relaxed);
}

/* Sleeps two seconds: a payload that calls it keeps the calling thread
 * inside a call made by the payload's code (bad_hooks.c -DBLOCK). */
__attribute__((noipa)) void server_pause(void)
{
	struct timespec ts = { 2, 0 };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* BUG: charges 10% VAT instead of vat_percent. */
__attribute__((noipa)) long with_vat(long cents)
{
	return cents + cents / 10;
}

/*
 * Written in assembly, so that no compiler adds bytes (endbr64, a frame)
 * before them:
 *   spin(n): a NOP, then a hot loop `1: dec %rdi; jnz 1b` (offsets 1 and 4:
 *            always in the interior of the 5 bytes a jump would overwrite)
 *   park():  8 bytes of NOPs, then `1: pause; jmp 1b` forever (offsets 8, 10)
 */
__asm__(".text\n"
	".globl spin\n.type spin, @function\n"
	"spin:\n\tnop\n1: dec %rdi\n\tjnz 1b\n\tret\n"
	".size spin, .-spin\n"
	".globl park\n.type park, @function\n"
	"park:\n\t.byte 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0\n2: pause\n\tjmp 2b\n"
	".size park, .-park\n");
void spin(long n);
__attribute__((noreturn)) void park(void);

static void *spinner(void *arg)
{
	(void)arg;
	for (;;)
		spin(1L << 62);
	return NULL;
}

static void *parker(void *arg)
{
	(void)arg;
	park();
}

static void *once(void *arg)
{
	(void)arg;
	count(with_vat(1000));
	return NULL;
}

static void *churner(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		if (pthread_create(&t, NULL, once, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

static int env_on(const char *name)
{
	const char *v = getenv(name);
	return v && v[0] == '1';
}

static atomic_long n_signals, n_eintr;
static int idle_pipe[2];

static void on_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&n_signals, 1);
}

/* Blocks in read() forever: nothing is ever written to the pipe. */
static void *idler(void *arg)
{
	char c;

	(void)arg;
	for (;;) {
		if (read(idle_pipe[0], &c, 1) < 0 && errno == EINTR)
			atomic_fetch_add(&n_eintr, 1);
	}
	return NULL;
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;)
		count(with_vat(1000));
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 4;
	long tick_ms = argc > 2 ? atol(argv[2]) : 100;
	long ticks = argc > 3 ? atol(argv[3]) : -1;

#if defined(PR_SET_PTRACER) && defined(PR_SET_PTRACER_ANY)
	/* Under Yama ptrace_scope 1 only an ancestor may attach: let any
	 * process of this user patch this example. */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGRTMIN, &sa, NULL);
	if (pipe(idle_pipe) != 0) {
		perror("pipe");
		return 1;
	}
	pthread_t idle;
	if (pthread_create(&idle, NULL, idler, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	pthread_t extra;
	if ((env_on("SERVER_SPIN") && pthread_create(&extra, NULL, spinner, NULL) != 0) ||
	    (env_on("SERVER_PARK") && pthread_create(&extra, NULL, parker, NULL) != 0) ||
	    (env_on("SERVER_CHURN") && pthread_create(&extra, NULL, churner, NULL) != 0)) {
		perror("pthread_create");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("server %d: %d threads\n", (int)getpid(), threads);
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	int marks = env_on("SERVER_MARKS");
	if (marks)
		fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	for (long n = 1; ticks < 0 || n <= ticks; n++) {
		struct timespec ts = { tick_ms / 1000, (tick_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0)
			;
		char c;
		if (marks && read(0, &c, 1) == 1) {
			atomic_exchange(&n_old, 0);
			atomic_exchange(&n_new, 0);
			atomic_exchange(&n_bad, 0);
			printf("mark\n");
			continue;
		}
		printf("tick %ld vat %ld old %ld new %ld bad %ld fixes %ld signals %ld eintr %ld\n",
		       n, atomic_load(&last), atomic_exchange(&n_old, 0),
		       atomic_exchange(&n_new, 0), atomic_exchange(&n_bad, 0),
		       server_fixes, atomic_load(&n_signals), atomic_load(&n_eintr));
	}
	return 0;
}
