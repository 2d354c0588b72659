/* fused.c — one kernel per fusion group (ir.h, passes/fuse.c, docs/ir.md).
 *
 *   LOOP      one loop over the domain; each member's scalar emitter runs on
 *             the values of the members it reads (registers) and on loads of
 *             its external sources; only members read outside the group (or
 *             returned) are stored. sum_rows tails add each element into a
 *             per-column double accumulator and, at the end, add that
 *             partial sum into the output the entry zeroed, so the kernel
 *             can be split over rows like any other.
 *   EPILOGUE  the anchor's own kernel body (matmul, conv) writes its product;
 *             each time it finishes a block of rows it calls cg_epilogue,
 *             which runs the LOOP members over exactly those rows.
 *   UPDATE    the optimizer updates one after another over the flat range
 *             [begin, end) of all their elements, so one call (or one
 *             split across threads) updates every parameter. */
#include "cg.h"

#include <stdio.h>
#include <stdlib.h>

struct cg_group {
	const mlc_node *const *m;
	int count;
	mlc_group_kind kind;
	const mlc_node *dom;
	LLVMValueRef *ptr;   /* by member: its memory, NULL when internal */
	LLVMValueRef *acc;   /* by member: sum_rows accumulators (double[cols]) */
	const cg_kernel *k;
	const LLVMValueRef *param; /* by operand slot */
	/* Members [lo, hi) run in this function; a batchnorm member (index bn,
	 * or -1) uses the per-channel shift/scale arrays. */
	int lo, hi, bn;
	LLVMValueRef shift, scale;
};

static int index_of(const struct cg_group *G, const mlc_node *s)
{
	for (int i = 0; i < G->count; i++)
		if (G->m[i] == s)
			return i;
	return -1;
}

/* The pointer parameter of any operand node of the kernel. */
static LLVMValueRef ptr_of(const struct cg_group *G, const mlc_node *s)
{
	for (int i = 0; i < G->k->nparam; i++)
		if (G->k->opnd[i] == s)
			return G->param[i];
	/* same address as an operand (an update and its parameter) */
	for (int i = 0; i < G->k->nparam; i++)
		if (G->k->opnd[i]->mem == s->mem && G->k->opnd[i]->offset == s->offset)
			return G->param[i];
	MLC_UNREACHABLE();
}

/* Members [lo, hi) over element i (flat), column j (NULL if no row operand
 * needs it). A source in the group computed in this call is a register; one
 * computed by an earlier function of a split group (below) is read back. */
static void elements(cg *c, const struct cg_group *G, LLVMValueRef i, LLVMValueRef j)
{
	LLVMValueRef *val = mlc_xmalloc(sizeof *val * (size_t)G->count);
	LLVMTypeRef t_f64 = LLVMDoubleTypeInContext(c->ctx);
	for (int a = 0; a < G->count; a++)
		val[a] = NULL;
	for (int a = G->lo; a < G->hi; a++) {
		const mlc_node *n = G->m[a];
		if (G->kind == MLC_GROUP_EPILOGUE && a == 0) {
			val[a] = cg_load(c, G->ptr[0], i);
			continue;
		}
		if (n->op == OP_SUM_ROWS) {
			LLVMValueRef p = cg_gep(c, G->acc[a], j, t_f64);
			LLVMValueRef v = LLVMBuildFPExt(c->b, val[index_of(G, n->src[0])], t_f64, "");
			LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, t_f64, p, ""), v, ""), p);
			continue;
		}
		LLVMValueRef in[MLC_MAX_SRC];
		for (int k = 0; k < n->nsrc; k++) {
			const mlc_node *s = n->src[k];
			int at = index_of(G, s);
			if (at >= 0 && val[at])
				in[k] = val[at];
			else if (at >= 0) {
				MLC_ASSERT(G->ptr[at]);
				in[k] = cg_load(c, G->ptr[at], i);
			} else if (s->rank == 0)
				in[k] = cg_load(c, ptr_of(G, s), cg_i64(c, 0));
			else if (mlc_same_shape(s, G->dom))
				in[k] = cg_load(c, ptr_of(G, s), i);
			else
				in[k] = cg_load(c, ptr_of(G, s), j);
		}
		c->elem = i;
		if (n->op == OP_BATCHNORM)
			val[a] = cg_bn_apply(c, in[0], G->shift, G->scale, ptr_of(G, n->src[2]), j);
		else
			val[a] = cg_hook[n->op].scalar(c, n, in);
		if (G->ptr[a])
			cg_store(c, val[a], G->ptr[a], i);
	}
	free(val);
}

