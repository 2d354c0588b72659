/* build.c — what each layer op emits: parameters with their initializers and
 * fans, the op nodes with attributes resolved from the spec ("same" padding
 * becomes explicit pads here, once the input's size is known), and the
 * activation that follows. Every node carries its layer's name and loc. */
#include "fe.h"

#include <string.h>

void fe_attr_set(mlc_opcode op, mlc_attrs *a, const char *name, double v)
{
	mlc_attrdesc desc[MLC_MAX_ATTR * 2 + 1];
	int n = mlc_op_attrs(op, desc, (int)MLC_COUNTOF(desc));
	for (int i = 0; i < n; i++)
		if (strcmp(desc[i].name, name) == 0) {
			MLC_ASSERT(desc[i].kind == 'f' || desc[i].kind == 'i');
			if (desc[i].kind == 'f')
				a->f[desc[i].slot] = v;
			else
				a->i[desc[i].slot] = (int64_t)v;
			return;
		}
	mlc_die(__FILE__, __LINE__, "op %s has no attribute %s", mlc_ops[op].name, name);
}

static mlc_node *shaped(fe *f, mlc_node *n)
{
	return mlc_ops[n->op].shape(n, f->d) ? n : NULL;
}

mlc_node *fe_emit(fe *f, const char *layer, mlc_loc loc, mlc_opcode op, const mlc_attrs *attr,
		  int nsrc, mlc_node *const *src)
{
	mlc_node *n = mlc_node_new(f->g, op, nsrc, src, loc);
	n->layer = layer;
	if (attr)
		n->attr = *attr;
	return shaped(f, n);
}

/* A parameter "<layer>.<suffix>" with initializer `init`. */
static mlc_node *param(fe *f, fe_layer *l, const char *suffix, int rank, const int64_t *dim,
		       const char *init, int64_t fan_in, int64_t fan_out, bool trainable)
{
	mlc_arena *a = f->g->arena;
	const char *name = mlc_arena_printf(f->tmp, "%s.%s", l->name, suffix);
	mlc_node *p = mlc_source(f->g, OP_PARAM, name, DT_F32, rank, dim, l->loc);
	p->layer = l->name;
	mlc_attrs_default(OP_PARAM, &p->attr, a);
	p->attr.s = mlc_arena_strdup(a, init);
	fe_attr_set(OP_PARAM, &p->attr, "fan_in", (double)fan_in);
	fe_attr_set(OP_PARAM, &p->attr, "fan_out", (double)fan_out);
	trainable = trainable && !fe_frozen(f, l);
	fe_attr_set(OP_PARAM, &p->attr, "trainable", trainable);
	double mult = l->lr_mult; /* the layer's, times every enclosing instance's */
	for (int k = l->inst; k >= 0; k = f->inst[k].parent)
		mult *= f->inst[k].lr_mult;
	if (trainable)
		fe_attr_set(OP_PARAM, &p->attr, "lr_mult", mult);
	p = shaped(f, p);
	if (p && trainable && strcmp(suffix, "weight") == 0 && strcmp(l->kind->name, "batchnorm") != 0)
		fe_note_weight(f, l, p);
	return p;
}

/* h + bias (zeros, one per last-dimension entry), then the activation. */
static mlc_node *bias_act(fe *f, fe_layer *l, mlc_node *h, int64_t width)
{
	if (h && l->args.bias) {
		mlc_node *b = param(f, l, "bias", 1, (int64_t[]){width}, l->args.bias_init.name, 0, 0, true);
		fe_init_apply(b, &l->args.bias_init);
		h = b ? fe_emit(f, l->name, l->loc, OP_BIAS_ADD, NULL, 2, (mlc_node *[]){h, b}) : NULL;
	}
	if (h && l->args.act != OP_COUNT)
		h = fe_emit(f, l->name, l->loc, l->args.act, NULL, 1, &h);
	return h;
}

static bool weights_fit(fe *f, fe_layer *l, int rank, const int64_t *dim)
{
	double n = 1;
	for (int i = 0; i < rank; i++)
		n *= (double)dim[i];
	if (n <= INT32_MAX)
		return true;
	char shape[128] = "";
	for (int i = 0, k = 0; i < rank; i++)
		k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%lld", i ? " x " : "", (long long)dim[i]);
	mlc_error_at(f->d, l->loc, "%s '%s' would need a %s weight; at most %d weights per layer are supported",
		     l->kind->name, l->name, shape, INT32_MAX);
	return false;
}

