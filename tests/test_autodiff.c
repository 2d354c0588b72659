/* test_autodiff.c — mlc_gradients as a function: gradients with respect to an
 * intermediate, two calls on one graph that must not disturb each other, and
 * the error for an op without a gradient rule on a path the gradient needs.
 * Gradients are checked against the reference evaluator in double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "passes/passes.h"
#include "refeval.h"

enum { N = 3 };

typedef struct {
	mlc_graph *g;
	mlc_node *x, *w, *t, *h, *p, *root1, *root2;
} net;

/* h = x·wᵀ, p = tanh(h); root1 = mse(p, t), root2 = mse(h, t) */
static net build(void)
{
	net m;
	m.g = mlc_graph_new("t");
	int64_t xd[] = {MLC_BATCH, 3}, wd[] = {2, 3}, td[] = {MLC_BATCH, 2};
	mlc_loc at = {"t.yaml", 1, 1};
	m.x = mlc_source(m.g, OP_INPUT, "x", DT_F32, 2, xd, at);
	m.w = mlc_source(m.g, OP_PARAM, "w", DT_F32, 2, wd, at);
	m.t = mlc_source(m.g, OP_INPUT, "t", DT_F32, 2, td, at);
	mlc_attrs tb;
	mlc_attrs_default(OP_MATMUL, &tb, m.g->arena);
	tb.i[1] = 1;
	m.h = mlc_build(m.g, OP_MATMUL, m.w, &tb, m.x, m.w, NULL);
	m.p = mlc_build(m.g, OP_TANH, m.w, NULL, m.h, NULL, NULL);
	m.root1 = mlc_build(m.g, OP_MSE, m.t, NULL, m.p, m.t, NULL);
	m.root2 = mlc_build(m.g, OP_MSE, m.t, NULL, m.h, m.t, NULL);
	return m;
}

static void fill(const net *m, double **val)
{
	mlc_node *src[] = {m->x, m->w, m->t};
	for (int s = 0; s < 3; s++) {
		double *v = ref_val(m->g, val, src[s]);
		for (int64_t k = 0; k < mlc_numel(src[s], N); k++)
			v[k] = 0.1 + 0.37 * (double)((k * 5 + s * 3) % 7) - 0.9 * (double)(s == 2);
	}
}

/* d root / d w[k] by central differences */
static double fd(const net *m, double **val, const mlc_node *root, int64_t k)
{
	double *w = ref_val(m->g, val, m->w), w0 = w[k], h = 1e-6;
	w[k] = w0 + h;
	ref_eval(m->g, N, 0.0, val);
	double up = ref_val(m->g, val, root)[0];
	w[k] = w0 - h;
	ref_eval(m->g, N, 0.0, val);
	double down = ref_val(m->g, val, root)[0];
	w[k] = w0;
	ref_eval(m->g, N, 0.0, val);
	return (up - down) / (2 * h);
}

static void test_wrt_intermediate(void **state)
{
	(void)state;
	net m = build();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_node *wrt[] = {m.h, m.w}, *grads[2];
	assert_int_equal(mlc_gradients(m.g, m.root1, 2, wrt, grads, d), MLC_OK);
	assert_non_null(grads[0]);
	assert_non_null(grads[1]);
	assert_true(mlc_same_shape(grads[0], m.h));
	double **val = ref_alloc(m.g, N);
	fill(&m, val);
	ref_eval(m.g, N, 0.0, val);
	/* d mse(tanh h, t) / d h = 2 (p - t) / numel · (1 - p²) */
	const double *p = ref_val(m.g, val, m.p), *t = ref_val(m.g, val, m.t), *gh = ref_val(m.g, val, grads[0]);
	for (int64_t k = 0; k < N * 2; k++)
		assert_float_equal(gh[k], 2 * (p[k] - t[k]) / (N * 2) * (1 - p[k] * p[k]), 1e-12);
	for (int64_t k = 0; k < 6; k++)
		assert_float_equal(ref_val(m.g, val, grads[1])[k], fd(&m, val, m.root1, k), 1e-7);
	ref_free(m.g, val);
	mlc_diag_free(d);
	mlc_graph_free(m.g);
}

