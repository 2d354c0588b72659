/* kernels_prim.c — kernels of the primitive ops (issue 11): the scalar
 * emitters of the elementwise ones (the generic driver and fused loops run
 * them), sum/mean over chosen axes and their broadcast back, and slice and
 * its gradient along any axis.
 *
 * Reductions keep one double accumulator per output element and walk the
 * reduced dims innermost, so a sum over a batch of 64k rows keeps its digits
 * (as batchnorm's statistics do); they run as one call (CG_RANGE_ONE). */
#include "cg.h"

static LLVMValueRef fcmp(cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFCmp(c->b, p, a, b, "");
}

static LLVMValueRef sel(cg *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, cond, a, b, "");
}

/* ---- elementwise ---- */

LLVMValueRef cg_sc_mul(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFMul(c->b, in[0], in[1], "");
}

LLVMValueRef cg_sc_sub(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFSub(c->b, in[0], in[1], "");
}

LLVMValueRef cg_sc_div(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFDiv(c->b, in[0], in[1], "");
}

/* NaN-propagating, like torch.minimum/maximum */
LLVMValueRef cg_sc_minimum(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef args[2] = {in[0], in[1]};
	return cg_intrin(c, "llvm.minimum", c->t_f32, args, 2);
}

LLVMValueRef cg_sc_maximum(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef args[2] = {in[0], in[1]};
	return cg_intrin(c, "llvm.maximum", c->t_f32, args, 2);
}

LLVMValueRef cg_sc_neg(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFNeg(c->b, in[0], "");
}

LLVMValueRef cg_sc_exp(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return cg_exp(c, in[0]);
}

LLVMValueRef cg_sc_log(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return cg_log(c, in[0]);
}

LLVMValueRef cg_sc_sqrt(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef x = in[0];
	return cg_intrin(c, "llvm.sqrt", c->t_f32, &x, 1);
}

LLVMValueRef cg_sc_square(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFMul(c->b, in[0], in[0], "");
}

LLVMValueRef cg_sc_abs(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef x = in[0];
	return cg_intrin(c, "llvm.fabs", c->t_f32, &x, 1);
}

/* −1, 0 or 1 (0 for NaN) */
LLVMValueRef cg_sc_sign(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef zero = cg_f32(c, 0);
	LLVMValueRef s = sel(c, fcmp(c, LLVMRealOLT, in[0], zero), cg_f32(c, -1), zero);
	return sel(c, fcmp(c, LLVMRealOGT, in[0], zero), cg_f32(c, 1), s);
}

/* The common exponents are exact products; the rest call powf, which
 * handles negative bases with integral exponents as C does. */
LLVMValueRef cg_sc_pow(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	double p = n->attr.f[0];
	LLVMValueRef x = in[0];
	if (p == 0)
		return cg_f32(c, 1);
	if (p == 1)
		return x;
	if (p == 2)
		return LLVMBuildFMul(c->b, x, x, "");
	if (p == 3)
		return LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, x, x, ""), x, "");
	if (p == -1)
		return LLVMBuildFDiv(c->b, cg_f32(c, 1), x, "");
	if (p == 0.5)
		return cg_intrin(c, "llvm.sqrt", c->t_f32, &x, 1);
	LLVMValueRef args[2] = {x, cg_f32(c, p)};
	return cg_intrin(c, "llvm.pow", c->t_f32, args, 2);
}

/* min(max(x, lo), hi), NaN kept (both compares fail) */
LLVMValueRef cg_sc_clamp(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef lo = cg_f32(c, n->attr.f[0]), hi = cg_f32(c, n->attr.f[1]);
	LLVMValueRef v = sel(c, fcmp(c, LLVMRealOLT, in[0], lo), lo, in[0]);
	return sel(c, fcmp(c, LLVMRealOGT, v, hi), hi, v);
}

/* (x, dy): dy where lo <= x <= hi (PyTorch passes the bounds themselves) */
LLVMValueRef cg_sc_clamp_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef lo = cg_f32(c, n->attr.f[0]), hi = cg_f32(c, n->attr.f[1]);
	LLVMValueRef inside = LLVMBuildAnd(c->b, fcmp(c, LLVMRealOGE, in[0], lo), fcmp(c, LLVMRealOLE, in[0], hi), "");
	return sel(c, inside, in[1], cg_f32(c, 0));
}

