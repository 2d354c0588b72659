/* checkpoint.c — checkpoints: the parameter arena (weights, optimizer state,
 * batchnorm statistics: every param and state node under its name), early
 * stopping's best arena as "mlc.best", and the loop's position and
 * decisions in the safetensors __metadata__ (doubles as C99 hex floats, so
 * they come back exact). Written through the atomic writer. */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { VERSION = 2 }; /* 2: the divergence baseline and the epoch's perplexity sum */
static const char FORMAT[] = "mlc-checkpoint";
static const char BEST[] = "mlc.best";

static bool in_arena(const mlc_node *n)
{
	return !n->dead && (n->op == OP_PARAM || n->op == OP_STATE);
}

/* FNV-1a over what makes two models' arenas interchangeable: every param
 * and state tensor's name and shape, and the optimizer's update op. */
static uint64_t signature(const mlc_graph *g)
{
	uint64_t h = 0xcbf29ce484222325u;
#define MIX(p, n)                                                                       \
	for (size_t i_ = 0; i_ < (n); i_++)                                             \
		h = (h ^ ((const unsigned char *)(p))[i_]) * 0x100000001b3u
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (in_arena(n)) {
			MIX(n->name, strlen(n->name) + 1);
			MIX(&n->rank, sizeof n->rank);
			MIX(n->dim, sizeof(int64_t) * (size_t)n->rank);
		} else if (!n->dead && mlc_op_is_update(n->op)) {
			MIX(mlc_ops[n->op].name, strlen(mlc_ops[n->op].name) + 1);
		}
	}
#undef MIX
	return h;
}

/* ---- writing ---- */

typedef struct {
	mlc_arena *a;
	const char **kv;
	int n, cap;
} meta;

static void put(meta *m, const char *key, const char *val)
{
	if (m->n + 3 > m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		const char **kv = mlc_xmalloc(sizeof *kv * (size_t)m->cap);
		if (m->kv)
			memcpy(kv, m->kv, sizeof *kv * (size_t)m->n);
		free(m->kv);
		m->kv = kv;
	}
	m->kv[m->n++] = key;
	m->kv[m->n++] = val;
	m->kv[m->n] = NULL;
}

#define PUTF(m, key, ...) put(m, key, mlc_arena_printf((m)->a, __VA_ARGS__))

static const char *rng_text(mlc_arena *a, const mlc_rng *r)
{
	return mlc_arena_printf(a, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, r->s[0], r->s[1],
				r->s[2], r->s[3]);
}

