/* conv_bench.c — per-layer times of the convolution kernels, im2col + GEMM
 * (algo 1) against the direct kernels (algo 2), forward and both gradients,
 * on the convolutions of bench/cnn.yaml (batch 64) and bench/resnet.yaml
 * (batch 32). Each kernel is the only op of a graph returned as "pred" and
 * timed through mlc_predict; the two algorithms alternate round by round so
 * machine noise hits both alike. Prints min and median ms and GFLOP/s, and
 * what mlc_conv_algo's heuristic picks (auto).
 *   conv_bench [--rounds R] [--iters K] [--threads T] */
#include "codegen/codegen.h"
#include "ir/conv.h"
#include "passes/passes.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	const char *name;
	int64_t n, h, w, c, kh, kw, f, s, p;
} layer;

static const layer layers[] = {
	{"cnn.c1 32x32x3 3x3/32", 64, 32, 32, 3, 3, 3, 32, 1, 0},
	{"cnn.c2 15x15x32 3x3/64", 64, 15, 15, 32, 3, 3, 64, 1, 0},
	{"cnn.c3 6x6x64 3x3/64", 64, 6, 6, 64, 3, 3, 64, 1, 0},
	{"res.c1 16x16x3 3x3/64 p1", 32, 16, 16, 3, 3, 3, 64, 1, 1},
	{"res.a 16x16x64 1x1/16", 32, 16, 16, 64, 1, 1, 16, 1, 0},
	{"res.b 16x16x16 3x3/16 p1", 32, 16, 16, 16, 3, 3, 16, 1, 1},
	{"res.c 16x16x16 1x1/64", 32, 16, 16, 16, 1, 1, 64, 1, 0},
};

static const mlc_opcode ops[] = {OP_CONV2D, OP_CONV2D_GRAD_INPUT, OP_CONV2D_GRAD_WEIGHT};
static const char *const op_names[] = {"fwd", "dx", "dw"};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
	mlc_graph *g;
	mlc_jit *j;
	mlc_entry_fn fn;
	float *params, *act;
	int resolved; /* mlc_conv_algo of the node */
} prog;

static mlc_node *conv(mlc_graph *g, mlc_opcode op, const layer *l, int algo, mlc_node *x, mlc_node *w,
		      mlc_node *dy)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.i[0] = a.i[1] = l->s;
	a.i[2] = a.i[3] = a.i[4] = a.i[5] = l->p;
	a.i[MLC_CONV_ALGO_SLOT] = algo;
	return mlc_build(g, op, NULL, &a, x, w, dy);
}

static bool build(const layer *l, int k, int algo, int threads, prog *p)
{
	mlc_graph *g = mlc_graph_new("conv");
	mlc_loc loc = {0};
	int64_t xd[] = {l->n, l->h, l->w, l->c}, wd[] = {l->kh, l->kw, l->c, l->f};
	mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 4, xd, loc);
	mlc_node *w = mlc_source(g, OP_PARAM, "w", DT_F32, 4, wd, loc);
	mlc_node *y = conv(g, OP_CONV2D, l, algo, x, w, NULL), *out = y;
	if (k > 0) {
		mlc_node *dy = mlc_source(g, OP_INPUT, "dy", DT_F32, 4, y->dim, loc);
		out = conv(g, ops[k], l, algo, x, w, dy);
	}
	mlc_graph_ret(g, "pred", out);
	mlc_conv_select(g); /* resolves auto; forced values stay */
	p->resolved = mlc_conv_algo(out);
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = l->n, .threads = threads};
	bool ok = mlc_dce(g, d) == MLC_OK && mlc_plan_memory(g, &o, d) == MLC_OK &&
		  mlc_jit_compile(g, d, &p->j) == MLC_OK;
	mlc_diag_free(d);
	if (!ok)
		return false;
	p->g = g;
	p->fn = mlc_jit_entry(p->j, MLC_ENTRY_PREDICT);
	p->params = calloc((size_t)g->param_size + 64, sizeof(float));
	p->act = calloc((size_t)g->act_size + 64, sizeof(float));
	srand(1);
	for (int64_t i = 0; i < g->param_size; i++)
		p->params[i] = (float)rand() / RAND_MAX - 0.5f;
	for (int64_t i = 0; i < g->act_size; i++)
		p->act[i] = (float)rand() / RAND_MAX - 0.5f;
	return true;
}

