/* pipeline.c — the pass manager: the passes in order, the verifier after each,
 * --print-before/--print-after dumps of the IR text, a --passes list run one
 * at a time, and where IR text resumes (the passes its contents show done). */
#include "passes.h"

#include <stdio.h>
#include <string.h>

static mlc_status run_shapes(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	(void)o;
	return mlc_infer_shapes(g, d);
}

static mlc_status run_dce(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	(void)o;
	return mlc_dce(g, d);
}

/* What each pass leaves in the graph that IR text keeps (docs/ir.md,
 * "Resuming the pipeline"): IR text needs no directive saying which passes
 * it has been through, and a hand-written graph is read the same way. */
static bool typed(const mlc_graph *g)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i]->dead && g->node[i]->rank < 0)
			return false;
	return true;
}

static bool has_grads(const mlc_graph *g)
{
	for (int i = 0; i < g->nret; i++)
		if (strncmp(g->ret[i].key, "grad.", 5) == 0)
			return true;
	return false;
}

static bool has_updates(const mlc_graph *g)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i]->dead && mlc_op_is_update(g->node[i]->op))
			return true;
	return false;
}

static bool has_groups(const mlc_graph *g)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i]->dead && g->node[i]->group)
			return true;
	return false;
}

static bool planned(const mlc_graph *g)
{
	return g->act_size > 0;
}