static const char *counts_text(mlc_arena *a, const int64_t *v, int64_t n)
{
	size_t cap = (size_t)n * 21 + 1, len = 0;
	char *s = mlc_arena_alloc(a, cap);
	for (int64_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%" PRId64, i ? "," : "", v[i]);
	return s;
}

mlc_status mlc_ckpt_write(mlc_session *s, const char *path, const mlc_ckpt *c, mlc_diag *d)
{
	mlc_graph *g = s->graph;
	mlc_tensor *t = mlc_xmalloc(sizeof(mlc_tensor) * (size_t)(g->nnode + 2));
	int nt = mlc_arena_tensors(s, true, t); /* borrowed, as everything in t */
	if (c->best)
		t[nt++] = (mlc_tensor){.name = (char *)BEST, .rank = 1, .dim = {g->param_size}, .data = c->best};
	meta m = {.a = mlc_arena_new()};
	put(&m, "format", FORMAT);
	PUTF(&m, "version", "%d", VERSION);
	put(&m, "model", g->name ? g->name : "");
	PUTF(&m, "signature", "%016" PRIx64, signature(g));
	PUTF(&m, "seed", "%" PRIu64, c->seed);
	PUTF(&m, "batch", "%" PRId64, c->batch);
	PUTF(&m, "samples", "%" PRId64, c->n);
	PUTF(&m, "train_samples", "%" PRId64, c->ntrain);
	PUTF(&m, "epoch", "%d", c->epoch);
	PUTF(&m, "pos", "%" PRId64, c->pos);
	PUTF(&m, "step", "%" PRIu32, c->step);
	put(&m, "rng0", rng_text(m.a, &c->rng0));
	put(&m, "rng", rng_text(m.a, &c->rng));
	PUTF(&m, "lr", "%a", c->cur_lr);
	PUTF(&m, "plateau_best", "%a", c->plateau.best);
	PUTF(&m, "plateau_bad", "%d", c->plateau.bad);
	PUTF(&m, "early_best", "%a", c->early.best);
	PUTF(&m, "early_best_epoch", "%d", c->early.best_epoch);
	PUTF(&m, "early_wait", "%d", c->early.wait);
	PUTF(&m, "stopped", "%d", c->stopped);
	PUTF(&m, "first_loss", "%a", c->first_loss);
	PUTF(&m, "epoch_loss", "%a", c->ep_loss);
	PUTF(&m, "epoch_seen", "%" PRId64, c->ep_seen);
	const mlc_metrics *em = c->ep_m;
	PUTF(&m, "metrics", "%" PRId64 " %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %a %a %a", em->nclasses,
	     em->topk, em->seen, em->correct, em->top_correct, em->nvalues, em->se, em->ae, em->nll);
	if (em->nclasses > 0)
		put(&m, "confusion", counts_text(m.a, em->confusion, em->nclasses * em->nclasses));
	mlc_status st = mlc_safetensors_write(path, t, nt, m.kv, d);
	free(m.kv);
	mlc_arena_free(m.a);
	free(t);
	return st;
}

/* ---- a resumed run's log ---- */

/* The N of a line that starts as an epoch record, {"epoch": N, ...; else 0. */
static int epoch_record(const char *line, size_t len)
{
	char head[32];
	snprintf(head, sizeof head, "%.*s", (int)(len < sizeof head - 1 ? len : sizeof head - 1), line);
	int n = 0, at = 0;
	return sscanf(head, "{\"epoch\": %d,%n", &n, &at) == 1 && at > 0 && n > 0 ? n : 0;
}

mlc_status mlc_log_trim(const char *path, int epoch, int *kept, int *dropped, mlc_diag *d)
{
	size_t len;
	char *text = mlc_read_file_max(path, MLC_MAX_FILE_BYTES, &len);
	*dropped = 0;
	*kept = MLC_LOG_FOREIGN;
	if (!text && errno == ENOENT) {
		*kept = MLC_LOG_MISSING;
		return MLC_OK;
	}
	if (!text && errno == EFBIG)
		return MLC_OK;
	if (!text) {
		mlc_error_file(d, path, "cannot read the training log: %s", strerror(errno));
		return MLC_EIO;
	}
	int n = 0;
	size_t cut = 0; /* bytes kept */
	bool foreign = false;
	for (const char *p = text, *end = text + len; p < end && !foreign;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int e = epoch_record(p, ll);
		if (nl && e && e == n + 1 && e < epoch && *dropped == 0) {
			n++;
			cut = (size_t)(nl + 1 - text);
		} else if (nl && !e && strncmp(p, "{\"test\": ", ll < 9 ? ll : 9) != 0) {
			foreign = true; /* a complete line mlc does not write */
		} else {
			++*dropped;
		}
		p = nl ? nl + 1 : end;
	}
	if (foreign || n != epoch - 1) {
		*dropped = 0;
		free(text);
		return MLC_OK;
	}
	*kept = n;
	mlc_status st = MLC_OK;
	if (*dropped > 0) {
		mlc_atomic a;
		if ((st = mlc_atomic_open(&a, path, d)) == MLC_OK) {
			fwrite(text, 1, cut, a.f);
			st = mlc_atomic_commit(&a, d);
		}
	}
	free(text);
	return st;
}

/* ---- reading ---- */

typedef struct {
	const char *path;
	char **kv;
	mlc_diag *d;
	bool ok;
} reader;

static const char *get(reader *r, const char *key)
{
	for (int i = 0; r->kv && r->kv[i]; i += 2)
		if (strcmp(r->kv[i], key) == 0)
			return r->kv[i + 1];
	return NULL;
}

static void invalid(reader *r, const char *key)
{
	if (r->ok)
		mlc_error_file(r->d, r->path, "checkpoint metadata '%s' is %s", key, get(r, key) ? "invalid" : "missing");
	r->ok = false;
}

/* A value this run cannot have written: the key, the value and what it can be. */
static void out_of_range(reader *r, const char *key, const char *range)
{
	if (r->ok)
		mlc_error_file(r->d, r->path, "checkpoint metadata '%s' is %s, which this run cannot have written "
			       "(%s)", key, get(r, key), range);
	r->ok = false;
}

static int64_t get_int(reader *r, const char *key, int64_t lo, int64_t hi)
{
	const char *s = get(r, key);
	char *end;
	errno = 0;
	long long v = s ? strtoll(s, &end, 10) : 0;
	if (!s || end == s || *end || (errno && errno != ERANGE)) {
		invalid(r, key);
		return lo;
	}
	if (errno == ERANGE || v < lo || v > hi) {
		char range[96];
		snprintf(range, sizeof range, "%lld to %lld", (long long)lo, (long long)hi);
		out_of_range(r, key, range);
		return lo;
	}
	return v;
}

/* A C99 hex float (or any strtod number); NaN never: no state holds one. */
static double get_num(reader *r, const char *key)
{
	const char *s = get(r, key);
	char *end;
	double v = s ? strtod(s, &end) : 0;
	if (!s || end == s || *end) {
		invalid(r, key);
		return 0;
	}
	if (isnan(v)) {
		out_of_range(r, key, "a number");
		return 0;
	}
	return v;
}

static double get_finite(reader *r, const char *key)
{
	double v = get_num(r, key);
	if (!isfinite(v))
		out_of_range(r, key, "a finite number");
	return isfinite(v) ? v : 0;
}

static void get_rng(reader *r, const char *key, mlc_rng *out)
{
	const char *s = get(r, key);
	int len = 0;
	if (!s || sscanf(s, "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 "%n", &out->s[0], &out->s[1],
			 &out->s[2], &out->s[3], &len) != 4 || s[len] ||
	    (out->s[0] | out->s[1] | out->s[2] | out->s[3]) == 0)
		invalid(r, key);
}

/* The running metrics of the epoch in progress (`seen` samples so far),
 * into this run's accumulator; counts beyond `seen` are refused. */
static void get_metrics(reader *r, mlc_metrics *m, int64_t seen_max, int64_t width)
{
	const char *s = get(r, "metrics");
	long long nc = 0, seen, correct, top, nvalues;
	int topk = 0, len = 0;
	double se, ae, nll;
	if (!s || sscanf(s, "%lld %d %lld %lld %lld %lld %la %la %la%n", &nc, &topk, &seen, &correct, &top, &nvalues,
			 &se, &ae, &nll, &len) != 9 || s[len] || nc != m->nclasses || topk != m->topk) {
		invalid(r, "metrics");
		return;
	}
	if (seen < 0 || seen > seen_max || correct < 0 || correct > seen || top < 0 || top > seen || nvalues < 0 ||
	    nvalues > seen_max * width || !(se >= 0 && se < HUGE_VAL) || !(ae >= 0 && ae < HUGE_VAL) ||
	    !isfinite(nll)) {
		out_of_range(r, "metrics", "counts from 0 to the epoch's samples, finite sums");
		return;
	}
	m->seen = seen, m->correct = correct, m->top_correct = top, m->nvalues = nvalues, m->se = se, m->ae = ae;
	m->nll = nll;
	if (m->nclasses == 0)
		return;
	const char *p = get(r, "confusion");
	int64_t sum = 0;
	for (int64_t i = 0; p && i < m->nclasses * m->nclasses; i++) {
		char *end;
		errno = 0;
		m->confusion[i] = strtoll(p, &end, 10);
		bool last = i + 1 == m->nclasses * m->nclasses;
		if (errno || end == p || *end != (last ? '\0' : ',') || m->confusion[i] < 0 ||
		    m->confusion[i] > seen - sum) {
			p = NULL;
			break;
		}
		sum += m->confusion[i];
		p = end + !last;
	}
	if (!p)
		invalid(r, "confusion");
}

/* What the run must share with the one that wrote the checkpoint. */
static void same(reader *r, const char *what, int64_t mine, int64_t theirs)
{
	if (r->ok && mine != theirs) {
		mlc_error_file(r->d, r->path, "was written by a run with %s %lld; this run has %lld (resume with the "
			       "same settings)", what, (long long)theirs, (long long)mine);
		r->ok = false;
	}
}

/* The loop's position and decisions, each within what this run can have
 * written: a hand-edited or corrupted value is an error naming its key, never
 * a hang (an epoch of 2e9 to replay), an overflow or a run that trains on
 * garbage (a NaN learning rate). The bounds follow from the loop in train.c:
 * step counts the batches before (epoch, pos), an epoch-end decision's
 * counters count ended epochs, the running sums count the epoch's samples. */
static void get_state(reader *r, mlc_ckpt *c, int64_t width)
{
	char range[160];
	int64_t nb = (c->ntrain + c->batch - 1) / c->batch;
	c->epoch = (int)get_int(r, "epoch", 1, (int64_t)c->epochs + 1);
	if (!r->ok && get(r, "epoch")) { /* say how to go on: a longer run */
		mlc_note_at(r->d, (mlc_loc){r->path, 0, 0}, "this run trains %d epochs; --epochs sets more", c->epochs);
		return;
	}
	c->pos = get_int(r, "pos", 0, c->epoch > c->epochs ? 0 : c->ntrain);
	if (r->ok && c->pos % c->batch && c->pos != c->ntrain) {
		snprintf(range, sizeof range, "a multiple of the batch size %lld, or %lld", (long long)c->batch,
			 (long long)c->ntrain);
		out_of_range(r, "pos", range);
	}
	int64_t steps = (int64_t)(c->epoch - 1) * nb + (c->pos + c->batch - 1) / c->batch;
	int64_t step = get_int(r, "step", 0, UINT32_MAX);
	if (r->ok && step != steps) {
		snprintf(range, sizeof range, "%lld: the batches before epoch %d, sample %lld", (long long)steps, c->epoch,
			 (long long)c->pos);
		out_of_range(r, "step", range);
	}
	c->step = (uint32_t)step;
	get_rng(r, "rng0", &c->rng0);
	get_rng(r, "rng", &c->rng);
	c->cur_lr = get_finite(r, "lr");
	if (r->ok && (c->lr_varies ? !(c->cur_lr >= 0 && c->cur_lr <= c->base_lr) : c->cur_lr != c->base_lr)) {
		snprintf(range, sizeof range, c->lr_varies ? "0 to this run's learning rate %g" : "this run's learning "
			 "rate %g: resume with the same lr", c->base_lr);
		out_of_range(r, "lr", range);
	}
	int ended = c->epoch - 1; /* epochs whose end decisions were taken */
	c->plateau.best = get_num(r, "plateau_best");
	c->plateau.bad = (int)get_int(r, "plateau_bad", 0, ended);
	const mlc_early_cfg *es = c->early_cfg;
	c->early.best_epoch = (int)get_int(r, "early_best_epoch", 0, es ? ended : 0);
	c->early.best = c->early.best_epoch ? get_finite(r, "early_best") : NAN;
	c->early.wait = (int)get_int(r, "early_wait", 0, c->early.best_epoch ? ended - c->early.best_epoch : 0);
	c->stopped = get_int(r, "stopped", 0, es && c->pos == 0 ? 1 : 0) != 0;
	c->first_loss = c->step ? get_finite(r, "first_loss") : 0;
	c->ep_loss = get_finite(r, "epoch_loss");
	/* mid-epoch the sums are of the epoch's pos samples; at an epoch's end of the whole (unused) */
	int64_t seen_max = c->pos ? c->pos : c->ntrain;
	c->ep_seen = get_int(r, "epoch_seen", c->pos, seen_max);
	get_metrics(r, c->ep_m, seen_max, width);
}

static uint64_t get_u64(reader *r, const char *key)
{
	const char *s = get(r, key);
	char *end;
	errno = 0;
	unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
	if (!s || *s < '0' || *s > '9' || *end || errno)
		invalid(r, key);
	return v;
}

mlc_status mlc_ckpt_read_state(char **kv, const char *path, mlc_ckpt *c, int64_t width, mlc_diag *d)
{
	reader r = {path, kv, d, true};
	uint64_t seed = get_u64(&r, "seed");
	if (r.ok && seed != c->seed) {
		mlc_error_file(d, path, "was written by a run with seed %llu; this run has %llu (resume with the same "
			       "settings)", (unsigned long long)seed, (unsigned long long)c->seed);
		r.ok = false;
	}
	same(&r, "batch size", c->batch, get_int(&r, "batch", 1, INT64_MAX));
	same(&r, "training samples", c->n, get_int(&r, "samples", 0, INT64_MAX));
	same(&r, "samples left after validation_split", c->ntrain, get_int(&r, "train_samples", 0, INT64_MAX));
	if (r.ok)
		get_state(&r, c, width);
	return r.ok ? MLC_OK : MLC_EUSER;
}

/* Every param and state node from its tensor; nothing missing, nothing extra. */
static mlc_status load_arena(mlc_session *s, const char *path, mlc_tensor *t, int nt, mlc_ckpt *c, mlc_diag *d)
{
	mlc_graph *g = s->graph;
	bool *used = mlc_xmalloc(sizeof(bool) * (size_t)(nt + 1));
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *p = g->node[i];
		if (!in_arena(p))
			continue;
		int k = 0;
		while (k < nt && strcmp(t[k].name, p->name) != 0)
			k++;
		if (k == nt || !mlc_tensor_fits(&t[k], p)) {
			char ty[96];
			mlc_error_file(d, path, "checkpoint %s tensor '%s' %s", k < nt ? "has a wrong shape for" : "has no",
				       p->name, mlc_type_str(p, ty, sizeof ty));
			free(used);
			return MLC_EUSER;
		}
		used[k] = true;
		memcpy(s->params + p->offset, t[k].data, (size_t)mlc_numel(p, 1) * 4);
	}
	bool have_best = false;
	for (int k = 0; k < nt; k++) {
		if (used[k])
			continue;
		if (strcmp(t[k].name, BEST) == 0 && c->best && t[k].rank == 1 && t[k].dim[0] == g->param_size) {
			memcpy(c->best, t[k].data, sizeof(float) * (size_t)g->param_size);
			have_best = true;
			continue;
		}
		mlc_error_file(d, path, "checkpoint tensor '%s' matches nothing of the model", t[k].name);
		free(used);
		return MLC_EUSER;
	}
	free(used);
	if (c->best && c->early.best_epoch > 0 && !have_best) {
		mlc_error_file(d, path, "checkpoint has no tensor '%s' (the weights of epoch %d, which early stopping "
			       "restores)", BEST, c->early.best_epoch);
		return MLC_EUSER;
	}
	return MLC_OK;
}

