/* module.c — planned graph → LLVM module: the codegen hook table, one kernel
 * function per node that some entry needs, and the entry functions, which are
 * straight-line calls to kernels with pointers computed as base + offset. */
#include "cg.h"
#include "profile.h"

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
	bool numerics;   /* instrumented entries (check_numerics) */
	mlc_profile *prof; /* profiled entries: the kernels' rows go here (profile.h) */
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
	/* A fused kernel runs whole: one needed member needs every member (and
	 * the root, where the kernel is called). Members precede their root, so
	 * a walk can find a member needed after it passed the root: repeat. */
	for (bool changed = true; changed;) {
		changed = false;
		for (int i = g->nnode - 1; i >= 0; i--) {
			const mlc_node *n = g->node[i];
			if (!need[i])
				continue;
			if (n->dead)
				fail(B, n, "a needed value is marked dead");
			for (int k = 0; k < n->nsrc; k++)
				need[pos_of(B, n->src[k])] = true;
			if (n->group && !need[pos_of(B, n->group)]) {
				int r = pos_of(B, n->group);
				for (int j = mlc_group_first(g, r); j <= r; j++)
					need[j] = true;
				changed = true;
			}
		}
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
	k->opnd = mlc_xmalloc(sizeof *k->opnd * CG_MAX_OPND);
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
				  (j == 0 && (cg_hook[n->op].flags & CG_INPLACE) && mlc_same_shape(n, op[i]) &&
				   n->dtype == op[i]->dtype);
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
	k->scratch_at = mlc_scratch_offset(n, batch);
	if (!k->scratch)
		return true;
	/* one area per thread (ir.h); all of them must be free */
	int64_t at = k->scratch_at, extent = mlc_scratch_extent(B->c.g, n);
	if (n->mem != MEM_ACT || at + extent > B->c.g->act_size) {
		fail(B, n, "its scratch space (%lld elements) is not in the activation arena",
		     (long long)k->scratch);
		return false;
	}
	for (int i = 0; i < k->nparam; i++) {
		const mlc_node *o = k->opnd[i];
		if (o->mem == MEM_ACT && o->offset < at + extent && at < o->offset + mlc_numel(o, batch)) {
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
 *                  ptr noalias hyper): creates the function of k (operands
 *                  and scratch assigned) and positions the builder in it. */
static void kernel_fn(build *B, const mlc_node *n, cg_kernel *k, const char *what)
{
	cg *c = &B->c;
	LLVMTypeRef *params = mlc_xmalloc(sizeof *params * (size_t)(k->nparam + 5));
	int np = 0, nptr = k->nparam + (k->scratch > 0);
	for (int i = 0; i < nptr; i++)
		params[np++] = c->t_ptr;
	params[np++] = c->t_i64;
	params[np++] = c->t_i64;
	params[np++] = c->t_i64;
	params[np++] = c->t_ptr;
	k->type = LLVMFunctionType(c->t_void, params, (unsigned)np, 0);
	free(params);
	char name[64];
	snprintf(name, sizeof name, "k%d.%s", n->id, what);
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
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, k->fn, "entry"));
}

static void make_kernel(build *B, const mlc_node *n, cg_kernel *k)
{
	cg *c = &B->c;
	if (!assign_slots(B, n, k) || !plan_scratch(B, n, k))
		return;
	k->range = cg_range_of(n);
	k->partial = (cg_hook[n->op].flags & CG_PARTIAL) != 0;
	k->extent_of = k->partial ? n->src[0] : n; /* partial sums: images of source 0 */
	k->geom = n;
	k->work_ns = cg_work_ns(n, c->g->max_batch);
	kernel_fn(B, n, k, mlc_ops[n->op].name);
	for (int i = 0; i <= n->nsrc; i++)
		c->opnd[i] = LLVMGetParam(k->fn, (unsigned)k->slot[i]);
	cg_hook[n->op].body(c, n);
	LLVMBuildRetVoid(c->b);
}

/* Operands of a fused kernel: its members that have memory, then the values
 * it reads from outside. One pointer per address: an update shares its
 * parameter's; any other overlap would make the kernel wrong. */
