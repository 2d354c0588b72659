/* datacheck.c — the spec's data files against the model, up front: `mlc
 * check` (and `mlc run` before it compiles) opens every file the data:
 * section names and reads only what is cheap — an IDX header and its label
 * file, a CSV's first rows, a CIFAR file's size — to catch a missing file
 * (with a did-you-mean: the .gz beside it, a near name in its folder), a
 * feature count that does not fit the input, and targets the loss cannot take.
 * The target rules (docs/spec.md#targets-and-predictions) are also applied to
 * every sample of a loaded set. Errors point at the spec line that names the
 * file, or at the loss, with the fix. */
#include "gzio.h"
#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What the up-front check reads at most: a CSV's first rows (of up to
 * CSV_BYTES each) and IDX label files of up to IDX_LABELS labels; larger
 * ones, and headers claiming more than the readers' limits, are left to the
 * loader's checks when the set is loaded. */
enum { CSV_ROWS = 32, CSV_BYTES = 1 << 16, IDX_MAX_RANK = 4, IDX_LABELS = 1 << 22, CIFAR_RECORD = 1 + 32 * 32 * 3 };

/* The spec's name of the loss a node computes, for messages. */
static const char *loss_name(const mlc_node *l)
{
	switch (l ? l->op : OP_INPUT) {
	case OP_SOFTMAX_XENT: return "softmax_cross_entropy";
	case OP_CATEGORICAL_XENT: return "categorical_cross_entropy";
	case OP_HINGE: return "hinge";
	case OP_BCE: return "binary_cross_entropy";
	case OP_BCE_LOGITS: return "binary_cross_entropy_with_logits";
	case OP_MSE: return "mse";
	case OP_KL_DIV: return "kl_div";
	default: return "the loss";
	}
}

/* Where the spec names `file` (the loss's line if it names none). */
static mlc_loc file_loc(const mlc_session *s, const char *file)
{
	const mlc_data_cfg *c = &s->model->data;
	const mlc_path *p[] = {&c->train_x, &c->train_y, &c->test_x, &c->test_y, &c->val_x, &c->val_y};
	for (size_t i = 0; i < MLC_COUNTOF(p); i++)
		if (p[i]->path && file && strcmp(p[i]->path, file) == 0)
			return p[i]->loc;
	const mlc_path *lists[] = {c->train_files, c->test_files, c->val_files};
	const int n[] = {c->ntrain_files, c->ntest_files, c->nval_files};
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < n[k]; i++)
			if (file && strcmp(lists[k][i].path, file) == 0)
				return lists[k][i].loc;
	return s->loss_term ? s->loss_term->loc : c->loc;
}

static bool whole(float v)
{
	return v == floorf(v) && isfinite(v);
}

/* The loss's rules on targets y[n * ydim] of `file` (docs/spec.md#targets-and-predictions):
 * class-index losses take one whole index in [0, C) per sample; f32 targets
 * of width 1 for a wider output are a class index, one-hot encoded; binary
 * cross-entropies take values in [0, 1]. */
