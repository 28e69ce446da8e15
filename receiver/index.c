/* Session index on SQLite (see index.h). */
#include "index.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_sqlite_setup.h"

struct lf_index {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        return -EIO;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return LF_ECORRUPT;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    default:
        return LF_EDB;
    }
}

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS sessions("
    " id TEXT PRIMARY KEY, site TEXT NOT NULL, size INTEGER NOT NULL, stored_size INTEGER NOT NULL,"
    " content_hash TEXT NOT NULL, received_ms INTEGER NOT NULL, backend TEXT NOT NULL,"
    " location TEXT NOT NULL, status TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS sessions_status ON sessions(status) WHERE status <> 'queued';"
    /* per-site figures: sessions, bytes and last upload come from the sessions themselves */
    /* covering: the per-site figures are read from the index alone */
    "CREATE INDEX IF NOT EXISTS sessions_site_figures ON sessions(site, received_ms, size);"
    "CREATE TABLE IF NOT EXISTS site_refusals("
    " site TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    " PRIMARY KEY(site, reason));"
    /* this receiver's identity in shared claims (lf_index_receiver_id): made once, with the index */
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES('receiver_id', lower(hex(randomblob(16))));";

int lf_index_open(const char *path, lf_index **out, char *err, size_t errsz)
{
    lf_index *ix = lf_calloc(1, sizeof *ix);
    if (!ix)
        return -ENOMEM;
    pthread_mutex_init(&ix->mu, NULL);
    int rc = sqlite3_open_v2(path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(ix->db, LF_SQLITE_BUSY_TIMEOUT_MS);
        /* NORMAL, not FULL: a lost commit is rebuilt by start-up recovery from the fsync'd object
         * and queue (see index.h), so one fsync per upload is saved */
        rc = lf_sqlite_exec_setup(ix->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                                  LF_SQLITE_BUSY_TIMEOUT_MS, &msg);
    }
    if (rc == SQLITE_OK)
        rc = lf_sqlite_exec_setup(ix->db, SCHEMA, LF_SQLITE_BUSY_TIMEOUT_MS, &msg);
    if (rc == SQLITE_OK) {
        /* quick_check reports problems as rows, not as an error code */
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(ix->db, "PRAGMA quick_check", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(st, 0);
            if (!r || strcmp(r, "ok") != 0) {
                snprintf(err, errsz, "%s: integrity check failed: %s", path, r ? r : "?");
                sqlite3_finalize(st);
                lf_index_close(ix);
                return LF_ECORRUPT;
            }
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        int code = map_sqlite(rc);
        lf_index_close(ix);
        return code ? code : LF_EDB;
    }
    *out = ix;
    return 0;
}

void lf_index_close(lf_index *ix)
{
    if (!ix)
        return;
    sqlite3_close(ix->db);
    pthread_mutex_destroy(&ix->mu);
    lf_free(ix);
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", t ? t : "");
}

static void read_row(sqlite3_stmt *st, lf_index_row *row)
{
    memset(row, 0, sizeof *row);
    copy_col(row->id, sizeof row->id, st, 0);
    copy_col(row->site, sizeof row->site, st, 1);
    row->size = (uint64_t)sqlite3_column_int64(st, 2);
    row->stored_size = (uint64_t)sqlite3_column_int64(st, 3);
    copy_col(row->hash, sizeof row->hash, st, 4);
    row->received_ms = (uint64_t)sqlite3_column_int64(st, 5);
    copy_col(row->backend, sizeof row->backend, st, 6);
    copy_col(row->location, sizeof row->location, st, 7);
    copy_col(row->status, sizeof row->status, st, 8);
}

#define COLS "id, site, size, stored_size, content_hash, received_ms, backend, location, status"

int lf_index_get(lf_index *ix, const char *id, lf_index_row *row)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "SELECT " COLS " FROM sessions WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_row(st, row);
            rc = 0;
        } else if (rc == SQLITE_DONE) {
            rc = -ENOENT;
        } else {
            rc = map_sqlite(rc);
        }
    } else {
        rc = map_sqlite(rc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return rc;
}

int lf_index_insert(lf_index *ix, const lf_index_row *row)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "INSERT INTO sessions(" COLS ") VALUES (?,?,?,?,?,?,?,?,?)", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, row->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, row->site, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)row->size);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)row->stored_size);
        sqlite3_bind_text(st, 5, row->hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)row->received_ms);
        sqlite3_bind_text(st, 7, row->backend, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, row->location, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, row->status, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    if (code && code != -EEXIST)
        LF_ERROR("index", "insert %s: %s", row->id, sqlite3_errmsg(ix->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code;
}

int lf_index_set_status(lf_index *ix, const char *id, const char *status)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "UPDATE sessions SET status = ? WHERE id = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    if (code == 0 && sqlite3_changes(ix->db) == 0)
        code = -ENOENT;
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code;
}

/* Steps st (prepared and bound under ix->mu, which is held) into rows, releases the lock, then calls
 * fn for each without it (fn may use the index). */
static int each_session(lf_index *ix, sqlite3_stmt *st, int rc, int (*fn)(void *arg, const lf_index_row *row),
                        void *arg)
{
    lf_index_row *rows = NULL;
    size_t n = 0;
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            lf_index_row *nr = lf_realloc(rows, (n + 1) * sizeof *nr);
            if (!nr) {
                rc = SQLITE_NOMEM;
                break;
            }
            rows = nr;
            read_row(st, &rows[n++]);
        }
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    for (size_t i = 0; i < n && code == 0; i++)
        if (fn(arg, &rows[i]) != 0)
            break;
    lf_free(rows);
    return code;
}

