/* shape_struct.c — shape rules of the layout ops (flatten, reshape_like,
 * concat, slice), batch normalization and dropout. Like shape_rules.c, a
 * rule sets the node's type or reports a located error and returns false;
 * attributes the kernels cannot honour (a slice out of range, a negative
 * eps) are refused here, so the kernels never see them. */
#include "shape_util.h"

#include <math.h>
#include <string.h>



static bool all_f32(mlc_node *n, mlc_diag *d)
{
	for (int i = 0; i < n->nsrc; i++)
		if (!need_f32(n, i, d))
			return false;
	return true;
}


/* The product of dims [1, rank): static, since only dim 0 may be N. */
static int64_t inner_numel(const mlc_node *x)
{
	int64_t k = 1;
	for (int i = 1; i < x->rank; i++)
		k *= x->dim[i];
	return k;
}

/* [N, a, b, ...] -> [N, a·b·...]: the NHWC element order is kept, so the
 * kernel is a copy. */
bool shape_flatten(mlc_node *n, mlc_diag *d)
{
	char a[96];
	const mlc_node *x = n->src[0];
	if (!need_f32(n, 0, d))
		return false;
	if (x->rank < 2)
		FAIL("%sflatten expects at least 2 dimensions (a batch and features), got %s", WHERE,
		     mlc_type_str(x, a, sizeof a));
	n->dtype = DT_F32;
	n->rank = 2;
	n->dim[0] = x->dim[0];
	n->dim[1] = inner_numel(x);
	return true;
}

/* (dy, x) -> dy's elements in x's shape: both must have the same number of
 * elements at every batch size. */
bool shape_reshape_like(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *dy = n->src[0], *x = n->src[1];
	if (!all_f32(n, d))
		return false;
	bool bdy = dy->rank > 0 && dy->dim[0] == MLC_BATCH, bx = x->rank > 0 && x->dim[0] == MLC_BATCH;
	int64_t kdy = bdy ? inner_numel(dy) : mlc_numel(dy, 1), kx = bx ? inner_numel(x) : mlc_numel(x, 1);
	if (bdy != bx || kdy != kx)
		FAIL("%sreshape_like expects operands with the same number of elements, got %s and %s",
		     WHERE, mlc_type_str(dy, a, sizeof a), mlc_type_str(x, b, sizeof b));
	copy_shape(n, x);
	return true;
}

/* Along the last (channel) dimension; every other dimension must agree. */
bool shape_concat(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *x = n->src[0], *y = n->src[1];
	if (!all_f32(n, d))
		return false;
	bool ok = x->rank == y->rank && x->rank >= 1 && x->dim[x->rank - 1] != MLC_BATCH &&
		  y->dim[y->rank - 1] != MLC_BATCH;
	for (int i = 0; ok && i < x->rank - 1; i++)
		ok = x->dim[i] == y->dim[i];
	if (!ok)
		FAIL("%sconcat expects operands that differ only in the last dimension, got %s and %s",
		     WHERE, mlc_type_str(x, a, sizeof a), mlc_type_str(y, b, sizeof b));
	copy_shape(n, x);
	n->dim[n->rank - 1] = x->dim[x->rank - 1] + y->dim[y->rank - 1];
	return true;
}

/* Channels [begin, begin + size) of the last dimension. */
bool shape_slice(mlc_node *n, mlc_diag *d)
{
	const mlc_node *x = n->src[0];
	if (!need_f32(n, 0, d) || !mlc_slice_check(n, x, d))
		return false;
	copy_shape(n, x);
	n->dim[mlc_slice_axis(n, x)] = n->attr.i[1];
	return true;
}

static const char *const bn_role[] = {"input", "gamma", "beta", "running_mean", "running_var"};

/* x is [..., C] with at least one leading dimension; the per-channel
 * operands, sources [first, last) of n, are f32[C] (role[i] names source i). */
static bool channels(mlc_node *n, int first, int last, const char *const *role, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *x = n->src[0];
	if (!all_f32(n, d))
		return false;
	if (x->rank < 2)
		FAIL("%s%s expects at least 2 dimensions (rows and channels), got %s", WHERE, OPNAME,
		     mlc_type_str(x, a, sizeof a));
	int64_t c = x->dim[x->rank - 1];
	for (int i = first; i < last; i++) {
		const mlc_node *s = n->src[i];
		if (s->rank != 1 || s->dim[0] != c)
			FAIL("%s%s expects %s of shape [%lld] (one per channel of %s), got %s", WHERE, OPNAME,
			     role[i], (long long)c, mlc_type_str(x, a, sizeof a),
			     mlc_type_str(s, b, sizeof b));
	}
	double momentum = n->attr.f[0], eps = n->attr.f[1];
	if (!(momentum >= 0 && momentum <= 1))
		FAIL("%s%s momentum must be in [0, 1], got %g", WHERE, OPNAME, momentum);
	if (!(eps >= 0) || isinf(eps))
		FAIL("%s%s eps must be finite and non-negative, got %g", WHERE, OPNAME, eps);
	return true;
}

/* (x, gamma, beta, running_mean, running_var) -> x's shape */
bool shape_batchnorm(mlc_node *n, mlc_diag *d)
{
	if (!channels(n, 1, 5, bn_role, d))
		return false;
	if (n->attr.i[0] != 0 && n->attr.i[0] != 1)
		FAIL("%sbatchnorm inference must be 0 or 1, got %lld", WHERE, (long long)n->attr.i[0]);
	copy_shape(n, n->src[0]);
	return true;
}

static bool same_as_x(mlc_node *n, int i, mlc_diag *d)
{
	char a[96], b[96];
	if (!mlc_same_shape(n->src[0], n->src[i]))
		FAIL("%s%s expects a gradient of the input's shape %s, got %s", WHERE, OPNAME,
		     mlc_type_str(n->src[0], a, sizeof a), mlc_type_str(n->src[i], b, sizeof b));
	return true;
}

/* (x, gamma, dy) -> dx */
bool shape_batchnorm_grad(mlc_node *n, mlc_diag *d)
{
	if (!channels(n, 1, 2, bn_role, d) || !same_as_x(n, 2, d))
		return false;
	copy_shape(n, n->src[0]);
	return true;
}

/* (x, dy) -> dgamma [C] */
bool shape_batchnorm_grad_gamma(mlc_node *n, mlc_diag *d)
{
	if (!channels(n, 2, 2, bn_role, d) || !same_as_x(n, 1, d))
		return false;
	const mlc_node *x = n->src[0];
	n->dtype = DT_F32;
	n->rank = 1;
	n->dim[0] = x->dim[x->rank - 1];
	return true;
}

/* (dy, gamma, running_var) -> dy's shape: an inference-mode batchnorm's x
 * gradient, dy·γ/√(running_var + eps) per channel */
bool shape_batchnorm_infer_grad(mlc_node *n, mlc_diag *d)
{
	static const char *const role[] = {"gradient", "gamma", "running_var"};
	if (!channels(n, 1, 3, role, d))
		return false;
	copy_shape(n, n->src[0]);
	return true;
}
