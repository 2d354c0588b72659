/* kernels_direct.c — direct convolutions (conv.h's MLC_CONV_DIRECT): JIT'd
 * loops over <8 x float> vectors with no im2col copy and no BLAS packing,
 * for the layers where GEMM's K or N is tiny (a first layer's K = 27, 16
 * channels). Groups 1 and dilation 1 only (mlc_conv_direct_ok), or
 * depthwise (groups = C = F, any stride and padding): per output pixel and
 * vector of 8 channels, the taps inside the image accumulate in a register;
 * the input gradient scatters each output pixel into its zeroed image, the
 * weight gradient sums each tap over an image's pixels in a register.
 *
 * Forward micro-kernel: a tile of R output pixels along OW × V vectors of 8
 * output channels, V ≤ 2 and R·V ≤ 12 accumulators (promoted to registers;
 * 6 pixels × 16 channels measured up to 1.8x faster than 3 × 32), and per
 * step of (kh, kw, c) one broadcast of x per pixel and V contiguous weight
 * loads (HWIO is contiguous in F). For one kernel row kh, the taps (kw, c)
 * are one contiguous run of KW·C floats of x and KW·C rows of the weight,
 * so the inner loop runs over j in [0, KW·C). Vertical padding clips the kh
 * loop per output row; pixels whose window crosses the left or right edge
 * take a one-pixel tile that clips the j range; interior pixels take full
 * tiles without checks. F not a multiple of 8: masked loads and stores on
 * the last vector.
 *
 * Input gradient (stride 1): a forward correlation of dy with the kernel
 * flipped in space and transposed to [KH,KW,F,C] (built in the scratch
 * space on every call), padded by K-1-pad.
 *
 * Weight gradient: dW[kh,kw,c,f] = Σ_{n,oh,ow} x[n,ih,iw,c]·dy[n,oh,ow,f] as
 * a reduction tiled C × F-vectors: per image, per (kh, kw) and tile, the
 * pixels whose tap lies inside the image accumulate into registers, which
 * are added to dW after each image (an image of x and dy stays in L1/L2). */
#include "window.h"

#include <string.h>

enum { VL = 8, VMAX = 2, MAX_ACC = 12 };

/* ---- vector helpers ---- */

static LLVMTypeRef vty(cg *c)
{
	return LLVMVectorType(c->t_f32, VL);
}

static LLVMValueRef valloca(cg *c)
{
	return cg_entry_alloca(c, vty(c), "vacc");
}

/* lanes [0, live) on, the rest off; live = VL: NULL (no mask) */
static LLVMValueRef mask(cg *c, int live)
{
	if (live >= VL)
		return NULL;
	LLVMValueRef bits[VL];
	for (int i = 0; i < VL; i++)
		bits[i] = LLVMConstInt(c->t_i1, i < live, 0);
	return LLVMConstVector(bits, VL);
}

static LLVMValueRef masked_intrin(cg *c, const char *name, LLVMValueRef *args, int nargs)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMTypeRef ov[2] = {vty(c), c->t_ptr};
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, ov, 2);
	LLVMTypeRef ty = LLVMIntrinsicGetType(c->ctx, id, ov, 2);
	return LLVMBuildCall2(c->b, ty, fn, args, (unsigned)nargs, "");
}

/* <8 x float> at p[idx], lanes outside m read as 0 */
static LLVMValueRef vload(cg *c, LLVMValueRef p, LLVMValueRef idx, LLVMValueRef m)
{
	LLVMValueRef a = at(c, p, idx);
	if (m) {
		LLVMValueRef args[] = {a, LLVMConstInt(c->t_i32, 4, 0), m, LLVMConstNull(vty(c))};
		return masked_intrin(c, "llvm.masked.load", args, 4);
	}
	LLVMValueRef v = LLVMBuildLoad2(c->b, vty(c), a, "");
	LLVMSetAlignment(v, 4);
	return v;
}

static void vstore(cg *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef idx, LLVMValueRef m)
{
	LLVMValueRef a = at(c, p, idx);
	if (m) {
		LLVMValueRef args[] = {v, a, LLVMConstInt(c->t_i32, 4, 0), m};
		masked_intrin(c, "llvm.masked.store", args, 4);
		return;
	}
	LLVMSetAlignment(LLVMBuildStore(c->b, v, a), 4);
}

