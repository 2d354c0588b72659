/* scratch.c — how much temporary memory each op's kernel needs, and where
 * it goes (ir.h): the one contract between the planner, which reserves it,
 * and codegen, which uses it. Ops without a case need none. */
#include "conv.h"

/* Images a value holds at max_batch: its first dim, resolved. */
static int64_t images(const mlc_node *x, int64_t max_batch)
{
	return x->dim[0] == MLC_BATCH ? max_batch : x->dim[0];
}

int64_t mlc_scratch_elems(const mlc_node *n, int64_t max_batch)
{
	mlc_window w;
	/* the verifier asks about broken nodes too */
	if ((unsigned)n->op >= OP_COUNT || n->nsrc != mlc_ops[n->op].arity)
		return 0;
	for (int k = 0; k < n->nsrc; k++)
		if (!n->src[k] || n->src[k]->rank < 0)
			return 0;
	switch (n->op) {
	case OP_CONV2D:
	case OP_CONV2D_GRAD_INPUT:
	case OP_CONV2D_GRAD_WEIGHT: {
		mlc_window_of(n, &w);
		if (w.oh < 1 || w.ow < 1)
			return 0;
		if (mlc_conv_algo(n) == MLC_CONV_DIRECT)
			/* the input gradient's flipped, transposed weights [KH,KW,F,C] */
			return n->op == OP_CONV2D_GRAD_INPUT ? w.kh * w.kw * w.c * w.f : 0;
		/* im2col columns (or their gradient) for one block of images */
		if (mlc_window_pointwise(&w))
			return 0;
		return mlc_window_block(&w, images(n->src[0], max_batch)) * mlc_window_cols(&w);
	}
	case OP_MAXPOOL_GRAD:
		/* per channel: the window's maximum and the gradient not yet routed */
		return n->src[0]->rank == 4 ? 2 * n->src[0]->dim[3] : 0;
	default: return 0;
	}
}

int64_t mlc_scratch_offset(const mlc_node *n, int64_t max_batch)
{
	return n->offset + (mlc_numel(n, max_batch) + 15) / 16 * 16;
}

int64_t mlc_scratch_stride(const mlc_node *n, int64_t max_batch)
{
	int64_t s = (mlc_scratch_elems(n, max_batch) + 15) / 16 * 16;
	/* a split weight gradient sums images into one partial output per thread
	 * (codegen/parallel.c), after the thread's columns */
	if (n->op == OP_CONV2D_GRAD_WEIGHT && n->rank >= 0)
		s += (mlc_numel(n, max_batch) + 15) / 16 * 16;
	return s;
}
