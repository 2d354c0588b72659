/* init.c — the `init:` and `bias_init:` keys of dense and conv2d: an
 * initializer's name, or a mapping {type: NAME, ...} with its parameters
 * (docs/spec.md "Weights"), resolved into what the param node carries: the
 * canonical name, scale (gains folded in), center and spread. */
#include "fe.h"

#include <math.h>
#include <string.h>

enum { GLOROT_U, GLOROT_N, HE_U, HE_N, ZEROS, ONES, CONSTANT, UNIFORM, NORMAL, NCANON };

/* The names a spec may use; the aliases after NCANON map to canon[]. */
static const char *const init_names[] = {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
					 "zeros", "ones", "constant", "uniform", "normal",
					 "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", NULL};
static const int canon[] = {GLOROT_U, GLOROT_N, HE_U, HE_N, ZEROS, ONES, CONSTANT, UNIFORM, NORMAL,
			    GLOROT_U, GLOROT_N, HE_U, HE_N};
_Static_assert(MLC_COUNTOF(init_names) == MLC_COUNTOF(canon) + 1, "initializer table");

/* Each type's keys besides `type`. */
static const char *const glorot_keys[] = {"type", "gain", NULL};
static const char *const he_keys[] = {"type", "mode", "nonlinearity", "a", NULL};
static const char *const no_keys[] = {"type", NULL};
static const char *const constant_keys[] = {"type", "value", NULL};
static const char *const uniform_keys[] = {"type", "low", "high", NULL};
static const char *const normal_keys[] = {"type", "mean", "std", NULL};
static const char *const *const type_keys[NCANON] = {
	glorot_keys, glorot_keys, he_keys, he_keys, no_keys, no_keys, constant_keys, uniform_keys, normal_keys};

/* Kaiming's nonlinearities and PyTorch's calculate_gain for each. */
static const char *const nonlin_names[] = {"relu", "leaky_relu", "linear", "sigmoid", "tanh", NULL};
enum { NL_RELU, NL_LEAKY };
static const char *const mode_names[] = {"fan_in", "fan_out", NULL};

fe_init fe_init_default(bool bias)
{
	return (fe_init){bias ? "zeros" : "glorot_uniform", 1, 0, 0.05, false};
}

static bool is_fan_based(int c)
{
	return c == GLOROT_U || c == GLOROT_N || c == HE_U || c == HE_N;
}

/* The parameters of a mapping form, in the order written. */
static bool read_params(fe *f, const yt_node *m, int c, const char *what, fe_init *out)
{
	const char *where = mlc_arena_printf(f->tmp, "in initializer '%s'", init_names[c]);
	const yt_node *low = NULL, *high = NULL, *a_key = NULL;
	double lo = -0.05, hi = 0.05, gain = 1, a = 0;
	int nonlin = NL_RELU;
	bool ok = true, have_value = false;
	static const fe_range not_negative = {0, INFINITY, false, true};
	for (int i = 0; i < m->n; i++) {
		const char *k = m->key[i]->str;
		const yt_node *v = m->val[i];
		bool listed = false;
		for (const char *const *p = type_keys[c]; *p; p++)
			listed |= strcmp(*p, k) == 0;
		if (!listed) {
			fe_unknown_key(f, m->key[i], type_keys[c], where);
			ok = false;
		} else if (strcmp(k, "gain") == 0) {
			ok &= fe_num(f, v, "gain", FE_POSITIVE, &gain);
		} else if (strcmp(k, "mode") == 0) {
			int j = fe_enum(f, v, "mode", "fan mode", mode_names);
			ok &= j >= 0;
			out->fan_out = j == 1;
		} else if (strcmp(k, "nonlinearity") == 0) {
			nonlin = fe_enum(f, v, "nonlinearity", "nonlinearity", nonlin_names);
			ok &= nonlin >= 0;
		} else if (strcmp(k, "a") == 0) {
			a_key = m->key[i];
			ok &= fe_num(f, v, "a", not_negative, &a);
		} else if (strcmp(k, "value") == 0) {
			have_value = fe_num(f, v, "value", FE_ANY, &out->center);
			ok &= have_value;
		} else if (strcmp(k, "low") == 0) {
			low = v;
			ok &= fe_num(f, v, "low", FE_ANY, &lo);
		} else if (strcmp(k, "high") == 0) {
			high = v;
			ok &= fe_num(f, v, "high", FE_ANY, &hi);
		} else if (strcmp(k, "mean") == 0) {
			ok &= fe_num(f, v, "mean", FE_ANY, &out->center);
		} else if (strcmp(k, "std") == 0) {
			ok &= fe_num(f, v, "std", not_negative, &out->spread);
		}
	}
	if (!ok)
		return false;
	switch (c) {
	case CONSTANT:
		if (!have_value && !fe_misspelled(m, "value", type_keys[c])) {
			mlc_error_at(f->d, m->loc, "initializer 'constant' of '%s' needs its 'value', "
				     "e.g. '{type: constant, value: 0.1}'", what);
			return false;
		}
		return have_value;
	case UNIFORM:
		if (lo >= hi) {
			const yt_node *at = high ? high : low;
			mlc_error_at(f->d, at->loc, "initializer 'uniform' needs low < high, got %slow %g and %shigh %g",
				     low ? "" : "the default ", lo, high ? "" : "the default ", hi);
			return false;
		}
		out->center = (lo + hi) / 2;
		out->spread = (hi - lo) / 2;
		return true;
	case GLOROT_U:
	case GLOROT_N:
		out->scale = gain;
		return true;
	case HE_U:
	case HE_N:
		if (a_key && nonlin != NL_LEAKY) {
			mlc_error_at(f->d, a_key->loc, "'a' is the negative slope of leaky_relu; it needs "
				     "'nonlinearity: leaky_relu', not '%s'", nonlin_names[nonlin]);
			return false;
		}
		/* PyTorch's calculate_gain; the he formulas already hold relu's √2 */
		static const double gains[] = {1.4142135623730951, 0, 1, 1, 5.0 / 3};
		double g = nonlin == NL_LEAKY ? sqrt(2 / (1 + a * a)) : gains[nonlin];
		out->scale = g / 1.4142135623730951;
		return true;
	default:
		return true;
	}
}

