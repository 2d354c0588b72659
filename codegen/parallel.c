/* parallel.c — how an entry calls a kernel: directly on its whole range, or
 * split over the runtime's thread pool (runtime/pool.h) through a task
 * wrapper when the graph is planned for several threads, the range splits and
 * the work is large enough to pay for the hand-off.
 *
 * The entry stores the kernel's arguments in an argument block on its stack
 * (one block per entry, reused call after call: mlc_parallel_for returns only
 * when every chunk is done):
 *   word i < nparam   pointer parameter i
 *   word nparam       the node's scratch base (thread 0's area), or null
 *   word nparam + 1   n (i64)
 *   word nparam + 2   hyper
 *   word nparam + 3   the kernel's extent E (i64)
 * and calls mlc_parallel_for(k<id>.task, block, ceil(E / grain), threads). The
 * task `void k<id>.task(ptr block, i64 begin, i64 end, i64 tid)` calls the
 * kernel on [begin·grain, min(end·grain, E)) with thread tid's scratch area
 * (ir.h, mlc_scratch_stride).
 *
 * Grains keep a split bit-identical to one thread's run: OpenBLAS 0.3.21's
 * sgemm (Zen) computes a row's dot products the same way whatever the call
 * only when the call starts at a multiple of 24 rows of the whole product
 * (measured, every shape and transpose tried; other split points change the
 * last bits of some rows), and convolutions through im2col must cut where the
 * one-thread kernel's image blocks start.
 *
 * Kernels flagged CG_PARTIAL (conv2d_grad_weight) sum over the images of
 * source 0 into their whole output. Split, thread 0 writes the output and
 * thread t > 0 a partial output in its scratch area, after its im2col
 * columns; the entry adds the partials to the output after the join. */
#include "cg.h"

#include "../ir/conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splitting pays when a kernel's estimated single-thread time is above this:
 * a hand-off to a spinning worker costs about a microsecond, and the chunks
 * touch different cache lines of the operands. */
enum { MIN_WORK_NS = 8000 };

int cg_threads(const mlc_graph *g)
{
	return g->threads > 1 ? g->threads : 1;
}

/* The kernel's whole range [0, extent) as an i64 value. */
static LLVMValueRef range_extent(cg *c, const cg_kernel *k)
{
	const mlc_node *x = k->extent_of;
	if (k->extent > 0)
		return cg_i64(c, k->extent);
	switch (k->range) {
	case CG_RANGE_ROWS: return cg_rows(c, x);
	case CG_RANGE_ELEMS: return cg_numel(c, x);
	case CG_RANGE_ONE: return cg_i64(c, 1);
	case CG_RANGE_IMAGES: return cg_dim(c, x, 0);
	case CG_RANGE_ELEMWISE: break;
	}
	MLC_UNREACHABLE();
}

double cg_gemm_flops(const mlc_node *n, int64_t batch)
{
	mlc_window w;
	switch (n->op) {
	case OP_MATMUL: {
		const mlc_node *a = n->src[0];
		double k = (double)(n->attr.i[0] ? a->dim[0] : a->dim[1]);
		if (k < 0) /* the batch dim (ta=1: a weight gradient) */
			k = (double)batch;
		return 2 * k * (double)mlc_numel(n, batch);
	}
	case OP_CONV2D:
	case OP_CONV2D_GRAD_INPUT:
	case OP_CONV2D_GRAD_WEIGHT: {
		mlc_window_of(n, &w);
		const mlc_node *x = n->src[0];
		double images = (double)(x->dim[0] == MLC_BATCH ? batch : x->dim[0]);
		return 2 * images * (double)(w.oh * w.ow * w.kh * w.kw * (w.c / w.groups) * w.f);
	}
	default: return 0;
	}
}

/* A rough single-thread time at max_batch: GEMM flops at ≈ 50 GFLOP/s,
 * anything else by the elements it reads and writes at ≈ 3 per ns. */
double cg_work_ns(const mlc_node *n, int64_t batch)
{
	double flops = cg_gemm_flops(n, batch);
	if (flops > 0)
		return flops / 50;
	double elems = (double)mlc_numel(n, batch);
	for (int i = 0; i < n->nsrc; i++)
		elems += (double)mlc_numel(n->src[i], batch);
	return elems / 3;
}

enum { SGEMM_ROWS = 24 };

