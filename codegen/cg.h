/* cg.h — internals of codegen/: the per-module codegen state, the hook table
 * indexed by opcode (cgops.def), and the small IR-building helpers every
 * kernel emitter uses. Nothing here is visible outside codegen/. */
#ifndef MLC_CG_H
#define MLC_CG_H

#include "codegen.h"

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/TargetMachine.h>

/* Pointer operands of a kernel: operand 0 is the node's output, operand k+1
 * its source k. Operands planned at the same address share one parameter. */
#define CG_MAX_OPND (MLC_MAX_SRC + 1)

/* How the [begin, end) range of a kernel is measured; an entry passes
 * [0, extent), or splits it over the thread pool (parallel.c). */
typedef enum {
	CG_RANGE_ROWS,  /* rows of the output seen as 2-D [rows, last dim] */
	CG_RANGE_ELEMS, /* elements of the output (1-D work: sum_rows columns, sgd) */
	CG_RANGE_ONE,   /* whole-tensor reductions to a scalar: [0, 1), not splittable */
	CG_RANGE_ELEMWISE, /* elementwise ops: ELEMS, or ROWS if a source is row-broadcast */
	CG_RANGE_IMAGES,   /* dim 0 of the output (images of NHWC conv/pool values) */
} cg_range;

enum {
	CG_PROLOGUE = 1 << 0, /* runs before every other kernel of an entry (const fills) */
	CG_INPLACE = 1 << 1,  /* the output may share the exact slot of a same-shape source */
	/* The range counts images of source 0 and the kernel sums over them into
	 * its whole output (cleared first): split, threads t > 0 write partial
	 * outputs that the entry adds up (parallel.c). */
	CG_PARTIAL = 1 << 2,
};

typedef struct cg cg;

/* Emits the body of a node's kernel into c->fn (the builder is positioned in
 * its entry block; the emitter must leave it in a block without terminator). */
typedef void (*cg_body_fn)(cg *c, const mlc_node *n);
/* Elementwise ops: given the loaded value of each source for one element,
 * emits and returns the result. Must not create blocks, so that a fusion pass
 * can chain several scalar emitters inside one loop body. */
typedef LLVMValueRef (*cg_scalar_fn)(cg *c, const mlc_node *n, LLVMValueRef const *in);

typedef struct {
	cg_body_fn body;     /* NULL: the op has no code (input, param, state) */
	cg_scalar_fn scalar; /* NULL unless the op is elementwise */
	cg_range range;
	unsigned flags;
} cg_hooks;

extern const cg_hooks cg_hook[OP_COUNT];

/* One kernel function: of one node, or of a fusion group (at its root). */
typedef struct cg_kernel cg_kernel;
struct cg_kernel {
	LLVMValueRef fn;
	LLVMTypeRef type;
	int nparam;                  /* distinct pointer parameters */
	int slot[CG_MAX_OPND];       /* one node: operand -> pointer parameter index */
	const mlc_node **opnd;       /* [nparam]: the node each parameter points at (malloc'd) */
	int64_t scratch;             /* elements of scratch (ir.h); > 0: one more pointer */
	int64_t scratch_at;          /* its offset in the activation arena */
	/* The range [0, extent) the entry passes: measured as `range` on
	 * `extent_of` (or the constant `extent` when > 0); `nosplit` when the
	 * kernel must see the whole range in one call (fused sums). */
	cg_range range;
	const mlc_node *extent_of;
	int64_t extent;
	bool nosplit;
	/* For the thread pool (parallel.c): the node whose geometry decides the
	 * split grain and owns the scratch (the node, or a fused kernel's first
	 * member; NULL for update kernels), an estimate of the one-thread time,
	 * and CG_PARTIAL. */
	const mlc_node *geom;
	double work_ns;
	bool partial;
	/* A fused kernel with a batchnorm member: what training entries call
	 * instead (CG_PART_PRE, CG_PART_POST; malloc'd), else NULL. */
	cg_kernel *train[2];
	int prof; /* 1 + its row in the profile table (profile.h), 0: none yet */
};

struct cg {
	const mlc_graph *g;
	mlc_diag *d;
	LLVMContextRef ctx;
	LLVMModuleRef mod;
	LLVMBuilderRef b;
	LLVMTypeRef t_void, t_i1, t_i32, t_i64, t_f32, t_ptr;
	int64_t max_batch;
	bool failed; /* a diagnostic was reported while building */

