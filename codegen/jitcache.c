/* jitcache.c — the on-disk object cache: key hashing, the cache directory,
 * and one file per key, written atomically and checked completely on load.
 * Every failure here is a cache miss or an unstored object, never an error:
 * the caller compiles as if there were no cache.
 *
 * A hit is code that runs, so the cache trusts only what this user wrote:
 * the folder must be the user's and closed to others, entries must be the
 * user's regular files, and each carries an HMAC under a secret only the
 * user can read. Someone who can write the folder (if its mode were wrong)
 * or swap files in it could still not make an entry pass for another key or
 * another object without the secret. */
#include "jitcache.h"

#include "../ir/ir.h"

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
	/* HMAC-SHA256 under the user's secret of the fields above and the
	 * object: catches corruption, swaps and forgeries alike. */
	unsigned char mac[SHA256_DIGEST_SIZE];
} jc_header;
_Static_assert(offsetof(jc_header, mac) == 48 && sizeof(jc_header) == 80, "no padding in jc_header");

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

static void entry_mac(const unsigned char secret[JC_SECRET_LEN], const jc_header *h,
		      const char *obj, size_t n, unsigned char mac[SHA256_DIGEST_SIZE])
{
	struct hmac_sha256_ctx c;
	hmac_sha256_set_key(&c, JC_SECRET_LEN, secret);
	hmac_sha256_update(&c, offsetof(jc_header, mac), (const uint8_t *)h);
	hmac_sha256_update(&c, n, (const uint8_t *)obj);
	hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, mac);
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

/* A file this user owns that nobody else may write: what an entry, a key
 * file and the folder must be. */
static bool own_private(const struct stat *st)
{
	return st->st_uid == geteuid() && (st->st_mode & 022) == 0;
}

bool jc_load(const char *path, jc_key k, const unsigned char secret[JC_SECRET_LEN], char **obj,
	     size_t *n, uint32_t *entries)
{
	*obj = NULL;
	*n = 0;
	/* O_NONBLOCK: a FIFO planted at the path would block the open forever. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	jc_header h;
	struct stat st;
	char *buf = NULL;
	bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && own_private(&st) &&
		  read_all(fd, &h, sizeof h) && memcmp(h.magic, magic, sizeof magic) == 0 &&
		  h.version == JC_FORMAT_VERSION && h.key_len == k.len && h.key_h1 == k.h1 &&
		  h.key_h2 == k.h2 && h.obj_len > 0 && (uint64_t)st.st_size == sizeof h + h.obj_len &&
		  h.obj_len < ((uint64_t)1 << 40);
	if (ok) {
		buf = malloc((size_t)h.obj_len);
		unsigned char mac[SHA256_DIGEST_SIZE];
		ok = buf && read_all(fd, buf, (size_t)h.obj_len);
		if (ok)
			entry_mac(secret, &h, buf, (size_t)h.obj_len, mac);
		ok = ok && memeql_sec(mac, h.mac, sizeof mac);
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

static const char key_name[] = "secret.key";

/* Reads the secret from an open key file that must be this user's own,
 * private, regular file of exactly JC_SECRET_LEN bytes. */
static bool read_secret(int fd, unsigned char secret[JC_SECRET_LEN])
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & 077) == 0 && st.st_size == JC_SECRET_LEN &&
	       read_all(fd, secret, JC_SECRET_LEN);
}

/* Makes the key file: written whole to a private temp file, then linked to
 * its name, so a concurrent first run reads either no key or the whole one
 * (link fails if another run's key got there first; that key is used). */
static bool create_secret(const char *dir, const char *key_path)
{
	unsigned char secret[JC_SECRET_LEN];
	if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret)
		return false;
	char *tmp = join(dir, ".tmp-XXXXXX");
	int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
	bool ok = fd >= 0 && write_all(fd, secret, sizeof secret) && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	ok = ok && (link(tmp, key_path) == 0 || errno == EEXIST);
	if (fd >= 0)
		unlink(tmp);
	free(tmp);
	return ok;
}

bool jc_open_dir(const char *dir, unsigned char secret[JC_SECRET_LEN], const char **why,
		 bool *unsafe)
{
	*unsafe = false;
	if (!make_dirs(dir)) {
		*why = strerror(errno ? errno : ENOTDIR);
		return false;
	}
	struct stat st;
	if (stat(dir, &st) != 0) {
		*why = strerror(errno);
		return false;
	}
	*unsafe = true;
	if (st.st_uid != geteuid()) {
		*why = "the folder belongs to another user";
		return false;
	}
	if (st.st_mode & 022) {
		*why = "the folder is writable by group or others (chmod go-w it)";
		return false;
	}
	char *key_path = join(dir, key_name);
	int fd = open(key_path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*unsafe = false;
		if (!create_secret(dir, key_path)) {
			*why = strerror(errno ? errno : EIO);
			free(key_path);
			return false;
		}
		*unsafe = true;
		fd = open(key_path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	}
	free(key_path);
	bool ok = fd >= 0 && read_secret(fd, secret);
	if (fd >= 0)
		close(fd);
	if (!ok)
		*why = "its secret.key is not a private (0600) 32-byte file of this user";
	return ok;
}

bool jc_store(const char *dir, const char *path, jc_key k, const unsigned char secret[JC_SECRET_LEN],
	      const char *obj, size_t n, uint32_t entries, const char **why)
{
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
		       .obj_len = n};
	memcpy(h.magic, magic, sizeof magic);
	entry_mac(secret, &h, obj, n, h.mac);
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
