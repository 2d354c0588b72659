/* loss_sum.c — `loss:` as a list: a weighted sum of losses, each built by
 * fe_loss (config.c) from its own mapping, optionally on another layer's
 * output (`output:`), all against the one `labels` input (docs/spec.md,
 * "Weighted sums of losses"), and loss terms: scalar nodes of the graph
 * (`term:`, "Loss terms"). */
#include "fe.h"

#include <string.h>

/* The top-level layers' names, NULL-terminated: did-you-mean candidates. */
static const char **top_layers(fe *f)
{
	const char **cands = mlc_arena_alloc(f->tmp, sizeof *cands * (size_t)(f->nlay + 1));
	int n = 0;
	for (int k = f->top.first; k < f->nlay; k++)
		if (f->lay[k].local && !f->lay[k].member && f->lay[k].inst < 0)
			cands[n++] = f->lay[k].local;
	cands[n] = NULL;
	return cands;
}

/* The layer `output:` names (top-level scope), or NULL after an error. */
static mlc_node *named_output(fe *f, const yt_node *v)
{
	const char *s = fe_str(f, v, "output");
	if (!s)
		return NULL;
	int i = fe_names_get(&f->top.names, s);
	if (i >= f->top.first && i < f->nlay) {
		if (!f->lay[i].out)
			return NULL; /* its own errors are reported */
		return f->lay[i].out;
	}
	const char *sug = fe_suggest(f, s, top_layers(f));
	if (i >= 0)
		mlc_error_at(f->d, v->loc, "a loss reads a layer, but '%s' is an input", s);
	else if (sug)
		mlc_error_at(f->d, v->loc, "unknown layer '%s' for the loss's output; did you mean '%s'?", s, sug);
	else
		mlc_error_at(f->d, v->loc, "unknown layer '%s' for the loss's output", s);
	return NULL;
}

/* `term: kl` — a node of the graph whose value is a scalar f32[], added to
 * the loss as it is (docs/spec.md, "Loss terms"); NULL after an error. */
static mlc_node *term(fe *f, const yt_node *e)
{
	static const char *const keys[] = {"term", "weight", NULL};
	bool ok = true;
	for (int i = 0; i < e->n; i++) {
		const char *k = e->key[i]->str;
		if (strcmp(k, "term") == 0 || strcmp(k, "weight") == 0)
			continue;
		if (strcmp(k, "type") == 0 || strcmp(k, "output") == 0)
			mlc_error_at(f->d, e->key[i]->loc, "a loss term is the node 'term' names: it takes no '%s'", k);
		else
			fe_unknown_key(f, e->key[i], keys, "in a loss term");
		ok = false;
	}
	const yt_node *v = yt_get(e, "term", NULL);
	const char *name = fe_str(f, v, "term");
	if (!name || !ok)
		return NULL;
	int i = fe_names_get(&f->top.names, name);
	if (i < 0 || i < f->top.first) {
		const char *sug = i < 0 ? fe_suggest(f, name, top_layers(f)) : NULL;
		if (i >= 0)
			mlc_error_at(f->d, v->loc, "a loss term must be a node of the graph, but '%s' is an input", name);
		else if (sug)
			mlc_error_at(f->d, v->loc, "unknown node '%s' for a loss term; did you mean '%s'?", name, sug);
		else
			mlc_error_at(f->d, v->loc, "unknown node '%s' for a loss term", name);
		return NULL;
	}
	mlc_node *t = f->lay[i].out;
	if (!t)
		return NULL; /* its own errors are reported */
	char ty[96];
	if (t->rank != 0 || t->dtype != DT_F32) {
		mlc_error_at(f->d, v->loc, "loss term '%s' must be a scalar f32[], got %s; reduce it with "
			     "'{sum: , input: %s}' or '{mean: , input: %s}'", name, mlc_type_str(t, ty, sizeof ty), name, name);
		return NULL;
	}
	return t;
}

