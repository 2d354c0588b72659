/* plot.c — `mlc plot`: a JSON-lines training log read back (a small strict
 * JSON reader that keeps the numeric members of each line) and drawn as a
 * hand-written SVG chart: loss and val_loss in one panel, acc and val_acc in
 * a second, against the epoch. */
#include "metrics.h"
#include "runtime.h"

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
			if (!value(&r, 1, &v, &is_num))
				goto bad;
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

enum { S_LOSS, S_VAL_LOSS, S_ACC, S_VAL_ACC, S_COUNT };
static const char *const series_key[S_COUNT] = {"loss", "val_loss", "acc", "val_acc"};

typedef struct {
	int n, cap;
	double *epoch;
	double *y[S_COUNT]; /* NaN where a line lacks the key */
} curves;

static void curves_add(curves *c, const mlc_json_member *m, int nm, double epoch)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->epoch = realloc(c->epoch, sizeof(double) * (size_t)c->cap);
		for (int s = 0; s < S_COUNT; s++)
			c->y[s] = realloc(c->y[s], sizeof(double) * (size_t)c->cap);
		MLC_ASSERT(c->epoch && c->y[S_COUNT - 1]);
	}
	c->epoch[c->n] = epoch;
	for (int s = 0; s < S_COUNT; s++) {
		c->y[s][c->n] = NAN;
		for (int i = 0; i < nm; i++)
			if (strcmp(m[i].key, series_key[s]) == 0)
				c->y[s][c->n] = m[i].val;
	}
	c->n++;
}

static void curves_free(curves *c)
{
	free(c->epoch);
	for (int s = 0; s < S_COUNT; s++)
		free(c->y[s]);
}

static char *read_all(const char *path, size_t *len, mlc_diag *d)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = mlc_xmalloc(cap);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			buf = realloc(buf, cap *= 2);
			MLC_ASSERT(buf);
		}
	}
	bool err = ferror(f);
	fclose(f);
	if (err) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static mlc_status read_log(const char *path, curves *c, mlc_diag *d)
{
	size_t len;
	char *text = read_all(path, &len, d);
	if (!text)
		return MLC_EIO;
	mlc_diag_add_source(d, path, text, len);
	mlc_status st = MLC_OK;
	int line = 0;
	for (const char *p = text, *end = text + len; p < end && st == MLC_OK; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		size_t n = (size_t)(eol - p);
		bool blank = strspn(p, " \t\r") >= n;
		mlc_json_member m[64];
		const char *err = NULL;
		int col = 0, nm = blank ? 0 : mlc_json_parse_line(p, n, m, 64, &err, &col);
		mlc_loc loc = {path, line + 1, col};
		if (nm < 0) {
			mlc_error_at(d, loc, "%s", err);
			st = MLC_EUSER;
		} else if (!blank) {
			int ep = -1;
			for (int i = 0; i < nm; i++)
				if (strcmp(m[i].key, "epoch") == 0)
					ep = i;
			bool test = strstr(p, "\"test\"") && strstr(p, "\"test\"") < eol;
			loc.col = 1;
			if (ep >= 0 && !isfinite(m[ep].val)) {
				mlc_error_at(d, loc, "\"epoch\" is not a finite number");
				st = MLC_EUSER;
			} else if (ep >= 0) {
				curves_add(c, m, nm, m[ep].val);
			} else if (!test) {
				mlc_error_at(d, loc, "expected an \"epoch\" (or \"test\") member: is this an 'mlc run --log' file?");
				st = MLC_EUSER;
			}
		}
		p = eol + 1;
	}
	free(text);
	if (st == MLC_OK && c->n == 0) {
		mlc_error_file(d, path, "no epoch lines to plot");
		st = MLC_EUSER;
	}
	return st;
}

/* ---- SVG ---- */

enum { PANEL_W = 440, PANEL_H = 320, LEFT = 64, RIGHT = 16, TOP = 40, BOTTOM = 44 };

