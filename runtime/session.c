/* session.c — the driver: spec or IR text → passes → (lazily) JIT, plus the
 * summary table and code emission. The one place that reads top to bottom
 * through the pipeline. */
#include "session.h"

#include "pool.h"

#include <cblas.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double mlc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static mlc_status load_ir(mlc_session *s, const char *path, mlc_diag *d)
{
	size_t len;
	char *text = mlc_read_file_max(path, MLC_MAX_FILE_BYTES, &len);
	if (!text && errno == EFBIG) {
		mlc_error_file(d, path, "larger than %zu GiB, the limit for an IR text file", MLC_MAX_FILE_BYTES >> 30);
		return MLC_EUSER;
	}
	if (!text) {
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
		return MLC_EIO;
	}
	mlc_status st = mlc_graph_parse(path, text, d, &s->graph);
	free(text);
	return st;
}

/* --spec: an IR text trains (evaluates, predicts) with a spec's data,
 * optimizer, metrics and checkpoints; the spec's own graph is replaced. */
static mlc_status adopt_spec(mlc_session *s, const char *spec, mlc_diag *d)
{
	if (!ends_with(spec, ".yaml") && !ends_with(spec, ".yml")) {
		mlc_error_file(d, NULL, "--spec '%s' is not a YAML spec (.yaml or .yml)", spec);
		return MLC_EUSER;
	}
	mlc_status st = mlc_frontend_load(spec, d, &s->model);
	if (st != MLC_OK)
		return st;
	mlc_graph_free(s->model->graph);
	s->model->graph = s->graph;
	return MLC_OK;
}

/* The labels input, and every other input with where data.inputs feeds it
 * from: the first input by default reads all of the main file's features;
 * another without a source is marked unfed (col -1), an error when data is
 * loaded (the frontend reports it first for a spec). */
static void find_io(mlc_session *s)
{
	mlc_graph *g = s->graph;
	const mlc_data_cfg *c = s->model ? &s->model->data : NULL;
	s->feed = mlc_xmalloc(sizeof *s->feed * (size_t)(g->nnode ? g->nnode : 1));
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || n->op != OP_INPUT)
			continue;
		if (strcmp(n->name, "labels") == 0) {
			s->y = n;
			continue;
		}
		mlc_feed *f = &s->feed[s->nfeed++];
		*f = (mlc_feed){.in = n, .col = s->nfeed == 1 ? 0 : -1};
		for (int k = 0; c && k < c->nfeeds; k++)
			if (strcmp(c->feeds[k].input, n->name) == 0) {
				f->cfg = &c->feeds[k];
				f->col = f->cfg->start;
			}
	}
	s->x = s->nfeed ? s->feed[0].in : NULL;
	s->loss = mlc_graph_find_ret(g, "loss");
	s->pred = mlc_graph_find_ret(g, "pred");
	s->loss_term = mlc_graph_main_loss(g);
	mlc_node *t = s->loss_term && s->loss_term->nsrc > 1 ? s->loss_term->src[1] : NULL;
	s->target = t && t->op == OP_INPUT && t != s->y ? t : NULL;
}

