/* test_gradcheck.c — every differentiable op's gradient builder against
 * central finite differences, all in double precision through the reference
 * evaluator: autodiff builds the backward graph, refeval runs it, and each
 * gradient element is compared with (L(x+h) − L(x−h)) / 2h, to 1e-7 of
 * max(1, |gradient|) (measured errors are ~1e-10 at h = 1e-6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/conv.h"
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
 * (targets), "z*" every other element exactly 0, labels in [0, classes), the
 * rest ±(0.1..1). */
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
			else if (v->name[0] == 'z')
				x[k] = k % 2 ? 0 : away_from_zero();
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

/* Differentiates g (w.r.t. params and f32 inputs) and checks every gradient;
 * returns the largest error relative to max(1, |gradient|). */
static double check(mlc_graph *g, int64_t classes)
{
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	double **val = ref_alloc(g, N);
	fill(g, val, classes);
	loss_at(g, val);
	int checked = 0;
	double worst = 0;
	for (int r = 0; r < g->nret; r++) {
		if (strncmp(g->ret[r].key, "grad.", 5) != 0)
			continue;
		mlc_node *wrt = mlc_graph_find_value(g, g->ret[r].key + 5);
		assert_non_null(wrt);
		int64_t cnt = mlc_numel(wrt, N);
		/* at the unperturbed point: the last evaluation was a shifted one */
		loss_at(g, val);
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
			double scale = fmax(1.0, fmax(fabs(fd), fabs(analytic[k])));
			double tol = 1e-7 * scale;
			worst = fmax(worst, fabs(fd - analytic[k]) / scale);
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
	return worst;
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

/* The losses of issue 5, each alone and behind a dense layer, so the
 * gradient reaches a parameter through matmul and bias_add. */
static mlc_node *dense(mlc_graph *g, int64_t in, int64_t out)
{
	mlc_node *x = input(g, "x", in), *w = param(g, "w", 2, out, in), *b = param(g, "b", 1, out, 0);
	mlc_attrs at;
	mlc_attrs_default(OP_MATMUL, &at, g->arena);
	at.i[1] = 1;
	return op2(g, OP_BIAS_ADD, mlc_build(g, OP_MATMUL, x, &at, x, w, NULL), b);
}

static void report(const char *what, double worst)
{
	print_message("  %-28s max relative gradient error %.3g\n", what, worst);
}

static mlc_node *hinge(mlc_graph *g, mlc_node *z, double margin)
{
	mlc_attrs a;
	mlc_attrs_default(OP_HINGE, &a, g->arena);
	a.f[0] = margin;
	return mlc_build(g, OP_HINGE, z, &a, z, labels(g), NULL);
}

static void test_hinge(void **s)
{
	(void)s;
	static const double margins[] = {1, 0.35, 0};
	for (size_t k = 0; k < MLC_COUNTOF(margins); k++) {
		mlc_graph *g = mlc_graph_new("hinge");
		mlc_graph_ret(g, "loss", hinge(g, input(g, "x", 5), margins[k]));
		report("hinge", check(g, 5));
	}
	mlc_graph *g = mlc_graph_new("hinge_dense");
	mlc_graph_ret(g, "loss", hinge(g, dense(g, 4, 3), 1));
	report("dense → hinge", check(g, 3));
}

static void test_mae(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("mae");
	mlc_graph_ret(g, "loss", op2(g, OP_MAE, input(g, "x", 4), input(g, "t", 4)));
	report("mae", check(g, 1));
	g = mlc_graph_new("mae_dense");
	mlc_graph_ret(g, "loss", op2(g, OP_MAE, op1(g, OP_TANH, dense(g, 4, 3)), input(g, "t", 3)));
	report("dense → tanh → mae", check(g, 1));
}

static void test_bce_logits(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("bce_logits");
	mlc_graph_ret(g, "loss", op2(g, OP_BCE_LOGITS, input(g, "x", 3), input(g, "t", 3)));
	report("bce_logits", check(g, 1));
	g = mlc_graph_new("bce_logits_dense");
	mlc_graph_ret(g, "loss", op2(g, OP_BCE_LOGITS, dense(g, 4, 2), input(g, "t", 2)));
	report("dense → bce_logits", check(g, 1));
}

static void test_categorical_xent(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("categorical_xent");
	mlc_graph_ret(g, "loss", op2(g, OP_CATEGORICAL_XENT, input(g, "p", 4), labels(g)));
	report("categorical_xent", check(g, 4));
	/* an explicit softmax layer: the same loss as softmax_xent on its input */
	g = mlc_graph_new("softmax_categorical_xent");
	mlc_graph_ret(g, "loss", op2(g, OP_CATEGORICAL_XENT, op1(g, OP_SOFTMAX, dense(g, 4, 3)), labels(g)));
	report("dense → softmax → cat_xent", check(g, 3));
}

static void test_kl_div(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("kl_div");
	mlc_graph_ret(g, "loss", op2(g, OP_KL_DIV, input(g, "x", 5), input(g, "t", 5)));
	report("kl_div", check(g, 1));
	g = mlc_graph_new("kl_div_dense");
	mlc_graph_ret(g, "loss", op2(g, OP_KL_DIV, dense(g, 4, 3), op1(g, OP_SOFTMAX, input(g, "tz", 3))));
	report("dense → kl_div", check(g, 1));
}

static void test_scale(void **s) { (void)s; unary_case(OP_SCALE, -1.5); }

/* The distillation loss as the frontend composes it, on a dense student and a
 * frozen dense teacher: the student's weights get the gradient of
 * (1 − α)·CE + α·T²·KL(softmax(zt/T) ‖ softmax(zs/T)), the teacher's none.
 * The teacher's output is a target (PyTorch's teacher under no_grad), so here
 * it reads an input of its own: through a shared input, finite differences
 * would also see the teacher move. */
static mlc_graph *distillation(double temperature, double alpha)
{
	mlc_graph *g = mlc_graph_new("distillation");
	mlc_node *zs = dense(g, 4, 3);
	mlc_node *u = input(g, "u", 4);
	mlc_node *tw = param(g, "teacher.w", 2, 3, 4);
	tw->attr.i[2] = 0; /* frozen */
	mlc_attrs at;
	mlc_attrs_default(OP_MATMUL, &at, g->arena);
	at.i[1] = 1;
	mlc_node *zt = mlc_build(g, OP_MATMUL, u, &at, u, tw, NULL);
	mlc_node *lab = labels(g);
	mlc_graph_ret(g, "loss", mlc_distill_loss(g, lab, zs, zt, lab, temperature, alpha));
	return g;
}

static void test_distillation(void **s)
{
	(void)s;
	static const double cases[][2] = {{4, 0.5}, {1, 0}, {2.5, 1}, {0.5, 0.3}};
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		char what[64];
		snprintf(what, sizeof what, "distillation T=%g alpha=%g", cases[i][0], cases[i][1]);
		report(what, check(distillation(cases[i][0], cases[i][1]), 3));
	}
	mlc_graph *g = distillation(4, 0.5);
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	assert_null(mlc_graph_find_ret(g, "grad.teacher.w"));
	assert_non_null(mlc_graph_find_ret(g, "grad.w"));
	mlc_diag_free(d);
	mlc_graph_free(g);
}

/* Fan-out: h feeds two branches that are added back (a residual), so the
 * gradients of h must be summed. */
/* The L1/L2 penalties on a weight that also feeds the loss (fan-out), with
 * elements at exactly 0, where |θ|'s gradient is 0 (and so is the central
 * difference). */
static void test_penalties(void **s)
{
	(void)s;
	for (int zeros = 0; zeros < 2; zeros++) {
		mlc_graph *g = mlc_graph_new("penalties");
		mlc_node *x = input(g, "x", 4), *w = param(g, zeros ? "zw" : "w", 2, 3, 4);
		mlc_attrs at, l1, l2;
		mlc_attrs_default(OP_MATMUL, &at, g->arena);
		at.i[1] = 1;
		mlc_attrs_default(OP_ABS_SUM, &l1, g->arena);
		mlc_attrs_default(OP_SUMSQ, &l2, g->arena);
		l1.f[0] = 0.3;
		l2.f[0] = 0.7;
		mlc_node *h = mlc_build(g, OP_MATMUL, x, &at, x, w, NULL);
		mlc_node *loss = op2(g, OP_MSE, h, input(g, "t", 3));
		loss = op2(g, OP_ADD, loss, mlc_build(g, OP_ABS_SUM, w, &l1, w, NULL, NULL));
		loss = op2(g, OP_ADD, loss, mlc_build(g, OP_SUMSQ, w, &l2, w, NULL, NULL));
		mlc_attrs sc;
		mlc_attrs_default(OP_SCALE, &sc, g->arena);
		sc.f[0] = 0.75; /* a weighted loss */
		loss = mlc_build(g, OP_SCALE, loss, &sc, loss, NULL, NULL);
		mlc_graph_ret(g, "loss", loss);
		check(g, 1);
	}
}

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

/* ---- layout, batchnorm and dropout ---- */

static mlc_node *input_nd(mlc_graph *g, const char *name, int rank, const int64_t *dim)
{
	return mlc_source(g, OP_INPUT, name, DT_F32, rank, dim, here);
}

/* flatten's gradient is reshape_like(dy, x). */
static void test_flatten(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("flatten");
	mlc_node *x = input_nd(g, "x", 3, (int64_t[]){MLC_BATCH, 2, 3});
	mlc_node *h = op1(g, OP_TANH, op1(g, OP_FLATTEN, x));
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, op2(g, OP_BIAS_ADD, h, param(g, "w", 1, 6, 0)), labels(g)));
	check(g, 6);
}

