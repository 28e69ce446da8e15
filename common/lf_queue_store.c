/* The queue's SQLite store: opening (schema, version, integrity), the connection's statements,
 * transactions, the store clock and the helpers the operations share. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue_store.h"
#include "lf_sqlite_setup.h"

#define COMP "queue"

static const char *const schema_v1 =
    "CREATE TABLE queues("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " created_ms INTEGER NOT NULL,"
    " sent INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL DEFAULT 0,"
    " acked INTEGER NOT NULL DEFAULT 0, nacked INTEGER NOT NULL DEFAULT 0,"
    " dead_lettered INTEGER NOT NULL DEFAULT 0, redriven INTEGER NOT NULL DEFAULT 0,"
    " expired INTEGER NOT NULL DEFAULT 0, purged INTEGER NOT NULL DEFAULT 0);"
    /* body last: the other columns are read without touching a large body's overflow pages */
    "CREATE TABLE messages("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue_id INTEGER NOT NULL,"
    " visible_at INTEGER NOT NULL,"
    " sent_ms INTEGER NOT NULL,"
    " receive_count INTEGER NOT NULL DEFAULT 0,"
    " receipt TEXT,"
    " dead_ms INTEGER,"
    " body BLOB NOT NULL);"
    "CREATE INDEX messages_visible ON messages(queue_id, visible_at, id);"
    "CREATE TABLE dedup("
    " queue_id INTEGER NOT NULL, dedup_id TEXT NOT NULL, message_id INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL, PRIMARY KEY(queue_id, dedup_id));"
    "CREATE INDEX dedup_expiry ON dedup(expires_ms);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES('clock_ms', 0);"
    "PRAGMA user_version=1;";

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_QUEUE_ID] = "SELECT id FROM queues WHERE name=?1",
    [ST_QUEUE_ADD] = "INSERT INTO queues(name, created_ms) VALUES(?1, ?2)",
    [ST_DEDUP_GET] = "SELECT message_id, expires_ms FROM dedup WHERE queue_id=?1 AND dedup_id=?2",
    [ST_DEDUP_PUT] = "INSERT OR REPLACE INTO dedup(queue_id, dedup_id, message_id, expires_ms)"
                     " VALUES(?1, ?2, ?3, ?4)",
    [ST_MSG_INSERT] = "INSERT INTO messages(queue_id, visible_at, sent_ms, body)"
                      " VALUES(?1, ?2, ?3, ?4)",
    [ST_RECV_PICK] = "SELECT id, receive_count, receipt IS NOT NULL, sent_ms, body FROM messages"
                     " WHERE queue_id=?1 AND visible_at<=?2 ORDER BY visible_at, id LIMIT ?3",
    [ST_RECV_UPDATE] = "UPDATE messages SET visible_at=?2, receive_count=receive_count+1,"
                       " receipt=?3 WHERE id=?1",
    [ST_DEAD_MOVE] = "UPDATE messages SET queue_id=?2, visible_at=?3, receipt=NULL, dead_ms=?3"
                     " WHERE id=?1",
    [ST_ACK] = "DELETE FROM messages WHERE id=?1 AND queue_id=?2 AND receipt=?3",
    [ST_EXTEND] = "UPDATE messages SET visible_at=?4 WHERE id=?1 AND queue_id=?2 AND receipt=?3",
    [ST_NACK] = "UPDATE messages SET visible_at=?4, receipt=NULL"
                " WHERE id=?1 AND queue_id=?2 AND receipt=?3",
    [ST_REDRIVE] = "UPDATE messages SET queue_id=?2, visible_at=?3, receive_count=0, receipt=NULL,"
                   " dead_ms=NULL WHERE id IN"
                   " (SELECT id FROM messages WHERE queue_id=?1 ORDER BY id LIMIT ?4)",
    [ST_COUNTERS] = "UPDATE queues SET sent=sent+?2, received=received+?3, acked=acked+?4,"
                    " nacked=nacked+?5, dead_lettered=dead_lettered+?6, redriven=redriven+?7,"
                    " expired=expired+?8, purged=purged+?9 WHERE id=?1",
    [ST_CLOCK_PUT] = "UPDATE meta SET value=?1 WHERE key='clock_ms' AND value<?1",
    [ST_NEXT_VISIBLE] = "SELECT MIN(visible_at) FROM messages WHERE queue_id=?1 AND visible_at>?2",
    [ST_STATS] = "SELECT COALESCE(SUM(visible_at<=?2),0),"
                 " COALESCE(SUM(visible_at>?2 AND receipt IS NOT NULL),0),"
                 " COALESCE(SUM(visible_at>?2 AND receipt IS NULL),0), MIN(sent_ms)"
                 " FROM messages WHERE queue_id=?1",
    [ST_STATS_TOTALS] = "SELECT sent, received, acked, nacked, dead_lettered, redriven, expired,"
                        " purged FROM queues WHERE id=?1",
    [ST_PEEK] = "SELECT id, receive_count, sent_ms, visible_at,"
                " receipt IS NOT NULL AND visible_at>?3, body"
                " FROM messages WHERE queue_id=?1 ORDER BY id LIMIT ?2",
    [ST_DLQ_PURGE_AGE] = "DELETE FROM messages WHERE queue_id=?1 AND dead_ms<?2",
    [ST_DLQ_PURGE_COUNT] = "DELETE FROM messages WHERE queue_id=?1 AND id NOT IN"
                           " (SELECT id FROM messages WHERE queue_id=?1"
                           " ORDER BY dead_ms DESC, id DESC LIMIT ?2)",
    [ST_DLQ_LIST] = "SELECT id, name FROM queues WHERE name GLOB '*.dlq' ORDER BY id",
    [ST_DEDUP_EXPIRE] = "DELETE FROM dedup WHERE rowid IN"
                        " (SELECT rowid FROM dedup WHERE expires_ms<=?1 LIMIT 10000)",
};

