/* kernels_struct.c — layout kernels (flatten/reshape_like copies, concat and
 * slice along the channel dimension), batch normalization and its
 * gradients, and the dropout scalar emitter, plus the training-mode flag
 * that kernels read from the entry's hyper block (codegen.h).
 *
 * Batchnorm reduces per channel over all rows: every pass walks rows
 * outermost and channels innermost, so loads are contiguous and the loop
 * vectorizes across channels with the per-channel accumulators in a stack
 * array (double sums: a float sum over 64k rows loses digits). The stack
 * holds at most 52 bytes a channel. */
#include "cg.h"

#include <math.h>

static LLVMValueRef hyper_word(cg *c, int w)
{
	return LLVMBuildLoad2(c->b, c->t_i32, cg_gep(c, c->hyper, cg_i64(c, w), c->t_i32), "");
}

LLVMValueRef cg_training(cg *c)
{
	return LLVMBuildICmp(c->b, LLVMIntNE, hyper_word(c, MLC_HYPER_TRAINING),
			     LLVMConstInt(c->t_i32, 0, 0), "training");
}

/* ---- layout ---- */

/* out[i] = src0[i] over elements [begin, end): flatten keeps the NHWC order,
 * and reshape_like reads dy in x's shape. */
void cg_copy(cg *c, const mlc_node *n)
{
	cg_loop l;
	cg_loop_begin(c, &l, c->begin, c->end, "i");
	cg_store(c, cg_load(c, c->opnd[1], l.iv), c->opnd[0], l.iv);
	cg_loop_end(c, &l);
}

/* out[r, off + j] = in[r, j] for j in [0, m), rows r in [begin, end) */
static void copy_rows(cg *c, LLVMValueRef out, int64_t out_m, int64_t off, LLVMValueRef in,
		      int64_t in_m, int64_t in_off, int64_t m)
{
	cg_loop r, l;
	cg_loop_begin(c, &r, c->begin, c->end, "r");
	LLVMValueRef ob = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r.iv, cg_i64(c, out_m), ""),
					  cg_i64(c, off), "");
	LLVMValueRef ib = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, r.iv, cg_i64(c, in_m), ""),
					  cg_i64(c, in_off), "");
	cg_loop_begin(c, &l, cg_i64(c, 0), cg_i64(c, m), "j");
	LLVMValueRef v = cg_load(c, in, LLVMBuildNSWAdd(c->b, ib, l.iv, ""));
	cg_store(c, v, out, LLVMBuildNSWAdd(c->b, ob, l.iv, ""));
	cg_loop_end(c, &l);
	cg_loop_end_rows(c, &r);
}

static int64_t last_dim(const mlc_node *v)
{
	return v->dim[v->rank - 1];
}

void cg_concat(cg *c, const mlc_node *n)
{
	int64_t m = last_dim(n), ma = last_dim(n->src[0]), mb = last_dim(n->src[1]);
	copy_rows(c, c->opnd[0], m, 0, c->opnd[1], ma, 0, ma);
	copy_rows(c, c->opnd[0], m, ma, c->opnd[2], mb, 0, mb);
}

void cg_slice(cg *c, const mlc_node *n)
{
	int64_t m = last_dim(n);
	copy_rows(c, c->opnd[0], m, 0, c->opnd[1], last_dim(n->src[0]), n->attr.i[0], m);
}

/* ---- batch normalization ---- */

typedef struct {
	LLVMTypeRef f64;
	LLVMValueRef x;    /* [rows, C] input */
	LLVMValueRef rows; /* i64 */
	LLVMValueRef rows_f; /* double */
	int64_t ch;
	cg_loop r, j;      /* sweep loops */
} bn;

/* A per-channel array on the kernel's stack (entry block, so it is one
 * static allocation however the kernel branches). */
static LLVMValueRef stack_array(cg *c, LLVMTypeRef elt, int64_t count, const char *name)
{
	LLVMValueRef a = cg_entry_alloca(c, LLVMArrayType2(elt, (uint64_t)count), name);
	LLVMSetAlignment(a, 64);
	return a;
}