static LLVMValueRef splat(cg *c, LLVMValueRef s)
{
	LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetPoison(vty(c)), s, LLVMConstInt(c->t_i32, 0, 0), "");
	return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(vty(c)),
				      LLVMConstNull(LLVMVectorType(c->t_i32, VL)), "");
}

static LLVMValueRef vfma(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc)
{
	LLVMValueRef args[3] = {a, b, acc};
	return cg_intrin(c, "llvm.fma", vty(c), args, 3);
}

static LLVMValueRef ceil_div0(cg *c, LLVMValueRef a, int64_t s)
{
	/* ceil(a / s) for a > 0, else 0 */
	LLVMValueRef q = LLVMBuildSDiv(c->b, add(c, a, cg_i64(c, s - 1)), cg_i64(c, s), "");
	return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, cg_i64(c, 0), ""), q, cg_i64(c, 0), "");
}

/* ---- forward correlation ---- */

/* y[b, o, :] = Σ_{kh,kw,c} x[b, o·s - p + k, c] · wt[kh, kw, c, :] over images
 * [begin, end); x [N,H,W,C], wt [KH,KW,C,F], y [N,OH,OW,F]. */
typedef struct {
	int64_t h, w, c, oh, ow, f, kh, kw, sh, sw, pt, pl;
	LLVMValueRef x, wt, y;
	const mlc_node *n; /* for the epilogue */
} corr;

/* Where the row being emitted stands. */
typedef struct {
	LLVMValueRef b, ih0, kh0, kh1; /* image, top input row, clipped kernel rows */
	LLVMValueRef orow;             /* first output pixel of the row: (b·OH + oh)·OW */
	LLVMValueRef f0;               /* first filter of the tile */
	int v;                         /* vectors in the tile */
	LLVMValueRef m;                /* mask of the last vector, or NULL */
} rowctx;

/* R output pixels from ow0 on; clip: R = 1 and the window may cross the
 * left or right edge. */
static void tile(cg *c, const corr *k, const rowctx *t, LLVMValueRef ow0, int r, bool clip)
{
	LLVMValueRef acc[MAX_ACC];
	int na = r * t->v;
	MLC_ASSERT(na <= MAX_ACC && (!clip || r == 1));
	for (int i = 0; i < na; i++) {
		acc[i] = valloca(c);
		LLVMBuildStore(c->b, LLVMConstNull(vty(c)), acc[i]);
	}
	LLVMValueRef iw0 = sub(c, muli(c, ow0, k->sw), cg_i64(c, k->pl));
	LLVMValueRef jlo = cg_i64(c, 0), jhi = cg_i64(c, k->kw * k->c);
	if (clip) {
		LLVMValueRef kw0 = smax(c, LLVMBuildNeg(c->b, iw0, ""), cg_i64(c, 0));
		LLVMValueRef kw1 = smin(c, sub(c, cg_i64(c, k->w), iw0), cg_i64(c, k->kw));
		jlo = muli(c, kw0, k->c);
		jhi = muli(c, kw1, k->c);
	}
	cg_loop kh, j;
	cg_loop_begin(c, &kh, t->kh0, t->kh1, "kh");
	LLVMValueRef pix = add(c, muli(c, add(c, muli(c, t->b, k->h), add(c, t->ih0, kh.iv)), k->w), iw0);
	LLVMValueRef xb = muli(c, pix, k->c);
	LLVMValueRef wb = muli(c, kh.iv, k->kw * k->c);
	cg_loop_begin(c, &j, jlo, jhi, "j");
	LLVMValueRef wrow = add(c, muli(c, add(c, wb, j.iv), k->f), t->f0);
	LLVMValueRef wv[VMAX];
	for (int v = 0; v < t->v; v++)
		wv[v] = vload(c, k->wt, add(c, wrow, cg_i64(c, v * VL)), v == t->v - 1 ? t->m : NULL);
	for (int i = 0; i < r; i++) {
		LLVMValueRef xs = splat(c, cg_load(c, k->x, add(c, add(c, xb, cg_i64(c, i * k->sw * k->c)), j.iv)));
		for (int v = 0; v < t->v; v++) {
			LLVMValueRef a = acc[i * t->v + v];
			LLVMBuildStore(c->b, vfma(c, xs, wv[v], LLVMBuildLoad2(c->b, vty(c), a, "")), a);
		}
	}
	cg_loop_end(c, &j);
	cg_loop_end_rows(c, &kh);
	for (int i = 0; i < r; i++)
		for (int v = 0; v < t->v; v++) {
			LLVMValueRef o = add(c, muli(c, add(c, add(c, t->orow, ow0), cg_i64(c, i)), k->f),
					     add(c, t->f0, cg_i64(c, v * VL)));
			vstore(c, LLVMBuildLoad2(c->b, vty(c), acc[i * t->v + v], ""), k->y, o,
			       v == t->v - 1 ? t->m : NULL);
		}
}

