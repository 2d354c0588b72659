/* verify.c — structural invariants checked between passes (QBE's ssacheck).
 * A failure is a bug in whatever pass ran last, but it is reported as
 * diagnostics ("verifier: ...") rather than an abort, so tests can assert on
 * it and a dump of the graph can follow. Works on a const graph: positions and
 * duplicates are found with sorted side arrays, never by writing to nodes. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	const mlc_node *n;
	int pos;
} slot;

typedef struct {
	const mlc_graph *g;
	mlc_diag *d;
	slot *by_ptr; /* every node, sorted by address */
	bool planned;
	int errors;
	/* where shape rules write their complaints */
	FILE *rule_out;
	char *rule_buf;
	size_t rule_len;
	mlc_diag *rule_diag;
} verifier;

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const slot *)a)->n, y = (uintptr_t)((const slot *)b)->n;
	return x < y ? -1 : x > y;
}

static int cmp_id(const void *a, const void *b)
{
	int x = (*(const mlc_node *const *)a)->id, y = (*(const mlc_node *const *)b)->id;
	return x < y ? -1 : x > y;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(const mlc_node *const *)a)->name, (*(const mlc_node *const *)b)->name);
}

/* Position of n in g->node[], or -1 if it is not in the graph. */
static int position(const verifier *V, const mlc_node *n)
{
	slot key = {n, 0};
	const slot *s = bsearch(&key, V->by_ptr, (size_t)V->g->nnode, sizeof(slot), cmp_ptr);
	return s ? s->pos : -1;
}

/* "%5 (relu)" or "%x (input)", as the node is printed. */
static const char *show(const mlc_node *n, char *buf, size_t len)
{
	const char *op = (unsigned)n->op < OP_COUNT ? mlc_ops[n->op].name : "?";
	if (n->name)
		snprintf(buf, len, "%%%s (%s)", n->name, op);
	else
		snprintf(buf, len, "%%%d (%s)", n->id, op);
	return buf;
}

#define FAIL(...) (V->errors++, mlc_error_file(V->d, NULL, "verifier: " __VA_ARGS__))

/* Elements of n at batch size `batch`, or -1 if that overflows int64. */
static int64_t safe_numel(const mlc_node *n, int64_t batch)
{
	int64_t k = 1;
	for (int i = 0; i < n->rank; i++)
		if (__builtin_mul_overflow(k, n->dim[i] == MLC_BATCH ? batch : n->dim[i], &k))
			return -1;
	return k;
}

/* Runs the op's shape rule on a copy and compares; the rule's own message is
 * captured (one in-memory stream per verify call) so the report says why. */
static void check_shape(verifier *V, const mlc_node *n, const char *who)
{
	if (!V->rule_out) {
		V->rule_out = open_memstream(&V->rule_buf, &V->rule_len);
		MLC_ASSERT(V->rule_out);
		V->rule_diag = mlc_diag_new(V->rule_out);
	}
	if (mlc_diag_errors(V->rule_diag) >= 90) { /* the sink stops printing at 100 */
		mlc_diag_free(V->rule_diag);
		V->rule_diag = mlc_diag_new(V->rule_out);
	}
	fflush(V->rule_out);
	size_t start = V->rule_len;
	mlc_node copy = *n;
	copy.loc = (mlc_loc){0};
	bool ok = mlc_ops[n->op].shape(&copy, V->rule_diag);
	char a[96], b[96];
	if (!ok) {
		fflush(V->rule_out);
		const char *m = V->rule_buf + start;
		if (strncmp(m, "mlc: error: ", 12) == 0)
			m += 12;
		FAIL("%s: its shape rule fails: %.*s", who, (int)strcspn(m, "\n"), m);
	} else if (copy.dtype != n->dtype || !mlc_same_shape(&copy, n)) {
		FAIL("%s: type is %s but its sources give %s", who, mlc_type_str(n, a, sizeof a),
		     mlc_type_str(&copy, b, sizeof b));
	}
}

