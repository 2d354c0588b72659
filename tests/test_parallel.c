/* test_parallel.c — the runtime thread pool (runtime/pool.h) and kernels
 * split over it: every chunk runs once whatever the extent, calls nest and
 * overlap safely, and a train step gives the same results at 1 and 2
 * threads (bit for bit, except weight gradients of convolutions, whose split
 * sums images in another order). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/pool.h"
#include "runtime/session.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pool ---- */

enum { MAXT = 8, MAXE = 1 << 16 };

typedef struct {
	atomic_int hits[MAXE];     /* per index */
	atomic_int tid_calls[MAXT];
	int64_t begin[MAXT], end[MAXT];
	int64_t extent;
	bool nest; /* call mlc_parallel_for from inside the task */
} cover;

static void count_task(void *ctx, int64_t begin, int64_t end, int64_t tid)
{
	cover *c = ctx;
	assert_true(tid >= 0 && tid < MAXT && begin >= 0 && begin <= end && end <= c->extent);
	atomic_fetch_add(&c->tid_calls[tid], 1);
	c->begin[tid] = begin;
	c->end[tid] = end;
	for (int64_t i = begin; i < end; i++)
		atomic_fetch_add(&c->hits[i], 1);
}

/* Each tid in [0, t) exactly once, chunks contiguous in tid order, every
 * index exactly once. */
static void check_cover(int64_t extent, int64_t t)
{
	static cover c;
	memset(&c, 0, sizeof c);
	c.extent = extent;
	mlc_parallel_for(count_task, &c, extent, t);
	int64_t at = 0;
	for (int64_t k = 0; k < (t < 1 ? 1 : t); k++) {
		assert_int_equal(atomic_load(&c.tid_calls[k]), 1);
		assert_int_equal(c.begin[k], at);
		at = c.end[k];
	}
	assert_int_equal(at, extent);
	for (int64_t i = 0; i < extent; i++)
		assert_int_equal(atomic_load(&c.hits[i]), 1);
}

static void test_pool_cover(void **state)
{
	(void)state;
	static const int64_t extents[] = {0, 1, 2, 3, 7, 64, 1000, MAXE};
	for (size_t e = 0; e < MLC_COUNTOF(extents); e++)
		for (int64_t t = 1; t <= MAXT; t++)
			check_cover(extents[e], t);
	check_cover(5, 0); /* nthreads <= 1: inline */
}

static void sum_task(void *ctx, int64_t begin, int64_t end, int64_t tid)
{
	int64_t *part = ctx;
	for (int64_t i = begin; i < end; i++)
		part[tid] += i;
}

/* Many calls in a row, as a train step makes: every one complete on return. */
static void test_pool_many_calls(void **state)
{
	(void)state;
	for (int k = 0; k < 20000; k++) {
		int64_t part[2] = {0, 0}, n = k % 97;
		mlc_parallel_for(sum_task, part, n, 2);
		assert_int_equal(part[0] + part[1], n * (n - 1) / 2);
	}
}

static void nest_task(void *ctx, int64_t begin, int64_t end, int64_t tid)
{
	cover *c = ctx;
	atomic_fetch_add(&c->tid_calls[tid], 1);
	int64_t part[3] = {0, 0, 0};
	mlc_parallel_for(sum_task, part, end - begin, 3); /* runs inline: the pool is busy */
	assert_int_equal(part[0] + part[1] + part[2], (end - begin) * (end - begin - 1) / 2);
}

static void test_pool_nested(void **state)
{
	(void)state;
	static cover c;
	memset(&c, 0, sizeof c);
	mlc_parallel_for(nest_task, &c, 100, 2);
	assert_int_equal(atomic_load(&c.tid_calls[0]) + atomic_load(&c.tid_calls[1]), 2);
}

static void *hammer(void *arg)
{
	int64_t *bad = arg;
	for (int k = 0; k < 5000; k++) {
		int64_t part[4] = {0}, n = 1 + k % 50;
		mlc_parallel_for(sum_task, part, n, 4);
		if (part[0] + part[1] + part[2] + part[3] != n * (n - 1) / 2)
			++*bad;
	}
	return NULL;
}

/* Two callers at once (two sessions on two threads): one gets the pool,
 * the other runs its chunks inline; both get complete results. */