/* for (ow = lo; ow < hi; ow += r) tile(ow, r) — constant bounds */
static void tiles(cg *c, const corr *k, const rowctx *t, int64_t lo, int64_t hi, int r, bool clip)
{
	if (hi - lo < r)
		return;
	if (hi - lo == r) {
		tile(c, k, t, cg_i64(c, lo), r, clip);
		return;
	}
	cg_loop l;
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, (hi - lo) / r), "ow");
	tile(c, k, t, add(c, cg_i64(c, lo), muli(c, l.iv, r)), r, clip);
	cg_loop_end_rows(c, &l);
}

/* One output row's pixels for one filter tile: left edge, interior, right edge. */
static void row(cg *c, const corr *k, const rowctx *t)
{
	/* interior: ow·sw - pl >= 0 and ow·sw - pl + KW <= W */
	int64_t a = (k->pl + k->sw - 1) / k->sw, bnd = k->w - k->kw + k->pl;
	int64_t bb = bnd < 0 ? 0 : bnd / k->sw + 1;
	a = a > k->ow ? k->ow : a;
	bb = bb > k->ow ? k->ow : bb < a ? a : bb;
	int r = MAX_ACC / t->v;
	tiles(c, k, t, 0, a, 1, true);
	tiles(c, k, t, a, bb, r, false);
	int64_t rest = (bb - a) % r;
	if (rest)
		tile(c, k, t, cg_i64(c, bb - rest), (int)rest, false);
	tiles(c, k, t, bb, k->ow, 1, true);
}

static void correlate(cg *c, const corr *k)
{
	int64_t nvec = (k->f + VL - 1) / VL;
	int vfull = nvec < VMAX ? (int)nvec : VMAX;
	int64_t nfull = k->f / (VL * vfull), rem = k->f - nfull * VL * vfull;
	cg_loop b, oh, ft;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	cg_loop_begin(c, &oh, cg_i64(c, 0), cg_i64(c, k->oh), "oh");
	rowctx t = {.b = b.iv};
	t.ih0 = sub(c, muli(c, oh.iv, k->sh), cg_i64(c, k->pt));
	t.kh0 = smax(c, LLVMBuildNeg(c->b, t.ih0, ""), cg_i64(c, 0));
	t.kh1 = smin(c, sub(c, cg_i64(c, k->h), t.ih0), cg_i64(c, k->kh));
	t.orow = muli(c, add(c, muli(c, b.iv, k->oh), oh.iv), k->ow);
	if (nfull) {
		t.v = vfull;
		t.m = NULL;
		cg_loop_begin(c, &ft, cg_i64(c, 0), cg_i64(c, nfull), "ft");
		t.f0 = muli(c, ft.iv, VL * vfull);
		row(c, k, &t);
		cg_loop_end_rows(c, &ft);
	}
	if (rem) {
		t.v = (int)((rem + VL - 1) / VL);
		t.m = mask(c, (int)(rem - (t.v - 1) * VL));
		t.f0 = cg_i64(c, nfull * VL * vfull);
		row(c, k, &t);
	}
	cg_epilogue(c, k->n, t.orow, add(c, t.orow, cg_i64(c, k->ow)));
	cg_loop_end_rows(c, &oh);
	cg_loop_end_rows(c, &b);
}

