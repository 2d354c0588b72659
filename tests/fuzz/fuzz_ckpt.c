/* fuzz_ckpt.c — libFuzzer harness: a checkpoint's __metadata__ as
 * mlc_ckpt_read_state checks it (the run settings and the loop's state),
 * for a fixed run: 500 samples, 400 after the validation split, batch 7,
 * 12 epochs, lr 0.01 with reduce_on_plateau, early stopping, two classes
 * with top-1. Input: "key=value" lines (the values as mlc writes them, or
 * anything else). The tensors are the safetensors harness's business. */
#include "fuzz_util.h"

#include "runtime/checkpoint.h"

#include <string.h>

enum { MAX_KEYS = 64 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *kv[2 * MAX_KEYS + 1];
	memcpy(text, data, size);
	text[size] = 0;
	int n = 0;
	for (char *line = text, *next; line && n < 2 * MAX_KEYS; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		kv[n++] = line;
		kv[n++] = eq + 1;
	}
	kv[n] = NULL;
	mlc_early_cfg es = {.on = true, .patience = 3, .restore_best = true};
	mlc_metrics m;
	mlc_metrics_init(&m, 2, 1);
	mlc_ckpt c = {.seed = 5, .batch = 7, .n = 500, .ntrain = 400, .ep_m = &m, .epochs = 12, .base_lr = 0.01,
		      .lr_varies = true, .early_cfg = &es};
	mlc_diag *d = fuzz_diag();
	mlc_ckpt_read_state(kv, "fuzz.ckpt", &c, 1, d);
	mlc_diag_free(d);
	mlc_metrics_free(&m);
	free(text);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
