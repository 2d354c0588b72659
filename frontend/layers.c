/* layers.c — the layer table: every layer op of the spec with its argument,
 * its attribute keys and the builder that turns it into graph nodes; plus
 * reading one layer item and naming layers. Adding a layer = one row here,
 * its key parsers and (if it is not a single op node) a builder. */
#include "fe.h"

#include <string.h>

static const char *const act_names[] = {"none", "linear", "relu", "leaky_relu", "sigmoid",
					"tanh", "step", "softmax", NULL};
static const mlc_opcode act_ops[] = {OP_COUNT, OP_COUNT, OP_RELU, OP_LEAKY_RELU, OP_SIGMOID,
				     OP_TANH, OP_STEP, OP_SOFTMAX};
_Static_assert(MLC_COUNTOF(act_names) == MLC_COUNTOF(act_ops) + 1, "activation table");

static const char *const init_names[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
					 "zeros", "uniform", "normal", NULL};

/* Sets a numeric attribute by its ops.def schema name, so the frontend never
 * hard-codes a slot number that ops.def owns. */
static void attr_set(mlc_opcode op, mlc_attrs *a, const char *name, double v)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int n = mlc_op_attrs(op, desc, (int)MLC_COUNTOF(desc));
	for (int i = 0; i < n; i++)
		if (strcmp(desc[i].name, name) == 0) {
			MLC_ASSERT(desc[i].kind == 'f' || desc[i].kind == 'i');
			if (desc[i].kind == 'f')
				a->f[desc[i].slot] = v;
			else
				a->i[desc[i].slot] = (int64_t)v;
			return;
		}
	mlc_die(__FILE__, __LINE__, "op %s has no attribute %s", mlc_ops[op].name, name);
}

/* ---- argument and attribute parsers (fe_attr_fn) ---- */

static bool arg_units(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v)) {
		/* at the op: a null's own position is past the end of the line */
		mlc_error_at(f->d, l->loc, "dense needs its number of units, e.g. 'dense: 128'");
		return false;
	}
	return fe_int(f, v, "units", 1, INT32_MAX, &l->args.units);
}

static bool arg_none(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v))
		return true;
	mlc_error_at(f->d, v->loc, "%s takes no argument, got %s", l->kind->name, fe_show(f, v));
	return false;
}

/* An optional number stored in the op attribute of the same name. */
static bool arg_number(fe *f, fe_layer *l, const yt_node *v, const char *attr, fe_range r)
{
	double x;
	if (!v || yt_is_null(v))
		return true;
	if (!fe_num(f, v, attr, r, &x))
		return false;
	attr_set(l->kind->op, &l->args.attr, attr, x);
	return true;
}

static bool arg_alpha(fe *f, fe_layer *l, const yt_node *v)
{
	return arg_number(f, l, v, "alpha", FE_ANY);
}

static bool arg_slope(fe *f, fe_layer *l, const yt_node *v)
{
	return arg_number(f, l, v, "slope", FE_POSITIVE);
}

static bool key_activation(fe *f, fe_layer *l, const yt_node *v)
{
	int i = fe_enum(f, v, "activation", "activation", act_names);
	if (i >= 0)
		l->args.act = act_ops[i];
	return i >= 0;
}

static bool key_bias(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_bool(f, v, "bias", &l->args.bias);
}

static bool key_init(fe *f, fe_layer *l, const yt_node *v)
{
	int i = fe_enum(f, v, "init", "initializer", init_names);
	if (i >= 0)
		l->args.init = init_names[i];
	return i >= 0;
}

static bool key_straight_through(fe *f, fe_layer *l, const yt_node *v)
{
	bool b;
	if (!fe_bool(f, v, "straight_through", &b))
		return false;
	attr_set(OP_STEP, &l->args.attr, "ste", b);
	return true;
}

/* ---- builders ---- */

mlc_node *fe_emit(fe *f, const char *layer, mlc_loc loc, mlc_opcode op, const mlc_attrs *attr,
		  int nsrc, mlc_node *const *src)
{
	mlc_node *n = mlc_node_new(f->g, op, nsrc, src, loc);
	n->layer = layer;
	if (attr)
		n->attr = *attr;
	return mlc_ops[op].shape(n, f->d) ? n : NULL;
}

