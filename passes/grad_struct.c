/* grad_struct.c — gradient builders of the layout ops, batch normalization
 * and dropout (the "grad" column of ops.def for those rows). As in
 * grad_rules.c, each builds ordinary nodes; unneeded ones are left to dce. */
#include "../ir/ir.h"

typedef mlc_node node;

/* flatten is a reshape: the gradient is dy read back in x's shape. */
void grad_flatten(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_RESHAPE_LIKE, n, NULL, dy, n->src[0], NULL);
}

static node *slice(mlc_graph *g, node *n, node *dy, int64_t begin, int64_t size)
{
	mlc_attrs a;
	mlc_attrs_default(OP_SLICE, &a, g->arena);
	a.i[0] = begin;
	a.i[1] = size;
	return mlc_build(g, OP_SLICE, n, &a, dy, NULL, NULL);
}

/* Each operand gets its own channels of dy back. */
void grad_concat(mlc_graph *g, node *n, node *dy, node **dx)
{
	const node *a = n->src[0], *b = n->src[1];
	int64_t ca = a->dim[a->rank - 1], cb = b->dim[b->rank - 1];
	dx[0] = slice(g, n, dy, 0, ca);
	dx[1] = slice(g, n, dy, ca, cb);
}

/* Training-mode gradients (the backward pass only runs in training): x
 * through batchnorm_grad, gamma through Σ dy·x̂, beta as a bias. The running
 * statistics are not differentiated (they are not trainable, and the
 * training-mode output does not depend on them). In inference mode
 * (inference=1) the node is a per-channel affine map of x with constants
 * from the running statistics, so dx = dy·γ/√(running_var + eps); its gamma
 * and beta are frozen (the verifier checks), so they need no gradient. */
void grad_batchnorm(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *x = n->src[0], *gamma = n->src[1];
	if (n->attr.i[0]) {
		mlc_attrs a;
		mlc_attrs_default(OP_BATCHNORM_INFER_GRAD, &a, g->arena);
		a.f[1] = n->attr.f[1];
		dx[0] = mlc_build(g, OP_BATCHNORM_INFER_GRAD, n, &a, dy, gamma, n->src[4]);
		return;
	}
	dx[0] = mlc_build(g, OP_BATCHNORM_GRAD, n, &n->attr, x, gamma, dy);
	dx[1] = mlc_build(g, OP_BATCHNORM_GRAD_GAMMA, n, &n->attr, x, dy, NULL);
	dx[2] = mlc_build(g, OP_SUM_ROWS, n, NULL, dy, NULL, NULL);
}

/* Same p and key as the forward node: the kernel recomputes the same mask
 * from (seed, step, key, index). */
void grad_dropout(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_DROPOUT_GRAD, n, &n->attr, dy, NULL, NULL);
}
