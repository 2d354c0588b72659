/* kernels_conv.c — conv2d and its two gradients as GEMMs: cblas_sgemm called
 * from generated code, one call per group.
 *
 * A 1x1 convolution with stride 1 and no padding is a GEMM straight over the
 * NHWC buffers. Anything else goes through im2col, one block of images at a
 * time (the block size is ir/conv.h's, so the column buffer fits the node's
 * scratch space): row (image, oh, ow) of the column matrix holds, for each
 * group g, the patch x[ih, iw, g·Cg .. (g+1)·Cg) in (kh, kw, c) order, zeros
 * for padding. That order is the HWIO weight's row order, so with K = KH·KW·Cg
 *   forward       y[:, g]  = col[:, g] · W[:, g]         (W as [K, F])
 *   weight grad   dW[:, g] = Σ_blocks col[:, g]ᵀ · dy[:, g]   (over the whole batch)
 *   input grad    col[:, g] = dy[:, g] · W[:, g]ᵀ, then col2im scatter-adds
 *                 the columns back into dx. */
#include "window.h"

#include <stdint.h>

/* CBLAS enum values (cblas.h); the ABI takes them and every size as int. */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

void cg_sgemm(cg *c, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
	      LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb, LLVMValueRef beta,
	      LLVMValueRef cm, LLVMValueRef ldc)
{
	LLVMTypeRef i32 = c->t_i32, f32 = c->t_f32, p = c->t_ptr;
	LLVMTypeRef params[] = {i32, i32, i32, i32, i32, i32, f32, p, i32, p, i32, f32, p, i32};
	LLVMTypeRef ty = LLVMFunctionType(c->t_void, params, MLC_COUNTOF(params), 0);
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "cblas_sgemm");
	if (!fn) /* kernels_matmul.c declares it the same way */
		fn = LLVMAddFunction(c->mod, "cblas_sgemm", ty);
	/* An empty product must not reach sgemm: OpenBLAS rejects some of the
	 * resulting leading dimensions with an error message. */
	LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "gemm");
	LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "");
	LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, m, cg_i64(c, 0), ""), call, done);
	LLVMPositionBuilderAtEnd(c->b, call);
#define I32(v) LLVMBuildTrunc(c->b, v, i32, "")
	LLVMValueRef args[] = {
		LLVMConstInt(i32, ROW_MAJOR, 0), LLVMConstInt(i32, ta ? TRANS : NO_TRANS, 0),
		LLVMConstInt(i32, tb ? TRANS : NO_TRANS, 0), I32(m), I32(n), I32(k),
		cg_f32(c, 1), a, I32(lda), b, I32(ldb), beta, cm, I32(ldc),
	};
#undef I32
	LLVMBuildCall2(c->b, ty, fn, args, MLC_COUNTOF(args), "");
	LLVMBuildBr(c->b, done);
	LLVMPositionBuilderAtEnd(c->b, done);
}

/* p[0, count) = 0. Every product below accumulates (beta 1) into memory
 * cleared this way: for these narrow GEMMs OpenBLAS's own beta = 0 pass was
 * measured up to a third slower than a memset, and the group calls can then
 * share one clear of their interleaved output columns. */
static void clear(cg *c, LLVMValueRef p, LLVMValueRef count)
{
	LLVMBuildMemSet(c->b, p, LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
			LLVMBuildNSWMul(c->b, count, cg_i64(c, 4), ""), 4);
}

/* ---- geometry ---- */

typedef struct {
	mlc_window w;
	int64_t g, cg, fg; /* groups, channels and filters per group */
	int64_t k;         /* KH·KW·Cg: one group's patch */
	int64_t block;     /* images per im2col block */
	bool pointwise;
} conv;

static bool geometry(cg *c, const mlc_node *n, conv *v)
{
	mlc_window_of(n, &v->w);
	const mlc_window *w = &v->w;
	v->g = w->groups;
	v->cg = w->c / w->groups;
	v->fg = w->f / w->groups;
	v->k = w->kh * w->kw * v->cg;
	v->pointwise = mlc_window_pointwise(w);
	const mlc_node *x = n->src[0];
	int64_t images = x->dim[0] == MLC_BATCH ? c->g->max_batch : x->dim[0];
	v->block = mlc_window_block(w, images);
	/* BLAS takes 32-bit sizes: the largest matrix a call sees must fit. */
	int64_t big = mlc_numel(n, images);
	for (int i = 0; i < n->nsrc; i++)
		if (big < mlc_numel(n->src[i], images))
			big = mlc_numel(n->src[i], images);
	if (big > INT32_MAX || v->block * mlc_window_cols(w) > INT32_MAX) {
		mlc_error_file(c->d, NULL, "codegen: %%%d (%s): tensors this large need 64-bit BLAS", n->id,
			       mlc_ops[n->op].name);
		c->failed = true;
		return false;
	}
	MLC_ASSERT(v->pointwise || mlc_conv_algo(n) == MLC_CONV_DIRECT || (c->scratch && v->block >= 1));
	return true;
}