	/* The function being emitted. */
	LLVMValueRef fn;
	LLVMValueRef n, begin, end, hyper; /* i64 batch, i64 range, ptr hyperparameters */
	LLVMValueRef opnd[CG_MAX_OPND];    /* pointer of each operand */
	LLVMValueRef scratch;              /* the node's scratch space (ir.h), or NULL */
	/* Set by the elementwise driver for scalar emitters: the i64 flat index
	 * of the output element being computed (dropout hashes it). */
	LLVMValueRef elem;
	/* Set while emitting a fusion group whose first member is out-fusable
	 * (fused.c): the group's epilogue, run by cg_epilogue. */
	const struct cg_group *epi;
};

/* Fused epilogues (fused.c). An out-fusable kernel (matmul, conv2d,
 * conv2d_grad_input) calls this after it has finished rows [r0, r1) of its
 * output, rows of the 2-D view [rows, last dim] (for NHWC images: pixels,
 * i.e. image·OH·OW + pixel); when the kernel is the anchor of a fusion group,
 * the group's elementwise members then run over exactly those rows while
 * they are still in cache. A no-op when the kernel has no group. Every row
 * of the output must be finished and passed exactly once. */
void cg_epilogue(cg *c, const mlc_node *n, LLVMValueRef r0, LLVMValueRef r1);
/* The body of a fused kernel over members m[0..count) (the function, its
 * parameters `param` by operand slot of k and c's range are set up). A group
 * with a batchnorm member (cg_group_bn >= 0) has three functions, `part`. */
typedef enum { CG_PART_WHOLE, CG_PART_PRE, CG_PART_POST } cg_part;
void cg_group_body(cg *c, const mlc_node *const *m, int count, mlc_group_kind kind,
		   const cg_kernel *k, const LLVMValueRef *param, cg_part part);
int cg_group_bn(const mlc_node *const *m, int count);
/* UPDATE groups run over the concatenation of their members' elements. */
int64_t cg_group_update_extent(const mlc_node *const *m, int count);

/* llvm_util.c: constants, memory access, loops, math. */
LLVMValueRef cg_f32(cg *c, double v);
LLVMValueRef cg_i64(cg *c, int64_t v);
LLVMValueRef cg_gep(cg *c, LLVMValueRef p, LLVMValueRef idx, LLVMTypeRef elt);
LLVMValueRef cg_load(cg *c, LLVMValueRef p, LLVMValueRef idx);          /* f32 p[idx] */
LLVMValueRef cg_load_i32(cg *c, LLVMValueRef p, LLVMValueRef idx);      /* i32 p[idx] as i64 */
void cg_store(cg *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef idx); /* f32 p[idx] = v */
/* An alloca of ty in the function's entry block (one static slot however
 * the code branches; SROA promotes scalars to SSA values); the builder stays
 * where it was. */
LLVMValueRef cg_entry_alloca(cg *c, LLVMTypeRef ty, const char *name);
LLVMValueRef cg_alloca_f32(cg *c, double init);                       /* scalar accumulator */
LLVMValueRef cg_fadd_reassoc(cg *c, LLVMValueRef a, LLVMValueRef b);  /* vectorizable sum step */
LLVMValueRef cg_intrin(cg *c, const char *name, LLVMTypeRef overload, LLVMValueRef *args,
		       int nargs);
LLVMValueRef cg_exp(cg *c, LLVMValueRef x);
LLVMValueRef cg_log(cg *c, LLVMValueRef x);
LLVMValueRef cg_tanh(cg *c, LLVMValueRef x);
LLVMValueRef cg_maxnum(cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_sitofp(cg *c, LLVMValueRef i);

/* Row helpers over x[base + j], j in [0, m) (kernels_reduce.c): the row
 * maximum, and Σ_j exp(x - mx), also storing each exp into y unless y is NULL. */
LLVMValueRef cg_row_max(cg *c, LLVMValueRef x, LLVMValueRef base, LLVMValueRef m);
LLVMValueRef cg_row_expsum(cg *c, LLVMValueRef x, LLVMValueRef y, LLVMValueRef base,
			   LLVMValueRef m, LLVMValueRef mx);

/* Extents of a node at run time (symbolic batch dims resolve to c->n). */
LLVMValueRef cg_dim(cg *c, const mlc_node *n, int i);
LLVMValueRef cg_rows(cg *c, const mlc_node *n);   /* product of all dims but the last */
LLVMValueRef cg_numel(cg *c, const mlc_node *n);
LLVMValueRef cg_cols(cg *c, const mlc_node *n);   /* the last dim; 1 for scalars */

/* A counted loop `for (iv = lo; iv < hi; iv++)`; the body goes between
 * begin and end. Loops nest; accumulators live in cg_alloca_f32 slots,
 * which SROA turns into registers. */
typedef struct {
	LLVMValueRef iv, hi;
	LLVMBasicBlockRef body, exit;
} cg_loop;
void cg_loop_begin(cg *c, cg_loop *l, LLVMValueRef lo, LLVMValueRef hi, const char *name);
void cg_loop_end(cg *c, cg_loop *l);
/* Ends a loop over rows whose body holds the inner loops that should be
 * vectorized, and tells the vectorizer to leave the row loop itself alone. */
void cg_loop_end_rows(cg *c, cg_loop *l);

/* A PIC target machine for the host CPU and its features. */
LLVMTargetMachineRef cg_host_tm(mlc_diag *d);
void cg_init_llvm(void); /* one-time, thread-safe */
/* Reports an LLVM error (consumed) as a diagnostic; returns MLC_EINTERNAL. */
mlc_status cg_llvm_error(mlc_diag *d, const char *what, LLVMErrorRef err);
/* default<O2> with loop and SLP vectorization, tuned for `tm`. */
mlc_status cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, mlc_diag *d);
/* The optimization pipeline and target-machine settings as one string (a part
 * of the object cache key). */
