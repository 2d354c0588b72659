/* refeval.c — the double-precision reference evaluator (see refeval.h).
 * Deliberately naive: one switch case per op, plain index arithmetic, no
 * sharing with codegen, so a bug in one is unlikely to be copied into the other. */
#include "refeval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Extent of dim i of v with the batch resolved. */
static int64_t dimv(const mlc_node *v, int i, int64_t n)
{
	return v->dim[i] == MLC_BATCH ? n : v->dim[i];
}

/* v viewed as [rows, cols] with cols = last dim (a scalar is [1, 1]). */
static int64_t lastdim(const mlc_node *v, int64_t n)
{
	return v->rank > 0 ? dimv(v, v->rank - 1, n) : 1;
}

static int64_t rows_of(const mlc_node *v, int64_t n)
{
	return mlc_numel(v, n) / lastdim(v, n);
}

double **ref_alloc(const mlc_graph *g, int64_t n)
{
	double **val = calloc((size_t)g->nnode + 1, sizeof *val);
	MLC_ASSERT(val);
	for (int i = 0; i < g->nnode; i++) {
		if (g->node[i]->dead)
			continue;
		int64_t k = mlc_numel(g->node[i], n);
		val[i] = calloc((size_t)(k > 0 ? k : 1), sizeof(double));
		MLC_ASSERT(val[i]);
	}
	return val;
}

void ref_free(const mlc_graph *g, double **val)
{
	if (!val)
		return;
	for (int i = 0; i < g->nnode; i++)
		free(val[i]);
	free(val);
}

int ref_index(const mlc_graph *g, const mlc_node *v)
{
	for (int i = 0; i < g->nnode; i++)
		if (g->node[i] == v)
			return i;
	MLC_UNREACHABLE();
}

double *ref_val(const mlc_graph *g, double **val, const mlc_node *v)
{
	return val[ref_index(g, v)];
}

static void matmul(const mlc_node *v, int64_t n, const double *a, const double *b, double *out)
{
	const mlc_node *A = v->src[0], *B = v->src[1];
	bool ta = v->attr.i[0], tb = v->attr.i[1];
	int64_t m = dimv(v, 0, n), cols = dimv(v, 1, n), k = dimv(A, ta ? 0 : 1, n);
	int64_t lda = dimv(A, 1, n), ldb = dimv(B, 1, n);
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < cols; j++) {
			double s = 0;
			for (int64_t p = 0; p < k; p++)
				s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
			out[i * cols + j] = s;
		}
}

static void softmax_row(const double *x, double *y, int64_t c)
{
	double mx = -INFINITY, s = 0;
	for (int64_t j = 0; j < c; j++)
		mx = fmax(mx, x[j]);
	for (int64_t j = 0; j < c; j++)
		s += y[j] = exp(x[j] - mx);
	for (int64_t j = 0; j < c; j++)
		y[j] /= s;
}

static int64_t label(double y, int64_t classes)
{
	int64_t k = (int64_t)y;
	return k < 0 ? 0 : k >= classes ? classes - 1 : k;
}

static void sgd(const mlc_node *v, int64_t cnt, double lr, double *p, const double *g, double *vel,
		double *out)
{
	double mu = v->attr.f[0], wd = v->attr.f[2];
	lr *= v->attr.f[1];
	for (int64_t i = 0; i < cnt; i++) {
		double d = g[i];
		if (v->attr.i[1])
			p[i] *= 1 - lr * wd;
		else
			d += wd * p[i];
		if (mu != 0) {
			vel[i] = mu * vel[i] + d;
			d = v->attr.i[0] ? d + mu * vel[i] : vel[i];
		}
		p[i] -= lr * d;
		out[i] = p[i];
	}
}

/* The other optimizers (docs/spec.md, "optimizer"), in double; t = step + 1. */
static void update(const mlc_node *v, int64_t cnt, double lr, uint32_t step, double **s, double *out)
{
	double *p = s[0], *a = s[2], *b = v->nsrc > 3 ? s[3] : NULL;
	const double *g = s[1];
	const double *f = v->attr.f;
	double t = (double)step + 1;
	lr *= f[mlc_op_attr_slot(v->op, "lr_mult")];
	for (int64_t i = 0; i < cnt; i++) {
		double gi = g[i], d;
		switch (v->op) {
		case OP_ADAM:
		case OP_ADAMW:
			if (v->op == OP_ADAMW)
				p[i] *= 1 - lr * f[3];
			else
				gi += f[3] * p[i];
			a[i] = f[0] * a[i] + (1 - f[0]) * gi;
			b[i] = f[1] * b[i] + (1 - f[1]) * gi * gi;
			d = a[i] / (1 - pow(f[0], t)) / (sqrt(b[i] / (1 - pow(f[1], t))) + f[2]);
			break;
		case OP_RMSPROP:
			gi += f[3] * p[i];
			a[i] = f[0] * a[i] + (1 - f[0]) * gi * gi;
			d = gi / (sqrt(a[i]) + f[1]);
			if (f[2] != 0)
				d = b[i] = f[2] * b[i] + d;
			break;
		case OP_ADAGRAD:
			gi += f[2] * p[i];
			a[i] += gi * gi;
			d = gi / (sqrt(a[i] + f[1]) + f[0]);
			break;
		default: /* OP_ADADELTA */
			gi += f[2] * p[i];
			a[i] = f[0] * a[i] + (1 - f[0]) * gi * gi;
			d = sqrt(b[i] + f[1]) / sqrt(a[i] + f[1]) * gi;
			b[i] = f[0] * b[i] + (1 - f[0]) * d * d;
			break;
		}
		p[i] -= lr * d;
		out[i] = p[i];
	}
}

