/* layers.c — the layer table: every layer op of the spec with its argument
 * and attribute keys (their parsers live here, the builders in build.c);
 * plus reading one layer item and naming layers. Adding a layer = one row
 * here, its key parsers and (if it is not a single op node) a builder. */
#include "fe.h"

#include <string.h>

static const char *const act_names[] = {"none", "linear", "relu", "leaky_relu", "sigmoid",
					"tanh", "step", "softmax", NULL};
static const mlc_opcode act_ops[] = {OP_COUNT, OP_COUNT, OP_RELU, OP_LEAKY_RELU, OP_SIGMOID,
				     OP_TANH, OP_STEP, OP_SOFTMAX};
_Static_assert(MLC_COUNTOF(act_names) == MLC_COUNTOF(act_ops) + 1, "activation table");

enum { MAX_WINDOW = 1 << 20 }; /* kernel, stride, dilation and padding sizes */

/* ---- argument and attribute parsers (fe_attr_fn) ---- */

/* A required positive count: dense units, conv2d filters. */
static bool arg_count(fe *f, fe_layer *l, const yt_node *v, const char *what, const char *example)
{
	if (!v || yt_is_null(v)) {
		/* at the op: a null's own position is past the end of the line */
		mlc_error_at(f->d, l->loc, "%s needs its number of %s, e.g. '%s'", l->kind->name, what, example);
		return false;
	}
	return fe_int(f, v, what, 1, INT32_MAX, &l->args.units);
}

static bool arg_units(fe *f, fe_layer *l, const yt_node *v)
{
	return arg_count(f, l, v, "units", "dense: 128");
}

static bool arg_filters(fe *f, fe_layer *l, const yt_node *v)
{
	return arg_count(f, l, v, "filters", "conv2d: 32");
}

static bool arg_none(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v))
		return true;
	mlc_error_at(f->d, v->loc, "%s takes no argument, got %s", l->kind->name, fe_show(f, v));
	return false;
}

/* An optional number stored in the op attribute of the same name. */
bool fe_arg_number(fe *f, fe_layer *l, const yt_node *v, const char *attr, fe_range r)
{
	double x;
	if (!v || yt_is_null(v))
		return true;
	if (!fe_num(f, v, attr, r, &x))
		return false;
	fe_attr_set(l->kind->op, &l->args.attr, attr, x);
	return true;
}

static bool arg_alpha(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "alpha", FE_ANY);
}

static bool arg_slope(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "slope", FE_POSITIVE);
}

static bool arg_p(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "p", FE_UNIT);
}

static bool key_momentum(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "momentum", (fe_range){0, 1, false, false});
}

static bool key_eps(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "eps", FE_POSITIVE);
}

/* An integer for both dimensions, or [h, w]. */
static bool read_pair(fe *f, const yt_node *v, const char *what, int64_t lo, int64_t out[2])
{
	if (v->kind != YT_SEQ) {
		if (!fe_int(f, v, what, lo, MAX_WINDOW, &out[0]))
			return false;
		out[1] = out[0];
		return true;
	}
	if (v->n != 2) {
		mlc_error_at(f->d, v->loc, "expected an integer or a list [h, w] for '%s', got a list of %d",
			     what, v->n);
		return false;
	}
	bool ok = fe_int(f, v->val[0], what, lo, MAX_WINDOW, &out[0]);
	return fe_int(f, v->val[1], what, lo, MAX_WINDOW, &out[1]) && ok;
}

static bool arg_pool_size(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v))
		return true;
	return read_pair(f, v, "size", 1, l->args.kernel);
}

static bool key_kernel(fe *f, fe_layer *l, const yt_node *v)
{
	return read_pair(f, v, "kernel", 1, l->args.kernel);
}

static bool key_stride(fe *f, fe_layer *l, const yt_node *v)
{
	return read_pair(f, v, "stride", 1, l->args.stride);
}

static bool key_dilation(fe *f, fe_layer *l, const yt_node *v)
{
	return read_pair(f, v, "dilation", 1, l->args.dilation);
}

static bool key_groups(fe *f, fe_layer *l, const yt_node *v)
{
	l->args.groups_loc = v->loc;
	return fe_int(f, v, "groups", 1, INT32_MAX, &l->args.groups);
}

