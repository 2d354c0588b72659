/* fuzz_ir.c — libFuzzer harness: IR text → parser → verifier, and a graph
 * that parses is printed again (the printer must cope with whatever the parser
 * accepts), then taken through the passes it does not show done, as `mlc ir
 * x.ir` does (passes/pipeline.c, resume). */
#include "fuzz_util.h"

#include "passes/passes.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The parser takes NUL-terminated text, as mlc_read_file gives it. */
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = 0;
	mlc_diag *d = fuzz_diag();
	mlc_graph *g = NULL;
	if (mlc_graph_parse("fuzz.ir", text, d, &g) == MLC_OK && mlc_verify(g, d) == MLC_OK) {
		free(mlc_graph_print_str(g));
		mlc_pass_opts po = {.max_batch = 4, .threads = 2, .resume = true, .source = "fuzz.ir"};
		mlc_run_passes(g, &po, NULL, d);
	}
	mlc_graph_free(g);
	mlc_diag_free(d);
	free(text);
	return 0;
}
