/* data_feed.c — `data.inputs:`, which data feeds which model input: a
 * file of each set (IDX: `images` or another key of `train:`) and a range of
 * a sample's values (CSV: its feature columns), and the checks that every
 * input is fed and every file is read (docs/spec.md#inputs-from-the-data).
 * The files themselves are opened by the runtime (runtime/batch.c). */
#include "fe.h"

#include <string.h>

static const char *const feed_keys[] = {"file", "columns", NULL};

static bool is_csv(const mlc_data_cfg *c)
{
	return c->format && strcmp(c->format, "csv") == 0;
}

/* columns: [start, end], a half-open range of a sample's values. */
static bool read_columns(fe *f, const yt_node *v, mlc_feed_cfg *o)
{
	o->cols_loc = fe_mloc(f, v->loc);
	if (v->kind != YT_SEQ || v->n != 2) {
		mlc_error_at(f->d, v->loc, "expected '[start, end]' for 'columns' (0-based, end excluded), got %s",
			     fe_show(f, v));
		return false;
	}
	if (!fe_int(f, v->val[0], "columns", 0, INT32_MAX, &o->start) ||
	    !fe_int(f, v->val[1], "columns", 1, INT32_MAX, &o->end))
		return false;
	if (o->start >= o->end) {
		mlc_error_at(f->d, v->loc, "'columns' is [start, end) with start < end, got [%lld, %lld]",
			     (long long)o->start, (long long)o->end);
		return false;
	}
	return true;
}

static bool read_file_key(fe *f, const yt_node *v, const mlc_data_cfg *c, mlc_feed_cfg *o)
{
	const char *s = fe_str(f, v, "file");
	if (!s)
		return false;
	if (is_csv(c)) {
		mlc_error_at(f->d, v->loc, "with format: csv each set is one file; choose the input's values with "
			     "'{columns: [start, end]}'");
		return false;
	}
	if (c->format && strcmp(c->format, "cifar10") == 0 && strcmp(s, "images") != 0 && strcmp(s, "labels") != 0) {
		mlc_error_at(f->d, v->loc, "with format: cifar10 a set's files are 'images' and 'labels', got '%s'", s);
		return false;
	}
	o->file = mlc_arena_strdup(f->m->arena, s);
	o->cols_loc = fe_mloc(f, v->loc); /* the file's values are checked against the input there */
	return true;
}

/* One entry: `NAME: <file key>` or `NAME: {file: <key>, columns: [s, e]}`. */
static void read_feed(fe *f, const yt_node *k, const yt_node *v, const mlc_data_cfg *c, mlc_feed_cfg *o)
{
	o->loc = o->cols_loc = fe_mloc(f, k->loc);
	o->input = mlc_arena_strdup(f->m->arena, k->str);
	if (v->kind == YT_SCALAR && !yt_is_null(v))
		read_file_key(f, v, c, o);
	else if (v->kind != YT_MAP)
		mlc_error_at(f->d, v->loc, "expected a file key or a mapping for input '%s' (e.g. '{columns: [0, 4]}'"
			     " or '{file: images}'), got %s", k->str, fe_show(f, v));
	if (v->kind != YT_MAP)
		return;
	fe_check_keys(f, v, feed_keys, mlc_arena_printf(f->tmp, "in data.inputs.%s", k->str));
	const yt_node *file = yt_get(v, "file", NULL), *cols = yt_get(v, "columns", NULL);
	if (file)
		read_file_key(f, file, c, o);
	if (cols)
		read_columns(f, cols, o);
}

/* The model input called `name`, or NULL. */
static const fe_layer *find_input(const fe *f, const char *name)
{
	for (int i = 0; i < f->ninputs; i++)
		if (f->lay[i].name && strcmp(f->lay[i].name, name) == 0)
			return &f->lay[i];
	return NULL;
}

