/* diag.c — located diagnostics with the source line and a caret. */
#include "base.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
	MAX_REPORTED = 100,
	QUOTE_MAX = 240, /* bytes of a source line quoted under a diagnostic */
};

typedef struct {
	char *file;
	char *text;
	size_t len;
} source;

struct mlc_diag {
	FILE *out;
	int errors;
	source *src;
	int nsrc;
};

mlc_diag *mlc_diag_new(FILE *out)
{
	mlc_diag *d = mlc_xmalloc(sizeof *d);
	d->out = out;
	return d;
}

void mlc_diag_free(mlc_diag *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->nsrc; i++) {
		free(d->src[i].file);
		free(d->src[i].text);
	}
	free(d->src);
	free(d);
}

void mlc_diag_add_source(mlc_diag *d, const char *file, const char *text, size_t len)
{
	d->src = mlc_xrealloc(d->src, sizeof(source) * (size_t)(d->nsrc + 1));
	source *s = &d->src[d->nsrc++];
	s->file = mlc_xstrdup(file);
	s->text = mlc_xmalloc(len + 1);
	memcpy(s->text, text, len);
	s->len = len;
}

int mlc_diag_errors(const mlc_diag *d)
{
	return d->errors;
}

/* Prints the loc's line with a caret under the column, if the text is known. */
static void quote_line(mlc_diag *d, mlc_loc loc)
{
	if (!loc.file || loc.line <= 0)
		return;
	const source *s = NULL;
	for (int i = d->nsrc - 1; i >= 0 && !s; i--)
		if (strcmp(d->src[i].file, loc.file) == 0)
			s = &d->src[i];
	if (!s)
		return;
	const char *p = s->text, *end = s->text + s->len;
	for (int line = 1; line < loc.line && p < end; p++)
		if (*p == '\n')
			line++;
	if (p >= end && loc.line > 1)
		return;
	const char *e = p;
	while (e < end && *e != '\n' && *e != '\r')
		e++;
	if (e == p)
		return; /* nothing to point at */
	/* A long line (one CSV row can be megabytes) is quoted as a window
	 * around the column, cut at UTF-8 character starts, with "..." marking
	 * what was left out. */
	const char *at = p + (loc.col > 1 ? loc.col - 1 : 0);
	if (at > e)
		at = e;
	const char *from = p, *to = e;
	if (e - p > QUOTE_MAX) {
		from = at - p > QUOTE_MAX / 2 ? at - QUOTE_MAX / 2 : p;
		to = e - from > QUOTE_MAX ? from + QUOTE_MAX : e;
		if (to - from < QUOTE_MAX)
			from = to - QUOTE_MAX;
		while (from > p && from < at && ((unsigned char)*from & 0xc0) == 0x80)
			from++;
		while (to < e && to > at && ((unsigned char)*to & 0xc0) == 0x80)
			to--;
	}
	const char *pre = from > p ? "..." : "", *post = to < e ? "..." : "";
	fprintf(d->out, "  %s%.*s%s\n  %s", pre, (int)(to - from), from, post, *pre ? "   " : "");
	for (const char *c = from; c < at && c < to; c++)
		fputc(*c == '\t' ? '\t' : ' ', d->out);
	fputs("^\n", d->out);
}

static void report(mlc_diag *d, mlc_loc loc, const char *kind, const char *fmt, va_list ap)
{
	if (loc.file && loc.line > 0)
		fprintf(d->out, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col > 0 ? loc.col : 1, kind);
	else if (loc.file)
		fprintf(d->out, "%s: %s: ", loc.file, kind);
	else
		fprintf(d->out, "mlc: %s: ", kind);
	vfprintf(d->out, fmt, ap);
	fputc('\n', d->out);
	quote_line(d, loc);
}

void mlc_error_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
{
	if (++d->errors > MAX_REPORTED)
		return;
	va_list ap;
	va_start(ap, fmt);
	report(d, loc, "error", fmt, ap);
	va_end(ap);
	if (d->errors == MAX_REPORTED)
		fprintf(d->out, "mlc: too many errors; stopping the report here\n");
}

void mlc_note_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
{
	if (d->errors > MAX_REPORTED)
		return;
	va_list ap;
	va_start(ap, fmt);
	report(d, loc, "note", fmt, ap);
	va_end(ap);
}

void mlc_error_file(mlc_diag *d, const char *path, const char *fmt, ...)
{
	if (++d->errors > MAX_REPORTED)
		return;
	mlc_loc loc = {path, 0, 0};
	va_list ap;
	va_start(ap, fmt);
	report(d, loc, "error", fmt, ap);
	va_end(ap);
}
