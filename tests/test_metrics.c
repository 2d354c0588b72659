/* test_metrics.c — metric computations (confusion, top-k, precision /
 * recall / F1, mse / mae), the metrics: key, the JSON-lines training log read
 * back, and `mlc plot` on good and malformed logs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"
#include "runtime/metrics.h"
#include "runtime/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

/* scores with the argmax at `cls` and the runner-up at `second` */
static void scores(float *row, int c, int cls, int second)
{
	for (int j = 0; j < c; j++)
		row[j] = 0.01f * (float)j;
	row[second] = 0.5f;
	row[cls] = 0.9f;
}

static void add(mlc_metrics *m, int c, int want, int got, int second)
{
	float row[8];
	scores(row, c, got, second);
	mlc_metrics_add_class(m, row, c, want);
}

static void test_confusion(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 3, 1);
	/* truth 0: 0,0,1  truth 1: 1,1  truth 2: 0 */
	add(&m, 3, 0, 0, 1);
	add(&m, 3, 0, 0, 2);
	add(&m, 3, 0, 1, 0);
	add(&m, 3, 1, 1, 0);
	add(&m, 3, 1, 1, 2);
	add(&m, 3, 2, 0, 2);
	static const int64_t want[9] = {2, 1, 0, 0, 2, 0, 1, 0, 0};
	for (int i = 0; i < 9; i++)
		assert_int_equal(m.confusion[i], want[i]);
	assert_int_equal(m.seen, 6);
	assert_int_equal(m.correct, 4);
	assert_true(fabs(mlc_metrics_accuracy(&m) - 4.0 / 6) < 1e-12);
	assert_true(fabs(mlc_metrics_topk(&m) - 4.0 / 6) < 1e-12); /* top-1 is accuracy */
	/* class 0: tp 2, predicted 3, support 3 */
	assert_true(fabs(mlc_metrics_precision(&m, 0) - 2.0 / 3) < 1e-12);
	assert_true(fabs(mlc_metrics_recall(&m, 0) - 2.0 / 3) < 1e-12);
	/* class 1: tp 2, predicted 3, support 2 */
	assert_true(fabs(mlc_metrics_precision(&m, 1) - 2.0 / 3) < 1e-12);
	assert_true(fabs(mlc_metrics_recall(&m, 1) - 1.0) < 1e-12);
	assert_true(fabs(mlc_metrics_f1(&m, 1) - 0.8) < 1e-12);
	/* class 2 is never predicted: precision, recall and F1 are 0, not NaN */
	assert_true(mlc_metrics_precision(&m, 2) == 0.0);
	assert_true(mlc_metrics_recall(&m, 2) == 0.0);
	assert_true(mlc_metrics_f1(&m, 2) == 0.0);
	double f1_0 = 2.0 / 3;
	assert_true(fabs(mlc_metrics_macro(&m, mlc_metrics_f1) - (f1_0 + 0.8 + 0) / 3) < 1e-12);
	mlc_metrics_reset(&m);
	assert_int_equal(m.seen, 0);
	assert_int_equal(m.confusion[0], 0);
	mlc_metrics_free(&m);
}

static void test_topk(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 5, 2);
	add(&m, 5, 3, 3, 1); /* top-1 hit */
	add(&m, 5, 1, 3, 1); /* second: a top-2 hit */
	add(&m, 5, 4, 3, 1); /* neither: 4 scores 0.04, below 0.9 and 0.5 */
	add(&m, 5, 0, 3, 1); /* class 0 scores lowest */
	assert_int_equal(m.correct, 1);
	assert_int_equal(m.top_correct, 2);
	assert_true(fabs(mlc_metrics_topk(&m) - 0.5) < 1e-12);
	mlc_metrics_free(&m);

	/* one sigmoid output: two classes, top-2 always holds */
	mlc_metrics_init(&m, 2, 2);
	mlc_metrics_add_class(&m, (float[]){0.8f}, 1, 1);
	mlc_metrics_add_class(&m, (float[]){0.8f}, 1, 0);
	mlc_metrics_add_class(&m, (float[]){0.2f}, 1, 0);
	assert_int_equal(m.correct, 2);
	assert_int_equal(m.top_correct, 3);
	assert_int_equal(m.confusion[0 * 2 + 1], 1);
	assert_int_equal(m.confusion[1 * 2 + 1], 1);
	mlc_metrics_free(&m);
}

