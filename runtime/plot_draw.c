/* plot_draw.c — `mlc plot`'s chart, drawn with cairo (one renderer for SVG
 * and PNG, with real text metrics for the layout; docs/design.md): a title,
 * then one panel per kind of value the log holds — loss; accuracy, top-k,
 * precision, recall, F1; perplexity; mse and mae; the learning rate when it
 * changes — each against the epoch, training solid, validation dashed, the
 * test record as a diamond at the last epoch; a K-fold log as a curve per
 * fold or as the folds' mean ± std. */
#include "plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/* fontconfig (Debian 12's 2.14), which cairo's text calls, loses about 1 KB
 * the first time it matches a font (FcValueSave and FcPatternObjectAdd; the
 * whole stack is libfontconfig's): its leak, not mlc's. LeakSanitizer skips
 * that library only, in every sanitized binary that can draw a chart. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libfontconfig.so\n";
}
#endif

enum { P_LOSS, P_SCORE, P_PPL, P_ERR, P_LR, P_COUNT };

static const struct {
	const char *title;
	bool log_ok; /* --log-scale applies */
} panels[P_COUNT] = {
	{"loss", true}, {"accuracy and scores", false}, {"perplexity", true}, {"error", true}, {"learning rate", true},
};

static const struct {
	const char *key;
	int panel;
} panel_keys[] = {
	{"loss", P_LOSS}, {"acc", P_SCORE},     {"precision", P_SCORE}, {"recall", P_SCORE}, {"f1", P_SCORE},
	{"perplexity", P_PPL}, {"mse", P_ERR}, {"mae", P_ERR},         {"lr", P_LR},
};

static const char *base_key(const char *key)
{
	return strncmp(key, "val_", 4) == 0 ? key + 4 : key;
}

int mlc_plot_panel_of(const char *key)
{
	key = base_key(key);
	if (strncmp(key, "top", 3) == 0 && key[3] >= '1' && key[3] <= '9' && !key[3 + strspn(key + 3, "0123456789")])
		return P_SCORE;
	for (size_t i = 0; i < sizeof panel_keys / sizeof panel_keys[0]; i++)
		if (strcmp(key, panel_keys[i].key) == 0)
			return panel_keys[i].panel;
	return -1;
}

/* ---- K-fold: the folds' mean ± sample std at each epoch ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* lg's fold series replaced by one per key: at each epoch any fold logged,
 * the mean over the folds that logged it and their sample std (0 for one). */
static void fold_means(plot_log *lg)
{
	plot_log out = {.nfolds = lg->nfolds, .nepochs = lg->nepochs, .ntest = lg->ntest};
	memcpy(out.test, lg->test, sizeof lg->test);
	bool *done = calloc((size_t)lg->ns + 1, 1);
	MLC_ASSERT(done);
	for (int i = 0; i < lg->ns; i++) {
		if (done[i])
			continue;
		int total = 0;
		for (int j = i; j < lg->ns; j++)
			if (strcmp(lg->s[j].key, lg->s[i].key) == 0)
				total += lg->s[j].n;
		double *xs = mlc_xmalloc(sizeof(double) * (size_t)(total ? total : 1));
		int nx = 0;
		for (int j = i; j < lg->ns; j++)
			if (strcmp(lg->s[j].key, lg->s[i].key) == 0) {
				memcpy(xs + nx, lg->s[j].x, sizeof(double) * (size_t)lg->s[j].n);
				nx += lg->s[j].n;
			}
		qsort(xs, (size_t)nx, sizeof *xs, cmp_double);
		int nu = 0;
		for (int k = 0; k < nx; k++)
			if (nu == 0 || xs[k] != xs[nu - 1])
				xs[nu++] = xs[k];
		plot_series m = {.fold = 0, .n = 0, .cap = nu ? nu : 1};
		snprintf(m.key, sizeof m.key, "%s", lg->s[i].key);
		m.x = mlc_xmalloc(sizeof(double) * (size_t)m.cap);
		m.y = mlc_xmalloc(sizeof(double) * (size_t)m.cap);
		m.sd = mlc_xmalloc(sizeof(double) * (size_t)m.cap);
		for (int k = 0; k < nu; k++) {
			double sum = 0, sq = 0;
			int c = 0;
			for (int j = i; j < lg->ns; j++) {
				const plot_series *f = &lg->s[j];
				if (strcmp(f->key, lg->s[i].key) != 0)
					continue;
				for (int t = 0; t < f->n; t++) /* a fold logs an epoch once: the first record counts */
					if (f->x[t] == xs[k]) {
						sum += f->y[t], sq += f->y[t] * f->y[t], c++;
						break;
					}
			}
			double mean = sum / c, var = c > 1 ? (sq - sum * mean) / (c - 1) : 0;
			m.x[m.n] = xs[k], m.y[m.n] = mean, m.sd[m.n++] = var > 0 && isfinite(var) ? sqrt(var) : 0;
		}
		for (int j = i; j < lg->ns; j++)
			if (strcmp(lg->s[j].key, lg->s[i].key) == 0)
				done[j] = true;
		free(xs);
		if (out.ns == out.cap) {
			out.cap = out.cap ? 2 * out.cap : 16;
			out.s = realloc(out.s, sizeof *out.s * (size_t)out.cap);
			MLC_ASSERT(out.s);
		}
		out.s[out.ns++] = m;
	}
	free(done);
	mlc_plot_log_free(lg);
	*lg = out;
}

