/* test_schedule.c — learning-rate schedules (mlc_lr_at) at chosen points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "frontend/frontend.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_step),
		cmocka_unit_test(test_exponential),
		cmocka_unit_test(test_cosine_warmup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
