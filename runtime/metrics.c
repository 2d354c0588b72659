/* metrics.c — the metric accumulator of metrics.h, its text and JSON
 * reports, and the aligned confusion and per-class tables. */
#include "metrics.h"

#include "../frontend/frontend.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void mlc_metrics_init(mlc_metrics *m, int64_t nclasses, int topk)
{
	memset(m, 0, sizeof *m);
	m->nclasses = nclasses;
	m->topk = topk;
	m->p_floor = FLT_TRUE_MIN;
	if (nclasses > 0)
		m->confusion = mlc_xmalloc(sizeof *m->confusion * (size_t)(nclasses * nclasses));
}

void mlc_metrics_reset(mlc_metrics *m)
{
	if (m->confusion)
		memset(m->confusion, 0, sizeof *m->confusion * (size_t)(m->nclasses * m->nclasses));
	m->seen = m->correct = m->top_correct = m->nvalues = 0;
	m->se = m->ae = m->nll = 0;
}

void mlc_metrics_free(mlc_metrics *m)
{
	free(m->confusion);
	memset(m, 0, sizeof *m);
}

void mlc_metrics_add_class(mlc_metrics *m, const float *row, int64_t c, int64_t want)
{
	int64_t got = 0, higher = 0;
	if (c == 1) {
		got = row[0] > 0.5f;
		higher = got != want; /* of two classes, the other one scores higher */
	} else {
		for (int64_t j = 1; j < c; j++)
			if (row[j] > row[got])
				got = j;
		for (int64_t j = 0; j < c; j++)
			higher += row[j] > row[want];
		if (want >= 0 && want < c)
			m->nll -= log(fmax((double)row[want], m->p_floor));
	}
	m->seen++;
	m->correct += got == want;
	m->top_correct += higher < m->topk;
	if (m->confusion && want < m->nclasses && got < m->nclasses)
		m->confusion[want * m->nclasses + got]++;
}

void mlc_metrics_add_values(mlc_metrics *m, const float *pred, const float *target, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		double e = (double)pred[i] - (double)target[i];
		m->se += e * e;
		m->ae += fabs(e);
	}
	m->nvalues += n;
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0.0;
}

double mlc_metrics_accuracy(const mlc_metrics *m)
{
	return ratio((double)m->correct, (double)m->seen);
}

double mlc_metrics_topk(const mlc_metrics *m)
{
	return ratio((double)m->top_correct, (double)m->seen);
}

/* column k: predicted as k; row k: truly k */
static int64_t predicted(const mlc_metrics *m, int64_t k)
{
	int64_t n = 0;
	for (int64_t t = 0; t < m->nclasses; t++)
		n += m->confusion[t * m->nclasses + k];
	return n;
}

static int64_t support(const mlc_metrics *m, int64_t k)
{
	int64_t n = 0;
	for (int64_t p = 0; p < m->nclasses; p++)
		n += m->confusion[k * m->nclasses + p];
	return n;
}

double mlc_metrics_precision(const mlc_metrics *m, int64_t k)
{
	return ratio((double)m->confusion[k * m->nclasses + k], (double)predicted(m, k));
}

double mlc_metrics_recall(const mlc_metrics *m, int64_t k)
{
	return ratio((double)m->confusion[k * m->nclasses + k], (double)support(m, k));
}

double mlc_metrics_f1(const mlc_metrics *m, int64_t k)
{
	double p = mlc_metrics_precision(m, k), r = mlc_metrics_recall(m, k);
	return ratio(2 * p * r, p + r);
}

double mlc_metrics_macro(const mlc_metrics *m, double (*per_class)(const mlc_metrics *, int64_t))
{
	double sum = 0;
	int64_t n = 0;
	for (int64_t k = 0; k < m->nclasses; k++)
		if (support(m, k) || predicted(m, k)) {
			sum += per_class(m, k);
			n++;
		}
	return ratio(sum, (double)n);
}

double mlc_metrics_mse(const mlc_metrics *m)
{
	return ratio(m->se, (double)m->nvalues);
}

double mlc_metrics_mae(const mlc_metrics *m)
{
	return ratio(m->ae, (double)m->nvalues);
}

double mlc_metrics_perplexity(const mlc_metrics *m)
{
	return exp(ratio(m->nll, (double)m->seen));
}

/* One reportable metric: its name (NULL: "top<k>") and value. */
typedef struct {
	unsigned bit;
	const char *name;
	bool classes; /* needs the confusion matrix; else values */
	double (*macro)(const mlc_metrics *, int64_t);
	double (*value)(const mlc_metrics *);
} metric;

