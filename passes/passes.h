/* passes.h — graph → graph passes and the pass manager that runs them in order. */
#ifndef MLC_PASSES_H
#define MLC_PASSES_H

#include "../ir/ir.h"

typedef struct {
	bool wrt_inputs;       /* autodiff: also ret "grad.<input>" for f32 inputs */
	bool no_update;        /* skip the optimizer pass (mlc grad) */
	double momentum;       /* optimizer pass: SGD momentum */
	bool nesterov;
	mlc_opcode update;     /* optimizer pass: the update op (OP_ADAM, ...); 0: sgd */
	const mlc_attrs *update_attrs; /* its attributes; NULL: the op's defaults */
	double clip_norm;      /* optimizer pass: global gradient norm limit (0: none) */
	double clip_value;     /* optimizer pass: gradient element limit (0: none) */
	int64_t max_batch;     /* plan_memory: largest batch the buffers must hold */
	int threads;           /* kernel threads the plan serves (per-thread scratch); >= 1 */
	bool no_fuse;          /* skip the fuse pass (A/B comparisons) */
	const char *fuse_off;  /* comma-separated fusion rules to switch off (fuse.c) */
	const char *print_before, *print_after; /* pass name or "all" */
	const char *only;      /* --passes: comma-separated passes run in that order, nothing else */
	bool resume;           /* IR text: start after the last pass the graph shows done */
	const char *source;    /* the file the graph came from, for file-level errors (may be NULL) */
	FILE *print_to;
} mlc_pass_opts;

mlc_status mlc_infer_shapes(mlc_graph *g, mlc_diag *d);
/* Reverse-mode gradients of the scalar `root` with respect to wrt[0..nwrt)
 * (parameters, inputs or intermediates): appends the backward nodes and sets
 * grads[i] to d root / d wrt[i], NULL where root does not depend on wrt[i]
 * (or only through a grad_zero op such as detach). Shapes must be known.
 * Callable more than once on one graph: each call keeps its own table of
 * partial gradients. An op without a gradient rule (grad_none) on a path from
 * root to a wrt value is a located error naming the op and its layer. The
 * nodes a caller does not keep are left for dce. */
mlc_status mlc_gradients(mlc_graph *g, mlc_node *root, int nwrt, mlc_node *const *wrt, mlc_node **grads,
			 mlc_diag *d);
/* The autodiff pass: mlc_gradients of ret "loss" w.r.t. every trainable
 * param (and f32 input with o->wrt_inputs), as ret "grad.<name>". */
mlc_status mlc_autodiff(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
mlc_status mlc_optimizer(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
mlc_status mlc_dce(mlc_graph *g, mlc_diag *d);
mlc_status mlc_fuse(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
extern const char *const mlc_fuse_rules[]; /* names for mlc_pass_opts.fuse_off, NULL-terminated */
mlc_status mlc_plan_memory(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
/* Writes the resolved algorithm into every conv node's `algo` attribute
 * (convalgo.c); shapes must be known. Run before plan: scratch sizes depend on it. */
void mlc_conv_select(mlc_graph *g);

/* The pipeline, in order: shapes, autodiff, optimizer, dce, fuse, plan; verify between. */
extern const char *const mlc_pass_names[];
/* The position of the pass name[0..len) in the pipeline, or -1. */
int mlc_pass_index(const char *name, size_t len);
/* How many leading passes g shows done (docs/ir.md "Resuming the pipeline"):
 * one past the last pass whose effect IR text keeps (types, grad.* results,
 * update ops, fused groups, a plan), 0 for a graph without types. */
int mlc_passes_done(const mlc_graph *g);
mlc_status mlc_run_passes(mlc_graph *g, const mlc_pass_opts *o, const char *stop_after,
			  mlc_diag *d);

#endif