static mlc_status targets_rule(const mlc_session *s, const float *y, int64_t n, int64_t ydim, const char *file,
			       mlc_diag *d)
{
	if (!s->model || !s->y || !s->loss_term || !s->pred || n == 0)
		return MLC_OK;
	const mlc_node *L = s->loss_term;
	const char *loss = loss_name(L);
	int64_t width = mlc_pred_width(s);
	bool index = s->y->dtype == DT_I32, onehot = !index && ydim == 1 && width > 1;
	if (index && ydim != 1) {
		mlc_error_at(d, L->loc, "%s takes one class index per sample, but %s has %lld target columns per "
			     "sample; give label_columns: 1 (the class index), or for %lld values per sample use mse "
			     "(binary_cross_entropy for values in [0, 1])", loss, file, (long long)ydim, (long long)ydim);
		mlc_note_at(d, file_loc(s, file), "the targets come from this file");
		return MLC_EUSER;
	}
	if (index || onehot) {
		float top = -1;
		int64_t at = -1;
		for (int64_t i = 0; i < n; i++) {
			float v = y[i * ydim];
			if (!whole(v) || v < 0) {
				mlc_error_at(d, L->loc, "%s takes class indices 0 to %lld, but sample %lld of %s has %g; class "
					     "indices are whole numbers (for real-valued targets use loss: mse)",
					     onehot ? "the one-hot encoding of" : loss, (long long)width - 1,
					     (long long)i + 1, file, (double)v);
				mlc_note_at(d, file_loc(s, file), "the targets come from this file");
				return MLC_EUSER;
			}
			if (at < 0 && v >= (float)width)
				at = i; /* the first label past the outputs */
			top = v > top ? v : top;
		}
		if (top < (float)width)
			return MLC_OK;
		mlc_error_at(d, L->loc, "%s takes class indices 0 to %lld (one per output of the last layer), but "
			     "sample %lld of %s has %g and the labels go up to %g; for %lld classes give the last layer "
			     "%lld outputs (dense: %lld)", onehot ? "the one-hot encoding of" : loss, (long long)width - 1,
			     (long long)at + 1, file, (double)y[at * ydim], (double)top, (long long)top + 1,
			     (long long)top + 1, (long long)top + 1);
		mlc_note_at(d, file_loc(s, file), "the targets come from this file");
		return MLC_EUSER;
	}
	if (L->op != OP_BCE && L->op != OP_BCE_LOGITS)
		return MLC_OK;
	bool classes = true;
	float top = 0;
	int64_t bad = -1;
	for (int64_t i = 0; i < n * ydim; i++) {
		float v = y[i];
		classes &= whole(v) && v >= 0;
		top = v > top ? v : top;
		if (bad < 0 && !(v >= 0 && v <= 1))
			bad = i;
	}
	if (bad < 0)
		return MLC_OK;
	char fix[160] = "";
	if (classes && width == 1)
		snprintf(fix, sizeof fix, "; for %lld classes give the last layer %lld outputs (dense: %lld) with loss: "
			 "softmax_cross_entropy", (long long)top + 1, (long long)top + 1, (long long)top + 1);
	else
		snprintf(fix, sizeof fix, "; scale the targets into [0, 1], or use loss: mse");
	mlc_error_at(d, L->loc, "%s takes targets in [0, 1] (0/1 labels or probabilities), but sample %lld of %s has "
		     "%g%s", loss, (long long)(bad / ydim) + 1, file, (double)y[bad], fix);
	mlc_note_at(d, file_loc(s, file), "the targets come from this file");
	return MLC_EUSER;
}

mlc_status mlc_targets_check(mlc_session *s, const mlc_data *data, mlc_diag *d)
{
	return targets_rule(s, data->ds.y, data->ds.n, data->ds.ydim, data->file, d);
}

/* A file the spec names must exist: else an error at its line, with the
 * gzip'd (or plain) name beside it, or the nearest name in its folder. */
static bool exists(const mlc_path *p, mlc_diag *d)
{
	struct stat sb;
	if (stat(p->path, &sb) == 0)
		return true;
	int err = errno;
	size_t len = strlen(p->path);
	char *alt = mlc_xmalloc(len + 4), hint[512] = "";
	bool gz = len > 3 && strcmp(p->path + len - 3, ".gz") == 0;
	snprintf(alt, len + 4, "%.*s%s", (int)(gz ? len - 3 : len), p->path, gz ? "" : ".gz");
	if (stat(alt, &sb) == 0) {
		snprintf(hint, sizeof hint, "; did you mean '%s'?", alt);
	} else {
		const char *slash = strrchr(p->path, '/');
		char *dir = mlc_xstrdup(slash ? p->path : ".");
		if (slash) /* "/x" is in "/", "a/b" in "a" */
			dir[slash == p->path ? 1 : slash - p->path] = 0;
		DIR *dp = opendir(dir);
		const char **names = NULL;
		int n = 0;
		for (struct dirent *e; dp && (e = readdir(dp));) {
			if (e->d_name[0] == '.')
				continue;
			names = realloc(names, sizeof *names * (size_t)(n + 2));
			MLC_ASSERT(names);
			names[n++] = mlc_xstrdup(e->d_name);
		}
		if (dp)
			closedir(dp);
		if (n) {
			names[n] = NULL;
			const char *near = mlc_suggest(slash ? slash + 1 : p->path, names);
			if (near)
				snprintf(hint, sizeof hint, "; did you mean '%s%s%s'?", slash ? dir : "",
					 slash && strcmp(dir, "/") != 0 ? "/" : "", near);
		}
		for (int i = 0; i < n; i++)
			free((void *)names[i]);
		free(names);
		free(dir);
	}
	mlc_error_at(d, p->loc, "cannot open data file '%s': %s%s", p->path, strerror(err), hint);
	free(alt);
	return false;
}

/* A file that is not what its header says — not IDX, truncated, over the
 * limits, labels that do not match the images — is the reader's to describe
 * (it names the file and the byte that is wrong): it is asked, and stops at
 * the fault, before reading much. */
