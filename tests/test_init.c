/* test_init.c — initializers end to end from the spec: what init:/bias_init:
 * put on the param nodes, and what mlc_param_fill draws from them: bounds,
 * mean and standard deviation over large tensors against the formulas of
 * docs/spec.md ("Weights", computed here from fan_in/fan_out for dense and
 * conv2d weights), and the seeding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dense: 1000 units after a 500-wide input: fan_in 500, fan_out 1000, 500k weights */
enum { IN = 500, UNITS = 1000 };

static mlc_model *load(const char *layer_keys)
{
	char text[1024];
	snprintf(text, sizeof text,
		 "name: t\ninputs:\n  x: {shape: [%d]}\nlayers:\n  - dense: %d\n%s\nloss: mse\n", IN, UNITS,
		 layer_keys);
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_model *m = NULL;
	mlc_status st = mlc_frontend_load_text("t.yaml", text, strlen(text), d, &m);
	mlc_diag_free(d);
	if (st != MLC_OK)
		print_error("spec:\n%s\n", text);
	assert_int_equal(st, MLC_OK);
	return m;
}

static const mlc_node *param(const mlc_model *m, const char *name)
{
	const mlc_node *p = mlc_graph_find_value(m->graph, name);
	assert_non_null(p);
	assert_int_equal(p->op, OP_PARAM);
	return p;
}

typedef struct {
	double mean, sd, lo, hi;
	int64_t n;
} moments;

static float *draw(const mlc_node *p, uint64_t seed, int64_t *n)
{
	*n = mlc_numel(p, 1);
	float *w = malloc(sizeof(float) * (size_t)*n);
	mlc_rng r;
	mlc_rng_seed(&r, seed);
	assert_true(mlc_param_fill(&r, p, w));
	return w;
}

static moments measure(const mlc_node *p)
{
	int64_t n;
	float *w = draw(p, 42, &n);
	moments s = {0, 0, INFINITY, -INFINITY, n};
	for (int64_t i = 0; i < n; i++) {
		s.mean += w[i];
		s.lo = fmin(s.lo, w[i]);
		s.hi = fmax(s.hi, w[i]);
	}
	s.mean /= (double)n;
	for (int64_t i = 0; i < n; i++)
		s.sd += ((double)w[i] - s.mean) * ((double)w[i] - s.mean);
	s.sd = sqrt(s.sd / (double)(n - 1));
	free(w);
	return s;
}

/* The sample sd within 1%, or 5 standard errors for small tensors (the
 * relative standard error of a sample sd is about √(k/n), k = 0.2 for a
 * uniform and 0.5 for a normal). */
static void check_sd(const mlc_node *p, const moments *s, double sd, double k)
{
	double tol = fmax(0.01, 5 * sqrt(k / (double)s->n));
	if (fabs(s->sd / sd - 1) > tol)
		print_error("%s: sd %g, expected %g\n", p->name, s->sd, sd);
	assert_true(fabs(s->sd / sd - 1) <= tol);
}

/* U(c − a, c + a): inside the bounds and reaching near both (the chance of
 * missing the last 20/n of either end is below 1e-4), mean within 5 standard
 * errors. */
static void check_uniform(const mlc_node *p, double c, double a)
{
	moments s = measure(p);
	double sd = a / sqrt(3), slack = a * fmax(1e-3, 20.0 / (double)s.n);
	assert_true(s.lo >= c - a - 1e-6 * (fabs(c) + a) && s.hi <= c + a + 1e-6 * (fabs(c) + a));
	assert_true(s.lo < c - a + slack && s.hi > c + a - slack);
	assert_true(fabs(s.mean - c) < 5 * sd / sqrt((double)s.n));
	check_sd(p, &s, sd, 0.2);
}

/* N(c, sd²): mean and sd as above, and tails a uniform of that sd (bounded
 * by 1.73 sd) could not have: beyond 4 sd on both sides for large tensors,
 * beyond 2 sd for small ones. */