/* concat's gradient is two slices of dy, one per operand. */
static void test_concat(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("concat");
	mlc_node *a = input_nd(g, "a", 3, (int64_t[]){MLC_BATCH, 2, 3});
	mlc_node *b = op1(g, OP_TANH, op2(g, OP_BIAS_ADD, input_nd(g, "b", 3, (int64_t[]){MLC_BATCH, 2, 2}),
					   param(g, "w", 1, 2, 0)));
	mlc_node *c = op2(g, OP_CONCAT, a, b);
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, op1(g, OP_SIGMOID, c), input_nd(g, "t", 3, c->dim)));
	check(g, 1);
}

/* One batchnorm over x (rank 2: softmax cross-entropy; more: tanh + mse).
 * Training mode (inference 0): x through batchnorm_grad, gamma through
 * batchnorm_grad_gamma, beta through sum_rows. Each evaluation moves the
 * running statistics, which the training-mode output does not read, so the
 * finite differences are unaffected; they get no gradient (not trainable).
 * Inference mode (inference=1, a frozen layer or a teacher's): normalizes
 * with the running statistics even in training, so only x gets a gradient,
 * batchnorm_infer_grad's dy·γ/√(running_var + eps); gamma, beta and the
 * statistics are frozen. "p" names draw the running variances in (0.1, 0.9),
 * away from zero. The check is that every finite difference (which does see
 * the running statistics) matches: a gradient through the batch statistics
 * would not. */