static mlc_node *param(fe *f, fe_layer *l, const char *suffix, int rank, const int64_t *dim,
		       const mlc_attrs *attr)
{
	const char *name = mlc_arena_printf(f->tmp, "%s.%s", l->name, suffix);
	mlc_node *p = mlc_source(f->g, OP_PARAM, name, DT_F32, rank, dim, l->loc);
	p->layer = l->name;
	p->attr = *attr;
	return mlc_ops[OP_PARAM].shape(p, f->d) ? p : NULL;
}

/* dense: x·Wᵀ (+ b) (→ activation), W laid out [out, in] like nn.Linear. */
static mlc_node *build_dense(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *x = in[0];
	char t[96];
	if (x->rank != 2) {
		mlc_error_at(f->d, l->loc, "dense '%s' expects a 2-D input f32[N,k], got %s", l->name,
			     mlc_type_str(x, t, sizeof t));
		return NULL;
	}
	int64_t k = x->dim[1], units = l->args.units;
	if (k * units > INT32_MAX) {
		mlc_error_at(f->d, l->loc,
			     "dense '%s' would need a %lld x %lld weight; at most %d weights per layer "
			     "are supported",
			     l->name, (long long)units, (long long)k, INT32_MAX);
		return NULL;
	}
	mlc_arena *a = f->g->arena;
	mlc_attrs wa;
	mlc_attrs_default(OP_PARAM, &wa, a);
	wa.s = mlc_arena_strdup(a, l->args.init);
	attr_set(OP_PARAM, &wa, "fan_in", (double)k);
	attr_set(OP_PARAM, &wa, "fan_out", (double)units);
	mlc_node *w = param(f, l, "weight", 2, (int64_t[]){units, k}, &wa);
	if (!w)
		return NULL;
	mlc_attrs ma;
	mlc_attrs_default(OP_MATMUL, &ma, a);
	attr_set(OP_MATMUL, &ma, "tb", 1);
	mlc_node *h = fe_emit(f, l->name, l->loc, OP_MATMUL, &ma, 2, (mlc_node *[]){x, w});
	if (h && l->args.bias) {
		mlc_attrs ba;
		mlc_attrs_default(OP_PARAM, &ba, a);
		ba.s = mlc_arena_strdup(a, "zeros");
		mlc_node *b = param(f, l, "bias", 1, (int64_t[]){units}, &ba);
		h = b ? fe_emit(f, l->name, l->loc, OP_BIAS_ADD, NULL, 2, (mlc_node *[]){h, b}) : NULL;
	}
	if (h && l->args.act != OP_COUNT)
		h = fe_emit(f, l->name, l->loc, l->args.act, NULL, 1, &h);
	return h;
}

/* Layers that are exactly one op node. */
static mlc_node *build_op(fe *f, fe_layer *l, mlc_node *const *in)
{
	return fe_emit(f, l->name, l->loc, l->kind->op, &l->args.attr, l->kind->arity, in);
}

/* ---- the table ---- */

static const fe_attr dense_keys[] = {
	{"activation", key_activation}, {"bias", key_bias}, {"init", key_init}, {NULL, NULL}};
static const fe_attr step_keys[] = {{"straight_through", key_straight_through}, {NULL, NULL}};
static const fe_attr no_keys[] = {{NULL, NULL}};

static const fe_kind kinds[] = {
	{"dense", OP_MATMUL, 1, arg_units, dense_keys, build_dense},
	{"relu", OP_RELU, 1, arg_none, no_keys, build_op},
	{"leaky_relu", OP_LEAKY_RELU, 1, arg_alpha, no_keys, build_op},
	{"sigmoid", OP_SIGMOID, 1, arg_slope, no_keys, build_op},
	{"tanh", OP_TANH, 1, arg_none, no_keys, build_op},
	{"step", OP_STEP, 1, arg_none, step_keys, build_op},
	{"softmax", OP_SOFTMAX, 1, arg_none, no_keys, build_op},
	{"add", OP_ADD, 2, arg_none, no_keys, build_op},
};
enum { NKINDS = MLC_COUNTOF(kinds) };

