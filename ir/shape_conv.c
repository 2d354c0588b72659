/* shape_conv.c — shape rules of the convolution and pooling ops, and the
 * window geometry (conv.h) they share with the planner and the kernels.
 * Rules reject every geometry the kernels cannot run: a kernel larger than
 * the padded input, channels not divisible by groups, a weight that does not
 * match, a pooling window that would cover only padding. */
#include "conv.h"
#include "shape_util.h"

#include <stdint.h>
#include <string.h>

/* Attribute slots, as in ops.def. */
enum { C_SH, C_SW, C_PT, C_PL, C_PB, C_PR, C_DH, C_DW, C_GROUPS, C_ALGO };
enum { P_KH, P_KW, P_SH, P_SW, P_PT, P_PL, P_PB, P_PR };

static bool is_conv(mlc_opcode op)
{
	return op == OP_CONV2D || op == OP_CONV2D_GRAD_INPUT || op == OP_CONV2D_GRAD_WEIGHT;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* PyTorch's output size; <= 0 when the window does not fit (or the
 * arithmetic would overflow, which only absurd attributes can cause). */
static int64_t out_size(int64_t in, int64_t pad0, int64_t pad1, int64_t k, int64_t dil,
			int64_t stride)
{
	int64_t span, num;
	if (stride < 1 || dil < 1 || k < 1 || __builtin_mul_overflow(dil, k - 1, &span) ||
	    __builtin_add_overflow(in, pad0, &num) || __builtin_add_overflow(num, pad1, &num) ||
	    __builtin_sub_overflow(num, span, &num))
		return 0;
	return floor_div(num - 1, stride) + 1;
}

void mlc_window_of(const mlc_node *n, mlc_window *w)
{
	const mlc_node *x = n->src[0];
	const int64_t *a = n->attr.i;
	memset(w, 0, sizeof *w);
	if (x->rank == 4) {
		w->h = x->dim[1];
		w->w = x->dim[2];
		w->c = x->dim[3];
	}
	if (is_conv(n->op)) {
		const mlc_node *k = n->src[1];
		if (k->rank == 4) {
			w->kh = k->dim[0];
			w->kw = k->dim[1];
			w->f = k->dim[3];
		}
		w->sh = a[C_SH], w->sw = a[C_SW];
		w->pt = a[C_PT], w->pl = a[C_PL], w->pb = a[C_PB], w->pr = a[C_PR];
		w->dh = a[C_DH], w->dw = a[C_DW];
		w->groups = a[C_GROUPS];
	} else {
		MLC_ASSERT(n->op == OP_MAXPOOL || n->op == OP_MAXPOOL_GRAD || n->op == OP_AVGPOOL ||
			   n->op == OP_AVGPOOL_GRAD);
		w->kh = a[P_KH], w->kw = a[P_KW];
		w->sh = a[P_SH], w->sw = a[P_SW];
		w->pt = a[P_PT], w->pl = a[P_PL], w->pb = a[P_PB], w->pr = a[P_PR];
		w->dh = w->dw = 1;
		w->groups = 1;
		w->f = w->c;
	}
	w->oh = out_size(w->h, w->pt, w->pb, w->kh, w->dh, w->sh);
	w->ow = out_size(w->w, w->pl, w->pr, w->kw, w->dw, w->sw);
}

bool mlc_window_pointwise(const mlc_window *w)
{
	return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->pt == 0 && w->pl == 0 &&
	       w->pb == 0 && w->pr == 0;
}

int64_t mlc_window_cols(const mlc_window *w)
{
	int64_t k = 1;
	const int64_t f[] = {w->oh, w->ow, w->kh, w->kw, w->c};
	for (size_t i = 0; i < MLC_COUNTOF(f); i++)
		if (f[i] < 0 || __builtin_mul_overflow(k, f[i], &k))
			return INT64_MAX;
	return k;
}

int64_t mlc_window_block(const mlc_window *w, int64_t images)
{
	int64_t per = mlc_window_cols(w);
	int64_t b = per > 0 ? MLC_IM2COL_ELEMS / per : images;
	return b < 1 ? 1 : b > images ? images : b;
}

/* ---- diagnostics ---- */


static void set_shape(mlc_node *n, int rank, const int64_t *dim)
{
	n->dtype = DT_F32;
	n->rank = rank;
	memcpy(n->dim, dim, sizeof(int64_t) * (size_t)rank);
}

static char *shape_str(int rank, const int64_t *dim, char *buf, size_t len)
{
	mlc_node t = {.dtype = DT_F32, .rank = rank};
	memcpy(t.dim, dim, sizeof(int64_t) * (size_t)rank);
	return mlc_type_str(&t, buf, len);
}