static mlc_graph *batchnorm_graph(int rank, const int64_t *dim, double eps, bool inference)
{
	mlc_graph *g = mlc_graph_new(inference ? "batchnorm_inference" : "batchnorm");
	mlc_node *x = input_nd(g, "x", rank, dim);
	int64_t c = dim[rank - 1];
	mlc_node *src[5] = {x, param(g, "gamma", 1, c, 0), param(g, "beta", 1, c, 0),
			    param(g, "running_mean", 1, c, 0),
			    param(g, inference ? "p_running_var" : "running_var", 1, c, 0)};
	for (int k = inference ? 1 : 3; k < 5; k++)
		src[k]->attr.i[2] = 0;
	mlc_node *y = mlc_node_new(g, OP_BATCHNORM, 5, src, here);
	y->attr.f[1] = eps;
	y->attr.i[0] = inference;
	assert_true(mlc_ops[OP_BATCHNORM].shape(y, NULL));
	if (rank == 2) {
		mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, y, labels(g)));
	} else {
		mlc_node *t = input_nd(g, "t", rank, dim);
		mlc_graph_ret(g, "loss", op2(g, OP_MSE, op1(g, OP_TANH, y), t));
	}
	return g;
}

static void test_batchnorm(void **s)
{
	(void)s;
	check(batchnorm_graph(2, (int64_t[]){MLC_BATCH, 4}, 1e-5, false), 4);
	check(batchnorm_graph(3, (int64_t[]){MLC_BATCH, 2, 3}, 1e-5, false), 1);
	check(batchnorm_graph(4, (int64_t[]){MLC_BATCH, 2, 2, 2}, 0.1, false), 1);
}

static void batchnorm_inference_case(int rank, const int64_t *dim, double eps, int64_t classes)
{
	check(batchnorm_graph(rank, dim, eps, true), classes);
	/* the only gradient is x's, through batchnorm_infer_grad */
	mlc_graph *g = batchnorm_graph(rank, dim, eps, true);
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	mlc_diag_free(d);
	int grads = 0;
	for (int r = 0; r < g->nret; r++)
		grads += strncmp(g->ret[r].key, "grad.", 5) == 0;
	assert_int_equal(grads, 1);
	assert_int_equal(mlc_graph_find_ret(g, "grad.x")->op, OP_BATCHNORM_INFER_GRAD);
	for (int i = 0; i < g->nnode; i++)
		assert_true(g->node[i]->dead || (g->node[i]->op != OP_BATCHNORM_GRAD &&
						 g->node[i]->op != OP_BATCHNORM_GRAD_GAMMA));
	mlc_graph_free(g);
}

static void test_batchnorm_inference(void **s)
{
	(void)s;
	batchnorm_inference_case(2, (int64_t[]){MLC_BATCH, 4}, 1e-5, 4);
	batchnorm_inference_case(3, (int64_t[]){MLC_BATCH, 2, 3}, 1e-5, 1);
	batchnorm_inference_case(4, (int64_t[]){MLC_BATCH, 2, 2, 2}, 0.1, 1);
}

/* The whole pipeline on a batchnorm layer: gamma and beta are trained, the
 * running statistics (trainable=0) get neither a gradient nor an update, and
 * the verifier and planner accept the in-place statistics (they stay params). */
