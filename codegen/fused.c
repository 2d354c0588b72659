/* fused.c — kernels of fusion groups (passes/fuse.c, docs/ir.md). */
#include "cg.h"

void cg_epilogue(cg *c, const mlc_node *n, LLVMValueRef r0, LLVMValueRef r1)
{
	(void)n;
	(void)r0;
	(void)r1;
	if (!c->epi)
		return;
}
