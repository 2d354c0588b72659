/* blocks.c — reusable blocks: `blocks:` definitions (parameters with
 * defaults, named inputs, a `layers:` or `graph:` body), checked once on
 * their own; and instances, which copy the body with `$param` values
 * substituted and read it as a scope of layers named "<instance>.<layer>".
 * Mistakes in a block's text are reported once, at the definition; errors
 * that depend on an instance (its arguments, its input's shape) are reported
 * where they occur, followed by notes naming the instance. */
#include "fe.h"

#include <stdlib.h>
#include <string.h>

enum {
	MAX_REPEAT = 10000,
	MAX_NESTING = 64,       /* blocks inside blocks inside ... */
	MAX_LAYERS = 10000,     /* layers written, and made by instantiating and repeating blocks */
};

bool fe_is_ref(const yt_node *v)
{
	return v->kind == YT_SCALAR && !v->quoted && v->str[0] == '$';
}

/* The first `$name` in v, or NULL. */
static const yt_node *first_ref(const yt_node *v)
{
	if (v->kind == YT_SCALAR)
		return fe_is_ref(v) ? v : NULL;
	for (int i = 0; i < v->n; i++) {
		const yt_node *r = first_ref(v->val[i]);
		if (r)
			return r;
	}
	return NULL;
}

bool fe_has_ref(const yt_node *v)
{
	return first_ref(v) != NULL;
}

static int param_index(const fe_block *b, const char *name)
{
	for (int i = 0; i < b->nparams; i++)
		if (strcmp(b->pname[i], name) == 0)
			return i;
	return -1;
}

/* ---- `$name` references ---- */

static void ref_error(fe *f, const yt_node *v, const fe_block *b)
{
	if (!b) {
		mlc_error_at(f->d, v->loc, "'%s' refers to a block parameter, but this is not inside a block", v->str);
		return;
	}
	const char *s = fe_suggest(f, v->str + 1, b->pname);
	if (s)
		mlc_error_at(f->d, v->loc, "unknown parameter '%s' in block '%s'; did you mean '$%s'?", v->str,
			     b->name, s);
	else if (b->nparams)
		mlc_error_at(f->d, v->loc, "unknown parameter '%s' in block '%s'; its parameters are: %s", v->str,
			     b->name, fe_join(f, b->pname));
	else
		mlc_error_at(f->d, v->loc, "unknown parameter '%s': block '%s' has no parameters", v->str, b->name);
}

static void refs_in(fe *f, const yt_node *v, const fe_block *b)
{
	if (v->kind == YT_SCALAR) {
		if (fe_is_ref(v) && (!b || param_index(b, v->str + 1) < 0))
			ref_error(f, v, b);
		return;
	}
	for (int i = 0; i < v->n; i++)
		refs_in(f, v->val[i], b);
}

void fe_check_refs(fe *f, const yt_node *item, const fe_block *b)
{
	static const char *const wiring[] = {"input", "inputs", "name", NULL};
	if (fe_is_ref(item) && b) {
		mlc_error_at(f->d, item->loc, "a parameter can't stand for a whole layer; use it for a value, "
			     "e.g. 'conv2d: $width'");
		return;
	}
	if (item->kind != YT_MAP) {
		refs_in(f, item, b);
		return;
	}
	for (int k = 0; k < item->n; k++) {
		const yt_node *r = first_ref(item->val[k]);
		bool wires = false;
		for (int w = 0; wiring[w]; w++)
			wires |= strcmp(item->key[k]->str, wiring[w]) == 0;
		if (r && wires && b)
			mlc_error_at(f->d, r->loc, "'%s' can't use a block parameter: the wiring inside a block "
				     "is fixed", item->key[k]->str);
		else
			refs_in(f, item->val[k], b);
	}
}

/* A copy of v with every `$param` replaced by its value in env; subtrees
 * without references are shared, not copied. */
static const yt_node *subst(fe *f, const yt_node *v, const fe_block *b, const yt_node *const *env)
{
	if (v->kind == YT_SCALAR) {
		int p = fe_is_ref(v) ? param_index(b, v->str + 1) : -1;
		return p >= 0 ? env[p] : v;
	}
	yt_node *copy = NULL;
	for (int i = 0; i < v->n; i++) {
		const yt_node *c = subst(f, v->val[i], b, env);
		if (c == v->val[i] && !copy)
			continue;
		if (!copy) {
			copy = mlc_arena_alloc(f->tmp, sizeof *copy);
			*copy = *v;
			copy->val = mlc_arena_alloc(f->tmp, sizeof *copy->val * (size_t)v->n);
			memcpy(copy->val, v->val, sizeof *copy->val * (size_t)v->n);
		}
		copy->val[i] = (yt_node *)c;
	}
	return copy ? copy : v;
}