/* exp of the mean −log p(label), p clamped at p_floor; reported by name. */
static void test_perplexity(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 3, 1);
	assert_true(mlc_metrics_perplexity(&m) == 1.0); /* nothing seen: exp(0) */
	mlc_metrics_add_class(&m, (float[]){0.5f, 0.25f, 0.25f}, 3, 0);
	mlc_metrics_add_class(&m, (float[]){0.5f, 0.25f, 0.25f}, 3, 2);
	mlc_metrics_add_class(&m, (float[]){0.0f, 0.0f, 1.0f}, 3, 2);
	double want = exp((log(2.0) + log(4.0) + 0) / 3);
	assert_true(fabs(mlc_metrics_perplexity(&m) - want) < 1e-12);
	/* a probability of 0: clamped, so finite */
	mlc_metrics_add_class(&m, (float[]){0.0f, 0.0f, 1.0f}, 3, 0);
	assert_true(isfinite(mlc_metrics_perplexity(&m)));
	mlc_metrics_reset(&m);
	m.p_floor = 1e-7;
	mlc_metrics_add_class(&m, (float[]){0.0f, 1.0f, 0.0f}, 3, 0);
	assert_true(fabs(mlc_metrics_perplexity(&m) - 1e7) < 1e-3);
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	mlc_metrics_text(&m, MLC_METRIC_PERPLEXITY, "val_", f);
	mlc_metrics_json(&m, MLC_METRIC_PERPLEXITY, "val_", f);
	fclose(f);
	assert_string_equal(text, "  val_perplexity 10000000.0000, \"val_perplexity\": 10000000");
	free(text);
	mlc_metrics_free(&m);
}

static void test_regression(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 0, 0);
	mlc_metrics_add_values(&m, (float[]){1, 2, 3}, (float[]){1, 4, 2}, 3);
	assert_true(fabs(mlc_metrics_mse(&m) - 5.0 / 3) < 1e-12);
	assert_true(fabs(mlc_metrics_mae(&m) - 1.0) < 1e-12);
	mlc_metrics_free(&m);
	mlc_metrics_init(&m, 0, 0);
	assert_true(mlc_metrics_mse(&m) == 0.0); /* nothing seen: 0, not NaN */
	mlc_metrics_free(&m);
}

static char *slurp(FILE *f)
{
	fflush(f);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

static double member(const mlc_json_member *m, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(m[i].key, key) == 0)
			return m[i].val;
	fail_msg("no member '%s'", key);
	return 0;
}

static void test_tables(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 3, 1);
	add(&m, 3, 0, 0, 1);
	for (int i = 0; i < 12; i++)
		add(&m, 3, 2, 2, 1);
	FILE *f = tmpfile();
	mlc_metrics_print_confusion(&m, f);
	mlc_metrics_print_classes(&m, f);
	char *s = slurp(f);
	/* every matrix row as wide as the header */
	const char *want = "confusion matrix (rows: true class, columns: predicted):\n"
			   "        0   1   2\n"
			   "    0   1   0   0\n"
			   "    1   0   0   0\n"
			   "    2   0   0  12\n";
	assert_memory_equal(s, want, strlen(want));
	assert_non_null(strstr(s, " class precision    recall        f1   support\n"));
	assert_non_null(strstr(s, "     1    0.0000    0.0000    0.0000         0\n"));
	assert_non_null(strstr(s, " macro    1.0000    1.0000    1.0000        13\n"));
	free(s);
	fclose(f);
	mlc_metrics_free(&m);
}

/* The log's members, written and read back, strings escaped. */
static void test_json_round_trip(void **state)
{
	mlc_metrics m;
	mlc_metrics_init(&m, 3, 2);
	add(&m, 3, 0, 0, 1);
	add(&m, 3, 1, 0, 1);
	add(&m, 3, 2, 2, 0);
	mlc_metrics_add_values(&m, (float[]){1}, (float[]){3}, 1);
	FILE *f = tmpfile();
	fputs("{\"epoch\": 7, \"note\": ", f);
	mlc_json_str(f, "a \"quoted\"\\ line\n\tend\x01");
	fputs(", \"nan\": ", f);
	mlc_json_num(f, NAN);
	mlc_metrics_json(&m, ~0u, "val_", f);
	fputs("}\n", f);
	char *s = slurp(f);
	mlc_json_member mem[16];
	const char *err = NULL;
	int col = 0;
	int n = mlc_json_parse_line(s, strlen(s), mem, 16, &err, &col);
	if (n < 0)
		fail_msg("%s at column %d of %s", err, col, s);
	assert_true(member(mem, n, "epoch") == 7);
	assert_true(isnan(member(mem, n, "nan")));
	assert_true(fabs(member(mem, n, "val_top2") - 1.0) < 1e-9);
	assert_true(fabs(member(mem, n, "val_recall") - (1 + 0 + 1) / 3.0) < 1e-9);
	assert_true(fabs(member(mem, n, "val_mse") - 4) < 1e-9);
	assert_true(fabs(member(mem, n, "val_mae") - 2) < 1e-9);
	assert_non_null(strstr(s, "\"val_confusion\": [[1, 0, 0], [1, 0, 0], [0, 0, 1]]"));
	assert_non_null(strstr(s, "\"a \\\"quoted\\\"\\\\ line\\n\\tend\\u0001\""));
	free(s);
	fclose(f);
	mlc_metrics_free(&m);
}

