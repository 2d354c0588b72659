/* kernels_loss.c — the loss kernels (mean-reduced to a scalar, like PyTorch)
 * and the softmax cross-entropy gradient. A loss reduces the whole tensor in
 * one call: its range is [0, 1) and not splittable without partial sums. */
#include "cg.h"

static LLVMValueRef load_acc(cg *c, LLVMValueRef acc)
{
	return LLVMBuildLoad2(c->b, c->t_f32, acc, "");
}

static void accumulate(cg *c, LLVMValueRef acc, LLVMValueRef v)
{
	LLVMBuildStore(c->b, cg_fadd_reassoc(c, load_acc(c, acc), v), acc);
}

/* mean((p - t)^2) */
void cg_mse(cg *c, const mlc_node *n)
{
	const mlc_node *p = n->src[0];
	LLVMValueRef count = cg_numel(c, p), acc = cg_alloca_f32(c, 0);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), count, "i");
	LLVMValueRef pv = cg_load(c, c->opnd[1], l.iv), tv = cg_load(c, c->opnd[2], l.iv);
	LLVMValueRef d = LLVMBuildFSub(c->b, pv, tv, "");
	accumulate(c, acc, LLVMBuildFMul(c->b, d, d, ""));
	cg_loop_end(c, &l);
	LLVMValueRef mean = LLVMBuildFDiv(c->b, load_acc(c, acc), cg_sitofp(c, count), "");
	cg_store(c, mean, c->opnd[0], cg_i64(c, 0));
}

/* mean(-(t log p + (1 - t) log(1 - p))), each log clamped at -100 as in
 * PyTorch so that saturated probabilities give a finite loss. */
void cg_bce(cg *c, const mlc_node *n)
{
	const mlc_node *p = n->src[0];
	LLVMValueRef count = cg_numel(c, p), acc = cg_alloca_f32(c, 0);
	LLVMValueRef one = cg_f32(c, 1), floor = cg_f32(c, -100);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), count, "i");
	LLVMValueRef pv = cg_load(c, c->opnd[1], l.iv), tv = cg_load(c, c->opnd[2], l.iv);
	LLVMValueRef lp = cg_maxnum(c, cg_log(c, pv), floor);
	LLVMValueRef lq = cg_maxnum(c, cg_log(c, LLVMBuildFSub(c->b, one, pv, "")), floor);
	LLVMValueRef term = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, tv, lp, ""),
					  LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, one, tv, ""), lq, ""), "");
	accumulate(c, acc, term);
	cg_loop_end(c, &l);
	LLVMValueRef mean = LLVMBuildFDiv(c->b, load_acc(c, acc), cg_sitofp(c, count), "");
	cg_store(c, LLVMBuildFNeg(c->b, mean, ""), c->opnd[0], cg_i64(c, 0));
}

/* The label of row r, clamped into [0, classes): the runtime validates
 * labels, but a kernel must never index outside its row regardless. */
static LLVMValueRef label(cg *c, LLVMValueRef labels, LLVMValueRef r, LLVMValueRef classes)
{
	LLVMValueRef y = cg_load_i32(c, labels, r);
	LLVMValueRef top = LLVMBuildSub(c->b, classes, cg_i64(c, 1), "");
	y = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, y, top, ""), top, y, "");
	LLVMValueRef neg = LLVMBuildICmp(c->b, LLVMIntSLT, y, cg_i64(c, 0), "");
	return LLVMBuildSelect(c->b, neg, cg_i64(c, 0), y, "");
}

/* mean over rows of logsumexp(z_r) - z_r[y_r] */
void cg_softmax_xent(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef rows = cg_dim(c, z, 0), m = cg_dim(c, z, 1);
	LLVMValueRef total = cg_alloca_f32(c, 0);
	cg_loop r;
	cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef mx = cg_row_max(c, c->opnd[1], base, m);
	LLVMValueRef sum = cg_row_expsum(c, c->opnd[1], NULL, base, m, mx);
	LLVMValueRef lse = LLVMBuildFAdd(c->b, mx, cg_log(c, sum), "");
	LLVMValueRef y = label(c, c->opnd[2], r.iv, m);
	LLVMValueRef zy = cg_load(c, c->opnd[1], LLVMBuildNSWAdd(c->b, base, y, ""));
	accumulate(c, total, LLVMBuildFSub(c->b, lse, zy, ""));
	cg_loop_end_rows(c, &r);
	LLVMValueRef mean = LLVMBuildFDiv(c->b, load_acc(c, total), cg_sitofp(c, rows), "");
	cg_store(c, mean, c->opnd[0], cg_i64(c, 0));
}