static void test_batchnorm_pipeline(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("bn_pipeline");
	mlc_node *x = input(g, "x", 4);
	mlc_node *src[5] = {x, param(g, "bn.weight", 1, 4, 0), param(g, "bn.bias", 1, 4, 0),
			    param(g, "bn.running_mean", 1, 4, 0), param(g, "bn.running_var", 1, 4, 0)};
	src[3]->attr.i[2] = src[4]->attr.i[2] = 0;
	mlc_node *y = mlc_node_new(g, OP_BATCHNORM, 5, src, here);
	assert_true(mlc_ops[OP_BATCHNORM].shape(y, NULL));
	mlc_graph_ret(g, "pred", y);
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, y, labels(g)));
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = 8, .momentum = 0.9};
	assert_int_equal(mlc_run_passes(g, &o, NULL, d), MLC_OK);
	assert_int_equal(mlc_diag_errors(d), 0);
	static const char *const want[] = {"grad.bn.weight", "grad.bn.bias", "update.bn.weight", "update.bn.bias"};
	for (size_t k = 0; k < MLC_COUNTOF(want); k++)
		assert_non_null(mlc_graph_find_ret(g, want[k]));
	for (int r = 0; r < g->nret; r++)
		assert_null(strstr(g->ret[r].key, "running"));
	assert_int_equal(src[3]->mem, MEM_PARAM);
	assert_int_equal(src[4]->mem, MEM_PARAM);
	assert_int_equal(y->mem, MEM_ACT);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

/* Dropout in training mode with ref_eval's fixed seed and step: the mask is a
 * constant, so the loss is smooth in x and dropout_grad must apply the same
 * mask (the builder copies p and key). */
static void test_dropout(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("dropout");
	mlc_node *x = input(g, "x", 6);
	mlc_attrs a;
	mlc_attrs_default(OP_DROPOUT, &a, g->arena);
	a.f[0] = 0.4;
	a.i[0] = 3;
	mlc_node *h = op2(g, OP_BIAS_ADD, x, param(g, "w", 1, 6, 0));
	mlc_node *y = mlc_build(g, OP_DROPOUT, h, &a, h, NULL, NULL);
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, op1(g, OP_TANH, y), input(g, "t", 6)));
	int kept = 0;
	for (int64_t i = 0; i < N * 6; i++)
		kept += ref_dropout_keep(0, 0, 3, i, 0.4);
	assert_true(kept > 0 && kept < N * 6); /* the mask both keeps and drops */
	check(g, 1);
}

/* ---- convolution and pooling ---- */

static mlc_node *nhwc(mlc_graph *g, const char *name, int64_t h, int64_t w, int64_t c)
{
	int64_t dim[] = {MLC_BATCH, h, w, c};
	return mlc_source(g, OP_INPUT, name, DT_F32, 4, dim, here);
}

/* an f32 input "t" (a target in (0, 1)) of v's shape */
static mlc_node *target_for(mlc_graph *g, const mlc_node *v)
{
	return mlc_source(g, OP_INPUT, "t", DT_F32, v->rank, v->dim, here);
}

/* The algo attribute conv2d() gives its node (ir/conv.h; 0 auto); the
 * gradient builders copy it to both gradients. */
static int64_t forced_algo;

/* attrs: stride_h, stride_w, pad_t, pad_l, pad_b, pad_r, dil_h, dil_w, groups */
static mlc_node *conv2d(mlc_graph *g, mlc_node *x, const char *wname, int64_t kh, int64_t kw, int64_t f,
			const int64_t *attrs)
{
	int64_t wd[] = {kh, kw, x->dim[3] / attrs[8], f};
	mlc_node *w = mlc_source(g, OP_PARAM, wname, DT_F32, 4, wd, here);
	mlc_attrs a;
	mlc_attrs_default(OP_CONV2D, &a, g->arena);
	memcpy(a.i, attrs, sizeof(int64_t) * 9);
	a.i[MLC_CONV_ALGO_SLOT] = forced_algo;
	return mlc_build(g, OP_CONV2D, x, &a, x, w, NULL);
}

/* attrs: size_h, size_w, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r */
static mlc_node *pool2d(mlc_graph *g, mlc_opcode op, mlc_node *x, const int64_t *attrs)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	memcpy(a.i, attrs, sizeof(int64_t) * 8);
	return mlc_build(g, op, x, &a, x, NULL, NULL);
}

/* conv2d → tanh → mse: the input and weight gradients of one geometry. */
static void conv_case(int64_t h, int64_t w, int64_t c, int64_t kh, int64_t kw, int64_t f, const int64_t *attrs)
{
	mlc_graph *g = mlc_graph_new("conv2d");
	mlc_node *y = op1(g, OP_TANH, conv2d(g, nhwc(g, "x", h, w, c), "w", kh, kw, f, attrs));
	mlc_graph_ret(g, "loss", op2(g, OP_MSE, y, target_for(g, y)));
	check(g, 1);
}