/* Blocks [b0, b1) of `step` images covering [lo, hi). */
typedef struct {
	cg_loop l;
	LLVMValueRef b0, b1;
} blocks;

static void blocks_begin(cg *c, blocks *bl, LLVMValueRef lo, LLVMValueRef hi, int64_t step)
{
	LLVMValueRef count = LLVMBuildSDiv(c->b, add(c, sub(c, hi, lo), cg_i64(c, step - 1)),
					   cg_i64(c, step), "");
	cg_loop_begin(c, &bl->l, cg_i64(c, 0), count, "blk");
	bl->b0 = add(c, lo, muli(c, bl->l.iv, step));
	bl->b1 = smin(c, add(c, bl->b0, cg_i64(c, step)), hi);
}

/* ---- im2col / col2im ---- */

/* One run of len elements: col[dst + j] = x[src + j] for j in [lo, hi) and 0
 * elsewhere in [0, len), or (back) x[src + j] += col[dst + j] on [lo, hi). */
static void run(cg *c, bool back, LLVMValueRef x, LLVMValueRef src, LLVMValueRef col,
		LLVMValueRef dst, LLVMValueRef lo, LLVMValueRef hi, int64_t len)
{
	cg_loop l;
	if (!back && lo) {
		cg_loop_begin(c, &l, cg_i64(c, 0), lo, "z");
		cg_store(c, cg_f32(c, 0), col, add(c, dst, l.iv));
		cg_loop_end(c, &l);
	}
	cg_loop_begin(c, &l, lo ? lo : cg_i64(c, 0), hi ? hi : cg_i64(c, len), "j");
	LLVMValueRef xi = add(c, src, l.iv), ci = add(c, dst, l.iv);
	if (back)
		cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, x, xi), cg_load(c, col, ci), ""), x, xi);
	else
		cg_store(c, cg_load(c, x, xi), col, ci);
	cg_loop_end(c, &l);
	if (!back && hi) {
		cg_loop_begin(c, &l, hi, cg_i64(c, len), "z");
		cg_store(c, cg_f32(c, 0), col, add(c, dst, l.iv));
		cg_loop_end(c, &l);
	}
}

/* The patch of one output pixel: column row `rbase`, input window starting at
 * (ihb, iwb) of image b. Interior pixels (no tap in the padding) copy runs of
 * constant length, which LLVM turns into straight vector moves. */