/* dz_r = dl (softmax(z_r) - onehot(y_r)) / rows, for rows r in [begin, end) */
void cg_softmax_xent_grad(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef dz = c->opnd[0], zp = c->opnd[1];
	LLVMValueRef m = cg_dim(c, z, 1);
	LLVMValueRef dl = cg_load(c, c->opnd[3], cg_i64(c, 0));
	LLVMValueRef scale = LLVMBuildFDiv(c->b, dl, cg_sitofp(c, cg_dim(c, z, 0)), "");
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef y = label(c, c->opnd[2], r.iv, m);
	LLVMValueRef mx = cg_row_max(c, zp, base, m);
	/* the exps go to dz first, so each is computed once */
	LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_row_expsum(c, zp, dz, base, m, mx), "");
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = LLVMBuildNSWAdd(c->b, base, l.iv, "");
	LLVMValueRef p = LLVMBuildFMul(c->b, cg_load(c, dz, i), inv, "");
	LLVMValueRef hot = LLVMBuildICmp(c->b, LLVMIntEQ, l.iv, y, "");
	p = LLVMBuildFSub(c->b, p, LLVMBuildSelect(c->b, hot, cg_f32(c, 1), cg_f32(c, 0), ""), "");
	cg_store(c, LLVMBuildFMul(c->b, p, scale, ""), dz, i);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}

/* ---- hinge, mae, bce_logits, categorical_xent, kl_div ---- */

static LLVMValueRef fabs_f32(cg *c, LLVMValueRef x)
{
	return cg_intrin(c, "llvm.fabs", c->t_f32, &x, 1);
}

static LLVMValueRef minnum(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef args[2] = {a, b};
	return cg_intrin(c, "llvm.minnum", c->t_f32, args, 2);
}

static LLVMValueRef sel(cg *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, cond, a, b, "");
}

/* The loss mean: total / the count, stored as the scalar result. */
static void store_mean(cg *c, LLVMValueRef total, LLVMValueRef count)
{
	LLVMValueRef mean = LLVMBuildFDiv(c->b, load_acc(c, total), cg_sitofp(c, count), "");
	cg_store(c, mean, c->opnd[0], cg_i64(c, 0));
}

/* mean over rows of Σ_{j≠y} max(0, s_j − s_y + margin) (CS231n's multiclass SVM) */
void cg_hinge(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef rows = cg_dim(c, z, 0), m = cg_dim(c, z, 1);
	LLVMValueRef total = cg_alloca_f32(c, 0), margin = cg_f32(c, n->attr.f[0]);
	cg_loop r, l;
	cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef y = label(c, c->opnd[2], r.iv, m);
	LLVMValueRef sy = cg_load(c, c->opnd[1], LLVMBuildNSWAdd(c->b, base, y, ""));
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef s = cg_load(c, c->opnd[1], LLVMBuildNSWAdd(c->b, base, l.iv, ""));
	LLVMValueRef v = cg_maxnum(c, LLVMBuildFAdd(c->b, LLVMBuildFSub(c->b, s, sy, ""), margin, ""), cg_f32(c, 0));
	LLVMValueRef hot = LLVMBuildICmp(c->b, LLVMIntEQ, l.iv, y, "");
	accumulate(c, total, sel(c, hot, cg_f32(c, 0), v));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
	store_mean(c, total, rows);
}

/* ds_j = dl/rows · [s_j − s_y + margin > 0] for j ≠ y, ds_y = −dl/rows · (the
 * count of those j); rows [begin, end). At exactly 0 the subgradient is 0. */
void cg_hinge_grad(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef ds = c->opnd[0], zp = c->opnd[1], m = cg_dim(c, z, 1);
	LLVMValueRef dl = cg_load(c, c->opnd[3], cg_i64(c, 0));
	LLVMValueRef scale = LLVMBuildFDiv(c->b, dl, cg_sitofp(c, cg_dim(c, z, 0)), "");
	LLVMValueRef margin = cg_f32(c, n->attr.f[0]), zero = cg_f32(c, 0);
	LLVMValueRef count = cg_alloca_f32(c, 0);
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef y = label(c, c->opnd[2], r.iv, m);
	LLVMValueRef yi = LLVMBuildNSWAdd(c->b, base, y, "");
	LLVMValueRef sy = cg_load(c, zp, yi);
	LLVMBuildStore(c->b, zero, count);
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = LLVMBuildNSWAdd(c->b, base, l.iv, "");
	LLVMValueRef v = LLVMBuildFAdd(c->b, LLVMBuildFSub(c->b, cg_load(c, zp, i), sy, ""), margin, "");
	LLVMValueRef on = LLVMBuildAnd(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, zero, ""),
				       LLVMBuildICmp(c->b, LLVMIntNE, l.iv, y, ""), "");
	LLVMValueRef g = sel(c, on, cg_f32(c, 1), zero);
	accumulate(c, count, g);
	cg_store(c, LLVMBuildFMul(c->b, g, scale, ""), ds, i);
	cg_loop_end(c, &l);
	cg_store(c, LLVMBuildFMul(c->b, LLVMBuildFNeg(c->b, load_acc(c, count), ""), scale, ""), ds, yi);
	cg_loop_end_rows(c, &r);
}

