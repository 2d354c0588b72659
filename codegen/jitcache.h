/* jitcache.h — the on-disk cache of compiled objects (jitcache.c): the key
 * (a hash of everything the machine code depends on), the cache directory,
 * and reading/writing one cache file. Internal to codegen/ and its tests. */
#ifndef MLC_JITCACHE_H
#define MLC_JITCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bump when the file layout, the optimization pipeline or anything else that
 * changes the object for the same IR changes. */
#define JC_FORMAT_VERSION 1

/* What the object depends on besides the IR. The strings are borrowed. */
typedef struct {
	const char *llvm_version; /* e.g. "19.1.7" */
	const char *triple, *cpu, *features;
	const char *pipeline;     /* the optimization pipeline and its options */
} jc_host;

/* Two independent 64-bit hashes of the key material, and its length. The
 * file name comes from h1; h2 and len are checked on load. */
typedef struct {
	uint64_t h1, h2, len;
} jc_key;

/* The key of module text `ir` (n bytes) compiled for `h`. */
jc_key jc_key_make(const char *ir, size_t n, const jc_host *h);

/* The cache directory: `dir` if not NULL, else $MLC_CACHE_DIR, else
 * $XDG_CACHE_HOME/mlc, else $HOME/.cache/mlc; NULL if none can be named.
 * The result is malloc'd. */
char *jc_dir(const char *dir);
/* $MLC_NO_CACHE is set to something other than "" or "0". */
bool jc_disabled_by_env(void);

/* The file of key k in dir (malloc'd). */
char *jc_path(const char *dir, jc_key k);

/* Reads the file of key k: true and the object (malloc'd) plus the entry
 * bitmask stored with it when the file exists, is complete, and matches k and
 * this format version exactly. Anything else is a miss, never an error. */
bool jc_load(const char *path, jc_key k, char **obj, size_t *n, uint32_t *entries);

/* Creates dir (and its parents) if needed and writes the file of key k
 * atomically (temp file in dir, fsync, rename). On failure returns false
 * and a static reason (errno text) in *why. */
bool jc_store(const char *dir, const char *path, jc_key k, const char *obj, size_t n,
	      uint32_t entries, const char **why);

#endif
