/* refeval_loss.c — the reference evaluator's newer losses (hinge, mae,
 * bce_logits, categorical_xent, kl_div) and their gradients, in double and
 * written from the formulas in docs/spec.md, not from the kernels. */
#include "refeval.h"

#include <math.h>

static int64_t dimv(const mlc_node *v, int i, int64_t n)
{
	return v->dim[i] == MLC_BATCH ? n : v->dim[i];
}

static int64_t label(double y, int64_t classes)
{
	int64_t k = (int64_t)y;
	return k < 0 ? 0 : k >= classes ? classes - 1 : k;
}

static double logsumexp(const double *z, int64_t c)
{
	double mx = -INFINITY, e = 0;
	for (int64_t j = 0; j < c; j++)
		mx = fmax(mx, z[j]);
	for (int64_t j = 0; j < c; j++)
		e += exp(z[j] - mx);
	return mx + log(e);
}

void ref_eval_loss(const mlc_node *v, int64_t n, double **s, double *out)
{
	const mlc_node *s0 = v->src[0];
	int64_t cnt = mlc_numel(s0, n), r = dimv(s0, 0, n), c = s0->rank > 1 ? dimv(s0, 1, n) : 1;
	double margin = v->attr.f[0], t = 0;
	switch (v->op) {
	case OP_HINGE:
		for (int64_t i = 0; i < r; i++) {
			int64_t y = label(s[1][i], c);
			for (int64_t j = 0; j < c; j++)
				if (j != y)
					t += fmax(0, s[0][i * c + j] - s[0][i * c + y] + margin);
		}
		out[0] = t / (double)r;
		break;
	case OP_HINGE_GRAD:
		for (int64_t i = 0; i < r; i++) {
			int64_t y = label(s[1][i], c), k = 0;
			for (int64_t j = 0; j < c; j++) {
				bool on = j != y && s[0][i * c + j] - s[0][i * c + y] + margin > 0;
				out[i * c + j] = on ? s[2][0] / (double)r : 0;
				k += on;
			}
			out[i * c + y] = -(double)k * s[2][0] / (double)r;
		}
		break;
	case OP_MAE:
		for (int64_t i = 0; i < cnt; i++)
			t += fabs(s[0][i] - s[1][i]);
		out[0] = t / (double)cnt;
		break;
	case OP_MAE_GRAD:
		for (int64_t i = 0; i < cnt; i++) {
			double d = s[0][i] - s[1][i];
			out[i] = (d > 0 ? 1 : d < 0 ? -1 : 0) * s[2][0] / (double)cnt;
		}
		break;
	case OP_BCE_LOGITS:
		for (int64_t i = 0; i < cnt; i++) {
			double z = s[0][i];
			t += fmax(z, 0) - z * s[1][i] + log1p(exp(-fabs(z)));
		}
		out[0] = t / (double)cnt;
		break;
	case OP_BCE_LOGITS_GRAD:
		for (int64_t i = 0; i < cnt; i++)
			out[i] = (1 / (1 + exp(-s[0][i])) - s[1][i]) * s[2][0] / (double)cnt;
		break;
	case OP_CATEGORICAL_XENT:
		for (int64_t i = 0; i < r; i++)
			t -= log(fmin(fmax(s[0][i * c + label(s[1][i], c)], 1e-7), 1));
		out[0] = t / (double)r;
		break;
	case OP_CATEGORICAL_XENT_GRAD:
		for (int64_t i = 0; i < r; i++) {
			int64_t y = label(s[1][i], c);
			double p = s[0][i * c + y];
			for (int64_t j = 0; j < c; j++)
				out[i * c + j] = 0;
			out[i * c + y] = p >= 1e-7 && p <= 1 ? -s[2][0] / ((double)r * p) : 0;
		}
		break;
	case OP_KL_DIV:
		for (int64_t i = 0; i < r; i++) {
			const double *z = s[0] + i * c, *q = s[1] + i * c;
			double lse = logsumexp(z, c);
			for (int64_t j = 0; j < c; j++)
				t += (q[j] > 0 ? q[j] * log(q[j]) : 0) - q[j] * (z[j] - lse);
		}
		out[0] = t / (double)r;
		break;
	case OP_KL_DIV_GRAD:
		for (int64_t i = 0; i < r; i++) {
			const double *z = s[0] + i * c, *q = s[1] + i * c;
			double lse = logsumexp(z, c), qsum = 0;
			for (int64_t j = 0; j < c; j++)
				qsum += q[j];
			for (int64_t j = 0; j < c; j++)
				out[i * c + j] = (exp(z[j] - lse) * qsum - q[j]) * s[2][0] / (double)r;
		}
		break;
	default: MLC_UNREACHABLE();
	}
}