/* valid | same | p | [h, w] | [top, left, bottom, right] */
static bool key_padding(fe *f, fe_layer *l, const yt_node *v)
{
	static const char *const modes[] = {"valid", "same", NULL};
	fe_args *a = &l->args;
	bool number = v->kind == YT_SCALAR && !v->quoted && strchr("0123456789+-", v->str[0]) && v->str[0];
	if (number || v->kind == YT_SEQ) {
		int64_t p[4];
		int n = number ? 1 : v->n;
		if (n != 1 && n != 2 && n != 4) {
			mlc_error_at(f->d, v->loc, "expected [h, w] or [top, left, bottom, right] for 'padding', "
				     "got a list of %d", n);
			return false;
		}
		bool ok = true;
		for (int i = 0; i < n; i++)
			ok &= fe_int(f, number ? v : v->val[i], "padding", 0, MAX_WINDOW, &p[i]);
		if (!ok)
			return false;
		/* [h, w] pads top/bottom by h and left/right by w */
		for (int i = 0; i < 4; i++)
			a->pad[i] = n == 1 ? p[0] : n == 2 ? p[i % 2] : p[i];
		a->pad_mode = FE_PAD_EXPLICIT;
		return true;
	}
	for (int i = 0; v->kind == YT_SCALAR && modes[i]; i++)
		if (strcmp(v->str, modes[i]) == 0) {
			a->pad_mode = i == 0 ? FE_PAD_VALID : FE_PAD_SAME;
			return true;
		}
	const char *s = v->kind == YT_SCALAR ? fe_suggest(f, v->str, modes) : NULL;
	if (s)
		mlc_error_at(f->d, v->loc, "unknown padding %s; did you mean '%s'?", fe_show(f, v), s);
	else
		mlc_error_at(f->d, v->loc, "unknown padding %s; expected 'valid', 'same', an integer, [h, w] "
			     "or [top, left, bottom, right]", fe_show(f, v));
	return false;
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
	return fe_read_init(f, v, false, &l->args.init);
}

static bool key_bias_init(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_read_init(f, v, true, &l->args.bias_init);
}

static bool key_straight_through(fe *f, fe_layer *l, const yt_node *v)
{
	bool b;
	if (!fe_bool(f, v, "straight_through", &b))
		return false;
	fe_attr_set(OP_STEP, &l->args.attr, "ste", b);
	return true;
}

/* ---- the table ---- */

static const fe_attr dense_keys[] = {
	{"activation", key_activation}, {"bias", key_bias}, {"init", key_init}, {"bias_init", key_bias_init},
	{NULL, NULL}};
static const fe_attr conv_keys[] = {
	{"kernel", key_kernel}, {"stride", key_stride}, {"padding", key_padding},
	{"dilation", key_dilation}, {"groups", key_groups}, {"activation", key_activation},
	{"bias", key_bias}, {"init", key_init}, {"bias_init", key_bias_init}, {NULL, NULL}};
static const fe_attr pool_keys[] = {{"stride", key_stride}, {"padding", key_padding}, {NULL, NULL}};
static const fe_attr bn_keys[] = {{"momentum", key_momentum}, {"eps", key_eps}, {NULL, NULL}};
static const fe_attr step_keys[] = {{"straight_through", key_straight_through}, {NULL, NULL}};
static const fe_attr no_keys[] = {{NULL, NULL}};

