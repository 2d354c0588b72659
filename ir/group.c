/* group.c — bookkeeping of fusion groups (ir.h): which members of a group
 * are internal, i.e. read only by other members of the same group and not
 * returned, so the fused kernel keeps them in registers. */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>

bool *mlc_group_internals(const mlc_graph *g)
{
	/* escapes[id]: the value is read outside its group or returned. The
	 * verifier asks about broken graphs too: NULL slots and sources, and ids
	 * out of range, are skipped. */
	bool *escapes = mlc_xmalloc(sizeof *escapes * (size_t)(g->next_id + 1));
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		for (int k = 0; n && !n->dead && k < n->nsrc && k < MLC_MAX_SRC; k++) {
			const mlc_node *s = n->src[k];
			if (s && s->id >= 0 && s->id < g->next_id && (!s->group || s->group != n->group))
				escapes[s->id] = true;
		}
	}
	for (int i = 0; i < g->nret; i++)
		if (g->ret[i].val && g->ret[i].val->id >= 0 && g->ret[i].val->id < g->next_id)
			escapes[g->ret[i].val->id] = true;
	bool *internal = mlc_xmalloc(sizeof *internal * (size_t)(g->next_id + 1));
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		/* an anchor's product is written to memory before its epilogue reads it */
		if (n && n->id >= 0 && n->id < g->next_id)
			internal[n->id] = !n->dead && n->group && !escapes[n->id] &&
					  mlc_ops[n->op].fclass != FC_OUTFUSABLE;
	}
	free(escapes);
	return internal;
}

void mlc_group_mark(mlc_graph *g)
{
	bool *internal = mlc_group_internals(g);
	for (int i = 0; i < g->nnode; i++)
		g->node[i]->internal = internal[g->node[i]->id];
	free(internal);
}

bool mlc_op_loopable(mlc_opcode op)
{
	return (mlc_ops[op].fclass == FC_ELEMWISE || op == OP_BIAS_ADD || op == OP_BATCHNORM_INFER_GRAD);
}

bool mlc_op_row_source(mlc_opcode op, int k)
{
	return (op == OP_BIAS_ADD && k == 1) || (op == OP_BATCHNORM_INFER_GRAD && k >= 1);
}

bool mlc_op_bcast(mlc_opcode op)
{
	bool shape_bcast(mlc_node *n, mlc_diag *d);
	return mlc_ops[op].shape == shape_bcast;
}

static bool is_anchor(mlc_opcode op)
{
	return op == OP_MATMUL || op == OP_CONV2D || op == OP_CONV2D_GRAD_INPUT;
}

static bool member(const mlc_node *const *m, int count, const mlc_node *s)
{
	for (int i = 0; i < count; i++)
		if (m[i] == s)
			return true;
	return false;
}

#define WHY(...) (snprintf(why, len, __VA_ARGS__), false)

bool mlc_group_legal(const mlc_node *const *m, int count, mlc_group_kind *kind, char *why,
		     size_t len)
{
	if (count < 2)
		return WHY("a group needs at least two members");
	if (mlc_op_is_update(m[0]->op)) {
		for (int i = 0; i < count; i++)
			if (!mlc_op_is_update(m[i]->op))
				return WHY("%%%d (%s) in an update group", m[i]->id, mlc_ops[m[i]->op].name);
		*kind = MLC_GROUP_UPDATE;
		return true;
	}
	*kind = is_anchor(m[0]->op) ? MLC_GROUP_EPILOGUE : MLC_GROUP_LOOP;
	const mlc_node *dom = m[0]; /* the shape every non-tail member computes */
	if (dom->rank < 1 || dom->dtype != DT_F32)
		return WHY("%%%d: the domain must be an f32 tensor of rank >= 1", dom->id);
	int64_t cols = dom->dim[dom->rank - 1];
	int bn = -1;
	for (int i = *kind == MLC_GROUP_EPILOGUE; i < count; i++) {
		const mlc_node *n = m[i];
		/* batchnorm in an epilogue: folded with the running statistics in
		 * inference, in two parts around the batch statistics in training
		 * (codegen/fused.c); what follows it reads only it, later members
		 * and values from outside */
		if (n->op == OP_BATCHNORM) {
			if (*kind != MLC_GROUP_EPILOGUE || bn >= 0)
				return WHY("%%%d: batchnorm only once, after a matmul or convolution", n->id);
			if (!member(m, i, n->src[0]) || !mlc_same_shape(n, dom))
				return WHY("%%%d: batchnorm must normalize a member of the group", n->id);
			for (int k = 1; k < 5; k++)
				if (member(m, i, n->src[k]) || n->src[k]->rank != 1 || n->src[k]->dim[0] != cols)
					return WHY("%%%d: batchnorm parameters must be vectors from outside", n->id);
			bn = i;
			continue;
		}
		for (int k = 0; bn >= 0 && k < n->nsrc; k++)
			for (int j = 0; j < bn; j++)
				if (n->src[k] == m[j])
					return WHY("%%%d reads %%%d from before the batchnorm of its group", n->id,
						   m[j]->id);
		if (n->op == OP_SUM_ROWS) {
			const mlc_node *s = n->src[0];
			if (!member(m, i, s) || s->op == OP_SUM_ROWS)
				return WHY("%%%d: sum_rows must reduce a member of the group", n->id);
			if (cols > MLC_GROUP_MAX_SUM_COLS)
				return WHY("%%%d: more than %d columns to sum", n->id, MLC_GROUP_MAX_SUM_COLS);
			continue;
		}
		if (!mlc_op_loopable(n->op))
			return WHY("%%%d: %s cannot be fused", n->id, mlc_ops[n->op].name);
		if (!mlc_same_shape(n, dom) || n->dtype != DT_F32)
			return WHY("%%%d: shape differs from the group's", n->id);
		for (int k = 0; k < n->nsrc; k++) {
			const mlc_node *s = n->src[k];
			if (member(m, i, s)) {
				if (s->op == OP_SUM_ROWS)
					return WHY("%%%d reads the sum %%%d of its own group", n->id, s->id);
				continue;
			}
			if (s->dtype != DT_F32)
				return WHY("%%%d: source %%%d is not f32", n->id, s->id);
			bool full = mlc_same_shape(s, dom), scalar = s->rank == 0;
			bool row = (mlc_op_row_source(n->op, k) || mlc_op_bcast(n->op)) && s->rank == 1 &&
				   s->dim[0] == cols;
			if (!full && !scalar && !row)
				return WHY("%%%d: source %%%d is not elementwise, a row or a scalar", n->id, s->id);
		}
	}
	return true;
}

int mlc_group_first(const mlc_graph *g, int root_index)
{
	const mlc_node *root = g->node[root_index];
	int i = root_index;
	while (i > 0 && g->node[i - 1]->group == root)
		i--;
	return i;
}