/* A second root's gradients are new nodes; the first call's stay as built. */
static void test_two_calls(void **state)
{
	(void)state;
	net m = build();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_node *wrt[] = {m.w}, *g1, *g2, *g2h;
	assert_int_equal(mlc_gradients(m.g, m.root1, 1, wrt, &g1, d), MLC_OK);
	int after1 = m.g->nnode;
	mlc_node *g1src[MLC_MAX_SRC];
	memcpy(g1src, g1->src, sizeof g1src);
	mlc_node *wrt2[] = {m.w, m.h}, *out2[2];
	assert_int_equal(mlc_gradients(m.g, m.root2, 2, wrt2, out2, d), MLC_OK);
	g2 = out2[0], g2h = out2[1];
	assert_non_null(g2);
	assert_non_null(g2h);
	assert_ptr_not_equal(g1, g2);
	assert_memory_equal(g1src, g1->src, sizeof g1src);
	/* the second call built only after the first's nodes */
	for (int i = 0; i < after1; i++)
		assert_ptr_not_equal(m.g->node[i], g2);
	double **val = ref_alloc(m.g, N);
	fill(&m, val);
	ref_eval(m.g, N, 0.0, val);
	for (int64_t k = 0; k < 6; k++) {
		double want1 = fd(&m, val, m.root1, k), want2 = fd(&m, val, m.root2, k);
		assert_float_equal(ref_val(m.g, val, g1)[k], want1, 1e-7);
		assert_float_equal(ref_val(m.g, val, g2)[k], want2, 1e-7);
		assert_true(fabs(want1 - want2) > 1e-6); /* the two roots differ, so mixing would show */
	}
	/* d mse(h, t) / d h = 2 (h - t) / numel */
	const double *h = ref_val(m.g, val, m.h), *t = ref_val(m.g, val, m.t);
	for (int64_t k = 0; k < N * 2; k++)
		assert_float_equal(ref_val(m.g, val, g2h)[k], 2 * (h[k] - t[k]) / (N * 2), 1e-12);
	ref_free(m.g, val);
	mlc_diag_free(d);
	mlc_graph_free(m.g);
}

/* A value the root does not depend on has no gradient. */
static void test_unrelated(void **state)
{
	(void)state;
	net m = build();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_node *wrt[] = {m.p}, *gp = m.p;
	assert_int_equal(mlc_gradients(m.g, m.root2, 1, wrt, &gp, d), MLC_OK);
	assert_null(gp);
	mlc_diag_free(d);
	mlc_graph_free(m.g);
}

static void test_root_not_scalar(void **state)
{
	(void)state;
	net m = build();
	capture c;
	cap_begin(&c);
	mlc_node *wrt[] = {m.w}, *gw;
	assert_int_equal(mlc_gradients(m.g, m.h, 1, wrt, &gw, c.d), MLC_EUSER);
	assert_non_null(strstr(cap_text(&c), "t.yaml:1:1: error: autodiff: the root of a gradient must be a scalar"));
	cap_end(&c);
	mlc_graph_free(m.g);
}

/* relu_grad (no gradient rule) on the path from the loss to the weight. */
static const char hand_written[] =
	"graph bad {\n"
	"  %x = input : f32[N,3]\n"
	"  %w = param : f32[2,3]  # d1 @ m.yaml:4:5\n"
	"  %2 = matmul(%x, %w) {tb=1} : f32[N,2]  # d1 @ m.yaml:4:5\n"
	"  %3 = relu(%2) : f32[N,2]  # d1 @ m.yaml:4:5\n"
	"  %4 = relu_grad(%3, %2) : f32[N,2]  # d2 @ m.yaml:6:5\n"
	"  %t = input : f32[N,2]\n"
	"  %6 = mse(%4, %t) : f32[]  # @ m.yaml:8:1\n"
	"  ret loss = %6\n"
	"}\n";

static void test_no_rule_on_path(void **state)
{
	(void)state;
	capture c;
	cap_begin(&c);
	mlc_graph *g;
	assert_int_equal(mlc_graph_parse("bad.ir", hand_written, c.d, &g), MLC_OK);
	mlc_pass_opts o = {.max_batch = 4, .threads = 1};
	assert_int_equal(mlc_run_passes(g, &o, "autodiff", c.d), MLC_EUSER);
	const char *text = cap_text(&c);
	assert_non_null(strstr(text, "m.yaml:6:5: error: autodiff: op 'relu_grad' (layer 'd2') has no gradient rule, and the gradient with respect to 'w' must pass through it"));
	assert_null(mlc_graph_find_ret(g, "grad.w"));
	cap_end(&c);
	mlc_graph_free(g);
}

/* The same op off the path (the root does not reach it) is no error. */
static void test_no_rule_off_path(void **state)
{
	(void)state;
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_graph *g;
	char text[sizeof hand_written + 64];
	/* the loss reads relu's output; relu_grad only feeds "pred" */
	snprintf(text, sizeof text, "%s", hand_written);
	char *at = strstr(text, "mse(%4");
	memcpy(at, "mse(%3", 6);
	char *ret = strstr(text, "  ret loss");
	memmove(ret + 16, ret, strlen(ret) + 1);
	memcpy(ret, "  ret pred = %4\n", 16);
	assert_int_equal(mlc_graph_parse("ok.ir", text, d, &g), MLC_OK);
	mlc_pass_opts o = {.max_batch = 4, .threads = 1};
	assert_int_equal(mlc_run_passes(g, &o, "autodiff", d), MLC_OK);
	assert_non_null(mlc_graph_find_ret(g, "grad.w"));
	mlc_diag_free(d);
	mlc_graph_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrt_intermediate), cmocka_unit_test(test_two_calls),
		cmocka_unit_test(test_unrelated),        cmocka_unit_test(test_root_not_scalar),
		cmocka_unit_test(test_no_rule_on_path),  cmocka_unit_test(test_no_rule_off_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
