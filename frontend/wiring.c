/* wiring.c — connecting layers: the sequential `layers:` list (each layer
 * reads the one before) and the named `graph:` form (each node names what it
 * reads, in any order; sorted topologically here). A layer whose input
 * failed is skipped without a message, so one mistake yields one error. */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

void fe_sequential(fe *f, const yt_node *v, mlc_loc key)
{
	if (v->kind != YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected a list of layers for 'layers', got %s", fe_show(f, v));
		return;
	}
	if (v->n == 0) {
		mlc_error_at(f->d, key, "'layers' is empty; list at least one layer");
		return;
	}
	if (f->ninputs > 1)
		mlc_error_at(f->d, key,
			     "'layers:' reads a single input, but 'inputs' declares %d; wire several "
			     "inputs with 'graph:'",
			     f->ninputs);
	int first = f->nlay;
	for (int i = 0; i < v->n; i++)
		fe_parse_layer(f, fe_new_layer(f), v->val[i], NULL);
	fe_default_names(f, first);
	if (f->ninputs != 1)
		return;
	mlc_node *prev = f->lay[0].out;
	for (int i = first; i < f->nlay && prev; i++) {
		fe_build_layer(f, &f->lay[i], &prev);
		prev = f->lay[i].out;
	}
	f->output = prev;
}

/* Every name (inputs and nodes) from index `first` on, for did-you-mean. */
static const char *const *names_from(fe *f, int first)
{
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(f->nlay - first + 1));
	int n = 0;
	for (int i = first; i < f->nlay; i++)
		if (f->lay[i].name)
			v[n++] = f->lay[i].name;
	return v;
}

static void resolve_inputs(fe *f, int first)
{
	const char *const *cands = NULL;
	for (int i = first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		for (int j = 0; j < l->nsrc; j++) {
			const yt_node *s = l->src_node[j];
			l->src[j] = fe_names_get(&f->names, s->str);
			if (l->src[j] >= 0)
				continue;
			l->bad = true;
			if (!cands)
				cands = names_from(f, 0);
			const char *sug = fe_suggest(f, s->str, cands);
			if (sug)
				mlc_error_at(f->d, s->loc, "node '%s' reads '%s', which is not an input or a node; "
					     "did you mean '%s'?", l->name, s->str, sug);
			else
				mlc_error_at(f->d, s->loc, "node '%s' reads '%s', which is not an input or a node",
					     l->name, s->str);
		}
	}
}

/* The stack holds a path in which each node reads the next; `u` is read by
 * the top and sits at stack[p], so data flows u -> top -> ... -> stack[p+1] -> u. */
static void report_cycle(fe *f, const int *stack, int p, int sp, const yt_node *where)
{
	enum { SHOWN = 10 }; /* a long cycle is summarized, not listed */
	int len = sp - p;
	const char *u = f->lay[stack[p]].name, *msg = u;
	for (int i = sp - 1, k = 1; i > p && k < SHOWN; i--, k++)
		msg = mlc_arena_printf(f->tmp, "%s -> %s", msg, f->lay[stack[i]].name);
	if (len > SHOWN)
		msg = mlc_arena_printf(f->tmp, "%s -> ... -> %s (%d nodes)", msg, u, len);
	else
		msg = mlc_arena_printf(f->tmp, "%s -> %s", msg, u);
	mlc_error_at(f->d, where->loc, "cycle: %s", msg);
	for (int i = p; i < sp; i++) {
		f->lay[stack[i]].in_cycle = true;
		f->lay[stack[i]].bad = true;
	}
}

/* Depth-first over the "reads" edges with an explicit stack (a long chain of
 * nodes must not overflow the C stack); post-order is a topological order. */
static int topo_sort(fe *f, int first, int *order)
{
	int n = 0, sp = 0;
	int *stack = mlc_xmalloc(sizeof *stack * (size_t)(f->nlay - first));
	for (int s = first; s < f->nlay; s++) {
		if (f->lay[s].mark)
			continue;
		f->lay[s].mark = 1;
		f->lay[s].stackpos = sp;
		stack[sp++] = s;
		while (sp) {
			fe_layer *t = &f->lay[stack[sp - 1]];
			if (t->next_src == t->nsrc) {
				t->mark = 2;
				order[n++] = stack[--sp];
				continue;
			}
			int j = t->next_src++, u = t->src[j];
			if (u < first)
				continue; /* unresolved (-1) or a model input */
			fe_layer *lu = &f->lay[u];
			if (lu->mark == 0) {
				lu->mark = 1;
				lu->stackpos = sp;
				stack[sp++] = u;
			} else if (lu->mark == 1 && !lu->in_cycle) {
				report_cycle(f, stack, lu->stackpos, sp, t->src_node[j]);
			}
		}
	}
	free(stack);
	return n;
}

static void pick_output(fe *f, int first, const yt_node *output)
{
	if (!output) {
		f->output = f->lay[f->nlay - 1].out;
		return;
	}
	const char *s = fe_str(f, output, "output");
	if (!s)
		return;
	int i = fe_names_get(&f->names, s);
	if (i >= first) {
		f->output = f->lay[i].out;
	} else if (i >= 0) {
		mlc_error_at(f->d, output->loc, "the output must be a node of 'graph', but '%s' is an input", s);
	} else {
		const char *sug = fe_suggest(f, s, names_from(f, first));
		if (sug)
			mlc_error_at(f->d, output->loc, "unknown output node '%s'; did you mean '%s'?", s, sug);
		else
			mlc_error_at(f->d, output->loc, "unknown output node '%s'", s);
	}
}

void fe_graph(fe *f, const yt_node *v, mlc_loc key, const yt_node *output)
{
	if (!fe_expect_map(f, v, "graph", "'h: {dense: 16, input: x}'"))
		return;
	if (v->n == 0) {
		mlc_error_at(f->d, key, "'graph' is empty; give at least one node");
		return;
	}
	int first = f->nlay;
	for (int i = 0; i < v->n; i++) {
		const yt_node *k = v->key[i];
		int idx = f->nlay;
		fe_layer *l = fe_new_layer(f);
		l->name = mlc_arena_strdup(f->g->arena, k->str);
		l->name_loc = k->loc;
		l->src[0] = l->src[1] = -1;
		/* a bad name is still registered, so readers of it don't cascade */
		bool ok = fe_ident(f, k, "a graph node") != NULL;
		ok &= fe_claim_name(f, idx);
		l->bad = !ok;
		fe_parse_layer(f, l, v->val[i], k);
	}
	resolve_inputs(f, first);
	int *order = mlc_xmalloc(sizeof *order * (size_t)(f->nlay - first));
	int n = topo_sort(f, first, order);
	for (int i = 0; i < n; i++) {
		fe_layer *l = &f->lay[order[i]];
		mlc_node *in[2] = {NULL, NULL};
		bool ready = !l->bad;
		for (int j = 0; j < l->nsrc && ready; j++)
			ready = (in[j] = f->lay[l->src[j]].out) != NULL;
		if (ready)
			fe_build_layer(f, l, in);
	}
	free(order);
	pick_output(f, first, output);
}