/* dense: x·Wᵀ (+ b) (→ activation), W laid out [out, in] like nn.Linear. */
mlc_node *fe_build_dense(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *x = in[0];
	char t[96];
	if (x->rank != 2) {
		mlc_error_at(f->d, l->loc, "dense '%s' expects a 2-D input f32[N,k], got %s%s", l->name,
			     mlc_type_str(x, t, sizeof t), x->rank > 2 ? "; add a flatten layer before it" : "");
		return NULL;
	}
	int64_t k = x->dim[1], units = l->args.units;
	if (!weights_fit(f, l, 2, (int64_t[]){units, k}))
		return NULL;
	mlc_node *w = param(f, l, "weight", 2, (int64_t[]){units, k}, l->args.init.name, k, units, true);
	fe_init_apply(w, &l->args.init);
	if (!w)
		return NULL;
	mlc_attrs ma;
	mlc_attrs_default(OP_MATMUL, &ma, f->g->arena);
	fe_attr_set(OP_MATMUL, &ma, "tb", 1);
	mlc_node *h = fe_emit(f, l->name, l->loc, OP_MATMUL, &ma, 2, (mlc_node *[]){x, w});
	return bias_act(f, l, h, units);
}

/* Convolutions and pools read images, f32[N,H,W,C]. */
static bool need_image(fe *f, fe_layer *l, const mlc_node *x)
{
	char t[96];
	if (x->rank == 4)
		return true;
	const char *hint = "";
	if (x->op == OP_INPUT && x->rank < 4)
		hint = mlc_arena_printf(f->tmp, "; declare input '%s' as an image, 'shape: [height, width, channels]'",
					x->name);
	mlc_error_at(f->d, l->loc, "%s '%s' expects a 4-D input f32[N,H,W,C], got %s%s", l->kind->name, l->name,
		     mlc_type_str(x, t, sizeof t), hint);
	return false;
}

/* Explicit pads (top, left, bottom, right) for an h x w input. "same" is
 * TensorFlow's: the output is ceil(in / stride), and the odd row or column
 * of padding goes to the bottom or right. */
static void resolve_pads(const fe_args *a, const int64_t *k, const int64_t *s, const int64_t *dil,
			 int64_t h, int64_t w, int64_t pad[4])
{
	if (a->pad_mode == FE_PAD_EXPLICIT) {
		memcpy(pad, a->pad, sizeof a->pad);
		return;
	}
	memset(pad, 0, 4 * sizeof *pad);
	if (a->pad_mode == FE_PAD_VALID)
		return;
	const int64_t in[2] = {h, w};
	for (int d = 0; d < 2; d++) {
		int64_t out = (in[d] + s[d] - 1) / s[d];
		int64_t total = (out - 1) * s[d] + (k[d] - 1) * dil[d] + 1 - in[d];
		if (total < 0)
			total = 0;
		pad[d] = total / 2;
		pad[d + 2] = total - total / 2;
	}
}

static void set_window(mlc_opcode op, mlc_attrs *at, const int64_t *stride, const int64_t *pad)
{
	static const char *const pads[] = {"pad_t", "pad_l", "pad_b", "pad_r"};
	fe_attr_set(op, at, "stride_h", (double)stride[0]);
	fe_attr_set(op, at, "stride_w", (double)stride[1]);
	for (int i = 0; i < 4; i++)
		fe_attr_set(op, at, pads[i], (double)pad[i]);
}

/* conv2d: W "<name>.weight" f32[KH,KW,C/groups,F] (HWIO), then bias and activation. */
mlc_node *fe_build_conv2d(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *x = in[0];
	const fe_args *a = &l->args;
	if (!need_image(f, l, x))
		return NULL;
	int64_t c = x->dim[3], fl = a->units, g = a->groups;
	if (c % g || fl % g) {
		mlc_error_at(f->d, a->groups_loc.line ? a->groups_loc : l->loc,
			     "groups (%lld) must divide both the input channels (%lld) and the filters (%lld) "
			     "of conv2d '%s'",
			     (long long)g, (long long)c, (long long)fl, l->name);
		return NULL;
	}
	const int64_t wdim[4] = {a->kernel[0], a->kernel[1], c / g, fl};
	if (!weights_fit(f, l, 4, wdim))
		return NULL;
	int64_t area = a->kernel[0] * a->kernel[1];
	mlc_node *w = param(f, l, "weight", 4, wdim, a->init.name, area * (c / g), area * (fl / g), true);
	fe_init_apply(w, &a->init);
	if (!w)
		return NULL;
	int64_t pad[4];
	resolve_pads(a, a->kernel, a->stride, a->dilation, x->dim[1], x->dim[2], pad);
	mlc_attrs ca;
	mlc_attrs_default(OP_CONV2D, &ca, f->g->arena);
	set_window(OP_CONV2D, &ca, a->stride, pad);
	fe_attr_set(OP_CONV2D, &ca, "dil_h", (double)a->dilation[0]);
	fe_attr_set(OP_CONV2D, &ca, "dil_w", (double)a->dilation[1]);
	fe_attr_set(OP_CONV2D, &ca, "groups", (double)g);
	mlc_node *h = fe_emit(f, l->name, l->loc, OP_CONV2D, &ca, 2, (mlc_node *[]){x, w});
	return bias_act(f, l, h, fl);
}