static bool group_slots(build *B, const mlc_node *const *m, int count, cg_kernel *k)
{
	const mlc_node *root = m[count - 1];
	int cap = 8;
	k->opnd = mlc_xmalloc(sizeof *k->opnd * (size_t)cap);
	k->nparam = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int a = 0; a < count; a++) {
			int nv = pass == 0 ? 1 : m[a]->nsrc;
			for (int v = 0; v < nv; v++) {
				const mlc_node *o = pass == 0 ? m[a] : m[a]->src[v];
				if (pass == 0 ? o->internal : o->group == root)
					continue;
				if (o->mem != MEM_ACT && o->mem != MEM_PARAM) {
					fail(B, root, "operand %%%d has no memory plan", o->id);
					return false;
				}
				bool dup = false;
				for (int i = 0; i < k->nparam && !dup; i++) {
					const mlc_node *p = k->opnd[i];
					/* one pointer for one address: an update and its param, or
					 * an output planned in place (the verifier checked the rule) */
					if (p == o || (p->mem == o->mem && p->offset == o->offset &&
						       ((mlc_op_is_update(p->op) && p->src[0] == o) || (mlc_op_is_update(o->op) && o->src[0] == p) ||
							(mlc_same_shape(p, o) && p->dtype == o->dtype))))
						dup = true;
					else if (overlap(B, p, o)) {
						fail(B, root, "the memory plan overlaps %%%d and %%%d", p->id, o->id);
						return false;
					}
				}
				if (dup)
					continue;
				if (k->nparam == cap) {
					cap *= 2;
					k->opnd = mlc_xrealloc(k->opnd, sizeof *k->opnd * (size_t)cap);
				}
				k->opnd[k->nparam++] = o;
			}
		}
	return true;
}

static void make_group_kernel(build *B, int root_index, cg_kernel *k)
{
	cg *c = &B->c;
	const mlc_graph *g = c->g;
	int first = mlc_group_first(g, root_index), count = root_index - first + 1;
	const mlc_node *const *m = (const mlc_node *const *)&g->node[first];
	mlc_group_kind kind;
	char why[160];
	if (!mlc_group_legal(m, count, &kind, why, sizeof why)) {
		fail(B, m[count - 1], "fused kernel: %s", why);
		return;
	}
	if (!group_slots(B, m, count, k) || (kind == MLC_GROUP_EPILOGUE && !plan_scratch(B, m[0], k)))
		return;
	if (kind == MLC_GROUP_UPDATE) {
		k->range = CG_RANGE_ELEMS;
		k->extent = cg_group_update_extent(m, count);
	} else {
		k->range = kind == MLC_GROUP_EPILOGUE ? cg_range_of(m[0]) : CG_RANGE_ROWS;
		k->extent_of = m[0];
		k->geom = m[0];
	}
	for (int a = 0; a < count; a++)
		k->work_ns += cg_work_ns(m[a], c->g->max_batch);
	/* With a batchnorm member, training entries call two other functions
	 * (fused.c): the anchor's part, split like it, then the batch statistics
	 * and the rest over all rows in one call. Same operands throughout. An
	 * inference-mode batchnorm is folded in every entry. */
	int bn = cg_group_bn(m, count);
	if (bn >= 0 && !m[bn]->attr.i[0]) {
		for (int t = 0; t < 2; t++) {
			cg_kernel *v = mlc_xmalloc(sizeof *v);
			*v = *k;
			v->train[0] = v->train[1] = NULL;
			if (t == 1) {
				v->range = CG_RANGE_ONE;
				v->extent = 1;
				v->nosplit = true;
			}
			k->train[t] = v;
		}
	}
	static const char *const names[] = {"fused", "fused.pre", "fused.post"};
	for (int part = 0; part < 3; part++) {
		cg_kernel *v = part == 0 ? k : k->train[part - 1];
		if (!v)
			break;
		kernel_fn(B, m[count - 1], v, names[part]);
		LLVMValueRef *param = mlc_xmalloc(sizeof *param * (size_t)v->nparam);
		for (int i = 0; i < v->nparam; i++)
			param[i] = LLVMGetParam(v->fn, (unsigned)i);
		cg_group_body(c, m, count, kind, v, param, (cg_part)part);
		free(param);
		LLVMBuildRetVoid(c->b);
	}
}

