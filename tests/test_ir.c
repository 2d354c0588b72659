/* test_ir.c — the IR text form and the verifier: print → parse → print round
 * trips over hand-built graphs that use every op, exact located parse errors,
 * the verifier on good and hand-broken graphs, robustness against mangled
 * text, and the golden files in tests/ir/ (run with tests/ as the cwd). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ir/ir.h"
#include "ir/conv.h"
#include "passes/passes.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* A diagnostics sink whose output ends up in a string. */
typedef struct {
	FILE *f;
	char *buf;
	size_t len;
	mlc_diag *d;
} capture;

static void cap_open(capture *c)
{
	memset(c, 0, sizeof *c);
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	c->d = mlc_diag_new(c->f);
}

static char *cap_close(capture *c)
{
	mlc_diag_free(c->d);
	fclose(c->f);
	return c->buf;
}

static mlc_loc yloc(int line, int col)
{
	return (mlc_loc){"net.yaml", line, col};
}

static mlc_node *source(mlc_graph *g, mlc_opcode op, const char *name, mlc_dtype t, int rank, int64_t d0,
			int64_t d1, const char *layer, mlc_loc loc)
{
	int64_t dim[2] = {d0, d1};
	mlc_node *n = mlc_source(g, op, name, t, rank, dim, loc);
	n->layer = layer ? mlc_arena_strdup(g->arena, layer) : NULL;
	return n;
}

static mlc_attrs attrs(mlc_opcode op, mlc_graph *g)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	return a;
}

/* Layout, batchnorm and dropout ops, appended after the rest so that the
 * ids the tests below name stay put. */
static void add_struct_ops(mlc_graph *g)
{
	int64_t dim[] = {MLC_BATCH, 2, 2, 3};
	mlc_node *img = mlc_source(g, OP_INPUT, "img", DT_F32, 4, dim, yloc(6, 3));
	mlc_node *fl = mlc_build(g, OP_FLATTEN, img, NULL, img, NULL, NULL);
	mlc_node *rl = mlc_build(g, OP_RESHAPE_LIKE, img, NULL, fl, img, NULL);
	mlc_node *cc = mlc_build(g, OP_CONCAT, img, NULL, rl, img, NULL);
	mlc_attrs sa = attrs(OP_SLICE, g);
	sa.i[0] = 1;
	sa.i[1] = 4;
	mlc_node *sl = mlc_build(g, OP_SLICE, img, &sa, cc, NULL, NULL);
	const char *names[] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
	const char *inits[] = {"ones", "zeros", "zeros", "ones"};
	mlc_node *src[5] = {sl};
	for (int k = 0; k < 4; k++) {
		src[k + 1] = source(g, OP_PARAM, names[k], DT_F32, 1, 4, 0, "bn", yloc(12, 7));
		src[k + 1]->attr.s = inits[k];
		src[k + 1]->attr.i[2] = k < 2; /* running statistics are not trained */
	}
	mlc_node *bn = mlc_node_new(g, OP_BATCHNORM, 5, src, yloc(12, 7));
	bn->layer = "bn";
	bn->attr.f[0] = 0.2;
	bn->attr.f[1] = 0.001;
	assert_true(mlc_ops[OP_BATCHNORM].shape(bn, NULL));
	mlc_node *bg = mlc_build(g, OP_BATCHNORM_GRAD, bn, &bn->attr, sl, src[1], bn);
	mlc_build(g, OP_BATCHNORM_GRAD_GAMMA, bn, &bn->attr, sl, bg, NULL);
	mlc_attrs da = attrs(OP_DROPOUT, g);
	da.f[0] = 0.25;
	da.i[0] = 41;
	mlc_node *dr = mlc_build(g, OP_DROPOUT, img, &da, bg, NULL, NULL);
	mlc_build(g, OP_DROPOUT_GRAD, img, &da, dr, NULL, NULL);
}

/* Convolution and pooling ops, appended after the rest like add_struct_ops. */
static void add_conv_ops(mlc_graph *g)
{
	int64_t xd[] = {MLC_BATCH, 7, 6, 4}, wd[] = {3, 3, 2, 6};
	mlc_node *x = mlc_source(g, OP_INPUT, "pic", DT_F32, 4, xd, yloc(20, 3));
	mlc_node *w = mlc_source(g, OP_PARAM, "conv.weight", DT_F32, 4, wd, yloc(22, 7));
	w->layer = "conv";
	mlc_attrs ca = attrs(OP_CONV2D, g);
	const int64_t conv[] = {2, 1, 1, 1, 0, 2, 1, 2, 2}; /* stride, pads t l b r, dilation, groups */
	memcpy(ca.i, conv, sizeof conv);
	mlc_node *y = mlc_build(g, OP_CONV2D, w, &ca, x, w, NULL);
	mlc_node *dx = mlc_build(g, OP_CONV2D_GRAD_INPUT, w, &ca, x, w, y);
	mlc_build(g, OP_CONV2D_GRAD_WEIGHT, w, &ca, dx, w, y);
	mlc_attrs pa = attrs(OP_MAXPOOL, g);
	const int64_t pool[] = {3, 2, 1, 2, 1, 0, 0, 1}; /* size, stride, pads t l b r */
	memcpy(pa.i, pool, sizeof pool);
	mlc_node *mp = mlc_build(g, OP_MAXPOOL, y, &pa, dx, NULL, NULL);
	mlc_build(g, OP_MAXPOOL_GRAD, y, &pa, dx, mp, NULL);
	mlc_node *ap = mlc_build(g, OP_AVGPOOL, y, &pa, x, NULL, NULL);
	mlc_build(g, OP_AVGPOOL_GRAD, y, &pa, x, ap, NULL);
	mlc_node *gp = mlc_build(g, OP_GLOBAL_AVGPOOL, NULL, NULL, ap, NULL, NULL);
	mlc_build(g, OP_GLOBAL_AVGPOOL_GRAD, NULL, NULL, ap, gp, NULL);
}

/* A graph that uses every op in ops.def, with attributes off their defaults,
 * layers and spec locations. */
/* The losses of issue 5 and their gradients; hinge with a non-default margin. */
static void add_loss_ops(mlc_graph *g, mlc_node *x, mlc_node *t, mlc_node *lab, mlc_node *one)
{
	mlc_attrs hm = attrs(OP_HINGE, g);
	hm.f[0] = 0.5;
	mlc_attrs hgm = attrs(OP_HINGE_GRAD, g);
	hgm.f[0] = 0.5;
	static const struct {
		mlc_opcode loss, grad;
		bool labels;
	} k[] = {
		{OP_HINGE, OP_HINGE_GRAD, true},
		{OP_MAE, OP_MAE_GRAD, false},
		{OP_BCE_LOGITS, OP_BCE_LOGITS_GRAD, false},
		{OP_CATEGORICAL_XENT, OP_CATEGORICAL_XENT_GRAD, true},
		{OP_KL_DIV, OP_KL_DIV_GRAD, false},
	};
	for (size_t i = 0; i < MLC_COUNTOF(k); i++) {
		mlc_node *y = k[i].labels ? lab : t;
		bool h = k[i].loss == OP_HINGE;
		mlc_graph_ret(g, mlc_ops[k[i].loss].name, mlc_build(g, k[i].loss, NULL, h ? &hm : NULL, x, y, NULL));
		mlc_graph_ret(g, mlc_ops[k[i].grad].name, mlc_build(g, k[i].grad, NULL, h ? &hgm : NULL, x, y, one));
	}
}

/* The primitive ops (issue 11), with non-default attributes: text axes
 * (a word and a quoted list), infinite clamp bounds, a column operand. */
static void add_prim_ops(mlc_graph *g, mlc_node *x, mlc_node *one)
{
	mlc_node *r = source(g, OP_PARAM, "prim.row", DT_F32, 1, 4, 0, "prim", yloc(20, 3));
	static const mlc_opcode bin[] = {OP_MUL, OP_SUB, OP_DIV, OP_MINIMUM, OP_MAXIMUM};
	mlc_node *h = x;
	for (size_t i = 0; i < MLC_COUNTOF(bin); i++)
		h = mlc_build(g, bin[i], NULL, NULL, h, i % 2 ? r : one, NULL);
	static const mlc_opcode un[] = {OP_NEG, OP_EXP, OP_LOG, OP_SQRT, OP_SQUARE, OP_ABS, OP_SIGN, OP_DETACH};
	for (size_t i = 0; i < MLC_COUNTOF(un); i++)
		h = mlc_build(g, un[i], NULL, NULL, h, NULL, NULL);
	mlc_attrs pw = attrs(OP_POW, g), cl = attrs(OP_CLAMP, g);
	pw.f[0] = -1.5;
	cl.f[0] = -0.25; /* max stays +inf */
	h = mlc_build(g, OP_CLAMP, NULL, &cl, mlc_build(g, OP_POW, NULL, &pw, h, NULL, NULL), NULL, NULL);
	mlc_graph_ret(g, "clamp_grad", mlc_build(g, OP_CLAMP_GRAD, NULL, &cl, h, x, NULL));
	mlc_attrs mm = attrs(OP_MINMAX_GRAD, g);
	mm.i[0] = 0;
	mlc_graph_ret(g, "minmax_grad", mlc_build(g, OP_MINMAX_GRAD, NULL, &mm, h, r, x));
	mlc_attrs sa = attrs(OP_SUM, g), ma = attrs(OP_MEAN, g);
	sa.s = "1";
	sa.i[0] = 1;
	ma.s = "0,1";
	mlc_node *col = mlc_build(g, OP_SUM, NULL, &sa, h, NULL, NULL);
	mlc_graph_ret(g, "col", mlc_build(g, OP_ADD, NULL, NULL, h, col, NULL));
	mlc_node *mean = mlc_build(g, OP_MEAN, NULL, &ma, h, NULL, NULL);
	mlc_attrs ba = attrs(OP_BROADCAST, g);
	ba.s = "0,1";
	ba.i[0] = 1;
	mlc_graph_ret(g, "broadcast", mlc_build(g, OP_BROADCAST, NULL, &ba, mean, h, NULL));
	mlc_attrs ra = attrs(OP_RESHAPE, g);
	ra.s = "N,2,-1";
	mlc_node *rs = mlc_build(g, OP_RESHAPE, NULL, &ra, h, NULL, NULL);
	mlc_attrs sl = attrs(OP_SLICE, g);
	sl.i[0] = 1;
	sl.i[2] = 1;
	mlc_node *sc = mlc_build(g, OP_SLICE, NULL, &sl, rs, NULL, NULL);
	mlc_graph_ret(g, "slice_grad", mlc_build(g, OP_SLICE_GRAD, NULL, &sl, sc, rs, NULL));
	mlc_attrs rn = attrs(OP_RANDOM_NORMAL, g), ru = attrs(OP_RANDOM_UNIFORM, g);
	rn.f[1] = 0.5;
	rn.i[0] = 7;
	ru.f[0] = -1;
	ru.i[1] = 1;
	mlc_graph_ret(g, "normal", mlc_build(g, OP_RANDOM_NORMAL, NULL, &rn, x, NULL, NULL));
	mlc_graph_ret(g, "uniform", mlc_build(g, OP_RANDOM_UNIFORM, NULL, &ru, x, NULL, NULL));
}

