/* grad_rules.c — the gradient builder of every differentiable op (the "grad"
 * column of ops.def). Each builds ordinary IR nodes with mlc_build, so the
 * backward graph is verified, printed, fused and compiled like the forward one.
 * Builders may produce gradients nobody needs; dce removes them. */
#include "../ir/ir.h"

typedef mlc_node node;

void grad_none(mlc_graph *g, node *n, node *dy, node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

static mlc_attrs attrs_with_i(mlc_graph *g, mlc_opcode op, int64_t i0, int64_t i1)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.i[0] = i0;
	a.i[1] = i1;
	return a;
}

/* C = op(A)·op(B); each case is the textbook pair of products, written with
 * transpose flags so no transposed copy is ever materialized. */
void grad_matmul(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *a = n->src[0], *b = n->src[1];
	int ta = (int)n->attr.i[0], tb = (int)n->attr.i[1];
	mlc_attrs at;
	if (!ta && !tb) {
		at = attrs_with_i(g, OP_MATMUL, 0, 1);
		dx[0] = mlc_build(g, OP_MATMUL, n, &at, dy, b, NULL); /* dC·Bᵀ */
		at = attrs_with_i(g, OP_MATMUL, 1, 0);
		dx[1] = mlc_build(g, OP_MATMUL, n, &at, a, dy, NULL); /* Aᵀ·dC */
	} else if (!ta && tb) {
		at = attrs_with_i(g, OP_MATMUL, 0, 0);
		dx[0] = mlc_build(g, OP_MATMUL, n, &at, dy, b, NULL); /* dC·B */
		at = attrs_with_i(g, OP_MATMUL, 1, 0);
		dx[1] = mlc_build(g, OP_MATMUL, n, &at, dy, a, NULL); /* dCᵀ·A */
	} else if (ta && !tb) {
		at = attrs_with_i(g, OP_MATMUL, 0, 1);
		dx[0] = mlc_build(g, OP_MATMUL, n, &at, b, dy, NULL); /* B·dCᵀ */
		at = attrs_with_i(g, OP_MATMUL, 0, 0);
		dx[1] = mlc_build(g, OP_MATMUL, n, &at, a, dy, NULL); /* A·dC */
	} else {
		at = attrs_with_i(g, OP_MATMUL, 1, 1);
		dx[0] = mlc_build(g, OP_MATMUL, n, &at, b, dy, NULL); /* Bᵀ·dCᵀ */
		dx[1] = mlc_build(g, OP_MATMUL, n, &at, dy, a, NULL); /* dCᵀ·Aᵀ */
	}
}

/* d(factor·x) = factor·dy */
void grad_scale(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_SCALE, n, &n->attr, dy, NULL, NULL);
}

void grad_bias_add(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = dy;
	dx[1] = mlc_build(g, OP_SUM_ROWS, n, NULL, dy, NULL, NULL);
}

/* Activation gradients carry the forward node's attributes (alpha, slope, ste)
 * into the gradient op, whose schema uses the same slots. */
static node *act_grad(mlc_graph *g, node *n, mlc_opcode op, node *from, node *dy)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.f[0] = n->attr.f[0];
	a.i[0] = n->attr.i[0];
	return mlc_build(g, op, n, &a, from, dy, NULL);
}

void grad_relu(mlc_graph *g, node *n, node *dy, node **dx)
{
	/* from the output: y > 0 exactly where x > 0, and the pre-activation
	 * then need not be kept (or can stay in registers of a fused kernel) */
	dx[0] = act_grad(g, n, OP_RELU_GRAD, n, dy);
}

void grad_leaky_relu(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = act_grad(g, n, OP_LEAKY_RELU_GRAD, n->src[0], dy);
}

void grad_sigmoid(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = act_grad(g, n, OP_SIGMOID_GRAD, n, dy);
}

void grad_tanh(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = act_grad(g, n, OP_TANH_GRAD, n, dy);
}

void grad_step(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = act_grad(g, n, OP_STEP_GRAD, n->src[0], dy);
}

void grad_softmax(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = act_grad(g, n, OP_SOFTMAX_GRAD, n, dy);
}

/* Losses: only the prediction gets a gradient; targets are data. */
void grad_mse(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_MSE_GRAD, n, NULL, n->src[0], n->src[1], dy);
}

void grad_bce(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_BCE_GRAD, n, NULL, n->src[0], n->src[1], dy);
}

void grad_softmax_xent(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_SOFTMAX_XENT_GRAD, n, NULL, n->src[0], n->src[1], dy);
}

/* The newer losses: the gradient op takes (inputs..., dl). */
static node *loss_grad(mlc_graph *g, node *n, mlc_opcode op, node *dy)
{
	return mlc_build(g, op, n, NULL, n->src[0], n->src[1], dy);
}

void grad_hinge(mlc_graph *g, node *n, node *dy, node **dx)
{
	mlc_attrs a;
	mlc_attrs_default(OP_HINGE_GRAD, &a, g->arena);
	a.f[0] = n->attr.f[0]; /* the margin */
	dx[0] = mlc_build(g, OP_HINGE_GRAD, n, &a, n->src[0], n->src[1], dy);
}

void grad_mae(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = loss_grad(g, n, OP_MAE_GRAD, dy);
}

void grad_bce_logits(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = loss_grad(g, n, OP_BCE_LOGITS_GRAD, dy);
}

void grad_categorical_xent(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = loss_grad(g, n, OP_CATEGORICAL_XENT_GRAD, dy);
}

void grad_kl_div(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = loss_grad(g, n, OP_KL_DIV_GRAD, dy);
}

/* the L1/L2 penalties: (x, dl) -> the elementwise gradient, with the
 * penalty's attributes (the same schema, scale:f0) */
void grad_sumsq(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_SUMSQ_GRAD, n, &n->attr, n->src[0], dy, NULL);
}

void grad_abs_sum(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_ABS_SUM_GRAD, n, &n->attr, n->src[0], dy, NULL);
}