static void call_kernel(build *B, const cg_kernel *k, LLVMValueRef params, LLVMValueRef act,
			LLVMValueRef hyper, LLVMValueRef block)
{
	cg *c = &B->c;
	LLVMValueRef *ptrs = mlc_xmalloc(sizeof *ptrs * (size_t)(k->nparam + 1));
	for (int i = 0; i < k->nparam; i++) {
		const mlc_node *o = k->opnd[i];
		ptrs[i] = cg_gep(c, o->mem == MEM_PARAM ? params : act, cg_i64(c, o->offset), c->t_f32);
	}
	cg_call_kernel(c, k, ptrs, act, hyper, block);
	free(ptrs);
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

/* The sum_rows members of a fused kernel accumulate into their output
 * (fused.c), which starts at zero. */
static void zero_sums(build *B, int root_index, LLVMValueRef act)
{
	cg *c = &B->c;
	const mlc_graph *g = c->g;
	for (int j = mlc_group_first(g, root_index); j <= root_index; j++) {
		const mlc_node *m = g->node[j];
		if (m->op != OP_SUM_ROWS)
			continue;
		LLVMBuildMemSet(c->b, cg_gep(c, act, cg_i64(c, m->offset), c->t_f32),
				LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
				cg_i64(c, 4 * mlc_numel(m, 1)), 16);
	}
}

/* Whether a fused member's memory still holds its own value after the
 * kernel: not when a later member was planned over it (in place). */
static bool kept(build *B, int j, int root)
{
	const mlc_node *m = B->c.g->node[j];
	for (int k = j + 1; k <= root; k++) {
		const mlc_node *o = B->c.g->node[k];
		if (!o->internal && o->mem != MEM_NONE && overlap(B, m, o))
			return false;
	}
	return true;
}

/* --check-numerics: after the kernel at g->node[i] (a node, or a fused
 * group's root), `if (mlc_numerics_check(p, count, id)) return;` for each
 * f32 value it writes to memory and keeps there, in member order
 * (runtime/numerics.h). Values a fused kernel keeps in registers, or
 * overwrites in place, are not seen. */
static void check_values(build *B, int i, LLVMValueRef params, LLVMValueRef act)
{
	cg *c = &B->c;
	const mlc_graph *g = c->g;
	LLVMTypeRef pt[3] = {c->t_ptr, c->t_i64, c->t_i32};
	LLVMTypeRef ty = LLVMFunctionType(c->t_i32, pt, 3, 0);
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "mlc_numerics_check");
	if (!fn)
		fn = LLVMAddFunction(c->mod, "mlc_numerics_check", ty);
	for (int j = g->node[i]->group ? mlc_group_first(g, i) : i; j <= i; j++) {
		const mlc_node *m = g->node[j];
		if (m->internal || m->dtype != DT_F32 || (m->mem != MEM_ACT && m->mem != MEM_PARAM) || !kept(B, j, i))
			continue;
		LLVMValueRef args[3] = {cg_gep(c, m->mem == MEM_PARAM ? params : act, cg_i64(c, m->offset), c->t_f32),
					cg_numel(c, m), LLVMConstInt(c->t_i32, (unsigned long long)m->id, 0)};
		LLVMValueRef r = LLVMBuildCall2(c->b, ty, fn, args, 3, "");
		LLVMValueRef bad = LLVMBuildICmp(c->b, LLVMIntNE, r, LLVMConstInt(c->t_i32, 0, 0), "");
		LLVMBasicBlockRef stop = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "nonfinite");
		LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "finite");
		LLVMBuildCondBr(c->b, bad, stop, next);
		LLVMPositionBuilderAtEnd(c->b, stop);
		LLVMBuildRetVoid(c->b);
		LLVMPositionBuilderAtEnd(c->b, next);
	}
}

/* --profile: `mlc_profile_tick(@mlc_profile_table, k)` (profile.h); k is
 * kernel v's row, made at its first call site. */