static mlc_graph *build_all_ops(void)
{
	mlc_graph *g = mlc_graph_new("all_ops");
	mlc_node *x = source(g, OP_INPUT, "x", DT_F32, 2, MLC_BATCH, 4, NULL, yloc(3, 3));
	mlc_node *t = source(g, OP_INPUT, "t", DT_F32, 2, MLC_BATCH, 4, NULL, yloc(4, 3));
	mlc_node *lab = source(g, OP_INPUT, "labels", DT_I32, 1, MLC_BATCH, 0, NULL, yloc(5, 3));
	mlc_node *w = source(g, OP_PARAM, "fc.weight", DT_F32, 2, 4, 4, "fc", yloc(8, 7));
	w->attr.i[0] = 4;
	w->attr.i[1] = 4;
	mlc_node *b = source(g, OP_PARAM, "fc.bias", DT_F32, 1, 4, 0, "fc", yloc(8, 7));
	b->attr.s = "zeros";
	mlc_node *v = source(g, OP_STATE, "fc.weight.velocity", DT_F32, 2, 4, 4, "fc", yloc(8, 7));
	mlc_node *one = source(g, OP_CONST, NULL, DT_F32, 0, 0, 0, NULL, (mlc_loc){0});
	one->attr.f[0] = 1;

	mlc_attrs a = attrs(OP_MATMUL, g);
	a.i[1] = 1;
	mlc_node *mm = mlc_build(g, OP_MATMUL, w, &a, x, w, NULL);
	mlc_node *ba = mlc_build(g, OP_BIAS_ADD, w, NULL, mm, b, NULL);
	mlc_node *ad = mlc_build(g, OP_ADD, w, NULL, ba, x, NULL);
	mlc_node *r = mlc_build(g, OP_RELU, NULL, NULL, ad, NULL, NULL);
	r->layer = "act";
	mlc_attrs al = attrs(OP_LEAKY_RELU, g);
	al.f[0] = 0.2;
	mlc_node *lr = mlc_build(g, OP_LEAKY_RELU, r, &al, r, NULL, NULL);
	mlc_attrs sl = attrs(OP_SIGMOID, g);
	sl.f[0] = 0.5;
	mlc_node *sg = mlc_build(g, OP_SIGMOID, x, &sl, lr, NULL, NULL);
	mlc_node *th = mlc_build(g, OP_TANH, x, NULL, sg, NULL, NULL);
	mlc_attrs ste = attrs(OP_STEP, g);
	ste.i[0] = 0;
	mlc_node *st = mlc_build(g, OP_STEP, x, &ste, th, NULL, NULL);
	mlc_node *sm = mlc_build(g, OP_SOFTMAX, x, NULL, st, NULL, NULL);
	mlc_node *rg = mlc_build(g, OP_RELU_GRAD, r, NULL, ad, sm, NULL);
	mlc_node *lrg = mlc_build(g, OP_LEAKY_RELU_GRAD, r, &al, r, rg, NULL);
	mlc_node *sgg = mlc_build(g, OP_SIGMOID_GRAD, x, &sl, sg, lrg, NULL);
	mlc_node *thg = mlc_build(g, OP_TANH_GRAD, x, NULL, th, sgg, NULL);
	mlc_node *stg = mlc_build(g, OP_STEP_GRAD, x, &ste, th, thg, NULL);
	mlc_node *smg = mlc_build(g, OP_SOFTMAX_GRAD, x, NULL, sm, stg, NULL);
	mlc_node *sr = mlc_build(g, OP_SUM_ROWS, b, NULL, smg, NULL, NULL);
	mlc_node *mse = mlc_build(g, OP_MSE, t, NULL, sm, t, NULL);
	mlc_node *bce = mlc_build(g, OP_BCE, t, NULL, sg, t, NULL);
	mlc_node *xe = mlc_build(g, OP_SOFTMAX_XENT, lab, NULL, th, lab, NULL);
	mlc_node *mg = mlc_build(g, OP_MSE_GRAD, t, NULL, sm, t, one);
	mlc_node *bg = mlc_build(g, OP_BCE_GRAD, t, NULL, sg, t, one);
	mlc_node *xg = mlc_build(g, OP_SOFTMAX_XENT_GRAD, lab, NULL, th, lab, one);
	mlc_attrs ta = attrs(OP_MATMUL, g);
	ta.i[0] = 1;
	mlc_node *gw = mlc_build(g, OP_MATMUL, w, &ta, x, mg, NULL);
	mlc_attrs sgd = attrs(OP_SGD, g);
	sgd.f[0] = 0.9;
	sgd.i[0] = 1;
	mlc_node *up = mlc_build(g, OP_SGD, w, &sgd, w, gw, v);
	mlc_graph_ret(g, "loss", mse);
	mlc_graph_ret(g, "pred", sm);
	mlc_graph_ret(g, "grad.fc.weight", gw);
	mlc_graph_ret(g, "grad.fc.bias", sr);
	mlc_graph_ret(g, "update.fc.weight", up);
	mlc_graph_ret(g, "bce", bce);
	mlc_graph_ret(g, "xent", xe);
	mlc_graph_ret(g, "bce_grad", bg);
	mlc_graph_ret(g, "xent_grad", xg);
	/* the other optimizers, each on a param of its own with non-default attributes */
	for (mlc_opcode o = OP_ADAM; o <= OP_ADADELTA; o++) {
		const char *nm = mlc_ops[o].name;
		mlc_node *src[4];
		src[0] = source(g, OP_PARAM, mlc_arena_printf(g->arena, "%s.bias", nm), DT_F32, 1, 4, 0, nm, yloc(8, 7));
		src[1] = sr;
		for (int k = 2; k < mlc_ops[o].arity; k++)
			src[k] = source(g, OP_STATE, mlc_arena_printf(g->arena, "%s.bias.s%d", nm, k), DT_F32, 1, 4, 0,
					nm, yloc(8, 7));
		mlc_attrs oa = attrs(o, g);
		oa.f[0] = 0.5;
		oa.f[1] = 0.25;
		mlc_graph_ret(g, mlc_arena_printf(g->arena, "update.%s.bias", nm),
			      mlc_build_n(g, o, src[0], &oa, mlc_ops[o].arity, src));
	}
	/* gradient clipping */
	mlc_attrs cn = attrs(OP_CLIP_COEF, g), cv = attrs(OP_CLIP_VALUE, g);
	cn.f[0] = 0.5;
	cv.f[0] = 0.25;
	mlc_node *ss = mlc_build(g, OP_SUMSQ, w, NULL, gw, NULL, NULL);
	mlc_node *cc = mlc_build(g, OP_CLIP_COEF, NULL, &cn, ss, NULL, NULL);
	mlc_node *pa = mlc_build(g, OP_ABS_SUM, w, &cn, gw, NULL, NULL);
	mlc_graph_ret(g, "scaled", mlc_build(g, OP_SCALE, w, &cv, pa, NULL, NULL));
	mlc_graph_ret(g, "l1", mlc_build(g, OP_ABS_SUM_GRAD, w, &cv, gw, pa, NULL));
	mlc_graph_ret(g, "l2", mlc_build(g, OP_SUMSQ_GRAD, w, &cv, gw, ss, NULL));
	mlc_graph_ret(g, "clipped", mlc_build(g, OP_CLIP_VALUE, w, &cv, mlc_build(g, OP_MUL_SCALAR, w, NULL, gw, cc, NULL),
					      NULL, NULL));
	add_struct_ops(g);
	add_conv_ops(g);
	add_loss_ops(g, x, t, lab, one);
	add_prim_ops(g, x, one);
	mlc_attrs sc = attrs(OP_SCALE, g);
	sc.f[0] = 0.25;
	mlc_graph_ret(g, "scaled_x", mlc_build(g, OP_SCALE, x, &sc, x, NULL, NULL));
	/* an inference-mode batchnorm (frozen) and its x gradient */
	const char *bn2[] = {"bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var"};
	mlc_node *bsrc[5] = {x};
	for (int k = 0; k < 4; k++) {
		bsrc[k + 1] = source(g, OP_PARAM, bn2[k], DT_F32, 1, 4, 0, "bn2", yloc(14, 7));
		bsrc[k + 1]->attr.i[2] = 0;
	}
	mlc_attrs ia = attrs(OP_BATCHNORM, g);
	ia.i[0] = 1;
	mlc_node *bi = mlc_build_n(g, OP_BATCHNORM, bsrc[1], &ia, 5, bsrc);
	mlc_attrs ig = attrs(OP_BATCHNORM_INFER_GRAD, g);
	ig.f[1] = 0.01;
	mlc_graph_ret(g, "bn2_dx", mlc_build(g, OP_BATCHNORM_INFER_GRAD, bi, &ig, bi, bsrc[1], bsrc[4]));
	return g;
}

/* The memory plan the planner would make: params and state in one arena,
 * updates aliasing their param, everything else in the other. */
