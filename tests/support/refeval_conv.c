/* refeval_conv.c — reference convolution and pooling for refeval.c: direct
 * loops over every output element and window position, in double, reading
 * the attributes by their ops.def slots. Nothing is shared with ir/conv.h or
 * codegen, so a geometry bug there is not copied here. */
#include "refeval.h"

#include <math.h>
#include <string.h>

typedef struct {
	int64_t n, h, w, c;    /* input */
	int64_t oh, ow, f;     /* output */
	int64_t kh, kw, sh, sw, pt, pl, dh, dw, groups;
} geom;

static int64_t dim(const mlc_node *v, int i, int64_t n)
{
	return v->dim[i] == MLC_BATCH ? n : v->dim[i];
}

/* x: the input [N,H,W,C]; y: the output-shaped value [N,OH,OW,F]. */
static geom geometry(const mlc_node *v, const mlc_node *x, const mlc_node *y, int64_t n)
{
	const int64_t *a = v->attr.i;
	geom g = {.n = dim(x, 0, n), .h = x->dim[1], .w = x->dim[2], .c = x->dim[3],
		  .oh = y->dim[1], .ow = y->dim[2], .f = y->dim[3], .dh = 1, .dw = 1, .groups = 1};
	bool is_conv = v->op == OP_CONV2D || v->op == OP_CONV2D_GRAD_INPUT || v->op == OP_CONV2D_GRAD_WEIGHT;
	if (is_conv) {
		const mlc_node *k = v->src[1];
		g.kh = k->dim[0], g.kw = k->dim[1];
		g.sh = a[0], g.sw = a[1], g.pt = a[2], g.pl = a[3], g.dh = a[6], g.dw = a[7], g.groups = a[8];
	} else {
		g.kh = a[0], g.kw = a[1], g.sh = a[2], g.sw = a[3], g.pt = a[4], g.pl = a[5];
	}
	return g;
}

/* Index of input element (b, ih, iw, ch), or -1 in the padding. */
static int64_t in_at(const geom *g, int64_t b, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
		     int64_t ch)
{
	int64_t ih = oh * g->sh - g->pt + kh * g->dh, iw = ow * g->sw - g->pl + kw * g->dw;
	if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
		return -1;
	return ((b * g->h + ih) * g->w + iw) * g->c + ch;
}

static int64_t out_at(const geom *g, int64_t b, int64_t oh, int64_t ow, int64_t f)
{
	return ((b * g->oh + oh) * g->ow + ow) * g->f + f;
}

/* conv2d and both gradients: one loop nest over every (output element,
 * kernel tap, input channel of the output's group) that is not padding. */
static void conv(const mlc_node *v, const geom *g, double **s, double *out)
{
	int64_t cg = g->c / g->groups, fg = g->f / g->groups;
	for (int64_t b = 0; b < g->n; b++)
		for (int64_t oh = 0; oh < g->oh; oh++)
			for (int64_t ow = 0; ow < g->ow; ow++)
				for (int64_t f = 0; f < g->f; f++) {
					int64_t iy = out_at(g, b, oh, ow, f), grp = f / fg;
					for (int64_t kh = 0; kh < g->kh; kh++)
						for (int64_t kw = 0; kw < g->kw; kw++)
							for (int64_t ci = 0; ci < cg; ci++) {
								int64_t ix = in_at(g, b, oh, ow, kh, kw, grp * cg + ci);
								int64_t iw = ((kh * g->kw + kw) * cg + ci) * g->f + f;
								if (ix < 0)
									continue;
								if (v->op == OP_CONV2D)
									out[iy] += s[0][ix] * s[1][iw];
								else if (v->op == OP_CONV2D_GRAD_INPUT)
									out[ix] += s[2][iy] * s[1][iw];
								else
									out[iw] += s[0][ix] * s[2][iy];
							}
				}
}

/* Pooling: for every output element, its window's input positions in
 * window order (rows, then columns), padding left out. */
static void pool(const mlc_node *v, const geom *g, double **s, double *out)
{
	int64_t taps = g->kh * g->kw;
	for (int64_t b = 0; b < g->n; b++)
		for (int64_t oh = 0; oh < g->oh; oh++)
			for (int64_t ow = 0; ow < g->ow; ow++)
				for (int64_t c = 0; c < g->c; c++) {
					int64_t iy = out_at(g, b, oh, ow, c), arg = -1;
					double m = -INFINITY, sum = 0, k = 0;
					for (int64_t t = 0; t < taps; t++) {
						int64_t ix = in_at(g, b, oh, ow, t / g->kw, t % g->kw, c);
						if (ix < 0)
							continue;
						sum += s[0][ix];
						k++;
						if (s[0][ix] > m) /* the first maximum wins ties */
							m = s[0][ix], arg = ix;
					}
					MLC_ASSERT(k > 0);
					switch (v->op) {
					case OP_MAXPOOL: out[iy] = m; break;
					case OP_AVGPOOL: out[iy] = sum / k; break;
					case OP_MAXPOOL_GRAD:
						if (arg >= 0) /* NaN inputs: no maximum */
							out[arg] += s[1][iy];
						break;
					case OP_AVGPOOL_GRAD:
						for (int64_t t = 0; t < taps; t++) {
							int64_t ix = in_at(g, b, oh, ow, t / g->kw, t % g->kw, c);
							if (ix >= 0)
								out[ix] += s[1][iy] / k;
						}
						break;
					default: MLC_UNREACHABLE();
					}
				}
}

void ref_eval_conv(const mlc_node *v, int64_t n, double **s, double *out)
{
	memset(out, 0, sizeof(double) * (size_t)mlc_numel(v, n));
	switch (v->op) {
	case OP_CONV2D:
	case OP_MAXPOOL:
	case OP_AVGPOOL: {
		geom g = geometry(v, v->src[0], v, n);
		(v->op == OP_CONV2D ? conv : pool)(v, &g, s, out);
		break;
	}
	case OP_CONV2D_GRAD_INPUT:
	case OP_CONV2D_GRAD_WEIGHT: {
		geom g = geometry(v, v->src[0], v->src[2], n);
		conv(v, &g, s, out);
		break;
	}
	case OP_MAXPOOL_GRAD:
	case OP_AVGPOOL_GRAD: {
		geom g = geometry(v, v->src[0], v->src[1], n);
		pool(v, &g, s, out);
		break;
	}
	case OP_GLOBAL_AVGPOOL: {
		const mlc_node *x = v->src[0];
		int64_t hw = x->dim[1] * x->dim[2], c = x->dim[3];
		for (int64_t b = 0; b < dim(x, 0, n); b++)
			for (int64_t p = 0; p < hw; p++)
				for (int64_t j = 0; j < c; j++)
					out[b * c + j] += s[0][(b * hw + p) * c + j] / (double)hw;
		break;
	}
	case OP_GLOBAL_AVGPOOL_GRAD: {
		const mlc_node *x = v->src[0];
		int64_t hw = x->dim[1] * x->dim[2], c = x->dim[3];
		for (int64_t b = 0; b < dim(x, 0, n); b++)
			for (int64_t p = 0; p < hw; p++)
				for (int64_t j = 0; j < c; j++)
					out[(b * hw + p) * c + j] = s[1][b * c + j] / (double)hw;
		break;
	}
	default: MLC_UNREACHABLE();
	}
}
