/* test_cifar.c — image data: the CIFAR-10 binary loader on generated files
 * (good ones and each kind of bad one), the data: pipeline of a spec
 * (cifar10 files, scale, per-channel normalize, IDX images as NHWC with one
 * channel), and the `mlc check` summary of the lecture's CIFAR CNN. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/runtime.h"
#include "runtime/session.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "capture.h"

enum { PLANE = 1024, PIXELS = 3 * PLANE, RECORD = 1 + PIXELS };

static char dir[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int make_dir(void **state)
{
	strcpy(dir, "/tmp/mlc_cifar_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tpath(char *buf, const char *name)
{
	snprintf(buf, 512, "%s/%s", dir, name);
	return buf;
}

static void write_file(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The pixel byte of record r (counted over all files) at plane c, position p. */
static unsigned char pixel(int r, int c, int p)
{
	return (unsigned char)(r * 7 + c * 101 + p * 13);
}

/* n records starting at global record `first`, labels (first + i) % 10. */
static unsigned char *make_records(int first, int n)
{
	unsigned char *b = malloc((size_t)n * RECORD);
	for (int i = 0; i < n; i++) {
		unsigned char *rec = b + (size_t)i * RECORD;
		rec[0] = (unsigned char)((first + i) % 10);
		for (int c = 0; c < 3; c++)
			for (int p = 0; p < PLANE; p++)
				rec[1 + c * PLANE + p] = pixel(first + i, c, p);
	}
	return b;
}

static void write_records(const char *path, int first, int n, bool gz)
{
	unsigned char *b = make_records(first, n);
	if (gz) {
		gzFile g = gzopen(path, "wb");
		assert_non_null(g);
		assert_int_equal(gzwrite(g, b, (unsigned)n * RECORD), n * RECORD);
		assert_int_equal(gzclose(g), Z_OK);
	} else {
		write_file(path, b, (size_t)n * RECORD);
	}
	free(b);
}

/* ---- diagnostics capture: tests/support/capture.h ---- */

/* ---- the loader ---- */

static void check_samples(const mlc_dataset *ds, int n)
{
	assert_int_equal(ds->n, n);
	assert_int_equal(ds->dim, PIXELS);
	assert_int_equal(ds->ydim, 1);
	for (int r = 0; r < n; r++) {
		assert_true(ds->y[r] == (float)(r % 10));
		/* NHWC: pixel (h, w) channel c at (h·32 + w)·3 + c */
		for (int p = 0; p < PLANE; p += 37)
			for (int c = 0; c < 3; c++)
				assert_true(ds->xb[(size_t)r * PIXELS + 3 * p + c] == pixel(r, c, p));
	}
}

static void test_cifar_files(void **state)
{
	char a[512], b[512], c[512];
	write_records(tpath(a, "data_batch_1.bin"), 0, 3, false);
	write_records(tpath(b, "data_batch_2.bin.gz"), 3, 2, true);
	write_records(tpath(c, "data_batch_3.bin"), 5, 2000, false); /* spans read chunks */
	const char *paths[] = {a, b, c};
	capture cap;
	cap_begin(&cap);
	mlc_dataset ds;
	assert_int_equal(mlc_load_cifar(paths, 3, &ds, cap.d), MLC_OK);
	assert_string_equal(cap_text(&cap), "");
	check_samples(&ds, 2005);
	assert_int_equal(ds.nclasses, 10);
	/* the corner pixels, exactly */
	assert_null(ds.x); /* kept as bytes: converted as a batch is gathered */
	assert_true(ds.xb[0] == pixel(0, 0, 0));
	assert_true(ds.xb[PIXELS - 1] == pixel(0, 2, PLANE - 1));
	assert_true(ds.xb[3 * 33 + 1] == pixel(0, 1, 33)); /* row 1, column 1, green */
	mlc_dataset_free(&ds);
	cap_end(&cap);

	/* one file, classes 0..2 only */
	cap_begin(&cap);
	assert_int_equal(mlc_load_cifar(paths, 1, &ds, cap.d), MLC_OK);
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.nclasses, 3);
	mlc_dataset_free(&ds);
	cap_end(&cap);
}

