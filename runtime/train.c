/* train.c — the training loop (shuffled minibatches through the JIT'd train
 * step, per-epoch metrics, validation and test), evaluation, prediction to
 * CSV, and the one-batch gradient dump of `mlc grad`. */
#include "chance.h"
#include "checkpoint.h"
#include "numerics.h"
#include "session.h"
#include "watch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

typedef struct {
	double loss;
	int64_t seen;
	mlc_metrics m;
} stats;

/* Whether accuracy means something: class labels, or 0/1 targets. */
static bool is_classification(const mlc_session *s, const mlc_dataset *ds)
{
	if (s->y && s->y->dtype == DT_I32)
		return true;
	if (!s->y) /* no labels: the loss reads an input as its target */
		return false;
	for (int64_t i = 0; i < ds->n * ds->ydim; i++)
		if (ds->y[i] != 0 && ds->y[i] != 1)
			return ds->ydim == 1 && mlc_pred_width(s) > 1;
	return true;
}

/* What the run reports: the spec's metrics:, or accuracy for a classifier
 * and mse for regression. */
typedef struct {
	unsigned which;
	bool cls;         /* class metrics apply */
	int64_t nclasses; /* of the accumulators: 2 for a single probability output */
	int topk;
} report_cfg;

static report_cfg report_setup(const mlc_session *s, const mlc_dataset *ds)
{
	report_cfg r = {0};
	r.cls = is_classification(s, ds);
	const mlc_metrics_cfg *c = s->model ? &s->model->metrics : NULL;
	r.which = c && c->set ? c->set : r.cls ? MLC_METRIC_ACCURACY : MLC_METRIC_MSE;
	if (r.cls) {
		int64_t w = mlc_pred_width(s);
		r.nclasses = w == 1 ? 2 : w;
		r.topk = (r.which & MLC_METRIC_TOPK) ? c->topk : 1;
	}
	return r;
}

static stats stats_new(const report_cfg *r)
{
	stats st = {0};
	mlc_metrics_init(&st.m, r->nclasses, r->topk);
	return st;
}

static void stats_reset(stats *st)
{
	st->loss = 0;
	st->seen = 0;
	mlc_metrics_reset(&st->m);
}

static double mean_loss(const stats *st)
{
	return st->seen ? st->loss / (double)st->seen : 0.0;
}

/* After an evaluation or prediction batch: with --check-numerics, the first
 * non-finite value it computed as an error, e.g. "in the evaluation of the
 * test set, batch 2 (samples 33-64 of 100)". */
static mlc_status batch_numerics(mlc_session *s, const char *job, const char *what, int64_t b, int64_t m,
				 int64_t n, mlc_diag *d)
{
	if (!s->opt.check_numerics)
		return MLC_OK;
	char when[192];
	snprintf(when, sizeof when, "in the %s of %s, batch %lld (samples %lld-%lld of %lld)", job, what,
		 (long long)(b / s->batch + 1), (long long)b + 1, (long long)(b + m), (long long)n);
	return mlc_numerics_report(s, when, m, d);
}

/* The loss and metrics of idx[0, n) of ds; `what` names the set for
 * --check-numerics ("the test set"). */
static mlc_status evaluate(mlc_session *s, const mlc_data *data, const int64_t *idx, int64_t n, stats *st,
			   const char *what, mlc_diag *d)
{
	stats_reset(st);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0, s->seed, s->step); /* inference mode: no mask is drawn */
	for (int64_t b = 0; b < n; b += s->batch) {
		int64_t m = n - b < s->batch ? n - b : s->batch;
		if (s->opt.stop && *s->opt.stop) { /* a large set takes long: the first signal ends it */
			fprintf(s->log, "stopped by signal %d in the evaluation of %s (%lld of %lld samples)\n",
				*s->opt.stop, what, (long long)b, (long long)n);
			return MLC_ESTOPPED;
		}
		mlc_batch_fill(s, data, idx + b, m);
		s->fn[MLC_ENTRY_EVAL](s->params, s->act, m, hyper);
		mlc_status r = batch_numerics(s, "evaluation", what, b, m, n, d);
		if (r != MLC_OK)
			return r;
		st->loss += (double)s->act[s->loss->offset] * (double)m;
		mlc_batch_metrics(s, &data->ds, idx + b, m, &st->m);
		st->seen += m;
	}
	return MLC_OK;
}

static void progress(mlc_session *s, int epoch, int epochs, int64_t done, int64_t total, const stats *st, double t0)
{
	int width = 24, fill = (int)(width * done / (total ? total : 1));
	double rate = (double)done / (mlc_now() - t0 + 1e-9);
	fprintf(s->log, "\repoch %d/%d [%.*s%*s] %3d%%  loss %.4f  %.0f samples/s ", epoch, epochs, fill,
		"########################", width - fill, "", (int)(100 * done / (total ? total : 1)),
		mean_loss(st), rate);
	fflush(s->log);
}

