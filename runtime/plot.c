/* plot.c — `mlc plot`'s input: a JSON-lines training log read back in one
 * pass (a small strict JSON reader that keeps the numeric members of each
 * line, and of an object member one level down, as the test record's) into
 * one series per (key, fold). runtime/plot_draw.c draws them. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ---- */

enum { MAX_DEPTH = 32 };

typedef struct {
	const char *s, *p, *end;
	const char *err;
} jreader;

static bool fail(jreader *r, const char *msg)
{
	if (!r->err)
		r->err = msg;
	return false;
}

static void skip_ws(jreader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
		r->p++;
}

static bool hex4(const char *p, const char *end)
{
	for (int i = 0; i < 4; i++, p++)
		if (p >= end || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
			return false;
	return true;
}

/* A string at r->p; its first n-1 raw bytes (escapes kept verbatim) go to key. */
static bool string(jreader *r, char *key, size_t n)
{
	if (r->p >= r->end || *r->p != '"')
		return fail(r, "expected a string");
	const char *open = r->p++;
	size_t k = 0;
	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;
		if (c < 0x20)
			return fail(r, "control character in a string");
		if (c == '\\') {
			const char *q = r->p + 1;
			if (q >= r->end || !strchr("\"\\/bfnrtu", *q))
				return fail(r, "invalid escape in a string");
			if (*q == 'u' && !hex4(q + 1, r->end))
				return fail(r, "expected four hex digits after \\u");
			if (key && k + 2 < n) {
				key[k++] = '\\';
				key[k++] = *q;
			}
			r->p = q + (*q == 'u' ? 5 : 1);
			continue;
		}
		if (key && k + 1 < n)
			key[k++] = (char)c;
		r->p++;
	}
	if (r->p >= r->end) {
		r->p = open;
		return fail(r, "unterminated string");
	}
	r->p++;
	if (key)
		key[k] = 0;
	return true;
}

static size_t digits_at(const char *p, const char *end)
{
	size_t n = 0;
	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* JSON's number grammar exactly (no leading zeros, no '+', no bare '.'). */
static bool number(jreader *r, double *out)
{
	const char *q = r->p;
	if (q < r->end && *q == '-')
		q++;
	size_t d = digits_at(q, r->end);
	if (!d || (d > 1 && *q == '0'))
		return fail(r, "invalid number");
	q += d;
	if (q < r->end && *q == '.') {
		if (!(d = digits_at(q + 1, r->end)))
			return fail(r, "invalid number");
		q += 1 + d;
	}
	if (q < r->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < r->end && (*q == '+' || *q == '-'))
			q++;
		if (!(d = digits_at(q, r->end)))
			return fail(r, "invalid number");
		q += d;
	}
	char buf[64];
	size_t n = (size_t)(q - r->p);
	if (n >= sizeof buf)
		return fail(r, "number too long");
	memcpy(buf, r->p, n);
	buf[n] = 0;
	*out = strtod(buf, NULL);
	r->p = q;
	return true;
}

static bool literal(jreader *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return fail(r, "expected a JSON value");
	r->p += n;
	return true;
}

/* A value; *num gets numbers and null (NaN); *is_num says whether it was one. */
static bool value(jreader *r, int depth, double *num, bool *is_num)
{
	bool dummy_b;
	double dummy_d;
	*is_num = false;
	if (depth > MAX_DEPTH)
		return fail(r, "nested too deeply");
	skip_ws(r);
	if (r->p >= r->end)
		return fail(r, "expected a JSON value");
	char c = *r->p;
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		r->p++;
		skip_ws(r);
		if (r->p < r->end && *r->p == close) {
			r->p++;
			return true;
		}
		for (;;) {
			if (c == '{') {
				skip_ws(r);
				if (!string(r, NULL, 0))
					return false;
				skip_ws(r);
				if (r->p >= r->end || *r->p != ':')
					return fail(r, "expected ':' after a key");
				r->p++;
			}
			if (!value(r, depth + 1, &dummy_d, &dummy_b))
				return false;
			skip_ws(r);
			if (r->p < r->end && *r->p == ',') {
				r->p++;
				continue;
			}
			if (r->p < r->end && *r->p == close) {
				r->p++;
				return true;
			}
			return fail(r, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	if (c == '"')
		return string(r, NULL, 0);
	if (c == 't')
		return literal(r, "true");
	if (c == 'f')
		return literal(r, "false");
	if (c == 'n') {
		*num = NAN;
		*is_num = true;
		return literal(r, "null");
	}
	*is_num = true;
	return number(r, num);
}

/* An object member's value at r->p == '{': its numeric members appended to
 * out[n..max) as "parent.key" (cut to the key size); the new count, or -1. */
static int nested(jreader *r, const char *parent, mlc_json_member *out, int n, int max)
{
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return n;
	}
	for (;;) {
		char key[sizeof out->key];
		double v;
		bool is_num;
		skip_ws(r);
		if (!string(r, key, sizeof key))
			return -1;
		skip_ws(r);
		if (r->p >= r->end || *r->p != ':')
			return fail(r, "expected ':' after a key"), -1;
		r->p++;
		if (!value(r, 2, &v, &is_num))
			return -1;
		if (is_num && n < max) {
			/* cut to the key size, as top-level keys are */
			size_t pl = strnlen(parent, sizeof out->key - 1), kl = strnlen(key, sizeof out->key - 1);
			size_t room = sizeof out->key - 1;
			char *k = out[n].key;
			memcpy(k, parent, pl < room ? pl : room);
			size_t at = pl < room ? pl : room;
			if (at < room)
				k[at++] = '.';
			memcpy(k + at, key, kl < room - at ? kl : room - at);
			at += kl < room - at ? kl : room - at;
			k[at] = 0;
			out[n++].val = v;
		}
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return n;
		}
		return fail(r, "expected ',' or '}'"), -1;
	}
}