/* ---- how a layer uses a block: `bottleneck: {width: 16}`, `repeat: 4` ---- */

static bool arg_block(fe *f, fe_layer *l, const yt_node *v)
{
	const fe_block *b = l->kind->block;
	l->args.block_args = NULL;
	if (b->bad_header)
		return true; /* its parameters are unknown; its instances are skipped */
	bool map = v && v->kind == YT_MAP;
	if (v && !yt_is_null(v) && !map) {
		mlc_error_at(f->d, v->loc, "block '%s' takes its parameters as a mapping, e.g. '%s: {%s: ...}', got %s",
			     b->name, b->name, b->nparams ? b->pname[0] : "name", fe_show(f, v));
		return false;
	}
	bool ok = true;
	for (int i = 0; map && i < v->n; i++) {
		const yt_node *k = v->key[i];
		if (param_index(b, k->str) >= 0)
			continue;
		ok = false;
		const char *s = fe_suggest(f, k->str, b->pname);
		if (s)
			mlc_error_at(f->d, k->loc, "unknown parameter '%s' of block '%s'; did you mean '%s'?", k->str,
				     b->name, s);
		else if (b->nparams)
			mlc_error_at(f->d, k->loc, "unknown parameter '%s' of block '%s'; its parameters are: %s",
				     k->str, b->name, fe_join(f, b->pname));
		else
			mlc_error_at(f->d, k->loc, "unknown parameter '%s': block '%s' has no parameters", k->str,
				     b->name);
	}
	for (int p = 0; p < b->nparams; p++) {
		if (b->pdef[p] || (map && yt_get(v, b->pname[p], NULL)))
			continue;
		ok = false;
		if (map && fe_misspelled(v, b->pname[p], b->pname))
			continue; /* the did-you-mean said it */
		mlc_error_at(f->d, l->loc, "block '%s' needs a value for its parameter '%s', e.g. '%s: {%s: ...}'",
			     b->name, b->pname[p], b->name, b->pname[p]);
		mlc_note_at(f->d, b->pkey[p]->loc, "'%s' is declared here without a default", b->pname[p]);
	}
	if (ok)
		l->args.block_args = map ? v : NULL;
	return ok;
}

static bool key_repeat(fe *f, fe_layer *l, const yt_node *v)
{
	l->args.repeat_loc = v->loc;
	return fe_int(f, v, "repeat", 1, MAX_REPEAT, &l->args.repeat);
}

static const fe_attr block_attrs[] = {{"repeat", key_repeat}, {NULL, NULL}};

/* ---- definitions ---- */

static void read_params(fe *f, fe_block *b, const yt_node *v)
{
	int n = v && v->kind == YT_MAP ? v->n : 0;
	b->pname = mlc_arena_alloc(f->tmp, sizeof *b->pname * (size_t)(n + 1));
	b->pkey = mlc_arena_alloc(f->tmp, sizeof *b->pkey * (size_t)(n + 1));
	b->pdef = mlc_arena_alloc(f->tmp, sizeof *b->pdef * (size_t)(n + 1));
	if (!v || !fe_expect_map(f, v, "params", "'{width: 16, stride: 1}'"))
		return;
	for (int i = 0; i < n; i++) {
		const yt_node *k = v->key[i], *d = v->val[i];
		if (!fe_ident(f, k, "a block parameter"))
			continue;
		const yt_node *r = first_ref(d);
		if (yt_is_null(d)) {
			mlc_error_at(f->d, k->loc, "parameter '%s' of block '%s' needs a default value, or "
				     "'required'", k->str, b->name);
			continue;
		}
		if (r) {
			mlc_error_at(f->d, r->loc, "the default of parameter '%s' can't use another parameter (%s)",
				     k->str, r->str);
			continue;
		}
		bool required = d->kind == YT_SCALAR && !d->quoted && strcmp(d->str, "required") == 0;
		b->pname[b->nparams] = k->str;
		b->pkey[b->nparams] = k;
		b->pdef[b->nparams++] = required ? NULL : d;
	}
}

