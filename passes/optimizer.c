/* optimizer.c — turns every "grad.<param>" result into an in-place update of
 * the parameter (and its optimizer state), exposed as ret "update.<param>".
 * The learning rate stays a run-time value so schedules need no recompile. */
#include "passes.h"

#include <stdlib.h>
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

/* The graph's parameters sorted by name, for updated_param: one lookup per
 * gradient, not one scan of the graph (specs with thousands of layers). */
typedef struct {
	mlc_node **p;
	int n;
} params;

static int by_name(const void *a, const void *b)
{
	return strcmp((*(mlc_node *const *)a)->name, (*(mlc_node *const *)b)->name);
}

static params params_by_name(const mlc_graph *g)
{
	params ps = {mlc_xmalloc(sizeof *ps.p * (size_t)(g->nnode + 1)), 0};
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i] && g->node[i]->op == OP_PARAM && g->node[i]->name)
			ps.p[ps.n++] = g->node[i];
	qsort(ps.p, (size_t)ps.n, sizeof *ps.p, by_name);
	return ps;
}

/* The parameter a "grad.<param>" result updates, or NULL (an input's gradient). */
static mlc_node *updated_param(const params *ps, mlc_ret r)
{
	if (strncmp(r.key, "grad.", 5) != 0)
		return NULL;
	int lo = 0, hi = ps->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2, c = strcmp(ps->p[mid]->name, r.key + 5);
		if (c == 0)
			return ps->p[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* clip_norm: PyTorch's clip_grad_norm_ over every updated gradient, as
 * clip_coef(Σ sumsq(g)); NULL without clip_norm or gradients. */
static mlc_node *clip_coef(mlc_graph *g, const params *ps, const mlc_pass_opts *o)
{
	if (!(o->clip_norm > 0))
		return NULL;
	mlc_node *total = NULL, *first = NULL;
	for (int i = 0; i < g->nret; i++) {
		mlc_node *p = updated_param(ps, g->ret[i]);
		if (!p)
			continue;
		mlc_node *s = mlc_build(g, OP_SUMSQ, p, NULL, g->ret[i].val, NULL, NULL);
		total = total ? mlc_build(g, OP_ADD, p, NULL, total, s, NULL) : s;
		first = first ? first : p;
	}
	if (!total)
		return NULL;
	mlc_attrs a;
	mlc_attrs_default(OP_CLIP_COEF, &a, g->arena);
	a.f[0] = o->clip_norm;
	mlc_node *coef = mlc_build(g, OP_CLIP_COEF, first, &a, total, NULL, NULL);
	coef->layer = NULL; /* of every layer */
	return coef;
}

/* The gradient the update reads: scaled by the norm's coefficient, then
 * clamped to ±clip_value (Keras' order when both are given). */
static mlc_node *clipped(mlc_graph *g, const mlc_pass_opts *o, mlc_node *p, mlc_node *grad, mlc_node *coef)
{
	if (coef)
		grad = mlc_build(g, OP_MUL_SCALAR, p, NULL, grad, coef, NULL);
	if (o->clip_value > 0) {
		mlc_attrs a;
		mlc_attrs_default(OP_CLIP_VALUE, &a, g->arena);
		a.f[0] = o->clip_value;
		grad = mlc_build(g, OP_CLIP_VALUE, p, &a, grad, NULL, NULL);
	}
	return grad;
}

mlc_status mlc_optimizer(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	(void)d;
	mlc_opcode op = o->update == (mlc_opcode)0 ? OP_SGD : o->update;
	MLC_ASSERT(mlc_op_is_update(op));
	const char *sname[2];
	int nstate = state_names(op, sname);
	int nret = g->nret;
	params ps = params_by_name(g);
	mlc_node *coef = clip_coef(g, &ps, o);
	for (int i = 0; i < nret; i++) {
		mlc_ret r = g->ret[i];
		mlc_node *p = updated_param(&ps, r);
		if (!p)
			continue; /* input gradients are results, not updates */
		mlc_node *st[2] = {NULL, NULL};
		for (int k = 0; k < nstate; k++) {
			st[k] = mlc_source(g, OP_STATE, mlc_arena_printf(g->arena, "%s.%s", p->name, sname[k]),
					   DT_F32, p->rank, p->dim, p->loc);
			st[k]->layer = p->layer;
		}
		mlc_attrs a;
		mlc_attrs_default(op, &a, g->arena);
		if (o->update_attrs)
			a = *o->update_attrs;
		if (op == OP_SGD) {
			a.f[0] = o->momentum;
			a.i[0] = o->nesterov;
		}
		/* the layer's lr_mult, for every type (PyTorch: a param group's lr) */
		a.f[mlc_op_attr_slot(op, "lr_mult")] = p->attr.f[mlc_op_attr_slot(OP_PARAM, "lr_mult")];
		mlc_node *src[4] = {p, clipped(g, o, p, r.val, coef), st[0], st[1]};
		mlc_node *u = mlc_build_n(g, op, p, &a, 2 + nstate, src);
		mlc_graph_ret_new(g, mlc_arena_printf(g->arena, "update.%s", p->name), u);
	}
	free(ps.p);
	return MLC_OK;
}