static void test_conv2d(void **s)
{
	(void)s;
	conv_case(5, 6, 2, 3, 3, 3, (int64_t[]){2, 2, 1, 0, 2, 1, 1, 1, 1}); /* stride, asymmetric pads */
	conv_case(6, 7, 2, 3, 2, 2, (int64_t[]){1, 2, 2, 1, 1, 0, 2, 1, 1}); /* dilation */
	conv_case(4, 5, 4, 2, 3, 6, (int64_t[]){1, 1, 0, 1, 1, 1, 1, 2, 2}); /* groups 2, dilation */
	conv_case(5, 5, 3, 3, 3, 6, (int64_t[]){2, 1, 1, 1, 1, 1, 1, 1, 3}); /* depthwise, multiplier 2 */
	conv_case(3, 4, 5, 1, 1, 3, (int64_t[]){1, 1, 0, 0, 0, 0, 1, 1, 1}); /* 1x1 */
	/* depthwise, multiplier 1: the direct kernels (conv_algo.c) */
	conv_case(5, 6, 8, 3, 3, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 8});  /* one vector, same */
	conv_case(6, 5, 6, 3, 3, 6, (int64_t[]){2, 2, 1, 1, 0, 1, 1, 1, 6});  /* masked, stride 2 */
	conv_case(4, 4, 10, 3, 2, 10, (int64_t[]){1, 1, 0, 1, 2, 0, 1, 1, 10}); /* 8 + 2 channels */
}

/* The shapes the direct kernels were written for, under both algorithms
 * (the reference evaluator ignores algo: the kernels themselves are compared
 * with it in test_codegen.c); autodiff gives both gradients the forward's. */
static void test_conv2d_algos(void **s)
{
	(void)s;
	for (forced_algo = MLC_CONV_GEMM; forced_algo <= MLC_CONV_DIRECT; forced_algo++) {
		mlc_graph *g = mlc_graph_new("algo");
		mlc_node *y = conv2d(g, nhwc(g, "x", 4, 4, 16), "w", 3, 3, 16, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
		mlc_graph_ret(g, "loss", op2(g, OP_MSE, y, target_for(g, y)));
		mlc_diag *d = mlc_diag_new(stderr);
		mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
		assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
		mlc_diag_free(d);
		int grads = 0;
		for (int i = 0; i < g->nnode; i++) {
			const mlc_node *n = g->node[i];
			if (!n->dead && (n->op == OP_CONV2D_GRAD_INPUT || n->op == OP_CONV2D_GRAD_WEIGHT)) {
				assert_int_equal(n->attr.i[MLC_CONV_ALGO_SLOT], forced_algo);
				grads++;
			}
		}
		assert_int_equal(grads, 2);
		mlc_graph_free(g);
		conv_case(5, 6, 3, 3, 3, 32, (int64_t[]){1, 1, 0, 0, 0, 0, 1, 1, 1}); /* K = 27, valid */
		conv_case(5, 4, 3, 3, 3, 32, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}); /* K = 27, same */
		conv_case(4, 5, 16, 3, 3, 16, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}); /* 16 → 16 pad 1 */
		conv_case(3, 3, 64, 1, 1, 16, (int64_t[]){1, 1, 0, 0, 0, 0, 1, 1, 1}); /* 1x1 64 → 16 */
		conv_case(5, 3, 64, 1, 1, 16, (int64_t[]){2, 2, 0, 0, 0, 0, 1, 1, 1}); /* stride 2 */
		conv_case(5, 7, 4, 3, 3, 10, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}); /* F = 10 */
		conv_case(7, 6, 3, 3, 3, 9, (int64_t[]){2, 2, 1, 2, 1, 0, 1, 1, 1}); /* stride 2, pads */
	}
	forced_algo = MLC_CONV_AUTO;
}

/* Random doubles make ties (and max switches within ±h) practically impossible. */
static void test_maxpool(void **s)
{
	(void)s;
	const int64_t attrs[][8] = {{2, 2, 2, 2, 0, 0, 0, 0}, {3, 3, 2, 2, 1, 1, 1, 1}, {3, 2, 1, 2, 0, 1, 2, 0}};
	for (size_t i = 0; i < MLC_COUNTOF(attrs); i++) {
		mlc_graph *g = mlc_graph_new("maxpool");
		mlc_node *x = op2(g, OP_BIAS_ADD, nhwc(g, "x", 5, 5, 2), param(g, "b", 1, 2, 0));
		mlc_node *y = pool2d(g, OP_MAXPOOL, x, attrs[i]);
		mlc_graph_ret(g, "loss", op2(g, OP_MSE, y, target_for(g, y)));
		check(g, 1);
	}
}

/* Padding is not counted in the mean: the corner windows divide by fewer. */
static void test_avgpool(void **s)
{
	(void)s;
	const int64_t attrs[][8] = {{3, 3, 2, 2, 1, 1, 1, 1}, {2, 3, 1, 2, 1, 0, 0, 2}};
	for (size_t i = 0; i < MLC_COUNTOF(attrs); i++) {
		mlc_graph *g = mlc_graph_new("avgpool");
		mlc_node *y = pool2d(g, OP_AVGPOOL, nhwc(g, "x", 5, 4, 3), attrs[i]);
		mlc_graph_ret(g, "loss", op2(g, OP_MSE, op1(g, OP_SIGMOID, y), target_for(g, y)));
		check(g, 1);
	}
}

