/* jit.c — compiles a planned graph to an object in memory (or takes it from
 * the on-disk cache, jitcache.c), links it with ORC LLJIT and hands out the
 * entry points. Each mlc_jit owns its own LLJIT and symbols, so any number
 * can live side by side. */
#include "cg.h"

#include "jitcache.h"
#include "profile.h"
#include "../runtime/numerics.h"
#include "../runtime/pool.h"

#include <cblas.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/OrcEE.h>
#include <llvm/Config/llvm-config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mlc_jit {
	LLVMOrcLLJITRef lljit;
	mlc_diag *d; /* set while compiling, for errors ORC reports out of band */
	mlc_entry_fn entry[MLC_ENTRY_COUNT];
	mlc_profile *prof; /* mlc_jit_opts.profile: the table the entries tick */
};

/* ORC's default reporter prints to stderr; route into the diagnostics. */
static void report_session_error(void *ctx, LLVMErrorRef err)
{
	mlc_jit *j = ctx;
	if (j->d)
		cg_llvm_error(j->d, "JIT session error", err);
	else
		LLVMConsumeError(err);
}

/* The functions generated code calls by name, bound to this process's own
 * addresses. Taking them from C keeps libopenblas linked even under
 * --as-needed and does not depend on the dynamic symbol table. */
static mlc_status define_runtime_symbols(LLVMOrcLLJITRef j, mlc_profile *prof, mlc_diag *d)
{
	static const struct {
		const char *name;
		void (*addr)(void);
	} syms[] = {
		{"cblas_sgemm", (void (*)(void))cblas_sgemm},
		{"expf", (void (*)(void))expf},
		{"logf", (void (*)(void))logf},
		{"mlc_parallel_for", (void (*)(void))mlc_parallel_for},
		{"mlc_numerics_check", (void (*)(void))mlc_numerics_check},
		{"mlc_profile_tick", (void (*)(void))mlc_profile_tick},
	};
	LLVMOrcCSymbolMapPair pairs[MLC_COUNTOF(syms) + 1];
	size_t np = 0;
	for (size_t i = 0; i < MLC_COUNTOF(syms); i++, np++) {
		pairs[np].Name = LLVMOrcLLJITMangleAndIntern(j, syms[i].name);
		pairs[np].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
		pairs[np].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported |
						   LLVMJITSymbolGenericFlagsCallable;
		pairs[np].Sym.Flags.TargetFlags = 0;
	}
	/* this JIT's own table: the module names it, each JIT binds it */
	if (prof) {
		pairs[np].Name = LLVMOrcLLJITMangleAndIntern(j, "mlc_profile_table");
		pairs[np].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)prof;
		pairs[np].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported;
		pairs[np++].Sym.Flags.TargetFlags = 0;
	}
	LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j);
	LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, np);
	LLVMErrorRef err = LLVMOrcJITDylibDefine(jd, mu);
	if (err) {
		LLVMOrcDisposeMaterializationUnit(mu);
		return cg_llvm_error(d, "cannot define runtime symbols for the JIT", err);
	}
	/* Anything else the backend may call (memset, compiler-rt helpers)
	 * resolves against the process. */
	LLVMOrcDefinitionGeneratorRef gen;
	err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j),
								   NULL, NULL);
	if (err)
		return cg_llvm_error(d, "cannot search the process for JIT symbols", err);
	LLVMOrcJITDylibAddGenerator(jd, gen);
	return MLC_OK;
}

/* $MLC_JIT_GDB=1: link with RuntimeDyld, whose event listeners the C API
 * exposes, and register each object with gdb's JIT interface, so gdb names
 * the kernels in backtraces and can break in them. Off by default: JITLink
 * is ORC's linker for x86-64 ELF, and registration copies every object. */
static bool gdb_wanted(void)
{
	const char *v = getenv("MLC_JIT_GDB");
	return v && *v && strcmp(v, "0") != 0;
}

static LLVMOrcObjectLayerRef gdb_linking_layer(void *ctx, LLVMOrcExecutionSessionRef es, const char *triple)
{
	(void)ctx;
	(void)triple;
	LLVMOrcObjectLayerRef layer = LLVMOrcCreateRTDyldObjectLinkingLayerWithSectionMemoryManager(es);
	LLVMOrcRTDyldObjectLinkingLayerRegisterJITEventListener(layer, LLVMCreateGDBRegistrationListener());
	return layer;
}

static mlc_status create_lljit(mlc_jit *j, mlc_diag *d)
{
	/* The JIT's code generator gets its own target machine (it takes
	 * ownership), configured like the one the optimizer used. */
	LLVMTargetMachineRef tm = cg_host_tm(d);
	if (!tm)
		return MLC_EINTERNAL;
	LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder,
						      LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
	if (gdb_wanted())
		LLVMOrcLLJITBuilderSetObjectLinkingLayerCreator(builder, gdb_linking_layer, NULL);
	LLVMErrorRef err = LLVMOrcCreateLLJIT(&j->lljit, builder);
	if (err) {
		j->lljit = NULL;
		return cg_llvm_error(d, "cannot create the LLVM JIT", err);
	}
	LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit),
						report_session_error, j);
	return define_runtime_symbols(j->lljit, j->prof, d);
}

