/* ir.h — the graph IR: an SSA graph of typed tensor ops, owned by one arena.
 * Nodes are kept in a topological order (every source precedes its users);
 * passes append nodes and mark dead ones, they never reorder sources after users. */
#ifndef MLC_IR_H
#define MLC_IR_H

#include "base.h"

#define MLC_MAX_RANK 6
#define MLC_MAX_SRC 6
#define MLC_BATCH (-1) /* the symbolic batch dimension "N" in a shape */
#define MLC_MAX_ATTR 10

typedef enum {
#define OP(id, name, arity, fc, attrs, shape, grad) OP_##id,
#include "ops.def"
#undef OP
	OP_COUNT
} mlc_opcode;

typedef enum { DT_F32, DT_I32 } mlc_dtype;

typedef enum {
	FC_SOURCE,     /* input, param, state, const: no kernel */
	FC_ELEMWISE,   /* out[i] = f(in0[i], in1[i], ...) */
	FC_BROADCAST,  /* elementwise with a broadcast operand (bias_add) */
	FC_INJECTIVE,  /* reshape/transpose-like index maps */
	FC_REDUCTION,  /* reduces along some axes */
	FC_OUTFUSABLE, /* GEMM/conv: an elementwise epilogue can be fused into its output */
	FC_UPDATE,     /* optimizer updates: in place on a param and its states */
} mlc_fclass;

/* Where a value lives at run time, decided by the memory planner. */
typedef enum { MEM_NONE, MEM_ACT, MEM_PARAM } mlc_mem;

typedef struct {
	double f[MLC_MAX_ATTR];
	int64_t i[MLC_MAX_ATTR];
	const char *s;
} mlc_attrs;

typedef struct mlc_node mlc_node;
typedef struct mlc_graph mlc_graph;

struct mlc_node {
	int id;          /* SSA number, unique in the graph */
	mlc_opcode op;
	mlc_dtype dtype;
	int rank;        /* -1 until shape inference */
	int64_t dim[MLC_MAX_RANK]; /* MLC_BATCH allowed in dim[0] only */
	int nsrc;
	mlc_node *src[MLC_MAX_SRC];
	mlc_attrs attr;
	const char *name;  /* value name for input/param/state ("fc1.weight"), else NULL */
	const char *layer; /* the spec layer it came from, for messages and comments */
	mlc_loc loc;       /* where in the spec */
	bool dead;         /* removed by a pass; skipped by everyone */
	/* pass-owned scratch */
	mlc_node *grad;    /* autodiff: accumulated gradient of this value */
	int uses;
	/* fusion (passes/fuse.c, docs/ir.md "Fused kernels"): the group's root,
	 * i.e. its last member, or NULL when the node is a kernel of its own.
	 * Members of a group are contiguous in the node order and run as one
	 * kernel at the root's position; `internal` members (used only inside
	 * the group and not returned) live in registers and get no memory. */
	mlc_node *group;
	bool internal;
	/* memory plan */
	mlc_mem mem;
	int64_t offset;    /* in 4-byte elements from the arena base */
};

/* A named result of the graph: "loss", "pred", "grad.<value>", "update.<param>". */
typedef struct {
	const char *key;
	mlc_node *val;
} mlc_ret;

struct mlc_graph {
	mlc_arena *arena;
	const char *name;
	mlc_node **node; /* topological order, dead nodes included */
	int nnode, capnode;
	mlc_ret *ret;
	int nret, capret;
	int next_id;
	/* memory plan (plan_memory): sizes in 4-byte elements at batch = max_batch */
	int64_t max_batch;
	int64_t act_size, param_size;
	int threads; /* kernels may run on this many threads: each gets its own scratch */
};

/* Static description of an op, one row of ops.def. */
typedef struct {
	const char *name;
	int arity;
	mlc_fclass fclass;
	const char *attrs;
	bool (*shape)(mlc_node *n, mlc_diag *d); /* sets dtype/rank/dim; false on a diagnosed error */
	/* gradient builder: given node n and dy (the gradient of the loss w.r.t. n), sets
	 * dx[i] for the sources that need one (leave NULL otherwise) */
	void (*grad)(mlc_graph *g, mlc_node *n, mlc_node *dy, mlc_node **dx);
} mlc_opinfo;

extern const mlc_opinfo mlc_ops[OP_COUNT];
mlc_opcode mlc_op_lookup(const char *name); /* OP_COUNT if unknown */
/* An optimizer update (sgd, adam, ...): planned at its param's offset. */
static inline bool mlc_op_is_update(mlc_opcode op) { return mlc_ops[op].fclass == FC_UPDATE; }
const char *mlc_dtype_name(mlc_dtype t);

