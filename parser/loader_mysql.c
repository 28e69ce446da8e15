/* Loading a parsed session into MySQL, one transaction per session (see loader_mysql.h). */
#include "loader_mysql.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_error.h"
#include "lf_log.h"
#include "template_share.h"

int lf_load_method_parse(const char *s, lf_load_method *out)
{
    if (strcmp(s, "infile") == 0)
        *out = LF_LOAD_INFILE;
    else if (strcmp(s, "insert") == 0)
        *out = LF_LOAD_INSERT;
    else
        return -EINVAL;
    return 0;
}

void lf_loader_mysql_opts_default(lf_loader_mysql_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = LF_LOAD_INFILE;
    o->insert_batch_bytes = 1u << 20;
    o->parser_version = "logferry-parser";
    o->max_attempts = 5;
    o->backoff_ms = 100;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Appends a quoted literal, or NULL. */
static int q(lf_mysql *db, lf_buf *b, const char *s, size_t n)
{
    return s ? lf_mysql_quote(db, b, s, n) : lf_buf_append_str(b, "NULL");
}

static int qs(lf_mysql *db, lf_buf *b, const char *s)
{
    return q(db, b, s, s ? strlen(s) : 0);
}

static int q_time(lf_buf *b, int64_t us)
{
    if (us == INT64_MIN)
        return lf_buf_append_str(b, "NULL");
    char t[32];
    lf_psession_datetime(us, t);
    return lf_buf_appendf(b, "'%s'", t);
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f]Z" from a manifest -> microseconds; INT64_MIN when absent. */
static int64_t manifest_time(const char *s)
{
    int64_t epoch;
    if (!s || !lf_manifest_time_valid(s, &epoch))
        return INT64_MIN;
    int64_t us = epoch * 1000000;
    const char *dot = strchr(s, '.');
    if (dot) {
        int64_t scale = 100000;
        for (const char *p = dot + 1; *p >= '0' && *p <= '9' && scale > 0; p++, scale /= 10)
            us += (*p - '0') * scale;
    }
    return us;
}

static int session_row(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o, lf_buf *b)
{
    const lf_manifest *m = &ps->manifest;
    int64_t started = manifest_time(m->started_at), ended = manifest_time(m->ended_at);
    if (started == INT64_MIN)
        started = ps->first_us;
    /* never NULL: the read API lists and pages sessions by started_at */
    if (started == INT64_MIN)
        started = ps->received_ms > 0 ? ps->received_ms * 1000 : now_us();
    if (ended == INT64_MIN)
        ended = ps->last_us;
    bool crashed = ps->crashed;
    for (size_t i = 0; i < m->metadata_count; i++)
        if (strcmp(m->metadata[i].key, "crashed") == 0 && strcmp(m->metadata[i].value, "true") == 0)
            crashed = true;
    int rc = lf_buf_appendf(b, "INSERT INTO sessions (session_id, site, product, product_version, log_type, host, "
                               "user_name, source_path, continuation_of, started_at, ended_at, duration_ms, crashed, "
                               "log_bytes, line_count, event_count, warning_count, error_count, received_at, "
                               "parsed_at, parser_version, metadata) VALUES ('%s',",
                            m->session_id);
    /* site .. continuation_of: quoted strings (NULL for absent), in the column order above */
    const char *strings[] = {m->site, m->product, m->product_version, m->log_type, m->host, m->user,
                             m->source_path, m->continuation_of[0] ? m->continuation_of : NULL};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0] && !rc; i++) {
        rc = qs(db, b, strings[i]);
        rc = rc ? rc : lf_buf_append_char(b, ',');
    }
    rc = rc ? rc : q_time(b, started);
    rc = rc ? rc : lf_buf_append_char(b, ',');
    rc = rc ? rc : q_time(b, ended);
    if (!rc && started != INT64_MIN && ended != INT64_MIN)
        rc = lf_buf_appendf(b, ",%" PRId64, (ended - started) / 1000);
    else if (!rc)
        rc = lf_buf_append_str(b, ",NULL");
    rc = rc ? rc : lf_buf_appendf(b, ",%d,%" PRIu64 ",%u,%zu,%u,%u,", crashed ? 1 : 0, m->log_size, ps->line_count,
                              ps->n_events, ps->warning_count, ps->error_count);
    rc = rc ? rc : q_time(b, ps->received_ms > 0 ? ps->received_ms * 1000 : INT64_MIN);
    rc = rc ? rc : lf_buf_append_char(b, ',');
    rc = rc ? rc : q_time(b, now_us());
    rc = rc ? rc : lf_buf_append_char(b, ',');
    rc = rc ? rc : qs(db, b, o->parser_version);
    rc = rc ? rc : lf_buf_append_char(b, ',');
    if (!rc && m->metadata_count) {
        lf_jw w;
        rc = lf_jw_init(&w, -1, 4096);
        if (!rc) {
            lf_jw_raw(&w, "{", 1);
            for (size_t i = 0; i < m->metadata_count; i++) {
                if (i)
                    lf_jw_raw(&w, ",", 1);
                lf_jw_str(&w, m->metadata[i].key, strlen(m->metadata[i].key));
                lf_jw_raw(&w, ":", 1);
                lf_jw_str(&w, m->metadata[i].value, strlen(m->metadata[i].value));
            }
            lf_jw_raw(&w, "}", 1);
            rc = w.error ? w.error : q(db, b, w.buf, w.len);
            lf_jw_free(&w);
        }
    } else if (!rc) {
        rc = lf_buf_append_str(b, "NULL");
    }
    rc = rc ? rc : lf_buf_append_char(b, ')');
    return rc;
}

