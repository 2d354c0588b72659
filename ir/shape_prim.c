/* shape_prim.c — shape rules of the primitive ops (issue 11): broadcasting
 * elementwise binaries, reductions over chosen axes and their broadcast
 * back, reshape, the slice gradient and the noise sources; plus the small
 * attribute readers (axes, slice axis, reshape dims) that codegen and the
 * reference evaluator share with the rules. */
#include "shape_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>



mlc_bcast mlc_bcast_of(const mlc_node *out, const mlc_node *s)
{
	if (mlc_same_shape(out, s))
		return MLC_BCAST_NONE;
	if (s->rank == 0)
		return MLC_BCAST_SCALAR;
	if (out->rank < 1)
		return MLC_BCAST_BAD;
	int64_t m = out->dim[out->rank - 1];
	if (s->rank == 1 && s->dim[0] == m && m != MLC_BATCH)
		return MLC_BCAST_ROW;
	if (s->rank == out->rank && s->dim[s->rank - 1] == 1 && out->rank >= 2) {
		for (int i = 0; i < s->rank - 1; i++)
			if (s->dim[i] != out->dim[i])
				return MLC_BCAST_BAD;
		return MLC_BCAST_COL;
	}
	return MLC_BCAST_BAD;
}

/* The larger operand sets the shape; the other must broadcast against it. */
bool shape_bcast(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	const mlc_node *x = n->src[0], *y = n->src[1];
	const mlc_node *big = mlc_numel(y, 2) > mlc_numel(x, 2) ? y : x;
	if (mlc_bcast_of(big, x) == MLC_BCAST_BAD || mlc_bcast_of(big, y) == MLC_BCAST_BAD)
		/* the message add always gave; docs/spec.md lists the broadcasts */
		FAIL("%s%s expects operands of the same shape, got %s and %s", WHERE, OPNAME,
		     mlc_type_str(x, a, sizeof a), mlc_type_str(y, b, sizeof b));
	copy_shape(n, big);
	return true;
}

/* (a, b, dy): dy has the broadcast shape of a and b. */
bool shape_minmax_grad(mlc_node *n, mlc_diag *d)
{
	char a[96];
	for (int k = 0; k < 3; k++)
		if (!need_f32(n, k, d))
			return false;
	const mlc_node *dy = n->src[2];
	for (int k = 0; k < 2; k++)
		if (mlc_bcast_of(dy, n->src[k]) == MLC_BCAST_BAD)
			FAIL("%s%s: operand %s does not broadcast to the gradient's shape", WHERE, OPNAME,
			     mlc_type_str(n->src[k], a, sizeof a));
	copy_shape(n, dy);
	return true;
}

int mlc_axes_mask(const char *axes, int rank)
{
	if (!axes || !*axes)
		return rank > 0 ? (1 << rank) - 1 : 0;
	int mask = 0;
	for (const char *p = axes; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			return -1;
		if (v < 0)
			v += rank;
		if (v < 0 || v >= rank || (mask & (1 << v)))
			return -1;
		mask |= 1 << v;
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return mask;
}

/* x reduced over mask: dims dropped, or kept as 1. */
static void reduced(mlc_node *n, const mlc_node *x, int mask, bool keep)
{
	n->dtype = DT_F32;
	n->rank = 0;
	for (int i = 0; i < x->rank; i++) {
		if (!(mask & (1 << i)))
			n->dim[n->rank++] = x->dim[i];
		else if (keep)
			n->dim[n->rank++] = 1;
	}
}

bool shape_reduce(mlc_node *n, mlc_diag *d)
{
	char a[96];
	const mlc_node *x = n->src[0];
	if (!need_f32(n, 0, d))
		return false;
	int mask = mlc_axes_mask(n->attr.s, x->rank);
	if (mask < 0)
		FAIL("%s%s: axes '%s' are not distinct dimensions of %s", WHERE, OPNAME, n->attr.s,
		     mlc_type_str(x, a, sizeof a));
	reduced(n, x, mask, n->attr.i[0] != 0);
	return true;
}

/* (dy, x): dy must be x reduced over the axes, with or without kept dims. */
bool shape_broadcast(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *dy = n->src[0], *x = n->src[1];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d))
		return false;
	int mask = mlc_axes_mask(n->attr.s, x->rank);
	mlc_node r, k;
	if (mask >= 0) {
		reduced(&r, x, mask, false);
		reduced(&k, x, mask, true);
	}
	if (mask < 0 || (!mlc_same_shape(&r, dy) && !mlc_same_shape(&k, dy)))
		FAIL("%sbroadcast: %s is not %s reduced over axes '%s'", WHERE, mlc_type_str(dy, a, sizeof a),
		     mlc_type_str(x, b, sizeof b), n->attr.s);
	copy_shape(n, x);
	return true;
}