/* ---- depthwise (groups = C = F): lanes over the channels ---- */

static void tap_range(cg *c, LLVMValueRef k, int64_t s, int64_t p, int64_t in, int64_t out,
		      LLVMValueRef *lo, LLVMValueRef *hi);

/* The channel blocks of a depthwise kernel: full vectors in a loop, then
 * one masked vector for C mod 8. open returns the block's first channel. */
typedef struct {
	int64_t nfull, rest;
	cg_loop l;
	bool looped;
	LLVMValueRef m;
} chblocks;

static LLVMValueRef chblock_open(cg *c, const mlc_window *w, chblocks *cb, int part)
{
	cb->nfull = w->c / VL;
	cb->rest = w->c % VL;
	cb->looped = part == 0;
	cb->m = part == 0 ? NULL : mask(c, (int)cb->rest);
	if (part == 0) {
		cg_loop_begin(c, &cb->l, cg_i64(c, 0), cg_i64(c, cb->nfull), "cv");
		return muli(c, cb->l.iv, VL);
	}
	return cg_i64(c, cb->nfull * VL);
}

static void chblock_close(cg *c, chblocks *cb)
{
	if (cb->looped)
		cg_loop_end_rows(c, &cb->l);
}

static bool chblock_has(const mlc_window *w, int part)
{
	return part == 0 ? w->c / VL > 0 : w->c % VL > 0;
}

/* Taps of output pixel (oh, ow) inside the image: rows [kh0, kh1), columns
 * [kw0, kw1); the tap's input pixel is (ihb + kh, iwb + kw). */
typedef struct {
	LLVMValueRef ihb, iwb, kh0, kh1, kw0, kw1;
} dwtaps;

static void dw_clip(cg *c, LLVMValueRef base, int64_t k, int64_t size, LLVMValueRef *lo, LLVMValueRef *hi)
{
	*lo = smax(c, LLVMBuildNeg(c->b, base, ""), cg_i64(c, 0));
	*hi = smin(c, sub(c, cg_i64(c, size), base), cg_i64(c, k));
}

static dwtaps dw_taps(cg *c, const mlc_window *w, LLVMValueRef oh, LLVMValueRef ow)
{
	dwtaps t;
	t.ihb = sub(c, muli(c, oh, w->sh), cg_i64(c, w->pt));
	t.iwb = sub(c, muli(c, ow, w->sw), cg_i64(c, w->pl));
	dw_clip(c, t.ihb, w->kh, w->h, &t.kh0, &t.kh1);
	dw_clip(c, t.iwb, w->kw, w->w, &t.kw0, &t.kw1);
	return t;
}

/* index of channel ch0 of pixel (ih, iw) of image b in an [N,H,W,C] tensor */
static LLVMValueRef pix(cg *c, LLVMValueRef b, LLVMValueRef ih, LLVMValueRef iw, int64_t h, int64_t wd, int64_t ch,
			LLVMValueRef ch0)
{
	return add(c, muli(c, add(c, muli(c, add(c, muli(c, b, h), ih), wd), iw), ch), ch0);
}

/* y[b, oh, ow, c] = Σ_taps x[b, ih, iw, c] · W[kh, kw, 0, c], a register
 * accumulator per vector of channels; the epilogue after each output row. */
