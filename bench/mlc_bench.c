/* mlc_bench.c — times mlc's JIT'd train step (forward + backward + optimizer
 * update) on any spec, with random inputs and valid labels, so no data file
 * is needed. Prints one line of key=value pairs that bench/run.sh parses:
 *   mlc model=NAME batch=64 threads=1 steps=200 median_ms=... min_ms=...
 *       mean_ms=... peak_rss_mb=... jit_cold_ms=... jit_warm_ms=... loss=...
 *       jit_cold_cpu_ms=... jit_warm_cpu_ms=... jit_codegen_ms=... jit_opt_ms=... jit_mc_ms=...
 * The JIT's object cache is a fresh temporary directory: the session's
 * compile is cold (a miss), then a second, independent compile of the same
 * graph reads the object back from disk (warm).
 * Built on the internal session API (runtime/session.h), like the CLI's
 * `mlc run`, minus the data loading. */
#include "session.h"
#include "../ir/conv.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char usage[] =
	"usage: mlc_bench [--batch N] [--steps K] [--warmup W] [--threads T] [--lr X] [--no-fuse]\n"
	"                 [--fuse-off RULES] [--predict] MODEL.yaml\n"
	"  times K train steps (after W warm-up steps) on random data; prints median/min/mean ms;\n"
	"  --predict times the inference entry (a forward pass) instead\n"
	"       mlc_bench --sgemm-peak [--threads T]\n"
	"  OpenBLAS cblas_sgemm GFLOP/s at n = 1536 (best of 5), the reference for gflops=\n";

typedef struct {
	const char *spec;
	long batch, steps, warmup, threads;
	double lr;
	bool no_fuse, sgemm_peak, predict;
	const char *fuse_off;
} bench_args;

static bool parse_long(const char *s, long lo, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo)
		return false;
	*out = v;
	return true;
}

static bool parse_args(int argc, char **argv, bench_args *a)
{
	*a = (bench_args){.steps = 100, .warmup = 10};
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;
		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
			fputs(usage, stdout);
			exit(0);
		} else if (strcmp(f, "--no-fuse") == 0) {
			a->no_fuse = true;
			continue;
		} else if (strcmp(f, "--sgemm-peak") == 0) {
			a->sgemm_peak = true;
			continue;
		} else if (strcmp(f, "--predict") == 0) {
			a->predict = true;
			continue;
		} else if (f[0] != '-') {
			if (a->spec) {
				fprintf(stderr, "mlc_bench: more than one model: '%s' and '%s'\n%s", a->spec, f, usage);
				return false;
			}
			a->spec = f;
			continue;
		} else if (!v) {
			ok = false;
		} else if (strcmp(f, "--batch") == 0) {
			ok = parse_long(v, 1, &a->batch);
		} else if (strcmp(f, "--steps") == 0) {
			ok = parse_long(v, 1, &a->steps);
		} else if (strcmp(f, "--warmup") == 0) {
			ok = parse_long(v, 0, &a->warmup);
		} else if (strcmp(f, "--threads") == 0) {
			ok = parse_long(v, 1, &a->threads);
		} else if (strcmp(f, "--fuse-off") == 0) {
			a->fuse_off = v;
		} else if (strcmp(f, "--lr") == 0) {
			char *end;
			a->lr = strtod(v, &end);
			ok = *end == 0 && a->lr > 0 && isfinite(a->lr);
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "mlc_bench: bad argument '%s%s%s'\n%s", f, v ? " " : "", v ? v : "", usage);
			return false;
		}
		i++;
	}
	if (!a->spec && !a->sgemm_peak)
		fputs(usage, stderr);
	return a->spec != NULL || a->sgemm_peak;
}

/* Every live input gets data: features uniform in [0, 1) (like scaled
 * pixels), i32 labels a class of the prediction's width, f32 targets 0 or 1
 * (valid for mse and for binary cross-entropy alike). */
static void fill_inputs(mlc_session *s, mlc_rng *r)
{
	mlc_graph *g = s->graph;
	int64_t classes = s->pred ? mlc_pred_width(s) : 1;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || n->op != OP_INPUT || n->mem != MEM_ACT)
			continue;
		int64_t count = mlc_numel(n, s->batch);
		if (n->dtype == DT_I32) {
			int32_t *y = (int32_t *)(s->act + n->offset);
			for (int64_t k = 0; k < count; k++)
				y[k] = (int32_t)(mlc_rng_next(r) % (uint64_t)classes);
			continue;
		}
		float *x = s->act + n->offset;
		bool target = n == s->y;
		for (int64_t k = 0; k < count; k++)
			x[k] = target ? (float)(mlc_rng_next(r) & 1) : (float)mlc_rng_uniform(r);
	}
}

/* Floating-point work of one train step: the GEMM-shaped ops, 2 flops per
 * multiply-add (elementwise work is not counted). */
static double step_flops(const mlc_graph *g, int64_t batch)
{
	double total = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		if (n->op == OP_MATMUL) {
			const mlc_node *a = n->src[0];
			int64_t k = a->dim[n->attr.i[0] ? 0 : 1];
			k = k == MLC_BATCH ? batch : k;
			total += 2.0 * (double)mlc_numel(n, batch) * (double)k;
		} else if (n->op == OP_CONV2D || n->op == OP_CONV2D_GRAD_INPUT || n->op == OP_CONV2D_GRAD_WEIGHT) {
			mlc_window w;
			mlc_window_of(n, &w);
			int64_t images = n->src[0]->dim[0] == MLC_BATCH ? batch : n->src[0]->dim[0];
			total += 2.0 * (double)(images * w.oh * w.ow) * (double)(w.kh * w.kw * (w.c / w.groups)) *
				 (double)w.f;
		}
	}
	return total;
}