static const metric metrics[] = {
	{MLC_METRIC_TOPK, NULL, true, NULL, mlc_metrics_topk},
	{MLC_METRIC_PRECISION, "precision", true, mlc_metrics_precision, NULL},
	{MLC_METRIC_RECALL, "recall", true, mlc_metrics_recall, NULL},
	{MLC_METRIC_F1, "f1", true, mlc_metrics_f1, NULL},
	{MLC_METRIC_MSE, "mse", false, NULL, mlc_metrics_mse},
	{MLC_METRIC_MAE, "mae", false, NULL, mlc_metrics_mae},
	{MLC_METRIC_PERPLEXITY, "perplexity", true, NULL, mlc_metrics_perplexity},
};

static bool reportable(const mlc_metrics *m, const metric *x, unsigned which)
{
	return (which & x->bit) && (x->classes ? m->nclasses > 0 && m->seen > 0 : m->nvalues > 0);
}

static double value_of(const mlc_metrics *m, const metric *x)
{
	return x->macro ? mlc_metrics_macro(m, x->macro) : x->value(m);
}

static void name_of(const mlc_metrics *m, const metric *x, const char *prefix, char *buf, size_t n)
{
	if (x->name)
		snprintf(buf, n, "%s%s", prefix, x->name);
	else
		snprintf(buf, n, "%stop%d", prefix, m->topk);
}

void mlc_metrics_text(const mlc_metrics *m, unsigned which, const char *prefix, FILE *f)
{
	char name[64];
	for (size_t i = 0; i < MLC_COUNTOF(metrics); i++)
		if (reportable(m, &metrics[i], which)) {
			name_of(m, &metrics[i], prefix, name, sizeof name);
			fprintf(f, "  %s %.4f", name, value_of(m, &metrics[i]));
		}
}

void mlc_metrics_json(const mlc_metrics *m, unsigned which, const char *prefix, FILE *f)
{
	char name[64];
	for (size_t i = 0; i < MLC_COUNTOF(metrics); i++)
		if (reportable(m, &metrics[i], which)) {
			name_of(m, &metrics[i], prefix, name, sizeof name);
			fputs(", ", f);
			mlc_json_str(f, name);
			fputs(": ", f);
			mlc_json_num(f, value_of(m, &metrics[i]));
		}
	if ((which & MLC_METRIC_CONFUSION) && m->confusion && m->seen) {
		fprintf(f, ", \"%sconfusion\": [", prefix);
		for (int64_t t = 0; t < m->nclasses; t++) {
			fputs(t ? ", [" : "[", f);
			for (int64_t p = 0; p < m->nclasses; p++)
				fprintf(f, "%s%lld", p ? ", " : "", (long long)m->confusion[t * m->nclasses + p]);
			fputc(']', f);
		}
		fputc(']', f);
	}
}

static int digits(int64_t v)
{
	int n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

void mlc_metrics_print_confusion(const mlc_metrics *m, FILE *f)
{
	int64_t c = m->nclasses, most = c - 1;
	for (int64_t i = 0; i < c * c; i++)
		most = m->confusion[i] > most ? m->confusion[i] : most;
	int w = digits(most) + 1, lw = digits(c - 1) > 4 ? digits(c - 1) : 4;
	fprintf(f, "confusion matrix (rows: true class, columns: predicted):\n%*s", lw + 1, "");
	for (int64_t p = 0; p < c; p++)
		fprintf(f, " %*lld", w, (long long)p);
	fputc('\n', f);
	for (int64_t t = 0; t < c; t++) {
		fprintf(f, "%*lld", lw + 1, (long long)t);
		for (int64_t p = 0; p < c; p++)
			fprintf(f, " %*lld", w, (long long)m->confusion[t * c + p]);
		fputc('\n', f);
	}
}

void mlc_metrics_print_classes(const mlc_metrics *m, FILE *f)
{
	fprintf(f, "%6s %9s %9s %9s %9s\n", "class", "precision", "recall", "f1", "support");
	for (int64_t k = 0; k < m->nclasses; k++)
		fprintf(f, "%6lld %9.4f %9.4f %9.4f %9lld\n", (long long)k, mlc_metrics_precision(m, k),
			mlc_metrics_recall(m, k), mlc_metrics_f1(m, k), (long long)support(m, k));
	fprintf(f, "%6s %9.4f %9.4f %9.4f %9lld\n", "macro", mlc_metrics_macro(m, mlc_metrics_precision),
		mlc_metrics_macro(m, mlc_metrics_recall), mlc_metrics_macro(m, mlc_metrics_f1), (long long)m->seen);
}

void mlc_json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

void mlc_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