static void dw_forward(cg *c, const mlc_node *n, const mlc_window *w)
{
	LLVMValueRef y = c->opnd[0], x = c->opnd[1], wt = c->opnd[2];
	cg_loop b, oh, ow, kh, kw;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	cg_loop_begin(c, &oh, cg_i64(c, 0), cg_i64(c, w->oh), "oh");
	cg_loop_begin(c, &ow, cg_i64(c, 0), cg_i64(c, w->ow), "ow");
	dwtaps t = dw_taps(c, w, oh.iv, ow.iv);
	for (int part = 0; part < 2; part++) {
		if (!chblock_has(w, part))
			continue;
		chblocks cb;
		LLVMValueRef ch0 = chblock_open(c, w, &cb, part);
		LLVMValueRef acc = valloca(c);
		LLVMBuildStore(c->b, LLVMConstNull(vty(c)), acc);
		cg_loop_begin(c, &kh, t.kh0, t.kh1, "kh");
		cg_loop_begin(c, &kw, t.kw0, t.kw1, "kw");
		LLVMValueRef xi = pix(c, b.iv, add(c, t.ihb, kh.iv), add(c, t.iwb, kw.iv), w->h, w->w, w->c, ch0);
		LLVMValueRef wi = add(c, muli(c, add(c, muli(c, kh.iv, w->kw), kw.iv), w->c), ch0);
		LLVMValueRef v = vfma(c, vload(c, x, xi, cb.m), vload(c, wt, wi, cb.m),
				      LLVMBuildLoad2(c->b, vty(c), acc, ""));
		LLVMBuildStore(c->b, v, acc);
		cg_loop_end_rows(c, &kw);
		cg_loop_end_rows(c, &kh);
		vstore(c, LLVMBuildLoad2(c->b, vty(c), acc, ""), y, pix(c, b.iv, oh.iv, ow.iv, w->oh, w->ow, w->c, ch0),
		       cb.m);
		chblock_close(c, &cb);
	}
	cg_loop_end_rows(c, &ow);
	LLVMValueRef r0 = muli(c, add(c, muli(c, b.iv, w->oh), oh.iv), w->ow);
	cg_epilogue(c, n, r0, add(c, r0, cg_i64(c, w->ow)));
	cg_loop_end_rows(c, &oh);
	cg_loop_end_rows(c, &b);
}

/* dx[b, ih, iw, c] = Σ dy[b, oh, ow, c] · W[kh, kw, 0, c] over the output
 * pixels whose tap (kh, kw) lands there: scattered from each output pixel
 * into the zeroed image (any stride), the epilogue after each image. */
static void dw_grad_input(cg *c, const mlc_node *n, const mlc_window *w)
{
	LLVMValueRef dx = c->opnd[0], wt = c->opnd[2], dy = c->opnd[3];
	int64_t img = w->h * w->w * w->c;
	cg_loop b, oh, ow, kh, kw;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	LLVMBuildMemSet(c->b, at(c, dx, muli(c, b.iv, img)), LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
			cg_i64(c, img * 4), 4);
	cg_loop_begin(c, &oh, cg_i64(c, 0), cg_i64(c, w->oh), "oh");
	cg_loop_begin(c, &ow, cg_i64(c, 0), cg_i64(c, w->ow), "ow");
	dwtaps t = dw_taps(c, w, oh.iv, ow.iv);
	for (int part = 0; part < 2; part++) {
		if (!chblock_has(w, part))
			continue;
		chblocks cb;
		LLVMValueRef ch0 = chblock_open(c, w, &cb, part);
		LLVMValueRef g = vload(c, dy, pix(c, b.iv, oh.iv, ow.iv, w->oh, w->ow, w->c, ch0), cb.m);
		cg_loop_begin(c, &kh, t.kh0, t.kh1, "kh");
		cg_loop_begin(c, &kw, t.kw0, t.kw1, "kw");
		LLVMValueRef xi = pix(c, b.iv, add(c, t.ihb, kh.iv), add(c, t.iwb, kw.iv), w->h, w->w, w->c, ch0);
		LLVMValueRef wi = add(c, muli(c, add(c, muli(c, kh.iv, w->kw), kw.iv), w->c), ch0);
		vstore(c, vfma(c, g, vload(c, wt, wi, cb.m), vload(c, dx, xi, cb.m)), dx, xi, cb.m);
		cg_loop_end_rows(c, &kw);
		cg_loop_end_rows(c, &kh);
		chblock_close(c, &cb);
	}
	cg_loop_end_rows(c, &ow);
	cg_loop_end_rows(c, &oh);
	LLVMValueRef p0 = muli(c, b.iv, w->h * w->w);
	cg_epilogue(c, n, p0, add(c, p0, cg_i64(c, w->h * w->w)));
	cg_loop_end_rows(c, &b);
}

/* dW[kh, kw, 0, c] = Σ_{b, oh, ow} x[b, ih, iw, c] · dy[b, oh, ow, c] over
 * images [begin, end) (CG_PARTIAL): per image, tap and channel vector, the
 * output pixels whose tap lies inside the image sum in a register. */