static mlc_status reader_says(const mlc_path *x, const mlc_path *y, mlc_diag *d)
{
	mlc_dataset ds = {0};
	mlc_status st = mlc_load_idx(x->path, y->path, &ds, d);
	mlc_dataset_free(&ds);
	if (st != MLC_OK)
		mlc_note_at(d, x->loc, "in the data set named here");
	return st;
}

/* An IDX file's dimensions from its header (raw or gzip'd); false if it is
 * not one: *items is the product of the dimensions, *fits whether a raw
 * file's size matches it. */
static bool idx_dims(const mlc_path *p, int *rank, int64_t *dim, int64_t *items, bool *fits)
{
	mlc_gz *gz = mlc_gz_open(p->path, NULL); /* errors (a directory: EISDIR) are the reader's */
	if (!gz)
		return false;
	unsigned char h[4 + 4 * IDX_MAX_RANK];
	int64_t got = mlc_gz_read(gz, h, 4);
	bool ok = got == 4 && h[0] == 0 && h[1] == 0 && h[2] == 0x08 && h[3] >= 1 && h[3] <= IDX_MAX_RANK;
	*items = 1;
	if (ok) {
		*rank = h[3];
		ok = mlc_gz_read(gz, h + 4, 4 * *rank) == 4 * *rank;
		for (int i = 0; ok && i < *rank; i++) {
			dim[i] = (int64_t)h[4 + 4 * i] << 24 | h[5 + 4 * i] << 16 | h[6 + 4 * i] << 8 | h[7 + 4 * i];
			if (__builtin_mul_overflow(*items, dim[i], items))
				*items = INT64_MAX;
		}
	}
	struct stat sb;
	bool regular = stat(p->path, &sb) == 0 && S_ISREG(sb.st_mode);
	*fits = !mlc_gz_direct(gz) || !regular || (ok && sb.st_size - (4 + 4 * *rank) == *items); /* items may be INT64_MAX */
	mlc_gz_close(gz);
	return ok && *items <= MLC_MAX_IDX_VALUES;
}

/* With data.inputs the values of a sample are split between inputs: the
 * loader checks those column ranges (batch.c); here only the default, every
 * feature to the first input. */
static mlc_status features_fit(const mlc_session *s, const mlc_path *p, int64_t feat, mlc_diag *d)
{
	int64_t want = mlc_numel(s->x, 1);
	if (feat == want || s->model->data.nfeeds > 0)
		return MLC_OK;
	char ty[96];
	mlc_error_at(d, p->loc, "'%s' has %lld feature%s per sample, but input '%s' is %s (%lld per sample)", p->path,
		     (long long)feat, MLC_S(feat), s->x->name, mlc_type_str(s->x, ty, sizeof ty), (long long)want);
	return MLC_EUSER;
}

static mlc_status check_idx(mlc_session *s, const mlc_path *x, const mlc_path *y, mlc_diag *d)
{
	int rx, ry = 1;
	int64_t dx[IDX_MAX_RANK], dy[IDX_MAX_RANK], nx, ny = 0;
	bool fx, fy = true;
	bool have_x = exists(x, d), have_y = !y->path || exists(y, d); /* both reported */
	if (!have_x || !have_y)
		return MLC_EUSER;
	if (!idx_dims(x, &rx, dx, &nx, &fx) || (y->path && !idx_dims(y, &ry, dy, &ny, &fy)) || !fx || !fy ||
	    (y->path && (ry != 1 || dy[0] != dx[0])))
		return reader_says(x, y, d);
	int64_t feat = 1;
	for (int i = 1; i < rx; i++)
		feat *= dx[i]; /* at most nx */
	mlc_status st = features_fit(s, x, feat, d);
	if (st != MLC_OK || !y->path)
		return st;
	/* the labels are one byte a sample: cheap enough to read whole */
	if (dy[0] > IDX_LABELS)
		return MLC_OK;
	mlc_gz *gz = mlc_gz_open(y->path, d);
	if (!gz)
		return MLC_EUSER;
	unsigned char skip[8];
	int64_t n = dy[0];
	unsigned char *b = mlc_xmalloc((size_t)(n ? n : 1));
	bool ok = mlc_gz_read(gz, skip, 8) == 8 && mlc_gz_read(gz, b, n) == n;
	mlc_gz_close(gz);
	if (!ok) {
		mlc_error_at(d, y->loc, "'%s' is truncated: its header declares %lld label%s", y->path, (long long)n,
			     MLC_S(n));
		free(b);
		return MLC_EUSER;
	}
	float *v = mlc_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		v[i] = b[i];
	st = targets_rule(s, v, n, 1, y->path, d);
	free(v);
	free(b);
	return st;
}

