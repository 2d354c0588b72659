/* kernels_pool.c — max, average and global average pooling and their
 * gradients over NHWC images [begin, end): direct loops whose innermost loop
 * runs over the channels, the contiguous dim, so it vectorizes. Window taps
 * are clipped to the image up front (the shape rule guarantees at least one
 * tap per window), so the loops never test for padding:
 *   max: padding never wins; the gradient goes to the first maximum in
 *        window order (rows, then columns), as in PyTorch;
 *   avg: the mean over the taps inside the image (count_include_pad=False). */
#include "window.h"

#include <math.h>

/* One output pixel's window: taps [kh0, kh1) x [kw0, kw1) are inside the
 * image; tap (kh, kw) is input pixel (ihb + kh, iwb + kw). */
typedef struct {
	cg_loop b, oh, ow, kh, kw;
	LLVMValueRef ihb, iwb, kh0, kh1, kw0, kw1;
	LLVMValueRef out; /* index of channel 0 of the output pixel */
} window;

/* When no window along this dim leaves the image (no leading pad, the last
 * window ends inside), the taps are the constants [0, k): loops of known
 * trip count, which LLVM unrolls into straight vector code however few the
 * channels (LeNet's 6 run at the speed of 64). */
static void clip(cg *c, LLVMValueRef base, int64_t k, int64_t size, bool inside, LLVMValueRef *lo,
		 LLVMValueRef *hi)
{
	if (inside) {
		*lo = cg_i64(c, 0);
		*hi = cg_i64(c, k);
		return;
	}
	*lo = smax(c, LLVMBuildNeg(c->b, base, ""), cg_i64(c, 0));
	*hi = smin(c, sub(c, cg_i64(c, size), base), cg_i64(c, k));
}

/* Opens the loops over the output pixels of images [begin, end). */
static void pixels_begin(cg *c, const mlc_window *w, window *p)
{
	cg_loop_begin(c, &p->b, c->begin, c->end, "b");
	cg_loop_begin(c, &p->oh, cg_i64(c, 0), cg_i64(c, w->oh), "oh");
	p->ihb = sub(c, muli(c, p->oh.iv, w->sh), cg_i64(c, w->pt));
	clip(c, p->ihb, w->kh, w->h, w->pt == 0 && (w->oh - 1) * w->sh + w->kh <= w->h, &p->kh0, &p->kh1);
	cg_loop_begin(c, &p->ow, cg_i64(c, 0), cg_i64(c, w->ow), "ow");
	p->iwb = sub(c, muli(c, p->ow.iv, w->sw), cg_i64(c, w->pl));
	clip(c, p->iwb, w->kw, w->w, w->pl == 0 && (w->ow - 1) * w->sw + w->kw <= w->w, &p->kw0, &p->kw1);
	p->out = muli(c, add(c, muli(c, add(c, muli(c, p->b.iv, w->oh), p->oh.iv), w->ow), p->ow.iv), w->c);
}

static void pixels_end(cg *c, window *p)
{
	cg_loop_end_rows(c, &p->ow);
	cg_loop_end_rows(c, &p->oh);
	cg_loop_end_rows(c, &p->b);
}

/* Opens the loops over the window's taps; returns the index of channel 0 of
 * the tap's input pixel. */
static LLVMValueRef taps_begin(cg *c, const mlc_window *w, window *p)
{
	cg_loop_begin(c, &p->kh, p->kh0, p->kh1, "kh");
	cg_loop_begin(c, &p->kw, p->kw0, p->kw1, "kw");
	LLVMValueRef ih = add(c, p->ihb, p->kh.iv), iw = add(c, p->iwb, p->kw.iv);
	return muli(c, add(c, muli(c, add(c, muli(c, p->b.iv, w->h), ih), w->w), iw), w->c);
}

static void taps_end(cg *c, window *p)
{
	cg_loop_end_rows(c, &p->kw);
	cg_loop_end_rows(c, &p->kh);
}

/* for (ch = 0; ch < C; ch++): the vectorized loop */
static LLVMValueRef chans_begin(cg *c, const mlc_window *w, cg_loop *l)
{
	cg_loop_begin(c, l, cg_i64(c, 0), cg_i64(c, w->c), "ch");
	return l->iv;
}

