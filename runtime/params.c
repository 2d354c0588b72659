/* params.c — parameters: seeded initializers, and weights saved and loaded as
 * safetensors under the parameters' names (layouts in docs/spec.md). */
#include "session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef void (*init_fn)(mlc_rng *r, float *w, int64_t n, const mlc_node *p);

/* center + U(-a, a) */
static void fill_uniform(mlc_rng *r, float *w, int64_t n, double center, double a)
{
	for (int64_t i = 0; i < n; i++)
		w[i] = (float)(center + (2 * mlc_rng_uniform(r) - 1) * a);
}

static void fill_normal(mlc_rng *r, float *w, int64_t n, double mean, double sd)
{
	for (int64_t i = 0; i < n; i++)
		w[i] = (float)(mean + mlc_rng_normal(r) * sd);
}

/* The param's attributes (ops.def): scale f0, center f1, spread f2; fan_in
 * i0, fan_out i1. The frontend folds a gain and he's fan mode into scale. */
static double scale(const mlc_node *p) { return p->attr.f[0]; }
static double center(const mlc_node *p) { return p->attr.f[1]; }
static double spread(const mlc_node *p) { return p->attr.f[2]; }
static double fan_in(const mlc_node *p) { return p->attr.i[0] > 0 ? (double)p->attr.i[0] : 1; }
static double fan_sum(const mlc_node *p) { return fan_in(p) + (p->attr.i[1] > 0 ? (double)p->attr.i[1] : 1); }