static void test_global_avgpool(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("global_avgpool");
	mlc_node *y = op1(g, OP_GLOBAL_AVGPOOL, nhwc(g, "x", 3, 2, 4));
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, op2(g, OP_BIAS_ADD, y, param(g, "b", 1, 4, 0)), labels(g)));
	check(g, 4);
}

/* A small CNN: every gradient flows through two convolutions and all pools. */
static void test_cnn(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("cnn");
	mlc_node *h = conv2d(g, nhwc(g, "x", 6, 6, 2), "c1.w", 3, 3, 4, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
	h = op1(g, OP_TANH, op2(g, OP_BIAS_ADD, h, param(g, "c1.b", 1, 4, 0)));
	h = pool2d(g, OP_MAXPOOL, h, (int64_t[]){2, 2, 2, 2, 0, 0, 0, 0});
	h = conv2d(g, h, "c2.w", 2, 2, 4, (int64_t[]){1, 1, 0, 0, 1, 1, 1, 1, 2});
	h = pool2d(g, OP_AVGPOOL, op1(g, OP_SIGMOID, h), (int64_t[]){2, 2, 1, 1, 1, 1, 0, 0});
	h = op1(g, OP_GLOBAL_AVGPOOL, h);
	mlc_attrs at;
	mlc_attrs_default(OP_MATMUL, &at, g->arena);
	at.i[1] = 1;
	h = mlc_build(g, OP_MATMUL, h, &at, h, param(g, "fc.w", 2, 3, 4), NULL);
	mlc_graph_ret(g, "loss", op2(g, OP_SOFTMAX_XENT, h, labels(g)));
	check(g, 3);
}

/* ---- primitive ops (issue 11) ---- */

static mlc_node *with_axes(mlc_graph *g, mlc_opcode op, mlc_node *x, const char *axes, int keep)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.s = axes;
	a.i[0] = keep;
	return mlc_build(g, op, x, &a, x, NULL, NULL);
}

/* Σ y² · (a smooth weight): a scalar loss of any shape, built from primitives */
static mlc_node *sq_loss(mlc_graph *g, mlc_node *y)
{
	return with_axes(g, OP_SUM, op1(g, OP_SQUARE, op1(g, OP_TANH, y)), "", 0);
}

static mlc_node *cols_input(mlc_graph *g, const char *name, int64_t c)
{
	int64_t dim[] = {MLC_BATCH, c};
	return mlc_source(g, OP_INPUT, name, DT_F32, 2, dim, here);
}

/* Each binary op with each kind of broadcast operand, on either side. */
static void test_prim_binary(void **s)
{
	(void)s;
	static const mlc_opcode ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MINIMUM, OP_MAXIMUM};
	for (size_t o = 0; o < MLC_COUNTOF(ops); o++)
		for (int kind = 0; kind < 4; kind++)
			for (int swap = 0; swap < 2; swap++) {
				mlc_graph *g = mlc_graph_new(mlc_ops[ops[o]].name);
				mlc_node *a = op2(g, OP_BIAS_ADD, input(g, "x", 5), param(g, "w", 1, 5, 0));
				/* "p": in (0.1, 0.9), so a divisor stays away from 0 */
				mlc_node *b = kind == 0   ? cols_input(g, "pf", 5)
					      : kind == 1 ? param(g, "ps", 0, 0, 0)
					      : kind == 2 ? param(g, "pr", 1, 5, 0)
							  : cols_input(g, "pc", 1);
				if (ops[o] == OP_DIV && swap)
					a = op1(g, OP_SIGMOID, a); /* the divisor */
				mlc_node *y = swap ? op2(g, ops[o], b, a) : op2(g, ops[o], a, b);
				assert_int_equal(y->rank, 2);
				mlc_graph_ret(g, "loss", sq_loss(g, y));
				check(g, 1);
			}
}

