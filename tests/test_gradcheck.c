/* test_gradcheck.c — every differentiable op's gradient builder against
 * central finite differences, all in double precision through the reference
 * evaluator: autodiff builds the backward graph, refeval runs it, and each
 * gradient element is compared with (L(x+h) − L(x−h)) / 2h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "refeval.h"

enum { N = 3 }; /* batch */
static const mlc_loc here = {"gradcheck", 1, 1};

static uint64_t rng_state = 12345;
static double uniform(double lo, double hi)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Values away from the kinks of relu/leaky_relu/step, so differences are smooth. */
static double away_from_zero(void)
{
	double v = uniform(0.1, 1.0);
	return uniform(0, 1) < 0.5 ? -v : v;
}

static mlc_node *input(mlc_graph *g, const char *name, int64_t cols)
{
	int64_t dim[] = {MLC_BATCH, cols};
	return mlc_source(g, OP_INPUT, name, DT_F32, 2, dim, here);
}

static mlc_node *param(mlc_graph *g, const char *name, int rank, int64_t d0, int64_t d1)
{
	int64_t dim[] = {d0, d1};
	return mlc_source(g, OP_PARAM, name, DT_F32, rank, dim, here);
}

static mlc_node *labels(mlc_graph *g)
{
	int64_t dim[] = {MLC_BATCH};
	return mlc_source(g, OP_INPUT, "labels", DT_I32, 1, dim, here);
}

static mlc_node *op1(mlc_graph *g, mlc_opcode op, mlc_node *a)
{
	return mlc_build(g, op, a, NULL, a, NULL, NULL);
}

static mlc_node *op2(mlc_graph *g, mlc_opcode op, mlc_node *a, mlc_node *b)
{
	return mlc_build(g, op, a, NULL, a, b, NULL);
}

/* Fills inputs and params: "p*" in (0.1, 0.9) (probabilities), "t*" in (0, 1)
 * (targets), labels in [0, classes), the rest ±(0.1..1). */
static void fill(mlc_graph *g, double **val, int64_t classes)
{
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *v = g->node[i];
		if (v->dead || (v->op != OP_INPUT && v->op != OP_PARAM))
			continue;
		double *x = val[i];
		for (int64_t k = 0; k < mlc_numel(v, N); k++) {
			if (v->dtype == DT_I32)
				x[k] = (double)(k * 7 % classes);
			else if (v->name[0] == 'p')
				x[k] = uniform(0.1, 0.9);
			else if (v->name[0] == 't')
				x[k] = uniform(0.0, 1.0);
			else
				x[k] = away_from_zero();
		}
	}
}

static double loss_at(mlc_graph *g, double **val)
{
	ref_eval(g, N, 0.0, val);
	return ref_val(g, val, mlc_graph_find_ret(g, "loss"))[0];
}

/* Differentiates g (w.r.t. params and f32 inputs) and checks every gradient. */
static void check(mlc_graph *g, int64_t classes)
{
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	double **val = ref_alloc(g, N);
	fill(g, val, classes);
	loss_at(g, val);
	int checked = 0;
	for (int r = 0; r < g->nret; r++) {
		if (strncmp(g->ret[r].key, "grad.", 5) != 0)
			continue;
		mlc_node *wrt = mlc_graph_find_value(g, g->ret[r].key + 5);
		assert_non_null(wrt);
		int64_t cnt = mlc_numel(wrt, N);
		double *analytic = malloc(sizeof(double) * (size_t)cnt);
		memcpy(analytic, ref_val(g, val, g->ret[r].val), sizeof(double) * (size_t)cnt);
		double *x = ref_val(g, val, wrt);
		for (int64_t k = 0; k < cnt; k++) {
			const double h = 1e-6, x0 = x[k];
			x[k] = x0 + h;
			double up = loss_at(g, val);
			x[k] = x0 - h;
			double down = loss_at(g, val);
			x[k] = x0;
			double fd = (up - down) / (2 * h);
			double tol = 1e-6 * fmax(1.0, fmax(fabs(fd), fabs(analytic[k])));
			if (fabs(fd - analytic[k]) > tol)
				fail_msg("%s: d loss / d %s[%lld]: autodiff %.12g, finite difference %.12g", g->name,
					 wrt->name, (long long)k, analytic[k], fd);
			checked++;
		}
		free(analytic);
	}
	assert_true(checked > 0);
	ref_free(g, val);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

/* op(x) → mse against a target: checks the op's builder and mse's. */
static void unary_case(mlc_opcode op, double f0)
{
	mlc_graph *g = mlc_graph_new(mlc_ops[op].name);
	mlc_node *x = input(g, "x", 5);
	mlc_node *w = param(g, "w", 1, 5, 0); /* a parameter too, through bias_add */
	mlc_node *h = op2(g, OP_BIAS_ADD, x, w);
	mlc_node *y = mlc_build(g, op, h, NULL, h, NULL, NULL);
	y->attr.f[0] = f0 ? f0 : y->attr.f[0];
	mlc_ops[op].shape(y, NULL);
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, y, input(g, "t", 5)));
	check(g, 1);
}

