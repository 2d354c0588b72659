/* regularize.c — L1/L2 penalties on parameters, added to the loss in the
 * graph (docs/spec.md, "Regularization"): the layer keys `l1:`/`l2:` (on
 * the layer's weight, as Keras' kernel_regularizer) and the top-level
 * `regularization:` section (chosen parameters, by default every weight). */
#include "fe.h"

#include <fnmatch.h>
#include <string.h>

/* `l1: λ` / `l2: λ` on a layer (layers.c parse_key) */
void fe_layer_penalty(fe *f, fe_layer *l, const yt_node *k, const yt_node *v)
{
	bool l1 = strcmp(k->str, "l1") == 0;
	double x;
	if (!fe_num(f, v, k->str, FE_POSITIVE, &x))
		return;
	*(l1 ? &l->l1 : &l->l2) = x;
	*(l1 ? &l->l1_loc : &l->l2_loc) = k->loc;
}

/* A layer's weight (not batchnorm's scale), the parameter `l1`/`l2` and the
 * default `regularization:` apply to (build.c param). */
void fe_note_weight(fe *f, fe_layer *l, mlc_node *p)
{
	if (f->nweights == f->capweights) {
		int cap = f->capweights ? 2 * f->capweights : 16;
		fe_weight *w = mlc_arena_alloc(f->tmp, sizeof *w * (size_t)cap);
		if (f->nweights)
			memcpy(w, f->weights, sizeof *w * (size_t)f->nweights);
		f->weights = w;
		f->capweights = cap;
	}
	f->weights[f->nweights++] = (fe_weight){p, l->l1, l->l2};
	l->has_weight = true;
}

typedef struct {
	double l1, l2;
	const yt_node *params; /* NULL: every weight */
	const yt_node *l1_key, *l2_key;
} reg_ctx;

static void reg_l1(fe *f, void *ctx, const yt_node *v)
{
	reg_ctx *c = ctx;
	if (fe_num(f, v, "l1", FE_POSITIVE, &c->l1))
		c->l1_key = v;
}

static void reg_l2(fe *f, void *ctx, const yt_node *v)
{
	reg_ctx *c = ctx;
	if (fe_num(f, v, "l2", FE_POSITIVE, &c->l2))
		c->l2_key = v;
}

static void reg_params(fe *f, void *ctx, const yt_node *v)
{
	if (v->kind != YT_SEQ || v->n == 0) {
		mlc_error_at(f->d, v->loc, "expected a list of parameter names or patterns for 'params', "
			     "such as [conv1.weight, 'fc*.weight'], got %s",
			     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
		return;
	}
	bool ok = true;
	for (int i = 0; i < v->n; i++)
		ok &= fe_str(f, v->val[i], "params") != NULL;
	if (ok)
		((reg_ctx *)ctx)->params = v;
}

static const fe_key reg_keys[] = {{"l1", reg_l1}, {"l2", reg_l2}, {"params", reg_params}, {NULL, NULL}};

/* The trainable parameters in graph order, and their names NULL-terminated
 * (for did-you-mean). */
static mlc_node **trainable_params(fe *f, const char ***names, int *count)
{
	mlc_graph *g = f->g;
	mlc_node **p = mlc_arena_alloc(f->tmp, sizeof *p * (size_t)(g->nnode + 1));
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(g->nnode + 1));
	int n = 0, slot = mlc_op_attr_slot(OP_PARAM, "trainable");
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i]->op == OP_PARAM && g->node[i]->attr.i[slot]) {
			p[n] = g->node[i];
			v[n++] = g->node[i]->name;
		}
	v[n] = NULL;
	*names = v;
	*count = n;
	return p;
}

/* λ1, λ2 by parameter, from the `params:` patterns: each must match a
 * trainable parameter. */