static void drop(prog *p)
{
	mlc_jit_free(p->j);
	mlc_graph_free(p->g);
	free(p->params);
	free(p->act);
}

static double time_once(prog *p, int64_t n, int iters)
{
	float hyper[MLC_HYPER_COUNT] = {0};
	double t = now();
	for (int i = 0; i < iters; i++)
		p->fn(p->params, p->act, n, hyper);
	return 1e3 * (now() - t) / iters;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = 7, iters = 20, threads = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--rounds") == 0)
			rounds = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--iters") == 0)
			iters = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = atoi(argv[i + 1]);
	}
	if (rounds < 1 || rounds > 99 || iters < 1 || threads < 1) {
		fputs("usage: conv_bench [--rounds R] [--iters K] [--threads T]\n", stderr);
		return 2;
	}
	openblas_set_num_threads(threads);
	printf("%-26s %-3s %5s | %-23s | %-23s | %6s %s\n", "layer", "op", "MFLOP", "gemm ms min/med GF/s",
	       "direct ms min/med GF/s", "d/g", "auto");
	for (size_t li = 0; li < MLC_COUNTOF(layers); li++) {
		const layer *l = &layers[li];
		int64_t oh = (l->h + 2 * l->p - l->kh) / l->s + 1, ow = (l->w + 2 * l->p - l->kw) / l->s + 1;
		double flop = 2.0 * (double)(l->n * oh * ow * l->f * l->kh * l->kw * l->c);
		for (int k = 0; k < 3; k++) {
			prog p[2], pa;
			if (!build(l, k, MLC_CONV_GEMM, threads, &p[0]) ||
			    !build(l, k, MLC_CONV_DIRECT, threads, &p[1]) ||
			    !build(l, k, MLC_CONV_AUTO, threads, &pa))
				return 1;
			double t[2][100];
			for (int a = 0; a < 2; a++)
				time_once(&p[a], l->n, 2); /* warm-up */
			for (int r = 0; r < rounds; r++)
				for (int a = 0; a < 2; a++) {
					int which = r % 2 ? 1 - a : a;
					t[which][r] = time_once(&p[which], l->n, iters);
				}
			/* both ran on the same inputs: their results must agree */
			const mlc_node *o0 = mlc_graph_find_ret(p[0].g, "pred"), *o1 = mlc_graph_find_ret(p[1].g, "pred");
			double err = 0, big = 0;
			for (int64_t i = 0; i < mlc_numel(o0, l->n); i++) {
				double u = p[0].act[o0->offset + i], v = p[1].act[o1->offset + i];
				err = fmax(err, fabs(u - v));
				big = fmax(big, fabs(u));
			}
			if (err > 1e-4 * fmax(big, 1)) {
				fprintf(stderr, "conv_bench: %s %s: gemm and direct differ by %g (max |y| %g)\n", l->name,
					op_names[k], err, big);
				return 1;
			}
			double mn[2], md[2];
			for (int a = 0; a < 2; a++) {
				qsort(t[a], (size_t)rounds, sizeof(double), cmp);
				mn[a] = t[a][0];
				md[a] = t[a][rounds / 2];
			}
			printf("%-26s %-3s %5.1f | %6.3f %6.3f %6.1f   | %6.3f %6.3f %6.1f   | %5.2fx %s%s\n", l->name,
			       op_names[k], flop / 1e6, mn[0], md[0], flop / md[0] / 1e6, mn[1], md[1],
			       flop / md[1] / 1e6, md[0] / md[1],
			       pa.resolved == MLC_CONV_DIRECT ? "direct" : "gemm",
			       p[1].resolved == MLC_CONV_DIRECT ? "" : " (direct n/a)");
			fflush(stdout);
			drop(&p[0]);
			drop(&p[1]);
			drop(&pa);
		}
	}
	return 0;
}
