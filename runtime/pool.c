/* pool.c — the process-wide worker pool behind mlc_parallel_for (pool.h).
 *
 * One caller at a time owns the pool (a mutex, taken with trylock: a second
 * caller, or a task calling back in, runs its chunks inline instead of
 * waiting). Workers are started on demand and never exit before the process
 * does (an atexit handler joins them, so valgrind and LSan see no leak).
 *
 * Chunks are claimed, not assigned: chunk t (run as tid t) goes to whichever
 * thread claims it first, so a worker that is asleep or has lost its core
 * (a busy machine) never holds the caller up; the caller claims whatever is
 * left and only waits for chunks already running.
 *
 * Handshake and memory ordering:
 * - The caller writes the job (task, ctx, extent) with plain stores, resets
 *   `finished`, and publishes the 64-bit claim word (generation, nthreads,
 *   next chunk) with a release store, then bumps the futex word `gen`.
 * - A thread claims chunk c with a compare-exchange on the claim word (acq_rel)
 *   that only succeeds for the current generation while c < nthreads; it
 *   reads the job only after a successful claim (the acquire makes the job's
 *   stores visible), and increments `finished` (release) after the chunk.
 * - The caller returns when its acquire load sees finished == nthreads: every
 *   chunk's writes are then visible to it, and no thread will read the job
 *   again (a late worker's claim fails on the generation), so the next call
 *   may overwrite it.
 * - Idle workers spin on `gen` for SPIN_NS, then sleep in futex(FUTEX_WAIT)
 *   on it. Sleeping is announced in `sleepers` (seq_cst increment, then a
 *   seq_cst re-read of gen); the caller bumps gen (seq_cst) and then reads
 *   `sleepers` (seq_cst). In the single total order either the worker sees
 *   the new gen and does not sleep, or the caller sees the sleeper and wakes
 *   it; FUTEX_WAIT itself rechecks the word, so no wake-up is lost. Calls
 *   that find no sleeper make no system call. */
#include "pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long an idle worker spins before it sleeps: longer than the gap
 * between two parallel kernels of a step (small kernels run inline between
 * them), short enough not to hold a core between training runs. */
enum { SPIN_NS = 500 * 1000 };

static struct {
	pthread_mutex_t lock; /* held by the caller for a whole job */
	int nworkers;         /* workers started: tids 1..nworkers */
	pthread_t thr[MLC_POOL_MAX];
	uint32_t start_gen[MLC_POOL_MAX]; /* gen when worker i was started */
	bool atexit_set;
	/* the job: written by the caller while no claim can succeed (see above) */
	mlc_task_fn task;
	void *ctx;
	int64_t extent;
	_Atomic uint64_t claim; /* gen << 32 | nthreads << 16 | next chunk */
	atomic_int finished;    /* chunks done */
	_Atomic uint32_t gen;   /* futex word */
	atomic_int sleepers;
	atomic_bool stop;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs chunks of generation g until none is left. Chunk t of
 * nthreads is [extent·t/nthreads, extent·(t+1)/nthreads). */
static void run_chunks(uint32_t g)
{
	uint64_t w = atomic_load_explicit(&P.claim, memory_order_acquire);
	for (;;) {
		uint64_t t = w & 0xffff, nt = w >> 16 & 0xffff;
		if ((uint32_t)(w >> 32) != g || t >= nt)
			return;
		if (!atomic_compare_exchange_weak_explicit(&P.claim, &w, w + 1, memory_order_acq_rel,
							   memory_order_acquire))
			continue;
		int64_t n = (int64_t)nt, e = P.extent;
		P.task(P.ctx, e * (int64_t)t / n, e * ((int64_t)t + 1) / n, (int64_t)t);
		atomic_fetch_add_explicit(&P.finished, 1, memory_order_release);
		w = atomic_load_explicit(&P.claim, memory_order_acquire);
	}
}

/* Returns the first generation other than `seen`. */
static uint32_t wait_job(uint32_t seen)
{
	uint32_t g;
	int64_t deadline = 0;
	for (unsigned i = 1;; i++) {
		if ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) != seen)
			return g;
		cpu_relax();
		if (i % 256 == 0) {
			int64_t t = now_ns();
			if (!deadline)
				deadline = t + SPIN_NS;
			else if (t > deadline)
				break;
		}
	}
	for (;;) {
		atomic_fetch_add(&P.sleepers, 1);
		if (atomic_load(&P.gen) == seen)
			futex_wait(&P.gen, seen);
		atomic_fetch_sub(&P.sleepers, 1);
		if ((g = atomic_load_explicit(&P.gen, memory_order_acquire)) != seen)
			return g;
	}
}