static void plan(mlc_graph *g, int64_t max_batch)
{
	g->max_batch = max_batch;
	g->act_size = g->param_size = 0;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		/* with its scratch space (ir.h) right after it */
		int64_t k = (mlc_numel(n, max_batch) + 15) / 16 * 16 + mlc_scratch_elems(n, max_batch);
		if (mlc_op_is_update(n->op)) {
			n->mem = MEM_PARAM;
			n->offset = n->src[0]->offset;
		} else if (n->op == OP_PARAM || n->op == OP_STATE) {
			n->mem = MEM_PARAM;
			n->offset = g->param_size;
			g->param_size += k;
		} else {
			n->mem = MEM_ACT;
			n->offset = g->act_size;
			g->act_size += k;
		}
	}
}

static mlc_status parse(const char *file, const char *text, char **msgs, mlc_graph **out)
{
	capture c;
	cap_open(&c);
	mlc_status st = mlc_graph_parse(file, text, c.d, out);
	char *m = cap_close(&c);
	if (msgs)
		*msgs = m;
	else
		free(m);
	return st;
}

static void expect_same_node(const mlc_node *a, const mlc_node *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->dtype, b->dtype);
	assert_int_equal(a->rank, b->rank);
	for (int i = 0; i < a->rank; i++)
		assert_int_equal(a->dim[i], b->dim[i]);
	assert_int_equal(a->nsrc, b->nsrc);
	for (int k = 0; k < a->nsrc; k++)
		assert_int_equal(a->src[k]->id, b->src[k]->id);
	assert_memory_equal(a->attr.f, b->attr.f, sizeof a->attr.f);
	assert_memory_equal(a->attr.i, b->attr.i, sizeof a->attr.i);
	if (a->attr.s || b->attr.s)
		assert_string_equal(a->attr.s, b->attr.s);
	if (a->name || b->name)
		assert_string_equal(a->name, b->name);
	if (a->layer || b->layer)
		assert_string_equal(a->layer, b->layer);
	if (a->loc.file || b->loc.file)
		assert_string_equal(a->loc.file, b->loc.file);
	assert_int_equal(a->loc.line, b->loc.line);
	assert_int_equal(a->loc.col, b->loc.col);
}

/* print → parse → print must give the same text, and the parsed graph the
 * same nodes (ids included), results and plan. Returns the printed text. */
static char *roundtrip(const mlc_graph *g)
{
	char *t1 = mlc_graph_print_str(g);
	char *msgs;
	mlc_graph *g2;
	mlc_status st = parse("rt.ir", t1, &msgs, &g2);
	if (st != MLC_OK)
		print_message("%s%s", t1, msgs);
	assert_int_equal(st, MLC_OK);
	assert_string_equal(msgs, "");
	free(msgs);
	char *t2 = mlc_graph_print_str(g2);
	assert_string_equal(t1, t2);
	free(t2);
	int k = 0;
	for (int i = 0; i < g->nnode; i++) {
		if (g->node[i]->dead)
			continue;
		assert_true(k < g2->nnode);
		expect_same_node(g->node[i], g2->node[k++]);
	}
	assert_int_equal(k, g2->nnode);
	assert_int_equal(g->nret, g2->nret);
	for (int i = 0; i < g->nret; i++) {
		assert_string_equal(g->ret[i].key, g2->ret[i].key);
		assert_int_equal(g->ret[i].val->id, g2->ret[i].val->id);
	}
	assert_int_equal(g->act_size, g2->act_size);
	assert_int_equal(g->param_size, g2->param_size);
	if (g->act_size || g->param_size)
		assert_int_equal(g->max_batch, g2->max_batch);
	assert_string_equal(g->name, g2->name);
	mlc_graph_free(g2);
	return t1;
}

static mlc_status verify(const mlc_graph *g, char **msgs)
{
	capture c;
	cap_open(&c);
	mlc_status st = mlc_verify(g, c.d);
	char *m = cap_close(&c);
	if (msgs)
		*msgs = m;
	else
		free(m);
	return st;
}

static void expect_verify_ok(const mlc_graph *g)
{
	char *msgs;
	mlc_status st = verify(g, &msgs);
	assert_string_equal(msgs, "");
	assert_int_equal(st, MLC_OK);
	free(msgs);
}

static void expect_verify_error(const mlc_graph *g, const char *want)
{
	char *msgs;
	assert_int_equal(verify(g, &msgs), MLC_EINTERNAL);
	if (strcmp(msgs, want) != 0)
		print_message("got:\n%s", msgs);
	assert_string_equal(msgs, want);
	free(msgs);
}

static void expect_parse_error(const char *text, const char *want)
{
	char *msgs;
	mlc_graph *g = (mlc_graph *)1;
	assert_int_equal(parse("t.ir", text, &msgs, &g), MLC_EUSER);
	assert_null(g);
	if (strcmp(msgs, want) != 0)
		print_message("got:\n%s", msgs);
	assert_string_equal(msgs, want);
	free(msgs);
}

/* ---- printing and round trips ---- */

static void test_print_xor(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("xor");
	mlc_node *x = source(g, OP_INPUT, "x", DT_F32, 2, MLC_BATCH, 2, NULL, (mlc_loc){"xor.yaml", 4, 3});
	mlc_node *y = source(g, OP_INPUT, "y", DT_F32, 2, MLC_BATCH, 1, NULL, (mlc_loc){"xor.yaml", 5, 3});
	mlc_node *w = source(g, OP_PARAM, "h.weight", DT_F32, 2, 2, 2, "h", (mlc_loc){"xor.yaml", 7, 6});
	w->attr.i[0] = 2;
	w->attr.i[1] = 2;
	mlc_node *b = source(g, OP_PARAM, "h.bias", DT_F32, 1, 2, 0, "h", w->loc);
	b->attr.s = "zeros";
	mlc_attrs a = attrs(OP_MATMUL, g);
	a.i[1] = 1;
	mlc_node *mm = mlc_build(g, OP_MATMUL, w, &a, x, w, NULL);
	mlc_node *h = mlc_build(g, OP_SIGMOID, w, NULL, mlc_build(g, OP_BIAS_ADD, w, NULL, mm, b, NULL), NULL, NULL);
	mlc_node *dead = mlc_build(g, OP_RELU, w, NULL, h, NULL, NULL);
	dead->dead = true;
	mlc_node *loss = mlc_build(g, OP_MSE, NULL, NULL, h, h, NULL);
	mlc_node *one = source(g, OP_CONST, NULL, DT_F32, 0, 0, 0, NULL, (mlc_loc){0});
	one->attr.f[0] = 1;
	mlc_graph_ret(g, "loss", loss);
	mlc_graph_ret(g, "pred", h);
	mlc_graph_ret(g, "y", y);
	mlc_graph_ret(g, "one", one);
	expect_verify_ok(g);
	char *t = roundtrip(g);
	assert_string_equal(t, "graph xor {\n"
			       "  %x = input : f32[N,2]  # @ xor.yaml:4:3\n"
			       "  %y = input : f32[N,1]  # @ xor.yaml:5:3\n"
			       "  %h.weight = param {fan_in=2, fan_out=2} : f32[2,2]  # h @ xor.yaml:7:6\n"
			       "  %h.bias = param {init=zeros} : f32[2]  # h @ xor.yaml:7:6\n"
			       "  %4 = matmul(%x, %h.weight) {tb=1} : f32[N,2]  # h @ xor.yaml:7:6\n"
			       "  %5 = bias_add(%4, %h.bias) : f32[N,2]  # h @ xor.yaml:7:6\n"
			       "  %6 = sigmoid(%5) : f32[N,2]  # h @ xor.yaml:7:6\n"
			       "  %8 = mse(%6, %6) : f32[]\n"
			       "  %9 = const {value=1} : f32[]\n"
			       "  ret loss = %8\n"
			       "  ret pred = %6\n"
			       "  ret y = %y\n"
			       "  ret one = %9\n"
			       "}\n");
	free(t);
	mlc_graph_free(g);
}

static void test_roundtrip_all_ops(void **state)
{
	(void)state;
	mlc_graph *g = build_all_ops();
	bool seen[OP_COUNT] = {0};
	for (int i = 0; i < g->nnode; i++)
		seen[g->node[i]->op] = true;
	for (int op = 0; op < OP_COUNT; op++) {
		if (!seen[op])
			print_message("op %s is not covered\n", mlc_ops[op].name);
		assert_true(seen[op]);
	}
	expect_verify_ok(g);
	char *t = roundtrip(g);
	assert_non_null(strstr(t, "%17 = leaky_relu_grad(%10, %16) {alpha=0.2} : f32[N,4]  # act\n"));
	assert_non_null(strstr(t, "{momentum=0.9, nesterov=1}"));
	assert_non_null(strstr(t, "%29 = matmul(%x, %26) {ta=1} : f32[4,4]"));
	assert_non_null(strstr(t, " = conv2d(%pic, %conv.weight) {stride_h=2, pad_t=1, pad_l=1, pad_r=2, dil_w=2, "
				  "groups=2} : f32[N,3,5,6]  # conv @ net.yaml:22:7\n"));
	assert_non_null(strstr(t, ") {size_h=3, stride_h=1, pad_t=1, pad_r=1} : f32[N,6,3,4]  # conv @ net.yaml:22:7\n"));
	assert_non_null(strstr(t, " = global_avgpool(%"));
	assert_non_null(strstr(t, "%bn.running_var = param {init=ones, trainable=0} : f32[4]  # bn @ net.yaml:12:7\n"));
	assert_non_null(strstr(t, ", %bn.running_mean, %bn.running_var) {momentum=0.2, eps=0.001} : f32[N,2,2,4]"));
	assert_non_null(strstr(t, "%bn2.running_mean, %bn2.running_var) {inference=1} : f32[N,4]  # bn2 @ net.yaml:14:7\n"));
	assert_non_null(strstr(t, ", %bn2.weight, %bn2.running_var) {eps=0.01} : f32[N,4]  # bn2 @ net.yaml:14:7\n"));
	assert_non_null(strstr(t, "dropout_grad(%"));
	assert_non_null(strstr(t, ") {p=0.25, key=41} : f32[N,2,2,4]"));
	free(t);

	/* planned: a plan line and a memory slot on every value */
	plan(g, 64);
	expect_verify_ok(g);
	t = roundtrip(g);
	char head[128];
	snprintf(head, sizeof head, "graph all_ops {\n  plan max_batch=64 act=%lld param=%lld\n",
		 (long long)g->act_size, (long long)g->param_size);
	assert_memory_equal(t, head, strlen(head));
	assert_non_null(strstr(t, "%x = input : f32[N,4] @act+0  # @ net.yaml:3:3\n"));
	assert_non_null(strstr(t, "%fc.bias = param {init=zeros} : f32[4] @param+16  # fc @ net.yaml:8:7\n"));
	assert_non_null(strstr(t, "{momentum=0.9, nesterov=1} : f32[4,4] @param+0  # fc @ net.yaml:8:7\n"));
	free(t);
	mlc_graph_free(g);
}

