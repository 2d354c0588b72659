/* dce.c — dead-code elimination: whatever no result needs is marked dead
 * (unused gradients, an input gradient nobody asked for, unused layers). */
#include "passes.h"

#include <stdlib.h>

mlc_status mlc_dce(mlc_graph *g, mlc_diag *d)
{
	(void)d;
	bool *live = mlc_xmalloc(sizeof(bool) * (size_t)g->next_id);
	for (int i = 0; i < g->nret; i++)
		live[g->ret[i].val->id] = true;
	for (int i = g->nnode - 1; i >= 0; i--) {
		mlc_node *n = g->node[i];
		if (n->dead || !live[n->id]) {
			n->dead = true;
			continue;
		}
		for (int k = 0; k < n->nsrc; k++)
			live[n->src[k]->id] = true;
	}
	free(live);
	return MLC_OK;
}
