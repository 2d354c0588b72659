/* test_kfold.c — K-fold cross-validation's folds (runtime/kfold.c): for
 * every n and k, the held-out parts partition the set, differ in size by at
 * most one, and each fold's order is the whole set, held-out part last. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/runtime.h"

#include <stdlib.h>

static void test_folds_partition(void **state)
{
	(void)state;
	for (int64_t n = 2; n <= 23; n++)
		for (int k = 2; k <= n; k++) {
			int64_t *perm = malloc(sizeof(int64_t) * (size_t)n), *out = malloc(sizeof(int64_t) * (size_t)n);
			int *held = calloc((size_t)n, sizeof(int)), *seen = calloc((size_t)n, sizeof(int));
			mlc_rng r;
			mlc_rng_seed(&r, (uint64_t)(n * 31 + k));
			for (int64_t i = 0; i < n; i++)
				perm[i] = i;
			mlc_rng_shuffle(&r, perm, n);
			int64_t lo = n, hi = 0, total = 0;
			for (int i = 0; i < k; i++) {
				int64_t nval = mlc_fold_order(perm, n, k, i, out);
				lo = nval < lo ? nval : lo;
				hi = nval > hi ? nval : hi;
				total += nval;
				for (int64_t j = 0; j < n; j++)
					seen[j] = 0;
				for (int64_t j = 0; j < n; j++)
					seen[out[j]]++;
				for (int64_t j = 0; j < n; j++)
					assert_int_equal(seen[j], 1); /* a permutation of the set */
				for (int64_t j = n - nval; j < n; j++)
					held[out[j]]++;
			}
			assert_int_equal(total, n);
			assert_true(hi - lo <= 1 && lo >= 1);
			for (int64_t j = 0; j < n; j++)
				assert_int_equal(held[j], 1); /* held out exactly once */
			free(perm);
			free(out);
			free(held);
			free(seen);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folds_partition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