static void check_normal(const mlc_node *p, double c, double sd)
{
	moments s = measure(p);
	double t = s.n >= 100000 ? 4 : 2;
	assert_true(fabs(s.mean - c) < 5 * sd / sqrt((double)s.n));
	check_sd(p, &s, sd, 0.5);
	assert_true(s.hi > c + t * sd && s.lo < c - t * sd);
}

static void check_constant(const mlc_node *p, float v)
{
	int64_t n;
	float *w = draw(p, 42, &n);
	for (int64_t i = 0; i < n; i++)
		assert_true(w[i] == v);
	free(w);
}

typedef struct {
	const char *keys; /* the dense layer's keys */
	char dist;        /* 'u'niform, 'n'ormal, 'c'onstant */
	double center, width; /* uniform: half-width; normal: sd; constant: - */
} init_case;

static void test_dense_weights(void **state)
{
	(void)state;
	const double fi = IN, fo = UNITS;
	const init_case cases[] = {
		{"", 'u', 0, sqrt(6 / (fi + fo))}, /* the default: glorot_uniform */
		{"    init: glorot_uniform", 'u', 0, sqrt(6 / (fi + fo))},
		{"    init: xavier_uniform", 'u', 0, sqrt(6 / (fi + fo))},
		{"    init: {type: glorot_uniform, gain: 2}", 'u', 0, 2 * sqrt(6 / (fi + fo))},
		{"    init: glorot_normal", 'n', 0, sqrt(2 / (fi + fo))},
		{"    init: {type: xavier_normal, gain: 0.5}", 'n', 0, 0.5 * sqrt(2 / (fi + fo))},
		{"    init: he_uniform", 'u', 0, sqrt(6 / fi)},
		{"    init: kaiming_uniform", 'u', 0, sqrt(6 / fi)},
		{"    init: he_normal", 'n', 0, sqrt(2 / fi)},
		{"    init: {type: he_normal, mode: fan_out}", 'n', 0, sqrt(2 / fo)},
		/* gain √(2/(1+a²)), std = gain/√fan, uniform bound = √3·std */
		{"    init: {type: kaiming_normal, nonlinearity: leaky_relu, a: 0.2}", 'n', 0,
		 sqrt(2 / 1.04) / sqrt(fi)},
		{"    init: {type: he_uniform, nonlinearity: tanh}", 'u', 0, 5.0 / 3 * sqrt(3 / fi)},
		{"    init: {type: he_uniform, nonlinearity: linear, mode: fan_out}", 'u', 0, sqrt(3 / fo)},
		{"    init: {type: he_normal, nonlinearity: sigmoid}", 'n', 0, 1 / sqrt(fi)},
		{"    init: uniform", 'u', 0, 0.05},
		{"    init: {type: uniform, low: -0.1, high: 0.3}", 'u', 0.1, 0.2},
		{"    init: {type: uniform, high: 1}", 'u', 0.475, 0.525},
		{"    init: normal", 'n', 0, 0.05},
		{"    init: {type: normal, mean: 1, std: 0.02}", 'n', 1, 0.02},
		{"    init: {type: normal, std: 0.5}", 'n', 0, 0.5},
		{"    init: zeros", 'c', 0, 0},
		{"    init: ones", 'c', 1, 0},
		{"    init: {type: constant, value: -0.25}", 'c', -0.25, 0},
	};
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		const init_case *c = &cases[i];
		mlc_model *m = load(c->keys);
		const mlc_node *w = param(m, "dense1.weight");
		assert_int_equal(w->attr.i[0], IN);
		assert_int_equal(w->attr.i[1], UNITS);
		if (c->dist == 'u')
			check_uniform(w, c->center, c->width);
		else if (c->dist == 'n')
			check_normal(w, c->center, c->width);
		else
			check_constant(w, (float)c->center);
		check_constant(param(m, "dense1.bias"), 0); /* bias_init defaults to zeros */
		mlc_model_free(m);
	}
}

