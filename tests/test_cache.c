/* test_cache.c — the JIT's on-disk object cache (codegen/jitcache.c): the key
 * separates what it must, a miss and a hit run bit-identical train steps, and
 * files that are truncated, corrupt or from another key are ignored and
 * replaced; a cache that cannot be written only costs the compile; forged,
 * swapped or foreign entries and unsafe folders are never used. Each test
 * works in its own temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codegen/jitcache.h"
#include "runtime/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A small CNN with every entry kind the runtime uses in training: conv,
 * pooling, batchnorm, dropout, dense, softmax cross-entropy, SGD momentum. */
static const char spec[] =
	"name: cache_cnn\n"
	"inputs: {x: {shape: [8, 8, 3]}}\n"
	"layers:\n"
	"  - {conv2d: 4, kernel: 3, activation: relu}\n"
	"  - batchnorm\n"
	"  - {maxpool: 2}\n"
	"  - flatten\n"
	"  - {dropout: 0.25}\n"
	"  - {dense: 5}\n"
	"loss: softmax_cross_entropy\n"
	"optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n"
	"data: {batch_size: 6}\n";

typedef struct {
	char dir[64];  /* the test's temporary directory */
	char spec[128];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/mlc_test_cache-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->spec, sizeof f->spec, "%s/cnn.yaml", f->dir);
	FILE *fp = fopen(f->spec, "w");
	if (!fp)
		return -1;
	fputs(spec, fp);
	fclose(fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* ---- one train step through a session ---- */

typedef struct {
	mlc_jit_stats stats;
	float *params; /* the parameter arena after one train step */
	size_t nparam;
	float loss;
	bool entry[MLC_ENTRY_COUNT];
} step_result;

static void fill_inputs(mlc_session *s)
{
	mlc_rng r;
	mlc_rng_seed(&r, 7);
	mlc_graph *g = s->graph;
	for (int i = 0; i < g->nnode; i++) {
		mlc_node *n = g->node[i];
		if (n->dead || n->op != OP_INPUT || n->mem != MEM_ACT)
			continue;
		int64_t count = mlc_numel(n, s->batch);
		if (n->dtype == DT_I32) {
			int32_t *y = (int32_t *)(s->act + n->offset);
			for (int64_t k = 0; k < count; k++)
				y[k] = (int32_t)(mlc_rng_next(&r) % 5);
		} else {
			for (int64_t k = 0; k < count; k++)
				s->act[n->offset + k] = (float)mlc_rng_uniform(&r);
		}
	}
}

/* Opens the spec with the given cache options, initializes the weights (the
 * same seed every time) and runs one train step. */
static step_result train_step(const char *path, const char *cache_dir, int no_cache)
{
	mlc_options o = {.quiet = 1, .cache_dir = cache_dir, .no_cache = no_cache};
	mlc_diag *d = mlc_diag_new(stderr);
	mlc_session *s = NULL;
	assert_int_equal(mlc_session_open(path, &o, d, &s), MLC_OK);
	assert_int_equal(mlc_params_prepare(s, d), MLC_OK);
	assert_int_equal(mlc_diag_errors(d), 0);
	step_result r = {.stats = s->jit_stats};
	for (int e = 0; e < MLC_ENTRY_COUNT; e++)
		r.entry[e] = s->fn[e] != NULL;
	assert_non_null(s->fn[MLC_ENTRY_TRAIN]);
	fill_inputs(s);
	float hyper[MLC_HYPER_COUNT];
	mlc_hyper_set(hyper, 0.1f, 1234, 0);
	s->fn[MLC_ENTRY_TRAIN](s->params, s->act, s->batch, hyper);
	r.nparam = (size_t)s->graph->param_size;
	r.params = malloc(r.nparam * sizeof(float));
	memcpy(r.params, s->params, r.nparam * sizeof(float));
	r.loss = s->act[s->loss->offset];
	mlc_session_close(s);
	mlc_diag_free(d);
	return r;
}

static void assert_same_step(const step_result *a, const step_result *b)
{
	assert_int_equal(a->nparam, b->nparam);
	assert_memory_equal(a->params, b->params, a->nparam * sizeof(float));
	assert_memory_equal(&a->loss, &b->loss, sizeof a->loss);
	assert_memory_equal(a->entry, b->entry, sizeof a->entry);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- tests ---- */

static void test_key(void **state)
{
	const char *ir = "define void @f() { ret void }";
	jc_host h = {"19.1.7", "x86_64-pc-linux-gnu", "znver3", "+avx2,+fma", "default<O2>"};
	jc_key k = jc_key_make(ir, strlen(ir), &h);
	jc_key same = jc_key_make(ir, strlen(ir), &h);
	assert_true(k.h1 == same.h1 && k.h2 == same.h2 && k.len == same.len);
	assert_true(k.len > strlen(ir));

	jc_host other[] = {h, h, h, h, h};
	other[0].llvm_version = "19.1.6";
	other[1].features = "+avx2,-fma";
	other[2].cpu = "znver4";
	other[3].pipeline = "default<O3>";
	other[4].triple = "aarch64-unknown-linux-gnu";
	for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
		jc_key o = jc_key_make(ir, strlen(ir), &other[i]);
		assert_true(o.h1 != k.h1);
		assert_true(o.h2 != k.h2);
	}
	/* The module text itself, and field boundaries. */
	jc_key o = jc_key_make(ir, strlen(ir) - 1, &h);
	assert_true(o.h1 != k.h1 && o.h2 != k.h2);
	jc_host shifted = h;
	shifted.cpu = "znver3+avx2";
	shifted.features = ",+fma";
	o = jc_key_make(ir, strlen(ir), &shifted);
	assert_true(o.h1 != k.h1 && o.h2 != k.h2);
}

static void test_store_load(void **state)
{
	fixture *f = *state;
	char dir[128];
	snprintf(dir, sizeof dir, "%s/a/b", f->dir); /* created with its parent */
	jc_host h = {"19.1.7", "t", "c", "f", "p"};
	jc_key k = jc_key_make("ir", 2, &h);
	char *path = jc_path(dir, k);
	const char *why = NULL;
	unsigned char secret[JC_SECRET_LEN];
	bool unsafe;
	assert_true(jc_open_dir(dir, secret, &why, &unsafe));
	assert_true(jc_store(dir, path, k, secret, "object", 6, 0xb, &why));
	char *obj;
	size_t n;
	uint32_t entries;
	assert_true(jc_load(path, k, secret, &obj, &n, &entries));
	assert_int_equal(n, 6);
	assert_memory_equal(obj, "object", 6);
	assert_int_equal(entries, 0xb);
	free(obj);
	/* Same file, other key material: a miss, whichever part differs. */
	jc_key wrong[] = {k, k, k};
	wrong[0].h1++;
	wrong[1].h2++;
	wrong[2].len++;
	for (int i = 0; i < 3; i++)
		assert_false(jc_load(path, wrong[i], secret, &obj, &n, &entries));
	/* No temporary files are left behind, and a killed writer's old ones
	 * are cleared by the next store; a recent one may be a live writer's. */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | grep -vx secret.key | wc -l) -eq 1", dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "cd '%s' && touch -d '2 hours ago' .tmp-old && touch .tmp-new", dir);
	assert_int_equal(system(cmd), 0);
	assert_true(jc_store(dir, path, k, secret, "object", 6, 0xb, &why));
	snprintf(cmd, sizeof cmd, "cd '%s' && test ! -e .tmp-old && test -e .tmp-new", dir);
	assert_int_equal(system(cmd), 0);
	free(path);
}

