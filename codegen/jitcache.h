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
#define JC_FORMAT_VERSION 2

/* The per-user secret that keys every entry's check (jc_open_dir). */
#define JC_SECRET_LEN 32

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

/* Creates dir (and its parents, 0700) if needed and makes it usable as a
 * cache: it must be a folder owned by this user and not writable by group or
 * others (else anyone could plant entries), and hold this user's secret key
 * file `secret.key` (created 0600 on first use; refused if it is not a
 * regular 0600 file of this user). On success fills `secret`; on failure
 * returns false, a static reason in *why, and *unsafe says whether the folder
 * or key is unsafe (worth telling the user) rather than merely missing. */
bool jc_open_dir(const char *dir, unsigned char secret[JC_SECRET_LEN], const char **why,
		 bool *unsafe);

/* Reads the file of key k: true and the object (malloc'd) plus the entry
 * bitmask stored with it when the file is a regular file of this user (opened
 * without following links or blocking), complete, of this format version,
 * for key k, and its keyed check (HMAC-SHA256 under `secret` of the header
 * and the object) matches. Anything else is a miss, never an error. */
bool jc_load(const char *path, jc_key k, const unsigned char secret[JC_SECRET_LEN], char **obj,
	     size_t *n, uint32_t *entries);

/* Writes the file of key k in dir (made by jc_open_dir) atomically (temp file
 * in dir, fsync, rename). On failure returns false and a static reason
 * (errno text) in *why. */
bool jc_store(const char *dir, const char *path, jc_key k, const unsigned char secret[JC_SECRET_LEN],
	      const char *obj, size_t n, uint32_t entries, const char **why);

#endif
