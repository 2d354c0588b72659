/* csv.c — numeric CSV data sets with an optional header row. */
#include "runtime.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
	const char *path, *text;
	size_t len;
	mlc_diag *d;
	bool source_added;
} csv_file;

typedef enum { NUM_OK, NUM_EMPTY, NUM_TEXT, NUM_NONFINITE, NUM_RANGE } num_kind;

static void csv_error(csv_file *f, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The text is only copied into the sink when there is an error to quote. */
static void csv_error(csv_file *f, int line, int col, const char *fmt, ...)
{
	if (!f->source_added) {
		mlc_diag_add_source(f->d, f->path, f->text, f->len);
		f->source_added = true;
	}
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mlc_error_at(f->d, (mlc_loc){f->path, line, col}, "%s", msg);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* [s, e) is a trimmed cell. strtod alone would accept hex, "inf" and "nan",
 * so the characters are vetted first; the cell is always followed by a
 * separator or the NUL mlc_read_file appends, which stops strtod in time. */
static num_kind parse_number(const char *s, const char *e, float *out)
{
	if (s == e)
		return NUM_EMPTY;
	for (const char *p = s; p < e; p++) {
		if (!strchr("0123456789.eE+-", *p) || !*p) {
			const char *t = s + (*s == '+' || *s == '-');
			size_t n = (size_t)(e - t);
			if ((n == 3 && !strncasecmp(t, "nan", 3)) || (n == 3 && !strncasecmp(t, "inf", 3)) ||
			    (n == 8 && !strncasecmp(t, "infinity", 8)))
				return NUM_NONFINITE;
			return NUM_TEXT;
		}
	}
	char *end;
	double v = strtod(s, &end);
	if (end != e)
		return NUM_TEXT;
	if (!(fabs(v) <= FLT_MAX))
		return NUM_RANGE;
	*out = (float)v;
	return NUM_OK;
}

/* One row's cells: start/end of each after trimming, and how many. */
typedef struct {
	const char **s, **e;
	int64_t n, cap;
} cells;

static void split_row(cells *c, const char *ls, const char *le)
{
	c->n = 0;
	for (const char *p = ls;; p++) {
		const char *q = p;
		while (q < le && *q != ',')
			q++;
		const char *s = p, *e = q;
		while (s < e && is_space(*s))
			s++;
		while (e > s && is_space(e[-1]))
			e--;
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 16;
			c->s = mlc_xrealloc(c->s, sizeof *c->s * (size_t)c->cap);
			c->e = mlc_xrealloc(c->e, sizeof *c->e * (size_t)c->cap);
		}
		c->s[c->n] = s;
		c->e[c->n++] = e;
		if (q == le)
			return;
		p = q;
	}
}

static void report_cell(csv_file *f, int line, int col, num_kind k, const char *s, const char *e)
{
	int len = (int)(e - s > 40 ? 40 : e - s);
	const char *more = e - s > 40 ? "..." : "";
	if (k == NUM_EMPTY)
		csv_error(f, line, col, "empty cell; every cell must be a number");
	else if (k == NUM_NONFINITE)
		csv_error(f, line, col, "cell '%.*s' is not a finite number", len, s);
	else if (k == NUM_RANGE)
		csv_error(f, line, col, "cell '%.*s%s' is out of range for f32", len, s, more);
	else
		csv_error(f, line, col, "cell '%.*s%s' is not a number", len, s, more);
}

/* Splits the row-major table into features and targets; false when out
 * of memory. */
static bool fill_dataset(mlc_dataset *out, const float *vals, int64_t n, int64_t ncols, int ydim)
{
	out->n = n;
	out->dim = ncols - ydim;
	out->ydim = ydim;
	out->x = mlc_try_alloc(sizeof(float) * (size_t)(n * out->dim));
	out->y = mlc_try_alloc(sizeof(float) * (size_t)(n * ydim));
	if (!out->x || !out->y) {
		mlc_dataset_free(out);
		return false;
	}
	float maxlabel = -1;
	bool classes = ydim == 1;
	for (int64_t i = 0; i < n; i++) {
		memcpy(out->x + i * out->dim, vals + i * ncols, sizeof(float) * (size_t)out->dim);
		memcpy(out->y + i * ydim, vals + i * ncols + out->dim, sizeof(float) * (size_t)ydim);
		if (ydim == 0) /* no targets: the model reads an input as its target */
			continue;
		float v = out->y[i * ydim];
		classes = classes && v >= 0 && v < 1e6f && v == floorf(v);
		maxlabel = v > maxlabel ? v : maxlabel;
	}
	out->nclasses = classes ? (int)maxlabel + 1 : 0;
	return true;
}

mlc_status mlc_load_csv(const char *path, int label_columns, mlc_csv_header header, mlc_dataset *out,
			mlc_diag *d)
{
	memset(out, 0, sizeof *out);
	size_t len;
	char *text = mlc_read_file_max(path, MLC_MAX_FILE_BYTES, &len);
	if (!text && errno == EFBIG) {
		mlc_error_file(d, path, "larger than %zu GiB, the limit for a CSV file", MLC_MAX_FILE_BYTES >> 30);
		return MLC_EUSER;
	}
	if (!text) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return MLC_EIO;
	}
	if (label_columns < 0) {
		mlc_error_file(d, path, "label columns must be at least 0, got %d", label_columns);
		free(text);
		return MLC_EUSER;
	}
	csv_file f = {path, text, len, d, false};
	cells row = {0};
	float *vals = NULL;
	int64_t nvals = 0, cap = 0, nrows = 0, ncols = -1;
	int line = 0, blank = 0;
	bool first = true;
	mlc_status st = MLC_EUSER;
	const char *p = text, *end = text + len;
	if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3; /* UTF-8 byte-order mark, as spreadsheets write it */
	while (p < end) {
		const char *ls = p, *le = memchr(p, '\n', (size_t)(end - p));
		le = le ? le : end;
		p = le < end ? le + 1 : end;
		if (le > ls && le[-1] == '\r')
			le--;
		line++;
		const char *q = ls;
		while (q < le && is_space(*q))
			q++;
		if (q == le) {
			blank = blank ? blank : line;
			continue;
		}
		if (blank) {
			csv_error(&f, blank, 1, "empty line between rows (only trailing blank lines are allowed)");
			goto done;
		}
		split_row(&row, ls, le);
		if (first) {
			first = false;
			if (header == MLC_HEADER_YES)
				continue;
			/* "nan" or "1e99" look like data gone wrong, not like column
			 * names. A row of both numbers and words is a header with a
			 * number for a name or data with a typo: the user must say. */
			int64_t words = 0, number = -1;
			float v;
			for (int64_t i = 0; i < row.n && header == MLC_HEADER_AUTO; i++) {
				num_kind k = parse_number(row.s[i], row.e[i], &v);
				if (k == NUM_TEXT || k == NUM_EMPTY)
					words++;
				else if (number < 0 && k == NUM_OK)
					number = i;
			}
			if (words && number >= 0) {
				csv_error(&f, line, (int)(row.s[number] - ls) + 1,
					  "the first row has both numbers ('%.*s') and text: give 'header: true' if it "
					  "names the columns, 'header: false' if it is data (then fix its text cells)",
					  (int)(row.e[number] - row.s[number]), row.s[number]);
				goto done;
			}
			if (words && header == MLC_HEADER_AUTO)
				continue;
		}
		if (ncols < 0) {
			ncols = row.n;
			if (label_columns >= ncols) {
				csv_error(&f, line, 1, "rows have %lld cell%s, so %d label column%s leave%s no features",
					  (long long)ncols, MLC_S(ncols), label_columns, MLC_S(label_columns),
					  label_columns == 1 ? "s" : "");
				goto done;
			}
		}
		if (row.n != ncols) {
			int col = (int)((row.n > ncols ? row.s[ncols] : le) - ls) + 1;
			csv_error(&f, line, col, "row has %lld cell%s, expected %lld", (long long)row.n, MLC_S(row.n),
				  (long long)ncols);
			goto done;
		}
		if (nvals + ncols > cap) {
			cap = cap ? 2 * cap : 1024;
			cap = cap < nvals + ncols ? nvals + ncols : cap;
			float *more = mlc_try_realloc(vals, sizeof(float) * (size_t)cap);
			if (!more) {
				mlc_error_file(d, path, "cannot read: out of memory holding %lld values",
					       (long long)cap);
				goto done;
			}
			vals = more;
		}
		for (int64_t i = 0; i < ncols; i++) {
			num_kind k = parse_number(row.s[i], row.e[i], &vals[nvals + i]);
			if (k != NUM_OK) {
				report_cell(&f, line, (int)(row.s[i] - ls) + 1, k, row.s[i], row.e[i]);
				goto done;
			}
		}
		nvals += ncols;
		nrows++;
	}
	if (nrows == 0) {
		mlc_error_file(d, path, "no data rows");
		goto done;
	}
	if (!fill_dataset(out, vals, nrows, ncols, label_columns)) {
		mlc_error_file(d, path, "cannot read: out of memory holding %lld values", (long long)nvals);
		goto done;
	}
	st = MLC_OK;
done:
	free(row.s);
	free(row.e);
	free(vals);
	free(text);
	return st;
}
