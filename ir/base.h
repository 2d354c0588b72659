/* base.h — internal support shared by every module: arenas, assertions,
 * checked allocation, small string helpers. */
#ifndef MLC_BASE_H
#define MLC_BASE_H

#include "mlc/mlc.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal invariants only; user errors go through mlc_diag. */
#define MLC_ASSERT(c) ((c) ? (void)0 : mlc_die(__FILE__, __LINE__, "assertion failed: %s", #c))
#define MLC_UNREACHABLE() mlc_die(__FILE__, __LINE__, "unreachable")
_Noreturn void mlc_die(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define MLC_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
/* English plurals in messages: "%d epoch%s", n, MLC_S(n) */
#define MLC_S(n) ((n) == 1 ? "" : "s")

void *mlc_xmalloc(size_t n);           /* zeroed; dies on out-of-memory */
void *mlc_xrealloc(void *p, size_t n);
/* For sizes a file decides (data sets, weights): NULL on out-of-memory
 * instead of dying, so the reader can name the file. mlc_try_realloc leaves
 * p allocated when it fails. */
void *mlc_try_alloc(size_t n); /* zeroed */
void *mlc_try_realloc(void *p, size_t n);
char *mlc_xstrdup(const char *s);

/* Bump allocator; everything a graph owns lives in one and is freed at once. */
typedef struct mlc_arena mlc_arena;
mlc_arena *mlc_arena_new(void);
void mlc_arena_free(mlc_arena *a);
void *mlc_arena_alloc(mlc_arena *a, size_t n); /* zeroed, 16-byte aligned */
char *mlc_arena_strdup(mlc_arena *a, const char *s);
char *mlc_arena_strndup(mlc_arena *a, const char *s, size_t n);
char *mlc_arena_printf(mlc_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reads a whole file; NULL with errno set on failure. *len excludes the NUL
 * terminator that is always appended. */
char *mlc_read_file(const char *path, size_t *len);
/* The same, refusing a file (or an endless stream such as /dev/zero) longer
 * than max bytes: NULL with errno EFBIG, after reading at most max + 1 bytes. */
char *mlc_read_file_max(const char *path, size_t max, size_t *len);

#endif
