/* convalgo.c — resolves every convolution's `algo` attribute (ir/conv.h):
 * after this pass `mlc ir` shows the algorithm each conv kernel runs with,
 * and a later pass or a test can override it per node. Not in the pipeline
 * by itself: the fuse pass calls it. */
#include "passes.h"
#include "../ir/conv.h"

void mlc_conv_select(mlc_graph *g)
{
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || n->rank < 0)
			continue;
		if (n->op == OP_CONV2D || n->op == OP_CONV2D_GRAD_INPUT || n->op == OP_CONV2D_GRAD_WEIGHT)
			n->attr.i[MLC_CONV_ALGO_SLOT] = mlc_conv_algo(n);
	}
}