static int64_t *iota(int64_t n)
{
	int64_t *idx = mlc_xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	return idx;
}

static bool has_test(const mlc_session *s)
{
	return s->model && s->model->data.test_x.path;
}

static bool has_val(const mlc_session *s)
{
	return s->model && s->model->data.val_x.path;
}

static bool show_acc(const report_cfg *r)
{
	return r->cls && (r->which & MLC_METRIC_ACCURACY);
}

/* The final evaluation: a summary line, then the tables the metrics ask for. */
static void report(mlc_session *s, const char *what, const stats *st, const report_cfg *r)
{
	fprintf(s->log, "%s: loss %.4f", what, mean_loss(st));
	if (show_acc(r))
		fprintf(s->log, "  accuracy %.4f (%lld/%lld)", mlc_metrics_accuracy(&st->m), (long long)st->m.correct,
			(long long)st->m.seen);
	mlc_metrics_text(&st->m, r->which, "", s->log);
	fputc('\n', s->log);
	if (r->cls && (r->which & MLC_METRIC_CONFUSION))
		mlc_metrics_print_confusion(&st->m, s->log);
	if (r->cls && (r->which & (MLC_METRIC_PRECISION | MLC_METRIC_RECALL | MLC_METRIC_F1)))
		mlc_metrics_print_classes(&st->m, s->log);
}

/* JSON members of one evaluation: "loss", "acc" and the chosen metrics, prefixed. */
static void json_stats(FILE *f, const char *prefix, const stats *st, const report_cfg *r, unsigned which)
{
	fprintf(f, "\"%sloss\": ", prefix);
	mlc_json_num(f, mean_loss(st));
	if (show_acc(r)) {
		fprintf(f, ", \"%sacc\": ", prefix);
		mlc_json_num(f, mlc_metrics_accuracy(&st->m));
	}
	mlc_metrics_json(&st->m, which, prefix, f);
}

/* Where checkpoints go: one path, or a template ({epoch}, {step}) naming a
 * file per checkpoint, of which the newest `keep` are kept (0: all). */
typedef struct {
	const char *path;
	bool templated;
	int keep;
	char **files; /* with keep: this run's files, oldest first */
	int nfiles;
	char *last;   /* the file written last */
} ck_out;

static void ck_out_free(ck_out *o)
{
	for (int i = 0; i < o->nfiles; i++)
		free(o->files[i]);
	free(o->files);
	free(o->last);
}

/* After `name` was written: it becomes the newest file (once, however often
 * it was written), and the oldest beyond keep are removed. */
static mlc_status ck_prune(ck_out *o, const char *name, mlc_diag *d)
{
	int at = 0;
	while (at < o->nfiles && strcmp(o->files[at], name) != 0)
		at++;
	char *f = at < o->nfiles ? o->files[at] : mlc_xstrdup(name);
	if (at == o->nfiles) {
		o->files = realloc(o->files, sizeof *o->files * (size_t)(o->nfiles + 1));
		MLC_ASSERT(o->files);
		o->nfiles++;
	}
	memmove(o->files + at, o->files + at + 1, sizeof *o->files * (size_t)(o->nfiles - 1 - at));
	o->files[o->nfiles - 1] = f;
	while (o->nfiles > o->keep) {
		if (unlink(o->files[0]) != 0 && errno != ENOENT) {
			mlc_error_file(d, o->files[0], "cannot remove this older checkpoint (keep: %d): %s", o->keep,
				       strerror(errno));
			return MLC_EIO;
		}
		free(o->files[0]);
		memmove(o->files, o->files + 1, sizeof *o->files * (size_t)--o->nfiles);
	}
	return MLC_OK;
}

/* The loop's state as a checkpoint: epoch `epoch` in progress, `pos` of its
 * samples trained (0: not shuffled yet). A template's {epoch} is the epoch
 * the checkpoint was taken in: the one in progress, or the one just ended. */
static mlc_status checkpoint(mlc_session *s, ck_out *o, mlc_ckpt *k, int epoch, int64_t pos, stats *ep,
			     double cur_lr, const mlc_plateau *p, const mlc_early *early, bool stopped, mlc_diag *d)
{
	k->epoch = epoch;
	k->pos = pos;
	k->step = s->step;
	k->rng = s->rng;
	k->cur_lr = cur_lr;
	k->plateau = *p;
	k->early = *early;
	k->stopped = stopped;
	k->ep_loss = ep->loss;
	k->ep_seen = ep->seen;
	k->ep_m = &ep->m;
	mlc_status st = mlc_params_check(s, pos > 0 ? epoch : epoch - 1, cur_lr, d);
	if (st != MLC_OK)
		return st;
	char *name = o->templated ? mlc_ckpt_template_expand(o->path, pos > 0 ? epoch : epoch - 1, s->step)
				  : mlc_xstrdup(o->path);
	st = mlc_ckpt_write(s, name, k, d);
	if (st == MLC_OK && o->templated && o->keep > 0)
		st = ck_prune(o, name, d);
	free(o->last);
	o->last = name;
	return st;
}

