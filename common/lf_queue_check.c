/* Store upkeep: the integrity check (SQLite's own plus the queue's invariants) and the periodic
 * purge of dead letters past their retention and of expired deduplication ids. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_buf.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue_store.h"

#define COMP "queue"
#define MAINTENANCE_EVERY_MS 10000

/* Invariants: each query counts the rows that break one. */
static const struct {
    const char *sql;
    const char *what;
} invariants[] = {
    {"SELECT COUNT(*) FROM messages WHERE queue_id NOT IN (SELECT id FROM queues)",
     "messages that belong to no queue"},
    {"SELECT COUNT(*) FROM messages WHERE receive_count<0 OR visible_at<0 OR sent_ms<0"
     " OR typeof(visible_at)!='integer' OR typeof(sent_ms)!='integer'",
     "messages with invalid times or receive counts"},
    {"SELECT COUNT(*) FROM messages WHERE receipt IS NOT NULL AND receive_count=0",
     "messages with a receipt but never delivered"},
    {"SELECT COUNT(*) FROM messages WHERE typeof(body)!='blob'", "messages without a body"},
    {"SELECT COUNT(*) FROM messages m JOIN queues q ON q.id=m.queue_id"
     " WHERE (m.dead_ms IS NULL) = (q.name GLOB '*.dlq')",
     "messages whose dead-letter time does not match their queue"},
    {"SELECT COUNT(*) FROM messages WHERE visible_at > (SELECT value FROM meta WHERE"
     " key='clock_ms') + 2*43200000 + 86400000",
     "messages invisible for longer than any timeout allows"},
    {"SELECT COUNT(*) FROM queues WHERE sent<0 OR received<0 OR acked<0 OR nacked<0"
     " OR dead_lettered<0 OR redriven<0 OR expired<0 OR purged<0",
     "queues with negative counters"},
    {"SELECT COUNT(*) FROM queues WHERE name='' OR length(name)>124 OR name GLOB '*[^A-Za-z0-9._-]*'",
     "queues with invalid names"},
    {"SELECT COUNT(*) FROM dedup WHERE queue_id NOT IN (SELECT id FROM queues)",
     "deduplication ids of no queue"},
    {"SELECT (SELECT COUNT(*) FROM meta WHERE key='clock_ms' AND typeof(value)='integer')!=1",
     "store clock missing"},
    {"SELECT COALESCE((SELECT MAX(id) FROM messages) >"
     " (SELECT seq FROM sqlite_sequence WHERE name='messages'), 0)",
     "message ids above the id sequence"},
};

/* Runs a counting query; 0 and *out, or a code (the query itself failing is a finding too). */
static int count_query(lf_queue_db *db, const char *sql, int64_t *out, lf_buf *report)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        lf_buf_msgf(report, "query failed (%s): %s\n", sqlite3_errmsg(db->db), sql);
        rc = lf_queue_store_errcode(rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int lf_queue_store_check(lf_queue_db *db, char **report_out)
{
    *report_out = NULL;
    lf_buf report = LF_BUF_INIT(64 * 1024);
    int problems = 0, rc;
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db->db, "PRAGMA integrity_check(20)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *row = (const char *)sqlite3_column_text(st, 0);
            if (row && strcmp(row, "ok") == 0)
                continue;
            lf_buf_msgf(&report, "sqlite: %s\n", row ? row : "?");
            problems++;
        }
    }
    if (rc != SQLITE_DONE) {
        lf_buf_msgf(&report, "integrity check failed: %s\n", sqlite3_errmsg(db->db));
        problems++;
    }
    sqlite3_finalize(st);
    int64_t version = -1;
    if (count_query(db, "PRAGMA user_version", &version, &report) != 0 ||
        version != LF_QUEUE_SCHEMA_VERSION) {
        lf_buf_msgf(&report, "schema version is %" PRId64 ", expected %d\n", version,
                       LF_QUEUE_SCHEMA_VERSION);
        problems++;
    }
    for (size_t i = 0; i < sizeof invariants / sizeof invariants[0]; i++) {
        int64_t bad = 0;
        if (count_query(db, invariants[i].sql, &bad, &report) != 0) {
            problems++;
            continue;
        }
        if (bad) {
            lf_buf_msgf(&report, "%s: %" PRId64 "\n", invariants[i].what, bad);
            problems++;
        }
    }
    if (problems == 0)
        lf_buf_msgf(&report, "ok");
    else if (report.len && report.data[report.len - 1] == '\n')
        lf_buf_truncate(&report, report.len - 1);
    if (!report.data) {
        lf_buf_free(&report);
        return -ENOMEM;
    }
    *report_out = lf_strdup(report.data);
    lf_buf_free(&report);
    if (!*report_out)
        return -ENOMEM;
    if (problems)
        LF_ERROR(COMP, "%s: check found problems: %s", db->path, *report_out);
    return problems ? LF_ECORRUPT : 0;
}

int lf_queue_store_maintain(lf_queue_db *db, bool force)
{
    uint64_t now = lf_queue_store_now(db);
    if (!force && now < db->next_maintenance)
        return 0;
    db->next_maintenance = now + MAINTENANCE_EVERY_MS;
    int rc;
    sqlite3_stmt *st;
    if (db->opt.dlq_max_age_ms || db->opt.dlq_max_count) {
        /* Collect the dead-letter queues first, then purge each. */
        int64_t ids[64];
        size_t n = 0;
        int64_t after = 0;
        for (;;) {
            n = 0;
            st = db->st[ST_DLQ_LIST];
            while ((rc = lf_queue_store_step(db, st)) == SQLITE_ROW) {
                int64_t id = sqlite3_column_int64(st, 0);
                if (id > after && n < 64)
                    ids[n++] = id;
            }
            sqlite3_reset(st);
            if (rc < 0)
                return rc;
            if (n == 0)
                break;
            for (size_t i = 0; i < n; i++) {
                uint64_t purged = 0;
                if (db->opt.dlq_max_age_ms && now > db->opt.dlq_max_age_ms) {
                    st = db->st[ST_DLQ_PURGE_AGE];
                    sqlite3_bind_int64(st, 1, ids[i]);
                    sqlite3_bind_int64(st, 2, (int64_t)(now - db->opt.dlq_max_age_ms));
                    rc = lf_queue_store_step(db, st);
                    sqlite3_reset(st);
                    if (rc < 0)
                        return rc;
                    purged += (uint64_t)sqlite3_changes(db->db);
                }
                if (db->opt.dlq_max_count) {
                    st = db->st[ST_DLQ_PURGE_COUNT];
                    sqlite3_bind_int64(st, 1, ids[i]);
                    sqlite3_bind_int64(st, 2, (int64_t)db->opt.dlq_max_count);
                    rc = lf_queue_store_step(db, st);
                    sqlite3_reset(st);
                    if (rc < 0)
                        return rc;
                    purged += (uint64_t)sqlite3_changes(db->db);
                }
                if (purged) {
                    LF_INFO(COMP, "%s: purged %" PRIu64 " dead letters past retention (queue id %"
                            PRId64 ")", db->path, purged, ids[i]);
                    rc = lf_queue_store_count(db, ids[i], C_PURGED, purged);
                    if (rc < 0)
                        return rc;
                }
                if (ids[i] > after)
                    after = ids[i];
            }
            if (n < 64)
                break;
        }
    }
    st = db->st[ST_DEDUP_EXPIRE];
    sqlite3_bind_int64(st, 1, (int64_t)now);
    rc = lf_queue_store_step(db, st);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}