static LLVMValueRef ld(cg *c, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef i)
{
	return LLVMBuildLoad2(c->b, t, cg_gep(c, p, i, t), "");
}

static void st(cg *c, LLVMTypeRef t, LLVMValueRef v, LLVMValueRef p, LLVMValueRef i)
{
	LLVMBuildStore(c->b, v, cg_gep(c, p, i, t));
}

static LLVMValueRef f64(bn *b, cg *c, double v)
{
	return LLVMConstReal(b->f64, v);
}

static LLVMValueRef ext(bn *b, cg *c, LLVMValueRef v)
{
	return LLVMBuildFPExt(c->b, v, b->f64, "");
}

static LLVMValueRef trunc32(cg *c, LLVMValueRef v)
{
	return LLVMBuildFPTrunc(c->b, v, c->t_f32, "");
}

static void bn_init(bn *b, cg *c, const mlc_node *x)
{
	b->f64 = LLVMDoubleTypeInContext(c->ctx);
	b->x = c->opnd[1];
	b->ch = last_dim(x);
	b->rows = cg_rows(c, x);
	b->rows_f = LLVMBuildSIToFP(c->b, b->rows, b->f64, "");
}

/* for j in [0, C): the body follows, with j = b->j.iv */
static LLVMValueRef chan_begin(bn *b, cg *c)
{
	cg_loop_begin(c, &b->j, cg_i64(c, 0), cg_i64(c, b->ch), "c");
	return b->j.iv;
}

static void chan_end(bn *b, cg *c)
{
	cg_loop_end(c, &b->j);
}

/* for r in [0, rows), j in [0, C): returns the element index r·C + j */
static LLVMValueRef sweep_begin(bn *b, cg *c)
{
	cg_loop_begin(c, &b->r, cg_i64(c, 0), b->rows, "r");
	LLVMValueRef base = LLVMBuildNSWMul(c->b, b->r.iv, cg_i64(c, b->ch), "");
	cg_loop_begin(c, &b->j, cg_i64(c, 0), cg_i64(c, b->ch), "j");
	return LLVMBuildNSWAdd(c->b, base, b->j.iv, "");
}

static void sweep_end(bn *b, cg *c)
{
	cg_loop_end(c, &b->j);
	cg_loop_end_rows(c, &b->r);
}

static void zero(bn *b, cg *c, LLVMValueRef acc)
{
	LLVMValueRef j = chan_begin(b, c);
	st(c, b->f64, f64(b, c, 0), acc, j);
	chan_end(b, c);
}

/* acc[j] += v */
static void accumulate(bn *b, cg *c, LLVMValueRef acc, LLVMValueRef j, LLVMValueRef v)
{
	st(c, b->f64, LLVMBuildFAdd(c->b, ld(c, b->f64, acc, j), v, ""), acc, j);
}

/* The batch's per-channel mean and biased variance, in double, two passes
 * (a one-pass E[x²] − E[x]² cancels badly). */
static void batch_stats(bn *b, cg *c, LLVMValueRef mean, LLVMValueRef var)
{
	zero(b, c, mean);
	LLVMValueRef i = sweep_begin(b, c);
	accumulate(b, c, mean, b->j.iv, ext(b, c, cg_load(c, b->x, i)));
	sweep_end(b, c);
	LLVMValueRef j = chan_begin(b, c);
	st(c, b->f64, LLVMBuildFDiv(c->b, ld(c, b->f64, mean, j), b->rows_f, ""), mean, j);
	chan_end(b, c);
	zero(b, c, var);
	i = sweep_begin(b, c);
	LLVMValueRef dev = LLVMBuildFSub(c->b, ext(b, c, cg_load(c, b->x, i)), ld(c, b->f64, mean, b->j.iv), "");
	accumulate(b, c, var, b->j.iv, LLVMBuildFMul(c->b, dev, dev, ""));
	sweep_end(b, c);
	j = chan_begin(b, c);
	st(c, b->f64, LLVMBuildFDiv(c->b, ld(c, b->f64, var, j), b->rows_f, ""), var, j);
	chan_end(b, c);
}