static int64_t gcd(int64_t a, int64_t b)
{
	while (b) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* The unit a split of kernel k's range is cut in (see the top of the file). */
static int64_t grain(const cg_kernel *k, int64_t batch)
{
	mlc_window w;
	const mlc_node *n = k->geom;
	switch (n ? n->op : OP_COUNT) {
	case OP_MATMUL: return SGEMM_ROWS;
	case OP_CONV2D:
	case OP_CONV2D_GRAD_INPUT:
	case OP_CONV2D_GRAD_WEIGHT: {
		mlc_window_of(n, &w);
		const mlc_node *x = n->src[0];
		if (!mlc_window_pointwise(&w)) /* im2col blocks */
			return mlc_window_block(&w, x->dim[0] == MLC_BATCH ? batch : x->dim[0]);
		/* one product over images · OH·OW rows */
		return SGEMM_ROWS / gcd(w.oh * w.ow, SGEMM_ROWS);
	}
	default:
		/* whole cache lines per thread */
		return k->range == CG_RANGE_ELEMS ? 16 : 1;
	}
}

/* The extent of k's range at max_batch, without code. */
static int64_t static_extent(const cg_kernel *k, int64_t batch)
{
	const mlc_node *x = k->extent_of;
	if (k->extent > 0)
		return k->extent;
	switch (k->range) {
	case CG_RANGE_ROWS: {
		int64_t cols = x->rank > 0 ? x->dim[x->rank - 1] : 1;
		return cols > 0 ? mlc_numel(x, batch) / cols : 0;
	}
	case CG_RANGE_ELEMS: return mlc_numel(x, batch);
	case CG_RANGE_IMAGES: return x->dim[0] == MLC_BATCH ? batch : x->dim[0];
	default: return 1;
	}
}

/* A partial kernel's output for thread t > 0: after t's im2col columns. */
static int64_t partial_offset(const mlc_node *n, int64_t batch)
{
	return (mlc_scratch_elems(n, batch) + 15) / 16 * 16;
}

static bool splits(cg *c, const cg_kernel *k)
{
	int64_t batch = c->g->max_batch;
	return cg_threads(c->g) > 1 && k->range != CG_RANGE_ONE && !k->nosplit &&
	       static_extent(k, batch) > grain(k, batch) && k->work_ns >= MIN_WORK_NS;
}

/* Every thread's scratch area must lie in the activation arena (the
 * planner reserved threads · stride elements). */
static bool scratch_fits(cg *c, const cg_kernel *k)
{
	const mlc_node *n = k->geom;
	int64_t batch = c->g->max_batch, t = cg_threads(c->g);
	if (!k->scratch && !k->partial)
		return true;
	int64_t need = k->partial ? partial_offset(n, batch) + mlc_numel(n, batch) : k->scratch;
	int64_t end = k->scratch_at + (t - 1) * mlc_scratch_stride(n, batch) + need;
	if (n->mem == MEM_ACT && end <= c->g->act_size)
		return true;
	mlc_error_file(c->d, NULL,
		       "codegen: node %%%d (%s): the plan has no scratch space for %d threads",
		       n->id, mlc_ops[n->op].name, (int)t);
	c->failed = true;
	return false;
}

static LLVMValueRef i64c(cg *c, int64_t v)
{
	return LLVMConstInt(c->t_i64, (unsigned long long)v, 1);
}

/* void k<id>.task(ptr block, i64 begin, i64 end, i64 tid) */
static LLVMValueRef task_fn(cg *c, const cg_kernel *k)
{
	const mlc_node *n = k->geom;
	char name[80];
	snprintf(name, sizeof name, "%s.task", LLVMGetValueName2(k->fn, &(size_t){0}));
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
	if (fn)
		return fn;
	LLVMTypeRef pt[4] = {c->t_ptr, c->t_i64, c->t_i64, c->t_i64};
	fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, pt, 4, 0));
	LLVMSetLinkage(fn, LLVMInternalLinkage);
	LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
				LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
	LLVMBuilderRef b = LLVMCreateBuilderInContext(c->ctx);
	LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
	LLVMValueRef blk = LLVMGetParam(fn, 0), tid = LLVMGetParam(fn, 3);
	int64_t batch = c->g->max_batch;
#define WORD(i, ty) LLVMBuildLoad2(b, ty, LLVMBuildGEP2(b, c->t_i64, blk, (LLVMValueRef[]){i64c(c, i)}, 1, ""), "")
	LLVMValueRef *args = mlc_xmalloc(sizeof *args * (size_t)(k->nparam + 5));
	int na = 0;
	for (int i = 0; i < k->nparam; i++)
		args[na++] = WORD(i, c->t_ptr);
	LLVMValueRef scratch = WORD(k->nparam, c->t_ptr);
	LLVMValueRef own = LLVMBuildNSWMul(b, tid, i64c(c, n ? mlc_scratch_stride(n, batch) : 0), "");
	if (k->partial) {
		MLC_ASSERT(k->slot[0] == 0);
		LLVMValueRef at = LLVMBuildNSWAdd(b, own, i64c(c, partial_offset(n, batch)), "");
		LLVMValueRef part = LLVMBuildGEP2(b, c->t_f32, scratch, &at, 1, "partial");
		LLVMValueRef first = LLVMBuildICmp(b, LLVMIntEQ, tid, i64c(c, 0), "");
		args[0] = LLVMBuildSelect(b, first, args[0], part, "");
	}
	if (k->scratch)
		args[na++] = LLVMBuildGEP2(b, c->t_f32, scratch, &own, 1, "scratch");
	args[na++] = WORD(k->nparam + 1, c->t_i64);
	LLVMValueRef begin = LLVMGetParam(fn, 1), end = LLVMGetParam(fn, 2);
	int64_t g = grain(k, batch);
	if (g > 1) {
		LLVMValueRef whole = WORD(k->nparam + 3, c->t_i64);
		begin = LLVMBuildNSWMul(b, begin, i64c(c, g), "");
		end = LLVMBuildNSWMul(b, end, i64c(c, g), "");
		end = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, end, whole, ""), end, whole, "");
	}
	args[na++] = begin;
	args[na++] = end;
	args[na++] = WORD(k->nparam + 2, c->t_ptr);
