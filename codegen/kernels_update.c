/* kernels_update.c — optimizer updates, applied in place to the parameter
 * arena over an element range [begin, end); gradient clipping; the L1/L2
 * penalties and their gradients. */
#include "cg.h"

/* SGD with PyTorch's momentum/Nesterov semantics and weight decay wd:
 *   decoupled: p *= 1 - lr wd      else: g += wd p
 *   μ ≠ 0: v = μ v + g;  d = nesterov ? g + μ v : v      μ = 0: d = g
 *   p -= lr d,  lr = hyper[0] * lr_mult
 * The SGD node is planned at its parameter's offset, so operand 0 (the
 * output) and operand 1 (the parameter) are one pointer. */
void cg_sgd(cg *c, const mlc_node *n)
{
	double mu = n->attr.f[0], wd = n->attr.f[2];
	bool nesterov = n->attr.i[0] != 0, decoupled = n->attr.i[1] != 0;
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], v = c->opnd[3];
	LLVMValueRef lr = cg_load(c, c->hyper, cg_i64(c, 0));
	lr = LLVMBuildFMul(c->b, lr, cg_f32(c, n->attr.f[1]), "");
	LLVMValueRef shrink = NULL;
	if (decoupled && wd != 0)
		shrink = LLVMBuildFSub(c->b, cg_f32(c, 1), LLVMBuildFMul(c->b, lr, cg_f32(c, wd), ""), "");
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef gv = cg_load(c, g, l.iv), pv = cg_load(c, p, l.iv);
	if (shrink)
		pv = LLVMBuildFMul(c->b, pv, shrink, "");
	else if (wd != 0)
		gv = LLVMBuildFAdd(c->b, gv, LLVMBuildFMul(c->b, pv, cg_f32(c, wd), ""), "");
	LLVMValueRef d = gv;
	if (mu != 0) {
		LLVMValueRef muv = cg_f32(c, mu);
		LLVMValueRef vel = LLVMBuildFMul(c->b, muv, cg_load(c, v, l.iv), "");
		vel = LLVMBuildFAdd(c->b, vel, gv, "");
		cg_store(c, vel, v, l.iv);
		d = nesterov ? LLVMBuildFAdd(c->b, gv, LLVMBuildFMul(c->b, muv, vel, ""), "") : vel;
	}
	pv = LLVMBuildFSub(c->b, pv, LLVMBuildFMul(c->b, lr, d, ""), "");
	cg_store(c, pv, p, l.iv);
	cg_loop_end(c, &l);
}

/* The update ops below follow PyTorch 1.13's single-tensor loops
 * (docs/spec.md, "optimizer"), in f32 with the same operation order. */

static LLVMValueRef fmul(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(c->b, a, b, ""); }
static LLVMValueRef fadd(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(c->b, a, b, ""); }
static LLVMValueRef fsub(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(c->b, a, b, ""); }
static LLVMValueRef fdiv(cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(c->b, a, b, ""); }
static LLVMValueRef fsqrt(cg *c, LLVMValueRef x) { return cg_intrin(c, "llvm.sqrt", c->t_f32, &x, 1); }

/* hyper[0] times the update's lr_mult (a layer's; 1 by default) */
static LLVMValueRef hyper_lr(cg *c, const mlc_node *n)
{
	LLVMValueRef lr = cg_load(c, c->hyper, cg_i64(c, 0));
	double mult = n->attr.f[mlc_op_attr_slot(n->op, "lr_mult")];
	return mult == 1 ? lr : fmul(c, lr, cg_f32(c, mult));
}

/* g + wd p (PyTorch's coupled L2 weight decay) */
static LLVMValueRef decayed(cg *c, LLVMValueRef g, LLVMValueRef p, double wd)
{
	return wd != 0 ? fadd(c, g, fmul(c, p, cg_f32(c, wd))) : g;
}

/* β old + (1-β) x, the running averages of Adam, RMSProp and Adadelta */
static LLVMValueRef ema(cg *c, LLVMValueRef old, LLVMValueRef x, double beta)
{
	return fadd(c, fmul(c, old, cg_f32(c, beta)), fmul(c, x, cg_f32(c, 1 - beta)));
}

/* 1 - b^t in double, t = hyper step + 1, as an f32 */
static LLVMValueRef bias_correction(cg *c, LLVMValueRef t, double b)
{
	LLVMTypeRef f64 = LLVMDoubleTypeInContext(LLVMGetTypeContext(c->t_f32));
	LLVMValueRef args[2] = {LLVMConstReal(f64, b), t};
	LLVMValueRef pw = cg_intrin(c, "llvm.pow", f64, args, 2);
	return LLVMBuildFPTrunc(c->b, LLVMBuildFSub(c->b, LLVMConstReal(f64, 1), pw, ""), c->t_f32, "");
}