/* graph bodies: `input: x` or `inputs: [a, b]`, the names the body reads. */
static void read_inputs(fe *f, fe_block *b, const yt_node *m)
{
	mlc_loc k1 = {0}, k2 = {0};
	const yt_node *one = yt_get(m, "input", &k1), *many = yt_get(m, "inputs", &k2);
	b->ninputs = 1;
	if (one && many) {
		bool later = k2.line > k1.line || (k2.line == k1.line && k2.col > k1.col);
		mlc_error_at(f->d, later ? k2 : k1, "give either 'input' or 'inputs', not both");
		return;
	}
	if (!one && !many) {
		static const char *const keys[] = {"params", "input", "inputs", "graph", "layers", "output", NULL};
		if (!fe_misspelled(m, "input", keys) && !fe_misspelled(m, "inputs", keys))
			mlc_error_at(f->d, b->loc, "block '%s' needs 'input: <name>' naming its input inside "
				     "'graph' ('inputs: [<name>, <name>]' for several)", b->name);
		return;
	}
	if (many && (many->kind != YT_SEQ || many->n == 0)) {
		mlc_error_at(f->d, many->loc, "expected a list of names for 'inputs', got %s",
			     many->kind == YT_SEQ ? "an empty list" : fe_show(f, many));
		return;
	}
	int n = many ? many->n : 1;
	b->input = mlc_arena_alloc(f->tmp, sizeof *b->input * (size_t)n);
	for (int i = 0; i < n; i++) {
		const yt_node *v = many ? many->val[i] : one;
		if (!fe_ident(f, v, "a block input"))
			return;
		for (int j = 0; j < i; j++)
			if (strcmp(b->input[j]->str, v->str) == 0) {
				mlc_error_at(f->d, v->loc, "the input '%s' is listed twice", v->str);
				return;
			}
		b->input[i] = v;
	}
	b->ninputs = n;
}

static void read_block(fe *f, fe_block *b, const yt_node *v)
{
	static const char *const keys[] = {"params", "input", "inputs", "graph", "layers", "output", NULL};
	int errors = mlc_diag_errors(f->d);
	b->ninputs = 1;
	if (!fe_expect_map(f, v, b->name, "'{layers: [conv2d: 16, relu]}'")) {
		b->bad_header = b->bad = true;
		read_params(f, b, NULL);
		return;
	}
	fe_check_keys(f, v, keys, mlc_arena_printf(f->tmp, "in block '%s'", b->name));
	read_params(f, b, yt_get(v, "params", NULL));
	mlc_loc kg = {0}, kl = {0}, ko = {0};
	const yt_node *graph = yt_get(v, "graph", &kg), *layers = yt_get(v, "layers", &kl);
	const yt_node *output = yt_get(v, "output", &ko);
	if (graph && layers) {
		bool graph_later = kg.line > kl.line || (kg.line == kl.line && kg.col > kl.col);
		mlc_error_at(f->d, graph_later ? kg : kl, "give either 'layers' or 'graph', not both");
	} else if (graph) {
		b->body = graph;
		b->body_key = kg;
		b->graph_form = true;
		b->output = output;
		read_inputs(f, b, v);
	} else if (layers) {
		b->body = layers;
		b->body_key = kl;
		mlc_loc ki = {0};
		if (yt_get(v, "input", &ki) || yt_get(v, "inputs", &ki))
			mlc_error_at(f->d, ki, "'input' is only used with a 'graph:' body; a 'layers:' body reads "
				     "the block's one input");
		if (output)
			mlc_error_at(f->d, ko, "'output' is only used with a 'graph:' body; the output of "
				     "'layers:' is its last layer");
	} else if (!fe_misspelled(v, "layers", keys) && !fe_misspelled(v, "graph", keys)) {
		mlc_error_at(f->d, b->loc, "block '%s' needs a body: 'layers: [...]' or 'graph: {...}'", b->name);
	}
	b->kind.arity = b->ninputs;
	b->bad_header = b->bad = mlc_diag_errors(f->d) > errors || !b->body;
}

/* Parses the body once with its parameters left open ($-values are skipped):
 * unknown keys, ops, names, wiring and cycles are reported here, once. */
static void check_definition(fe *f, fe_block *b)
{
	int errors = mlc_diag_errors(f->d);
	int lo = f->nlay;
	fe_scope sc = {.prefix = "", .inst = -1, .def = b, .lo = lo};
	for (int i = 0; i < b->ninputs; i++) {
		fe_layer *q = fe_new_layer(f); /* like a model input */
		if (b->graph_form) {
			fe_set_name(f, &sc, q, b->input[i]->str);
			q->loc = q->name_loc = b->input[i]->loc;
			fe_names_put(&sc.names, q->local, lo + i);
		}
	}
	if (fe_body_ok(f, b->body, b->graph_form, b->body_key))
		fe_scope_run(f, &sc, b->body, b->graph_form, b->output, lo);
	fe_names_free(&sc.names);
	f->nlay = lo;
	if (mlc_diag_errors(f->d) > errors)
		b->bad = true;
}

