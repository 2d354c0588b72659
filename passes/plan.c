/* plan.c — memory planning. Parameters and optimizer state persist in the
 * parameter arena (one flat block, in graph order; updates alias the
 * parameter they overwrite). Every other value with memory gets an offset in
 * the activation arena, sized for max_batch rows, where values whose live
 * intervals (ir/liveness.c) are disjoint may share memory, and an elementwise
 * output may take the slot of a source that dies at its kernel (in place).
 * Internal members of fusion groups live in registers: no memory at all. */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

enum { ALIGN = 16 }; /* elements: 64-byte alignment for vector loads */

static int64_t round_up(int64_t n)
{
	return (n + ALIGN - 1) / ALIGN * ALIGN;
}

/* A run of values that share one slot: a value and the in-place outputs
 * chained onto it, live from the first's start to the last's end. */
typedef struct {
	int start, end;
	int64_t size, offset;
} block;

/* Sort keys: qsort has no context argument, so they carry what they compare. */
typedef struct {
	int64_t size;
	int start, idx;
} key;

static int larger_first(const void *x, const void *y)
{
	const key *a = x, *b = y;
	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->idx - b->idx;
}

static int earlier_first(const void *x, const void *y)
{
	const key *a = x, *b = y;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	return a->idx - b->idx;
}

/* Greedy placement in `order` (a sort of the keys): each block goes into the
 * smallest gap that holds it between the already placed blocks it overlaps
 * in time, or on top of them. The placed blocks are kept sorted by offset
 * (insertion), so each placement is one pass over them, not a sort: specs
 * with thousands of layers plan in linear passes. Returns the arena size. */
static int64_t place(block *b, int nb, key *order, int (*cmp)(const void *, const void *))
{
	qsort(order, (size_t)nb, sizeof *order, cmp);
	const block **sorted = mlc_xmalloc(sizeof *sorted * (size_t)(nb + 1));
	int nplaced = 0;
	int64_t top = 0;
	for (int o = 0; o < nb; o++) {
		block *x = &b[order[o].idx];
		int64_t at = 0, best = -1, best_gap = 0;
		for (int i = 0; i < nplaced; i++) {
			const block *y = sorted[i];
			if (y->start > x->end || x->start > y->end)
				continue; /* not live at the same time */
			int64_t gap = y->offset - at;
			if (gap >= x->size && (best < 0 || gap < best_gap)) {
				best = at;
				best_gap = gap;
			}
			if (y->offset + y->size > at)
				at = y->offset + y->size;
		}
		x->offset = best >= 0 ? best : at;
		if (x->offset + x->size > top)
			top = x->offset + x->size;
		int lo = 0, hi = nplaced; /* after every block at an offset <= x's */
		while (lo < hi) {
			int mid = lo + (hi - lo) / 2;
			if (sorted[mid]->offset <= x->offset)
				lo = mid + 1;
			else
				hi = mid;
		}
		memmove(sorted + lo + 1, sorted + lo, sizeof *sorted * (size_t)(nplaced - lo));
		sorted[lo] = x;
		nplaced++;
	}
	free(sorted);
	return top;
}

/* Both orders are tried and the smaller arena kept (docs/design.md has the
 * numbers: largest first wins on most specs, earliest first on one ResNet). */
static int64_t place_best(block *b, int nb)
{
	key *order = mlc_xmalloc(sizeof *order * (size_t)(nb + 1));
	int64_t *first = mlc_xmalloc(sizeof *first * (size_t)(nb + 1));
	for (int i = 0; i < nb; i++)
		order[i] = (key){b[i].size, b[i].start, i};
	int64_t by_size = place(b, nb, order, larger_first);
	for (int i = 0; i < nb; i++)
		first[i] = b[i].offset;
	int64_t by_start = place(b, nb, order, earlier_first);
	if (by_size <= by_start)
		for (int i = 0; i < nb; i++)
			b[i].offset = first[i];
	free(order);
	free(first);
	return by_size <= by_start ? by_size : by_start;
}

static void plan_params(mlc_graph *g)
{
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		if (n->op == OP_PARAM || n->op == OP_STATE) {
			n->mem = MEM_PARAM;
			n->offset = g->param_size;
			g->param_size += round_up(mlc_numel(n, g->max_batch));
		} else if (mlc_op_is_update(n->op)) {
			n->mem = MEM_PARAM;
			n->offset = n->src[0]->offset;
		}
	}
}

mlc_status mlc_plan_memory(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	if (o->max_batch <= 0) {
		mlc_error_file(d, NULL, "plan: batch size must be positive");
		return MLC_EUSER;
	}
	g->max_batch = o->max_batch;
	g->threads = o->threads > 1 ? o->threads : 1;
	g->act_size = g->param_size = 0;
	plan_params(g);

	mlc_liveness lv;
	mlc_liveness_compute(g, &lv);
	int *of = mlc_xmalloc(sizeof *of * (size_t)(g->nnode + 1)); /* position -> block, -1 none */
	bool *taken = mlc_xmalloc(sizeof *taken * (size_t)(g->nnode + 1)); /* slot given away in place */
	block *b = mlc_xmalloc(sizeof *b * (size_t)(g->nnode + 1));
	int nb = 0;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		of[i] = -1;
		if (n->dead || n->mem == MEM_PARAM)
			continue;
		if (n->internal) {
			n->mem = MEM_NONE;
			continue;
		}
		n->mem = MEM_ACT;
		n->offset = 0; /* block sizes do not depend on it */
		int64_t size = round_up(mlc_block_elems(g, n));
		/* in place: on a value the kernel reads (for a fused kernel, its
		 * anchor or any of its sources) that dies here; each slot once */
		int root = lv.pos[mlc_kernel_of(n)->id], first = n->group ? mlc_group_first(g, root) : i;
		for (int j = first; j <= (n->group ? root : i) && of[i] < 0; j++) {
			const mlc_node *m = g->node[j];
			for (int k = -1; k < m->nsrc && of[i] < 0; k++) {
				const mlc_node *s = k < 0 ? m : m->src[k];
				int ps = lv.pos[s->id];
				if (s == n || ps < 0 || of[ps] < 0 || taken[ps] || !mlc_inplace_pair(&lv, n, s))
					continue;
				block *x = &b[of[ps]];
				x->end = lv.end[i];
				x->size = size > x->size ? size : x->size;
				of[i] = (int)(x - b);
				taken[ps] = true;
			}
		}
		if (of[i] < 0) {
			b[nb] = (block){.start = lv.start[i], .end = lv.end[i], .size = size};
			of[i] = nb++;
		}
	}
	g->act_size = place_best(b, nb);
	for (int i = 0; i < g->nnode; i++)
		if (of[i] >= 0)
			g->node[i]->offset = b[of[i]].offset;
	free(of);
	free(taken);
	free(b);
	mlc_liveness_free(&lv);
	return MLC_OK;
}
