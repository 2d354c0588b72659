/* profile.h — per-kernel timing of instrumented entries (mlc run --profile)
 * and the kernels' names for perf and gdb (docs/design.md, "Profiles").
 * A profiled module calls mlc_profile_tick(table, k) at the start of each
 * entry (k < 0) and after each kernel call (k: the kernel's row); `table` is
 * the symbol mlc_profile_table, which each JIT binds to its own mlc_profile,
 * so the module text (and its cache key) is the same in every process. */
#ifndef MLC_PROFILE_H
#define MLC_PROFILE_H

#include "codegen.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
	char *name;        /* the kernel function's name: k12.fused (malloc'd) */
	const char *layer; /* the spec layer of its node (fused: the root's), or NULL */
	char ops[96];      /* its ops, conv2d+add+relu for a fused kernel */
	double flops;      /* GEMM-shaped work at max_batch (matmul, conv and its gradients) */
	double bytes;      /* the operands it reads and writes at max_batch */
	double ns;         /* time since the previous tick, summed */
	double min_ns;     /* the shortest call: what a busy machine's preemptions do not inflate */
	int64_t calls;
} mlc_prof_kernel;

typedef struct mlc_profile {
	double last;       /* ns, CLOCK_MONOTONIC, of the previous tick */
	int nk, cap;
	mlc_prof_kernel *k;
	int64_t entry_calls[MLC_ENTRY_COUNT];
} mlc_profile;

/* Called by profiled entries: k = -1 - entry at an entry's start, else after
 * kernel row k. */
void mlc_profile_tick(mlc_profile *p, int32_t k);
/* The row of a new kernel (codegen); returns its index. */
int mlc_profile_add(mlc_profile *p, const char *name, const char *layer, const char *ops, double flops,
		    double bytes);
/* Zeroes the times and counts (after a warm-up). */
void mlc_profile_reset(mlc_profile *p);
void mlc_profile_free(mlc_profile *p);

/* The measured peaks the table compares with: one sgemm and a copy in the
 * calling thread (BLAS threads as set), times the kernel threads, which
 * split GEMMs and loops between them. */
typedef struct {
	int threads;   /* kernel threads (mlc_graph.threads) */
	double gflops; /* cblas_sgemm n = 1024 */
	double gbs;    /* memcpy, bytes read + written: of 256 KB (cached) or 64 MB, the faster */
} mlc_peak;
mlc_peak mlc_peak_measure(int threads);
/* The table of the kernels the entry e ran, per call of it, slowest first,
 * then the same summed by layer. */
void mlc_profile_print(const mlc_profile *p, mlc_entry e, const mlc_peak *peak, FILE *f);

/* The JIT's table when compiled with mlc_jit_opts.profile, else NULL. */
mlc_profile *mlc_jit_profile(mlc_jit *j);

#endif