static void test_bias_init(void **state)
{
	(void)state;
	mlc_model *m = load("    bias_init: {type: constant, value: 0.1}");
	check_constant(param(m, "dense1.bias"), 0.1f);
	mlc_model_free(m);
	m = load("    bias_init: ones");
	check_constant(param(m, "dense1.bias"), 1);
	mlc_model_free(m);
	m = load("    bias_init: {type: uniform, low: 0, high: 1}\n    init: zeros");
	check_uniform(param(m, "dense1.bias"), 0.5, 0.5);
	check_constant(param(m, "dense1.weight"), 0);
	mlc_model_free(m);
	m = load("    bias_init: {type: normal, mean: -1, std: 0.1}");
	check_normal(param(m, "dense1.bias"), -1, 0.1);
	mlc_model_free(m);
}

/* conv2d: fan_in = KH·KW·C/groups, fan_out = KH·KW·F/groups (spec.md). */
static void test_conv_weights(void **state)
{
	(void)state;
	static const struct {
		const char *init;
		char dist;
		int groups;
	} cases[] = {
		{"glorot_uniform", 'u', 1}, {"he_normal", 'n', 1}, {"{type: he_uniform, mode: fan_out}", 'u', 2},
		{"glorot_normal", 'n', 4},
	};
	const double kh = 3, kw = 3, c = 32, fl = 256;
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "name: c\ninputs:\n  x: {shape: [8, 8, 32]}\nlayers:\n  - conv2d: 256\n    kernel: 3\n"
			 "    groups: %d\n    init: %s\nloss: mse\n", cases[i].groups, cases[i].init);
		mlc_diag *d = mlc_diag_new(stderr);
		mlc_model *m = NULL;
		assert_int_equal(mlc_frontend_load_text("c.yaml", text, strlen(text), d, &m), MLC_OK);
		mlc_diag_free(d);
		const mlc_node *w = param(m, "conv2d1.weight");
		double g = cases[i].groups, fi = kh * kw * c / g, fo = kh * kw * fl / g;
		assert_int_equal(w->attr.i[0], (int64_t)fi);
		assert_int_equal(w->attr.i[1], (int64_t)fo);
		if (i == 0)
			check_uniform(w, 0, sqrt(6 / (fi + fo)));
		else if (i == 1)
			check_normal(w, 0, sqrt(2 / fi));
		else if (i == 2)
			check_uniform(w, 0, sqrt(6 / fo));
		else
			check_normal(w, 0, sqrt(2 / (fi + fo)));
		mlc_model_free(m);
	}
}

/* The same seed draws the same values; another seed, different ones. */
static void test_seeding(void **state)
{
	(void)state;
	const char *inits[] = {"    init: glorot_uniform", "    init: he_normal",
			       "    init: {type: uniform, low: 0, high: 2}", "    init: {type: normal, mean: 3}"};
	for (size_t i = 0; i < MLC_COUNTOF(inits); i++) {
		mlc_model *m = load(inits[i]);
		const mlc_node *w = param(m, "dense1.weight");
		int64_t n;
		float *a = draw(w, 7, &n), *b = draw(w, 7, &n), *c = draw(w, 8, &n);
		assert_memory_equal(a, b, sizeof(float) * (size_t)n);
		int64_t same = 0;
		for (int64_t k = 0; k < n; k++)
			same += a[k] == c[k];
		assert_true(same < n / 100);
		free(a), free(b), free(c);
		mlc_model_free(m);
	}
}

/* What the IR carries: the canonical name and the resolved numbers. */
static void test_param_attrs(void **state)
{
	(void)state;
	mlc_model *m = load("    init: {type: kaiming_uniform, mode: fan_out}\n"
			    "    bias_init: {type: uniform, low: -1, high: 3}");
	const mlc_node *w = param(m, "dense1.weight"), *b = param(m, "dense1.bias");
	assert_string_equal(w->attr.s, "he_uniform");
	assert_true(fabs(w->attr.f[0] - sqrt((double)IN / UNITS)) < 1e-12); /* scale folds the mode */
	assert_string_equal(b->attr.s, "uniform");
	assert_true(b->attr.f[1] == 1 && b->attr.f[2] == 2); /* center, spread */
	mlc_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dense_weights), cmocka_unit_test(test_bias_init),
		cmocka_unit_test(test_conv_weights),  cmocka_unit_test(test_seeding),
		cmocka_unit_test(test_param_attrs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
