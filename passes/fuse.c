/* fuse.c — the fusion pass: groups nodes of the joint forward+backward graph
 * into fused kernels (ir.h "Fusion groups", docs/ir.md). Greedy, in
 * topological order: a node joins the group of one of its producers when the
 * group kind allows it (mlc_group_legal, from the op table's fusion classes)
 * and every value the group already computes is read outside it only after
 * the node. That one condition keeps groups convex and lets the pass move
 * every member down to the root's position, where the kernel runs.
 *
 * Rules, each can be switched off by name (mlc ir --fuse-off=RULE,...):
 *   epilogue   elementwise consumers of matmul / conv2d / conv2d_grad_input
 *   elementwise chains and DAGs of elementwise and broadcast ops
 *   reduce     sum_rows (bias gradients) into the loop producing its input
 *   update     all optimizer updates into one kernel over the parameters
 *   batchnorm  batchnorm into a matmul/convolution epilogue: folded with the
 *              running statistics at inference, split around the batch
 *              statistics in training */
#include "passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mlc_fuse_rules[] = {"epilogue", "elementwise", "reduce", "update", "batchnorm", NULL};

typedef struct {
	mlc_node **m;
	int n, cap;
} group;

typedef struct {
	mlc_graph *g;
	int *pos;        /* node id -> index in g->node */
	int *last_read;  /* node id -> largest index of a reader (-1: none) */
	bool *fwd;       /* node id -> needed for pred/loss (forward phase) */
	int *gid;        /* node id -> group index or -1 */
	group *grp;
	int ngrp;
	bool rule[5];
} fuser;

enum { R_EPILOGUE, R_ELEMWISE, R_REDUCE, R_UPDATE, R_BATCHNORM, R_COUNT };

static bool rules_from(const char *off, bool rule[R_COUNT], mlc_diag *d)
{
	for (int i = 0; i < R_COUNT; i++)
		rule[i] = true;
	if (!off || !*off)
		return true;
	char *copy = mlc_xmalloc(strlen(off) + 1);
	strcpy(copy, off);
	bool ok = true;
	for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int i = 0;
		while (mlc_fuse_rules[i] && strcmp(mlc_fuse_rules[i], t) != 0)
			i++;
		if (!mlc_fuse_rules[i]) {
			const char *hint = mlc_suggest(t, mlc_fuse_rules);
			mlc_error_file(d, NULL, "unknown fusion rule '%s'%s%s%s (rules: epilogue, elementwise, reduce, update, batchnorm)",
				       t, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			ok = false;
			break;
		}
		rule[i] = false;
	}
	free(copy);
	return ok;
}

static void push(group *gr, mlc_node *n)
{
	if (gr->n == gr->cap) {
		gr->cap = gr->cap ? 2 * gr->cap : 8;
		gr->m = mlc_xrealloc(gr->m, sizeof *gr->m * (size_t)gr->cap);
	}
	gr->m[gr->n++] = n;
}

static int new_group(fuser *F, mlc_node *first)
{
	F->grp = mlc_xrealloc(F->grp, sizeof *F->grp * (size_t)(F->ngrp + 1));
	group *gr = &F->grp[F->ngrp];
	*gr = (group){0};
	push(gr, first);
	F->gid[first->id] = F->ngrp;
	return F->ngrp++;
}

/* The forward phase: everything pred and loss depend on. A group never
 * mixes phases, so inference entries run no backward work. */
static void mark_forward(fuser *F)
{
	mlc_graph *g = F->g;
	const char *keys[] = {"pred", "loss"};
	for (int k = 0; k < 2; k++) {
		mlc_node *r = mlc_graph_find_ret(g, keys[k]);
		if (r)
			F->fwd[r->id] = true;
	}
	for (int i = g->nnode - 1; i >= 0; i--) {
		mlc_node *n = g->node[i];
		if (!n->dead && F->fwd[n->id])
			for (int k = 0; k < n->nsrc; k++)
				F->fwd[n->src[k]->id] = true;
	}
}

/* Can a group start at s (as its first member)? */
static bool can_start(const fuser *F, const mlc_node *s)
{
	if (s->op == OP_MATMUL || s->op == OP_CONV2D || s->op == OP_CONV2D_GRAD_INPUT)
		return F->rule[R_EPILOGUE];
	return mlc_op_loopable(s->op) && F->rule[R_ELEMWISE];
}

/* Training runs a fused batchnorm in two parts with its input stored in
 * between (codegen/fused.c), which the backward pass keeps anyway; a graph
 * that trains without reading it back leaves it unfused. An inference-mode
 * batchnorm (inference=1) is folded with the running statistics in every
 * entry and needs no stored input. */
static bool bn_input_kept(const fuser *F, const mlc_node *n)
{
	const mlc_graph *g = F->g;
	if (n->attr.i[0])
		return true;
	bool trains = false;
	for (int i = 0; i < g->nret; i++)
		trains |= strncmp(g->ret[i].key, "grad.", 5) == 0;
	if (!trains)
		return true;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *r = g->node[i];
		for (int k = 0; !r->dead && r != n && k < r->nsrc; k++)
			if (r->src[k] == n->src[0] && !F->fwd[r->id])
				return true;
	}
	return false;
}

