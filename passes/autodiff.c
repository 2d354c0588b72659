/* autodiff.c — reverse-mode differentiation as a graph → graph pass. Walks the
 * forward nodes backwards from ret "loss", asks each op's gradient builder for
 * the gradients of its sources and sums fan-out with add nodes. Adds
 * ret "grad.<name>" for every trainable parameter (and f32 input, if asked).
 * Only values that depend on such a parameter (or input) get a gradient, so a
 * frozen subgraph (trainable: false) has no backward nodes at all; the
 * builders' by-products nobody reads (the input gradient of a layer above a
 * frozen one) are marked dead here, so the IR after autodiff shows none. */
#include "passes.h"

#include <stdlib.h>

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
	/* needs[id]: the value depends on something we differentiate with respect to. */
	bool *needs = mlc_xmalloc(sizeof(bool) * (size_t)g->next_id);
	for (int i = 0; i < nfwd; i++) {
		mlc_node *n = g->node[i];
		n->grad = NULL;
		if (n->dead)
			continue;
		bool v = wants_grad(n, o);
		for (int k = 0; k < n->nsrc; k++)
			v |= needs[n->src[k]->id];
		needs[n->id] = v;
	}
	mlc_node *seed = mlc_source(g, OP_CONST, NULL, DT_F32, 0, NULL, loss->loc);
	seed->attr.f[0] = 1.0;
	seed->layer = loss->layer;
	loss->grad = seed;

	for (int i = nfwd - 1; i >= 0; i--) {
		mlc_node *n = g->node[i];
		if (n->dead || !n->grad || n->nsrc == 0)
			continue;
		mlc_node *dx[MLC_MAX_SRC] = {0};
		mlc_ops[n->op].grad(g, n, n->grad, dx);
		for (int k = 0; k < n->nsrc; k++) {
			mlc_node *s = n->src[k];
			if (!dx[k] || !needs[s->id])
				continue;
			s->grad = s->grad ? mlc_build(g, OP_ADD, s, NULL, s->grad, dx[k], NULL) : dx[k];
		}
	}
	for (int i = 0; i < nfwd; i++) {
		mlc_node *n = g->node[i];
		if (!n->dead && wants_grad(n, o) && n->grad)
			mlc_graph_ret_new(g, mlc_arena_printf(g->arena, "grad.%s", n->name), n->grad);
	}
	/* the backward nodes no result reads (sources come before their users) */
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
	free(needs);
	return MLC_OK;
}