static void test_relu(void **s) { (void)s; unary_case(OP_RELU, 0); }
static void test_leaky_relu(void **s) { (void)s; unary_case(OP_LEAKY_RELU, 0.2); }
static void test_sigmoid(void **s) { (void)s; unary_case(OP_SIGMOID, 0); }
static void test_sigmoid_slope(void **s) { (void)s; unary_case(OP_SIGMOID, 2.5); }
static void test_tanh(void **s) { (void)s; unary_case(OP_TANH, 0); }
static void test_softmax(void **s) { (void)s; unary_case(OP_SOFTMAX, 0); }

/* step: the true derivative is 0 (ste: 0 must agree with finite differences). */
static void test_step_true_gradient(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("step");
	mlc_node *x = input(g, "x", 4), *w = param(g, "w", 1, 4, 0);
	mlc_attrs a;
	mlc_attrs_default(OP_STEP, &a, g->arena);
	a.i[0] = 0;
	mlc_node *h = op2(g, OP_BIAS_ADD, x, w);
	mlc_node *y = mlc_build(g, OP_STEP, h, &a, h, NULL, NULL);
	mlc_node *z = op2(g, OP_ADD, y, op1(g, OP_TANH, h)); /* keep the loss smooth */
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, z, input(g, "t", 4)));
	check(g, 1);
}

/* step with the straight-through estimator: the gradient passes unchanged. */
static void test_step_straight_through(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("step_ste");
	mlc_node *x = input(g, "x", 4);
	mlc_node *y = op1(g, OP_STEP, x);
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, y, input(g, "t", 4)));
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	double **val = ref_alloc(g, N);
	fill(g, val, 1);
	ref_eval(g, N, 0, val);
	const double *gx = ref_val(g, val, mlc_graph_find_ret(g, "grad.x"));
	const double *yv = ref_val(g, val, y), *t = ref_val(g, val, mlc_graph_find_value(g, "t"));
	for (int k = 0; k < N * 4; k++)
		assert_true(fabs(gx[k] - 2 * (yv[k] - t[k]) / (N * 4)) < 1e-12);
	ref_free(g, val);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

/* matmul in all four transpose combinations, operands as parameters. */
static void test_matmul_transposes(void **s)
{
	(void)s;
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			mlc_graph *g = mlc_graph_new("matmul");
			mlc_node *a = ta ? param(g, "a", 2, 4, 3) : param(g, "a", 2, 3, 4);
			mlc_node *b = tb ? param(g, "b", 2, 5, 4) : param(g, "b", 2, 4, 5);
			mlc_attrs at;
			mlc_attrs_default(OP_MATMUL, &at, g->arena);
			at.i[0] = ta;
			at.i[1] = tb;
			mlc_node *c = mlc_build(g, OP_MATMUL, a, &at, a, b, NULL);
			int64_t td[] = {3, 5};
			mlc_node *t = mlc_source(g, OP_INPUT, "t", DT_F32, 2, td, here);
			mlc_graph_ret(g, "loss", op2(g, OP_MSE, op1(g, OP_TANH, c), t));
			check(g, 1);
		}
}

