/* kernels_reduce.c — row reductions: softmax and its gradient over the last
 * dimension, and sum_rows (the bias gradient). Sums use reassociable fadds
 * so the loop vectorizer can keep partial sums in vector lanes. */
#include "cg.h"

#include <math.h>

/* Row r of a [rows, m] view: index of element j. */
static LLVMValueRef at(cg *c, LLVMValueRef base, LLVMValueRef j)
{
	return LLVMBuildNSWAdd(c->b, base, j, "");
}

LLVMValueRef cg_row_max(cg *c, LLVMValueRef x, LLVMValueRef base, LLVMValueRef m)
{
	LLVMValueRef acc = cg_alloca_f32(c, -INFINITY);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef v = cg_load(c, x, at(c, base, l.iv));
	LLVMBuildStore(c->b, cg_maxnum(c, LLVMBuildLoad2(c->b, c->t_f32, acc, ""), v), acc);
	cg_loop_end(c, &l);
	return LLVMBuildLoad2(c->b, c->t_f32, acc, "");
}

LLVMValueRef cg_row_expsum(cg *c, LLVMValueRef x, LLVMValueRef y, LLVMValueRef base,
			   LLVMValueRef m, LLVMValueRef mx)
{
	LLVMValueRef acc = cg_alloca_f32(c, 0);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = at(c, base, l.iv);
	LLVMValueRef e = cg_exp(c, LLVMBuildFSub(c->b, cg_load(c, x, i), mx, ""));
	if (y)
		cg_store(c, e, y, i);
	LLVMBuildStore(c->b, cg_fadd_reassoc(c, LLVMBuildLoad2(c->b, c->t_f32, acc, ""), e), acc);
	cg_loop_end(c, &l);
	return LLVMBuildLoad2(c->b, c->t_f32, acc, "");
}

void cg_softmax(cg *c, const mlc_node *n)
{
	LLVMValueRef y = c->opnd[0], x = c->opnd[1], m = cg_cols(c, n);
	cg_loop r;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef mx = cg_row_max(c, x, base, m); /* max-subtracted: exp cannot overflow */
	LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_row_expsum(c, x, y, base, m, mx), "");
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = at(c, base, l.iv);
	cg_store(c, LLVMBuildFMul(c->b, cg_load(c, y, i), inv, ""), y, i);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}

/* dx_j = y_j (dy_j - Σ_k dy_k y_k) */
void cg_softmax_grad(cg *c, const mlc_node *n)
{
	LLVMValueRef dx = c->opnd[0], y = c->opnd[1], dy = c->opnd[2];
	LLVMValueRef m = cg_cols(c, n);
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef acc = cg_alloca_f32(c, 0);
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = at(c, base, l.iv);
	LLVMValueRef p = LLVMBuildFMul(c->b, cg_load(c, dy, i), cg_load(c, y, i), "");
	LLVMBuildStore(c->b, cg_fadd_reassoc(c, LLVMBuildLoad2(c->b, c->t_f32, acc, ""), p), acc);
	cg_loop_end(c, &l);
	LLVMValueRef dot = LLVMBuildLoad2(c->b, c->t_f32, acc, "");
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	i = at(c, base, l.iv);
	LLVMValueRef d = LLVMBuildFSub(c->b, cg_load(c, dy, i), dot, "");
	cg_store(c, LLVMBuildFMul(c->b, cg_load(c, y, i), d, ""), dx, i);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}

/* out[j] = Σ_r x[r, j] for output columns j in [begin, end). Rows outermost,
 * columns innermost: contiguous, vectorizable, and no reassociation needed. */
/* Bias gradients sum tens of thousands of rows (N·H·W for a conv), where float
 * accumulation loses ~1e-4 relative; columns of a known width accumulate in
 * doubles on the stack instead (the loop still vectorizes, and it is memory
 * bound either way). */
enum { SUM_ROWS_MAX_DOUBLE_COLS = 8192 };

void cg_sum_rows(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[0];
	LLVMValueRef out = c->opnd[0], in = c->opnd[1];
	LLVMValueRef m = cg_cols(c, x), rows = cg_rows(c, x);
	int64_t width = x->rank ? x->dim[x->rank - 1] : 1;
	cg_loop r, l;
	if (width > 0 && width <= SUM_ROWS_MAX_DOUBLE_COLS) {
		LLVMTypeRef t_f64 = LLVMDoubleTypeInContext(c->ctx);
		LLVMValueRef acc = cg_entry_alloca(c, LLVMArrayType2(t_f64, (uint64_t)width), "acc");
		cg_loop_begin(c, &l, c->begin, c->end, "j");
		LLVMBuildStore(c->b, LLVMConstReal(t_f64, 0), cg_gep(c, acc, l.iv, t_f64));
		cg_loop_end(c, &l);
		cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
		LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
		cg_loop_begin(c, &l, c->begin, c->end, "j");
		LLVMValueRef v = LLVMBuildFPExt(c->b, cg_load(c, in, at(c, base, l.iv)), t_f64, "");
		LLVMValueRef p = cg_gep(c, acc, l.iv, t_f64);
		LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, t_f64, p, ""), v, ""), p);
		cg_loop_end(c, &l);
		cg_loop_end(c, &r);
		cg_loop_begin(c, &l, c->begin, c->end, "j");
		LLVMValueRef sum = LLVMBuildLoad2(c->b, t_f64, cg_gep(c, acc, l.iv, t_f64), "");
		cg_store(c, LLVMBuildFPTrunc(c->b, sum, c->t_f32, ""), out, l.iv);
		cg_loop_end(c, &l);
		return;
	}
	cg_loop_begin(c, &l, c->begin, c->end, "j");
	cg_store(c, cg_f32(c, 0), out, l.iv);
	cg_loop_end(c, &l);
	cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	cg_loop_begin(c, &l, c->begin, c->end, "j");
	LLVMValueRef v = cg_load(c, in, at(c, base, l.iv));
	cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, out, l.iv), v, ""), out, l.iv);
	cg_loop_end(c, &l);
	cg_loop_end(c, &r);
}
