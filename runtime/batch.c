/* batch.c — data sets against the model: loading by the spec's data: section
 * (each set's main file and the other files data.inputs reads), checking each
 * feed's values and the labels fit their inputs, gathering a batch into the
 * planned input buffers (converting stored bytes, scaling, normalizing), and
 * counting correct predictions. */
#include "session.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t mlc_pred_width(const mlc_session *s)
{
	const mlc_node *p = s->pred;
	return p->rank > 1 ? p->dim[p->rank - 1] : 1;
}

mlc_status mlc_data_load(mlc_session *s, bool test, mlc_data *out, mlc_diag *d)
{
	return mlc_data_load_set(s, test ? MLC_SET_TEST : MLC_SET_TRAIN, out, d);
}

/* The paths of set `which`'s file `key` (data.inputs' file:), or NULL. */
static const char *more_path(const mlc_data_cfg *c, mlc_set which, const char *key)
{
	const mlc_more_file *m[] = {c->train_more, c->test_more, c->val_more};
	const int n[] = {c->ntrain_more, c->ntest_more, c->nval_more};
	for (int i = 0; i < n[which]; i++)
		if (strcmp(m[which][i].key, key) == 0)
			return m[which][i].file.path;
	return NULL;
}

static bool reads_file(const mlc_feed *f, const char *key)
{
	return f->cfg && f->cfg->file && strcmp(f->cfg->file, key) == 0;
}

/* Reads a file of its own: not the set's images or labels. */
static bool reads_more(const mlc_feed *f)
{
	return f->cfg && f->cfg->file && !reads_file(f, "images") && !reads_file(f, "labels");
}

/* The files data.inputs reads beyond the main one: data->more[i] for feed i
 * (empty for a feed of the main file), each with the main file's samples. */
static mlc_status load_more(mlc_session *s, mlc_set which, mlc_data *out, mlc_diag *d)
{
	out->nmore = s->nfeed;
	out->more = mlc_xmalloc(sizeof *out->more * (size_t)(s->nfeed ? s->nfeed : 1));
	out->more_file = mlc_xmalloc(sizeof *out->more_file * (size_t)(s->nfeed ? s->nfeed : 1));
	for (int i = 0; i < s->nfeed; i++) {
		if (!reads_more(&s->feed[i]))
			continue;
		const char *path = more_path(&s->model->data, which, s->feed[i].cfg->file);
		if (!path) { /* the frontend checked every set given has it */
			mlc_error_at(d, s->feed[i].cfg->cols_loc, "this set gives no file '%s'", s->feed[i].cfg->file);
			return MLC_EUSER;
		}
		out->more_file[i] = path;
		mlc_status st = mlc_load_idx(path, NULL, &out->more[i], d);
		if (st != MLC_OK)
			return st;
		if (out->more[i].n != out->ds.n) {
			mlc_error_file(d, path, "has %lld samples, but %s has %lld", (long long)out->more[i].n, out->file,
				       (long long)out->ds.n);
			return MLC_EUSER;
		}
	}
	return MLC_OK;
}

void mlc_data_free(mlc_data *data)
{
	mlc_dataset_free(&data->ds);
	for (int i = 0; i < data->nmore; i++)
		mlc_dataset_free(&data->more[i]);
	free(data->more);
	free(data->more_file);
	data->more = NULL;
	data->more_file = NULL;
	data->nmore = 0;
}