/* The element without `weight` and `output`, for fe_loss, which reports
 * the keys it does not know; misspellings of these two are reported here. */
static yt_node *without_own_keys(fe *f, const yt_node *e)
{
	static const char *const own[] = {"weight", "output", NULL};
	yt_node *c = mlc_arena_alloc(f->tmp, sizeof *c);
	*c = *e;
	c->key = mlc_arena_alloc(f->tmp, sizeof *c->key * (size_t)(e->n + 1));
	c->val = mlc_arena_alloc(f->tmp, sizeof *c->val * (size_t)(e->n + 1));
	c->n = 0;
	for (int i = 0; i < e->n; i++) {
		const char *k = e->key[i]->str, *sug = NULL;
		if (strcmp(k, "weight") == 0 || strcmp(k, "output") == 0)
			continue;
		if (strcmp(k, "type") != 0 && (sug = fe_suggest(f, k, own))) {
			mlc_error_at(f->d, e->key[i]->loc, "unknown key '%s' in a loss of the list; did you mean '%s'?",
				     k, sug);
			continue;
		}
		c->key[c->n] = e->key[i];
		c->val[c->n++] = e->val[i];
	}
	return c;
}

void fe_loss_list(fe *f, const yt_node *v, mlc_loc key)
{
	(void)key; /* each loss is located at its element */
	if (v->n == 0) {
		mlc_error_at(f->d, v->loc, "expected a loss name, a mapping such as '{type: mse}' or a list of "
			     "them, got an empty list");
		return;
	}
	mlc_node *model_out = f->output, *total = NULL, *pred = NULL;
	bool ok = true;
	for (int i = 0; i < v->n; i++) {
		const yt_node *e = v->val[i];
		if (e->kind == YT_SEQ) {
			mlc_error_at(f->d, e->loc, "expected a loss name or a mapping such as '{type: mse, weight: "
				     "0.5}', got a list");
			ok = false;
			continue;
		}
		double w = 1;
		const yt_node *wv = e->kind == YT_MAP ? yt_get(e, "weight", NULL) : NULL;
		const yt_node *ov = e->kind == YT_MAP ? yt_get(e, "output", NULL) : NULL;
		if (wv && !fe_num(f, wv, "weight", FE_POSITIVE, &w))
			ok = false;
		f->output = model_out;
		if (e->kind == YT_MAP && yt_get(e, "term", NULL)) {
			mlc_node *t = term(f, e);
			if (!t) {
				ok = false;
				continue;
			}
			/* the weighting belongs to the loss, not to the term's layer */
			if (w != 1)
				(t = fe_scaled(f->g, t, t, w))->layer = "loss";
			if (total)
				(total = mlc_build(f->g, OP_ADD, t, NULL, total, t, NULL))->layer = "loss";
			else
				total = t;
			continue;
		}
		if (ov && !(f->output = named_output(f, ov))) {
			ok = false;
			continue;
		}
		if (!f->output)
			continue; /* the model's errors are reported */
		int errors = mlc_diag_errors(f->d);
		mlc_graph_ret(f->g, "loss", NULL);
		fe_loss(f, e->kind == YT_MAP ? without_own_keys(f, e) : e, e->loc);
		mlc_node *l = mlc_graph_find_ret(f->g, "loss");
		if (mlc_diag_errors(f->d) > errors || !l) {
			ok = false;
			continue;
		}
		if (!pred)
			pred = mlc_graph_find_ret(f->g, "pred");
		if (w != 1)
			l = fe_scaled(f->g, l, l, w);
		total = total ? mlc_build(f->g, OP_ADD, l, NULL, total, l, NULL) : l;
	}
	f->output = model_out;
	if (!ok || !total)
		return;
	mlc_graph_ret(f->g, "loss", total);
	mlc_graph_ret(f->g, "pred", pred ? pred : model_out); /* only terms: the model's output */
}