/* 1 / sqrt(var + eps), in double */
static LLVMValueRef inv_std(bn *b, cg *c, const mlc_node *n, LLVMValueRef var)
{
	LLVMValueRef v = LLVMBuildFAdd(c->b, var, f64(b, c, n->attr.f[1]), "");
	v = cg_intrin(c, "llvm.sqrt", b->f64, &v, 1);
	return LLVMBuildFDiv(c->b, f64(b, c, 1), v, "");
}

/* Per-channel shift (μ) and scale (γ/σ) of batchnorm n over x (its input,
 * at pointer x): training, μ and σ² from the batch over all rows, and the
 * running statistics move towards them (PyTorch: running = (1 − m)·running +
 * m·batch, the variance unbiased, or biased when a channel has a single
 * value); inference, μ and σ² are the running statistics. */
static void scale_shift(cg *c, const mlc_node *n, bool training, LLVMValueRef x, LLVMValueRef gamma,
			LLVMValueRef rmean, LLVMValueRef rvar, LLVMValueRef shift, LLVMValueRef scale)
{
	bn b;
	bn_init(&b, c, n->src[0]);
	b.x = x;
	double m = n->attr.f[0];
	if (!training) {
		LLVMValueRef j = chan_begin(&b, c);
		LLVMValueRef g = ext(&b, c, cg_load(c, gamma, j));
		LLVMValueRef rv = ext(&b, c, cg_load(c, rvar, j));
		st(c, c->t_f32, cg_load(c, rmean, j), shift, j);
		st(c, c->t_f32, trunc32(c, LLVMBuildFMul(c->b, g, inv_std(&b, c, n, rv), "")), scale, j);
		chan_end(&b, c);
		return;
	}
	LLVMValueRef mean_d = stack_array(c, b.f64, b.ch, "mean");
	LLVMValueRef var_d = stack_array(c, b.f64, b.ch, "var");
	batch_stats(&b, c, mean_d, var_d);
	LLVMValueRef many = LLVMBuildICmp(c->b, LLVMIntSGT, b.rows, cg_i64(c, 1), "");
	LLVMValueRef den = LLVMBuildSelect(c->b, many, LLVMBuildFSub(c->b, b.rows_f, f64(&b, c, 1), ""),
					   b.rows_f, "");
	LLVMValueRef unbias = LLVMBuildFDiv(c->b, b.rows_f, den, "");
	LLVMValueRef j = chan_begin(&b, c);
	LLVMValueRef mu = ld(c, b.f64, mean_d, j), var = ld(c, b.f64, var_d, j);
	LLVMValueRef g = ext(&b, c, cg_load(c, gamma, j));
	LLVMValueRef rm = ext(&b, c, cg_load(c, rmean, j)), rv = ext(&b, c, cg_load(c, rvar, j));
	st(c, c->t_f32, trunc32(c, mu), shift, j);
	st(c, c->t_f32, trunc32(c, LLVMBuildFMul(c->b, g, inv_std(&b, c, n, var), "")), scale, j);
	LLVMValueRef keep = f64(&b, c, 1 - m), mv = f64(&b, c, m);
	rm = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, keep, rm, ""), LLVMBuildFMul(c->b, mv, mu, ""), "");
	LLVMValueRef uv = LLVMBuildFMul(c->b, var, unbias, "");
	rv = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, keep, rv, ""), LLVMBuildFMul(c->b, mv, uv, ""), "");
	cg_store(c, trunc32(c, rm), rmean, j);
	cg_store(c, trunc32(c, rv), rvar, j);
	chan_end(&b, c);
}

LLVMValueRef cg_bn_arrays(cg *c, const mlc_node *n, LLVMValueRef *scale)
{
	int64_t ch = n->src[0]->dim[n->src[0]->rank - 1];
	*scale = stack_array(c, c->t_f32, ch, "scale");
	return stack_array(c, c->t_f32, ch, "shift");
}

