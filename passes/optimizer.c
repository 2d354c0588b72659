/* optimizer.c — turns every "grad.<param>" result into an in-place update of
 * the parameter (and its optimizer state), exposed as ret "update.<param>".
 * The learning rate stays a run-time value so schedules need no recompile. */
#include "passes.h"

#include <string.h>

mlc_status mlc_optimizer(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	(void)d;
	int nret = g->nret;
	for (int i = 0; i < nret; i++) {
		mlc_ret r = g->ret[i];
		if (strncmp(r.key, "grad.", 5) != 0)
			continue;
		mlc_node *p = mlc_graph_find_value(g, r.key + 5);
		if (!p || p->op != OP_PARAM)
			continue; /* input gradients are results, not updates */
		mlc_node *v = mlc_source(g, OP_STATE, mlc_arena_printf(g->arena, "%s.velocity", p->name),
					 DT_F32, p->rank, p->dim, p->loc);
		v->layer = p->layer;
		mlc_attrs a;
		mlc_attrs_default(OP_SGD, &a, g->arena);
		a.f[0] = o->momentum;
		a.i[0] = o->nesterov;
		mlc_node *u = mlc_build(g, OP_SGD, p, &a, p, r.val, v);
		mlc_graph_ret(g, mlc_arena_printf(g->arena, "update.%s", p->name), u);
	}
	return MLC_OK;
}