int mlc_json_parse_line(const char *line, size_t len, mlc_json_member *out, int max, const char **err, int *col)
{
	jreader r = {line, line, line + len, NULL};
	int n = 0;
	skip_ws(&r);
	if (r.p >= r.end || *r.p != '{') {
		fail(&r, "expected a JSON object ('{')");
		goto bad;
	}
	r.p++;
	skip_ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
	} else {
		for (;;) {
			char key[sizeof out->key];
			double v;
			bool is_num;
			skip_ws(&r);
			if (!string(&r, key, sizeof key))
				goto bad;
			skip_ws(&r);
			if (r.p >= r.end || *r.p != ':') {
				fail(&r, "expected ':' after a key");
				goto bad;
			}
			r.p++;
			skip_ws(&r);
			if (r.p < r.end && *r.p == '{') { /* {"test": {"loss": ...}}: its members as "test.loss" */
				if ((n = nested(&r, key, out, n, max)) < 0)
					goto bad;
				is_num = false;
			} else if (!value(&r, 1, &v, &is_num)) {
				goto bad;
			}
			if (is_num && n < max) {
				memcpy(out[n].key, key, sizeof key);
				out[n++].val = v;
			}
			skip_ws(&r);
			if (r.p < r.end && *r.p == ',') {
				r.p++;
				continue;
			}
			if (r.p < r.end && *r.p == '}') {
				r.p++;
				break;
			}
			fail(&r, "expected ',' or '}'");
			goto bad;
		}
	}
	skip_ws(&r);
	if (r.p < r.end) {
		fail(&r, "text after the JSON object");
		goto bad;
	}
	return n;
bad:
	*err = r.err;
	*col = (int)(r.p - line) + 1;
	return -1;
}

/* ---- the log ---- */

enum { MAX_MEMBERS = 128 };

static plot_series *series_for(plot_log *lg, const char *key, int fold, int *guess, mlc_loc loc, mlc_diag *d)
{
	/* the members of a line come in the order of the previous line's: try the next series first */
	for (int k = 0; k < lg->ns; k++) {
		int i = (*guess + k) % lg->ns;
		if (lg->s[i].fold == fold && strcmp(lg->s[i].key, key) == 0) {
			*guess = i + 1;
			return &lg->s[i];
		}
	}
	if (lg->ns == MLC_PLOT_MAX_SERIES) {
		mlc_error_at(d, loc, "more than %d curves (a metric of a fold) to plot", MLC_PLOT_MAX_SERIES);
		return NULL;
	}
	if (lg->ns == lg->cap) {
		lg->cap = lg->cap ? 2 * lg->cap : 16;
		lg->s = realloc(lg->s, sizeof *lg->s * (size_t)lg->cap);
		MLC_ASSERT(lg->s);
	}
	plot_series *s = &lg->s[lg->ns++];
	*s = (plot_series){.fold = fold};
	snprintf(s->key, sizeof s->key, "%s", key);
	*guess = lg->ns;
	return s;
}

static void series_add(plot_series *s, double x, double y)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->x = realloc(s->x, sizeof(double) * (size_t)s->cap);
		s->y = realloc(s->y, sizeof(double) * (size_t)s->cap);
		MLC_ASSERT(s->x && s->y);
	}
	s->x[s->n] = x;
	s->y[s->n++] = y;
}

void mlc_plot_log_free(plot_log *lg)
{
	for (int i = 0; i < lg->ns; i++) {
		free(lg->s[i].x);
		free(lg->s[i].y);
		free(lg->s[i].sd);
	}
	free(lg->s);
	memset(lg, 0, sizeof *lg);
}