/* What the object depends on besides the module text (jc_host). */
typedef struct {
	char version[64];
	char *triple, *cpu, *features;
	jc_host h;
} host_info;

static void host_info_get(host_info *hi)
{
	unsigned major, minor, patch;
	LLVMGetVersion(&major, &minor, &patch);
	snprintf(hi->version, sizeof hi->version, "%u.%u.%u (built with %s)", major, minor, patch,
		 LLVM_VERSION_STRING);
	hi->triple = LLVMGetDefaultTargetTriple();
	hi->cpu = LLVMGetHostCPUName();
	hi->features = LLVMGetHostCPUFeatures();
	hi->h = (jc_host){hi->version, hi->triple, hi->cpu, hi->features, cg_pipeline_id()};
}

static void host_info_free(host_info *hi)
{
	LLVMDisposeMessage(hi->triple);
	LLVMDisposeMessage(hi->cpu);
	LLVMDisposeMessage(hi->features);
}

static double clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* Optimizes the module and generates a PIC object for the host in memory:
 * the same object whether it then goes to the JIT only or to the cache too. */
static mlc_status compile_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, mlc_jit_stats *stats,
				 mlc_diag *d, LLVMMemoryBufferRef *out)
{
	*out = NULL;
	double t0 = now_ms();
	mlc_status st = cg_optimize(mod, tm, d);
	stats->optimize_ms = now_ms() - t0;
	if (st != MLC_OK)
		return st;
	char *msg = NULL;
	if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, out)) {
		mlc_error_file(d, NULL, "LLVM code generation failed: %s", msg ? msg : "?");
		LLVMDisposeMessage(msg);
		*out = NULL;
		return MLC_EINTERNAL;
	}
	return MLC_OK;
}

/* Builds the module; looks its object up in the cache, or compiles it (and
 * later stores it). On return *obj holds the object bytes (malloc'd) and
 * entries which entry points it defines. */
static mlc_status get_object(const mlc_graph *g, const mlc_jit_opts *o, mlc_profile *prof,
			     mlc_jit_stats *stats, mlc_diag *d, char **obj, size_t *n, uint32_t *entries, char **cache_dir,
			     jc_key *key, unsigned char secret[JC_SECRET_LEN])
{
	double t0 = now_ms();
	LLVMTargetMachineRef tm = cg_host_tm(d);
	if (!tm)
		return MLC_EINTERNAL;
	LLVMContextRef ctx = LLVMContextCreate();
	LLVMModuleRef mod = NULL;
	bool has[MLC_ENTRY_COUNT];
	mlc_status st = cg_build_module(g, ctx, tm, o && o->check_numerics, prof, d, &mod, has);
	*entries = 0;
	for (int e = 0; e < MLC_ENTRY_COUNT && st == MLC_OK; e++)
		*entries |= has[e] ? 1u << e : 0;
	bool use_cache = st == MLC_OK && !(o && o->no_cache) && !jc_disabled_by_env();
	*cache_dir = use_cache ? jc_dir(o ? o->cache_dir : NULL) : NULL;
	if (use_cache && !*cache_dir)
		stats->why = "no cache directory ($HOME is not set)";
	else if (!use_cache)
		stats->why = "cache off";
	stats->codegen_ms = now_ms() - t0;
	bool unsafe = false;
	if (*cache_dir && !jc_open_dir(*cache_dir, secret, &stats->why, &unsafe)) {
		/* A folder others can write could hand us their code: say so
		 * every time, not only with --verbose, and compile as uncached. */
		if (unsafe)
			mlc_note_at(d, (mlc_loc){*cache_dir, 0, 0}, "not using the object cache: %s",
				    stats->why);
		stats->cached = 1;
		snprintf(stats->path, sizeof stats->path, "%s", *cache_dir);
		free(*cache_dir);
		*cache_dir = NULL;
	}
	if (*cache_dir) {
		double t1 = now_ms();
		stats->cached = 1;
		char *text = LLVMPrintModuleToString(mod);
		host_info hi;
		host_info_get(&hi);
		*key = jc_key_make(text, strlen(text), &hi.h);
		host_info_free(&hi);
		LLVMDisposeMessage(text);
		char *path = jc_path(*cache_dir, *key);
		snprintf(stats->path, sizeof stats->path, "%s", path);
		/* The entries follow from the module text; a file that disagrees
		 * is damaged however its hashes came out. */
		uint32_t stored_entries = 0;
		stats->hit = jc_load(path, *key, secret, obj, n, &stored_entries);
		if (stats->hit && stored_entries != *entries) {
			stats->hit = 0;
			free(*obj);
			*obj = NULL;
		}
		free(path);
		stats->lookup_ms = now_ms() - t1;
	}
	if (st == MLC_OK && !stats->hit) {
		double t1 = now_ms();
		LLVMMemoryBufferRef buf;
		st = compile_object(mod, tm, stats, d, &buf);
		if (st == MLC_OK) {
			*n = LLVMGetBufferSize(buf);
			*obj = mlc_xmalloc(*n ? *n : 1);
			memcpy(*obj, LLVMGetBufferStart(buf), *n);
			LLVMDisposeMemoryBuffer(buf);
		}
		stats->compile_ms = now_ms() - t1;
	}
	if (mod)
		LLVMDisposeModule(mod);
	LLVMContextDispose(ctx);
	LLVMDisposeTargetMachine(tm);
	return st;
}

