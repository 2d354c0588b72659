/* test_frontend.c — the YAML frontend: golden specs (every tests/golden/NAME.yaml;
 * a spec with a .err file must fail with exactly that text, one without
 * must load) and unit tests of the graphs and configurations it builds.
 * Run from tests/. MLC_UPDATE_GOLDEN=1 rewrites the .err files instead of
 * comparing; review the result by eye before committing it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

typedef struct {
	mlc_status st;
	mlc_model *m;
	char *out; /* everything the diagnostics printed */
} loaded;

static loaded load_text(const char *path, const char *text)
{
	loaded r = {0};
	size_t n = 0;
	FILE *mem = open_memstream(&r.out, &n);
	mlc_diag *d = mlc_diag_new(mem);
	r.st = mlc_frontend_load_text(path, text, strlen(text), d, &r.m);
	mlc_diag_free(d);
	fclose(mem);
	return r;
}

static loaded load_file(const char *path)
{
	loaded r = {0};
	size_t n = 0;
	FILE *mem = open_memstream(&r.out, &n);
	mlc_diag *d = mlc_diag_new(mem);
	r.st = mlc_frontend_load(path, d, &r.m);
	mlc_diag_free(d);
	fclose(mem);
	return r;
}

static void unload(loaded *r)
{
	mlc_model_free(r->m);
	free(r->out);
}

/* Loads a spec that must be valid; prints the diagnostics if it isn't. */
static mlc_model *must_load(const char *path, const char *text, loaded *r)
{
	*r = load_text(path, text);
	if (r->st != MLC_OK)
		print_error("unexpected diagnostics:\n%s", r->out);
	assert_int_equal(r->st, MLC_OK);
	assert_string_equal(r->out, "");
	assert_non_null(r->m);
	return r->m;
}

static mlc_node *find_op(const mlc_graph *g, mlc_opcode op, const char *layer)
{
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == op && (!layer || strcmp(g->node[i]->layer, layer) == 0))
			return g->node[i];
	return NULL;
}

static void assert_dims(const mlc_node *n, int rank, const int64_t *dim)
{
	assert_non_null(n);
	assert_int_equal(n->rank, rank);
	for (int i = 0; i < rank; i++)
		assert_int_equal(n->dim[i], dim[i]);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t n = 0;
	FILE *mem = open_memstream(&buf, &n);
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, got, mem);
	fclose(mem);
	fclose(f);
	return buf;
}

/* ---- golden specs ---- */

/* A line-by-line comparison: shared lines with two spaces, expected lines
 * with '-', actual ones with '+'; enough to see what moved. */
static void print_diff(const char *want, const char *got)
{
	print_error("--- expected\n+++ actual\n");
	while (*want || *got) {
		size_t lw = strcspn(want, "\n"), lg = strcspn(got, "\n");
		if (lw == lg && memcmp(want, got, lw) == 0) {
			print_error("  %.*s\n", (int)lw, want);
		} else {
			if (*want)
				print_error("- %.*s\n", (int)lw, want);
			if (*got)
				print_error("+ %.*s\n", (int)lg, got);
		}
		want += lw + (want[lw] == '\n');
		got += lg + (got[lg] == '\n');
	}
}

static void test_golden(void **state)
{
	const char *yaml = *state;
	size_t n = strlen(yaml);
	char *errpath = malloc(n + 1);
	memcpy(errpath, yaml, n - 4);
	strcpy(errpath + n - 4, "err");
	char *want = slurp(errpath);
	loaded r = load_file(yaml);
	const char *update = getenv("MLC_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		if (r.st == MLC_OK) {
			remove(errpath); /* a spec that loads needs no .err */
		} else {
			FILE *f = fopen(errpath, "w");
			assert_non_null(f);
			fputs(r.out, f);
			fclose(f);
		}
	} else if (want) {
		assert_int_equal(r.st, MLC_EUSER);
		assert_null(r.m);
		if (strcmp(want, r.out) != 0) {
			print_diff(want, r.out);
			fail_msg("%s: diagnostics differ from %s", yaml, errpath);
		}
	} else {
		if (r.st != MLC_OK)
			print_error("%s", r.out);
		assert_int_equal(r.st, MLC_OK);
		assert_string_equal(r.out, "");
		assert_non_null(mlc_graph_find_ret(r.m->graph, "loss"));
		assert_non_null(mlc_graph_find_ret(r.m->graph, "pred"));
	}
	unload(&r);
	free(want);
	free(errpath);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_golden(void)
{
	DIR *dir = opendir("golden");
	if (!dir) {
		fprintf(stderr, "test_frontend: run me from tests/ (no golden/ here)\n");
		return 1;
	}
	char **files = NULL;
	int n = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0) {
			files = realloc(files, sizeof *files * (size_t)(n + 1));
			files[n] = malloc(len + 8);
			sprintf(files[n++], "golden/%s", e->d_name);
		}
	}
	closedir(dir);
	qsort(files, (size_t)n, sizeof *files, cmp_str);
	struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
	for (int i = 0; i < n; i++)
		tests[i] = (struct CMUnitTest){.name = files[i], .test_func = test_golden,
					       .initial_state = files[i]};
	int failed = _cmocka_run_group_tests("golden", tests, (size_t)n, NULL, NULL);
	for (int i = 0; i < n; i++)
		free(files[i]);
	free(files);
	free(tests);
	return failed;
}

/* ---- unit tests ---- */

static const char mlp[] = "inputs:\n"
			  "  image: {shape: [784]}\n"
			  "layers:\n"
			  "  - dense: 256\n"
			  "    activation: relu\n"
			  "  - dense: 10\n"
			  "  - softmax\n"
			  "loss: softmax_cross_entropy\n";

static void test_mlp_graph(void **state)
{
	loaded r;
	mlc_graph *g = must_load("mem/mnist.yaml", mlp, &r)->graph;
	/* input, W, matmul, b, bias_add, relu, W, matmul, b, bias_add, softmax, labels, xent */
	static const mlc_opcode ops[] = {OP_INPUT, OP_PARAM, OP_MATMUL,  OP_PARAM, OP_BIAS_ADD,
					 OP_RELU,  OP_PARAM, OP_MATMUL,  OP_PARAM, OP_BIAS_ADD,
					 OP_SOFTMAX, OP_INPUT, OP_SOFTMAX_XENT};
	assert_int_equal(g->nnode, (int)MLC_COUNTOF(ops));
	for (int i = 0; i < g->nnode; i++) {
		assert_int_equal(g->node[i]->op, ops[i]);
		assert_int_equal(g->node[i]->id, i);
		for (int j = 0; j < g->node[i]->nsrc; j++)
			assert_true(g->node[i]->src[j]->id < i);
	}
	assert_string_equal(g->name, "mnist");

	mlc_node *x = mlc_graph_find_value(g, "image");
	assert_dims(x, 2, (int64_t[]){MLC_BATCH, 784});
	assert_int_equal(x->dtype, DT_F32);

	mlc_node *w = mlc_graph_find_value(g, "dense1.weight");
	assert_dims(w, 2, (int64_t[]){256, 784});
	assert_string_equal(w->attr.s, "glorot_uniform");
	assert_int_equal(w->attr.i[0], 784); /* fan_in */
	assert_int_equal(w->attr.i[1], 256); /* fan_out */
	assert_string_equal(w->layer, "dense1");
	assert_int_equal(w->loc.line, 4);
	assert_int_equal(w->loc.col, 5);
	assert_string_equal(w->loc.file, "mem/mnist.yaml");

	mlc_node *b = mlc_graph_find_value(g, "dense1.bias");
	assert_dims(b, 1, (int64_t[]){256});
	assert_string_equal(b->attr.s, "zeros");

	mlc_node *mm = g->node[2];
	assert_ptr_equal(mm->src[0], x);
	assert_ptr_equal(mm->src[1], w);
	assert_int_equal(mm->attr.i[0], 0); /* ta */
	assert_int_equal(mm->attr.i[1], 1); /* tb: x·Wᵀ */
	assert_dims(mm, 2, (int64_t[]){MLC_BATCH, 256});
	assert_string_equal(mm->layer, "dense1");
	assert_ptr_equal(g->node[4]->src[0], mm);
	assert_ptr_equal(g->node[4]->src[1], b);
	assert_ptr_equal(g->node[5]->src[0], g->node[4]);

	assert_dims(mlc_graph_find_value(g, "dense2.weight"), 2, (int64_t[]){10, 256});
	assert_string_equal(g->node[10]->layer, "softmax1");

	/* the output softmax folds into the loss: xent reads the logits */
	mlc_node *loss = mlc_graph_find_ret(g, "loss"), *pred = mlc_graph_find_ret(g, "pred");
	assert_int_equal(loss->op, OP_SOFTMAX_XENT);
	assert_ptr_equal(loss->src[0], g->node[9]);
	assert_ptr_equal(pred, g->node[10]);
	assert_int_equal(loss->rank, 0);
	assert_string_equal(loss->layer, "loss");
	assert_int_equal(loss->loc.line, 8);
	mlc_node *labels = mlc_graph_find_value(g, "labels");
	assert_int_equal(labels->dtype, DT_I32);
	assert_dims(labels, 1, (int64_t[]){MLC_BATCH});
	unload(&r);
}

