/* fuzz_csv.c — libFuzzer harness: CSV data sets. Input: one byte whose low
 * two bits + 1 are the label columns, then the file. */
#include "fuzz_util.h"

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int label_columns = 1 + (data[0] & 3);
	const char *path = fuzz_file(0, data + 1, size - 1);
	mlc_diag *d = fuzz_diag();
	mlc_dataset ds;
	mlc_load_csv(path, label_columns, MLC_HEADER_AUTO, &ds, d);
	mlc_dataset_free(&ds);
	mlc_diag_free(d);
	return 0;
}

__attribute__((destructor)) static void cleanup(void) { fuzz_cleanup(); }
