/* fuzz_util.h — what the libFuzzer harnesses share: a diagnostics sink that
 * prints nowhere (a crash, not a message, is what the fuzzer looks for) and a
 * scratch file for readers that only take paths. */
#ifndef MLC_FUZZ_UTIL_H
#define MLC_FUZZ_UTIL_H

#include "mlc/mlc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One /dev/null stream for the whole run: opening it per input would cost
 * more than most inputs take to parse. */
static inline mlc_diag *fuzz_diag(void)
{
	static FILE *null;
	if (!null && !(null = fopen("/dev/null", "w")))
		abort();
	return mlc_diag_new(null);
}

/* Writes bytes to the harness's scratch file number `which` (in /dev/shm,
 * named by pid so parallel fuzzers do not share it) and returns its path. */
static inline const char *fuzz_file(int which, const uint8_t *data, size_t size)
{
	static char path[4][64];
	if (!path[which][0])
		snprintf(path[which], sizeof path[which], "/dev/shm/mlc-fuzz-%d-%d", (int)getpid(), which);
	FILE *f = fopen(path[which], "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		abort();
	return path[which];
}

/* Removes the scratch files when the fuzzer exits. */
static inline void fuzz_cleanup(void)
{
	for (int i = 0; i < 4; i++) {
		char path[64];
		snprintf(path, sizeof path, "/dev/shm/mlc-fuzz-%d-%d", (int)getpid(), i);
		unlink(path);
	}
}

#endif