static void test_json_malformed(void **state)
{
	static const struct {
		const char *line;
		int col;
	} bad[] = {
		{"{\"a\": 1,}", 9},     {"[1, 2]", 1},           {"{\"a\" 1}", 6},
		{"{\"a\": 01}", 7},     {"{\"a\": 1} x", 10},   {"{\"a\": \"x}", 7},
		{"{\"a\": tru}", 7},    {"{\"a\": [1, 2}", 12}, {"{\"a\": \"\\q\"}", 8},
		{"{\"a\": 1.}", 7},     {"", 1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mlc_json_member m[4];
		const char *err = NULL;
		int col = 0;
		int n = mlc_json_parse_line(bad[i].line, strlen(bad[i].line), m, 4, &err, &col);
		if (n >= 0 || !err || col != bad[i].col)
			fail_msg("'%s': got %d members, column %d (want %d): %s", bad[i].line, n, col, bad[i].col,
				 err ? err : "no error");
	}
	mlc_json_member m[2];
	const char *err;
	int col;
	const char *ok = " {\"a\": {\"b\": [1, {\"c\": null}]}, \"x\": -1.5e-3, \"s\": \"\\u00e9\", \"t\": true} ";
	int n = mlc_json_parse_line(ok, strlen(ok), m, 2, &err, &col);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].key, "x");
	assert_true(m[0].val == -1.5e-3);
}

static void test_metrics_key(void **state)
{
	const char *spec = "inputs: {x: {shape: [4]}}\nlayers: [{dense: 3}]\nloss: softmax_cross_entropy\n"
			   "metrics: [accuracy, top3, confusion, f1, mae]\n";
	capture c;
	cap_begin(&c);
	mlc_model *m;
	assert_int_equal(mlc_frontend_load_text("t.yaml", spec, strlen(spec), c.d, &m), MLC_OK);
	assert_int_equal(m->metrics.set, MLC_METRIC_ACCURACY | MLC_METRIC_TOPK | MLC_METRIC_CONFUSION |
						 MLC_METRIC_F1 | MLC_METRIC_MAE);
	assert_int_equal(m->metrics.topk, 3);
	assert_int_equal(m->metrics.loc.line, 4);
	mlc_model_free(m);
	const char *two = "inputs: {x: {shape: [4]}}\nlayers: [{dense: 3}]\nloss: softmax_cross_entropy\n"
			  "metrics: [top3, top5]\n";
	assert_int_equal(mlc_frontend_load_text("u.yaml", two, strlen(two), c.d, &m), MLC_EUSER);
	assert_non_null(strstr(cap_text(&c), "u.yaml:4:17: error: only one top-k metric"));
	/* perplexity: cross-entropy losses only, the error noting where the loss is */
	const char *ce = "inputs: {x: {shape: [4]}}\nlayers: [{dense: 3, activation: softmax}]\n"
			 "loss: categorical_cross_entropy\nmetrics: [perplexity]\n";
	assert_int_equal(mlc_frontend_load_text("v.yaml", ce, strlen(ce), c.d, &m), MLC_OK);
	assert_int_equal(m->metrics.set, MLC_METRIC_PERPLEXITY);
	mlc_model_free(m);
	const char *hinge = "inputs: {x: {shape: [4]}}\nlayers: [{dense: 3}]\nloss: hinge\n"
			    "metrics: [accuracy, perplexity]\n";
	assert_int_equal(mlc_frontend_load_text("w.yaml", hinge, strlen(hinge), c.d, &m), MLC_EUSER);
	assert_non_null(strstr(cap_text(&c), "w.yaml:4:21: error: perplexity is exp of the mean cross-entropy"));
	assert_non_null(strstr(cap_text(&c), "w.yaml:3:1: note: this model's loss is given here"));
	cap_end(&c);
}

