/* test_passes.c — the pass pipeline on hand-built graphs: autodiff results,
 * pruning, the optimizer pass, memory planning, and the pass manager's dumps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

static mlc_loc L(int line)
{
	return (mlc_loc){"t.yaml", line, 3};
}

/* x f32[N,4] → dense(3, relu) → dense(2) → softmax_xent(labels) */
static mlc_graph *mlp(void)
{
	mlc_graph *g = mlc_graph_new("t");
	int64_t xd[] = {MLC_BATCH, 4}, w1d[] = {3, 4}, b1d[] = {3}, w2d[] = {2, 3}, b2d[] = {2}, yd[] = {MLC_BATCH};
	mlc_node *x = mlc_source(g, OP_INPUT, "x", DT_F32, 2, xd, L(1));
	mlc_node *y = mlc_source(g, OP_INPUT, "labels", DT_I32, 1, yd, L(9));
	mlc_node *w1 = mlc_source(g, OP_PARAM, "d1.weight", DT_F32, 2, w1d, L(2));
	mlc_node *b1 = mlc_source(g, OP_PARAM, "d1.bias", DT_F32, 1, b1d, L(2));
	mlc_node *w2 = mlc_source(g, OP_PARAM, "d2.weight", DT_F32, 2, w2d, L(3));
	mlc_node *b2 = mlc_source(g, OP_PARAM, "d2.bias", DT_F32, 1, b2d, L(3));
	mlc_attrs tb;
	mlc_attrs_default(OP_MATMUL, &tb, g->arena);
	tb.i[1] = 1;
	mlc_node *h = mlc_build(g, OP_MATMUL, w1, &tb, x, w1, NULL);
	h = mlc_build(g, OP_BIAS_ADD, w1, NULL, h, b1, NULL);
	h = mlc_build(g, OP_RELU, w1, NULL, h, NULL, NULL);
	h = mlc_build(g, OP_MATMUL, w2, &tb, h, w2, NULL);
	h = mlc_build(g, OP_BIAS_ADD, w2, NULL, h, b2, NULL);
	mlc_node *loss = mlc_build(g, OP_SOFTMAX_XENT, y, NULL, h, y, NULL);
	mlc_graph_ret(g, "loss", loss);
	mlc_graph_ret(g, "pred", mlc_build(g, OP_SOFTMAX, h, NULL, h, NULL, NULL));
	return g;
}

static int count_live(const mlc_graph *g, mlc_opcode op)
{
	int k = 0;
	for (int i = 0; i < g->nnode; i++)
		k += !g->node[i]->dead && g->node[i]->op == op;
	return k;
}

static void test_autodiff_results(void **state)
{
	(void)state;
	mlc_graph *g = mlp();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = 8};
	assert_int_equal(mlc_run_passes(g, &o, "dce", d), MLC_OK);
	const char *params[] = {"d1.weight", "d1.bias", "d2.weight", "d2.bias"};
	for (int i = 0; i < 4; i++) {
		char key[64];
		snprintf(key, sizeof key, "grad.%s", params[i]);
		mlc_node *gv = mlc_graph_find_ret(g, key);
		assert_non_null(gv);
		assert_true(mlc_same_shape(gv, mlc_graph_find_value(g, params[i])));
		snprintf(key, sizeof key, "update.%s", params[i]);
		assert_non_null(mlc_graph_find_ret(g, key));
	}
	assert_null(mlc_graph_find_ret(g, "grad.x"));
	/* Forward 2 matmuls; backward: dW1, dW2, dH1 — but no dX (pruned). */
	assert_int_equal(count_live(g, OP_MATMUL), 5);
	assert_int_equal(count_live(g, OP_SUM_ROWS), 2);
	assert_int_equal(count_live(g, OP_SGD), 4);
	assert_int_equal(count_live(g, OP_STATE), 4);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

static void test_wrt_inputs(void **state)
{
	(void)state;
	mlc_graph *g = mlp();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = 8, .wrt_inputs = true, .no_update = true};
	assert_int_equal(mlc_run_passes(g, &o, NULL, d), MLC_OK);
	mlc_node *gx = mlc_graph_find_ret(g, "grad.x");
	assert_non_null(gx);
	assert_true(mlc_same_shape(gx, mlc_graph_find_value(g, "x")));
	assert_null(mlc_graph_find_ret(g, "grad.labels")); /* integer labels are not differentiable */
	assert_int_equal(count_live(g, OP_SGD), 0);
	assert_int_equal(count_live(g, OP_MATMUL), 6);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