static void init_zeros(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { (void)r, (void)p; memset(w, 0, (size_t)n * 4); }
static void init_ones(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { (void)r; for (int64_t i = 0; i < n; i++) w[i] = (float)scale(p); }
static void init_constant(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { (void)r; for (int64_t i = 0; i < n; i++) w[i] = (float)center(p); }
static void init_glorot_u(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_uniform(r, w, n, 0, scale(p) * sqrt(6 / fan_sum(p))); }
static void init_glorot_n(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_normal(r, w, n, 0, scale(p) * sqrt(2 / fan_sum(p))); }
static void init_he_u(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_uniform(r, w, n, 0, scale(p) * sqrt(6 / fan_in(p))); }
static void init_he_n(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_normal(r, w, n, 0, scale(p) * sqrt(2 / fan_in(p))); }
static void init_uniform(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_uniform(r, w, n, center(p), spread(p) * scale(p)); }
static void init_normal(mlc_rng *r, float *w, int64_t n, const mlc_node *p) { fill_normal(r, w, n, center(p), spread(p) * scale(p)); }

static const struct {
	const char *name;
	init_fn fn;
} inits[] = {
	{"zeros", init_zeros},		{"ones", init_ones},		   {"glorot_uniform", init_glorot_u},
	{"glorot_normal", init_glorot_n}, {"he_uniform", init_he_u},	   {"he_normal", init_he_n},
	{"uniform", init_uniform},	{"normal", init_normal},	   {"constant", init_constant},
};

bool mlc_param_fill(mlc_rng *r, const mlc_node *p, float *w)
{
	const char *kind = p->attr.s ? p->attr.s : "glorot_uniform";
	for (size_t k = 0; k < MLC_COUNTOF(inits); k++)
		if (strcmp(inits[k].name, kind) == 0) {
			inits[k].fn(r, w, mlc_numel(p, 1), p);
			return true;
		}
	return false;
}

static mlc_status init_params(mlc_session *s, mlc_diag *d)
{
	mlc_graph *g = s->graph;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *p = g->node[i];
		if (p->dead || p->op != OP_PARAM)
			continue;
		if (!mlc_param_fill(&s->rng, p, s->params + p->offset)) {
			mlc_error_at(d, p->loc, "unknown initializer '%s' for '%s'", p->attr.s, p->name);
			return MLC_EUSER;
		}
	}
	return MLC_OK;
}

bool mlc_tensor_fits(const mlc_tensor *t, const mlc_node *p)
{
	if (t->rank != p->rank)
		return false;
	for (int j = 0; j < p->rank; j++)
		if (t->dim[j] != p->dim[j])
			return false;
	return true;
}

mlc_status mlc_params_load(mlc_session *s, const char *path, mlc_diag *d)
{
	mlc_tensor *t;
	int nt;
	mlc_status st = mlc_safetensors_read(path, &t, &nt, d);
	if (st != MLC_OK)
		return st;
	mlc_graph *g = s->graph;
	bool *used = mlc_xmalloc(sizeof(bool) * (size_t)(nt + 1));
	/* the teacher's tensors (in files saved before --save left them out)
	 * are not read: the teacher comes from its own weights file */
	for (int k = 0; k < nt; k++)
		used[k] = mlc_param_is_teacher(s, t[k].name);
	for (int i = 0; i < g->nnode && st == MLC_OK; i++) {
		mlc_node *p = g->node[i];
		if (p->dead || p->op != OP_PARAM || mlc_param_is_teacher(s, p->name))
			continue;
		int k = 0;
		while (k < nt && strcmp(t[k].name, p->name) != 0)
			k++;
		if (k == nt) {
			mlc_error_file(d, path, "has no tensor '%s' for the model's parameter", p->name);
			st = MLC_EUSER;
			break;
		}
		used[k] = true;
		if (!mlc_tensor_fits(&t[k], p)) {
			char ty[96];
			mlc_error_file(d, path, "tensor '%s' has the wrong shape for the model's %s", p->name,
				       mlc_type_str(p, ty, sizeof ty));
			st = MLC_EUSER;
			break;
		}
		memcpy(s->params + p->offset, t[k].data, (size_t)mlc_numel(p, 1) * 4);
	}
	for (int k = 0; k < nt && st == MLC_OK; k++)
		if (!used[k]) {
			mlc_error_file(d, path, "tensor '%s' matches no parameter of the model", t[k].name);
			st = MLC_EUSER;
		}
	free(used);
	mlc_tensors_free(t, nt);
	return st;
}

mlc_status mlc_params_prepare(mlc_session *s, mlc_diag *d)
{
	if (s->params_ready)
		return MLC_OK;
	mlc_status st = mlc_session_jit(s, d);
	/* --weights holds every parameter, so init_from has nothing left to do */
	if (st == MLC_OK)
		st = s->opt.weights ? mlc_params_load(s, s->opt.weights, d) : init_params(s, d);
	if (st == MLC_OK && !s->opt.weights)
		st = mlc_init_from(s, s->params, s->opt.quiet ? NULL : s->log, d);
	if (st == MLC_OK)
		st = mlc_teacher_load(s, s->params, d);
	s->params_ready = st == MLC_OK;
	return st;
}

int mlc_arena_tensors(const mlc_session *s, bool with_state, mlc_tensor *t)
{
	const mlc_graph *g = s->graph;
	int nt = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *p = g->node[i];
		if (p->dead || !(p->op == OP_PARAM || (with_state && p->op == OP_STATE)))
			continue;
		/* Borrowed pointers: nothing here is freed through t. */
		t[nt].name = (char *)p->name;
		t[nt].rank = p->rank;
		memcpy(t[nt].dim, p->dim, sizeof(int64_t) * (size_t)p->rank);
		t[nt].data = s->params + p->offset;
		nt++;
	}
	return nt;
}

mlc_status mlc_session_save(mlc_session *s, const char *path, mlc_diag *d)
{
	mlc_graph *g = s->graph;
	mlc_tensor *t = mlc_xmalloc(sizeof(mlc_tensor) * (size_t)(g->nnode + 1));
	int nt = 0, all = mlc_arena_tensors(s, false, t);
	for (int k = 0; k < all; k++) /* the student's only: the teacher has its own file */
		if (!mlc_param_is_teacher(s, t[k].name))
			t[nt++] = t[k];
	const char *meta[] = {"format", "mlc", "model", g->name, NULL};
	mlc_status st = mlc_safetensors_write(path, t, nt, meta, d);
	free(t);
	return st;
}