static void restore_env(const char *name, char *saved)
{
	if (saved)
		setenv(name, saved, 1);
	else
		unsetenv(name);
	free(saved);
}

static char *save_env(const char *name)
{
	const char *v = getenv(name);
	return v ? strdup(v) : NULL;
}

static void test_dir(void **state)
{
	char *cache = save_env("MLC_CACHE_DIR"), *xdg = save_env("XDG_CACHE_HOME"),
	     *home = save_env("HOME");
	setenv("MLC_CACHE_DIR", "/x/cache", 1);
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("HOME", "/home/u", 1);
	char *d = jc_dir("/given");
	assert_string_equal(d, "/given");
	free(d);
	d = jc_dir(NULL);
	assert_string_equal(d, "/x/cache");
	free(d);
	setenv("MLC_CACHE_DIR", "", 1); /* empty counts as unset */
	d = jc_dir(NULL);
	assert_string_equal(d, "/xdg/mlc");
	free(d);
	unsetenv("XDG_CACHE_HOME");
	d = jc_dir(NULL);
	assert_string_equal(d, "/home/u/.cache/mlc");
	free(d);
	unsetenv("HOME");
	assert_null(jc_dir(NULL));
	restore_env("MLC_CACHE_DIR", cache);
	restore_env("XDG_CACHE_HOME", xdg);
	restore_env("HOME", home);

	char *no = save_env("MLC_NO_CACHE");
	unsetenv("MLC_NO_CACHE");
	assert_false(jc_disabled_by_env());
	setenv("MLC_NO_CACHE", "0", 1);
	assert_false(jc_disabled_by_env());
	setenv("MLC_NO_CACHE", "1", 1);
	assert_true(jc_disabled_by_env());
	restore_env("MLC_NO_CACHE", no);
}