mlc_status mlc_data_load_set(mlc_session *s, mlc_set which, mlc_data *out, mlc_diag *d)
{
	bool optional = which != MLC_SET_TRAIN; /* test and validation: absent is no error */
	memset(out, 0, sizeof *out);
	if (!s->model) {
		mlc_error_file(d, s->path, "IR text has no data: section; give it a spec with --spec MODEL.yaml, or run the .yaml spec");
		return MLC_EUSER;
	}
	const mlc_data_cfg *c = &s->model->data;
	const mlc_path *xs[] = {&c->train_x, &c->test_x, &c->val_x}, *ys[] = {&c->train_y, &c->test_y, &c->val_y};
	const mlc_path *x = xs[which], *y = ys[which];
	if (!x->path) {
		if (!optional)
			mlc_error_file(d, s->path, "no training data: add data: {train: ...} to the spec");
		return MLC_EUSER;
	}
	out->file = x->path;
	out->labels_file = y->path;
	mlc_status st;
	if (c->format && strcmp(c->format, "csv") == 0) {
		st = mlc_load_csv(x->path, c->label_columns, (mlc_csv_header)c->csv_header, &out->ds, d);
	} else if (c->format && strcmp(c->format, "cifar10") == 0) {
		const mlc_path *fs[] = {c->train_files, c->test_files, c->val_files};
		const int ns[] = {c->ntrain_files, c->ntest_files, c->nval_files};
		const mlc_path *files = fs[which];
		int n = ns[which];
		const char **paths = mlc_xmalloc(sizeof *paths * (size_t)(n ? n : 1));
		for (int i = 0; i < n; i++)
			paths[i] = files[i].path;
		st = mlc_load_cifar(paths, n, &out->ds, d);
		free(paths);
	} else {
		/* a test set may leave out its labels: it is then only predicted */
		out->unlabeled = !y->path && s->y && which == MLC_SET_TEST;
		if (!y->path && s->y && !out->unlabeled) {
			mlc_error_at(d, x->loc, "IDX data needs both images: and labels:");
			return MLC_EUSER;
		}
		bool labels = s->y && !out->unlabeled;
		for (int i = 0; i < s->nfeed; i++)
			labels |= reads_file(&s->feed[i], "labels");
		if (labels && !y->path) {
			mlc_error_at(d, x->loc, "an input reads the labels, but this set gives no labels:");
			return MLC_EUSER;
		}
		st = mlc_load_idx(x->path, labels ? y->path : NULL, &out->ds, d);
	}
	if (st == MLC_OK)
		st = load_more(s, which, out, d);
	if (st == MLC_OK && c->offset >= out->ds.n) {
		mlc_error_file(d, out->file, "data: offset %lld leaves no samples: the file has %lld",
			       (long long)c->offset, (long long)out->ds.n);
		st = MLC_EUSER;
	}
	/* every file of the set has ds.n samples (load_more): one window for all */
	for (int i = -1; st == MLC_OK && i < out->nmore && (c->offset > 0 || c->max_samples > 0); i++) {
		mlc_dataset *w = i < 0 ? &out->ds : &out->more[i];
		if (w->n)
			mlc_dataset_window(w, c->offset, c->max_samples);
	}
	/* file: labels reads them as a sample's values (one per sample) */
	out->labels = (mlc_dataset){.n = out->ds.n, .dim = out->ds.ydim, .x = out->ds.y};
	if (st == MLC_OK && !out->unlabeled)
		st = mlc_targets_check(s, out, d);
	if (st == MLC_OK)
		st = mlc_data_check(s, out, d);
	if (st != MLC_OK)
		mlc_data_free(out);
	return st;
}

/* Feed f's source in data, and its name for messages. */
static const mlc_dataset *feed_source(const mlc_feed *f, const mlc_data *data, int i, const char **file)
{
	bool more = reads_more(f);
	*file = more ? data->more_file[i] : data->file;
	return more ? &data->more[i] : reads_file(f, "labels") ? &data->labels : &data->ds;
}

/* i32 ids stored as floats (CSV): whole numbers a float holds exactly. */
static mlc_status check_ids(const mlc_feed *f, const mlc_dataset *ds, int64_t col, const char *file, mlc_diag *d)
{
	int64_t w = mlc_numel(f->in, 1);
	for (int64_t r = 0; !ds->xb && r < ds->n; r++)
		for (int64_t j = 0; j < w; j++) {
			float v = ds->x[r * ds->dim + col + j];
			if (v == floorf(v) && fabsf(v) <= 16777216.0f)
				continue;
			mlc_error_file(d, file, "sample %lld, value %lld: %g is not a whole number from -2^24 to 2^24, "
				       "as input '%s' (i32) needs", (long long)r + 1, (long long)(col + j + 1), (double)v,
				       f->in->name);
			return MLC_EUSER;
		}
	return MLC_OK;
}