static void prof_tick(build *B, cg_kernel *v, const mlc_node *root, int k)
{
	cg *c = &B->c;
	if (v) {
		if (!v->prof) {
			const mlc_graph *g = c->g;
			char ops[96] = "";
			size_t len = 0;
			double flops = 0, bytes = 0;
			int i = pos_of(B, root), first = root->group ? mlc_group_first(g, i) : i;
			for (int j = first; j <= i; j++) {
				const mlc_node *m = g->node[j];
				len += (size_t)snprintf(ops + len, len < sizeof ops ? sizeof ops - len : 0, "%s%s",
							j > first ? "+" : "", mlc_ops[m->op].name);
				len = len < sizeof ops ? len : sizeof ops;
				flops += cg_gemm_flops(m, g->max_batch);
			}
			for (int j = 0; j < v->nparam; j++)
				bytes += 4.0 * (double)mlc_numel(v->opnd[j], g->max_batch > 0 ? g->max_batch : 1);
			size_t nl;
			const char *name = LLVMGetValueName2(v->fn, &nl);
			v->prof = 1 + mlc_profile_add(B->prof, name, root->layer, ops, flops, bytes);
		}
		k = v->prof - 1;
	}
	LLVMTypeRef pt[2] = {c->t_ptr, c->t_i32};
	LLVMTypeRef ty = LLVMFunctionType(c->t_void, pt, 2, 0);
	LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "mlc_profile_tick");
	if (!fn)
		fn = LLVMAddFunction(c->mod, "mlc_profile_tick", ty);
	LLVMValueRef table = LLVMGetNamedGlobal(c->mod, "mlc_profile_table");
	if (!table)
		table = LLVMAddGlobal(c->mod, LLVMInt8TypeInContext(c->ctx), "mlc_profile_table");
	LLVMValueRef args[2] = {table, LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)k, 1)};
	LLVMBuildCall2(c->b, ty, fn, args, 2, "");
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
	if (B->prof)
		prof_tick(B, NULL, NULL, -1 - (int)e);
	int words = 0;
	for (int i = 0; i < g->nnode; i++)
		words = B->kern[i].nparam > words ? B->kern[i].nparam : words;
	LLVMValueRef block = cg_parallel_block(c, words);
	bool training = e == MLC_ENTRY_GRAD || e == MLC_ENTRY_TRAIN;
	for (int prologue = 1; prologue >= 0; prologue--)
		for (int i = 0; i < g->nnode; i++) {
			const cg_hooks *h = &cg_hook[g->node[i]->op];
			const mlc_node *grp = g->node[i]->group;
			if (grp && grp != g->node[i])
				continue; /* in the fused kernel called at its root */
			if (need[i] && grp && !prologue)
				zero_sums(B, i, act);
			if (need[i] && (h->body || grp) && !!(h->flags & CG_PROLOGUE) == prologue)
			{
				cg_kernel *k = &B->kern[i];
				for (int part = 0; part < 2; part++) {
					cg_kernel *v = training && k->train[0] ? k->train[part] : part ? NULL : k;
					if (!v)
						break;
					call_kernel(B, v, params, act, hyper, block);
					if (B->prof)
						prof_tick(B, v, g->node[i], 0);
				}
				/* every entry: training, gradients, evaluation, prediction */
				if (B->numerics && !prologue)
					check_values(B, i, params, act);
			}
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
	for (int i = 0; i < g->nnode && !B->c.failed; i++) {
		const mlc_node *n = g->node[i];
		if (!B->any[i] || (n->group && n->group != n))
			continue;
		if (n->group)
			make_group_kernel(B, i, &B->kern[i]);
		else if (cg_hook[n->op].body)
			make_kernel(B, n, &B->kern[i]);
	}
	for (int e = 0; e < MLC_ENTRY_COUNT && !B->c.failed; e++)
		if (has_entry[e])
			make_entry(B, (mlc_entry)e, B->need + (size_t)e * (size_t)g->nnode);
}

mlc_status cg_build_module(const mlc_graph *g, LLVMContextRef ctx, LLVMTargetMachineRef tm, bool numerics,
			   mlc_profile *prof, mlc_diag *d, LLVMModuleRef *out, bool has_entry[MLC_ENTRY_COUNT])
{
	build B = {.numerics = numerics, .prof = prof};
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
	for (int i = 0; i <= g->nnode; i++)
		B.kern[i] = (cg_kernel){0};
	build_all(&B, has_entry);
	for (int i = 0; i <= g->nnode; i++)
	{
		free(B.kern[i].opnd);
		free(B.kern[i].train[0]);
		free(B.kern[i].train[1]);
	}
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
