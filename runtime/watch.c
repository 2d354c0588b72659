/* watch.c — reduce_on_plateau and early stopping: what to do at an epoch's
 * end given the monitored value. Pure functions of their state, so the unit
 * tests drive them with made-up loss sequences. */
#include "watch.h"

#include <math.h>

mlc_plateau mlc_plateau_new(void)
{
	return (mlc_plateau){HUGE_VAL, 0};
}

double mlc_plateau_step(const mlc_sched_cfg *s, mlc_plateau *p, double loss, double lr)
{
	if (loss < p->best * (1 - s->threshold)) {
		p->best = loss;
		p->bad = 0;
		return lr;
	}
	if (++p->bad <= s->patience)
		return lr;
	p->bad = 0;
	double next = lr * s->factor;
	return next > s->min_lr ? next : (s->min_lr < lr ? s->min_lr : lr);
}

mlc_early mlc_early_new(void)
{
	return (mlc_early){NAN, 0, 0};
}

bool mlc_monitor_maximized(mlc_monitor m)
{
	return m == MLC_MON_VAL_ACC || m == MLC_MON_ACC;
}

const char *mlc_monitor_name(mlc_monitor m)
{
	static const char *const names[] = {"val_loss", "val_acc", "loss", "acc"};
	return names[m];
}

mlc_early_verdict mlc_early_step(const mlc_early_cfg *c, mlc_early *s, int e, double value)
{
	double gain = mlc_monitor_maximized(c->monitor) ? value - s->best : s->best - value;
	if (s->best_epoch == 0 || gain > c->min_delta) {
		s->best = value;
		s->best_epoch = e;
		s->wait = 0;
		return MLC_EARLY_BEST;
	}
	return ++s->wait >= c->patience ? MLC_EARLY_STOP : MLC_EARLY_WAIT;
}