static int tsv_field(lf_buf *b, const lf_psession *ps, bool present, lf_pstr s, char sep)
{
    int rc = present ? lf_mysql_tsv_append(b, lf_psession_str(ps, s), s.len) : lf_mysql_tsv_append(b, NULL, 0);
    return rc ? rc : lf_buf_append_char(b, sep);
}

int lf_loader_mysql_events_tsv(const lf_psession *ps, lf_buf *b)
{
    const char *sid = ps->manifest.session_id;
    int rc = 0;
    for (size_t i = 0; i < ps->n_events && !rc; i++) {
        const lf_pevent *e = &ps->events[i];
        char ts[32];
        if (e->has_ts)
            lf_psession_datetime(e->ts_us, ts);
        rc = lf_buf_appendf(b, "%s\t%zu\t%u\t%s\t", sid, i, e->line, e->has_ts ? ts : "\\N");
        rc = rc ? rc : tsv_field(b, ps, e->has_level, e->level, '\t');
        rc = rc ? rc : tsv_field(b, ps, e->has_component, e->component, '\t');
        rc = rc ? rc : lf_buf_appendf(b, "%" PRIu64 "\t", e->template_id);
        rc = rc ? rc : tsv_field(b, ps, true, e->params, '\t');
        rc = rc ? rc : tsv_field(b, ps, true, e->fields, '\t');
        rc = rc ? rc : tsv_field(b, ps, true, e->message, '\n');
    }
    return rc;
}

static int load_events_infile(lf_mysql *db, const lf_psession *ps, lf_buf *b)
{
    const char *sid = ps->manifest.session_id;
    int rc = lf_loader_mysql_events_tsv(ps, b);
    if (rc)
        return rc;
    int64_t n = lf_mysql_load_data(db, "events CHARACTER SET utf8mb4 " LF_LOADER_EVENT_COLUMNS, b->data ? b->data : "", b->len);
    if (n < 0)
        return (int)n;
    if ((size_t)n != ps->n_events) {
        LF_ERROR("loader", "session %s: LOAD DATA loaded %" PRId64 " of %zu events", sid, n, ps->n_events);
        return LF_EDB;
    }
    return 0;
}

static int qfield(lf_mysql *db, lf_buf *b, const lf_psession *ps, bool present, lf_pstr s)
{
    int rc = lf_buf_append_char(b, ',');
    return rc ? rc : (present ? lf_mysql_quote(db, b, lf_psession_str(ps, s), s.len) : lf_buf_append_str(b, "NULL"));
}

static int load_events_insert(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o, lf_buf *b)
{
    const char *sid = ps->manifest.session_id;
    static const char head[] = "INSERT INTO events " LF_LOADER_EVENT_COLUMNS " VALUES ";
    int rc = 0;
    size_t i = 0;
    while (i < ps->n_events && !rc) {
        lf_buf_reset(b);
        rc = lf_buf_append_str(b, head);
        size_t first = i;
        while (i < ps->n_events && !rc && (i == first || b->len < o->insert_batch_bytes)) {
            const lf_pevent *e = &ps->events[i];
            rc = lf_buf_appendf(b, "%s('%s',%zu,%u,", i == first ? "" : ",", sid, i, e->line);
            if (!rc && e->has_ts) {
                char ts[32];
                lf_psession_datetime(e->ts_us, ts);
                rc = lf_buf_appendf(b, "'%s'", ts);
            } else if (!rc) {
                rc = lf_buf_append_str(b, "NULL");
            }
            rc = rc ? rc : qfield(db, b, ps, e->has_level, e->level);
            rc = rc ? rc : qfield(db, b, ps, e->has_component, e->component);
            rc = rc ? rc : lf_buf_appendf(b, ",%" PRIu64, e->template_id);
            rc = rc ? rc : qfield(db, b, ps, true, e->params);
            rc = rc ? rc : qfield(db, b, ps, true, e->fields);
            rc = rc ? rc : qfield(db, b, ps, true, e->message);
            rc = rc ? rc : lf_buf_append_char(b, ')');
            i++;
        }
        if (!rc) {
            int64_t n = lf_mysql_exec(db, lf_buf_cstr(b));
            if (n < 0)
                rc = (int)n;
        }
    }
    return rc;
}

