/* The queue operations on the store (send, receive, ack, extend, nack, redrive, stats, peek, list).
 * Each runs inside the caller's transaction; see lf_queue_store.h for the error rules. Counters are
 * added only once an operation can no longer fail logically, so undoing a failed operation's
 * savepoint never leaves counts behind. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_queue_store.h"

static uint64_t rng_next(lf_queue_db *db)
{
    /* xorshift128+: receipts only need to differ between deliveries and be hard to guess by
     * accident; the receive count in the receipt already makes each delivery's receipt unique. */
    uint64_t s1 = db->rng[0];
    const uint64_t s0 = db->rng[1];
    db->rng[0] = s0;
    s1 ^= s1 << 23;
    db->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return db->rng[1] + s0;
}

/* "<id>.<receive count>.<16 hex digits>" -> id; -EINVAL when malformed. */
static int receipt_id(const char *receipt, int64_t *id)
{
    if (!receipt || strnlen(receipt, LF_QUEUE_RECEIPT_MAX) >= LF_QUEUE_RECEIPT_MAX)
        return -EINVAL;
    if (receipt[0] < '1' || receipt[0] > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(receipt, &end, 10);
    if (errno || *end != '.' || v > INT64_MAX)
        return -EINVAL;
    *id = (int64_t)v;
    return 0;
}

static int dlq_name(const char *queue, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s.dlq", queue);
    return n > 0 && (size_t)n < cap ? 0 : -EINVAL;
}

int lf_queue_store_send(lf_queue_db *db, const char *queue, const void *body, size_t len,
                        const char *dedup_id, uint64_t delay_ms, uint64_t *id, bool *duplicate)
{
    int rc = lf_queue_check_send_args(&db->opt, queue, len, dedup_id, delay_ms);
    if (rc)
        return rc;
    *duplicate = false;
    uint64_t now = lf_queue_store_now(db);
    int64_t qid;
    rc = lf_queue_store_queue_id(db, queue, true, &qid);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if (dedup_id) {
        st = db->st[ST_DEDUP_GET];
        sqlite3_bind_int64(st, 1, qid);
        sqlite3_bind_text(st, 2, dedup_id, -1, SQLITE_STATIC);
        rc = lf_queue_store_step(db, st);
        if (rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 1) > now) {
            *id = (uint64_t)sqlite3_column_int64(st, 0);
            *duplicate = true;
            sqlite3_reset(st);
            return 0;
        }
        sqlite3_reset(st);
        if (rc < 0)
            return rc;
    }
    st = db->st[ST_MSG_INSERT];
    sqlite3_bind_int64(st, 1, qid);
    sqlite3_bind_int64(st, 2, (int64_t)(now + delay_ms));
    sqlite3_bind_int64(st, 3, (int64_t)now);
    sqlite3_bind_blob64(st, 4, len ? body : "", len, SQLITE_STATIC);
    rc = lf_queue_store_step(db, st);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    int64_t mid = sqlite3_last_insert_rowid(db->db);
    if (dedup_id) {
        st = db->st[ST_DEDUP_PUT];
        sqlite3_bind_int64(st, 1, qid);
        sqlite3_bind_text(st, 2, dedup_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, mid);
        sqlite3_bind_int64(st, 4, (int64_t)(now + db->opt.dedup_window_ms));
        rc = lf_queue_store_step(db, st);
        sqlite3_reset(st);
        if (rc < 0)
            return rc;
    }
    *id = (uint64_t)mid;
    return lf_queue_store_count(db, qid, C_SENT, 1);
}

void lf_queue_msgs_free(lf_queue_msg *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        lf_free(msgs[i].body);
    lf_free(msgs);
}