static void patch(cg *c, const conv *v, bool back, bool interior, LLVMValueRef x, LLVMValueRef col,
		  LLVMValueRef b, LLVMValueRef ihb, LLVMValueRef iwb, LLVMValueRef rbase)
{
	const mlc_window *w = &v->w;
	/* With one group and no horizontal dilation, a kernel row's taps are
	 * contiguous in both x and col: one run of KW·C per kernel row. */
	bool rows = v->g == 1 && w->dw == 1;
	cg_loop kh, g, kw;
	cg_loop_begin(c, &kh, cg_i64(c, 0), cg_i64(c, w->kh), "kh");
	LLVMValueRef ih = add(c, ihb, muli(c, kh.iv, w->dh));
	LLVMValueRef hok = interior ? NULL : in_range(c, ih, w->h);
	if (hok)
		ih = LLVMBuildSelect(c->b, hok, ih, cg_i64(c, 0), "");
	LLVMValueRef pix = muli(c, add(c, muli(c, b, w->h), ih), w->w); /* (b, ih, 0) in pixels */
	if (rows) {
		LLVMValueRef dst = add(c, rbase, muli(c, kh.iv, w->kw * w->c));
		LLVMValueRef src = muli(c, add(c, pix, iwb), w->c);
		LLVMValueRef lo = NULL, hi = NULL;
		if (!interior) {
			/* taps kw in [lo, hi) are inside the image; none if ih is not */
			LLVMValueRef zero = cg_i64(c, 0), full = cg_i64(c, w->kw);
			lo = smin(c, smax(c, LLVMBuildNeg(c->b, iwb, ""), zero), full);
			hi = smax(c, smin(c, sub(c, cg_i64(c, w->w), iwb), full), lo);
			lo = muli(c, LLVMBuildSelect(c->b, hok, lo, zero, ""), w->c);
			hi = muli(c, LLVMBuildSelect(c->b, hok, hi, zero, ""), w->c);
		}
		run(c, back, x, src, col, dst, lo, hi, w->kw * w->c);
	} else {
		cg_loop_begin(c, &g, cg_i64(c, 0), cg_i64(c, v->g), "g");
		cg_loop_begin(c, &kw, cg_i64(c, 0), cg_i64(c, w->kw), "kw");
		LLVMValueRef iw = add(c, iwb, muli(c, kw.iv, w->dw));
		LLVMValueRef dst = add(c, add(c, rbase, muli(c, g.iv, v->k)),
				       muli(c, add(c, muli(c, kh.iv, w->kw), kw.iv), v->cg));
		LLVMValueRef src = add(c, muli(c, add(c, pix, iw), w->c), muli(c, g.iv, v->cg));
		LLVMValueRef hi = NULL;
		if (!interior) {
			LLVMValueRef ok = LLVMBuildAnd(c->b, hok, in_range(c, iw, w->w), "");
			hi = LLVMBuildSelect(c->b, ok, cg_i64(c, v->cg), cg_i64(c, 0), "");
			src = LLVMBuildSelect(c->b, ok, src, cg_i64(c, 0), "");
		}
		run(c, back, x, src, col, dst, NULL, hi, v->cg);
		cg_loop_end_rows(c, &kw);
		cg_loop_end_rows(c, &g);
	}
	cg_loop_end_rows(c, &kh);
}

/* Images [b0, b1) of x into col (rows from 0), or back: col scatter-added
 * into x (= dx, zeroed first). */
static void im2col(cg *c, const conv *v, bool back, LLVMValueRef x, LLVMValueRef col,
		   LLVMValueRef b0, LLVMValueRef b1)
{
	const mlc_window *w = &v->w;
	cg_loop b, oh, ow;
	if (back) {
		cg_loop z;
		int64_t per = w->h * w->w * w->c;
		cg_loop_begin(c, &z, muli(c, b0, per), muli(c, b1, per), "z");
		cg_store(c, cg_f32(c, 0), x, z.iv);
		cg_loop_end(c, &z);
	}
	cg_loop_begin(c, &b, b0, b1, "b");
	cg_loop_begin(c, &oh, cg_i64(c, 0), cg_i64(c, w->oh), "oh");
	LLVMValueRef ihb = sub(c, muli(c, oh.iv, w->sh), cg_i64(c, w->pt));
	cg_loop_begin(c, &ow, cg_i64(c, 0), cg_i64(c, w->ow), "ow");
	LLVMValueRef iwb = sub(c, muli(c, ow.iv, w->sw), cg_i64(c, w->pl));
	LLVMValueRef row = add(c, muli(c, add(c, muli(c, sub(c, b.iv, b0), w->oh), oh.iv), w->ow), ow.iv);
	LLVMValueRef rbase = muli(c, row, v->g * v->k);
	/* interior: every tap of the window is inside the image */
	LLVMValueRef hin = LLVMBuildAnd(c->b, in_range(c, ihb, w->h),
					in_range(c, add(c, ihb, cg_i64(c, w->dh * (w->kh - 1))), w->h), "");
	LLVMValueRef win = LLVMBuildAnd(c->b, in_range(c, iwb, w->w),
					in_range(c, add(c, iwb, cg_i64(c, w->dw * (w->kw - 1))), w->w), "");
	LLVMBasicBlockRef inner = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "interior");
	LLVMBasicBlockRef edge = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "edge");
	LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "");
	LLVMBuildCondBr(c->b, LLVMBuildAnd(c->b, hin, win, ""), inner, edge);
	LLVMPositionBuilderAtEnd(c->b, inner);
	patch(c, v, back, true, x, col, b.iv, ihb, iwb, rbase);
	LLVMBuildBr(c->b, join);
	LLVMPositionBuilderAtEnd(c->b, edge);
	patch(c, v, back, false, x, col, b.iv, ihb, iwb, rbase);
	LLVMBuildBr(c->b, join);
	LLVMPositionBuilderAtEnd(c->b, join);
	cg_loop_end_rows(c, &ow);
	cg_loop_end_rows(c, &oh);
	cg_loop_end_rows(c, &b);
}

