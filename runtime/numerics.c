/* numerics.c — numerical faults at run time: the scan --check-numerics
 * entries call after each kernel, the report that names the op, its spec
 * layer and location and the pass it ran in, and the training loop's
 * divergence rule (docs/spec.md, "Divergence"). */
#include "numerics.h"

#include "session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entry that found a fault returns at once; its caller takes the record
 * before it calls another entry on this thread. */
static _Thread_local mlc_numerics_fault fault;
static _Thread_local bool faulted;

enum { SCAN_BLOCK = 1024 };

static bool nonfinite(float v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof u);
	return (u & 0x7f800000u) == 0x7f800000u;
}

/* Whether p[0, SCAN_BLOCK) holds a non-finite value: a fixed trip count
 * and no early exit, so that -O2 vectorizes it. */
static bool block_bad(const float *p)
{
	uint32_t bad = 0;
	for (int i = 0; i < SCAN_BLOCK; i++) {
		uint32_t u;
		memcpy(&u, &p[i], sizeof u);
		bad |= (u & 0x7f800000u) == 0x7f800000u;
	}
	return bad != 0;
}

/* First non-finite element of p[0, count), or -1; only a bad block is
 * searched element by element. */
static int64_t first_nonfinite(const float *p, int64_t count)
{
	int64_t b = 0;
	for (; b + SCAN_BLOCK <= count; b += SCAN_BLOCK)
		if (block_bad(p + b))
			break;
	int64_t e = b + SCAN_BLOCK < count ? b + SCAN_BLOCK : count;
	for (int64_t i = b; i < e; i++)
		if (nonfinite(p[i]))
			return i;
	return -1;
}

int32_t mlc_numerics_check(const float *p, int64_t count, int32_t id)
{
	int64_t i = first_nonfinite(p, count);
	if (i < 0)
		return 0;
	fault = (mlc_numerics_fault){.id = id, .index = i, .value = p[i]};
	faulted = true;
	return 1;
}

bool mlc_numerics_take(mlc_numerics_fault *out)
{
	if (!faulted)
		return false;
	*out = fault;
	faulted = false;
	return true;
}