#define MAX_TXN_COUNTERS 32

void lf_queue_options_init(lf_queue_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_body = 256 * 1024;
    opt->dedup_window_ms = 5 * 60 * 1000;
    opt->max_receives = 5;
    opt->dlq_max_age_ms = 14ull * 24 * 3600 * 1000;
    opt->dlq_max_count = 0;
    opt->max_batch = 4096;
    opt->max_pending = 100000;
    opt->busy_timeout_ms = 5000;
}

int lf_queue_store_errcode(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_IOERR: return (rc == SQLITE_IOERR_NOMEM) ? -ENOMEM : -EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return LF_ECORRUPT;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH: return -EACCES;
    case SQLITE_CANTOPEN: return -EIO;
    case SQLITE_TOOBIG: return LF_ELIMIT;
    default: return LF_EDB;
    }
}

/* Like lf_queue_store_errcode, but an I/O error whose cause was a full disk is -ENOSPC (SQLite
 * reports some of those, e.g. while growing the WAL index, as SQLITE_IOERR_*). */
static int db_errcode(const lf_queue_db *db, int rc)
{
    if ((rc & 0xff) == SQLITE_IOERR && db->db) {
        int err = sqlite3_system_errno(db->db);
        if (err == ENOSPC || err == EDQUOT)
            return -ENOSPC;
    }
    return lf_queue_store_errcode(rc);
}

int lf_queue_store_fail(lf_queue_db *db, int rc, const char *what)
{
    int code = db_errcode(db, rc);
    int prim = rc & 0xff;
    LF_ERROR(COMP, "%s: %s: %s (sqlite %d)", db->path, what,
             db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc), rc);
    if (!db->fatal)
        db->fatal = code;
    /* After an I/O error (a failed fsync above all) SQLite's view of the file may be stale: reopen
     * before going on. Not after SQLITE_FULL: SQLite rolled back cleanly, and reopening on a full
     * disk would rebuild the WAL index where there is no space for it. */
    if (prim == SQLITE_IOERR)
        db->broken = true;
    return code;
}

