/* The receiver's read routes over the parsed-events database and Elasticsearch (see read_routes.h). */
#include "read_routes.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_json.h"
#include "lf_log.h"
#include "read_search.h"
#include "receiver.h"

#define POOL_MAX 16

struct lf_read_routes {
    uv_loop_t *loop;
    lf_tokens *tokens;
    lf_mysql_options my; /* owns its strings */
    char *es_prefix;
    lf_es_conn es; /* es.url NULL: no search */
    pthread_mutex_t mu;
    lf_mysql *idle[POOL_MAX];
    size_t n_idle;
    unsigned open, pool_size;
};

enum job_kind { JOB_LIST, JOB_EVENTS, JOB_SEARCH };

typedef struct job {
    uv_work_t work;
    lf_read_routes *rr;
    lf_http_request *req;
    enum job_kind kind;
    char id[33];
    /* room for the longest value a column can hold (utf8mb4: 4 bytes a character); longer ones are
     * refused, not cut */
    char site[64 * 4 + 1], product[128 * 4 + 1], from[40], to[40], cursor[64], q[1024];
    unsigned limit;
    int status;
    const char *code;
    char message[256];
    lf_buf out;
} job;

static lf_mysql *pool_get(lf_read_routes *rr, int *rc)
{
    pthread_mutex_lock(&rr->mu);
    lf_mysql *db = rr->n_idle ? rr->idle[--rr->n_idle] : NULL;
    bool may_open = !db && rr->open < rr->pool_size;
    if (may_open)
        rr->open++;
    pthread_mutex_unlock(&rr->mu);
    *rc = 0;
    if (db || !may_open) {
        if (!db)
            *rc = -EBUSY;
        return db;
    }
    *rc = lf_mysql_connect(&rr->my, &db);
    if (*rc < 0) {
        pthread_mutex_lock(&rr->mu);
        rr->open--;
        pthread_mutex_unlock(&rr->mu);
        return NULL;
    }
    return db;
}

static void pool_put(lf_read_routes *rr, lf_mysql *db, bool broken)
{
    pthread_mutex_lock(&rr->mu);
    if (broken || rr->n_idle == POOL_MAX) {
        rr->open--;
        pthread_mutex_unlock(&rr->mu);
        lf_mysql_close(db);
        return;
    }
    rr->idle[rr->n_idle++] = db;
    pthread_mutex_unlock(&rr->mu);
}

static bool chars_in(const char *s, const char *allowed, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!strchr(allowed, *s))
            return false;
    return true;
}

static bool hex_id(const char *s)
{
    return strlen(s) == 32 && chars_in(s, "0123456789abcdef", 32);
}

/* A date from the query in SQL's form: "T" and "Z" dropped. */
static bool sql_time(const char *in, char *out, size_t n)
{
    if (!chars_in(in, "0123456789-: T.Z", 32))
        return false;
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < n; i++)
        if (in[i] != 'Z')
            out[j++] = in[i] == 'T' ? ' ' : in[i];
    out[j] = '\0';
    return true;
}

static void fail(job *j, int status, const char *code, const char *msg)
{
    j->status = status;
    j->code = code;
    snprintf(j->message, sizeof j->message, "%s", msg);
}

typedef struct rows_ctx {
    json_t *arr;
    job *j;
    char last_started[32], last_id[33];
    long long last_seq;
} rows_ctx;

static json_t *str_or_null(const char *v, unsigned long len)
{
    return v ? json_stringn(v, len) : json_null();
}

static json_t *json_text(const char *v, unsigned long len)
{
    if (!v)
        return json_null();
    json_t *x = json_loadb(v, len, JSON_DECODE_ANY, NULL);
    return x ? x : json_stringn(v, len);
}