static bool select_params(fe *f, const reg_ctx *c, const char **names, int n, double *l1, double *l2)
{
	bool ok = true;
	for (int k = 0; k < c->params->n; k++) {
		const yt_node *pat = c->params->val[k];
		bool hit = false;
		for (int i = 0; i < n; i++)
			if (fnmatch(pat->str, names[i], 0) == 0) {
				l1[i] += c->l1;
				l2[i] += c->l2;
				hit = true;
			}
		if (hit)
			continue;
		ok = false;
		const char *s = fe_suggest(f, pat->str, names);
		if (s)
			mlc_error_at(f->d, pat->loc, "'%s' matches no trainable parameter; did you mean '%s'?",
				     pat->str, s);
		else
			mlc_error_at(f->d, pat->loc, "'%s' matches no trainable parameter (they are named "
				     "<layer>.weight, <layer>.bias, ...)", pat->str);
	}
	return ok;
}

static mlc_node *penalty(fe *f, mlc_opcode op, mlc_node *p, double scale)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, f->g->arena);
	a.f[0] = scale;
	return mlc_build(f->g, op, p, &a, p, NULL, NULL);
}

/* After the loss: `l1`/`l2` of layers without a weight are errors; the rest
 * (and `regularization:`, v may be NULL) become λ·Σ|θ| and λ·Σθ² nodes added
 * to the "loss" result, one abs_sum/sumsq per parameter. */
void fe_penalties(fe *f, const yt_node *v, mlc_loc key)
{
	(void)key;
	bool ok = true;
	for (int i = 0; i < f->nlay; i++) {
		const fe_layer *l = &f->lay[i];
		if (!l->kind || l->has_weight || l->bad || !(l->l1 > 0 || l->l2 > 0))
			continue;
		ok = false;
		mlc_error_at(f->d, l->l1 > 0 ? l->l1_loc : l->l2_loc,
			     "'%s' applies to a layer's weight, and layer '%s' (%s) has none%s", l->l1 > 0 ? "l1" : "l2",
			     l->name ? l->name : l->local, l->kind->name,
			     l->kind->block ? ": give it to the layers of the block" : "");
	}
	reg_ctx c = {0};
	if (v && !fe_expect_map(f, v, "regularization", "{l2: 5e-4}"))
		return;
	if (v) /* an unknown key is reported; the others are still checked */
		fe_read_keys(f, v, reg_keys, &c, "in 'regularization'");
	if (v && !c.l1_key && !c.l2_key && !yt_get(v, "l1", NULL) && !yt_get(v, "l2", NULL)) {
		mlc_error_at(f->d, v->loc, "'regularization' needs 'l1' or 'l2' (or both), e.g. '{l2: 5e-4}'");
		return;
	}
	mlc_node *loss = mlc_graph_find_ret(f->g, "loss");
	int n;
	const char **names;
	mlc_node **params = trainable_params(f, &names, &n);
	double *l1 = mlc_arena_alloc(f->tmp, sizeof *l1 * (size_t)(n + 1));
	double *l2 = mlc_arena_alloc(f->tmp, sizeof *l2 * (size_t)(n + 1));
	memset(l1, 0, sizeof *l1 * (size_t)(n + 1));
	memset(l2, 0, sizeof *l2 * (size_t)(n + 1));
	if (c.params && !select_params(f, &c, names, n, l1, l2))
		return;
	/* the layers' own, and the default selection: every weight (each a
	 * trainable parameter, found by its node's id) */
	int *index = mlc_arena_alloc(f->tmp, sizeof *index * (size_t)(f->g->next_id + 1));
	for (int i = 0; i < f->g->next_id; i++)
		index[i] = -1;
	for (int i = 0; i < n; i++)
		index[params[i]->id] = i;
	for (int w = 0; w < f->nweights; w++) {
		int i = index[f->weights[w].p->id];
		if (i < 0)
			continue;
		l1[i] += f->weights[w].l1 + (v && !c.params ? c.l1 : 0);
		l2[i] += f->weights[w].l2 + (v && !c.params ? c.l2 : 0);
	}
	if (!loss || !ok)
		return;
	for (int i = 0; i < n; i++) {
		mlc_node *p = params[i];
		if (l1[i] > 0)
			loss = mlc_build(f->g, OP_ADD, p, NULL, loss, penalty(f, OP_ABS_SUM, p, l1[i]), NULL);
		if (l2[i] > 0)
			loss = mlc_build(f->g, OP_ADD, p, NULL, loss, penalty(f, OP_SUMSQ, p, l2[i]), NULL);
	}
	mlc_graph_ret(f->g, "loss", loss);
}
