/* Start-up recovery: completes uploads that a crash interrupted, so that invariant 1 holds wherever
 * the process died. The upload steps are ordered store -> index -> enqueue -> mark queued:
 *   - a stored object without an index row (died after the store's rename): decrypt it, check it
 *     again like an upload (lf_manifest_check_archive gives its site), index it;
 *   - an index row still "stored" (died before or during the send): send it with the session id
 *     as dedup id (a send that did commit is not duplicated within the dedup window; beyond it the
 *     parser's idempotent load absorbs the copy), then mark it queued. With backend = jetstream the
 *     send is a publish (publish.c) and "queued" means JetStream acknowledged it; a publish that
 *     fails now is left to the periodic sweep.
 * Temporaries of unfinished stores are removed by the store at open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_error.h"
#include "lf_log.h"
#include "lf_manifest.h"
#include "lf_queue.h"
#include "lf_secretstream.h"
#include "lf_zip.h"
#include "receiver.h"

typedef struct recover_ctx {
    const struct lf_receiver_config *cfg;
    lf_store *store;
    lf_index *index;
    const lf_keyring *kr;
    lf_queue_db *qdb;
    lf_jsqueue *jsq;
    unsigned indexed, queued, failed, deferred;
    int error;
} recover_ctx;

static int index_orphan(recover_ctx *c, const char *id, const char *location)
{
    int fd = -1, tmp = -1, rc;
    uint64_t size = 0, plain = 0;
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s/.tmp", c->cfg->store_dir);
    if ((rc = c->store->ops->open(c->store, location, &fd, &size)) != 0)
        return rc;
    tmp = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (tmp < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = lf_secretstream_decrypt_fd(c->kr, fd, tmp, &plain);
    close(fd);
    uint8_t hash[LF_HASH_BYTES];
    if (rc == 0 && lseek(tmp, 0, SEEK_SET) < 0)
        rc = -errno;
    if (rc == 0)
        rc = lf_crypto_hash_fd(tmp, hash, NULL);
    lf_manifest m;
    lf_zip *z = NULL;
    if (rc == 0) {
        lf_zip_limits lim;
        lf_zip_limits_default(&lim);
        lim.max_entries = (size_t)c->cfg->zip_max_entries;
        lim.max_total_size = c->cfg->zip_max_total_size;
        lim.max_entry_ratio = lim.max_total_ratio = c->cfg->zip_max_ratio;
        lf_zip_error zerr;
        rc = lf_zip_open_fd(&z, tmp, &lim, &zerr);
    }
    char err[256] = "";
    if (rc == 0) {
        rc = lf_manifest_check_archive(z, &m, NULL, NULL, err, sizeof err);
        lf_zip_close(z);
    }
    close(tmp);
    if (rc != 0)
        return rc;
    lf_index_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.id, sizeof row.id, "%s", id);
    bool ok = strcmp(m.session_id, id) == 0;
    snprintf(row.site, sizeof row.site, "%s", m.site);
    lf_manifest_free(&m);
    if (!ok)
        return LF_ECORRUPT;
    row.size = plain;
    row.stored_size = size;
    lf_crypto_hex_encode(row.hash, hash, sizeof hash);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    row.received_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    snprintf(row.backend, sizeof row.backend, "%s", c->store->ops->name);
    snprintf(row.location, sizeof row.location, "%s", location);
    /* on JetStream the id must be claimed before it is published (upload.c): "claiming" rows are
     * claimed, or marked foreign, by the settling at start and then published by the sweep */
    snprintf(row.status, sizeof row.status, "%s", c->jsq ? "claiming" : "stored");
    return lf_index_insert(c->index, &row);
}