static int session_row(void *arg, unsigned n, char **v, unsigned long *l)
{
    rows_ctx *c = arg;
    if (n < 14)
        return LF_EFORMAT;
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "session_id",
                          str_or_null(v[0], l[0]), "site", str_or_null(v[1], l[1]), "product", str_or_null(v[2], l[2]),
                          "product_version", str_or_null(v[3], l[3]), "log_type", str_or_null(v[4], l[4]), "host",
                          str_or_null(v[5], l[5]), "user", str_or_null(v[6], l[6]), "started_at",
                          str_or_null(v[7], l[7]), "ended_at", str_or_null(v[8], l[8]), "event_count",
                          json_integer(v[9] ? atoll(v[9]) : 0), "error_count", json_integer(v[10] ? atoll(v[10]) : 0),
                          "crashed", json_boolean(v[11] && v[11][0] == '1'), "parsed_at", str_or_null(v[12], l[12]));
    if (!o || json_array_append_new(c->arr, o) != 0)
        return -ENOMEM;
    snprintf(c->last_started, sizeof c->last_started, "%s", v[13] ? v[13] : "");
    snprintf(c->last_id, sizeof c->last_id, "%s", v[0] ? v[0] : "");
    return 0;
}

static int event_row(void *arg, unsigned n, char **v, unsigned long *l)
{
    rows_ctx *c = arg;
    if (n < 9)
        return LF_EFORMAT;
    char tid[24];
    snprintf(tid, sizeof tid, "%016llx", v[5] ? strtoull(v[5], NULL, 10) : 0ULL);
    json_t *o = json_pack("{s:I, s:I, s:o, s:o, s:o, s:s, s:o, s:o, s:o}", "seq", (json_int_t)atoll(v[0]), "line",
                          (json_int_t)atoll(v[1]), "ts", str_or_null(v[2], l[2]), "level", str_or_null(v[3], l[3]),
                          "component", str_or_null(v[4], l[4]), "template_id", tid, "params", json_text(v[6], l[6]),
                          "fields", json_text(v[7], l[7]), "message", str_or_null(v[8], l[8]));
    if (!o || json_array_append_new(c->arr, o) != 0)
        return -ENOMEM;
    c->last_seq = atoll(v[0]);
    return 0;
}

/* Cursor of the session list: started_at's 17 digits (or "null" for a session without a start time,
 * which the list puts last), '-', the session id. */
