/* fuzz_idx.c — libFuzzer harness: IDX image and label files (raw or gzip'd).
 * Input: a 2-byte big-endian length n, then n bytes of the images file, then
 * the labels file (n is clamped to what is there). */
#include "fuzz_util.h"

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t n = (size_t)data[0] << 8 | data[1];
	data += 2, size -= 2;
	n = n < size ? n : size;
	const char *images = fuzz_file(0, data, n), *labels = fuzz_file(1, data + n, size - n);
	mlc_diag *d = fuzz_diag();
	mlc_dataset ds;
	mlc_load_idx(images, labels, &ds, d);
	mlc_dataset_free(&ds);
	mlc_diag_free(d);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
