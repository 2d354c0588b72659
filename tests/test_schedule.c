/* test_schedule.c — learning-rate schedules (mlc_lr_at) at chosen points,
 * reduce_on_plateau and early stopping on made-up loss sequences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "frontend/frontend.h"
#include "runtime/watch.h"

static void near(double got, double want)
{
	if (fabs(got - want) > 1e-12 * fmax(1, fabs(want)))
		fail_msg("lr %.17g, want %.17g", got, want);
}

static void test_constant(void **s)
{
	(void)s;
	mlc_opt_cfg o = {0};
	near(mlc_lr_at(&o, 0.1, 0, 10), 0.1);
	near(mlc_lr_at(&o, 0.1, 9.9, 10), 0.1);
}

static void test_step(void **s)
{
	(void)s;
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_STEP, .step_size = 3, .gamma = 0.5}};
	near(mlc_lr_at(&o, 0.1, 2.99, 10), 0.1);
	near(mlc_lr_at(&o, 0.1, 3.0, 10), 0.05);
	near(mlc_lr_at(&o, 0.1, 6.5, 10), 0.025);
	o.schedule = (mlc_sched_cfg){.kind = MLC_SCHED_STEP}; /* defaults: every epoch, ×0.1 */
	near(mlc_lr_at(&o, 1.0, 2.5, 10), 0.01);
}

static void test_exponential(void **s)
{
	(void)s;
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_EXPONENTIAL}};
	near(mlc_lr_at(&o, 1.0, 0.5, 10), 1.0);
	near(mlc_lr_at(&o, 1.0, 2.0, 10), 0.95 * 0.95);
}

static void test_cosine_warmup(void **s)
{
	(void)s;
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_COSINE, .warmup = 2, .min_lr = 0.01}};
	near(mlc_lr_at(&o, 0.1, 0, 10), 0);
	near(mlc_lr_at(&o, 0.1, 1, 10), 0.05);
	near(mlc_lr_at(&o, 0.1, 2, 10), 0.1);
	near(mlc_lr_at(&o, 0.1, 6, 10), 0.01 + 0.09 * 0.5); /* halfway: cos(π/2) = 0 */
	near(mlc_lr_at(&o, 0.1, 10, 10), 0.01);
}

static void test_multistep(void **s)
{
	(void)s;
	static const double ms[] = {2, 5};
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_MULTISTEP, .milestones = ms, .nmilestones = 2, .gamma = 0.5}};
	near(mlc_lr_at(&o, 0.8, 0, 10), 0.8);
	near(mlc_lr_at(&o, 0.8, 1.99, 10), 0.8);
	near(mlc_lr_at(&o, 0.8, 2, 10), 0.4);   /* epoch 2 (0-based) is the first at gamma */
	near(mlc_lr_at(&o, 0.8, 4.5, 10), 0.4);
	near(mlc_lr_at(&o, 0.8, 5, 10), 0.2);
	near(mlc_lr_at(&o, 0.8, 9.9, 10), 0.2);
	o.schedule.gamma = 0; /* default 0.1 */
	near(mlc_lr_at(&o, 1.0, 7, 10), 0.01);
}

static void test_inverse_time(void **s)
{
	(void)s;
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_INVERSE_TIME, .decay_rate = 0.5}};
	near(mlc_lr_at(&o, 0.1, 0, 10), 0.1);
	near(mlc_lr_at(&o, 0.1, 1, 10), 0.1 / 1.5);
	near(mlc_lr_at(&o, 0.1, 2.5, 10), 0.1 / 2.25); /* not a staircase */
	near(mlc_lr_at(&o, 0.1, 6, 10), 0.1 / 4);
}

