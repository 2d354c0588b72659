/* capture.h — diagnostics captured in memory, for tests that assert on text. */
#ifndef MLC_TEST_CAPTURE_H
#define MLC_TEST_CAPTURE_H

#include "mlc/mlc.h"

#include <stdio.h>

typedef struct {
	FILE *f;
	char *buf;
	size_t len;
	mlc_diag *d; /* reports into buf */
} capture;

void cap_begin(capture *c);
const char *cap_text(capture *c); /* what was reported so far */
void cap_end(capture *c);
int count_of(const char *s, const char *needle); /* occurrences of needle in s */

#endif
