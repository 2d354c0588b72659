/* shapes.c — shape inference over the whole graph: every live node's shape is
 * (re)computed from its sources by the op table's rule. Nodes downstream of a
 * failed one are skipped, so one mistake gives one message. */
#include "passes.h"

mlc_status mlc_infer_shapes(mlc_graph *g, mlc_diag *d)
{
	int before = mlc_diag_errors(d);
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		bool poisoned = false;
		for (int k = 0; k < n->nsrc; k++)
			poisoned |= n->src[k]->rank < 0;
		if (poisoned) {
			n->rank = -1;
			continue;
		}
		if (!mlc_ops[n->op].shape(n, d))
			n->rank = -1;
	}
	return mlc_diag_errors(d) > before ? MLC_EUSER : MLC_OK;
}
