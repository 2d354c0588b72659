/* test_ckpt_template.c — checkpoint path templates (frontend/checkpoint.c):
 * what {epoch} and {step} expand to, padding and literal braces, and the
 * reasons a template is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

static void expands(const char *t, int epoch, uint32_t step, const char *want, bool fields)
{
	char why[256] = "";
	bool f = !fields;
	assert_true(mlc_ckpt_template_check(t, &f, why, sizeof why));
	assert_int_equal(f, fields);
	char *got = mlc_ckpt_template_expand(t, epoch, step);
	assert_string_equal(got, want);
	free(got);
}

static void test_expand(void **state)
{
	(void)state;
	expands("run.ckpt", 3, 10, "run.ckpt", false);
	expands("c-{epoch}.st", 3, 10, "c-3.st", true);
	expands("c-{epoch:03}-{step}.st", 7, 1234, "c-007-1234.st", true);
	expands("c-{step:05d}", 1, 42, "c-00042", true);
	expands("c-{epoch:02}", 123, 0, "c-123", true); /* wider than the width */
	expands("{{x}}/{epoch}{step}", 2, 9, "{x}/29", true);
	expands("a{{b", 1, 1, "a{b", false);
	expands("s{step:020}", 1, 4294967295u, "s00000000004294967295", true);
	/* long paths grow the buffer */
	char t[600], want[600];
	memset(t, 'a', 500);
	strcpy(t + 500, "{epoch:020}{step:020}");
	memset(want, 'a', 500);
	strcpy(want + 500, "0000000000000000000500000000000000000009");
	expands(t, 5, 9, want, true);
}

static void refused(const char *t, const char *why_start)
{
	char why[256] = "";
	bool f;
	assert_false(mlc_ckpt_template_check(t, &f, why, sizeof why));
	if (strncmp(why, why_start, strlen(why_start)) != 0)
		fail_msg("'%s': got '%s', want '%s...'", t, why, why_start);
}

static void test_refused(void **state)
{
	(void)state;
	refused("c-{epch}.st", "has an unknown field '{epch}'; did you mean '{epoch}'?");
	refused("c-{stpe}.st", "has an unknown field '{stpe}'; did you mean '{step}'?");
	refused("c-{}.st", "has an unknown field '{}'");
	refused("c-{loss:.2f}.st", "has an unknown field '{loss:.2f}'");
	refused("c-{epoch:3}.st", "has an invalid format '{epoch:3}' (write {epoch:03}");
	refused("c-{epoch:0}.st", "has an invalid format");
	refused("c-{epoch:021}.st", "has an invalid format");
	refused("c-{epoch:03x}.st", "has an invalid format");
	refused("c-{epoch.st", "has an unclosed '{'");
	refused("c-{ep{och}.st", "has an unclosed '{'");
	refused("c-}.st", "has a single '}'");
	refused("c-{epoch}}.st", "has a single '}'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
