/* jitcache.c — the on-disk object cache: key hashing, the cache directory,
 * and one file per key, written atomically and checked completely on load.
 * Every failure here is a cache miss or an unstored object, never an error:
 * the caller compiles as if there were no cache. */
#include "jitcache.h"

#include "../ir/ir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* File layout: this header, then obj_len bytes of ELF object. Host byte
 * order: the key includes the target triple, so a file never travels. */
typedef struct {
	char magic[8];
	uint32_t version;
	uint32_t entries;  /* bit e: entry point e exists in the object */
	uint64_t key_len;  /* the key material's length */
	uint64_t key_h1, key_h2;
	uint64_t obj_len;
	uint64_t obj_hash; /* FNV-1a of the object bytes: catches corruption */
} jc_header;

static const char magic[8] = "MLCJITO\n";

/* ---- hashing: FNV-1a 64 and an independent multiply-rotate hash ---- */

typedef struct {
	uint64_t h1, h2, len;
} hasher;

static void hash_init(hasher *s)
{
	s->h1 = 0xcbf29ce484222325u; /* FNV offset basis */
	s->h2 = 0x6a09e667f3bcc908u; /* any constant unrelated to FNV's */
	s->len = 0;
}

static void hash_bytes(hasher *s, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h1 = s->h1, h2 = s->h2;
	for (size_t i = 0; i < n; i++) {
		h1 = (h1 ^ b[i]) * 0x100000001b3u; /* FNV prime */
		h2 = ((h2 << 23 | h2 >> 41) ^ b[i]) * 0x9e3779b97f4a7c15u;
	}
	s->h1 = h1;
	s->h2 = h2;
	s->len += n;
}

/* A field as its length then its bytes, so that field boundaries count. */
static void hash_field(hasher *s, const char *str)
{
	uint64_t n = str ? strlen(str) : 0;
	hash_bytes(s, &n, sizeof n);
	hash_bytes(s, str ? str : "", (size_t)n);
}

static uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	return h ^ h >> 33;
}

jc_key jc_key_make(const char *ir, size_t n, const jc_host *h)
{
	hasher s;
	hash_init(&s);
	char version[32];
	snprintf(version, sizeof version, "mlc-jit-cache %d", JC_FORMAT_VERSION);
	hash_field(&s, version);
	hash_field(&s, h->llvm_version);
	hash_field(&s, h->triple);
	hash_field(&s, h->cpu);
	hash_field(&s, h->features);
	hash_field(&s, h->pipeline);
	uint64_t len = n;
	hash_bytes(&s, &len, sizeof len);
	hash_bytes(&s, ir, n);
	return (jc_key){.h1 = s.h1, .h2 = fmix64(s.h2), .len = s.len};
}

static uint64_t obj_hash(const char *obj, size_t n)
{
	hasher s;
	hash_init(&s);
	hash_bytes(&s, obj, n);
	return s.h1;
}

/* ---- location ---- */

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = mlc_xmalloc(n);
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

char *jc_dir(const char *dir)
{
	if (dir && *dir)
		return strdup(dir);
	const char *v;
	if ((v = env("MLC_CACHE_DIR")))
		return strdup(v);
	if ((v = env("XDG_CACHE_HOME")))
		return join(v, "mlc");
	if ((v = env("HOME")))
		return join(v, ".cache/mlc");
	return NULL;
}

bool jc_disabled_by_env(void)
{
	const char *v = env("MLC_NO_CACHE");
	return v && strcmp(v, "0") != 0;
}

char *jc_path(const char *dir, jc_key k)
{
	char name[32];
	snprintf(name, sizeof name, "%016llx.mlcobj", (unsigned long long)k.h1);
	return join(dir, name);
}

/* ---- reading ---- */

static bool read_all(int fd, void *p, size_t n)
{
	char *b = p;
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

bool jc_load(const char *path, jc_key k, char **obj, size_t *n, uint32_t *entries)
{
	*obj = NULL;
	*n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	jc_header h;
	struct stat st;
	char *buf = NULL;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read_all(fd, &h, sizeof h) &&
		  memcmp(h.magic, magic, sizeof magic) == 0 && h.version == JC_FORMAT_VERSION &&
		  h.key_len == k.len && h.key_h1 == k.h1 && h.key_h2 == k.h2 && h.obj_len > 0 &&
		  (uint64_t)st.st_size == sizeof h + h.obj_len && h.obj_len < ((uint64_t)1 << 40);
	if (ok) {
		buf = malloc((size_t)h.obj_len);
		ok = buf && read_all(fd, buf, (size_t)h.obj_len) &&
		     obj_hash(buf, (size_t)h.obj_len) == h.obj_hash;
	}
	close(fd);
	if (!ok) {
		free(buf);
		return false;
	}
	*obj = buf;
	*n = (size_t)h.obj_len;
	*entries = h.entries;
	return true;
}

/* ---- writing ---- */

/* mkdir -p, private to the user like other caches. */
static bool make_dirs(const char *dir)
{
	char *p = strdup(dir);
	bool ok = true;
	for (char *s = p + 1; ok; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			ok = false;
		*s = c;
		if (!c)
			break;
	}
	free(p);
	struct stat st;
	return ok && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* Temporary files that a killed process left behind; an hour is far longer
 * than any write takes, so a live writer's file is never touched. */
static void remove_stale_temps(const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (strncmp(e->d_name, ".tmp-", 5) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > 3600)
			unlinkat(dirfd(dp), e->d_name, 0);
	}
	closedir(dp);
}

bool jc_store(const char *dir, const char *path, jc_key k, const char *obj, size_t n,
	      uint32_t entries, const char **why)
{
	if (!make_dirs(dir)) {
		*why = strerror(errno ? errno : ENOTDIR);
		return false;
	}
	/* Readers see either the old file or the whole new one: the object goes
	 * to a temporary file in the same directory (same file system), is
	 * synced, then renamed over the final name. */
	char *tmp = join(dir, ".tmp-XXXXXX");
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		free(tmp);
		return false;
	}
	jc_header h = {.version = JC_FORMAT_VERSION,
		       .entries = entries,
		       .key_len = k.len,
		       .key_h1 = k.h1,
		       .key_h2 = k.h2,
		       .obj_len = n,
		       .obj_hash = obj_hash(obj, n)};
	memcpy(h.magic, magic, sizeof magic);
	bool ok = write_all(fd, &h, sizeof h) && write_all(fd, obj, n) && fsync(fd) == 0;
	int err = ok ? 0 : errno;
	if (close(fd) != 0 && ok) {
		err = errno;
		ok = false;
	}
	if (ok && rename(tmp, path) != 0) {
		err = errno;
		ok = false;
	}
	if (!ok) {
		unlink(tmp);
		*why = strerror(err ? err : EIO);
	} else {
		remove_stale_temps(dir);
	}
	free(tmp);
	return ok;
}