const fe_kind *fe_kind_find(const char *name)
{
	for (int i = 0; i < NKINDS; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

static const char *const *kind_names(fe *f)
{
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (NKINDS + 1));
	for (int i = 0; i < NKINDS; i++)
		v[i] = kinds[i].name;
	return v;
}

/* Keys any layer may have besides its op; in graph form the name is the key. */
static const char *const seq_common[] = {"name", NULL};
static const char *const graph_common[] = {"input", "inputs", NULL};

/* Is `key` an attribute some layer op takes? Then a mapping holding only such
 * keys lacks its op, rather than misspelling it. */
static bool any_attr_key(const char *key)
{
	for (int i = 0; i < NKINDS; i++)
		for (const fe_attr *a = kinds[i].attrs; a->key; a++)
			if (strcmp(a->key, key) == 0)
				return true;
	for (const char *const *p = seq_common; *p; p++)
		if (strcmp(*p, key) == 0)
			return true;
	for (const char *const *p = graph_common; *p; p++)
		if (strcmp(*p, key) == 0)
			return true;
	return false;
}

static void unknown_op(fe *f, const yt_node *k)
{
	const char *const *names = kind_names(f);
	const char *s = fe_suggest(f, k->str, names);
	if (s) {
		mlc_error_at(f->d, k->loc, "unknown layer op '%s'; did you mean '%s'?", k->str, s);
		return;
	}
	mlc_error_at(f->d, k->loc, "unknown layer op '%s'; expected one of: %s", k->str, fe_join(f, names));
}

/* Finds the one key of a layer mapping that names an op; NULL after an error. */
static const yt_node *find_op_key(fe *f, const yt_node *m)
{
	const yt_node *op = NULL;
	bool ok = true;
	for (int i = 0; i < m->n; i++) {
		if (!fe_kind_find(m->key[i]->str))
			continue;
		if (op) {
			mlc_error_at(f->d, m->key[i]->loc,
				     "a layer has exactly one op, but this one has both '%s' and '%s'",
				     op->str, m->key[i]->str);
			ok = false;
		} else {
			op = m->key[i];
		}
	}
	if (op)
		return ok ? op : NULL;
	for (int i = 0; i < m->n; i++)
		if (!any_attr_key(m->key[i]->str)) {
			unknown_op(f, m->key[i]);
			return NULL;
		}
	mlc_error_at(f->d, m->loc, "this layer has no op; it needs a key such as 'dense: 128' or 'relu:'");
	return NULL;
}

/* The allowed keys of a layer in messages: its attributes + the common ones. */
static const char *const *allowed_keys(fe *f, const fe_kind *k, bool graph_form)
{
	const char *const *common = graph_form ? graph_common : seq_common;
	int n = 0, c = 0;
	while (k->attrs[n].key)
		n++;
	while (common[c])
		c++;
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(n + c + 1));
	for (int i = 0; i < n; i++)
		v[i] = k->attrs[i].key;
	for (int i = 0; i < c; i++)
		v[n + i] = common[i];
	return v;
}

/* graph form: `input: a` or `inputs: [a, b]` */
static bool parse_inputs(fe *f, fe_layer *l, const yt_node *k, const yt_node *v)
{
	if (l->inputs_key) {
		mlc_error_at(f->d, k->loc, "give either 'input' or 'inputs', not both");
		return false;
	}
	l->inputs_key = k;
	int n = 1;
	const yt_node *const *items = &v;
	if (strcmp(k->str, "inputs") == 0) {
		if (v->kind != YT_SEQ || v->n == 0) {
			mlc_error_at(f->d, v->loc, "expected a list of names for 'inputs', got %s",
				     v->kind == YT_SEQ ? "an empty list" : fe_show(f, v));
			return false;
		}
		n = v->n;
		items = (const yt_node *const *)v->val;
	}
	bool ok = true;
	for (int i = 0; i < n; i++)
		ok &= fe_str(f, items[i], k->str) != NULL;
	if (!ok)
		return false;
	if (n != l->kind->arity) {
		mlc_error_at(f->d, v->loc, "%s reads %d input%s, but this names %d", l->kind->name,
			     l->kind->arity, l->kind->arity == 1 ? "" : "s", n);
		return false;
	}
	l->nsrc = n;
	for (int i = 0; i < n; i++)
		l->src_node[i] = items[i];
	return true;
}

fe_layer *fe_new_layer(fe *f)
{
	if (f->nlay == f->caplay) {
		f->caplay = f->caplay ? 2 * f->caplay : 16;
		f->lay = mlc_xrealloc(f->lay, sizeof *f->lay * (size_t)f->caplay);
	}
	fe_layer *l = &f->lay[f->nlay++];
	memset(l, 0, sizeof *l);
	return l;
}

