/* kernels_update.c — optimizer updates, applied in place to the parameter
 * arena over an element range [begin, end). */
#include "cg.h"

/* SGD with PyTorch's momentum/Nesterov semantics:
 *   μ ≠ 0: v = μ v + g;  d = nesterov ? g + μ v : v      μ = 0: d = g
 *   p -= lr d,  lr = hyper[0] * lr_mult
 * The SGD node is planned at its parameter's offset, so operand 0 (the
 * output) and operand 1 (the parameter) are one pointer. */
void cg_sgd(cg *c, const mlc_node *n)
{
	double mu = n->attr.f[0];
	bool nesterov = n->attr.i[0] != 0;
	LLVMValueRef p = c->opnd[0], g = c->opnd[2], v = c->opnd[3];
	LLVMValueRef lr = cg_load(c, c->hyper, cg_i64(c, 0));
	lr = LLVMBuildFMul(c->b, lr, cg_f32(c, n->attr.f[1]), "");
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	LLVMValueRef gv = cg_load(c, g, l.iv), d = gv;
	if (mu != 0) {
		LLVMValueRef muv = cg_f32(c, mu);
		LLVMValueRef vel = LLVMBuildFMul(c->b, muv, cg_load(c, v, l.iv), "");
		vel = LLVMBuildFAdd(c->b, vel, gv, "");
		cg_store(c, vel, v, l.iv);
		d = nesterov ? LLVMBuildFAdd(c->b, gv, LLVMBuildFMul(c->b, muv, vel, ""), "") : vel;
	}
	LLVMValueRef pv = LLVMBuildFSub(c->b, cg_load(c, p, l.iv), LLVMBuildFMul(c->b, lr, d, ""), "");
	cg_store(c, pv, p, l.iv);
	cg_loop_end(c, &l);
}