static void test_float_attrs_exact(void **state)
{
	(void)state;
	static const double vals[] = {0.1, 1e-8, 0.3333333, (double)0.1f, (double)0.3333333f, 1.0 / 3, -0.0,
				      2.5, 1e300, 5e-324, -1.7976931348623157e308, INFINITY, -INFINITY,
				      123456789.125, 0.30000000000000004};
	static const char *const text[] = {"0.1", "1e-08", "0.3333333", "0.10000000149011612",
					   "0.3333333134651184", "0.3333333333333333", "-0", "2.5", "1e+300",
					   "4.94065645841247e-324", "-1.7976931348623157e+308", "inf", "-inf",
					   "123456789.125", "0.30000000000000004"};
	_Static_assert(MLC_COUNTOF(vals) == MLC_COUNTOF(text), "one text per value");
	mlc_graph *g = mlc_graph_new("floats");
	for (size_t i = 0; i < MLC_COUNTOF(vals); i++) {
		mlc_node *c = source(g, OP_CONST, NULL, DT_F32, 0, 0, 0, NULL, (mlc_loc){0});
		c->attr.f[0] = vals[i];
	}
	mlc_node *x = source(g, OP_INPUT, "x", DT_F32, 1, MLC_BATCH, 0, NULL, (mlc_loc){0});
	mlc_attrs a = attrs(OP_LEAKY_RELU, g);
	a.f[0] = 1e-8;
	mlc_build(g, OP_LEAKY_RELU, NULL, &a, x, NULL, NULL);
	char *t = roundtrip(g); /* compares every attribute bit for bit */
	for (size_t i = 0; i < MLC_COUNTOF(vals); i++) {
		char want[96];
		snprintf(want, sizeof want, "  %%%zu = const {value=%s} : f32[]\n", i, text[i]);
		if (!strstr(t, want))
			print_message("missing: %s", want);
		assert_non_null(strstr(t, want));
	}
	assert_non_null(strstr(t, "leaky_relu(%x) {alpha=1e-08}"));
	free(t);
	/* NaN keeps its NaN-ness (its payload is not promised) */
	mlc_node *c = g->node[0];
	c->attr.f[0] = NAN;
	t = mlc_graph_print_str(g);
	mlc_graph *g2;
	assert_int_equal(parse("nan.ir", t, NULL, &g2), MLC_OK);
	assert_true(isnan(g2->node[0]->attr.f[0]));
	free(t);
	mlc_graph_free(g2);
	mlc_graph_free(g);
}

static void test_quoting(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("my net");
	mlc_node *x = source(g, OP_INPUT, "my-x", DT_F32, 2, MLC_BATCH, 3, "in put",
			     (mlc_loc){"dir with space/n\"et.yaml", 1, 2});
	mlc_node *d = source(g, OP_INPUT, "3", DT_F32, 2, MLC_BATCH, 3, "a@b", (mlc_loc){"c:1", 10, 20});
	mlc_node *p = source(g, OP_PARAM, "w", DT_F32, 2, 3, 3, "\xc3\xa9t\xc3\xa9", (mlc_loc){"\xc3\xa9.yaml", 1, 1});
	p->attr.s = "he \"normal\"\n\t\\\x01";
	mlc_node *q = source(g, OP_PARAM, "w2", DT_F32, 1, 3, 0, NULL, (mlc_loc){0});
	q->attr.s = "7";
	mlc_node *s = mlc_build(g, OP_ADD, x, NULL, x, d, NULL);
	mlc_node *m = mlc_build(g, OP_MATMUL, d, NULL, s, p, NULL);
	mlc_graph_ret(g, "odd key", m);
	mlc_graph_ret(g, "3", d);
	expect_verify_ok(g);
	char *t = roundtrip(g);
	assert_string_equal(t, "graph \"my net\" {\n"
			       "  %\"my-x\" = input : f32[N,3]  # \"in put\" @ \"dir with space/n\\\"et.yaml\":1:2\n"
			       "  %\"3\" = input : f32[N,3]  # \"a@b\" @ c:1:10:20\n"
			       "  %w = param {init=\"he \\\"normal\\\"\\n\\t\\\\\\x01\"} : f32[3,3]  # \xc3\xa9t\xc3\xa9 @ \xc3\xa9.yaml:1:1\n"
			       "  %w2 = param {init=7} : f32[3]\n"
			       "  %4 = add(%\"my-x\", %\"3\") : f32[N,3]  # \"in put\" @ \"dir with space/n\\\"et.yaml\":1:2\n"
			       "  %5 = matmul(%4, %w) : f32[N,3]  # \"a@b\" @ c:1:10:20\n"
			       "  ret \"odd key\" = %5\n"
			       "  ret 3 = %\"3\"\n"
			       "}\n");
	free(t);
	mlc_graph_free(g);
}

/* Before shape inference a node's type is "?"; such graphs print, parse and verify. */
static void test_unknown_types(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("early");
	mlc_node *x = source(g, OP_INPUT, "x", DT_F32, 2, MLC_BATCH, 3, NULL, (mlc_loc){0});
	mlc_node *r = mlc_node_new(g, OP_RELU, 1, &x, (mlc_loc){"s.yaml", 2, 2});
	mlc_node *s = mlc_node_new(g, OP_SIGMOID, 1, &r, (mlc_loc){0});
	s->attr.f[0] = 2;
	mlc_graph_ret(g, "pred", s);
	expect_verify_ok(g);
	char *t = roundtrip(g);
	assert_string_equal(t, "graph early {\n"
			       "  %x = input : f32[N,3]\n"
			       "  %1 = relu(%x) : ?  # @ s.yaml:2:2\n"
			       "  %2 = sigmoid(%1) {slope=2} : ?\n"
			       "  ret pred = %2\n"
			       "}\n");
	free(t);
	mlc_graph_free(g);
}

/* Numbered values keep their numbers; named ones slot in where they were. */
static void test_ids(void **state)
{
	(void)state;
	mlc_graph *g;
	const char *text = "graph ids {\n"
			   "  %a = input : f32[N,2]\n"
			   "  %7 = relu(%a) : f32[N,2]\n"
			   "  %b = param : f32[2]\n"
			   "  %2 = bias_add(%7, %b) : f32[N,2]\n"
			   "  %c = state : f32[2]\n"
			   "  %d = state : f32[2]\n"
			   "  %3 = relu(%2) : f32[N,2]\n"
			   "}\n";
	assert_int_equal(parse("ids.ir", text, NULL, &g), MLC_OK);
	static const int want[] = {0, 7, 8, 2, 9, 10, 3};
	assert_int_equal(g->nnode, 7);
	for (int i = 0; i < 7; i++)
		assert_int_equal(g->node[i]->id, want[i]);
	assert_int_equal(g->next_id, 11);
	expect_verify_ok(g);
	char *t = mlc_graph_print_str(g);
	assert_string_equal(t, text);
	free(t);
	mlc_graph_free(g);

	/* free spacing, comments and CRLF line ends are accepted */
	text = "# a comment before the graph\r\n\r\n"
	       "graph   sp{   # header comment\r\n"
	       "\t%x=input:f32[N,2]   #   l1   @   f.yaml:1:2   \r\n"
	       "   # a full-line comment\n"
	       "  %1 = relu ( %x ) {  } :f32[N,2]  # not a location: two words\n"
	       "  %2 = leaky_relu(%1){ alpha = 0.5 }: f32[N,2]#l2\n"
	       "  ret   r=%2 # trailing\n"
	       "}  # done\n"
	       "# after\n";
	assert_int_equal(parse("sp.ir", text, NULL, &g), MLC_OK);
	t = mlc_graph_print_str(g);
	assert_string_equal(t, "graph sp {\n"
			       "  %x = input : f32[N,2]  # l1 @ f.yaml:1:2\n"
			       "  %1 = relu(%x) : f32[N,2]\n"
			       "  %2 = leaky_relu(%1) {alpha=0.5} : f32[N,2]  # l2\n"
			       "  ret r = %2\n"
			       "}\n");
	free(t);
	/* file names and layers are interned in the graph */
	assert_ptr_equal(g->node[0]->loc.file, g->node[0]->loc.file);
	mlc_graph_free(g);
}

/* ---- parse errors ---- */

/* A long source line is quoted as a window of at most 240 bytes around the
 * column, "..." marking each cut, the caret under the column; a short line
 * whole. Cuts never split a UTF-8 character. */
