/* gzio.h — reading data files that may or may not be gzip'd (internal). */
#ifndef MLC_GZIO_H
#define MLC_GZIO_H

#include "runtime.h"

#include <zlib.h>

/* Opens with open()+fstat first so a directory gets a clear message instead
 * of an obscure read error from zlib; pipes and devices are fine. NULL after
 * reporting "path: error: cannot read: ...". */
gzFile mlc_gz_open(const char *path, mlc_diag *d);
/* Reads up to n bytes; returns how many, or -1 on a read/decompress error. */
int64_t mlc_gz_read(gzFile gz, unsigned char *buf, int64_t n);
/* Reports the error behind a -1 from mlc_gz_read. */
mlc_status mlc_gz_error(gzFile gz, const char *path, mlc_diag *d);

#endif
