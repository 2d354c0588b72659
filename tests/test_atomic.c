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
#include <sys/stat.h>
#include <sys/wait.h>
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

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void assert_text(const char *path, const char *want)
{
	size_t n;
	char *s = slurp(path, &n);
	assert_string_equal(s, want);
	free(s);
}

/* A link planted at the name the temp file used to have (`<path>.tmp.<pid>`)
 * is not written through: the temp name is random and created exclusively. */
static void test_planted_link_at_old_temp_name(void **state)
{
	(void)state;
	char p[128], victim[128], link[160];
	snprintf(p, sizeof p, "%s/w.txt", dir);
	snprintf(victim, sizeof victim, "%s/victim", dir);
	snprintf(link, sizeof link, "%s.tmp.%ld", p, (long)getpid());
	write_text(victim, "victim\n");
	assert_int_equal(symlink(victim, link), 0);
	put(p, "new\n", MLC_OK, NULL);
	assert_text(victim, "victim\n");
	assert_text(p, "new\n");
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	unlink(link);
	unlink(victim);
	unlink(p);
	assert_int_equal(files_in_dir(), 0);
}

/* Targets that are not regular files are refused and left as they are: a
 * symbolic link (neither it nor its target changes), a FIFO (no hang, not
 * replaced), a directory, a character device. */
static void test_refuses_non_regular_targets(void **state)
{
	(void)state;
	char p[128], victim[128];
	snprintf(victim, sizeof victim, "%s/victim", dir);
	write_text(victim, "victim\n");

	snprintf(p, sizeof p, "%s/link", dir);
	assert_int_equal(symlink(victim, p), 0);
	put(p, "x", MLC_EIO, "link: error: cannot write: is a symbolic link; only a regular file is replaced");
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_text(victim, "victim\n");
	unlink(p);

	snprintf(p, sizeof p, "%s/fifo", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	put(p, "x", MLC_EIO, "fifo: error: cannot write: is a FIFO; only a regular file is replaced");
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	unlink(p);

	snprintf(p, sizeof p, "%s/sub", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	put(p, "x", MLC_EIO, "sub: error: cannot write: is a directory; only a regular file is replaced");
	rmdir(p);

	put("/dev/null", "x", MLC_EIO,
	    "/dev/null: error: cannot write: is a character device; only a regular file is replaced");
	assert_int_equal(lstat("/dev/null", &st), 0);
	assert_true(S_ISCHR(st.st_mode));

	unlink(victim);
	assert_int_equal(files_in_dir(), 0);
}

/* The pid of a process that has ended. */
static long dead_pid(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return (long)pid;
}

/* Temp files of a killed writer of the same path go away on the next write;
 * a live process's, another path's, and look-alike names stay. */
static void test_stale_temps_removed(void **state)
{
	(void)state;
	char p[128], stale[192], live[192], other[192], odd[192];
	snprintf(p, sizeof p, "%s/s.txt", dir);
	snprintf(stale, sizeof stale, "%s.tmp.%ld.AbCdEf012345", p, dead_pid());
	snprintf(live, sizeof live, "%s.tmp.%ld.AbCdEf012345", p, (long)getppid());
	snprintf(other, sizeof other, "%s/t.txt.tmp.%ld.AbCdEf012345", dir, dead_pid());
	snprintf(odd, sizeof odd, "%s.tmp.%ld.notours", p, dead_pid());
	const char *keep[] = {live, other, odd};
	write_text(stale, "half\n");
	for (int i = 0; i < 3; i++)
		write_text(keep[i], "keep\n");
	put(p, "whole\n", MLC_OK, NULL);
	assert_int_equal(access(stale, F_OK), -1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(access(keep[i], F_OK), 0);
		unlink(keep[i]);
	}
	assert_text(p, "whole\n");
	unlink(p);
	assert_int_equal(files_in_dir(), 0);
}

/* The file gets the mode any new file would (0666 less the umask). */
static void test_mode_follows_umask(void **state)
{
	(void)state;
	char p[128];
	snprintf(p, sizeof p, "%s/m.txt", dir);
	mode_t old = umask(022);
	put(p, "x", MLC_OK, NULL);
	umask(old);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	unlink(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_and_replace),
		cmocka_unit_test(test_failures_keep_previous),
		cmocka_unit_test(test_missing_folder),
		cmocka_unit_test(test_safetensors_keeps_previous),
		cmocka_unit_test(test_planted_link_at_old_temp_name),
		cmocka_unit_test(test_refuses_non_regular_targets),
		cmocka_unit_test(test_stale_temps_removed),
		cmocka_unit_test(test_mode_follows_umask),
	};
	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