/* mlc run --log on the blobs classifier, read back line by line; then plotted. */
static void test_log_and_plot(void **state)
{
	const char *src = getenv("MLC_SRC"), *bin = getenv("MLC_BIN");
	if (!src || !bin)
		skip();
	char dir[] = "/tmp/mlc_metrics_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[1024], log[256], svg[256], bad[256];
	snprintf(log, sizeof log, "%s/log.jsonl", dir);
	snprintf(svg, sizeof svg, "%s/out.svg", dir);
	snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
	snprintf(cmd, sizeof cmd, "'%s' run --quiet --epochs 4 --log '%s' '%s/examples/logistic.yaml' >/dev/null", bin,
		 log, src);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(log, "r");
	assert_non_null(f);
	char line[4096];
	int epochs = 0, tests = 0;
	while (fgets(line, sizeof line, f)) {
		mlc_json_member m[32];
		const char *err;
		int col;
		int n = mlc_json_parse_line(line, strlen(line), m, 32, &err, &col);
		assert_true(n >= 0);
		if (strncmp(line, "{\"test\": {", 10) == 0) {
			tests++;
			assert_non_null(strstr(line, "\"acc\": "));
			continue;
		}
		assert_int_equal(epochs, tests == 0 ? epochs : -1); /* the test line comes last */
		epochs++;
		assert_true(member(m, n, "epoch") == epochs);
		assert_true(member(m, n, "loss") > 0);
		double acc = member(m, n, "acc");
		assert_true(acc >= 0 && acc <= 1);
		assert_true(member(m, n, "lr") > 0);
		assert_true(member(m, n, "time_s") >= 0);
	}
	fclose(f);
	assert_int_equal(epochs, 4);
	assert_int_equal(tests, 1);

	capture c;
	cap_begin(&c);
	assert_int_equal(mlc_plot(log, svg, NULL, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	f = fopen(svg, "r");
	assert_non_null(f);
	size_t n = fread(line, 1, sizeof line - 1, f);
	line[n] = 0;
	fclose(f);
	assert_non_null(strstr(line, "<svg "));
	assert_non_null(strstr(line, "<path")); /* cairo draws curves and glyphs as paths */

	f = fopen(bad, "w");
	fputs("{\"epoch\": 1, \"loss\": 0.5}\n\n{\"epoch\": 2, \"loss\": 0.4,}\n", f);
	fclose(f);
	assert_int_equal(mlc_plot(bad, svg, NULL, c.d), MLC_EUSER);
	char want[300];
	snprintf(want, sizeof want, "%s:3:26: error: expected a string", bad);
	if (!strstr(cap_text(&c), want))
		fail_msg("want '%s', got:\n%s", want, cap_text(&c));
	cap_end(&c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* The plot's reader: one series per (key, fold), the test record's members,
 * K-fold summaries skipped, undrawn keys (time_s) and nulls left out. */
static void test_plot_log(void **state)
{
	char path[] = "/tmp/mlc_plot_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("{\"fold\": 1, \"epoch\": 1, \"loss\": 0.6, \"val_top3\": 0.5, \"time_s\": 1}\n"
	      "{\"fold\": 1, \"epoch\": 2, \"loss\": null, \"val_top3\": 0.7, \"time_s\": 1}\n"
	      "{\"fold\": 1, \"train_samples\": 2, \"val_samples\": 2, \"epochs\": 2, \"val_loss\": 0.5}\n"
	      "{\"fold\": 2, \"epoch\": 1, \"loss\": 0.4, \"val_top3\": 0.6}\n"
	      "{\"kfold\": 2, \"val_loss_mean\": 0.5}\n"
	      "{\"test\": {\"loss\": 0.3, \"acc\": 0.9, \"confusion\": [[1]], \"file\": \"t.csv\"}}\n", f);
	fclose(f);
	capture c;
	cap_begin(&c);
	plot_log lg;
	assert_int_equal(mlc_plot_log_read(path, &lg, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(lg.nfolds, 2);
	assert_int_equal(lg.nepochs, 3);
	assert_int_equal(lg.ns, 4); /* loss and val_top3 of folds 1 and 2 */
	assert_string_equal(lg.s[0].key, "loss");
	assert_int_equal(lg.s[0].n, 1); /* the null is a gap */
	assert_string_equal(lg.s[1].key, "val_top3");
	assert_int_equal(lg.s[1].n, 2);
	assert_true(lg.s[1].x[1] == 2 && lg.s[1].y[1] == 0.7);
	assert_int_equal(lg.s[2].fold, 2);
	assert_int_equal(lg.ntest, 2);
	assert_string_equal(lg.test[0].key, "loss");
	assert_string_equal(lg.test[1].key, "acc");
	assert_true(lg.test[1].val == 0.9);
	mlc_plot_log_free(&lg);
	assert_int_equal(mlc_plot_panel_of("val_top12"), mlc_plot_panel_of("acc"));
	assert_int_equal(mlc_plot_panel_of("top"), -1);
	assert_int_equal(mlc_plot_panel_of("time_s"), -1);
	cap_end(&c);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_confusion),
		cmocka_unit_test(test_topk),
		cmocka_unit_test(test_perplexity),
		cmocka_unit_test(test_regression),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_malformed),
		cmocka_unit_test(test_metrics_key),
		cmocka_unit_test(test_log_and_plot),
		cmocka_unit_test(test_plot_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