static void dw_grad_weight(cg *c, const mlc_window *w)
{
	LLVMValueRef dw = c->opnd[0], x = c->opnd[1], dy = c->opnd[3];
	LLVMBuildMemSet(c->b, dw, LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
			cg_i64(c, w->kh * w->kw * w->c * 4), 4);
	cg_loop b, kh, kw, oh, ow;
	cg_loop_begin(c, &b, c->begin, c->end, "b");
	cg_loop_begin(c, &kh, cg_i64(c, 0), cg_i64(c, w->kh), "kh");
	LLVMValueRef ohlo, ohhi, owlo, owhi;
	tap_range(c, kh.iv, w->sh, w->pt, w->h, w->oh, &ohlo, &ohhi);
	cg_loop_begin(c, &kw, cg_i64(c, 0), cg_i64(c, w->kw), "kw");
	tap_range(c, kw.iv, w->sw, w->pl, w->w, w->ow, &owlo, &owhi);
	for (int part = 0; part < 2; part++) {
		if (!chblock_has(w, part))
			continue;
		chblocks cb;
		LLVMValueRef ch0 = chblock_open(c, w, &cb, part);
		LLVMValueRef acc = valloca(c);
		LLVMBuildStore(c->b, LLVMConstNull(vty(c)), acc);
		cg_loop_begin(c, &oh, ohlo, ohhi, "oh");
		LLVMValueRef ih = add(c, sub(c, muli(c, oh.iv, w->sh), cg_i64(c, w->pt)), kh.iv);
		cg_loop_begin(c, &ow, owlo, owhi, "ow");
		LLVMValueRef iw = add(c, sub(c, muli(c, ow.iv, w->sw), cg_i64(c, w->pl)), kw.iv);
		LLVMValueRef v = vfma(c, vload(c, x, pix(c, b.iv, ih, iw, w->h, w->w, w->c, ch0), cb.m),
				      vload(c, dy, pix(c, b.iv, oh.iv, ow.iv, w->oh, w->ow, w->c, ch0), cb.m),
				      LLVMBuildLoad2(c->b, vty(c), acc, ""));
		LLVMBuildStore(c->b, v, acc);
		cg_loop_end_rows(c, &ow);
		cg_loop_end_rows(c, &oh);
		LLVMValueRef wi = add(c, muli(c, add(c, muli(c, kh.iv, w->kw), kw.iv), w->c), ch0);
		LLVMValueRef sum = LLVMBuildFAdd(c->b, vload(c, dw, wi, cb.m), LLVMBuildLoad2(c->b, vty(c), acc, ""), "");
		vstore(c, sum, dw, wi, cb.m);
		chblock_close(c, &cb);
	}
	cg_loop_end_rows(c, &kw);
	cg_loop_end_rows(c, &kh);
	cg_loop_end_rows(c, &b);
}

void cg_conv2d_direct(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	if (mlc_conv_depthwise(&w)) {
		dw_forward(c, n, &w);
		return;
	}
	corr k = {.h = w.h, .w = w.w, .c = w.c, .oh = w.oh, .ow = w.ow, .f = w.f, .kh = w.kh, .kw = w.kw,
		  .sh = w.sh, .sw = w.sw, .pt = w.pt, .pl = w.pl,
		  .x = c->opnd[1], .wt = c->opnd[2], .y = c->opnd[0], .n = n};
	correlate(c, &k);
}

