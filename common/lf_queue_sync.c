/* The synchronous API (command-line tools, tests): each call is one committed transaction. */
#include <errno.h>

#include "lf_queue_store.h"

int lf_queue_db_open(const char *path, const lf_queue_options *opt, lf_queue_db **out)
{
    return lf_queue_store_open(path, opt, out);
}

void lf_queue_db_close(lf_queue_db *db)
{
    lf_queue_store_close(db);
}

/* Commits when the operation succeeded; otherwise rolls back whatever it had done. */
static int finish(lf_queue_db *db, int rc, bool write)
{
    if (db->fatal || rc < 0) {
        int code = db->fatal ? db->fatal : rc;
        lf_queue_store_rollback(db);
        return code;
    }
    if (write) {
        int m = lf_queue_store_maintain(db, false);
        if (m < 0) {
            lf_queue_store_rollback(db);
            return m;
        }
    }
    return lf_queue_store_commit(db);
}

int lf_queue_db_send(lf_queue_db *db, const char *queue, const void *body, size_t len,
                     const char *dedup_id, uint64_t delay_ms, uint64_t *id, bool *duplicate)
{
    uint64_t id_local;
    bool dup_local;
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    rc = lf_queue_store_send(db, queue, body, len, dedup_id, delay_ms, id ? id : &id_local,
                             duplicate ? duplicate : &dup_local);
    return finish(db, rc, true);
}

int lf_queue_db_receive(lf_queue_db *db, const char *queue, uint32_t max, uint64_t visibility_ms,
                        lf_queue_msg **msgs, size_t *n)
{
    uint64_t next;
    *msgs = NULL;
    *n = 0;
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    rc = lf_queue_store_receive(db, queue, max, visibility_ms, msgs, n, &next);
    rc = finish(db, rc, true);
    if (rc) {
        lf_queue_msgs_free(*msgs, *n);
        *msgs = NULL;
        *n = 0;
    }
    return rc;
}

int lf_queue_db_ack(lf_queue_db *db, const char *queue, const char *receipt)
{
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    return finish(db, lf_queue_store_ack(db, queue, receipt), true);
}

int lf_queue_db_extend(lf_queue_db *db, const char *queue, const char *receipt,
                       uint64_t visibility_ms)
{
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    return finish(db, lf_queue_store_extend(db, queue, receipt, visibility_ms), true);
}

int lf_queue_db_nack(lf_queue_db *db, const char *queue, const char *receipt, uint64_t delay_ms)
{
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    return finish(db, lf_queue_store_nack(db, queue, receipt, delay_ms), true);
}

int lf_queue_db_redrive(lf_queue_db *db, const char *queue, uint64_t max, uint64_t *moved)
{
    uint64_t local;
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    rc = lf_queue_store_redrive(db, queue, max, moved ? moved : &local);
    rc = finish(db, rc, true);
    if (rc && moved)
        *moved = 0;
    return rc;
}

int lf_queue_db_stats(lf_queue_db *db, const char *queue, lf_queue_statistics *out)
{
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    return finish(db, lf_queue_store_stats(db, queue, out), false);
}

int lf_queue_db_peek(lf_queue_db *db, const char *queue, uint32_t max, lf_queue_msg **msgs,
                     size_t *n)
{
    int rc = lf_queue_store_begin(db);
    if (rc)
        return rc;
    rc = finish(db, lf_queue_store_peek(db, queue, max, msgs, n), false);
    if (rc) {
        lf_queue_msgs_free(*msgs, *n);
        *msgs = NULL;
        *n = 0;
    }
    return rc;
}

int lf_queue_db_list(lf_queue_db *db, char ***names, size_t *n)
{
    if (db->broken) {
        int rc = lf_queue_store_reopen(db);
        if (rc)
            return rc;
    }
    return lf_queue_store_list(db, names, n);
}

int lf_queue_db_check(lf_queue_db *db, char **report)
{
    if (db->broken) {
        int rc = lf_queue_store_reopen(db);
        if (rc)
            return rc;
    }
    return lf_queue_store_check(db, report);
}