static void check_mem(verifier *V, const mlc_node *n, const char *who)
{
	const mlc_graph *g = V->g;
	int64_t size = n->mem == MEM_PARAM ? g->param_size : g->act_size;
	int64_t numel = safe_numel(n, g->max_batch), end;
	if (n->internal) {
		if (n->mem != MEM_NONE)
			FAIL("%s: an internal value of a fused kernel has memory", who);
		return;
	}
	if (n->mem != MEM_ACT && n->mem != MEM_PARAM)
		FAIL("%s: the graph is planned but this value has no memory", who);
	else if (numel < 0)
		FAIL("%s: its size overflows at max_batch %lld", who, (long long)g->max_batch);
	else if (n->offset < 0 || __builtin_add_overflow(n->offset, numel, &end) || end > size)
		FAIL("%s: %s+%lld with %lld elements does not fit in %s size %lld", who,
		     n->mem == MEM_PARAM ? "param" : "act", (long long)n->offset, (long long)numel,
		     n->mem == MEM_PARAM ? "param" : "act", (long long)size);
	else if (n->mem == MEM_ACT && n->rank >= 0) {
		int64_t scratch = mlc_scratch_extent(g, n), at = mlc_scratch_offset(n, g->max_batch);
		if (scratch > 0 && (__builtin_add_overflow(at, scratch, &end) || end > size))
			FAIL("%s: its scratch act+%lld with %lld elements does not fit in act size %lld", who,
			     (long long)at, (long long)scratch, (long long)size);
	}
}

/* Everything about one live node at position i. */
static void check_node(verifier *V, const mlc_node *n, int i)
{
	char who[128], w2[128];
	show(n, who, sizeof who);
	if ((unsigned)n->op >= OP_COUNT) {
		FAIL("%s: op %d is out of range", who, (int)n->op);
		return;
	}
	const mlc_opinfo *op = &mlc_ops[n->op];
	bool srcs_ok = n->nsrc == op->arity, srcs_typed = true;
	if (!srcs_ok)
		FAIL("%s: has %d sources, the op takes %d", who, n->nsrc, op->arity);
	for (int k = 0; k < n->nsrc && k < MLC_MAX_SRC; k++) {
		const mlc_node *s = n->src[k];
		int pos = s ? position(V, s) : -1;
		if (!s)
			FAIL("%s: source %d is NULL", who, k);
		else if (pos < 0)
			FAIL("%s: source %d is not in the graph", who, k);
		else if (s->dead)
			FAIL("%s: source %d, %s, is dead", who, k, show(s, w2, sizeof w2));
		else if (pos >= i)
			FAIL("%s: source %d, %s, does not precede it", who, k, show(s, w2, sizeof w2));
		else {
			srcs_typed &= s->rank >= 0;
			continue;
		}
		srcs_ok = false;
	}
	if (n->nsrc < 0 || n->nsrc > MLC_MAX_SRC)
		srcs_ok = false;
	bool shape_ok = true;
	if (n->rank < -1 || n->rank > MLC_MAX_RANK || (n->rank < 0 && op->fclass == FC_SOURCE)) {
		FAIL("%s: rank %d is out of range", who, n->rank);
		shape_ok = false;
	}
	for (int k = 0; shape_ok && k < n->rank; k++)
		if (n->dim[k] == MLC_BATCH ? k != 0 : n->dim[k] <= 0) {
			FAIL("%s: dimension %d is %lld", who, k, (long long)n->dim[k]);
			shape_ok = false;
		}
	if (shape_ok && srcs_ok && n->rank >= 0) {
		if (srcs_typed)
			check_shape(V, n, who);
		else
			FAIL("%s: has a type but one of its sources has none", who);
	}
	if (mlc_op_is_update(n->op) && srcs_ok) {
		if (n->src[0]->op != OP_PARAM)
			FAIL("%s: updates %s, which is not a param", who, show(n->src[0], w2, sizeof w2));
		for (int k = 2; k < n->nsrc; k++)
			if (n->src[k]->op != OP_STATE)
				FAIL("%s: keeps its optimizer state in %s, which is not a state", who,
				     show(n->src[k], w2, sizeof w2));
	}
	/* batchnorm writes its running statistics in place, like sgd its param */
	for (int k = 3; n->op == OP_BATCHNORM && srcs_ok && k < 5; k++)
		if (n->src[k]->op != OP_PARAM)
			FAIL("%s: keeps its running statistics in %s, which is not a param", who,
			     show(n->src[k], w2, sizeof w2));
	/* in inference mode only x has a gradient (grad_batchnorm) */
	for (int k = 1; n->op == OP_BATCHNORM && n->attr.i[0] && srcs_ok && k < 3; k++)
		if (n->src[k]->op != OP_PARAM || n->src[k]->attr.i[2])
			FAIL("%s: runs in inference mode, but its %s %s is not a frozen param (trainable=0)", who,
			     k == 1 ? "gamma" : "beta", show(n->src[k], w2, sizeof w2));
	if (V->planned && n->internal) {
		if (n->mem != MEM_NONE)
			FAIL("%s: lives in registers of its fused kernel but has memory", who);
	} else if (V->planned)
		check_mem(V, n, who);
}

