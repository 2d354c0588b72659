/* mlc_bench.c — times mlc's JIT'd train step (forward + backward + optimizer
 * update) on any spec, with random inputs and valid labels, so no data file
 * is needed. Prints one line of key=value pairs that bench/run.sh parses:
 *   mlc model=NAME batch=64 threads=1 steps=200 median_ms=... min_ms=...
 *       mean_ms=... peak_rss_mb=... jit_ms=... loss=...
 * Built on the internal session API (runtime/session.h), like the CLI's
 * `mlc run`, minus the data loading. */
#include "session.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char usage[] =
	"usage: mlc_bench [--batch N] [--steps K] [--warmup W] [--threads T] [--lr X] MODEL.yaml\n"
	"  times K train steps (after W warm-up steps) on random data; prints median/min/mean ms\n";

typedef struct {
	const char *spec;
	long batch, steps, warmup, threads;
	double lr;
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
	if (!a->spec)
		fputs(usage, stderr);
	return a->spec != NULL;
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

int main(int argc, char **argv)
{
	bench_args a;
	if (!parse_args(argc, argv, &a))
		return 2;
	mlc_options o = {.batch_size = a.batch, .threads = (int)a.threads, .quiet = 1, .log = stderr};
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_session *s = NULL;
	mlc_status st = mlc_session_open(a.spec, &o, d, &s);
	double t0 = mlc_now();
	if (st == MLC_OK)
		st = mlc_params_prepare(s, d); /* JIT + initializers */
	double jit_ms = 1e3 * (mlc_now() - t0);
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
	mlc_entry_fn train = s->fn[MLC_ENTRY_TRAIN];
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
	       "peak_rss_mb=%.1f jit_ms=%.1f loss=%.5g\n",
	       s->graph->name ? s->graph->name : "?", (long long)s->batch, s->graph->threads, a.steps,
	       median(ms, a.steps), min, sum / (double)a.steps, (double)ru.ru_maxrss / 1024.0, jit_ms,
	       (double)s->act[s->loss->offset]);
	free(ms);
	mlc_session_close(s);
	mlc_diag_free(d);
	return 0;
}
