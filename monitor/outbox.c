/* Durable notification outbox: see outbox.h. */
#include "outbox.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_sqlite_setup.h"
#include "lf_error.h"
#include "lf_log.h"

struct lf_outbox {
    sqlite3 *db;
    lf_outbox_options opt;
    uint64_t rng; /* xorshift64 state for jitter */
    uint64_t delivery_failures;
    lf_slack_links links; /* lf_outbox_set_links; zero: no links */
};

void lf_outbox_set_links(lf_outbox *ob, const lf_slack_links *links)
{
    memset(&ob->links, 0, sizeof ob->links);
    if (links)
        ob->links = *links;
}

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS alert_state("
    "  check_name TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL,"         /* JSON of lf_alert_state */
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS notification("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  check_name TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL,"
    "  value TEXT NOT NULL,"
    "  threshold TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  last_error TEXT,"
    "  delivered_ms INTEGER,"
    "  UNIQUE(check_name, seq));"
    "CREATE INDEX IF NOT EXISTS notification_waiting ON notification(id) WHERE delivered_ms IS NULL;"
    "CREATE TABLE IF NOT EXISTS silence("
    "  check_name TEXT PRIMARY KEY,"
    "  until_ms INTEGER NOT NULL,"
    "  who TEXT,"
    "  why TEXT,"
    "  created_ms INTEGER NOT NULL);";

static int db_fail(lf_outbox *ob, const char *what)
{
    LF_ERROR("outbox", "%s: %s", what, sqlite3_errmsg(ob->db));
    return LF_EDB;
}

static int exec(lf_outbox *ob, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(ob->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        LF_ERROR("outbox", "%s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return LF_EDB;
    }
    return 0;
}

/* WAL mode and the schema; a monitor must not fail to start because someone looked at its status
 * at that moment (see lf_sqlite_setup.h). */
static int set_up(lf_outbox *ob)
{
    char *msg = NULL;
    int rc = lf_sqlite_exec_setup(ob->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                                  LF_SQLITE_BUSY_TIMEOUT_MS, &msg);
    if (rc == SQLITE_OK)
        rc = lf_sqlite_exec_setup(ob->db, schema_sql, LF_SQLITE_BUSY_TIMEOUT_MS, &msg);
    if (rc == SQLITE_OK)
        return 0;
    LF_ERROR("outbox", "setting up the database: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc == SQLITE_NOMEM ? -ENOMEM : LF_EDB;
}

static int prepare(lf_outbox *ob, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(ob->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(ob, "prepare");
    return 0;
}

static uint64_t next_random(lf_outbox *ob)
{
    uint64_t x = ob->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ob->rng = x;
    return x;
}

int lf_outbox_open(const char *path, const lf_outbox_options *opts, lf_outbox **out)
{
    lf_outbox *ob = lf_calloc(1, sizeof(*ob));
    if (!ob)
        return -ENOMEM;
    if (opts)
        ob->opt = *opts;
    if (ob->opt.group_window_ms == 0)
        ob->opt.group_window_ms = LF_OUTBOX_DEFAULT_GROUP_WINDOW_MS;
    else if (ob->opt.group_window_ms < 0)
        ob->opt.group_window_ms = 0; /* no waiting: only notifications of the same instant group */
    if (ob->opt.backoff_base_ms <= 0)
        ob->opt.backoff_base_ms = LF_OUTBOX_DEFAULT_BACKOFF_BASE_MS;
    if (ob->opt.backoff_max_ms < ob->opt.backoff_base_ms)
        ob->opt.backoff_max_ms = ob->opt.backoff_base_ms > LF_OUTBOX_DEFAULT_BACKOFF_MAX_MS
                                     ? ob->opt.backoff_base_ms
                                     : LF_OUTBOX_DEFAULT_BACKOFF_MAX_MS;
    ob->rng = ob->opt.jitter_seed ? ob->opt.jitter_seed
                                  : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    if (ob->rng == 0)
        ob->rng = 1;

    int rc = sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        LF_ERROR("outbox", "open %s: %s", path, ob->db ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc));
        sqlite3_close(ob->db);
        lf_free(ob);
        return rc == SQLITE_NOMEM ? -ENOMEM : LF_EDB;
    }
    sqlite3_busy_timeout(ob->db, LF_SQLITE_BUSY_TIMEOUT_MS);
    if ((rc = set_up(ob)) < 0) {
        lf_outbox_close(ob);
        return rc;
    }
    *out = ob;
    return 0;
}

void lf_outbox_close(lf_outbox *ob)
{
    if (!ob)
        return;
    sqlite3_close(ob->db);
    lf_free(ob);
}

/* ---------------------------------------------------------------------------------------------- */
/* State as JSON: readable with the sqlite3 shell, and new fields can be added later. */

static char *state_to_json(const lf_alert_state *s)
{
    json_t *o = json_object();
    json_t *ch = json_array();
    if (!o || !ch) {
        json_decref(o);
        json_decref(ch);
        return NULL;
    }
    for (uint32_t i = 0; i < s->n_changes && i < LF_ALERT_FLAP_HISTORY; i++)
        json_array_append_new(ch, json_integer(s->changes_ms[i]));
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "status", json_integer(s->status));
    json_object_set_new(o, "announced", json_integer(s->announced));
    json_object_set_new(o, "fail_count", json_integer(s->fail_count));
    json_object_set_new(o, "fail_since_ms", json_integer(s->fail_since_ms));
    json_object_set_new(o, "firing_since_ms", json_integer(s->firing_since_ms));
    json_object_set_new(o, "last_announce_ms", json_integer(s->last_announce_ms));
    json_object_set_new(o, "last_obs_ms", json_integer(s->last_obs_ms));
    json_object_set_new(o, "silenced", json_boolean(s->silenced));
    json_object_set_new(o, "flapping", json_boolean(s->flapping));
    json_object_set_new(o, "flapping_since_ms", json_integer(s->flapping_since_ms));
    json_object_set_new(o, "last_change_ms", json_integer(s->last_change_ms));
    json_object_set_new(o, "changes_ms", ch);
    json_object_set_new(o, "seq", json_integer((json_int_t)s->seq));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static int64_t get_int(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static int state_from_json(const char *text, lf_alert_state *s)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return LF_ECORRUPT;
    }
    lf_alert_state_init(s);
    s->status = (int)get_int(o, "status");
    s->announced = (int)get_int(o, "announced");
    s->fail_count = (uint32_t)get_int(o, "fail_count");
    s->fail_since_ms = get_int(o, "fail_since_ms");
    s->firing_since_ms = get_int(o, "firing_since_ms");
    s->last_announce_ms = get_int(o, "last_announce_ms");
    s->last_obs_ms = get_int(o, "last_obs_ms");
    s->silenced = json_is_true(json_object_get(o, "silenced"));
    s->flapping = json_is_true(json_object_get(o, "flapping"));
    s->flapping_since_ms = get_int(o, "flapping_since_ms");
    s->last_change_ms = get_int(o, "last_change_ms");
    s->seq = (uint64_t)get_int(o, "seq");
    json_t *ch = json_object_get(o, "changes_ms");
    size_t n = json_array_size(ch);
    if (n > LF_ALERT_FLAP_HISTORY)
        n = LF_ALERT_FLAP_HISTORY;
    for (size_t i = 0; i < n; i++)
        s->changes_ms[i] = (int64_t)json_integer_value(json_array_get(ch, i));
    s->n_changes = (uint32_t)n;
    json_decref(o);
    if (s->status < LF_ALERT_OK || s->status > LF_ALERT_FIRING || s->announced < LF_ANNOUNCED_OK ||
        s->announced > LF_ANNOUNCED_FLAPPING)
        return LF_ECORRUPT;
    return 0;
}

static int load_state(lf_outbox *ob, const char *check, lf_alert_state *s)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT state FROM alert_state WHERE check_name = ?", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = state_from_json((const char *)sqlite3_column_text(st, 0), s);
        if (rc)
            LF_ERROR("outbox", "stored state of check %s is unreadable", check);
    } else if (step == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = db_fail(ob, "load state");
    }
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_get_state(lf_outbox *ob, const char *check, lf_alert_state *out)
{
    return load_state(ob, check, out);
}

static int silence_until_locked(lf_outbox *ob, const char *check, int64_t *until)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT MAX(until_ms) FROM silence WHERE check_name IN (?, '*')", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    *until = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *until = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(ob, "read silence");
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_silence_until(lf_outbox *ob, const char *check, int64_t now_ms, int64_t *until_ms)
{
    int rc = silence_until_locked(ob, check, until_ms);
    if (rc == 0 && *until_ms <= now_ms)
        *until_ms = 0;
    return rc;
}

static int save_state(lf_outbox *ob, const char *check, const lf_alert_state *s, int64_t now_ms)
{
    char *text = state_to_json(s);
    if (!text)
        return -ENOMEM;
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob,
                     "INSERT INTO alert_state(check_name, state, updated_ms) VALUES(?, ?, ?) "
                     "ON CONFLICT(check_name) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                     &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(ob, "save state");
    }
    sqlite3_finalize(st);
    free(text);
    return rc;
}