/* (a, b, dy) -> the gradient a gets: dy if a wins, dy/2 on a tie, else 0 */
LLVMValueRef cg_sc_minmax_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef wins = fcmp(c, n->attr.i[0] ? LLVMRealOGT : LLVMRealOLT, in[0], in[1]);
	LLVMValueRef tie = fcmp(c, LLVMRealOEQ, in[0], in[1]);
	LLVMValueRef half = LLVMBuildFMul(c->b, in[2], cg_f32(c, 0.5), "");
	return sel(c, wins, in[2], sel(c, tie, half, cg_f32(c, 0)));
}

LLVMValueRef cg_sc_detach(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return in[0];
}

/* 24 random bits of h as a float in [0, 1), plus `shift` ulps of 2⁻²⁴ */
static LLVMValueRef unit(cg *c, LLVMValueRef h, double shift)
{
	LLVMValueRef bits = LLVMBuildLShr(c->b, h, LLVMConstInt(c->t_i32, 8, 0), "");
	LLVMValueRef f = LLVMBuildUIToFP(c->b, bits, c->t_f32, "");
	return LLVMBuildFMul(c->b, LLVMBuildFAdd(c->b, f, cg_f32(c, shift), ""), cg_f32(c, 1.0 / 16777216.0), "");
}

/* train_only: 0 outside training (noise that only augments training data) */
static LLVMValueRef noise_mode(cg *c, const mlc_node *n, LLVMValueRef v)
{
	return n->attr.i[1] ? sel(c, cg_training(c), v, cg_f32(c, 0)) : v;
}

/* low + (high − low)·u, u = (h >> 8)·2⁻²⁴ with h the dropout hash
 * (docs/design.md, "Random ops") */
LLVMValueRef cg_sc_random_uniform(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	double lo = n->attr.f[0], hi = n->attr.f[1];
	LLVMValueRef u = unit(c, cg_elem_hash(c, n->attr.i[0]), 0);
	return noise_mode(c, n, LLVMBuildFAdd(c->b, cg_f32(c, lo), LLVMBuildFMul(c->b, u, cg_f32(c, hi - lo), ""), ""));
}

/* Box–Muller: u1 = ((h >> 8) + 1)·2⁻²⁴ in (0, 1], u2 from h2 = fmix32(h ^
 * 0x68e31da4), z = √(−2 ln u1)·cos(2π u2); mean + std·z */
LLVMValueRef cg_sc_random_normal(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef h = cg_elem_hash(c, n->attr.i[0]);
	LLVMValueRef h2 = cg_fmix32(c, LLVMBuildXor(c->b, h, LLVMConstInt(c->t_i32, 0x68e31da4u, 0), ""));
	LLVMValueRef u1 = unit(c, h, 1), u2 = unit(c, h2, 0);
	LLVMValueRef r = LLVMBuildFMul(c->b, cg_f32(c, -2), cg_log(c, u1), "");
	r = cg_intrin(c, "llvm.sqrt", c->t_f32, &r, 1);
	LLVMValueRef a = LLVMBuildFMul(c->b, u2, cg_f32(c, 6.283185307179586), "");
	LLVMValueRef z = LLVMBuildFMul(c->b, r, cg_intrin(c, "llvm.cos", c->t_f32, &a, 1), "");
	z = LLVMBuildFAdd(c->b, cg_f32(c, n->attr.f[0]), LLVMBuildFMul(c->b, z, cg_f32(c, n->attr.f[1]), ""), "");
	return noise_mode(c, n, z);
}

/* ---- sum, mean and broadcast over axes ---- */

/* Row-major strides of x (static: only dim 0 may be the batch), and of the
 * value x reduced over `mask` (its kept dims; reduced ones get 0). */
static void strides(const mlc_node *x, int mask, int64_t *xs, int64_t *rs)
{
	int64_t a = 1, b = 1;
	for (int d = x->rank - 1; d >= 0; d--) {
		xs[d] = a;
		rs[d] = mask & (1 << d) ? 0 : b;
		if (d > 0) {
			a *= x->dim[d];
			if (!(mask & (1 << d)))
				b *= x->dim[d];
		}
	}
}

