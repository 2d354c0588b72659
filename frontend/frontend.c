/* frontend.c — the frontend's entry points: reading the spec file, the top
 * level of the spec (which sections exist, in which combination), the model
 * name and the `inputs:` section; the sections themselves live in layers.c,
 * wiring.c and config.c. */
#include "fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { K_NAME, K_INPUTS, K_BLOCKS, K_LAYERS, K_GRAPH, K_OUTPUT, K_LOSS, K_OPTIMIZER, K_DATA, K_METRICS,
       K_INIT_FROM, K_CHECKPOINT, K_REGULARIZATION, K_COUNT };
static const char *const top_keys[K_COUNT + 1] = {"name", "inputs", "blocks", "layers", "graph",
						  "output", "loss", "optimizer", "data", "metrics",
						  "init_from", "checkpoint", "regularization", NULL};

enum { MAX_INPUT_RANK = MLC_MAX_RANK - 1 }; /* one dimension is the batch */

static bool model_name_char(char c)
{
	return c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* The spec's `name:`, or the file name without its folder and extension. */
static const char *model_name(fe *f, const yt_node *v)
{
	if (v) {
		const char *s = fe_str(f, v, "name");
		if (!s)
			return NULL;
		for (const char *p = s; *p; p++)
			if (!model_name_char(*p)) {
				mlc_error_at(f->d, v->loc,
					     "invalid model name %s: use letters, digits, '_', '-' and '.'",
					     fe_show(f, v));
				return NULL;
			}
		return s;
	}
	const char *base = strrchr(f->file, '/');
	base = base ? base + 1 : f->file;
	const char *dot = strrchr(base, '.');
	size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	char *s = mlc_arena_strndup(f->tmp, base, n);
	for (char *p = s; *p; p++)
		if (!model_name_char(*p))
			*p = '_';
	return *s ? s : "model";
}

typedef struct {
	fe_layer *l;
	int rank;                  /* 0 until a valid shape is read */
	int64_t dim[MLC_MAX_RANK];
	mlc_dtype dtype;           /* DT_F32 unless dtype: says */
	bool ok;
} input_ctx;

/* f32 (values), or i32 (ids: whole numbers, fed from CSV cells or IDX bytes). */
static void input_dtype(fe *f, void *ctx, const yt_node *v)
{
	input_ctx *c = ctx;
	static const char *const names[] = {"f32", "i32", NULL};
	static const mlc_dtype types[] = {DT_F32, DT_I32};
	for (int i = 0; v->kind == YT_SCALAR && names[i]; i++)
		if (strcmp(v->str, names[i]) == 0) {
			c->dtype = types[i];
			return;
		}
	mlc_error_at(f->d, v->loc, "unsupported dtype %s for input '%s'; expected f32 or i32 (ids)",
		     fe_show(f, v), c->l->name);
	c->ok = false;
}

/* shape: [d1, ...] → f32[N, d1, ...] */
static void input_shape(fe *f, void *ctx, const yt_node *v)
{
	input_ctx *c = ctx;
	c->ok = false; /* until proven otherwise; the missing-shape error is then skipped */
	c->rank = -1;
	if (v->kind != YT_SEQ || v->n == 0 || v->n > MAX_INPUT_RANK) {
		mlc_error_at(f->d, v->loc,
			     "expected a list of 1 to %d dimensions for 'shape' (the batch dimension is "
			     "implicit), got %s",
			     MAX_INPUT_RANK,
			     v->kind != YT_SEQ ? fe_show(f, v) : mlc_arena_printf(f->tmp, "%d", v->n));
		return;
	}
	bool ok = true;
	int64_t numel = 1;
	c->dim[0] = MLC_BATCH;
	for (int i = 0; i < v->n; i++) {
		if (!fe_int(f, v->val[i], "shape", 1, INT32_MAX, &c->dim[i + 1]))
			ok = false;
		else if (numel <= INT32_MAX) /* both factors fit 31 bits: no overflow */
			numel *= c->dim[i + 1];
	}
	if (ok && numel > INT32_MAX) {
		mlc_error_at(f->d, v->loc, "input '%s' has more than %d values per sample", c->l->name,
			     INT32_MAX);
		ok = false;
	}
	if (ok) {
		c->rank = v->n + 1;
		c->ok = true;
	}
}

static const fe_key input_keys[] = {{"shape", input_shape}, {"dtype", input_dtype}, {NULL, NULL}};

static void read_input(fe *f, fe_layer *l, const yt_node *v, bool named)
{
	input_ctx c = {.l = l, .ok = true, .dtype = DT_F32};
	if (!fe_expect_map(f, v, l->name, "'{shape: [784]}'"))
		return;
	static const char *const names[] = {"shape", "dtype", NULL};
	fe_read_keys(f, v, input_keys, &c, mlc_arena_printf(f->tmp, "in input '%s'", l->name));
	if (c.rank == 0 && !fe_misspelled(v, names[0], names))
		mlc_error_at(f->d, v->loc, "input '%s' needs a 'shape', e.g. 'shape: [784]'", l->name);
	if (c.rank <= 0 || !c.ok || !named)
		return;
	mlc_node *n = mlc_source(f->g, OP_INPUT, l->name, c.dtype, c.rank, c.dim, l->loc);
	l->out = mlc_ops[OP_INPUT].shape(n, f->d) ? n : NULL;
}

static void read_inputs(fe *f, const yt_node *v, mlc_loc key)
{
	if (!fe_expect_map(f, v, "inputs", "'x: {shape: [784]}'"))
		return;
	if (v->n == 0) {
		mlc_error_at(f->d, key, "'inputs' is empty; declare at least one, e.g. 'x: {shape: [784]}'");
		return;
	}
	for (int i = 0; i < v->n; i++) {
		const yt_node *k = v->key[i];
		int idx = f->nlay;
		fe_layer *l = fe_new_layer(f);
		fe_set_name(f, &f->top, l, k->str);
		l->name_loc = l->loc = k->loc;
		f->ninputs++;
		bool ok = fe_ident(f, k, "an input") != NULL;
		if (ok && strcmp(k->str, "labels") == 0) {
			mlc_error_at(f->d, k->loc, "the input name 'labels' is reserved for the training targets");
			ok = false;
		}
		ok &= fe_claim_name(f, &f->top, idx);
		read_input(f, l, v->val[i], ok);
	}
}

static void read_spec(fe *f, const yt_node *root)
{
	if (root->kind != YT_MAP) {
		mlc_error_at(f->d, root->loc,
			     "a spec is a mapping with keys such as 'inputs:', 'layers:' and 'loss:', got %s",
			     fe_show(f, root));
		return;
	}
	fe_check_keys(f, root, top_keys, "at the top level");
	const yt_node *v[K_COUNT];
	mlc_loc k[K_COUNT] = {{0}};
	for (int i = 0; i < K_COUNT; i++)
		v[i] = yt_get(root, top_keys[i], &k[i]);
	/* "missing 'loss'" after "unknown key 'los'; did you mean 'loss'?" says nothing new */
	bool absent[K_COUNT];
	for (int i = 0; i < K_COUNT; i++)
		absent[i] = !v[i] && !fe_misspelled(root, top_keys[i], top_keys);

	const char *gname = model_name(f, v[K_NAME]);
	if (gname)
		f->g->name = mlc_arena_strdup(f->g->arena, gname);
	if (v[K_INPUTS])
		read_inputs(f, v[K_INPUTS], k[K_INPUTS]);
	else if (absent[K_INPUTS])
		mlc_error_file(f->d, f->file, "the spec has no 'inputs'; declare them, e.g. "
			       "'inputs: {x: {shape: [784]}}'");
	if (v[K_BLOCKS])
		fe_blocks(f, v[K_BLOCKS], k[K_BLOCKS]);
	if (v[K_LAYERS] && v[K_GRAPH]) {
		mlc_loc kl = k[K_LAYERS], kg = k[K_GRAPH];
		bool graph_later = kg.line > kl.line || (kg.line == kl.line && kg.col > kl.col);
		mlc_error_at(f->d, graph_later ? kg : kl, "give either 'layers' or 'graph', not both");
		mlc_note_at(f->d, graph_later ? kl : kg, "'%s' is given here",
			    graph_later ? "layers" : "graph");
	} else if (v[K_LAYERS]) {
		if (v[K_OUTPUT])
			mlc_error_at(f->d, k[K_OUTPUT], "'output' is only used with 'graph:'; the output of "
				     "'layers:' is its last layer");
		fe_sequential(f, v[K_LAYERS], k[K_LAYERS]);
	} else if (v[K_GRAPH]) {
		fe_graph(f, v[K_GRAPH], k[K_GRAPH], v[K_OUTPUT]);
	} else if (absent[K_LAYERS] && absent[K_GRAPH]) {
		mlc_error_file(f->d, f->file, "the spec has no 'layers' (or 'graph'); list the model's "
			       "layers, e.g. 'layers: [{dense: 10}]'");
	}
	if (v[K_LOSS] && v[K_LOSS]->kind == YT_SEQ)
		fe_loss_list(f, v[K_LOSS], k[K_LOSS]);
	else if (v[K_LOSS])
		fe_loss(f, v[K_LOSS], k[K_LOSS]);
	else if (absent[K_LOSS])
		mlc_error_file(f->d, f->file, "the spec has no 'loss'; name one, e.g. "
			       "'loss: softmax_cross_entropy'");
	fe_penalties(f, v[K_REGULARIZATION], k[K_REGULARIZATION]);
	if (v[K_OPTIMIZER])
		fe_optimizer(f, v[K_OPTIMIZER], k[K_OPTIMIZER]);
	if (v[K_DATA])
		fe_data(f, v[K_DATA], k[K_DATA]);
	if (v[K_METRICS])
		fe_metrics(f, v[K_METRICS], k[K_METRICS]);
	if (v[K_INIT_FROM]) /* after the layers: it names them */
		fe_init_from(f, v[K_INIT_FROM], k[K_INIT_FROM]);
	if (v[K_CHECKPOINT])
		fe_checkpoint(f, v[K_CHECKPOINT], k[K_CHECKPOINT]);
}

static void set_defaults(mlc_model *m)
{
	mlc_data_cfg *c = &m->data;
	c->format = mlc_arena_strdup(m->arena, "idx");
	c->label_columns = 1;
	c->scale = 1.0;
	c->batch_size = 32;
	c->epochs = 10;
	c->shuffle = true;
	c->seed = 42;
	c->early = (mlc_early_cfg){.patience = 5, .restore_best = true};
	m->checkpoint.every_epochs = 1;
	c->loc = (mlc_loc){m->path, 0, 0};
	m->opt.type = mlc_arena_strdup(m->arena, "sgd");
	m->opt.lr = 0.01;
	m->opt.schedule = (mlc_sched_cfg){.decay_rate = 1, .warmup_start = 1.0 / 3, .patience = 10,
					  .factor = 0.1, .threshold = 1e-4};
	m->opt.update = OP_SGD;
	mlc_attrs_default(OP_SGD, &m->opt.attrs, m->arena);
	m->opt.loc = c->loc;
}

/* depth: 0 for the model, 1 for a distillation teacher it loads */
static mlc_status load_text(const char *path, const char *text, size_t len, mlc_diag *d, int depth,
			    mlc_model **out)
{
	MLC_ASSERT(path && (text || !len) && out);
	*out = NULL;
	if (len > YT_MAX_BYTES) {
		mlc_error_file(d, path, "the spec is %zu bytes; specs are limited to 16 MiB", len);
		return MLC_EUSER;
	}
	int errors = mlc_diag_errors(d);
	mlc_diag_add_source(d, path, text ? text : "", len);
	mlc_model *m = mlc_xmalloc(sizeof *m);
	m->arena = mlc_arena_new();
	m->path = mlc_arena_strdup(m->arena, path);
	set_defaults(m);
	m->graph = mlc_graph_new(NULL);

	fe f = {.d = d, .tmp = mlc_arena_new(), .m = m, .g = m->graph, .noted = errors, .depth = depth};
	f.top = (fe_scope){.prefix = "", .inst = -1};
	f.file = mlc_arena_strdup(m->graph->arena, path);
	const char *slash = strrchr(path, '/');
	f.dir = slash ? mlc_arena_strndup(f.tmp, path, (size_t)(slash - path) + 1) : "";
	f.g->name = mlc_arena_strdup(f.g->arena, model_name(&f, NULL));
	bool fatal;
	yt_node *root = yt_parse(f.file, text ? text : "", len, f.tmp, d, &fatal);
	if (root)
		read_spec(&f, root);
	else if (!fatal)
		mlc_error_at(d, (mlc_loc){f.file, 1, 1}, "the spec is empty; it needs at least 'inputs', "
			     "'layers' (or 'graph') and 'loss'");
	free(f.lay);
	free(f.inst);
	fe_names_free(&f.top.names);
	fe_names_free(&f.block_names);
	mlc_arena_free(f.tmp);
	if (mlc_diag_errors(d) > errors) {
		mlc_model_free(m);
		return MLC_EUSER;
	}
	*out = m;
	return MLC_OK;
}

mlc_status mlc_frontend_load_text(const char *path, const char *text, size_t len, mlc_diag *d,
				  mlc_model **out)
{
	return load_text(path, text, len, d, 0, out);
}

/* Reads at most one byte past the limit, so a huge file or an endless pipe
 * is refused without being swallowed whole. */
static mlc_status load_file(const char *path, mlc_diag *d, int depth, mlc_model **out)
{
	*out = NULL;
	size_t n;
	char *buf = mlc_read_file_max(path, YT_MAX_BYTES, &n);
	if (!buf && errno == EFBIG) {
		mlc_error_file(d, path, "the spec is larger than 16 MiB; specs are limited to 16 MiB");
		return MLC_EUSER;
	}
	if (!buf) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return MLC_EIO;
	}
	mlc_status st = load_text(path, buf, n, d, depth, out);
	free(buf);
	return st;
}

mlc_status mlc_frontend_load(const char *path, mlc_diag *d, mlc_model **out)
{
	return load_file(path, d, 0, out);
}

mlc_status fe_load_teacher(fe *f, const char *path, mlc_model **out)
{
	return load_file(path, f->d, f->depth + 1, out);
}

void mlc_model_free(mlc_model *m)
{
	if (!m)
		return;
	mlc_graph_free(m->graph);
	mlc_arena_free(m->arena);
	free(m);
}
