/* wiring.c — connecting layers: the sequential `layers:` list (each layer
 * reads the one before) and the named `graph:` form (each node names what it
 * reads, in any order), in a scope: the model itself, the body of a block
 * instance, or a block definition being checked. Once every instance is
 * expanded, all layers are sorted topologically and built. A layer whose
 * input failed is skipped without a message, so one mistake yields one error. */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

bool fe_body_ok(fe *f, const yt_node *v, bool graph_form, mlc_loc key)
{
	const char *what = graph_form ? "graph" : "layers";
	if (graph_form && !fe_expect_map(f, v, "graph", "'h: {dense: 16, input: x}'"))
		return false;
	if (!graph_form && v->kind != YT_SEQ) {
		mlc_error_at(f->d, v->loc, "expected a list of layers for 'layers', got %s", fe_show(f, v));
		return false;
	}
	if (v->n == 0) {
		mlc_error_at(f->d, key, "'%s' is empty; %s", what,
			     graph_form ? "give at least one node" : "list at least one layer");
		return false;
	}
	return true;
}

void fe_wire(fe *f, fe_layer *l, int src)
{
	l->nsrc = 1;
	l->src_node = mlc_arena_alloc(f->tmp, sizeof *l->src_node);
	l->src = mlc_arena_alloc(f->tmp, sizeof *l->src);
	l->src[0] = src;
}

/* A repeated block becomes its copies, named "<head>.1", "<head>.2", ...
 * (or given default names, unnamed in 'layers:'), each reading the one
 * before; a named head stays as an alias of the last copy. */
static void repeat_block(fe *f, fe_scope *sc, int head)
{
	fe_layer h = f->lay[head];
	int n = (int)h.args.repeat;
	h.args.repeat = 1;
	if (!sc->def && !fe_budget(f, n, h.loc, sc->inst)) { /* a definition's check is not kept */
		f->lay[head].bad = true;
		return;
	}
	int first = head;
	if (h.local) {
		first = f->nlay;
		*fe_new_layer(f) = h;
	}
	for (int k = 1; k <= n; k++) {
		int i = k == 1 ? first : f->nlay;
		fe_layer *c = k == 1 ? &f->lay[first] : fe_new_layer(f);
		if (k > 1)
			*c = f->lay[first];
		if (h.local) {
			fe_set_name(f, sc, c, mlc_arena_printf(f->tmp, "%s.%d", h.local, k));
			c->member = true;
		} else {
			c->local = c->name = NULL;
		}
		/* fresh arrays: resolving writes into them */
		int ns = c->nsrc;
		const yt_node **sn = c->src_node;
		c->src_node = mlc_arena_alloc(f->tmp, sizeof *sn * (size_t)(ns ? ns : 1));
		c->src = mlc_arena_alloc(f->tmp, sizeof *c->src * (size_t)(ns ? ns : 1));
		for (int j = 0; j < ns; j++) {
			c->src_node[j] = sn[j];
			c->src[j] = -1;
		}
		if (k > 1)
			fe_wire(f, c, i - 1);
	}
	if (!h.local)
		return;
	fe_layer *a = &f->lay[head];
	a->kind = &fe_kind_port; /* an alias */
	a->group = n;
	fe_wire(f, a, f->nlay - 1);
}

/* Reads one item of a body: a layer or a block instance (maybe repeated). */
static void add_item(fe *f, fe_scope *sc, const yt_node *item, const yt_node *key)
{
	int i = f->nlay;
	if (sc->inst < 0) /* an instance's body has its parameters substituted */
		fe_check_refs(f, item, sc->def);
	fe_layer *l = fe_new_layer(f);
	l->inst = sc->inst;
	if (key) {
		fe_set_name(f, sc, l, key->str);
		l->name_loc = key->loc;
		/* a bad name is still registered, so readers of it don't cascade */
		bool ok = fe_ident(f, key, "a graph node") != NULL;
		ok &= fe_claim_name(f, sc, i);
		l->bad = !ok;
	}
	fe_parse_layer(f, l, item, key);
	fe_note_instances(f, sc->inst);
	if (l->kind && l->kind->block && l->args.repeat > 1 && !l->bad) {
		if (l->kind->arity != 1) {
			mlc_error_at(f->d, l->args.repeat_loc,
				     "'repeat' chains copies of a block, so the block must read one input; "
				     "'%s' reads %d", l->kind->name, l->kind->arity);
			fe_note_instances(f, sc->inst);
			l->bad = true;
			return;
		}
		repeat_block(f, sc, i);
		if (key)
			for (int k = i + 1; k < f->nlay; k++)
				fe_names_put(&sc->names, f->lay[k].local, k);
	}
}