/* Adam / AdamW, t = step + 1:
 *   adamw: p *= 1 - lr wd      adam: g += wd p
 *   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²
 *   p -= lr/(1-β1^t) · m / (√v / √(1-β2^t) + eps) */
void cg_adam(cg *c, const mlc_node *n)
{
	bool decoupled = n->op == OP_ADAMW;
	double b1 = n->attr.f[0], b2 = n->attr.f[1], eps = n->attr.f[2], wd = n->attr.f[3];
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], m = c->opnd[3], v = c->opnd[4];
	LLVMValueRef lr = hyper_lr(c, n);
	LLVMTypeRef f64 = LLVMDoubleTypeInContext(LLVMGetTypeContext(c->t_f32));
	LLVMValueRef step = LLVMBuildLoad2(c->b, LLVMInt32TypeInContext(LLVMGetTypeContext(c->t_f32)),
					   cg_gep(c, c->hyper, cg_i64(c, MLC_HYPER_STEP), c->t_f32), "step");
	LLVMValueRef t = LLVMBuildFAdd(c->b, LLVMBuildUIToFP(c->b, step, f64, ""), LLVMConstReal(f64, 1), "t");
	LLVMValueRef step_size = fdiv(c, lr, bias_correction(c, t, b1));
	LLVMValueRef bc2_sqrt = fsqrt(c, bias_correction(c, t, b2));
	LLVMValueRef shrink = decoupled ? fsub(c, cg_f32(c, 1), fmul(c, lr, cg_f32(c, wd))) : NULL;
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef pv = cg_load(c, p, l.iv), gv = cg_load(c, g, l.iv);
	if (decoupled)
		pv = fmul(c, pv, shrink);
	else
		gv = decayed(c, gv, pv, wd);
	LLVMValueRef mv = ema(c, cg_load(c, m, l.iv), gv, b1);
	LLVMValueRef vv = ema(c, cg_load(c, v, l.iv), fmul(c, gv, gv), b2);
	cg_store(c, mv, m, l.iv);
	cg_store(c, vv, v, l.iv);
	LLVMValueRef denom = fadd(c, fdiv(c, fsqrt(c, vv), bc2_sqrt), cg_f32(c, eps));
	cg_store(c, fsub(c, pv, fmul(c, step_size, fdiv(c, mv, denom))), p, l.iv);
	cg_loop_end(c, &l);
}

/* RMSProp: g += wd p;  s = α s + (1-α) g²;  a = √s + eps
 *   μ ≠ 0: b = μ b + g/a;  p -= lr b      μ = 0: p -= lr g/a */
void cg_rmsprop(cg *c, const mlc_node *n)
{
	double alpha = n->attr.f[0], eps = n->attr.f[1], mu = n->attr.f[2], wd = n->attr.f[3];
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], s = c->opnd[3], b = c->opnd[4];
	LLVMValueRef lr = hyper_lr(c, n);
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef pv = cg_load(c, p, l.iv), gv = decayed(c, cg_load(c, g, l.iv), pv, wd);
	LLVMValueRef sv = ema(c, cg_load(c, s, l.iv), fmul(c, gv, gv), alpha);
	cg_store(c, sv, s, l.iv);
	LLVMValueRef d = fdiv(c, gv, fadd(c, fsqrt(c, sv), cg_f32(c, eps)));
	if (mu != 0) {
		d = fadd(c, fmul(c, cg_load(c, b, l.iv), cg_f32(c, mu)), d);
		cg_store(c, d, b, l.iv);
	}
	cg_store(c, fsub(c, pv, fmul(c, lr, d)), p, l.iv);
	cg_loop_end(c, &l);
}

/* Adagrad: g += wd p;  S += g²;  p -= lr g / (√(S + S0) + eps). The state
 * holds S = Σ g², the sum past initial_accumulator S0, so it starts at 0. */
void cg_adagrad(cg *c, const mlc_node *n)
{
	double eps = n->attr.f[0], s0 = n->attr.f[1], wd = n->attr.f[2];
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], s = c->opnd[3];
	LLVMValueRef lr = hyper_lr(c, n);
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef pv = cg_load(c, p, l.iv), gv = decayed(c, cg_load(c, g, l.iv), pv, wd);
	LLVMValueRef sv = fadd(c, cg_load(c, s, l.iv), fmul(c, gv, gv));
	cg_store(c, sv, s, l.iv);
	if (s0 != 0)
		sv = fadd(c, sv, cg_f32(c, s0));
	LLVMValueRef d = fdiv(c, gv, fadd(c, fsqrt(c, sv), cg_f32(c, eps)));
	cg_store(c, fsub(c, pv, fmul(c, lr, d)), p, l.iv);
	cg_loop_end(c, &l);
}

/* Adadelta: g += wd p;  s = ρ s + (1-ρ) g²;  d = √(a + eps) / √(s + eps) · g;
 *   a = ρ a + (1-ρ) d²;  p -= lr d */