mlc_status mlc_jit_compile_opts(const mlc_graph *g, const mlc_jit_opts *o, mlc_jit_stats *stats,
				mlc_diag *d, mlc_jit **out)
{
	*out = NULL;
	double t0 = now_ms(), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
	mlc_jit_stats local;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	char *obj = NULL, *cache_dir = NULL;
	size_t n = 0;
	uint32_t entries = 0;
	jc_key key = {0};
	unsigned char secret[JC_SECRET_LEN];
	mlc_jit *j = mlc_xmalloc(sizeof *j);
	j->d = d;
	j->prof = o && o->profile ? mlc_xmalloc(sizeof *j->prof) : NULL;
	mlc_status st = get_object(g, o, j->prof, stats, d, &obj, &n, &entries, &cache_dir, &key, secret);
	if (st == MLC_OK)
		st = create_lljit(j, d);
	/* Cold and warm compiles link the same kind of object the same way. */
	if (st == MLC_OK) {
		LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, n, "mlc-jit-object");
		LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), buf);
		if (err)
			st = cg_llvm_error(d, "cannot add the object to the JIT", err);
	}
	for (int e = 0; e < MLC_ENTRY_COUNT && st == MLC_OK; e++) {
		if (!(entries >> e & 1))
			continue;
		LLVMOrcExecutorAddress addr = 0;
		LLVMErrorRef err = LLVMOrcLLJITLookup(j->lljit, &addr, mlc_entry_names[e]);
		if (err)
			st = cg_llvm_error(d, "JIT linking failed", err);
		else
			j->entry[e] = (mlc_entry_fn)(uintptr_t)addr;
	}
	if (st == MLC_OK && cg_perf_map_wanted())
		st = cg_perf_map_write(j->lljit, obj, n, d);
	j->d = NULL;
	/* Stored only once it linked: a broken object never enters the cache. */
	if (st == MLC_OK && cache_dir && !stats->hit) {
		const char *why = NULL;
		stats->stored = jc_store(cache_dir, stats->path, key, secret, obj, n, entries, &why);
		if (!stats->stored) {
			stats->why = why;
			snprintf(stats->path, sizeof stats->path, "%s", cache_dir);
		}
	}
	free(obj);
	free(cache_dir);
	stats->total_ms = now_ms() - t0;
	stats->total_cpu_ms = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
	if (st != MLC_OK) {
		mlc_jit_free(j);
		return st;
	}
	*out = j;
	return MLC_OK;
}

mlc_status mlc_jit_compile(const mlc_graph *g, mlc_diag *d, mlc_jit **out)
{
	return mlc_jit_compile_opts(g, NULL, NULL, d, out);
}

void mlc_jit_stats_print(const mlc_jit_stats *s, FILE *f)
{
	if (s->hit) {
		fprintf(f, "jit: %.1f ms (cache hit %s)\n", s->total_ms, s->path);
		return;
	}
	fprintf(f, "jit: codegen %.1f ms, optimize+compile %.1f ms", s->codegen_ms, s->compile_ms);
	if (s->stored)
		fprintf(f, " (cache miss, stored %s)\n", s->path);
	else if (s->cached)
		fprintf(f, " (cache miss, not stored in %s: %s)\n", s->path, s->why ? s->why : "?");
	else
		fprintf(f, " (no cache: %s)\n", s->why ? s->why : "off");
}

mlc_profile *mlc_jit_profile(mlc_jit *j)
{
	return j ? j->prof : NULL;
}

mlc_entry_fn mlc_jit_entry(mlc_jit *j, mlc_entry e)
{
	return j && e >= 0 && e < MLC_ENTRY_COUNT ? j->entry[e] : NULL;
}

void mlc_jit_free(mlc_jit *j)
{
	if (!j)
		return;
	if (j->lljit)
		LLVMConsumeError(LLVMOrcDisposeLLJIT(j->lljit));
	mlc_profile_free(j->prof);
	free(j);
}
