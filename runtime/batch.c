/* batch.c — data sets against the model: loading by the spec's data: section,
 * checking features and labels fit the inputs, filling a batch into the
 * planned input buffers, and counting correct predictions. */
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

mlc_status mlc_data_load_set(mlc_session *s, mlc_set which, mlc_data *out, mlc_diag *d)
{
	bool optional = which != MLC_SET_TRAIN; /* test and validation: absent is no error */
	memset(out, 0, sizeof *out);
	if (!s->model) {
		mlc_error_file(d, s->path, "IR text has no data: section; run a .yaml spec");
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
		st = mlc_load_csv(x->path, c->label_columns > 0 ? c->label_columns : 1, &out->ds, d);
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
		if (!y->path) {
			mlc_error_at(d, x->loc, "IDX data needs both images: and labels:");
			return MLC_EUSER;
		}
		st = mlc_load_idx(x->path, y->path, &out->ds, d);
	}
	if (st != MLC_OK)
		return st;
	if (c->scale != 1.0 && c->scale != 0.0)
		for (int64_t i = 0; i < out->ds.n * out->ds.dim; i++)
			out->ds.x[i] *= (float)c->scale;
	if ((st = mlc_data_check(s, out, d)) != MLC_OK) {
		mlc_dataset_free(&out->ds);
		return st;
	}
	/* per channel, after scale: NHWC puts the channel fastest, and the
	 * frontend checked there is one value per channel of the input */
	int64_t k = c->nnorm, total = out->ds.n * out->ds.dim;
	if (k > 0 && out->ds.dim % k == 0)
		for (int64_t i = 0; i < total; i += k)
			for (int64_t j = 0; j < k; j++)
				out->ds.x[i + j] = (float)((out->ds.x[i + j] - c->norm_mean[j]) / c->norm_std[j]);
	return MLC_OK;
}

mlc_status mlc_data_check(mlc_session *s, const mlc_data *data, mlc_diag *d)
{
	const mlc_dataset *ds = &data->ds;
	char ty[96];
	if (!s->x || !s->pred) {
		mlc_error_file(d, s->path, "the model has no input or no prediction");
		return MLC_EUSER;
	}
	int64_t feat = mlc_numel(s->x, 1);
	if (ds->dim != feat) {
		mlc_error_file(d, data->file, "samples have %lld features, but input '%s' is %s (%lld per sample)",
			       (long long)ds->dim, s->x->name, mlc_type_str(s->x, ty, sizeof ty), (long long)feat);
		return MLC_EUSER;
	}
	if (ds->n == 0) {
		mlc_error_file(d, data->file, "holds no samples");
		return MLC_EUSER;
	}
	if (!s->y)
		return MLC_OK;
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

void mlc_batch_fill(mlc_session *s, const mlc_dataset *ds, const int64_t *idx, int64_t n)
{
	float *x = s->act + s->x->offset;
	for (int64_t r = 0; r < n; r++)
		memcpy(x + r * ds->dim, ds->x + idx[r] * ds->dim, (size_t)ds->dim * sizeof(float));
	if (!s->y)
		return;
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
	bool values = s->y && s->y->dtype == DT_F32 && ds->ydim == c;
	/* perplexity's −log p clamps p as the loss does: categorical_cross_entropy at 1e-7 */
	m->p_floor = s->loss_term && s->loss_term->op == OP_CATEGORICAL_XENT ? (double)1e-7f : FLT_TRUE_MIN;
	for (int64_t r = 0; r < n; r++) {
		const float *row = p + r * c, *t = ds->y + idx[r] * ds->ydim;
		if (m->nclasses) {
			int64_t want = c == 1 ? t[0] > 0.5f : ds->ydim == c ? mlc_pred_class(t, c) : (int64_t)t[0];
			mlc_metrics_add_class(m, row, c, want);
		}
		if (values)
			mlc_metrics_add_values(m, row, t, c);
	}
}
