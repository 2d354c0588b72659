/* prim.c — the primitive layer ops of the spec (docs/spec.md, "Primitive
 * ops"): their key parsers and builders, for the rows of layers.c's table.
 * Each is one op node of ir/ops.def; a binary op given a number reads one
 * input and gets the number as a scalar constant second operand. */
#include "fe.h"

#include <string.h>

/* add: 1 (one input, the number second), or add: (two inputs) */
bool fe_arg_operand(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v))
		return true;
	if (!fe_num(f, v, l->kind->name, FE_ANY, &l->args.operand))
		return false;
	l->args.has_operand = true;
	return true;
}

/* pow: 3 — the exponent is required */
bool fe_arg_exponent(fe *f, fe_layer *l, const yt_node *v)
{
	double p;
	if (!v || yt_is_null(v)) {
		mlc_error_at(f->d, l->loc, "pow needs its exponent, e.g. 'pow: 2'");
		return false;
	}
	if (!fe_num(f, v, "pow", FE_ANY, &p))
		return false;
	fe_attr_set(OP_POW, &l->args.attr, "exponent", p);
	return true;
}

/* reshape: [N, 28, 28, 1] — N (the batch) first exactly when the input has
 * one, at most one -1; checked against the input's shape when built */
bool fe_arg_shape(fe *f, fe_layer *l, const yt_node *v)
{
	if (!v || yt_is_null(v) || v->kind != YT_SEQ || v->n == 0 || v->n > MLC_MAX_RANK) {
		mlc_error_at(f->d, v && !yt_is_null(v) ? v->loc : l->loc,
			     "reshape needs the new shape as a list of 1 to %d dimensions, e.g. 'reshape: [N, 28, 28, "
			     "1]'",
			     MLC_MAX_RANK);
		return false;
	}
	const char *s = "";
	for (int i = 0; i < v->n; i++) {
		const yt_node *e = v->val[i];
		int64_t d;
		if (e->kind == YT_SCALAR && strcmp(e->str, "N") == 0 && i == 0) {
			s = "N";
			continue;
		}
		if (!fe_int(f, e, "reshape", -1, INT32_MAX, &d))
			return false;
		if (d == 0) {
			mlc_error_at(f->d, e->loc, "a reshape dimension is positive, or -1 for 'the rest', got 0");
			return false;
		}
		s = mlc_arena_printf(f->g->arena, "%s%s%lld", s, i ? "," : "", (long long)d);
	}
	l->args.attr.s = mlc_arena_strdup(f->g->arena, s);
	return true;
}

static bool key_min(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "min", FE_ANY);
}

static bool key_max(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "max", FE_ANY);
}

/* axes: 1 or [0, 2]; negative counts from the end */
static bool key_axes(fe *f, fe_layer *l, const yt_node *v)
{
	int n = v->kind == YT_SEQ ? v->n : 1;
	if (v->kind == YT_SEQ && (n == 0 || n > MLC_MAX_RANK)) {
		mlc_error_at(f->d, v->loc, "expected an axis or a list of 1 to %d axes for 'axes'", MLC_MAX_RANK);
		return false;
	}
	const char *s = "";
	for (int i = 0; i < n; i++) {
		int64_t a;
		if (!fe_int(f, v->kind == YT_SEQ ? v->val[i] : v, "axes", -MLC_MAX_RANK, MLC_MAX_RANK - 1, &a))
			return false;
		s = mlc_arena_printf(f->g->arena, "%s%s%lld", s, i ? "," : "", (long long)a);
	}
	l->args.attr.s = s;
	return true;
}

static bool key_keep(fe *f, fe_layer *l, const yt_node *v)
{
	bool b;
	if (!fe_bool(f, v, "keep_dims", &b))
		return false;
	fe_attr_set(l->kind->op, &l->args.attr, "keep", b);
	return true;
}

static bool slice_int(fe *f, fe_layer *l, const yt_node *v, const char *attr, int64_t lo)
{
	int64_t x;
	if (!fe_int(f, v, attr, lo, INT32_MAX, &x))
		return false;
	fe_attr_set(OP_SLICE, &l->args.attr, attr, (double)x);
	return true;
}

