/* test_fuse.c — the fuse pass: rule names, and fused against unfused kernels
 * on every example and bench model: one train step and one prediction on the
 * same weights and batch. Its golden IR in → IR out for every rule
 * (tests/fuse/NAME.ir → NAME.out) is run by tests/golden.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "passes/passes.h"
#include "runtime/runtime.h"
#include "runtime/session.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_fuse_rule_names(void **state)
{
	(void)state;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	mlc_diag *d = mlc_diag_new(f);
	mlc_graph *g = mlc_graph_new("t");
	mlc_pass_opts o = {.fuse_off = "epilogue,elementwsie"};
	assert_int_equal(mlc_fuse(g, &o, d), MLC_EUSER);
	mlc_diag_free(d);
	fclose(f);
	assert_non_null(strstr(msg, "unknown fusion rule 'elementwsie'; did you mean 'elementwise'?"));
	free(msg);
	mlc_graph_free(g);
}

/* ---- fused against unfused ---- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static mlc_session *open_at(const char *spec, bool fuse)
{
	mlc_options o = {.batch_size = 8, .threads = 1, .quiet = 1, .no_fuse = !fuse, .log = stderr};
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_session *s = NULL;
	assert_int_equal(mlc_session_open(spec, &o, d, &s), MLC_OK);
	assert_int_equal(mlc_params_prepare(s, d), MLC_OK);
	mlc_diag_free(d);
	/* inputs by name, so both sessions see the same batch */
	int64_t classes = s->pred ? mlc_pred_width(s) : 1;
	for (int i = 0; i < s->graph->nnode; i++) {
		mlc_node *n = s->graph->node[i];
		if (n->dead || n->op != OP_INPUT || n->mem != MEM_ACT)
			continue;
		mlc_rng r;
		mlc_rng_seed(&r, hash(n->name));
		int64_t count = mlc_numel(n, s->batch);
		for (int64_t k = 0; k < count; k++) {
			if (n->dtype == DT_I32)
				((int32_t *)(s->act + n->offset))[k] = (int32_t)(mlc_rng_next(&r) % (uint64_t)classes);
			else
				s->act[n->offset + k] = n == s->y ? (float)(mlc_rng_next(&r) & 1) : (float)mlc_rng_uniform(&r);
		}
	}
	return s;
}

/* max |a - b| / max(max |b|, 1e-6) over a tensor */
static double rel_err(const float *a, const float *b, int64_t n)
{
	double err = 0, scale = 1e-6;
	for (int64_t i = 0; i < n; i++) {
		err = fmax(err, fabs((double)a[i] - b[i]));
		scale = fmax(scale, fabs((double)b[i]));
	}
	return err / scale;
}

static void compare_model(const char *spec)
{
	mlc_session *f = open_at(spec, true), *u = open_at(spec, false);
	bool grouped = false;
	for (int i = 0; i < f->graph->nnode; i++)
		grouped |= f->graph->node[i]->group != NULL;
	assert_true(grouped);
	/* prediction on the initial weights */
	float hyper[4] = {0.01f, 0, 0, 0};
	f->fn[MLC_ENTRY_PREDICT](f->params, f->act, f->batch, hyper);
	u->fn[MLC_ENTRY_PREDICT](u->params, u->act, u->batch, hyper);
	int64_t np = mlc_numel(f->pred, f->batch);
	double e = rel_err(f->act + f->pred->offset, u->act + u->pred->offset, np);
	if (e > 1e-5)
		print_message("%s: pred differs by %g\n", spec, e);
	assert_true(e <= 1e-5);
	if (!f->fn[MLC_ENTRY_TRAIN])
		goto done;
	/* two train steps, then every parameter and state by name */
	for (int step = 0; step < 2; step++) {
		f->fn[MLC_ENTRY_TRAIN](f->params, f->act, f->batch, hyper);
		u->fn[MLC_ENTRY_TRAIN](u->params, u->act, u->batch, hyper);
	}
	e = rel_err(f->act + f->loss->offset, u->act + u->loss->offset, 1);
	assert_true(e <= 1e-5);
	for (int i = 0; i < f->graph->nnode; i++) {
		const mlc_node *a = f->graph->node[i];
		if (a->dead || (a->op != OP_PARAM && a->op != OP_STATE))
			continue;
		const mlc_node *b = mlc_graph_find_value(u->graph, a->name);
		assert_non_null(b);
		e = rel_err(f->params + a->offset, u->params + b->offset, mlc_numel(a, 1));
		if (e > 1e-5)
			print_message("%s: %s differs by %g\n", spec, a->name, e);
		assert_true(e <= 1e-5);
	}
done:
	mlc_session_close(f);
	mlc_session_close(u);
}

static void test_fused_equals_unfused(void **state)
{
	(void)state;
	const char *src = getenv("MLC_SRC");
	assert_non_null(src);
	const char *dirs[] = {"examples", "bench", "tests/parallel"}; /* the last: every loss */
	int models = 0;
	for (int k = 0; k < 3; k++) {
		char dpath[512];
		snprintf(dpath, sizeof dpath, "%s/%s", src, dirs[k]);
		DIR *dir = opendir(dpath);
		assert_non_null(dir);
		for (struct dirent *e; (e = readdir(dir));) {
			if (!ends_with(e->d_name, ".yaml"))
				continue;
			/* they load weights trained first (tests/transfer.sh, tests/examples.sh) */
			if (!strcmp(e->d_name, "transfer_head.yaml") || !strcmp(e->d_name, "distill.yaml"))
				continue;
			char path[1024];
			snprintf(path, sizeof path, "%s/%s", dpath, e->d_name);
			compare_model(path);
			models++;
		}
		closedir(dir);
	}
	assert_true(models >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuse_rule_names),
		cmocka_unit_test(test_fused_equals_unfused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