static mlc_status check_feed(mlc_session *s, const mlc_data *data, int i, mlc_diag *d)
{
	const mlc_feed *f = &s->feed[i];
	const mlc_feed_cfg *c = f->cfg;
	char ty[96];
	if (f->col < 0) {
		mlc_error_at(d, f->in->loc, "input '%s' is fed by no data; give it a source under data.inputs",
			     f->in->name);
		return MLC_EUSER;
	}
	const char *file;
	const mlc_dataset *ds = feed_source(f, data, i, &file);
	int64_t feat = mlc_numel(f->in, 1);
	bool csv = s->model->data.format && strcmp(s->model->data.format, "csv") == 0;
	if (c && c->end > 0) {
		if (c->end > ds->dim) {
			mlc_error_at(d, c->cols_loc, "input '%s' reads columns [%lld, %lld), but %s has %lld %s",
				     f->in->name, (long long)c->start, (long long)c->end, file, (long long)ds->dim,
				     csv ? "feature columns" : "values per sample");
			return MLC_EUSER;
		}
		if (c->end - c->start != feat) {
			mlc_error_at(d, c->cols_loc, "input '%s' reads columns [%lld, %lld), %lld values, but it is %s "
				     "(%lld per sample)", f->in->name, (long long)c->start, (long long)c->end,
				     (long long)(c->end - c->start), mlc_type_str(f->in, ty, sizeof ty), (long long)feat);
			return MLC_EUSER;
		}
	} else if (ds->dim != feat && c && c->file) {
		mlc_error_at(d, c->cols_loc, "input '%s' is %s (%lld per sample), but file '%s' (%s) has %lld values "
			     "per sample", f->in->name, mlc_type_str(f->in, ty, sizeof ty), (long long)feat, c->file,
			     file, (long long)ds->dim);
		return MLC_EUSER;
	} else if (ds->dim != feat) {
		mlc_error_file(d, file, "samples have %lld features, but input '%s' is %s (%lld per sample)",
			       (long long)ds->dim, f->in->name, mlc_type_str(f->in, ty, sizeof ty), (long long)feat);
		return MLC_EUSER;
	}
	return f->in->dtype == DT_I32 ? check_ids(f, ds, f->col, file, d) : MLC_OK;
}

mlc_status mlc_data_check(mlc_session *s, const mlc_data *data, mlc_diag *d)
{
	const mlc_dataset *ds = &data->ds;
	if (!s->x || !s->pred) {
		mlc_error_file(d, s->path, "the model has no input or no prediction");
		return MLC_EUSER;
	}
	for (int i = 0; i < s->nfeed; i++) {
		mlc_status st = check_feed(s, data, i, d);
		if (st != MLC_OK)
			return st;
	}
	if (ds->n == 0) {
		mlc_error_file(d, data->file, "holds no samples");
		return MLC_EUSER;
	}
	if (!s->y || data->unlabeled)
		return MLC_OK;
	if (ds->ydim == 0) {
		mlc_error_file(d, data->file, "has no target columns (label_columns: 0), but the loss reads labels; "
			       "give label_columns, or the loss a 'target' input");
		return MLC_EUSER;
	}
	int64_t width = mlc_numel(s->y, 1);
	bool classes = s->y->dtype == DT_I32 || (ds->ydim == 1 && width > 1);
	if (!classes && ds->ydim != width) {
		mlc_error_file(d, data->file, "samples have %lld targets, but the model predicts %lld",
			       (long long)ds->ydim, (long long)width);
		return MLC_EUSER;
	}
	if (classes) {
		int64_t ncls = mlc_pred_width(s);
		for (int64_t i = 0; i < ds->n; i++) {
			float v = ds->y[i * ds->ydim];
			if (!(v >= 0 && v < (float)ncls && v == floorf(v))) {
				mlc_error_file(d, data->labels_file ? data->labels_file : data->file,
					       "label %g of sample %lld is not a class of the model's %lld outputs",
					       (double)v, (long long)i + 1, (long long)ncls);
				return MLC_EUSER;
			}
		}
	}
	return MLC_OK;
}

/* One stored value as an input reads it: times scale, then normalized for
 * its channel — the arithmetic the loaders once did on the whole set, so
 * results are the same to the bit. */
static float convert(const mlc_data_cfg *c, float v, int64_t ch)
{
	if (c->scale != 1.0 && c->scale != 0.0)
		v *= (float)c->scale;
	if (ch >= 0)
		v = (float)((v - c->norm_mean[ch]) / c->norm_std[ch]);
	return v;
}

enum { LUT_CHANNELS = 16 }; /* bytes of up to this many channels convert by table */

/* Feed f's values of n samples into its input buffer. Bytes go through a
 * table of their 256 values per channel, built per batch (at most 4096
 * entries), so a batch costs one load per value whatever scale and
 * normalize ask for; floats are converted in place. */
