/* grad_prim.c — gradient builders of the primitive ops (issue 11), written
 * with the primitives themselves, so their backward graphs fuse like their
 * forward ones. A broadcast operand gets the gradient summed back to its
 * own shape (reduce_to). grad_zero marks ops whose gradient is deliberately
 * zero (detach, sign, the noise sources), as opposed to grad_none: "not
 * differentiable". Both leave dx empty; the autodiff driver tells them apart
 * by the table entry. */
#include "../ir/ir.h"

#include <stdio.h>
#include <string.h>

typedef mlc_node node;

void grad_zero(mlc_graph *g, node *n, node *dy, node **dx)
{
	(void)g, (void)n, (void)dy, (void)dx;
}

static node *un(mlc_graph *g, mlc_opcode op, node *n, node *a)
{
	return mlc_build(g, op, n, NULL, a, NULL, NULL);
}

static node *bin(mlc_graph *g, mlc_opcode op, node *n, node *a, node *b)
{
	return mlc_build(g, op, n, NULL, a, b, NULL);
}

static node *scaled(mlc_graph *g, node *n, node *x, double factor)
{
	mlc_attrs a;
	mlc_attrs_default(OP_SCALE, &a, g->arena);
	a.f[0] = factor;
	return mlc_build(g, OP_SCALE, n, &a, x, NULL, NULL);
}

/* sum or mean of x over `axes` (text, as in the schema) */
static node *reduce(mlc_graph *g, mlc_opcode op, node *n, node *x, const char *axes, bool keep)
{
	mlc_attrs a;
	mlc_attrs_default(op, &a, g->arena);
	a.s = mlc_arena_strdup(g->arena, axes);
	a.i[0] = keep;
	return mlc_build(g, op, n, &a, x, NULL, NULL);
}

/* The gradient gy of n's output, summed over the dims operand x was
 * broadcast along. */
static node *reduce_to(mlc_graph *g, node *n, node *x, node *gy)
{
	switch (mlc_bcast_of(n, x)) {
	case MLC_BCAST_NONE: return gy;
	case MLC_BCAST_SCALAR: return reduce(g, OP_SUM, n, gy, "", false);
	case MLC_BCAST_ROW: return un(g, OP_SUM_ROWS, n, gy);
	case MLC_BCAST_COL: return reduce(g, OP_SUM, n, gy, "-1", true);
	case MLC_BCAST_BAD: break;
	}
	MLC_UNREACHABLE();
}

void grad_add(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = reduce_to(g, n, n->src[0], dy);
	dx[1] = reduce_to(g, n, n->src[1], dy);
}

void grad_sub(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = reduce_to(g, n, n->src[0], dy);
	dx[1] = reduce_to(g, n, n->src[1], un(g, OP_NEG, n, dy));
}

void grad_mul(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *a = n->src[0], *b = n->src[1];
	dx[0] = reduce_to(g, n, a, bin(g, OP_MUL, n, dy, b));
	dx[1] = reduce_to(g, n, b, bin(g, OP_MUL, n, dy, a));
}

/* y = a / b: da = dy / b, db = −dy·y / b */
void grad_div(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *a = n->src[0], *b = n->src[1];
	dx[0] = reduce_to(g, n, a, bin(g, OP_DIV, n, dy, b));
	node *t = bin(g, OP_DIV, n, bin(g, OP_MUL, n, dy, n), b);
	dx[1] = reduce_to(g, n, b, un(g, OP_NEG, n, t));
}

/* The operand that is picked gets dy, both get dy/2 on a tie (PyTorch 1.13). */
void grad_minmax(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *a = n->src[0], *b = n->src[1];
	mlc_attrs at;
	mlc_attrs_default(OP_MINMAX_GRAD, &at, g->arena);
	at.i[0] = n->op == OP_MAXIMUM;
	dx[0] = reduce_to(g, n, a, mlc_build(g, OP_MINMAX_GRAD, n, &at, a, b, dy));
	dx[1] = reduce_to(g, n, b, mlc_build(g, OP_MINMAX_GRAD, n, &at, b, a, dy));
}

void grad_neg(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = un(g, OP_NEG, n, dy);
}

void grad_exp(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = bin(g, OP_MUL, n, dy, n); /* from the output: exp' = exp */
}

void grad_log(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = bin(g, OP_DIV, n, dy, n->src[0]);
}

void grad_sqrt(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = bin(g, OP_DIV, n, dy, scaled(g, n, n, 2)); /* dy / (2·√x) */
}

void grad_square(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = bin(g, OP_MUL, n, dy, scaled(g, n, n->src[0], 2));
}

void grad_abs(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = bin(g, OP_MUL, n, dy, un(g, OP_SIGN, n, n->src[0])); /* 0 at 0, as PyTorch */
}

/* d xᵖ = p·xᵖ⁻¹; p = 0 is a constant (no gradient), p = 1 the identity. */
void grad_pow(mlc_graph *g, node *n, node *dy, node **dx)
{
	double p = n->attr.f[0];
	if (p == 0)
		return;
	if (p == 1) {
		dx[0] = dy;
		return;
	}
	node *d = n->src[0];
	if (p != 2) {
		mlc_attrs a = n->attr;
		a.f[0] = p - 1;
		d = mlc_build(g, OP_POW, n, &a, n->src[0], NULL, NULL);
	}
	dx[0] = bin(g, OP_MUL, n, dy, scaled(g, n, d, p));
}

void grad_clamp(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_CLAMP_GRAD, n, &n->attr, n->src[0], dy, NULL);
}

/* sum and mean: dy repeated over the reduced dims (divided by their count). */
void grad_reduce(mlc_graph *g, node *n, node *dy, node **dx)
{
	mlc_attrs a;
	mlc_attrs_default(OP_BROADCAST, &a, g->arena);
	a.s = n->attr.s;
	a.i[0] = n->op == OP_MEAN;
	dx[0] = mlc_build(g, OP_BROADCAST, n, &a, dy, n->src[0], NULL);
}

/* broadcast's adjoint is the reduction it undoes. */
void grad_broadcast(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *r = n->src[0], *x = n->src[1];
	dx[0] = reduce(g, n->attr.i[0] ? OP_MEAN : OP_SUM, n, dy, n->attr.s ? n->attr.s : "",
		       r->rank == x->rank && x->rank > 0);
}

/* sum_rows sums every leading dim: its gradient repeats dy over them. */
void grad_sum_rows(mlc_graph *g, node *n, node *dy, node **dx)
{
	node *x = n->src[0];
	if (x->rank == 1) {
		dx[0] = dy;
		return;
	}
	char axes[32] = "";
	for (int i = 0; i < x->rank - 1; i++)
		snprintf(axes + strlen(axes), sizeof axes - strlen(axes), i ? ",%d" : "%d", i);
	mlc_attrs a;
	mlc_attrs_default(OP_BROADCAST, &a, g->arena);
	a.s = mlc_arena_strdup(g->arena, axes);
	dx[0] = mlc_build(g, OP_BROADCAST, n, &a, dy, x, NULL);
}

void grad_reshape(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_RESHAPE_LIKE, n, NULL, dy, n->src[0], NULL);
}

/* the slice's window of the gradient, zeros elsewhere; and back */
void grad_slice(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_SLICE_GRAD, n, &n->attr, dy, n->src[0], NULL);
}

void grad_slice_grad(mlc_graph *g, node *n, node *dy, node **dx)
{
	dx[0] = mlc_build(g, OP_SLICE, n, &n->attr, dy, NULL, NULL);
}
