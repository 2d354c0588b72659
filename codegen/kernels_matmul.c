/* kernels_matmul.c — matmul as a direct call to OpenBLAS cblas_sgemm from the
 * generated code, over a block [begin, end) of output rows. */
#include "cg.h"

/* CBLAS enum values (cblas.h); the ABI passes them and every size as a
 * 32-bit int (Debian's openblas-pthread: blasint = int). */
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static LLVMValueRef sgemm_decl(cg *c, LLVMTypeRef *ty)
{
	LLVMTypeRef i32 = c->t_i32, f32 = c->t_f32, p = c->t_ptr;
	LLVMTypeRef params[] = {i32, i32, i32, i32, i32, i32, f32, p, i32, p, i32, f32, p, i32};
	*ty = LLVMFunctionType(c->t_void, params, MLC_COUNTOF(params), 0);
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "cblas_sgemm");
	if (!fn) {
		fn = LLVMAddFunction(c->mod, "cblas_sgemm", *ty);
		LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
					LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
	}
	return fn;
}

static LLVMValueRef i32(cg *c, LLVMValueRef v)
{
	return LLVMBuildTrunc(c->b, v, c->t_i32, "");
}

/* C[begin:end, :] = op(A)[begin:end, :] · op(B). A row block of op(A) is a
 * row block of A, or a column block when A is transposed. */
void cg_matmul(cg *c, const mlc_node *n)
{
	const mlc_node *a = n->src[0], *b = n->src[1];
	bool ta = n->attr.i[0] != 0, tb = n->attr.i[1] != 0;
	LLVMValueRef k = cg_dim(c, a, ta ? 0 : 1), cols = cg_dim(c, n, 1);
	LLVMValueRef lda = cg_dim(c, a, 1), ldb = cg_dim(c, b, 1);
	LLVMValueRef rows = LLVMBuildNSWSub(c->b, c->end, c->begin, "");
	LLVMValueRef aoff = ta ? c->begin : LLVMBuildNSWMul(c->b, c->begin, lda, "");
	LLVMValueRef A = cg_gep(c, c->opnd[1], aoff, c->t_f32);
	LLVMValueRef C = cg_gep(c, c->opnd[0], LLVMBuildNSWMul(c->b, c->begin, cols, ""), c->t_f32);

	/* An empty block must not reach sgemm: OpenBLAS rejects some of the
	 * resulting leading dimensions with an error message. */
	LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "gemm");
	LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "");
	LLVMValueRef some = LLVMBuildICmp(c->b, LLVMIntSGT, rows, cg_i64(c, 0), "");
	LLVMBuildCondBr(c->b, some, call, done);
	LLVMPositionBuilderAtEnd(c->b, call);
	LLVMTypeRef ty;
	LLVMValueRef fn = sgemm_decl(c, &ty);
	LLVMValueRef args[] = {
		LLVMConstInt(c->t_i32, ROW_MAJOR, 0),
		LLVMConstInt(c->t_i32, ta ? TRANS : NO_TRANS, 0),
		LLVMConstInt(c->t_i32, tb ? TRANS : NO_TRANS, 0),
		i32(c, rows), i32(c, cols), i32(c, k),
		cg_f32(c, 1), A, i32(c, lda), c->opnd[2], i32(c, ldb),
		cg_f32(c, 0), C, i32(c, cols),
	};
	LLVMBuildCall2(c->b, ty, fn, args, MLC_COUNTOF(args), "");
	cg_epilogue(c, n, c->begin, c->end);
	LLVMBuildBr(c->b, done);
	LLVMPositionBuilderAtEnd(c->b, done);
}