static void parse_key(fe *f, fe_layer *l, const yt_node *k, const yt_node *v, bool graph_form)
{
	const char *key = k->str;
	if (strcmp(key, "name") == 0 && !graph_form) {
		const char *s = fe_ident(f, v, "a layer");
		if (s) {
			l->name = mlc_arena_strdup(f->g->arena, s);
			l->name_loc = v->loc;
		}
		return;
	}
	if (strcmp(key, "name") == 0) {
		mlc_error_at(f->d, k->loc, "'name' is not used in 'graph:' form: this node is named '%s' by its key",
			     l->name);
		return;
	}
	if (strcmp(key, "input") == 0 || strcmp(key, "inputs") == 0) {
		if (graph_form)
			l->bad |= !parse_inputs(f, l, k, v);
		else
			mlc_error_at(f->d, k->loc,
				     "'%s' is only used in 'graph:' form; in 'layers:' each layer reads the one "
				     "before it",
				     key);
		return;
	}
	for (const fe_attr *a = l->kind->attrs; a->key; a++)
		if (strcmp(a->key, key) == 0) {
			l->bad |= !a->parse(f, l, v);
			return;
		}
	const char *const *allowed = allowed_keys(f, l->kind, graph_form);
	fe_unknown_key(f, k, allowed, mlc_arena_printf(f->tmp, "in %s layer", l->kind->name));
}

void fe_parse_layer(fe *f, fe_layer *l, const yt_node *item, const yt_node *key)
{
	bool graph_form = key != NULL;
	const yt_node *opkey = NULL, *arg = NULL, *m = NULL;
	if (item->kind == YT_SCALAR && !yt_is_null(item)) {
		if (fe_kind_find(item->str))
			opkey = item;
		else
			unknown_op(f, item);
	} else if (item->kind == YT_MAP) {
		m = item;
		opkey = find_op_key(f, m);
		arg = opkey ? yt_get(m, opkey->str, NULL) : NULL;
	} else {
		mlc_error_at(f->d, item->loc,
			     "expected a layer such as '{dense: 128, activation: relu}' or 'relu', got %s",
			     fe_show(f, item));
	}
	if (!opkey) {
		l->bad = true;
		return;
	}
	const fe_kind *k = fe_kind_find(opkey->str);
	l->kind = k;
	l->loc = opkey->loc;
	l->args.units = 0;
	l->args.act = OP_COUNT;
	l->args.bias = true;
	l->args.init = init_names[0];
	mlc_attrs_default(k->op, &l->args.attr, f->g->arena);
	if (!graph_form && k->arity != 1) {
		mlc_error_at(f->d, l->loc,
			     "%s reads %d inputs, so it needs the 'graph:' form with 'inputs: [a, b]'",
			     k->name, k->arity);
		l->bad = true;
	}
	l->bad |= !k->primary(f, l, arg);
	for (int i = 0; m && i < m->n; i++)
		if (m->key[i] != opkey)
			parse_key(f, l, m->key[i], m->val[i], graph_form);
	if (graph_form && !l->inputs_key) {
		mlc_error_at(f->d, l->loc, "node '%s' needs to say what it reads: add %s", l->name,
			     k->arity == 1 ? "'input: <name>'" : "'inputs: [<name>, <name>]'");
		l->bad = true;
	}
}

bool fe_claim_name(fe *f, int idx)
{
	fe_layer *l = &f->lay[idx];
	int prev = fe_names_get(&f->names, l->name);
	if (prev < 0) {
		fe_names_put(&f->names, l->name, idx);
		return true;
	}
	const fe_layer *p = &f->lay[prev];
	mlc_error_at(f->d, l->name_loc, "the name '%s' is already used by %s", l->name,
		     p->kind ? "a layer" : "an input");
	mlc_note_at(f->d, p->name_loc, "'%s' is defined here", p->name);
	return false;
}

/* Explicit names first, so that a default name never takes one written later. */
void fe_default_names(fe *f, int first)
{
	for (int i = first; i < f->nlay; i++)
		if (f->lay[i].name)
			fe_claim_name(f, i);
	int count[NKINDS] = {0};
	for (int i = first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		if (l->name || !l->kind)
			continue;
		int ki = (int)(l->kind - kinds);
		do
			l->name = mlc_arena_printf(f->g->arena, "%s%d", l->kind->name, ++count[ki]);
		while (fe_names_get(&f->names, l->name) >= 0);
		l->name_loc = l->loc;
		fe_names_put(&f->names, l->name, i);
	}
}

void fe_build_layer(fe *f, fe_layer *l, mlc_node *const *in)
{
	l->out = l->bad ? NULL : l->kind->build(f, l, in);
}
