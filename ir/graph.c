/* graph.c — graph and node construction, named results, shape helpers. */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mlc_graph *mlc_graph_new(const char *name)
{
	mlc_arena *a = mlc_arena_new();
	mlc_graph *g = mlc_arena_alloc(a, sizeof *g);
	g->arena = a;
	g->name = mlc_arena_strdup(a, name ? name : "model");
	return g;
}

void mlc_graph_free(mlc_graph *g)
{
	if (!g)
		return;
	free(g->node);
	free(g->ret);
	mlc_arena_free(g->arena);
}

mlc_node *mlc_node_new(mlc_graph *g, mlc_opcode op, int nsrc, mlc_node *const *src, mlc_loc loc)
{
	MLC_ASSERT(op < OP_COUNT && nsrc >= 0 && nsrc <= MLC_MAX_SRC);
	mlc_node *n = mlc_arena_alloc(g->arena, sizeof *n);
	n->id = g->next_id++;
	n->op = op;
	n->rank = -1;
	n->nsrc = nsrc;
	for (int i = 0; i < nsrc; i++)
		n->src[i] = src[i];
	n->loc = loc;
	mlc_attrs_default(op, &n->attr, g->arena);
	if (g->nnode == g->capnode) {
		g->capnode = g->capnode ? 2 * g->capnode : 64;
		g->node = mlc_xrealloc(g->node, sizeof(mlc_node *) * (size_t)g->capnode);
	}
	g->node[g->nnode++] = n;
	return n;
}

mlc_node *mlc_build(mlc_graph *g, mlc_opcode op, const mlc_node *from, const mlc_attrs *proto,
		    mlc_node *a, mlc_node *b, mlc_node *c)
{
	mlc_node *src[3] = {a, b, c};
	return mlc_build_n(g, op, from, proto, c ? 3 : b ? 2 : a ? 1 : 0, src);
}

mlc_node *mlc_build_n(mlc_graph *g, mlc_opcode op, const mlc_node *from, const mlc_attrs *proto,
		      int nsrc, mlc_node *const *src)
{
	mlc_node *n = mlc_node_new(g, op, nsrc, src, from ? from->loc : (mlc_loc){0});
	if (from)
		n->layer = from->layer;
	if (proto)
		n->attr = *proto;
	MLC_ASSERT(nsrc == mlc_ops[op].arity);
	/* A failure here means a pass built an ill-typed node: a bug, not a user error. */
	mlc_diag *d = mlc_diag_new(stderr);
	bool ok = mlc_ops[op].shape(n, d);
	mlc_diag_free(d);
	if (!ok)
		mlc_die(__FILE__, __LINE__, "pass built an ill-typed %s node", mlc_ops[op].name);
	return n;
}

mlc_node *mlc_source(mlc_graph *g, mlc_opcode op, const char *name, mlc_dtype t, int rank,
		     const int64_t *dim, mlc_loc loc)
{
	MLC_ASSERT(mlc_ops[op].fclass == FC_SOURCE && rank >= 0 && rank <= MLC_MAX_RANK);
	mlc_node *n = mlc_node_new(g, op, 0, NULL, loc);
	n->name = mlc_arena_strdup(g->arena, name);
	n->dtype = t;
	n->rank = rank;
	for (int i = 0; i < rank; i++)
		n->dim[i] = dim[i];
	return n;
}

void mlc_graph_ret(mlc_graph *g, const char *key, mlc_node *v)
{
	for (int i = 0; i < g->nret; i++)
		if (strcmp(g->ret[i].key, key) == 0) {
			g->ret[i].val = v;
			return;
		}
	mlc_graph_ret_new(g, key, v);
}

void mlc_graph_ret_new(mlc_graph *g, const char *key, mlc_node *v)
{
	if (g->nret == g->capret) {
		g->capret = g->capret ? 2 * g->capret : 16;
		g->ret = mlc_xrealloc(g->ret, sizeof(mlc_ret) * (size_t)g->capret);
	}
	g->ret[g->nret++] = (mlc_ret){mlc_arena_strdup(g->arena, key), v};
}

mlc_node *mlc_graph_find_ret(const mlc_graph *g, const char *key)
{
	for (int i = 0; i < g->nret; i++)
		if (strcmp(g->ret[i].key, key) == 0)
			return g->ret[i].val;
	return NULL;
}

/* The "loss" result is the first loss term, possibly weighted (scale) and
 * with more terms added after it (a loss list, L1/L2 penalties): the term
 * the prediction "pred" belongs to is found down the first operands. */
mlc_node *mlc_graph_main_loss(const mlc_graph *g)
{
	mlc_node *n = mlc_graph_find_ret(g, "loss");
	while (n && (n->op == OP_ADD || n->op == OP_SCALE))
		n = n->src[0];
	return n;
}

mlc_node *mlc_graph_find_value(const mlc_graph *g, const char *name)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i]->dead && g->node[i]->name && strcmp(g->node[i]->name, name) == 0)
			return g->node[i];
	return NULL;
}

int64_t mlc_numel(const mlc_node *n, int64_t batch)
{
	int64_t k = 1;
	for (int i = 0; i < n->rank; i++)
		k *= n->dim[i] == MLC_BATCH ? batch : n->dim[i];
	return k;
}

bool mlc_same_shape(const mlc_node *a, const mlc_node *b)
{
	if (a->rank != b->rank)
		return false;
	for (int i = 0; i < a->rank; i++)
		if (a->dim[i] != b->dim[i])
			return false;
	return true;
}

char *mlc_type_str(const mlc_node *n, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "%s[", mlc_dtype_name(n->dtype));
	for (int i = 0; i < n->rank && k < len; i++) {
		if (n->dim[i] == MLC_BATCH)
			k += (size_t)snprintf(buf + k, len - k, "%sN", i ? "," : "");
		else
			k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)n->dim[i]);
	}
	if (k < len)
		snprintf(buf + k, len - k, "]");
	return buf;
}
