/* refeval_prim.c — reference add and primitive ops in double precision (see
 * refeval.h), written from docs/ir.md by multi-index loops rather than from
 * the kernels: every output element finds its operands by its coordinates. */
#include "refeval.h"

#include <math.h>
#include <string.h>

/* the dims of v at batch n */
static void dims_at(const mlc_node *v, int64_t n, int64_t *d)
{
	for (int i = 0; i < v->rank; i++)
		d[i] = v->dim[i] == MLC_BATCH ? n : v->dim[i];
}

/* coordinates of flat element e of a value with dims d */
static void coords(int64_t e, int rank, const int64_t *d, int64_t *c)
{
	for (int i = rank - 1; i >= 0; i--) {
		c[i] = e % d[i];
		e /= d[i];
	}
}

/* the flat index in s (with dims d) of the element at coordinates c of the
 * output, s broadcast against it */
static int64_t bcast_index(const mlc_node *out, const mlc_node *s, int64_t n, const int64_t *c)
{
	int64_t d[MLC_MAX_RANK] = {0};
	dims_at(s, n, d);
	switch (mlc_bcast_of(out, s)) {
	case MLC_BCAST_SCALAR: return 0;
	case MLC_BCAST_ROW: return c[out->rank - 1];
	case MLC_BCAST_COL: {
		int64_t e = 0;
		for (int i = 0; i < s->rank; i++)
			e = e * d[i] + (i == s->rank - 1 ? 0 : c[i]);
		return e;
	}
	default: {
		int64_t e = 0;
		for (int i = 0; i < s->rank; i++)
			e = e * d[i] + c[i];
		return e;
	}
	}
}

static double binary(mlc_opcode op, double a, double b)
{
	switch (op) {
	case OP_ADD: return a + b;
	case OP_SUB: return a - b;
	case OP_MUL: return a * b;
	case OP_DIV: return a / b;
	case OP_MINIMUM: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
	default: return isnan(a) || isnan(b) ? NAN : a > b ? a : b; /* OP_MAXIMUM */
	}
}

static double unary(const mlc_node *v, double x)
{
	const double *f = v->attr.f;
	switch (v->op) {
	case OP_NEG: return -x;
	case OP_EXP: return exp(x);
	case OP_LOG: return log(x);
	case OP_SQRT: return sqrt(x);
	case OP_SQUARE: return x * x;
	case OP_ABS: return fabs(x);
	case OP_SIGN: return x > 0 ? 1 : x < 0 ? -1 : 0;
	case OP_POW: return pow(x, f[0]);
	case OP_CLAMP: return x < f[0] ? f[0] : x > f[1] ? f[1] : x;
	default: return x; /* OP_DETACH */
	}
}

