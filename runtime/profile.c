/* profile.c — `mlc run --profile`: a few train steps through profiled
 * entries (codegen/profile.h) on the spec's training data, then the table of
 * time per kernel and per layer. Training does not continue: the steps are
 * for timing, their updates are discarded with the process. */
#include "../codegen/profile.h"
#include "session.h"

#include <stdlib.h>

enum { PROFILE_WARMUP = 3, PROFILE_STEPS = 20 };

mlc_status mlc_session_profile(mlc_session *s, mlc_diag *d)
{
	if (!s->model) {
		mlc_error_file(d, s->path, "--profile trains on the spec's data; an IR file has none");
		return MLC_EUSER;
	}
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	mlc_profile *p = mlc_jit_profile(s->jit);
	if (!s->fn[MLC_ENTRY_TRAIN] || !p) {
		mlc_error_file(d, s->path, "nothing to profile: the model has no trainable parameters");
		return MLC_EUSER;
	}
	mlc_data tr;
	if ((st = mlc_data_load(s, false, &tr, d)) != MLC_OK)
		return st;
	int64_t n = tr.ds.n, *idx = mlc_xmalloc(sizeof *idx * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	double lr = s->opt.lr > 0 ? s->opt.lr : s->model->opt.lr;
	float hyper[MLC_HYPER_COUNT];
	/* the first batches of the data in order, as many times as it takes */
	int64_t b = 0;
	for (int step = 0; step < PROFILE_WARMUP + PROFILE_STEPS && n > 0; step++) {
		if (step == PROFILE_WARMUP)
			mlc_profile_reset(p);
		if (b >= n)
			b = 0;
		int64_t m = n - b < s->batch ? n - b : s->batch;
		mlc_hyper_set(hyper, (float)lr, s->seed, s->step++);
		mlc_batch_fill(s, &tr, idx + b, m);
		s->fn[MLC_ENTRY_TRAIN](s->params, s->act, m, hyper);
		b += m;
	}
	mlc_peak pk = mlc_peak_measure((int)s->graph->threads);
	mlc_profile_print(p, MLC_ENTRY_TRAIN, &pk, s->log);
	free(idx);
	mlc_data_free(&tr);
	return MLC_OK;
}
