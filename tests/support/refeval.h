/* refeval.h — a plain-C reference evaluator for mlc graphs, in double
 * precision, with straightforward loops and no LLVM: the oracle that JIT
 * results and finite-difference gradient checks are compared against.
 *
 * Values are indexed like g->node[]: val[i] is the value of g->node[i], an
 * array of mlc_numel(g->node[i], n) doubles (at least one) in row-major
 * order, where n is the batch size that symbolic batch dimensions take.
 * i32 values (class labels) are stored as doubles holding whole numbers.
 * Dead nodes have no value (NULL).
 *
 * Typical use:
 *   double **val = ref_alloc(g, n);
 *   fill ref_val(g, val, node) of every INPUT, PARAM and STATE node;
 *   ref_eval(g, n, lr, val);
 *   read ref_val(g, val, mlc_graph_find_ret(g, "loss"))[0];
 *   ref_free(g, val);
 *
 * Semantics follow codegen (softmax max-subtracted, BCE logs clamped at -100,
 * labels clamped into [0, classes), PyTorch SGD). SGD nodes update the values
 * of their parameter (src 0) and velocity (src 2) in place, exactly as the
 * generated code does, and their own value is a copy of the new parameter. */
#ifndef MLC_TEST_REFEVAL_H
#define MLC_TEST_REFEVAL_H

#include "ir/ir.h"

/* Zeroed value arrays for every live node of g at batch n. */
double **ref_alloc(const mlc_graph *g, int64_t n);
void ref_free(const mlc_graph *g, double **val);

/* Position of node v in g->node[] (asserts it is there), and its value. */
int ref_index(const mlc_graph *g, const mlc_node *v);
double *ref_val(const mlc_graph *g, double **val, const mlc_node *v);

/* Computes, in graph order, every live node that is not an input, param or
 * state (const nodes are filled from attr.f[0]). lr is the run-time learning
 * rate (hyper[0]); each update node scales it by its lr_mult. Runs in training
 * mode with dropout seed 0 and step 0 (see ref_eval_mode). */
void ref_eval(const mlc_graph *g, int64_t n, double lr, double **val);

/* Like ref_eval, but only the nodes i with only[i] set (e.g. what one entry
 * point runs); only == NULL means all. */
void ref_eval_only(const mlc_graph *g, int64_t n, double lr, double **val, const bool *only);

/* The mode an entry runs in (codegen.h): training for GRAD/TRAIN (batchnorm
 * uses and updates batch statistics, dropout drops), inference for
 * PREDICT/EVAL; seed and step are the hyper words that pick dropout masks.
 * Masks are bit-identical to the generated code's. */
typedef struct {
	bool training;
	uint32_t seed, step;
} ref_mode;
void ref_eval_mode(const mlc_graph *g, int64_t n, double lr, ref_mode m, double **val,
		   const bool *only);

/* Dropout's keep decision for one element (the hash in docs/design.md). */
bool ref_dropout_keep(uint32_t seed, uint32_t step, int64_t key, int64_t index, double p);

/* The per-element hash dropout masks and random ops are drawn from
 * (docs/design.md), and murmur3's finalizer. */
uint32_t ref_hash(uint32_t seed, uint32_t step, int64_t key, int64_t index);
uint32_t ref_fmix32(uint32_t h);

/* Per-family evaluators called by ref_eval (refeval_conv.c, refeval_struct.c):
 * s[k] are the sources' values, out the node's. A training-mode batchnorm
 * also updates its running statistics s[3], s[4] in place. */
void ref_eval_conv(const mlc_node *v, int64_t n, double **s, double *out);
void ref_eval_struct(const mlc_node *v, int64_t n, ref_mode m, double **s, double *out);
/* hinge, mae, bce_logits, categorical_xent, kl_div and their gradients (refeval_loss.c). */
void ref_eval_loss(const mlc_node *v, int64_t n, double **s, double *out);

/* add and the primitive ops (refeval_prim.c), slice included. */
void ref_eval_prim(const mlc_node *v, int64_t n, ref_mode m, double **s, double *out);

#endif
