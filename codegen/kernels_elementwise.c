/* kernels_elementwise.c — the generic elementwise loop driver and the scalar
 * emitter of every elementwise op (activations, their gradients, adds, loss
 * gradients, const fills). A scalar emitter only maps loaded operand values
 * to a result, so a fusion pass can chain several inside one loop. */
#include "cg.h"

/* How a source is indexed relative to the output element. */
typedef enum {
	ACC_FULL,   /* same shape: element i */
	ACC_ROW,    /* [M] against an output [..., M]: column of element i */
	ACC_SCALAR, /* rank 0 (a loss seed): element 0 */
	ACC_COL,    /* [..., 1] against [..., M]: row of element i (ir.h mlc_bcast) */
} access;

static access classify(const mlc_node *out, const mlc_node *s)
{
	switch (mlc_bcast_of(out, s)) {
	case MLC_BCAST_NONE: return ACC_FULL;
	case MLC_BCAST_SCALAR: return ACC_SCALAR;
	case MLC_BCAST_ROW: return ACC_ROW;
	case MLC_BCAST_COL: return ACC_COL;
	case MLC_BCAST_BAD: break; /* the shape rules admit none other */
	}
	MLC_UNREACHABLE();
}

cg_range cg_range_of(const mlc_node *n)
{
	cg_range r = cg_hook[n->op].range;
	if (r != CG_RANGE_ELEMWISE)
		return r;
	for (int k = 0; k < n->nsrc; k++)
		if (classify(n, n->src[k]) == ACC_ROW || classify(n, n->src[k]) == ACC_COL)
			return CG_RANGE_ROWS;
	return CG_RANGE_ELEMS;
}

/* out[i] = f(src[i]...) over elements [begin, end) — one flat loop that
 * vectorizes well even for narrow rows, and whose code does not depend on
 * the shape, so equal kernels of different layers merge (cg_optimize).
 * With a row-broadcast source the range is rows [begin, end) of the output
 * viewed as [rows, M], and the inner loop runs over a row. */
void cg_elementwise(cg *c, const mlc_node *n)
{
	cg_scalar_fn scalar = cg_hook[n->op].scalar;
	MLC_ASSERT(scalar);
	access acc[MLC_MAX_SRC];
	LLVMValueRef in[MLC_MAX_SRC];
	for (int k = 0; k < n->nsrc; k++) {
		acc[k] = classify(n, n->src[k]);
		if (acc[k] == ACC_SCALAR) /* loop-invariant: load once */
			in[k] = cg_load(c, c->opnd[k + 1], cg_i64(c, 0));
	}
	bool rowwise = cg_range_of(n) == CG_RANGE_ROWS;
	LLVMValueRef out = c->opnd[0];
	cg_loop rows = {0}, cols;
	LLVMValueRef i, j;
	if (rowwise) {
		LLVMValueRef m = cg_cols(c, n);
		cg_loop_begin(c, &rows, c->begin, c->end, "r");
		LLVMValueRef base = LLVMBuildNSWMul(c->b, rows.iv, m, "");
		cg_loop_begin(c, &cols, cg_i64(c, 0), m, "j");
		j = cols.iv;
		i = LLVMBuildNSWAdd(c->b, base, j, "");
	} else {
		cg_loop_begin(c, &cols, c->begin, c->end, "i");
		i = j = cols.iv;
	}
	for (int k = 0; k < n->nsrc; k++)
		if (acc[k] != ACC_SCALAR)
			in[k] = cg_load(c, c->opnd[k + 1], acc[k] == ACC_FULL ? i : acc[k] == ACC_COL ? rows.iv : j);
	c->elem = i;
	cg_store(c, scalar(c, n, in), out, i);
	cg_loop_end(c, &cols);
	if (rowwise)
		cg_loop_end_rows(c, &rows);
}

static LLVMValueRef gt0(cg *c, LLVMValueRef x)
{
	return LLVMBuildFCmp(c->b, LLVMRealOGT, x, cg_f32(c, 0), "");
}

LLVMValueRef cg_sc_const(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return cg_f32(c, n->attr.f[0]);
}

LLVMValueRef cg_sc_add(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFAdd(c->b, in[0], in[1], "");
}

LLVMValueRef cg_sc_relu(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* x < 0 ? 0 : x keeps NaN (like PyTorch) and matches x86 maxps(0, x). */
	LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, in[0], cg_f32(c, 0), "");
	return LLVMBuildSelect(c->b, neg, cg_f32(c, 0), in[0], "");
}

LLVMValueRef cg_sc_leaky_relu(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef scaled = LLVMBuildFMul(c->b, in[0], cg_f32(c, n->attr.f[0]), "");
	return LLVMBuildSelect(c->b, gt0(c, in[0]), in[0], scaled, "");
}