/* A CSV's first rows: the cell count against the input (after label_columns
 * targets), and those rows' targets against the loss. */
static mlc_status check_csv(mlc_session *s, const mlc_path *p, mlc_diag *d)
{
	if (!exists(p, d))
		return MLC_EUSER;
	FILE *f = fopen(p->path, "r");
	if (!f) {
		mlc_error_at(d, p->loc, "cannot read '%s': %s", p->path, strerror(errno));
		return MLC_EUSER;
	}
	int lc = s->model->data.label_columns; /* 0: every cell a feature (the loss's target is an input) */
	mlc_csv_header hdr = (mlc_csv_header)s->model->data.csv_header;
	char *line = mlc_xmalloc(CSV_BYTES);
	float *y = mlc_xmalloc(sizeof(float) * (size_t)(lc ? lc : 1) * CSV_ROWS);
	int64_t rows = 0, cells = -1;
	mlc_status st = MLC_OK;
	/* rows longer than CSV_BYTES, ragged rows and bad cells are the loader's
	 * to report, located; at most 2 * CSV_ROWS lines are read, blank or not
	 * (a file of NUL bytes has no line ends) */
	for (int r = 0; st == MLC_OK && rows < CSV_ROWS && r < 2 * CSV_ROWS && fgets(line, CSV_BYTES, f); r++) {
		size_t len = strlen(line);
		if (len + 1 == CSV_BYTES && line[len - 1] != '\n')
			break;
		int64_t n = 0;
		float vals[4096];
		bool numeric = true, blank = true;
		for (char *c = line, *end;; c = end + 1) {
			double v = strtod(c, &end);
			while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
				end++;
			numeric &= end != c && (*end == ',' || !*end);
			blank &= end == c && !*end;
			if (n < (int64_t)MLC_COUNTOF(vals))
				vals[n] = (float)v;
			n++;
			end = strchr(c, ',');
			if (!end)
				break;
		}
		if (blank)
			continue;
		if (r == 0 && hdr == MLC_HEADER_YES)
			continue;
		if (!numeric || n > (int64_t)MLC_COUNTOF(vals) || (cells >= 0 && n != cells)) {
			if (r == 0 && !numeric && hdr == MLC_HEADER_AUTO)
				continue; /* a header row */
			break;
		}
		cells = n;
		if (n <= lc || lc == 0)
			continue; /* the loader's error; no targets to check */
		memcpy(y + rows * lc, vals + n - lc, sizeof(float) * (size_t)lc);
		rows++;
	}
	fclose(f);
	if (cells > lc)
		st = features_fit(s, p, cells - lc, d);
	if (st == MLC_OK && rows > 0 && lc > 0)
		st = targets_rule(s, y, rows, lc, p->path, d);
	free(y);
	free(line);
	return st;
}

static mlc_status check_cifar(mlc_session *s, const mlc_path *files, int n, mlc_diag *d)
{
	bool ok = true;
	for (int i = 0; i < n; i++)
		ok &= exists(&files[i], d);
	if (!ok)
		return MLC_EUSER;
	return n ? features_fit(s, &files[0], CIFAR_RECORD - 1, d) : MLC_OK;
}

mlc_status mlc_session_check_data(mlc_session *s, mlc_diag *d)
{
	if (!s->model || !s->x || !s->pred)
		return MLC_OK;
	const mlc_data_cfg *c = &s->model->data;
	const mlc_path *xs[] = {&c->train_x, &c->test_x, &c->val_x}, *ys[] = {&c->train_y, &c->test_y, &c->val_y};
	const mlc_path *fs[] = {c->train_files, c->test_files, c->val_files};
	const int nf[] = {c->ntrain_files, c->ntest_files, c->nval_files};
	mlc_status st = MLC_OK;
	for (int k = 0; k < 3; k++) {
		mlc_status r = MLC_OK;
		if (c->format && strcmp(c->format, "csv") == 0)
			r = xs[k]->path ? check_csv(s, xs[k], d) : MLC_OK;
		else if (c->format && strcmp(c->format, "cifar10") == 0)
			r = check_cifar(s, fs[k], nf[k], d);
		else if (xs[k]->path)
			r = check_idx(s, xs[k], ys[k], d);
		st = st == MLC_OK ? r : st;
	}
	return st;
}