static bool key_axis(fe *f, fe_layer *l, const yt_node *v)
{
	return slice_int(f, l, v, "axis", -MLC_MAX_RANK);
}

static bool key_begin(fe *f, fe_layer *l, const yt_node *v)
{
	return slice_int(f, l, v, "begin", 0);
}

static bool key_size(fe *f, fe_layer *l, const yt_node *v)
{
	l->args.has_size = true;
	return slice_int(f, l, v, "size", 1);
}

static bool key_mean(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "mean", FE_ANY);
}

static bool key_std(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "std", FE_POSITIVE);
}

static bool key_low(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "low", FE_ANY);
}

static bool key_high(fe *f, fe_layer *l, const yt_node *v)
{
	return fe_arg_number(f, l, v, "high", FE_ANY);
}

static bool key_training_only(fe *f, fe_layer *l, const yt_node *v)
{
	bool b;
	if (!fe_bool(f, v, "training_only", &b))
		return false;
	fe_attr_set(l->kind->op, &l->args.attr, "train_only", b);
	return true;
}

const fe_attr fe_clamp_keys[] = {{"min", key_min}, {"max", key_max}, {NULL, NULL}};
const fe_attr fe_reduce_keys[] = {{"axes", key_axes}, {"keep_dims", key_keep}, {NULL, NULL}};
const fe_attr fe_slice_keys[] = {{"axis", key_axis}, {"begin", key_begin}, {"size", key_size}, {NULL, NULL}};
const fe_attr fe_normal_keys[] = {{"mean", key_mean}, {"std", key_std}, {"training_only", key_training_only},
				  {NULL, NULL}};
const fe_attr fe_uniform_keys[] = {{"low", key_low}, {"high", key_high}, {"training_only", key_training_only},
				   {NULL, NULL}};

int fe_arity(const fe_layer *l)
{
	return l->args.has_operand && l->kind->build == fe_build_binary ? 1 : l->kind->arity;
}

mlc_node *fe_build_binary(fe *f, fe_layer *l, mlc_node *const *in)
{
	if (!l->args.has_operand)
		return fe_build_op(f, l, in);
	mlc_node *c = mlc_source(f->g, OP_CONST, NULL, DT_F32, 0, NULL, l->loc);
	c->attr.f[0] = l->args.operand;
	c->layer = l->name;
	return fe_emit(f, l->name, l->loc, l->kind->op, &l->args.attr, 2, (mlc_node *[]){in[0], c});
}

mlc_node *fe_build_clamp(fe *f, fe_layer *l, mlc_node *const *in)
{
	const mlc_attrs *a = &l->args.attr;
	if (a->f[0] > a->f[1]) {
		mlc_error_at(f->d, l->loc, "clamp's min (%g) is above its max (%g)", a->f[0], a->f[1]);
		return NULL;
	}
	return fe_build_op(f, l, in);
}

mlc_node *fe_build_slice(fe *f, fe_layer *l, mlc_node *const *in)
{
	if (!l->args.has_size) {
		mlc_error_at(f->d, l->loc, "slice needs its 'size' (and 'begin', 'axis': 0 and -1 by default)");
		return NULL;
	}
	return fe_build_op(f, l, in);
}

/* Noise is drawn from (seed, step, key, index): the node's id is its key,
 * as for dropout, so every noise node draws its own values. */
mlc_node *fe_build_noise(fe *f, fe_layer *l, mlc_node *const *in)
{
	if (l->kind->op == OP_RANDOM_UNIFORM && !(l->args.attr.f[0] < l->args.attr.f[1])) {
		mlc_error_at(f->d, l->loc, "random_uniform's low (%g) must be below its high (%g)", l->args.attr.f[0],
			     l->args.attr.f[1]);
		return NULL;
	}
	mlc_node *n = mlc_node_new(f->g, l->kind->op, 1, in, l->loc);
	n->layer = l->name;
	n->attr = l->args.attr;
	fe_attr_set(l->kind->op, &n->attr, "key", n->id);
	return mlc_ops[n->op].shape(n, f->d) ? n : NULL;
}