static void test_pool_concurrent(void **state)
{
	(void)state;
	pthread_t th[2];
	int64_t bad[2] = {0, 0};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &bad[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(bad[0] + bad[1], 0);
}

/* ---- kernels at 1 and 2 threads ---- */

typedef struct {
	mlc_session *s;
	mlc_diag *d;
} sess;

static sess open_at(const char *spec, int threads, int64_t batch)
{
	char path[512];
	const char *src = getenv("MLC_SRC");
	snprintf(path, sizeof path, "%s/%s", src ? src : "..", spec);
	mlc_options o = {.threads = threads, .batch_size = batch, .quiet = 1, .seed_set = 1, .seed = 7};
	sess r = {.d = mlc_diag_new(stderr)};
	assert_int_equal(mlc_session_open(path, &o, r.d, &r.s), MLC_OK);
	assert_int_equal(mlc_params_prepare(r.s, r.d), MLC_OK);
	assert_int_equal(r.s->graph->threads, threads);
	/* inputs: features in [0, 1), labels valid classes */
	mlc_rng rng;
	mlc_rng_seed(&rng, 3);
	int64_t classes = mlc_pred_width(r.s);
	mlc_graph *g = r.s->graph;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || n->op != OP_INPUT)
			continue;
		int64_t count = mlc_numel(n, batch);
		for (int64_t k = 0; k < count; k++)
			if (n->dtype == DT_I32)
				((int32_t *)r.s->act + n->offset)[k] = (int32_t)(mlc_rng_next(&rng) % (uint64_t)classes);
			else
				r.s->act[n->offset + k] = (float)mlc_rng_uniform(&rng);
	}
	return r;
}

static void close_sess(sess *r)
{
	mlc_session_close(r->s);
	mlc_diag_free(r->d);
}

/* Is ret value v a sum over images split across threads? */
static bool split_sum(const mlc_node *v)
{
	/* conv weight gradients (per-thread partial outputs) and the bias
	 * gradients fused kernels sum (per-call partials, codegen/fused.c) */
	return v->op == OP_CONV2D_GRAD_WEIGHT || (v->op == OP_SUM_ROWS && v->group);
}

/* The first value in graph order that differs, for the failure message. */
static const char *first_difference(sess *a, sess *b, int64_t n)
{
	static char msg[160];
	mlc_graph *ga = a->s->graph, *gb = b->s->graph;
	for (int i = 0; i < ga->nnode && i < gb->nnode; i++) {
		mlc_node *x = ga->node[i], *y = gb->node[i];
		if (x->dead || x->mem != MEM_ACT || x->op == OP_INPUT)
			continue;
		const float *p = a->s->act + x->offset, *q = b->s->act + y->offset;
		for (int64_t k = 0; k < mlc_numel(x, n); k++)
			if (memcmp(&p[k], &q[k], sizeof(float)) != 0) {
				snprintf(msg, sizeof msg, "first at %%%d %s[%lld]: %.9g vs %.9g", x->id,
					 mlc_ops[x->op].name, (long long)k, p[k], q[k]);
				return msg;
			}
	}
	return "none found";
}

/* a (threads 1) and b (threads 2) after the same entry: every returned
 * value equal, bit for bit unless it is a split sum; those within 1e-5 of
 * the tensor's largest magnitude (float sums of thousands of terms in
 * another order; measured up to 1.3e-6). Returns the largest such ratio. */
static double compare_rets(sess *a, sess *b, int64_t n)
{
	double worst = 0;
	mlc_graph *ga = a->s->graph, *gb = b->s->graph;
	assert_int_equal(ga->nret, gb->nret);
	for (int r = 0; r < ga->nret; r++) {
		mlc_node *va = ga->ret[r].val, *vb = mlc_graph_find_ret(gb, ga->ret[r].key);
		assert_non_null(vb);
		if (strncmp(ga->ret[r].key, "update.", 7) == 0)
			continue; /* in the parameter arena, compared whole */
		int64_t count = mlc_numel(va, n);
		const float *x = a->s->act + va->offset, *y = b->s->act + vb->offset;
		if (!split_sum(va)) {
			if (memcmp(x, y, sizeof(float) * (size_t)count) != 0)
				fail_msg("%s (%s) differs between 1 and 2 threads; %s", ga->ret[r].key,
					 mlc_ops[va->op].name, first_difference(a, b, n));
			continue;
		}
		double big = 0, diff = 0;
		for (int64_t k = 0; k < count; k++) {
			big = fmax(big, fabs(x[k]));
			diff = fmax(diff, fabs((double)x[k] - y[k]));
		}
		if (diff > 1e-5 * big)
			fail_msg("%s: 1 and 2 threads differ by %g of %g", ga->ret[r].key, diff, big);
		worst = fmax(worst, big > 0 ? diff / big : 0);
	}
	return worst;
}