/* maxpool / avgpool: the stride defaults to the window size. */
mlc_node *fe_build_pool(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *x = in[0];
	const fe_args *a = &l->args;
	if (!need_image(f, l, x))
		return NULL;
	const int64_t *stride = a->stride[0] ? a->stride : a->kernel;
	static const int64_t one[2] = {1, 1};
	int64_t pad[4];
	resolve_pads(a, a->kernel, stride, one, x->dim[1], x->dim[2], pad);
	/* a window of padding alone would have nothing to pool */
	for (int i = 0; i < 4; i++)
		if (pad[i] >= a->kernel[i % 2]) {
			mlc_error_at(f->d, l->loc, "%s '%s': padding %lld must be smaller than the window (%lld)",
				     l->kind->name, l->name, (long long)pad[i], (long long)a->kernel[i % 2]);
			return NULL;
		}
	mlc_opcode op = l->kind->op;
	mlc_attrs pa;
	mlc_attrs_default(op, &pa, f->g->arena);
	fe_attr_set(op, &pa, "size_h", (double)a->kernel[0]);
	fe_attr_set(op, &pa, "size_w", (double)a->kernel[1]);
	set_window(op, &pa, stride, pad);
	return fe_emit(f, l->name, l->loc, op, &pa, 1, in);
}

mlc_node *fe_build_global_pool(fe *f, fe_layer *l, mlc_node *const *in)
{
	return need_image(f, l, in[0]) ? fe_build_op(f, l, in) : NULL;
}

/* batchnorm over every dimension but the last (the channels): trainable
 * gamma and beta, and running statistics that are parameters too (saved with
 * the weights) but not trained. A frozen batchnorm runs in inference mode in
 * every entry (Keras's trainable=False): running statistics, never updated. */
mlc_node *fe_build_batchnorm(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *x = in[0];
	const int64_t c[1] = {x->dim[x->rank - 1]};
	mlc_node *src[5] = {
		x,
		param(f, l, "weight", 1, c, "ones", 0, 0, true),
		param(f, l, "bias", 1, c, "zeros", 0, 0, true),
		param(f, l, "running_mean", 1, c, "zeros", 0, 0, false),
		param(f, l, "running_var", 1, c, "ones", 0, 0, false),
	};
	for (int i = 1; i < 5; i++)
		if (!src[i])
			return NULL;
	mlc_attrs a = l->args.attr;
	if (fe_frozen(f, l))
		fe_attr_set(OP_BATCHNORM, &a, "inference", 1);
	return fe_emit(f, l->name, l->loc, OP_BATCHNORM, &a, 5, src);
}

/* The mask is drawn from (seed, step, key, index): the node's own id is its
 * key, so its gradient regenerates the same mask. */
mlc_node *fe_build_dropout(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *n = mlc_node_new(f->g, OP_DROPOUT, 1, in, l->loc);
	n->layer = l->name;
	n->attr = l->args.attr;
	fe_attr_set(OP_DROPOUT, &n->attr, "key", n->id);
	return shaped(f, n);
}

/* concat of a, b, c, ... along the channels: concat(concat(a, b), c) ... */
mlc_node *fe_build_concat(fe *f, fe_layer *l, mlc_node *const *in)
{
	mlc_node *h = in[0];
	for (int i = 1; i < l->nsrc && h; i++)
		h = fe_emit(f, l->name, l->loc, OP_CONCAT, NULL, 2, (mlc_node *[]){h, in[i]});
	return h;
}

/* Layers that are exactly one op node. */
mlc_node *fe_build_op(fe *f, fe_layer *l, mlc_node *const *in)
{
	return fe_emit(f, l->name, l->loc, l->kind->op, &l->args.attr, l->kind->arity, in);
}

/* A block's input, a block instance or a repeated block: what it reads. */
mlc_node *fe_build_alias(fe *f, fe_layer *l, mlc_node *const *in)
{
	return in[0];
}