/* Fusion groups (ir.h): contiguous, root last, a kind codegen knows, and
 * `internal` exactly where mlc_group_mark puts it. */
static void check_groups(verifier *V)
{
	const mlc_graph *g = V->g;
	char who[128], why[160];
	const mlc_node **m = mlc_xmalloc(sizeof *m * (size_t)(g->nnode + 1));
	bool *expect = mlc_group_internals(g);
	/* each fused kernel's members sit next to each other: one pass, keeping
	 * the position of the last member seen of every group (by its root's id) */
	int *last = mlc_xmalloc(sizeof *last * (size_t)(g->next_id + 1));
	for (int i = 0; i < g->next_id; i++)
		last[i] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i], *r = n ? n->group : NULL;
		if (!r || r->id < 0 || r->id >= g->next_id)
			continue;
		if (last[r->id] >= 0 && last[r->id] != i - 1)
			FAIL("%s: the members of its fused kernel are not contiguous", show(r, who, sizeof who));
		last[r->id] = i;
	}
	free(last);
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (!n || n->dead)
			continue;
		show(n, who, sizeof who);
		bool internal = n->id >= 0 && n->id < g->next_id && expect[n->id];
		if (n->internal != internal)
			FAIL("%s: marked %s but is %s", who, n->internal ? "internal" : "not internal",
			     internal ? "read only inside its fused kernel" : "read outside its fused kernel");
		if (!n->group || n->group != n)
			continue;
		int first = i;
		while (first > 0 && g->node[first - 1] && g->node[first - 1]->group == n)
			first--;
		int count = 0;
		for (int j = first; j <= i; j++)
			m[count++] = g->node[j];
		mlc_group_kind kind;
		if (!mlc_group_legal(m, count, &kind, why, sizeof why))
			FAIL("%s: fused kernel: %s", who, why);
	}
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (!n || n->dead || !n->group || n->group == n)
			continue;
		int rp = position(V, n->group);
		if (rp < 0 || n->group->dead || n->group->group != n->group)
			FAIL("%s: its fused kernel's root is not a live root", show(n, who, sizeof who));
		else if (rp < i)
			FAIL("%s: follows the root of its fused kernel", show(n, who, sizeof who));
	}
	free(m);
	free(expect);
}