/* Graph construction. */
mlc_graph *mlc_graph_new(const char *name);
void mlc_graph_free(mlc_graph *g);
/* Appends a node with default attributes and no shape (rank -1). */
mlc_node *mlc_node_new(mlc_graph *g, mlc_opcode op, int nsrc, mlc_node *const *src, mlc_loc loc);
/* Convenience for passes: new node with up to 3 sources, attributes from `proto`
 * (may be NULL for defaults), layer/loc copied from `from`, shape inferred; an
 * inference failure here is an internal bug. */
mlc_node *mlc_build(mlc_graph *g, mlc_opcode op, const mlc_node *from, const mlc_attrs *proto,
		    mlc_node *a, mlc_node *b, mlc_node *c);
mlc_node *mlc_build_n(mlc_graph *g, mlc_opcode op, const mlc_node *from, const mlc_attrs *proto,
		      int nsrc, mlc_node *const *src); /* any number of sources */
/* A source value with a given shape (input/param/state/const). */
mlc_node *mlc_source(mlc_graph *g, mlc_opcode op, const char *name, mlc_dtype t, int rank,
		     const int64_t *dim, mlc_loc loc);
void mlc_graph_ret(mlc_graph *g, const char *key, mlc_node *v); /* adds or replaces */
/* Adds a result whose key is new (the passes' "grad.*" and "update.*", one
 * per parameter; the verifier rejects a key given twice), without a search. */
void mlc_graph_ret_new(mlc_graph *g, const char *key, mlc_node *v);
mlc_node *mlc_graph_find_ret(const mlc_graph *g, const char *key);
mlc_node *mlc_graph_main_loss(const mlc_graph *g); /* the loss term "pred" comes from */
mlc_node *mlc_graph_find_value(const mlc_graph *g, const char *name);

/* Attribute schema access (generic: printer, parser, frontends). */
typedef struct {
	char name[24];
	char kind;  /* 'f', 'i' or 's' */
	int slot;
	char def[24]; /* default, as text */
} mlc_attrdesc;
int mlc_op_attrs(mlc_opcode op, mlc_attrdesc *out, int max); /* count */
void mlc_attrs_default(mlc_opcode op, mlc_attrs *a, mlc_arena *arena);
int mlc_op_attr_slot(mlc_opcode op, const char *name); /* attribute `name`'s slot, -1 if none */

/* Shapes. */
int64_t mlc_numel(const mlc_node *n, int64_t batch); /* MLC_BATCH dims count as `batch` */
bool mlc_same_shape(const mlc_node *a, const mlc_node *b);
/* "f32[N,784]"; buf of at least 96 bytes */
char *mlc_type_str(const mlc_node *n, char *buf, size_t len);

/* Scratch space: a kernel that needs temporary memory (im2col columns) gets
 * mlc_scratch_elems(n, max_batch) elements of the activation arena, starting
 * at mlc_scratch_offset: right after its output, rounded up to 16 elements.
 * The planner reserves it, the verifier and codegen check it; it is not part
 * of the IR text because it follows from the op, its shapes and the plan. */
int64_t mlc_scratch_elems(const mlc_node *n, int64_t max_batch); /* 0: none */
int64_t mlc_scratch_offset(const mlc_node *n, int64_t max_batch);
/* With g->threads > 1 the planner reserves one scratch area per thread, each
 * mlc_scratch_stride apart: thread t's starts at offset + t·stride. The
 * stride is at least the elems rounded up to 16; conv2d_grad_weight's also
 * holds a partial weight gradient (threads > 1 only, even when elems is 0). */
int64_t mlc_scratch_stride(const mlc_node *n, int64_t max_batch);

/* All of a value's activation memory from its offset: the value, then (if
 * its kernel needs some) its scratch areas, one per thread (g->threads, 0
 * counts as 1). The planner reserves this much; nothing else may overlap it
 * while the value is live. */
int64_t mlc_scratch_extent(const mlc_graph *g, const mlc_node *n); /* areas only; 0: none */
int64_t mlc_block_elems(const mlc_graph *g, const mlc_node *n);

/* Liveness over the schedule (liveness.c, docs/ir.md "Memory plan"). The
 * schedule is g->node order; a value is written at the position of its
 * kernel (mlc_kernel_of) and read at the positions of the kernels that read
 * it from outside its group. start = -1 for inputs and consts (written
 * before the first kernel), end = g->nnode for graph results (read after the
 * entry returns) and inputs (kept for the next entry). Indexed by position in g->node; dead and internal nodes
 * have start = end = -2. Needs valid ids (the verifier checks them first). */