static void test_prim_unary(void **s)
{
	(void)s;
	static const struct {
		mlc_opcode op;
		double f0, f1;
		bool positive;
	} cases[] = {
		{OP_NEG, 0, 0, false},    {OP_EXP, 0, 0, false},   {OP_LOG, 0, 0, true},
		{OP_SQRT, 0, 0, true},    {OP_SQUARE, 0, 0, false}, {OP_ABS, 0, 0, false},
		{OP_POW, 3, 0, false},    {OP_POW, 2, 0, false},   {OP_POW, 0.5, 0, true},
		{OP_POW, -1.5, 0, true},  {OP_POW, 1, 0, false},   {OP_CLAMP, -0.45, 0.55, false},
		{OP_CLAMP, 0, INFINITY, false},
	};
	for (size_t c = 0; c < MLC_COUNTOF(cases); c++) {
		mlc_graph *g = mlc_graph_new(mlc_ops[cases[c].op].name);
		mlc_node *x = cases[c].positive ? input(g, "p", 5) : input(g, "x", 5);
		mlc_node *w = param(g, "w", 1, 5, 0);
		mlc_node *h = cases[c].positive ? op2(g, OP_MUL, x, op1(g, OP_EXP, w)) : op2(g, OP_BIAS_ADD, x, w);
		mlc_attrs a;
		mlc_attrs_default(cases[c].op, &a, g->arena);
		if (mlc_ops[cases[c].op].attrs[0]) {
			a.f[0] = cases[c].f0;
			a.f[1] = cases[c].op == OP_CLAMP ? cases[c].f1 : a.f[1];
		}
		mlc_node *y = mlc_build(g, cases[c].op, h, &a, h, NULL, NULL);
		mlc_graph_ret(g, "loss", sq_loss(g, y));
		check(g, 1);
	}
}

/* sign, detach and the noise sources have a zero derivative: finite
 * differences agree, and the rest of the graph still gets its gradient. */
static void test_prim_zero_gradients(void **s)
{
	(void)s;
	static const mlc_opcode ops[] = {OP_SIGN, OP_RANDOM_NORMAL, OP_RANDOM_UNIFORM};
	for (size_t o = 0; o < MLC_COUNTOF(ops); o++) {
		mlc_graph *g = mlc_graph_new(mlc_ops[ops[o]].name);
		mlc_node *h = op2(g, OP_BIAS_ADD, input(g, "x", 4), param(g, "w", 1, 4, 0));
		mlc_graph_ret(g, "loss", sq_loss(g, op2(g, OP_MUL, op1(g, ops[o], h), op1(g, OP_TANH, h))));
		check(g, 1);
	}
}

/* detach(x)·x: the gradient is detach(x) = x, where finite differences see 2x. */
static void test_detach(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("detach");
	mlc_node *x = input(g, "x", 4);
	mlc_node *y = op2(g, OP_MUL, op1(g, OP_DETACH, x), x);
	mlc_graph_ret(g, "loss", with_axes(g, OP_SUM, y, "", 0));
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.wrt_inputs = true, .no_update = true, .max_batch = N};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	double **val = ref_alloc(g, N);
	fill(g, val, 1);
	ref_eval(g, N, 0, val);
	const double *gx = ref_val(g, val, mlc_graph_find_ret(g, "grad.x"));
	const double *xv = ref_val(g, val, x);
	for (int k = 0; k < N * 4; k++)
		assert_true(fabs(gx[k] - xv[k]) < 1e-12);
	ref_free(g, val);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

/* sum and mean over chosen axes of a rank-3 value, kept or dropped, and
 * their gradient op (broadcast) differentiated in turn. */
static void test_prim_reduce(void **s)
{
	(void)s;
	static const struct {
		const char *axes;
		int keep;
	} cases[] = {{"", 0}, {"0", 0}, {"1", 0}, {"2", 1}, {"-1", 0}, {"0,2", 0}, {"1,2", 1}};
	for (int mean = 0; mean < 2; mean++)
		for (size_t c = 0; c < MLC_COUNTOF(cases); c++) {
			mlc_graph *g = mlc_graph_new(mean ? "mean" : "sum");
			int64_t dim[] = {MLC_BATCH, 3, 4};
			mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 3, dim, here);
			mlc_node *h = op2(g, OP_BIAS_ADD, x, param(g, "w", 1, 4, 0));
			mlc_node *r = with_axes(g, mean ? OP_MEAN : OP_SUM, h, cases[c].axes, cases[c].keep);
			/* and back: broadcast(r, h) reads r in h's shape */
			mlc_attrs a;
			mlc_attrs_default(OP_BROADCAST, &a, g->arena);
			a.s = cases[c].axes;
			a.i[0] = mean;
			mlc_node *b = mlc_build(g, OP_BROADCAST, r, &a, op1(g, OP_TANH, r), h, NULL);
			mlc_graph_ret(g, "loss", op2(g, OP_ADD, sq_loss(g, r), sq_loss(g, op2(g, OP_MUL, b, h))));
			check(g, 1);
		}
}

/* Found when tried (issue 11): sum_rows and slice had no gradient, which
 * autodiff dropped without a word. */
static void test_sum_rows_gradient(void **s)
{
	(void)s;
	for (int rank = 2; rank <= 3; rank++) {
		mlc_graph *g = mlc_graph_new("sum_rows");
		int64_t dim[] = {MLC_BATCH, 3, 4};
		if (rank == 2)
			dim[1] = 4;
		mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, rank, dim, here);
		mlc_graph_ret(g, "loss", sq_loss(g, op1(g, OP_SUM_ROWS, op1(g, OP_TANH, x))));
		check(g, 1);
	}
}

