/* test_plan.c — the memory planner (passes/plan.c) and its checks: reuse of
 * dead values' memory, in-place outputs, results kept to the end, per-thread
 * scratch, no overlap of live values on every example and benchmark spec
 * (checked here against an independent liveness), the verifier's overlap
 * check, and golden plans: tests/ir/NAME.ir planned = NAME_planned.ir.
 * Run from tests/. MLC_UPDATE_GOLDEN=1 rewrites the planned files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"

static const mlc_loc here = {"t.yaml", 1, 1};

static mlc_node *matmul(mlc_graph *g, mlc_node *x, mlc_node *w)
{
	mlc_attrs tb;
	mlc_attrs_default(OP_MATMUL, &tb, g->arena);
	tb.i[1] = 1;
	return mlc_build(g, OP_MATMUL, x, &tb, x, w, NULL);
}

/* x[N,64] → `layers` × (matmul, bias_add, relu); pred is the last relu. */
static mlc_graph *chain(int layers, mlc_node **pre, mlc_node **act)
{
	mlc_graph *g = mlc_graph_new("chain");
	int64_t xd[] = {MLC_BATCH, 64}, wd[] = {64, 64}, bd[] = {64};
	mlc_node *h = mlc_source(g, OP_INPUT, "x", DT_F32, 2, xd, here);
	for (int l = 0; l < layers; l++) {
		char name[32];
		snprintf(name, sizeof name, "w%d", l);
		mlc_node *w = mlc_source(g, OP_PARAM, name, DT_F32, 2, wd, here);
		snprintf(name, sizeof name, "b%d", l);
		mlc_node *b = mlc_source(g, OP_PARAM, name, DT_F32, 1, bd, here);
		h = mlc_build(g, OP_BIAS_ADD, h, NULL, matmul(g, h, w), b, NULL);
		if (pre)
			pre[l] = h;
		h = mlc_build(g, OP_RELU, h, NULL, h, NULL, NULL);
		if (act)
			act[l] = h;
	}
	mlc_graph_ret(g, "pred", h);
	return g;
}

static void plan(mlc_graph *g, int64_t batch, int threads)
{
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = batch, .threads = threads};
	assert_int_equal(mlc_plan_memory(g, &o, d), MLC_OK);
	assert_int_equal(mlc_verify(g, d), MLC_OK);
	mlc_diag_free(d);
}

/* Written from the definition in docs/ir.md, not from ir/liveness.c. */
static void intervals(const mlc_graph *g, int *first, int *last)
{
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		int at = i;
		while (n->group && g->node[at] != n->group)
			at++;
		first[i] = last[i] = n->op == OP_INPUT || n->op == OP_CONST ? -1 : at;
	}
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *r = g->node[i];
		if (r->dead)
			continue;
		for (int k = 0; k < r->nsrc; k++)
			for (int j = 0; j < i; j++)
				if (g->node[j] == r->src[k] && (!r->group || r->group != r->src[k]->group)) {
					int at = first[i] < 0 ? i : first[i];
					if (last[j] < at)
						last[j] = at;
				}
	}
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == OP_INPUT)
			last[i] = g->nnode;
	for (int r = 0; r < g->nret; r++)
		for (int j = 0; j < g->nnode; j++)
			if (g->node[j] == g->ret[r].val)
				last[j] = g->nnode;
}

static bool reads(const mlc_node *b, const mlc_node *a)
{
	for (int k = 0; k < b->nsrc; k++)
		if (b->src[k] == a)
			return true;
	return false;
}

static bool elementwise(const mlc_node *b, const mlc_node *a)
{
	return mlc_ops[b->op].fclass == FC_ELEMWISE || (b->op == OP_BIAS_ADD && b->src[0] == a);
}

/* a is the anchor of the fused kernel rooted at root, or one of its members reads a */
static bool group_reads(const mlc_graph *g, const mlc_node *root, const mlc_node *a)
{
	if (a->group == root)
		return mlc_ops[a->op].fclass == FC_OUTFUSABLE;
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->group == root && reads(g->node[i], a))
			return true;
	return false;
}

/* No two activation values live at once share memory, except an
 * elementwise output (or a fused kernel's output) exactly on a value its
 * kernel reads that dies there; returns the
 * number of in-place pairs. */