static bool known_pass(const char *flag, const char *name, bool all_ok, mlc_diag *d)
{
	if (!name || (all_ok && strcmp(name, "all") == 0))
		return true;
	for (int i = 0; mlc_pass_names[i]; i++)
		if (strcmp(mlc_pass_names[i], name) == 0)
			return true;
	const char *hint = mlc_suggest(name, mlc_pass_names);
	char list[128] = "";
	for (int i = 0; mlc_pass_names[i]; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", mlc_pass_names[i]);
	mlc_error_file(d, NULL, "unknown pass '%s' for --%s%s%s%s (passes: %s)", name, flag,
		       hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "", list);
	return false;
}

/* --checkpoint's template, and keep (--checkpoint-keep or the spec's) only
 * with a template: the spec's own are checked by the frontend. */
static bool ckpt_options_ok(const mlc_session *s, mlc_diag *d)
{
	const mlc_options *o = &s->opt;
	const mlc_ckpt_cfg *kc = s->model ? &s->model->checkpoint : NULL;
	bool templated = kc && kc->templated;
	char why[256];
	if (o->checkpoint && !mlc_ckpt_template_check(o->checkpoint, &templated, why, sizeof why)) {
		mlc_error_file(d, NULL, "--checkpoint '%s' %s", o->checkpoint, why);
		return false;
	}
	const char *path = o->checkpoint ? o->checkpoint : kc ? kc->path.path : NULL;
	if (o->checkpoint_keep > 0 && !path) {
		mlc_error_file(d, NULL, "--checkpoint-keep needs a checkpoint path with {epoch} or {step} (--checkpoint "
			       "'ckpt-{epoch}.safetensors', or the spec's checkpoint: path)");
		return false;
	}
	if (!path || templated)
		return true;
	if (o->checkpoint_keep > 0) {
		mlc_error_file(d, NULL, "--checkpoint-keep needs a checkpoint path with {epoch} or {step} (as "
			       "'ckpt-{epoch}.safetensors'): '%s' has none, so every checkpoint replaces the previous "
			       "file", path);
		return false;
	}
	if (kc && kc->keep > 0) { /* the spec's keep with --checkpoint's plain path */
		mlc_error_at(d, kc->keep_loc, "'keep' needs a checkpoint path with {epoch} or {step}, and --checkpoint "
			     "'%s' has none", path);
		return false;
	}
	return true;
}

/* Each thread that runs an OpenBLAS kernel takes a buffer of 128 MiB (its
 * BUFFER_SIZE; measured: a 134,221,824-byte malloc), and when that malloc
 * fails OpenBLAS retries forever, ignoring SIGTERM. Its worker threads,
 * started when the library loads (one per core), take theirs at once, and
 * exit() joins them: under `ulimit -v 400000` even an error hung. So a
 * the mlc program, under an address-space limit too small for them, starts
 * again with OPENBLAS_NUM_THREADS=1 before anything else runs (cli/main.c:
 * a library does not re-execute its host), and a session checks that the
 * main thread's buffer fits. */
enum { BLAS_BUFFER = 134221824, BLAS_SLACK = 16 << 20 };

static mlc_status blas_fits(mlc_session *s, int pool, int *blas, mlc_diag *d)
{
	struct rlimit rl;
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	bool known = f && fscanf(f, "%ld", &pages) == 1;
	if (f)
		fclose(f);
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || !known)
		return MLC_OK;
	int64_t used = (int64_t)pages * sysconf(_SC_PAGESIZE), left = (int64_t)rl.rlim_cur - used - BLAS_SLACK;
	int64_t fit = left > 0 ? left / BLAS_BUFFER : 0;
	(void)pool; /* the pool's threads share the buffers of small kernels; not counted */
	if (fit >= 1) {
		*blas = fit < *blas ? (int)fit : *blas;
		return MLC_OK;
	}
	mlc_error_file(d, s->path,
		       "cannot run under an address-space limit of %lld KB: %lld KB are in use and OpenBLAS needs "
		       "%d MiB more for its buffer (raise ulimit -v)",
		       (long long)(rl.rlim_cur >> 10), (long long)(used >> 10), BLAS_BUFFER >> 20);
	return MLC_EUSER;
}

mlc_status mlc_session_open(const char *path, const mlc_options *o, mlc_diag *d, mlc_session **out)
{
	*out = NULL;
	if (!known_pass("print-after", o->print_after, true, d) || !known_pass("print-before", o->print_before, true, d) ||
	    !known_pass("stop-after", o->stop_after, false, d))
		return MLC_EUSER;
	if (o->threads < 0 || o->threads > MLC_MAX_THREADS) {
		mlc_error_file(d, NULL, "--threads %d: must be from 1 to %d (the thread pool's size)", o->threads,
			       MLC_MAX_THREADS);
		return MLC_EUSER;
	}
	mlc_session *s = mlc_xmalloc(sizeof *s);
	s->opt = *o;
	s->path = path;
	s->log = o->log ? o->log : stdout;
	mlc_status st;
	bool ir = ends_with(path, ".ir");
	if (!ir && o->spec) {
		mlc_error_file(d, NULL, "--spec gives an IR text its training configuration; '%s' is a spec already",
			       path);
		st = MLC_EUSER;
	} else if (ir) {
		st = load_ir(s, path, d);
		if (st == MLC_OK && o->spec)
			st = adopt_spec(s, o->spec, d);
	} else if ((st = mlc_frontend_load(path, d, &s->model)) == MLC_OK) {
		s->graph = s->model->graph;
	}
	if (st == MLC_OK && !ckpt_options_ok(s, d))
		st = MLC_EUSER;
	if (st != MLC_OK) {
		mlc_session_close(s);
		return st;
	}
	mlc_pass_opts po = {
		.wrt_inputs = o->wrt_inputs,
		.no_update = o->no_update,
		.print_before = o->print_before,
		.print_after = o->print_after,
		.print_to = o->print_to,
		.only = o->passes,
		.resume = ir,
		.source = path,
		.threads = o->threads > 0 ? o->threads : mlc_pool_default_threads(),
		.no_fuse = o->no_fuse,
		.fuse_off = o->fuse_off,
	};
	s->batch = o->batch_size > 0 ? o->batch_size : s->model ? s->model->data.batch_size : 64;
	if (s->model) {
		po.momentum = s->model->opt.momentum;
		po.nesterov = s->model->opt.nesterov;
		po.update = s->model->opt.update;
		po.update_attrs = &s->model->opt.attrs;
		po.clip_norm = s->model->opt.clip_norm;
		po.clip_value = s->model->opt.clip_value;
	}
	po.max_batch = s->batch;
	uint64_t seed = o->seed_set ? o->seed : s->model ? s->model->data.seed : 42;
	mlc_rng_seed(&s->rng, seed);
	s->seed = (uint32_t)(seed ^ seed >> 32);
	double t0 = mlc_now();
	/* IR text resumes after the passes it shows done (so `mlc ir x.ir` of a
	 * planned graph round-trips, and a graph after autodiff goes on to the
	 * optimizer, fusion and the plan). */
	st = mlc_run_passes(s->graph, &po, o->stop_after, d);
	if (st != MLC_OK) {
		mlc_session_close(s);
		return st;
	}
	s->planned = s->graph->act_size > 0;
	if (o->verbose)
		fprintf(s->log, "passes: %.1f ms\n", 1e3 * (mlc_now() - t0));
	find_io(s);
	/* Kernels split over the pool call OpenBLAS from every thread, so it must
	 * not start threads of its own (they spin-wait and would take the other
	 * cores); a graph planned for one thread (or IR text planned without
	 * threads) leaves the cores to OpenBLAS. The setting is process-wide. */
	int blas = s->graph->threads > 1 ? 1 : po.threads;
	st = blas_fits(s, s->graph->threads > 1 ? s->graph->threads : 1, &blas, d);
	if (st != MLC_OK) {
		mlc_session_close(s);
		return st;
	}
	openblas_set_num_threads(blas);
	*out = s;
	return MLC_OK;
}