int lf_queue_store_step(lf_queue_db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc;
    sqlite3_reset(st);
    return lf_queue_store_fail(db, rc, sqlite3_sql(st));
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(const lf_queue_db *db)
{
    if (db->opt.clock_ms)
        return db->opt.clock_ms(db->opt.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t lf_queue_store_now(lf_queue_db *db)
{
    uint64_t wall = wall_ms(db), mono = mono_ms(), now;
    if (wall >= db->last_now) {
        now = wall;
        db->clock_warned = false;
    } else {
        /* The wall clock stepped back (or was behind the last commit at start-up): keep going from
         * the last time handed out at the monotonic rate, so that visibility timeouts still run out
         * and persisted times stay ordered. */
        now = db->last_now + (mono - db->last_mono);
        if (!db->clock_warned && db->last_now - wall > 1000) {
            LF_WARN(COMP, "%s: wall clock is %" PRIu64 " ms behind the store clock; continuing "
                    "from the store clock", db->path, db->last_now - wall);
            db->clock_warned = true;
        }
    }
    db->last_now = now;
    db->last_mono = mono;
    return now;
}

bool lf_queue_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
        if (n >= LF_QUEUE_NAME_MAX + 4)
            return false;
    }
    /* A dead-letter queue's name may use the four characters of its ".dlq" suffix beyond the limit. */
    return n > 0 && (n <= LF_QUEUE_NAME_MAX || lf_queue_store_is_dlq(name));
}

bool lf_queue_store_is_dlq(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".dlq") == 0;
}

int lf_queue_check_send_args(const lf_queue_options *opt, const char *queue, size_t len,
                             const char *dedup_id, uint64_t delay_ms)
{
    /* Dead-letter queues are filled by dead-lettering only. */
    if (!lf_queue_name_valid(queue) || lf_queue_store_is_dlq(queue) || delay_ms > LF_QUEUE_DELAY_MAX)
        return -EINVAL;
    if (dedup_id && (!*dedup_id || strnlen(dedup_id, LF_QUEUE_DEDUP_MAX + 1) > LF_QUEUE_DEDUP_MAX))
        return -EINVAL;
    if (len > opt->max_body)
        return LF_ELIMIT;
    return 0;
}

int lf_queue_store_queue_id(lf_queue_db *db, const char *name, bool create, int64_t *id)
{
    sqlite3_stmt *st = db->st[ST_QUEUE_ID];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = lf_queue_store_step(db, st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    if (!create)
        return -ENOENT;
    st = db->st[ST_QUEUE_ADD];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)lf_queue_store_now(db));
    rc = lf_queue_store_step(db, st);
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    *id = sqlite3_last_insert_rowid(db->db);
    return 0;
}

static int flush_counters(lf_queue_db *db)
{
    sqlite3_stmt *st = db->st[ST_COUNTERS];
    for (size_t i = 0; i < db->ncounters; i++) {
        struct lfq_pending_counters *c = &db->counters[i];
        sqlite3_bind_int64(st, 1, c->queue_id);
        for (int k = 0; k < C_COUNT; k++)
            sqlite3_bind_int64(st, k + 2, (int64_t)c->n[k]);
        int rc = lf_queue_store_step(db, st);
        sqlite3_reset(st);
        if (rc < 0)
            return rc;
    }
    db->ncounters = 0;
    return 0;
}

int lf_queue_store_count(lf_queue_db *db, int64_t queue_id, enum lfq_counter which, uint64_t n)
{
    for (size_t i = 0; i < db->ncounters; i++) {
        if (db->counters[i].queue_id == queue_id) {
            db->counters[i].n[which] += n;
            return 0;
        }
    }
    if (db->ncounters == MAX_TXN_COUNTERS) {
        int rc = flush_counters(db);
        if (rc < 0)
            return rc;
    }
    struct lfq_pending_counters *c = &db->counters[db->ncounters++];
    memset(c, 0, sizeof *c);
    c->queue_id = queue_id;
    c->n[which] = n;
    return 0;
}