/* Copies the current row's body (column col) into m; -ENOMEM. */
static int copy_body(sqlite3_stmt *st, int col, lf_queue_msg *m)
{
    const void *b = sqlite3_column_blob(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    m->body = lf_malloc(len + 1);
    if (!m->body)
        return -ENOMEM;
    if (len)
        memcpy(m->body, b, len);
    ((char *)m->body)[len] = '\0';
    m->len = len;
    return 0;
}

static int next_visible(lf_queue_db *db, int64_t qid, uint64_t now, uint64_t *out)
{
    sqlite3_stmt *st = db->st[ST_NEXT_VISIBLE];
    sqlite3_bind_int64(st, 1, qid);
    sqlite3_bind_int64(st, 2, (int64_t)now);
    int rc = lf_queue_store_step(db, st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

struct picked {
    int64_t id;
    uint32_t count;
    bool was_in_flight;
    bool dead;
};

int lf_queue_store_receive(lf_queue_db *db, const char *queue, uint32_t max, uint64_t visibility_ms,
                           lf_queue_msg **msgs_out, size_t *n_out, uint64_t *next_visible_out)
{
    *msgs_out = NULL;
    *n_out = 0;
    *next_visible_out = 0;
    if (!lf_queue_name_valid(queue) || max == 0 || max > LF_QUEUE_RECEIVE_MAX ||
        visibility_ms == 0 || visibility_ms > LF_QUEUE_VISIBILITY_MAX)
        return -EINVAL;
    uint64_t now = lf_queue_store_now(db);
    int64_t qid, dlq_id = 0;
    int rc = lf_queue_store_queue_id(db, queue, false, &qid);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    bool dead_letters = db->opt.max_receives > 0 && !lf_queue_store_is_dlq(queue);
    lf_queue_msg *msgs = lf_calloc(max, sizeof *msgs);
    struct picked *picked = lf_calloc(max, sizeof *picked);
    if (!msgs || !picked) {
        lf_free(msgs);
        lf_free(picked);
        return -ENOMEM;
    }
    size_t n = 0;
    uint64_t received = 0, expired = 0, dead = 0;
    for (;;) {
        /* Pick first, update after: the updates move rows within the index being scanned. */
        uint32_t want = max - (uint32_t)n, got = 0;
        size_t first = n;
        sqlite3_stmt *st = db->st[ST_RECV_PICK];
        sqlite3_bind_int64(st, 1, qid);
        sqlite3_bind_int64(st, 2, (int64_t)now);
        sqlite3_bind_int64(st, 3, want);
        size_t npicked = 0;
        while ((rc = lf_queue_store_step(db, st)) == SQLITE_ROW) {
            struct picked *p = &picked[npicked++];
            got++;
            p->id = sqlite3_column_int64(st, 0);
            p->count = (uint32_t)sqlite3_column_int64(st, 1);
            p->was_in_flight = sqlite3_column_int(st, 2) != 0;
            p->dead = dead_letters && p->count >= db->opt.max_receives;
            if (p->dead)
                continue;
            lf_queue_msg *m = &msgs[n++];
            m->id = (uint64_t)p->id;
            m->sent_ms = (uint64_t)sqlite3_column_int64(st, 3);
            if (copy_body(st, 4, m) < 0) {
                rc = -ENOMEM;
                break;
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            goto fail;
        size_t k = first;
        for (size_t i = 0; i < npicked; i++) {
            struct picked *p = &picked[i];
            if (p->dead) {
                if (!dlq_id) {
                    char name[LF_QUEUE_NAME_MAX + 16];
                    rc = dlq_name(queue, name, sizeof name);
                    if (rc == 0)
                        rc = lf_queue_store_queue_id(db, name, true, &dlq_id);
                    if (rc)
                        goto fail;
                }
                st = db->st[ST_DEAD_MOVE];
                sqlite3_bind_int64(st, 1, p->id);
                sqlite3_bind_int64(st, 2, dlq_id);
                sqlite3_bind_int64(st, 3, (int64_t)now);
                rc = lf_queue_store_step(db, st);
                sqlite3_reset(st);
                if (rc < 0)
                    goto fail;
                dead++;
                continue;
            }
            lf_queue_msg *m = &msgs[k++];
            m->receive_count = p->count + 1;
            m->visible_at_ms = now + visibility_ms;
            m->in_flight = true;
            snprintf(m->receipt, sizeof m->receipt, "%" PRId64 ".%" PRIu32 ".%016" PRIx64, p->id,
                     m->receive_count, rng_next(db));
            st = db->st[ST_RECV_UPDATE];
            sqlite3_bind_int64(st, 1, p->id);
            sqlite3_bind_int64(st, 2, (int64_t)m->visible_at_ms);
            sqlite3_bind_text(st, 3, m->receipt, -1, SQLITE_STATIC);
            rc = lf_queue_store_step(db, st);
            sqlite3_reset(st);
            if (rc < 0)
                goto fail;
            received++;
            if (p->was_in_flight)
                expired++;
        }
        /* Go on only when dead letters took places in a full pick. */
        if (got < want || n == max)
            break;
    }
    if (n == 0) {
        rc = next_visible(db, qid, now, next_visible_out);
        if (rc)
            goto fail;
    }
    rc = received ? lf_queue_store_count(db, qid, C_RECEIVED, received) : 0;
    rc = rc == 0 && expired ? lf_queue_store_count(db, qid, C_EXPIRED, expired) : rc;
    rc = rc == 0 && dead ? lf_queue_store_count(db, qid, C_DEAD, dead) : rc;
    if (rc)
        goto fail;
    lf_free(picked);
    if (n == 0) {
        lf_free(msgs);
        msgs = NULL;
    }
    *msgs_out = msgs;
    *n_out = n;
    return 0;
fail:
    lf_queue_msgs_free(msgs, n);
    lf_free(picked);
    return rc;
}

/* Runs ST_ACK, ST_EXTEND or ST_NACK for a receipt; 0 when a row matched, -ENOENT otherwise. */
static int by_receipt(lf_queue_db *db, int which, const char *queue, const char *receipt,
                      uint64_t visible_at, int64_t *qid_out)
{
    int64_t id, qid;
    int rc = receipt_id(receipt, &id);
    if (rc)
        return rc;
    if (!lf_queue_name_valid(queue))
        return -EINVAL;
    rc = lf_queue_store_queue_id(db, queue, false, &qid);
    if (rc)
        return rc;
    sqlite3_stmt *st = db->st[which];
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, qid);
    sqlite3_bind_text(st, 3, receipt, -1, SQLITE_STATIC);
    if (which != ST_ACK)
        sqlite3_bind_int64(st, 4, (int64_t)visible_at);
    rc = lf_queue_store_step(db, st);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    *qid_out = qid;
    return sqlite3_changes(db->db) == 1 ? 0 : -ENOENT;
}

int lf_queue_store_ack(lf_queue_db *db, const char *queue, const char *receipt)
{
    int64_t qid;
    int rc = by_receipt(db, ST_ACK, queue, receipt, 0, &qid);
    return rc ? rc : lf_queue_store_count(db, qid, C_ACKED, 1);
}

int lf_queue_store_extend(lf_queue_db *db, const char *queue, const char *receipt,
                          uint64_t visibility_ms)
{
    if (visibility_ms > LF_QUEUE_VISIBILITY_MAX)
        return -EINVAL;
    int64_t qid;
    return by_receipt(db, ST_EXTEND, queue, receipt, lf_queue_store_now(db) + visibility_ms, &qid);
}

int lf_queue_store_nack(lf_queue_db *db, const char *queue, const char *receipt, uint64_t delay_ms)
{
    if (delay_ms > LF_QUEUE_DELAY_MAX)
        return -EINVAL;
    int64_t qid;
    int rc = by_receipt(db, ST_NACK, queue, receipt, lf_queue_store_now(db) + delay_ms, &qid);
    return rc ? rc : lf_queue_store_count(db, qid, C_NACKED, 1);
}

int lf_queue_store_redrive(lf_queue_db *db, const char *queue, uint64_t max, uint64_t *moved)
{
    *moved = 0;
    if (!lf_queue_name_valid(queue) || lf_queue_store_is_dlq(queue) || max > INT64_MAX)
        return -EINVAL;
    char name[LF_QUEUE_NAME_MAX + 16];
    int rc = dlq_name(queue, name, sizeof name);
    if (rc)
        return rc;
    int64_t dlq_id, qid;
    rc = lf_queue_store_queue_id(db, name, false, &dlq_id);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = lf_queue_store_queue_id(db, queue, true, &qid);
    if (rc)
        return rc;
    sqlite3_stmt *st = db->st[ST_REDRIVE];
    sqlite3_bind_int64(st, 1, dlq_id);
    sqlite3_bind_int64(st, 2, qid);
    sqlite3_bind_int64(st, 3, (int64_t)lf_queue_store_now(db));
    sqlite3_bind_int64(st, 4, max ? (int64_t)max : -1);
    rc = lf_queue_store_step(db, st);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    *moved = (uint64_t)sqlite3_changes(db->db);
    return *moved ? lf_queue_store_count(db, qid, C_REDRIVEN, *moved) : 0;
}

/* Depth counts and totals of one queue id into out. */
static int queue_figures(lf_queue_db *db, int64_t qid, uint64_t now, lf_queue_statistics *out)
{
    sqlite3_stmt *st = db->st[ST_STATS];
    sqlite3_bind_int64(st, 1, qid);
    sqlite3_bind_int64(st, 2, (int64_t)now);
    int rc = lf_queue_store_step(db, st);
    if (rc == SQLITE_ROW) {
        out->depth = (uint64_t)sqlite3_column_int64(st, 0);
        out->in_flight = (uint64_t)sqlite3_column_int64(st, 1);
        out->delayed = (uint64_t)sqlite3_column_int64(st, 2);
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            uint64_t oldest = (uint64_t)sqlite3_column_int64(st, 3);
            out->oldest_age_ms = now > oldest ? now - oldest : 0;
        }
    }
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    st = db->st[ST_STATS_TOTALS];
    sqlite3_bind_int64(st, 1, qid);
    rc = lf_queue_store_step(db, st);
    if (rc == SQLITE_ROW) {
        uint64_t *f[] = {&out->sent,          &out->received, &out->acked,
                         &out->nacked,        &out->dead_lettered, &out->redriven,
                         &out->expired_redeliveries, &out->dlq_purged};
        for (int i = 0; i < 8; i++)
            *f[i] = (uint64_t)sqlite3_column_int64(st, i);
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int lf_queue_store_stats(lf_queue_db *db, const char *queue, lf_queue_statistics *out)
{
    memset(out, 0, sizeof *out);
    if (!lf_queue_name_valid(queue))
        return -EINVAL;
    uint64_t now = lf_queue_store_now(db);
    int64_t qid;
    int rc = lf_queue_store_queue_id(db, queue, false, &qid);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = queue_figures(db, qid, now, out);
    if (rc)
        return rc;
    out->exists = true;
    out->dlq_purged = 0; /* purges are counted on the dead-letter queue itself */
    if (lf_queue_store_is_dlq(queue))
        return 0;
    char name[LF_QUEUE_NAME_MAX + 16];
    if (dlq_name(queue, name, sizeof name))
        return 0;
    rc = lf_queue_store_queue_id(db, name, false, &qid);
    if (rc == -ENOENT)
        return 0;
    lf_queue_statistics dlq = {0};
    if (rc == 0)
        rc = queue_figures(db, qid, now, &dlq);
    if (rc)
        return rc;
    out->dlq_depth = dlq.depth + dlq.in_flight + dlq.delayed;
    out->dlq_purged = dlq.dlq_purged;
    return 0;
}

int lf_queue_store_peek(lf_queue_db *db, const char *queue, uint32_t max, lf_queue_msg **msgs_out,
                        size_t *n_out)
{
    *msgs_out = NULL;
    *n_out = 0;
    if (!lf_queue_name_valid(queue) || max == 0 || max > LF_QUEUE_RECEIVE_MAX)
        return -EINVAL;
    uint64_t now = lf_queue_store_now(db);
    int64_t qid;
    int rc = lf_queue_store_queue_id(db, queue, false, &qid);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    lf_queue_msg *msgs = lf_calloc(max, sizeof *msgs);
    if (!msgs)
        return -ENOMEM;
    size_t n = 0;
    sqlite3_stmt *st = db->st[ST_PEEK];
    sqlite3_bind_int64(st, 1, qid);
    sqlite3_bind_int64(st, 2, max);
    sqlite3_bind_int64(st, 3, (int64_t)now);
    while ((rc = lf_queue_store_step(db, st)) == SQLITE_ROW) {
        lf_queue_msg *m = &msgs[n];
        m->id = (uint64_t)sqlite3_column_int64(st, 0);
        m->receive_count = (uint32_t)sqlite3_column_int64(st, 1);
        m->sent_ms = (uint64_t)sqlite3_column_int64(st, 2);
        m->visible_at_ms = (uint64_t)sqlite3_column_int64(st, 3);
        m->in_flight = sqlite3_column_int(st, 4) != 0;
        if (copy_body(st, 5, m) < 0) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        lf_queue_msgs_free(msgs, n);
        return rc;
    }
    if (n == 0) {
        lf_free(msgs);
        msgs = NULL;
    }
    *msgs_out = msgs;
    *n_out = n;
    return 0;
}

void lf_queue_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        lf_free(names[i]);
    lf_free(names);
}

int lf_queue_store_list(lf_queue_db *db, char ***names_out, size_t *n_out)
{
    *names_out = NULL;
    *n_out = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, "SELECT name FROM queues ORDER BY name", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return lf_queue_store_fail(db, rc, "list queues");
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((rc = lf_queue_store_step(db, st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = lf_realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = lf_strdup((const char *)sqlite3_column_text(st, 0));
        if (!names[n]) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        lf_queue_names_free(names, n);
        return rc;
    }
    *names_out = names;
    *n_out = n;
    return 0;
}
