/* lf_watched_file: a change is seen when a file appears, is replaced by rename (even with the same
 * size and within the same second), is rewritten in place, or goes away; nothing is seen when it
 * stays as it was taken; the stat remembered is that of the content read. */
#include <errno.h>
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
#include "lf_fileio.h"
#include "lf_watched_file.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lf_watched_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Reads the file and takes it, as a loader does after accepting the content. */
static void read_and_take(lf_watched_file *w, const char *want)
{
    lf_buf b = LF_BUF_INIT(1024);
    struct stat st;
    int rc = lf_watched_file_read(w, 1024, &b, &st);
    if (want) {
        assert_int_equal(rc, 0);
        assert_string_equal(lf_buf_cstr(&b), want);
    } else {
        assert_int_equal(rc, -ENOENT);
    }
    lf_watched_file_take(w, &st);
    lf_buf_free(&b);
}

static void changes_are_seen_and_sameness_is_not(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/table", tmpdir);
    lf_watched_file w;
    assert_int_equal(lf_watched_file_init(&w, path), 0);
    struct stat now;
    /* missing and nothing taken: no change */
    assert_false(lf_watched_file_changed(&w, &now));
    read_and_take(&w, NULL);
    assert_false(lf_watched_file_changed(&w, &now));

    assert_int_equal(lf_write_file_atomic(path, "aaaa\n", 5, 0600), 0);
    assert_true(lf_watched_file_changed(&w, &now));
    read_and_take(&w, "aaaa\n");
    assert_false(lf_watched_file_changed(&w, &now));
    assert_false(lf_watched_file_changed(&w, &now));

    /* replaced by rename with content of the same size: a new inode */
    assert_int_equal(lf_write_file_atomic(path, "bbbb\n", 5, 0600), 0);
    assert_true(lf_watched_file_changed(&w, &now));
    /* not taken (say the content failed to load): still a change next time */
    assert_true(lf_watched_file_changed(&w, &now));
    read_and_take(&w, "bbbb\n");
    assert_false(lf_watched_file_changed(&w, &now));

    /* rewritten in place with another size */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("cc\n", f);
    fclose(f);
    assert_true(lf_watched_file_changed(&w, &now));
    read_and_take(&w, "cc\n");

    /* gone: a change, then missing is the state taken */
    assert_int_equal(unlink(path), 0);
    assert_true(lf_watched_file_changed(&w, &now));
    read_and_take(&w, NULL);
    assert_false(lf_watched_file_changed(&w, &now));
    lf_watched_file_close(&w);
}

static void reads_are_bounded_and_errors_are_changes(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/big", tmpdir);
    char text[2048];
    memset(text, 'x', sizeof text);
    assert_int_equal(lf_write_file_atomic(path, text, sizeof text, 0600), 0);
    lf_watched_file w;
    assert_int_equal(lf_watched_file_init(&w, path), 0);
    lf_buf b = LF_BUF_INIT(4096);
    struct stat st;
    assert_int_equal(lf_watched_file_read(&w, 1024, &b, &st), LF_ELIMIT);
    assert_int_equal(b.len, 0);
    lf_watched_file_close(&w);

    /* a path that cannot be stat'ed for another reason than ENOENT is reported as a change, so
     * that the loader meets the error and logs it */
    char below[600];
    snprintf(below, sizeof below, "%s/not-a-dir", path);
    assert_int_equal(lf_watched_file_init(&w, below), 0);
    struct stat now;
    assert_true(lf_watched_file_changed(&w, &now));
    assert_int_equal(lf_watched_file_read(&w, 1024, &b, &st), -ENOTDIR);
    lf_watched_file_close(&w);
    lf_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(changes_are_seen_and_sameness_is_not),
        cmocka_unit_test(reads_are_bounded_and_errors_are_changes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