static int check_no_overlap(const mlc_graph *g, const char *what)
{
	int *first = malloc(sizeof(int) * (size_t)g->nnode), *last = malloc(sizeof(int) * (size_t)g->nnode);
	intervals(g, first, last);
	int inplace = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *a = g->node[i];
		if (a->dead || a->internal || a->mem != MEM_ACT)
			continue;
		assert_int_equal(a->offset % 16, 0);
		int64_t alo = a->offset, ahi = alo + mlc_block_elems(g, a);
		for (int j = i + 1; j < g->nnode; j++) {
			const mlc_node *b = g->node[j];
			if (b->dead || b->internal || b->mem != MEM_ACT)
				continue;
			int64_t blo = b->offset, bhi = blo + mlc_block_elems(g, b);
			if (bhi <= alo || ahi <= blo || last[i] < first[j] || last[j] < first[i])
				continue;
			if (blo == alo && last[i] == first[j] && mlc_same_shape(a, b) && a->op != OP_INPUT &&
			    a->op != OP_CONST && (b->group ? group_reads(g, b->group, a) : reads(b, a) && elementwise(b, a))) {
				inplace++;
				continue;
			}
			fail_msg("%s: %%%d and %%%d overlap while both are live", what, a->id, b->id);
		}
	}
	free(first);
	free(last);
	return inplace;
}

static int64_t sum_sizes(const mlc_graph *g)
{
	int64_t sum = 0;
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i]->dead && g->node[i]->mem == MEM_ACT)
			sum += (mlc_block_elems(g, g->node[i]) + 15) / 16 * 16;
	return sum;
}

static void test_chain_reuse(void **state)
{
	(void)state;
	mlc_node *pre[6], *act[6];
	mlc_graph *g = chain(6, pre, act);
	plan(g, 32, 1);
	/* 19 values of 32x64 without reuse; live at once: x (kept for the
	 * caller), a layer's input and its matmul, on which the bias_add and
	 * the relu are written in place */
	assert_true(g->act_size < sum_sizes(g));
	assert_int_equal(g->act_size, 3 * 32 * 64);
	for (int l = 0; l < 6; l++) {
		assert_int_equal(pre[l]->offset, pre[l]->src[0]->offset); /* bias_add on its matmul */
		assert_int_equal(act[l]->offset, pre[l]->offset);         /* relu on its bias_add */
	}
	assert_int_equal(check_no_overlap(g, "chain"), 12);
	mlc_graph_free(g);
}

/* A result stays live to the end: nothing reuses it, nothing writes over it
 * in place, even when its last reader is early. */
static void test_rets_kept(void **state)
{
	(void)state;
	mlc_node *pre[4], *act[4];
	mlc_graph *g = chain(4, pre, act);
	mlc_graph_ret(g, "hidden", pre[1]);
	plan(g, 8, 1);
	assert_int_not_equal(act[1]->offset, pre[1]->offset);
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n == pre[1] || n->mem != MEM_ACT)
			continue;
		int64_t lo = n->offset, hi = lo + mlc_numel(n, 8);
		bool later = false;
		for (int j = 0; j < g->nnode; j++)
			later |= g->node[j] == pre[1] && j < i;
		if (later)
			assert_true(hi <= pre[1]->offset || pre[1]->offset + mlc_numel(pre[1], 8) <= lo);
	}
	check_no_overlap(g, "rets");
	mlc_graph_free(g);
}

/* Inputs are the caller's: kept to the end, never written over in place. */
static void test_no_inplace_on_inputs(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("in");
	int64_t xd[] = {MLC_BATCH, 16};
	mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 2, xd, here);
	mlc_node *r = mlc_build(g, OP_RELU, x, NULL, x, NULL, NULL);
	mlc_graph_ret(g, "pred", mlc_build(g, OP_SIGMOID, r, NULL, r, NULL, NULL));
	plan(g, 4, 1);
	assert_int_not_equal(r->offset, x->offset);
	mlc_graph_free(g);
}

/* Fusion groups: an internal member gets no memory; a member's outside
 * sources are read, and its escaping values written, at the group's root. */
