/* metrics.h — what a model's predictions score against the targets:
 * accuracy, top-k accuracy, the confusion matrix with per-class precision,
 * recall and F1 for classifiers; MSE and MAE for regression. An accumulator
 * takes samples batch by batch; the report functions read it. (internal) */
#ifndef MLC_METRICS_H
#define MLC_METRICS_H

#include "../ir/base.h"

#include <stdio.h>

typedef struct {
	int64_t nclasses;   /* 0: no class metrics (regression) */
	int topk;           /* 0: no top-k */
	int64_t seen, correct, top_correct;
	int64_t *confusion; /* nclasses^2 counts, [truth * nclasses + predicted] */
	int64_t nvalues;    /* regression: values compared */
	double se, ae;      /* sums of squared and absolute errors */
	double nll;         /* classes: the sum of −log p(label) over the samples */
	double p_floor;     /* p(label) is clamped to at least this (the loss's clamp; FLT_TRUE_MIN) */
} mlc_metrics;

void mlc_metrics_init(mlc_metrics *m, int64_t nclasses, int topk);
void mlc_metrics_reset(mlc_metrics *m);
void mlc_metrics_free(mlc_metrics *m);
/* One sample: `c` outputs (c == 1: the probability of class 1 of 2) against class `want`;
 * with c > 1 its −log(max(row[want], p_floor)) is added to nll. */
void mlc_metrics_add_class(mlc_metrics *m, const float *row, int64_t c, int64_t want);
/* n predicted values against their targets. */
void mlc_metrics_add_values(mlc_metrics *m, const float *pred, const float *target, int64_t n);

/* Ratios with nothing to count are 0 (a class never predicted has precision
 * 0, as scikit-learn's zero_division=0), never NaN. */
double mlc_metrics_accuracy(const mlc_metrics *m);
double mlc_metrics_topk(const mlc_metrics *m);
double mlc_metrics_precision(const mlc_metrics *m, int64_t k);
double mlc_metrics_recall(const mlc_metrics *m, int64_t k);
double mlc_metrics_f1(const mlc_metrics *m, int64_t k);
/* Macro average of precision, recall or F1 over the classes that occur
 * (as a truth or as a prediction). */
double mlc_metrics_macro(const mlc_metrics *m, double (*per_class)(const mlc_metrics *, int64_t));
double mlc_metrics_mse(const mlc_metrics *m);
double mlc_metrics_mae(const mlc_metrics *m);
/* exp(nll / seen): the rows are probabilities (softmax or the model's own). */
double mlc_metrics_perplexity(const mlc_metrics *m);

/* The chosen metrics (MLC_METRIC_* bits) that this accumulator can report,
 * as "  top5 0.9120  f1 0.8000" and as JSON members ", \"val_top5\": 0.912",
 * each name prefixed with `prefix`. Accuracy is left to the caller (it is
 * the "acc" column). The confusion matrix goes to JSON only when `confusion`. */
void mlc_metrics_text(const mlc_metrics *m, unsigned which, const char *prefix, FILE *f);
void mlc_metrics_json(const mlc_metrics *m, unsigned which, const char *prefix, FILE *f);
/* Aligned tables: the confusion matrix (rows: truth, columns: predicted) and
 * precision / recall / F1 / support per class. */
void mlc_metrics_print_confusion(const mlc_metrics *m, FILE *f);
void mlc_metrics_print_classes(const mlc_metrics *m, FILE *f);

/* JSON values: a number (%.9g; null when not finite) and a quoted, escaped string. */
void mlc_json_num(FILE *f, double v);
void mlc_json_str(FILE *f, const char *s);

/* Reading a JSON-lines log back (runtime/plot.c): the top-level members of a
 * line holding one JSON object whose values are numbers (null reads as NaN);
 * other members are checked for syntax and skipped. Returns how many were
 * stored (at most max), or -1 with a message and the 1-based column. */
typedef struct {
	char key[48]; /* longer keys are cut */
	double val;
} mlc_json_member;
int mlc_json_parse_line(const char *line, size_t len, mlc_json_member *out, int max, const char **err, int *col);

#endif