static int member_at(const mlc_json_member *m, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(m[i].key, key) == 0)
			return i;
	return -1;
}

/* One non-blank line's members: an epoch record (of a fold, with "fold"),
 * the test record, or a K-fold summary (skipped). */
static mlc_status log_line(plot_log *lg, const mlc_json_member *m, int nm, mlc_loc loc, int *guess, mlc_diag *d)
{
	int ep = member_at(m, nm, "epoch"), fo = member_at(m, nm, "fold");
	if (ep < 0) {
		bool test = false;
		for (int i = 0; i < nm && lg->ntest < MAX_MEMBERS; i++)
			if (strncmp(m[i].key, "test.", 5) == 0 && isfinite(m[i].val)) {
				lg->test[lg->ntest] = m[i];
				memmove(lg->test[lg->ntest].key, m[i].key + 5, sizeof m[i].key - 5);
				lg->ntest++, test = true;
			}
		if (test || fo >= 0 || member_at(m, nm, "kfold") >= 0)
			return MLC_OK;
		mlc_error_at(d, loc, "expected an \"epoch\" (or \"test\") member: is this an 'mlc run --log' file?");
		return MLC_EUSER;
	}
	double x = m[ep].val;
	if (!isfinite(x)) {
		mlc_error_at(d, loc, "\"epoch\" is not a finite number");
		return MLC_EUSER;
	}
	int fold = 0;
	if (fo >= 0) {
		double f = m[fo].val;
		if (!(f >= 1 && f <= MLC_PLOT_MAX_SERIES) || f != floor(f)) {
			mlc_error_at(d, loc, "\"fold\" is not a fold number (1 to %d)", MLC_PLOT_MAX_SERIES);
			return MLC_EUSER;
		}
		fold = (int)f;
		lg->nfolds = fold > lg->nfolds ? fold : lg->nfolds;
	}
	for (int i = 0; i < nm; i++) {
		if (i == ep || i == fo || !isfinite(m[i].val) || mlc_plot_panel_of(m[i].key) < 0)
			continue; /* null (a NaN metric) leaves a gap; time_s is not drawn */
		plot_series *s = series_for(lg, m[i].key, fold, guess, loc, d);
		if (!s)
			return MLC_EUSER;
		series_add(s, x, m[i].val);
	}
	lg->nepochs++;
	return MLC_OK;
}

mlc_status mlc_plot_log_read(const char *path, plot_log *lg, mlc_diag *d)
{
	memset(lg, 0, sizeof *lg);
	size_t len;
	char *text = mlc_read_file_max(path, MLC_PLOT_MAX_LOG_BYTES, &len);
	if (!text && errno == EFBIG) {
		mlc_error_file(d, path, "is larger than %d MiB, the limit of a log to plot", MLC_PLOT_MAX_LOG_BYTES >> 20);
		return MLC_EUSER;
	}
	if (!text) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return MLC_EIO;
	}
	mlc_diag_add_source(d, path, text, len);
	mlc_status st = MLC_OK;
	int line = 0, guess = 0;
	mlc_json_member *m = mlc_xmalloc(sizeof *m * MAX_MEMBERS);
	/* one pass: each line is looked at once, and only up to its end */
	for (const char *p = text, *end = text + len; p < end && st == MLC_OK; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		size_t n = (size_t)(eol - p), ws = 0;
		while (ws < n && (p[ws] == ' ' || p[ws] == '\t' || p[ws] == '\r'))
			ws++;
		if (ws < n) {
			const char *err = NULL;
			int col = 0, nm = mlc_json_parse_line(p, n, m, MAX_MEMBERS, &err, &col);
			mlc_loc loc = {path, line + 1, nm < 0 ? col : 1};
			if (nm < 0) {
				mlc_error_at(d, loc, "%s", err);
				st = MLC_EUSER;
			} else {
				st = log_line(lg, m, nm, loc, &guess, d);
			}
		}
		p = eol + 1;
	}
	free(m);
	free(text);
	if (st == MLC_OK && lg->nepochs == 0) {
		mlc_error_file(d, path, "no epoch lines to plot");
		st = MLC_EUSER;
	}
	return st;
}

mlc_status mlc_plot(const char *log_path, const char *out_path, const mlc_plot_options *o, mlc_diag *d)
{
	static const mlc_plot_options none = {0};
	plot_log lg;
	mlc_status st = mlc_plot_log_read(log_path, &lg, d);
	if (st == MLC_OK)
		st = mlc_plot_draw(&lg, log_path, out_path, o ? o : &none, d);
	mlc_plot_log_free(&lg);
	return st;
}