/* mean(|p − t|) */
void cg_mae(cg *c, const mlc_node *n)
{
	LLVMValueRef count = cg_numel(c, n->src[0]), acc = cg_alloca_f32(c, 0);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), count, "i");
	LLVMValueRef pv = cg_load(c, c->opnd[1], l.iv), tv = cg_load(c, c->opnd[2], l.iv);
	accumulate(c, acc, fabs_f32(c, LLVMBuildFSub(c->b, pv, tv, "")));
	cg_loop_end(c, &l);
	store_mean(c, acc, count);
}

/* log1p(e) for e ≥ 0 without a libm call: log(u)·e/(u − 1) with u = 1 + e
 * cancels the rounding of u (Goldberg's trick); e itself when u rounds to 1.
 * No fast-math flag may fold (1 + e) − 1 into e here. */
static LLVMValueRef log1p_f32(cg *c, LLVMValueRef e)
{
	LLVMValueRef one = cg_f32(c, 1), u = LLVMBuildFAdd(c->b, one, e, "");
	LLVMValueRef um1 = LLVMBuildFSub(c->b, u, one, "");
	LLVMValueRef r = LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, cg_log(c, u), e, ""), um1, "");
	return sel(c, LLVMBuildFCmp(c->b, LLVMRealOEQ, um1, cg_f32(c, 0), ""), e, r);
}

/* mean(max(z, 0) − z·t + log1p(exp(−|z|))): never exponentiates a positive
 * number, and stays accurate when the loss is tiny. */
void cg_bce_logits(cg *c, const mlc_node *n)
{
	LLVMValueRef count = cg_numel(c, n->src[0]), acc = cg_alloca_f32(c, 0);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), count, "i");
	LLVMValueRef z = cg_load(c, c->opnd[1], l.iv), t = cg_load(c, c->opnd[2], l.iv);
	LLVMValueRef e = cg_exp(c, LLVMBuildFNeg(c->b, fabs_f32(c, z), ""));
	LLVMValueRef sp = log1p_f32(c, e);
	LLVMValueRef term = LLVMBuildFSub(c->b, cg_maxnum(c, z, cg_f32(c, 0)), LLVMBuildFMul(c->b, z, t, ""), "");
	accumulate(c, acc, LLVMBuildFAdd(c->b, term, sp, ""));
	cg_loop_end(c, &l);
	store_mean(c, acc, count);
}

/* The probability of the label, clamped into [1e-7, 1]. */
static const double p_floor = 1e-7;

/* mean over rows of −log(clamp(p_y, 1e-7, 1)) */
void cg_categorical_xent(cg *c, const mlc_node *n)
{
	const mlc_node *p = n->src[0];
	LLVMValueRef rows = cg_dim(c, p, 0), m = cg_dim(c, p, 1);
	LLVMValueRef total = cg_alloca_f32(c, 0);
	cg_loop r;
	cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
	LLVMValueRef y = label(c, c->opnd[2], r.iv, m);
	LLVMValueRef py = cg_load(c, c->opnd[1], LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r.iv, m, ""), y, ""));
	py = minnum(c, cg_maxnum(c, py, cg_f32(c, p_floor)), cg_f32(c, 1));
	accumulate(c, total, LLVMBuildFNeg(c->b, cg_log(c, py), ""));
	cg_loop_end(c, &r);
	store_mean(c, total, rows);
}

/* dp_y = −dl / (rows · p_y) where the clamp passes p_y through (1e-7 ≤ p_y ≤ 1,
 * PyTorch's clamp gradient), 0 elsewhere; rows [begin, end). */
