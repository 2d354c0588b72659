/* pipeline.c — the pass manager: the passes in order, the verifier after each,
 * and --print-before/--print-after dumps of the IR text. */
#include "passes.h"

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

static const struct {
	const char *name;
	mlc_status (*run)(mlc_graph *g, const mlc_pass_opts *o, mlc_diag *d);
} passes[] = {
	{"shapes", run_shapes},
	{"autodiff", mlc_autodiff},
	{"optimizer", mlc_optimizer},
	{"dce", run_dce},
	{"fuse", mlc_fuse},
	{"plan", mlc_plan_memory},
};

const char *const mlc_pass_names[] = {"shapes", "autodiff", "optimizer", "dce", "fuse", "plan", NULL};
_Static_assert(MLC_COUNTOF(passes) + 1 == MLC_COUNTOF(mlc_pass_names), "pass list out of sync");

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

mlc_status mlc_run_passes(mlc_graph *g, const mlc_pass_opts *o, const char *stop_after, mlc_diag *d)
{
	mlc_status st = mlc_verify(g, d);
	if (st != MLC_OK)
		return st;
	for (size_t i = 0; i < MLC_COUNTOF(passes); i++) {
		const char *name = passes[i].name;
		if ((o->no_update && strcmp(name, "optimizer") == 0) || (o->no_fuse && strcmp(name, "fuse") == 0))
			continue;
		if (matches(o->print_before, name))
			dump(g, o, "before", name);
		if ((st = passes[i].run(g, o, d)) != MLC_OK)
			return st;
		if ((st = mlc_verify(g, d)) != MLC_OK)
			return st;
		if (matches(o->print_after, name))
			dump(g, o, "after", name);
		if (stop_after && strcmp(stop_after, name) == 0)
			break;
	}
	return MLC_OK;
}