void fe_block_use(fe *f, const fe_scope *sc, int idx)
{
	fe_block *b = &f->blocks[sc->def - f->blocks];
	if (b->nuse == b->capuse) {
		b->capuse = b->capuse ? 2 * b->capuse : 4;
		int *use = mlc_arena_alloc(f->tmp, sizeof *use * (size_t)b->capuse);
		mlc_loc *loc = mlc_arena_alloc(f->tmp, sizeof *loc * (size_t)b->capuse);
		if (b->nuse) {
			memcpy(use, b->use, sizeof *use * (size_t)b->nuse);
			memcpy(loc, b->use_loc, sizeof *loc * (size_t)b->nuse);
		}
		b->use = use;
		b->use_loc = loc;
	}
	b->use[b->nuse] = (int)(f->lay[idx].kind->block - f->blocks);
	b->use_loc[b->nuse++] = f->lay[idx].loc;
}

/* A block that uses itself, directly or through others, would expand
 * forever: depth-first over the uses with an explicit stack, as for cycles
 * of layers. */
static void check_recursion(fe *f)
{
	int *stack = mlc_xmalloc(sizeof *stack * (size_t)(f->nblocks + 1));
	for (int s = 0; s < f->nblocks; s++) {
		if (f->blocks[s].mark)
			continue;
		int sp = 0;
		f->blocks[s].mark = 1;
		f->blocks[s].stackpos = sp;
		stack[sp++] = s;
		while (sp) {
			fe_block *t = &f->blocks[stack[sp - 1]];
			if (t->next_use == t->nuse) {
				t->mark = 2;
				sp--;
				continue;
			}
			int j = t->next_use++;
			fe_block *u = &f->blocks[t->use[j]];
			if (u->mark == 0) {
				u->mark = 1;
				u->stackpos = sp;
				stack[sp++] = t->use[j];
				continue;
			}
			if (u->mark != 1)
				continue;
			enum { SHOWN = 10 }; /* a long cycle is summarized, not listed */
			int len = sp - u->stackpos;
			const char *path = u->name;
			for (int i = u->stackpos + 1; i < sp && i - u->stackpos < SHOWN; i++)
				path = mlc_arena_printf(f->tmp, "%s -> %s", path, f->blocks[stack[i]].name);
			if (len > SHOWN)
				path = mlc_arena_printf(f->tmp, "%s -> ... -> %s", path, t->name);
			if (u == t)
				mlc_error_at(f->d, t->use_loc[j], "block '%s' uses itself; blocks can't be recursive",
					     t->name);
			else
				mlc_error_at(f->d, t->use_loc[j], "blocks can't be recursive: %s -> %s%s", path, u->name,
					     len > SHOWN ? mlc_arena_printf(f->tmp, " (%d blocks)", len) : "");
			for (int i = u->stackpos; i < sp; i++)
				f->blocks[stack[i]].bad = true;
		}
	}
	free(stack);
}

void fe_blocks(fe *f, const yt_node *v, mlc_loc key)
{
	fe_note_instances(f, -1);
	if (!fe_expect_map(f, v, "blocks", "'conv_bn: {layers: [conv2d: 16, batchnorm, relu]}'"))
		return;
	f->blocks = mlc_arena_alloc(f->tmp, sizeof *f->blocks * (size_t)(v->n ? v->n : 1));
	for (int i = 0; i < v->n; i++) {
		const yt_node *k = v->key[i];
		fe_block *b = &f->blocks[f->nblocks++];
		b->name = k->str;
		b->loc = k->loc;
		b->kind = (fe_kind){b->name, OP_COUNT, 1, arg_block, block_attrs, fe_build_alias, b};
		bool named = fe_ident(f, k, "a block") != NULL;
		if (named && fe_kind_find(f, k->str)) {
			mlc_error_at(f->d, k->loc, "block '%s' has the name of a layer op; choose another name", k->str);
			named = false;
		}
		if (named)
			fe_names_put(&f->block_names, b->name, i);
		read_block(f, b, v->val[i]);
		b->bad |= !named;
	}
	for (int i = 0; i < f->nblocks; i++)
		if (!f->blocks[i].bad)
			check_definition(f, &f->blocks[i]);
	check_recursion(f);
	fe_note_instances(f, -1);
}

/* ---- instances ---- */