/* ---- kernels ---- */

/* for (g = 0; g < groups; g++): the body is one sgemm call */
static LLVMValueRef group_begin(cg *c, const conv *v, cg_loop *l)
{
	if (v->g == 1)
		return cg_i64(c, 0);
	cg_loop_begin(c, l, cg_i64(c, 0), cg_i64(c, v->g), "g");
	return l->iv;
}

static void group_end(cg *c, const conv *v, cg_loop *l)
{
	if (v->g > 1)
		cg_loop_end(c, l);
}

/* y = conv2d(x, w) for images [begin, end) */
void cg_conv2d(cg *c, const mlc_node *n)
{
	conv v;
	if (!geometry(c, n, &v))
		return;
	if (mlc_conv_algo(n) == MLC_CONV_DIRECT) {
		cg_conv2d_direct(c, n);
		return;
	}
	const mlc_window *w = &v.w;
	LLVMValueRef y = c->opnd[0], x = c->opnd[1], wt = c->opnd[2];
	LLVMValueRef ldy = cg_i64(c, w->f), one = cg_f32(c, 1);
	int64_t opix = w->oh * w->ow;
	cg_loop gl;
	if (v.pointwise) {
		LLVMValueRef rows = muli(c, sub(c, c->end, c->begin), opix);
		LLVMValueRef x0 = at(c, x, muli(c, c->begin, opix * w->c));
		LLVMValueRef y0 = at(c, y, muli(c, c->begin, opix * w->f));
		clear(c, y0, muli(c, rows, w->f));
		LLVMValueRef g = group_begin(c, &v, &gl);
		cg_sgemm(c, false, false, rows, cg_i64(c, v.fg), cg_i64(c, v.cg), at(c, x0, muli(c, g, v.cg)),
			 cg_i64(c, w->c), at(c, wt, muli(c, g, v.fg)), ldy, one, at(c, y0, muli(c, g, v.fg)),
			 ldy);
		group_end(c, &v, &gl);
		cg_epilogue(c, n, muli(c, c->begin, opix), muli(c, c->end, opix));
		return;
	}
	blocks bl;
	blocks_begin(c, &bl, c->begin, c->end, v.block);
	im2col(c, &v, false, x, c->scratch, bl.b0, bl.b1);
	LLVMValueRef rows = muli(c, sub(c, bl.b1, bl.b0), opix);
	LLVMValueRef y0 = at(c, y, muli(c, bl.b0, opix * w->f));
	clear(c, y0, muli(c, rows, w->f));
	LLVMValueRef g = group_begin(c, &v, &gl);
	cg_sgemm(c, false, false, rows, cg_i64(c, v.fg), cg_i64(c, v.k), at(c, c->scratch, muli(c, g, v.k)),
		 cg_i64(c, v.g * v.k), at(c, wt, muli(c, g, v.fg)), ldy, one, at(c, y0, muli(c, g, v.fg)),
		 ldy);
	group_end(c, &v, &gl);
	cg_epilogue(c, n, muli(c, bl.b0, opix), muli(c, bl.b1, opix));
	cg_loop_end_rows(c, &bl.l);
}