static int on_object(void *arg, const char *id, const char *location)
{
    recover_ctx *c = arg;
    lf_index_row row;
    int rc = lf_index_get(c->index, id, &row);
    if (rc == 0)
        return 0;
    if (rc != -ENOENT) {
        c->error = rc;
        return 1;
    }
    rc = index_orphan(c, id, location);
    if (rc == 0) {
        c->indexed++;
        LF_INFO("recovery", "indexed %s (stored before a crash, not yet indexed)", location);
    } else if (rc == -ENOSPC || rc == -EIO || rc == -ENOMEM) {
        c->error = rc;
        return 1;
    } else {
        c->failed++;
        LF_ERROR("recovery", "stored object %s cannot be indexed: %s (left in place)", location, lf_strerror(rc));
    }
    return 0;
}

static int on_unqueued(void *arg, const lf_index_row *row)
{
    recover_ctx *c = arg;
    uint64_t mid = 0;
    bool dup = false;
    int rc;
    if (c->jsq) {
        lf_buf err = LF_BUF_INIT(256);
        rc = lf_receiver_js_publish_id(c->jsq, row->id, &err);
        if (rc != 0) {
            LF_WARN("recovery", "cannot publish %s now: %s (the sweep publishes it)", row->id, lf_buf_cstr(&err));
            lf_buf_free(&err);
            c->deferred++;
            return 1; /* the connection is away: the rest waits for the sweep too */
        }
        lf_buf_free(&err);
    } else {
        rc = lf_queue_db_send(c->qdb, c->cfg->queue_name, row->id, strlen(row->id), row->id, 0, &mid, &dup);
    }
    if (rc == 0)
        rc = lf_index_set_status(c->index, row->id, "queued");
    if (rc == -ENOSPC || rc == -EIO || rc == -EBUSY) {
        /* Not fatal: a row still marked stored either had its queue send committed before the 2xx
         * (so it is on the queue already) or never got a 2xx (its uploader retries, and the
         * duplicate path enqueues it). The next start tries again. */
        LF_WARN("recovery", "cannot queue %s now: %s (left for the next start or a re-upload)", row->id,
                lf_strerror(rc));
        c->deferred++;
        return 0;
    }
    if (rc != 0) {
        LF_ERROR("recovery", "cannot queue %s: %s", row->id, lf_strerror(rc));
        c->error = rc;
        return 1;
    }
    c->queued++;
    return 0;
}

int lf_receiver_recover(const struct lf_receiver_config *cfg, lf_store *store, lf_index *index,
                        const lf_receiver_keys *keys, lf_jsqueue *jsq)
{
    recover_ctx c = {.cfg = cfg, .store = store, .index = index, .kr = keys->current, .jsq = jsq};
    int rc = store->ops->scan(store, on_object, &c);
    if (rc == 0)
        rc = c.error;
    if (rc != 0) {
        LF_ERROR("recovery", "scanning the store: %s", lf_strerror(rc));
        return rc;
    }
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.max_receives = (uint32_t)cfg->max_receives;
    rc = jsq ? 0 : lf_queue_db_open(cfg->queue_path, &opt, &c.qdb);
    if (rc != 0) {
        LF_ERROR("recovery", "cannot open the queue store %s: %s%s", cfg->queue_path, lf_strerror(rc),
                 rc == LF_ECORRUPT || rc == LF_EFORMAT
                     ? " (the file is damaged or not a queue store: restore it from a backup, or move it aside and "
                       "run `logferry-receiver sessions requeue` so the next start queues every stored session "
                       "again)"
                     : "");
        return rc;
    }
    /* batches, since the callback marks rows queued */
    for (;;) {
        unsigned before = c.queued;
        rc = lf_index_each_status(index, "stored", 1000, on_unqueued, &c);
        if (rc == 0)
            rc = c.error;
        if (rc != 0 || c.queued == before)
            break;
    }
    if (c.qdb)
        lf_queue_db_close(c.qdb);
    if (rc == 0 && (c.indexed || c.queued || c.failed || c.deferred))
        LF_INFO("recovery", "%u sessions indexed, %u queued, %u unreadable, %u left unqueued for now", c.indexed,
                c.queued, c.failed, c.deferred);
    return rc;
}