void fe_data_inputs(fe *f, const yt_node *v, mlc_data_cfg *c)
{
	if (!fe_expect_map(f, v, "inputs", "'{x: {columns: [0, 4]}}'"))
		return;
	mlc_feed_cfg *feeds = mlc_arena_alloc(f->m->arena, sizeof *feeds * (size_t)(v->n ? v->n : 1));
	const char **names = mlc_arena_alloc(f->tmp, sizeof *names * (size_t)(f->ninputs + 1));
	for (int i = 0; i < f->ninputs; i++)
		names[i] = f->lay[i].name ? f->lay[i].name : "";
	names[f->ninputs] = NULL;
	int n = 0;
	for (int i = 0; i < v->n; i++) {
		const yt_node *k = v->key[i];
		if (!find_input(f, k->str)) {
			const char *s = fe_suggest(f, k->str, names);
			mlc_error_at(f->d, k->loc, "data.inputs names '%s', which is not an input of the model; %s%s%s",
				     k->str, s ? "did you mean '" : "its inputs are ", s ? s : fe_join(f, names),
				     s ? "'?" : "");
			continue;
		}
		/* kept after an error too, so that the input is not also reported unfed */
		memset(&feeds[n], 0, sizeof feeds[n]);
		read_feed(f, k, v->val[i], c, &feeds[n++]);
	}
	c->feeds = feeds;
	c->nfeeds = n;
}

static bool fed(const mlc_data_cfg *c, const char *name)
{
	for (int i = 0; i < c->nfeeds; i++)
		if (strcmp(c->feeds[i].input, name) == 0)
			return true;
	return false;
}

static bool set_has(const mlc_more_file *m, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(m[i].key, key) == 0)
			return true;
	return false;
}

void fe_data_feeds_check(fe *f, mlc_data_cfg *c)
{
	/* every input but the first needs a source: only the first defaults to
	 * the images (all feature columns), as a one-input spec always has */
	for (int i = 1; i < f->ninputs; i++) {
		const fe_layer *l = &f->lay[i];
		if (!l->out || fed(c, l->name))
			continue;
		mlc_error_at(f->d, l->loc, "input '%s' is fed by no data: only the first input reads the data "
			     "by default; give it a source under data.inputs, e.g. '%s: %s'", l->name, l->name,
			     is_csv(c) ? "{columns: [0, 4]}" : "<a file key of train:>");
	}
	/* IDX: a file an input reads must be in every set given; every file is read */
	const struct {
		const char *what;
		const mlc_more_file *more;
		int n;
		bool given;
	} sets[] = {
		{"train", c->train_more, c->ntrain_more, c->train_x.path != NULL},
		{"test", c->test_more, c->ntest_more, c->test_x.path != NULL},
		{"validation", c->val_more, c->nval_more, c->val_x.path != NULL},
	};
	for (int i = 0; i < c->nfeeds; i++) {
		const mlc_feed_cfg *o = &c->feeds[i];
		if (!o->file || strcmp(o->file, "images") == 0 || strcmp(o->file, "labels") == 0)
			continue;
		for (size_t s = 0; s < MLC_COUNTOF(sets); s++)
			if (sets[s].given && !set_has(sets[s].more, sets[s].n, o->file))
				mlc_error_at(f->d, o->cols_loc, "input '%s' reads file '%s', which '%s' does not give",
					     o->input, o->file, sets[s].what);
	}
	for (size_t s = 0; s < MLC_COUNTOF(sets); s++)
		for (int j = 0; j < sets[s].n; j++) {
			const mlc_more_file *m = &sets[s].more[j];
			bool read = false;
			for (int i = 0; i < c->nfeeds && !read; i++)
				read = c->feeds[i].file && strcmp(c->feeds[i].file, m->key) == 0;
			if (!read)
				mlc_error_at(f->d, m->file.loc, "'%s' is a file that no input reads; name it in "
					     "data.inputs (e.g. '{x2: %s}') or remove it", m->key, m->key);
		}
}