static int exec_simple(lf_queue_db *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db->db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        int code = db_errcode(db, rc);
        LF_ERROR(COMP, "%s: %s: %s", db->path, sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return code;
    }
    return 0;
}

/* Runs a one-value query; 0 and *out, or a code. */
static int query_int(lf_queue_db *db, const char *sql, int64_t *out)
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
        LF_ERROR(COMP, "%s: %s: %s", db->path, sql, sqlite3_errmsg(db->db));
        rc = db_errcode(db, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

static void disconnect(lf_queue_db *db)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(db->st[i]);
        db->st[i] = NULL;
    }
    if (db->db) {
        if (sqlite3_close(db->db) != SQLITE_OK)
            LF_WARN(COMP, "%s: close: %s", db->path, sqlite3_errmsg(db->db));
        db->db = NULL;
    }
    db->in_txn = false;
}

static int quick_check(lf_queue_db *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, "PRAGMA quick_check(5)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        LF_ERROR(COMP, "%s: integrity check: %s", db->path, sqlite3_errmsg(db->db));
        return db_errcode(db, rc);
    }
    int code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(st, 0);
        if (row && strcmp(row, "ok") == 0)
            continue;
        LF_ERROR(COMP, "%s: store is corrupt: %s", db->path, row ? row : "?");
        code = LF_ECORRUPT;
    }
    if (rc != SQLITE_DONE) {
        LF_ERROR(COMP, "%s: integrity check: %s", db->path, sqlite3_errmsg(db->db));
        code = db_errcode(db, rc);
    }
    sqlite3_finalize(st);
    return code;
}

static int check_schema(lf_queue_db *db)
{
    int64_t version = 0, tables = 0;
    int rc = query_int(db, "PRAGMA user_version", &version);
    if (rc == 0)
        rc = query_int(db, "SELECT COUNT(*) FROM sqlite_master", &tables);
    if (rc)
        return rc;
    if (version == 0) {
        if (tables > 0) {
            LF_ERROR(COMP, "%s: not a queue store (a SQLite database with other tables)", db->path);
            return LF_EFORMAT;
        }
        rc = exec_simple(db, "BEGIN IMMEDIATE");
        if (rc)
            return rc;
        rc = exec_simple(db, schema_v1);
        if (rc == 0)
            rc = exec_simple(db, "COMMIT");
        if (rc) {
            if (!sqlite3_get_autocommit(db->db))
                sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        LF_INFO(COMP, "%s: created queue store (schema %d)", db->path, LF_QUEUE_SCHEMA_VERSION);
        return 0;
    }
    if (version > LF_QUEUE_SCHEMA_VERSION || version < 0) {
        LF_ERROR(COMP, "%s: store schema %" PRId64 " is newer than this program's (%d)", db->path,
                 version, LF_QUEUE_SCHEMA_VERSION);
        return LF_EFORMAT;
    }
    /* Migrations from older versions go here when there are any. */
    rc = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN"
                       " ('queues','messages','dedup','meta')", &tables);
    if (rc)
        return rc;
    if (tables != 4) {
        LF_ERROR(COMP, "%s: store schema %" PRId64 " lacks some of its tables", db->path, version);
        return LF_ECORRUPT;
    }
    return 0;
}