/* A signal stopped a phase after the training steps (an evaluation): the
 * state as checkpoint() takes it, and where to resume from; *st stays
 * MLC_ESTOPPED unless the checkpoint fails. */
static void stop_checkpoint(mlc_session *s, ck_out *o, mlc_ckpt *k, int epoch, int64_t pos, stats *ep,
			    double cur_lr, const mlc_plateau *p, const mlc_early *early, bool stopped, mlc_status *st,
			    mlc_diag *d)
{
	mlc_status r = checkpoint(s, o, k, epoch, pos, ep, cur_lr, p, early, stopped, d);
	if (r != MLC_OK)
		*st = r;
	else
		fprintf(s->log, "resume with --resume %s\n", o->last);
}

/* After mlc_ckpt_read: the index order and generator of the checkpoint's
 * moment, regenerated by replaying the epochs' shuffles from rng0 (the only
 * draws training makes), and checked against the generator it saved. */
static mlc_status resume_order(mlc_session *s, const mlc_ckpt *k, int64_t *idx, int64_t ntrain, bool shuffle,
			       mlc_diag *d)
{
	mlc_rng r = k->rng0;
	int shuffled = k->pos > 0 ? k->epoch : k->epoch - 1;
	for (int e = 1; shuffle && e <= shuffled; e++) {
		if (s->opt.stop && *s->opt.stop) {
			fprintf(s->log, "stopped by signal %d while replaying the shuffles of epoch %d of %d to resume\n",
				*s->opt.stop, e, shuffled);
			return MLC_ESTOPPED;
		}
		mlc_rng_shuffle(&r, idx, ntrain);
	}
	if (memcmp(&r, &k->rng, sizeof r) != 0) {
		mlc_error_file(d, s->opt.resume, "checkpoint is inconsistent: its generator state does not follow "
			       "from %d epoch%s of %s", shuffled, MLC_S(shuffled), shuffle ? "shuffling" : "no shuffling");
		return MLC_EUSER;
	}
	return MLC_OK;
}

/* A resumed run's --log: what it logged after the checkpoint's position
 * (epoch e0 in progress) is dropped, so that the log ends up as an
 * uninterrupted run's; a log that is not this run's is appended to as it is. */
static mlc_status resume_log(mlc_session *s, int e0, FILE **jl, mlc_diag *d)
{
	const char *path = s->opt.json_log;
	int kept, dropped;
	mlc_status st = mlc_log_trim(path, e0, &kept, &dropped, d);
	if (st != MLC_OK)
		return st;
	char why[96] = "it holds lines mlc does not write";
	if (e0 > 1)
		snprintf(why, sizeof why, "not the records of epochs 1-%d in order, then only mlc's", e0 - 1);
	if (!s->opt.quiet && kept == MLC_LOG_FOREIGN)
		fprintf(s->log, "%s: not this run's log (%s); appending to it as it is\n", path, why);
	else if (!s->opt.quiet && dropped > 0)
		fprintf(s->log, "%s: kept the records of %d epoch%s, dropped %d line%s logged after the checkpoint\n",
			path, kept, MLC_S(kept), dropped, dropped == 1 ? "" : "s");
	if (!(*jl = fopen(path, "a"))) {
		mlc_error_file(d, path, "cannot write the training log: %s", strerror(errno));
		return MLC_EIO;
	}
	return MLC_OK;
}

/* The training run's data sets, freed together; the log is closed by the caller. */
static void free_sets(mlc_data *tr, mlc_data *te, mlc_data *va)
{
	mlc_data_free(tr);
	mlc_data_free(te);
	mlc_data_free(va);
}

/* An early return: the log closed (nothing was written) and the sets freed. */
static mlc_status give_up(mlc_status st, FILE *jl, mlc_data *tr, mlc_data *te, mlc_data *va)
{
	if (jl)
		fclose(jl);
	free_sets(tr, te, va);
	return st;
}

