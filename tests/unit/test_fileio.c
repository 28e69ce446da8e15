/* lf_fileio: complete writes, atomic durable replacement (and that an injected write or fsync
 * failure leaves the old content and no temporary file), bounded reads, mkdir -p. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_error.h"
#include "lf_failpoint.h"
#include "lf_fileio.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_fileio_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static void atomic_write_replaces_with_exact_mode(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/f", tmpdir);
    mode_t old = umask(077);
    assert_int_equal(lf_write_file_atomic(path, "one", 3, 0640), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(lf_write_file_atomic(path, "second", 6, 0600), 0);
    lf_buf b = LF_BUF_INIT(100);
    assert_int_equal(lf_read_file(path, 100, &b), 0);
    assert_string_equal(lf_buf_cstr(&b), "second");
    lf_buf_free(&b);
    assert_int_equal(count_entries(tmpdir), 1);
}

static void injected_failures_keep_old_content(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/g", tmpdir);
    assert_int_equal(lf_write_file_atomic(path, "old", 3, 0600), 0);

    lf_fail_arm(LF_FAIL_WRITE, 1, false);
    assert_int_equal(lf_write_file_atomic(path, "new", 3, 0600), -ENOSPC);
    lf_fail_disarm(LF_FAIL_WRITE);
    lf_fail_arm(LF_FAIL_FSYNC, 1, false);
    assert_int_equal(lf_write_file_atomic(path, "new", 3, 0600), -EIO);
    lf_fail_disarm(LF_FAIL_FSYNC);

    lf_buf b = LF_BUF_INIT(100);
    assert_int_equal(lf_read_file(path, 100, &b), 0);
    assert_string_equal(lf_buf_cstr(&b), "old");
    lf_buf_free(&b);
    /* no temporary left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", tmpdir);
    assert_int_not_equal(system(cmd), 0);
    /* the directory fsync failing is reported too */
    lf_fail_arm(LF_FAIL_FSYNC, 2, false);
    assert_int_equal(lf_write_file_atomic(path, "new", 3, 0600), -EIO);
    lf_fail_disarm(LF_FAIL_FSYNC);
}

static void write_all_and_read_full(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(lf_write_all(p[1], "abcdef", 6), 0);
    close(p[1]);
    char buf[16];
    assert_int_equal(lf_read_full(p[0], buf, sizeof buf), 6);
    assert_memory_equal(buf, "abcdef", 6);
    close(p[0]);
    assert_int_equal(lf_write_all(-1, "x", 1), -EBADF);
}

static void read_file_is_bounded(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/big", tmpdir);
    char data[40000];
    memset(data, 'z', sizeof data);
    assert_int_equal(lf_write_file_atomic(path, data, sizeof data, 0600), 0);
    lf_buf b = LF_BUF_INIT(1 << 20);
    assert_int_equal(lf_read_file(path, 39999, &b), LF_ELIMIT);
    lf_buf_reset(&b);
    assert_int_equal(lf_read_file(path, 40000, &b), 0);
    assert_int_equal(b.len, 40000);
    lf_buf_free(&b);
    lf_buf small = LF_BUF_INIT(100);
    assert_int_equal(lf_read_file(path, 1 << 20, &small), LF_ELIMIT);
    lf_buf_free(&small);
    assert_int_equal(lf_read_file("/nonexistent/x", 10, &b), -ENOENT);
}

static void mkdir_p_creates_parents(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/a/b/c/", tmpdir);
    assert_int_equal(lf_mkdir_p(path, 0700), 0);
    assert_int_equal(lf_mkdir_p(path, 0700), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char file[512];
    snprintf(file, sizeof file, "%s/a/file", tmpdir);
    assert_int_equal(lf_write_file_atomic(file, "x", 1, 0600), 0);
    snprintf(path, sizeof path, "%s/a/file/sub", tmpdir);
    assert_int_equal(lf_mkdir_p(path, 0700), -ENOTDIR);
    assert_int_equal(lf_fsync_dir(tmpdir), 0);
    char dir[16];
    assert_int_equal(lf_path_dirname("name", dir, sizeof dir), 0);
    assert_string_equal(dir, ".");
    assert_int_equal(lf_path_dirname("/name", dir, sizeof dir), 0);
    assert_string_equal(dir, "/");
    assert_int_equal(lf_path_dirname("a/b/c", dir, sizeof dir), 0);
    assert_string_equal(dir, "a/b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(atomic_write_replaces_with_exact_mode),
        cmocka_unit_test(injected_failures_keep_old_content),
        cmocka_unit_test(write_all_and_read_full),
        cmocka_unit_test(read_file_is_bounded),
        cmocka_unit_test(mkdir_p_creates_parents),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