static int store_connect(lf_queue_db *db, bool full_check)
{
    int rc = lf_queue_vfs_register();
    if (rc != SQLITE_OK) {
        LF_ERROR(COMP, "cannot register the SQLite VFS shim: %s", sqlite3_errstr(rc));
        return LF_EDB;
    }
    rc = sqlite3_open_v2(db->path, &db->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         LF_QUEUE_VFS_NAME);
    if (rc != SQLITE_OK) {
        int err = db->db ? sqlite3_system_errno(db->db) : 0;
        LF_ERROR(COMP, "%s: cannot open: %s", db->path,
                 db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc));
        disconnect(db);
        return (rc & 0xff) == SQLITE_CANTOPEN && err > 0 ? -err : lf_queue_store_errcode(rc);
    }
    sqlite3_extended_result_codes(db->db, 1);
    sqlite3_busy_timeout(db->db, (int)db->opt.busy_timeout_ms);
    /* journal_mode reads the header first: a file that is not SQLite fails here (NOTADB). A busy
     * answer from another process turning the new database to WAL is waited out (lf_sqlite_setup.h). */
    char *msg = NULL;
    rc = lf_sqlite_exec_setup(db->db, "PRAGMA journal_mode=WAL", (int)db->opt.busy_timeout_ms, &msg);
    if (rc != SQLITE_OK) {
        LF_ERROR(COMP, "%s: PRAGMA journal_mode=WAL: %s", db->path, msg ? msg : sqlite3_errmsg(db->db));
        rc = db_errcode(db, rc);
    }
    sqlite3_free(msg);
    if (rc == 0)
        rc = exec_simple(db, "PRAGMA synchronous=FULL");
    /* A WAL that grew (a long reader held checkpoints back) shrinks again after the next reset. */
    if (rc == 0)
        rc = exec_simple(db, "PRAGMA journal_size_limit=67108864");
    if (rc == 0)
        rc = check_schema(db);
    if (rc == 0 && full_check && !db->opt.skip_open_check)
        rc = quick_check(db);
    for (int i = 0; rc == 0 && i < ST_COUNT; i++) {
        int prc = sqlite3_prepare_v3(db->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                     &db->st[i], NULL);
        if (prc != SQLITE_OK) {
            LF_ERROR(COMP, "%s: prepare %s: %s", db->path, stmt_sql[i], sqlite3_errmsg(db->db));
            rc = db_errcode(db, prc);
        }
    }
    int64_t clock = 0;
    if (rc == 0)
        rc = query_int(db, "SELECT MAX((SELECT value FROM meta WHERE key='clock_ms'),"
                           " COALESCE((SELECT sent_ms FROM messages ORDER BY id DESC LIMIT 1), 0))",
                       &clock);
    if (rc) {
        if (rc == LF_EDB)
            rc = LF_ECORRUPT; /* the schema is there but its statements do not fit it */
        disconnect(db);
        return rc;
    }
    db->persisted_clock = clock > 0 ? (uint64_t)clock : 0;
    if (clock > 0 && (uint64_t)clock > db->last_now) {
        db->last_now = (uint64_t)clock;
        db->last_mono = mono_ms();
    }
    db->broken = false;
    db->fatal = 0;
    return 0;
}

int lf_queue_store_open(const char *path, const lf_queue_options *opt, lf_queue_db **out)
{
    if (!path || !*path || !out)
        return -EINVAL;
    lf_queue_db *db = lf_calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    if (opt)
        db->opt = *opt;
    else
        lf_queue_options_init(&db->opt);
    if (db->opt.max_batch == 0 || db->opt.max_pending == 0) {
        lf_free(db);
        return -EINVAL;
    }
    db->path = lf_strdup(path);
    db->counters = lf_calloc(MAX_TXN_COUNTERS, sizeof *db->counters);
    if (!db->path || !db->counters) {
        lf_free(db->path);
        lf_free(db->counters);
        lf_free(db);
        return -ENOMEM;
    }
    if (getrandom(db->rng, sizeof db->rng, 0) != (ssize_t)sizeof db->rng) {
        db->rng[0] = mono_ms() ^ 0x9e3779b97f4a7c15ull;
        db->rng[1] = (uint64_t)(uintptr_t)db;
    }
    db->last_mono = mono_ms();
    int rc = store_connect(db, true);
    if (rc) {
        lf_free(db->path);
        lf_free(db->counters);
        lf_free(db);
        return rc;
    }
    *out = db;
    return 0;
}

