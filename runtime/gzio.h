/* gzio.h — reading data files that may or may not be gzip'd (internal). */
#ifndef MLC_GZIO_H
#define MLC_GZIO_H

#include "runtime.h"

typedef struct mlc_gz mlc_gz;

/* Opens with open()+fstat first so a directory gets a clear message instead
 * of an obscure read error; pipes and devices are fine. A file that starts
 * with gzip's magic bytes is inflated, any other is read as it is. NULL
 * after reporting "path: error: cannot read: ..." (nothing when d is NULL). */
mlc_gz *mlc_gz_open(const char *path, mlc_diag *d);
/* Reads up to n bytes; returns how many (0 at the end), or -1 on a read or
 * decompress error, a stream that ends early (after the bytes it held), or
 * bytes after the last gzip member that do not start another. */
int64_t mlc_gz_read(mlc_gz *gz, unsigned char *buf, int64_t n);
/* Whether the file is read as it is (not gzip'd). */
bool mlc_gz_direct(const mlc_gz *gz);
/* Whether the compressed file ended inside a gzip member. */
bool mlc_gz_truncated(const mlc_gz *gz);
/* Reports the error behind a -1 from mlc_gz_read. */
mlc_status mlc_gz_error(const mlc_gz *gz, const char *path, mlc_diag *d);
void mlc_gz_close(mlc_gz *gz);

#endif