static void eval_node(const mlc_node *v, int64_t n, double lr, ref_mode m, double **s, double *out)
{
	int64_t cnt = mlc_numel(v, n);
	const mlc_node *s0 = v->nsrc > 0 ? v->src[0] : NULL;
	int64_t scnt = s0 ? mlc_numel(s0, n) : 0;
	double a = v->attr.f[0];
	switch (v->op) {
	case OP_INPUT:
	case OP_PARAM:
	case OP_STATE: break;
	case OP_CONST:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = a;
		break;
	case OP_MATMUL: matmul(v, n, s[0], s[1], out); break;
	case OP_BIAS_ADD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] + s[1][i % lastdim(v, n)];
		break;
	case OP_RELU:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] > 0 ? s[0][i] : 0;
		break;
	case OP_SCALE:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = a * s[0][i];
		break;
	case OP_LEAKY_RELU:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] > 0 ? s[0][i] : a * s[0][i];
		break;
	case OP_SIGMOID:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = 1 / (1 + exp(-a * s[0][i]));
		break;
	case OP_TANH:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = tanh(s[0][i]);
		break;
	case OP_STEP:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] > 0 ? 1 : 0;
		break;
	case OP_SOFTMAX:
		for (int64_t r = 0; r < rows_of(v, n); r++)
			softmax_row(s[0] + r * lastdim(v, n), out + r * lastdim(v, n), lastdim(v, n));
		break;
	case OP_RELU_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] > 0 ? s[1][i] : 0;
		break;
	case OP_LEAKY_RELU_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] > 0 ? s[1][i] : a * s[1][i];
		break;
	case OP_SIGMOID_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[1][i] * a * s[0][i] * (1 - s[0][i]);
		break;
	case OP_TANH_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[1][i] * (1 - s[0][i] * s[0][i]);
		break;
	case OP_STEP_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = v->attr.i[0] ? s[1][i] : 0;
		break;
	case OP_SOFTMAX_GRAD: {
		int64_t c = lastdim(v, n);
		for (int64_t r = 0; r < rows_of(v, n); r++) {
			const double *y = s[0] + r * c, *dy = s[1] + r * c;
			double dot = 0;
			for (int64_t j = 0; j < c; j++)
				dot += dy[j] * y[j];
			for (int64_t j = 0; j < c; j++)
				out[r * c + j] = y[j] * (dy[j] - dot);
		}
		break;
	}
	case OP_SUM_ROWS: {
		int64_t c = lastdim(s0, n);
		for (int64_t j = 0; j < c; j++)
			out[j] = 0;
		for (int64_t i = 0; i < scnt; i++)
			out[i % c] += s[0][i];
		break;
	}
	case OP_MSE: {
		double t = 0;
		for (int64_t i = 0; i < scnt; i++)
			t += (s[0][i] - s[1][i]) * (s[0][i] - s[1][i]);
		out[0] = t / (double)scnt;
		break;
	}
	case OP_BCE: {
		double t = 0;
		for (int64_t i = 0; i < scnt; i++) {
			double p = s[0][i], y = s[1][i];
			t += -(y * fmax(log(p), -100) + (1 - y) * fmax(log(1 - p), -100));
		}
		out[0] = t / (double)scnt;
		break;
	}
	case OP_SOFTMAX_XENT: {
		int64_t r = dimv(s0, 0, n), c = dimv(s0, 1, n);
		double t = 0;
		for (int64_t i = 0; i < r; i++) {
			const double *z = s[0] + i * c;
			double mx = -INFINITY, e = 0;
			for (int64_t j = 0; j < c; j++)
				mx = fmax(mx, z[j]);
			for (int64_t j = 0; j < c; j++)
				e += exp(z[j] - mx);
			t += mx + log(e) - z[label(s[1][i], c)];
		}
		out[0] = t / (double)r;
		break;
	}
	case OP_MSE_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[2][0] * 2 * (s[0][i] - s[1][i]) / (double)cnt;
		break;
	case OP_BCE_GRAD:
		for (int64_t i = 0; i < cnt; i++) {
			double p = s[0][i];
			out[i] = s[2][0] * (p - s[1][i]) / fmax(p * (1 - p), 1e-12) / (double)cnt;
		}
		break;
	case OP_SOFTMAX_XENT_GRAD: {
		int64_t r = dimv(s0, 0, n), c = dimv(s0, 1, n);
		for (int64_t i = 0; i < r; i++) {
			softmax_row(s[0] + i * c, out + i * c, c);
			out[i * c + label(s[1][i], c)] -= 1;
			for (int64_t j = 0; j < c; j++)
				out[i * c + j] *= s[2][0] / (double)r;
		}
		break;
	}
	case OP_SGD: sgd(v, cnt, lr, s[0], s[1], s[2], out); break;
	case OP_ADAM:
	case OP_ADAMW:
	case OP_RMSPROP:
	case OP_ADAGRAD:
	case OP_ADADELTA: update(v, cnt, lr, m.step, s, out); break;
	case OP_CONV2D:
	case OP_CONV2D_GRAD_INPUT:
	case OP_CONV2D_GRAD_WEIGHT:
	case OP_MAXPOOL:
	case OP_MAXPOOL_GRAD:
	case OP_AVGPOOL:
	case OP_AVGPOOL_GRAD:
	case OP_GLOBAL_AVGPOOL:
	case OP_GLOBAL_AVGPOOL_GRAD: ref_eval_conv(v, n, s, out); break;
	case OP_FLATTEN:
	case OP_RESHAPE_LIKE:
	case OP_CONCAT:
	case OP_BATCHNORM:
	case OP_BATCHNORM_GRAD:
	case OP_BATCHNORM_GRAD_GAMMA:
	case OP_BATCHNORM_INFER_GRAD:
	case OP_DROPOUT:
	case OP_DROPOUT_GRAD: ref_eval_struct(v, n, m, s, out); break;
	case OP_HINGE:
	case OP_HINGE_GRAD:
	case OP_MAE:
	case OP_MAE_GRAD:
	case OP_BCE_LOGITS:
	case OP_BCE_LOGITS_GRAD:
	case OP_CATEGORICAL_XENT:
	case OP_CATEGORICAL_XENT_GRAD:
	case OP_KL_DIV:
	case OP_KL_DIV_GRAD: ref_eval_loss(v, n, s, out); break;
	case OP_SUMSQ:
	case OP_ABS_SUM:
		out[0] = 0;
		for (int64_t i = 0; i < scnt; i++)
			out[0] += v->op == OP_SUMSQ ? s[0][i] * s[0][i] : fabs(s[0][i]);
		out[0] *= a;
		break;
	case OP_SUMSQ_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = 2 * a * s[0][i] * s[1][0];
		break;
	case OP_ABS_SUM_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = a * (s[0][i] > 0 ? 1 : s[0][i] < 0 ? -1 : 0) * s[1][0];
		break;
	case OP_CLIP_COEF:
		out[0] = fmin(1, a / (sqrt(s[0][0]) + 1e-6));
		break;
	case OP_MUL_SCALAR:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] * s[1][0];
		break;
	case OP_CLIP_VALUE:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = fmax(-a, fmin(a, s[0][i]));
		break;
	case OP_ADD:
	case OP_SLICE:
	case OP_MUL:
	case OP_SUB:
	case OP_DIV:
	case OP_MINIMUM:
	case OP_MAXIMUM:
	case OP_NEG:
	case OP_EXP:
	case OP_LOG:
	case OP_SQRT:
	case OP_SQUARE:
	case OP_ABS:
	case OP_SIGN:
	case OP_POW:
	case OP_CLAMP:
	case OP_CLAMP_GRAD:
	case OP_MINMAX_GRAD:
	case OP_SUM:
	case OP_MEAN:
	case OP_BROADCAST:
	case OP_RESHAPE:
	case OP_SLICE_GRAD:
	case OP_DETACH:
	case OP_RANDOM_NORMAL:
	case OP_RANDOM_UNIFORM: ref_eval_prim(v, n, m, s, out); break;
	case OP_COUNT: MLC_UNREACHABLE();
	}
}

void ref_eval_mode(const mlc_graph *g, int64_t n, double lr, ref_mode m, double **val,
		   const bool *only)
{
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *v = g->node[i];
		if (v->dead || (only && !only[i]))
			continue;
		double *src[MLC_MAX_SRC] = {0};
		for (int k = 0; k < v->nsrc; k++)
			src[k] = ref_val(g, val, v->src[k]);
		eval_node(v, n, lr, m, src, val[i]);
	}
}

void ref_eval_only(const mlc_graph *g, int64_t n, double lr, double **val, const bool *only)
{
	ref_eval_mode(g, n, lr, (ref_mode){.training = true}, val, only);
}

void ref_eval(const mlc_graph *g, int64_t n, double lr, double **val)
{
	ref_eval_only(g, n, lr, val, NULL);
}
