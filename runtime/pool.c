/* pool.c — the process-wide worker pool behind mlc_parallel_for (pool.h).
 *
 * One caller at a time owns the pool (a mutex, taken with trylock: a second
 * caller, or a task calling back in, runs its chunks inline instead of
 * waiting). Workers are started on demand and never exit before the process
 * does (an atexit handler joins them, so valgrind and LSan see no leak).
 *
 * Handshake and memory ordering:
 * - The caller writes the job (task, ctx, extent, nthreads) with plain stores
 *   and sets `pending` to the number of workers, then bumps the generation
 *   counter `gen` (seq_cst, hence a release). A worker that loads the new
 *   `gen` (acquire) therefore sees the whole job.
 * - Every started worker acknowledges every job by decrementing `pending`
 *   (release) after its last read of the job and its last write of results;
 *   the caller's acquire load of pending == 0 makes all those writes visible
 *   and makes it safe to overwrite the job for the next call.
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
	/* the job: written by the caller while the workers wait (see above) */
	mlc_task_fn task;
	void *ctx;
	int64_t extent, nthreads;
	_Atomic uint32_t gen; /* futex word */
	atomic_int pending;
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

/* Chunk t of nthreads: [extent·t/nthreads, extent·(t+1)/nthreads). */
static void run_chunks(int64_t self, int64_t stride)
{
	for (int64_t t = self; t < P.nthreads; t += stride)
		P.task(P.ctx, P.extent * t / P.nthreads, P.extent * (t + 1) / P.nthreads, t);
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
		run_chunks(self, P.nworkers + 1);
		atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
	}
}

static void shutdown_pool(void)
{
	if (pthread_mutex_trylock(&P.lock) != 0)
		return; /* exit() during a job: leave the workers be */
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
	P.nthreads = nthreads;
	atomic_store_explicit(&P.pending, P.nworkers, memory_order_relaxed);
	atomic_fetch_add(&P.gen, 1); /* seq_cst: publishes the job (release) */
	if (atomic_load(&P.sleepers) > 0)
		futex_wake_all(&P.gen);
	run_chunks(0, P.nworkers + 1);
	for (unsigned i = 1; atomic_load_explicit(&P.pending, memory_order_acquire) > 0; i++) {
		cpu_relax();
		if (i % 4096 == 0) /* a worker lost its core: let it have ours */
			sched_yield();
	}
	pthread_mutex_unlock(&P.lock);
}

int mlc_pool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > MLC_POOL_DEFAULT_MAX ? MLC_POOL_DEFAULT_MAX : (int)n;
}
