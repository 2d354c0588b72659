/* conv_algo.c — which algorithm a convolution runs with (conv.h): im2col +
 * GEMM or the direct kernels, from the `algo` attribute or, when it is auto,
 * from the geometry. The planner (scratch.c) and the kernels both ask here,
 * so they always agree. */
#include "conv.h"

bool mlc_conv_direct_ok(const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	if (w.groups != 1 || w.dh != 1 || w.dw != 1 || w.oh < 1 || w.ow < 1)
		return false;
	if (n->op == OP_CONV2D_GRAD_INPUT)
		/* a correlation of dy with the flipped kernel, padded by K-1-pad */
		return w.sh == 1 && w.sw == 1 && w.pt < w.kh && w.pb < w.kh && w.pl < w.kw &&
		       w.pr < w.kw;
	return true;
}

/* The heuristic, from per-kernel measurements at 1 thread (bench/README.md,
 * bench/conv_bench.c): filled in below. */
static int heuristic(const mlc_node *n, const mlc_window *w)
{
	int64_t k = w->kh * w->kw * w->c;
	(void)n;
	return k <= 32 || w->c <= 16 || w->f <= 16 ? MLC_CONV_DIRECT : MLC_CONV_GEMM;
}

int mlc_conv_algo(const mlc_node *n)
{
	MLC_ASSERT(n->op == OP_CONV2D || n->op == OP_CONV2D_GRAD_INPUT || n->op == OP_CONV2D_GRAD_WEIGHT);
	int64_t a = n->attr.i[MLC_CONV_ALGO_SLOT];
	if (a == MLC_CONV_GEMM || !mlc_conv_direct_ok(n))
		return MLC_CONV_GEMM;
	if (a == MLC_CONV_DIRECT)
		return MLC_CONV_DIRECT;
	mlc_window w;
	mlc_window_of(n, &w);
	return heuristic(n, &w);
}