/* OpenBLAS's sgemm on large square matrices: the machine's practical peak. */
static int sgemm_peak(long threads)
{
	if (threads > 0)
		openblas_set_num_threads((int)threads);
	enum { N = 1536 };
	float *a = mlc_xmalloc(sizeof(float) * N * N), *b = mlc_xmalloc(sizeof(float) * N * N),
	      *c = mlc_xmalloc(sizeof(float) * N * N);
	for (long i = 0; i < (long)N * N; i++)
		a[i] = b[i] = (float)(i % 7) * 0.1f;
	double best = INFINITY;
	for (int r = 0; r < 6; r++) {
		double t = mlc_now();
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1, a, N, b, N, 0, c, N);
		t = mlc_now() - t;
		if (r > 0 && t < best) /* the first call warms up */
			best = t;
	}
	printf("sgemm threads=%d n=%d gflops=%.1f\n", openblas_get_num_threads(), N, 2.0 * N * N * N / best / 1e9);
	free(a);
	free(b);
	free(c);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, long n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Empties and removes the bench's own temporary cache directory. */
static void remove_cache(const char *dir)
{
	DIR *dp = opendir(dir);
	if (dp) {
		struct dirent *e;
		char path[4096];
		while ((e = readdir(dp)))
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
				unlink(path);
			}
		closedir(dp);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	bench_args a;
	if (!parse_args(argc, argv, &a))
		return 2;
	if (a.sgemm_peak)
		return sgemm_peak(a.threads);
	char cache_dir[] = "/tmp/mlc_bench-XXXXXX";
	if (!mkdtemp(cache_dir)) {
		fprintf(stderr, "mlc_bench: cannot create a cache directory in /tmp: %s\n", strerror(errno));
		return 1;
	}
	mlc_options o = {.batch_size = a.batch, .threads = (int)a.threads, .quiet = 1, .log = stderr,
			 .cache_dir = cache_dir, .no_fuse = a.no_fuse, .fuse_off = a.fuse_off};
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_session *s = NULL;
	mlc_status st = mlc_session_open(a.spec, &o, d, &s);
	if (st == MLC_OK)
		st = mlc_params_prepare(s, d); /* cold JIT + initializers */
	mlc_jit_stats warm = {0};
	if (st == MLC_OK) {
		mlc_jit *j = NULL;
		st = mlc_jit_compile_opts(s->graph, &(mlc_jit_opts){.cache_dir = cache_dir}, &warm, d, &j);
		mlc_jit_free(j);
		if (st == MLC_OK && (!s->jit_stats.stored || !warm.hit))
			fprintf(stderr, "mlc_bench: warning: the JIT cache did not work (%s)\n",
				s->jit_stats.why ? s->jit_stats.why : "stored but missed");
	}
	remove_cache(cache_dir);
	if (st == MLC_OK && (!s->fn[MLC_ENTRY_TRAIN] || !s->loss)) {
		mlc_error_file(d, a.spec, "no train step to time: the model has no loss or no trainable parameters");
		st = MLC_EUSER;
	}
	if (st != MLC_OK) {
		mlc_session_close(s);
		mlc_diag_free(d);
		return st == MLC_EINTERNAL ? 1 : 2;
	}
	mlc_rng r;
	mlc_rng_seed(&r, 1);
	fill_inputs(s, &r);
	float hyper[4] = {(float)(a.lr > 0 ? a.lr : s->model ? s->model->opt.lr : 0.01)};
	/* --predict times the inference entry instead (a forward pass) */
	mlc_entry_fn train = s->fn[a.predict ? MLC_ENTRY_PREDICT : MLC_ENTRY_TRAIN];
	for (long i = 0; i < a.warmup; i++)
		train(s->params, s->act, s->batch, hyper);
	double *ms = mlc_xmalloc(sizeof(double) * (size_t)a.steps), sum = 0, min = INFINITY;
	for (long i = 0; i < a.steps; i++) {
		double t = mlc_now();
		train(s->params, s->act, s->batch, hyper);
		ms[i] = 1e3 * (mlc_now() - t);
		sum += ms[i];
		min = ms[i] < min ? ms[i] : min;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("mlc model=%s batch=%lld threads=%d steps=%ld median_ms=%.4g min_ms=%.4g mean_ms=%.4g "
	       "peak_rss_mb=%.1f jit_cold_ms=%.1f jit_warm_ms=%.1f loss=%.5g jit_cold_cpu_ms=%.1f "
	       "jit_warm_cpu_ms=%.1f jit_codegen_ms=%.1f jit_opt_ms=%.1f jit_mc_ms=%.1f fuse=%s gflops=%.1f\n",
	       s->graph->name ? s->graph->name : "?", (long long)s->batch, s->graph->threads, a.steps,
	       median(ms, a.steps), min, sum / (double)a.steps, (double)ru.ru_maxrss / 1024.0,
	       s->jit_stats.total_ms, warm.total_ms, (double)s->act[s->loss->offset],
	       s->jit_stats.total_cpu_ms, warm.total_cpu_ms, s->jit_stats.codegen_ms,
	       s->jit_stats.optimize_ms, s->jit_stats.compile_ms - s->jit_stats.optimize_ms,
	       a.no_fuse ? "off" : a.fuse_off ? a.fuse_off : "on",
	       step_flops(s->graph, s->batch) / (median(ms, a.steps) * 1e-3) / 1e9);
	free(ms);
	mlc_session_close(s);
	mlc_diag_free(d);
	return 0;
}