/* A dense layer as the frontend builds it: x·Wᵀ + b, input gradient included. */
static void test_dense(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("dense");
	mlc_node *x = input(g, "x", 4), *w = param(g, "w", 2, 3, 4), *b = param(g, "b", 1, 3, 0);
	mlc_attrs at;
	mlc_attrs_default(OP_MATMUL, &at, g->arena);
	at.i[1] = 1;
	mlc_node *h = op2(g, OP_BIAS_ADD, mlc_build(g, OP_MATMUL, x, &at, x, w, NULL), b);
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, h, labels(g)));
	check(g, 3);
}

static void test_bce(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("bce");
	mlc_graph_ret(g, "loss", op2(g, OP_BCE, input(g, "p", 3), input(g, "t", 3)));
	check(g, 1);
}

static void test_bce_after_sigmoid(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("bce_sigmoid");
	mlc_node *z = op2(g, OP_BIAS_ADD, input(g, "x", 3), param(g, "w", 1, 3, 0));
	mlc_graph_ret(g, "loss", op2(g, OP_BCE, op1(g, OP_SIGMOID, z), input(g, "t", 3)));
	check(g, 1);
}

static void test_mse(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("mse");
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, input(g, "x", 4), input(g, "t", 4)));
	check(g, 1);
}

static void test_softmax_xent(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("softmax_xent");
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, input(g, "x", 5), labels(g)));
	check(g, 5);
}

/* Fan-out: h feeds two branches that are added back (a residual), so the
 * gradients of h must be summed. */
static void test_fanout_add(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("fanout");
	mlc_node *x = input(g, "x", 4);
	mlc_node *h = op1(g, OP_TANH, op2(g, OP_BIAS_ADD, x, param(g, "w", 1, 4, 0)));
	mlc_node *r = op2(g, OP_ADD, op1(g, OP_SIGMOID, h), h);
	mlc_node *q = op2(g, OP_ADD, r, op1(g, OP_LEAKY_RELU, h));
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, q, labels(g)));
	check(g, 4);
}

/* A 3-layer MLP through every activation. */
static void test_mlp(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("mlp");
	mlc_attrs at;
	mlc_attrs_default(OP_MATMUL, &at, g->arena);
	at.i[1] = 1;
	mlc_node *h = input(g, "x", 6);
	const mlc_opcode acts[] = {OP_SIGMOID, OP_TANH, OP_LEAKY_RELU};
	const char *names[][2] = {{"l1.w", "l1.b"}, {"l2.w", "l2.b"}, {"l3.w", "l3.b"}};
	int64_t widths[] = {6, 5, 4, 3};
	for (int l = 0; l < 3; l++) {
		mlc_node *w = param(g, names[l][0], 2, widths[l + 1], widths[l]);
		mlc_node *b = param(g, names[l][1], 1, widths[l + 1], 0);
		h = op2(g, OP_BIAS_ADD, mlc_build(g, OP_MATMUL, h, &at, h, w, NULL), b);
		h = op1(g, acts[l], h);
	}
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, h, labels(g)));
	check(g, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relu),	     cmocka_unit_test(test_leaky_relu),
		cmocka_unit_test(test_sigmoid),	     cmocka_unit_test(test_sigmoid_slope),
		cmocka_unit_test(test_tanh),	     cmocka_unit_test(test_softmax),
		cmocka_unit_test(test_step_true_gradient), cmocka_unit_test(test_step_straight_through),
		cmocka_unit_test(test_matmul_transposes), cmocka_unit_test(test_dense),
		cmocka_unit_test(test_bce),	     cmocka_unit_test(test_bce_after_sigmoid),
		cmocka_unit_test(test_mse),	     cmocka_unit_test(test_softmax_xent),
		cmocka_unit_test(test_fanout_add),   cmocka_unit_test(test_mlp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