mlc_status mlc_session_train(mlc_session *s, mlc_diag *d)
{
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	if (!s->fn[MLC_ENTRY_TRAIN] || !s->fn[MLC_ENTRY_EVAL]) {
		mlc_error_file(d, s->path, "nothing to train: the model has no trainable parameters");
		return MLC_EUSER;
	}
	FILE *jl = NULL;
	/* a resumed run continues its log once the checkpoint is read (resume_log); K-fold writes its own */
	if (s->opt.json_log && !s->fold && !s->opt.resume && !(jl = fopen(s->opt.json_log, "w"))) {
		mlc_error_file(d, s->opt.json_log, "cannot write the training log: %s", strerror(errno));
		return MLC_EIO;
	}
	mlc_data tr, te = {0}, va = {0};
	/* K-fold: the held-out fold is the validation set, and there is no test */
	if ((st = mlc_data_load(s, false, &tr, d)) != MLC_OK ||
	    (has_test(s) && !s->fold && (st = mlc_data_load(s, true, &te, d)) != MLC_OK) ||
	    (has_val(s) && !s->fold && (st = mlc_data_load_set(s, MLC_SET_VAL, &va, d)) != MLC_OK))
		return give_up(st, jl, &tr, &te, &va);
	const mlc_data_cfg *c = &s->model->data;
	int64_t n = tr.ds.n, nsplit = va.ds.n ? 0 : (int64_t)floor((double)n * c->validation_split);
	if (s->fold) {
		MLC_ASSERT(s->fold->n == n);
		nsplit = s->fold->nval;
	}
	int64_t ntrain = n - nsplit;
	if (ntrain <= 0) {
		mlc_error_at(d, c->loc, "validation_split leaves no training samples");
		return give_up(MLC_EUSER, jl, &tr, &te, &va);
	}
	int epochs = s->opt.epochs > 0 ? s->opt.epochs : c->epochs;
	double base_lr = s->opt.lr > 0 ? s->opt.lr : s->model->opt.lr;
	int64_t nbatches = (ntrain + s->batch - 1) / s->batch;
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, (float)base_lr, s->seed, s->step);
	report_cfg rc = report_setup(s, &tr.ds);
	/* per epoch: everything but the test-only confusion matrix */
	unsigned epoch_which = rc.which & ~MLC_METRIC_CONFUSION;
	bool tty = !s->opt.quiet && isatty(fileno(s->log));
	int every = epochs <= 50 ? 1 : epochs / 20; /* at most ~20 epoch lines */
	const mlc_sched_cfg *sc = &s->model->opt.schedule;
	const mlc_early_cfg *es = &c->early;
	if (es->on && (es->monitor == MLC_MON_ACC || es->monitor == MLC_MON_VAL_ACC) && !show_acc(&rc)) {
		mlc_error_at(d, es->loc, "early_stopping monitors %s, but this model reports no accuracy",
			     mlc_monitor_name(es->monitor));
		return give_up(MLC_EUSER, jl, &tr, &te, &va);
	}
	/* reduce_on_plateau lowers cur_lr; early stopping keeps the best epoch's parameters */
	double cur_lr = base_lr;
	mlc_plateau plateau = mlc_plateau_new();
	mlc_early early = mlc_early_new();
	size_t param_bytes = (size_t)s->graph->param_size * sizeof(float);
	float *best = es->on && es->restore_best ? mlc_xmalloc(param_bytes ? param_bytes : 1) : NULL;
	bool stopped = false, show_lr = sc->kind != MLC_SCHED_CONSTANT || sc->warmup_epochs > 0;
	int done = 0;
	int64_t *idx = iota(n);
	if (s->fold)
		memcpy(idx, s->fold->order, sizeof(int64_t) * (size_t)n);
	/* The validation set, chosen once: data.validation, or the last nsplit
	 * samples of train (the shuffle leaves them in place; K-fold's held-out fold). */
	int64_t *val_idx = va.ds.n ? iota(va.ds.n) : NULL;
	const mlc_data *vds = va.ds.n ? &va : &tr;
	const int64_t *vidx = va.ds.n ? val_idx : idx + ntrain;
	int64_t nval = va.ds.n ? va.ds.n : nsplit;
	char vset[64];
	if (s->fold)
		snprintf(vset, sizeof vset, "the held-out fold %d/%d", s->fold->i, s->fold->k);
	else
		snprintf(vset, sizeof vset, "%s", va.ds.n ? "the validation set" : "the validation split");
	stats ep = stats_new(&rc), v = stats_new(&rc);
	/* checkpoints: the flags override the spec */
	const mlc_ckpt_cfg *kc = &s->model->checkpoint;
	const char *ck_path = s->fold ? NULL : s->opt.checkpoint ? s->opt.checkpoint : kc->path.path;
	ck_out cko = {.path = ck_path, .keep = s->opt.checkpoint_keep > 0 ? s->opt.checkpoint_keep : kc->keep};
	char why[256];
	if (ck_path && !mlc_ckpt_template_check(ck_path, &cko.templated, why, sizeof why))
		MLC_UNREACHABLE(); /* checked when the session was opened */
	bool ck_flags = s->opt.checkpoint_epochs > 0 || s->opt.checkpoint_steps > 0;
	int ck_epochs = ck_flags ? s->opt.checkpoint_epochs : kc->every_epochs;
	int64_t ck_steps = ck_flags ? s->opt.checkpoint_steps : kc->every_steps;
	mlc_ckpt ck = {.rng0 = s->rng, .seed = s->opt.seed_set ? s->opt.seed : c->seed, .batch = s->batch, .n = n,
		       .ntrain = ntrain, .ep_m = &ep.m, .best = best, .epochs = epochs, .base_lr = base_lr,
		       .lr_varies = sc->kind == MLC_SCHED_PLATEAU, .early_cfg = es->on ? es : NULL};
	mlc_diverge dv = {0};
	int e0 = 1;
	int64_t b0 = 0; /* where the first epoch starts: a resumed one may be half done */
	if (s->opt.resume) {
		st = mlc_ckpt_read(s, s->opt.resume, &ck, d);
		if (st == MLC_OK)
			st = resume_order(s, &ck, idx, ntrain, c->shuffle, d);
		if (st == MLC_OK) {
			e0 = ck.epoch, b0 = ck.pos, done = e0 - 1;
			cur_lr = ck.cur_lr, plateau = ck.plateau, early = ck.early, stopped = ck.stopped;
			s->step = ck.step;
			s->rng = ck.rng;
			ep.loss = ck.ep_loss, ep.seen = ck.ep_seen;
			dv = (mlc_diverge){.have_first = ck.step > 0, .first = ck.first_loss};
			if (b0 > 0) /* the last step's rate: the epoch's "lr" */
				hyper[0] = (float)mlc_lr_at(&s->model->opt, cur_lr,
							    (e0 - 1) + (double)((b0 - 1) / s->batch) / (double)nbatches, epochs);
			if (!s->opt.quiet)
				fprintf(s->log, "resumed from %s: epoch %d, %lld of %lld samples, step %u\n", s->opt.resume,
					e0, (long long)b0, (long long)ntrain, s->step);
		}
		if (st == MLC_OK && s->opt.json_log && !s->fold)
			st = resume_log(s, e0, &jl, d);
	}
	double start = mlc_now();
	if (s->fold) /* K-fold's log gets each fold's epoch records too, for mlc plot */
		jl = s->fold->log;
	mlc_chance chance = {0}; /* the not-learning hint */
	for (int e = e0; e <= epochs && st == MLC_OK && !stopped; e++) {
		bool cont = e == e0 && b0 > 0; /* resumed inside this epoch: already shuffled */
		if (c->shuffle && !cont)
			mlc_rng_shuffle(&s->rng, idx, ntrain);
		if (!cont)
			stats_reset(&ep);
		double t0 = mlc_now(), last = t0;
		for (int64_t b = cont ? b0 : 0; b < ntrain; b += s->batch) {
			int64_t m = ntrain - b < s->batch ? ntrain - b : s->batch;
			double t = (e - 1) + (double)(b / s->batch) / (double)nbatches;
			/* a new step, hence new dropout masks, every batch */
			float lr = (float)mlc_lr_at(&s->model->opt, cur_lr, t, epochs);
			mlc_hyper_set(hyper, lr, s->seed, s->step++);
			mlc_batch_fill(s, &tr, idx + b, m);
			s->fn[MLC_ENTRY_TRAIN](s->params, s->act, m, hyper);
			if ((st = mlc_train_step_check(s, &dv, e, lr, m, d)) != MLC_OK)
				break;
			ck.first_loss = dv.first;
			ep.loss += (double)s->act[s->loss->offset] * (double)m;
			mlc_batch_metrics(s, &tr.ds, idx + b, m, &ep.m);
			ep.seen += m;
			if (tty && mlc_now() - last > 0.1) {
				last = mlc_now();
				progress(s, e, epochs, ep.seen, ntrain, &ep, t0);
			}
			int sig = s->opt.stop ? *s->opt.stop : 0;
			if (ck_path && (sig || (ck_steps > 0 && s->step % ck_steps == 0)) &&
			    (st = checkpoint(s, &cko, &ck, e, b + m, &ep, cur_lr, &plateau, &early, stopped, d)) != MLC_OK)
				break;
			if (sig) {
				if (tty)
					fprintf(s->log, "\r%*s\r", 100, "");
				fprintf(s->log, "stopped by signal %d after step %u (epoch %d, %lld of %lld samples); %s%s\n",
					sig, s->step, e, (long long)(b + m), (long long)ntrain,
					ck_path ? "resume with --resume " : "no checkpoint was configured",
					ck_path ? cko.last : "");
				st = MLC_ESTOPPED;
				break;
			}
		}
		if (st != MLC_OK)
			break;
		double secs = mlc_now() - t0;
		if (tty)
			fprintf(s->log, "\r%*s\r", 100, "");
		if (!isfinite(ep.loss)) {
			mlc_error_file(d, s->path, "training diverged: the loss is not finite in epoch %d; "
				       "try a smaller learning rate", e);
			st = MLC_EUSER;
			break;
		}
		/* a clamped loss (BCE's) stays finite over NaN weights: look at them too */
		if ((st = mlc_params_check(s, e, hyper[0], d)) != MLC_OK)
			break;
		done = e;
		mlc_chance_check(s, &chance, e, mean_loss(&ep), show_acc(&rc) ? mlc_metrics_accuracy(&ep.m) : NAN, hyper[0]);
		bool print = !s->opt.quiet && (e % every == 0 || e == epochs || e == 1);
		char vname[96];
		snprintf(vname, sizeof vname, "%s after epoch %d", vset, e);
		if (nval > 0 && (print || jl || es->on || sc->kind == MLC_SCHED_PLATEAU) &&
		    (st = evaluate(s, vds, vidx, nval, &v, vname, d)) != MLC_OK) {
			/* resumed, it starts over at this epoch's end: all its batches trained */
			if (st == MLC_ESTOPPED && ck_path)
				stop_checkpoint(s, &cko, &ck, e, ntrain, &ep, cur_lr, &plateau, &early, stopped, &st, d);
			break;
		}
		double epoch_lr = hyper[0];
		if (sc->kind == MLC_SCHED_PLATEAU) /* on the validation loss, else the training loss */
			cur_lr = mlc_plateau_step(sc, &plateau, nval > 0 ? mean_loss(&v) : mean_loss(&ep), cur_lr);
		if (es->on) {
			const stats *w = es->monitor == MLC_MON_VAL_LOSS || es->monitor == MLC_MON_VAL_ACC ? &v : &ep;
			bool acc = mlc_monitor_maximized(es->monitor);
			mlc_early_verdict k = mlc_early_step(es, &early, e, acc ? mlc_metrics_accuracy(&w->m) : mean_loss(w));
			if (k == MLC_EARLY_BEST && best)
				memcpy(best, s->params, param_bytes);
			stopped = k == MLC_EARLY_STOP;
			print |= stopped && !s->opt.quiet;
		}
		if (jl) {
			if (s->fold)
				fprintf(jl, "{\"fold\": %d, \"epoch\": %d, ", s->fold->i, e);
			else
				fprintf(jl, "{\"epoch\": %d, ", e);
			json_stats(jl, "", &ep, &rc, epoch_which);
			if (nval > 0) {
				fputs(", ", jl);
				json_stats(jl, "val_", &v, &rc, epoch_which);
			}
			fprintf(jl, ", \"lr\": %.7g", epoch_lr); /* an f32: 7 digits */
			fputs(", \"time_s\": ", jl);
			mlc_json_num(jl, secs);
			fputs("}\n", jl);
			fflush(jl);
		}
		if (ck_path && ck_epochs > 0 && e % ck_epochs == 0 &&
		    (st = checkpoint(s, &cko, &ck, e + 1, 0, &ep, cur_lr, &plateau, &early, stopped, d)) != MLC_OK)
			break;
		if (!print)
			continue;
		fprintf(s->log, "epoch %d/%d  loss %.4f", e, epochs, mean_loss(&ep));
		if (show_acc(&rc))
			fprintf(s->log, "  acc %.4f", mlc_metrics_accuracy(&ep.m));
		mlc_metrics_text(&ep.m, epoch_which, "", s->log);
		if (nval > 0) {
			fprintf(s->log, "  val_loss %.4f", mean_loss(&v));
			if (show_acc(&rc))
				fprintf(s->log, "  val_acc %.4f", mlc_metrics_accuracy(&v.m));
			mlc_metrics_text(&v.m, epoch_which, "val_", s->log);
		}
		if (show_lr)
			fprintf(s->log, "  lr %.3g", epoch_lr);
		fprintf(s->log, "  %.2fs  %.0f samples/s\n", secs, (double)ep.seen / (secs + 1e-9));
	}
	if (st == MLC_OK && stopped && !s->opt.quiet)
		fprintf(s->log, "early stopping: %s has not improved for %d epoch%s; stopped after epoch %d, "
			"best epoch %d (%s %.4f)\n", mlc_monitor_name(es->monitor), es->patience, MLC_S(es->patience), done,
			early.best_epoch, mlc_monitor_name(es->monitor), early.best);
	if (st == MLC_OK && best && early.best_epoch != done) {
		memcpy(s->params, best, param_bytes);
		/* evaluated again: the restored weights, not the record */
		bool again = !s->opt.quiet && nval > 0;
		if (again)
			st = evaluate(s, vds, vidx, nval, &v, vset, d);
		if (st == MLC_ESTOPPED && ck_path) /* resumed, it restores and evaluates again */
			stop_checkpoint(s, &cko, &ck, done + 1, 0, &ep, cur_lr, &plateau, &early, stopped, &st, d);
		if (st == MLC_OK && !s->opt.quiet) {
			fprintf(s->log, "restored the weights of epoch %d", early.best_epoch);
			if (again) {
				fprintf(s->log, ": val_loss %.4f", mean_loss(&v));
				if (show_acc(&rc))
					fprintf(s->log, "  val_acc %.4f", mlc_metrics_accuracy(&v.m));
			}
			fputc('\n', s->log);
		}
	}
	free(best);
	if (st == MLC_OK && !s->opt.quiet)
		fprintf(s->log, "trained %d epoch%s in %.2fs\n", done, MLC_S(done), mlc_now() - start);
	if (st == MLC_OK && s->fold && (st = evaluate(s, &tr, idx + ntrain, nval, &v, vset, d)) == MLC_OK) {
		s->fold->loss = mean_loss(&v);
		s->fold->acc = show_acc(&rc) ? mlc_metrics_accuracy(&v.m) : NAN;
		s->fold->mse = !rc.cls && v.m.nvalues ? mlc_metrics_mse(&v.m) : NAN;
		s->fold->epochs = done;
	}
	if (st == MLC_OK && te.unlabeled && !s->opt.quiet)
		fprintf(s->log, "test: not evaluated: the test set (%s) has no labels, so it is only predicted (--predict)\n",
			te.file);
	if (st == MLC_OK && te.ds.n && !te.unlabeled) {
		int64_t *tidx = iota(te.ds.n);
		st = evaluate(s, &te, tidx, te.ds.n, &v, "the test set", d);
		if (st == MLC_ESTOPPED && ck_path) /* resumed, it only tests */
			stop_checkpoint(s, &cko, &ck, done + 1, 0, &ep, cur_lr, &plateau, &early, stopped, &st, d);
		if (st == MLC_OK)
			report(s, "test", &v, &rc);
		if (jl && st == MLC_OK) {
			fputs("{\"test\": {", jl);
			json_stats(jl, "", &v, &rc, rc.which);
			fputs(", \"file\": ", jl);
			mlc_json_str(jl, te.file);
			fputs("}}\n", jl);
		}
		free(tidx);
	}
	if (jl && !s->fold && fclose(jl) != 0 && st == MLC_OK) {
		mlc_error_file(d, s->opt.json_log, "cannot write: %s", strerror(errno));
		st = MLC_EIO;
	}
	ck_out_free(&cko);
	mlc_metrics_free(&ep.m);
	mlc_metrics_free(&v.m);
	free(idx);
	free(val_idx);
	free_sets(&tr, &te, &va);
	return st;
}