void cg_conv2d_grad_input_direct(cg *c, const mlc_node *n)
{
	mlc_window w;
	mlc_window_of(n, &w);
	if (mlc_conv_depthwise(&w)) {
		dw_grad_input(c, n, &w);
		return;
	}
	MLC_ASSERT(c->scratch && w.sh == 1 && w.sw == 1);
	/* scratch[kh', kw', f, c] = W[KH-1-kh', KW-1-kw', c, f] */
	LLVMValueRef wt = c->opnd[2], t = c->scratch;
	cg_loop tap, ci, fi;
	cg_loop_begin(c, &tap, cg_i64(c, 0), cg_i64(c, w.kh * w.kw), "tap");
	LLVMValueRef src = muli(c, sub(c, cg_i64(c, w.kh * w.kw - 1), tap.iv), w.c * w.f);
	LLVMValueRef dst = muli(c, tap.iv, w.c * w.f);
	cg_loop_begin(c, &ci, cg_i64(c, 0), cg_i64(c, w.c), "c");
	cg_loop_begin(c, &fi, cg_i64(c, 0), cg_i64(c, w.f), "f");
	cg_store(c, cg_load(c, wt, add(c, src, add(c, muli(c, ci.iv, w.f), fi.iv))), t,
		 add(c, dst, add(c, muli(c, fi.iv, w.c), ci.iv)));
	cg_loop_end(c, &fi);
	cg_loop_end_rows(c, &ci);
	cg_loop_end_rows(c, &tap);
	corr k = {.h = w.oh, .w = w.ow, .c = w.f, .oh = w.h, .ow = w.w, .f = w.c, .kh = w.kh, .kw = w.kw,
		  .sh = 1, .sw = 1, .pt = w.kh - 1 - w.pt, .pl = w.kw - 1 - w.pl,
		  .x = c->opnd[3], .wt = t, .y = c->opnd[0], .n = n};
	correlate(c, &k);
}

/* ---- weight gradient ---- */

/* Per-tap pixel range: o·s - p + k in [0, in) for o in [lo, hi). */
static void tap_range(cg *c, LLVMValueRef k, int64_t s, int64_t p, int64_t in, int64_t out,
		      LLVMValueRef *lo, LLVMValueRef *hi)
{
	*lo = smin(c, ceil_div0(c, sub(c, cg_i64(c, p), k), s), cg_i64(c, out));
	LLVMValueRef num = sub(c, cg_i64(c, in - 1 + p), k);
	LLVMValueRef q = smin(c, add(c, LLVMBuildSDiv(c->b, num, cg_i64(c, s), ""), cg_i64(c, 1)),
			      cg_i64(c, out));
	*hi = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, num, cg_i64(c, 0), ""), cg_i64(c, 0),
			      q, "");
}

typedef struct {
	mlc_window w;
	LLVMValueRef b, kh, kw, ohlo, ohhi, owlo, owhi;
} wgctx;

/* dW[kh, kw, c0 .. c0+rc, f0 .. f0+8v) += Σ over image b's pixels */
static void wg_tile(cg *c, const wgctx *t, LLVMValueRef c0, int rc, LLVMValueRef f0, int nv, LLVMValueRef m)
{
	const mlc_window *w = &t->w;
	LLVMValueRef dw = c->opnd[0], x = c->opnd[1], dy = c->opnd[3];
	LLVMValueRef acc[MAX_ACC];
	for (int i = 0; i < rc * nv; i++) {
		acc[i] = valloca(c);
		LLVMBuildStore(c->b, LLVMConstNull(vty(c)), acc[i]);
	}
	cg_loop oh, ow;
	cg_loop_begin(c, &oh, t->ohlo, t->ohhi, "oh");
	LLVMValueRef ih = add(c, sub(c, muli(c, oh.iv, w->sh), cg_i64(c, w->pt)), t->kh);
	LLVMValueRef xrow = muli(c, add(c, muli(c, t->b, w->h), ih), w->w);
	LLVMValueRef dyrow = muli(c, add(c, muli(c, t->b, w->oh), oh.iv), w->ow);
	LLVMValueRef xoff = add(c, sub(c, t->kw, cg_i64(c, w->pl)), xrow);
	cg_loop_begin(c, &ow, t->owlo, t->owhi, "ow");
	LLVMValueRef xb = add(c, muli(c, add(c, muli(c, ow.iv, w->sw), xoff), w->c), c0);
	LLVMValueRef db = add(c, muli(c, add(c, dyrow, ow.iv), w->f), f0);
	LLVMValueRef dv[VMAX];
	for (int v = 0; v < nv; v++)
		dv[v] = vload(c, dy, add(c, db, cg_i64(c, v * VL)), v == nv - 1 ? m : NULL);
	for (int i = 0; i < rc; i++) {
		LLVMValueRef xs = splat(c, cg_load(c, x, add(c, xb, cg_i64(c, i))));
		for (int v = 0; v < nv; v++) {
			LLVMValueRef a = acc[i * nv + v];
			LLVMBuildStore(c->b, vfma(c, xs, dv[v], LLVMBuildLoad2(c->b, vty(c), a, "")), a);
		}
	}
	cg_loop_end(c, &ow);
	cg_loop_end_rows(c, &oh);
	LLVMValueRef tap = muli(c, add(c, muli(c, t->kh, w->kw), t->kw), w->c);
	for (int i = 0; i < rc; i++)
		for (int v = 0; v < nv; v++) {
			LLVMValueRef o = add(c, muli(c, add(c, add(c, tap, c0), cg_i64(c, i)), w->f),
					     add(c, f0, cg_i64(c, v * VL)));
			LLVMValueRef mm = v == nv - 1 ? m : NULL;
			LLVMValueRef s = LLVMBuildFAdd(c->b, vload(c, dw, o, mm),
						       LLVMBuildLoad2(c->b, vty(c), acc[i * nv + v], ""), "");
			vstore(c, s, dw, o, mm);
		}
}