void cg_bn_scale_shift(cg *c, const mlc_node *n, bool training, LLVMValueRef x, LLVMValueRef gamma,
		       LLVMValueRef rmean, LLVMValueRef rvar, LLVMValueRef shift, LLVMValueRef scale)
{
	scale_shift(c, n, training, x, gamma, rmean, rvar, shift, scale);
}

LLVMValueRef cg_bn_apply(cg *c, LLVMValueRef x, LLVMValueRef shift, LLVMValueRef scale, LLVMValueRef beta,
			 LLVMValueRef j)
{
	LLVMValueRef d = LLVMBuildFSub(c->b, x, ld(c, c->t_f32, shift, j), "");
	d = LLVMBuildFMul(c->b, d, ld(c, c->t_f32, scale, j), "");
	return LLVMBuildFAdd(c->b, d, cg_load(c, beta, j), "");
}

/* y = (x − μ)·γ/σ + β, μ and σ from scale_shift in the entry's mode, or
 * always from the running statistics in inference mode (inference=1). */
void cg_batchnorm(cg *c, const mlc_node *n)
{
	bn b;
	bn_init(&b, c, n->src[0]);
	LLVMValueRef y = c->opnd[0], gamma = c->opnd[2], beta = c->opnd[3];
	LLVMValueRef rmean = c->opnd[4], rvar = c->opnd[5];
	LLVMValueRef scale, shift = cg_bn_arrays(c, n, &scale);
	if (n->attr.i[0]) {
		scale_shift(c, n, false, b.x, gamma, rmean, rvar, shift, scale);
	} else {
		LLVMBasicBlockRef train = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "train");
		LLVMBasicBlockRef infer = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "infer");
		LLVMBasicBlockRef norm = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "normalize");
		LLVMBuildCondBr(c->b, cg_training(c), train, infer);
		LLVMPositionBuilderAtEnd(c->b, train);
		scale_shift(c, n, true, b.x, gamma, rmean, rvar, shift, scale);
		LLVMBuildBr(c->b, norm);
		LLVMPositionBuilderAtEnd(c->b, infer);
		scale_shift(c, n, false, b.x, gamma, rmean, rvar, shift, scale);
		LLVMBuildBr(c->b, norm);
		LLVMPositionBuilderAtEnd(c->b, norm);
	}
	LLVMValueRef i = sweep_begin(&b, c);
	cg_store(c, cg_bn_apply(c, cg_load(c, b.x, i), shift, scale, beta, b.j.iv), y, i);
	sweep_end(&b, c);
}

/* Σ_rows dy and Σ_rows dy·x̂ per channel, x̂ = (x − μ)/σ, into sdy / sdyx
 * (sdy may be NULL). inv holds 1/σ. */
static void grad_sums(bn *b, cg *c, LLVMValueRef dy, LLVMValueRef mean, LLVMValueRef inv,
		      LLVMValueRef sdy, LLVMValueRef sdyx)
{
	if (sdy)
		zero(b, c, sdy);
	zero(b, c, sdyx);
	LLVMValueRef i = sweep_begin(b, c), j = b->j.iv;
	LLVMValueRef g = ext(b, c, cg_load(c, dy, i));
	LLVMValueRef xh = LLVMBuildFSub(c->b, ext(b, c, cg_load(c, b->x, i)), ld(c, b->f64, mean, j), "");
	xh = LLVMBuildFMul(c->b, xh, ld(c, b->f64, inv, j), "");
	if (sdy)
		accumulate(b, c, sdy, j, g);
	accumulate(b, c, sdyx, j, LLVMBuildFMul(c->b, g, xh, ""));
	sweep_end(b, c);
}

/* var[j] := 1/σ[j] */
static void var_to_inv(bn *b, cg *c, const mlc_node *n, LLVMValueRef var)
{
	LLVMValueRef j = chan_begin(b, c);
	st(c, b->f64, inv_std(b, c, n, ld(c, b->f64, var, j)), var, j);
	chan_end(b, c);
}

/* dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), the training-mode gradient
 * with the batch statistics recomputed from x. */
