/* optimizer.c — turns every "grad.<param>" result into an in-place update of
 * the parameter (and its optimizer state), exposed as ret "update.<param>".
 * The learning rate stays a run-time value so schedules need no recompile. */
#include "passes.h"

#include <string.h>

/* The STATE sources of each update op, after (param, grad), named like
 * PyTorch's optimizer state: "<param>.<name>". */
static int state_names(mlc_opcode op, const char *name[2])
{
	switch (op) {
	case OP_ADAM:
	case OP_ADAMW: name[0] = "exp_avg", name[1] = "exp_avg_sq"; return 2;
	case OP_RMSPROP: name[0] = "square_avg", name[1] = "momentum_buffer"; return 2;
	case OP_ADAGRAD: name[0] = "sum"; return 1;
	case OP_ADADELTA: name[0] = "square_avg", name[1] = "acc_delta"; return 2;
	default: name[0] = "velocity"; return 1;
	}
}

mlc_status mlc_optimizer(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	(void)d;
	mlc_opcode op = o->update == (mlc_opcode)0 ? OP_SGD : o->update;
	MLC_ASSERT(mlc_op_is_update(op));
	const char *sname[2];
	int nstate = state_names(op, sname);
	int nret = g->nret;
	for (int i = 0; i < nret; i++) {
		mlc_ret r = g->ret[i];
		if (strncmp(r.key, "grad.", 5) != 0)
			continue;
		mlc_node *p = mlc_graph_find_value(g, r.key + 5);
		if (!p || p->op != OP_PARAM)
			continue; /* input gradients are results, not updates */
		mlc_node *st[2] = {NULL, NULL};
		for (int k = 0; k < nstate; k++) {
			st[k] = mlc_source(g, OP_STATE, mlc_arena_printf(g->arena, "%s.%s", p->name, sname[k]),
					   DT_F32, p->rank, p->dim, p->loc);
			st[k]->layer = p->layer;
		}
		mlc_attrs a;
		mlc_attrs_default(op, &a, g->arena);
		if (op == OP_SGD) {
			a.f[0] = o->momentum;
			a.i[0] = o->nesterov;
		} else if (o->update_attrs) {
			a = *o->update_attrs;
		}
		mlc_node *src[4] = {p, r.val, st[0], st[1]};
		mlc_node *u = mlc_build_n(g, op, p, &a, 2 + nstate, src);
		mlc_graph_ret(g, mlc_arena_printf(g->arena, "update.%s", p->name), u);
	}
	return MLC_OK;
}
