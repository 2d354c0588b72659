/* watch.h — epoch-end decisions on a monitored value: reduce_on_plateau's
 * learning rate and early stopping (internal; docs/spec.md). */
#ifndef MLC_WATCH_H
#define MLC_WATCH_H

#include <stdbool.h>

#include "../frontend/frontend.h"

/* reduce_on_plateau, PyTorch's ReduceLROnPlateau in mode 'min', threshold
 * mode 'rel', no cooldown. */
typedef struct {
	double best; /* lowest loss seen (HUGE_VAL before the first epoch) */
	int bad;     /* epochs since it last improved by the threshold */
} mlc_plateau;
mlc_plateau mlc_plateau_new(void);
/* The learning rate for the next epoch, given this epoch's loss and rate. */
double mlc_plateau_step(const mlc_sched_cfg *s, mlc_plateau *p, double loss, double lr);

typedef enum { MLC_EARLY_WAIT, MLC_EARLY_BEST, MLC_EARLY_STOP } mlc_early_verdict;
typedef struct {
	double best;    /* the best monitored value */
	int best_epoch; /* 0 before the first */
	int wait;       /* epochs since best_epoch */
} mlc_early;
mlc_early mlc_early_new(void);
/* Epoch e's value of the monitored quantity (a loss is minimized, an
 * accuracy maximized): a new best, keep waiting, or stop (`patience` epochs
 * in a row without an improvement by more than min_delta). */
mlc_early_verdict mlc_early_step(const mlc_early_cfg *c, mlc_early *s, int e, double value);
bool mlc_monitor_maximized(mlc_monitor m);
const char *mlc_monitor_name(mlc_monitor m);

#endif