static void test_default_names(void **state)
{
	loaded r;
	mlc_graph *g = must_load("names.yaml",
				 "inputs: {x: {shape: [3]}}\n"
				 "layers:\n"
				 "  - {dense: 4, name: dense2}\n"
				 "  - dense: 5\n"
				 "  - relu\n"
				 "  - dense: 6\n"
				 "  - {relu, name: relu1}\n"
				 "  - relu\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	assert_dims(mlc_graph_find_value(g, "dense2.weight"), 2, (int64_t[]){4, 3});
	assert_dims(mlc_graph_find_value(g, "dense1.weight"), 2, (int64_t[]){5, 4});
	assert_dims(mlc_graph_find_value(g, "dense3.weight"), 2, (int64_t[]){6, 5});
	const char *relus[3];
	int k = 0;
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == OP_RELU)
			relus[k++] = g->node[i]->layer;
	assert_int_equal(k, 3);
	assert_string_equal(relus[0], "relu2"); /* relu1 is taken by a later layer */
	assert_string_equal(relus[1], "relu1");
	assert_string_equal(relus[2], "relu3");
	unload(&r);
}

static void test_softmax_added_for_prediction(void **state)
{
	loaded r;
	mlc_graph *g = must_load("x.yaml",
				 "inputs: {x: {shape: [3]}}\n"
				 "layers: [{dense: 4}]\n"
				 "loss: {type: cross_entropy}\n",
				 &r)
			    ->graph;
	mlc_node *loss = mlc_graph_find_ret(g, "loss"), *pred = mlc_graph_find_ret(g, "pred");
	mlc_node *logits = find_op(g, OP_BIAS_ADD, "dense1");
	assert_int_equal(loss->op, OP_SOFTMAX_XENT);
	assert_ptr_equal(loss->src[0], logits);
	assert_int_equal(pred->op, OP_SOFTMAX);
	assert_ptr_equal(pred->src[0], logits);
	assert_string_equal(pred->layer, "pred");
	unload(&r);
}

static void test_regression_losses(void **state)
{
	static const char *const types[] = {"mse", "binary_cross_entropy"};
	static const mlc_opcode ops[] = {OP_MSE, OP_BCE};
	for (int i = 0; i < 2; i++) {
		char text[256];
		snprintf(text, sizeof text,
			 "inputs: {x: {shape: [3]}}\nlayers: [{dense: 2, activation: sigmoid}]\nloss: %s\n",
			 types[i]);
		loaded r;
		mlc_graph *g = must_load("x.yaml", text, &r)->graph;
		mlc_node *loss = mlc_graph_find_ret(g, "loss");
		assert_int_equal(loss->op, ops[i]);
		assert_ptr_equal(mlc_graph_find_ret(g, "pred"), find_op(g, OP_SIGMOID, NULL));
		mlc_node *labels = mlc_graph_find_value(g, "labels");
		assert_int_equal(labels->dtype, DT_F32);
		assert_dims(labels, 2, (int64_t[]){MLC_BATCH, 2});
		assert_ptr_equal(loss->src[1], labels);
		unload(&r);
	}
}

/* The losses of issue 5: which node each reads, what it predicts, its labels. */
static void test_more_losses(void **state)
{
	static const struct {
		const char *act, *loss;
		mlc_opcode op;
		mlc_dtype labels;
		bool reads_pre;      /* the loss reads the output activation's input */
		mlc_opcode pred;     /* the prediction's op */
		bool pred_added;     /* a `pred` layer was added */
	} cases[] = {
		{"none", "{type: hinge}", OP_HINGE, DT_I32, false, OP_BIAS_ADD, false},
		{"softmax", "{type: hinge, margin: 0.25}", OP_HINGE, DT_I32, false, OP_SOFTMAX, false},
		{"tanh", "mae", OP_MAE, DT_F32, false, OP_TANH, false},
		{"none", "binary_cross_entropy_with_logits", OP_BCE_LOGITS, DT_F32, false, OP_SIGMOID, true},
		{"sigmoid", "binary_cross_entropy_with_logits", OP_BCE_LOGITS, DT_F32, true, OP_SIGMOID, false},
		{"softmax", "categorical_cross_entropy", OP_CATEGORICAL_XENT, DT_I32, false, OP_SOFTMAX, false},
		{"none", "kl_div", OP_KL_DIV, DT_F32, false, OP_SOFTMAX, true},
		{"softmax", "kl_div", OP_KL_DIV, DT_F32, true, OP_SOFTMAX, false},
	};
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		char text[256];
		snprintf(text, sizeof text,
			 "inputs: {x: {shape: [3]}}\nlayers: [{dense: 4, activation: %s}]\nloss: %s\n",
			 cases[i].act, cases[i].loss);
		loaded r;
		mlc_graph *g = must_load("x.yaml", text, &r)->graph;
		mlc_node *loss = mlc_graph_find_ret(g, "loss"), *pred = mlc_graph_find_ret(g, "pred");
		mlc_node *logits = find_op(g, OP_BIAS_ADD, "dense1");
		assert_int_equal(loss->op, cases[i].op);
		assert_int_equal(pred->op, cases[i].pred);
		assert_string_equal(pred->layer, cases[i].pred_added ? "pred" : "dense1");
		mlc_node *out = cases[i].pred_added ? pred->src[0] : pred;
		assert_ptr_equal(loss->src[0], cases[i].reads_pre ? logits : out);
		mlc_node *labels = mlc_graph_find_value(g, "labels");
		assert_ptr_equal(loss->src[1], labels);
		assert_int_equal(labels->dtype, cases[i].labels);
		assert_int_equal(labels->rank, cases[i].labels == DT_I32 ? 1 : 2);
		if (cases[i].op == OP_HINGE)
			assert_true(loss->attr.f[0] == (strstr(cases[i].loss, "margin") ? 0.25 : 1.0));
		unload(&r);
	}
}

