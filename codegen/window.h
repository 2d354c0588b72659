/* window.h — what the convolution and pooling kernels (kernels_conv.c,
 * kernels_pool.c) share: the window geometry of ir/conv.h and a few i64
 * arithmetic shorthands for index computations. */
#ifndef MLC_CG_WINDOW_H
#define MLC_CG_WINDOW_H

#include "cg.h"
#include "../ir/conv.h"

static inline LLVMValueRef add(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildNSWAdd(c->b, a, b, "");
}

static inline LLVMValueRef sub(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildNSWSub(c->b, a, b, "");
}

static inline LLVMValueRef mul(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildNSWMul(c->b, a, b, "");
}

static inline LLVMValueRef muli(cg *c, LLVMValueRef a, int64_t k)
{
	return k == 1 ? a : mul(c, a, cg_i64(c, k));
}

static inline LLVMValueRef smin(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static inline LLVMValueRef smax(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, b, ""), a, b, "");
}

static inline LLVMValueRef at(cg *c, LLVMValueRef p, LLVMValueRef idx)
{
	return cg_gep(c, p, idx, c->t_f32);
}

/* 0 <= i < hi as one unsigned compare */
static inline LLVMValueRef in_range(cg *c, LLVMValueRef i, int64_t hi)
{
	return LLVMBuildICmp(c->b, LLVMIntULT, i, cg_i64(c, hi), "");
}

#endif