void cg_batchnorm_grad(cg *c, const mlc_node *n)
{
	bn b;
	bn_init(&b, c, n->src[0]);
	LLVMValueRef dx = c->opnd[0], gamma = c->opnd[2], dy = c->opnd[3];
	LLVMValueRef mean = stack_array(c, b.f64, b.ch, "mean"), inv = stack_array(c, b.f64, b.ch, "inv");
	LLVMValueRef sdy = stack_array(c, b.f64, b.ch, "sdy"), sdyx = stack_array(c, b.f64, b.ch, "sdyx");
	/* float per-channel terms of the last pass */
	LLVMValueRef fm = stack_array(c, c->t_f32, b.ch, "mu"), fi = stack_array(c, c->t_f32, b.ch, "inv.f");
	LLVMValueRef fk = stack_array(c, c->t_f32, b.ch, "k"), fa = stack_array(c, c->t_f32, b.ch, "a");
	LLVMValueRef fb = stack_array(c, c->t_f32, b.ch, "b");
	batch_stats(&b, c, mean, inv);
	var_to_inv(&b, c, n, inv);
	grad_sums(&b, c, dy, mean, inv, sdy, sdyx);
	LLVMValueRef j = chan_begin(&b, c);
	LLVMValueRef is = ld(c, b.f64, inv, j);
	st(c, c->t_f32, trunc32(c, ld(c, b.f64, mean, j)), fm, j);
	st(c, c->t_f32, trunc32(c, is), fi, j);
	st(c, c->t_f32, trunc32(c, LLVMBuildFMul(c->b, ext(&b, c, cg_load(c, gamma, j)), is, "")), fk, j);
	st(c, c->t_f32, trunc32(c, LLVMBuildFDiv(c->b, ld(c, b.f64, sdy, j), b.rows_f, "")), fa, j);
	st(c, c->t_f32, trunc32(c, LLVMBuildFDiv(c->b, ld(c, b.f64, sdyx, j), b.rows_f, "")), fb, j);
	chan_end(&b, c);
	LLVMValueRef i = sweep_begin(&b, c);
	j = b.j.iv;
	LLVMValueRef xh = LLVMBuildFSub(c->b, cg_load(c, b.x, i), ld(c, c->t_f32, fm, j), "");
	xh = LLVMBuildFMul(c->b, xh, ld(c, c->t_f32, fi, j), "");
	LLVMValueRef t = LLVMBuildFSub(c->b, cg_load(c, dy, i), ld(c, c->t_f32, fa, j), "");
	t = LLVMBuildFSub(c->b, t, LLVMBuildFMul(c->b, xh, ld(c, c->t_f32, fb, j), ""), "");
	cg_store(c, LLVMBuildFMul(c->b, t, ld(c, c->t_f32, fk, j), ""), dx, i);
	sweep_end(&b, c);
}

/* dγ = Σ_rows dy·x̂, with the batch statistics recomputed from x. */
void cg_batchnorm_grad_gamma(cg *c, const mlc_node *n)
{
	bn b;
	bn_init(&b, c, n->src[0]);
	LLVMValueRef out = c->opnd[0], dy = c->opnd[2];
	LLVMValueRef mean = stack_array(c, b.f64, b.ch, "mean"), inv = stack_array(c, b.f64, b.ch, "inv");
	LLVMValueRef sdyx = stack_array(c, b.f64, b.ch, "sdyx");
	batch_stats(&b, c, mean, inv);
	var_to_inv(&b, c, n, inv);
	grad_sums(&b, c, dy, mean, inv, NULL, sdyx);
	LLVMValueRef j = chan_begin(&b, c);
	cg_store(c, trunc32(c, ld(c, b.f64, sdyx, j)), out, j);
	chan_end(&b, c);
}

/* dx = dy·γ/σ with σ from the running variance (an inference-mode
 * batchnorm's x gradient): the same float scale as the forward's. */
