/* shape_rules.c — the shape rule of every op (the "shape" column of ops.def).
 * A rule sets the node's dtype/rank/dim from its sources and attributes, or
 * reports a located error and returns false. */
#include "shape_util.h"

#include <string.h>




bool shape_source(mlc_node *n, mlc_diag *d)
{
	if (n->rank < 0 || n->rank > MLC_MAX_RANK)
		FAIL("%s%s needs a shape of rank 0 to %d", WHERE, mlc_ops[n->op].name, MLC_MAX_RANK);
	for (int i = 0; i < n->rank; i++)
		if (n->dim[i] <= 0 && !(i == 0 && n->dim[i] == MLC_BATCH))
			FAIL("%sdimension %d of '%s' must be positive", WHERE, i, n->name ? n->name : "?");
	return true;
}

bool shape_same(mlc_node *n, mlc_diag *d)
{
	if (!need_f32(n, 0, d))
		return false;
	copy_shape(n, n->src[0]);
	return true;
}

bool shape_same2(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	if (!mlc_same_shape(n->src[0], n->src[1]))
		FAIL("%s%s expects operands of the same shape, got %s and %s", WHERE, mlc_ops[n->op].name,
		     mlc_type_str(n->src[0], a, sizeof a), mlc_type_str(n->src[1], b, sizeof b));
	copy_shape(n, n->src[0]);
	return true;
}

bool shape_matmul(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *x = n->src[0], *y = n->src[1];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	if (x->rank != 2 || y->rank != 2)
		FAIL("%smatmul expects 2-D operands, got %s and %s", WHERE, mlc_type_str(x, a, sizeof a),
		     mlc_type_str(y, b, sizeof b));
	int64_t m = x->dim[n->attr.i[0] ? 1 : 0], k1 = x->dim[n->attr.i[0] ? 0 : 1];
	int64_t k2 = y->dim[n->attr.i[1] ? 1 : 0], cols = y->dim[n->attr.i[1] ? 0 : 1];
	if (k1 != k2)
		FAIL("%smatmul inner dimensions differ: %s%s x %s%s", WHERE, mlc_type_str(x, a, sizeof a),
		     n->attr.i[0] ? "ᵀ" : "", mlc_type_str(y, b, sizeof b), n->attr.i[1] ? "ᵀ" : "");
	if (cols == MLC_BATCH)
		FAIL("%smatmul would put the batch dimension last", WHERE);
	n->dtype = DT_F32;
	n->rank = 2;
	n->dim[0] = m;
	n->dim[1] = cols;
	return true;
}

bool shape_bias_add(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *x = n->src[0], *bias = n->src[1];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	if (x->rank < 1 || bias->rank != 1 || bias->dim[0] != x->dim[x->rank - 1])
		FAIL("%sbias_add expects a bias matching the last dimension, got %s and %s", WHERE,
		     mlc_type_str(x, a, sizeof a), mlc_type_str(bias, b, sizeof b));
	copy_shape(n, x);
	return true;
}

bool shape_sum_rows(mlc_node *n, mlc_diag *d)
{
	const mlc_node *x = n->src[0];
	if (!need_f32(n, 0, d))
		return false;
	if (x->rank < 1)
		FAIL("%ssum_rows expects at least one dimension", WHERE);
	n->dtype = DT_F32;
	n->rank = 1;
	n->dim[0] = x->dim[x->rank - 1];
	return true;
}

bool shape_loss(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	if (!mlc_same_shape(n->src[0], n->src[1]))
		FAIL("%sloss %s expects predictions and targets of the same shape, got %s and %s", WHERE,
		     mlc_ops[n->op].name, mlc_type_str(n->src[0], a, sizeof a),
		     mlc_type_str(n->src[1], b, sizeof b));
	n->dtype = DT_F32;
	n->rank = 0;
	return true;
}

/* Class scores (logits, hinge scores or probabilities) against labels. */
bool shape_xent(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *x = n->src[0], *y = n->src[1];
	if (!need_f32(n, 0, d))
		return false;
	if (x->rank != 2 || y->rank != 1 || y->dtype != DT_I32 || y->dim[0] != x->dim[0])
		FAIL("%s%s expects %s f32[N,C] and class labels i32[N], got %s and %s", WHERE, OPNAME,
		     n->op == OP_CATEGORICAL_XENT || n->op == OP_CATEGORICAL_XENT_GRAD ? "probabilities"
		     : n->op == OP_HINGE || n->op == OP_HINGE_GRAD			    ? "scores"
											    : "logits",
		     mlc_type_str(x, a, sizeof a), mlc_type_str(y, b, sizeof b));
	n->dtype = DT_F32;
	n->rank = 0;
	return true;
}

/* Logits against target distributions of the same shape [N,C] (kl_div). */
bool shape_dist(mlc_node *n, mlc_diag *d)
{
	char a[96];
	if (!shape_loss(n, d))
		return false;
	if (n->src[0]->rank != 2)
		FAIL("%s%s expects logits and target distributions f32[N,C], got %s", WHERE, OPNAME,
		     mlc_type_str(n->src[0], a, sizeof a));
	return true;
}

bool shape_lossgrad(mlc_node *n, mlc_diag *d)
{
	const mlc_node *dl = n->src[2];
	if (dl->rank != 0 || dl->dtype != DT_F32)
		FAIL("%s%s expects a scalar loss gradient", WHERE, mlc_ops[n->op].name);
	bool labels = n->op == OP_SOFTMAX_XENT_GRAD || n->op == OP_HINGE_GRAD ||
		      n->op == OP_CATEGORICAL_XENT_GRAD;
	bool ok = labels ? shape_xent(n, d) : n->op == OP_KL_DIV_GRAD ? shape_dist(n, d) : shape_loss(n, d);
	if (ok)
		copy_shape(n, n->src[0]);
	return ok;
}

bool shape_update(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	for (int i = 1; i < n->nsrc; i++)
		if (!mlc_same_shape(n->src[0], n->src[i]))
			FAIL("%s%s expects parameter, gradient and state of one shape, got %s and %s", WHERE,
			     mlc_ops[n->op].name, mlc_type_str(n->src[0], a, sizeof a),
			     mlc_type_str(n->src[i], b, sizeof b));
	copy_shape(n, n->src[0]);
	return true;
}

/* sumsq: any f32 tensor -> its Σ x² as f32[] */
bool shape_sumsq(mlc_node *n, mlc_diag *d)
{
	if (!need_f32(n, 0, d))
		return false;
	n->dtype = DT_F32;
	n->rank = 0;
	return true;
}

/* mul_scalar: x times a scalar f32[] */
bool shape_mul_scalar(mlc_node *n, mlc_diag *d)
{
	char a[96];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	if (n->src[1]->rank != 0)
		FAIL("%s%s expects a scalar f32[] factor, got %s", WHERE, mlc_ops[n->op].name,
		     mlc_type_str(n->src[1], a, sizeof a));
	copy_shape(n, n->src[0]);
	return true;
}