static void test_op_attributes(void **state)
{
	loaded r;
	mlc_graph *g = must_load("x.yaml",
				 "inputs: {x: {shape: [3]}}\n"
				 "layers:\n"
				 "  - {dense: 3, bias: false, init: he_normal}\n"
				 "  - leaky_relu: 0.25\n"
				 "  - sigmoid: 4\n"
				 "  - {step, straight_through: false}\n"
				 "  - step\n"
				 "  - leaky_relu\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	assert_null(mlc_graph_find_value(g, "dense1.bias"));
	assert_null(find_op(g, OP_BIAS_ADD, NULL));
	assert_string_equal(mlc_graph_find_value(g, "dense1.weight")->attr.s, "he_normal");
	assert_true(find_op(g, OP_LEAKY_RELU, "leaky_relu1")->attr.f[0] == 0.25);
	assert_true(find_op(g, OP_LEAKY_RELU, "leaky_relu2")->attr.f[0] == 0.01);
	assert_true(find_op(g, OP_SIGMOID, NULL)->attr.f[0] == 4);
	assert_int_equal(find_op(g, OP_STEP, "step1")->attr.i[0], 0);
	assert_int_equal(find_op(g, OP_STEP, "step2")->attr.i[0], 1);
	unload(&r);
}

static void test_graph_form_order(void **state)
{
	loaded r;
	mlc_graph *g = must_load("g.yaml",
				 "inputs: {a: {shape: [2]}, b: {shape: [2]}}\n"
				 "graph:\n"
				 "  out: {dense: 1, input: s}\n"
				 "  s: {add, inputs: [ra, b]}\n"
				 "  ra: {relu, input: a}\n"
				 "output: out\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	for (int i = 0; i < g->nnode; i++)
		for (int j = 0; j < g->node[i]->nsrc; j++)
			assert_true(g->node[i]->src[j]->id < g->node[i]->id);
	mlc_node *add = find_op(g, OP_ADD, "s");
	assert_ptr_equal(add->src[0], find_op(g, OP_RELU, "ra"));
	assert_ptr_equal(add->src[1], mlc_graph_find_value(g, "b"));
	assert_ptr_equal(mlc_graph_find_ret(g, "pred"), find_op(g, OP_BIAS_ADD, "out"));
	unload(&r);
}

/* The value of op attribute `name` on node n, by the ops.def schema. */
static int64_t attr_i(const mlc_node *n, const char *name)
{
	mlc_attrdesc desc[2 * MLC_MAX_ATTR + 1];
	int k = mlc_op_attrs(n->op, desc, (int)MLC_COUNTOF(desc));
	for (int i = 0; i < k; i++)
		if (strcmp(desc[i].name, name) == 0)
			return desc[i].kind == 'i' ? n->attr.i[desc[i].slot] : (int64_t)n->attr.f[desc[i].slot];
	fail_msg("%s has no attribute %s", mlc_ops[n->op].name, name);
	return -1;
}

static double attr_f(const mlc_node *n, const char *name)
{
	mlc_attrdesc desc[2 * MLC_MAX_ATTR + 1];
	int k = mlc_op_attrs(n->op, desc, (int)MLC_COUNTOF(desc));
	for (int i = 0; i < k; i++)
		if (strcmp(desc[i].name, name) == 0 && desc[i].kind == 'f')
			return n->attr.f[desc[i].slot];
	fail_msg("%s has no attribute %s", mlc_ops[n->op].name, name);
	return -1;
}

static void assert_pads(const mlc_node *n, int64_t t, int64_t l, int64_t b, int64_t r)
{
	assert_int_equal(attr_i(n, "pad_t"), t);
	assert_int_equal(attr_i(n, "pad_l"), l);
	assert_int_equal(attr_i(n, "pad_b"), b);
	assert_int_equal(attr_i(n, "pad_r"), r);
}

static void test_conv_graph(void **state)
{
	loaded r;
	mlc_graph *g = must_load("cnn.yaml",
				 "inputs: {img: {shape: [32, 32, 3]}}\n"
				 "layers:\n"
				 "  - conv2d: 32\n"
				 "    kernel: [3, 5]\n"
				 "    stride: [1, 2]\n"
				 "    dilation: [2, 1]\n"
				 "    activation: relu\n"
				 "    init: he_normal\n"
				 "  - conv2d: 8\n"
				 "    groups: 4\n"
				 "    bias: false\n"
				 "  - flatten\n"
				 "  - dense: 10\n"
				 "loss: softmax_cross_entropy\n",
				 &r)
			    ->graph;
	assert_dims(mlc_graph_find_value(g, "img"), 4, (int64_t[]){MLC_BATCH, 32, 32, 3});
	/* HWIO, fans count the receptive field */
	mlc_node *w = mlc_graph_find_value(g, "conv2d1.weight");
	assert_dims(w, 4, (int64_t[]){3, 5, 3, 32});
	assert_string_equal(w->attr.s, "he_normal");
	assert_int_equal(attr_i(w, "fan_in"), 3 * 5 * 3);
	assert_int_equal(attr_i(w, "fan_out"), 3 * 5 * 32);
	assert_int_equal(attr_i(w, "trainable"), 1);
	assert_int_equal(w->loc.line, 3);
	assert_dims(mlc_graph_find_value(g, "conv2d1.bias"), 1, (int64_t[]){32});
	mlc_node *c = find_op(g, OP_CONV2D, "conv2d1");
	assert_ptr_equal(c->src[0], mlc_graph_find_value(g, "img"));
	assert_ptr_equal(c->src[1], w);
	assert_int_equal(attr_i(c, "stride_h"), 1);
	assert_int_equal(attr_i(c, "stride_w"), 2);
	assert_int_equal(attr_i(c, "dil_h"), 2);
	assert_int_equal(attr_i(c, "dil_w"), 1);
	assert_int_equal(attr_i(c, "groups"), 1);
	assert_pads(c, 0, 0, 0, 0); /* valid */
	/* 32 - 2·(3-1) = 28 rows; (32 - 5) / 2 + 1 = 14 columns */
	assert_dims(c, 4, (int64_t[]){MLC_BATCH, 28, 14, 32});
	mlc_node *relu = find_op(g, OP_RELU, "conv2d1");
	assert_int_equal(relu->src[0]->op, OP_BIAS_ADD);
	assert_ptr_equal(relu->src[0]->src[0], c);

	/* grouped: each group of 8 input channels feeds 2 of the 8 filters */
	mlc_node *w2 = mlc_graph_find_value(g, "conv2d2.weight");
	assert_dims(w2, 4, (int64_t[]){3, 3, 8, 8});
	assert_int_equal(attr_i(w2, "fan_in"), 9 * 8);
	assert_int_equal(attr_i(w2, "fan_out"), 9 * 2);
	assert_null(mlc_graph_find_value(g, "conv2d2.bias"));
	mlc_node *c2 = find_op(g, OP_CONV2D, "conv2d2");
	assert_int_equal(attr_i(c2, "groups"), 4);
	assert_ptr_equal(c2->src[0], relu);
	mlc_node *fl = find_op(g, OP_FLATTEN, "flatten1");
	assert_ptr_equal(fl->src[0], c2);
	assert_dims(fl, 2, (int64_t[]){MLC_BATCH, 26 * 12 * 8});
	assert_dims(mlc_graph_find_value(g, "dense1.weight"), 2, (int64_t[]){10, 26 * 12 * 8});
	unload(&r);
}

/* "same" is TensorFlow's: out = ceil(in / stride), the odd pad goes bottom/right. */
static void test_same_padding(void **state)
{
	static const struct {
		int h, w, k, s, dil;
		int64_t t, l, b, r, oh, ow;
	} cases[] = {
		{7, 7, 3, 2, 1, 1, 1, 1, 1, 4, 4},   /* odd input: total 2 */
		{8, 8, 3, 2, 1, 0, 0, 1, 1, 4, 4},   /* even input: total 1, all at the end */
		{5, 6, 4, 1, 1, 1, 1, 2, 2, 5, 6},   /* even kernel: total 3 */
		{9, 9, 3, 1, 2, 2, 2, 2, 2, 9, 9},   /* dilated: span 5 */
		{4, 4, 1, 3, 1, 0, 0, 0, 0, 2, 2},   /* nothing to pad */
		{10, 3, 3, 1, 1, 1, 1, 1, 1, 10, 3}, /* rectangular */
	};
	for (size_t i = 0; i < MLC_COUNTOF(cases); i++) {
		char text[512];
		snprintf(text, sizeof text,
			 "inputs: {x: {shape: [%d, %d, 2]}}\n"
			 "graph:\n"
			 "  c: {conv2d: 3, kernel: %d, stride: %d, dilation: %d, padding: same, input: x}\n"
			 "  p: {maxpool: %d, stride: %d, padding: same, input: x}\n"
			 "  out: {concat, inputs: [c, p]}\n"
			 "loss: mse\n",
			 cases[i].h, cases[i].w, cases[i].k, cases[i].s, cases[i].dil, cases[i].k, cases[i].s);
		loaded r;
		mlc_graph *g = must_load("same.yaml", text, &r)->graph;
		mlc_node *c = find_op(g, OP_CONV2D, NULL);
		assert_pads(c, cases[i].t, cases[i].l, cases[i].b, cases[i].r);
		assert_dims(c, 4, (int64_t[]){MLC_BATCH, cases[i].oh, cases[i].ow, 3});
		if (cases[i].dil == 1) { /* a pool of the same window pads the same way */
			mlc_node *p = find_op(g, OP_MAXPOOL, NULL);
			assert_pads(p, cases[i].t, cases[i].l, cases[i].b, cases[i].r);
			assert_dims(p, 4, (int64_t[]){MLC_BATCH, cases[i].oh, cases[i].ow, 2});
		}
		unload(&r);
	}
}

static void test_pool_and_padding_forms(void **state)
{
	loaded r;
	mlc_graph *g = must_load("pool.yaml",
				 "inputs: {x: {shape: [12, 12, 4]}}\n"
				 "graph:\n"
				 "  a: {maxpool, input: x}\n"
				 "  b: {avgpool: [3, 2], input: x}\n"
				 "  c: {maxpool: 3, stride: [1, 2], padding: 1, input: x}\n"
				 "  d: {conv2d: 2, padding: [1, 2], input: x}\n"
				 "  e: {conv2d: 2, padding: [0, 1, 2, 0], input: x}\n"
				 "  f: {global_avgpool, input: x}\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	mlc_node *a = find_op(g, OP_MAXPOOL, "a"), *b = find_op(g, OP_AVGPOOL, "b");
	assert_int_equal(attr_i(a, "size_h"), 2);
	assert_int_equal(attr_i(a, "stride_w"), 2); /* the stride defaults to the window */
	assert_dims(a, 4, (int64_t[]){MLC_BATCH, 6, 6, 4});
	assert_int_equal(attr_i(b, "size_h"), 3);
	assert_int_equal(attr_i(b, "size_w"), 2);
	assert_int_equal(attr_i(b, "stride_h"), 3);
	assert_int_equal(attr_i(b, "stride_w"), 2);
	assert_dims(b, 4, (int64_t[]){MLC_BATCH, 4, 6, 4});
	mlc_node *c = find_op(g, OP_MAXPOOL, "c");
	assert_pads(c, 1, 1, 1, 1);
	assert_int_equal(attr_i(c, "stride_h"), 1);
	assert_pads(find_op(g, OP_CONV2D, "d"), 1, 2, 1, 2);
	assert_pads(find_op(g, OP_CONV2D, "e"), 0, 1, 2, 0);
	assert_dims(find_op(g, OP_GLOBAL_AVGPOOL, "f"), 2, (int64_t[]){MLC_BATCH, 4});
	unload(&r);
}

static void test_batchnorm_dropout_concat(void **state)
{
	loaded r;
	mlc_graph *g = must_load("bn.yaml",
				 "inputs: {x: {shape: [6, 6, 5]}}\n"
				 "graph:\n"
				 "  bn: {batchnorm, momentum: 0.2, eps: 0.001, input: x}\n"
				 "  dr: {dropout: 0.3, input: bn}\n"
				 "  d2: {dropout, input: dr}\n"
				 "  cat: {concat, inputs: [x, dr, d2]}\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	static const char *const names[] = {"weight", "bias", "running_mean", "running_var"};
	static const char *const inits[] = {"ones", "zeros", "zeros", "ones"};
	mlc_node *bn = find_op(g, OP_BATCHNORM, "bn");
	assert_ptr_equal(bn->src[0], mlc_graph_find_value(g, "x"));
	for (int i = 0; i < 4; i++) {
		char name[64];
		snprintf(name, sizeof name, "bn.%s", names[i]);
		mlc_node *p = mlc_graph_find_value(g, name);
		assert_dims(p, 1, (int64_t[]){5});
		assert_string_equal(p->attr.s, inits[i]);
		assert_int_equal(attr_i(p, "trainable"), i < 2); /* running stats are not trained */
		assert_ptr_equal(bn->src[i + 1], p);
	}
	assert_true(attr_f(bn, "momentum") == 0.2);
	assert_true(attr_f(bn, "eps") == 0.001);
	assert_dims(bn, 4, (int64_t[]){MLC_BATCH, 6, 6, 5});

	/* each dropout's mask key is its own node id */
	mlc_node *dr = find_op(g, OP_DROPOUT, "dr"), *d2 = find_op(g, OP_DROPOUT, "d2");
	assert_true(attr_f(dr, "p") == 0.3);
	assert_true(attr_f(d2, "p") == 0.5);
	assert_int_equal(attr_i(dr, "key"), dr->id);
	assert_int_equal(attr_i(d2, "key"), d2->id);

	/* concat of three: concat(concat(x, dr), d2) */
	mlc_node *outer = mlc_graph_find_ret(g, "pred");
	assert_int_equal(outer->op, OP_CONCAT);
	assert_ptr_equal(outer->src[1], d2);
	assert_int_equal(outer->src[0]->op, OP_CONCAT);
	assert_ptr_equal(outer->src[0]->src[0], mlc_graph_find_value(g, "x"));
	assert_ptr_equal(outer->src[0]->src[1], dr);
	assert_string_equal(outer->src[0]->layer, "cat");
	assert_dims(outer, 4, (int64_t[]){MLC_BATCH, 6, 6, 15});
	unload(&r);
}

static const char blocks_spec[] =
	"inputs: {x: {shape: [8, 8, 4]}}\n"                            /* 1 */
	"blocks:\n"                                                    /* 2 */
	"  unit:\n"                                                    /* 3 */
	"    params: {f: required, k: 3}\n"                            /* 4 */
	"    layers:\n"                                                /* 5 */
	"      - {conv2d: $f, kernel: $k, padding: same}\n"            /* 6 */
	"      - relu\n"                                               /* 7 */
	"  res:\n"                                                     /* 8 */
	"    params: {f: 4}\n"                                         /* 9 */
	"    input: x\n"                                               /* 10 */
	"    graph:\n"                                                 /* 11 */
	"      a: {unit: {f: $f}, input: x}\n"                         /* 12 */
	"      b: {unit: {f: $f, k: 1}, input: a}\n"                   /* 13 */
	"      sum: {add, inputs: [b, x]}\n"                           /* 14 */
	"layers:\n"                                                    /* 15 */
	"  - unit: {f: 4}\n"                                           /* 16 */
	"  - res\n"                                                    /* 17 */
	"  - res:\n"                                                   /* 18 */
	"    repeat: 3\n"                                              /* 19 */
	"  - res: {f: 4}\n"                                            /* 20 */
	"    repeat: 2\n"                                              /* 21 */
	"    name: stage\n"                                            /* 22 */
	"  - flatten\n"                                                /* 23 */
	"loss: mse\n";

static int count_op(const mlc_graph *g, mlc_opcode op)
{
	int n = 0;
	for (int i = 0; i < g->nnode; i++)
		n += g->node[i]->op == op;
	return n;
}

static void test_block_expansion(void **state)
{
	loaded r;
	mlc_graph *g = must_load("blocks.yaml", blocks_spec, &r)->graph;
	/* unit1, res1, res2..res4 (repeat 3), stage.1, stage.2: 1 + 6 · 2 = 13 units */
	assert_int_equal(count_op(g, OP_CONV2D), 13);
	assert_int_equal(count_op(g, OP_ADD), 6);
	static const char *const params[] = {
		"unit1.conv2d1.weight",	      "res1.a.conv2d1.weight", "res1.b.conv2d1.weight",
		"res2.a.conv2d1.weight",      "res3.a.conv2d1.bias",   "res4.b.conv2d1.weight",
		"stage.1.a.conv2d1.weight",   "stage.2.b.conv2d1.bias",
	};
	for (size_t i = 0; i < MLC_COUNTOF(params); i++)
		if (!mlc_graph_find_value(g, params[i]))
			fail_msg("no parameter %s", params[i]);
	assert_null(mlc_graph_find_value(g, "res5.a.conv2d1.weight"));
	assert_null(mlc_graph_find_value(g, "stage.3.a.conv2d1.weight"));
	/* parameters substituted: k: 1 in b, the default 3 in a */
	assert_dims(mlc_graph_find_value(g, "res2.b.conv2d1.weight"), 4, (int64_t[]){1, 1, 4, 4});
	assert_dims(mlc_graph_find_value(g, "res2.a.conv2d1.weight"), 4, (int64_t[]){3, 3, 4, 4});

	/* nodes built from a body point at the body, and carry the instance's name */
	mlc_node *c = find_op(g, OP_CONV2D, "stage.2.b.conv2d1");
	assert_non_null(c);
	assert_int_equal(c->loc.line, 6);
	assert_int_equal(c->loc.col, 10);
	mlc_node *add = find_op(g, OP_ADD, "res3.sum");
	assert_int_equal(add->loc.line, 14);
	/* the skip reads the instance's input: res2's output */
	assert_ptr_equal(add->src[1], find_op(g, OP_ADD, "res2.sum"));
	assert_ptr_equal(add->src[0], find_op(g, OP_RELU, "res3.b.relu1"));
	/* the chain: res4 feeds stage.1, stage.2 feeds flatten */
	assert_ptr_equal(find_op(g, OP_CONV2D, "stage.1.a.conv2d1")->src[0], find_op(g, OP_ADD, "res4.sum"));
	assert_ptr_equal(find_op(g, OP_FLATTEN, NULL)->src[0], find_op(g, OP_ADD, "stage.2.sum"));
	for (int i = 0; i < g->nnode; i++)
		for (int j = 0; j < g->node[i]->nsrc; j++)
			assert_true(g->node[i]->src[j]->id < g->node[i]->id);
	unload(&r);
}

static void test_block_repeat_counts(void **state)
{
	for (int n = 1; n <= 4; n++) {
		char text[512];
		snprintf(text, sizeof text,
			 "inputs: {x: {shape: [4, 4, 2]}}\n"
			 "blocks:\n"
			 "  b: {params: {f: 2}, layers: [{conv2d: $f, padding: same}]}\n"
			 "graph:\n"
			 "  s: {b, repeat: %d, input: x}\n"
			 "  t: {relu, input: s}\n"
			 "loss: mse\n",
			 n);
		loaded r;
		mlc_graph *g = must_load("rep.yaml", text, &r)->graph;
		assert_int_equal(count_op(g, OP_CONV2D), n);
		/* numbered from 1 when there are several; `s` is the last copy */
		char name[64];
		snprintf(name, sizeof name, n > 1 ? "s.%d.conv2d1.weight" : "s.conv2d1.weight", n);
		assert_non_null(mlc_graph_find_value(g, name));
		snprintf(name, sizeof name, n > 1 ? "s.%d.conv2d1" : "s.conv2d1", n);
		assert_ptr_equal(find_op(g, OP_RELU, "t")->src[0], find_op(g, OP_BIAS_ADD, name));
		unload(&r);
	}
}

static void test_block_graph_form(void **state)
{
	loaded r;
	mlc_graph *g = must_load("bg.yaml",
				 "inputs: {p: {shape: [4, 4, 2]}, q: {shape: [4, 4, 3]}}\n"
				 "blocks:\n"
				 "  pair:\n"
				 "    inputs: [l, r]\n"
				 "    graph:\n"
				 "      out: {concat, inputs: [r, l]}\n"
				 "      unused: {relu, input: l}\n"
				 "    output: out\n"
				 "graph:\n"
				 "  j: {pair, inputs: [p, q]}\n"
				 "  k: {relu, input: j}\n"
				 "loss: mse\n",
				 &r)
			    ->graph;
	mlc_node *cat = find_op(g, OP_CONCAT, "j.out");
	assert_ptr_equal(cat->src[0], mlc_graph_find_value(g, "q"));
	assert_ptr_equal(cat->src[1], mlc_graph_find_value(g, "p"));
	assert_ptr_equal(find_op(g, OP_RELU, "k")->src[0], cat);
	assert_non_null(find_op(g, OP_RELU, "j.unused")); /* built, as in any graph */
	unload(&r);
}

static void test_data_cifar_normalize(void **state)
{
	loaded r;
	mlc_model *m = must_load("specs/c.yaml",
				 "inputs: {x: {shape: [32, 32, 3]}}\n"
				 "layers: [flatten, {dense: 10}]\n"
				 "loss: softmax_cross_entropy\n"
				 "data:\n"
				 "  format: cifar10\n"
				 "  train: [b1.bin, /abs/b2.bin]\n"
				 "  test: t.bin\n"
				 "  normalize: {mean: [0.5, 0.25, 0], std: [1, 2, 0.5]}\n",
				 &r);
	assert_string_equal(m->data.format, "cifar10");
	assert_int_equal(m->data.ntrain_files, 2);
	assert_string_equal(m->data.train_files[0].path, "specs/b1.bin");
	assert_string_equal(m->data.train_files[1].path, "/abs/b2.bin");
	assert_string_equal(m->data.train_x.path, "specs/b1.bin");
	assert_int_equal(m->data.ntest_files, 1);
	assert_string_equal(m->data.test_x.path, "specs/t.bin");
	assert_int_equal(m->data.nnorm, 3);
	assert_true(m->data.norm_mean[1] == 0.25);
	assert_true(m->data.norm_std[2] == 0.5);
	unload(&r);
	m = must_load("x.yaml", "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n", &r);
	assert_int_equal(m->data.nnorm, 0);
	unload(&r);
}

/* data.validation: the same shapes as train/test, per format. */
static void test_data_validation(void **state)
{
	(void)state;
	loaded r;
	const char *head = "inputs: {x: {shape: [32, 32, 3]}}\nlayers: [flatten, {dense: 10}]\n"
			   "loss: softmax_cross_entropy\n";
	char text[512];
	snprintf(text, sizeof text, "%sdata: {format: cifar10, train: b1.bin, validation: [v1.bin, /abs/v2.bin]}\n", head);
	mlc_model *m = must_load("specs/c.yaml", text, &r);
	assert_int_equal(m->data.nval_files, 2);
	assert_string_equal(m->data.val_files[0].path, "specs/v1.bin");
	assert_string_equal(m->data.val_files[1].path, "/abs/v2.bin");
	assert_string_equal(m->data.val_x.path, "specs/v1.bin");
	unload(&r);
	snprintf(text, sizeof text, "%sdata: {train: {images: a, labels: b}, validation: {images: vi, labels: vl}}\n", head);
	m = must_load("d/c.yaml", text, &r);
	assert_string_equal(m->data.val_x.path, "d/vi");
	assert_string_equal(m->data.val_y.path, "d/vl");
	assert_int_equal(m->data.val_x.loc.line, 4);
	unload(&r);
	snprintf(text, sizeof text, "%sdata: {format: csv, validation: v.csv}\n", head);
	m = must_load("c.yaml", text, &r);
	assert_string_equal(m->data.val_x.path, "v.csv");
	assert_null(m->data.val_y.path);
	unload(&r);
	m = must_load("x.yaml", "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n", &r);
	assert_null(m->data.val_x.path);
	unload(&r);
}

static void test_config_defaults(void **state)
{
	loaded r;
	mlc_model *m = must_load("x.yaml", "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n", &r);
	assert_string_equal(m->data.format, "idx");
	assert_null(m->data.train_x.path);
	assert_int_equal(m->data.label_columns, 1);
	assert_int_equal(m->data.csv_header, 0); /* MLC_HEADER_AUTO */
	assert_true(m->data.scale == 1.0);
	assert_int_equal(m->data.batch_size, 32);
	assert_int_equal(m->data.epochs, 10);
	assert_true(m->data.validation_split == 0.0);
	assert_true(m->data.shuffle);
	assert_int_equal(m->data.seed, 42);
	assert_string_equal(m->opt.type, "sgd");
	assert_true(m->opt.lr == 0.01);
	assert_true(m->opt.momentum == 0.0);
	assert_false(m->opt.nesterov);
	assert_string_equal(m->graph->name, "x");
	unload(&r);
}

/* Each optimizer's defaults (PyTorch's), the keys given over them, and its lr. */
static void test_optimizer_values(void **state)
{
	(void)state;
	static const struct {
		const char *opt;
		mlc_opcode op;
		double lr, f[4];
	} cases[] = {
		{"sgd", OP_SGD, 0.01, {0, 1, 0, 0}},
		{"adam", OP_ADAM, 0.001, {0.9, 0.999, 1e-8, 0}},
		{"{type: adam, beta2: 0.99, eps: 1e-6}", OP_ADAM, 0.001, {0.9, 0.99, 1e-6, 0}},
		{"adamw", OP_ADAMW, 0.001, {0.9, 0.999, 1e-8, 0.01}},
		{"{type: rmsprop, momentum: 0.5, lr: 3}", OP_RMSPROP, 3, {0.99, 1e-8, 0.5, 0}},
		{"{initial_accumulator: 0.25, type: adagrad}", OP_ADAGRAD, 0.01, {1e-10, 0.25, 0, 1}},
		{"{type: adadelta, rho: 0.5, weight_decay: 0.1}", OP_ADADELTA, 1.0, {0.5, 1e-6, 0.1, 1}},
		{"{type: sgd, weight_decay: 0.1}", OP_SGD, 0.01, {0, 1, 0.1, 0}},
		{"{type: sgd, weight_decay: 0.5, decoupled_weight_decay: true}", OP_SGD, 0.01, {0, 1, 0.5, 0}},
		{"{type: adam, weight_decay: 0.2, decoupled_weight_decay: true}", OP_ADAMW, 0.001, {0.9, 0.999, 1e-8, 0.2}},
		{"{type: adam, decoupled_weight_decay: false}", OP_ADAM, 0.001, {0.9, 0.999, 1e-8, 0}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char spec[256];
		snprintf(spec, sizeof spec, "name: n\ninputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n"
			 "optimizer: %s\n", cases[i].opt);
		loaded r;
		mlc_model *m = must_load("x.yaml", spec, &r);
		assert_int_equal(m->opt.update, cases[i].op);
		assert_true(fabs(m->opt.lr - cases[i].lr) <= 1e-15);
		for (int k = 0; k < 4; k++)
			if (fabs(m->opt.attrs.f[k] - cases[i].f[k]) > 1e-15)
				fail_msg("%s: attribute f%d is %g, want %g", cases[i].opt, k, m->opt.attrs.f[k],
					 cases[i].f[k]);
		if (cases[i].op == OP_SGD) /* decoupled */
			assert_int_equal(m->opt.attrs.i[1], strstr(cases[i].opt, "decoupled") != NULL);
		unload(&r);
	}
}

/* clip_norm and clip_value: none by default, for any optimizer type. */
static void test_clip_values(void **state)
{
	(void)state;
	static const struct {
		const char *opt;
		double norm, value;
	} cases[] = {
		{"sgd", 0, 0},
		{"{type: adam, clip_norm: 1.5}", 1.5, 0},
		{"{clip_value: 0.25, type: rmsprop}", 0, 0.25},
		{"{clip_norm: 2, clip_value: 0.5}", 2, 0.5},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char spec[256];
		snprintf(spec, sizeof spec, "name: n\ninputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n"
			 "optimizer: %s\n", cases[i].opt);
		loaded r;
		mlc_model *m = must_load("x.yaml", spec, &r);
		assert_true(m->opt.clip_norm == cases[i].norm);
		assert_true(m->opt.clip_value == cases[i].value);
		unload(&r);
	}
}

/* lr_mult: 1 by default, the layer's on every one of its params, times the
 * enclosing block instances' (graph and sequential form). */
static void test_lr_mult(void **state)
{
	(void)state;
	loaded r;
	mlc_graph *g = must_load("x.yaml",
				 "name: n\n"
				 "inputs: {x: {shape: [3]}}\n"
				 "blocks:\n"
				 "  pair:\n"
				 "    layers:\n"
				 "      - {dense: 3, lr_mult: 0.5}\n"
				 "      - {batchnorm}\n"
				 "graph:\n"
				 "  a: {dense: 3, input: x, lr_mult: 0}\n"
				 "  b: {pair, input: a, lr_mult: 4}\n"
				 "  c: {dense: 2, input: b}\n"
				 "loss: mse\n",
				 &r)->graph;
	static const struct {
		const char *param;
		double mult;
	} want[] = {{"a.weight", 0}, {"a.bias", 0}, {"b.dense1.weight", 2}, {"b.dense1.bias", 2},
		    {"b.batchnorm1.weight", 4}, {"b.batchnorm1.bias", 4}, {"b.batchnorm1.running_mean", 1}, {"c.weight", 1}, {"c.bias", 1}};
	int slot = mlc_op_attr_slot(OP_PARAM, "lr_mult");
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		mlc_node *p = mlc_graph_find_value(g, want[i].param);
		assert_non_null(p);
		if (p->attr.f[slot] != want[i].mult)
			fail_msg("%s: lr_mult %g, want %g", want[i].param, p->attr.f[slot], want[i].mult);
	}
	unload(&r);
}

/* l1/l2 on layers and regularization: one abs_sum/sumsq per penalized
 * parameter with the summed λ, added to the loss; weights by default. */
static void test_penalties(void **state)
{
	(void)state;
	loaded r;
	mlc_graph *g = must_load("x.yaml",
				 "name: n\n"
				 "inputs: {x: {shape: [3]}}\n"
				 "layers:\n"
				 "  - {dense: 3, l1: 0.25}\n"
				 "  - batchnorm\n"
				 "  - {dense: 2, l2: 0.5, l1: 0.125}\n"
				 "loss: mse\n"
				 "regularization: {l2: 1.5}\n",
				 &r)->graph;
	static const struct {
		mlc_opcode op;
		const char *param;
		double scale;
	} want[] = {{OP_ABS_SUM, "dense1.weight", 0.25}, {OP_SUMSQ, "dense1.weight", 1.5},
		    {OP_ABS_SUM, "dense2.weight", 0.125}, {OP_SUMSQ, "dense2.weight", 2}};
	int k = 0;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->op != OP_ABS_SUM && n->op != OP_SUMSQ)
			continue;
		assert_true(k < 4);
		assert_int_equal(n->op, want[k].op);
		assert_string_equal(n->src[0]->name, want[k].param);
		assert_true(n->attr.f[0] == want[k].scale);
		k++;
	}
	assert_int_equal(k, 4);
	mlc_node *loss = mlc_graph_find_ret(g, "loss");
	assert_int_equal(loss->op, OP_ADD); /* the last penalty added */
	unload(&r);
	/* params: patterns, biases allowed */
	g = must_load("x.yaml",
		      "name: n\ninputs: {x: {shape: [3]}}\nlayers: [{dense: 3}, {dense: 2}]\nloss: mse\n"
		      "regularization: {l1: 0.5, params: ['*.bias']}\n",
		      &r)->graph;
	k = 0;
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == OP_ABS_SUM) {
			assert_non_null(strstr(g->node[i]->src[0]->name, ".bias"));
			k++;
		}
	assert_int_equal(k, 2);
	unload(&r);
}

/* loss: a list — each loss on its output, one labels input, the weighted
 * ones scaled, summed into "loss"; "pred" from the first. */
static void test_loss_list(void **state)
{
	(void)state;
	loaded r;
	mlc_graph *g = must_load("x.yaml",
				 "name: n\n"
				 "inputs: {x: {shape: [4]}}\n"
				 "graph:\n"
				 "  h: {dense: 8, activation: relu, input: x}\n"
				 "  aux: {dense: 3, input: h}\n"
				 "  out: {dense: 3, activation: softmax, input: h}\n"
				 "output: out\n"
				 "loss: [cross_entropy, {type: cross_entropy, output: aux, weight: 0.3}, "
				 "{output: aux, type: hinge}]\n",
				 &r)->graph;
	mlc_node *loss = mlc_graph_find_ret(g, "loss"), *pred = mlc_graph_find_ret(g, "pred");
	assert_string_equal(pred->layer, "out"); /* the first loss's: the softmax kept */
	assert_int_equal(pred->op, OP_SOFTMAX);
	/* ((xent(out) + scale(xent(aux))) + hinge(aux)) */
	assert_int_equal(loss->op, OP_ADD);
	assert_int_equal(loss->src[1]->op, OP_HINGE);
	mlc_node *first = loss->src[0];
	assert_int_equal(first->op, OP_ADD);
	assert_int_equal(first->src[0]->op, OP_SOFTMAX_XENT);
	assert_ptr_equal(first->src[0]->src[0], pred->src[0]); /* folded: reads the logits */
	assert_int_equal(first->src[1]->op, OP_SCALE);
	assert_true(first->src[1]->attr.f[0] == 0.3);
	mlc_node *aux = first->src[1]->src[0];
	assert_int_equal(aux->op, OP_SOFTMAX_XENT);
	assert_string_equal(aux->src[0]->layer, "aux");
	assert_ptr_equal(aux->src[1], loss->src[1]->src[1]); /* one labels input */
	int inputs = 0;
	for (int i = 0; i < g->nnode; i++)
		inputs += g->node[i]->op == OP_INPUT;
	assert_int_equal(inputs, 2); /* x and labels */
	unload(&r);
}

static void test_config_values(void **state)
{
	loaded r;
	mlc_model *m = must_load("x.yaml",
				 "name: net-1.b\n"
				 "inputs: {x: {shape: [3]}}\n"
				 "layers: [relu]\n"
				 "loss: mse\n"
				 "optimizer: {lr: 2, momentum: 0.5, nesterov: true}\n"
				 "data: {format: csv, train: t.csv, label_columns: 3, scale: 0.5,\n"
				 "       batch_size: 7, epochs: 3, validation_split: 0.25, shuffle: false,\n"
				 "       seed: 9007199254740993, header: false}\n",
				 &r);
	assert_string_equal(m->graph->name, "net-1.b");
	assert_true(m->opt.lr == 2.0);
	assert_true(m->opt.momentum == 0.5);
	assert_true(m->opt.nesterov);
	assert_int_equal(m->opt.loc.line, 5);
	assert_string_equal(m->data.format, "csv");
	assert_string_equal(m->data.train_x.path, "t.csv");
	assert_null(m->data.train_y.path);
	assert_int_equal(m->data.label_columns, 3);
	assert_true(m->data.scale == 0.5);
	assert_int_equal(m->data.batch_size, 7);
	assert_int_equal(m->data.epochs, 3);
	assert_true(m->data.validation_split == 0.25);
	assert_false(m->data.shuffle);
	assert_true(m->data.seed == 9007199254740993u);
	assert_int_equal(m->data.csv_header, 2); /* MLC_HEADER_NO */
	assert_int_equal(m->data.loc.line, 6);
	unload(&r);

	/* header: a word of three, and CSV only */
	const char *base = "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n";
	char spec[512];
	snprintf(spec, sizeof spec, "%sdata: {format: csv, train: t.csv, header: yes}\n", base);
	loaded e = load_text("h.yaml", spec);
	assert_int_equal(e.st, MLC_EUSER);
	assert_non_null(strstr(e.out, "h.yaml:4:43: error: unknown header value 'yes'; expected one of: auto, true, false"));
	unload(&e);
	snprintf(spec, sizeof spec, "%sdata: {format: idx, train: {images: i}, header: true}\n", base);
	e = load_text("h.yaml", spec);
	assert_int_equal(e.st, MLC_EUSER);
	assert_non_null(strstr(e.out, "h.yaml:4:49: error: 'header' only applies to format: csv"));
	unload(&e);
}

/* The schedule and early-stopping keys, and their defaults. */
static void test_config_schedules(void **state)
{
	loaded r;
	const char *head = "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n";
	char text[512];
	snprintf(text, sizeof text, "%soptimizer: {schedule: reduce_on_plateau}\n"
		 "data: {validation_split: 0.1, early_stopping: {}}\n", head);
	mlc_model *m = must_load("x.yaml", text, &r);
	const mlc_sched_cfg *c = &m->opt.schedule;
	assert_int_equal(c->kind, MLC_SCHED_PLATEAU);
	assert_int_equal(c->patience, 10);
	assert_true(c->factor == 0.1 && c->threshold == 1e-4 && c->min_lr == 0);
	assert_true(c->warmup_epochs == 0 && c->warmup_start == 1.0 / 3);
	const mlc_early_cfg *e = &m->data.early;
	assert_true(e->on && e->restore_best);
	assert_int_equal(e->monitor, MLC_MON_VAL_LOSS);
	assert_int_equal(e->patience, 5);
	assert_true(e->min_delta == 0);
	unload(&r);
	snprintf(text, sizeof text, "%soptimizer: {schedule: {type: multistep, milestones: [3, 7], gamma: 0.5, "
		 "warmup_epochs: 2, warmup_start: 0.5}}\n"
		 "data: {early_stopping: {monitor: acc, patience: 2, min_delta: 0.01, restore_best: false}}\n", head);
	m = must_load("x.yaml", text, &r);
	c = &m->opt.schedule;
	assert_int_equal(c->kind, MLC_SCHED_MULTISTEP);
	assert_int_equal(c->nmilestones, 2);
	assert_true(c->milestones[0] == 3 && c->milestones[1] == 7 && c->gamma == 0.5);
	assert_true(c->warmup_epochs == 2 && c->warmup_start == 0.5);
	e = &m->data.early;
	assert_true(e->on && !e->restore_best && e->min_delta == 0.01);
	assert_int_equal(e->monitor, MLC_MON_ACC);
	assert_int_equal(e->patience, 2);
	assert_int_equal(e->loc.line, 5);
	unload(&r);
	m = must_load("x.yaml", "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n", &r);
	assert_false(m->data.early.on);
	unload(&r);
}

static void test_relative_paths(void **state)
{
	loaded r;
	mlc_model *m = must_load("specs/mnist/net.yaml",
				 "inputs: {x: {shape: [3]}}\n"
				 "layers: [relu]\n"
				 "loss: mse\n"
				 "data:\n"
				 "  train: {images: data/train.gz, labels: /abs/labels.gz}\n"
				 "  test: {images: ../t.gz, labels: 't labels.gz'}\n",
				 &r);
	assert_string_equal(m->data.train_x.path, "specs/mnist/data/train.gz");
	assert_string_equal(m->data.train_y.path, "/abs/labels.gz");
	assert_string_equal(m->data.test_x.path, "specs/mnist/../t.gz");
	assert_string_equal(m->data.test_y.path, "specs/mnist/t labels.gz");
	assert_string_equal(m->data.train_x.loc.file, "specs/mnist/net.yaml");
	assert_int_equal(m->data.train_x.loc.line, 5);
	assert_int_equal(m->data.train_x.loc.col, 19);
	unload(&r);

	m = must_load("net.yaml",
		      "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n"
		      "data: {format: csv, train: train.csv}\n",
		      &r);
	assert_string_equal(m->data.train_x.path, "train.csv");
	unload(&r);
}

/* checkpoint: its defaults, the short form, and paths relative to the spec */
static void test_checkpoint_keys(void **state)
{
	loaded r;
	const char *head = "inputs: {x: {shape: [3]}}\nlayers: [relu]\nloss: mse\n";
	char text[512];
	mlc_model *m = must_load("specs/net.yaml", head, &r);
	assert_null(m->checkpoint.path.path);
	assert_int_equal(m->checkpoint.every_epochs, 1);
	assert_int_equal(m->checkpoint.every_steps, 0);
	unload(&r);
	snprintf(text, sizeof text, "%scheckpoint: run.ckpt\n", head);
	m = must_load("specs/net.yaml", text, &r);
	assert_string_equal(m->checkpoint.path.path, "specs/run.ckpt");
	assert_int_equal(m->checkpoint.every_epochs, 1);
	unload(&r);
	snprintf(text, sizeof text, "%scheckpoint: {path: /abs/c, every_epochs: 0, every_steps: 250}\n", head);
	m = must_load("specs/net.yaml", text, &r);
	assert_string_equal(m->checkpoint.path.path, "/abs/c");
	assert_int_equal(m->checkpoint.every_epochs, 0);
	assert_int_equal(m->checkpoint.every_steps, 250);
	assert_int_equal(m->checkpoint.loc.line, 4);
	unload(&r);
}

static void test_missing_file(void **state)
{
	loaded r = load_file("golden/no such spec.yaml");
	assert_int_equal(r.st, MLC_EIO);
	assert_null(r.m);
	assert_string_equal(r.out, "golden/no such spec.yaml: error: cannot read: No such file or directory\n");
	unload(&r);
	r = load_file("golden");
	assert_int_equal(r.st, MLC_EIO);
	assert_string_equal(r.out, "golden: error: cannot read: Is a directory\n");
	unload(&r);
}

static void test_limits(void **state)
{
	/* 100 nested lists: refused at the 65th, before anything recurses */
	char deep[512] = "inputs: ";
	for (int i = 0; i < 100; i++)
		strcat(deep, "[");
	for (int i = 0; i < 100; i++)
		strcat(deep, "]");
	strcat(deep, "\n");
	loaded r = load_text("deep.yaml", deep);
	assert_int_equal(r.st, MLC_EUSER);
	assert_non_null(strstr(r.out, "deep.yaml:1:72: error: the spec is nested more than 64 levels deep"));
	unload(&r);

	/* over 16 MiB: refused without parsing */
	size_t big = 16 * 1024 * 1024 + 1;
	char *text = malloc(big + 1);
	memset(text, '#', big);
	text[big] = 0;
	r = load_text("big.yaml", text);
	assert_int_equal(r.st, MLC_EUSER);
	assert_string_equal(r.out, "big.yaml: error: the spec is 16777217 bytes; specs are limited to 16 MiB\n");
	unload(&r);
	free(text);

	/* a billion laughs costs nothing: aliases are refused, never expanded */
	r = load_text("lol.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n"
				  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				  "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n");
	assert_int_equal(r.st, MLC_EUSER);
	assert_non_null(strstr(r.out, "lol.yaml:1:4: error: anchors and aliases are not supported"));
	unload(&r);

	/* NUL bytes and invalid UTF-8 are syntax errors, not crashes */
	static const char nul[] = "inputs: {x: {shape: [3]}}\nlay\0ers: [relu]\n";
	mlc_model *m = NULL;
	FILE *devnull = fopen("/dev/null", "w");
	mlc_diag *d = mlc_diag_new(devnull);
	assert_int_equal(mlc_frontend_load_text("nul.yaml", nul, sizeof nul - 1, d, &m), MLC_EUSER);
	assert_int_equal(mlc_frontend_load_text("utf.yaml", "a: \xff\xfe\n", 6, d, &m), MLC_EUSER);
	assert_null(m);
	mlc_diag_free(d);
	fclose(devnull);
}

/* Errors found earlier in the same diagnostics sink don't fail a good spec. */
static void test_status_counts_own_errors(void **state)
{
	FILE *devnull = fopen("/dev/null", "w");
	mlc_diag *d = mlc_diag_new(devnull);
	mlc_error_file(d, NULL, "an earlier error");
	mlc_model *m = NULL;
	assert_int_equal(mlc_frontend_load_text("x.yaml", mlp, strlen(mlp), d, &m), MLC_OK);
	assert_non_null(m);
	mlc_model_free(m);
	mlc_diag_free(d);
	fclose(devnull);
}

/* Random byte edits of valid specs: the frontend must never crash, and it
 * must fail exactly when it printed something. Cheap, and ASan watches. */
static void test_mutations(void **state)
{
	static const char *const seeds[] = {
		mlp,
		"inputs: {a: {shape: [2]}, b: {shape: [2]}}\n"
		"graph:\n"
		"  out: {dense: 1, input: s, activation: step}\n"
		"  s: {add, inputs: [ra, b]}\n"
		"  ra: {leaky_relu: 0.1, input: a}\n"
		"output: out\n"
		"loss: {type: mse}\n"
		"optimizer: {lr: 0.1, momentum: 0.9}\n"
		"data: {format: csv, train: x.csv, test: y.csv, label_columns: 1, inputs: {b: {columns: [2, 4]}}}\n",
		"inputs: {x: {shape: [9, 9, 2]}}\n"
		"graph:\n"
		"  c: {conv2d: 4, kernel: [3, 2], stride: 2, padding: same, groups: 2, input: x}\n"
		"  p: {maxpool: 2, stride: 1, padding: [0, 1], input: c}\n"
		"  q: {avgpool, padding: 1, input: x}\n"
		"  b: {batchnorm, momentum: 0.5, input: p}\n"
		"  g: {global_avgpool, input: b}\n"
		"  h: {global_avgpool, input: q}\n"
		"  k: {concat, inputs: [g, h, g]}\n"
		"  d: {dropout: 0.2, input: k}\n"
		"  out: {dense: 3, input: d}\n"
		"loss: softmax_cross_entropy\n"
		"data: {format: cifar10, train: [a, b], normalize: {mean: [0, 1], std: [1, 2]}}\n",
		blocks_spec,
		"inputs: {p: {shape: [4, 4, 2]}, q: {shape: [4, 4, 3]}}\n"
		"blocks:\n"
		"  u: {params: {f: 2, k: required}, layers: [{conv2d: $f, kernel: $k}, relu]}\n"
		"  v:\n"
		"    inputs: [l, r]\n"
		"    graph: {o: {concat, inputs: [r, l]}, w: {u: {k: 1}, repeat: 2, input: o}}\n"
		"    output: w\n"
		"graph:\n"
		"  j: {v, inputs: [p, q]}\n"
		"  k: {u: {f: 3, k: 1}, repeat: 3, input: j}\n"
		"loss: mse\n",
	};
	enum { NSEEDS = MLC_COUNTOF(seeds) };
	static const char alphabet[] = "{}[]:,-#&*!|>'\"\n\t 0a.~%@`?\\$";
	for (int i = 0; i < NSEEDS; i++) { /* every seed is a valid spec */
		loaded r;
		must_load("seed.yaml", seeds[i], &r);
		unload(&r);
	}
	uint64_t s = 0x9E3779B97F4A7C15u;
	char buf[2048];
	for (int iter = 0; iter < 2000 * NSEEDS; iter++) {
		const char *seed = seeds[iter % NSEEDS];
		size_t n = strlen(seed);
		MLC_ASSERT(n < sizeof buf);
		memcpy(buf, seed, n + 1);
		for (int k = 0; k < 1 + iter % 4; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			size_t at = (size_t)(s % n);
			buf[at] = alphabet[(s >> 32) % (sizeof alphabet - 1)];
		}
		loaded r = load_text("fuzz.yaml", buf);
		assert_true(r.st == MLC_OK || r.st == MLC_EUSER);
		assert_int_equal(r.st == MLC_OK, r.out[0] == 0);
		assert_int_equal(r.st == MLC_OK, r.m != NULL);
		unload(&r);
	}
}

/* Specs shown in docs/spec.md: a ```yaml block with `inputs:` and `loss:`
 * at the start of a line is a whole spec and must load, so the page can't
 * drift from the code. */
static void test_doc_examples(void **state)
{
	char *doc = slurp("../docs/spec.md");
	assert_non_null(doc);
	int checked = 0;
	for (char *p = doc; (p = strstr(p, "\n```yaml\n"));) {
		const char *end = strstr(p + 9, "\n```");
		assert_non_null(end);
		char *block = strndup(p + 8, (size_t)(end + 1 - (p + 8))); /* from its '\n' */
		if (strstr(block, "\ninputs:") && strstr(block, "\nloss:")) {
			loaded r;
			must_load("docs/spec.md", block + 1, &r);
			unload(&r);
			checked++;
		}
		free(block);
		p = (char *)end + 1;
	}
	assert_true(checked >= 4);
	free(doc);
}

/* examples/ are what users copy first: they must keep loading. */
static void test_examples(void **state)
{
	DIR *dir = opendir("../examples");
	if (!dir)
		skip();
	int n = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		char path[512];
		snprintf(path, sizeof path, "../examples/%s", e->d_name);
		loaded r = load_file(path);
		if (r.st != MLC_OK)
			print_error("%s", r.out);
		assert_int_equal(r.st, MLC_OK);
		unload(&r);
		n++;
	}
	closedir(dir);
	assert_true(n > 0);
}

int main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_mlp_graph),
		cmocka_unit_test(test_default_names),
		cmocka_unit_test(test_softmax_added_for_prediction),
		cmocka_unit_test(test_regression_losses), cmocka_unit_test(test_more_losses),
		cmocka_unit_test(test_op_attributes),
		cmocka_unit_test(test_graph_form_order),
		cmocka_unit_test(test_conv_graph),
		cmocka_unit_test(test_same_padding),
		cmocka_unit_test(test_pool_and_padding_forms),
		cmocka_unit_test(test_batchnorm_dropout_concat),
		cmocka_unit_test(test_block_expansion),
		cmocka_unit_test(test_block_repeat_counts),
		cmocka_unit_test(test_block_graph_form),
		cmocka_unit_test(test_data_cifar_normalize),
		cmocka_unit_test(test_data_validation),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_schedules),
		cmocka_unit_test(test_optimizer_values), cmocka_unit_test(test_clip_values),
		cmocka_unit_test(test_lr_mult), cmocka_unit_test(test_penalties),
		cmocka_unit_test(test_loss_list),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_checkpoint_keys),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_status_counts_own_errors),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_examples),
	};
	int failed = cmocka_run_group_tests_name("frontend", unit, NULL, NULL);
	return failed + run_golden();
}