static bool needs_rows(const struct cg_group *G)
{
	for (int a = G->lo; a < G->hi; a++) {
		const mlc_node *n = G->m[a];
		if (n->op == OP_SUM_ROWS || n->op == OP_BATCHNORM)
			return true;
		for (int k = 0; k < n->nsrc; k++)
			if (index_of(G, n->src[k]) < 0 && n->src[k]->rank > 0 && !mlc_same_shape(n->src[k], G->dom))
				return true;
	}
	return false;
}

/* Narrow rows (at most 16 columns: a conv's 6 or 16 channels): a column
 * loop over them is a masked vector op per row when the width is not a
 * multiple of 8, and sum_rows' accumulators make a store that the next
 * row's load must wait for (masked: not forwarded at all, about 10x slower
 * than registers on znver3). Those columns are unrolled here, one register
 * accumulator each; SLP puts them back into vectors. */
enum { FEW_COLS = 16 };

static int64_t few_cols(const struct cg_group *G)
{
	int64_t cols = G->dom->rank ? G->dom->dim[G->dom->rank - 1] : 1;
	return cols > 0 && cols <= FEW_COLS ? cols : 0;
}

/* Rows [r0, r1) of the domain seen as [rows, cols]. */
static void rows_loop(cg *c, const struct cg_group *G, LLVMValueRef r0, LLVMValueRef r1)
{
	LLVMValueRef m = cg_cols(c, G->dom);
	int64_t few = needs_rows(G) ? few_cols(G) : 0;
	if (few) {
		cg_loop rows;
		cg_loop_begin(c, &rows, r0, r1, "r");
		LLVMValueRef base = LLVMBuildNSWMul(c->b, rows.iv, m, "");
		for (int64_t j = 0; j < few; j++)
			elements(c, G, LLVMBuildNSWAdd(c->b, base, cg_i64(c, j), ""), cg_i64(c, j));
		cg_loop_end_rows(c, &rows);
		return;
	}
	if (!needs_rows(G)) { /* one flat loop: vectorizes even for narrow rows */
		cg_loop l;
		cg_loop_begin(c, &l, LLVMBuildNSWMul(c->b, r0, m, ""), LLVMBuildNSWMul(c->b, r1, m, ""), "i");
		elements(c, G, l.iv, NULL);
		cg_loop_end(c, &l);
		return;
	}
	cg_loop rows, cols;
	cg_loop_begin(c, &rows, r0, r1, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, rows.iv, m, "");
	cg_loop_begin(c, &cols, cg_i64(c, 0), m, "j");
	elements(c, G, LLVMBuildNSWAdd(c->b, base, cols.iv, ""), cols.iv);
	cg_loop_end(c, &cols);
	cg_loop_end_rows(c, &rows);
}

void cg_epilogue(cg *c, const mlc_node *n, LLVMValueRef r0, LLVMValueRef r1)
{
	const struct cg_group *G = c->epi;
	if (!G || G->m[0] != n)
		return;
	rows_loop(c, G, r0, r1);
}

/* sum_rows accumulators: zeroed before the loops, stored after them. */
static void sums(cg *c, struct cg_group *G, bool store)
{
	LLVMTypeRef t_f64 = LLVMDoubleTypeInContext(c->ctx);
	int64_t cols = G->dom->dim[G->dom->rank - 1];
	for (int a = 0; a < G->count; a++) {
		if (G->m[a]->op != OP_SUM_ROWS)
			continue;
		if (!store)
			G->acc[a] = cg_entry_alloca(c, LLVMArrayType2(t_f64, (uint64_t)cols), "acc");
		/* few columns: unrolled, so every access has a constant index and
		 * the accumulators become registers (SROA) */
		int64_t few = few_cols(G);
		for (int64_t j = 0; few && j < few; j++) {
			LLVMValueRef p = cg_gep(c, G->acc[a], cg_i64(c, j), t_f64);
			if (store) {
				LLVMValueRef part = LLVMBuildFPTrunc(c->b, LLVMBuildLoad2(c->b, t_f64, p, ""), c->t_f32, "");
				LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpFAdd, cg_gep(c, G->ptr[a], cg_i64(c, j), c->t_f32),
						   part, LLVMAtomicOrderingMonotonic, 0);
			} else {
				LLVMBuildStore(c->b, LLVMConstReal(t_f64, 0), p);
			}
		}
		if (few)
			continue;
		cg_loop l;
		cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, cols), "j");
		LLVMValueRef p = cg_gep(c, G->acc[a], l.iv, t_f64);
		if (store) {
			/* The entry zeroes the sum before the call; each call (one per
			 * thread) adds its rows' partial sum. With two threads the
			 * result is 0 + a + b either way round: deterministic. */
			LLVMValueRef part = LLVMBuildFPTrunc(c->b, LLVMBuildLoad2(c->b, t_f64, p, ""), c->t_f32, "");
			LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpFAdd, cg_gep(c, G->ptr[a], l.iv, c->t_f32), part,
					   LLVMAtomicOrderingMonotonic, 0);
		} else {
			LLVMBuildStore(c->b, LLVMConstReal(t_f64, 0), p);
		}
		cg_loop_end(c, &l);
	}
}