static bool parse_list_cursor(const char *s, char *started, size_t n, char *id)
{
    if (strncmp(s, "null-", 5) == 0 && hex_id(s + 5)) {
        started[0] = '\0';
        memcpy(id, s + 5, 33);
        return true;
    }
    if (strlen(s) != 50 || s[17] != '-')
        return false;
    for (int i = 0; i < 17; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    if (!hex_id(s + 18))
        return false;
    snprintf(started, n, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s.%.3s", s, s + 4, s + 6, s + 8, s + 10, s + 12, s + 14);
    memcpy(id, s + 18, 33);
    return true;
}

static void make_list_cursor(const char *started, const char *id, char *out, size_t n)
{
    if (!started) {
        snprintf(out, n, "null-%s", id);
        return;
    }
    char d[18];
    size_t k = 0;
    for (const char *p = started; *p && k < 17; p++)
        if (*p >= '0' && *p <= '9')
            d[k++] = *p;
    while (k < 17)
        d[k++] = '0';
    d[17] = '\0';
    snprintf(out, n, "%s-%s", d, id);
}

static int run_list(job *j, lf_mysql *db)
{
    lf_buf sql = LF_BUF_INIT(1 << 16);
    int rc = lf_buf_append_str(&sql, "SELECT session_id, site, product, product_version, log_type, host, user_name, "
                                     "DATE_FORMAT(started_at, '%Y-%m-%dT%H:%i:%s.%fZ'), "
                                     "DATE_FORMAT(ended_at, '%Y-%m-%dT%H:%i:%s.%fZ'), event_count, error_count, crashed, "
                                     "DATE_FORMAT(parsed_at, '%Y-%m-%dT%H:%i:%s.%fZ'), "
                                     "DATE_FORMAT(started_at, '%Y%m%d%H%i%s%f') FROM sessions WHERE 1=1");
    if (!rc && j->site[0]) {
        rc = lf_buf_append_str(&sql, " AND site = ");
        rc = rc ? rc : lf_mysql_quote(db, &sql, j->site, strlen(j->site));
    }
    if (!rc && j->product[0]) {
        rc = lf_buf_append_str(&sql, " AND product = ");
        rc = rc ? rc : lf_mysql_quote(db, &sql, j->product, strlen(j->product));
    }
    if (!rc && j->from[0])
        rc = lf_buf_appendf(&sql, " AND started_at >= '%s'", j->from);
    if (!rc && j->to[0])
        rc = lf_buf_appendf(&sql, " AND started_at <= '%s'", j->to);
    if (!rc && j->cursor[0]) {
        char started[32], id[33];
        if (!parse_list_cursor(j->cursor, started, sizeof started, id)) {
            lf_buf_free(&sql);
            fail(j, 400, "bad_request", "cursor is not one this API gave");
            return 0;
        }
        /* the order is started_at descending with the sessions without one last, then the id; the
         * predicate says "after the cursor" in that same order */
        if (started[0])
            rc = lf_buf_appendf(&sql,
                                " AND (started_at < '%s' OR (started_at = '%s' AND session_id < '%s') OR "
                                "started_at IS NULL)",
                                started, started, id);
        else
            rc = lf_buf_appendf(&sql, " AND started_at IS NULL AND session_id < '%s'", id);
    }
    if (!rc) /* descending, SQL puts NULL last */
        rc = lf_buf_appendf(&sql, " ORDER BY started_at DESC, session_id DESC LIMIT %u", j->limit + 1);
    rows_ctx c = {.arr = json_array(), .j = j};
    if (!rc)
        rc = lf_mysql_query(db, lf_buf_cstr(&sql), session_row, &c);
    lf_buf_free(&sql);
    if (rc < 0) {
        json_decref(c.arr);
        return rc;
    }
    json_t *ans = json_object();
    if (json_array_size(c.arr) > j->limit) {
        json_array_remove(c.arr, j->limit);
        json_t *last = json_array_get(c.arr, j->limit - 1);
        /* the cursor comes from the last row kept: re-read its raw started_at digits */
        const char *sid = json_string_value(json_object_get(last, "session_id"));
        const char *st = json_string_value(json_object_get(last, "started_at")); /* NULL: no start time */
        char cur[64];
        make_list_cursor(st, sid ? sid : "", cur, sizeof cur);
        json_object_set_new(ans, "next_cursor", json_string(cur));
    }
    json_object_set_new(ans, "sessions", c.arr);
    rc = lf_json_dump(ans, &j->out);
    json_decref(ans);
    return rc;
}

static int run_events(job *j, lf_mysql *db)
{
    char sql[1024];
    int64_t exists = 0;
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM sessions WHERE session_id = '%s'", j->id);
    int rc = lf_mysql_query_int(db, sql, &exists);
    if (rc < 0)
        return rc;
    if (!exists) {
        fail(j, 404, "not_found", "no parsed session with this id");
        return 0;
    }
    long long from = 0;
    if (j->cursor[0]) {
        if (!chars_in(j->cursor, "0123456789", 10)) {
            fail(j, 400, "bad_request", "cursor is not one this API gave");
            return 0;
        }
        from = atoll(j->cursor);
    }
    snprintf(sql, sizeof sql,
             /* the template id resolved through merges (parser/template_share.h) */
             "SELECT e.seq, e.line, DATE_FORMAT(e.ts, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'), e.level, e.component, "
             "COALESCE(m.canonical_id, e.template_id), e.params, e.fields, e.message FROM events e LEFT JOIN templates "
             "m ON m.template_id = e.template_id WHERE e.session_id = '%s' AND e.seq >= %lld ORDER BY e.seq LIMIT %u",
             j->id, from, j->limit + 1);
    rows_ctx c = {.arr = json_array(), .j = j};
    rc = lf_mysql_query(db, sql, event_row, &c);
    if (rc < 0) {
        json_decref(c.arr);
        return rc;
    }
    json_t *ans = json_object();
    if (json_array_size(c.arr) > j->limit) {
        json_t *extra = json_array_get(c.arr, j->limit);
        char cur[32];
        snprintf(cur, sizeof cur, "%lld", (long long)json_integer_value(json_object_get(extra, "seq")));
        json_object_set_new(ans, "next_cursor", json_string(cur));
        json_array_remove(c.arr, j->limit);
    }
    json_object_set_new(ans, "session_id", json_string(j->id));
    json_object_set_new(ans, "events", c.arr);
    rc = lf_json_dump(ans, &j->out);
    json_decref(ans);
    return rc;
}

static void work(uv_work_t *w)
{
    job *j = w->data;
    if (j->status)
        return;
    if (j->kind == JOB_SEARCH) {
        char err[256] = "";
        int rc = lf_read_search_es(&j->rr->es, j->rr->es_prefix, j->q, j->from[0] ? j->from : NULL,
                                   j->to[0] ? j->to : NULL, j->limit, &j->out, err, sizeof err);
        if (rc < 0)
            fail(j, 503, "search_unavailable", err);
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc;
        lf_mysql *db = pool_get(j->rr, &rc);
        if (!db) {
            fail(j, 503, "database_unavailable", rc == -EBUSY ? "all database connections are busy"
                                                               : "the parsed-events database is not reachable");
            return;
        }
        lf_buf_reset(&j->out);
        rc = j->kind == JOB_LIST ? run_list(j, db) : run_events(j, db);
        bool broken = rc < 0 && lf_mysql_retryable(rc);
        if (rc < 0 && !broken)
            LF_ERROR("read", "query: %s", lf_mysql_error(db));
        pool_put(j->rr, db, broken);
        if (rc == 0)
            return;
        if (!broken) {
            fail(j, 500, "internal", "the query failed");
            return;
        }
    }
    fail(j, 503, "database_unavailable", "the parsed-events database connection was lost");
}

static void after_work(uv_work_t *w, int status)
{
    job *j = w->data;
    if (status != 0 && !j->status)
        fail(j, 503, "cancelled", "the server is stopping");
    if (j->status)
        lf_http_respond_error(j->req, j->status, j->code, j->message, NULL);
    else
        lf_http_respond(j->req, 200, "application/json", j->out.data, j->out.len, NULL);
    lf_buf_free(&j->out);
    lf_free(j);
}

/* A query parameter into out (n bytes): true with out set ("" when absent), or false after refusing
 * the request with 400 (a value that cannot be read whole never counts as absent: that would widen
 * the answer). */
static bool query_str(job *j, const char *name, char *out, size_t n)
{
    int rc = lf_http_request_query_param(j->req, name, out, n);
    if (rc == -ENOENT) {
        out[0] = '\0';
        return true;
    }
    if (rc >= 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof msg, "%s %s", name, lf_http_query_problem(rc));
    fail(j, 400, "bad_request", msg);
    return false;
}

/* limit: def when absent, else 1..max, else false (400 set). */
static bool get_limit(job *j, unsigned def, unsigned max, unsigned *out)
{
    char buf[32], msg[64];
    snprintf(msg, sizeof msg, "limit must be 1 to %u", max);
    int rc = lf_http_request_query_param(j->req, "limit", buf, sizeof buf);
    if (rc == -ENOENT) {
        *out = def;
        return true;
    }
    if (rc < 0 || !chars_in(buf, "0123456789", 6) || atoi(buf) < 1 || (unsigned)atoi(buf) > max) {
        fail(j, 400, "bad_request", msg);
        return false;
    }
    *out = (unsigned)atoi(buf);
    return true;
}

static job *new_job(lf_http_request *req, enum job_kind kind)
{
    lf_read_routes *rr = req->route_data;
    if (lf_tokens_authorize(rr->tokens, req, "read") != 0)
        return NULL;
    job *j = lf_calloc(1, sizeof *j);
    if (!j) {
        lf_http_respond_error(req, 503, "busy", "out of memory", NULL);
        return NULL;
    }
    j->rr = rr;
    j->req = req;
    j->kind = kind;
    j->work.data = j;
    lf_buf_init(&j->out, 64u << 20);
    return j;
}

static void submit(job *j)
{
    if (uv_queue_work(j->rr->loop, &j->work, work, after_work) != 0) {
        lf_http_respond_error(j->req, 503, "busy", "cannot queue the query", NULL);
        lf_buf_free(&j->out);
        lf_free(j);
    }
}

static void reject(job *j, const char *msg)
{
    lf_http_respond_error(j->req, 400, "bad_request", msg, NULL);
    lf_buf_free(&j->out);
    lf_free(j);
}

/* Answers the 400 that query_str or get_limit set. */
static void refuse(job *j)
{
    lf_http_respond_error(j->req, j->status, j->code, j->message, NULL);
    lf_buf_free(&j->out);
    lf_free(j);
}

/* Names and text that the database compares as UTF-8: other bytes are refused. */
static bool utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 3 : -1;
        if (n < 0)
            return false;
        unsigned cp = n == 0 ? *p : n == 1 ? *p & 0x1f : n == 2 ? *p & 0x0f : *p & 0x07;
        for (int k = 1; k <= n; k++) {
            if ((p[k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[k] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        p += n + 1;
    }
    return true;
}

static void handle_list(lf_http_request *req)
{
    job *j = new_job(req, JOB_LIST);
    if (!j)
        return;
    char from[64], to[64];
    if (!query_str(j, "site", j->site, sizeof j->site) || !query_str(j, "product", j->product, sizeof j->product) ||
        !query_str(j, "cursor", j->cursor, sizeof j->cursor) || !query_str(j, "from", from, sizeof from) ||
        !query_str(j, "to", to, sizeof to) || !get_limit(j, 100, 1000, &j->limit))
        {
        refuse(j);
        return;
    }
    if (!utf8(j->site) || !utf8(j->product))
        {
        reject(j, "site and product are UTF-8 text");
        return;
    }
    if ((from[0] && !sql_time(from, j->from, sizeof j->from)) || (to[0] && !sql_time(to, j->to, sizeof j->to)))
        {
        reject(j, "from and to are dates: YYYY-MM-DD[THH:MM:SS[.fff]][Z]");
        return;
    }
    char started[32], id[33];
    if (j->cursor[0] && !parse_list_cursor(j->cursor, started, sizeof started, id))
        {
        reject(j, "cursor is not one this API gave");
        return;
    }
    submit(j);
}

static void handle_events(lf_http_request *req)
{
    job *j = new_job(req, JOB_EVENTS);
    if (!j)
        return;
    if (req->n_params < 1 || !hex_id(req->params[0]))
        {
        reject(j, "a session id is 32 lowercase hex digits");
        return;
    }
    memcpy(j->id, req->params[0], 33);
    if (!query_str(j, "cursor", j->cursor, sizeof j->cursor) || !get_limit(j, 1000, 10000, &j->limit))
        {
        refuse(j);
        return;
    }
    if (j->cursor[0] && !chars_in(j->cursor, "0123456789", 10))
        {
        reject(j, "cursor is not one this API gave");
        return;
    }
    submit(j);
}

static void handle_search(lf_http_request *req)
{
    job *j = new_job(req, JOB_SEARCH);
    if (!j)
        return;
    if (!j->rr->es.url) {
        lf_http_respond_error(req, 503, "search_unavailable", "no Elasticsearch is configured", NULL);
        lf_buf_free(&j->out);
        lf_free(j);
        return;
    }
    char from[64], to[64];
    if (!query_str(j, "q", j->q, sizeof j->q) || !query_str(j, "from", from, sizeof from) ||
        !query_str(j, "to", to, sizeof to) || !get_limit(j, 100, 1000, &j->limit))
        {
        refuse(j);
        return;
    }
    if (!j->q[0])
        {
        reject(j, "q is required");
        return;
    }
    if (!utf8(j->q))
        {
        reject(j, "q is UTF-8 text");
        return;
    }
    if ((from[0] && !chars_in(from, "0123456789-:T.Z", 32)) || (to[0] && !chars_in(to, "0123456789-:T.Z", 32)))
        {
        reject(j, "from and to are dates: YYYY-MM-DD[THH:MM:SS[.fff]Z]");
        return;
    }
    snprintf(j->from, sizeof j->from, "%s", from);
    snprintf(j->to, sizeof j->to, "%s", to);
    submit(j);
}

int lf_receiver_read_routes(lf_receiver *r)
{
    const struct lf_receiver_config *cfg = r->cfg;
    lf_read_routes_opts ro = {
        .mysql = {.host = cfg->mysql_host, .port = (unsigned)cfg->mysql_port, .user = cfg->mysql_user,
                  .password = cfg->mysql_password, .database = cfg->mysql_database, .tls = cfg->mysql_tls},
        .es_url = cfg->search_es_url,
        .es_auth = &cfg->search_es_auth,
        .es_index_prefix = cfg->search_index_prefix,
        .pool_size = (unsigned)cfg->mysql_pool_size,
        .tokens = &r->tokens,
    };
    return lf_read_routes_register(lf_service_http(r->svc), r->loop, &ro, &r->read_routes);
}

int lf_read_routes_register(lf_http_server *srv, uv_loop_t *loop, const lf_read_routes_opts *o,
                            lf_read_routes **out)
{
    lf_read_routes *rr = lf_calloc(1, sizeof *rr);
    if (!rr)
        return -ENOMEM;
    rr->loop = loop;
    rr->tokens = o->tokens;
    int rc = lf_mysql_options_copy(&rr->my, &o->mysql);
    rr->my.create_database = false;
    rr->es_prefix = lf_strdup(o->es_index_prefix ? o->es_index_prefix : "logferry-events-");
    rr->pool_size = o->pool_size ? (o->pool_size > POOL_MAX ? POOL_MAX : o->pool_size) : 4;
    pthread_mutex_init(&rr->mu, NULL);
    if (rc == 0 && !rr->es_prefix)
        rc = -ENOMEM;
    if (rc == 0 && o->es_url) {
        lf_buf why = LF_BUF_INIT(512);
        rc = lf_es_conn_init(&rr->es, o->es_url, o->es_auth, &why);
        if (rc != 0)
            LF_ERROR("receiver", "[search]: %s", rc == -ENOMEM ? "out of memory" : lf_buf_cstr(&why));
        lf_buf_free(&why);
    }
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_GET, "/v1/sessions", 0, handle_list, NULL, rr);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_GET, "/v1/sessions/{id}/events", 0, handle_events, NULL, rr);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_GET, "/v1/search", 0, handle_search, NULL, rr);
    if (rc != 0) {
        lf_read_routes_free(rr);
        return rc;
    }
    *out = rr;
    return 0;
}

void lf_read_routes_free(lf_read_routes *rr)
{
    if (!rr)
        return;
    for (size_t i = 0; i < rr->n_idle; i++)
        lf_mysql_close(rr->idle[i]);
    pthread_mutex_destroy(&rr->mu);
    lf_mysql_options_free(&rr->my);
    lf_es_conn_free(&rr->es);
    lf_free(rr->es_prefix);
    lf_free(rr);
}

const char *lf_read_routes_parse_status(lf_read_routes *rr, const char *session_id, long long *events)
{
    if (!hex_id(session_id))
        return NULL;
    int rc;
    lf_mysql *db = pool_get(rr, &rc);
    if (!db)
        return NULL;
    char sql[256];
    int64_t n = -1;
    const char *status = NULL;
    snprintf(sql, sizeof sql, "SELECT event_count FROM sessions WHERE session_id = '%s'", session_id);
    rc = lf_mysql_query_int(db, sql, &n);
    if (rc == 0) {
        status = "parsed";
        if (events)
            *events = n;
    } else if (rc == -ENOENT) {
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM parse_failures WHERE session_id = '%s'", session_id);
        if (lf_mysql_query_int(db, sql, &n) == 0 && n > 0)
            status = "failed";
        rc = 0;
    }
    pool_put(rr, db, rc < 0 && lf_mysql_retryable(rc));
    return status;
}
