/* kfold.c — K-fold cross-validation: the training set, shuffled once with
 * the seed, cut into K folds; each fold is held out of one fresh training
 * run (mlc_session_train with s->fold) and evaluated after it; the folds'
 * mean and sample standard deviation summarize. */
#include "metrics.h"
#include "session.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t mlc_fold_order(const int64_t *perm, int64_t n, int k, int i, int64_t *out)
{
	MLC_ASSERT(k >= 1 && i >= 0 && i < k && n >= 0);
	int64_t lo = n * i / k, hi = n * (i + 1) / k, m = 0;
	for (int64_t j = 0; j < n; j++)
		if (j < lo || j >= hi)
			out[m++] = perm[j];
	for (int64_t j = lo; j < hi; j++)
		out[m++] = perm[j];
	return hi - lo;
}

/* Mean and sample standard deviation (0 for one value). */
static void mean_std(const double *x, int n, double *mean, double *sd)
{
	double m = 0, ss = 0;
	for (int i = 0; i < n; i++)
		m += x[i];
	m /= n;
	for (int i = 0; i < n; i++)
		ss += (x[i] - m) * (x[i] - m);
	*mean = m;
	*sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

mlc_status mlc_session_kfold(mlc_session *s, int k, mlc_diag *d)
{
	MLC_ASSERT(k >= 2);
	if (s->opt.resume) {
		mlc_error_file(d, s->opt.resume, "a K-fold cross-validation cannot be resumed from a checkpoint");
		return MLC_EUSER;
	}
	mlc_rng r0 = s->rng; /* as seeded: every fold starts from it, as a fresh run */
	mlc_data data;
	mlc_status st = mlc_session_jit(s, d);
	if (st != MLC_OK || (st = mlc_data_load(s, false, &data, d)) != MLC_OK)
		return st;
	int64_t n = data.ds.n;
	mlc_data_free(&data);
	if (k > n) {
		mlc_error_file(d, data.file, "has %lld training sample%s, too few for %d folds", (long long)n, MLC_S(n), k);
		return MLC_EUSER;
	}
	FILE *jl = NULL;
	if (s->opt.json_log && !(jl = fopen(s->opt.json_log, "w"))) {
		mlc_error_file(d, s->opt.json_log, "cannot write the training log: %s", strerror(errno));
		return MLC_EIO;
	}
	int64_t *perm = mlc_xmalloc(sizeof(int64_t) * (size_t)n), *order = mlc_xmalloc(sizeof(int64_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		perm[i] = i;
	if (s->model->data.shuffle) {
		mlc_rng r = r0;
		mlc_rng_shuffle(&r, perm, n);
	}
	double *loss = mlc_xmalloc(sizeof(double) * (size_t)k), *metric = mlc_xmalloc(sizeof(double) * (size_t)k);
	const char *mname = NULL, *mkey = NULL; /* the headline metric, and its JSON key's */
	size_t param_bytes = (size_t)s->graph->param_size * sizeof(float);
	for (int i = 0; i < k && st == MLC_OK; i++) {
		if (s->opt.stop && *s->opt.stop) { /* the first signal ends the whole cross-validation */
			fprintf(s->log, "stopped by signal %d before fold %d/%d\n", *s->opt.stop, i + 1, k);
			st = MLC_ESTOPPED;
			break;
		}
		mlc_fold f = {.order = order, .n = n, .i = i + 1, .k = k, .log = jl};
		f.nval = mlc_fold_order(perm, n, k, i, order);
		/* a fresh run: the seeded generator, zero optimizer state, initializers (or --weights) */
		s->rng = r0;
		s->step = 0;
		memset(s->params, 0, param_bytes);
		s->params_ready = false;
		s->fold = &f;
		if (!s->opt.quiet)
			fprintf(s->log, "fold %d/%d: training on %lld sample%s, holding out %lld\n", i + 1, k,
				(long long)(n - f.nval), MLC_S(n - f.nval), (long long)f.nval);
		st = mlc_session_train(s, d);
		s->fold = NULL;
		if (st != MLC_OK)
			break;
		mname = !isnan(f.acc) ? "accuracy" : !isnan(f.mse) ? "mse" : NULL;
		mkey = !isnan(f.acc) ? "acc" : mname;
		loss[i] = f.loss;
		metric[i] = !isnan(f.acc) ? f.acc : f.mse;
		fprintf(s->log, "fold %d/%d: val_loss %.4f", i + 1, k, f.loss);
		if (mname)
			fprintf(s->log, "  val_%s %.4f", mname, metric[i]);
		fputc('\n', s->log);
		if (jl) {
			fprintf(jl, "{\"fold\": %d, \"train_samples\": %lld, \"val_samples\": %lld, \"epochs\": %d, "
				"\"val_loss\": ", i + 1, (long long)(n - f.nval), (long long)f.nval, f.epochs);
			mlc_json_num(jl, f.loss);
			if (mname) {
				fprintf(jl, ", \"val_%s\": ", mkey);
				mlc_json_num(jl, metric[i]);
			}
			fputs("}\n", jl);
			fflush(jl);
		}
	}
	if (st == MLC_OK) {
		double lm, ls, mm = 0, ms = 0;
		mean_std(loss, k, &lm, &ls);
		fprintf(s->log, "%d-fold cross-validation: val_loss %.4f ± %.4f", k, lm, ls);
		if (mname) {
			mean_std(metric, k, &mm, &ms);
			fprintf(s->log, "  val_%s %.4f ± %.4f", mname, mm, ms);
		}
		fputc('\n', s->log);
		if (jl) {
			fprintf(jl, "{\"kfold\": %d, \"val_loss_mean\": ", k);
			mlc_json_num(jl, lm);
			fputs(", \"val_loss_std\": ", jl);
			mlc_json_num(jl, ls);
			if (mname) {
				fprintf(jl, ", \"val_%s_mean\": ", mkey);
				mlc_json_num(jl, mm);
				fprintf(jl, ", \"val_%s_std\": ", mkey);
				mlc_json_num(jl, ms);
			}
			fputs("}\n", jl);
		}
	}
	if (jl && fclose(jl) != 0 && st == MLC_OK) {
		mlc_error_file(d, s->opt.json_log, "cannot write: %s", strerror(errno));
		st = MLC_EIO;
	}
	free(loss);
	free(metric);
	free(perm);
	free(order);
	return st;
}