static const char *const colour[S_COUNT] = {"#1f77b4", "#ff7f0e", "#1f77b4", "#ff7f0e"};

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over span. */
static double tick_step(double span, int n)
{
	double raw = span / n, p = pow(10, floor(log10(raw))), f = raw / p;
	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct {
	double x0, x1, y0, y1; /* data ranges */
	int px, py;            /* the panel's top-left corner */
} frame;

static double sx(const frame *f, double x)
{
	return f->px + LEFT + (x - f->x0) / (f->x1 - f->x0) * (PANEL_W - LEFT - RIGHT);
}

static double sy(const frame *f, double y)
{
	return f->py + PANEL_H - BOTTOM - (y - f->y0) / (f->y1 - f->y0) * (PANEL_H - TOP - BOTTOM);
}

/* %g without a trailing exponent mess for ticks like 0.30000000000000004 */
static void tick_label(char *buf, size_t n, double v, double step)
{
	if (fabs(v) < step * 1e-9)
		v = 0;
	snprintf(buf, n, "%.6g", v);
}

static void panel(FILE *f, const curves *c, int first, const char *title, int px, int py)
{
	frame fr = {c->epoch[0], c->epoch[0], INFINITY, -INFINITY, px, py};
	for (int i = 0; i < c->n; i++) {
		fr.x0 = fmin(fr.x0, c->epoch[i]);
		fr.x1 = fmax(fr.x1, c->epoch[i]);
		for (int s = first; s < first + 2; s++)
			if (isfinite(c->y[s][i])) {
				fr.y0 = fmin(fr.y0, c->y[s][i]);
				fr.y1 = fmax(fr.y1, c->y[s][i]);
			}
	}
	if (fr.x1 <= fr.x0)
		fr.x1 = fr.x0 + 1;
	double pad = (fr.y1 - fr.y0) * 0.08;
	if (!(pad > 0))
		pad = fabs(fr.y0) > 0 ? fabs(fr.y0) * 0.1 : 0.5;
	fr.y0 -= pad;
	fr.y1 += pad;
	int x0 = px + LEFT, x1 = px + PANEL_W - RIGHT, y0 = py + TOP, y1 = py + PANEL_H - BOTTOM;
	fprintf(f, "<g>\n<text x=\"%d\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", x0,
		py + 24, title);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", x0, y0,
		x1 - x0, y1 - y0);
	char lab[32];
	double ys = tick_step(fr.y1 - fr.y0, 5);
	for (double v = ceil(fr.y0 / ys) * ys; v <= fr.y1; v += ys) {
		double y = sy(&fr, v);
		tick_label(lab, sizeof lab, v, ys);
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#333\"/>"
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
			x0, y, x1, y, x0 - 5, y, x0, y, x0 - 8, y + 4, lab);
	}
	double xs = tick_step(fr.x1 - fr.x0, 6);
	if (xs < 1 && fr.x0 == floor(fr.x0))
		xs = 1; /* whole epochs */
	for (double v = ceil(fr.x0 / xs) * xs; v <= fr.x1 + xs * 1e-9; v += xs) {
		double x = sx(&fr, v);
		tick_label(lab, sizeof lab, v, xs);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>"
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
			x, y1, x, y1 + 5, x, y1 + 18, lab);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n", (x0 + x1) / 2,
		y1 + 36);
	int lx = x0 + 110; /* the legend: in the header row, after the title */
	for (int s = first; s < first + 2; s++) {
		int pts = 0;
		for (int i = 0; i < c->n; i++)
			pts += isfinite(c->y[s][i]);
		if (!pts)
			continue;
		const char *dash = s == first ? "" : " stroke-dasharray=\"6 4\"";
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", colour[s], dash);
		for (int i = 0, k = 0; i < c->n; i++)
			if (isfinite(c->y[s][i]))
				fprintf(f, "%s%.1f,%.1f", k++ ? " " : "", sx(&fr, c->epoch[i]), sy(&fr, c->y[s][i]));
		fputs("\"/>\n", f);
		if (c->n <= 40)
			for (int i = 0; i < c->n; i++)
				if (isfinite(c->y[s][i]))
					fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
						sx(&fr, c->epoch[i]), sy(&fr, c->y[s][i]), colour[s]);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>"
			"<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n",
			lx, py + 20, lx + 24, py + 20, colour[s], dash, lx + 30, py + 24, series_key[s]);
		lx += 110;
	}
	fputs("</g>\n", f);
}

static bool has_series(const curves *c, int s)
{
	for (int i = 0; i < c->n; i++)
		if (isfinite(c->y[s][i]))
			return true;
	return false;
}

mlc_status mlc_plot(const char *log_path, const char *svg_path, mlc_diag *d)
{
	curves c = {0};
	mlc_status st = read_log(log_path, &c, d);
	if (st != MLC_OK) {
		curves_free(&c);
		return st;
	}
	bool acc = has_series(&c, S_ACC) || has_series(&c, S_VAL_ACC);
	mlc_atomic a;
	if (mlc_atomic_open(&a, svg_path, d) != MLC_OK) {
		curves_free(&c);
		return MLC_EIO;
	}
	FILE *f = a.f;
	int w = PANEL_W * (acc ? 2 : 1);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		w, PANEL_H, w, PANEL_H);
	panel(f, &c, S_LOSS, "loss", 0, 0);
	if (acc)
		panel(f, &c, S_ACC, "accuracy", PANEL_W, 0);
	fputs("</svg>\n", f);
	st = mlc_atomic_commit(&a, d);
	curves_free(&c);
	return st;
}
