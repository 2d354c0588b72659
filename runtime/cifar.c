/* cifar.c — CIFAR-10's binary format (data_batch_1.bin ... test_batch.bin):
 * records of one label byte (0..9) and 3072 pixel bytes, the 32x32 red plane,
 * then the green one, then the blue one. Loaded as NHWC bytes (unscaled,
 * 0..255, converted as a batch is gathered) for a [32, 32, 3] input; several files are concatenated in order.
 * Files are read through zlib, so gzip'd copies work too. */
#include "gzio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum {
	SIDE = 32,
	PLANE = SIDE * SIDE,
	PIXELS = 3 * PLANE,
	RECORD = 1 + PIXELS,
	NCLASSES = 10,
	CHUNK = 1024, /* records read at a time */
	MAX_RECORDS = INT32_MAX / PIXELS,
};

typedef struct {
	mlc_dataset *ds;
	int64_t cap; /* samples allocated */
} sink;

/* Channel-planar record → one NHWC sample. */
static void convert(const unsigned char *rec, unsigned char *x)
{
	const unsigned char *px = rec + 1;
	for (int p = 0; p < PLANE; p++)
		for (int c = 0; c < 3; c++)
			x[3 * p + c] = px[c * PLANE + p];
}

static mlc_status load_file(const char *path, sink *s, unsigned char *buf, mlc_diag *d)
{
	mlc_gz *gz = mlc_gz_open(path, d);
	if (!gz)
		return MLC_EIO;
	mlc_dataset *ds = s->ds;
	int64_t bytes = 0, first = ds->n;
	mlc_status st = MLC_OK;
	for (;;) {
		int64_t got = mlc_gz_read(gz, buf, (int64_t)CHUNK * RECORD);
		if (got < 0) {
			st = mlc_gz_error(gz, path, d);
			break;
		}
		bytes += got;
		int64_t nrec = got / RECORD;
		if (got % RECORD) {
			/* only the last read can be short: the file ends inside a record */
			int64_t rest = 0;
			unsigned char extra[4096];
			int64_t r;
			while ((r = mlc_gz_read(gz, extra, sizeof extra)) > 0)
				rest += r;
			mlc_error_file(d, path,
				       "has %lld bytes, which is not a whole number of %d-byte CIFAR-10 records "
				       "(a label byte and 32x32x3 pixels)",
				       (long long)(bytes + rest), RECORD);
			st = MLC_EUSER;
			break;
		}
		if (ds->n + nrec > MAX_RECORDS) {
			mlc_error_file(d, path, "too many images: at most %d are supported", MAX_RECORDS);
			st = MLC_EUSER;
			break;
		}
		if (ds->n + nrec > s->cap) {
			int64_t cap = ds->n + nrec > 2 * s->cap ? ds->n + nrec : 2 * s->cap;
			unsigned char *x = mlc_try_realloc(ds->xb, (size_t)cap * PIXELS);
			ds->xb = x ? x : ds->xb;
			float *y = x ? mlc_try_realloc(ds->y, (size_t)cap * sizeof(float)) : NULL;
			ds->y = y ? y : ds->y;
			if (!x || !y) {
				mlc_error_file(d, path, "cannot read: out of memory holding %lld images",
					       (long long)cap);
				st = MLC_EUSER;
				break;
			}
			s->cap = cap;
		}
		for (int64_t r = 0; r < nrec; r++) {
			const unsigned char *rec = buf + r * RECORD;
			if (rec[0] >= NCLASSES) {
				mlc_error_file(d, path, "record %lld has label %d; CIFAR-10 labels are 0 to 9",
					       (long long)(ds->n - first + 1), rec[0]);
				st = MLC_EUSER;
				break;
			}
			convert(rec, ds->xb + ds->n * PIXELS);
			ds->y[ds->n] = rec[0];
			if (rec[0] + 1 > ds->nclasses)
				ds->nclasses = rec[0] + 1;
			ds->n++;
		}
		if (st != MLC_OK || got < (int64_t)CHUNK * RECORD)
			break;
	}
	if (st == MLC_OK && bytes == 0) {
		mlc_error_file(d, path, "is empty; a CIFAR-10 file holds %d-byte records (a label byte and "
			       "32x32x3 pixels)", RECORD);
		st = MLC_EUSER;
	}
	mlc_gz_close(gz);
	return st;
}

mlc_status mlc_load_cifar(const char *const *paths, int npaths, mlc_dataset *out, mlc_diag *d)
{
	memset(out, 0, sizeof *out);
	out->dim = PIXELS;
	out->ydim = 1;
	sink s = {out, 0};
	unsigned char *buf = mlc_xmalloc((size_t)CHUNK * RECORD);
	mlc_status st = MLC_OK;
	for (int i = 0; i < npaths && st == MLC_OK; i++)
		st = load_file(paths[i], &s, buf, d);
	free(buf);
	if (st == MLC_OK && npaths == 0) {
		mlc_error_file(d, NULL, "no CIFAR-10 files given");
		st = MLC_EUSER;
	}
	if (st != MLC_OK)
		mlc_dataset_free(out);
	return st;
}