/* Enqueues one notification; 1 when inserted, 0 when (check, seq) was already there. */
static int enqueue(lf_outbox *ob, const char *check, const lf_alert_note *n)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob,
                     "INSERT OR IGNORE INTO notification(check_name, seq, kind, created_ms, since_ms, value, threshold, "
                     "message, next_attempt_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)n->seq);
    sqlite3_bind_text(st, 3, lf_alert_kind_name(n->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, n->at_ms);
    sqlite3_bind_int64(st, 5, n->since_ms);
    sqlite3_bind_text(st, 6, n->value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, n->threshold, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, n->message, -1, SQLITE_STATIC);
    /* the head waits for its grouping window, so notifications created right after join it */
    sqlite3_bind_int64(st, 9, n->at_ms + ob->opt.group_window_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ob, "enqueue");
    else
        rc = sqlite3_changes(ob->db) > 0;
    sqlite3_finalize(st);
    return rc;
}

static int max_seq(lf_outbox *ob, const char *check, uint64_t *seq)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT COALESCE(MAX(seq), 0) FROM notification WHERE check_name = ?", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
    else
        rc = db_fail(ob, "max seq");
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_observe(lf_outbox *ob, const char *check, const lf_alert_rules *rules, const lf_alert_observation *obs,
                      int *n_enqueued)
{
    if (n_enqueued)
        *n_enqueued = 0;
    if (!check || !check[0] || strlen(check) >= LF_OUTBOX_CHECK_MAX || strcmp(check, LF_OUTBOX_ALL_CHECKS) == 0)
        return -EINVAL;
    /* IMMEDIATE: the read-modify-write of the state must not interleave with another writer */
    int rc = exec(ob, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    lf_alert_state prev, next;
    rc = load_state(ob, check, &prev);
    bool had_state = rc == 0;
    if (rc == -ENOENT || rc == LF_ECORRUPT) {
        if (rc == LF_ECORRUPT)
            LF_ERROR("outbox", "check %s: unreadable stored state replaced by a fresh one", check);
        /* numbering continues after any notification of this name, so none collides with the past */
        lf_alert_state_init(&prev);
        rc = max_seq(ob, check, &prev.seq);
    }
    int64_t silence = 0;
    if (rc == 0)
        rc = silence_until_locked(ob, check, &silence);
    int added = 0;
    if (rc == 0) {
        lf_alert_rules r = *rules;
        if (silence > r.silence_until_ms)
            r.silence_until_ms = silence;
        lf_alert_note notes[LF_ALERT_MAX_NOTES];
        int n = lf_alert_step(&prev, obs, &r, &next, notes);
        for (int i = 0; i < n && rc >= 0; i++) {
            rc = enqueue(ob, check, &notes[i]);
            if (rc == 0)
                LF_WARN("outbox", "check %s: notification %llu was already enqueued", check,
                        (unsigned long long)notes[i].seq);
            added += rc > 0;
        }
        /* nothing but the time moved (a healthy check, or a failing one past its pending period
         * between reminders): no write, no fsync. A replay after a restart then re-runs such steps,
         * which by definition emit nothing. A new check is always written, so status lists it. */
        if (rc >= 0 && (n > 0 || !had_state || !lf_alert_state_same(&prev, &next)))
            rc = save_state(ob, check, &next, obs->time_ms);
        for (int i = 0; i < n && rc >= 0; i++)
            LF_INFO("outbox", "check %s: %s enqueued (%s)", check, lf_alert_kind_name(notes[i].kind), notes[i].message);
    }
    if (rc < 0) {
        exec(ob, "ROLLBACK");
        return rc;
    }
    if ((rc = exec(ob, "COMMIT"))) {
        exec(ob, "ROLLBACK");
        return rc;
    }
    if (n_enqueued)
        *n_enqueued = added;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Silences */

int lf_outbox_silence(lf_outbox *ob, const char *check, int64_t until_ms, const char *who, const char *why,
                      int64_t now_ms)
{
    if (!check || !check[0] || strlen(check) >= LF_OUTBOX_CHECK_MAX)
        return -EINVAL;
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob,
                     "INSERT INTO silence(check_name, until_ms, who, why, created_ms) VALUES(?, ?, ?, ?, ?) "
                     "ON CONFLICT(check_name) DO UPDATE SET until_ms = excluded.until_ms, who = excluded.who, "
                     "why = excluded.why, created_ms = excluded.created_ms",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, until_ms);
    sqlite3_bind_text(st, 3, who, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ob, "silence");
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_unsilence(lf_outbox *ob, const char *check)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "DELETE FROM silence WHERE check_name = ?", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, check, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ob, "unsilence");
    else if (sqlite3_changes(ob->db) == 0)
        rc = -ENOENT;
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_foreach_status(lf_outbox *ob, int64_t now_ms, int (*cb)(const lf_outbox_status_row *row, void *ctx),
                             void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob,
                     "SELECT n.check_name, a.state, s.until_ms, s.who, s.why,"
                     " (SELECT COUNT(*) FROM notification q WHERE q.check_name = n.check_name AND q.delivered_ms IS NULL)"
                     " FROM (SELECT check_name FROM alert_state UNION SELECT check_name FROM silence WHERE until_ms > ?1) n"
                     " LEFT JOIN alert_state a ON a.check_name = n.check_name"
                     " LEFT JOIN silence s ON s.check_name = n.check_name AND s.until_ms > ?1"
                     " ORDER BY n.check_name",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        lf_outbox_status_row row;
        memset(&row, 0, sizeof(row));
        row.check = (const char *)sqlite3_column_text(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL)
            row.has_state = state_from_json((const char *)sqlite3_column_text(st, 1), &row.state) == 0;
        row.silence_until_ms = sqlite3_column_int64(st, 2);
        row.silence_who = (const char *)sqlite3_column_text(st, 3);
        row.silence_why = (const char *)sqlite3_column_text(st, 4);
        row.undelivered = sqlite3_column_int64(st, 5);
        if ((rc = cb(&row, ctx)) != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(ob, "status");
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Delivery */

static void read_entry(sqlite3_stmt *st, lf_outbox_entry *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    snprintf(e->check, sizeof(e->check), "%s", (const char *)sqlite3_column_text(st, 1));
    e->note.seq = (uint64_t)sqlite3_column_int64(st, 2);
    int kind = lf_alert_kind_parse((const char *)sqlite3_column_text(st, 3));
    e->note.kind = kind > 0 ? kind : LF_NOTIFY_FIRING;
    e->note.at_ms = sqlite3_column_int64(st, 4);
    e->note.since_ms = sqlite3_column_int64(st, 5);
    snprintf(e->note.value, sizeof(e->note.value), "%s", (const char *)sqlite3_column_text(st, 6));
    snprintf(e->note.threshold, sizeof(e->note.threshold), "%s", (const char *)sqlite3_column_text(st, 7));
    snprintf(e->note.message, sizeof(e->note.message), "%s", (const char *)sqlite3_column_text(st, 8));
    e->attempts = (uint32_t)sqlite3_column_int(st, 9);
    e->next_attempt_ms = sqlite3_column_int64(st, 10);
}

#define ENTRY_COLUMNS "id, check_name, seq, kind, created_ms, since_ms, value, threshold, message, attempts, next_attempt_ms"

static const char *route_of(const lf_outbox *ob, const char *check)
{
    return ob->links.route_of ? ob->links.route_of(ob->links.arg, check) : NULL;
}

static bool same_route(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int lf_outbox_next_batch(lf_outbox *ob, int64_t now_ms, lf_outbox_batch *batch)
{
    batch->n = 0;
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT " ENTRY_COLUMNS " FROM notification WHERE delivered_ms IS NULL ORDER BY id LIMIT 1", &st);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        read_entry(st, &batch->items[0]);
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return 0;
    if (step != SQLITE_ROW)
        return db_fail(ob, "outbox head");
    const lf_outbox_entry *head = &batch->items[0];
    if (head->next_attempt_ms > now_ms)
        return 0; /* the head waits (window or backoff), and everything behind it */
    batch->n = 1;
    rc = prepare(ob,
                 "SELECT " ENTRY_COLUMNS " FROM notification WHERE delivered_ms IS NULL AND id > ? "
                 "AND created_ms <= ? ORDER BY id LIMIT ?",
                 &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, head->id);
    sqlite3_bind_int64(st, 2, head->note.at_ms + ob->opt.group_window_ms);
    sqlite3_bind_int(st, 3, LF_SLACK_MAX_ITEMS - 1);
    const char *route = route_of(ob, head->check);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        read_entry(st, &batch->items[batch->n]);
        /* one message goes to one webhook: another route's notification waits for its own message
         * (it is then the head; the order per check, hence per route, is kept) */
        if (same_route(route, route_of(ob, batch->items[batch->n].check)))
            batch->n++;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        batch->n = 0;
        return db_fail(ob, "outbox group");
    }
    return (int)batch->n;
}

static int update_batch(lf_outbox *ob, const lf_outbox_batch *batch, const char *sql, int64_t a, const char *text)
{
    int rc = exec(ob, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = prepare(ob, sql, &st);
    for (size_t i = 0; rc == 0 && i < batch->n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, batch->items[i].id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_fail(ob, "update outbox");
    }
    sqlite3_finalize(st);
    if (rc == 0 && (rc = exec(ob, "COMMIT")) == 0)
        return 0;
    exec(ob, "ROLLBACK");
    return rc;
}

int lf_outbox_mark_delivered(lf_outbox *ob, const lf_outbox_batch *batch, int64_t now_ms)
{
    return update_batch(ob, batch,
                        "UPDATE notification SET delivered_ms = ?1, attempts = attempts + 1, last_error = ?2 "
                        "WHERE id = ?3 AND delivered_ms IS NULL",
                        now_ms, NULL);
}

int lf_outbox_mark_failed(lf_outbox *ob, const lf_outbox_batch *batch, int64_t now_ms, int http_status,
                          int64_t retry_after_ms, const char *error, int64_t *next_ms)
{
    if (batch->n == 0)
        return -EINVAL;
    int64_t next;
    if (http_status == 429 && retry_after_ms > 0) {
        next = now_ms + retry_after_ms; /* exactly what the server asked for */
    } else {
        uint32_t attempts = batch->items[0].attempts; /* the group shares its history */
        int64_t delay = ob->opt.backoff_base_ms;
        for (uint32_t i = 0; i < attempts && delay < ob->opt.backoff_max_ms; i++)
            delay *= 2;
        if (delay > ob->opt.backoff_max_ms)
            delay = ob->opt.backoff_max_ms;
        /* equal jitter: half fixed, half random, so many monitors do not retry in step */
        int64_t half = delay / 2;
        next = now_ms + half + (int64_t)(next_random(ob) % (uint64_t)(delay - half + 1));
    }
    char err[256];
    const char *sep = error && error[0] ? ": " : "";
    if (http_status)
        snprintf(err, sizeof(err), "HTTP %d%s%s", http_status, sep, error ? error : "");
    else
        snprintf(err, sizeof(err), "transport failure%s%s", sep, error ? error : "");
    int rc = update_batch(ob, batch,
                          "UPDATE notification SET next_attempt_ms = ?1, attempts = attempts + 1, last_error = ?2 "
                          "WHERE id = ?3 AND delivered_ms IS NULL",
                          next, err);
    if (rc == 0 && next_ms)
        *next_ms = next;
    return rc;
}

int lf_outbox_undelivered(lf_outbox *ob, int64_t *count)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT COUNT(*) FROM notification WHERE delivered_ms IS NULL", &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(ob, "count");
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_next_due(lf_outbox *ob, int64_t *due_ms)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(ob, "SELECT next_attempt_ms FROM notification WHERE delivered_ms IS NULL ORDER BY id LIMIT 1", &st);
    if (rc)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *due_ms = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = db_fail(ob, "next due");
    sqlite3_finalize(st);
    return rc;
}

int lf_outbox_deliver_due(lf_outbox *ob, int64_t now_ms, const char *host, lf_outbox_send_fn send, void *ctx,
                          int max_messages)
{
    int sent = 0;
    lf_outbox_batch *batch = lf_malloc(sizeof(*batch));
    if (!batch)
        return -ENOMEM;
    lf_buf body = LF_BUF_INIT(1 << 20);
    int rc = 0;
    while (sent < max_messages) {
        rc = lf_outbox_next_batch(ob, now_ms, batch);
        if (rc <= 0)
            break;
        lf_slack_item items[LF_SLACK_MAX_ITEMS];
        for (size_t i = 0; i < batch->n; i++)
            items[i] = (lf_slack_item){batch->items[i].check, &batch->items[i].note,
                                       ob->links.runbook_of ? ob->links.runbook_of(ob->links.arg, batch->items[i].check)
                                                            : NULL};
        lf_buf_reset(&body);
        if ((rc = lf_slack_message_build_linked(items, batch->n, host, ob->links.dashboard_url, now_ms, &body)) < 0)
            break;
        int status = 0;
        int64_t retry_after = 0;
        int src = send(body.data, body.len, route_of(ob, batch->items[0].check), ctx, &status, &retry_after);
        if (src == 0 && status == 200) {
            if ((rc = lf_outbox_mark_delivered(ob, batch, now_ms)) < 0)
                break;
            LF_INFO("outbox", "delivered a message with %zu notification(s)", batch->n);
            sent++;
            continue;
        }
        int64_t next = 0;
        char why[64] = "";
        if (src < 0)
            snprintf(why, sizeof(why), "%s", lf_strerror(src));
        ob->delivery_failures++;
        rc = lf_outbox_mark_failed(ob, batch, now_ms, src == 0 ? status : 0, retry_after, why, &next);
        if (rc < 0)
            break;
        LF_WARN("outbox", "webhook %s%d%s; %zu notification(s) retried in %lld ms", src == 0 ? "answered " : "failed: ",
                src == 0 ? status : src, status == 429 ? " (rate limited)" : "", batch->n, (long long)(next - now_ms));
        rc = 0;
        break;
    }
    lf_buf_free(&body);
    lf_free(batch);
    return rc < 0 ? rc : sent;
}

uint64_t lf_outbox_delivery_failures(const lf_outbox *ob)
{
    return ob->delivery_failures;
}

int lf_outbox_prune(lf_outbox *ob, int64_t before_ms)
{
    sqlite3_stmt *st = NULL;
    int removed = 0;
    int rc = prepare(ob, "DELETE FROM notification WHERE delivered_ms IS NOT NULL AND delivered_ms < ?", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, before_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ob, "prune");
    removed += sqlite3_changes(ob->db);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    rc = prepare(ob, "DELETE FROM silence WHERE until_ms < ?", &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, before_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ob, "prune");
    removed += sqlite3_changes(ob->db);
    sqlite3_finalize(st);
    return rc ? rc : removed;
}