static int cmp_tpl(const void *a, const void *b)
{
    uint64_t x = (*(const lf_ptemplate *const *)a)->id, y = (*(const lf_ptemplate *const *)b)->id;
    return x < y ? -1 : x > y;
}

static int load_templates(lf_mysql *db, const lf_psession *ps, lf_buf *b)
{
    if (ps->n_templates == 0)
        return 0;
    const lf_ptemplate **sorted = malloc(ps->n_templates * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    for (size_t i = 0; i < ps->n_templates; i++)
        sorted[i] = &ps->templates[i];
    qsort(sorted, ps->n_templates, sizeof *sorted, cmp_tpl);
    const char *sid = ps->manifest.session_id;
    int64_t now = now_us();
    lf_buf_reset(b);
    int rc = lf_buf_append_str(b, "INSERT INTO session_templates (session_id, template_id, occurrences) VALUES ");
    for (size_t i = 0; i < ps->n_templates && !rc; i++)
        rc = lf_buf_appendf(b, "%s('%s',%" PRIu64 ",%u)", i ? "," : "", sid, sorted[i]->id, sorted[i]->count);
    if (!rc) {
        int64_t n = lf_mysql_exec(db, lf_buf_cstr(b));
        rc = n < 0 ? (int)n : 0;
    }
    if (!rc) {
        lf_buf_reset(b);
        rc = lf_buf_append_str(b, "INSERT INTO templates (template_id, log_type, template, first_seen, last_seen, "
                                  "occurrences) VALUES ");
    }
    for (size_t i = 0; i < ps->n_templates && !rc; i++) {
        const lf_ptemplate *t = sorted[i];
        rc = lf_buf_appendf(b, "%s(%" PRIu64 ",", i ? "," : "", t->id);
        rc = rc ? rc : qs(db, b, ps->manifest.log_type);
        rc = rc ? rc : lf_buf_append_char(b, ',');
        rc = rc ? rc : lf_mysql_quote(db, b, lf_psession_str(ps, t->text), t->text.len);
        rc = rc ? rc : lf_buf_append_char(b, ',');
        rc = rc ? rc : q_time(b, t->first_us != INT64_MIN ? t->first_us : now);
        rc = rc ? rc : lf_buf_append_char(b, ',');
        rc = rc ? rc : q_time(b, t->last_us != INT64_MIN ? t->last_us : now);
        rc = rc ? rc : lf_buf_appendf(b, ",%u)", t->count);
    }
    rc = rc ? rc : lf_buf_append_str(b, " ON DUPLICATE KEY UPDATE occurrences = occurrences + VALUES(occurrences), "
                                    "first_seen = LEAST(first_seen, VALUES(first_seen)), "
                                    "last_seen = GREATEST(last_seen, VALUES(last_seen))");
    if (!rc) {
        int64_t n = lf_mysql_exec(db, lf_buf_cstr(b));
        rc = n < 0 ? (int)n : 0;
    }
    free(sorted);
    return rc;
}

static int exec_ok(lf_mysql *db, const char *sql)
{
    int64_t n = lf_mysql_exec(db, sql);
    return n < 0 ? (int)n : 0;
}

int lf_loader_mysql_load(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o, lf_buf *scratch)
{
    uint64_t rev;
    return lf_loader_mysql_load_shared(db, ps, NULL, o, scratch, &rev);
}

int lf_loader_mysql_load_shared(lf_mysql *db, const lf_psession *ps, lf_miner *shared, const lf_loader_mysql_opts *o,
                                lf_buf *scratch, uint64_t *rev)
{
    *rev = 0;
    const char *sid = ps->manifest.session_id;
    char sql[512];
    /* READ COMMITTED: no gap locks, so loads of different sessions do not deadlock on the gaps
     * their deletes of absent rows would lock; loads of one session still serialise on its row */
    int rc = exec_ok(db, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    rc = rc ? rc : lf_mysql_begin(db);
    if (rc < 0)
        return rc;
    /* the sessions row first: its lock makes concurrent loads of one session take turns */
    snprintf(sql, sizeof sql, "DELETE FROM sessions WHERE session_id = '%s'", sid);
    rc = exec_ok(db, sql);
    if (!rc) {
        snprintf(sql, sizeof sql,
                 "UPDATE templates t JOIN session_templates st ON st.template_id = t.template_id "
                 "SET t.occurrences = t.occurrences - LEAST(t.occurrences, st.occurrences) "
                 "WHERE st.session_id = '%s'",
                 sid);
        rc = exec_ok(db, sql);
    }
    if (!rc) {
        snprintf(sql, sizeof sql, "DELETE FROM session_templates WHERE session_id = '%s'", sid);
        rc = exec_ok(db, sql);
    }
    if (!rc) {
        snprintf(sql, sizeof sql, "DELETE FROM events WHERE session_id = '%s'", sid);
        rc = exec_ok(db, sql);
    }
    if (!rc) {
        lf_buf_reset(scratch);
        rc = session_row(db, ps, o, scratch);
        rc = rc ? rc : exec_ok(db, lf_buf_cstr(scratch));
        /* another load of this session committed its row after our delete: take turns (retry) */
        if (rc == LF_EDB && lf_mysql_errno(db) == 1062)
            rc = -EDEADLK;
    }
    if (!rc && ps->n_events) {
        lf_buf_reset(scratch);
        rc = o->method == LF_LOAD_INFILE ? load_events_infile(db, ps, scratch) : load_events_insert(db, ps, o, scratch);
    }
    if (!rc && shared)
        rc = lf_template_share_write(db, shared, ps->manifest.log_type, scratch, rev);
    rc = rc ? rc : load_templates(db, ps, scratch);
    rc = rc ? rc : lf_mysql_commit(db);
    if (rc) {
        (void)lf_mysql_rollback(db);
        *rev = 0;
    }
    return rc;
}

int lf_loader_mysql_load_retry(lf_mysql *db, const lf_psession *ps, const lf_loader_mysql_opts *o,
                               lf_buf *scratch, int *attempts)
{
    uint64_t rev;
    return lf_loader_mysql_load_retry_shared(db, ps, NULL, o, scratch, attempts, &rev);
}

int lf_loader_mysql_load_retry_shared(lf_mysql *db, const lf_psession *ps, lf_miner *shared,
                                      const lf_loader_mysql_opts *o, lf_buf *scratch, int *attempts, uint64_t *rev)
{
    int rc = 0, n = 0;
    long wait_ms = o->backoff_ms > 0 ? o->backoff_ms : 100;
    for (;;) {
        n++;
        rc = lf_loader_mysql_load_shared(db, ps, shared, o, scratch, rev);
        if (rc == 0 || !lf_mysql_retryable(rc) || n >= o->max_attempts)
            break;
        LF_WARN("loader", "session %s: attempt %d: %s (%s); retrying", ps->manifest.session_id, n, lf_strerror(rc),
                lf_mysql_error(db));
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
        if (rc != -EDEADLK) {
            int r = lf_mysql_reconnect(db);
            if (r < 0)
                LF_WARN("loader", "reconnecting: %s", lf_strerror(r));
        }
    }
    if (attempts)
        *attempts = n;
    return rc;
}

int lf_loader_mysql_record_failure(lf_mysql *db, const char *session_id, unsigned attempt, const char *stage,
                                   const char *reason, const char *parser_host)
{
    int rc = 0;
    for (int tries = 0; tries < 2; tries++) {
        lf_buf b = LF_BUF_INIT(1 << 20);
        rc = lf_buf_append_str(&b, "INSERT INTO parse_failures (session_id, failed_at, attempt, stage, reason, "
                                   "parser_host) VALUES (");
        rc = rc ? rc : qs(db, &b, session_id);
        rc = rc ? rc : lf_buf_append_char(&b, ',');
        rc = rc ? rc : q_time(&b, now_us());
        rc = rc ? rc : lf_buf_appendf(&b, ",%u,", attempt);
        rc = rc ? rc : qs(db, &b, stage);
        rc = rc ? rc : lf_buf_append_char(&b, ',');
        rc = rc ? rc : q(db, &b, reason ? reason : "", reason ? strlen(reason) : 0);
        rc = rc ? rc : lf_buf_append_char(&b, ',');
        rc = rc ? rc : qs(db, &b, parser_host);
        rc = rc ? rc : lf_buf_append_char(&b, ')');
        rc = rc ? rc : exec_ok(db, lf_buf_cstr(&b));
        lf_buf_free(&b);
        if (rc == 0 || !lf_mysql_retryable(rc))
            break;
        int r = lf_mysql_reconnect(db);
        (void)r; /* a failed reconnect fails the next attempt, which says why */
    }
    return rc;
}
