/* plot.h — `mlc plot` (internal): a training log read into series
 * (runtime/plot.c) and drawn with cairo as SVG or PNG (runtime/plot_draw.c). */
#ifndef MLC_PLOT_H
#define MLC_PLOT_H

#include "metrics.h"
#include "runtime.h"

#define MLC_PLOT_MAX_LOG_BYTES (64 << 20) /* docs/spec.md, "Limits" */
enum { MLC_PLOT_MAX_SERIES = 1000 };      /* curves: (metric, fold) pairs; also the highest fold */

/* One curve: a logged key ("loss", "val_top5") of one fold (0: not K-fold). */
typedef struct {
	char key[48];
	int fold;
	int n, cap;
	double *x, *y; /* epoch, value; finite */
	double *sd;    /* the folds' std beside their mean (mlc_plot_draw's mean mode), or NULL */
} plot_series;

typedef struct {
	plot_series *s;
	int ns, cap;
	int nfolds;                 /* the highest "fold" of an epoch record; 0: not a K-fold log */
	int nepochs;                /* epoch records */
	mlc_json_member test[128];  /* the test record's numeric members, "loss", "acc", ... */
	int ntest;
} plot_log;

mlc_status mlc_plot_log_read(const char *path, plot_log *lg, mlc_diag *d);
void mlc_plot_log_free(plot_log *lg);
/* The panel a key is drawn in (val_ and test keys as theirs), or -1 (not drawn: time_s). */
int mlc_plot_panel_of(const char *key);
/* The chart, in the format out_path's extension names (.svg, .png), written atomically. */
mlc_status mlc_plot_draw(plot_log *lg, const char *log_path, const char *out_path, const mlc_plot_options *o,
			 mlc_diag *d);

#endif
