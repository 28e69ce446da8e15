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

#define POOL_MAX 16

struct lf_read_routes {
    uv_loop_t *loop;
    lf_mysql_options my;
    char *host, *socket, *user, *password, *database, *es_url, *es_prefix;
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
    char site[80], product[160], from[40], to[40], cursor[64], q[1024];
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

/* Cursor of the session list: started_at's 17 digits, '-', the session id. */
static bool parse_list_cursor(const char *s, char *started, size_t n, char *id)
{
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
        rc = lf_buf_appendf(&sql, " AND (started_at < '%s' OR (started_at = '%s' AND session_id < '%s'))", started,
                            started, id);
    }
    if (!rc)
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
        const char *st = json_string_value(json_object_get(last, "started_at"));
        char cur[64];
        make_list_cursor(st ? st : "", sid ? sid : "", cur, sizeof cur);
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
        int rc = lf_read_search_es(j->rr->es_url, j->rr->es_prefix, j->q, j->from[0] ? j->from : NULL,
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

static bool get_limit(lf_http_request *req, unsigned def, unsigned max, unsigned *out)
{
    char buf[32];
    const char *v = lf_http_request_query(req, "limit", buf, sizeof buf);
    if (!v) {
        *out = def;
        return true;
    }
    if (!chars_in(v, "0123456789", 6) || atoi(v) < 1 || (unsigned)atoi(v) > max)
        return false;
    *out = (unsigned)atoi(v);
    return true;
}

static job *new_job(lf_http_request *req, enum job_kind kind)
{
    if (lf_receiver_authorize(req, "read") != 0)
        return NULL;
    job *j = lf_calloc(1, sizeof *j);
    if (!j) {
        lf_http_respond_error(req, 503, "busy", "out of memory", NULL);
        return NULL;
    }
    j->rr = req->route_data;
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

static bool query_str(lf_http_request *req, const char *name, char *out, size_t n)
{
    const char *v = lf_http_request_query(req, name, out, n);
    if (!v)
        out[0] = '\0';
    return true;
}

static void handle_list(lf_http_request *req)
{
    job *j = new_job(req, JOB_LIST);
    if (!j)
        return;
    char from[64], to[64];
    query_str(req, "site", j->site, sizeof j->site);
    query_str(req, "product", j->product, sizeof j->product);
    query_str(req, "cursor", j->cursor, sizeof j->cursor);
    query_str(req, "from", from, sizeof from);
    query_str(req, "to", to, sizeof to);
    if (!get_limit(req, 100, 1000, &j->limit))
        return reject(j, "limit must be 1 to 1000");
    if ((from[0] && !sql_time(from, j->from, sizeof j->from)) || (to[0] && !sql_time(to, j->to, sizeof j->to)))
        return reject(j, "from and to are dates: YYYY-MM-DD[THH:MM:SS[.fff]][Z]");
    submit(j);
}

static void handle_events(lf_http_request *req)
{
    job *j = new_job(req, JOB_EVENTS);
    if (!j)
        return;
    if (req->n_params < 1 || !hex_id(req->params[0]))
        return reject(j, "a session id is 32 lowercase hex digits");
    memcpy(j->id, req->params[0], 33);
    query_str(req, "cursor", j->cursor, sizeof j->cursor);
    if (!get_limit(req, 1000, 10000, &j->limit))
        return reject(j, "limit must be 1 to 10000");
    submit(j);
}

static void handle_search(lf_http_request *req)
{
    job *j = new_job(req, JOB_SEARCH);
    if (!j)
        return;
    if (!j->rr->es_url) {
        lf_http_respond_error(req, 503, "search_unavailable", "no Elasticsearch is configured", NULL);
        lf_buf_free(&j->out);
        lf_free(j);
        return;
    }
    char from[64], to[64];
    query_str(req, "q", j->q, sizeof j->q);
    query_str(req, "from", from, sizeof from);
    query_str(req, "to", to, sizeof to);
    if (!j->q[0])
        return reject(j, "q is required");
    if (!get_limit(req, 100, 1000, &j->limit))
        return reject(j, "limit must be 1 to 1000");
    if ((from[0] && !chars_in(from, "0123456789-:T.Z", 32)) || (to[0] && !chars_in(to, "0123456789-:T.Z", 32)))
        return reject(j, "from and to are dates: YYYY-MM-DD[THH:MM:SS[.fff]Z]");
    snprintf(j->from, sizeof j->from, "%s", from);
    snprintf(j->to, sizeof j->to, "%s", to);
    submit(j);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int lf_read_routes_register(lf_http_server *srv, uv_loop_t *loop, const lf_read_routes_opts *o,
                            lf_read_routes **out)
{
    lf_read_routes *rr = lf_calloc(1, sizeof *rr);
    if (!rr)
        return -ENOMEM;
    rr->loop = loop;
    rr->my = o->mysql;
    rr->host = dup_or_null(o->mysql.host);
    rr->socket = dup_or_null(o->mysql.socket);
    rr->user = dup_or_null(o->mysql.user);
    rr->password = dup_or_null(o->mysql.password);
    rr->database = dup_or_null(o->mysql.database);
    rr->my.host = rr->host;
    rr->my.socket = rr->socket;
    rr->my.user = rr->user;
    rr->my.password = rr->password;
    rr->my.database = rr->database;
    rr->my.create_database = false;
    rr->es_url = dup_or_null(o->es_url);
    rr->es_prefix = strdup(o->es_index_prefix ? o->es_index_prefix : "logferry-events-");
    rr->pool_size = o->pool_size ? (o->pool_size > POOL_MAX ? POOL_MAX : o->pool_size) : 4;
    pthread_mutex_init(&rr->mu, NULL);
    int rc = lf_http_server_route(srv, LF_HTTP_GET, "/v1/sessions", 0, handle_list, NULL, rr);
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
    free(rr->host);
    free(rr->socket);
    free(rr->user);
    free(rr->password);
    free(rr->database);
    free(rr->es_url);
    free(rr->es_prefix);
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
