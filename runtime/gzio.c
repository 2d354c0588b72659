/* gzio.c — reading data files that may or may not be gzip'd, with one clear
 * message per failure (shared by the IDX and CIFAR loaders). */
#include "gzio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CHUNK = 1 << 20 };

gzFile mlc_gz_open(const char *path, mlc_diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int err = fd < 0 || fstat(fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
	gzFile gz = err ? NULL : gzdopen(fd, "rb");
	if (!gz) {
		mlc_error_file(d, path, "cannot read: %s", strerror(err ? err : ENOMEM));
		if (fd >= 0)
			close(fd);
	}
	return gz;
}

int64_t mlc_gz_read(gzFile gz, unsigned char *buf, int64_t n)
{
	int64_t got = 0;
	while (got < n) {
		unsigned want = n - got < CHUNK ? (unsigned)(n - got) : CHUNK;
		int r = gzread(gz, buf + got, want);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

mlc_status mlc_gz_error(gzFile gz, const char *path, mlc_diag *d)
{
	int errnum;
	const char *msg = gzerror(gz, &errnum);
	if (errnum == Z_ERRNO)
		mlc_error_file(d, path, "cannot read: %s", strerror(errno));
	else
		mlc_error_file(d, path, "corrupt gzip data: %s", msg);
	return errnum == Z_ERRNO ? MLC_EIO : MLC_EUSER;
}