static void test_warmup_epochs(void **s)
{
	(void)s;
	/* cosine from lr 0.1 to 0 over 10 epochs, times a ramp from 1/4 to 1 over 2 */
	mlc_opt_cfg o = {.schedule = {.kind = MLC_SCHED_COSINE, .warmup_epochs = 2, .warmup_start = 0.25}};
	near(mlc_lr_at(&o, 0.1, 0, 10), 0.1 * 0.25);
	double c1 = 0.05 * (1 + cos(M_PI * 0.1));
	near(mlc_lr_at(&o, 0.1, 1, 10), c1 * 0.625);
	near(mlc_lr_at(&o, 0.1, 2, 10), 0.05 * (1 + cos(M_PI * 0.2)));
	near(mlc_lr_at(&o, 0.1, 5, 10), 0.05);
	o.schedule.kind = MLC_SCHED_CONSTANT; /* any schedule */
	o.schedule.warmup_start = 1.0 / 3;
	near(mlc_lr_at(&o, 0.3, 0, 10), 0.1);
	near(mlc_lr_at(&o, 0.3, 1, 10), 0.2);
	near(mlc_lr_at(&o, 0.3, 3, 10), 0.3);
}

static void test_plateau(void **s)
{
	(void)s;
	mlc_sched_cfg c = {.kind = MLC_SCHED_PLATEAU, .patience = 2, .factor = 0.5, .min_lr = 0.03,
			   .threshold = 0.01};
	/* 0.895 is not 1% below 0.9: no improvement; patience 2, so the 3rd bad epoch reduces */
	static const double loss[] = {1.0, 0.9, 0.95, 0.895, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9};
	static const double want[] = {0.1, 0.1, 0.1, 0.1,   0.05, 0.05, 0.05, 0.05, 0.03 /* 0.025, floored */,
				      0.03, 0.03, 0.03, 0.03};
	mlc_plateau p = mlc_plateau_new();
	double lr = 0.1;
	for (int i = 0; i < (int)(sizeof loss / sizeof *loss); i++) {
		lr = mlc_plateau_step(&c, &p, loss[i], lr);
		if (fabs(lr - want[i]) > 1e-15)
			fail_msg("epoch %d: lr %g, want %g", i + 1, lr, want[i]);
	}
}

static void test_early_stopping(void **s)
{
	(void)s;
	mlc_early_cfg c = {.on = true, .monitor = MLC_MON_VAL_LOSS, .patience = 2, .min_delta = 0.01};
	mlc_early e = mlc_early_new();
	assert_int_equal(mlc_early_step(&c, &e, 1, 1.0), MLC_EARLY_BEST);
	assert_int_equal(mlc_early_step(&c, &e, 2, 0.8), MLC_EARLY_BEST);
	assert_int_equal(mlc_early_step(&c, &e, 3, 0.795), MLC_EARLY_WAIT); /* by less than min_delta */
	assert_int_equal(mlc_early_step(&c, &e, 4, 0.7), MLC_EARLY_BEST);
	assert_int_equal(mlc_early_step(&c, &e, 5, 0.9), MLC_EARLY_WAIT);
	assert_int_equal(mlc_early_step(&c, &e, 6, 0.7), MLC_EARLY_STOP);
	assert_int_equal(e.best_epoch, 4);
	near(e.best, 0.7);
	/* an accuracy is maximized */
	c = (mlc_early_cfg){.on = true, .monitor = MLC_MON_ACC, .patience = 1};
	e = mlc_early_new();
	assert_int_equal(mlc_early_step(&c, &e, 1, 0.5), MLC_EARLY_BEST);
	assert_int_equal(mlc_early_step(&c, &e, 2, 0.6), MLC_EARLY_BEST);
	assert_int_equal(mlc_early_step(&c, &e, 3, 0.6), MLC_EARLY_STOP);
	assert_int_equal(e.best_epoch, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_step),
		cmocka_unit_test(test_exponential),
		cmocka_unit_test(test_cosine_warmup),
		cmocka_unit_test(test_multistep),
		cmocka_unit_test(test_inverse_time),
		cmocka_unit_test(test_warmup_epochs),
		cmocka_unit_test(test_plateau),
		cmocka_unit_test(test_early_stopping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