static const struct {
	const char *name;
	mlc_status (*run)(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
	bool (*done)(const mlc_graph *g); /* its effect shows; NULL: none does (dce) */
	bool training;                    /* needs ret "loss": skipped without one when resuming */
	bool rerun;                       /* may run again on a graph it shows done */
} passes[] = {
	{"shapes", run_shapes, typed, false, true},
	{"autodiff", mlc_autodiff, has_grads, true, false},
	{"optimizer", mlc_optimizer, has_updates, true, false},
	{"dce", run_dce, NULL, false, true},
	{"fuse", mlc_fuse, has_groups, false, false},
	{"plan", mlc_plan_memory, planned, false, false},
};

const char *const mlc_pass_names[] = {"shapes", "autodiff", "optimizer", "dce", "fuse", "plan", NULL};
_Static_assert(MLC_COUNTOF(passes) + 1 == MLC_COUNTOF(mlc_pass_names), "pass list out of sync");

int mlc_pass_index(const char *name, size_t len)
{
	for (size_t i = 0; i < MLC_COUNTOF(passes); i++)
		if (strlen(passes[i].name) == len && strncmp(passes[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int mlc_passes_done(const mlc_graph *g)
{
	for (int i = (int)MLC_COUNTOF(passes) - 1; i >= 0; i--)
		if (passes[i].done && passes[i].done(g))
			return i + 1;
	return 0;
}

static bool matches(const char *want, const char *name)
{
	return want && (strcmp(want, "all") == 0 || strcmp(want, name) == 0);
}

static void dump(const mlc_graph *g, const mlc_pass_opts *o, const char *when, const char *name)
{
	FILE *out = o->print_to ? o->print_to : stdout;
	fprintf(out, "# IR %s %s\n", when, name);
	mlc_graph_print(g, out);
}

static mlc_status run_one(mlc_graph *g, const mlc_pass_opts *o, int i, mlc_diag *d)
{
	const char *name = passes[i].name;
	if (matches(o->print_before, name))
		dump(g, o, "before", name);
	mlc_status st = passes[i].run(g, o, d);
	if (st == MLC_OK)
		st = mlc_verify(g, d);
	if (st == MLC_OK && matches(o->print_after, name))
		dump(g, o, "after", name);
	return st;
}

/* --passes=a,b,c: exactly these, in this order (each verified). */
static mlc_status run_list(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	int order[16], n = 0;
	for (const char *p = o->only; *o->only;) { /* "": none, the graph only verified */
		size_t len = strcspn(p, ",");
		int i = mlc_pass_index(p, len);
		if (i < 0 || n == (int)MLC_COUNTOF(order)) {
			char word[32];
			snprintf(word, sizeof word, "%.*s", (int)len, p);
			const char *hint = i < 0 ? mlc_suggest(word, mlc_pass_names) : NULL;
			mlc_error_file(d, NULL, i < 0 ? "unknown pass '%s' in --passes%s%s%s (passes: shapes, autodiff, "
				       "optimizer, dce, fuse, plan)" : "--passes lists more than 16 passes ('%s'...)%s%s%s",
				       word, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
			return MLC_EUSER;
		}
		order[n++] = i;
		if (!p[len])
			break;
		p += len + 1;
	}
	for (int k = 0; k < n; k++) {
		int i = order[k];
		if (!passes[i].rerun && passes[i].done(g)) {
			mlc_error_file(d, o->source, "--passes: %s cannot run on a graph that shows it done already (its "
				       "results would be made twice)", passes[i].name);
			return MLC_EUSER;
		}
		mlc_status st = run_one(g, o, i, d);
		if (st != MLC_OK)
			return st;
	}
	return MLC_OK;
}

static bool skipped(const mlc_graph *g, const mlc_pass_opts *o, int i)
{
	const char *name = passes[i].name;
	return (o->no_update && strcmp(name, "optimizer") == 0) || (o->no_fuse && strcmp(name, "fuse") == 0) ||
	       (o->resume && (i < mlc_passes_done(g) || (passes[i].training && !mlc_graph_find_ret(g, "loss"))));
}

/* A dump of a pass that IR text has been through already would print
 * nothing: say so, and what is left. */
static bool dump_runs(const mlc_graph *g, const mlc_pass_opts *o, const char *flag, const char *want, mlc_diag *d)
{
	int at = want && !o->only && o->resume ? mlc_pass_index(want, strlen(want)) : -1;
	if (at < 0 || !skipped(g, o, at))
		return true;
	char left[96] = "";
	for (int i = 0; i < (int)MLC_COUNTOF(passes); i++)
		if (!skipped(g, o, i))
			snprintf(left + strlen(left), sizeof left - strlen(left), "%s%s", left[0] ? ", " : "",
				 passes[i].name);
	mlc_error_file(d, o->source, "--%s %s: the IR text does not go through %s (%s); passes left: %s (--passes=%s "
		       "runs it anyway)", flag, want, want, at < mlc_passes_done(g) ? "it shows that pass done" :
		       "it has no 'loss' result", left[0] ? left : "none", want);
	return false;
}

/* IR text after autodiff hands its "grad.<name>" results to the optimizer,
 * which builds an update of <name> from each: a hand-written one that names
 * no value, or has another type, is the text's mistake. So is an update op
 * that is not the result "update.<param>" the optimizer makes of it: the
 * later passes plan and run updates through those results. */
static bool results_ok(const mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d)
{
	bool ok = true;
	for (int i = 0; i < g->nnode; i++) {
		const mlc_node *n = g->node[i];
		if (n->dead || !mlc_op_is_update(n->op))
			continue;
		const char *param = n->src[0]->name ? n->src[0]->name : "?";
		char key[160];
		snprintf(key, sizeof key, "update.%s", param);
		if (mlc_graph_find_ret(g, key) != n) {
			mlc_error_file(d, o->source, "%%%d (%s) updates '%s' but is not its result '%s'", n->id,
				       mlc_ops[n->op].name, param, key);
			ok = false;
		}
	}
	for (int i = 0; i < g->nret; i++) {
		const mlc_ret *r = &g->ret[i];
		if (strncmp(r->key, "grad.", 5) != 0)
			continue;
		const mlc_node *v = mlc_graph_find_value(g, r->key + 5);
		char a[96], b[96];
		if (!v) {
			mlc_error_file(d, o->source, "result '%s' names no value '%s' of the graph", r->key, r->key + 5);
			ok = false;
		} else if (v->dtype != r->val->dtype || !mlc_same_shape(v, r->val)) {
			mlc_error_file(d, o->source, "result '%s' is %s, but '%s' is %s: a gradient has its value's type",
				       r->key, mlc_type_str(r->val, a, sizeof a), v->name, mlc_type_str(v, b, sizeof b));
			ok = false;
		}
	}
	return ok;
}

mlc_status mlc_run_passes(mlc_graph *g, const mlc_pass_opts *o, const char *stop_after, mlc_diag *d)
{
	mlc_status st = mlc_verify(g, d);
	/* the verifier's findings are pass bugs, except in IR text a user wrote */
	if (st != MLC_OK && o->resume) {
		mlc_error_file(d, o->source, "the IR text does not verify (above), so no pass can take it");
		st = MLC_EUSER;
	}
	if (st == MLC_OK && o->resume && !results_ok(g, o, d))
		st = MLC_EUSER;
	if (st != MLC_OK || o->only)
		return st != MLC_OK ? st : run_list(g, o, d);
	if (!dump_runs(g, o, "print-after", o->print_after, d) || !dump_runs(g, o, "print-before", o->print_before, d))
		return MLC_EUSER;
	int start = o->resume ? mlc_passes_done(g) : 0;
	for (int i = start; i < (int)MLC_COUNTOF(passes); i++) {
		const char *name = passes[i].name;
		if (skipped(g, o, i))
			continue;
		if ((st = run_one(g, o, i, d)) != MLC_OK)
			return st;
		if (stop_after && strcmp(stop_after, name) == 0)
			break;
	}
	return MLC_OK;
}