static LLVMValueRef index_of(cg *c, const cg_loop *l, const int *dims, int count, const int64_t *stride)
{
	LLVMValueRef idx = cg_i64(c, 0);
	for (int k = 0; k < count; k++)
		if (stride[dims[k]])
			idx = LLVMBuildNSWAdd(c->b, idx, LLVMBuildNSWMul(c->b, l[k].iv, cg_i64(c, stride[dims[k]]), ""), "");
	return idx;
}

/* How many elements of x one reduced element stands for (i64, at run time). */
static LLVMValueRef count_of(cg *c, const mlc_node *x, int mask)
{
	LLVMValueRef k = cg_i64(c, 1);
	for (int d = 0; d < x->rank; d++)
		if (mask & (1 << d))
			k = LLVMBuildNSWMul(c->b, k, cg_dim(c, x, d), "");
	return k;
}

/* Kept dims outermost (one output element each), reduced dims innermost
 * into a double accumulator. */
void cg_reduce(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[0];
	int mask = mlc_axes_mask(n->attr.s, x->rank);
	MLC_ASSERT(mask >= 0);
	int64_t xs[MLC_MAX_RANK], rs[MLC_MAX_RANK];
	strides(x, mask, xs, rs);
	int order[MLC_MAX_RANK], nk = 0, nr = 0;
	for (int d = 0; d < x->rank; d++)
		if (!(mask & (1 << d)))
			order[nk++] = d;
	for (int d = 0; d < x->rank; d++)
		if (mask & (1 << d))
			order[nk + nr++] = d;
	LLVMTypeRef f64 = LLVMDoubleTypeInContext(c->ctx);
	LLVMValueRef acc = cg_entry_alloca(c, f64, "acc");
	cg_loop l[MLC_MAX_RANK];
	for (int k = 0; k < nk; k++)
		cg_loop_begin(c, &l[k], cg_i64(c, 0), cg_dim(c, x, order[k]), "k");
	LLVMBuildStore(c->b, LLVMConstReal(f64, 0), acc);
	for (int k = nk; k < nk + nr; k++)
		cg_loop_begin(c, &l[k], cg_i64(c, 0), cg_dim(c, x, order[k]), "r");
	LLVMValueRef v = LLVMBuildFPExt(c->b, cg_load(c, c->opnd[1], index_of(c, l, order, nk + nr, xs)), f64, "");
	LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, f64, acc, ""), v, ""), acc);
	for (int k = nk + nr - 1; k >= nk; k--)
		cg_loop_end(c, &l[k]);
	LLVMValueRef s = LLVMBuildLoad2(c->b, f64, acc, "");
	if (n->op == OP_MEAN)
		s = LLVMBuildFDiv(c->b, s, LLVMBuildSIToFP(c->b, count_of(c, x, mask), f64, ""), "");
	cg_store(c, LLVMBuildFPTrunc(c->b, s, c->t_f32, ""), c->opnd[0], index_of(c, l, order, nk, rs));
	for (int k = nk - 1; k >= 0; k--)
		cg_loop_end(c, &l[k]);
}

/* (dy, x) -> out[i] = dy[i reduced] (/ count) over every element of x */
void cg_broadcast(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[1];
	int mask = mlc_axes_mask(n->attr.s, x->rank);
	MLC_ASSERT(mask >= 0);
	int64_t xs[MLC_MAX_RANK], rs[MLC_MAX_RANK];
	strides(x, mask, xs, rs);
	int order[MLC_MAX_RANK];
	for (int d = 0; d < x->rank; d++)
		order[d] = d;
	LLVMValueRef scale = cg_f32(c, 1);
	if (n->attr.i[0])
		scale = LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_sitofp(c, count_of(c, x, mask)), "");
	cg_loop l[MLC_MAX_RANK];
	for (int d = 0; d < x->rank; d++)
		cg_loop_begin(c, &l[d], cg_i64(c, 0), cg_dim(c, x, d), "i");
	LLVMValueRef v = cg_load(c, c->opnd[1], index_of(c, l, order, x->rank, rs));
	cg_store(c, LLVMBuildFMul(c->b, v, scale, ""), c->opnd[0], index_of(c, l, order, x->rank, xs));
	for (int d = x->rank - 1; d >= 0; d--)
		cg_loop_end(c, &l[d]);
}