/* A miss then a hit: the same entries and bit-identical train steps. */
static void test_miss_then_hit(void **state)
{
	fixture *f = *state;
	step_result miss = train_step(f->spec, f->dir, 0);
	assert_true(miss.stats.cached && !miss.stats.hit && miss.stats.stored);
	assert_true(miss.stats.compile_ms > 0);
	assert_true(file_size(miss.stats.path) > 0);
	step_result hit = train_step(f->spec, f->dir, 0);
	assert_true(hit.stats.hit && !hit.stats.stored);
	assert_true(hit.stats.compile_ms == 0);
	assert_string_equal(hit.stats.path, miss.stats.path);
	assert_same_step(&miss, &hit);
	/* And both match an uncached compile. */
	step_result off = train_step(f->spec, f->dir, 1);
	assert_false(off.stats.cached);
	assert_same_step(&miss, &off);
	setenv("MLC_NO_CACHE", "1", 1);
	step_result env_off = train_step(f->spec, f->dir, 0);
	unsetenv("MLC_NO_CACHE");
	assert_false(env_off.stats.cached);
	free(miss.params);
	free(hit.params);
	free(off.params);
	free(env_off.params);
}

/* Damage the file of a stored object in various ways: each time the next
 * compile misses, rewrites the file, and the one after hits again. */
static void test_damaged_files(void **state)
{
	fixture *f = *state;
	step_result ref = train_step(f->spec, f->dir, 0);
	assert_true(ref.stats.stored);
	const char *path = ref.stats.path;
	off_t size = file_size(path);
	assert_true(size > 64);
	for (int damage = 0; damage < 7; damage++) {
		FILE *fp;
		switch (damage) {
		case 0: assert_int_equal(truncate(path, size / 2), 0); break; /* truncated object */
		case 1: assert_int_equal(truncate(path, 20), 0); break;       /* truncated header */
		case 2: assert_int_equal(truncate(path, 0), 0); break;        /* empty */
		case 3:   /* a byte of the object */
		case 4:   /* the format version */
		case 6: { /* the entry-point bits */
			long at = damage == 3 ? (long)size - 100 : damage == 4 ? 8 : 12;
			fp = fopen(path, "r+b");
			assert_non_null(fp);
			fseek(fp, at, SEEK_SET);
			int c = fgetc(fp);
			fseek(fp, at, SEEK_SET);
			fputc(c ^ 0x5a, fp);
			fclose(fp);
			break;
		}
		case 5: /* garbage, longer */
			fp = fopen(path, "wb");
			assert_non_null(fp);
			for (int i = 0; i < 100000; i++)
				fputc(i * 7, fp);
			fclose(fp);
			break;
		}
		step_result r = train_step(f->spec, f->dir, 0);
		assert_true(r.stats.cached && !r.stats.hit && r.stats.stored);
		assert_int_equal(file_size(path), size);
		assert_same_step(&ref, &r);
		free(r.params);
		r = train_step(f->spec, f->dir, 0);
		assert_true(r.stats.hit);
		assert_same_step(&ref, &r);
		free(r.params);
	}
	/* A directory in the file's place cannot be replaced: still no error. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	step_result r = train_step(f->spec, f->dir, 0);
	assert_true(r.stats.cached && !r.stats.hit && !r.stats.stored);
	assert_same_step(&ref, &r);
	free(r.params);
	free(ref.params);
}

/* A cache directory that cannot be created: compiled, run, not stored. */
static void test_unwritable_dir(void **state)
{
	fixture *f = *state;
	char dir[128];
	snprintf(dir, sizeof dir, "%s/cnn.yaml/cache", f->dir); /* under a regular file */
	step_result r = train_step(f->spec, dir, 0);
	assert_true(r.stats.cached && !r.stats.hit && !r.stats.stored);
	assert_non_null(r.stats.why);
	assert_string_equal(r.stats.path, dir);
	step_result off = train_step(f->spec, NULL, 1);
	assert_same_step(&r, &off);
	char line[8192];
	FILE *mem = fmemopen(line, sizeof line, "w");
	mlc_jit_stats_print(&r.stats, mem);
	fclose(mem);
	assert_non_null(strstr(line, "not stored in"));
	free(r.params);
	free(off.params);
}

/* Writes a file of `n` bytes with `mode`. */
static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
}

static char *slurp_file(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*n = (size_t)ftell(fp);
	rewind(fp);
	char *b = malloc(*n);
	assert_int_equal(fread(b, 1, *n, fp), *n);
	fclose(fp);
	return b;
}

/* An entry made without this user's secret — forged by someone who can
 * write the file, or another model's object renamed under this key — is a
 * miss, and so is one that is not a private regular file of this user. A
 * FIFO at the entry's path does not block the load. */
