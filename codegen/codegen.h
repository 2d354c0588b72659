/* codegen.h — planned graph → LLVM IR (one function per kernel + entry points)
 * → optimized for the host CPU → ORC LLJIT, or emitted as text/asm/object. */
#ifndef MLC_CODEGEN_H
#define MLC_CODEGEN_H

#include "../ir/ir.h"

#include <stdio.h>
#include <string.h>

/* Entry points. Each runs, in graph order, the kernels needed for its roots:
 *   PREDICT: ret "pred";  EVAL: "loss", "pred";  GRAD: "loss", "pred", "grad.*";
 *   TRAIN: "loss", "pred", "update.*".
 * GRAD and TRAIN run in training mode (batchnorm normalizes with the batch's
 * statistics and updates the running ones, dropout drops), PREDICT and EVAL in
 * inference mode; the entry decides, the caller cannot.
 * params: the parameter arena (params + optimizer state), act: the activation
 * arena (inputs are copied in by the runtime at their planned offsets), n: rows
 * in this batch (<= max_batch), hyper: MLC_HYPER_COUNT run-time words. */
typedef enum { MLC_ENTRY_PREDICT, MLC_ENTRY_EVAL, MLC_ENTRY_GRAD, MLC_ENTRY_TRAIN, MLC_ENTRY_COUNT } mlc_entry;
typedef void (*mlc_entry_fn)(float *params, float *act, int64_t n, const float *hyper);
extern const char *const mlc_entry_names[MLC_ENTRY_COUNT]; /* "mlc_predict", ... */

/* The hyper block, 32-bit words (docs/design.md, "Run-time hyperparameters"):
 *   hyper[MLC_HYPER_LR]    learning rate, a float (times each update's
 *                          lr_mult, its parameter's layer's);
 *   hyper[MLC_HYPER_SEED]  dropout seed, raw uint32 bits (not a float value);
 *   hyper[MLC_HYPER_STEP]  train-step counter (dropout masks; adam/adamw bias
 *                          correction with t = step + 1), raw uint32 bits.
 * Every entry reads all MLC_HYPER_COUNT words. Kernels see the entry's own
 * copy, which adds word MLC_HYPER_TRAINING: uint32 1 in GRAD/TRAIN, 0 in
 * PREDICT/EVAL. Masks depend on (seed, step), so a training loop passes a new
 * step per batch, and the same (seed, step) reproduces a step exactly. */
enum { MLC_HYPER_LR, MLC_HYPER_SEED, MLC_HYPER_STEP, MLC_HYPER_COUNT };
enum { MLC_HYPER_TRAINING = MLC_HYPER_COUNT, MLC_HYPER_KERNEL_WORDS };

static inline void mlc_hyper_set(float hyper[MLC_HYPER_COUNT], float lr, uint32_t seed, uint32_t step)
{
	hyper[MLC_HYPER_LR] = lr;
	memcpy(&hyper[MLC_HYPER_SEED], &seed, sizeof seed);
	memcpy(&hyper[MLC_HYPER_STEP], &step, sizeof step);
}

typedef struct mlc_jit mlc_jit;
/* The graph must have been through plan_memory. Entries whose roots are absent
 * from the graph are not generated (mlc_jit_entry returns NULL).
 * Memory plan contract (violations are reported as MLC_EINTERNAL):
 *  - every value a kernel touches has mem MEM_ACT or MEM_PARAM; PARAM/STATE
 *    and SGD nodes live in `params`, the SGD node at its parameter's offset;
 *  - CONST values are written at the start of each entry, so their slots must
 *    stay reserved for the whole entry;
 *  - the operands of one node never overlap, except that an elementwise op
 *    (cgops.def flag CG_INPLACE) may take exactly the slot of a same-shape
 *    source that dies there;
 *  - a batchnorm in training mode writes its running statistics (sources 3
 *    and 4, params) in place, as sgd writes its parameter and velocity.
 * The entry functions need n >= 1 and allocate nothing. */
mlc_status mlc_jit_compile(const mlc_graph *g, mlc_diag *d, mlc_jit **out);

/* The object cache (docs/design.md, "JIT cache"): compiled objects are kept
 * in a directory, keyed by the unoptimized module text, the LLVM version, the
 * host CPU and its features, and mlc's cache format. A hit skips optimization
 * and machine-code generation. A cache that cannot be read or written only
 * costs the compile: it is never an error. mlc_jit_compile uses the default
 * directory (jitcache.h: jc_dir) unless $MLC_NO_CACHE is set. */
typedef struct {
	const char *cache_dir; /* NULL: $MLC_CACHE_DIR, $XDG_CACHE_HOME/mlc, ~/.cache/mlc */
	int no_cache;          /* compile without the cache (as does $MLC_NO_CACHE=1) */
	/* Instrument the entries: after each kernel, every value it writes to
	 * memory is scanned by mlc_numerics_check (runtime/numerics.h); at the
	 * first NaN/Inf the entry returns. Off, the module is unchanged. */
	int check_numerics;
	/* Time each kernel call of the entries into a table (profile.h,
	 * mlc_jit_profile); off, the module is unchanged. */
	int profile;
} mlc_jit_opts;
/* Where a compile's time went and what the cache did, for -v and benchmarks. */
typedef struct {
	double codegen_ms;  /* building the LLVM module */
	double lookup_ms;   /* printing and hashing the module, reading the cache */
	double compile_ms;  /* optimization and machine code (0 on a hit) */
	double optimize_ms; /* of which the LLVM passes */
	double total_ms;    /* everything, including loading and linking the object */
	double total_cpu_ms; /* the same in CPU time of the calling thread (load-independent) */
	int cached;         /* a cache directory was in use */
	int hit, stored;
	const char *why;    /* when a miss was not stored, or the cache was off: why */
	char path[4096];    /* the cache file (or directory, when it could not be used) */
} mlc_jit_stats;
mlc_status mlc_jit_compile_opts(const mlc_graph *g, const mlc_jit_opts *o, mlc_jit_stats *stats,
				mlc_diag *d, mlc_jit **out);
/* The -v line: "jit: codegen 12.3 ms, optimize+compile 345.6 ms (cache miss,
 * stored PATH)" or "jit: 8.1 ms (cache hit PATH)". */
void mlc_jit_stats_print(const mlc_jit_stats *s, FILE *f);
mlc_entry_fn mlc_jit_entry(mlc_jit *j, mlc_entry e);
void mlc_jit_free(mlc_jit *j);

typedef enum { MLC_EMIT_LLVM, MLC_EMIT_LLVM_OPT, MLC_EMIT_ASM, MLC_EMIT_OBJ } mlc_emit_kind;
/* Writes the module (unoptimized or optimized LLVM IR, assembly for the host
 * CPU, or a PIC object file) to `path` ("-" for stdout). */
mlc_status mlc_emit(const mlc_graph *g, mlc_emit_kind kind, const char *path, mlc_diag *d);

#endif