static const char *kind_of(float v)
{
	return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

/* "[i,j,...]": a flat index as one per dimension, the batch dim being n. */
static void index_str(const mlc_node *v, int64_t flat, int64_t n, char *buf, size_t len)
{
	int64_t idx[MLC_MAX_RANK];
	for (int k = v->rank - 1; k >= 0; k--) {
		int64_t dim = v->dim[k] == MLC_BATCH ? n : v->dim[k];
		idx[k] = dim > 0 ? flat % dim : 0;
		flat = dim > 0 ? flat / dim : 0;
	}
	if (v->rank == 0) {
		snprintf(buf, len, "%s", "");
		return;
	}
	size_t at = (size_t)snprintf(buf, len, ", first at element [");
	for (int k = 0; k < v->rank && at < len; k++)
		at += (size_t)snprintf(buf + at, len - at, "%s%lld", k ? "," : "", (long long)idx[k]);
	if (at < len)
		snprintf(buf + at, len - at, "]");
}

/* "matmul in layer 'dense1', the gradient of 'dense1.weight'" */
static void describe(const mlc_graph *g, const mlc_node *v, char *buf, size_t len)
{
	size_t at;
	if (v->name) /* input, param, state: the name says it all */
		at = (size_t)snprintf(buf, len, "%s '%s'", v->op == OP_PARAM ? "parameter" : mlc_ops[v->op].name,
				      v->name);
	else
		at = (size_t)snprintf(buf, len, "%s", mlc_ops[v->op].name);
	if (v->layer && !v->name && at < len)
		at += (size_t)snprintf(buf + at, len - at, " in layer '%s'", v->layer);
	for (int i = 0; i < g->nret && at < len; i++) {
		if (g->ret[i].val != v)
			continue;
		const char *k = g->ret[i].key;
		if (strncmp(k, "grad.", 5) == 0)
			at += (size_t)snprintf(buf + at, len - at, ", the gradient of '%s'", k + 5);
		else if (strncmp(k, "update.", 7) == 0)
			at += (size_t)snprintf(buf + at, len - at, ", the update of '%s'", k + 7);
		else
			at += (size_t)snprintf(buf + at, len - at, ", the result '%s'", k);
	}
}

/* Forward: something pred or loss depends on (the fuse pass's phase rule,
 * so a fused kernel never spans both). */
static bool is_forward(const mlc_graph *g, const mlc_node *v)
{
	bool *fwd = mlc_xmalloc(sizeof *fwd * (size_t)(g->next_id + 1));
	const char *keys[] = {"pred", "loss"};
	for (int k = 0; k < 2; k++) {
		const mlc_node *r = mlc_graph_find_ret(g, keys[k]);
		if (r)
			fwd[r->id] = true;
	}
	for (int i = g->nnode - 1; i >= 0; i--) {
		const mlc_node *n = g->node[i];
		if (!n->dead && fwd[n->id])
			for (int k = 0; k < n->nsrc; k++)
				fwd[n->src[k]->id] = true;
	}
	bool r = fwd[v->id];
	free(fwd);
	return r;
}

/* The positions of the kernel that computes g->node[pos]: its fused group's
 * members, or the node alone. */
static void kernel_span(const mlc_graph *g, int pos, int *first, int *last)
{
	const mlc_node *root = g->node[pos]->group;
	*last = pos;
	while (root && *last < g->nnode - 1 && g->node[*last] != root)
		++*last;
	*first = root ? mlc_group_first(g, *last) : pos;
}

static bool overlaps(const mlc_node *a, const mlc_node *b, int64_t n)
{
	return a->mem == b->mem && a->offset < b->offset + mlc_numel(b, n) &&
	       b->offset < a->offset + mlc_numel(a, n);
}

/* Which inputs of v's kernel already held non-finite values when it ran:
 * v's sources, or for a fused kernel every value its members read from
 * outside it; those still in memory and not overwritten in place by a value
 * of the kernel. Notes at each bad one; returns how many inputs could not be
 * looked at. */
static int blame_sources(mlc_session *s, const mlc_node *v, int pos, int64_t n, int *nbad, mlc_diag *d)
{
	const mlc_graph *g = s->graph;
	int first, last;
	kernel_span(g, pos, &first, &last);
	int unknown = 0;
	*nbad = 0;
	const mlc_node *in[MLC_MAX_SRC * 16];
	int nin = 0;
	for (int j = v->group ? first : pos; j <= (v->group ? last : pos); j++)
		for (int k = 0; k < g->node[j]->nsrc; k++) {
			const mlc_node *x = g->node[j]->src[k];
			bool dup = v->group && x->group == v->group; /* a member */
			for (int i = 0; i < nin && !dup; i++)
				dup = in[i] == x;
			if (!dup && nin < (int)MLC_COUNTOF(in))
				in[nin++] = x;
		}
	for (int k = 0; k < nin; k++) {
		const mlc_node *x = in[k];
		bool seen = x->dtype == DT_F32 && !x->internal && (x->mem == MEM_ACT || x->mem == MEM_PARAM);
		for (int j = first; seen && j <= last; j++) {
			const mlc_node *m = g->node[j];
			seen = m == x || m->internal || m->mem == MEM_NONE || !overlaps(m, x, n);
		}
		if (!seen) {
			unknown++;
			continue;
		}
		const float *p = (x->mem == MEM_PARAM ? s->params : s->act) + x->offset;
		int64_t i = first_nonfinite(p, mlc_numel(x, n));
		if (i < 0)
			continue;
		char what[256], at[96];
		describe(g, x, what, sizeof what);
		index_str(x, i, n, at, sizeof at);
		const char *role = x->op == OP_INPUT ? " (the data)" : "";
		mlc_note_at(d, x->loc, "%s input %s%s already held a %s%s", v->group ? "the kernel's" : "its", what, role,
			    kind_of(p[i]), at);
		++*nbad;
	}
	return unknown;
}

mlc_status mlc_numerics_report(mlc_session *s, const char *when, int64_t n, mlc_diag *d)
{
	mlc_numerics_fault f;
	if (!mlc_numerics_take(&f))
		return MLC_OK;
	const mlc_graph *g = s->graph;
	int pos = -1;
	for (int i = 0; i < g->nnode && pos < 0; i++)
		if (g->node[i]->id == f.id)
			pos = i;
	if (pos < 0) {
		mlc_error_file(d, s->path, "non-finite value (%s) in value %%%d %s", kind_of(f.value), f.id, when);
		return MLC_EUSER;
	}
	const mlc_node *v = g->node[pos];
	const char *phase = mlc_op_is_update(v->op) ? "optimizer update"
			    : is_forward(g, v)       ? "forward pass"
						     : "backward pass";
	char what[256], type[96], at[96];
	describe(g, v, what, sizeof what);
	mlc_type_str(v, type, sizeof type);
	index_str(v, f.index, n, at, sizeof at);
	const char *fmt = "non-finite value (%s) in the %s: %s (%%%d %s%s) %s";
	if (v->loc.file)
		mlc_error_at(d, v->loc, fmt, kind_of(f.value), phase, what, v->id, type, at, when);
	else
		mlc_error_file(d, s->path, fmt, kind_of(f.value), phase, what, v->id, type, at, when);
	int nbad, unknown = blame_sources(s, v, pos, n, &nbad, d);
	mlc_loc here = v->loc.file ? v->loc : (mlc_loc){s->path, 0, 0};
	if (v->group) {
		char members[512];
		size_t len = 0;
		members[0] = 0;
		int first, last;
		kernel_span(g, pos, &first, &last);
		for (int j = first; j <= last && len < sizeof members; j++)
			len += (size_t)snprintf(members + len, sizeof members - len, "%s%s", len ? ", " : "",
						mlc_ops[g->node[j]->op].name);
		mlc_note_at(d, (mlc_loc){here.file, 0, 0},
			    "%%%d ran in a fused kernel (%s), whose values are checked only where it stores "
			    "them; --no-fuse checks every op", v->id, members);
	}
	if (nbad == 0 && unknown == 0 && v->group)
		mlc_note_at(d, (mlc_loc){here.file, 0, 0}, "the kernel's inputs were finite: one of its ops produced it");
	else if (nbad == 0 && unknown == 0)
		mlc_note_at(d, (mlc_loc){here.file, 0, 0}, "its inputs were finite: %s produced it",
			    mlc_ops[v->op].name);
	return MLC_EUSER;
}

/* Divergence (docs/spec.md): a step's loss that is not finite, or above
 * DIVERGE_FACTOR × max(the run's first step loss, 1). The floor keeps a
 * tiny first loss from turning ordinary noise into an alarm; the factor is
 * far above any increase a converging run shows. */
#define DIVERGE_FACTOR 1e4

/* "in step 12 (epoch 2)": formatted only for a message, not on every step. */
static const char *step_when(const mlc_session *s, int epoch, char *buf, size_t len)
{
	snprintf(buf, len, "in step %u (epoch %d)", s->step, epoch);
	return buf;
}

mlc_status mlc_train_step_check(mlc_session *s, mlc_diverge *dv, int epoch, double lr, int64_t n,
				mlc_diag *d)
{
	char when[96];
	if (s->opt.check_numerics) {
		mlc_status st = mlc_numerics_report(s, step_when(s, epoch, when, sizeof when), n, d);
		if (st != MLC_OK)
			return st;
	}
	double loss = (double)s->act[s->loss->offset];
	if (!dv->have_first && isfinite(loss)) {
		dv->first = loss;
		dv->have_first = true;
	}
	double bound = DIVERGE_FACTOR * (dv->first > 1 ? dv->first : 1);
	if (isfinite(loss) && loss <= bound)
		return MLC_OK;
	if (!dv->have_first) { /* no update has run yet: not the learning rate */
		mlc_error_file(d, s->path, "the loss is %s in the first step, before any update; check the data "
			       "and the initial weights%s", isnan(loss) ? "nan" : "inf",
			       s->opt.check_numerics ? "" : ", or run with --check-numerics to find the op");
		return MLC_EUSER;
	}
	char why[128];
	if (isfinite(loss))
		snprintf(why, sizeof why, "%.4g, above 10^4 times the first step's %.4g", loss, dv->first);
	else
		snprintf(why, sizeof why, "%s", isnan(loss) ? "nan" : "inf");
	mlc_error_file(d, s->path, "training diverged %s: the loss is %s; try a smaller learning rate (now %g), "
		       "gradient clipping%s", step_when(s, epoch, when, sizeof when), why, lr,
		       s->opt.check_numerics ? "" : ", or --check-numerics to find the op");
	return MLC_EUSER;
}

mlc_status mlc_params_check(mlc_session *s, int epoch, double lr, mlc_diag *d)
{
	const mlc_graph *g = s->graph;
	int64_t i = first_nonfinite(s->params, g->param_size);
	if (i < 0)
		return MLC_OK;
	const mlc_node *v = NULL;
	for (int k = 0; k < g->nnode && !v; k++) {
		const mlc_node *p = g->node[k];
		if (!p->dead && (p->op == OP_PARAM || p->op == OP_STATE) && i >= p->offset &&
		    i < p->offset + mlc_numel(p, 1))
			v = p;
	}
	char what[256] = "the parameter arena", type[96] = "", at[96] = "";
	if (v) {
		describe(g, v, what, sizeof what);
		mlc_type_str(v, type, sizeof type);
		index_str(v, i - v->offset, 1, at, sizeof at);
	}
	mlc_error_file(d, s->path, "training diverged in epoch %d: %s (%s%s) holds %s although the loss is finite (a "
		       "loss that clamps, as binary cross-entropy's, hides it); try a smaller learning rate (now %g), "
		       "gradient clipping%s", epoch, what, type, at, kind_of(s->params[i]), lr,
		       s->opt.check_numerics ? "" : ", or --check-numerics to find the op");
	return MLC_EUSER;
}
