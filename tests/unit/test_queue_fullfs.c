/* A really full disk: the store lives on a small filesystem made for the test (an 8 MiB ext4 image
 * on a loop device, or an 8 MiB tmpfs when loop devices are unavailable; needs root, skipped
 * otherwise). The disk is filled; sends must then fail with -ENOSPC (a send that still succeeds
 * must be durable: it fit in space the store already had), never report a false success; once space
 * is freed, sends work again on the same open queue, and after a reopen every confirmed send is
 * there. The mount is removed in every case (teardown runs after failed assertions too). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue.h"

struct fx {
    char base[64];
    char mnt[96];
    char img[96];
    bool mounted;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    *state = f;
    if (geteuid() != 0) {
        print_message("not root: cannot mount a small filesystem, skipping\n");
        return 0;
    }
    strcpy(f->base, "/tmp/lfq-fullfs-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->mnt, sizeof f->mnt, "%s/mnt", f->base);
    snprintf(f->img, sizeof f->img, "%s/fs.img", f->base);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    if (sh("truncate -s 8M %s && mkfs.ext4 -q -F -m 0 %s >/dev/null 2>&1", f->img, f->img) == 0 &&
        sh("mount -o loop %s %s 2>/dev/null", f->img, f->mnt) == 0) {
        f->mounted = true;
    } else if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=8m") == 0) {
        f->mounted = true;
    }
    *state = f;
    if (!f->mounted)
        print_message("cannot mount a loop image or a tmpfs here, skipping\n");
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    if (f->mounted && umount2(f->mnt, 0) != 0)
        umount2(f->mnt, MNT_DETACH);
    if (f->base[0])
        sh("rm -rf %s", f->base);
    free(f);
    return 0;
}

struct sent {
    int calls, status;
    uint64_t id;
};

static void on_sent(lf_queue_send_req *req, int status)
{
    struct sent *s = req->data;
    s->calls++;
    s->status = status;
    s->id = req->id;
}

static int send_one(uv_loop_t *loop, lf_queue *q, const char *body, size_t len)
{
    lf_queue_send_req req;
    struct sent s = {0};
    req.data = &s;
    int rc = lf_queue_send(q, &req, "full", body, len, NULL, 0, on_sent);
    if (rc)
        return rc;
    while (!s.calls)
        uv_run(loop, UV_RUN_ONCE);
    return s.status;
}

/* Fills the filesystem with one file, to the last byte. */
static void fill(const char *filler)
{
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char chunk[64 * 1024];
    memset(chunk, 'f', sizeof chunk);
    size_t chunk_len = sizeof chunk;
    for (;;) {
        ssize_t w = write(fd, chunk, chunk_len);
        if (w < 0 && errno == ENOSPC) {
            if (chunk_len == 1)
                break;
            chunk_len /= 2; /* take the last few bytes too */
            continue;
        }
        assert_true(w > 0);
    }
    fsync(fd);
    close(fd);
}

static void full_disk(void **state)
{
    struct fx *f = *state;
    if (!f->mounted)
        skip();
    char path[160], filler[160];
    snprintf(path, sizeof path, "%s/q.db", f->mnt);
    snprintf(filler, sizeof filler, "%s/filler", f->mnt);
    uv_loop_t loop;
    uv_loop_init(&loop);
    lf_queue *q;
    assert_int_equal(lf_queue_open(&loop, path, NULL, &q), 0);
    static char body[16 * 1024];
    memset(body, 'q', sizeof body);
    int confirmed = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(send_one(&loop, q, body, sizeof body), 0);
        confirmed++;
    }
    fill(filler);
    /* Sends until the disk refuses: each is either durable or -ENOSPC, never anything else. */
    int enospc = 0;
    for (int i = 0; i < 2000 && enospc < 20; i++) {
        int rc = send_one(&loop, q, body, sizeof body);
        if (rc == 0)
            confirmed++;
        else if (rc == -ENOSPC)
            enospc++;
        else
            fail_msg("send on a full disk: %s (%d), want -ENOSPC", lf_strerror(rc), rc);
    }
    assert_int_equal(enospc, 20);
    /* Free space: the same open queue works again. */
    assert_int_equal(unlink(filler), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(send_one(&loop, q, body, sizeof body), 0);
        confirmed++;
    }
    /* A restart while the disk is full: closing cannot checkpoint (the database file cannot
     * grow), so the next open must recover the WAL and rebuild its index, a memory-mapped file:
     * on a full disk that must fail cleanly or succeed, never fault (SIGBUS). */
    fill(filler);
    lf_queue_close(q, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < 3; i++) {
        lf_queue_db *db2 = NULL;
        int rc = lf_queue_db_open(path, NULL, &db2);
        if (rc == 0) {
            int src = lf_queue_db_send(db2, "full", body, sizeof body, NULL, 0, NULL, NULL);
            if (src != 0 && src != -ENOSPC)
                fail_msg("send after a restart on a full disk: %s", lf_strerror(src));
            confirmed += src == 0;
            lf_queue_db_close(db2);
        } else if (rc != -ENOSPC) {
            fail_msg("open on a full disk: %s (%d), want 0 or -ENOSPC", lf_strerror(rc), rc);
        }
    }
    assert_int_equal(unlink(filler), 0);
    lf_queue_db *db;
    assert_int_equal(lf_queue_db_open(path, NULL, &db), 0);
    lf_queue_statistics st;
    assert_int_equal(lf_queue_db_stats(db, "full", &st), 0);
    /* Every confirmed send is there; a failed one may exist only if its commit reached the disk
     * after all, which a full disk does not allow, so the counts match exactly. */
    assert_int_equal(st.depth, (uint64_t)confirmed);
    char *report;
    assert_int_equal(lf_queue_db_check(db, &report), 0);
    lf_free(report);
    lf_queue_db_close(db);
    print_message("full disk: %d sends confirmed, 20 refused with -ENOSPC, recovered after freeing"
                  " space\n", confirmed);
}

int main(void)
{
    lf_log_set_level(LF_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_disk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