/* A bad file: one error, naming it and saying what is wrong; nothing leaks
 * and the data set is left empty. */
static void expect_error(const char *what, const char *const *paths, int n, mlc_status want,
			 const char *file, const char *needle)
{
	capture cap;
	cap_begin(&cap);
	mlc_dataset ds;
	mlc_status st = mlc_load_cifar(paths, n, &ds, cap.d);
	const char *out = cap_text(&cap);
	if (st != want || !strstr(out, file) || !strstr(out, needle) || count_of(out, "error:") != 1)
		fail_msg("%s: status %d, expected one error with '%s', got:\n%s", what, st, needle, out);
	char head[600];
	snprintf(head, sizeof head, "%s: error: ", file);
	if (strncmp(out, head, strlen(head)) != 0)
		fail_msg("%s: the error does not start with '%s':\n%s", what, head, out);
	assert_int_equal(ds.n, 0);
	assert_null(ds.x);
	assert_null(ds.y);
	cap_end(&cap);
}

static void test_cifar_errors(void **state)
{
	char good[512], p[512];
	write_records(tpath(good, "good.bin"), 0, 2, false);

	/* not a whole number of records */
	unsigned char *b = make_records(0, 3);
	write_file(tpath(p, "short.bin"), b, 2 * RECORD + 5);
	const char *one[] = {p};
	expect_error("partial record", one, 1, MLC_EUSER, p,
		     "has 6151 bytes, which is not a whole number of 3073-byte CIFAR-10 records");
	/* CIFAR-100's records are one byte longer */
	unsigned char *big = malloc(1100 * 3074);
	memset(big, 1, 1100 * 3074);
	write_file(p, big, 1100 * 3074);
	expect_error("cifar-100", one, 1, MLC_EUSER, p, "has 3381400 bytes, which is not a whole number");
	free(big);

	/* empty */
	write_file(tpath(p, "empty.bin"), "", 0);
	expect_error("empty", one, 1, MLC_EUSER, p, "is empty");

	/* a label out of range, in the second record */
	b[RECORD] = 10;
	write_file(tpath(p, "label.bin"), b, 3 * RECORD);
	expect_error("label", one, 1, MLC_EUSER, p, "record 2 has label 10; CIFAR-10 labels are 0 to 9");
	b[RECORD] = 255;
	write_file(p, b, 3 * RECORD);
	expect_error("label 255", one, 1, MLC_EUSER, p, "record 2 has label 255");
	free(b);

	/* unreadable */
	tpath(p, "missing.bin");
	expect_error("missing", one, 1, MLC_EIO, p, "cannot read: No such file or directory");
	expect_error("directory", (const char *[]){dir}, 1, MLC_EIO, dir, "cannot read: Is a directory");
	static const unsigned char corrupt[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff};
	write_file(tpath(p, "corrupt.bin.gz"), corrupt, sizeof corrupt);
	expect_error("corrupt gzip", one, 1, MLC_EUSER, p, "corrupt gzip data");

	/* the second of two files is bad: its name, and nothing kept of the first */
	write_file(tpath(p, "second.bin"), "xyz", 3);
	const char *two[] = {good, p};
	expect_error("second file", two, 2, MLC_EUSER, p, "has 3 bytes");
}

/* ---- the data: section through a session ---- */