void cg_categorical_xent_grad(cg *c, const mlc_node *n)
{
	const mlc_node *p = n->src[0];
	LLVMValueRef dp = c->opnd[0], m = cg_dim(c, p, 1);
	LLVMValueRef dl = cg_load(c, c->opnd[3], cg_i64(c, 0));
	LLVMValueRef scale = LLVMBuildFDiv(c->b, dl, cg_sitofp(c, cg_dim(c, p, 0)), "");
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	cg_store(c, cg_f32(c, 0), dp, LLVMBuildNSWAdd(c->b, base, l.iv, ""));
	cg_loop_end(c, &l);
	LLVMValueRef yi = LLVMBuildNSWAdd(c->b, base, label(c, c->opnd[2], r.iv, m), "");
	LLVMValueRef py = cg_load(c, c->opnd[1], yi);
	LLVMValueRef in = LLVMBuildAnd(c->b, LLVMBuildFCmp(c->b, LLVMRealOGE, py, cg_f32(c, p_floor), ""),
				       LLVMBuildFCmp(c->b, LLVMRealOLE, py, cg_f32(c, 1), ""), "");
	LLVMValueRef g = LLVMBuildFDiv(c->b, LLVMBuildFNeg(c->b, scale, ""), py, "");
	cg_store(c, sel(c, in, g, cg_f32(c, 0)), dp, yi);
	cg_loop_end_rows(c, &r);
}

/* mean over rows of Σ_j t_j (log t_j − log_softmax(z)_j), with 0·log 0 = 0
 * (PyTorch's kl_div(log_softmax(z), t, reduction='batchmean')) */
void cg_kl_div(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef rows = cg_dim(c, z, 0), m = cg_dim(c, z, 1);
	LLVMValueRef total = cg_alloca_f32(c, 0), zero = cg_f32(c, 0);
	cg_loop r, l;
	cg_loop_begin(c, &r, cg_i64(c, 0), rows, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMValueRef mx = cg_row_max(c, c->opnd[1], base, m);
	LLVMValueRef lse = LLVMBuildFAdd(c->b, mx, cg_log(c, cg_row_expsum(c, c->opnd[1], NULL, base, m, mx)), "");
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = LLVMBuildNSWAdd(c->b, base, l.iv, "");
	LLVMValueRef t = cg_load(c, c->opnd[2], i);
	LLVMValueRef logp = LLVMBuildFSub(c->b, cg_load(c, c->opnd[1], i), lse, "");
	/* log of max(t, tiny): the select drops the term at t = 0 without a NaN */
	LLVMValueRef tlogt = LLVMBuildFMul(c->b, t, cg_log(c, cg_maxnum(c, t, cg_f32(c, 1e-30))), "");
	tlogt = sel(c, LLVMBuildFCmp(c->b, LLVMRealOGT, t, zero, ""), tlogt, zero);
	accumulate(c, total, LLVMBuildFSub(c->b, tlogt, LLVMBuildFMul(c->b, t, logp, ""), ""));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
	store_mean(c, total, rows);
}

/* dz_r = dl/rows · (softmax(z_r) · Σ_j t_rj − t_r): softmax − t for targets
 * that sum to 1; rows [begin, end). */
void cg_kl_div_grad(cg *c, const mlc_node *n)
{
	const mlc_node *z = n->src[0];
	LLVMValueRef dz = c->opnd[0], zp = c->opnd[1], tp = c->opnd[2], m = cg_dim(c, z, 1);
	LLVMValueRef dl = cg_load(c, c->opnd[3], cg_i64(c, 0));
	LLVMValueRef scale = LLVMBuildFDiv(c->b, dl, cg_sitofp(c, cg_dim(c, z, 0)), "");
	LLVMValueRef tsum = cg_alloca_f32(c, 0);
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, r.iv, m, "");
	LLVMBuildStore(c->b, cg_f32(c, 0), tsum);
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	accumulate(c, tsum, cg_load(c, tp, LLVMBuildNSWAdd(c->b, base, l.iv, "")));
	cg_loop_end(c, &l);
	LLVMValueRef mx = cg_row_max(c, zp, base, m);
	LLVMValueRef inv = LLVMBuildFDiv(c->b, load_acc(c, tsum), cg_row_expsum(c, zp, dz, base, m, mx), "");
	cg_loop_begin(c, &l, cg_i64(c, 0), m, "j");
	LLVMValueRef i = LLVMBuildNSWAdd(c->b, base, l.iv, "");
	LLVMValueRef g = LLVMBuildFSub(c->b, LLVMBuildFMul(c->b, cg_load(c, dz, i), inv, ""), cg_load(c, tp, i), "");
	cg_store(c, LLVMBuildFMul(c->b, g, scale, ""), dz, i);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}