/* The scope's names (its inputs and layers so far), for did-you-mean. */
static const char *const *scope_names(fe *f, const fe_scope *sc)
{
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(f->nlay - sc->lo + 1));
	int n = 0;
	for (int i = sc->lo; i < f->nlay; i++)
		if (f->lay[i].local && !f->lay[i].member)
			v[n++] = f->lay[i].local;
	return v;
}

static void resolve_inputs(fe *f, fe_scope *sc)
{
	const char *const *cands = NULL;
	for (int i = sc->first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		for (int j = 0; j < l->nsrc; j++) {
			const yt_node *s = l->src_node[j];
			if (!s)
				continue; /* wired directly */
			l->src[j] = fe_names_get(&sc->names, s->str);
			if (l->src[j] >= 0)
				continue;
			l->bad = true;
			if (!cands)
				cands = scope_names(f, sc);
			const char *sug = fe_suggest(f, s->str, cands);
			if (sug)
				mlc_error_at(f->d, s->loc, "node '%s' reads '%s', which is not an input or a node; "
					     "did you mean '%s'?", l->local, s->str, sug);
			else
				mlc_error_at(f->d, s->loc, "node '%s' reads '%s', which is not an input or a node",
					     l->local, s->str);
		}
	}
}

/* `layers:`: each layer reads the one before it (copies of a repeated block
 * are wired already; a named head is not in the chain: its last copy is). */
static void chain(fe *f, fe_scope *sc, int in)
{
	int prev = in;
	for (int i = sc->first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		if (l->nsrc == 0)
			fe_wire(f, l, prev);
		if (!l->group)
			prev = i;
	}
}

/* The stack holds a path in which each node reads the next; `u` is read by
 * the top and sits at stack[p], so data flows u -> top -> ... -> stack[p+1] -> u. */
static void report_cycle(fe *f, const int *stack, int p, int sp, mlc_loc where)
{
	enum { SHOWN = 10 }; /* a long cycle is summarized, not listed */
	int len = sp - p;
	const char *u = f->lay[stack[p]].local, *msg = u;
	for (int i = sp - 1, k = 1; i > p && k < SHOWN; i--, k++)
		msg = mlc_arena_printf(f->tmp, "%s -> %s", msg, f->lay[stack[i]].local);
	if (len > SHOWN)
		msg = mlc_arena_printf(f->tmp, "%s -> ... -> %s (%d nodes)", msg, u, len);
	else
		msg = mlc_arena_printf(f->tmp, "%s -> %s", msg, u);
	mlc_error_at(f->d, where, "cycle: %s", msg);
	for (int i = p; i < sp; i++) {
		f->lay[stack[i]].in_cycle = true;
		f->lay[stack[i]].bad = true;
	}
}

/* Depth-first over the "reads" edges of lay[first, nlay) with an explicit
 * stack (a long chain of nodes must not overflow the C stack); post-order is
 * a topological order. Cycles are reported (once) and their nodes marked bad. */
static int topo_sort(fe *f, int first, int *order)
{
	int n = 0, sp = 0;
	int *stack = mlc_xmalloc(sizeof *stack * (size_t)(f->nlay - first + 1));
	for (int i = first; i < f->nlay; i++) {
		f->lay[i].mark = 0;
		f->lay[i].next_src = 0;
	}
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
				continue; /* unresolved (-1), a model input or outside the scope */
			fe_layer *lu = &f->lay[u];
			if (lu->mark == 0) {
				lu->mark = 1;
				lu->stackpos = sp;
				stack[sp++] = u;
			} else if (lu->mark == 1 && !lu->in_cycle) {
				report_cycle(f, stack, lu->stackpos, sp, t->src_node[j] ? t->src_node[j]->loc : t->loc);
			}
		}
	}
	free(stack);
	return n;
}

