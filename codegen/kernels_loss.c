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