/* ---- axes ---- */

enum { MAX_TICKS = 12, PANEL_W = 460, PANEL_H = 340, TITLE_H = 40, LEFT = 66, RIGHT = 18, BOTTOM = 46 };

typedef struct {
	double x0, x1, y0, y1; /* data ranges; y in log10 when logy */
	bool logy;
	double px, py, w, h;   /* the plot area on the page */
} frame;

/* Halves first, so that ranges near the double maximum do not overflow. */
static double unit(double v, double lo, double hi)
{
	double r = (v * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5);
	return r < -1 ? -1 : r > 2 ? 2 : r;
}

static double fx(const frame *f, double x)
{
	return f->px + unit(x, f->x0, f->x1) * f->w;
}

static double fy(const frame *f, double y)
{
	return f->py + f->h - unit(f->logy ? log10(y) : y, f->y0, f->y1) * f->h;
}

/* Up to MAX_TICKS "nice" values (1, 2 or 5 times a power of ten) in [lo, hi];
 * the ends alone when the range is too narrow for its magnitude (values near
 * 1e17 a few units apart) or too wide to count. Never loops on the values. */
static int ticks(double lo, double hi, int want, double *out)
{
	double raw = (hi * 0.5 - lo * 0.5) / want * 2;
	if (!(raw > 0) || !isfinite(raw)) {
		out[0] = lo;
		return 1;
	}
	double p = pow(10, floor(log10(raw))), f = raw / p;
	double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
	double k0 = ceil(lo / step), k1 = floor(hi / step);
	if (!(step > 0) || !isfinite(k0) || !isfinite(k1) || k1 < k0 || k1 - k0 >= MAX_TICKS) {
		out[0] = lo, out[1] = hi;
		return 2;
	}
	int n = 0;
	for (int i = 0; i <= (int)(k1 - k0); i++) {
		double v = (k0 + i) * step;
		if (fabs(v) < step * 1e-9)
			v = 0;
		if (n == 0 || v != out[n - 1])
			out[n++] = v;
	}
	return n;
}

/* A log axis (lo, hi in log10): powers of ten over a decade or more, else
 * nice values of the range itself; returned as values, not exponents. */
static int log_ticks(double lo, double hi, double *out)
{
	if (hi - lo < 1) {
		int n = ticks(pow(10, lo), pow(10, hi), 4, out), k = 0;
		for (int i = 0; i < n; i++)
			if (out[i] > 0)
				out[k++] = out[i];
		return k;
	}
	double e0 = ceil(lo), e1 = floor(hi), step = ceil((e1 - e0 + 1) / (MAX_TICKS - 2));
	int n = 0;
	if (e1 - e0 < 2) { /* a decade or two: 1, 2 and 5 times the powers of ten */
		static const double m[] = {1, 2, 5};
		for (double e = floor(lo); e <= e1 && n < MAX_TICKS; e++)
			for (int k = 0; k < 3 && n < MAX_TICKS; k++) {
				double v = m[k] * pow(10, e), l = log10(v);
				if (l >= lo && l <= hi)
					out[n++] = v;
			}
		return n;
	}
	for (int i = 0; i < MAX_TICKS && e0 + i * step <= e1; i++)
		out[n++] = pow(10, e0 + i * step);
	return n;
}