static void same_results(const char *spec, int64_t batch, int64_t n)
{
	sess a = open_at(spec, 1, batch), b = open_at(spec, 2, batch);
	assert_int_equal(a.s->graph->param_size, b.s->graph->param_size);
	assert_memory_equal(a.s->params, b.s->params, sizeof(float) * (size_t)a.s->graph->param_size);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0.01f, 5, 0);
	/* gradients, then one train step on top of the same parameters */
	a.s->fn[MLC_ENTRY_GRAD](a.s->params, a.s->act, n, hyper);
	b.s->fn[MLC_ENTRY_GRAD](b.s->params, b.s->act, n, hyper);
	double worst = compare_rets(&a, &b, n);
	a.s->fn[MLC_ENTRY_TRAIN](a.s->params, a.s->act, n, hyper);
	b.s->fn[MLC_ENTRY_TRAIN](b.s->params, b.s->act, n, hyper);
	double pdiff = 0;
	for (int64_t k = 0; k < a.s->graph->param_size; k++)
		pdiff = fmax(pdiff, fabs((double)a.s->params[k] - b.s->params[k]));
	/* a step moves a weight by lr · gradient: a split sum's rounding, scaled;
	 * but RMSProp's first step moves every weight by about lr/√(1-α) = 0.1,
	 * whatever its gradient's size, so a small gradient's rounding is not
	 * scaled down (Adam's and Adagrad's eps-free first steps are sign steps);
	 * a gradient near zero whose split sums round differently moves by up to
	 * 1.6e-5 on an AVX-512 machine: 1e-4 is 0.1% of that step */
	double tol = strstr(spec, "rmsprop") ? 1e-4 : 1e-7;
	assert_true(pdiff <= tol);
	printf("  %s batch %lld n %lld: split sums within %.2g, parameters within %.2g\n", spec,
	       (long long)batch, (long long)n, worst, pdiff);
	close_sess(&a);
	close_sess(&b);
}

static void test_cifar_cnn(void **state)
{
	(void)state;
	same_results("examples/cifar_cnn.yaml", 16, 16);
}

static void test_resnet_example(void **state)
{
	(void)state;
	same_results("examples/resnet.yaml", 8, 8);
}

static void test_fashion_mlp(void **state)
{
	(void)state;
	same_results("examples/fashion_mlp.yaml", 64, 64);
}

static void test_bench_resnet(void **state)
{
	(void)state;
	same_results("bench/resnet.yaml", 32, 32);
}

/* Few channels: LeNet's 6-channel pools and fused rows, depthwise convs'
 * direct kernels (their weight gradient split by images into partial sums). */
static void test_small_channels(void **state)
{
	(void)state;
	same_results("bench/lenet.yaml", 64, 64);
	same_results("bench/dwconv.yaml", 16, 16);
}

/* The losses of issue 5 on 1000-wide rows: their row kernels split; and its
 * optimizers, whose fused update kernel splits over all parameters; and
 * frozen (inference-mode) batchnorms in a training step. */
static void test_losses(void **state)
{
	(void)state;
	static const char *const specs[] = {"hinge", "mae", "binary_cross_entropy_with_logits",
					    "categorical_cross_entropy", "kl_div", "adam", "adamw",
					    "rmsprop", "adagrad", "adadelta", "frozen_batchnorm"};
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		char path[128];
		snprintf(path, sizeof path, "tests/parallel/%s.yaml", specs[i]);
		same_results(path, 64, 64);
		same_results(path, 64, 5);
	}
}

/* Fewer images than threads, and a final partial batch. */
static void test_small_batches(void **state)
{
	(void)state;
	same_results("examples/cifar_cnn.yaml", 1, 1);
	same_results("bench/resnet.yaml", 8, 3);
	same_results("bench/resnet.yaml", 8, 0);
}

/* Two sessions alive at once, used in turns, agree with themselves. */
static void test_two_sessions(void **state)
{
	(void)state;
	sess a = open_at("bench/resnet.yaml", 2, 4), b = open_at("bench/resnet.yaml", 2, 4);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0.01f, 5, 0);
	for (int k = 0; k < 3; k++) {
		a.s->fn[MLC_ENTRY_TRAIN](a.s->params, a.s->act, 4, hyper);
		b.s->fn[MLC_ENTRY_TRAIN](b.s->params, b.s->act, 4, hyper);
	}
	assert_memory_equal(a.s->params, b.s->params, sizeof(float) * (size_t)a.s->graph->param_size);
	close_sess(&a);
	close_sess(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_cover),
		cmocka_unit_test(test_pool_many_calls),
		cmocka_unit_test(test_pool_nested),
		cmocka_unit_test(test_pool_concurrent),
		cmocka_unit_test(test_cifar_cnn),
		cmocka_unit_test(test_resnet_example),
		cmocka_unit_test(test_fashion_mlp),
		cmocka_unit_test(test_bench_resnet),
		cmocka_unit_test(test_small_channels),
		cmocka_unit_test(test_small_batches), cmocka_unit_test(test_losses),
		cmocka_unit_test(test_two_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