static void *worker(void *arg)
{
	int64_t self = (int64_t)(intptr_t)arg;
	uint32_t seen = P.start_gen[self]; /* written before pthread_create */
	for (;;) {
		seen = wait_job(seen);
		if (atomic_load_explicit(&P.stop, memory_order_relaxed))
			return NULL;
		run_chunks(seen);
	}
}

static void shutdown_pool(void)
{
	if (pthread_mutex_trylock(&P.lock) != 0)
		return; /* the process ends during a job: leave the workers be */
	atomic_store_explicit(&P.stop, true, memory_order_relaxed);
	atomic_fetch_add(&P.gen, 1);
	futex_wake_all(&P.gen);
	for (int i = 1; i <= P.nworkers; i++)
		pthread_join(P.thr[i], NULL);
	P.nworkers = 0;
	atomic_store_explicit(&P.stop, false, memory_order_relaxed);
	pthread_mutex_unlock(&P.lock);
}

/* Starts workers up to tid want - 1 (with the lock held); on failure keeps
 * the ones it has, and run_chunks spreads the tids over those. */
static void grow(int64_t want)
{
	if (!P.atexit_set)
		P.atexit_set = atexit(shutdown_pool) == 0;
	while (P.nworkers + 1 < want) {
		int i = P.nworkers + 1;
		P.start_gen[i] = atomic_load_explicit(&P.gen, memory_order_relaxed);
		if (pthread_create(&P.thr[i], NULL, worker, (void *)(intptr_t)i) != 0)
			break;
		P.nworkers = i;
	}
}

void mlc_parallel_for(mlc_task_fn task, void *ctx, int64_t extent, int64_t nthreads)
{
	if (nthreads <= 1) {
		task(ctx, 0, extent, 0);
		return;
	}
	if (nthreads > MLC_POOL_MAX)
		nthreads = MLC_POOL_MAX;
	if (extent == 0 || pthread_mutex_trylock(&P.lock) != 0) {
		for (int64_t t = 0; t < nthreads; t++)
			task(ctx, extent * t / nthreads, extent * (t + 1) / nthreads, t);
		return;
	}
	grow(nthreads);
	P.task = task;
	P.ctx = ctx;
	P.extent = extent;
	atomic_store_explicit(&P.finished, 0, memory_order_relaxed);
	uint32_t g = atomic_load_explicit(&P.gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&P.claim, (uint64_t)g << 32 | (uint64_t)nthreads << 16, memory_order_release);
	atomic_store(&P.gen, g); /* seq_cst: pairs with the sleepers check */
	if (atomic_load(&P.sleepers) > 0)
		futex_wake_all(&P.gen);
	run_chunks(g);
	for (unsigned i = 1; atomic_load_explicit(&P.finished, memory_order_acquire) < nthreads; i++) {
		cpu_relax();
		if (i % 4096 == 0) /* a worker lost its core mid-chunk: let it have ours */
			sched_yield();
	}
	pthread_mutex_unlock(&P.lock);
}

int mlc_pool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > MLC_POOL_DEFAULT_MAX ? MLC_POOL_DEFAULT_MAX : (int)n;
}