/* ---- slice along any axis ---- */

/* For an axis before the last, rows of the 2-D view [rows, M] map to rows:
 * a row r of the sliced value is (o, j, t) with t < inner (rows per step of
 * the axis), and reads row (o·D + begin + j)·inner + t of the whole one. */
static int64_t inner_rows(const mlc_node *x, int axis)
{
	int64_t k = 1;
	for (int d = axis + 1; d < x->rank - 1; d++)
		k *= x->dim[d];
	return k;
}

static LLVMValueRef i64c(cg *c, int64_t v)
{
	return cg_i64(c, v);
}

void cg_slice_axis(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[0];
	int axis = mlc_slice_axis(n, x);
	if (axis == x->rank - 1) {
		cg_slice(c, n);
		return;
	}
	int64_t in = inner_rows(x, axis), size = n->attr.i[1], big = x->dim[axis], m = x->dim[x->rank - 1];
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef o = LLVMBuildSDiv(c->b, r.iv, i64c(c, size * in), "");
	LLVMValueRef rem = LLVMBuildSRem(c->b, r.iv, i64c(c, size * in), "");
	LLVMValueRef src = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, o, i64c(c, big * in), ""),
					   LLVMBuildNSWAdd(c->b, i64c(c, n->attr.i[0] * in), rem, ""), "");
	LLVMValueRef ib = LLVMBuildNSWMul(c->b, src, i64c(c, m), ""), ob = LLVMBuildNSWMul(c->b, r.iv, i64c(c, m), "");
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, m), "j");
	LLVMValueRef v = cg_load(c, c->opnd[1], LLVMBuildNSWAdd(c->b, ib, l.iv, ""));
	cg_store(c, v, c->opnd[0], LLVMBuildNSWAdd(c->b, ob, l.iv, ""));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}

/* (dy, x) -> x's shape: dy inside the window, 0 elsewhere. Out-of-window
 * elements read dy's element 0 (a valid address) and discard it. */
void cg_slice_grad(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[1];
	int axis = mlc_slice_axis(n, x);
	int64_t begin = n->attr.i[0], size = n->attr.i[1], m = x->dim[x->rank - 1];
	bool last = axis == x->rank - 1;
	int64_t in = last ? 1 : inner_rows(x, axis), big = x->dim[axis];
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef ob = LLVMBuildNSWMul(c->b, r.iv, i64c(c, m), "");
	LLVMValueRef row_in = NULL, row_src = NULL;
	if (!last) {
		LLVMValueRef o = LLVMBuildSDiv(c->b, r.iv, i64c(c, big * in), "");
		LLVMValueRef rem = LLVMBuildSRem(c->b, r.iv, i64c(c, big * in), "");
		LLVMValueRef k = LLVMBuildSub(c->b, LLVMBuildSDiv(c->b, rem, i64c(c, in), ""), i64c(c, begin), "");
		LLVMValueRef t = LLVMBuildSRem(c->b, rem, i64c(c, in), "");
		row_in = LLVMBuildICmp(c->b, LLVMIntULT, k, i64c(c, size), "");
		LLVMValueRef s = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, LLVMBuildAdd(c->b, LLVMBuildMul(c->b, o, i64c(c, size), ""), k, ""), i64c(c, in), ""), t, "");
		row_src = LLVMBuildSelect(c->b, row_in, LLVMBuildMul(c->b, s, i64c(c, m), ""), cg_i64(c, 0), "");
	}
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, m), "j");
	LLVMValueRef inside, at;
	if (last) {
		LLVMValueRef k = LLVMBuildSub(c->b, l.iv, i64c(c, begin), "");
		inside = LLVMBuildICmp(c->b, LLVMIntULT, k, i64c(c, size), "");
		at = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, r.iv, i64c(c, size), ""), k, "");
	} else {
		inside = row_in;
		at = LLVMBuildAdd(c->b, row_src, l.iv, "");
	}
	at = LLVMBuildSelect(c->b, inside, at, cg_i64(c, 0), "");
	LLVMValueRef v = sel(c, inside, cg_load(c, c->opnd[1], at), cg_f32(c, 0));
	cg_store(c, v, c->opnd[0], LLVMBuildNSWAdd(c->b, ob, l.iv, ""));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}