static void test_diag_long_line(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *text = malloc(n + 2);
	for (size_t i = 0; i < n; i++)
		text[i] = (char)('a' + i % 26);
	memcpy(text + 500000, "BAD", 3);
	text[n] = '\n';
	text[n + 1] = 0;
	capture c;
	cap_open(&c);
	mlc_diag_add_source(c.d, "big.csv", text, n + 1);
	mlc_error_at(c.d, (mlc_loc){"big.csv", 1, 500001}, "bad cell");
	mlc_error_at(c.d, (mlc_loc){"big.csv", 1, 3}, "at the start");
	mlc_error_at(c.d, (mlc_loc){"big.csv", 1, (int)n}, "at the end");
	char *out = cap_close(&c);
	assert_true(strlen(out) < 1600);
	/* the window: 120 bytes before the column, the column, what follows */
	char want[1024];
	snprintf(want, sizeof want, "big.csv:1:500001: error: bad cell\n  ...%.120sBAD%.117s...\n  %*s^\n",
		 text + 500000 - 120, text + 500003, 123, "");
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof want, "big.csv:1:3: error: at the start\n  %.240s...\n    ^\n", text);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof want, "big.csv:1:%d: error: at the end\n  ...%.240s\n  %*s^\n", (int)n,
		 text + n - 240, 3 + 239, "");
	assert_non_null(strstr(out, want));
	free(out);

	/* UTF-8: "é" is 2 bytes; a cut falling inside one moves past it */
	char u[600];
	size_t k = 0;
	for (int i = 0; i < 150; i++)
		u[k++] = 'x';
	for (int i = 0; i < 200; i++)
		u[k++] = (char)0xc3, u[k++] = (char)0xa9;
	u[k] = 0;
	cap_open(&c);
	mlc_diag_add_source(c.d, "u.csv", u, k);
	mlc_error_at(c.d, (mlc_loc){"u.csv", 1, 152}, "x");
	out = cap_close(&c);
	const char *q = strstr(out, "\n  ") + 3;
	const char *qe = strchr(q, '\n');
	for (const char *b = q; b < qe; b++)
		if (((unsigned char)*b & 0xc0) == 0xc0)
			assert_true(b + 1 < qe && ((unsigned char)b[1] & 0xc0) == 0x80);
	assert_true(((unsigned char)qe[-4] & 0xc0) != 0xc0); /* no lead byte just before "..." */
	free(out);
	free(text);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %1 = reluu(%x) : f32[N,2]\n"
			   "}\n",
			   "t.ir:3:8: error: unknown op 'reluu'; did you mean 'relu'?\n"
			   "    %1 = reluu(%x) : f32[N,2]\n"
			   "         ^\n");
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %1 = add(%x) : f32[N,2]\n"
			   "  %2 = relu(%x, %1) : f32[N,2]\n"
			   "  %3 = input(%x) : f32[N,2]\n"
			   "}\n",
			   "t.ir:3:8: error: add takes 2 operands, got 1\n"
			   "    %1 = add(%x) : f32[N,2]\n"
			   "         ^\n"
			   "t.ir:4:8: error: relu takes 1 operand, got 2\n"
			   "    %2 = relu(%x, %1) : f32[N,2]\n"
			   "         ^\n"
			   "t.ir:5:8: error: input takes 0 operands, got 1\n"
			   "    %3 = input(%x) : f32[N,2]\n"
			   "         ^\n");
}

static void test_parse_error_values(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %1 = add(%x, %y) : f32[N,2]\n"
			   "  %2 = relu(%1) : f32[N,2]\n"
			   "  %x = input : f32[N,2]\n"
			   "  %2 = relu(%7) : f32[N,2]\n"
			   "  ret out = %9\n"
			   "}\n",
			   "t.ir:3:16: error: undefined value %y\n"
			   "    %1 = add(%x, %y) : f32[N,2]\n"
			   "                 ^\n"
			   "t.ir:5:3: error: %x is defined twice\n"
			   "    %x = input : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:2:3: note: first defined here\n"
			   "    %x = input : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:6:3: error: %2 is defined twice\n"
			   "    %2 = relu(%7) : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:4:3: note: first defined here\n"
			   "    %2 = relu(%1) : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:6:13: error: undefined value %7\n"
			   "    %2 = relu(%7) : f32[N,2]\n"
			   "              ^\n"
			   "t.ir:7:13: error: undefined value %9\n"
			   "    ret out = %9\n"
			   "              ^\n");
}

static void test_parse_error_types(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : F32[N,2]\n"
			   "  %y = input : f32[N;2]\n"
			   "  %z = input : f32[N,2,1,1,1,1,1]\n"
			   "  %w = input : f32[N,-2]\n"
			   "  %v = input : f32[2,N]\n"
			   "  %u = input\n"
			   "  %t = input : ?\n"
			   "}\n",
			   "t.ir:2:16: error: unknown element type 'F32'; did you mean 'f32'?\n"
			   "    %x = input : F32[N,2]\n"
			   "                 ^\n"
			   "t.ir:3:21: error: expected ',' or ']' in the type, got ';'\n"
			   "    %y = input : f32[N;2]\n"
			   "                      ^\n"
			   "t.ir:4:32: error: a type has at most 6 dimensions\n"
			   "    %z = input : f32[N,2,1,1,1,1,1]\n"
			   "                                 ^\n"
			   "t.ir:5:22: error: expected a dimension (a number or N), got '-'\n"
			   "    %w = input : f32[N,-2]\n"
			   "                       ^\n"
			   "t.ir:6:16: error: dimension 1 of 'v' must be positive\n"
			   "    %v = input : f32[2,N]\n"
			   "                 ^\n"
			   "t.ir:7:13: error: expected ':' and a type, got end of line\n"
			   "    %u = input\n"
			   "              ^\n"
			   "t.ir:8:16: error: input needs a shape of rank 0 to 6\n"
			   "    %t = input : ?\n"
			   "                 ^\n");
	/* a written type is checked against the shape rule */
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %w = param : f32[3,4]  # fc @ m.yaml:3:4\n"
			   "  %1 = relu(%x) : f32[N,3]\n"
			   "  %2 = matmul(%x, %w) : f32[N,4]  # fc @ m.yaml:3:4\n"
			   "  %3 = relu(%2) : f32[N,4]\n"
			   "  %4 = relu(%1) : i32[N,3]\n"
			   "  %5 = relu(%x) : ?\n"
			   "  %6 = relu(%5) : f32[N,2]\n"
			   "}\n",
			   "t.ir:4:19: error: type f32[N,3] does not match f32[N,2], which relu gives\n"
			   "    %1 = relu(%x) : f32[N,3]\n"
			   "                    ^\n"
			   "t.ir:5:8: error: in layer 'fc': matmul inner dimensions differ: f32[N,2] x f32[3,4]\n"
			   "    %2 = matmul(%x, %w) : f32[N,4]  # fc @ m.yaml:3:4\n"
			   "         ^\n"
			   "t.ir:7:19: error: type i32[N,3] does not match f32[N,3], which relu gives\n"
			   "    %4 = relu(%1) : i32[N,3]\n"
			   "                    ^\n"
			   "t.ir:9:13: error: operand %5 has no type, so this one cannot be checked\n"
			   "    %6 = relu(%5) : f32[N,2]\n"
			   "              ^\n");
}

/* Convolution and pooling shape rules refuse bad geometry with located errors. */
static void test_parse_error_conv_shapes(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,8,8,3]\n"
			   "  %f = input : f32[N,784]\n"
			   "  %w = param : f32[3,3,3,4]  # conv1 @ m.yaml:3:4\n"
			   "  %w2 = param : f32[3,3,2,4]\n"
			   "  %big = param : f32[9,9,3,4]\n"
			   "  %wn = input : f32[N,3,3,4]\n"
			   "  %1 = conv2d(%f, %w) : f32[N,6,6,4]  # conv1 @ m.yaml:3:4\n"
			   "  %2 = conv2d(%x, %w2) : f32[N,6,6,4]  # conv2\n"
			   "  %3 = conv2d(%x, %w) {groups=2} : f32[N,6,6,4]\n"
			   "  %4 = conv2d(%x, %big) : f32[N,1,1,4]\n"
			   "  %5 = conv2d(%x, %w) {dil_h=4, dil_w=4} : f32[N,1,1,4]\n"
			   "  %6 = conv2d(%x, %w) {stride_w=0} : f32[N,6,6,4]\n"
			   "  %7 = conv2d(%x, %wn) : f32[N,6,6,4]\n"
			   "  %8 = conv2d_grad_input(%x, %w, %x) : f32[N,8,8,3]\n"
			   "  %9 = maxpool(%x) {size_h=3, pad_t=3} : f32[N,5,4,3]  # pool1\n"
			   "  %10 = avgpool(%x) {size_h=10, size_w=10} : f32[N,1,1,3]\n"
			   "  %11 = avgpool(%x) {pad_r=-1} : f32[N,4,4,3]\n"
			   "  %12 = maxpool_grad(%x, %x) : f32[N,8,8,3]\n"
			   "  %13 = global_avgpool(%f) : f32[N,784]\n"
			   "  %14 = global_avgpool_grad(%x, %x) : f32[N,8,8,3]\n"
			   "}\n",
			   "t.ir:8:8: error: in layer 'conv1': conv2d expects a 4-D input f32[N,H,W,C], got f32[N,784]\n"
			   "    %1 = conv2d(%f, %w) : f32[N,6,6,4]  # conv1 @ m.yaml:3:4\n"
			   "         ^\n"
			   "t.ir:9:8: error: in layer 'conv2': conv2d weight f32[3,3,2,4] does not fit input f32[N,8,8,3]: expected 3 input channels per group (groups=1), got 2\n"
			   "    %2 = conv2d(%x, %w2) : f32[N,6,6,4]  # conv2\n"
			   "         ^\n"
			   "t.ir:10:8: error: conv2d input f32[N,8,8,3] has 3 channels, which groups=2 does not divide\n"
			   "    %3 = conv2d(%x, %w) {groups=2} : f32[N,6,6,4]\n"
			   "         ^\n"
			   "t.ir:11:8: error: conv2d kernel 9x9 is larger than the padded input 8x8\n"
			   "    %4 = conv2d(%x, %big) : f32[N,1,1,4]\n"
			   "         ^\n"
			   "t.ir:12:8: error: conv2d kernel 3x3 (9x9 dilated) is larger than the padded input 8x8\n"
			   "    %5 = conv2d(%x, %w) {dil_h=4, dil_w=4} : f32[N,1,1,4]\n"
			   "         ^\n"
			   "t.ir:13:8: error: conv2d strides must be positive, got 1x0\n"
			   "    %6 = conv2d(%x, %w) {stride_w=0} : f32[N,6,6,4]\n"
			   "         ^\n"
			   "t.ir:14:8: error: conv2d expects a 4-D weight f32[KH,KW,C/groups,F], got f32[N,3,3,4]\n"
			   "    %7 = conv2d(%x, %wn) : f32[N,6,6,4]\n"
			   "         ^\n"
			   "t.ir:15:8: error: conv2d_grad_input expects dy of the conv2d output's shape f32[N,6,6,4], got f32[N,8,8,3]\n"
			   "    %8 = conv2d_grad_input(%x, %w, %x) : f32[N,8,8,3]\n"
			   "         ^\n"
			   "t.ir:16:8: error: in layer 'pool1': maxpool pads t=3 l=0 b=0 r=0 leave a 3x2 window (stride 2x2) with no input element\n"
			   "    %9 = maxpool(%x) {size_h=3, pad_t=3} : f32[N,5,4,3]  # pool1\n"
			   "         ^\n"
			   "t.ir:17:9: error: avgpool window 10x10 is larger than the padded input 8x8\n"
			   "    %10 = avgpool(%x) {size_h=10, size_w=10} : f32[N,1,1,3]\n"
			   "          ^\n"
			   "t.ir:18:9: error: avgpool pads must not be negative, got t=0 l=0 b=0 r=-1\n"
			   "    %11 = avgpool(%x) {pad_r=-1} : f32[N,4,4,3]\n"
			   "          ^\n"
			   "t.ir:19:9: error: maxpool_grad expects dy of the maxpool output's shape f32[N,4,4,3], got f32[N,8,8,3]\n"
			   "    %12 = maxpool_grad(%x, %x) : f32[N,8,8,3]\n"
			   "          ^\n"
			   "t.ir:20:9: error: global_avgpool expects a 4-D input f32[N,H,W,C], got f32[N,784]\n"
			   "    %13 = global_avgpool(%f) : f32[N,784]\n"
			   "          ^\n"
			   "t.ir:21:9: error: global_avgpool_grad expects dy of the global_avgpool output's shape f32[N,3], got f32[N,8,8,3]\n"
			   "    %14 = global_avgpool_grad(%x, %x) : f32[N,8,8,3]\n"
			   "          ^\n");
}

