/* module.c — planned graph → LLVM module: the codegen hook table, one kernel
 * function per node that some entry needs, and the entry functions, which are
 * straight-line calls to kernels with pointers computed as base + offset. */
#include "cg.h"

#include <llvm-c/Analysis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mlc_entry_names[MLC_ENTRY_COUNT] = {"mlc_predict", "mlc_eval", "mlc_grad",
						      "mlc_train"};

const cg_hooks cg_hook[OP_COUNT] = {
#define CG(id, body_, scalar_, range_, flags_)                                                     \
	[OP_##id] = {.body = body_, .scalar = scalar_, .range = range_, .flags = flags_},
#include "cgops.def"
#undef CG
};

/* cgops.def must list every op of ops.def, in the same order. */
enum {
#define CG(id, ...) CG_ROW_##id,
#include "cgops.def"
#undef CG
	CG_NROWS
};
_Static_assert((int)CG_NROWS == (int)OP_COUNT, "cgops.def and ir/ops.def differ in length");
#define CG(id, ...)                                                                                \
	_Static_assert((int)CG_ROW_##id == (int)OP_##id, "cgops.def row " #id " is out of order");
#include "cgops.def"
#undef CG

typedef struct {
	cg c;
	int *pos;        /* node id -> index in g->node */
	bool *need;      /* [entry * nnode + index]: the entry runs this node */
	bool *any;       /* needed by some entry: gets a kernel */
	cg_kernel *kern; /* by node index */
} build;

/* Problems here are bugs in an earlier pass (the graph contract), reported
 * as diagnostics rather than aborts so a library user sees a message. */
__attribute__((format(printf, 3, 4))) static void fail(build *B, const mlc_node *n,
							  const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mlc_error_file(B->c.d, NULL, "codegen: node %%%d (%s%s%s): %s", n->id, mlc_ops[n->op].name,
		       n->layer ? " in layer " : "", n->layer ? n->layer : "", msg);
	B->c.failed = true;
}

/* The roots of entry e, or 0 when one of its fixed roots is missing. */
static int entry_roots(const mlc_graph *g, mlc_entry e, const mlc_node **roots)
{
	const mlc_node *pred = mlc_graph_find_ret(g, "pred"), *loss = mlc_graph_find_ret(g, "loss");
	int k = 0;
	if (!pred || (e != MLC_ENTRY_PREDICT && !loss))
		return 0;
	roots[k++] = pred;
	if (e == MLC_ENTRY_PREDICT)
		return k;
	roots[k++] = loss;
	if (e == MLC_ENTRY_EVAL)
		return k;
	const char *prefix = e == MLC_ENTRY_GRAD ? "grad." : "update.";
	for (int i = 0; i < g->nret; i++)
		if (strncmp(g->ret[i].key, prefix, strlen(prefix)) == 0)
			roots[k++] = g->ret[i].val;
	return k > 2 ? k : 0;
}

static int pos_of(build *B, const mlc_node *n)
{
	MLC_ASSERT(n->id >= 0 && n->id < B->c.g->next_id && B->pos[n->id] >= 0);
	return B->pos[n->id];
}

/* Marks the roots and, walking the topological order backwards, everything
 * they transitively read. */
static void mark_needed(build *B, bool *need, const mlc_node **roots, int nroots)
{
	const mlc_graph *g = B->c.g;
	for (int i = 0; i < nroots; i++)
		need[pos_of(B, roots[i])] = true;
	for (int i = g->nnode - 1; i >= 0; i--) {
		const mlc_node *n = g->node[i];
		if (!need[i])
			continue;
		if (n->dead)
			fail(B, n, "a needed value is marked dead");
		for (int k = 0; k < n->nsrc; k++)
			need[pos_of(B, n->src[k])] = true;
	}
}

static bool overlap(const build *B, const mlc_node *a, const mlc_node *b)
{
	int64_t batch = B->c.g->max_batch > 0 ? B->c.g->max_batch : 1;
	return a->mem == b->mem && a->offset < b->offset + mlc_numel(b, batch) &&
	       b->offset < a->offset + mlc_numel(a, batch);
}

/* Assigns one pointer parameter per distinct planned address. The planner may
 * put the output of an in-place-safe op exactly on a same-shape source (the
 * kernel then reads and writes through one pointer, which keeps `noalias`
 * true and the loops free of runtime alias checks); any other overlap would
 * make the kernel wrong, so it is reported. */
static bool assign_slots(build *B, const mlc_node *n, cg_kernel *k)
{
	const mlc_node *op[CG_MAX_OPND] = {n};
	int nop = 1 + n->nsrc;
	for (int i = 0; i < n->nsrc; i++)
		op[i + 1] = n->src[i];
	k->nparam = 0;
	for (int i = 0; i < nop; i++) {
		if (op[i]->mem != MEM_ACT && op[i]->mem != MEM_PARAM) {
			fail(B, n, "operand %%%d has no memory plan", op[i]->id);
			return false;
		}
		k->slot[i] = -1;
		for (int j = 0; j < i && k->slot[i] < 0; j++) {
			if (op[j]->mem != op[i]->mem || op[j]->offset != op[i]->offset)
				continue;
			bool ok = op[j] == op[i] ||
				  (j == 0 && (cg_hook[n->op].flags & CG_INPLACE) && mlc_same_shape(n, op[i]));
			if (!ok) {
				fail(B, n, "the memory plan puts %%%d and %%%d at the same address", op[j]->id,
				     op[i]->id);
				return false;
			}
			k->slot[i] = k->slot[j];
		}
		if (k->slot[i] >= 0)
			continue;
		for (int s = 0; s < k->nparam; s++)
			if (overlap(B, k->opnd[s], op[i])) {
				fail(B, n, "the memory plan overlaps %%%d and %%%d", k->opnd[s]->id, op[i]->id);
				return false;
			}
		k->slot[i] = k->nparam;
		k->opnd[k->nparam++] = op[i];
	}
	return true;
}

/* A kernel's scratch space (ir.h) follows its output in the activation arena
 * and is passed as one more pointer; no operand may overlap it. */
static bool plan_scratch(build *B, const mlc_node *n, cg_kernel *k)
{
	int64_t batch = B->c.g->max_batch > 0 ? B->c.g->max_batch : 1;
	k->scratch = mlc_scratch_elems(n, batch);
	if (!k->scratch)
		return true;
	int64_t at = mlc_scratch_offset(n, batch);
	if (n->mem != MEM_ACT || at + k->scratch > B->c.g->act_size) {
		fail(B, n, "its scratch space (%lld elements) is not in the activation arena",
		     (long long)k->scratch);
		return false;
	}
	for (int i = 0; i < k->nparam; i++) {
		const mlc_node *o = k->opnd[i];
		if (o->mem == MEM_ACT && o->offset < at + k->scratch && at < o->offset + mlc_numel(o, batch)) {
			fail(B, n, "the memory plan overlaps the scratch space of %%%d and %%%d", n->id, o->id);
			return false;
		}
	}
	return true;
}

static void add_fn_attr(cg *c, LLVMValueRef fn, unsigned idx, const char *name)
{
	unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
	MLC_ASSERT(kind != 0);
	LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

/* void k<id>.<op>(ptr noalias p0, ..., [ptr noalias scratch,] i64 n, i64 begin, i64 end,
 *                  ptr noalias hyper) */
static void make_kernel(build *B, const mlc_node *n, cg_kernel *k)
{
	cg *c = &B->c;
	if (!assign_slots(B, n, k) || !plan_scratch(B, n, k))
		return;
	LLVMTypeRef params[CG_MAX_OPND + 5];
	int np = 0, nptr = k->nparam + (k->scratch > 0);
	for (int i = 0; i < nptr; i++)
		params[np++] = c->t_ptr;
	params[np++] = c->t_i64;
	params[np++] = c->t_i64;
	params[np++] = c->t_i64;
	params[np++] = c->t_ptr;
	k->type = LLVMFunctionType(c->t_void, params, (unsigned)np, 0);
	char name[64];
	snprintf(name, sizeof name, "k%d.%s", n->id, mlc_ops[n->op].name);
	k->fn = LLVMAddFunction(c->mod, name, k->type);
	LLVMSetLinkage(k->fn, LLVMInternalLinkage);
	add_fn_attr(c, k->fn, LLVMAttributeFunctionIndex, "nounwind");
	/* Not inlined into the (up to four) entries: each kernel is optimized
	 * once, stays a unit a thread pool can call on a sub-range, and a call
	 * costs nanoseconds next to the loop it runs. */
	add_fn_attr(c, k->fn, LLVMAttributeFunctionIndex, "noinline");
	for (int i = 0; i < nptr; i++)
		add_fn_attr(c, k->fn, (unsigned)i + 1, "noalias");
	add_fn_attr(c, k->fn, (unsigned)np, "noalias");

	c->fn = k->fn;
	c->scratch = k->scratch ? LLVMGetParam(k->fn, (unsigned)k->nparam) : NULL;
	if (c->scratch)
		LLVMSetValueName2(c->scratch, "scratch", 7);
	c->n = LLVMGetParam(k->fn, (unsigned)nptr);
	c->begin = LLVMGetParam(k->fn, (unsigned)nptr + 1);
	c->end = LLVMGetParam(k->fn, (unsigned)nptr + 2);
	c->hyper = LLVMGetParam(k->fn, (unsigned)nptr + 3);
	LLVMSetValueName2(c->n, "n", 1);
	LLVMSetValueName2(c->begin, "begin", 5);
	LLVMSetValueName2(c->end, "end", 3);
	LLVMSetValueName2(c->hyper, "hyper", 5);
	for (int i = 0; i < k->nparam; i++) {
		/* named after the value it points at, for readable --emit-llvm */
		char pname[64];
		const mlc_node *o = k->opnd[i];
		if (o->name)
			snprintf(pname, sizeof pname, "%s", o->name);
		else
			snprintf(pname, sizeof pname, "v%d", o->id);
		LLVMSetValueName2(LLVMGetParam(k->fn, (unsigned)i), pname, strlen(pname));
	}
	for (int i = 0; i <= n->nsrc; i++)
		c->opnd[i] = LLVMGetParam(k->fn, (unsigned)k->slot[i]);
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, k->fn, "entry"));
	cg_hook[n->op].body(c, n);
	LLVMBuildRetVoid(c->b);
}

static void call_kernel(build *B, const mlc_node *n, const cg_kernel *k, LLVMValueRef params,
			LLVMValueRef act, LLVMValueRef hyper, LLVMValueRef block)
{
	cg *c = &B->c;
	LLVMValueRef ptrs[CG_MAX_OPND];
	for (int i = 0; i < k->nparam; i++) {
		const mlc_node *o = k->opnd[i];
		ptrs[i] = cg_gep(c, o->mem == MEM_PARAM ? params : act, cg_i64(c, o->offset), c->t_f32);
	}
	cg_call_kernel(c, n, k, ptrs, act, hyper, block);
}

/* The kernels' hyper block (codegen.h): the caller's words, copied as bits,
 * and the entry's own mode, so no caller can run TRAIN in inference mode. */
static LLVMValueRef kernel_hyper(cg *c, mlc_entry e, LLVMValueRef caller)
{
	LLVMValueRef block = LLVMBuildAlloca(c->b, LLVMArrayType2(c->t_i32, MLC_HYPER_KERNEL_WORDS), "hyper.k");
	LLVMSetAlignment(block, 16);
	for (int w = 0; w < MLC_HYPER_COUNT; w++) {
		LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_i32, cg_gep(c, caller, cg_i64(c, w), c->t_i32), "");
		LLVMBuildStore(c->b, v, cg_gep(c, block, cg_i64(c, w), c->t_i32));
	}
	bool training = e == MLC_ENTRY_GRAD || e == MLC_ENTRY_TRAIN;
	LLVMBuildStore(c->b, LLVMConstInt(c->t_i32, training, 0),
		       cg_gep(c, block, cg_i64(c, MLC_HYPER_TRAINING), c->t_i32));
	return block;
}