static void test_groups(void **state)
{
	(void)state;
	mlc_node *pre[3], *act[3];
	mlc_graph *g = chain(3, pre, act);
	mlc_node *mm = pre[1]->src[0];
	pre[1]->group = act[1]; /* {bias_add, relu} of layer 1, rooted at the relu */
	act[1]->group = act[1];
	mlc_group_mark(g);
	assert_true(pre[1]->internal);
	assert_false(act[1]->internal);
	plan(g, 8, 1);
	assert_int_equal(pre[1]->mem, MEM_NONE);
	assert_int_equal(act[1]->mem, MEM_ACT);
	mlc_liveness lv;
	mlc_liveness_compute(g, &lv);
	int root = lv.pos[act[1]->id];
	assert_int_equal(lv.start[root], root);
	assert_int_equal(lv.end[lv.pos[act[0]->id]], lv.pos[mm->id]);
	assert_int_equal(lv.end[lv.pos[mm->id]], root); /* read by the internal bias_add */
	assert_int_equal(lv.start[lv.pos[pre[1]->id]], -2);
	mlc_liveness_free(&lv);
	/* the fused kernel writes its relu in place over mm, which dies there */
	assert_int_equal(act[1]->offset, mm->offset);
	check_no_overlap(g, "groups");
	mlc_graph_free(g);
}

static mlc_graph *parse_file(const char *path)
{
	char *text = mlc_read_file(path, NULL);
	assert_non_null(text);
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_graph *g = NULL;
	assert_int_equal(mlc_graph_parse(path, text, d, &g), MLC_OK);
	mlc_diag_free(d);
	free(text);
	return g;
}

/* Per-thread scratch: threads areas of mlc_scratch_stride each (a stride
 * may hold more than the elems: a split weight gradient's partial output). */
static void test_threads_scratch(void **state)
{
	(void)state;
	mlc_graph *g1 = parse_file("ir/conv.ir"), *g2 = parse_file("ir/conv.ir");
	plan(g1, 4, 1);
	plan(g2, 4, 2);
	assert_int_equal(g2->threads, 2);
	assert_true(g2->act_size > g1->act_size);
	bool seen = false;
	for (int i = 0; i < g2->nnode; i++) {
		const mlc_node *n = g2->node[i];
		int64_t elems = mlc_scratch_elems(n, 4);
		if (!elems)
			continue;
		seen = true;
		assert_int_equal(mlc_scratch_extent(g2, n), 2 * mlc_scratch_stride(n, 4));
		assert_true(mlc_scratch_stride(n, 4) >= elems);
		assert_int_equal(mlc_scratch_extent(g1, g1->node[i]), elems);
	}
	assert_true(seen);
	char *t = mlc_graph_print_str(g2);
	assert_non_null(strstr(t, " threads=2\n"));
	free(t);
	t = mlc_graph_print_str(g1);
	assert_null(strstr(t, "threads="));
	free(t);
	check_no_overlap(g2, "conv threads=2");
	mlc_graph_free(g1);
	mlc_graph_free(g2);
}