void mlc_session_close(mlc_session *s)
{
	if (!s)
		return;
	mlc_jit_free(s->jit);
	free(s->feed);
	free(s->params);
	free(s->act);
	if (s->model)
		mlc_model_free(s->model);
	else
		mlc_graph_free(s->graph);
	free(s);
}

void mlc_session_print_ir(const mlc_session *s, FILE *out)
{
	mlc_graph_print(s->graph, out);
}

mlc_status mlc_session_jit(mlc_session *s, mlc_diag *d)
{
	if (s->jit)
		return MLC_OK;
	if (!s->planned) {
		mlc_error_file(d, s->path, "cannot compile: the graph was not taken through memory planning");
		return MLC_EUSER;
	}
	mlc_jit_opts jo = {.cache_dir = s->opt.cache_dir, .no_cache = s->opt.no_cache,
			  .check_numerics = s->opt.check_numerics, .profile = s->opt.profile};
	mlc_status st = mlc_jit_compile_opts(s->graph, &jo, &s->jit_stats, d, &s->jit);
	if (st != MLC_OK)
		return st;
	for (int e = 0; e < MLC_ENTRY_COUNT; e++)
		s->fn[e] = mlc_jit_entry(s->jit, (mlc_entry)e);
	if (s->opt.verbose)
		mlc_jit_stats_print(&s->jit_stats, s->log);
	/* The compiler's memory (LLVM's module, passes, codegen) is freed by now:
	 * hand it back to the system before the arenas are touched, so the peak
	 * is the larger of the two rather than their sum (glibc). */
	malloc_trim(0);
	/* 64-byte aligned arenas; sizes are multiples of 16 elements. */
	size_t pa = (size_t)(s->graph->param_size > 0 ? s->graph->param_size : 16) * sizeof(float);
	size_t aa = (size_t)(s->graph->act_size > 0 ? s->graph->act_size : 16) * sizeof(float);
	s->params = aligned_alloc(64, pa);
	s->act = aligned_alloc(64, aa);
	if (!s->params || !s->act) {
		/* A batch_size the machine cannot hold is the user's to change, not a crash. */
		mlc_error_file(d, s->path, "cannot allocate %.1f MB for the parameters and %.1f MB for the "
			       "activations of batch %lld: %s; a smaller batch_size needs less", pa / 1e6, aa / 1e6,
			       (long long)s->batch, strerror(ENOMEM));
		free(s->params);
		free(s->act);
		s->params = s->act = NULL;
		mlc_jit_free(s->jit);
		s->jit = NULL;
		return MLC_EUSER;
	}
	memset(s->params, 0, pa);
	memset(s->act, 0, aa);
	return MLC_OK;
}

mlc_status mlc_session_emit(mlc_session *s, const char *what, const char *path, mlc_diag *d)
{
	static const struct {
		const char *name;
		mlc_emit_kind kind;
	} kinds[] = {{"llvm", MLC_EMIT_LLVM}, {"llvm-opt", MLC_EMIT_LLVM_OPT}, {"asm", MLC_EMIT_ASM},
		     {"obj", MLC_EMIT_OBJ}};
	for (size_t i = 0; i < MLC_COUNTOF(kinds); i++)
		if (strcmp(kinds[i].name, what) == 0) {
			if (!s->planned) {
				mlc_error_file(d, s->path, "cannot emit code: the graph was not taken through memory planning");
				return MLC_EUSER;
			}
			return mlc_emit(s->graph, kinds[i].kind, path, d);
		}
	mlc_error_file(d, NULL, "unknown output kind '%s' (llvm, llvm-opt, asm, obj)", what);
	return MLC_EUSER;
}