/* Tries to append n to the group of (or started by) its source s. */
static bool try_join(fuser *F, mlc_node *n, mlc_node *s)
{
	int at = F->pos[n->id];
	int gi = F->gid[s->id];
	if (gi < 0 && !can_start(F, s))
		return false;
	if (F->fwd[s->id] != F->fwd[n->id])
		return false;
	const mlc_node *first = gi >= 0 ? F->grp[gi].m[0] : s;
	bool epi = first->op == OP_MATMUL || first->op == OP_CONV2D || first->op == OP_CONV2D_GRAD_INPUT;
	if (n->op == OP_SUM_ROWS ? !F->rule[R_REDUCE] : !(epi ? F->rule[R_EPILOGUE] : F->rule[R_ELEMWISE]))
		return false;
	if (n->op == OP_BATCHNORM && (!F->rule[R_BATCHNORM] || !bn_input_kept(F, n)))
		return false;
	/* members so far, plus n */
	int count = gi >= 0 ? F->grp[gi].n : 1;
	const mlc_node **m = mlc_xmalloc(sizeof *m * (size_t)(count + 1));
	for (int i = 0; i < count; i++)
		m[i] = gi >= 0 ? F->grp[gi].m[i] : s;
	m[count] = n;
	bool ok = true;
	/* every value of the group is read outside it only after n */
	for (int i = 0; i < count && ok; i++) {
		const mlc_graph *g = F->g;
		const mlc_node *v = m[i];
		for (int r = F->pos[v->id] + 1; r < at && ok; r++) {
			const mlc_node *u = g->node[r];
			if (u->dead || (F->gid[u->id] >= 0 && F->gid[u->id] == gi && gi >= 0))
				continue;
			for (int k = 0; k < u->nsrc; k++)
				if (u->src[k] == v)
					ok = false;
		}
	}
	mlc_group_kind kind;
	char why[160];
	if (ok)
		ok = mlc_group_legal(m, count + 1, &kind, why, sizeof why) && kind != MLC_GROUP_UPDATE;
	free(m);
	if (!ok)
		return false;
	if (gi < 0)
		gi = new_group(F, s);
	push(&F->grp[gi], n);
	F->gid[n->id] = gi;
	return true;
}

/* All optimizer updates into one group: nothing reads an update (they are
 * returned), so each can move down to the last one. */
static void group_updates(fuser *F)
{
	mlc_graph *g = F->g;
	int gi = -1;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || !mlc_op_is_update(n->op) || F->last_read[n->id] >= 0)
			continue;
		if (gi < 0)
			gi = new_group(F, n);
		else {
			push(&F->grp[gi], n);
			F->gid[n->id] = gi;
		}
	}
}

/* Sets the group fields and moves every group's members next to its root. */
static void commit(fuser *F)
{
	mlc_graph *g = F->g;
	for (int gi = 0; gi < F->ngrp; gi++) {
		group *gr = &F->grp[gi];
		mlc_node *root = gr->m[gr->n - 1];
		for (int i = 0; i < gr->n; i++)
			gr->m[i]->group = gr->n > 1 ? root : NULL;
	}
	mlc_node **order = mlc_xmalloc(sizeof *order * (size_t)g->nnode);
	int k = 0;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (!n->group) {
			order[k++] = n;
			continue;
		}
		if (n->group != n)
			continue; /* emitted with its root */
		group *gr = &F->grp[F->gid[n->id]];
		for (int j = 0; j < gr->n; j++)
			order[k++] = gr->m[j];
	}
	MLC_ASSERT(k == g->nnode);
	memcpy(g->node, order, sizeof *order * (size_t)k);
	free(order);
	mlc_group_mark(g);
}

mlc_status mlc_fuse(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	fuser F = {.g = g};
	if (!rules_from(o->fuse_off, F.rule, d))
		return MLC_EUSER;
	/* the convolution algorithm decides the kernel the epilogue joins:
	 * written into the IR here, so the fused text shows it */
	mlc_conv_select(g);
	size_t ids = (size_t)g->next_id + 1;
	F.pos = mlc_xmalloc(sizeof *F.pos * ids);
	F.last_read = mlc_xmalloc(sizeof *F.last_read * ids);
	F.fwd = mlc_xmalloc(sizeof *F.fwd * ids);
	F.gid = mlc_xmalloc(sizeof *F.gid * ids);
	for (size_t i = 0; i < ids; i++) {
		F.pos[i] = F.last_read[i] = F.gid[i] = -1;
		F.fwd[i] = false;
	}
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		n->group = NULL;
		F.pos[n->id] = i;
		if (!n->dead)
			for (int k = 0; k < n->nsrc; k++)
				F.last_read[n->src[k]->id] = i;
	}
	mark_forward(&F);
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || !(mlc_op_loopable(n->op) || n->op == OP_SUM_ROWS || n->op == OP_BATCHNORM))
			continue;
		for (int k = 0; k < n->nsrc; k++) {
			mlc_node *s = n->src[k];
			if (!s->dead && mlc_ops[s->op].fclass != FC_SOURCE && try_join(&F, n, s))
				break;
		}
	}
	if (F.rule[R_UPDATE])
		group_updates(&F);
	commit(&F);
	for (int gi = 0; gi < F.ngrp; gi++)
		free(F.grp[gi].m);
	free(F.grp);
	free(F.pos);
	free(F.last_read);
	free(F.fwd);
	free(F.gid);
	return MLC_OK;
}