static mlc_session *open_spec(const char *name, const char *text, capture *cap)
{
	char path[512];
	FILE *f = fopen(tpath(path, name), "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	mlc_options o = {0};
	mlc_session *s = NULL;
	mlc_status st = mlc_session_open(path, &o, cap->d, &s);
	if (st != MLC_OK)
		fail_msg("%s: %s", name, cap_text(cap));
	return s;
}

/* The input values of data's first n samples as mlc_batch_fill gathers
 * them (scaled, normalized) into the session's input buffer. */
static const float *gathered(mlc_session *s, const mlc_data *data, int64_t n)
{
	if (!s->act)
		s->act = aligned_alloc(64, sizeof(float) * (size_t)(s->graph->act_size + 16));
	int64_t idx[64];
	assert_true(n <= 64 && n <= s->batch);
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	mlc_batch_fill(s, data, idx, n);
	return s->act + s->x->offset;
}

static void test_cifar_spec(void **state)
{
	char p[512];
	write_records(tpath(p, "b1.bin"), 0, 3, false);
	write_records(tpath(p, "b2.bin"), 3, 4, false);
	write_records(tpath(p, "t.bin"), 0, 2, false);
	capture cap;
	cap_begin(&cap);
	mlc_session *s = open_spec("cifar.yaml",
				   "inputs: {x: {shape: [32, 32, 3]}}\n"
				   "layers: [{conv2d: 2, kernel: 32}, flatten, {dense: 10}]\n"
				   "loss: softmax_cross_entropy\n"
				   "data:\n"
				   "  format: cifar10\n"
				   "  train: [b1.bin, b2.bin]\n"
				   "  test: t.bin\n"
				   "  scale: 0.5\n"
				   "  normalize: {mean: [1, 2, 3], std: [2, 4, 8]}\n",
				   &cap);
	mlc_data data;
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_OK);
	assert_int_equal(data.ds.n, 7);
	static const double mean[] = {1, 2, 3}, sd[] = {2, 4, 8};
	const float *x = gathered(s, &data, 7);
	for (int r = 0; r < 7; r++) {
		assert_true(data.ds.y[r] == (float)(r % 10));
		for (int p = 0; p < PLANE; p += 51)
			for (int c = 0; c < 3; c++) {
				float want = (float)((pixel(r, c, p) * 0.5 - mean[c]) / sd[c]);
				assert_float_equal(x[(size_t)r * PIXELS + 3 * p + c], want, 1e-6);
			}
	}
	mlc_data_free(&data);
	assert_int_equal(mlc_data_load(s, true, &data, cap.d), MLC_OK);
	assert_int_equal(data.ds.n, 2);
	mlc_data_free(&data);
	assert_string_equal(cap_text(&cap), "");
	mlc_session_close(s);
	cap_end(&cap);

	/* CIFAR images for a model that reads something else: named, and freed */
	cap_begin(&cap);
	s = open_spec("wrong.yaml",
		      "inputs: {x: {shape: [28, 28, 1]}}\n"
		      "layers: [flatten, {dense: 10}]\n"
		      "loss: softmax_cross_entropy\n"
		      "data: {format: cifar10, train: b1.bin}\n",
		      &cap);
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_EUSER);
	assert_non_null(strstr(cap_text(&cap), "b1.bin: error: samples have 3072 features, but input 'x' is "
						"f32[N,28,28,1] (784 per sample)"));
	mlc_session_close(s);
	cap_end(&cap);
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* IDX images are row-major, which is NHWC with one channel: an input
 * declared [H, W, 1] takes them as they are. */
static void test_idx_images_nhwc(void **state)
{
	unsigned char img[16 + 2 * 4 * 3], lab[8 + 2] = {0, 0, 8, 1};
	memset(img, 0, 16);
	img[2] = 8, img[3] = 3;
	put_be32(img + 4, 2), put_be32(img + 8, 4), put_be32(img + 12, 3);
	for (int i = 0; i < 24; i++)
		img[16 + i] = (unsigned char)(10 * i);
	put_be32(lab + 4, 2);
	lab[8] = 1, lab[9] = 0;
	char p[512];
	write_file(tpath(p, "img.idx"), img, sizeof img);
	write_file(tpath(p, "lab.idx"), lab, sizeof lab);
	capture cap;
	cap_begin(&cap);
	mlc_session *s = open_spec("idx.yaml",
				   "inputs: {x: {shape: [4, 3, 1]}}\n"
				   "layers: [{conv2d: 2, kernel: 2}, flatten, {dense: 2}]\n"
				   "loss: softmax_cross_entropy\n"
				   "data:\n"
				   "  train: {images: img.idx, labels: lab.idx}\n"
				   "  normalize: {mean: [5], std: [10]}\n",
				   &cap);
	mlc_data data;
	assert_int_equal(mlc_data_load(s, false, &data, cap.d), MLC_OK);
	assert_int_equal(data.ds.n, 2);
	assert_int_equal(data.ds.dim, 12);
	const float *x = gathered(s, &data, 2);
	for (int i = 0; i < 24; i++) /* sample i / 12, row (i % 12) / 3, column i % 3 */
		assert_float_equal(x[i], (10 * i - 5) / 10.0, 1e-6);
	mlc_data_free(&data);
	mlc_session_close(s);
	cap_end(&cap);
}