const char *cg_pipeline_id(void);

/* module.c: builds the whole module (kernels + entries) into `ctx`.
 * has_entry[e] tells which entry functions were generated; `numerics`:
 * instrumented entries (mlc_jit_opts.check_numerics). */
struct mlc_profile;
/* prof (NULL: none): profiled entries, each kernel's row added to it (profile.h). */
mlc_status cg_build_module(const mlc_graph *g, LLVMContextRef ctx, LLVMTargetMachineRef tm, bool numerics,
			   struct mlc_profile *prof, mlc_diag *d, LLVMModuleRef *out,
			   bool has_entry[MLC_ENTRY_COUNT]);

/* perfmap.c: with $MLC_PERF_MAP set, the functions of a linked object are
 * appended to /tmp/perf-<pid>.map for perf. */
bool cg_perf_map_wanted(void);
mlc_status cg_perf_map_write(LLVMOrcLLJITRef jit, const char *obj, size_t n, mlc_diag *d);

/* The range kind of node n's kernel, with CG_RANGE_ELEMWISE resolved. */
cg_range cg_range_of(const mlc_node *n);

/* parallel.c: calling kernels from entries, split over the thread pool. */
int cg_threads(const mlc_graph *g);               /* g->threads, at least 1 */
/* A rough one-thread time of node n's work at max_batch, in ns. */
double cg_work_ns(const mlc_node *n, int64_t batch);
/* Its GEMM-shaped arithmetic (matmul, conv2d and its gradients), else 0. */
double cg_gemm_flops(const mlc_node *n, int64_t batch);
/* The entry's argument block for pool calls (an alloca of `words` i64s),
 * NULL with one thread. */
LLVMValueRef cg_parallel_block(cg *c, int words);
/* Emits the call of kernel k over its whole range, directly or through
 * mlc_parallel_for; ptrs are its k->nparam pointer arguments. */
void cg_call_kernel(cg *c, const cg_kernel *k, LLVMValueRef const *ptrs, LLVMValueRef act,
		    LLVMValueRef hyper, LLVMValueRef block);

/* Kernel bodies (kernels_*.c). */
void cg_elementwise(cg *c, const mlc_node *n);
void cg_matmul(cg *c, const mlc_node *n);
void cg_softmax(cg *c, const mlc_node *n);
void cg_softmax_grad(cg *c, const mlc_node *n);
void cg_sum_rows(cg *c, const mlc_node *n);
void cg_mse(cg *c, const mlc_node *n);
void cg_bce(cg *c, const mlc_node *n);
void cg_softmax_xent(cg *c, const mlc_node *n);
void cg_softmax_xent_grad(cg *c, const mlc_node *n);
void cg_hinge(cg *c, const mlc_node *n);
void cg_hinge_grad(cg *c, const mlc_node *n);
void cg_mae(cg *c, const mlc_node *n);
void cg_bce_logits(cg *c, const mlc_node *n);
void cg_categorical_xent(cg *c, const mlc_node *n);
void cg_categorical_xent_grad(cg *c, const mlc_node *n);
void cg_kl_div(cg *c, const mlc_node *n);
void cg_kl_div_grad(cg *c, const mlc_node *n);
void cg_sgd(cg *c, const mlc_node *n);
void cg_adam(cg *c, const mlc_node *n); /* adam and adamw */
void cg_rmsprop(cg *c, const mlc_node *n);
void cg_adagrad(cg *c, const mlc_node *n);
void cg_adadelta(cg *c, const mlc_node *n);
void cg_sumsq(cg *c, const mlc_node *n);

/* Convolution and pooling (kernels_conv.c, kernels_pool.c). */
void cg_conv2d(cg *c, const mlc_node *n);
void cg_conv2d_grad_input(cg *c, const mlc_node *n);
void cg_conv2d_grad_weight(cg *c, const mlc_node *n);
/* Direct convolutions (kernels_direct.c), called by the three above when
 * mlc_conv_algo (ir/conv.h) says MLC_CONV_DIRECT. */
