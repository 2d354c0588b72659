/* atomic.c — files written whole or not at all: a temp file beside the
 * target, fsync'd, renamed over it, and the folder fsync'd; on any failure
 * (a full disk, a read-only or forbidden folder) the temp file goes away and
 * the previous file is left exactly as it was.
 *
 * The folder may be shared with other users, so the temp file's name is
 * random (a planted file or link at a guessable name could otherwise be
 * written through) and it is created exclusively, never through a link. Only
 * regular files are replaced: renaming over a device, FIFO or symbolic link
 * would destroy the node rather than write to it. */
#include "runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temp names are `<target>.tmp.<pid>.<suffix>`: the pid lets a later run
 * see that the writer is gone; the suffix makes the name unguessable. */
#define SUFFIX_LEN 12
static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static const char *kind_of(mode_t m)
{
	return S_ISLNK(m)    ? "a symbolic link"
	       : S_ISDIR(m)  ? "a directory"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
			     : "not a regular file";
}

/* The pid in a temp name of `base`, or 0 if `name` is not one. */
static long temp_owner(const char *name, const char *base)
{
	size_t n = strlen(base);
	if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0)
		return 0;
	char *end;
	errno = 0;
	long pid = strtol(name + n + 5, &end, 10);
	if (errno || pid <= 0 || end == name + n + 5 || *end != '.' || strlen(end + 1) != SUFFIX_LEN)
		return 0;
	return strspn(end + 1, alphabet) == SUFFIX_LEN ? pid : 0;
}

/* Removes the temp files of `path` whose writer was killed: ours (same
 * user), regular, and named for a pid that no longer exists. A pid reused
 * since then keeps its file until that process ends, which is only a leak. */
static void remove_stale(const char *dir, const char *base)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return;
	struct dirent *e;
	while ((e = readdir(dp))) {
		long pid = temp_owner(e->d_name, base);
		struct stat st;
		if (pid && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH &&
		    fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == geteuid())
			unlinkat(dirfd(dp), e->d_name, 0);
	}
	closedir(dp);
}

static int open_temp(char *tmp, size_t prefix)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned char r[SUFFIX_LEN];
		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			return -1;
		for (int i = 0; i < SUFFIX_LEN; i++)
			tmp[prefix + (size_t)i] = alphabet[r[i] % (sizeof alphabet - 1)];
		tmp[prefix + SUFFIX_LEN] = 0;
		/* 0666: the final file's mode follows the umask, like any new file. */
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

mlc_status mlc_atomic_open(mlc_atomic *a, const char *path, mlc_diag *d)
{
	a->path = path;
	a->f = NULL;
	a->tmp = NULL;
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		mlc_error_file(d, path, "cannot write: is %s; only a regular file is replaced",
			       kind_of(st.st_mode));
		return MLC_EIO;
	}
	char *copy = mlc_xstrdup(path), *copy2 = mlc_xstrdup(path);
	remove_stale(dirname(copy), basename(copy2));
	free(copy);
	free(copy2);

	size_t n = strlen(path) + 32 + SUFFIX_LEN;
	a->tmp = mlc_xmalloc(n);
	int prefix = snprintf(a->tmp, n, "%s.tmp.%ld.", path, (long)getpid());
	int fd = open_temp(a->tmp, (size_t)prefix);
	a->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!a->f) {
		int err = errno;
		if (fd >= 0) {
			close(fd);
			unlink(a->tmp);
		}
		mlc_error_file(d, path, "cannot write: %s", strerror(err));
		free(a->tmp);
		a->tmp = NULL;
		return MLC_EIO;
	}
	errno = 0;
	return MLC_OK;
}

void mlc_atomic_abort(mlc_atomic *a)
{
	if (!a->f)
		return;
	fclose(a->f);
	unlink(a->tmp);
	free(a->tmp);
	a->f = NULL;
	a->tmp = NULL;
}

/* Makes the rename itself durable; failure here loses nothing already written. */
static void sync_dir(const char *path)
{
	char *copy = mlc_xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

mlc_status mlc_atomic_commit(mlc_atomic *a, mlc_diag *d)
{
	MLC_ASSERT(a->f);
	/* A write that failed earlier left the stream's error flag (and errno). */
	int err = ferror(a->f) ? (errno ? errno : EIO) : 0;
	if (!err && (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0))
		err = errno ? errno : EIO;
	if (fclose(a->f) != 0 && !err)
		err = errno ? errno : EIO;
	a->f = NULL;
	/* The target may have changed since open: check again just before the
	 * rename, so only a regular file (or nothing) is ever replaced. */
	struct stat st;
	const char *kind = NULL;
	if (!err && lstat(a->path, &st) == 0 && !S_ISREG(st.st_mode))
		kind = kind_of(st.st_mode);
	if (!err && !kind && rename(a->tmp, a->path) != 0)
		err = errno;
	if (err || kind) {
		unlink(a->tmp);
		if (kind)
			mlc_error_file(d, a->path, "cannot write: is %s; only a regular file is replaced",
				       kind);
		else
			mlc_error_file(d, a->path, "cannot write: %s", strerror(err));
	} else {
		sync_dir(a->path);
	}
	free(a->tmp);
	a->tmp = NULL;
	return err || kind ? MLC_EIO : MLC_OK;
}
