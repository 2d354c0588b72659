/* testplan.c — sequential memory plan with guard gaps (see testplan.h). */
#include "testplan.h"

void test_plan_memory(mlc_graph *g, int64_t max_batch, int64_t gap)
{
	int64_t act = gap, par = gap;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *v = g->node[i];
		if (v->dead)
			continue;
		int64_t size = mlc_numel(v, max_batch);
		if (mlc_op_is_update(v->op)) {
			v->mem = MEM_PARAM;
			v->offset = v->src[0]->offset;
		} else if (v->op == OP_PARAM || v->op == OP_STATE) {
			v->mem = MEM_PARAM;
			v->offset = par;
			par += size + gap;
		} else {
			/* scratch space right after the output (ir.h), then the gap */
			int64_t scratch = mlc_scratch_elems(v, max_batch);
			v->mem = MEM_ACT;
			v->offset = act;
			act += (scratch ? (size + 15) / 16 * 16 + scratch : size) + gap;
		}
	}
	g->max_batch = max_batch;
	g->act_size = act;
	g->param_size = par;
}
