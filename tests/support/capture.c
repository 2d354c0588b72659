/* capture.c — diagnostics captured in memory (see capture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "capture.h"

void cap_begin(capture *c)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	c->d = mlc_diag_new(c->f);
}

const char *cap_text(capture *c)
{
	fflush(c->f);
	return c->buf ? c->buf : "";
}

void cap_end(capture *c)
{
	mlc_diag_free(c->d);
	fclose(c->f);
	free(c->buf);
}

int count_of(const char *s, const char *needle)
{
	int n = 0;
	for (; (s = strstr(s, needle)); s++)
		n++;
	return n;
}