static void update(cg *c, const struct cg_group *G)
{
	LLVMValueRef begin = c->begin, end = c->end, zero = cg_i64(c, 0);
	int64_t off = 0;
	for (int a = 0; a < G->count; a++) {
		const mlc_node *n = G->m[a];
		int64_t numel = mlc_numel(n, 1);
		LLVMValueRef hi = cg_i64(c, numel), o = cg_i64(c, off);
		/* this member's part of [begin, end), in its own element numbers */
		LLVMValueRef lo = LLVMBuildSub(c->b, begin, o, ""), up = LLVMBuildSub(c->b, end, o, "");
		lo = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, lo, zero, ""), zero, lo, "");
		up = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, up, hi, ""), hi, up, "");
		c->begin = lo;
		c->end = up;
		c->opnd[0] = ptr_of(G, n);
		for (int k = 0; k < n->nsrc; k++)
			c->opnd[k + 1] = ptr_of(G, n->src[k]);
		cg_hook[n->op].body(c, n); /* each update's own kernel */
		off += numel;
	}
	c->begin = begin;
	c->end = end;
}

int64_t cg_group_update_extent(const mlc_node *const *m, int count)
{
	int64_t total = 0;
	for (int a = 0; a < count; a++)
		total += mlc_numel(m[a], 1);
	return total;
}

int cg_group_bn(const mlc_node *const *m, int count)
{
	for (int a = 0; a < count; a++)
		if (m[a]->op == OP_BATCHNORM)
			return a;
	return -1;
}

/* A group with a batchnorm member has three functions (docs/design.md,
 * "Fusion"): CG_PART_WHOLE, for inference entries, folds the batchnorm into
 * the anchor's epilogue with the running statistics' shift and scale; for
 * training entries, CG_PART_PRE runs the anchor and the members before the
 * batchnorm (whose input it stores), and CG_PART_POST takes the batch
 * statistics over every row, updates the running ones, and runs the
 * batchnorm and the members after it in one loop. */
void cg_group_body(cg *c, const mlc_node *const *m, int count, mlc_group_kind kind,
		   const cg_kernel *k, const LLVMValueRef *param, cg_part part)
{
	struct cg_group G = {.m = m, .count = count, .kind = kind, .dom = m[0], .k = k, .param = param,
			     .lo = 0, .hi = count, .bn = cg_group_bn(m, count)};
	G.ptr = mlc_xmalloc(sizeof *G.ptr * (size_t)count);
	G.acc = mlc_xmalloc(sizeof *G.acc * (size_t)count);
	for (int a = 0; a < count; a++) {
		G.ptr[a] = m[a]->internal ? NULL : ptr_of(&G, m[a]);
		G.acc[a] = NULL;
	}
	if (G.bn >= 0) {
		const mlc_node *b = m[G.bn];
		if (part == CG_PART_PRE)
			G.hi = G.bn;
		else {
			G.shift = cg_bn_arrays(c, b, &G.scale);
			bool training = part == CG_PART_POST;
			LLVMValueRef x = training ? G.ptr[index_of(&G, b->src[0])] : NULL;
			cg_bn_scale_shift(c, b, training, x, ptr_of(&G, b->src[1]), ptr_of(&G, b->src[3]),
					  ptr_of(&G, b->src[4]), G.shift, G.scale);
		}
		if (part == CG_PART_POST) {
			G.lo = G.bn;
			rows_loop(c, &G, cg_i64(c, 0), cg_rows(c, G.dom));
			free(G.ptr);
			free(G.acc);
			return;
		}
	}
	if (kind == MLC_GROUP_UPDATE) {
		update(c, &G);
	} else {
		sums(c, &G, false);
		if (kind == MLC_GROUP_LOOP) {
			rows_loop(c, &G, c->begin, c->end);
		} else {
			const mlc_node *a = m[0];
			c->opnd[0] = G.ptr[0];
			for (int s = 0; s < a->nsrc; s++)
				c->opnd[s + 1] = ptr_of(&G, a->src[s]);
			c->epi = &G;
			cg_hook[a->op].body(c, a);
			c->epi = NULL;
		}
		sums(c, &G, true);
	}
	free(G.ptr);
	free(G.acc);
}
