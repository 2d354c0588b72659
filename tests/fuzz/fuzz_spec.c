/* fuzz_spec.c — libFuzzer harness: YAML spec text → frontend (tree, schema,
 * layers, wiring, shape inference) → the rest of the passes (autodiff,
 * optimizer, dce, fuse, plan), as `mlc check` runs them, without the JIT. */
#include "fuzz_util.h"

#include "frontend/frontend.h"
#include "passes/passes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mlc_diag *d = fuzz_diag();
	mlc_model *m = NULL;
	/* The path anchors relative data paths; they need not exist to be checked. */
	if (mlc_frontend_load_text("fuzz/spec.yaml", (const char *)data, size, d, &m) == MLC_OK) {
		mlc_pass_opts po = {
			.momentum = m->opt.momentum,
			.nesterov = m->opt.nesterov,
			.update = m->opt.update,
			.update_attrs = &m->opt.attrs,
			.max_batch = m->data.batch_size,
			.threads = 2,
		};
		mlc_run_passes(m->graph, &po, NULL, d);
	}
	mlc_model_free(m);
	mlc_diag_free(d);
	return 0;
}