/* Source i is f32[N,H,W,C] (what = "input") or a weight [KH,KW,I,O] (no batch dim). */
static bool need_4d(mlc_node *n, int i, const char *what, const char *form, mlc_diag *d)
{
	char t[96];
	const mlc_node *s = n->src[i];
	bool weight = strcmp(what, "weight") == 0;
	if (s->dtype != DT_F32 || s->rank != 4 || (weight && s->dim[0] == MLC_BATCH))
		FAIL("%s%s expects a 4-D %s f32[%s], got %s", WHERE, OPNAME, what, form,
		     mlc_type_str(s, t, sizeof t));
	return true;
}

/* The geometry of a conv2d-family node, validated; on success w->oh, w->ow >= 1. */
static bool conv_geometry(mlc_node *n, mlc_window *w, mlc_diag *d)
{
	char a[96], b[96];
	if (!need_4d(n, 0, "input", "N,H,W,C", d) || !need_4d(n, 1, "weight", "KH,KW,C/groups,F", d))
		return false;
	mlc_window_of(n, w);
	if (w->sh < 1 || w->sw < 1)
		FAIL("%s%s strides must be positive, got %lldx%lld", WHERE, OPNAME, (long long)w->sh,
		     (long long)w->sw);
	if (w->dh < 1 || w->dw < 1)
		FAIL("%s%s dilations must be positive, got %lldx%lld", WHERE, OPNAME, (long long)w->dh,
		     (long long)w->dw);
	if (w->pt < 0 || w->pl < 0 || w->pb < 0 || w->pr < 0)
		FAIL("%s%s pads must not be negative, got t=%lld l=%lld b=%lld r=%lld", WHERE, OPNAME,
		     (long long)w->pt, (long long)w->pl, (long long)w->pb, (long long)w->pr);
	if (w->groups < 1)
		FAIL("%s%s groups must be positive, got %lld", WHERE, OPNAME, (long long)w->groups);
	if (n->attr.i[C_ALGO] < MLC_CONV_AUTO || n->attr.i[C_ALGO] > MLC_CONV_DIRECT)
		FAIL("%s%s algo must be 0 (auto), 1 (gemm) or 2 (direct), got %lld", WHERE, OPNAME,
		     (long long)n->attr.i[C_ALGO]);
	const mlc_node *x = n->src[0], *k = n->src[1];
	if (w->c % w->groups)
		FAIL("%s%s input %s has %lld channels, which groups=%lld does not divide", WHERE, OPNAME,
		     mlc_type_str(x, a, sizeof a), (long long)w->c, (long long)w->groups);
	if (w->f % w->groups)
		FAIL("%s%s weight %s has %lld filters, which groups=%lld does not divide", WHERE, OPNAME,
		     mlc_type_str(k, a, sizeof a), (long long)w->f, (long long)w->groups);
	if (k->dim[2] != w->c / w->groups)
		FAIL("%s%s weight %s does not fit input %s: expected %lld input channels per group "
		     "(groups=%lld), got %lld",
		     WHERE, OPNAME, mlc_type_str(k, a, sizeof a), mlc_type_str(x, b, sizeof b),
		     (long long)(w->c / w->groups), (long long)w->groups, (long long)k->dim[2]);
	if (w->oh < 1 || w->ow < 1) {
		int64_t eh = w->dh * (w->kh - 1) + 1, ew = w->dw * (w->kw - 1) + 1;
		char dil[64] = "";
		if (eh != w->kh || ew != w->kw)
			snprintf(dil, sizeof dil, " (%lldx%lld dilated)", (long long)eh, (long long)ew);
		FAIL("%s%s kernel %lldx%lld%s is larger than the padded input %lldx%lld", WHERE, OPNAME,
		     (long long)w->kh, (long long)w->kw, dil, (long long)(w->h + w->pt + w->pb),
		     (long long)(w->w + w->pl + w->pr));
	}
	return true;
}

/* dy (source i) must have the shape `want` of the forward op's output. */
static bool need_dy(mlc_node *n, int i, int rank, const int64_t *want, const char *fwd, mlc_diag *d)
{
	char a[96], b[96];
	const mlc_node *dy = n->src[i];
	bool ok = dy->dtype == DT_F32 && dy->rank == rank;
	for (int k = 0; ok && k < rank; k++)
		ok = dy->dim[k] == want[k];
	if (!ok)
		FAIL("%s%s expects dy of the %s output's shape %s, got %s", WHERE, OPNAME, fwd,
		     shape_str(rank, want, a, sizeof a), mlc_type_str(dy, b, sizeof b));
	return true;
}

bool shape_conv2d(mlc_node *n, mlc_diag *d)
{
	mlc_window w;
	if (!conv_geometry(n, &w, d))
		return false;
	set_shape(n, 4, (int64_t[]){n->src[0]->dim[0], w.oh, w.ow, w.f});
	return true;
}

