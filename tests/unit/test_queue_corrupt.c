/* Corrupted stores: a truncated file, a header overwritten with garbage, flipped bytes in b-tree
 * pages, a text file, broken queue invariants. Open reports LF_ECORRUPT (never a crash, never a
 * silent start on a damaged store), and lf_queue_db_check says what is wrong. */
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
#include <sqlite3.h>
#include <uv.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue.h"

struct fx {
    char dir[64];
    char path[128];
    off_t size;
};

static void rm_store(const char *path)
{
    char p[256];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* A closed store with 100 messages of 3000 bytes over two queues (many pages), checkpointed. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/lfq-corrupt-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), 0);
    char body[3000];
    for (int i = 0; i < 100; i++) {
        memset(body, 'a' + i % 26, sizeof body);
        assert_int_equal(lf_queue_db_send(db, i % 2 ? "a" : "b", body, sizeof body, NULL, 0, NULL,
                                          NULL), 0);
    }
    lf_queue_db_close(db);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    f->size = st.st_size;
    assert_true(f->size > 100 * 1024);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_store(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void expect_corrupt_at_open(struct fx *f)
{
    lf_queue_db *db = NULL;
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), LF_ECORRUPT);
    assert_null(db);
    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_queue *q = NULL;
    assert_int_equal(lf_queue_open(&loop, f->path, NULL, &q), LF_ECORRUPT);
    assert_null(q);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* With the open check skipped, the damage must still show in lf_queue_db_check (or at open). */
static void expect_check_reports(struct fx *f)
{
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.skip_open_check = true;
    lf_queue_db *db = NULL;
    int rc = lf_queue_db_open(f->path, &opt, &db);
    if (rc == LF_ECORRUPT)
        return;
    assert_int_equal(rc, 0);
    char *report = NULL;
    assert_int_equal(lf_queue_db_check(db, &report), LF_ECORRUPT);
    assert_non_null(report);
    assert_string_not_equal(report, "ok");
    print_message("check report: %.200s\n", report);
    lf_free(report);
    lf_queue_db_close(db);
}

static void truncated(void **state)
{
    struct fx *f = *state;
    assert_int_equal(truncate(f->path, f->size / 2), 0);
    expect_corrupt_at_open(f);
    expect_check_reports(f);
}

static void truncated_mid_page(void **state)
{
    struct fx *f = *state;
    assert_int_equal(truncate(f->path, f->size - 4096 - 1000), 0);
    expect_corrupt_at_open(f);
}

static void garbage_header(void **state)
{
    struct fx *f = *state;
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    char junk[100];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37 + 11);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
    expect_corrupt_at_open(f);
}

static void flipped_page_bytes(void **state)
{
    struct fx *f = *state;
    /* Flip the b-tree page headers of a few pages in the middle of the file. */
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    long pages = (long)(f->size / 4096);
    for (long p = 2; p < pages; p += pages / 5) {
        unsigned char hdr[16];
        assert_int_equal(pread(fd, hdr, sizeof hdr, p * 4096), (ssize_t)sizeof hdr);
        for (size_t i = 0; i < sizeof hdr; i++)
            hdr[i] ^= 0x5a;
        assert_int_equal(pwrite(fd, hdr, sizeof hdr, p * 4096), (ssize_t)sizeof hdr);
    }
    close(fd);
    expect_corrupt_at_open(f);
    expect_check_reports(f);
}

static void text_file(void **state)
{
    struct fx *f = *state;
    rm_store(f->path);
    FILE *out = fopen(f->path, "w");
    assert_non_null(out);
    for (int i = 0; i < 200; i++)
        fprintf(out, "this is not a database, line %d\n", i);
    fclose(out);
    expect_corrupt_at_open(f);
}

static void broken_invariants(void **state)
{
    struct fx *f = *state;
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "INSERT INTO messages(queue_id, visible_at, sent_ms, body)"
                                  " VALUES(999, 0, 0, x'00');"
                                  "UPDATE messages SET receipt='1.1.x', receive_count=0"
                                  " WHERE id=2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), 0);
    char *report;
    assert_int_equal(lf_queue_db_check(db, &report), LF_ECORRUPT);
    assert_non_null(strstr(report, "messages that belong to no queue: 1"));
    assert_non_null(strstr(report, "messages with a receipt but never delivered: 1"));
    lf_free(report);
    lf_queue_db_close(db);
}

static void missing_table(void **state)
{
    struct fx *f = *state;
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "DROP TABLE dedup", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    expect_corrupt_at_open(f);
}

static void healthy_store_checks_ok(void **state)
{
    struct fx *f = *state;
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), 0);
    char *report;
    assert_int_equal(lf_queue_db_check(db, &report), 0);
    assert_string_equal(report, "ok");
    lf_free(report);
    lf_queue_statistics s;
    assert_int_equal(lf_queue_db_stats(db, "a", &s), 0);
    assert_int_equal(s.depth, 50);
    lf_queue_db_close(db);
    /* an empty file is a new store */
    rm_store(f->path);
    int fd = open(f->path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    assert_int_equal(lf_queue_db_open(f->path, NULL, &db), 0);
    lf_queue_db_close(db);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_mid_page, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_header, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_page_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(text_file, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_invariants, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_table, setup, teardown),
        cmocka_unit_test_setup_teardown(healthy_store_checks_ok, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
