/* pool.h — the process-wide thread pool that JIT'd entries split kernels
 * over (runtime/pool.c). Generated code calls mlc_parallel_for by name. */
#ifndef MLC_POOL_H
#define MLC_POOL_H

#include "mlc/mlc.h"

#include <stdint.h>

/* Runs task(ctx, begin, end, tid) once for every tid in [0, nthreads), on
 * [0, extent) cut into nthreads contiguous chunks in tid order (some may be
 * empty when extent < nthreads; each tid is still called, so a task that
 * writes a per-thread partial result always writes it). Chunks go to the
 * caller and the workers, whoever claims them first; returns when every
 * chunk is done, with every chunk's writes visible to the caller. nthreads <= 1 calls task(ctx, 0, extent, 0) inline. A call
 * made while the pool is busy (another thread's call, or from inside a task)
 * runs its chunks one after another on the caller: same results, no deadlock. */
typedef void (*mlc_task_fn)(void *ctx, int64_t begin, int64_t end, int64_t tid);
void mlc_parallel_for(mlc_task_fn task, void *ctx, int64_t extent, int64_t nthreads);

/* The default thread count: the online CPUs, capped at MLC_POOL_DEFAULT_MAX. */
enum { MLC_POOL_DEFAULT_MAX = 8, MLC_POOL_MAX = MLC_MAX_THREADS };
int mlc_pool_default_threads(void);

#endif