mlc_status mlc_session_evaluate(mlc_session *s, mlc_diag *d)
{
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	if (!s->fn[MLC_ENTRY_EVAL]) {
		mlc_error_file(d, s->path, "the model has no loss to evaluate");
		return MLC_EUSER;
	}
	mlc_data data;
	bool test = has_test(s);
	if ((st = mlc_data_load(s, test, &data, d)) != MLC_OK)
		return st;
	if (data.unlabeled) {
		mlc_error_at(d, s->model->data.test_x.loc, "--eval needs the test set's labels: add labels: beside images:, "
			     "or use --predict, which needs none");
		mlc_data_free(&data);
		return MLC_EUSER;
	}
	int64_t *idx = iota(data.ds.n);
	report_cfg rc = report_setup(s, &data.ds);
	stats ev = stats_new(&rc);
	st = evaluate(s, &data, idx, data.ds.n, &ev, test ? "the test set" : "the training set", d);
	if (st == MLC_OK)
		report(s, test ? "test" : "train", &ev, &rc);
	mlc_metrics_free(&ev.m);
	free(idx);
	mlc_data_free(&data);
	return st;
}

mlc_status mlc_session_predict(mlc_session *s, const char *csv_path, mlc_diag *d)
{
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	mlc_data data;
	bool test = has_test(s);
	if ((st = mlc_data_load(s, test, &data, d)) != MLC_OK)
		return st;
	mlc_atomic a = {.f = stdout};
	if (strcmp(csv_path, "-") != 0 && mlc_atomic_open(&a, csv_path, d) != MLC_OK) {
		mlc_data_free(&data);
		return MLC_EIO;
	}
	FILE *f = a.f;
	const mlc_dataset *ds = &data.ds;
	int64_t c = mlc_pred_width(s), *idx = iota(ds->n);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0, s->seed, s->step);
	/* docs/spec.md#predictions: id, the true label (or targets), then the
	 * class and one named column per output (probabilities; hinge: scores) */
	/* without a labels input the loss's target is an input (an autoencoder): values */
	bool cls = s->y && is_classification(s, ds), truth = s->y && ds->ydim > 0;
	const char *out = !cls ? "pred" : s->loss_term && s->loss_term->op == OP_HINGE ? "score" : "p";
	fprintf(f, "id");
	if (truth && cls)
		fprintf(f, ",label");
	for (int64_t j = 0; truth && !cls && j < ds->ydim; j++)
		fprintf(f, ds->ydim == 1 ? ",target" : ",target_%lld", (long long)j);
	if (cls)
		fprintf(f, ",class");
	for (int64_t j = 0; j < c; j++) /* one sigmoid output: the probability of class 1 */
		fprintf(f, cls ? ",%s_%lld" : c == 1 ? ",%s" : ",%s_%lld", out, (long long)(cls && c == 1 ? 1 : j));
	fputc('\n', f);
	for (int64_t b = 0; b < data.ds.n; b += s->batch) {
		int64_t m = data.ds.n - b < s->batch ? data.ds.n - b : s->batch;
		mlc_batch_fill(s, &data, idx + b, m);
		s->fn[MLC_ENTRY_PREDICT](s->params, s->act, m, hyper);
		if ((st = batch_numerics(s, "prediction", test ? "the test set" : "the training set", b, m, data.ds.n,
					 d)) != MLC_OK)
			break;
		const float *p = s->act + s->pred->offset;
		for (int64_t r = 0; r < m; r++) {
			const float *row = p + r * c, *t = truth ? ds->y + (b + r) * ds->ydim : NULL;
			fprintf(f, "%lld", (long long)(b + r + 1));
			if (t && cls) /* a class index, a one-hot row, or a 0/1 target */
				fprintf(f, ",%lld", (long long)(ds->ydim == 1 && c > 1 ? (int64_t)t[0]
								: ds->ydim == c && c > 1 ? mlc_pred_class(t, c) : t[0] > 0.5f));
			for (int64_t j = 0; t && !cls && j < ds->ydim; j++)
				fprintf(f, ",%.9g", (double)t[j]);
			if (cls)
				fprintf(f, ",%lld", (long long)mlc_pred_class(row, c));
			for (int64_t j = 0; j < c; j++)
				fprintf(f, ",%.9g", (double)row[j]);
			fputc('\n', f);
		}
	}
	if (f != stdout && st == MLC_OK)
		st = mlc_atomic_commit(&a, d);
	else if (f != stdout)
		mlc_atomic_abort(&a);
	if (f != stdout && st == MLC_OK && !s->opt.quiet)
		fprintf(s->log, "wrote %lld prediction%s of %s (%s) to %s\n", (long long)ds->n, MLC_S(ds->n),
			test ? "the test set" : "the training set", data.file, csv_path);
	free(idx);
	mlc_data_free(&data);
	return st;
}

