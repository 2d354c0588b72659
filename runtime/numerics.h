/* numerics.h — numerical faults at run time (docs/design.md, "Numerical
 * faults"): the value scan that --check-numerics modules call after each
 * kernel, and the per-step checks of the training loop (the first non-finite
 * value, named by op, layer and pass; a diverging loss, with a hint). */
#ifndef MLC_NUMERICS_H
#define MLC_NUMERICS_H

#include "mlc/mlc.h"

#include <stdbool.h>
#include <stdint.h>

/* Called by the entries of a module compiled with check_numerics after each
 * kernel, once per value it writes to memory: scans p[0, count) and, at the
 * first NaN or ±Inf, records (node id, element index, value) for the calling
 * thread and returns 1, upon which the entry returns at once; 0 otherwise.
 * The record is per thread because the entry ABI is the same with and
 * without checks: the thread that called the entry takes it right after
 * (mlc_numerics_take), before it calls another. */
int32_t mlc_numerics_check(const float *p, int64_t count, int32_t id);

typedef struct {
	int32_t id;    /* the node whose value holds it */
	int64_t index; /* flat element index */
	float value;
} mlc_numerics_fault;
/* This thread's recorded fault, cleared; false if none. */
bool mlc_numerics_take(mlc_numerics_fault *out);

/* The training loop's per-step state and check (train.c calls it after
 * every train step): with check_numerics, reports the recorded fault;
 * then the divergence rule on the step's loss (docs/spec.md, "Divergence").
 * `lr` is the step's learning rate, `n` its rows. */
typedef struct {
	bool have_first;
	double first; /* the run's first step loss */
} mlc_diverge;
typedef struct mlc_session mlc_session;
mlc_status mlc_train_step_check(mlc_session *s, mlc_diverge *dv, int epoch, double lr, int64_t n,
				mlc_diag *d);
/* At each epoch's end and before a checkpoint: the parameter arena (weights
 * and optimizer state) scanned once for a non-finite value, which a loss that
 * clamps (binary cross-entropy's) does not show; an error naming the tensor,
 * as the divergence rule's, then MLC_EUSER. `lr` is the rate for the hint. */
mlc_status mlc_params_check(mlc_session *s, int epoch, double lr, mlc_diag *d);
/* After any entry call of a session compiled with check_numerics: reports
 * the recorded fault, if any, as an error at the op's spec location (`when`
 * says which step, e.g. "in the gradient batch"); MLC_EUSER then. */
mlc_status mlc_numerics_report(mlc_session *s, const char *when, int64_t n, mlc_diag *d);

#endif
