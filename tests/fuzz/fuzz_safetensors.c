/* fuzz_safetensors.c — libFuzzer harness: the safetensors reader (8-byte
 * header length, JSON header, data area). */
#include "fuzz_util.h"

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(0, data, size);
	mlc_diag *d = fuzz_diag();
	mlc_tensor *t;
	int n;
	mlc_safetensors_read(path, &t, &n, d);
	mlc_tensors_free(t, n);
	mlc_diag_free(d);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