mlc_status mlc_session_grad(mlc_session *s, const char *out_path, mlc_diag *d)
{
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	if (!s->fn[MLC_ENTRY_GRAD]) {
		mlc_error_file(d, s->path, "the model has no gradients to compute");
		return MLC_EUSER;
	}
	mlc_data data;
	if ((st = mlc_data_load(s, false, &data, d)) != MLC_OK)
		return st;
	int64_t m = data.ds.n < s->batch ? data.ds.n : s->batch, *idx = iota(m);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0, s->seed, 0); /* step 0: the masks of a first train step */
	mlc_batch_fill(s, &data, idx, m);
	s->fn[MLC_ENTRY_GRAD](s->params, s->act, m, hyper);
	if ((st = mlc_numerics_report(s, "in the gradient batch", m, d)) != MLC_OK) {
		free(idx);
		mlc_data_free(&data);
		return st;
	}
	mlc_graph *g = s->graph;
	mlc_tensor *t = mlc_xmalloc(sizeof(mlc_tensor) * (size_t)(g->nret + 1));
	int nt = 0;
	t[nt++] = (mlc_tensor){.name = "loss", .rank = 0, .data = s->act + s->loss->offset};
	for (int i = 0; i < g->nret; i++) {
		if (strncmp(g->ret[i].key, "grad.", 5) != 0)
			continue;
		const mlc_node *v = g->ret[i].val;
		mlc_tensor *x = &t[nt++];
		x->name = (char *)g->ret[i].key + 5; /* borrowed */
		x->rank = v->rank;
		for (int k = 0; k < v->rank; k++)
			x->dim[k] = v->dim[k] == MLC_BATCH ? m : v->dim[k];
		x->data = (v->mem == MEM_PARAM ? s->params : s->act) + v->offset;
	}
	const char *meta[] = {"format", "mlc-grad", "batch", mlc_arena_printf(g->arena, "%lld", (long long)m), NULL};
	st = mlc_safetensors_write(out_path, t, nt, meta, d);
	if (st == MLC_OK)
		fprintf(s->log, "loss %.6f over %lld sample%s; %d gradient%s written to %s\n",
			(double)s->act[s->loss->offset], (long long)m, MLC_S(m), nt - 1, MLC_S(nt - 1), out_path);
	free(t);
	free(idx);
	mlc_data_free(&data);
	return st;
}