void cg_conv2d_direct(cg *c, const mlc_node *n);
void cg_conv2d_grad_input_direct(cg *c, const mlc_node *n);
void cg_conv2d_grad_weight_direct(cg *c, const mlc_node *n);
void cg_maxpool(cg *c, const mlc_node *n);
void cg_maxpool_grad(cg *c, const mlc_node *n);
void cg_avgpool(cg *c, const mlc_node *n);
void cg_avgpool_grad(cg *c, const mlc_node *n);
void cg_global_avgpool(cg *c, const mlc_node *n);
void cg_global_avgpool_grad(cg *c, const mlc_node *n);
/* C = op(A)·op(B) + beta·C through cblas_sgemm (row-major); sizes and
 * leading dimensions are i64 values that fit in 32 bits, beta an f32 value.
 * Skips the call when m is 0. */
void cg_sgemm(cg *c, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
	      LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb, LLVMValueRef beta,
	      LLVMValueRef cm, LLVMValueRef ldc);

/* Scalar emitters (kernels_elementwise.c). */
LLVMValueRef cg_sc_const(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_add(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_relu(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_leaky_relu(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_scale(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_sigmoid(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_tanh(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_step(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_relu_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_leaky_relu_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_sigmoid_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_tanh_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_step_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_mse_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_bce_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_mae_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_bce_logits_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);

/* Layout, batchnorm and dropout (kernels_struct.c). */
LLVMValueRef cg_training(cg *c); /* i1: the entry runs in training mode (hyper block) */
void cg_copy(cg *c, const mlc_node *n); /* flatten, reshape_like */
void cg_concat(cg *c, const mlc_node *n);
void cg_slice(cg *c, const mlc_node *n);
void cg_batchnorm(cg *c, const mlc_node *n);
/* Batchnorm n in pieces, for fused kernels: stack arrays for its per-channel
 * shift and scale (returns shift), filling them (training: from the batch
 * statistics of x over all rows, updating the running ones; inference: from
 * the running ones), and y = (x − shift[j])·scale[j] + beta[j]. */
LLVMValueRef cg_bn_arrays(cg *c, const mlc_node *n, LLVMValueRef *scale);
void cg_bn_scale_shift(cg *c, const mlc_node *n, bool training, LLVMValueRef x, LLVMValueRef gamma,
		       LLVMValueRef rmean, LLVMValueRef rvar, LLVMValueRef shift, LLVMValueRef scale);
LLVMValueRef cg_bn_apply(cg *c, LLVMValueRef x, LLVMValueRef shift, LLVMValueRef scale, LLVMValueRef beta,
			 LLVMValueRef j);
void cg_batchnorm_grad(cg *c, const mlc_node *n);
void cg_batchnorm_grad_gamma(cg *c, const mlc_node *n);
LLVMValueRef cg_sc_batchnorm_infer_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_dropout(cg *c, const mlc_node *n, LLVMValueRef const *in); /* and dropout_grad */
/* murmur3's finalizer, and the per-element hash of (seed, step, key,
 * c->elem) that dropout masks and random ops are drawn from (i32). */
LLVMValueRef cg_fmix32(cg *c, LLVMValueRef h);
LLVMValueRef cg_elem_hash(cg *c, int64_t key);
/* Primitive ops (kernels_prim.c). */
void cg_reduce(cg *c, const mlc_node *n);    /* sum, mean over axes */
void cg_broadcast(cg *c, const mlc_node *n); /* their gradient */
void cg_slice_axis(cg *c, const mlc_node *n);
void cg_slice_grad(cg *c, const mlc_node *n);
#define CG_PRIM_SCALARS(X)                                                                         \
	X(mul) X(sub) X(div) X(minimum) X(maximum) X(neg) X(exp) X(log) X(sqrt) X(square) X(abs)   \
	X(sign) X(pow) X(clamp) X(clamp_grad) X(minmax_grad) X(detach) X(random_normal)           \
	X(random_uniform)
#define X(name) LLVMValueRef cg_sc_##name(cg *c, const mlc_node *n, LLVMValueRef const *in);
CG_PRIM_SCALARS(X)
#undef X
/* gradient clipping (kernels_update.c) */
LLVMValueRef cg_sc_clip_coef(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_mul_scalar(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_clip_value(cg *c, const mlc_node *n, LLVMValueRef const *in);
/* L1/L2 penalties' gradients (kernels_update.c; cg_sumsq also does abs_sum) */
LLVMValueRef cg_sc_abs_sum_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);
LLVMValueRef cg_sc_sumsq_grad(cg *c, const mlc_node *n, LLVMValueRef const *in);

#endif