static const fe_kind kinds[] = {
	{"dense", OP_MATMUL, 1, arg_units, dense_keys, fe_build_dense, NULL},
	{"conv2d", OP_CONV2D, 1, arg_filters, conv_keys, fe_build_conv2d, NULL},
	{"maxpool", OP_MAXPOOL, 1, arg_pool_size, pool_keys, fe_build_pool, NULL},
	{"avgpool", OP_AVGPOOL, 1, arg_pool_size, pool_keys, fe_build_pool, NULL},
	{"global_avgpool", OP_GLOBAL_AVGPOOL, 1, arg_none, no_keys, fe_build_global_pool, NULL},
	{"flatten", OP_FLATTEN, 1, arg_none, no_keys, fe_build_op, NULL},
	{"batchnorm", OP_BATCHNORM, 1, arg_none, bn_keys, fe_build_batchnorm, NULL},
	{"dropout", OP_DROPOUT, 1, arg_p, no_keys, fe_build_dropout, NULL},
	{"relu", OP_RELU, 1, arg_none, no_keys, fe_build_op, NULL},
	{"leaky_relu", OP_LEAKY_RELU, 1, arg_alpha, no_keys, fe_build_op, NULL},
	{"sigmoid", OP_SIGMOID, 1, arg_slope, no_keys, fe_build_op, NULL},
	{"tanh", OP_TANH, 1, arg_none, no_keys, fe_build_op, NULL},
	{"step", OP_STEP, 1, arg_none, step_keys, fe_build_op, NULL},
	{"softmax", OP_SOFTMAX, 1, arg_none, no_keys, fe_build_op, NULL},
	{"add", OP_ADD, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"concat", OP_CONCAT, FE_VARIADIC, arg_none, no_keys, fe_build_concat, NULL},
	/* primitives (prim.c, docs/spec.md "Primitive ops") */
	{"sub", OP_SUB, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"mul", OP_MUL, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"div", OP_DIV, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"minimum", OP_MINIMUM, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"maximum", OP_MAXIMUM, 2, fe_arg_operand, no_keys, fe_build_binary, NULL},
	{"neg", OP_NEG, 1, arg_none, no_keys, fe_build_op, NULL},
	{"exp", OP_EXP, 1, arg_none, no_keys, fe_build_op, NULL},
	{"log", OP_LOG, 1, arg_none, no_keys, fe_build_op, NULL},
	{"sqrt", OP_SQRT, 1, arg_none, no_keys, fe_build_op, NULL},
	{"square", OP_SQUARE, 1, arg_none, no_keys, fe_build_op, NULL},
	{"abs", OP_ABS, 1, arg_none, no_keys, fe_build_op, NULL},
	{"sign", OP_SIGN, 1, arg_none, no_keys, fe_build_op, NULL},
	{"pow", OP_POW, 1, fe_arg_exponent, no_keys, fe_build_op, NULL},
	{"clamp", OP_CLAMP, 1, arg_none, fe_clamp_keys, fe_build_clamp, NULL},
	{"sum", OP_SUM, 1, arg_none, fe_reduce_keys, fe_build_op, NULL},
	{"mean", OP_MEAN, 1, arg_none, fe_reduce_keys, fe_build_op, NULL},
	{"reshape", OP_RESHAPE, 1, fe_arg_shape, no_keys, fe_build_op, NULL},
	{"slice", OP_SLICE, 1, arg_none, fe_slice_keys, fe_build_slice, NULL},
	{"detach", OP_DETACH, 1, arg_none, no_keys, fe_build_op, NULL},
	{"random_normal", OP_RANDOM_NORMAL, 1, arg_none, fe_normal_keys, fe_build_noise, NULL},
	{"random_uniform", OP_RANDOM_UNIFORM, 1, arg_none, fe_uniform_keys, fe_build_noise, NULL},
};
enum { NKINDS = MLC_COUNTOF(kinds) };

const fe_kind fe_kind_port = {"input", OP_COUNT, 1, arg_none, no_keys, fe_build_alias, NULL};

