/* base.c — arenas, checked allocation, did-you-mean, whole-file reads. */
#include "base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Noreturn void mlc_die(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "mlc: internal error at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void *mlc_xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		mlc_die(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
	return p;
}

void *mlc_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		mlc_die(__FILE__, __LINE__, "out of memory allocating %zu bytes", n);
	return p;
}

void *mlc_try_alloc(size_t n)
{
	return calloc(1, n ? n : 1);
}

void *mlc_try_realloc(void *p, size_t n)
{
	return realloc(p, n ? n : 1);
}

char *mlc_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(mlc_xmalloc(n), s, n);
}

typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
} chunk;

struct mlc_arena {
	chunk *head;
};

mlc_arena *mlc_arena_new(void)
{
	return mlc_xmalloc(sizeof(mlc_arena));
}

void mlc_arena_free(mlc_arena *a)
{
	if (!a)
		return;
	for (chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void *mlc_arena_alloc(mlc_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		c = mlc_xmalloc(sizeof(chunk) + cap);
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

char *mlc_arena_strndup(mlc_arena *a, const char *s, size_t n)
{
	char *p = mlc_arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *mlc_arena_strdup(mlc_arena *a, const char *s)
{
	return s ? mlc_arena_strndup(a, s, strlen(s)) : NULL;
}

char *mlc_arena_printf(mlc_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = mlc_arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of two adjacent letters ("cvs" → "csv") each cost one. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *mlc_suggest(const char *word, const char *const *cands)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	for (; cands && *cands; cands++) {
		size_t d = edit_distance(word, *cands);
		if (d < bestd) {
			bestd = d;
			best = *cands;
		}
	}
	size_t len = strlen(word);
	size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
	return bestd <= limit ? best : NULL;
}

char *mlc_read_file(const char *path, size_t *len)
{
	return mlc_read_file_max(path, SIZE_MAX - 1, len);
}

char *mlc_read_file_max(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	/* A regular file's size is known: refuse it before reading anything. */
	struct stat sb;
	if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uintmax_t)sb.st_size > max) {
		fclose(f);
		errno = EFBIG;
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = mlc_xmalloc(cap);
	for (;;) {
		if (cap - n < 2) {
			/* A pipe or /dev/zero has no size to check first: running
			 * out of memory is the caller's "cannot read", not an abort. */
			char *more = cap <= SIZE_MAX / 2 ? mlc_try_realloc(buf, cap * 2) : NULL;
			if (!more) {
				fclose(f);
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = more;
			cap *= 2;
		}
		size_t want = cap - n - 1;
		if (want > max + 1 - n)
			want = max + 1 - n;
		size_t got = fread(buf + n, 1, want, f);
		n += got;
		if (got == 0 || n > max)
			break;
	}
	int err = ferror(f) ? errno : n > max ? EFBIG : 0;
	fclose(f);
	if (err) {
		free(buf);
		errno = err ? err : EIO;
		return NULL;
	}
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}