void cg_adadelta(cg *c, const mlc_node *n)
{
	double rho = n->attr.f[0], eps = n->attr.f[1], wd = n->attr.f[2];
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], s = c->opnd[3], a = c->opnd[4];
	LLVMValueRef lr = hyper_lr(c, n), e = cg_f32(c, eps);
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef pv = cg_load(c, p, l.iv), gv = decayed(c, cg_load(c, g, l.iv), pv, wd);
	LLVMValueRef sv = ema(c, cg_load(c, s, l.iv), fmul(c, gv, gv), rho);
	cg_store(c, sv, s, l.iv);
	LLVMValueRef av = cg_load(c, a, l.iv);
	LLVMValueRef d = fmul(c, fdiv(c, fsqrt(c, fadd(c, av, e)), fsqrt(c, fadd(c, sv, e))), gv);
	av = ema(c, av, fmul(c, d, d), rho);
	cg_store(c, av, a, l.iv);
	cg_store(c, fsub(c, pv, fmul(c, lr, d)), p, l.iv);
	cg_loop_end(c, &l);
}

/* ---- gradient clipping (docs/spec.md, "clip_norm", "clip_value") ---- */

static LLVMTypeRef f64_type(cg *c) { return LLVMDoubleTypeInContext(LLVMGetTypeContext(c->t_f32)); }

/* sumsq: scale·Σ x², abs_sum: scale·Σ |x|, over the whole tensor,
 * accumulated in double (reassociable, so it vectorizes), stored as an f32
 * scalar. */
void cg_sumsq(cg *c, const mlc_node *n)
{
	LLVMTypeRef f64 = f64_type(c);
	LLVMValueRef count = cg_numel(c, n->src[0]);
	LLVMValueRef acc = cg_entry_alloca(c, f64, "acc");
	LLVMBuildStore(c->b, LLVMConstReal(f64, 0), acc);
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), count, "i");
	LLVMValueRef x = LLVMBuildFPExt(c->b, cg_load(c, c->opnd[1], l.iv), f64, "");
	x = n->op == OP_ABS_SUM ? cg_intrin(c, "llvm.fabs", f64, &x, 1) : LLVMBuildFMul(c->b, x, x, "");
	LLVMBuildStore(c->b, cg_fadd_reassoc(c, LLVMBuildLoad2(c->b, f64, acc, ""), x), acc);
	cg_loop_end(c, &l);
	LLVMValueRef total = LLVMBuildLoad2(c->b, f64, acc, "");
	if (n->attr.f[0] != 1)
		total = LLVMBuildFMul(c->b, total, LLVMConstReal(f64, n->attr.f[0]), "");
	cg_store(c, LLVMBuildFPTrunc(c->b, total, c->t_f32, ""), c->opnd[0], cg_i64(c, 0));
}

/* PyTorch's clip_grad_norm_ coefficient min(1, max_norm / (‖g‖ + 1e-6)), in
 * double; a NaN norm gives a NaN coefficient (the step then shows it). */
LLVMValueRef cg_sc_clip_coef(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMTypeRef f64 = f64_type(c);
	LLVMValueRef s = LLVMBuildFPExt(c->b, in[0], f64, "");
	LLVMValueRef norm = cg_intrin(c, "llvm.sqrt", f64, &s, 1);
	LLVMValueRef coef = LLVMBuildFDiv(c->b, LLVMConstReal(f64, n->attr.f[0]),
					  LLVMBuildFAdd(c->b, norm, LLVMConstReal(f64, 1e-6), ""), "");
	LLVMValueRef one = LLVMConstReal(f64, 1);
	coef = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, coef, one, ""), one, coef, "");
	return LLVMBuildFPTrunc(c->b, coef, c->t_f32, "");
}

LLVMValueRef cg_sc_mul_scalar(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	(void)n;
	return fmul(c, in[0], in[1]);
}

/* clip_grad_value_: x > v ? v : x < -v ? -v : x (NaN stays NaN, as clamp) */
LLVMValueRef cg_sc_clip_value(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef x = in[0], hi = cg_f32(c, n->attr.f[0]), lo = cg_f32(c, -n->attr.f[0]);
	x = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, hi, ""), hi, x, "");
	return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, x, lo, ""), lo, x, "");
}

/* d(scale·Σ|x|)/dx = scale·sign(x), 0 at x = 0 (PyTorch's sign) */
LLVMValueRef cg_sc_abs_sum_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	LLVMValueRef x = in[0], zero = cg_f32(c, 0), k = cg_f32(c, n->attr.f[0]);
	LLVMValueRef s = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, x, zero, ""), LLVMBuildFNeg(c->b, k, ""),
					 zero, "");
	s = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x, zero, ""), k, s, "");
	return fmul(c, s, in[1]);
}

/* d(scale·Σx²)/dx = 2·scale·x */
LLVMValueRef cg_sc_sumsq_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	return fmul(c, fmul(c, in[0], cg_f32(c, 2 * n->attr.f[0])), in[1]);
}
