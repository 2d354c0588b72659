/* mlc.h — the one public header of libmlc: status codes, diagnostics and the
 * driver API the `mlc` CLI is built on. Everything else is internal. */
#ifndef MLC_MLC_H
#define MLC_MLC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library functions return a status; only the CLI turns it into an exit code. */
typedef enum {
	MLC_OK = 0,
	MLC_EUSER,     /* a user mistake (spec, data file, flag); already diagnosed */
	MLC_EIO,       /* a file could not be read or written; already diagnosed */
	MLC_EINTERNAL, /* a failure inside mlc or LLVM; already diagnosed */
} mlc_status;

/* A position in a source file; line and col are 1-based, 0 means unknown. */
typedef struct {
	const char *file;
	int line, col;
} mlc_loc;

/* Diagnostics sink: errors are printed as they are reported, chibicc-style:
 *   file:line:col: error: message
 *     <source line>
 *         ^
 * The sink remembers source texts (mlc_diag_add_source) to show the line. */
typedef struct mlc_diag mlc_diag;

mlc_diag *mlc_diag_new(FILE *out);
void mlc_diag_free(mlc_diag *d);
/* Registers the text of `file` (copied) so diagnostics can quote its lines. */
void mlc_diag_add_source(mlc_diag *d, const char *file, const char *text, size_t len);
void mlc_error_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mlc_note_at(mlc_diag *d, mlc_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A file-level error: "path: error: message" (path may be NULL: "mlc: error: ..."). */
void mlc_error_file(mlc_diag *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int mlc_diag_errors(const mlc_diag *d);

#ifdef __cplusplus
}
#endif
#endif