/* graph form: `output:` names a node of the scope; by default the last listed. */
static int pick_output(fe *f, fe_scope *sc, int last, const yt_node *output)
{
	if (!output)
		return last;
	const char *s = fe_str(f, output, "output");
	if (!s)
		return -1;
	int i = fe_names_get(&sc->names, s);
	if (i >= sc->first)
		return i;
	if (i >= 0) {
		mlc_error_at(f->d, output->loc, "the output must be a node of 'graph', but '%s' is an input", s);
		return -1;
	}
	const char **cands = mlc_arena_alloc(f->tmp, sizeof *cands * (size_t)(f->nlay - sc->first + 1));
	int n = 0;
	for (int k = sc->first; k < f->nlay; k++)
		if (f->lay[k].local && !f->lay[k].member)
			cands[n++] = f->lay[k].local;
	const char *sug = fe_suggest(f, s, cands);
	if (sug)
		mlc_error_at(f->d, output->loc, "unknown output node '%s'; did you mean '%s'?", s, sug);
	else
		mlc_error_at(f->d, output->loc, "unknown output node '%s'", s);
	return -1;
}

int fe_scope_run(fe *f, fe_scope *sc, const yt_node *body, bool graph_form, const yt_node *output,
		 int in)
{
	sc->first = f->nlay;
	int last = -1;
	fe_note_instances(f, sc->inst);
	/* a written body counts toward the layer limit, as instances do */
	if (sc->inst < 0 && !sc->def && !fe_budget(f, body->n, body->loc, -1))
		return -1;
	for (int i = 0; i < body->n; i++) {
		int at = f->nlay;
		add_item(f, sc, body->val[i], graph_form ? body->key[i] : NULL);
		/* a repeated block's value is its head's (graph) or its last copy's */
		last = graph_form ? at : f->nlay - 1;
	}
	fe_default_names(f, sc);
	int end = f->nlay;
	if (graph_form) {
		resolve_inputs(f, sc);
		int *order = mlc_xmalloc(sizeof *order * (size_t)(end - sc->first + 1));
		topo_sort(f, sc->first, order);
		free(order);
	} else {
		chain(f, sc, in);
	}
	int out = graph_form ? pick_output(f, sc, last, output) : last;
	fe_note_instances(f, sc->inst);
	for (int i = sc->first; i < end; i++) {
		const fe_kind *k = f->lay[i].kind;
		if (!k || !k->block)
			continue;
		if (sc->def)
			fe_block_use(f, sc, i);
		else
			fe_expand(f, sc, i);
	}
	return out;
}

/* Builds every layer of the model in a topological order. */
static void build_all(fe *f)
{
	int first = f->ninputs;
	int *order = mlc_xmalloc(sizeof *order * (size_t)(f->nlay - first + 1));
	int n = topo_sort(f, first, order);
	mlc_node **in = NULL;
	int capin = 0;
	fe_note_instances(f, -1);
	for (int i = 0; i < n; i++) {
		fe_layer *l = &f->lay[order[i]];
		if (l->nsrc > capin) {
			capin = l->nsrc;
			in = mlc_xrealloc(in, sizeof *in * (size_t)capin);
		}
		bool ready = !l->bad && l->nsrc > 0;
		for (int j = 0; j < l->nsrc && ready; j++)
			ready = l->src[j] >= 0 && (in[j] = f->lay[l->src[j]].out) != NULL;
		if (!ready)
			continue;
		fe_build_layer(f, l, in);
		fe_note_instances(f, l->inst);
	}
	free(in);
	free(order);
}

void fe_sequential(fe *f, const yt_node *v, mlc_loc key)
{
	if (!fe_body_ok(f, v, false, key))
		return;
	if (f->ninputs > 1)
		mlc_error_at(f->d, key,
			     "'layers:' reads a single input, but 'inputs' declares %d; wire several "
			     "inputs with 'graph:'",
			     f->ninputs);
	int out = fe_scope_run(f, &f->top, v, false, NULL, f->ninputs == 1 ? 0 : -1);
	build_all(f);
	f->output = out >= 0 ? f->lay[out].out : NULL;
}

void fe_graph(fe *f, const yt_node *v, mlc_loc key, const yt_node *output)
{
	if (!fe_body_ok(f, v, true, key))
		return;
	int out = fe_scope_run(f, &f->top, v, true, output, -1);
	build_all(f);
	f->output = out >= 0 ? f->lay[out].out : NULL;
}