static void test_parse_error_attrs(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %1 = leaky_relu(%x) {alpah=0.1} : f32[N,2]\n"
			   "  %2 = relu(%x) {alpha=0.1} : f32[N,2]\n"
			   "  %3 = matmul(%x, %x) {ta=1, ta=1} : f32[2,2]\n"
			   "  %4 = matmul(%x, %x) {ta=yes} : f32[2,2]\n"
			   "  %5 = leaky_relu(%x) {alpha=\"0.1\"} : f32[N,2]\n"
			   "  %6 = leaky_relu(%x) {alpha=1e999x} : f32[N,2]\n"
			   "  %7 = leaky_relu(%x) {alpha 1} : f32[N,2]\n"
			   "  %8 = leaky_relu(%x) {alpha=1 : f32[N,2]\n"
			   "  %w = param {init=\"a\\qb\"} : f32[2]\n"
			   "  %w2 = param {init=\"ab} : f32[2]\n"
			   "}\n",
			   "t.ir:3:24: error: leaky_relu has no attribute 'alpah'; did you mean 'alpha'?\n"
			   "    %1 = leaky_relu(%x) {alpah=0.1} : f32[N,2]\n"
			   "                         ^\n"
			   "t.ir:4:18: error: relu has no attribute 'alpha'\n"
			   "    %2 = relu(%x) {alpha=0.1} : f32[N,2]\n"
			   "                   ^\n"
			   "t.ir:5:30: error: attribute 'ta' is given twice\n"
			   "    %3 = matmul(%x, %x) {ta=1, ta=1} : f32[2,2]\n"
			   "                               ^\n"
			   "t.ir:6:27: error: attribute 'ta' of matmul expects an integer, got 'yes'\n"
			   "    %4 = matmul(%x, %x) {ta=yes} : f32[2,2]\n"
			   "                            ^\n"
			   "t.ir:7:30: error: attribute 'alpha' of leaky_relu expects a number, got '0.1'\n"
			   "    %5 = leaky_relu(%x) {alpha=\"0.1\"} : f32[N,2]\n"
			   "                               ^\n"
			   "t.ir:8:30: error: attribute 'alpha' of leaky_relu expects a number, got '1e999x'\n"
			   "    %6 = leaky_relu(%x) {alpha=1e999x} : f32[N,2]\n"
			   "                               ^\n"
			   "t.ir:9:30: error: expected '=' after attribute 'alpha', got '1'\n"
			   "    %7 = leaky_relu(%x) {alpha 1} : f32[N,2]\n"
			   "                               ^\n"
			   "t.ir:10:32: error: expected ',' or '}' after an attribute, got ':'\n"
			   "    %8 = leaky_relu(%x) {alpha=1 : f32[N,2]\n"
			   "                                 ^\n"
			   "t.ir:11:22: error: unknown escape '\\q' in a string\n"
			   "    %w = param {init=\"a\\qb\"} : f32[2]\n"
			   "                       ^\n"
			   "t.ir:12:21: error: unterminated string\n"
			   "    %w2 = param {init=\"ab} : f32[2]\n"
			   "                      ^\n");
}

static void test_parse_error_structure(void **state)
{
	(void)state;
	expect_parse_error("", "t.ir: error: no 'graph NAME {' line found\n");
	expect_parse_error("# only a comment\n", "t.ir: error: no 'graph NAME {' line found\n");
	expect_parse_error("grph g {\n}\n", "t.ir:1:1: error: expected 'graph NAME {', got 'grph'\n"
						"  grph g {\n"
						"  ^\n");
	expect_parse_error("graph g\n}\n", "t.ir:1:8: error: expected '{' after the graph name, got end of line\n"
					       "  graph g\n"
					       "         ^\n");
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n",
			   "t.ir:1:1: error: graph 'g' has no closing '}'\n"
			   "  graph g {\n"
			   "  ^\n");
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2] junk\n"
			   "  %1 = relu(%x) : f32[N,2] @act+0\n"
			   "  %2 relu(%x) : f32[N,2]\n"
			   "  %3 = relu(%x : f32[N,2]\n"
			   "  relu\n"
			   "  plan max_batch=1 act=1 param=1\n"
			   "  %4 = relu(%x) : f32[N,2] @stack+0\n"
			   "  % = relu(%x) : f32[N,2]\n"
			   "  %99999999 = relu(%x) : f32[N,2]\n"
			   "}\n"
			   "%5 = relu(%x) : f32[N,2]\n",
			   "t.ir:2:25: error: unexpected 'junk' at the end of the line\n"
			   "    %x = input : f32[N,2] junk\n"
			   "                          ^\n"
			   "t.ir:3:28: error: memory slot without a 'plan' line before the nodes\n"
			   "    %1 = relu(%x) : f32[N,2] @act+0\n"
			   "                             ^\n"
			   "t.ir:4:6: error: expected '=' after %2, got 'relu'\n"
			   "    %2 relu(%x) : f32[N,2]\n"
			   "       ^\n"
			   "t.ir:5:16: error: expected ',' or ')' after an operand, got ':'\n"
			   "    %3 = relu(%x : f32[N,2]\n"
			   "                 ^\n"
			   "t.ir:6:3: error: expected a node (%v = op ...), 'fused', 'ret', 'plan' or '}', got 'relu'\n"
			   "    relu\n"
			   "    ^\n"
			   "t.ir:7:3: error: the plan must come before the nodes\n"
			   "    plan max_batch=1 act=1 param=1\n"
			   "    ^\n"
			   "t.ir:8:28: error: expected a memory slot like @act+128 or @param+0\n"
			   "    %4 = relu(%x) : f32[N,2] @stack+0\n"
			   "                             ^\n"
			   "t.ir:9:3: error: expected a value name or number after '%'\n"
			   "    % = relu(%x) : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:10:3: error: value number 99999999 is too large (the limit is 16777215)\n"
			   "    %99999999 = relu(%x) : f32[N,2]\n"
			   "    ^\n"
			   "t.ir:12:1: error: unexpected '%' after the end of the graph\n"
			   "  %5 = relu(%x) : f32[N,2]\n"
			   "  ^\n");
	expect_parse_error("graph g {\n"
			   "  plan max_batch=8 act=64\n"
			   "  plan max_batch=8 act=64 param=0\n"
			   "  plan max_batch=8 act=64 param=0\n"
			   "  %x = input : f32[N,2] @act+0\n"
			   "  ret a = %x\n"
			   "  ret a = %x\n"
			   "}\n",
			   "t.ir:2:26: error: expected 'param=' and a number, got end of line\n"
			   "    plan max_batch=8 act=64\n"
			   "                           ^\n"
			   "t.ir:4:3: error: the plan is given twice\n"
			   "    plan max_batch=8 act=64 param=0\n"
			   "    ^\n"
			   "t.ir:7:7: error: result 'a' is returned twice\n"
			   "    ret a = %x\n"
			   "        ^\n");
}

/* A bad line poisons what it defines: its users are not reported again. */
static void test_parse_no_cascade(void **state)
{
	(void)state;
	expect_parse_error("graph g {\n"
			   "  %x = input : f32[N,2]\n"
			   "  %1 = rleu(%x) : f32[N,2]\n"
			   "  %2 = sigmoid(%1) : f32[N,2]\n"
			   "  %3 = add(%2, %x) : f32[N,2]\n"
			   "  %4 = add(%3, %q) : f32[N,2]\n"
			   "  ret pred = %3\n"
			   "}\n",
			   "t.ir:3:8: error: unknown op 'rleu'; did you mean 'relu'?\n"
			   "    %1 = rleu(%x) : f32[N,2]\n"
			   "         ^\n"
			   "t.ir:6:16: error: undefined value %q\n"
			   "    %4 = add(%3, %q) : f32[N,2]\n"
			   "                 ^\n");
}

/* Whatever the bytes, the parser reports or succeeds; it never crashes, and
 * whatever it accepts prints back to text that parses to the same text. Every
 * byte of a small text that uses each piece of the syntax is replaced in turn. */