/* void mlc_<entry>(ptr params, ptr act, i64 n, ptr hyper): const fills
 * first, then the needed kernels in graph order. No allocation, no lookups. */
static void make_entry(build *B, mlc_entry e, const bool *need)
{
	cg *c = &B->c;
	const mlc_graph *g = c->g;
	LLVMTypeRef pt[4] = {c->t_ptr, c->t_ptr, c->t_i64, c->t_ptr};
	LLVMTypeRef ty = LLVMFunctionType(c->t_void, pt, 4, 0);
	LLVMValueRef fn = LLVMAddFunction(c->mod, mlc_entry_names[e], ty);
	add_fn_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
	for (unsigned i = 1; i <= 4; i++)
		if (i != 3)
			add_fn_attr(c, fn, i, "noalias");
	LLVMValueRef params = LLVMGetParam(fn, 0), act = LLVMGetParam(fn, 1), hyper = LLVMGetParam(fn, 3);
	LLVMSetValueName2(params, "params", 6);
	LLVMSetValueName2(act, "act", 3);
	LLVMSetValueName2(hyper, "hyper", 5);
	c->fn = fn;
	c->n = LLVMGetParam(fn, 2);
	LLVMSetValueName2(c->n, "n", 1);
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
	hyper = kernel_hyper(c, e, hyper);
	LLVMValueRef block = cg_parallel_block(c);
	for (int prologue = 1; prologue >= 0; prologue--)
		for (int i = 0; i < g->nnode; i++) {
			const cg_hooks *h = &cg_hook[g->node[i]->op];
			if (need[i] && h->body && !!(h->flags & CG_PROLOGUE) == prologue)
				call_kernel(B, g->node[i], &B->kern[i], params, act, hyper, block);
		}
	LLVMBuildRetVoid(c->b);
}