mlc_status mlc_ckpt_read(mlc_session *s, const char *path, mlc_ckpt *c, mlc_diag *d)
{
	mlc_tensor *t;
	int nt;
	char **kv;
	mlc_status st = mlc_safetensors_read_meta(path, &t, &nt, &kv, d);
	if (st != MLC_OK)
		return st;
	reader r = {path, kv, d, true};
	const char *format = get(&r, "format");
	const char *model = get(&r, "model");
	const char *sig = get(&r, "signature");
	char mine[17];
	snprintf(mine, sizeof mine, "%016" PRIx64, signature(s->graph));
	if (!format || strcmp(format, FORMAT) != 0) {
		bool weights = format && strcmp(format, "mlc") == 0;
		mlc_error_file(d, path, "is not an mlc checkpoint%s", weights ? " but a weights file (--save); start "
			       "from it with --weights" : " (its metadata has no format 'mlc-checkpoint')");
		r.ok = false;
	} else if (get_int(&r, "version", 0, INT32_MAX) != VERSION) {
		if (r.ok)
			mlc_error_file(d, path, "is a version %s checkpoint; this mlc reads version %d", get(&r, "version"),
				       VERSION);
		r.ok = false;
	} else if (!sig || strcmp(sig, mine) != 0) {
		mlc_error_file(d, path, "is a checkpoint of another model ('%s': its parameters, their shapes or the "
			       "optimizer differ from those of '%s')", model ? model : "?", s->graph->name);
		r.ok = false;
	}
	if (r.ok && mlc_ckpt_read_state(kv, path, c, mlc_pred_width(s), d) != MLC_OK)
		r.ok = false;
	st = r.ok ? load_arena(s, path, t, nt, c, d) : MLC_EUSER;
	free(kv);
	mlc_tensors_free(t, nt);
	return st;
}