/* How a gradient kernel writes dx: windows that overlap scatter-add into
 * zeroed images; disjoint windows (stride >= size) store, and when they also
 * tile the image exactly (no padding, nothing left over) nothing is zeroed. */
typedef struct {
	bool store, zero;
} scatter;

static scatter scatter_of(const mlc_window *w)
{
	bool disjoint = w->sh >= w->kh && w->sw >= w->kw;
	bool exact = w->sh == w->kh && w->sw == w->kw && !(w->pt | w->pl | w->pb | w->pr) &&
		     w->oh * w->sh == w->h && w->ow * w->sw == w->w;
	return (scatter){.store = disjoint, .zero = !exact};
}

static void scatter_begin(cg *c, const mlc_window *w, scatter s, LLVMValueRef dx)
{
	if (!s.zero)
		return;
	int64_t per = w->h * w->w * w->c;
	cg_loop z;
	cg_loop_begin(c, &z, muli(c, c->begin, per), muli(c, c->end, per), "z");
	cg_store(c, cg_f32(c, 0), dx, z.iv);
	cg_loop_end(c, &z);
}

static void scatter_put(cg *c, scatter s, LLVMValueRef dx, LLVMValueRef i, LLVMValueRef v)
{
	cg_store(c, s.store ? v : LLVMBuildFAdd(c->b, cg_load(c, dx, i), v, ""), dx, i);
}

/* max(a, b) as a > b ? a : b, a single maxps on x86 */
static LLVMValueRef fmax_sel(cg *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, ""), a, b, "");
}

/* Number of taps inside the image, as a float reciprocal. */
static LLVMValueRef inv_count(cg *c, const window *p)
{
	LLVMValueRef k = mul(c, sub(c, p->kh1, p->kh0), sub(c, p->kw1, p->kw0));
	return LLVMBuildFDiv(c->b, cg_f32(c, 1), cg_sitofp(c, k), "");
}

static void fill_out(cg *c, const mlc_window *w, LLVMValueRef y, LLVMValueRef base, LLVMValueRef v)
{
	cg_loop l;
	LLVMValueRef ch = chans_begin(c, w, &l);
	cg_store(c, v, y, add(c, base, ch));
	cg_loop_end(c, &l);
}

/* dst[base + ch] = the maximum of x over the current pixel's window, per channel. */
static void window_max(cg *c, const mlc_window *w, window *p, LLVMValueRef x, LLVMValueRef dst,
		       LLVMValueRef base)
{
	cg_loop l;
	fill_out(c, w, dst, base, cg_f32(c, -INFINITY));
	LLVMValueRef src = taps_begin(c, w, p);
	LLVMValueRef ch = chans_begin(c, w, &l);
	LLVMValueRef di = add(c, base, ch);
	cg_store(c, fmax_sel(c, cg_load(c, x, add(c, src, ch)), cg_load(c, dst, di)), dst, di);
	cg_loop_end(c, &l);
	taps_end(c, p);
}

/* Fewer channels than fill whole vectors (LeNet's 6), in windows that never
 * leave the image, a few taps each: a window's running maximum kept in
 * memory becomes a masked store and load per tap, which store-to-load
 * forwarding cannot follow, and loops of 2 taps stay loops. Such pools
 * unroll the taps here and run the channel loop innermost over registers:
 * one vector of loads per tap, one store per pixel. */
enum { FEW_TAPS = 16 };

static bool few_channels(const mlc_window *w)
{
	bool inside = w->pt == 0 && w->pl == 0 && (w->oh - 1) * w->sh + w->kh <= w->h &&
		      (w->ow - 1) * w->sw + w->kw <= w->w;
	return w->c % 8 != 0 && w->c <= 16 && inside && w->kh * w->kw <= FEW_TAPS;
}

/* Index of channel 0 of tap t (row-major in the window) of the current pixel. */
static LLVMValueRef tap_at(cg *c, const mlc_window *w, const window *p, int64_t t)
{
	LLVMValueRef ih = add(c, p->ihb, cg_i64(c, t / w->kw)), iw = add(c, p->iwb, cg_i64(c, t % w->kw));
	return muli(c, add(c, muli(c, add(c, muli(c, p->b.iv, w->h), ih), w->w), iw), w->c);
}