int mlc_reshape_dims(const char *shape, const mlc_node *x, int64_t *dim)
{
	int rank = 0, infer = -1;
	bool batch = x->rank > 0 && x->dim[0] == MLC_BATCH;
	int64_t known = 1, total = 1;
	for (int i = batch; i < x->rank; i++)
		total *= x->dim[i];
	for (const char *p = shape ? shape : ""; *p;) {
		if (rank == MLC_MAX_RANK)
			return -1;
		char *end = (char *)p;
		if (*p == 'N') {
			if (rank != 0 || !batch)
				return -1;
			dim[rank++] = MLC_BATCH;
			end++;
		} else {
			long long v = strtoll(p, &end, 10);
			if (end == p || v == 0 || v < -1 || (v == -1 && infer >= 0))
				return -1;
			if (v == -1)
				infer = rank;
			else
				known *= v;
			if (known > total)
				return -1;
			dim[rank++] = v;
		}
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	/* the batch stays the batch: the new shape must begin with N */
	if (batch != (rank > 0 && dim[0] == MLC_BATCH))
		return -1;
	if (infer >= 0) {
		if (total % known)
			return -1;
		dim[infer] = total / known;
	} else if (known != total) {
		return -1;
	}
	return rank;
}

bool shape_reshape(mlc_node *n, mlc_diag *d)
{
	char a[96];
	const mlc_node *x = n->src[0];
	if (!need_f32(n, 0, d))
		return false;
	int64_t dim[MLC_MAX_RANK];
	int rank = mlc_reshape_dims(n->attr.s, x, dim);
	if (rank < 0)
		FAIL("%sreshape: cannot view %s as [%s] (the same number of elements, N first exactly when "
		     "the input has a batch, at most one -1)",
		     WHERE, mlc_type_str(x, a, sizeof a), n->attr.s ? n->attr.s : "");
	n->dtype = DT_F32;
	n->rank = rank;
	memcpy(n->dim, dim, sizeof dim[0] * (size_t)rank);
	return true;
}

int mlc_slice_axis(const mlc_node *n, const mlc_node *x)
{
	int64_t a = n->attr.i[2];
	return (int)(a < 0 ? a + x->rank : a);
}

/* Shared by slice and slice_grad: x is the unsliced value. */
bool mlc_slice_check(mlc_node *n, const mlc_node *x, mlc_diag *d)
{
	char a[96];
	int64_t begin = n->attr.i[0], size = n->attr.i[1];
	int axis = mlc_slice_axis(n, x);
	if (x->rank < 1 || (axis == x->rank - 1 && x->dim[axis] == MLC_BATCH))
		FAIL("%sslice expects a last dimension of fixed size, got %s", WHERE, mlc_type_str(x, a, sizeof a));
	if (axis < 0 || axis >= x->rank)
		FAIL("%sslice axis %lld is not a dimension of %s", WHERE, (long long)n->attr.i[2],
		     mlc_type_str(x, a, sizeof a));
	if (x->dim[axis] == MLC_BATCH)
		FAIL("%sslice cannot cut the batch dimension of %s", WHERE, mlc_type_str(x, a, sizeof a));
	int64_t c = x->dim[axis];
	char which[32] = "the last dimension";
	if (axis != x->rank - 1)
		snprintf(which, sizeof which, "dimension %d", axis);
	if (begin < 0 || size < 1 || begin > c || size > c - begin)
		FAIL("%sslice begin=%lld size=%lld is out of range for %s of %s", WHERE, (long long)begin,
		     (long long)size, which, mlc_type_str(x, a, sizeof a));
	return true;
}

bool shape_slice_grad(mlc_node *n, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *dy = n->src[0], *x = n->src[1];
	if (!need_f32(n, 0, d) || !need_f32(n, 1, d) || !mlc_slice_check(n, x, d))
		return false;
	mlc_node want;
	copy_shape(&want, x);
	want.dim[mlc_slice_axis(n, x)] = n->attr.i[1];
	if (!mlc_same_shape(&want, dy))
		FAIL("%sslice_grad: %s is not a slice of %s", WHERE, mlc_type_str(dy, a, sizeof a),
		     mlc_type_str(x, b, sizeof b));
	copy_shape(n, x);
	return true;
}

/* Noise in the shape of its source, which may be of any type. */
bool shape_like(mlc_node *n, mlc_diag *d)
{
	(void)d;
	copy_shape(n, n->src[0]);
	n->dtype = DT_F32;
	return true;
}
