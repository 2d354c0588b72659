/* test_runtime_io.c — IDX, CSV and safetensors I/O, and the PRNG. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/runtime.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "capture.h"

static char dir[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int make_dir(void **state)
{
	strcpy(dir, "/tmp/mlc_rt_XXXXXX");
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

static void write_gz(const char *path, const void *bytes, size_t len)
{
	gzFile gz = gzopen(path, "wb");
	assert_non_null(gz);
	assert_int_equal(gzwrite(gz, bytes, (unsigned)len), (int)len);
	assert_int_equal(gzclose(gz), Z_OK);
}

/* ---- diagnostics capture: tests/support/capture.h ---- */

/* A failure must be reported once, naming the file and saying what is wrong. */
static void check_error(const char *what, mlc_status st, capture *c, const char *file, const char *needle)
{
	const char *out = cap_text(c);
	if (st == MLC_OK || !strstr(out, file) || !strstr(out, needle) || count_of(out, "error:") != 1)
		fail_msg("%s: status %d, expected one error with '%s', got:\n%s", what, st, needle, out);
}

/* ---- IDX ---- */

static size_t make_idx(unsigned char *buf, int type, int rank, const uint32_t *dims,
		       const unsigned char *data, size_t n)
{
	unsigned char *p = buf;
	*p++ = 0;
	*p++ = 0;
	*p++ = (unsigned char)type;
	*p++ = (unsigned char)rank;
	for (int i = 0; i < rank; i++) {
		*p++ = (unsigned char)(dims[i] >> 24);
		*p++ = (unsigned char)(dims[i] >> 16);
		*p++ = (unsigned char)(dims[i] >> 8);
		*p++ = (unsigned char)dims[i];
	}
	if (n)
		memcpy(p, data, n);
	return (size_t)(p - buf) + n;
}

static const unsigned char pixels[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 254, 255};
static const unsigned char labels3[3] = {0, 2, 1};

static void write_idx_pair(const char *img, const char *lbl, bool gz)
{
	unsigned char buf[64];
	uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
	size_t n = make_idx(buf, 0x08, 3, idims, pixels, sizeof pixels);
	(gz ? write_gz : write_file)(img, buf, n);
	n = make_idx(buf, 0x08, 1, ldims, labels3, sizeof labels3);
	(gz ? write_gz : write_file)(lbl, buf, n);
}