/* ---- drawing ---- */

static const double palette[10][3] = {
	{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
	{0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
	{0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};

static void text_at(cairo_t *cr, double x, double y, double size, double align, const char *s)
{
	cairo_text_extents_t e;
	cairo_set_font_size(cr, size);
	cairo_text_extents(cr, s, &e);
	cairo_move_to(cr, x - align * e.x_advance, y);
	cairo_show_text(cr, s);
}

static double text_w(cairo_t *cr, double size, const char *s)
{
	cairo_text_extents_t e;
	cairo_set_font_size(cr, size);
	cairo_text_extents(cr, s, &e);
	return e.x_advance;
}

static void label(char *buf, size_t n, double v)
{
	snprintf(buf, n, "%.6g", v);
}

static void colour(cairo_t *cr, int i, double alpha)
{
	const double *c = palette[i % 10];
	cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha);
}

static void diamond(cairo_t *cr, double x, double y, double r)
{
	cairo_move_to(cr, x, y - r);
	cairo_line_to(cr, x + r, y);
	cairo_line_to(cr, x, y + r);
	cairo_line_to(cr, x - r, y);
	cairo_close_path(cr);
	cairo_fill(cr);
}

/* Each series' colour: by fold in a per-fold K-fold chart, else by its
 * metric's place among the panel's (loss and val_loss share one). Once per
 * chart: quadratic in the series, which are at most MLC_PLOT_MAX_SERIES. */
static int *series_colours(const plot_log *lg, const int *panel_of)
{
	int *col = mlc_xmalloc(sizeof(int) * (size_t)(lg->ns + 1)), next[P_COUNT] = {0};
	for (int i = 0; i < lg->ns; i++) {
		const plot_series *s = &lg->s[i];
		int p = panel_of[i];
		col[i] = -1;
		if (s->fold > 0 || p < 0) {
			col[i] = s->fold > 0 ? s->fold - 1 : 0;
			continue;
		}
		for (int j = 0; j < i && col[i] < 0; j++)
			if (panel_of[j] == p && lg->s[j].fold == 0 && strcmp(base_key(lg->s[j].key), base_key(s->key)) == 0)
				col[i] = col[j];
		if (col[i] < 0)
			col[i] = next[p]++;
	}
	return col;
}

typedef struct {
	char text[96];
	int colour;
	int style; /* 0 line, 1 dashed line, 2 diamond */
} legend_item;

/* The legend items of a panel, at most max. */
static int legend(const plot_log *lg, int p, const int *panel_of, const int *col, const mlc_json_member *test,
		  int ntest, legend_item *it, int max)
{
	int n = 0;
	if (lg->nfolds > 0 && lg->ns && lg->s[0].fold > 0) { /* per fold: the colours are folds */
		for (int f = 1; f <= lg->nfolds && n < max - 3; f++)
			for (int i = 0; i < lg->ns; i++)
				if (panel_of[i] == p && lg->s[i].fold == f) {
					it[n] = (legend_item){.colour = f - 1};
					snprintf(it[n++].text, sizeof it->text, "fold %d", f);
					break;
				}
		if (n == max - 3)
			it[n++] = (legend_item){"...", 7, 0};
		it[n++] = (legend_item){"training", 7, 0};
		it[n++] = (legend_item){"validation", 7, 1};
		return n;
	}
	for (int i = 0; i < lg->ns && n < max - 1; i++)
		if (panel_of[i] == p) {
			it[n] = (legend_item){.colour = col[i],
					      .style = strncmp(lg->s[i].key, "val_", 4) == 0};
			snprintf(it[n].text, sizeof it->text, "%.47s%s", lg->s[i].key, lg->s[i].sd ? " (mean ± std)" : "");
			n++;
		}
	for (int t = 0; t < ntest && n < max; t++)
		if (mlc_plot_panel_of(test[t].key) == p) {
			it[n] = (legend_item){.style = 2};
			for (int i = 0; i < lg->ns; i++)
				if (panel_of[i] == p && strcmp(base_key(lg->s[i].key), test[t].key) == 0)
					it[n].colour = col[i];
			snprintf(it[n++].text, sizeof it->text, "test %.47s %.4g", test[t].key, test[t].val);
		}
	return n;
}

static bool drawn(const frame *f, double y)
{
	return isfinite(y) && (!f->logy || y > 0);
}

/* The test members drawn in panel p (their series exist in it). */
static bool test_in(const plot_log *lg, int p, const int *panel_of, const mlc_json_member *m)
{
	if (mlc_plot_panel_of(m->key) != p)
		return false;
	for (int i = 0; i < lg->ns; i++)
		if (panel_of[i] == p && strcmp(base_key(lg->s[i].key), m->key) == 0)
			return true;
	return false;
}

static void draw_panel(cairo_t *cr, const plot_log *lg, int p, const int *panel_of, const int *col, bool logy,
		       double px, double py)
{
	frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY, logy, 0, 0, 0, 0};
	for (int i = 0; i < lg->ns; i++) {
		const plot_series *s = &lg->s[i];
		if (panel_of[i] != p)
			continue;
		for (int k = 0; k < s->n; k++) {
			double sd = s->sd ? s->sd[k] : 0, lo = s->y[k] - sd, hi = s->y[k] + sd;
			if (!drawn(&f, s->y[k]))
				continue;
			f.x0 = fmin(f.x0, s->x[k]), f.x1 = fmax(f.x1, s->x[k]);
			if (logy && !(lo > 0))
				lo = s->y[k];
			lo = logy ? log10(lo) : lo, hi = logy ? log10(hi) : hi;
			f.y0 = fmin(f.y0, lo), f.y1 = fmax(f.y1, hi);
		}
	}
	for (int t = 0; t < lg->ntest; t++)
		if (test_in(lg, p, panel_of, &lg->test[t]) && drawn(&f, lg->test[t].val)) {
			double v = logy ? log10(lg->test[t].val) : lg->test[t].val;
			f.y0 = fmin(f.y0, v), f.y1 = fmax(f.y1, v);
		}
	double last_x = f.x1;
	if (f.x1 <= f.x0)
		f.x1 = f.x0 + 1;
	double xpad = (f.x1 * 0.5 - f.x0 * 0.5) * 0.06; /* the first and last points off the frame */
	if (isfinite(f.x0 - xpad) && isfinite(f.x1 + xpad))
		f.x0 -= xpad, f.x1 += xpad;
	double pad = (f.y1 * 0.5 - f.y0 * 0.5) * 0.16;
	if (!(pad > 0) || !isfinite(pad))
		pad = fabs(f.y0) > 0 && isfinite(f.y0) ? fabs(f.y0) * 0.1 : 0.5;
	if (!isfinite(f.y0 - pad) || !isfinite(f.y1 + pad))
		pad = 0;
	f.y0 -= pad, f.y1 += pad;

	/* the header: title, then the legend, wrapped */
	legend_item it[24];
	int nit = legend(lg, p, panel_of, col, lg->test, lg->ntest, it, 24);
	double lx = px + LEFT, ly = py + 40, right = px + PANEL_W - RIGHT;
	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
	text_at(cr, px + LEFT, py + 20, 14, 0, panels[p].title);
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
	int lines = 1;
	for (int i = 0; i < nit; i++) {
		double w = 30 + text_w(cr, 11, it[i].text) + 14;
		if (lx + w > right && lx > px + LEFT && lines < 3)
			lx = px + LEFT, ly += 15, lines++;
		colour(cr, it[i].colour, 1);
		cairo_set_line_width(cr, 2);
		if (it[i].style == 2) {
			diamond(cr, lx + 12, ly - 4, 5);
		} else {
			double dash[] = {6, 4};
			cairo_set_dash(cr, dash, it[i].style ? 2 : 0, 0);
			cairo_move_to(cr, lx, ly - 4);
			cairo_line_to(cr, lx + 24, ly - 4);
			cairo_stroke(cr);
			cairo_set_dash(cr, NULL, 0, 0);
		}
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		text_at(cr, lx + 30, ly, 11, 0, it[i].text);
		lx += w;
	}
	f.px = px + LEFT, f.py = ly + 14, f.w = PANEL_W - LEFT - RIGHT, f.h = py + PANEL_H - BOTTOM - f.py;

	/* grid, ticks and their labels */
	double tv[MAX_TICKS];
	char lab[32];
	int nt = logy ? log_ticks(f.y0, f.y1, tv) : ticks(f.y0, f.y1, 5, tv);
	cairo_set_line_width(cr, 1);
	for (int i = 0; i < nt; i++) {
		double y = fy(&f, tv[i]);
		cairo_set_source_rgb(cr, 0.87, 0.87, 0.87);
		cairo_move_to(cr, f.px, y);
		cairo_line_to(cr, f.px + f.w, y);
		cairo_stroke(cr);
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		label(lab, sizeof lab, tv[i]);
		text_at(cr, f.px - 7, y + 4, 11, 1, lab);
	}
	double xt[MAX_TICKS];
	int nx = ticks(f.x0, f.x1, 6, xt);
	for (int i = 0; i < nx; i++) {
		if (xt[i] != floor(xt[i]) && f.x1 - f.x0 >= 2)
			continue; /* whole epochs */
		double x = fx(&f, xt[i]);
		cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
		cairo_move_to(cr, x, f.py + f.h);
		cairo_line_to(cr, x, f.py + f.h + 5);
		cairo_stroke(cr);
		label(lab, sizeof lab, xt[i]);
		text_at(cr, x, f.py + f.h + 18, 11, 0.5, lab);
	}
	text_at(cr, f.px + f.w / 2, f.py + f.h + 36, 12, 0.5, lg->nfolds ? "epoch (of each fold)" : "epoch");
	cairo_rectangle(cr, f.px, f.py, f.w, f.h);
	cairo_stroke(cr);

	/* the curves, clipped to the plot area */
	cairo_save(cr);
	cairo_rectangle(cr, f.px, f.py, f.w, f.h);
	cairo_clip(cr);
	for (int i = 0; i < lg->ns; i++) {
		const plot_series *s = &lg->s[i];
		if (panel_of[i] != p)
			continue;
		int c = col[i];
		if (s->sd) { /* the band first, under its line */
			colour(cr, c, 0.18);
			bool open = false;
			int last = -1;
			for (int k = 0; k < s->n; k++)
				if (drawn(&f, s->y[k])) {
					double hi = s->y[k] + s->sd[k];
					open ? cairo_line_to(cr, fx(&f, s->x[k]), fy(&f, hi))
					     : cairo_move_to(cr, fx(&f, s->x[k]), fy(&f, hi));
					open = true, last = k;
				}
			for (int k = last; k >= 0; k--)
				if (drawn(&f, s->y[k])) {
					double lo = s->y[k] - s->sd[k];
					cairo_line_to(cr, fx(&f, s->x[k]), fy(&f, drawn(&f, lo) ? lo : s->y[k]));
				}
			cairo_fill(cr);
		}
		colour(cr, c, 1);
		cairo_set_line_width(cr, 2);
		double dash[] = {6, 4};
		cairo_set_dash(cr, dash, strncmp(s->key, "val_", 4) == 0 ? 2 : 0, 0);
		bool open = false;
		for (int k = 0; k < s->n; k++) {
			if (!drawn(&f, s->y[k])) { /* a gap */
				open = false;
				continue;
			}
			open ? cairo_line_to(cr, fx(&f, s->x[k]), fy(&f, s->y[k]))
			     : cairo_move_to(cr, fx(&f, s->x[k]), fy(&f, s->y[k]));
			open = true;
		}
		cairo_stroke(cr);
		cairo_set_dash(cr, NULL, 0, 0);
		if (s->n <= 40)
			for (int k = 0; k < s->n; k++)
				if (drawn(&f, s->y[k])) {
					cairo_arc(cr, fx(&f, s->x[k]), fy(&f, s->y[k]), 2.5, 0, 2 * M_PI);
					cairo_fill(cr);
				}
	}
	cairo_restore(cr);
	/* the test record: a diamond at the last epoch, in its metric's colour */
	for (int t = 0; t < lg->ntest; t++) {
		const mlc_json_member *m = &lg->test[t];
		if (!test_in(lg, p, panel_of, m) || !drawn(&f, m->val))
			continue;
		for (int i = 0; i < lg->ns; i++)
			if (panel_of[i] == p && strcmp(base_key(lg->s[i].key), m->key) == 0) {
				colour(cr, col[i], 1);
				break;
			}
		diamond(cr, fx(&f, last_x), fy(&f, m->val), 6);
	}
}

/* The panels this log fills: a kind with points (the learning rate only when it changes). */
static int chosen(const plot_log *lg, const int *panel_of, int *which)
{
	int n = 0;
	for (int p = 0; p < P_COUNT; p++) {
		double lo = INFINITY, hi = -INFINITY;
		for (int i = 0; i < lg->ns; i++)
			if (panel_of[i] == p)
				for (int k = 0; k < lg->s[i].n; k++)
					lo = fmin(lo, lg->s[i].y[k]), hi = fmax(hi, lg->s[i].y[k]);
		if (hi >= lo && (p != P_LR || hi > lo))
			which[n++] = p;
	}
	return n;
}

typedef struct {
	FILE *f;
	int err; /* errno of the first failed write */
} sink;

static cairo_status_t put(void *closure, const unsigned char *data, unsigned int n)
{
	sink *k = closure;
	if (fwrite(data, 1, n, k->f) == n)
		return CAIRO_STATUS_SUCCESS;
	if (!k->err)
		k->err = errno ? errno : EIO;
	return CAIRO_STATUS_WRITE_ERROR;
}

typedef enum { FMT_SVG, FMT_PNG, FMT_NONE } format;

static format format_of(const char *path)
{
	const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		return FMT_NONE;
	return strcasecmp(dot, ".svg") == 0 ? FMT_SVG : strcasecmp(dot, ".png") == 0 ? FMT_PNG : FMT_NONE;
}

mlc_status mlc_plot_draw(plot_log *lg, const char *log_path, const char *out_path, const mlc_plot_options *o,
			 mlc_diag *d)
{
	format fmt = format_of(out_path);
	if (fmt == FMT_NONE) {
		mlc_error_file(d, out_path, "cannot tell the picture's format from its name: write OUT.svg or OUT.png");
		return MLC_EUSER;
	}
	if (o->fold_mean && lg->nfolds == 0) {
		mlc_error_file(d, log_path, "--fold-mean needs a K-fold log (mlc run --kfold K --log FILE)");
		return MLC_EUSER;
	}
	if (o->fold_mean)
		fold_means(lg);
	int *panel_of = mlc_xmalloc(sizeof(int) * (size_t)(lg->ns + 1)), which[P_COUNT];
	for (int i = 0; i < lg->ns; i++)
		panel_of[i] = mlc_plot_panel_of(lg->s[i].key);
	int np = chosen(lg, panel_of, which), cols = np < 2 ? 1 : 2, rows = (np + 1) / 2;
	if (np == 0) {
		free(panel_of);
		mlc_error_file(d, log_path, "has no loss, metric or learning rate to plot");
		return MLC_EUSER;
	}
	int w = PANEL_W * cols, h = TITLE_H + PANEL_H * rows;
	mlc_atomic a;
	if (mlc_atomic_open(&a, out_path, d) != MLC_OK) {
		free(panel_of);
		return MLC_EIO;
	}
	int *col = series_colours(lg, panel_of);
	sink k = {a.f, 0};
	cairo_surface_t *sf = fmt == FMT_SVG ? cairo_svg_surface_create_for_stream(put, &k, w, h)
					     : cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	cairo_t *cr = cairo_create(sf);
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	const char *title = o->title;
	if (!title) {
		const char *slash = strrchr(log_path, '/');
		title = slash ? slash + 1 : log_path;
	}
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
	cairo_set_source_rgb(cr, 0, 0, 0);
	text_at(cr, w / 2.0, 27, 17, 0.5, title);
	for (int i = 0; i < np; i++)
		draw_panel(cr, lg, which[i], panel_of, col, o->log_scale && panels[which[i]].log_ok, PANEL_W * (i % 2),
			   TITLE_H + PANEL_H * (i / 2));
	cairo_status_t cs = cairo_status(cr);
	cairo_destroy(cr);
	if (cs == CAIRO_STATUS_SUCCESS && fmt == FMT_PNG)
		cs = cairo_surface_write_to_png_stream(sf, put, &k);
	cairo_surface_finish(sf);
	if (cs == CAIRO_STATUS_SUCCESS)
		cs = cairo_surface_status(sf);
	cairo_surface_destroy(sf);
	free(col);
	free(panel_of);
	if (cs != CAIRO_STATUS_SUCCESS) {
		mlc_atomic_abort(&a);
		if (k.err)
			mlc_error_file(d, out_path, "cannot write: %s", strerror(k.err));
		else
			mlc_error_file(d, out_path, "cannot draw the chart: %s", cairo_status_to_string(cs));
		return k.err ? MLC_EIO : MLC_EINTERNAL;
	}
	return mlc_atomic_commit(&a, d);
}