void lf_queue_store_close(lf_queue_db *db)
{
    if (!db)
        return;
    if (db->in_txn)
        lf_queue_store_rollback(db);
    disconnect(db);
    lf_free(db->path);
    lf_free(db->counters);
    lf_free(db);
}

int lf_queue_store_reopen(lf_queue_db *db)
{
    disconnect(db);
    int rc = store_connect(db, false);
    if (rc == 0)
        LF_INFO(COMP, "%s: reopened after a storage error", db->path);
    return rc;
}

int lf_queue_store_begin(lf_queue_db *db)
{
    if (db->broken || !db->db) {
        int rc = lf_queue_store_reopen(db);
        if (rc)
            return rc;
    }
    db->fatal = 0;
    db->ncounters = 0;
    int rc = lf_queue_store_step(db, db->st[ST_BEGIN]);
    sqlite3_reset(db->st[ST_BEGIN]);
    if (rc < 0) {
        db->fatal = 0;
        return rc;
    }
    db->in_txn = true;
    return 0;
}

void lf_queue_store_rollback(lf_queue_db *db)
{
    if (db->db && !sqlite3_get_autocommit(db->db)) {
        int rc = sqlite3_step(db->st[ST_ROLLBACK]);
        sqlite3_reset(db->st[ST_ROLLBACK]);
        if (rc != SQLITE_DONE) {
            LF_WARN(COMP, "%s: rollback: %s", db->path, sqlite3_errmsg(db->db));
            db->broken = true;
        }
    }
    db->ncounters = 0;
    db->fatal = 0;
    db->in_txn = false;
}

int lf_queue_store_commit(lf_queue_db *db)
{
    int rc = db->fatal;
    if (rc == 0)
        rc = flush_counters(db);
    /* The clock is persisted at most once a second (a page less per commit); at open the newest
     * message's send time covers the gap. */
    bool put_clock = db->last_now >= db->persisted_clock + 1000;
    if (rc == 0 && put_clock) {
        sqlite3_stmt *st = db->st[ST_CLOCK_PUT];
        sqlite3_bind_int64(st, 1, (int64_t)db->last_now);
        rc = lf_queue_store_step(db, st);
        sqlite3_reset(st);
    }
    if (rc >= 0) {
        rc = lf_queue_store_step(db, db->st[ST_COMMIT]);
        sqlite3_reset(db->st[ST_COMMIT]);
    }
    if (rc < 0) {
        lf_queue_store_rollback(db);
        return rc;
    }
    db->in_txn = false;
    db->ncounters = 0;
    db->fatal = 0;
    if (put_clock)
        db->persisted_clock = db->last_now;
    return 0;
}

int lf_queue_store_op_begin(lf_queue_db *db)
{
    /* An operation touches at most a few queues: make room so that counting never writes (a
     * write inside the savepoint would be undone with a failed operation). */
    if (db->ncounters > MAX_TXN_COUNTERS - 4) {
        int rc = flush_counters(db);
        if (rc < 0)
            return rc;
    }
    int rc = lf_queue_store_step(db, db->st[ST_SAVEPOINT]);
    sqlite3_reset(db->st[ST_SAVEPOINT]);
    return rc < 0 ? rc : 0;
}

void lf_queue_store_op_end(lf_queue_db *db, bool undo)
{
    if (db->fatal)
        return; /* the whole transaction is rolled back */
    if (undo) {
        if (lf_queue_store_step(db, db->st[ST_ROLLBACK_TO]) < 0)
            return;
        sqlite3_reset(db->st[ST_ROLLBACK_TO]);
    }
    int rc = lf_queue_store_step(db, db->st[ST_RELEASE]);
    (void)rc; /* a failure is in db->fatal: the caller rolls the transaction back */
    sqlite3_reset(db->st[ST_RELEASE]);
}