/* dx = conv2d_grad_input(x, w, dy) for images [begin, end) */
void cg_conv2d_grad_input(cg *c, const mlc_node *n)
{
	conv v;
	if (!geometry(c, n, &v))
		return;
	if (mlc_conv_algo(n) == MLC_CONV_DIRECT) {
		cg_conv2d_grad_input_direct(c, n);
		return;
	}
	const mlc_window *w = &v.w;
	LLVMValueRef dx = c->opnd[0], wt = c->opnd[2], dy = c->opnd[3];
	LLVMValueRef ldy = cg_i64(c, w->f), one = cg_f32(c, 1);
	int64_t opix = w->oh * w->ow;
	cg_loop gl;
	if (v.pointwise) {
		LLVMValueRef rows = muli(c, sub(c, c->end, c->begin), opix);
		LLVMValueRef dx0 = at(c, dx, muli(c, c->begin, opix * w->c));
		LLVMValueRef dy0 = at(c, dy, muli(c, c->begin, opix * w->f));
		clear(c, dx0, muli(c, rows, w->c));
		LLVMValueRef g = group_begin(c, &v, &gl);
		cg_sgemm(c, false, true, rows, cg_i64(c, v.cg), cg_i64(c, v.fg), at(c, dy0, muli(c, g, v.fg)),
			 ldy, at(c, wt, muli(c, g, v.fg)), ldy, one, at(c, dx0, muli(c, g, v.cg)),
			 cg_i64(c, w->c));
		group_end(c, &v, &gl);
		cg_epilogue(c, n, muli(c, c->begin, opix), muli(c, c->end, opix));
		return;
	}
	blocks bl;
	blocks_begin(c, &bl, c->begin, c->end, v.block);
	LLVMValueRef rows = muli(c, sub(c, bl.b1, bl.b0), opix);
	LLVMValueRef dy0 = at(c, dy, muli(c, bl.b0, opix * w->f));
	clear(c, c->scratch, muli(c, rows, v.g * v.k));
	LLVMValueRef g = group_begin(c, &v, &gl);
	cg_sgemm(c, false, true, rows, cg_i64(c, v.k), cg_i64(c, v.fg), at(c, dy0, muli(c, g, v.fg)), ldy,
		 at(c, wt, muli(c, g, v.fg)), ldy, one, at(c, c->scratch, muli(c, g, v.k)),
		 cg_i64(c, v.g * v.k));
	group_end(c, &v, &gl);
	im2col(c, &v, true, dx, c->scratch, bl.b0, bl.b1);
	cg_epilogue(c, n, muli(c, bl.b0, w->h * w->w), muli(c, bl.b1, w->h * w->w));
	cg_loop_end_rows(c, &bl.l);
}

/* dw = conv2d_grad_weight(x, w, dy), summed over images [begin, end); the
 * entry adds up the outputs of a split (CG_PARTIAL, parallel.c) */
void cg_conv2d_grad_weight(cg *c, const mlc_node *n)
{
	conv v;
	if (!geometry(c, n, &v))
		return;
	if (mlc_conv_algo(n) == MLC_CONV_DIRECT) {
		cg_conv2d_grad_weight_direct(c, n);
		return;
	}
	const mlc_window *w = &v.w;
	LLVMValueRef dw = c->opnd[0], x = c->opnd[1], dy = c->opnd[3];
	LLVMValueRef ldy = cg_i64(c, w->f), one = cg_f32(c, 1);
	int64_t opix = w->oh * w->ow;
	cg_loop gl;
	clear(c, dw, cg_numel(c, n)); /* then every block accumulates */
	if (v.pointwise) {
		LLVMValueRef rows = muli(c, sub(c, c->end, c->begin), opix);
		LLVMValueRef x0 = at(c, x, muli(c, c->begin, opix * w->c));
		LLVMValueRef dy0 = at(c, dy, muli(c, c->begin, opix * w->f));
		LLVMValueRef g = group_begin(c, &v, &gl);
		/* k = 0 (no rows) must still leave dw cleared: cg_sgemm skips only m = 0 */
		cg_sgemm(c, true, false, cg_i64(c, v.cg), cg_i64(c, v.fg), rows, at(c, x0, muli(c, g, v.cg)),
			 cg_i64(c, w->c), at(c, dy0, muli(c, g, v.fg)), ldy, one, at(c, dw, muli(c, g, v.fg)),
			 ldy);
		group_end(c, &v, &gl);
		return;
	}
	blocks bl;
	blocks_begin(c, &bl, c->begin, c->end, v.block);
	im2col(c, &v, false, x, c->scratch, bl.b0, bl.b1);
	LLVMValueRef rows = muli(c, sub(c, bl.b1, bl.b0), opix);
	LLVMValueRef dy0 = at(c, dy, muli(c, bl.b0, opix * w->f));
	LLVMValueRef g = group_begin(c, &v, &gl);
	cg_sgemm(c, true, false, cg_i64(c, v.k), cg_i64(c, v.fg), rows, at(c, c->scratch, muli(c, g, v.k)),
		 cg_i64(c, v.g * v.k), at(c, dy0, muli(c, g, v.fg)), ldy, one, at(c, dw, muli(c, g, v.fg)),
		 ldy);
	group_end(c, &v, &gl);
	cg_loop_end_rows(c, &bl.l);
}