bool fe_read_init(fe *f, const yt_node *v, bool bias, fe_init *out)
{
	const char *what = bias ? "bias_init" : "init";
	*out = fe_init_default(bias);
	const yt_node *t = v;
	if (v->kind == YT_MAP) {
		t = yt_get(v, "type", NULL);
		if (!t) {
			static const char *const type_only[] = {"type", NULL};
			if (fe_misspelled(v, "type", type_only)) { /* only the typo: the rest needs the type */
				for (int k = 0; k < v->n; k++)
					if (mlc_suggest(v->key[k]->str, type_only))
						fe_unknown_key(f, v->key[k], type_only, mlc_arena_printf(f->tmp, "in '%s'", what));
			} else {
				mlc_error_at(f->d, v->loc, "'%s' as a mapping needs the initializer's 'type', "
					     "e.g. '{type: uniform, low: -0.1, high: 0.1}'", what);
			}
			return false;
		}
	}
	if (v->kind != YT_MAP && v->kind != YT_SCALAR) {
		mlc_error_at(f->d, v->loc, "expected an initializer's name or '{type: NAME, ...}' for '%s', got %s",
			     what, fe_show(f, v));
		return false;
	}
	int i = fe_enum(f, t, what, "initializer", init_names);
	if (i < 0)
		return false;
	int c = canon[i];
	if (bias && is_fan_based(c)) {
		mlc_error_at(f->d, t->loc, "bias_init '%s' needs a weight's fan_in and fan_out; a bias takes "
			     "zeros, ones, constant, uniform or normal", t->str);
		return false;
	}
	out->name = init_names[c];
	if (v->kind == YT_MAP)
		return read_params(f, v, c, what, out);
	if (c == CONSTANT) {
		mlc_error_at(f->d, v->loc, "initializer 'constant' needs its value: write "
			     "'%s: {type: constant, value: 0.1}'", what);
		return false;
	}
	return true;
}

void fe_init_apply(mlc_node *p, const fe_init *in)
{
	if (!p)
		return;
	double scale = in->scale;
	/* he's mode fan_out: std = gain/√fan_out = (gain/√fan_in)·√(fan_in/fan_out) */
	if (in->fan_out && p->attr.i[0] > 0 && p->attr.i[1] > 0)
		scale *= sqrt((double)p->attr.i[0] / (double)p->attr.i[1]);
	fe_attr_set(OP_PARAM, &p->attr, "scale", scale);
	fe_attr_set(OP_PARAM, &p->attr, "center", in->center);
	fe_attr_set(OP_PARAM, &p->attr, "spread", in->spread);
}
