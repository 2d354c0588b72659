/* idx.c — MNIST-style IDX data sets (raw or gzip'd), kept as their bytes,
 * and mlc_dataset_free / mlc_dataset_window. */
#include "gzio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { IDX_U8 = 0x08, IDX_MAX_RANK = 4, CHUNK = 1 << 20 };

/* One decoded IDX file: its dimensions and raw u8 items. */
typedef struct {
	int rank;
	int64_t dim[IDX_MAX_RANK];
	int64_t count; /* product of dim[] */
	unsigned char *data;
} idx_file;

static mlc_status out_of_memory(const char *path, int64_t bytes, mlc_diag *d)
{
	mlc_error_file(d, path, "cannot read: out of memory holding %lld bytes of its data",
		       (long long)bytes);
	return MLC_EUSER;
}

static mlc_status parse_idx(mlc_gz *gz, const char *path, idx_file *f, mlc_diag *d)
{
	unsigned char hdr[4 + 4 * IDX_MAX_RANK];
	int64_t got = mlc_gz_read(gz, hdr, 4);
	if (got < 0)
		return mlc_gz_error(gz, path, d);
	/* gzip is transparent to mlc_gz_read, so say which layer the bytes came from. */
	const char *what = mlc_gz_direct(gz) ? "" : " after decompression";
	if (got == 0) {
		mlc_error_file(d, path, "not an IDX file (empty%s)", what);
		return MLC_EUSER;
	}
	if (got < 4 || hdr[0] != 0 || hdr[1] != 0) {
		char seen[16];
		int k = 0;
		for (int i = 0; i < got; i++)
			k += snprintf(seen + k, sizeof seen - (size_t)k, " %02x", hdr[i]);
		mlc_error_file(d, path, "not an IDX file (bad magic%s%s; expected 00 00 08 <rank>)", seen, what);
		return MLC_EUSER;
	}
	if (hdr[2] != IDX_U8) {
		mlc_error_file(d, path, "unsupported IDX element type 0x%02x (only 0x08, unsigned byte, is supported)",
			       hdr[2]);
		return MLC_EUSER;
	}
	f->rank = hdr[3];
	if (f->rank < 1 || f->rank > IDX_MAX_RANK) {
		mlc_error_file(d, path, "IDX rank %d is not supported (expected 1 to %d)", f->rank, IDX_MAX_RANK);
		return MLC_EUSER;
	}
	got = mlc_gz_read(gz, hdr + 4, 4 * f->rank);
	if (got < 0)
		return mlc_gz_error(gz, path, d);
	if (got < 4 * f->rank) {
		mlc_error_file(d, path, "truncated: header declares %d dimensions but the file ends inside them", f->rank);
		return MLC_EUSER;
	}
	/* The caller converts to float, so the count must fit 4-byte items too. */
	const int64_t max_count = (int64_t)(SIZE_MAX / sizeof(float) / 2);
	f->count = 1;
	for (int i = 0; i < f->rank; i++) {
		const unsigned char *p = hdr + 4 + 4 * i;
		f->dim[i] = (int64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
		if (f->dim[i] && f->count > max_count / f->dim[i]) {
			mlc_error_file(d, path, "dimensions are too large: their product overflows");
			return MLC_EUSER;
		}
		f->count *= f->dim[i];
	}
	if (f->count > MLC_MAX_IDX_VALUES) {
		mlc_error_file(d, path, "dimensions declare %lld items; an IDX file may hold at most %lld",
			       (long long)f->count, (long long)MLC_MAX_IDX_VALUES);
		return MLC_EUSER;
	}
	/* Grow as data arrives so a lying header cannot make us allocate gigabytes. */
	int64_t cap = f->count < CHUNK ? f->count : CHUNK, have = 0;
	if (!(f->data = mlc_try_alloc((size_t)cap)))
		return out_of_memory(path, cap, d);
	for (;;) {
		got = mlc_gz_read(gz, f->data + have, cap - have);
		if (got < 0)
			return mlc_gz_error(gz, path, d);
		have += got;
		if (have < cap || cap == f->count)
			break;
		cap = cap > f->count / 2 ? f->count : cap * 2;
		unsigned char *more = mlc_try_realloc(f->data, (size_t)cap);
		if (!more)
			return out_of_memory(path, cap, d);
		f->data = more;
	}
	if (have < f->count) {
		mlc_error_file(d, path, "truncated: expected %lld bytes of data, found %lld%s",
			       (long long)f->count, (long long)have,
			       mlc_gz_truncated(gz) ? " (the gzip stream ends early)" : "");
		return MLC_EUSER;
	}
	int64_t extra = 0;
	unsigned char sink[4096];
	while ((got = mlc_gz_read(gz, sink, sizeof sink)) > 0)
		extra += got;
	if (got < 0)
		return mlc_gz_error(gz, path, d);
	if (extra) {
		mlc_error_file(d, path, "trailing data: %lld byte%s more than the %lld the header declares",
			       (long long)extra, extra == 1 ? "" : "s", (long long)f->count);
		return MLC_EUSER;
	}
	return MLC_OK;
}

static mlc_status load_idx_file(const char *path, idx_file *f, mlc_diag *d)
{
	memset(f, 0, sizeof *f);
	mlc_gz *gz = mlc_gz_open(path, d);
	if (!gz)
		return MLC_EIO;
	mlc_status st = parse_idx(gz, path, f, d);
	mlc_gz_close(gz);
	if (st != MLC_OK) {
		free(f->data);
		f->data = NULL;
	}
	return st;
}

mlc_status mlc_load_idx(const char *images, const char *labels, mlc_dataset *out, mlc_diag *d)
{
	memset(out, 0, sizeof *out);
	idx_file im, lb = {0};
	mlc_status st = load_idx_file(images, &im, d);
	if (st == MLC_OK && labels)
		st = load_idx_file(labels, &lb, d);
	if (st != MLC_OK)
		goto done;
	st = MLC_EUSER;
	if (im.dim[0] == 0) {
		mlc_error_file(d, images, "contains no images");
		goto done;
	}
	out->n = im.dim[0];
	out->dim = im.count / im.dim[0];
	if (!labels) { /* the bytes are the data set: no copy */
		out->xb = im.data;
		im.data = NULL;
		st = MLC_OK;
		goto done;
	}
	if (lb.rank != 1) {
		mlc_error_file(d, labels, "a label file must be 1-D, but this one has %d dimensions", lb.rank);
		goto done;
	}
	if (lb.dim[0] != im.dim[0]) {
		mlc_error_file(d, labels, "has %lld label%s but %s has %lld image%s",
			       (long long)lb.dim[0], MLC_S(lb.dim[0]), images, (long long)im.dim[0], MLC_S(im.dim[0]));
		goto done;
	}
	out->ydim = 1;
	out->xb = im.data;
	im.data = NULL;
	out->y = mlc_try_alloc((size_t)out->n * sizeof(float));
	if (!out->y) {
		out_of_memory(labels, out->n * (int64_t)sizeof(float), d);
		mlc_dataset_free(out);
		goto done;
	}
	for (int64_t i = 0; i < out->n; i++) {
		out->y[i] = lb.data[i];
		if (lb.data[i] + 1 > out->nclasses)
			out->nclasses = lb.data[i] + 1;
	}
	st = MLC_OK;
done:
	free(im.data);
	free(lb.data);
	if (st != MLC_OK)
		mlc_dataset_free(out);
	return st;
}

void mlc_dataset_free(mlc_dataset *ds)
{
	if (!ds)
		return;
	free(ds->x);
	free(ds->xb);
	free(ds->y);
	memset(ds, 0, sizeof *ds);
}

bool mlc_dataset_window(mlc_dataset *ds, int64_t offset, int64_t max)
{
	if (offset >= ds->n)
		return false;
	int64_t n = ds->n - offset;
	n = max > 0 && max < n ? max : n;
	size_t w = ds->xb ? 1 : sizeof(float);
	void *x = ds->xb ? (void *)ds->xb : (void *)ds->x;
	memmove(x, (char *)x + (size_t)(offset * ds->dim) * w, (size_t)(n * ds->dim) * w);
	if (ds->y)
		memmove(ds->y, ds->y + offset * ds->ydim, sizeof(float) * (size_t)(n * ds->ydim));
	ds->n = n;
	if (ds->nclasses > 0) { /* the window's own classes */
		ds->nclasses = 0;
		for (int64_t i = 0; i < n * ds->ydim; i += ds->ydim)
			ds->nclasses = ds->y[i] + 1 > ds->nclasses ? (int)ds->y[i] + 1 : ds->nclasses;
	}
	return true;
}
