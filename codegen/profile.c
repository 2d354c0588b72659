/* profile.c — the per-kernel time table of profiled entries (profile.h):
 * the tick the generated code calls, the peaks it is compared with, and
 * the printed table. */
#include "profile.h"

#include "../ir/base.h"

#include <cblas.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return 1e9 * (double)ts.tv_sec + (double)ts.tv_nsec;
}

void mlc_profile_tick(mlc_profile *p, int32_t k)
{
	double t = now_ns();
	if (k < 0) {
		int e = -1 - k;
		if (e < MLC_ENTRY_COUNT)
			p->entry_calls[e]++;
	} else if (k < p->nk) {
		mlc_prof_kernel *r = &p->k[k];
		double dt = t - p->last;
		r->ns += dt;
		r->min_ns = r->calls && r->min_ns < dt ? r->min_ns : dt;
		r->calls++;
	}
	/* the tick's own cost goes to the next kernel, not this one */
	p->last = now_ns();
}

int mlc_profile_add(mlc_profile *p, const char *name, const char *layer, const char *ops, double flops,
		    double bytes)
{
	if (p->nk == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 32;
		p->k = mlc_xrealloc(p->k, sizeof *p->k * (size_t)p->cap);
	}
	mlc_prof_kernel *r = &p->k[p->nk];
	*r = (mlc_prof_kernel){.name = mlc_xstrdup(name), .layer = layer, .flops = flops, .bytes = bytes};
	snprintf(r->ops, sizeof r->ops, "%s", ops);
	return p->nk++;
}

void mlc_profile_reset(mlc_profile *p)
{
	for (int i = 0; i < p->nk; i++) {
		p->k[i].ns = p->k[i].min_ns = 0;
		p->k[i].calls = 0;
	}
	memset(p->entry_calls, 0, sizeof p->entry_calls);
}

void mlc_profile_free(mlc_profile *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nk; i++)
		free(p->k[i].name);
	free(p->k);
	free(p);
}

/* Best of a few: the machine is shared, the peak is what it can do. */
static double copy_gbs(size_t bytes, int reps)
{
	char *src = malloc(bytes), *dst = malloc(bytes);
	double best = 0;
	if (src && dst) {
		memset(src, 1, bytes);
		memset(dst, 0, bytes);
		for (int r = 0; r < reps; r++) {
			double t0 = now_ns();
			memcpy(dst, src, bytes);
			double g = 2.0 * (double)bytes / (now_ns() - t0);
			best = g > best ? g : best;
		}
	}
	free(src);
	free(dst);
	return best;
}

mlc_peak mlc_peak_measure(int threads)
{
	enum { N = 1024 };
	mlc_peak pk = {.threads = threads > 1 ? threads : 1};
	float *a = mlc_xmalloc(sizeof(float) * N * N * 3), *b = a + N * N, *c = b + N * N;
	for (int i = 0; i < 2 * N * N; i++)
		a[i] = (float)(i % 7) * 0.125f;
	for (int r = 0; r < 4; r++) {
		double t0 = now_ns();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
		double g = 2.0 * N * N * N / (now_ns() - t0);
		pk.gflops = g > pk.gflops ? g : pk.gflops;
	}
	free(a);
	/* kernels' operands mostly sit in cache: the peak is a cached copy's,
	 * or memory's where that is faster */
	double cached = copy_gbs((size_t)256 << 10, 200), dram = copy_gbs((size_t)64 << 20, 3);
	pk.gbs = cached > dram ? cached : dram;
	/* with more kernel threads than BLAS threads, each runs its own sgemm */
	pk.gflops *= pk.threads;
	pk.gbs *= pk.threads;
	return pk;
}

typedef struct {
	const char *name, *what;
	double ns, min_ns, flops, bytes;
} row;

static int by_time(const void *a, const void *b)
{
	double x = ((const row *)a)->ns, y = ((const row *)b)->ns;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* GEMM-shaped kernels by arithmetic against the sgemm peak, the others by
 * memory traffic against the copy peak; layers (rates false) by time only,
 * since a layer mixes both kinds. */
static void print_rows(row *r, int n, double total, const mlc_peak *pk, const char *head, bool rates, FILE *f)
{
	qsort(r, (size_t)n, sizeof *r, by_time);
	if (rates)
		fprintf(f, "%-28s %10s %6s %9s %11s %7s  %s\n", head, "us/step", "%", "min us", "rate", "% peak",
			"ops");
	else
		fprintf(f, "%-28s %10s %6s\n", head, "us/step", "%");
	for (int i = 0; i < n; i++) {
		double us = r[i].ns * 1e-3, pct = total > 0 ? 100 * r[i].ns / total : 0;
		if (!rates) {
			fprintf(f, "%-28s %10.1f %6.1f\n", r[i].name, us, pct);
			continue;
		}
		char rate[32] = "-", peak[16] = "-";
		if (r[i].ns > 0 && r[i].flops > 0) {
			double g = r[i].flops / r[i].ns;
			snprintf(rate, sizeof rate, "%.1f GF/s", g);
			if (pk->gflops > 0)
				snprintf(peak, sizeof peak, "%.0f%%", 100 * g / pk->gflops);
		} else if (r[i].ns > 0 && r[i].bytes > 0) {
			double g = r[i].bytes / r[i].ns;
			snprintf(rate, sizeof rate, "%.1f GB/s", g);
			if (pk->gbs > 0)
				snprintf(peak, sizeof peak, "%.0f%%", 100 * g / pk->gbs);
		}
		fprintf(f, "%-28s %10.1f %6.1f %9.1f %11s %7s  %s\n", r[i].name, us, pct, r[i].min_ns * 1e-3, rate, peak,
			r[i].what);
	}
}

void mlc_profile_print(const mlc_profile *p, mlc_entry e, const mlc_peak *pk, FILE *f)
{
	int64_t calls = p->entry_calls[e] > 0 ? p->entry_calls[e] : 1;
	row *r = mlc_xmalloc(sizeof *r * (size_t)(p->nk + 1));
	int n = 0;
	double total = 0;
	for (int i = 0; i < p->nk; i++) {
		const mlc_prof_kernel *k = &p->k[i];
		if (!k->calls)
			continue; /* not run by this entry */
		r[n++] = (row){k->name, k->ops, k->ns / (double)calls, k->min_ns, k->flops, k->bytes};
		total += k->ns / (double)calls;
	}
	fprintf(f, "profile: %s, %lld calls, %.3f ms per call in %d kernels; peaks measured now for %d thread%s: "
		   "sgemm %.1f GFLOP/s, copy %.1f GB/s\n",
		mlc_entry_names[e], (long long)p->entry_calls[e], total * 1e-6, n, pk->threads,
		pk->threads > 1 ? "s" : "", pk->gflops, pk->gbs);
	print_rows(r, n, total, pk, "kernel", true, f);
	/* by layer: the kernels of one spec layer summed (gradients included) */
	int nl = 0;
	for (int i = 0; i < p->nk; i++) {
		const mlc_prof_kernel *k = &p->k[i];
		if (!k->calls)
			continue;
		const char *layer = k->layer ? k->layer : "(no layer)";
		int j = 0;
		while (j < nl && strcmp(r[j].name, layer) != 0)
			j++;
		if (j == nl)
			r[nl++] = (row){layer, "", 0, 0, 0, 0};
		r[j].ns += k->ns / (double)calls;
	}
	fprintf(f, "\n");
	print_rows(r, nl, total, pk, "layer", false, f);
	free(r);
}
