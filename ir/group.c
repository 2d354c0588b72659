/* group.c — bookkeeping of fusion groups (ir.h): which members of a group
 * are internal, i.e. read only by other members of the same group and not
 * returned, so the fused kernel keeps them in registers. */
#include "ir.h"

#include <stdlib.h>

void mlc_group_mark(mlc_graph *g)
{
	/* escapes[id]: the value is read outside its group or returned */
	bool *escapes = mlc_xmalloc(sizeof *escapes * (size_t)(g->next_id + 1));
	for (int i = 0; i <= g->next_id; i++)
		escapes[i] = false;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n->dead)
			continue;
		for (int k = 0; k < n->nsrc; k++) {
			const mlc_node *s = n->src[k];
			if (s && s->id >= 0 && s->id < g->next_id && (!s->group || s->group != n->group))
				escapes[s->id] = true;
		}
	}
	for (int i = 0; i < g->nret; i++)
		if (g->ret[i].val && g->ret[i].val->id >= 0 && g->ret[i].val->id < g->next_id)
			escapes[g->ret[i].val->id] = true;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		n->internal = !n->dead && n->group && !escapes[n->id];
	}
	free(escapes);
}