/* The maximum over the current pixel's window at channel ch; tap[t] gets
 * each tap's index of channel 0. */
static LLVMValueRef window_max_few(cg *c, const mlc_window *w, const window *p, LLVMValueRef x, LLVMValueRef ch,
				   LLVMValueRef *tap)
{
	LLVMValueRef m = NULL;
	for (int64_t t = 0; t < w->kh * w->kw; t++) {
		LLVMValueRef v = cg_load(c, x, add(c, tap[t], ch));
		m = m ? fmax_sel(c, v, m) : v;
	}
	return m;
}

void cg_maxpool(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	LLVMValueRef y = c->opnd[0], x = c->opnd[1];
	window p;
	pixels_begin(c, &w, &p);
	if (few_channels(&w)) {
		LLVMValueRef tap[FEW_TAPS];
		for (int64_t t = 0; t < w.kh * w.kw; t++)
			tap[t] = tap_at(c, &w, &p, t);
		cg_loop l;
		LLVMValueRef ch = chans_begin(c, &w, &l);
		cg_store(c, window_max_few(c, &w, &p, x, ch, tap), y, add(c, p.out, ch));
		cg_loop_end(c, &l);
	} else {
		window_max(c, &w, &p, x, y, p.out);
	}
	pixels_end(c, &p);
}

/* maxpool_grad with few channels: per channel, the maximum m and the
 * gradient r still to route are registers; taps in window order. */
static void maxpool_grad_few(cg *c, const mlc_window *w, window *p, scatter s, LLVMValueRef dx, LLVMValueRef x,
			     LLVMValueRef dy)
{
	LLVMValueRef tap[FEW_TAPS];
	for (int64_t t = 0; t < w->kh * w->kw; t++)
		tap[t] = tap_at(c, w, p, t);
	cg_loop l;
	LLVMValueRef ch = chans_begin(c, w, &l);
	LLVMValueRef m = window_max_few(c, w, p, x, ch, tap);
	LLVMValueRef r = cg_load(c, dy, add(c, p->out, ch));
	for (int64_t t = 0; t < w->kh * w->kw; t++) {
		LLVMValueRef xi = add(c, tap[t], ch);
		LLVMValueRef hit = LLVMBuildFCmp(c->b, LLVMRealOEQ, cg_load(c, x, xi), m, "");
		scatter_put(c, s, dx, xi, LLVMBuildSelect(c->b, hit, r, cg_f32(c, 0), ""));
		r = LLVMBuildSelect(c->b, hit, cg_f32(c, 0), r, "");
	}
	cg_loop_end(c, &l);
}

/* Per output pixel, two passes over the taps with two channel vectors in the
 * scratch space: m = the window's maximum, r = the gradient not yet routed.
 * The first tap equal to m takes r, which then drops to 0. */
void cg_maxpool_grad(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	LLVMValueRef dx = c->opnd[0], x = c->opnd[1], dy = c->opnd[2];
	LLVMValueRef m = c->scratch, r = at(c, c->scratch, cg_i64(c, w.c));
	MLC_ASSERT(m);
	window p;
	cg_loop l;
	scatter s = scatter_of(&w);
	scatter_begin(c, &w, s, dx);
	pixels_begin(c, &w, &p);
	if (few_channels(&w)) {
		maxpool_grad_few(c, &w, &p, s, dx, x, dy);
		pixels_end(c, &p);
		return;
	}
	window_max(c, &w, &p, x, m, cg_i64(c, 0));

	LLVMValueRef ch = chans_begin(c, &w, &l);
	cg_store(c, cg_load(c, dy, add(c, p.out, ch)), r, ch);
	cg_loop_end(c, &l);

	LLVMValueRef src = taps_begin(c, &w, &p);
	ch = chans_begin(c, &w, &l);
	LLVMValueRef xi = add(c, src, ch), rv = cg_load(c, r, ch);
	LLVMValueRef hit = LLVMBuildFCmp(c->b, LLVMRealOEQ, cg_load(c, x, xi), cg_load(c, m, ch), "");
	LLVMValueRef give = LLVMBuildSelect(c->b, hit, rv, cg_f32(c, 0), "");
	scatter_put(c, s, dx, xi, give);
	cg_store(c, LLVMBuildSelect(c->b, hit, cg_f32(c, 0), rv, ""), r, ch);
	cg_loop_end(c, &l);
	taps_end(c, &p);
	pixels_end(c, &p);
}