static void test_frozen_param_gets_no_gradient(void **state)
{
	(void)state;
	mlc_graph *g = mlp();
	mlc_graph_find_value(g, "d1.weight")->attr.i[2] = 0; /* trainable: false */
	mlc_graph_find_value(g, "d1.bias")->attr.i[2] = 0;
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = 8};
	assert_int_equal(mlc_run_passes(g, &o, NULL, d), MLC_OK);
	assert_null(mlc_graph_find_ret(g, "grad.d1.weight"));
	/* Only dW2 is computed backward; nothing flows below layer 2. */
	assert_int_equal(count_live(g, OP_MATMUL), 3);
	assert_int_equal(count_live(g, OP_RELU_GRAD), 0);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

static void test_plan_disjoint(void **state)
{
	(void)state;
	mlc_graph *g = mlp();
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_pass_opts o = {.max_batch = 5};
	assert_int_equal(mlc_run_passes(g, &o, NULL, d), MLC_OK);
	assert_true(g->act_size > 0 && g->param_size > 0);
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *a = g->node[i];
		if (a->dead || a->op == OP_SGD)
			continue;
		assert_true(a->internal ? a->mem == MEM_NONE : a->mem != MEM_NONE);
		assert_int_equal(a->offset % 16, 0);
		int64_t asz = mlc_numel(a, 5);
		for (int j = i + 1; j < g->nnode; j++) {
			mlc_node *b = g->node[j];
			/* the parameter arena; activations: test_plan.c */
			if (b->dead || b->op == OP_SGD || b->mem != a->mem || a->mem != MEM_PARAM)
				continue;
			int64_t bsz = mlc_numel(b, 5);
			assert_true(a->offset + asz <= b->offset || b->offset + bsz <= a->offset);
		}
	}
	mlc_node *u = mlc_graph_find_ret(g, "update.d2.weight");
	assert_int_equal(u->offset, mlc_graph_find_value(g, "d2.weight")->offset);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

static void test_print_after_all(void **state)
{
	(void)state;
	mlc_graph *g = mlp();
	mlc_diag *d = mlc_diag_new(stderr);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	mlc_pass_opts o = {.max_batch = 4, .print_after = "all", .print_before = "dce", .print_to = f};
	assert_int_equal(mlc_run_passes(g, &o, NULL, d), MLC_OK);
	fclose(f);
	const char *want[] = {"# IR after shapes", "# IR after autodiff", "# IR after optimizer",
			      "# IR before dce", "# IR after dce", "# IR after plan"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_non_null(strstr(buf, want[i]));
	assert_non_null(strstr(buf, "relu_grad("));
	assert_non_null(strstr(buf, "sgd("));
	free(buf);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

static void test_shape_error_is_located(void **state)
{
	(void)state;
	mlc_graph *g = mlc_graph_new("bad");
	int64_t ad[] = {MLC_BATCH, 4}, bd[] = {MLC_BATCH, 5};
	mlc_node *a = mlc_source(g, OP_INPUT, "a", DT_F32, 2, ad, L(1));
	mlc_node *b = mlc_source(g, OP_INPUT, "b", DT_F32, 2, bd, L(2));
	mlc_node *src[] = {a, b};
	mlc_node *s = mlc_node_new(g, OP_ADD, 2, src, L(7));
	s->layer = "sum";
	mlc_node *r = mlc_node_new(g, OP_RELU, 1, &s, L(8)); /* downstream: no second error */
	(void)r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	mlc_diag *d = mlc_diag_new(f);
	assert_int_equal(mlc_infer_shapes(g, d), MLC_EUSER);
	fclose(f);
	assert_string_equal(buf, "t.yaml:7:3: error: in layer 'sum': add expects operands of the same shape, "
				 "got f32[N,4] and f32[N,5]\n");
	free(buf);
	mlc_diag_free(d);
	mlc_graph_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_autodiff_results),
		cmocka_unit_test(test_wrt_inputs),
		cmocka_unit_test(test_frozen_param_gets_no_gradient),
		cmocka_unit_test(test_plan_disjoint),
		cmocka_unit_test(test_print_after_all),
		cmocka_unit_test(test_shape_error_is_located),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