static void build_all(build *B, bool has_entry[MLC_ENTRY_COUNT])
{
	const mlc_graph *g = B->c.g;
	const mlc_node **roots = mlc_xmalloc(sizeof *roots * (size_t)(g->nret + 2));
	for (int e = 0; e < MLC_ENTRY_COUNT; e++) {
		bool *need = B->need + (size_t)e * (size_t)g->nnode;
		int nroots = entry_roots(g, (mlc_entry)e, roots);
		has_entry[e] = nroots > 0;
		if (has_entry[e])
			mark_needed(B, need, roots, nroots);
		for (int i = 0; i < g->nnode; i++)
			B->any[i] |= need[i];
	}
	free(roots);
	for (int i = 0; i < g->nnode && !B->c.failed; i++)
		if (B->any[i] && cg_hook[g->node[i]->op].body)
			make_kernel(B, g->node[i], &B->kern[i]);
	for (int e = 0; e < MLC_ENTRY_COUNT && !B->c.failed; e++)
		if (has_entry[e])
			make_entry(B, (mlc_entry)e, B->need + (size_t)e * (size_t)g->nnode);
}

mlc_status cg_build_module(const mlc_graph *g, LLVMContextRef ctx, LLVMTargetMachineRef tm,
			   mlc_diag *d, LLVMModuleRef *out, bool has_entry[MLC_ENTRY_COUNT])
{
	build B = {0};
	cg *c = &B.c;
	c->g = g;
	c->d = d;
	c->ctx = ctx;
	c->t_void = LLVMVoidTypeInContext(ctx);
	c->t_i1 = LLVMInt1TypeInContext(ctx);
	c->t_i32 = LLVMInt32TypeInContext(ctx);
	c->t_i64 = LLVMInt64TypeInContext(ctx);
	c->t_f32 = LLVMFloatTypeInContext(ctx);
	c->t_ptr = LLVMPointerTypeInContext(ctx, 0);
	c->mod = LLVMModuleCreateWithNameInContext(g->name, ctx);
	char *triple = LLVMGetTargetMachineTriple(tm);
	LLVMSetTarget(c->mod, triple);
	LLVMDisposeMessage(triple);
	LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(c->mod, layout);
	LLVMDisposeTargetData(layout);
	c->b = LLVMCreateBuilderInContext(ctx);

	B.pos = mlc_xmalloc(sizeof *B.pos * (size_t)(g->next_id + 1));
	for (int i = 0; i < g->next_id; i++)
		B.pos[i] = -1;
	for (int i = 0; i < g->nnode; i++)
		B.pos[g->node[i]->id] = i;
	B.need = mlc_xmalloc(sizeof *B.need * (size_t)(g->nnode + 1) * MLC_ENTRY_COUNT);
	B.any = mlc_xmalloc(sizeof *B.any * (size_t)(g->nnode + 1));
	B.kern = mlc_xmalloc(sizeof *B.kern * (size_t)(g->nnode + 1));
	build_all(&B, has_entry);
	free(B.pos);
	free(B.need);
	free(B.any);
	free(B.kern);
	LLVMDisposeBuilder(c->b);

	char *msg = NULL;
	if (!c->failed && LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg)) {
		mlc_error_file(d, NULL, "codegen produced invalid LLVM IR: %s", msg);
		c->failed = true;
	}
	LLVMDisposeMessage(msg);
	if (c->failed) {
		LLVMDisposeModule(c->mod);
		return MLC_EINTERNAL;
	}
	*out = c->mod;
	return MLC_OK;
}
