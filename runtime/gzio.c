/* gzio.c — reading data files that may or may not be gzip'd, with one clear
 * message per failure (shared by the IDX and CIFAR loaders).
 *
 * An inflate loop rather than zlib's gzread: gzread silently drops whatever
 * follows a gzip stream when it is not another gzip header, so a file with
 * junk appended would load as if it were whole. Here the bytes after a
 * member must be another member (RFC 1952 allows several, and `cat a.gz
 * b.gz` or `gzip` of a pipe in pieces makes them: their data is joined, as
 * gzip -d does) or nothing. */
#include "gzio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { IN_BYTES = 1 << 16, CHUNK = 1 << 20 };

typedef enum { GZ_OK, GZ_IO, GZ_DATA, GZ_TRUNCATED, GZ_TRAILING } gz_error;

struct mlc_gz {
	int fd;
	bool direct, at_eof, in_member, inited;
	gz_error err;
	int errnum; /* GZ_IO's errno */
	char msg[128]; /* GZ_DATA's text from zlib */
	int64_t offset; /* compressed bytes consumed by finished members (GZ_TRAILING) */
	z_stream z;
	unsigned char in[IN_BYTES];
};

/* Refills z.next_in from the file; false at its end or on an error. */
static bool refill(mlc_gz *gz)
{
	ssize_t r;
	do
		r = read(gz->fd, gz->in, sizeof gz->in);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		gz->err = GZ_IO;
		gz->errnum = errno;
		return false;
	}
	gz->at_eof = r == 0;
	gz->z.next_in = gz->in;
	gz->z.avail_in = (uInt)r;
	return r > 0;
}

mlc_gz *mlc_gz_open(const char *path, mlc_diag *d)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int err = fd < 0 || fstat(fd, &sb) != 0 ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
	mlc_gz *gz = err ? NULL : mlc_try_alloc(sizeof *gz);
	if (gz) {
		memset(gz, 0, offsetof(mlc_gz, in));
		gz->fd = fd;
		if (!refill(gz) && gz->err) {
			err = gz->errnum;
			free(gz);
			gz = NULL;
		}
	}
	if (gz) {
		gz->direct = gz->z.avail_in < 2 || gz->in[0] != 0x1f || gz->in[1] != 0x8b;
		/* 16 + MAX_WBITS: gzip framing only, with its CRC and length checked */
		gz->inited = !gz->direct && inflateInit2(&gz->z, 16 + MAX_WBITS) == Z_OK;
		if (!gz->direct && !gz->inited) {
			free(gz);
			gz = NULL;
			err = ENOMEM;
		}
		gz->in_member = !gz->direct;
	}
	if (!gz) {
		if (d)
			mlc_error_file(d, path, "cannot read: %s", strerror(err ? err : ENOMEM));
		if (fd >= 0)
			close(fd);
	}
	return gz;
}

/* The direct case: the bytes as they are, the first refill's first. */
static int64_t read_direct(mlc_gz *gz, unsigned char *buf, int64_t n)
{
	int64_t got = 0;
	while (got < n && !gz->err) {
		if (gz->z.avail_in == 0 && (gz->at_eof || !refill(gz)))
			break;
		size_t k = gz->z.avail_in < (uint64_t)(n - got) ? gz->z.avail_in : (size_t)(n - got);
		memcpy(buf + got, gz->z.next_in, k);
		gz->z.next_in += k;
		gz->z.avail_in -= (uInt)k;
		got += (int64_t)k;
	}
	return got;
}

/* After a member's end: another member, nothing, or an error. */
static void after_member(mlc_gz *gz)
{
	gz->offset += (int64_t)gz->z.total_in;
	gz->in_member = false;
	if (gz->z.avail_in == 0 && !gz->at_eof)
		refill(gz);
	if (gz->z.avail_in == 0)
		return; /* the end of the file (or a read error, already set) */
	if (gz->z.avail_in == 1 && !gz->at_eof) {
		/* one byte of a possible magic number: keep it, read on */
		unsigned char first = gz->z.next_in[0];
		ssize_t r = read(gz->fd, gz->in + 1, sizeof gz->in - 1);
		gz->in[0] = first;
		gz->z.next_in = gz->in;
		gz->z.avail_in = 1 + (uInt)(r > 0 ? r : 0);
	}
	if (gz->z.avail_in >= 2 && gz->z.next_in[0] == 0x1f && gz->z.next_in[1] == 0x8b) {
		inflateReset(&gz->z);
		gz->in_member = true;
	} else {
		gz->err = GZ_TRAILING;
	}
}

int64_t mlc_gz_read(mlc_gz *gz, unsigned char *buf, int64_t n)
{
	if (gz->direct) {
		int64_t got = read_direct(gz, buf, n);
		return got || !gz->err ? got : -1;
	}
	int64_t got = 0;
	while (got < n && !gz->err && gz->in_member) {
		if (gz->z.avail_in == 0 && !gz->at_eof && !refill(gz) && gz->err)
			break;
		if (gz->z.avail_in == 0 && gz->at_eof) {
			gz->err = GZ_TRUNCATED;
			break;
		}
		uInt want = n - got < CHUNK ? (uInt)(n - got) : CHUNK;
		gz->z.next_out = buf + got;
		gz->z.avail_out = want;
		int rc = inflate(&gz->z, Z_NO_FLUSH);
		got += want - gz->z.avail_out;
		if (rc == Z_STREAM_END) {
			after_member(gz);
		} else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			gz->err = rc == Z_MEM_ERROR ? GZ_IO : GZ_DATA;
			gz->errnum = ENOMEM;
			snprintf(gz->msg, sizeof gz->msg, "%s", gz->z.msg ? gz->z.msg : zError(rc));
		}
	}
	/* the bytes before an error first; the error at the next call */
	return got || !gz->err ? got : -1;
}

bool mlc_gz_direct(const mlc_gz *gz)
{
	return gz->direct;
}

bool mlc_gz_truncated(const mlc_gz *gz)
{
	return gz->err == GZ_TRUNCATED;
}

mlc_status mlc_gz_error(const mlc_gz *gz, const char *path, mlc_diag *d)
{
	switch (gz->err) {
	case GZ_IO:
		mlc_error_file(d, path, "cannot read: %s", strerror(gz->errnum));
		return MLC_EIO;
	case GZ_DATA:
		mlc_error_file(d, path, "corrupt gzip data: %s", gz->msg);
		return MLC_EUSER;
	case GZ_TRUNCATED:
		mlc_error_file(d, path, "truncated: the gzip stream ends early");
		return MLC_EUSER;
	case GZ_TRAILING:
		mlc_error_file(d, path,
			       "trailing data: bytes after the gzip stream, which ends at byte %lld of the file, "
			       "are not another gzip member",
			       (long long)gz->offset);
		return MLC_EUSER;
	case GZ_OK:
		break;
	}
	MLC_ASSERT(!"mlc_gz_error without an error");
	return MLC_EUSER;
}

void mlc_gz_close(mlc_gz *gz)
{
	if (gz->inited)
		inflateEnd(&gz->z);
	close(gz->fd);
	free(gz);
}
