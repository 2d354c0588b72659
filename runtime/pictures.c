/* pictures.c — `mlc reconstruct`: test images next to what the model makes
 * of them (an autoencoder's output), as a PNG grid drawn with cairo. */
#include "session.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ZOOM = 3, GAP = 4, COLS = 8 }; /* screen pixels per image pixel; between images; pairs per row */

typedef struct {
	FILE *f;
	int err;
} png_sink;

static cairo_status_t png_put(void *closure, const unsigned char *data, unsigned int n)
{
	png_sink *k = closure;
	if (!k->err && fwrite(data, 1, n, k->f) != n)
		k->err = errno ? errno : EIO;
	return k->err ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* One grey side×side image at (x0, y0): values in [0, 1] (clamped), 1 white. */
static void put_image(unsigned char *px, int stride, int x0, int y0, const float *v, int side)
{
	for (int r = 0; r < side * ZOOM; r++)
		for (int c = 0; c < side * ZOOM; c++) {
			float g = v[(r / ZOOM) * side + c / ZOOM];
			g = isnan(g) ? 0 : g < 0 ? 0 : g > 1 ? 1 : g;
			uint32_t b = (uint32_t)lrintf(g * 255);
			memcpy(px + (size_t)(y0 + r) * (size_t)stride + (size_t)(x0 + c) * 4,
			       &(uint32_t){0xff000000u | b << 16 | b << 8 | b}, 4);
		}
}

mlc_status mlc_session_reconstruct(mlc_session *s, const char *png_path, int n, mlc_diag *d)
{
	size_t len = strlen(png_path);
	if (len < 4 || strcmp(png_path + len - 4, ".png") != 0) {
		mlc_error_file(d, png_path, "reconstruct writes a PNG: give -o FILE.png");
		return MLC_EUSER;
	}
	if (n < 1 || n > 256) {
		mlc_error_file(d, s->path, "--n must be 1 to 256 images, not %d", n);
		return MLC_EUSER;
	}
	if (!s->x || !s->pred) {
		mlc_error_file(d, s->path, "the model has no input or no prediction");
		return MLC_EUSER;
	}
	int64_t k = mlc_numel(s->x, 1), c = mlc_pred_width(s);
	int side = (int)lrint(sqrt((double)k));
	if (c != k || (int64_t)side * side != k) {
		mlc_error_file(d, s->path,
			       "reconstruct draws square grey images: the input has %lld values a sample and the output "
			       "%lld; they must be equal and a square number (784 = 28×28)",
			       (long long)k, (long long)c);
		return MLC_EUSER;
	}
	mlc_status st = mlc_params_prepare(s, d);
	if (st != MLC_OK)
		return st;
	mlc_data data;
	bool test = s->model && s->model->data.test_x.path;
	if ((st = mlc_data_load(s, test, &data, d)) != MLC_OK)
		return st;
	int64_t m = data.ds.n < n ? data.ds.n : n;
	if (m > s->batch)
		m = s->batch;
	int64_t *idx = mlc_xmalloc(sizeof(int64_t) * (size_t)m);
	for (int64_t i = 0; i < m; i++)
		idx[i] = i;
	/* the input as gathered (scaled, normalized), copied before the entry
	 * runs, since the planned arena may reuse its memory */
	float *orig = mlc_xmalloc(sizeof(float) * (size_t)(m * k));
	mlc_batch_fill(s, &data, idx, m);
	memcpy(orig, s->act + s->x->offset, sizeof(float) * (size_t)(m * k));
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0, s->seed, s->step);
	s->fn[MLC_ENTRY_PREDICT](s->params, s->act, m, hyper);
	const float *rec = s->act + s->pred->offset;
	/* pairs in rows of COLS: an original above its reconstruction */
	int cols = m < COLS ? (int)m : COLS, rows = (int)((m + COLS - 1) / COLS), cell = side * ZOOM + GAP;
	int w = GAP + cols * cell, h = GAP + rows * (2 * cell + GAP);
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
	cairo_surface_flush(sf);
	unsigned char *px = cairo_image_surface_get_data(sf);
	int stride = cairo_image_surface_get_stride(sf);
	if (px) {
		memset(px, 0x60, (size_t)stride * (size_t)h); /* a grey background sets the images apart */
		for (int64_t i = 0; i < m; i++) {
			int x0 = GAP + (int)(i % COLS) * cell, y0 = GAP + (int)(i / COLS) * (2 * cell + GAP);
			put_image(px, stride, x0, y0, orig + i * k, side);
			put_image(px, stride, x0, y0 + cell, rec + i * c, side);
		}
		cairo_surface_mark_dirty(sf);
	}
	free(orig);
	free(idx);
	mlc_data_free(&data);
	mlc_atomic a;
	if (mlc_atomic_open(&a, png_path, d) != MLC_OK) {
		cairo_surface_destroy(sf);
		return MLC_EIO;
	}
	png_sink snk = {a.f, 0};
	cairo_status_t cs = cairo_surface_status(sf);
	if (cs == CAIRO_STATUS_SUCCESS)
		cs = cairo_surface_write_to_png_stream(sf, png_put, &snk);
	cairo_surface_destroy(sf);
	if (cs != CAIRO_STATUS_SUCCESS) {
		mlc_atomic_abort(&a);
		if (snk.err)
			mlc_error_file(d, png_path, "cannot write: %s", strerror(snk.err));
		else
			mlc_error_file(d, png_path, "cannot draw the images: %s", cairo_status_to_string(cs));
		return snk.err ? MLC_EIO : MLC_EINTERNAL;
	}
	if ((st = mlc_atomic_commit(&a, d)) == MLC_OK && !s->opt.quiet)
		fprintf(s->log, "wrote %lld image%s of %s (top) and their reconstructions to %s (%d×%d pixels)\n",
			(long long)m, MLC_S(m), test ? "the test set" : "the training set", png_path, w, h);
	return st;
}
