/* conv_algo.c — which algorithm a convolution runs with (conv.h): im2col +
 * GEMM or the direct kernels, from the `algo` attribute or, when it is auto,
 * from the geometry. The planner (scratch.c) and the kernels both ask here,
 * so they always agree. */
#include "conv.h"

bool mlc_conv_depthwise(const mlc_window *w)
{
	return w->groups > 1 && w->groups == w->c && w->f == w->c && w->dh == 1 && w->dw == 1;
}

bool mlc_conv_direct_ok(const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	if (mlc_conv_depthwise(&w))
		return w.oh >= 1 && w.ow >= 1;
	if (w.groups != 1 || w.dh != 1 || w.dw != 1 || w.oh < 1 || w.ow < 1)
		return false;
	if (n->op == OP_CONV2D_GRAD_INPUT)
		/* a correlation of dy with the flipped kernel, padded by K-1-pad */
		return w.sh == 1 && w.sw == 1 && w.pt < w.kh && w.pb < w.kh && w.pl < w.kw &&
		       w.pr < w.kw;
	return true;
}

/* The heuristic, from bench/conv_bench.c at 1 thread (bench/README.md has
 * the table). Direct vs GEMM, median ms, batch 64 (CNN) / 32 (ResNet):
 *   K = 27 first layers  fwd 3x3 3→32: 1.65 vs 2.90;  3x3 3→64 p1: 0.33 vs 0.49
 *                        dw  3→32: 1.79 vs 2.47;       3→64: 0.53 vs 0.57
 *   16-channel ResNet    3x3 16→16 p1 fwd/dx/dw: 0.52/0.51/0.49 vs 1.00/1.04/0.92
 *                        1x1 64→16 fwd/dx/dw:    0.18/0.21/0.22 vs 0.29/0.31/0.28
 *                        1x1 16→64 fwd/dx/dw:    0.26/0.21/0.32 vs 0.42/0.39/0.33
 *   32/64 channels       3x3 32→64, 64→64: even forward, GEMM up to 2.4x
 *                        faster on dx (mostly border pixels at 6x6)
 *   < 8 output channels  (a first layer's dx, C = 3): GEMM 3x faster, the
 *                        vector lanes are mostly masked off.
 * So: direct when the vectorized channels (F, or C for the input gradient)
 * fill at least one vector and the GEMM would be narrow: a patch of at most
 * 32 elements or at most 16 channels on either side. */
static int heuristic(const mlc_node *n, const mlc_window *w)
{
	/* depthwise, LeNet-sized and MobileNet-style: bench/dwconv.yaml's
	 * 16- and 32-channel 3x3 layers took 15 and 3 ms (forward, batch 64)
	 * as one GEMM per channel */
	if (mlc_conv_depthwise(w))
		return MLC_CONV_DIRECT;
	bool dx = n->op == OP_CONV2D_GRAD_INPUT;
	int64_t cin = dx ? w->f : w->c, cout = dx ? w->c : w->f;
	bool narrow = w->kh * w->kw * cin <= 32 || w->c <= 16 || w->f <= 16;
	return cout >= 8 && narrow ? MLC_CONV_DIRECT : MLC_CONV_GEMM;
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