static void test_parse_mangled(void **state)
{
	(void)state;
	static const char good[] =
		"graph m {\n"
		"  plan max_batch=4 act=64 param=32\n"
		"  %x = input : f32[N,2] @act+0  # in @ a.yaml:1:2\n"
		"  %\"w 1\" = param {init=\"z\\\"\\x01\", scale=0.5, fan_in=2} : f32[2,2] @param+0  # \"l 1\" @ \"b c.yaml\":3:4\n"
		"  %2 = matmul(%x, %\"w 1\") {tb=1} : f32[N,2] @act+16  # @ c:d.yaml:5:6\n"
		"  %3 = leaky_relu(%2) {alpha=-1e-08} : f32[N,2] @act+32\n"
		"  %4 = mse(%3, %x) : f32[] @act+48\n"
		"  ret loss = %4\n"
		"  ret \"p q\" = %3\n"
		"}\n";
	static const char repl[] = "%\"\\#@:{,=N\n";
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	mlc_diag *d = mlc_diag_new(null);
	size_t len = strlen(good);
	char buf[sizeof good];
	int ok = 0, bad = 0;
	mlc_graph *g;
	assert_int_equal(mlc_graph_parse("good.ir", good, d, &g), MLC_OK);
	char *t = mlc_graph_print_str(g);
	assert_string_equal(t, good);
	free(t);
	mlc_graph_free(g);
	for (size_t i = 0; i < len; i++) {
		for (size_t r = 0; r <= sizeof repl - 1; r++) {
			memcpy(buf, good, len + 1);
			buf[i] = repl[r]; /* the last one truncates at i */
			mlc_graph *h, *h2;
			/* a sink per parse: each one keeps a copy of the text it read */
			mlc_diag_free(d);
			d = mlc_diag_new(null);
			mlc_status st = mlc_graph_parse("m.ir", buf, d, &h);
			assert_true(st == MLC_OK || st == MLC_EUSER);
			if (st != MLC_OK) {
				assert_null(h);
				bad++;
				continue;
			}
			ok++;
			char *t1 = mlc_graph_print_str(h);
			assert_int_equal(mlc_graph_parse("m2.ir", t1, d, &h2), MLC_OK);
			char *t2 = mlc_graph_print_str(h2);
			assert_string_equal(t1, t2);
			(void)mlc_verify(h, d);
			free(t1);
			free(t2);
			mlc_graph_free(h);
			mlc_graph_free(h2);
		}
	}
	assert_true(ok > 0 && bad > 0);
	mlc_diag_free(d);
	fclose(null);
}

/* ---- the verifier ---- */

static void test_verify_broken(void **state)
{
	(void)state;
	mlc_graph *g = build_all_ops();
	expect_verify_ok(g);
	mlc_node *mm = g->node[7], *ba = g->node[8];
	assert_int_equal(mm->op, OP_MATMUL);

	/* a source after its user */
	g->node[7] = ba;
	g->node[8] = mm;
	expect_verify_error(g, "mlc: error: verifier: %8 (bias_add): source 0, %7 (matmul), does not precede it\n");
	g->node[7] = mm;
	g->node[8] = ba;

	/* a wrong stored shape */
	ba->dim[1] = 5;
	expect_verify_error(g, "mlc: error: verifier: %8 (bias_add): type is f32[N,5] but its sources give f32[N,4]\n"
			       "mlc: error: verifier: %9 (add): its shape rule fails: in layer 'fc': add expects "
			       "operands of the same shape, got f32[N,5] and f32[N,4]\n");
	ba->dim[1] = 4;

	/* results: dead, NULL, not in the graph */
	mlc_graph *other = build_all_ops();
	mlc_node *keep = g->ret[0].val;
	g->ret[0].val = other->node[3];
	g->ret[1].val = NULL;
	expect_verify_error(g, "mlc: error: verifier: result 'loss' is not in the graph\n"
			       "mlc: error: verifier: result 'pred' is NULL\n");
	g->ret[0].val = keep;
	g->ret[1].val = g->node[16];
	g->ret[1].val->dead = true;
	expect_verify_error(g, "mlc: error: verifier: %17 (leaky_relu_grad): source 1, %16 (relu_grad), is dead\n"
			       "mlc: error: verifier: result 'pred' is %16 (relu_grad), which is dead\n");
	g->ret[1].val->dead = false;
	g->ret[1].val = g->node[15];
	mlc_graph_free(other);
	expect_verify_ok(g);

	/* arity, names, ids, ranks, the batch dimension, optimizer operands */
	mlc_node *relu = g->node[10];
	relu->nsrc = 2;
	relu->src[1] = relu->src[0];
	g->node[1]->name = "x";
	g->node[2]->id = 1;
	mlc_node *up = g->node[30];
	assert_int_equal(up->op, OP_SGD);
	mlc_node *w = up->src[0];
	up->src[0] = up->src[2];
	up->src[2] = w;
	expect_verify_error(g, "mlc: error: verifier: %10 (relu): has 2 sources, the op takes 1\n"
			       "mlc: error: verifier: %30 (sgd): updates %fc.weight.velocity (state), which is not a param\n"
			       "mlc: error: verifier: %30 (sgd): keeps its optimizer state in %fc.weight (param), which is not a state\n"
			       "mlc: error: verifier: two nodes have id 1\n"
			       "mlc: error: verifier: two live values are named 'x'\n");
	mlc_graph_free(g);

	/* the batch dimension only leads; ids stay below next_id; NULL slots */
	g = mlc_graph_new("small");
	mlc_node *x = source(g, OP_INPUT, "x", DT_F32, 2, 4, MLC_BATCH, NULL, (mlc_loc){0});
	mlc_node *c = source(g, OP_CONST, NULL, DT_F32, 0, 0, 0, NULL, (mlc_loc){0});
	c->id = 5;
	expect_verify_error(g, "mlc: error: verifier: id 5 is outside [0, next_id=2)\n"
			       "mlc: error: verifier: %x (input): dimension 1 is -1\n");
	x->dim[1] = 3;
	c->id = 1;
	c->rank = -1;
	expect_verify_error(g, "mlc: error: verifier: %1 (const): rank -1 is out of range\n");
	c->rank = 0;
	g->node[1] = x;
	expect_verify_error(g, "mlc: error: verifier: a node is listed twice in the graph (positions 0 and 1)\n"
			       "mlc: error: verifier: two nodes have id 0\n"
			       "mlc: error: verifier: two live values are named 'x'\n");
	g->node[1] = c;
	expect_verify_ok(g);
	mlc_graph_free(g);
}

/* batchnorm updates its running statistics in place: they must be params. */
static void test_verify_batchnorm_stats(void **state)
{
	(void)state;
	mlc_graph *g = build_all_ops();
	mlc_node *bn = NULL, *sr = NULL;
	for (int i = 0; i < g->nnode; i++) {
		if (g->node[i]->op == OP_BATCHNORM)
			bn = g->node[i];
		if (g->node[i]->op == OP_SUM_ROWS)
			sr = g->node[i]; /* an f32[4] value that is not a param */
	}
	assert_true(bn && sr);
	bn->src[4] = sr;
	char want[256];
	snprintf(want, sizeof want,
		 "mlc: error: verifier: %%%d (batchnorm): keeps its running statistics in %%%d (sum_rows), "
		 "which is not a param\n",
		 bn->id, sr->id);
	expect_verify_error(g, want);
	mlc_graph_free(g);
}

/* An inference-mode batchnorm gets an x gradient only (grad_batchnorm):
 * its gamma and beta must be frozen params. */
static void test_verify_batchnorm_inference(void **state)
{
	(void)state;
	mlc_graph *g = build_all_ops();
	mlc_node *bn = NULL;
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == OP_BATCHNORM && g->node[i]->attr.i[0])
			bn = g->node[i];
	assert_non_null(bn);
	expect_verify_ok(g);
	bn->src[2]->attr.i[2] = 1;
	char want[256];
	snprintf(want, sizeof want,
		 "mlc: error: verifier: %%%d (batchnorm): runs in inference mode, but its beta %%bn2.bias "
		 "(param) is not a frozen param (trainable=0)\n",
		 bn->id);
	expect_verify_error(g, want);
	mlc_graph_free(g);
}

static void test_verify_plan(void **state)
{
	(void)state;
	mlc_graph *g = build_all_ops();
	plan(g, 16);
	expect_verify_ok(g);
	g->node[9]->mem = MEM_NONE;
	g->node[3]->offset = g->param_size - 1;
	g->node[12]->offset = -16;
	char want[512]; /* the arena sizes grow with build_all_ops */
	snprintf(want, sizeof want,
		 "mlc: error: verifier: %%fc.weight (param): param+%lld with 16 elements does not fit in "
		 "param size %lld\n"
		 "mlc: error: verifier: %%9 (add): the graph is planned but this value has no memory\n"
		 "mlc: error: verifier: %%12 (sigmoid): act+-16 with 64 elements does not fit in act size "
		 "%lld\n",
		 (long long)g->param_size - 1, (long long)g->param_size, (long long)g->act_size);
	expect_verify_error(g, want);
	g->node[9]->mem = MEM_ACT;
	g->node[3]->offset = 0;
	g->node[12]->offset = 480;
	expect_verify_ok(g);
	g->max_batch = 0;
	expect_verify_error(g, "mlc: error: verifier: the graph is planned for max_batch 0\n");
	mlc_graph_free(g);

	g = mlc_graph_new("big");
	source(g, OP_INPUT, "x", DT_F32, 2, MLC_BATCH, 4, NULL, (mlc_loc){0});
	plan(g, 16);
	expect_verify_ok(g);
	g->max_batch = INT64_MAX / 2;
	expect_verify_error(g, "mlc: error: verifier: %x (input): its size overflows at max_batch 4611686018427387903\n");
	mlc_graph_free(g);
}

/* mlc_conv_algo resolves auto as its heuristic says (ir/conv_algo.c), keeps
 * forced values where the direct kernels apply, and mlc_conv_select writes
 * the choice into the IR, which prints and parses back as {algo=N}. */
