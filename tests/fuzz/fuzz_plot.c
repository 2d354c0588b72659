/* fuzz_plot.c — libFuzzer harness: `mlc plot` on a training log, read and
 * drawn (the tick loops, the K-fold means, the layout), to an SVG or PNG in
 * /dev/shm. Input: one byte (bit 0: PNG, bit 1: --log-scale, bit 2:
 * --fold-mean), then the log. */
#include "fuzz_util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static char out[2][80];
	if (!out[0][0]) {
		snprintf(out[0], sizeof out[0], "/dev/shm/mlc-fuzz-%d-plot.svg", (int)getpid());
		snprintf(out[1], sizeof out[1], "/dev/shm/mlc-fuzz-%d-plot.png", (int)getpid());
	}
	const char *log = fuzz_file(0, data + 1, size - 1);
	mlc_plot_options o = {.log_scale = (data[0] >> 1) & 1, .fold_mean = (data[0] >> 2) & 1};
	mlc_diag *d = fuzz_diag();
	mlc_plot(log, out[data[0] & 1], &o, d);
	mlc_diag_free(d);
	return 0;
}

__attribute__((destructor)) static void cleanup(void)
{
	fuzz_cleanup();
	char path[80];
	snprintf(path, sizeof path, "/dev/shm/mlc-fuzz-%d-plot.svg", (int)getpid());
	unlink(path);
	snprintf(path, sizeof path, "/dev/shm/mlc-fuzz-%d-plot.png", (int)getpid());
	unlink(path);
}