void fe_note_instances(fe *f, int inst)
{
	enum { SHOWN = 4 }; /* innermost instances; then only the outermost */
	int errors = mlc_diag_errors(f->d);
	if (errors <= f->noted)
		return;
	f->noted = errors;
	int depth = 0;
	for (int k = inst; k >= 0; k = f->inst[k].parent)
		depth++;
	int shown = 0;
	for (int k = inst; k >= 0; k = f->inst[k].parent, shown++) {
		const fe_inst *in = &f->inst[k];
		if (shown < SHOWN || in->parent < 0)
			mlc_note_at(f->d, in->loc, "in instance '%s' of block '%s'%s", in->name, in->block->name,
				    shown >= SHOWN ? mlc_arena_printf(f->tmp, " (%d more between)", depth - SHOWN - 1)
						   : "");
	}
}

bool fe_budget(fe *f, int64_t n, mlc_loc loc, int inst)
{
	if (f->too_big)
		return false;
	f->expanded += n;
	if (f->expanded <= MAX_LAYERS)
		return true;
	f->too_big = true;
	mlc_error_at(f->d, loc, "the model has more than %d layers (written, and made by its blocks); "
		     "mlc builds at most %d", MAX_LAYERS, MAX_LAYERS);
	fe_note_instances(f, inst);
	return false;
}

void fe_expand(fe *f, fe_scope *sc, int idx)
{
	fe_note_instances(f, sc->inst);
	fe_layer *l = &f->lay[idx];
	const fe_block *b = l->kind->block;
	bool again = f->failed_loc.line && l->args.block_args == f->failed_args &&
		     l->loc.line == f->failed_loc.line && l->loc.col == f->failed_loc.col &&
		     l->loc.file == f->failed_loc.file;
	if (l->bad || b->bad || again) {
		l->bad = true;
		return;
	}
	if (sc->depth >= MAX_NESTING) {
		mlc_error_at(f->d, l->loc, "blocks are nested more than %d deep here", MAX_NESTING);
		fe_note_instances(f, sc->inst);
		l->bad = true;
		return;
	}
	if (!fe_budget(f, b->body->n + b->ninputs, l->loc, sc->inst)) {
		l->bad = true;
		return;
	}
	const yt_node **env = mlc_arena_alloc(f->tmp, sizeof *env * (size_t)(b->nparams + 1));
	for (int p = 0; p < b->nparams; p++) {
		const yt_node *a = yt_get(l->args.block_args, b->pname[p], NULL);
		env[p] = a ? a : b->pdef[p];
		MLC_ASSERT(env[p]); /* a missing one was reported, and l is bad */
	}
	if (f->ninst == f->capinst) {
		f->capinst = f->capinst ? 2 * f->capinst : 16;
		f->inst = mlc_xrealloc(f->inst, sizeof *f->inst * (size_t)f->capinst);
	}
	int k = f->ninst++;
	MLC_ASSERT(l->inst == sc->inst); /* so fe_frozen sees the enclosing instance */
	f->inst[k] = (fe_inst){l->name, b, l->loc, sc->inst, fe_frozen(f, l), l->lr_mult};

	fe_scope child = {.inst = k, .depth = sc->depth + 1, .lo = f->nlay};
	child.prefix = mlc_arena_printf(f->tmp, "%s.", l->name);
	int nin = b->ninputs;
	MLC_ASSERT(l->nsrc == nin);
	int *outer = mlc_arena_alloc(f->tmp, sizeof *outer * (size_t)nin);
	memcpy(outer, l->src, sizeof *outer * (size_t)nin);
	for (int p = 0; p < nin; p++) {
		int j = f->nlay;
		fe_layer *q = fe_new_layer(f); /* l is stale from here on */
		q->kind = &fe_kind_port;
		q->inst = k;
		if (b->graph_form) {
			fe_set_name(f, &child, q, b->input[p]->str);
			q->loc = q->name_loc = b->input[p]->loc;
			fe_names_put(&child.names, q->local, j);
		} else {
			q->loc = q->name_loc = b->body_key;
		}
		fe_wire(f, q, outer[p]);
	}
	const yt_node *body = subst(f, b->body, b, env);
	int errors = mlc_diag_errors(f->d);
	int out = fe_scope_run(f, &child, body, b->graph_form, b->output, child.lo);
	if (mlc_diag_errors(f->d) > errors) {
		f->failed_loc = f->lay[idx].loc;
		f->failed_args = f->lay[idx].args.block_args;
	}
	fe_names_free(&child.names);
	l = &f->lay[idx];
	fe_wire(f, l, out); /* the instance stands for its body's output */
	l->bad |= out < 0;
}