static void test_forged_entries(void **state)
{
	fixture *f = *state;
	char dir[128], other[128];
	snprintf(dir, sizeof dir, "%s/c", f->dir);
	snprintf(other, sizeof other, "%s/other", f->dir);
	jc_host h = {"19.1.7", "t", "c", "f", "p"};
	jc_key k = jc_key_make("ir", 2, &h), k2 = jc_key_make("other ir", 8, &h);
	const char *why;
	bool unsafe;
	unsigned char secret[JC_SECRET_LEN], secret2[JC_SECRET_LEN];
	assert_true(jc_open_dir(dir, secret, &why, &unsafe));
	assert_true(jc_open_dir(other, secret2, &why, &unsafe));
	assert_memory_not_equal(secret, secret2, JC_SECRET_LEN); /* each cache has its own */
	unsigned char again[JC_SECRET_LEN];
	assert_true(jc_open_dir(dir, again, &why, &unsafe));
	assert_memory_equal(secret, again, JC_SECRET_LEN);
	char *path = jc_path(dir, k), *path2 = jc_path(dir, k2), *opath = jc_path(other, k);
	char *obj;
	size_t n;
	uint32_t entries;

	/* the same key and object, written under another secret: a miss */
	assert_true(jc_store(other, opath, k, secret2, "evil!!", 6, 1, &why));
	size_t len;
	char *forged = slurp_file(opath, &len);
	write_file(path, forged, len, 0600);
	assert_false(jc_load(path, k, secret, &obj, &n, &entries));
	/* an object stored under another key, with its header edited to this
	 * key (all unkeyed fields are public), is still a miss */
	assert_true(jc_store(dir, path2, k2, secret, "other!", 6, 1, &why));
	char *swapped = slurp_file(path2, &len);
	memcpy(swapped + 16, &k.len, 8);
	memcpy(swapped + 24, &k.h1, 8);
	memcpy(swapped + 32, &k.h2, 8);
	write_file(path, swapped, len, 0600);
	assert_false(jc_load(path, k, secret, &obj, &n, &entries));
	/* the genuine entry hits; group- or other-writable, it does not */
	assert_true(jc_store(dir, path, k, secret, "object", 6, 1, &why));
	assert_true(jc_load(path, k, secret, &obj, &n, &entries));
	free(obj);
	assert_int_equal(chmod(path, 0622), 0);
	assert_false(jc_load(path, k, secret, &obj, &n, &entries));
	/* a symbolic link to a genuine entry is not followed */
	assert_int_equal(chmod(path, 0600), 0);
	char link[160];
	snprintf(link, sizeof link, "%s/link.mlcobj", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_false(jc_load(link, k, secret, &obj, &n, &entries));
	/* a FIFO: no hang, a miss */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_false(jc_load(path, k, secret, &obj, &n, &entries));
	free(forged);
	free(swapped);
	free(path);
	free(path2);
	free(opath);
}

/* A folder others can write, or another user's, is refused with a reason;
 * so is a key file others can read. */
static void test_unsafe_folder(void **state)
{
	fixture *f = *state;
	char dir[128], key[160];
	snprintf(dir, sizeof dir, "%s/shared", f->dir);
	snprintf(key, sizeof key, "%s/secret.key", dir);
	unsigned char secret[JC_SECRET_LEN];
	const char *why = NULL;
	bool unsafe = false;
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(chmod(dir, 01777), 0);
	assert_false(jc_open_dir(dir, secret, &why, &unsafe));
	assert_true(unsafe);
	assert_non_null(strstr(why, "writable by group or others"));
	assert_int_equal(chmod(dir, 0770), 0);
	assert_false(jc_open_dir(dir, secret, &why, &unsafe));
	assert_int_equal(chmod(dir, 0755), 0);
	assert_true(jc_open_dir(dir, secret, &why, &unsafe));
	struct stat st;
	assert_int_equal(lstat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(chmod(key, 0644), 0);
	assert_false(jc_open_dir(dir, secret, &why, &unsafe));
	assert_true(unsafe);
	assert_non_null(strstr(why, "secret.key"));
	assert_int_equal(chmod(key, 0600), 0);
	assert_true(jc_open_dir(dir, secret, &why, &unsafe));
	/* another user's folder (only root can make one to test with) */
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 1, 1), 0);
		assert_false(jc_open_dir(dir, secret, &why, &unsafe));
		assert_true(unsafe);
		assert_non_null(strstr(why, "another user"));
		assert_int_equal(chown(dir, 0, 0), 0);
	}

	/* Through a session: compiled and run as uncached, with a note. */
	assert_int_equal(chmod(dir, 0777), 0);
	step_result r = train_step(f->spec, dir, 0);
	assert_true(r.stats.cached && !r.stats.hit && !r.stats.stored);
	assert_non_null(strstr(r.stats.why, "writable by group or others"));
	char cmd[256];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | grep -c mlcobj) -eq 0", dir);
	assert_int_equal(system(cmd), 0);
	free(r.params);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_folder, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