static void gather(const mlc_session *s, const mlc_feed *f, const mlc_dataset *ds, const int64_t *idx, int64_t n)
{
	const mlc_data_cfg *c = &s->model->data;
	float *x = s->act + f->in->offset;
	int64_t w = mlc_numel(f->in, 1), k = c->nnorm > 0 && w % c->nnorm == 0 ? c->nnorm : 0;
	if (f->in->dtype == DT_I32) { /* ids, as stored: never scaled or normalized */
		int32_t *ids = (int32_t *)x;
		for (int64_t r = 0; r < n; r++)
			for (int64_t j = 0, at = idx[r] * ds->dim + f->col; j < w; j++)
				ids[r * w + j] = (int32_t)mlc_dataset_x(ds, at + j);
		return;
	}
	int64_t nt = k ? k : 1;
	float lut[LUT_CHANNELS][256];
	bool table = ds->xb && nt <= LUT_CHANNELS;
	for (int64_t ch = 0; table && ch < nt; ch++)
		for (int v = 0; v < 256; v++)
			lut[ch][v] = convert(c, (float)v, k ? ch : -1);
	bool plain = (c->scale == 1.0 || c->scale == 0.0) && !k;
	for (int64_t r = 0; r < n; r++) {
		int64_t at = idx[r] * ds->dim + f->col;
		float *row = x + r * w;
		if (table && nt == 1)
			for (int64_t j = 0; j < w; j++)
				row[j] = lut[0][ds->xb[at + j]];
		else if (table)
			for (int64_t j = 0; j < w; j++)
				row[j] = lut[j % k][ds->xb[at + j]];
		else if (ds->xb)
			for (int64_t j = 0; j < w; j++)
				row[j] = convert(c, ds->xb[at + j], k ? j % k : -1);
		else if (plain)
			memcpy(row, ds->x + at, (size_t)w * sizeof(float));
		else
			for (int64_t j = 0; j < w; j++)
				row[j] = convert(c, ds->x[at + j], k ? j % k : -1);
	}
}

void mlc_batch_fill(mlc_session *s, const mlc_data *data, const int64_t *idx, int64_t n)
{
	const mlc_dataset *ds = &data->ds;
	for (int i = 0; i < s->nfeed; i++) {
		const char *file;
		gather(s, &s->feed[i], feed_source(&s->feed[i], data, i, &file), idx, n);
	}
	if (!s->y || data->unlabeled)
		return; /* unlabeled: prediction, whose entry reads no labels */
	if (s->y->dtype == DT_I32) {
		int32_t *y = (int32_t *)(s->act + s->y->offset);
		for (int64_t r = 0; r < n; r++)
			y[r] = (int32_t)ds->y[idx[r] * ds->ydim];
		return;
	}
	float *y = s->act + s->y->offset;
	int64_t width = mlc_numel(s->y, 1);
	for (int64_t r = 0; r < n; r++) {
		const float *src = ds->y + idx[r] * ds->ydim;
		if (ds->ydim == width) {
			memcpy(y + r * width, src, (size_t)width * sizeof(float));
		} else { /* a class index for a one-hot target */
			memset(y + r * width, 0, (size_t)width * sizeof(float));
			y[r * width + (int64_t)src[0]] = 1;
		}
	}
}

int64_t mlc_pred_class(const float *row, int64_t c)
{
	if (c == 1)
		return row[0] > 0.5f;
	int64_t best = 0;
	for (int64_t j = 1; j < c; j++)
		if (row[j] > row[best])
			best = j;
	return best;
}

/* Classification: the prediction's scores against the label, or against
 * the argmax of a one-hot target (> 0.5 for one output); regression: the
 * predicted values against f32 targets of the same width. */
void mlc_batch_metrics(const mlc_session *s, const mlc_dataset *ds, const int64_t *idx, int64_t n, mlc_metrics *m)
{
	const float *p = s->act + s->pred->offset;
	int64_t c = mlc_pred_width(s);
	/* the targets: the labels, or the input the loss reads as its target (already gathered) */
	const float *tin = s->target ? s->act + s->target->offset : NULL;
	bool values = tin || (s->y && s->y->dtype == DT_F32 && ds->ydim == c);
	/* perplexity's −log p clamps p as the loss does: categorical_cross_entropy at 1e-7 */
	m->p_floor = s->loss_term && s->loss_term->op == OP_CATEGORICAL_XENT ? (double)1e-7f : FLT_TRUE_MIN;
	for (int64_t r = 0; r < n; r++) {
		const float *row = p + r * c, *t = tin ? tin + r * c : ds->y + idx[r] * ds->ydim;
		if (m->nclasses) {
			int64_t want = c == 1 ? t[0] > 0.5f : ds->ydim == c ? mlc_pred_class(t, c) : (int64_t)t[0];
			mlc_metrics_add_class(m, row, c, want);
		}
		if (values)
			mlc_metrics_add_values(m, row, t, c);
	}
}