LLVMValueRef cg_sc_scale(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildFMul(c->b, in[0], cg_f32(c, n->attr.f[0]), "");
}

LLVMValueRef cg_sc_sigmoid(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef t = LLVMBuildFMul(c->b, in[0], cg_f32(c, -n->attr.f[0]), "");
	LLVMValueRef den = LLVMBuildFAdd(c->b, cg_f32(c, 1), cg_exp(c, t), "");
	return LLVMBuildFDiv(c->b, cg_f32(c, 1), den, "");
}

LLVMValueRef cg_sc_tanh(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return cg_tanh(c, in[0]);
}

LLVMValueRef cg_sc_step(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildSelect(c->b, gt0(c, in[0]), cg_f32(c, 1), cg_f32(c, 0), "");
}

LLVMValueRef cg_sc_relu_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return LLVMBuildSelect(c->b, gt0(c, in[0]), in[1], cg_f32(c, 0), "");
}

LLVMValueRef cg_sc_leaky_relu_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef scaled = LLVMBuildFMul(c->b, in[1], cg_f32(c, n->attr.f[0]), "");
	return LLVMBuildSelect(c->b, gt0(c, in[0]), in[1], scaled, "");
}

LLVMValueRef cg_sc_sigmoid_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* dy * slope * y * (1 - y), from the forward output y */
	LLVMValueRef t = LLVMBuildFMul(c->b, in[1], cg_f32(c, n->attr.f[0]), "");
	t = LLVMBuildFMul(c->b, t, in[0], "");
	return LLVMBuildFMul(c->b, t, LLVMBuildFSub(c->b, cg_f32(c, 1), in[0], ""), "");
}

LLVMValueRef cg_sc_tanh_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef y2 = LLVMBuildFMul(c->b, in[0], in[0], "");
	return LLVMBuildFMul(c->b, in[1], LLVMBuildFSub(c->b, cg_f32(c, 1), y2, ""), "");
}

LLVMValueRef cg_sc_step_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* straight-through estimator, or no gradient at all */
	return n->attr.i[0] ? in[1] : cg_f32(c, 0);
}

/* dl / count, the mean reduction's share of the loss seed; loop-invariant,
 * so LICM hoists it out of the element loop. */
static LLVMValueRef seed_per_elem(cg *c, const mlc_node *n, LLVMValueRef dl)
{
	return LLVMBuildFDiv(c->b, dl, cg_sitofp(c, cg_numel(c, n)), "");
}

LLVMValueRef cg_sc_mse_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef diff = LLVMBuildFSub(c->b, in[0], in[1], "");
	LLVMValueRef scale = LLVMBuildFMul(c->b, seed_per_elem(c, n, in[2]), cg_f32(c, 2), "");
	return LLVMBuildFMul(c->b, diff, scale, "");
}

LLVMValueRef cg_sc_bce_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* (p - t) / max(p (1 - p), 1e-12): the clamp keeps saturated outputs finite */
	LLVMValueRef p = in[0];
	LLVMValueRef var = LLVMBuildFMul(c->b, p, LLVMBuildFSub(c->b, cg_f32(c, 1), p, ""), "");
	var = cg_maxnum(c, var, cg_f32(c, 1e-12));
	LLVMValueRef g = LLVMBuildFDiv(c->b, LLVMBuildFSub(c->b, p, in[1], ""), var, "");
	return LLVMBuildFMul(c->b, g, seed_per_elem(c, n, in[2]), "");
}

LLVMValueRef cg_sc_mae_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* sign(p − t), 0 at 0 as in PyTorch */
	LLVMValueRef d = LLVMBuildFSub(c->b, in[0], in[1], ""), zero = cg_f32(c, 0);
	LLVMValueRef s = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, d, zero, ""), cg_f32(c, -1), zero, "");
	s = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, d, zero, ""), cg_f32(c, 1), s, "");
	return LLVMBuildFMul(c->b, s, seed_per_elem(c, n, in[2]), "");
}

LLVMValueRef cg_sc_bce_logits_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	/* sigmoid(z) − t; exp(−z) overflowing to inf still gives sigmoid 0 */
	LLVMValueRef den = LLVMBuildFAdd(c->b, cg_f32(c, 1), cg_exp(c, LLVMBuildFNeg(c->b, in[0], "")), "");
	LLVMValueRef s = LLVMBuildFDiv(c->b, cg_f32(c, 1), den, "");
	return LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, s, in[1], ""), seed_per_elem(c, n, in[2]), "");
}
