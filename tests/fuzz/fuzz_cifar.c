/* fuzz_cifar.c — libFuzzer harness: CIFAR-10 binary files (raw or gzip'd).
 * Input: the file, read twice as two files when the first byte is odd (the
 * concatenation path). */
#include "fuzz_util.h"

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(0, data, size);
	const char *paths[2] = {path, path};
	mlc_diag *d = fuzz_diag();
	mlc_dataset ds;
	mlc_load_cifar(paths, size && data[0] & 1 ? 2 : 1, &ds, d);
	mlc_dataset_free(&ds);
	mlc_diag_free(d);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
