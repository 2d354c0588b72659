/* refeval_struct.c — reference layout ops, batch normalization and dropout
 * in double precision (see refeval.h). Written from the op definitions, not
 * from codegen: per-channel statistics are plain loops over rows, and the
 * dropout hash is the one docs/design.md specifies. */
#include "refeval.h"

#include <math.h>
#include <string.h>

static int64_t lastdim(const mlc_node *v)
{
	return v->dim[v->rank - 1];
}

/* murmur3's 32-bit finalizer */
static uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t ref_fmix32(uint32_t h)
{
	return fmix32(h);
}

uint32_t ref_hash(uint32_t seed, uint32_t step, int64_t key, int64_t index)
{
	uint32_t s = fmix32(fmix32(fmix32((uint32_t)key + 0x9e3779b9u) ^ seed) ^ step);
	return fmix32(fmix32((uint32_t)index ^ s) + s);
}

bool ref_dropout_keep(uint32_t seed, uint32_t step, int64_t key, int64_t index, double p)
{
	if (!(p > 0))
		return true;
	if (p >= 1)
		return false;
	uint32_t h = ref_hash(seed, step, key, index);
	double u = (double)(h >> 8) / 16777216.0; /* uniform in [0, 1), 24 bits */
	return u >= p;
}

static void dropout(const mlc_node *v, int64_t n, ref_mode m, const double *x, double *out)
{
	double p = v->attr.f[0];
	for (int64_t i = 0; i < mlc_numel(v, n); i++) {
		if (!m.training)
			out[i] = x[i];
		else
			out[i] = ref_dropout_keep(m.seed, m.step, v->attr.i[0], i, p) ? x[i] / (1 - p) : 0;
	}
}

/* Per-channel mean and biased variance of x viewed as [rows, c]. */
static void stats(const double *x, int64_t rows, int64_t c, double *mean, double *var)
{
	for (int64_t j = 0; j < c; j++) {
		double s = 0, q = 0;
		for (int64_t r = 0; r < rows; r++)
			s += x[r * c + j];
		mean[j] = s / (double)rows;
		for (int64_t r = 0; r < rows; r++)
			q += (x[r * c + j] - mean[j]) * (x[r * c + j] - mean[j]);
		var[j] = q / (double)rows;
	}
}

enum { MAXC = 4096 };

static void batchnorm(const mlc_node *v, int64_t n, ref_mode m, double **s, double *out)
{
	int64_t c = lastdim(v), rows = mlc_numel(v, n) / c;
	double mean[MAXC], var[MAXC], mom = v->attr.f[0], eps = v->attr.f[1];
	MLC_ASSERT(c <= MAXC);
	const double *x = s[0], *gamma = s[1], *beta = s[2];
	double *rmean = s[3], *rvar = s[4];
	if (m.training && !v->attr.i[0]) { /* inference=1: running statistics in every mode */
		stats(x, rows, c, mean, var);
		for (int64_t j = 0; j < c; j++) {
			/* PyTorch: the running variance takes the unbiased estimate */
			double unbiased = rows > 1 ? var[j] * (double)rows / (double)(rows - 1) : var[j];
			rmean[j] = (1 - mom) * rmean[j] + mom * mean[j];
			rvar[j] = (1 - mom) * rvar[j] + mom * unbiased;
		}
	} else {
		memcpy(mean, rmean, sizeof(double) * (size_t)c);
		memcpy(var, rvar, sizeof(double) * (size_t)c);
	}
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < c; j++)
			out[r * c + j] = (x[r * c + j] - mean[j]) / sqrt(var[j] + eps) * gamma[j] + beta[j];
}

/* Training-mode gradients with the batch statistics recomputed from x:
 *   dx = γ/σ (dy − mean(dy) − x̂ mean(dy x̂)),  dγ = Σ dy x̂. */
static void batchnorm_grad(const mlc_node *v, int64_t n, double **s, double *out)
{
	const mlc_node *xv = v->src[0];
	int64_t c = lastdim(xv), rows = mlc_numel(xv, n) / c;
	double mean[MAXC], var[MAXC];
	MLC_ASSERT(c <= MAXC);
	const double *x = s[0];
	const double *dy = v->op == OP_BATCHNORM_GRAD ? s[2] : s[1];
	stats(x, rows, c, mean, var);
	for (int64_t j = 0; j < c; j++) {
		double sd = sqrt(var[j] + v->attr.f[1]), sdy = 0, sdyx = 0;
		for (int64_t r = 0; r < rows; r++) {
			double xh = (x[r * c + j] - mean[j]) / sd;
			sdy += dy[r * c + j];
			sdyx += dy[r * c + j] * xh;
		}
		if (v->op == OP_BATCHNORM_GRAD_GAMMA) {
			out[j] = sdyx;
			continue;
		}
		for (int64_t r = 0; r < rows; r++) {
			double xh = (x[r * c + j] - mean[j]) / sd;
			out[r * c + j] = s[1][j] / sd *
					 (dy[r * c + j] - sdy / (double)rows - xh * sdyx / (double)rows);
		}
	}
}

void ref_eval_struct(const mlc_node *v, int64_t n, ref_mode m, double **s, double *out)
{
	int64_t cnt = mlc_numel(v, n);
	switch (v->op) {
	case OP_FLATTEN:
	case OP_RESHAPE_LIKE:
		memcpy(out, s[0], sizeof(double) * (size_t)cnt);
		break;
	case OP_CONCAT: {
		int64_t ca = lastdim(v->src[0]), cb = lastdim(v->src[1]), rows = cnt / (ca + cb);
		for (int64_t r = 0; r < rows; r++) {
			memcpy(out + r * (ca + cb), s[0] + r * ca, sizeof(double) * (size_t)ca);
			memcpy(out + r * (ca + cb) + ca, s[1] + r * cb, sizeof(double) * (size_t)cb);
		}
		break;
	}
	case OP_BATCHNORM: batchnorm(v, n, m, s, out); break;
	case OP_BATCHNORM_GRAD:
	case OP_BATCHNORM_GRAD_GAMMA: batchnorm_grad(v, n, s, out); break;
	case OP_BATCHNORM_INFER_GRAD: { /* (dy, gamma, running_var) */
		int64_t c = lastdim(v);
		for (int64_t i = 0; i < cnt; i++)
			out[i] = s[0][i] * s[1][i % c] / sqrt(s[2][i % c] + v->attr.f[1]);
		break;
	}
	case OP_DROPOUT:
	case OP_DROPOUT_GRAD: dropout(v, n, m, s[0], out); break;
	default: MLC_UNREACHABLE();
	}
}