int lf_index_each_status(lf_index *ix, const char *status, size_t max,
                         int (*fn)(void *arg, const lf_index_row *row), void *arg)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "SELECT " COLS " FROM sessions WHERE status = ? LIMIT ?", -1, &st,
                                NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    }
    return each_session(ix, st, rc, fn, arg);
}

int lf_index_each_own_after(lf_index *ix, const char *after, size_t max,
                            int (*fn)(void *arg, const lf_index_row *row), void *arg)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db,
                                "SELECT " COLS " FROM sessions WHERE id > ? AND status IN ('stored', 'queued') "
                                "ORDER BY id LIMIT ?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    }
    return each_session(ix, st, rc, fn, arg);
}

int lf_index_meta_get(lf_index *ix, const char *key, char *out, size_t size)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL);
    int code = 0;
    if (rc == SQLITE_OK)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (!v || (size_t)snprintf(out, size, "%s", v) >= size)
            code = LF_ELIMIT;
    } else {
        code = rc == SQLITE_DONE ? -ENOENT : map_sqlite(rc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code;
}

int lf_index_meta_set(lf_index *ix, const char *key, const char *value)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "INSERT OR REPLACE INTO meta VALUES(?, ?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code;
}

int lf_index_receiver_id(lf_index *ix, char *out, size_t size)
{
    int rc = lf_index_meta_get(ix, "receiver_id", out, size);
    return rc == -ENOENT ? LF_ECORRUPT : rc;
}

int lf_index_count(lf_index *ix, const char *status, uint64_t *n)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM sessions WHERE status = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *n = (uint64_t)sqlite3_column_int64(st, 0);
            rc = SQLITE_DONE;
        }
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code;
}

