/* SQLite registry of the uploader (see uploader_registry.h). */
#include "uploader_registry.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_sqlite_setup.h"

/* Statements are prepared once and reused (keyed by their SQL text's address: every call site
 * passes a literal): preparing each one on every call was most of the registry's CPU time. */
#define STMT_CACHE 24

struct lf_ureg {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[STMT_CACHE];
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA cache_size=-256;" /* KiB: the uploader's memory budget is small */
    "CREATE TABLE IF NOT EXISTS files(watch TEXT NOT NULL, relpath TEXT NOT NULL, dev INTEGER,"
    " ino INTEGER, size INTEGER, mtime_ns INTEGER, shipped_size INTEGER, prefix_hash BLOB,"
    " first_id TEXT, part INTEGER, seen INTEGER, PRIMARY KEY(watch, relpath));"
    "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, watch TEXT, relpath TEXT,"
    " size INTEGER, state TEXT NOT NULL, reason TEXT, updated INTEGER);"
    "CREATE INDEX IF NOT EXISTS files_inode ON files(watch, dev, ino);"
    "CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state);";

static int db_err(lf_ureg *r, const char *what)
{
    LF_ERROR("registry", "%s: %s", what, sqlite3_errmsg(r->db));
    return LF_EDB;
}

int lf_ureg_open(const char *path, lf_ureg **out)
{
    lf_ureg *r = lf_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        LF_ERROR("registry", "cannot open %s: %s", path, r->db ? sqlite3_errmsg(r->db) : "no memory");
        sqlite3_close(r->db);
        lf_free(r);
        return LF_EDB;
    }
    sqlite3_busy_timeout(r->db, LF_SQLITE_BUSY_TIMEOUT_MS);
    char *msg = NULL;
    if (lf_sqlite_exec_setup(r->db, schema, LF_SQLITE_BUSY_TIMEOUT_MS, &msg) != SQLITE_OK) {
        LF_ERROR("registry", "%s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        sqlite3_close(r->db);
        lf_free(r);
        return LF_EDB;
    }
    *out = r;
    return 0;
}

void lf_ureg_close(lf_ureg *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(r->cache[i].st);
    sqlite3_close(r->db);
    lf_free(r);
}

/* A statement for sql, ready to bind (no bindings left from its last use). Callers hand it back
 * with done() (sqlite3_reset), never sqlite3_finalize. */
static int prep(lf_ureg *r, const char *sql, sqlite3_stmt **st)
{
    size_t i = 0;
    for (; i < STMT_CACHE && r->cache[i].sql; i++) {
        if (r->cache[i].sql == sql) {
            *st = r->cache[i].st;
            sqlite3_clear_bindings(*st);
            return 0;
        }
    }
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(r, "prepare");
    if (i < STMT_CACHE) {
        r->cache[i].sql = sql;
        r->cache[i].st = *st;
    }
    return 0;
}

static void done(lf_ureg *r, sqlite3_stmt *st)
{
    for (size_t i = 0; i < STMT_CACHE && r->cache[i].sql; i++) {
        if (r->cache[i].st == st) {
            sqlite3_reset(st);
            return;
        }
    }
    sqlite3_finalize(st); /* the cache was full */
}

/* Steps a statement with no result rows and hands it back. */
static int run(lf_ureg *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    done(r, st);
    if (rc != SQLITE_DONE)
        return db_err(r, "write");
    return 0;
}

int lf_ureg_file_get(lf_ureg *r, const char *watch, const char *relpath, lf_ureg_file *f)
{
    sqlite3_stmt *st;
    int rc = prep(r, "SELECT dev, ino, size, mtime_ns, shipped_size, prefix_hash, first_id, part"
                     " FROM files WHERE watch=?1 AND relpath=?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, watch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(f, 0, sizeof *f);
        f->dev = sqlite3_column_int64(st, 0);
        f->ino = sqlite3_column_int64(st, 1);
        f->size = sqlite3_column_int64(st, 2);
        f->mtime_ns = sqlite3_column_int64(st, 3);
        f->shipped_size = sqlite3_column_int64(st, 4);
        if (sqlite3_column_bytes(st, 5) == LF_HASH_BYTES)
            memcpy(f->prefix_hash, sqlite3_column_blob(st, 5), LF_HASH_BYTES);
        const unsigned char *id = sqlite3_column_text(st, 6);
        if (id)
            snprintf(f->first_id, sizeof f->first_id, "%s", (const char *)id);
        f->part = sqlite3_column_int(st, 7);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = db_err(r, "read file");
    }
    done(r, st);
    return rc;
}

int lf_ureg_file_by_inode(lf_ureg *r, const char *watch, int64_t dev, int64_t ino, lf_ureg_file *f)
{
    sqlite3_stmt *st;
    int rc = prep(r, "SELECT relpath FROM files WHERE watch=?1 AND dev=?2 AND ino=?3 LIMIT 1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, watch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, dev);
    sqlite3_bind_int64(st, 3, ino);
    rc = sqlite3_step(st);
    char rel[4096];
    if (rc == SQLITE_ROW) {
        snprintf(rel, sizeof rel, "%s", (const char *)sqlite3_column_text(st, 0));
        done(r, st);
        return lf_ureg_file_get(r, watch, rel, f);
    }
    done(r, st);
    return rc == SQLITE_DONE ? 0 : db_err(r, "read file by inode");
}

int lf_ureg_file_put(lf_ureg *r, const char *watch, const char *relpath, const lf_ureg_file *f,
                     int64_t scan_gen)
{
    sqlite3_stmt *st;
    int rc = prep(r, "INSERT OR REPLACE INTO files VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, watch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->dev);
    sqlite3_bind_int64(st, 4, f->ino);
    sqlite3_bind_int64(st, 5, f->size);
    sqlite3_bind_int64(st, 6, f->mtime_ns);
    sqlite3_bind_int64(st, 7, f->shipped_size);
    sqlite3_bind_blob(st, 8, f->prefix_hash, LF_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, f->first_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, f->part);
    sqlite3_bind_int64(st, 11, scan_gen);
    return run(r, st);
}

int lf_ureg_file_seen(lf_ureg *r, const char *watch, const char *relpath, int64_t scan_gen)
{
    sqlite3_stmt *st;
    int rc = prep(r, "UPDATE files SET seen=?3 WHERE watch=?1 AND relpath=?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, watch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, scan_gen);
    return run(r, st);
}

int lf_ureg_file_gc(lf_ureg *r, const char *watch, int64_t scan_gen)
{
    sqlite3_stmt *st;
    int rc = prep(r, "DELETE FROM files WHERE watch=?1 AND (seen IS NULL OR seen<?2)", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, watch, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, scan_gen);
    rc = run(r, st);
    return rc < 0 ? rc : sqlite3_changes(r->db);
}

int lf_ureg_session_state(lf_ureg *r, const char *id, char state[16])
{
    sqlite3_stmt *st;
    int rc = prep(r, "SELECT state FROM sessions WHERE id=?1", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(state, 16, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_err(r, "read session");
    }
    done(r, st);
    return rc;
}

int lf_ureg_session_put(lf_ureg *r, const char *id, const char *watch, const char *relpath,
                        int64_t size, const char *state, const char *reason)
{
    sqlite3_stmt *st;
    int rc = prep(r, "INSERT INTO sessions VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(id) DO UPDATE"
                     " SET state=excluded.state, reason=excluded.reason, updated=excluded.updated,"
                     " watch=coalesce(excluded.watch, watch), relpath=coalesce(excluded.relpath,"
                     " relpath), size=coalesce(excluded.size, size)", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, watch, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, relpath, -1, SQLITE_STATIC);
    if (size >= 0)
        sqlite3_bind_int64(st, 4, size);
    sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
    return run(r, st);
}

int lf_ureg_session_source(lf_ureg *r, const char *id, char *watch, size_t wsz, char *relpath,
                           size_t rsz)
{
    sqlite3_stmt *st;
    int rc = prep(r, "SELECT watch, relpath FROM sessions WHERE id=?1 AND watch IS NOT NULL", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(watch, wsz, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(relpath, rsz, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_err(r, "read session");
    }
    done(r, st);
    return rc;
}

int lf_ureg_counts_get(lf_ureg *r, lf_ureg_counts *c)
{
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st;
    int rc = prep(r, "SELECT state, count(*) FROM sessions GROUP BY state", &st);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        if (strcmp(s, LF_US_OUTBOX) == 0)
            c->outbox = n;
        else if (strcmp(s, LF_US_SHIPPED) == 0)
            c->shipped = n;
        else if (strcmp(s, LF_US_FAILED) == 0)
            c->failed = n;
        else if (strcmp(s, LF_US_DROPPED) == 0)
            c->dropped = n;
    }
    done(r, st);
    return rc == SQLITE_DONE ? 0 : db_err(r, "count");
}

int lf_ureg_state_each(lf_ureg *r, const char *state, bool with_reason,
                       void (*fn)(void *, const char *, const char *, const char *), void *arg)
{
    sqlite3_stmt *st;
    int rc = prep(r, with_reason ? "SELECT id, coalesce(relpath,''), coalesce(reason,'') FROM sessions WHERE"
                                   " state=?1 AND coalesce(reason,'') <> '' ORDER BY updated"
                                 : "SELECT id, coalesce(relpath,''), coalesce(reason,'') FROM sessions WHERE"
                                   " state=?1 ORDER BY updated",
                  &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(arg, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    done(r, st);
    return rc == SQLITE_DONE ? 0 : db_err(r, "list sessions");
}

int lf_ureg_begin(lf_ureg *r)
{
    return sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(r, "begin");
}

int lf_ureg_rollback(lf_ureg *r)
{
    return sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(r, "rollback");
}

int lf_ureg_commit(lf_ureg *r)
{
    return sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_err(r, "commit");
}
