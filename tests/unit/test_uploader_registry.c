/* The uploader's registry (file rows by name and by inode, garbage collection, session states) and
 * the identity rule that keeps a rotated file's session id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "uploader.h"
#include "uploader_registry.h"

static char *db_path(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/lf-ureg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    return path;
}

static void test_file_rows(void **state)
{
    (void)state;
    char *path = db_path();
    lf_ureg *r;
    assert_int_equal(lf_ureg_open(path, &r), 0);
    lf_ureg_file f = {.dev = 1, .ino = 42, .size = 100, .mtime_ns = 5, .shipped_size = 100, .part = 0};
    memset(f.prefix_hash, 0xab, sizeof f.prefix_hash);
    strcpy(f.first_id, "0123456789abcdef0123456789abcdef");
    lf_ureg_file g;
    assert_int_equal(lf_ureg_file_get(r, "w", "a.log", &g), 0);
    assert_int_equal(lf_ureg_file_put(r, "w", "a.log", &f, 10), 0);
    assert_int_equal(lf_ureg_file_get(r, "w", "a.log", &g), 1);
    assert_int_equal(g.ino, 42);
    assert_int_equal(g.size, 100);
    assert_memory_equal(g.prefix_hash, f.prefix_hash, sizeof f.prefix_hash);
    assert_string_equal(g.first_id, f.first_id);
    /* Another watch does not see it; the renamed file is found by inode. */
    assert_int_equal(lf_ureg_file_get(r, "other", "a.log", &g), 0);
    assert_int_equal(lf_ureg_file_by_inode(r, "w", 1, 42, &g), 1);
    assert_int_equal(lf_ureg_file_by_inode(r, "w", 1, 43, &g), 0);
    /* GC removes rows a complete scan did not see. */
    assert_int_equal(lf_ureg_file_put(r, "w", "b.log", &f, 11), 0);
    assert_int_equal(lf_ureg_file_seen(r, "w", "b.log", 12), 0);
    assert_int_equal(lf_ureg_file_gc(r, "w", 12), 1);
    assert_int_equal(lf_ureg_file_get(r, "w", "a.log", &g), 0);
    assert_int_equal(lf_ureg_file_get(r, "w", "b.log", &g), 1);
    lf_ureg_close(r);
    /* Durable across reopen. */
    assert_int_equal(lf_ureg_open(path, &r), 0);
    assert_int_equal(lf_ureg_file_get(r, "w", "b.log", &g), 1);
    lf_ureg_close(r);
    unlink(path);
}

static int failed_seen;
static void on_failed(void *arg, const char *id, const char *relpath, const char *reason)
{
    (void)arg;
    assert_string_equal(id, "bbbb");
    assert_string_equal(relpath, "x.log");
    assert_string_equal(reason, "HTTP 401: unknown site");
    failed_seen++;
}

static int listed;
static void on_listed(void *arg, const char *id, const char *relpath, const char *reason)
{
    (void)arg;
    (void)relpath;
    if (strcmp(id, "cccc") == 0)
        assert_string_equal(reason, "HTTP 401: unknown site");
    listed++;
}

static void test_session_states(void **state)
{
    (void)state;
    char *path = db_path();
    lf_ureg *r;
    assert_int_equal(lf_ureg_open(path, &r), 0);
    char st[16];
    assert_int_equal(lf_ureg_session_state(r, "aaaa", st), 0);
    assert_int_equal(lf_ureg_session_put(r, "aaaa", "w", "y.log", 10, LF_US_OUTBOX, NULL), 0);
    assert_int_equal(lf_ureg_session_put(r, "bbbb", "w", "x.log", 10, LF_US_OUTBOX, NULL), 0);
    assert_int_equal(lf_ureg_session_put(r, "cccc", "w", "z.log", 10, LF_US_OUTBOX, NULL), 0);
    /* State changes keep the source (NULL watch/relpath keep the old values). */
    assert_int_equal(lf_ureg_session_put(r, "aaaa", NULL, NULL, -1, LF_US_SHIPPED, NULL), 0);
    assert_int_equal(lf_ureg_session_put(r, "bbbb", NULL, NULL, -1, LF_US_FAILED,
                                         "HTTP 401: unknown site"), 0);
    assert_int_equal(lf_ureg_session_state(r, "aaaa", st), 1);
    assert_string_equal(st, "shipped");
    char w[32], rel[64];
    assert_int_equal(lf_ureg_session_source(r, "aaaa", w, sizeof w, rel, sizeof rel), 1);
    assert_string_equal(rel, "y.log");
    lf_ureg_counts c;
    assert_int_equal(lf_ureg_counts_get(r, &c), 0);
    assert_int_equal(c.shipped, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.outbox, 1);
    assert_int_equal(c.dropped, 0);
    failed_seen = 0;
    assert_int_equal(lf_ureg_state_each(r, LF_US_FAILED, false, on_failed, NULL), 0);
    assert_int_equal(failed_seen, 1);
    /* an outbox session with the receiver's refusal is listed among the waiting ones; one without
     * a reason is not */
    assert_int_equal(lf_ureg_session_put(r, "cccc", NULL, NULL, -1, LF_US_OUTBOX, "HTTP 401: unknown site"), 0);
    assert_int_equal(lf_ureg_session_put(r, "dddd", "w", "q.log", 10, LF_US_OUTBOX, NULL), 0);
    listed = 0;
    assert_int_equal(lf_ureg_state_each(r, LF_US_OUTBOX, true, on_listed, NULL), 0);
    assert_int_equal(listed, 1);
    listed = 0;
    assert_int_equal(lf_ureg_state_each(r, LF_US_OUTBOX, false, on_listed, NULL), 0);
    assert_int_equal(listed, 2);
    lf_ureg_close(r);
    unlink(path);
}

static void test_identity_strips_rotation_suffix(void **state)
{
    (void)state;
    char out[256];
    lf_uploader_identity("d/app.log.1", "\\.[0-9]+$", out, sizeof out);
    assert_string_equal(out, "d/app.log");
    lf_uploader_identity("d/app.log", "\\.[0-9]+$", out, sizeof out);
    assert_string_equal(out, "d/app.log");
    lf_uploader_identity("d/app.log.12", NULL, out, sizeof out);
    assert_string_equal(out, "d/app.log.12");
    /* A name that is only the suffix keeps it (an identity is never empty). */
    lf_uploader_identity(".1", "\\.[0-9]+$", out, sizeof out);
    assert_string_equal(out, ".1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_rows),
        cmocka_unit_test(test_session_states),
        cmocka_unit_test(test_identity_strips_rotation_suffix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