void cg_avgpool(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	LLVMValueRef y = c->opnd[0], x = c->opnd[1];
	window p;
	cg_loop l;
	pixels_begin(c, &w, &p);
	fill_out(c, &w, y, p.out, cg_f32(c, 0));
	LLVMValueRef src = taps_begin(c, &w, &p);
	LLVMValueRef ch = chans_begin(c, &w, &l);
	LLVMValueRef yi = add(c, p.out, ch);
	cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, y, yi), cg_load(c, x, add(c, src, ch)), ""), y, yi);
	cg_loop_end(c, &l);
	taps_end(c, &p);
	LLVMValueRef inv = inv_count(c, &p);
	ch = chans_begin(c, &w, &l);
	yi = add(c, p.out, ch);
	cg_store(c, LLVMBuildFMul(c->b, cg_load(c, y, yi), inv, ""), y, yi);
	cg_loop_end(c, &l);
	pixels_end(c, &p);
}

void cg_avgpool_grad(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	LLVMValueRef dx = c->opnd[0], dy = c->opnd[2];
	window p;
	cg_loop l;
	scatter s = scatter_of(&w);
	scatter_begin(c, &w, s, dx);
	pixels_begin(c, &w, &p);
	LLVMValueRef inv = inv_count(c, &p);
	LLVMValueRef src = taps_begin(c, &w, &p);
	LLVMValueRef ch = chans_begin(c, &w, &l);
	LLVMValueRef xi = add(c, src, ch);
	LLVMValueRef g = LLVMBuildFMul(c->b, cg_load(c, dy, add(c, p.out, ch)), inv, "");
	scatter_put(c, s, dx, xi, g);
	cg_loop_end(c, &l);
	taps_end(c, &p);
	pixels_end(c, &p);
}

/* [N,H,W,C] -> [N,C]: the mean over each image's pixels */
void cg_global_avgpool(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[0];
	int64_t hw = x->dim[1] * x->dim[2], ch = x->dim[3];
	LLVMValueRef y = c->opnd[0], xp = c->opnd[1];
	cg_loop b, pix, l;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	LLVMValueRef out = muli(c, b.iv, ch);
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, ch), "ch");
	cg_store(c, cg_f32(c, 0), y, add(c, out, l.iv));
	cg_loop_end(c, &l);
	cg_loop_begin(c, &pix, cg_i64(c, 0), cg_i64(c, hw), "p");
	LLVMValueRef src = muli(c, add(c, muli(c, b.iv, hw), pix.iv), ch);
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, ch), "ch");
	LLVMValueRef yi = add(c, out, l.iv);
	cg_store(c, LLVMBuildFAdd(c->b, cg_load(c, y, yi), cg_load(c, xp, add(c, src, l.iv)), ""), y, yi);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &pix);
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, ch), "ch");
	yi = add(c, out, l.iv);
	cg_store(c, LLVMBuildFMul(c->b, cg_load(c, y, yi), cg_f32(c, 1.0 / (double)hw), ""), y, yi);
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &b);
}

/* dx[b, p, c] = dy[b, c] / (H·W) */
void cg_global_avgpool_grad(cg *c, const mlc_node *n)
{
	const mlc_node *x = n->src[0];
	int64_t hw = x->dim[1] * x->dim[2], ch = x->dim[3];
	LLVMValueRef dx = c->opnd[0], dy = c->opnd[2];
	cg_loop b, pix, l;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	cg_loop_begin(c, &pix, cg_i64(c, 0), cg_i64(c, hw), "p");
	LLVMValueRef dst = muli(c, add(c, muli(c, b.iv, hw), pix.iv), ch);
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, ch), "ch");
	LLVMValueRef g = cg_load(c, dy, add(c, muli(c, b.iv, ch), l.iv));
	cg_store(c, LLVMBuildFMul(c->b, g, cg_f32(c, 1.0 / (double)hw), ""), dx, add(c, dst, l.iv));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &pix);
	cg_loop_end_rows(c, &b);
}