static void check_idx_ok(bool gz)
{
	char img[512], lbl[512];
	tpath(img, gz ? "ok-images.gz" : "ok-images.idx");
	tpath(lbl, gz ? "ok-labels.gz" : "ok-labels.idx");
	write_idx_pair(img, lbl, gz);
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	assert_int_equal(mlc_load_idx(img, lbl, &ds, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.dim, 4);
	assert_int_equal(ds.ydim, 1);
	assert_int_equal(ds.nclasses, 3);
	assert_null(ds.x); /* kept as the file's bytes */
	for (int i = 0; i < 12; i++)
		assert_true(ds.xb[i] == pixels[i] && mlc_dataset_x(&ds, i) == pixels[i]);
	for (int i = 0; i < 3; i++)
		assert_true(ds.y[i] == labels3[i]);
	mlc_dataset_free(&ds);
	cap_end(&c);
}

static void test_idx_raw(void **state)
{
	check_idx_ok(false);
}

static void test_idx_gzip(void **state)
{
	check_idx_ok(true);
}

/* Writes `bytes` as the images file (with good labels) and expects an error. */
static void idx_case(const char *name, const void *bytes, size_t len, bool gz, const char *needle)
{
	char img[512], lbl[512], spare[512];
	tpath(img, name);
	tpath(lbl, "case-labels.idx");
	write_idx_pair(tpath(spare, "spare-images"), lbl, false);
	(gz ? write_gz : write_file)(img, bytes, len);
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	mlc_status st = mlc_load_idx(img, lbl, &ds, c.d);
	check_error(name, st, &c, img, needle);
	assert_null(ds.x);
	cap_end(&c);
}

static void test_idx_bad_images(void **state)
{
	unsigned char buf[128];
	uint32_t dims[4] = {3, 2, 2};
	size_t n = make_idx(buf, 0x08, 3, dims, pixels, sizeof pixels);

	idx_case("zip.idx", "PK\3\4 not idx", 13, false, "not an IDX file (bad magic 50 4b 03 04");
	idx_case("zip.idx.gz", "PK\3\4 not idx", 13, true, "bad magic 50 4b 03 04 after decompression");
	idx_case("empty.idx", "", 0, false, "not an IDX file (empty)");
	idx_case("two-bytes.idx", "\0\0", 2, false, "bad magic 00 00;");
	idx_case("short.idx", buf, n - 2, false, "truncated: expected 12 bytes of data, found 10");
	idx_case("short.idx.gz", buf, n - 2, true, "truncated: expected 12 bytes of data, found 10");
	idx_case("hdr-cut.idx", buf, 9, false, "truncated: header declares 3 dimensions");
	buf[n] = 7;
	idx_case("trailing.idx", buf, n + 1, false, "trailing data: 1 byte more than the 12 the header declares");

	uint32_t huge[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
	n = make_idx(buf, 0x08, 4, huge, pixels, 4);
	idx_case("overflow.idx", buf, n, false, "product overflows");
	/* Large but within the limit: must fail on the data, not try to allocate it. */
	uint32_t big[3] = {60000, 280, 28};
	n = make_idx(buf, 0x08, 3, big, pixels, sizeof pixels);
	idx_case("big.idx", buf, n, false, "expected 470400000 bytes of data, found 12");
	/* Past MLC_MAX_IDX_VALUES: refused on the header alone. */
	uint32_t past[3] = {60000, 60000, 60000};
	n = make_idx(buf, 0x08, 3, past, pixels, sizeof pixels);
	idx_case("huge.idx", buf, n, false, "dimensions declare 216000000000000 items; an IDX file may hold at most 4294967296");

	n = make_idx(buf, 0x0D, 3, dims, pixels, sizeof pixels);
	idx_case("float.idx", buf, n, false, "unsupported IDX element type 0x0d");
	n = make_idx(buf, 0x08, 0, dims, NULL, 0);
	idx_case("rank0.idx", buf, n, false, "IDX rank 0 is not supported");
	uint32_t five[5] = {1, 1, 1, 1, 1};
	n = make_idx(buf, 0x08, 5, five, pixels, 1);
	idx_case("rank5.idx", buf, n, false, "IDX rank 5 is not supported");
	uint32_t none[3] = {0, 28, 28};
	n = make_idx(buf, 0x08, 3, none, NULL, 0);
	idx_case("no-images.idx", buf, n, false, "contains no images");
}

/* zlib's gzread dropped bytes after a gzip stream unless they were another
 * gzip header: they are an error now, as after a raw IDX file; a second
 * member is data (RFC 1952), joined to the first as gzip -d does. */
static void test_idx_gzip_members(void **state)
{
	char path[512], half[512];
	unsigned char buf[64], both[256];
	uint32_t dims[3] = {3, 2, 2};
	size_t n = make_idx(buf, 0x08, 3, dims, pixels, sizeof pixels), len[2];
	unsigned char *part[2];
	for (int i = 0; i < 2; i++) {
		write_gz(tpath(half, i ? "half2.gz" : "half1.gz"), buf + (i ? 10 : 0), i ? n - 10 : 10);
		part[i] = (unsigned char *)mlc_read_file(half, &len[i]);
		assert_non_null(part[i]);
	}
	assert_true(len[0] + len[1] + 8 <= sizeof both);
	memcpy(both, part[0], len[0]);
	memcpy(both + len[0], part[1], len[1]);

	char lbl[512], spare[512];
	tpath(lbl, "members-labels.idx");
	write_idx_pair(tpath(spare, "members-spare"), lbl, false);
	write_file(tpath(path, "members.gz"), both, len[0] + len[1]);
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	assert_int_equal(mlc_load_idx(path, lbl, &ds, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(ds.n, 3);
	for (int i = 0; i < 12; i++)
		assert_true(ds.xb[i] == pixels[i]);
	mlc_dataset_free(&ds);
	cap_end(&c);

	char needle[160];
	write_gz(tpath(half, "whole.gz"), buf, n);
	free(part[0]);
	part[0] = (unsigned char *)mlc_read_file(half, &len[0]);
	memcpy(both, part[0], len[0]);
	memcpy(both + len[0], "junk", 4);
	snprintf(needle, sizeof needle, "trailing data: bytes after the gzip stream, which ends at byte %zu of "
		 "the file, are not another gzip member", len[0]);
	idx_case("junk-after.gz", both, len[0] + 4, false, needle);
	both[len[0]] = 0x1f; /* half a magic number */
	idx_case("one-byte-after.gz", both, len[0] + 1, false, needle);
	both[len[0]] = 0;
	idx_case("zero-after.gz", both, len[0] + 1, false, needle);
	/* all the data, but not the trailer's CRC and length */
	idx_case("no-trailer.gz", both, len[0] - 8, false, "truncated: the gzip stream ends early");
	free(part[0]);
	free(part[1]);
}

static void test_idx_gzip_corrupt(void **state)
{
	char path[512];
	unsigned char buf[64];
	uint32_t dims[3] = {3, 2, 2};
	size_t n = make_idx(buf, 0x08, 3, dims, pixels, sizeof pixels);
	write_gz(tpath(path, "corrupt.gz"), buf, n);
	size_t len;
	unsigned char *gz = (unsigned char *)mlc_read_file(path, &len);
	assert_non_null(gz);

	gz[len - 6] ^= 0xff; /* the CRC in the trailer */
	idx_case("bad-crc.gz", gz, len, false, "corrupt gzip data");
	gz[len - 6] ^= 0xff;
	idx_case("cut.gz", gz, len - 12, false, "truncated");
	free(gz);
}

static void test_idx_bad_files(void **state)
{
	char img[512], lbl[512], other[512];
	tpath(img, "f-images.idx");
	tpath(lbl, "f-labels.idx");
	write_idx_pair(img, lbl, false);
	struct {
		const char *images, *labels, *named, *needle;
	} cases[] = {
		{tpath(other, "missing.idx"), lbl, other, "cannot read: No such file or directory"},
		{dir, lbl, dir, "cannot read: Is a directory"},
		{img, dir, dir, "cannot read: Is a directory"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		capture c;
		cap_begin(&c);
		mlc_dataset ds;
		mlc_status st = mlc_load_idx(cases[i].images, cases[i].labels, &ds, c.d);
		check_error(cases[i].needle, st, &c, cases[i].named, cases[i].needle);
		assert_int_equal(st, MLC_EIO);
		cap_end(&c);
	}
}

static void test_idx_bad_labels(void **state)
{
	char img[512], lbl[512];
	tpath(img, "l-images.idx");
	tpath(lbl, "l-labels.idx");
	write_idx_pair(img, lbl, false);
	unsigned char buf[64], four[4] = {1, 2, 3, 4};
	uint32_t d4[1] = {4}, d22[2] = {2, 2};
	struct {
		uint32_t *dims;
		int rank;
		const char *needle;
	} cases[] = {
		{d4, 1, "has 4 labels but "},
		{d22, 2, "a label file must be 1-D, but this one has 2 dimensions"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_file(lbl, buf, make_idx(buf, 0x08, cases[i].rank, cases[i].dims, four, 4));
		capture c;
		cap_begin(&c);
		mlc_dataset ds;
		mlc_status st = mlc_load_idx(img, lbl, &ds, c.d);
		check_error(cases[i].needle, st, &c, lbl, cases[i].needle);
		if (i == 0) /* a count mismatch names both files */
			check_error("count", st, &c, img, "has 3 images");
		cap_end(&c);
	}
}

static void test_idx_fashion_mnist(void **state)
{
	const char *img = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
	const char *lbl = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
	if (access(img, R_OK) != 0 || access(lbl, R_OK) != 0)
		skip();
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	assert_int_equal(mlc_load_idx(img, lbl, &ds, c.d), MLC_OK);
	assert_int_equal(ds.n, 10000);
	assert_int_equal(ds.dim, 784);
	assert_int_equal(ds.nclasses, 10);
	mlc_dataset_free(&ds);
	cap_end(&c);
}

/* ---- CSV ---- */

static mlc_status load_csv_text(const char *name, const char *text, int labels, mlc_dataset *ds, capture *c,
				char *path)
{
	write_file(tpath(path, name), text, strlen(text));
	return mlc_load_csv(path, labels, MLC_HEADER_AUTO, ds, c->d);
}

static void test_csv_good(void **state)
{
	char path[512];
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	const char *text = "\xEF\xBB\xBF" "a, b ,label\r\n 1, 2.5 ,0\r\n-3,4e1,\t1 \r\n5,6,2\r\n\r\n\n";
	assert_int_equal(load_csv_text("good.csv", text, 1, &ds, &c, path), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.dim, 2);
	assert_int_equal(ds.ydim, 1);
	assert_int_equal(ds.nclasses, 3);
	const float x[] = {1, 2.5f, -3, 40, 5, 6}, y[] = {0, 1, 2};
	assert_memory_equal(ds.x, x, sizeof x);
	assert_memory_equal(ds.y, y, sizeof y);
	mlc_dataset_free(&ds);

	/* No header, two target columns: not class labels. */
	assert_int_equal(load_csv_text("two.csv", "1,2,3\n4,5,6", 2, &ds, &c, path), MLC_OK);
	assert_int_equal(ds.n, 2);
	assert_int_equal(ds.dim, 1);
	assert_int_equal(ds.ydim, 2);
	assert_int_equal(ds.nclasses, 0);
	assert_true(ds.y[3] == 6 && ds.x[1] == 4);
	mlc_dataset_free(&ds);

	/* A fractional or negative target means regression. */
	assert_int_equal(load_csv_text("reg.csv", "1,0.5\n2,3\n", 1, &ds, &c, path), MLC_OK);
	assert_int_equal(ds.nclasses, 0);
	mlc_dataset_free(&ds);
	assert_int_equal(load_csv_text("neg.csv", "1,-1\n2,3\n", 1, &ds, &c, path), MLC_OK);
	assert_int_equal(ds.nclasses, 0);
	mlc_dataset_free(&ds);

	/* No label columns (an autoencoder's data): every cell is a feature. */
	assert_int_equal(load_csv_text("nolabels.csv", "1,2\n3,4\n", 0, &ds, &c, path), MLC_OK);
	assert_int_equal(ds.dim, 2);
	assert_int_equal(ds.ydim, 0);
	assert_int_equal(ds.nclasses, 0);
	assert_true(ds.x[3] == 4);
	mlc_dataset_free(&ds);
	cap_end(&c);
}

/* data.header: a first row with a typo among numbers (O.3 for 0.3) was
 * taken as a header and silently dropped; now auto asks, and true/false
 * decide. */
static void test_csv_header(void **state)
{
	char path[512];
	capture c;
	mlc_dataset ds;
	const char *typo = "0.5,O.3,1\n0.1,0.2,0\n0.3,0.4,1\n";
	cap_begin(&c);
	mlc_status st = load_csv_text("typo.csv", typo, 1, &ds, &c, path);
	check_error("typo.csv", st, &c, path, ":1:1: error: the first row has both numbers ('0.5') and text: give "
		    "'header: true' if it names the columns, 'header: false' if it is data (then fix its text cells)");
	assert_null(ds.x);
	cap_end(&c);
	/* a header with a number for a name: header: true takes it */
	cap_begin(&c);
	assert_int_equal(mlc_load_csv(path, 1, MLC_HEADER_YES, &ds, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(ds.n, 2);
	assert_true(ds.x[0] == 0.1f);
	mlc_dataset_free(&ds);
	cap_end(&c);
	/* header: false: the typo is reported where it is */
	cap_begin(&c);
	st = mlc_load_csv(path, 1, MLC_HEADER_NO, &ds, c.d);
	check_error("typo.csv false", st, &c, path, ":1:5: error:");
	cap_end(&c);
	/* header: true on a file without one drops its first row, as told */
	write_file(path, "1,2,0\n3,4,1\n", 12);
	cap_begin(&c);
	assert_int_equal(mlc_load_csv(path, 1, MLC_HEADER_YES, &ds, c.d), MLC_OK);
	assert_int_equal(ds.n, 1);
	assert_true(ds.x[0] == 3);
	mlc_dataset_free(&ds);
	cap_end(&c);
	/* auto: an all-text row is a header, an all-number row data */
	cap_begin(&c);
	assert_int_equal(load_csv_text("named.csv", "a,b,y\n1,2,0\n", 1, &ds, &c, path), MLC_OK);
	assert_int_equal(ds.n, 1);
	mlc_dataset_free(&ds);
	cap_end(&c);
}

static void csv_case(const char *name, const char *text, int labels, const char *needle)
{
	char path[512], want[600];
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	mlc_status st = load_csv_text(name, text, labels, &ds, &c, path);
	snprintf(want, sizeof want, "%s%s", path, needle);
	check_error(name, st, &c, path, want);
	assert_int_equal(st, MLC_EUSER);
	assert_null(ds.x);
	cap_end(&c);
}

static void test_csv_errors(void **state)
{
	csv_case("ragged.csv", "x,y,z\n1,2,3\n7,8\n", 1,
		 ":3:4: error: row has 2 cells, expected 3\n  7,8\n     ^\n");
	csv_case("wide.csv", "1,2\r\n3,4,5\r\n", 1, ":2:5: error: row has 3 cells, expected 2");
	csv_case("text.csv", "a,b\n1,2\n3, oops\n", 1,
		 ":3:4: error: cell 'oops' is not a number\n  3, oops\n     ^");
	csv_case("empty-cell.csv", "1,2,3\n4,,6\n", 1, ":2:3: error: empty cell");
	csv_case("nan.csv", "1,nan\n", 1, ":1:3: error: cell 'nan' is not a finite number");
	csv_case("inf.csv", "1,2\n-Infinity,2\n", 1, ":2:1: error: cell '-Infinity' is not a finite number");
	csv_case("hex.csv", "1,2\n0x10,2\n", 1, ":2:1: error: cell '0x10' is not a number");
	csv_case("huge.csv", "1,2\n1e39,2\n", 1, ":2:1: error: cell '1e39' is out of range for f32");
	csv_case("trailing-e.csv", "1,2\n1e,2\n", 1, ":2:1: error: cell '1e' is not a number");
	csv_case("gap.csv", "1,2\n\n3,4\n", 1, ":2:1: error: empty line between rows");
	csv_case("no-features.csv", "1,2\n", 2,
		 ":1:1: error: rows have 2 cells, so 2 label columns leave no features");
	csv_case("labels-1.csv", "1,2\n", -1, ": error: label columns must be at least 0, got -1");
	csv_case("empty.csv", "", 1, ": error: no data rows");
	csv_case("header-only.csv", "a,b\r\n\r\n", 1, ": error: no data rows");
	csv_case("two-headers.csv", "a,b\nc,d\n", 1, ":2:1: error: cell 'c' is not a number");
}

static void test_csv_nul_cell(void **state)
{
	/* strlen() in csv_case would stop at the NUL; write the bytes directly. */
	char path[512];
	const char text[] = "1,2\n3,4\0\n";
	write_file(tpath(path, "nul-bytes.csv"), text, sizeof text - 1);
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	mlc_status st = mlc_load_csv(path, 1, MLC_HEADER_AUTO, &ds, c.d);
	check_error("nul", st, &c, path, ":2:3: error: cell '4");
	cap_end(&c);
}

static void test_csv_missing(void **state)
{
	char path[512];
	capture c;
	cap_begin(&c);
	mlc_dataset ds;
	mlc_status st = mlc_load_csv(tpath(path, "nope.csv"), 1, MLC_HEADER_AUTO, &ds, c.d);
	check_error("missing", st, &c, path, "cannot read: No such file or directory");
	assert_int_equal(st, MLC_EIO);
	st = mlc_load_csv(dir, 1, MLC_HEADER_AUTO, &ds, c.d);
	assert_int_equal(st, MLC_EIO);
	assert_non_null(strstr(cap_text(&c), "Is a directory"));
	cap_end(&c);
}

/* ---- safetensors ---- */

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static void test_st_round_trip(void **state)
{
	char path[512];
	tpath(path, "model.safetensors");
	float a[6] = {1, -2.5f, 0x1p-149f, -0.0f, INFINITY, from_bits(0x7fc01234)};
	float b[1] = {42}, c0[1] = {0};
	mlc_tensor t[] = {
		{"layer.0/w \"q\"\\\n\xc3\xa9", 2, {2, 3}, a},
		{"scalar", 0, {0}, b},
		{"empty", 3, {4, 0, 2}, c0},
	};
	const char *meta[] = {"format", "pt", "note", "a \"quoted\"\tvalue", NULL};
	capture c;
	cap_begin(&c);
	assert_int_equal(mlc_safetensors_write(path, t, 3, meta, c.d), MLC_OK);
	size_t len;
	unsigned char *raw = (unsigned char *)mlc_read_file(path, &len);
	assert_non_null(raw);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | raw[i];
	assert_int_equal(hlen % 8, 0);
	assert_int_equal(len, 8 + hlen + 7 * 4);
	free(raw);

	mlc_tensor *r;
	int n;
	assert_int_equal(mlc_safetensors_read(path, &r, &n, c.d), MLC_OK);
	assert_string_equal(cap_text(&c), "");
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(r[i].name, t[i].name);
		assert_int_equal(r[i].rank, t[i].rank);
		assert_memory_equal(r[i].dim, t[i].dim, sizeof(int64_t) * (size_t)t[i].rank);
	}
	assert_memory_equal(r[0].data, a, sizeof a);
	assert_memory_equal(r[1].data, b, sizeof b);
	mlc_tensors_free(r, n);

	/* Overwriting replaces the file and leaves no temporary behind. */
	assert_int_equal(mlc_safetensors_write(path, t + 1, 1, NULL, c.d), MLC_OK);
	assert_int_equal(mlc_safetensors_read(path, &r, &n, c.d), MLC_OK);
	assert_int_equal(n, 1);
	assert_string_equal(r[0].name, "scalar");
	mlc_tensors_free(r, n);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	assert_int_not_equal(access(tmp, F_OK), 0);

	/* No tensors at all is a valid (if useless) file. */
	assert_int_equal(mlc_safetensors_write(path, NULL, 0, NULL, c.d), MLC_OK);
	assert_int_equal(mlc_safetensors_read(path, &r, &n, c.d), MLC_OK);
	assert_int_equal(n, 0);
	mlc_tensors_free(r, n);
	assert_string_equal(cap_text(&c), "");
	cap_end(&c);
}

static void test_st_write_errors(void **state)
{
	char path[512], sub[512], keep[600];
	float v[1] = {1};
	mlc_tensor t = {"w", 1, {1}, v};
	capture c;
	cap_begin(&c);
	mlc_status st = mlc_safetensors_write(tpath(path, "no/such/dir/w.safetensors"), &t, 1, NULL, c.d);
	check_error("no dir", st, &c, path, "cannot write: No such file or directory");
	assert_int_equal(st, MLC_EIO);
	cap_end(&c);

	/* The target is a directory: refused before any temp file is made
	 * (only a regular file is replaced), the directory and its contents
	 * survive. */
	tpath(sub, "target.safetensors");
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(keep, sizeof keep, "%s/keep", sub);
	write_file(keep, "x", 1);
	cap_begin(&c);
	st = mlc_safetensors_write(sub, &t, 1, NULL, c.d);
	check_error("dir target", st, &c, sub, "cannot write: is a directory; only a regular file is replaced");
	assert_int_equal(access(keep, F_OK), 0);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sub, (long)getpid());
	assert_int_not_equal(access(tmp, F_OK), 0);
	cap_end(&c);
}

/* Writes an 8-byte length, `json`, and `data_len` bytes of data. */
static void st_case(const char *name, const char *json, size_t data_len, const char *needle)
{
	char path[512];
	tpath(path, name);
	size_t hlen = strlen(json);
	unsigned char *buf = calloc(1, 8 + hlen + data_len);
	assert_non_null(buf);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)hlen >> 8 * i);
	memcpy(buf + 8, json, hlen);
	write_file(path, buf, 8 + hlen + data_len);
	free(buf);
	capture c;
	cap_begin(&c);
	mlc_tensor sentinel, *t = &sentinel; /* must be reset even on failure */
	int n = -1;
	mlc_status st = mlc_safetensors_read(path, &t, &n, c.d);
	check_error(name, st, &c, path, needle);
	assert_null(t);
	assert_int_equal(n, 0);
	cap_end(&c);
}

#define W24(off) "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[" off "]}}"

static void test_st_read_errors(void **state)
{
	st_case("not-object.st", "[1,2]", 0, "header is not a JSON object");
	st_case("space-first.st", " {}", 0, "header is not a JSON object");
	st_case("bad-json.st", "{\"w\": {\"dtype\": }", 0,
		"header is not valid JSON: unexpected token near '}' (at byte 17 of the header)");
	st_case("two-docs.st", "{}{}", 0, "unexpected text after the JSON header");
	st_case("doc-marker.st", "{}\n--- {}", 0, "unexpected text after the JSON header");
	st_case("not-entry.st", "{\"w\": 3}", 0,
		"tensor 'w': expected an object with dtype, shape and data_offsets");
	st_case("missing.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
		"tensor 'w': missing field 'data_offsets'");
	st_case("typo.st", "{\"w\":{\"dtype\":\"F32\",\"shap\":[1],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w': unknown field 'shap' (did you mean 'shape'?)");
	st_case("twice.st", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		"header is not valid JSON: duplicate object key near '\"dtype\"'");
	st_case("f16.st", "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w' has dtype F16; only F32 is supported");
	st_case("dtype-null.st", "{\"w\":{\"dtype\": ,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		"header is not valid JSON: unexpected token near ','");
	st_case("dtype-list.st", "{\"w\":{\"dtype\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w': dtype must be a string");
	st_case("shape-str.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,4]}}", 4,
		"tensor 'w': shape must be a list of integers");
	st_case("shape-quoted.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w': shape must be a list of integers");
	st_case("shape-float.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w': shape must be a list of integers");
	st_case("rank7.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
		"tensor 'w' has more than 6 dimensions");
	st_case("negative.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,-2],\"data_offsets\":[0,16]}}", 16,
		"tensor 'w' has a negative dimension -2");
	st_case("dim-overflow.st",
		"{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}",
		4, "header is not valid JSON: too big integer");
	st_case("huge.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4000000000,4000000000,4000000000],"
		"\"data_offsets\":[0,4]}}", 4, "tensor 'w': shape is too large");
	st_case("count.st", W24("0,20"), 20,
		"tensor 'w': shape has 6 elements (24 bytes) but data_offsets span 20 bytes");
	st_case("past-end.st", W24("0,24"), 20, "data_offsets [0, 24] are not a range inside the 20-byte data area");
	st_case("reversed.st", W24("24,0"), 24, "data_offsets [24, 0] are not a range");
	st_case("one-offset.st", W24("24"), 24, "data_offsets must be a list of two integers");
	st_case("extra-data.st", W24("0,24"), 32, "data bytes 24 to 32 belong to no tensor");
	st_case("gap.st", W24("8,32"), 32, "data bytes 0 to 8 belong to no tensor");
	st_case("overlap.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		"\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
		"tensors 'a' and 'b' overlap in the data area");
	st_case("dup.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
		"header is not valid JSON: duplicate object key near '\"a\"'");
	st_case("meta.st", "{\"__metadata__\":[1]}", 0, "__metadata__ must be an object");
	st_case("nul-name.st", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4,
		"a tensor name contains a NUL character");
	st_case("key-list.st", "{[1]: 2}", 0, "header is not valid JSON: string or '}' expected near '['");
	/* YAML features JSON lacks are refused, not interpreted: an alias, an
	 * unquoted key, single quotes (the YAML reader took all three). */
	st_case("alias.st", "{\"w\": &x {\"dtype\":\"F32\",\"shape\":[*x],\"data_offsets\":[0,4]}}", 4,
		"header is not valid JSON: invalid token near '&'");
	st_case("unquoted.st", "{w: {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		"header is not valid JSON: string or '}' expected near 'w'");
	st_case("single.st", "{\"w\": {\"dtype\":'F32',\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		"header is not valid JSON: invalid token near '''");
	st_case("bad-utf8.st", "{\"\xff\":1}", 0, "header is not valid JSON");
}

static void test_st_read_framing(void **state)
{
	char path[512];
	capture c;
	mlc_tensor *t;
	int n;
	struct {
		const char *name, *bytes;
		size_t len;
		const char *needle;
	} cases[] = {
		{"empty.st", "", 0, "truncated: the file is 0 bytes, too short for the 8-byte header length"},
		{"seven.st", "\x02\0\0\0\0\0\0", 7, "the file is 7 bytes"},
		{"hlen.st", "\x10\0\0\0\0\0\0\0{}", 10, "header length 16 runs past the end of the file (10 bytes)"},
		{"hlen-max.st", "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10, "header length 18446744073709551615 runs past"},
		{"hlen0.st", "\0\0\0\0\0\0\0\0", 8, "header is not a JSON object"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_file(tpath(path, cases[i].name), cases[i].bytes, cases[i].len);
		cap_begin(&c);
		mlc_status st = mlc_safetensors_read(path, &t, &n, c.d);
		check_error(cases[i].name, st, &c, path, cases[i].needle);
		assert_int_equal(st, MLC_EUSER);
		cap_end(&c);
	}
	cap_begin(&c);
	mlc_status st = mlc_safetensors_read(tpath(path, "absent.st"), &t, &n, c.d);
	check_error("absent", st, &c, path, "cannot read: No such file or directory");
	assert_int_equal(st, MLC_EIO);
	cap_end(&c);
}

static void test_st_deep_nesting(void **state)
{
	enum { DEPTH = 200000 };
	char *json = malloc(2 * DEPTH + 16);
	assert_non_null(json);
	strcpy(json, "{\"w\":");
	size_t k = strlen(json);
	memset(json + k, '[', DEPTH);
	memset(json + k + DEPTH, ']', DEPTH);
	strcpy(json + k + 2 * DEPTH, "}");
	st_case("deep.st", json, 0, "header nests deeper than 64 levels");
	/* 61 levels are fine; brackets inside strings do not count, and a
	 * string ends at its first unescaped quote. */
	char open[71] = {0}, close[71] = {0};
	memset(open, '[', 70);
	memset(close, ']', 70);
	sprintf(json, "{\"w\":%.60s%.60s}", open, close);
	st_case("sixty.st", json, 0, "tensor 'w': expected an object");
	sprintf(json, "{\"\\\\\":\"%s\"}", open);
	st_case("backslash.st", json, 0, "tensor '\\': expected an object");
	sprintf(json, "{\"\\\"%s\":1}", open);
	st_case("quote.st", json, 0, "tensor '\"[[[[");
	free(json);
}

/* The layout other writers produce: compact JSON, metadata first, padding. */
/* libyaml refused a flow key past 1,024 characters; JSON has no such limit,
 * for a tensor name or a __metadata__ key. */
static void test_st_long_key(void **state)
{
	enum { LEN = 3000 };
	char name[LEN + 1], path[512];
	memset(name, 'k', LEN);
	name[LEN] = 0;
	char *json = malloc(2 * LEN + 200);
	assert_non_null(json);
	int hlen = sprintf(json, "{\"__metadata__\":{\"%s\":\"v\"},\"%s\":{\"dtype\":\"F32\",\"shape\":[1],"
			   "\"data_offsets\":[0,4]}}", name, name);
	unsigned char *buf = calloc(1, 8 + (size_t)hlen + 4);
	assert_non_null(buf);
	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)hlen >> 8 * i);
	memcpy(buf + 8, json, (size_t)hlen);
	buf[8 + hlen + 2] = 0x80, buf[8 + hlen + 3] = 0x3f; /* 1.0f */
	write_file(tpath(path, "long-key.st"), buf, 8 + (size_t)hlen + 4);
	free(buf);
	free(json);
	capture c;
	cap_begin(&c);
	mlc_tensor *t;
	int n;
	char **meta;
	assert_int_equal(mlc_safetensors_read_meta(path, &t, &n, &meta, c.d), MLC_OK);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].name, name);
	assert_true(t[0].data[0] == 1.0f);
	assert_string_equal(meta[0], name);
	assert_string_equal(meta[1], "v");
	assert_null(meta[2]);
	free(meta);
	mlc_tensors_free(t, n);
	cap_end(&c);
}

static void test_st_foreign_layout(void **state)
{
	char path[512];
	const char json[] = "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
			    "\"data_offsets\":[4,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}   ";
	size_t hlen = sizeof json - 1;
	unsigned char buf[512] = {0};
	buf[0] = (unsigned char)hlen;
	memcpy(buf + 8, json, hlen);
	const unsigned char data[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}; /* 1.0f, -2.0f */
	memcpy(buf + 8 + hlen, data, 8);
	write_file(tpath(path, "foreign.st"), buf, 8 + hlen + 8);
	capture c;
	cap_begin(&c);
	mlc_tensor *t;
	int n;
	assert_int_equal(mlc_safetensors_read(path, &t, &n, c.d), MLC_OK);
	assert_int_equal(n, 2);
	assert_string_equal(t[0].name, "b");
	assert_true(t[0].data[0] == -2.0f);
	assert_string_equal(t[1].name, "a");
	assert_true(t[1].data[0] == 1.0f);
	mlc_tensors_free(t, n);
	cap_end(&c);
}

/* ---- PRNG ---- */

static void test_rng(void **state)
{
	mlc_rng a, b;
	mlc_rng_seed(&a, 0);
	/* splitmix64's first output for seed 0, a published reference value. */
	assert_true(a.s[0] == 0xe220a8397b1dcdafu);
	mlc_rng_seed(&a, 42);
	mlc_rng_seed(&b, 42);
	for (int i = 0; i < 1000; i++)
		assert_true(mlc_rng_next(&a) == mlc_rng_next(&b));
	mlc_rng_seed(&b, 43);
	assert_true(mlc_rng_next(&a) != mlc_rng_next(&b));

	enum { N = 200000 };
	double sum = 0, nsum = 0, nsq = 0;
	for (int i = 0; i < N; i++) {
		double u = mlc_rng_uniform(&a), z = mlc_rng_normal(&a);
		assert_true(u >= 0 && u < 1);
		assert_true(isfinite(z));
		sum += u;
		nsum += z;
		nsq += z * z;
	}
	assert_true(fabs(sum / N - 0.5) < 0.01);
	assert_true(fabs(nsum / N) < 0.01);
	assert_true(fabs(nsq / N - 1) < 0.02);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void test_rng_shuffle(void **state)
{
	enum { N = 1000 };
	int64_t p[N], q[N];
	for (int i = 0; i < N; i++)
		p[i] = q[i] = i;
	mlc_rng a, b;
	mlc_rng_seed(&a, 7);
	mlc_rng_seed(&b, 7);
	mlc_rng_shuffle(&a, p, N);
	mlc_rng_shuffle(&b, q, N);
	assert_memory_equal(p, q, sizeof p);
	int fixed = 0;
	for (int i = 0; i < N; i++)
		fixed += p[i] == i;
	assert_true(fixed < 10);
	qsort(q, N, sizeof q[0], cmp_i64);
	for (int i = 0; i < N; i++)
		assert_int_equal(q[i], i);
	mlc_rng_shuffle(&a, p, 0);
	mlc_rng_shuffle(&a, NULL, 0);
	p[0] = 5;
	mlc_rng_shuffle(&a, p, 1);
	assert_int_equal(p[0], 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idx_raw),
		cmocka_unit_test(test_idx_gzip),
		cmocka_unit_test(test_idx_bad_images),
		cmocka_unit_test(test_idx_gzip_corrupt),
		cmocka_unit_test(test_idx_gzip_members),
		cmocka_unit_test(test_idx_bad_files),
		cmocka_unit_test(test_idx_bad_labels),
		cmocka_unit_test(test_idx_fashion_mnist),
		cmocka_unit_test(test_csv_good),
		cmocka_unit_test(test_csv_header),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_nul_cell),
		cmocka_unit_test(test_csv_missing),
		cmocka_unit_test(test_st_round_trip),
		cmocka_unit_test(test_st_write_errors),
		cmocka_unit_test(test_st_read_errors),
		cmocka_unit_test(test_st_read_framing),
		cmocka_unit_test(test_st_deep_nesting),
		cmocka_unit_test(test_st_foreign_layout),
		cmocka_unit_test(test_st_long_key),
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_rng_shuffle),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