typedef struct {
	const mlc_graph *g;
	int nnode;
	int *pos;   /* id -> position in g->node, -1 if none */
	int *start; /* by position */
	int *end;
} mlc_liveness;
void mlc_liveness_compute(const mlc_graph *g, mlc_liveness *lv);
void mlc_liveness_free(mlc_liveness *lv);
/* May n's output take exactly the slot of a value s its kernel reads (for a
 * member of a fused kernel: the group's anchor or a source of the group)?
 * The planner's rule and the verifier's one exception to "live values never
 * overlap" (liveness.c). */
bool mlc_inplace_pair(const mlc_liveness *lv, const mlc_node *n, const mlc_node *s);

/* Fusion groups (group.c). mlc_group_mark recomputes every node's
 * `internal` flag from the groups, the uses and the rets; passes that form
 * or edit groups and the parser call it. mlc_kernel_of is the node whose
 * position a value is computed at: its group's root, or itself. */
void mlc_group_mark(mlc_graph *g);
/* What `internal` should be, by node id (malloc'd, g->next_id + 1 entries);
 * mlc_group_mark applies it, the verifier compares against it. */
bool *mlc_group_internals(const mlc_graph *g);

/* The kinds of fused kernel codegen knows (docs/ir.md "Fused kernels"):
 *  LOOP      elementwise/broadcast members over one domain shape, optionally
 *            ending in sum_rows tails (bias-gradient reductions);
 *  EPILOGUE  an out-fusable anchor (matmul, conv2d, conv2d_grad_input) first,
 *            then LOOP members over the anchor's output, run on each block of
 *            rows the anchor finishes;
 *  UPDATE    optimizer updates over the flat parameter arena. */
typedef enum { MLC_GROUP_LOOP, MLC_GROUP_EPILOGUE, MLC_GROUP_UPDATE } mlc_group_kind;
/* Whether members m[0..count) (topological order) can be one kernel; sets
 * *kind, or writes why not into why. The fuse pass asks before it merges,
 * the verifier after every pass, codegen relies on it. */
bool mlc_group_legal(const mlc_node *const *m, int count, mlc_group_kind *kind, char *why,
		     size_t len);
/* Members of the group whose root is g->node[root_index]: the first index;
 * members are g->node[first .. root_index]. */
int mlc_group_first(const mlc_graph *g, int root_index);
/* Elementwise members of LOOP/EPILOGUE groups: ops with a scalar form. */
bool mlc_op_loopable(mlc_opcode op);
/* Is source k of a loopable op a row f32[C] broadcast over the rows
 * (bias_add's bias, batchnorm_infer_grad's gamma and running_var)? */
bool mlc_op_row_source(mlc_opcode op, int k);
/* Do the op's operands broadcast (shape_bcast: add, mul, sub, ...)? */
bool mlc_op_bcast(mlc_opcode op);
/* sum_rows tails keep per-column double accumulators on the stack. */
enum { MLC_GROUP_MAX_SUM_COLS = 8192 };
static inline const mlc_node *mlc_kernel_of(const mlc_node *n)
{
	return n->group ? n->group : n;
}

/* Primitive ops (shape_prim.c, docs/ir.md "Primitive ops"). How source s
 * of an elementwise op is read for output out: element for element, one
 * scalar, a row [M] against [..., M] (by column), a column [..., 1]
 * against [..., M] (by row); BAD if none of these. */
typedef enum { MLC_BCAST_NONE, MLC_BCAST_SCALAR, MLC_BCAST_ROW, MLC_BCAST_COL, MLC_BCAST_BAD } mlc_bcast;
mlc_bcast mlc_bcast_of(const mlc_node *out, const mlc_node *s);
/* The dims a sum/mean/broadcast reduces ("1", "0,2", "" for all; negative
 * from the end) as a bit mask over a rank-`rank` value; -1 if malformed. */
int mlc_axes_mask(const char *axes, int rank);
/* reshape's "N,28,28,1" (one -1 inferred) for source x: the rank, -1 if impossible. */
int mlc_reshape_dims(const char *shape, const mlc_node *x, int64_t *dim);
/* slice/slice_grad node n of unsliced value x: its axis, negatives resolved;
 * check reports a bad axis or window at n. */
int mlc_slice_axis(const mlc_node *n, const mlc_node *x);
bool mlc_slice_check(mlc_node *n, const mlc_node *x, mlc_diag *d);

/* Text form (docs/ir.md). The parser reads exactly what the printer writes. */
void mlc_graph_print(const mlc_graph *g, FILE *out);
char *mlc_graph_print_str(const mlc_graph *g); /* malloc'd */
mlc_status mlc_graph_parse(const char *file, const char *text, mlc_diag *d, mlc_graph **out);

/* Structural checks between passes; errors here are internal bugs, reported
 * as diagnostics so tests can assert on them. */
mlc_status mlc_verify(const mlc_graph *g, mlc_diag *d);

#endif
