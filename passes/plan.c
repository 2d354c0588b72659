/* plan.c — memory planning: every live value gets an offset in one of two
 * arenas. Parameters and optimizer state persist in the parameter arena (one
 * flat block, in graph order); everything else lives in the activation arena,
 * sized for max_batch rows. Updates alias the parameter they overwrite. */
#include "passes.h"

enum { ALIGN = 16 }; /* elements: 64-byte alignment for vector loads */

static int64_t take(int64_t *top, int64_t n)
{
	int64_t at = *top;
	*top += (n + ALIGN - 1) / ALIGN * ALIGN;
	return at;
}

mlc_status mlc_plan_memory(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	if (o->max_batch <= 0) {
		mlc_error_file(d, NULL, "plan: batch size must be positive");
		return MLC_EUSER;
	}
	g->max_batch = o->max_batch;
	g->threads = o->threads > 1 ? o->threads : 1;
	g->act_size = g->param_size = 0;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		switch (n->op) {
		case OP_PARAM:
		case OP_STATE:
			n->mem = MEM_PARAM;
			n->offset = take(&g->param_size, mlc_numel(n, g->max_batch));
			break;
		case OP_SGD:
			n->mem = MEM_PARAM;
			n->offset = n->src[0]->offset;
			break;
		default: {
			int64_t size = mlc_numel(n, g->max_batch), scratch = mlc_scratch_elems(n, g->max_batch);
			if (g->threads > 1) /* one area per thread (ir.h) */
				scratch = g->threads * mlc_scratch_stride(n, g->max_batch);
			if (scratch) /* right after the output (mlc_scratch_offset) */
				size = (size + ALIGN - 1) / ALIGN * ALIGN + scratch;
			n->mem = MEM_ACT;
			n->offset = take(&g->act_size, size);
			break;
		}
		}
	}
	return MLC_OK;
}