/* The plan line's threads field: read back, and only written when > 1. */
static void test_threads_text(void **state)
{
	(void)state;
	static const char ok[] = "graph g {\n"
				 "  plan max_batch=2 act=16 param=0 threads=3\n"
				 "  %x = input : f32[N,4] @act+0\n"
				 "  ret pred = %x\n"
				 "}\n";
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_graph *g = NULL;
	assert_int_equal(mlc_graph_parse("ok.ir", ok, d, &g), MLC_OK);
	assert_int_equal(g->threads, 3);
	char *t = mlc_graph_print_str(g);
	assert_string_equal(t, ok);
	free(t);
	mlc_graph_free(g);
	mlc_diag_free(d);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	d = mlc_diag_new(f);
	static const char bad[] = "graph g {\n"
				  "  plan max_batch=2 act=16 param=0 threads=1\n"
				  "  %x = input : f32[N,4]\n"
				  "  ret pred = %x\n"
				  "}\n";
	assert_int_equal(mlc_graph_parse("bad.ir", bad, d, &g), MLC_EUSER);
	fflush(f);
	assert_non_null(strstr(buf, "bad.ir:2:35: error: threads must be from 2 to 64"));
	mlc_diag_free(d);
	fclose(f);
	free(buf);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Every spec of examples/ and bench/, through the whole pipeline. */
static void test_specs_no_overlap(void **state)
{
	(void)state;
	static const char *const dirs[] = {"../examples", "../bench"};
	static const int64_t batches[] = {1, 32, 64};
	int specs = 0, inplace = 0;
	for (size_t di = 0; di < MLC_COUNTOF(dirs); di++) {
		DIR *dir = opendir(dirs[di]);
		assert_non_null(dir);
		for (struct dirent *e; (e = readdir(dir));) {
			if (!ends_with(e->d_name, ".yaml"))
				continue;
			char path[512];
			snprintf(path, sizeof path, "%s/%s", dirs[di], e->d_name);
			specs++;
			for (size_t bi = 0; bi < MLC_COUNTOF(batches); bi++)
				for (int threads = 1; threads <= 2; threads++) {
					mlc_diag *d = mlc_diag_new(stderr);
					mlc_model *m;
					assert_int_equal(mlc_frontend_load(path, d, &m), MLC_OK);
					mlc_pass_opts o = {.max_batch = batches[bi], .threads = threads,
							   .momentum = m->opt.momentum};
					assert_int_equal(mlc_run_passes(m->graph, &o, NULL, d), MLC_OK);
					char what[600];
					snprintf(what, sizeof what, "%s batch %lld threads %d", path,
						 (long long)batches[bi], threads);
					inplace += check_no_overlap(m->graph, what);
					assert_true(m->graph->act_size < sum_sizes(m->graph));
					mlc_model_free(m);
					mlc_diag_free(d);
				}
		}
		closedir(dir);
	}
	assert_true(specs >= 10);
	assert_true(inplace > 0);
}

/* A hand-written plan that puts two live values on one slot is caught. */
static void test_verifier_overlap(void **state)
{
	(void)state;
	static const char text[] = "graph bad {\n"
				   "  plan max_batch=4 act=64 param=16\n"
				   "  %x = input : f32[N,4] @act+0\n"
				   "  %w = param : f32[4,4] @param+0\n"
				   "  %2 = matmul(%x, %w) : f32[N,4] @act+16\n"
				   "  %3 = relu(%2) : f32[N,4] @act+0\n"
				   "  %4 = add(%3, %x) : f32[N,4] @act+32\n"
				   "  ret pred = %4\n"
				   "}\n";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	mlc_diag *d = mlc_diag_new(f);
	mlc_graph *g = NULL;
	assert_int_equal(mlc_graph_parse("bad.ir", text, d, &g), MLC_OK);
	assert_int_equal(mlc_verify(g, d), MLC_EINTERNAL);
	fflush(f);
	assert_string_equal(buf, "mlc: error: verifier: %x (input) at act+0 and %3 (relu) at act+0 overlap in "
				 "memory while both are live (positions -1..5 and 3..4)\n");
	/* in place on the dying matmul instead is fine */
	g->node[3]->offset = 16;
	assert_int_equal(mlc_verify(g, d), MLC_OK);
	/* nor on an input */
	g->node[4]->offset = 0;
	assert_int_equal(mlc_verify(g, d), MLC_EINTERNAL);
	mlc_graph_free(g);
	mlc_diag_free(d);
	fclose(f);
	free(buf);
}

/* tests/ir/NAME.ir through plan_memory gives tests/ir/NAME_planned*.ir. */
static void golden(const char *in, const char *want_path, int64_t batch, int threads)
{
	mlc_graph *g = parse_file(in);
	plan(g, batch, threads);
	check_no_overlap(g, want_path);
	char *got = mlc_graph_print_str(g);
	const char *update = getenv("MLC_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		FILE *f = fopen(want_path, "w");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	} else {
		char *want = mlc_read_file(want_path, NULL);
		assert_non_null(want);
		assert_string_equal(got, want);
		free(want);
	}
	free(got);
	mlc_graph_free(g);
}

static void test_golden(void **state)
{
	(void)state;
	golden("ir/xor.ir", "ir/xor_planned.ir", 64, 1);
	golden("ir/conv.ir", "ir/conv_planned.ir", 4, 1);
	golden("ir/conv.ir", "ir/conv_planned_t2.ir", 4, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_reuse),
		cmocka_unit_test(test_rets_kept),
		cmocka_unit_test(test_no_inplace_on_inputs),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_threads_scratch),
		cmocka_unit_test(test_threads_text),
		cmocka_unit_test(test_specs_no_overlap),
		cmocka_unit_test(test_verifier_overlap),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
