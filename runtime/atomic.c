/* atomic.c — files written whole or not at all: a temp file beside the
 * target, fsync'd, renamed over it, and the folder fsync'd; on any failure
 * (a full disk, a read-only or forbidden folder) the temp file goes away and
 * the previous file is left exactly as it was. */
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

mlc_status mlc_atomic_open(mlc_atomic *a, const char *path, mlc_diag *d)
{
	size_t n = strlen(path) + 32;
	a->path = path;
	a->tmp = mlc_xmalloc(n);
	snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
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
	if (!err && rename(a->tmp, a->path) != 0)
		err = errno;
	if (err) {
		unlink(a->tmp);
		mlc_error_file(d, a->path, "cannot write: %s", strerror(err));
	} else {
		sync_dir(a->path);
	}
	free(a->tmp);
	a->tmp = NULL;
	return err ? MLC_EIO : MLC_OK;
}