/* All channel tiles of one filter tile: full tiles of rc, then the rest. */
static void wg_ctiles(cg *c, const wgctx *t, LLVMValueRef f0, int nv, LLVMValueRef m)
{
	int rc = MAX_ACC / nv;
	int64_t full = t->w.c / rc, rest = t->w.c % rc;
	if (full == 1) {
		wg_tile(c, t, cg_i64(c, 0), rc, f0, nv, m);
	} else if (full > 1) {
		cg_loop l;
		cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, full), "ct");
		wg_tile(c, t, muli(c, l.iv, rc), rc, f0, nv, m);
		cg_loop_end_rows(c, &l);
	}
	if (rest)
		wg_tile(c, t, cg_i64(c, full * rc), (int)rest, f0, nv, m);
}

void cg_conv2d_grad_weight_direct(cg *c, const mlc_node *n)
{
	wgctx t;
	mlc_window_of(n, &t.w);
	const mlc_window *w = &t.w;
	if (mlc_conv_depthwise(w)) {
		dw_grad_weight(c, w);
		return;
	}
	LLVMValueRef dw = c->opnd[0];
	LLVMBuildMemSet(c->b, dw, LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
			cg_i64(c, w->kh * w->kw * w->c * w->f * 4), 4);
	int64_t nvec = (w->f + VL - 1) / VL;
	int vfull = nvec < VMAX ? (int)nvec : VMAX;
	int64_t nfull = w->f / (VL * vfull), rem = w->f - nfull * VL * vfull;
	/* image by image: its x and dy stay in cache across the taps and tiles */
	cg_loop b, kh, kw, ft;
	cg_loop_begin(c, &b, c->begin, c->end, "b"); /* images [begin, end): CG_PARTIAL */
	t.b = b.iv;
	cg_loop_begin(c, &kh, cg_i64(c, 0), cg_i64(c, w->kh), "kh");
	t.kh = kh.iv;
	tap_range(c, kh.iv, w->sh, w->pt, w->h, w->oh, &t.ohlo, &t.ohhi);
	cg_loop_begin(c, &kw, cg_i64(c, 0), cg_i64(c, w->kw), "kw");
	t.kw = kw.iv;
	tap_range(c, kw.iv, w->sw, w->pl, w->w, w->ow, &t.owlo, &t.owhi);
	if (nfull) {
		cg_loop_begin(c, &ft, cg_i64(c, 0), cg_i64(c, nfull), "ft");
		wg_ctiles(c, &t, muli(c, ft.iv, VL * vfull), vfull, NULL);
		cg_loop_end_rows(c, &ft);
	}
	if (rem) {
		int nv = (int)((rem + VL - 1) / VL);
		wg_ctiles(c, &t, cg_i64(c, nfull * VL * vfull), nv, mask(c, (int)(rem - (nv - 1) * VL)));
	}
	cg_loop_end_rows(c, &kw);
	cg_loop_end_rows(c, &kh);
	cg_loop_end_rows(c, &b);
}
