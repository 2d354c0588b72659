/* autodiff.c — reverse-mode differentiation: mlc_gradients, the gradients of
 * one scalar root with respect to any set of values, and the autodiff pass
 * that calls it once for ret "loss" and every trainable parameter (and f32
 * input, if asked), adding ret "grad.<name>".
 *
 * The accumulated gradients live in a table owned by one call, not in the
 * nodes, so a second call on the same graph (another root, other values)
 * builds its own backward nodes and leaves the first call's untouched.
 * Only values that depend on a wanted value get a gradient, and dependence
 * does not flow through an op whose rule is grad_zero (detach, ...), so a
 * frozen subgraph (trainable: false) or a detached one has no backward nodes
 * at all. An op whose rule is grad_none on a path from the root to a wanted
 * value is an error: silently dropping that gradient trains the wrong model. */
#include "passes.h"

#include <stdio.h>
#include <stdlib.h>

/* passes/grad_rules.c: the rules the walk treats specially */
void grad_none(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx);
void grad_zero(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx);

static bool scalar(const mlc_node *n)
{
	if (n->rank < 0)
		return false;
	for (int i = 0; i < n->rank; i++)
		if (n->dim[i] != 1)
			return false;
	return true;
}

static const char *layer_of(const mlc_node *n)
{
	return n->layer ? n->layer : "";
}

mlc_status mlc_gradients(mlc_graph *g, mlc_node *root, int nwrt, mlc_node *const *wrt, mlc_node **grads,
			 mlc_diag *d)
{
	if (!scalar(root)) {
		mlc_error_at(d, root->loc, "autodiff: the root of a gradient must be a scalar, got a value of rank %d",
			     root->rank);
		return MLC_EUSER;
	}
	int nfwd = g->nnode;
	size_t nid = (size_t)g->next_id;
	/* needs[id]: the value depends (differentiably) on a wanted value;
	 * wanted[id]: it is one; grad[id]: d root / d value, summed over its users. */
	bool *needs = mlc_xmalloc(nid * sizeof(bool)), *wanted = mlc_xmalloc(nid * sizeof(bool));
	mlc_node **grad = mlc_xmalloc(nid * sizeof(mlc_node *));
	/* via[id]: one wanted value it depends on, for the message */
	const mlc_node **via = mlc_xmalloc(nid * sizeof(mlc_node *));
	for (int i = 0; i < nwrt; i++)
		wanted[wrt[i]->id] = true;
	int root_at = -1;
	for (int i = 0; i < nfwd; i++) {
		mlc_node *n = g->node[i];
		if (n == root)
			root_at = i;
		if (n->dead)
			continue;
		if (wanted[n->id])
			via[n->id] = n;
		for (int k = 0; k < n->nsrc && mlc_ops[n->op].grad != grad_zero; k++)
			if (!via[n->id])
				via[n->id] = via[n->src[k]->id];
		needs[n->id] = via[n->id] != NULL;
	}
	MLC_ASSERT(root_at >= 0);
	mlc_status st = MLC_OK;
	mlc_node *seed = mlc_source(g, OP_CONST, NULL, DT_F32, 0, NULL, root->loc);
	seed->attr.f[0] = 1.0;
	seed->layer = root->layer;
	grad[root->id] = seed;
	for (int i = root_at; i >= 0 && st == MLC_OK; i--) {
		mlc_node *n = g->node[i];
		mlc_node *dy = grad[n->id];
		if (n->dead || !dy || n->nsrc == 0)
			continue;
		if (mlc_ops[n->op].grad == grad_none && needs[n->id]) {
			const mlc_node *v = via[n->id];
			char vname[32];
			snprintf(vname, sizeof vname, "%%%d", v->id);
			mlc_error_at(d, n->loc, "autodiff: op '%s'%s%s%s has no gradient rule, and the gradient with "
				     "respect to '%s' must pass through it", mlc_ops[n->op].name, n->layer ? " (layer '" : "",
				     layer_of(n), n->layer ? "')" : "", v->name ? v->name : vname);
			st = MLC_EUSER;
			break;
		}
		mlc_node *dx[MLC_MAX_SRC] = {0};
		mlc_ops[n->op].grad(g, n, dy, dx);
		for (int k = 0; k < n->nsrc; k++) {
			mlc_node *s = n->src[k];
			if (!dx[k] || !needs[s->id])
				continue;
			grad[s->id] = grad[s->id] ? mlc_build(g, OP_ADD, s, NULL, grad[s->id], dx[k], NULL) : dx[k];
		}
	}
	for (int i = 0; i < nwrt; i++)
		grads[i] = st == MLC_OK ? grad[wrt[i]->id] : NULL;
	free(via);
	free(grad);
	free(wanted);
	free(needs);
	return st;
}

static bool wants_grad(const mlc_node *n, const mlc_pass_opts *o)
{
	if (n->op == OP_PARAM)
		return n->attr.i[2] != 0; /* trainable */
	return n->op == OP_INPUT && o->wrt_inputs && n->dtype == DT_F32;
}

mlc_status mlc_autodiff(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	mlc_node *loss = mlc_graph_find_ret(g, "loss");
	if (!loss) {
		mlc_error_file(d, NULL, "autodiff: the graph has no 'loss' result");
		return MLC_EUSER;
	}
	int nfwd = g->nnode;
	mlc_node **wrt = mlc_xmalloc(sizeof(mlc_node *) * (size_t)(nfwd + 1));
	int nwrt = 0;
	for (int i = 0; i < nfwd; i++)
		if (!g->node[i]->dead && wants_grad(g->node[i], o))
			wrt[nwrt++] = g->node[i];
	mlc_node **grads = mlc_xmalloc(sizeof(mlc_node *) * (size_t)(nwrt + 1));
	mlc_status st = mlc_gradients(g, loss, nwrt, wrt, grads, d);
	for (int i = 0; st == MLC_OK && i < nwrt; i++)
		if (grads[i])
			mlc_graph_ret_new(g, mlc_arena_printf(g->arena, "grad.%s", wrt[i]->name), grads[i]);
	free(grads);
	free(wrt);
	if (st != MLC_OK)
		return st;
	/* the backward nodes no result reads (sources come before their users):
	 * the builders' by-products, as the input gradient of a layer above a
	 * frozen one, so the IR after autodiff shows none */
	bool *live = mlc_xmalloc(sizeof(bool) * (size_t)g->next_id);
	for (int i = 0; i < g->nret; i++)
		live[g->ret[i].val->id] = true;
	for (int i = g->nnode - 1; i >= 0; i--) {
		mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		if (i >= nfwd && !live[n->id]) {
			n->dead = true;
			continue;
		}
		for (int k = 0; k < n->nsrc; k++)
			live[n->src[k]->id] = true;
	}
	free(live);
	return MLC_OK;
}