static mlc_node *conv_node(mlc_graph *g, mlc_opcode op, int64_t h, int64_t c, int64_t k, int64_t f,
			   int64_t stride, int64_t pad, int64_t algo)
{
	int64_t xd[] = {MLC_BATCH, h, h, c}, wd[] = {k, k, c, f};
	mlc_node *x = mlc_source(g, OP_INPUT, NULL, DT_F32, 4, xd, (mlc_loc){0});
	mlc_node *w = mlc_source(g, OP_PARAM, NULL, DT_F32, 4, wd, (mlc_loc){0});
	mlc_attrs a;
	mlc_attrs_default(OP_CONV2D, &a, g->arena);
	a.i[0] = a.i[1] = stride;
	a.i[2] = a.i[3] = a.i[4] = a.i[5] = pad;
	a.i[MLC_CONV_ALGO_SLOT] = algo;
	mlc_node *y = mlc_build(g, OP_CONV2D, NULL, &a, x, w, NULL);
	if (op == OP_CONV2D)
		return y;
	mlc_node *dy = mlc_source(g, OP_INPUT, NULL, DT_F32, 4, y->dim, (mlc_loc){0});
	return mlc_build(g, op, NULL, &a, x, w, dy);
}

static void test_conv_algo(void **state)
{
	(void)state;
	enum { A = MLC_CONV_AUTO, G = MLC_CONV_GEMM, D = MLC_CONV_DIRECT };
	static const struct {
		mlc_opcode op;
		int64_t h, c, k, f, stride, pad, algo, want;
	} cases[] = {
		{OP_CONV2D, 32, 3, 3, 32, 1, 0, A, D},            /* K = 27 first layer */
		{OP_CONV2D_GRAD_WEIGHT, 32, 3, 3, 32, 1, 0, A, D},
		{OP_CONV2D_GRAD_INPUT, 32, 3, 3, 32, 1, 0, A, G}, /* dx has 3 channels */
		{OP_CONV2D, 16, 16, 3, 16, 1, 1, A, D},           /* 16 → 16 */
		{OP_CONV2D_GRAD_INPUT, 16, 16, 3, 16, 1, 1, A, D},
		{OP_CONV2D, 16, 64, 1, 16, 1, 0, A, D},           /* 1x1 64 → 16 */
		{OP_CONV2D_GRAD_INPUT, 16, 16, 1, 64, 1, 0, A, D},
		{OP_CONV2D, 15, 32, 3, 64, 1, 0, A, G},           /* wide GEMM */
		{OP_CONV2D_GRAD_WEIGHT, 6, 64, 3, 64, 1, 0, A, G},
		{OP_CONV2D, 16, 3, 3, 4, 1, 1, A, G},             /* F < 8 */
		{OP_CONV2D, 15, 32, 3, 64, 1, 0, D, D},           /* forced */
		{OP_CONV2D, 16, 16, 3, 16, 1, 1, G, G},
		{OP_CONV2D_GRAD_INPUT, 16, 16, 3, 16, 2, 1, D, G}, /* dx needs stride 1 */
		{OP_CONV2D_GRAD_INPUT, 16, 16, 3, 16, 2, 1, A, G},
		{OP_CONV2D, 16, 16, 3, 16, 2, 1, D, D},           /* forward: any stride */
		{OP_CONV2D_GRAD_WEIGHT, 16, 16, 3, 16, 2, 1, A, D},
	};
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		mlc_graph *g = mlc_graph_new("algo");
		mlc_node *n = conv_node(g, cases[i].op, cases[i].h, cases[i].c, cases[i].k, cases[i].f,
					cases[i].stride, cases[i].pad, cases[i].algo);
		if (mlc_conv_algo(n) != cases[i].want)
			fail_msg("case %zu: algo %d, want %lld", i, mlc_conv_algo(n), (long long)cases[i].want);
		mlc_conv_select(g);
		assert_int_equal(n->attr.i[MLC_CONV_ALGO_SLOT], cases[i].want);
		mlc_graph_free(g);
	}
	/* groups and dilation fall back to GEMM */
	mlc_graph *g = mlc_graph_new("algo");
	mlc_node *n = conv_node(g, OP_CONV2D, 8, 16, 3, 16, 1, 1, D);
	n->attr.i[8] = 2;
	assert_int_equal(mlc_conv_algo(n), G);
	n->attr.i[8] = 1;
	n->attr.i[6] = 2;
	assert_int_equal(mlc_conv_algo(n), G);
	mlc_graph_free(g);
	/* depthwise (groups = C = F) runs direct, any stride, in all three ops;
	 * dilated, or forced, GEMM */
	const mlc_opcode ops[] = {OP_CONV2D, OP_CONV2D_GRAD_INPUT, OP_CONV2D_GRAD_WEIGHT};
	for (size_t i = 0; i < MLC_COUNTOF(ops); i++)
		for (int64_t stride = 1; stride <= 2; stride++) {
			g = mlc_graph_new("algo");
			n = conv_node(g, ops[i], 8, 16, 3, 16, stride, 1, A);
			n->attr.i[8] = 16;
			if (mlc_conv_algo(n) != D)
				fail_msg("depthwise %s stride %lld: algo %d", mlc_ops[ops[i]].name, (long long)stride,
					 mlc_conv_algo(n));
			n->attr.i[6] = 2;
			assert_int_equal(mlc_conv_algo(n), G);
			n->attr.i[6] = 1;
			n->attr.i[MLC_CONV_ALGO_SLOT] = G;
			assert_int_equal(mlc_conv_algo(n), G);
			mlc_graph_free(g);
		}
	/* the chosen algorithm is part of the IR text */
	g = mlc_graph_new("algo");
	n = conv_node(g, OP_CONV2D, 16, 16, 3, 16, 1, 1, A);
	mlc_graph_ret(g, "pred", n);
	mlc_conv_select(g);
	char *t = roundtrip(g);
	assert_non_null(strstr(t, "algo=2"));
	free(t);
	mlc_graph_free(g);
}

/* A kernel's scratch space (ir.h) must fit in the activation arena too. */
static void test_verify_scratch(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("scratch");
	int64_t xd[] = {MLC_BATCH, 5, 5, 2}, wd[] = {3, 3, 2, 4};
	mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 4, xd, (mlc_loc){0});
	mlc_node *w = mlc_source(g, OP_PARAM, "w", DT_F32, 4, wd, (mlc_loc){0});
	mlc_node *y = mlc_build(g, OP_CONV2D, NULL, NULL, x, w, NULL);
	y->attr.i[MLC_CONV_ALGO_SLOT] = MLC_CONV_GEMM; /* the direct kernel needs none */
	plan(g, 8);
	int64_t scratch = mlc_scratch_elems(y, 8), at = mlc_scratch_offset(y, 8);
	assert_int_equal(scratch, 8 * 3 * 3 * 3 * 3 * 2); /* 8 images of [OH·OW, KH·KW·C] */
	assert_int_equal(at, y->offset + 8 * 3 * 3 * 4);
	assert_int_equal(g->act_size, at + scratch);
	expect_verify_ok(g);
	g->act_size--;
	char want[256];
	snprintf(want, sizeof want,
		 "mlc: error: verifier: %%2 (conv2d): its scratch act+%lld with %lld elements does not fit in act "
		 "size %lld\n",
		 (long long)at, (long long)scratch, (long long)g->act_size);
	expect_verify_error(g, want);
	mlc_graph_free(g);
}

/* ---- golden files: tests/ir/NAME.ir round-trips, bad_NAME.ir gives bad_NAME.err ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void test_golden(void **state)
{
	(void)state;
	DIR *dir = opendir("ir");
	assert_non_null(dir);
	int good = 0, bad = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		if (!ends_with(e->d_name, ".ir"))
			continue;
		char path[512], errpath[512];
		snprintf(path, sizeof path, "ir/%s", e->d_name);
		char *text = mlc_read_file(path, NULL), *msgs;
		assert_non_null(text);
		mlc_graph *g;
		mlc_status st = parse(path, text, &msgs, &g);
		if (strncmp(e->d_name, "bad_", 4) == 0) {
			snprintf(errpath, sizeof errpath, "ir/%.*s.err", (int)strlen(e->d_name) - 3, e->d_name);
			char *want = mlc_read_file(errpath, NULL);
			if (!want || strcmp(msgs, want) != 0)
				print_message("%s: got\n%s", path, msgs);
			assert_non_null(want);
			assert_int_equal(st, MLC_EUSER);
			assert_string_equal(msgs, want);
			free(want);
			bad++;
		} else {
			if (st != MLC_OK)
				print_message("%s", msgs);
			assert_int_equal(st, MLC_OK);
			expect_verify_ok(g);
			char *t = mlc_graph_print_str(g);
			assert_string_equal(t, text);
			free(t);
			mlc_graph_free(g);
			good++;
		}
		free(msgs);
		free(text);
	}
	closedir(dir);
	assert_true(good >= 3 && bad >= 3);
}

/* docs/ir.md shows tests/ir/xor.ir verbatim; keep the two from drifting. */
static void test_doc_example(void **state)
{
	(void)state;
	char *doc = mlc_read_file("../docs/ir.md", NULL), *want = mlc_read_file("ir/xor.ir", NULL);
	assert_non_null(doc);
	assert_non_null(want);
	const char *marker = "<!-- example: tests/ir/xor.ir -->\n```\n";
	char *start = strstr(doc, marker);
	assert_non_null(start);
	start += strlen(marker);
	char *end = strstr(start, "```\n");
	assert_non_null(end);
	*end = 0;
	assert_string_equal(start, want);
	free(doc);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_print_xor),
		cmocka_unit_test(test_roundtrip_all_ops),
		cmocka_unit_test(test_float_attrs_exact),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_unknown_types),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_diag_long_line),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_error_values),
		cmocka_unit_test(test_parse_error_types),
		cmocka_unit_test(test_parse_error_attrs),
		cmocka_unit_test(test_parse_error_conv_shapes),
		cmocka_unit_test(test_parse_error_structure),
		cmocka_unit_test(test_parse_no_cascade),
		cmocka_unit_test(test_parse_mangled),
		cmocka_unit_test(test_verify_broken),
		cmocka_unit_test(test_verify_batchnorm_stats),
		cmocka_unit_test(test_verify_batchnorm_inference),
		cmocka_unit_test(test_verify_plan),
		cmocka_unit_test(test_verify_scratch),
		cmocka_unit_test(test_conv_algo),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_doc_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