#undef WORD
	LLVMBuildCall2(b, k->type, k->fn, args, (unsigned)na, "");
	LLVMBuildRetVoid(b);
	LLVMDisposeBuilder(b);
	free(args);
	return fn;
}

LLVMValueRef cg_parallel_block(cg *c, int words)
{
	if (cg_threads(c->g) <= 1)
		return NULL;
	LLVMValueRef blk = LLVMBuildAlloca(c->b, LLVMArrayType2(c->t_i64, (uint64_t)words + 4), "args.par");
	LLVMSetAlignment(blk, 16);
	return blk;
}

/* out[i] += Σ_{t ≥ 1} partial_t[i], in thread order, after the join. A loop
 * over t, not one add per thread written out: the code (and so compile
 * time) must not grow with --threads. Each element still gets its adds in
 * thread order, so the sums are the same bit for bit. */
static void add_partials(cg *c, const mlc_node *n, LLVMValueRef out, LLVMValueRef scratch)
{
	int64_t batch = c->g->max_batch, stride = mlc_scratch_stride(n, batch);
	cg_loop lt, l;
	cg_loop_begin(c, &lt, cg_i64(c, 1), cg_i64(c, cg_threads(c->g)), "red.t");
	LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, lt.iv, cg_i64(c, stride), ""),
					  cg_i64(c, partial_offset(n, batch)), "");
	LLVMValueRef p = cg_gep(c, scratch, at, c->t_f32);
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_numel(c, n), "red");
	cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, out, l.iv), cg_load(c, p, l.iv), ""), out, l.iv);
	cg_loop_end(c, &l);
	cg_loop_end(c, &lt);
}

void cg_call_kernel(cg *c, const cg_kernel *k, LLVMValueRef const *ptrs, LLVMValueRef act,
		    LLVMValueRef hyper, LLVMValueRef block)
{
	int64_t batch = c->g->max_batch;
	const mlc_node *n = k->geom;
	LLVMValueRef scratch = NULL;
	if (k->scratch || k->partial)
		scratch = cg_gep(c, act, cg_i64(c, k->scratch_at), c->t_f32);
	LLVMValueRef extent = range_extent(c, k);
	if (!block || !splits(c, k)) {
		LLVMValueRef *args = mlc_xmalloc(sizeof *args * (size_t)(k->nparam + 5));
		int na = 0;
		for (int i = 0; i < k->nparam; i++)
			args[na++] = ptrs[i];
		if (k->scratch)
			args[na++] = scratch;
		args[na++] = c->n;
		args[na++] = cg_i64(c, 0);
		args[na++] = extent;
		args[na++] = hyper;
		LLVMBuildCall2(c->b, k->type, k->fn, args, (unsigned)na, "");
		free(args);
		return;
	}
	if (!scratch_fits(c, k))
		return;
	LLVMValueRef *words = mlc_xmalloc(sizeof *words * (size_t)(k->nparam + 4));
	int nw = 0;
	for (int i = 0; i < k->nparam; i++)
		words[nw++] = ptrs[i];
	words[nw++] = scratch ? scratch : LLVMConstNull(c->t_ptr);
	words[nw++] = c->n;
	words[nw++] = hyper;
	words[nw++] = extent;
	int64_t g = grain(k, batch);
	LLVMValueRef grains = g == 1 ? extent
				     : LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, extent, cg_i64(c, g - 1), ""),
						     cg_i64(c, g), "grains");
	for (int i = 0; i < nw; i++)
		LLVMBuildStore(c->b, words[i], cg_gep(c, block, cg_i64(c, i), c->t_i64));
	free(words);
	LLVMTypeRef pt[4] = {c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
	LLVMTypeRef ty = LLVMFunctionType(c->t_void, pt, 4, 0);
	LLVMValueRef pf = LLVMGetNamedFunction(c->mod, "mlc_parallel_for");
	if (!pf)
		pf = LLVMAddFunction(c->mod, "mlc_parallel_for", ty);
	LLVMValueRef args[4] = {task_fn(c, k), block, grains, cg_i64(c, cg_threads(c->g))};
	LLVMBuildCall2(c->b, ty, pf, args, 4, "");
	if (k->partial)
		add_partials(c, n, ptrs[0], scratch);
}