static void check_unique(verifier *V, const mlc_node **v, int n, bool names)
{
	qsort(v, (size_t)n, sizeof *v, names ? cmp_name : cmp_id);
	for (int i = 1; i < n; i++) {
		if (names && strcmp(v[i - 1]->name, v[i]->name) == 0)
			FAIL("two live values are named '%s'", v[i]->name);
		else if (!names && v[i - 1]->id == v[i]->id)
			FAIL("two nodes have id %d", v[i]->id);
	}
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_rets(verifier *V)
{
	const mlc_graph *g = V->g;
	char w[128];
	/* Sorted, so a model with 100,000 layers (and as many gradients) costs n log n. */
	const char **keys = mlc_xmalloc(sizeof(char *) * (size_t)(g->nret + 1));
	int nkeys = 0;
	for (int i = 0; i < g->nret; i++)
		if (g->ret[i].key)
			keys[nkeys++] = g->ret[i].key;
	qsort(keys, (size_t)nkeys, sizeof *keys, cmp_key);
	for (int i = 1; i < nkeys; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0 && (i < 2 || strcmp(keys[i - 2], keys[i]) != 0))
			FAIL("result '%s' is returned twice", keys[i]);
	free(keys);
	for (int i = 0; i < g->nret; i++) {
		const mlc_ret *r = &g->ret[i];
		const char *key = r->key ? r->key : "(null)";
		if (!r->key)
			FAIL("result %d has no name", i);
		if (!r->val)
			FAIL("result '%s' is NULL", key);
		else if (position(V, r->val) < 0)
			FAIL("result '%s' is not in the graph", key);
		else if (r->val->dead)
			FAIL("result '%s' is %s, which is dead", key, show(r->val, w, sizeof w));
	}
}

typedef struct {
	const mlc_node *n;
	int pos;
	int64_t lo, hi; /* activation memory [lo, hi), scratch included */
} extent;

static int cmp_lo(const void *a, const void *b)
{
	const extent *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->pos - y->pos;
}

/* b took a's slot under the in-place rule (ir/liveness.c). */
static bool inplace_pair(const mlc_liveness *lv, const mlc_node *a, const mlc_node *b)
{
	return a->offset == b->offset && mlc_inplace_pair(lv, b, a);
}

/* Two activation values live at the same time never share memory, except
 * an output exactly on the source it overwrites in place. Runs on an
 * otherwise sound graph (liveness needs valid ids and sources). */
static void check_overlap(verifier *V)
{
	const mlc_graph *g = V->g;
	mlc_liveness lv;
	mlc_liveness_compute(g, &lv);
	extent *e = mlc_xmalloc(sizeof *e * (size_t)(g->nnode + 1));
	int ne = 0;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (!n->dead && !n->internal && n->mem == MEM_ACT)
			e[ne++] = (extent){n, i, n->offset, n->offset + mlc_block_elems(g, n)};
	}
	qsort(e, (size_t)ne, sizeof *e, cmp_lo);
	char w1[128], w2[128];
	for (int i = 0; i < ne; i++)
		for (int j = i + 1; j < ne && e[j].lo < e[i].hi; j++) {
			int a = e[i].pos, b = e[j].pos;
			if (lv.start[a] > lv.end[b] || lv.start[b] > lv.end[a] || e[j].lo >= e[j].hi ||
			    e[i].lo >= e[i].hi)
				continue;
			if (inplace_pair(&lv, e[i].n, e[j].n) || inplace_pair(&lv, e[j].n, e[i].n))
				continue;
			FAIL("%s at act+%lld and %s at act+%lld overlap in memory while both are live "
			     "(positions %d..%d and %d..%d)",
			     show(e[i].n, w1, sizeof w1), (long long)e[i].lo, show(e[j].n, w2, sizeof w2),
			     (long long)e[j].lo, lv.start[a], lv.end[a], lv.start[b], lv.end[b]);
		}
	free(e);
	mlc_liveness_free(&lv);
}

mlc_status mlc_verify(const mlc_graph *g, mlc_diag *d)
{
	verifier v = {.g = g, .d = d, .planned = g->act_size != 0 || g->param_size != 0}, *V = &v;
	size_t nn = (size_t)(g->nnode > 0 ? g->nnode : 0);
	V->by_ptr = mlc_xmalloc(sizeof(slot) * (nn + 1));
	const mlc_node **all = mlc_xmalloc(sizeof(mlc_node *) * (nn + 1));
	const mlc_node **named = mlc_xmalloc(sizeof(mlc_node *) * (nn + 1));
	int nall = 0, nnamed = 0;
	for (int i = 0; i < g->nnode; i++) {
		V->by_ptr[i] = (slot){g->node[i], i};
		if (!g->node[i]) {
			FAIL("node slot %d is NULL", i);
			continue;
		}
		all[nall++] = g->node[i];
		if (g->node[i]->id < 0 || g->node[i]->id >= g->next_id)
			FAIL("id %d is outside [0, next_id=%d)", g->node[i]->id, g->next_id);
	}
	qsort(V->by_ptr, nn, sizeof(slot), cmp_ptr);
	for (size_t i = 1; i < nn; i++)
		if (V->by_ptr[i].n && V->by_ptr[i].n == V->by_ptr[i - 1].n)
			FAIL("a node is listed twice in the graph (positions %d and %d)", V->by_ptr[i - 1].pos,
			     V->by_ptr[i].pos);
	if (V->planned && g->max_batch <= 0)
		FAIL("the graph is planned for max_batch %lld", (long long)g->max_batch);
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (!n || n->dead)
			continue;
		check_node(V, n, i);
		if (n->name)
			named[nnamed++] = n;
	}
	check_unique(V, all, nall, false);
	check_unique(V, named, nnamed, true);
	check_rets(V);
	check_groups(V);
	if (V->planned && !V->errors)
		check_overlap(V);
	if (V->rule_out) {
		mlc_diag_free(V->rule_diag);
		fclose(V->rule_out);
		free(V->rule_buf);
	}
	free(V->by_ptr);
	free(all);
	free(named);
	return V->errors ? MLC_EINTERNAL : MLC_OK;
}