static mlc_node *sliced(mlc_graph *g, mlc_opcode op, mlc_node *x, mlc_node *like, int64_t begin,
			int64_t size, int64_t axis)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.i[0] = begin;
	a.i[1] = size;
	a.i[2] = axis;
	return mlc_build(g, op, x, &a, x, like, NULL);
}

static void test_slice_gradient(void **s)
{
	(void)s;
	static const int64_t cases[][3] = {{1, 2, 1}, {0, 1, 1}, {2, 2, -1}, {0, 4, 2}, {1, 3, 2}};
	for (size_t c = 0; c < MLC_COUNTOF(cases); c++) {
		mlc_graph *g = mlc_graph_new("slice");
		int64_t dim[] = {MLC_BATCH, 3, 4};
		mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 3, dim, here);
		mlc_node *y = sliced(g, OP_SLICE, x, NULL, cases[c][0], cases[c][1], cases[c][2]);
		/* slice_grad in the forward graph: its own gradient is a slice */
		mlc_node *z = sliced(g, OP_SLICE_GRAD, op1(g, OP_TANH, y), x, cases[c][0], cases[c][1], cases[c][2]);
		mlc_graph_ret(g, "loss", op2(g, OP_ADD, sq_loss(g, y), sq_loss(g, op2(g, OP_MUL, z, x))));
		check(g, 1);
	}
}

static void test_reshape(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("reshape");
	mlc_node *h = op2(g, OP_BIAS_ADD, input(g, "x", 6), param(g, "w", 1, 6, 0));
	mlc_attrs a;
	mlc_attrs_default(OP_RESHAPE, &a, g->arena);
	a.s = "N,-1,3";
	mlc_node *r = mlc_build(g, OP_RESHAPE, h, &a, h, NULL, NULL);
	assert_int_equal(r->rank, 3);
	assert_int_equal(r->dim[1], 2);
	mlc_graph_ret(g, "loss", sq_loss(g, with_axes(g, OP_SUM, op1(g, OP_EXP, r), "1", 0)));
	check(g, 1);
}

/* The VAE's KL term −½·mean(Σ(1 + logvar − mu² − exp(logvar))) from
 * primitives, with a scalar constant broadcast into it. */
static void test_kl_term(void **s)
{
	(void)s;
	mlc_graph *g = mlc_graph_new("kl_term");
	mlc_node *mu = op2(g, OP_BIAS_ADD, input(g, "x", 4), param(g, "w", 1, 4, 0));
	mlc_node *lv = op2(g, OP_BIAS_ADD, input(g, "y", 4), param(g, "v", 1, 4, 0));
	mlc_node *one = mlc_source(g, OP_CONST, NULL, DT_F32, 0, NULL, here);
	one->attr.f[0] = 1;
	mlc_node *t = op2(g, OP_ADD, lv, one);
	t = op2(g, OP_SUB, op2(g, OP_SUB, t, op1(g, OP_SQUARE, mu)), op1(g, OP_EXP, lv));
	mlc_node *kl = op1(g, OP_NEG, with_axes(g, OP_MEAN, with_axes(g, OP_SUM, t, "1", 0), "", 0));
	mlc_attrs a;
	mlc_attrs_default(OP_SCALE, &a, g->arena);
	a.f[0] = 0.5;
	mlc_graph_ret(g, "loss", mlc_build(g, OP_SCALE, kl, &a, kl, NULL, NULL));
	check(g, 1);
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
		cmocka_unit_test(test_fanout_add),   cmocka_unit_test(test_penalties),   cmocka_unit_test(test_mlp),
		cmocka_unit_test(test_conv2d),       cmocka_unit_test(test_conv2d_algos),       cmocka_unit_test(test_maxpool),
		cmocka_unit_test(test_avgpool),      cmocka_unit_test(test_global_avgpool),
		cmocka_unit_test(test_cnn),
		cmocka_unit_test(test_flatten),      cmocka_unit_test(test_concat),
		cmocka_unit_test(test_batchnorm),    cmocka_unit_test(test_dropout),
		cmocka_unit_test(test_batchnorm_pipeline), cmocka_unit_test(test_batchnorm_inference),
		cmocka_unit_test(test_hinge),        cmocka_unit_test(test_mae),
		cmocka_unit_test(test_bce_logits),   cmocka_unit_test(test_categorical_xent),
		cmocka_unit_test(test_kl_div),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_distillation),
		cmocka_unit_test(test_prim_binary),  cmocka_unit_test(test_prim_unary),
		cmocka_unit_test(test_prim_zero_gradients), cmocka_unit_test(test_detach),
		cmocka_unit_test(test_prim_reduce),  cmocka_unit_test(test_sum_rows_gradient),
		cmocka_unit_test(test_slice_gradient), cmocka_unit_test(test_reshape),
		cmocka_unit_test(test_kl_term),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
