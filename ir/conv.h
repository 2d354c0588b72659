/* conv.h — the geometry of the sliding-window ops (conv2d and its gradients,
 * maxpool, avgpool and theirs), read once from a node's attributes and source
 * shapes, for the shape rules, the scratch sizes and the kernels.
 * Layouts: activations NHWC [N,H,W,C], conv weights HWIO [KH,KW,C/groups,F]. */
#ifndef MLC_CONV_H
#define MLC_CONV_H

#include "ir.h"

typedef struct {
	int64_t h, w, c;          /* input image */
	int64_t oh, ow, f;        /* output image (f = c for pools) */
	int64_t kh, kw;           /* window */
	int64_t sh, sw;           /* strides */
	int64_t pt, pl, pb, pr;   /* explicit zero (conv) or ignored (pool) padding */
	int64_t dh, dw;           /* dilations (1 for pools) */
	int64_t groups;           /* 1 for pools */
} mlc_window;

/* Reads the attributes and the input/weight dims of n (one of the ops above);
 * oh/ow are computed with PyTorch's formula and may be <= 0 for bad
 * attributes. The batch dim is not part of the geometry. Asserts on other ops. */
void mlc_window_of(const mlc_node *n, mlc_window *w);

/* conv2d with a 1x1 kernel, stride 1 and no padding: a plain GEMM over the
 * NHWC buffer, no im2col. */
bool mlc_window_pointwise(const mlc_window *w);

/* Elements of one image's im2col matrix: [OH·OW, KH·KW·C]. */
int64_t mlc_window_cols(const mlc_window *w);

/* im2col runs over blocks of mlc_window_block images (at least 1), so the
 * column buffer stays near MLC_IM2COL_ELEMS floats whatever the batch:
 * 256 KB, half of a Zen 3 core's L2, where the GEMM's packing reads it. */
enum { MLC_IM2COL_ELEMS = 1 << 16 };
int64_t mlc_window_block(const mlc_window *w, int64_t images);

/* Convolution algorithms, the `algo` attribute (slot i9) of conv2d and its
 * gradients. */
enum {
	MLC_CONV_AUTO = 0,   /* decided by mlc_conv_algo's heuristic */
	MLC_CONV_GEMM = 1,   /* im2col + sgemm, or a plain sgemm for pointwise convs */
	MLC_CONV_DIRECT = 2, /* JIT'd register-blocked loops (codegen/kernels_direct.c) */
};
enum { MLC_CONV_ALGO_SLOT = 9 };

/* The algorithm n (conv2d, conv2d_grad_input or conv2d_grad_weight) runs
 * with: its attribute unless auto, else the heuristic (conv_algo.c). Never
 * MLC_CONV_AUTO, and MLC_CONV_DIRECT only where the direct kernels apply. */
int mlc_conv_algo(const mlc_node *n);
/* Whether the direct kernel can run n's geometry (groups 1, dilation 1;
 * the input gradient also needs stride 1 and pads below the kernel size;
 * or depthwise, any stride and padding). */
bool mlc_conv_direct_ok(const mlc_node *n);
/* Depthwise: one filter per channel (groups = C = F > 1), dilation 1. The
 * direct kernels run it with vector lanes over the channels; im2col + GEMM
 * would be one GEMM per channel with N = 1. */
bool mlc_conv_depthwise(const mlc_window *w);

#endif