LLVMValueRef cg_sc_batchnorm_infer_grad(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	bn b = {.f64 = LLVMDoubleTypeInContext(c->ctx)};
	LLVMValueRef k = LLVMBuildFMul(c->b, ext(&b, c, in[1]), inv_std(&b, c, n, ext(&b, c, in[2])), "");
	return LLVMBuildFMul(c->b, in[0], trunc32(c, k), "");
}

/* ---- dropout ---- */

/* murmur3's 32-bit finalizer */
static LLVMValueRef fmix32(cg *c, LLVMValueRef h)
{
	LLVMValueRef k1 = LLVMConstInt(c->t_i32, 0x85ebca6bu, 0), k2 = LLVMConstInt(c->t_i32, 0xc2b2ae35u, 0);
	h = LLVMBuildXor(c->b, h, LLVMBuildLShr(c->b, h, LLVMConstInt(c->t_i32, 16, 0), ""), "");
	h = LLVMBuildMul(c->b, h, k1, "");
	h = LLVMBuildXor(c->b, h, LLVMBuildLShr(c->b, h, LLVMConstInt(c->t_i32, 13, 0), ""), "");
	h = LLVMBuildMul(c->b, h, k2, "");
	return LLVMBuildXor(c->b, h, LLVMBuildLShr(c->b, h, LLVMConstInt(c->t_i32, 16, 0), ""), "");
}

LLVMValueRef cg_fmix32(cg *c, LLVMValueRef h)
{
	return fmix32(c, h);
}

/* h of the dropout hash below for element c->elem; random_normal and
 * random_uniform draw from it too (kernels_prim.c). */
LLVMValueRef cg_elem_hash(cg *c, int64_t key_attr)
{
	MLC_ASSERT(c->elem);
	LLVMValueRef key = LLVMConstInt(c->t_i32, (uint32_t)key_attr + 0x9e3779b9u, 0);
	LLVMValueRef s = LLVMBuildXor(c->b, fmix32(c, key), hyper_word(c, MLC_HYPER_SEED), "");
	s = LLVMBuildXor(c->b, fmix32(c, s), hyper_word(c, MLC_HYPER_STEP), "");
	s = fmix32(c, s);
	LLVMValueRef idx = LLVMBuildTrunc(c->b, c->elem, c->t_i32, "");
	LLVMValueRef h = fmix32(c, LLVMBuildXor(c->b, idx, s, ""));
	return fmix32(c, LLVMBuildAdd(c->b, h, s, ""));
}

/* Inverted dropout (docs/design.md, "Dropout masks"): in training mode
 *   s    = fmix32(fmix32(fmix32(key + 0x9e3779b9) ^ seed) ^ step)
 *   h    = fmix32(fmix32(index ^ s) + s)          (index: low 32 bits)
 *   keep = (h >> 8) >= ceil(p · 2^24)
 *   y    = keep ? x / (1 − p) : 0
 * and y = x in inference mode. dropout_grad applies the same mask to dy. s
 * is loop-invariant and hoisted; the per-element hash is 32-bit integer
 * arithmetic, which vectorizes. */
LLVMValueRef cg_sc_dropout(cg *c, const mlc_node *n, LLVMValueRef const *in)
{
	MLC_ASSERT(c->elem);
	double p = n->attr.f[0];
	if (!(p > 0))
		return in[0];
	uint32_t threshold = p >= 1 ? 1u << 24 : (uint32_t)ceil(p * 16777216.0);
	double scale = p >= 1 ? 0 : 1 / (1 - p);
	LLVMValueRef h = cg_elem_hash(c, n->attr.i[0]);
	LLVMValueRef bits = LLVMBuildLShr(c->b, h, LLVMConstInt(c->t_i32, 8, 0), "");
	LLVMValueRef keep = LLVMBuildICmp(c->b, LLVMIntUGE, bits, LLVMConstInt(c->t_i32, threshold, 0), "");
	LLVMValueRef kept = LLVMBuildSelect(c->b, keep, LLVMBuildFMul(c->b, in[0], cg_f32(c, scale), ""),
					    cg_f32(c, 0), "");
	return LLVMBuildSelect(c->b, cg_training(c), kept, in[0], "");
}