/* (x, w, dy): x and w give the geometry; dy must be conv2d(x, w)'s shape. */
static bool conv_grad(mlc_node *n, mlc_diag *d, const mlc_node *like)
{
	mlc_window w;
	if (!conv_geometry(n, &w, d))
		return false;
	if (!need_dy(n, 2, 4, (int64_t[]){n->src[0]->dim[0], w.oh, w.ow, w.f}, "conv2d", d))
		return false;
	set_shape(n, like->rank, like->dim);
	return true;
}

bool shape_conv2d_grad_input(mlc_node *n, mlc_diag *d)
{
	return conv_grad(n, d, n->src[0]);
}

bool shape_conv2d_grad_weight(mlc_node *n, mlc_diag *d)
{
	return conv_grad(n, d, n->src[1]);
}

/* The geometry of a pooling node, validated: every window holds at least one
 * input element (a max over padding only would be -inf, a mean 0/0). */
static bool pool_geometry(mlc_node *n, mlc_window *w, mlc_diag *d)
{
	char t[96];
	const mlc_node *x = n->src[0];
	if (x->dtype != DT_F32 || x->rank != 4)
		FAIL("%s%s expects a 4-D input f32[N,H,W,C], got %s", WHERE, OPNAME,
		     mlc_type_str(x, t, sizeof t));
	mlc_window_of(n, w);
	if (w->kh < 1 || w->kw < 1)
		FAIL("%s%s window must be positive, got %lldx%lld", WHERE, OPNAME, (long long)w->kh,
		     (long long)w->kw);
	if (w->sh < 1 || w->sw < 1)
		FAIL("%s%s strides must be positive, got %lldx%lld", WHERE, OPNAME, (long long)w->sh,
		     (long long)w->sw);
	if (w->pt < 0 || w->pl < 0 || w->pb < 0 || w->pr < 0)
		FAIL("%s%s pads must not be negative, got t=%lld l=%lld b=%lld r=%lld", WHERE, OPNAME,
		     (long long)w->pt, (long long)w->pl, (long long)w->pb, (long long)w->pr);
	if (w->oh < 1 || w->ow < 1)
		FAIL("%s%s window %lldx%lld is larger than the padded input %lldx%lld", WHERE, OPNAME,
		     (long long)w->kh, (long long)w->kw, (long long)(w->h + w->pt + w->pb),
		     (long long)(w->w + w->pl + w->pr));
	/* Windows start at o·s − pad; the first and the last are the extreme ones. */
	bool empty = w->pt >= w->kh || w->pl >= w->kw || (w->oh - 1) * w->sh - w->pt >= w->h ||
		     (w->ow - 1) * w->sw - w->pl >= w->w;
	if (empty)
		FAIL("%s%s pads t=%lld l=%lld b=%lld r=%lld leave a %lldx%lld window (stride %lldx%lld) "
		     "with no input element",
		     WHERE, OPNAME, (long long)w->pt, (long long)w->pl, (long long)w->pb, (long long)w->pr,
		     (long long)w->kh, (long long)w->kw, (long long)w->sh, (long long)w->sw);
	return true;
}

bool shape_pool(mlc_node *n, mlc_diag *d)
{
	mlc_window w;
	if (!pool_geometry(n, &w, d))
		return false;
	set_shape(n, 4, (int64_t[]){n->src[0]->dim[0], w.oh, w.ow, w.c});
	return true;
}

/* (x, dy) -> dx */
bool shape_pool_grad(mlc_node *n, mlc_diag *d)
{
	const char *fwd = n->op == OP_MAXPOOL_GRAD ? "maxpool" : "avgpool";
	mlc_window w;
	if (!pool_geometry(n, &w, d) ||
	    !need_dy(n, 1, 4, (int64_t[]){n->src[0]->dim[0], w.oh, w.ow, w.c}, fwd, d))
		return false;
	set_shape(n, 4, n->src[0]->dim);
	return true;
}

bool shape_global_pool(mlc_node *n, mlc_diag *d)
{
	char t[96];
	const mlc_node *x = n->src[0];
	if (x->dtype != DT_F32 || x->rank != 4)
		FAIL("%s%s expects a 4-D input f32[N,H,W,C], got %s", WHERE, OPNAME,
		     mlc_type_str(x, t, sizeof t));
	set_shape(n, 2, (int64_t[]){x->dim[0], x->dim[3]});
	return true;
}

/* (x, dy) -> dx */
bool shape_global_pool_grad(mlc_node *n, mlc_diag *d)
{
	char t[96];
	const mlc_node *x = n->src[0];
	if (x->dtype != DT_F32 || x->rank != 4)
		FAIL("%s%s expects a 4-D input f32[N,H,W,C], got %s", WHERE, OPNAME,
		     mlc_type_str(x, t, sizeof t));
	if (!need_dy(n, 1, 2, (int64_t[]){x->dim[0], x->dim[3]}, "global_avgpool", d))
		return false;
	set_shape(n, 4, x->dim);
	return true;
}
