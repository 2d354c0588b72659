/* checkpoint.h — a training run's whole state in one safetensors file, so
 * `mlc run --resume` continues bit for bit (internal; docs/spec.md). */
#ifndef MLC_CHECKPOINT_H
#define MLC_CHECKPOINT_H

#include "session.h"
#include "watch.h"

/* Where a run is and what it has learned besides the parameter arena. */
typedef struct {
	int epoch;          /* the epoch in progress, 1-based (epochs + 1: all done) */
	int64_t pos;        /* its training samples done; 0: not shuffled yet */
	uint32_t step;      /* s->step: train steps taken */
	mlc_rng rng0;       /* the run's generator before the first epoch's shuffle */
	mlc_rng rng;        /* and now */
	double cur_lr;      /* reduce_on_plateau's rate */
	mlc_plateau plateau;
	mlc_early early;
	bool stopped;       /* early stopping ended the run */
	double first_loss;  /* the divergence baseline: the run's first step loss (step > 0) */
	/* the epoch in progress: running loss sum and metrics */
	double ep_loss;
	int64_t ep_seen;
	mlc_metrics *ep_m;
	float *best;        /* early stopping's best arena (param_size floats), or NULL */
	/* what must match for the resumed run to be the same run */
	uint64_t seed;
	int64_t batch, n, ntrain;
	/* this run's, which bound what a checkpoint of it can hold */
	int epochs;
	double base_lr;     /* the rate before any schedule */
	bool lr_varies;     /* reduce_on_plateau can lower cur_lr below base_lr */
	const mlc_early_cfg *early_cfg; /* NULL: no early stopping */
} mlc_ckpt;

/* Writes it atomically with every param and state tensor of the arena. */
mlc_status mlc_ckpt_write(mlc_session *s, const char *path, const mlc_ckpt *c, mlc_diag *d);
/* Loads the arena and *c (whose seed, batch, n, ntrain, ep_m, best, epochs,
 * base_lr, lr_varies and early_cfg are this run's, checked against the
 * file's). Every value is range-checked against what this run can have
 * written (docs/spec.md#checkpoints); errors name the file and the key. */
mlc_status mlc_ckpt_read(mlc_session *s, const char *path, mlc_ckpt *c, mlc_diag *d);

/* The part of mlc_ckpt_read that reads the metadata's run settings and
 * state (kv: key, value, ..., NULL) into *c; `width` is the prediction's
 * (mlc_pred_width). Separate so that tests/fuzz/fuzz_ckpt.c can drive it. */
mlc_status mlc_ckpt_read_state(char **kv, const char *path, mlc_ckpt *c, int64_t width, mlc_diag *d);

/* A resumed run's --log (docs/spec.md#checkpoints). When `path` holds this
 * run's records — {"epoch": 1, ...}, {"epoch": 2, ...}, ... in order, at
 * least up to epoch - 1, then only more epoch records, the test's and a last
 * line cut short — the records of epochs before `epoch` (the checkpoint's
 * epoch in progress) are kept and the rest dropped, rewritten atomically:
 * *kept = how many kept, *dropped = lines dropped. Otherwise the file is
 * left as it is: *kept = MLC_LOG_MISSING or MLC_LOG_FOREIGN. */
enum { MLC_LOG_MISSING = -2, MLC_LOG_FOREIGN = -1 };
mlc_status mlc_log_trim(const char *path, int epoch, int *kept, int *dropped, mlc_diag *d);

#endif