/* The lecture's CNN: shapes and parameter counts per layer, as Keras prints them. */
static void test_cifar_cnn_summary(void **state)
{
	capture cap;
	cap_begin(&cap);
	mlc_session *s = open_spec("cnn.yaml",
				   "inputs: {x: {shape: [32, 32, 3]}}\n"
				   "layers:\n"
				   "  - {conv2d: 32, kernel: 3, activation: relu}\n"
				   "  - maxpool: 2\n"
				   "  - {conv2d: 64, kernel: 3, activation: relu}\n"
				   "  - maxpool: 2\n"
				   "  - {conv2d: 64, kernel: 3, activation: relu}\n"
				   "  - flatten\n"
				   "  - {dense: 64, activation: relu}\n"
				   "  - dense: 10\n"
				   "loss: softmax_cross_entropy\n",
				   &cap);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	mlc_session_summary(s, f);
	fclose(f);
	static const char *const rows[][3] = {
		{"conv2d1", "30x30x32", "896"},	 {"maxpool1", "15x15x32", "0"}, {"conv2d2", "13x13x64", "18,496"},
		{"maxpool2", "6x6x64", "0"},	 {"conv2d3", "4x4x64", "36,928"}, {"flatten1", "1024", "0"},
		{"dense1", "64", "65,600"},	 {"dense2", "10", "650"},
	};
	for (size_t i = 0; i < MLC_COUNTOF(rows); i++) {
		const char *line = strstr(out, rows[i][0]);
		assert_non_null(line);
		char layer[32], shape[32], params[32];
		/* layer, ops (with ", "), shape, params: the shape and count are the last two words */
		const char *eol = strchr(line, '\n');
		char buf[256];
		snprintf(buf, sizeof buf, "%.*s", (int)(eol - line), line);
		char *last = strrchr(buf, ' ');
		strcpy(params, last + 1);
		while (last > buf && last[-1] == ' ')
			last--;
		*last = 0;
		strcpy(shape, strrchr(buf, ' ') + 1);
		sscanf(buf, "%31s", layer);
		assert_string_equal(layer, rows[i][0]);
		assert_string_equal(shape, rows[i][1]);
		assert_string_equal(params, rows[i][2]);
	}
	assert_non_null(strstr(out, "Total params: 122,570\n"));
	assert_non_null(strstr(out, "Trainable params: 122,570\n"));
	assert_non_null(strstr(out, "Non-trainable params: 0\n"));
	/* the planned peak: both arenas (weights, biases and their velocities: 0.98 MB) */
	assert_non_null(strstr(out, "Planned memory (batch 32): activations "));
	assert_non_null(strstr(out, " MB, parameters 1.0 MB, total "));
	free(out);
	mlc_session_close(s);
	cap_end(&cap);

	/* batchnorm's running statistics count as non-trainable, as in Keras */
	cap_begin(&cap);
	s = open_spec("bn.yaml",
		      "inputs: {x: {shape: [8, 8, 3]}}\n"
		      "layers: [{conv2d: 16, bias: false}, batchnorm, global_avgpool, {dense: 10}]\n"
		      "loss: softmax_cross_entropy\n",
		      &cap);
	out = NULL;
	f = open_memstream(&out, &len);
	mlc_session_summary(s, f);
	fclose(f);
	assert_non_null(strstr(out, "Total params: 666\n"));      /* 432 + 64 + 170 */
	assert_non_null(strstr(out, "Trainable params: 634\n"));
	assert_non_null(strstr(out, "Non-trainable params: 32\n"));
	free(out);
	mlc_session_close(s);
	cap_end(&cap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cifar_files),
		cmocka_unit_test(test_cifar_errors),
		cmocka_unit_test(test_cifar_spec),
		cmocka_unit_test(test_idx_images_nhwc),
		cmocka_unit_test(test_cifar_cnn_summary),
	};
	return cmocka_run_group_tests_name("cifar", tests, make_dir, remove_dir);
}