static double noise(const mlc_node *v, ref_mode m, int64_t i)
{
	if (v->attr.i[1] && !m.training)
		return 0;
	uint32_t h = ref_hash(m.seed, m.step, v->attr.i[0], i);
	if (v->op == OP_RANDOM_UNIFORM)
		return v->attr.f[0] + (v->attr.f[1] - v->attr.f[0]) * (double)(h >> 8) / 16777216.0;
	double u1 = ((double)(h >> 8) + 1) / 16777216.0;
	double u2 = (double)(ref_fmix32(h ^ 0x68e31da4u) >> 8) / 16777216.0;
	return v->attr.f[0] + v->attr.f[1] * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* sum/mean (x -> out) and broadcast (dy -> out in x's shape) over the mask */
static void reduce(const mlc_node *v, int64_t n, double **s, double *out)
{
	bool back = v->op == OP_BROADCAST;
	const mlc_node *x = back ? v->src[1] : v->src[0];
	int mask = mlc_axes_mask(v->attr.s, x->rank);
	MLC_ASSERT(mask >= 0);
	int64_t d[MLC_MAX_RANK] = {0}, c[MLC_MAX_RANK], count = 1;
	dims_at(x, n, d);
	for (int i = 0; i < x->rank; i++)
		if (mask & (1 << i))
			count *= d[i];
	bool mean = back ? v->attr.i[0] != 0 : v->op == OP_MEAN;
	int64_t rcnt = mlc_numel(back ? v->src[0] : v, n);
	if (!back)
		memset(out, 0, sizeof *out * (size_t)rcnt);
	for (int64_t e = 0; e < mlc_numel(x, n); e++) {
		coords(e, x->rank, d, c);
		int64_t r = 0;
		for (int i = 0; i < x->rank; i++)
			if (!(mask & (1 << i)))
				r = r * d[i] + c[i];
		if (back)
			out[e] = s[0][r] / (mean ? (double)count : 1);
		else
			out[r] += s[0][e];
	}
	for (int64_t r = 0; !back && mean && r < rcnt; r++)
		out[r] /= (double)count;
}

/* slice (x -> window) and slice_grad (dy -> x's shape, 0 outside) */
static void slice(const mlc_node *v, int64_t n, double **s, double *out)
{
	bool grad = v->op == OP_SLICE_GRAD;
	const mlc_node *x = grad ? v->src[1] : v->src[0];
	int axis = mlc_slice_axis(v, x);
	int64_t begin = v->attr.i[0];
	int64_t d[MLC_MAX_RANK] = {0}, w[MLC_MAX_RANK], c[MLC_MAX_RANK];
	dims_at(x, n, d);
	memcpy(w, d, sizeof w);
	w[axis] = v->attr.i[1];
	const int64_t *od = grad ? d : w, *sd = grad ? w : d;
	for (int64_t e = 0; e < mlc_numel(v, n); e++) {
		coords(e, x->rank, od, c);
		c[axis] += grad ? -begin : begin;
		if (c[axis] < 0 || c[axis] >= sd[axis]) {
			out[e] = 0;
			continue;
		}
		int64_t k = 0;
		for (int i = 0; i < x->rank; i++)
			k = k * sd[i] + c[i];
		out[e] = s[0][k];
	}
}

void ref_eval_prim(const mlc_node *v, int64_t n, ref_mode m, double **s, double *out)
{
	int64_t cnt = mlc_numel(v, n), d[MLC_MAX_RANK] = {0}, c[MLC_MAX_RANK];
	dims_at(v, n, d);
	switch (v->op) {
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_MINIMUM:
	case OP_MAXIMUM:
		for (int64_t e = 0; e < cnt; e++) {
			coords(e, v->rank, d, c);
			out[e] = binary(v->op, s[0][bcast_index(v, v->src[0], n, c)], s[1][bcast_index(v, v->src[1], n, c)]);
		}
		break;
	case OP_MINMAX_GRAD: /* (a, b, dy) */
		for (int64_t e = 0; e < cnt; e++) {
			coords(e, v->rank, d, c);
			double a = s[0][bcast_index(v, v->src[0], n, c)], b = s[1][bcast_index(v, v->src[1], n, c)];
			bool wins = v->attr.i[0] ? a > b : a < b;
			out[e] = wins ? s[2][e] : a == b ? s[2][e] / 2 : 0;
		}
		break;
	case OP_CLAMP_GRAD:
		for (int64_t e = 0; e < cnt; e++)
			out[e] = s[0][e] >= v->attr.f[0] && s[0][e] <= v->attr.f[1] ? s[1][e] : 0;
		break;
	case OP_RANDOM_NORMAL:
	case OP_RANDOM_UNIFORM:
		for (int64_t e = 0; e < cnt; e++)
			out[e] = noise(v, m, e);
		break;
	case OP_SUM:
	case OP_MEAN:
	case OP_BROADCAST: reduce(v, n, s, out); break;
	case OP_RESHAPE: memcpy(out, s[0], sizeof *out * (size_t)cnt); break;
	case OP_SLICE:
	case OP_SLICE_GRAD: slice(v, n, s, out); break;
	default:
		for (int64_t e = 0; e < cnt; e++)
			out[e] = unary(v, s[0][e]);
		break;
	}
}
