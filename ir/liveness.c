/* liveness.c — live intervals of values over the schedule, and the in-place
 * rule: one definition shared by the memory planner (passes/plan.c) and the
 * verifier, so what one plans the other accepts.
 *
 * Why one plan serves every entry: an entry (predict, eval, grad, train) runs
 * a subset of the nodes, in graph order, with the same const prologue. In a
 * subset a value is written at the same position as in the full schedule and
 * read by a subset of its readers, so its interval can only shrink (a result
 * the entry returns is a graph result, live to the end in both). Two values
 * whose full intervals are disjoint therefore stay disjoint in every entry,
 * and memory shared between them is never read while the other owns it. Keep
 * it so: anything that runs outside graph order, or reads a value the graph
 * does not list as a source or result, needs a change here. */
#include "ir.h"

#include <stdlib.h>

int64_t mlc_scratch_extent(const mlc_graph *g, const mlc_node *n)
{
	/* with several threads, one stride each (it may hold more than the
	 * elems: a split weight gradient's partial output, ir/scratch.c) */
	if (g->threads > 1)
		return g->threads * mlc_scratch_stride(n, g->max_batch);
	return mlc_scratch_elems(n, g->max_batch);
}

int64_t mlc_block_elems(const mlc_graph *g, const mlc_node *n)
{
	int64_t numel = mlc_numel(n, g->max_batch), scratch = mlc_scratch_extent(g, n);
	return scratch ? mlc_scratch_offset(n, g->max_batch) - n->offset + scratch : numel;
}

void mlc_liveness_compute(const mlc_graph *g, mlc_liveness *lv)
{
	size_t nn = (size_t)g->nnode + 1;
	lv->g = g;
	lv->nnode = g->nnode;
	lv->pos = mlc_xmalloc(sizeof *lv->pos * ((size_t)g->next_id + 1));
	lv->start = mlc_xmalloc(sizeof *lv->start * nn);
	lv->end = mlc_xmalloc(sizeof *lv->end * nn);
	for (int i = 0; i < g->next_id; i++)
		lv->pos[i] = -1;
	for (int i = 0; i < g->nnode; i++)
		lv->pos[g->node[i]->id] = i;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n->dead || n->internal)
			lv->start[i] = lv->end[i] = -2;
		else if (n->op == OP_INPUT || n->op == OP_CONST)
			lv->start[i] = lv->end[i] = -1; /* runtime / prologue, before any kernel */
		else
			lv->start[i] = lv->end[i] = lv->pos[mlc_kernel_of(n)->id];
	}
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *r = g->node[i];
		if (r->dead)
			continue;
		int at = lv->pos[mlc_kernel_of(r)->id];
		for (int k = 0; k < r->nsrc; k++) {
			const mlc_node *s = r->src[k];
			int p = lv->pos[s->id];
			if (mlc_kernel_of(s) != mlc_kernel_of(r) && lv->start[p] > -2 && lv->end[p] < at)
				lv->end[p] = at;
		}
	}
	/* Results are read after the entry returns. Inputs are the caller's:
	 * what it wrote stays there for the next entry (a benchmark times steps
	 * on one batch, a user may predict and then evaluate), at the cost of
	 * one batch of each input. */
	for (int i = 0; i < g->nret; i++) {
		int p = lv->pos[g->ret[i].val->id];
		if (lv->start[p] > -2)
			lv->end[p] = g->nnode;
	}
	for (int i = 0; i < g->nnode; i++)
		if (lv->start[i] > -2 && g->node[i]->op == OP_INPUT)
			lv->end[i] = g->nnode;
}

void mlc_liveness_free(mlc_liveness *lv)
{
	free(lv->pos);
	free(lv->start);
	free(lv->end);
	*lv = (mlc_liveness){0};
}

/* n may take exactly s's slot when s dies at n's kernel (which excludes
 * graph results, live to the end), has n's type, is not written by the
 * runtime or the prologue and does not persist (inputs, consts, the
 * parameter arena), and the kernel reads it only at the index it is about to
 * write, before it writes there:
 *  - an ungrouped kernel: an elementwise op reading s, or bias_add's operand 0;
 *  - a member of a fused kernel (codegen/fused.c): the group's anchor (the
 *    epilogue loads each anchor element once, before any member stores at
 *    that index, and the anchor never writes rows it has finished), or a
 *    source the anchor does not read and no member after n reads.
 * Only one output may take a given slot: the planner keeps track, and the
 * verifier rejects two. */
bool mlc_inplace_pair(const mlc_liveness *lv, const mlc_node *n, const mlc_node *s)
{
	if (n->dead || n->internal || s->dead || s->internal || s == n)
		return false;
	switch (s->op) {
	case OP_INPUT:
	case OP_CONST:
	case OP_PARAM:
	case OP_STATE: return false;
	default:
		if (mlc_op_is_update(s->op))
			return false;
		break;
	}
	int pn = lv->pos[n->id], ps = lv->pos[s->id];
	if (pn < 0 || ps < 0 || s->dtype != n->dtype || !mlc_same_shape(s, n) || mlc_scratch_elems(n, 1) != 0)
		return false;
	int at = lv->start[pn];
	if (at < 0 || lv->end[ps] != at)
		return false;
	if (!n->group) {
		if (at != pn)
			return false;
		for (int k = 0; k < n->nsrc; k++)
			if (n->src[k] == s && mlc_op_loopable(n->op) && !mlc_op_row_source(n->op, k))
				return true;
		return false;
	}
	const mlc_graph *g = lv->g;
	int root = lv->pos[n->group->id], first = mlc_group_first(g, root);
	const mlc_node *anchor = mlc_ops[g->node[first]->op].fclass == FC_OUTFUSABLE ? g->node[first] : NULL;
	if (s->group == n->group)
		return s == anchor;
	bool read = false;
	for (int j = first; j <= root; j++) {
		const mlc_node *m = g->node[j];
		for (int k = 0; k < m->nsrc; k++) {
			if (m->src[k] != s)
				continue;
			if (m == anchor || j > pn || m->op == OP_SUM_ROWS)
				return false;
			read = true;
		}
	}
	return read;
}
