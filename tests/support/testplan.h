/* testplan.h — a trivial memory plan for unit tests that run generated code
 * without passes/plan.c: every value gets its own slot, in graph order, with
 * a guard gap around each so out-of-range writes can be detected. Same
 * contract as the real planner (see codegen/codegen.h). */
#ifndef MLC_TEST_TESTPLAN_H
#define MLC_TEST_TESTPLAN_H

#include "ir/ir.h"

/* PARAM and STATE nodes go to the parameter arena, SGD nodes onto their
 * parameter's slot, every other live node to the activation arena (with
 * its scratch space, ir.h, right after it); `gap` elements separate slots
 * (and precede the first). Sets g->max_batch,
 * g->act_size and g->param_size. */
void test_plan_memory(mlc_graph *g, int64_t max_batch, int64_t gap);

#endif