int lf_index_requeue_all(lf_index *ix, uint64_t *n)
{
    pthread_mutex_lock(&ix->mu);
    char *msg = NULL;
    int rc = sqlite3_exec(ix->db, "UPDATE sessions SET status = 'stored' WHERE status = 'queued'", NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        LF_ERROR("index", "requeue: %s", msg ? msg : sqlite3_errstr(rc));
    else if (n)
        *n = (uint64_t)sqlite3_changes(ix->db);
    sqlite3_free(msg);
    pthread_mutex_unlock(&ix->mu);
    return map_sqlite(rc);
}

int lf_index_set_status_many(lf_index *ix, const char (*ids)[LF_SESSION_ID_LEN + 1], size_t n,
                             const char *status)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(ix->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(ix->db, "UPDATE sessions SET status = ? WHERE id = ?", -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ids[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        LF_ERROR("index", "status update: %s", sqlite3_errmsg(ix->db));
        sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&ix->mu);
    return map_sqlite(rc);
}

int lf_index_add_refusals(lf_index *ix, const lf_index_refusal *rows, size_t n)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(ix->db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(ix->db,
                                "INSERT INTO site_refusals(site, reason, count, last_ms) VALUES(?, ?, ?, ?)"
                                " ON CONFLICT(site, reason) DO UPDATE SET count = count + excluded.count,"
                                " last_ms = max(last_ms, excluded.last_ms)",
                                -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, rows[i].site, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rows[i].reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)rows[i].count);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)rows[i].last_ms);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    int end = sqlite3_exec(ix->db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = end;
    pthread_mutex_unlock(&ix->mu);
    int code = rc == SQLITE_OK ? 0 : map_sqlite(rc);
    return rc == SQLITE_OK ? 0 : (code ? code : LF_EDB);
}

/* Runs a query whose rows go to row_fn one by one; row_fn returning non-zero stops. */
static int each_row(lf_index *ix, const char *sql, int (*row_fn)(sqlite3_stmt *st, void *ctx), void *ctx)
{
    pthread_mutex_lock(&ix->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL);
    int stop = 0;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if ((stop = row_fn(st, ctx)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int code = rc == SQLITE_DONE ? 0 : map_sqlite(rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ix->mu);
    return code ? code : (stop < 0 ? stop : 0);
}

struct uploads_ctx {
    int (*fn)(void *arg, const char *site, uint64_t sessions, uint64_t bytes, uint64_t last_ms);
    void *arg;
};

static int upload_row(sqlite3_stmt *st, void *ctx)
{
    struct uploads_ctx *c = ctx;
    const char *site = (const char *)sqlite3_column_text(st, 0);
    return c->fn(c->arg, site ? site : "", (uint64_t)sqlite3_column_int64(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
                 (uint64_t)sqlite3_column_int64(st, 3));
}

int lf_index_site_uploads(lf_index *ix,
                          int (*fn)(void *arg, const char *site, uint64_t sessions, uint64_t bytes, uint64_t last_ms),
                          void *arg)
{
    struct uploads_ctx c = {fn, arg};
    return each_row(ix,
                    "SELECT site, count(*), sum(size), max(received_ms) FROM sessions INDEXED BY sessions_site_figures "
                    "GROUP BY site ORDER BY site",
                    upload_row, &c);
}

struct refusals_ctx {
    int (*fn)(void *arg, const char *site, const char *reason, uint64_t count, uint64_t last_ms);
    void *arg;
};

static int refusal_row(sqlite3_stmt *st, void *ctx)
{
    struct refusals_ctx *c = ctx;
    const char *site = (const char *)sqlite3_column_text(st, 0);
    const char *reason = (const char *)sqlite3_column_text(st, 1);
    return c->fn(c->arg, site ? site : "", reason ? reason : "", (uint64_t)sqlite3_column_int64(st, 2),
                 (uint64_t)sqlite3_column_int64(st, 3));
}

int lf_index_site_refusals(lf_index *ix,
                           int (*fn)(void *arg, const char *site, const char *reason, uint64_t count, uint64_t last_ms),
                           void *arg)
{
    struct refusals_ctx c = {fn, arg};
    return each_row(ix, "SELECT site, reason, count, last_ms FROM site_refusals ORDER BY site, reason", refusal_row,
                    &c);
}
