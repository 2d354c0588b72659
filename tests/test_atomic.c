/* test_atomic.c — atomic file writes (runtime/atomic.c) when the disk fails:
 * fsync and rename are wrapped at link time (tests/CMakeLists.txt) so a test
 * can make them fail with ENOSPC, EDQUOT, EIO or EACCES; the previous file
 * must stay byte for byte and no temp file may be left behind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

/* The errno the next fsync / rename fails with (0: call the real one). */
static int fsync_err, rename_err;

int __real_fsync(int fd);
int __real_rename(const char *a, const char *b);

int __wrap_fsync(int fd)
{
	if (fsync_err) {
		errno = fsync_err;
		return -1;
	}
	return __real_fsync(fd);
}

int __wrap_rename(const char *a, const char *b)
{
	if (rename_err) {
		errno = rename_err;
		return -1;
	}
	return __real_rename(a, b);
}

static char dir[64];

static int make_dir(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/mlc_atomic_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	DIR *dp = opendir(dir);
	struct dirent *e;
	char p[512];
	while (dp && (e = readdir(dp)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (dp)
		closedir(dp);
	return rmdir(dir);
}

static int files_in_dir(void)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (dp && (e = readdir(dp)))
		n += e->d_name[0] != '.';
	if (dp)
		closedir(dp);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	char *s = mlc_read_file(path, len);
	assert_non_null(s);
	return s;
}

static void put(const char *path, const char *text, mlc_status want, const char *msg)
{
	capture c;
	cap_begin(&c);
	mlc_atomic a;
	mlc_status st = mlc_atomic_open(&a, path, c.d);
	if (st == MLC_OK) {
		fputs(text, a.f);
		st = mlc_atomic_commit(&a, c.d);
	}
	assert_int_equal(st, want);
	if (msg)
		assert_non_null(strstr(cap_text(&c), msg));
	else
		assert_int_equal(mlc_diag_errors(c.d), 0);
	cap_end(&c);
}

static void test_commit_and_replace(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/a.txt", dir);
	put(p, "first\n", MLC_OK, NULL);
	put(p, "second\n", MLC_OK, NULL);
	size_t n;
	char *s = slurp(p, &n);
	assert_string_equal(s, "second\n");
	free(s);
	assert_int_equal(files_in_dir(), 1);
	unlink(p);
}

/* Each failure leaves the previous file as it was and no temp file. */
static void test_failures_keep_previous(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/b.txt", dir);
	put(p, "precious\n", MLC_OK, NULL);
	static const struct {
		int *which, err;
		const char *msg;
	} cases[] = {
		{&fsync_err, ENOSPC, "b.txt: error: cannot write: No space left on device"},
		{&fsync_err, EDQUOT, "b.txt: error: cannot write: Disk quota exceeded"},
		{&fsync_err, EIO, "b.txt: error: cannot write: Input/output error"},
		{&rename_err, EACCES, "b.txt: error: cannot write: Permission denied"},
		{&rename_err, EROFS, "b.txt: error: cannot write: Read-only file system"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		*cases[i].which = cases[i].err;
		put(p, "garbage that must not land\n", MLC_EIO, cases[i].msg);
		*cases[i].which = 0;
		size_t n;
		char *s = slurp(p, &n);
		assert_string_equal(s, "precious\n");
		free(s);
		assert_int_equal(files_in_dir(), 1);
	}
	unlink(p);
}

static void test_missing_folder(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/no/such/c.txt", dir);
	put(p, "x", MLC_EIO, "c.txt: error: cannot write: No such file or directory");
	assert_int_equal(files_in_dir(), 0);
}

/* The safetensors writer goes through the same path. */
static void test_safetensors_keeps_previous(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/w.safetensors", dir);
	float v1[3] = {1, 2, 3}, v2[3] = {4, 5, 6};
	mlc_tensor t = {.name = "w", .rank = 1, .dim = {3}, .data = v1};
	capture c;
	cap_begin(&c);
	assert_int_equal(mlc_safetensors_write(p, &t, 1, NULL, c.d), MLC_OK);
	size_t n1, n2;
	char *before = slurp(p, &n1);
	t.data = v2;
	fsync_err = ENOSPC;
	assert_int_equal(mlc_safetensors_write(p, &t, 1, NULL, c.d), MLC_EIO);
	fsync_err = 0;
	assert_non_null(strstr(cap_text(&c), "w.safetensors: error: cannot write: No space left on device"));
	char *after = slurp(p, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	assert_int_equal(files_in_dir(), 1);
	free(before);
	free(after);
	cap_end(&c);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_and_replace),
		cmocka_unit_test(test_failures_keep_previous),
		cmocka_unit_test(test_missing_folder),
		cmocka_unit_test(test_safetensors_keeps_previous),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