static const fe_kind *op_find(const char *name)
{
	for (int i = 0; i < NKINDS; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

const fe_kind *fe_kind_find(fe *f, const char *name)
{
	const fe_kind *k = op_find(name);
	int b = k ? -1 : fe_names_get(&f->block_names, name);
	return k ? k : b >= 0 ? &f->blocks[b].kind : NULL;
}

/* Layer ops, then blocks: the candidates of "unknown layer op". */
static const char *const *kind_names(fe *f, bool ops_only)
{
	int nb = ops_only ? 0 : f->nblocks;
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(NKINDS + nb + 1));
	int n = 0;
	for (int i = 0; i < NKINDS; i++)
		v[n++] = kinds[i].name;
	for (int i = 0; i < nb; i++)
		if (fe_names_get(&f->block_names, f->blocks[i].name) == i)
			v[n++] = f->blocks[i].name;
	return v;
}

/* Keys any layer may have besides its op; in graph form the name is the key. */
static const char *const seq_common[] = {"name", "lr_mult", "l1", "l2", NULL};
static const char *const graph_common[] = {"input", "inputs", "lr_mult", "l1", "l2", NULL};

/* Is `key` an attribute some layer op takes? Then a mapping holding only such
 * keys lacks its op, rather than misspelling it. */
static bool any_attr_key(const char *key)
{
	for (int i = 0; i < NKINDS; i++)
		for (const fe_attr *a = kinds[i].attrs; a->key; a++)
			if (strcmp(a->key, key) == 0)
				return true;
	static const char *const others[] = {"name", "input", "inputs", "repeat", "trainable", "lr_mult", "l1", "l2", NULL};
	for (const char *const *p = others; *p; p++)
		if (strcmp(*p, key) == 0)
			return true;
	return false;
}

static void unknown_op(fe *f, const yt_node *k)
{
	const char *const *names = kind_names(f, false);
	const char *s = fe_suggest(f, k->str, names);
	if (s) {
		mlc_error_at(f->d, k->loc, "unknown layer op '%s'; did you mean '%s'?", k->str, s);
		return;
	}
	/* the blocks are the spec's own: listing them here would only be noise */
	mlc_error_at(f->d, k->loc, "unknown layer op '%s'; expected one of: %s%s", k->str,
		     fe_join(f, kind_names(f, true)), f->nblocks ? ", or a block" : "");
}

static bool is_attr_of(const fe_kind *k, const char *key)
{
	for (const fe_attr *a = k->attrs; a->key; a++)
		if (strcmp(a->key, key) == 0)
			return true;
	return false;
}

/* Finds the one key of a layer mapping that names an op; NULL after an error.
 * A key that is both an op and an attribute of the other op key (random_normal's
 * `mean`) is the attribute. */
static const yt_node *find_op_key(fe *f, const yt_node *m)
{
	const yt_node *op = NULL;
	bool ok = true;
	for (int i = 0; i < m->n; i++) {
		const fe_kind *k = fe_kind_find(f, m->key[i]->str);
		if (!k)
			continue;
		if (op && is_attr_of(fe_kind_find(f, op->str), m->key[i]->str))
			continue;
		if (op && is_attr_of(k, op->str)) {
			op = m->key[i];
			continue;
		}
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

/* Layers that own parameters (or may: a block instance), so `trainable` applies. */
static bool has_params(const fe_kind *k)
{
	return k->block || k->build == fe_build_dense || k->build == fe_build_conv2d ||
	       k->build == fe_build_batchnorm;
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
	const char **v = mlc_arena_alloc(f->tmp, sizeof *v * (size_t)(n + c + 2));
	for (int i = 0; i < n; i++)
		v[i] = k->attrs[i].key;
	for (int i = 0; i < c; i++)
		v[n + i] = common[i];
	if (has_params(k))
		v[n + c++] = "trainable";
	v[n + c] = NULL;
	return v;
}

/* trainable: false freezes the layer's parameters (a block instance: every
 * parameter in its body). On a layer without parameters it would do nothing,
 * which is a mistake worth saying rather than ignoring. */
static bool key_trainable(fe *f, fe_layer *l, const yt_node *k, const yt_node *v)
{
	bool b;
	if (!has_params(l->kind)) {
		mlc_error_at(f->d, k->loc, "'trainable' does nothing on a %s layer: it has no parameters",
			     l->kind->name);
		return false;
	}
	if (!fe_bool(f, v, "trainable", &b))
		return false;
	l->args.frozen = !b;
	return true;
}

bool fe_frozen(const fe *f, const fe_layer *l)
{
	return l->args.frozen || (l->inst >= 0 && f->inst[l->inst].frozen);
}

/* "dense", "block 'bottleneck'" */
static const char *kind_desc(fe *f, const fe_kind *k)
{
	return k->block ? mlc_arena_printf(f->tmp, "block '%s'", k->name) : k->name;
}

/* "2 inputs", "2 or more inputs" */
static const char *arity_desc(fe *f, int arity)
{
	if (arity == FE_VARIADIC)
		return "2 or more inputs";
	return mlc_arena_printf(f->tmp, "%d input%s", arity, arity == 1 ? "" : "s");
}

static void alloc_src(fe *f, fe_layer *l, int n)
{
	l->nsrc = n;
	l->src_node = mlc_arena_alloc(f->tmp, sizeof *l->src_node * (size_t)(n ? n : 1));
	l->src = mlc_arena_alloc(f->tmp, sizeof *l->src * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		l->src[i] = -1;
}

/* graph form: `input: a` or `inputs: [a, b, ...]` */
static bool parse_inputs(fe *f, fe_layer *l, const yt_node *k, const yt_node *v)
{
	if (l->inputs_key) {
		mlc_error_at(f->d, k->loc, "give either 'input' or 'inputs', not both");
		return false;
	}
	l->inputs_key = k;
	if (fe_has_ref(v))
		return false; /* reported by fe_check_refs */
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
	int arity = fe_arity(l);
	if (arity == FE_VARIADIC ? n < 2 : n != arity) {
		mlc_error_at(f->d, v->loc, "%s reads %s, but this names %d", kind_desc(f, l->kind),
			     arity_desc(f, arity), n);
		return false;
	}
	alloc_src(f, l, n);
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
	l->inst = -1;
	l->lr_mult = 1;
	return l;
}

void fe_set_name(fe *f, const fe_scope *sc, fe_layer *l, const char *local)
{
	l->local = mlc_arena_strdup(f->g->arena, local);
	l->name = *sc->prefix ? mlc_arena_printf(f->g->arena, "%s%s", sc->prefix, local) : l->local;
}

static void parse_key(fe *f, fe_layer *l, const yt_node *k, const yt_node *v, bool graph_form)
{
	const char *key = k->str;
	if (strcmp(key, "name") == 0 && !graph_form) {
		const char *s = fe_has_ref(v) ? NULL : fe_ident(f, v, "a layer");
		if (s) {
			l->local = mlc_arena_strdup(f->g->arena, s);
			l->name_loc = v->loc;
		}
		return;
	}
	if (strcmp(key, "name") == 0) {
		mlc_error_at(f->d, k->loc, "'name' is not used in 'graph:' form: this node is named '%s' by its key",
			     l->local);
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
	if (fe_has_ref(v)) {
		l->bad = true; /* checked where the parameter is given */
		return;
	}
	if (strcmp(key, "lr_mult") == 0) {
		if (fe_num(f, v, "lr_mult", FE_ANY, &l->lr_mult) && !(l->lr_mult >= 0))
			mlc_error_at(f->d, v->loc, "lr_mult must not be negative, got %s", v->str);
		return;
	}
	if (strcmp(key, "l1") == 0 || strcmp(key, "l2") == 0) {
		fe_layer_penalty(f, l, k, v);
		return;
	}
	for (const fe_attr *a = l->kind->attrs; a->key; a++)
		if (strcmp(a->key, key) == 0) {
			l->bad |= !a->parse(f, l, v);
			return;
		}
	if (strcmp(key, "trainable") == 0) {
		l->bad |= !key_trainable(f, l, k, v);
		return;
	}
	if (strcmp(key, "repeat") == 0) {
		mlc_error_at(f->d, k->loc, "'repeat' only applies to blocks; %s is a layer op "
			     "(define a block under 'blocks:' to repeat layers)", l->kind->name);
		return;
	}
	const char *const *allowed = allowed_keys(f, l->kind, graph_form);
	const char *where = l->kind->block ? mlc_arena_printf(f->tmp, "in an instance of block '%s'", l->kind->name)
					   : mlc_arena_printf(f->tmp, "in %s layer", l->kind->name);
	fe_unknown_key(f, k, allowed, where);
}

static void set_defaults(fe *f, fe_layer *l, const fe_kind *k)
{
	fe_args *a = &l->args;
	a->units = 0;
	a->act = OP_COUNT;
	a->bias = true;
	a->init = fe_init_default(false);
	a->bias_init = fe_init_default(true);
	bool pool = k->op == OP_MAXPOOL || k->op == OP_AVGPOOL;
	a->kernel[0] = a->kernel[1] = pool ? 2 : 3;
	a->stride[0] = a->stride[1] = pool ? 0 : 1;
	a->dilation[0] = a->dilation[1] = 1;
	a->groups = 1;
	a->pad_mode = FE_PAD_VALID;
	a->repeat = 1;
	if (k->op != OP_COUNT)
		mlc_attrs_default(k->op, &a->attr, f->g->arena);
}

void fe_parse_layer(fe *f, fe_layer *l, const yt_node *item, const yt_node *key)
{
	bool graph_form = key != NULL;
	const yt_node *opkey = NULL, *arg = NULL, *m = NULL;
	if (item->kind == YT_SCALAR && !yt_is_null(item)) {
		if (fe_kind_find(f, item->str))
			opkey = item;
		else if (!fe_is_ref(item))
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
	const fe_kind *k = fe_kind_find(f, opkey->str);
	l->kind = k;
	l->loc = opkey->loc;
	set_defaults(f, l, k);
	if (arg && fe_has_ref(arg))
		l->bad = true; /* checked where the parameter is given */
	else
		l->bad |= !k->primary(f, l, arg);
	if (!graph_form && fe_arity(l) != 1) {
		mlc_error_at(f->d, l->loc, "%s reads %s, so it needs the 'graph:' form with 'inputs: [a, b%s]'",
			     kind_desc(f, k), arity_desc(f, k->arity), k->arity == FE_VARIADIC ? ", ..." : "");
		l->bad = true;
	}
	for (int i = 0; m && i < m->n; i++)
		if (m->key[i] != opkey)
			parse_key(f, l, m->key[i], m->val[i], graph_form);
	if (graph_form && !l->inputs_key) {
		int arity = fe_arity(l);
		const char *what = arity == 1 ? "'input: <name>'"
				   : arity == 2 ? "'inputs: [<name>, <name>]'"
				   : arity == FE_VARIADIC ? "'inputs: [<name>, <name>, ...]'"
							     : "'inputs: [<name>, ...]'";
		mlc_error_at(f->d, l->loc, "node '%s' needs to say what it reads: add %s", l->local, what);
		l->bad = true;
	}
}

bool fe_claim_name(fe *f, fe_scope *sc, int idx)
{
	fe_layer *l = &f->lay[idx];
	int prev = fe_names_get(&sc->names, l->local);
	if (prev < 0) {
		fe_names_put(&sc->names, l->local, idx);
		return true;
	}
	const fe_layer *p = &f->lay[prev];
	mlc_error_at(f->d, l->name_loc, "the name '%s' is already used by %s", l->local,
		     p->kind && p->kind != &fe_kind_port ? "a layer" : "an input");
	mlc_note_at(f->d, p->name_loc, "'%s' is defined here", p->local);
	return false;
}

/* The copies of a repeated block share their head's fate: named after it
 * ("stage.1", "stage.2", ...) once the head's own name is taken. */
static void name_members(fe *f, fe_scope *sc, int head)
{
	for (int i = head + 1; i <= head + f->lay[head].group; i++)
		fe_names_put(&sc->names, f->lay[i].local, i);
}

/* Explicit names first, so that a default name never takes one written later. */
void fe_default_names(fe *f, fe_scope *sc)
{
	for (int i = sc->first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		if (!l->local || l->member || l->name)
			continue; /* graph-form keys were claimed when read */
		fe_set_name(f, sc, l, l->local);
		if (fe_claim_name(f, sc, i) && l->group)
			name_members(f, sc, i);
	}
	fe_names count = {0};
	for (int i = sc->first; i < f->nlay; i++) {
		fe_layer *l = &f->lay[i];
		if (l->local || !l->kind)
			continue;
		int k = fe_names_get(&count, l->kind->name);
		if (k < 0)
			k = 0;
		const char *local;
		do
			local = mlc_arena_printf(f->tmp, "%s%d", l->kind->name, ++k);
		while (fe_names_get(&sc->names, local) >= 0);
		fe_names_put(&count, l->kind->name, k);
		fe_set_name(f, sc, l, local);
		l->name_loc = l->loc;
		fe_names_put(&sc->names, l->local, i);
	}
	fe_names_free(&count);
}

void fe_build_layer(fe *f, fe_layer *l, mlc_node *const *in)
{
	l->out = l->bad ? NULL : l->kind->build(f, l, in);
}
