/* Dashboard routes (dashboard.h). Queries and actions run on libuv's thread pool with connections of
 * their own, so a slow query never blocks the loop. */
#include "dashboard.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "analytics_config.h"
#include "dashboard_auth.h"
#include "jobs.h"
#include "lf_alloc.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_mysql.h"
#include "pipeline.h"

extern const char lf_analytics_dashboard_html[];
extern const char lf_analytics_pipeline_html[];

#define N_FILTERS 5
#define OUT_MAX (64u << 20)

static const char *const filter_names[N_FILTERS] = {"product", "version", "site", "from", "to"};
static const char page_headers[] =
    "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
    "Content-Security-Policy: default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'\r\n";
static const char api_headers[] = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";

typedef enum call_kind { CALL_SERIES, CALL_PIPELINE, CALL_RUN_JOB, CALL_REDRIVE } call_kind;

typedef struct api_call {
    uv_work_t work;
    lf_http_request *req;
    const struct lf_analytics_config *cfg;
    call_kind kind;
    char series[16];
    char job[129];
    char filter[N_FILTERS][513]; /* "" when unset (512 bytes: 128 utf8mb4 characters) */
    bool csv;
    lf_dash_identity who;
    lf_buf out;
    int status;
} api_call;

/* ---- series ---------------------------------------------------------------------------------- */

typedef struct series_out {
    json_t *rows;
    lf_buf *csv; /* when the answer is CSV */
    int err;
} series_out;

/* One CSV field (RFC 4180). A text cell that a spreadsheet would run as a formula gets a leading
 * quote mark: the file is for people to open. */
static int csv_field(lf_buf *b, const char *v, size_t len)
{
    if (!v)
        return 0;
    bool formula = len > 0 && strchr("=+-@\t\r", v[0]) && !(len > 1 && v[0] == '-' && v[1] >= '0' && v[1] <= '9');
    bool quote = formula || memchr(v, ',', len) || memchr(v, '"', len) || memchr(v, '\n', len) || memchr(v, '\r', len);
    int rc = quote ? lf_buf_append_char(b, '"') : 0;
    if (!rc && formula)
        rc = lf_buf_append_char(b, '\'');
    for (size_t i = 0; !rc && i < len; i++)
        rc = v[i] == '"' ? lf_buf_append(b, "\"\"", 2) : lf_buf_append_char(b, v[i]);
    if (!rc && quote)
        rc = lf_buf_append_char(b, '"');
    return rc;
}

static int series_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    series_out *o = arg;
    if (o->csv) {
        int rc = 0;
        for (unsigned i = 0; !rc && i < n; i++) {
            rc = i ? lf_buf_append_char(o->csv, ',') : 0;
            rc = rc ? rc : csv_field(o->csv, v[i], v[i] ? len[i] : 0);
        }
        return rc ? rc : lf_buf_append(o->csv, "\r\n", 2);
    }
    json_t *row = json_array();
    if (!row)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(row, v[i] ? json_stringn(v[i], len[i]) : json_null());
    return json_array_append_new(o->rows, row) == 0 ? 0 : -ENOMEM;
}

/* Appends " AND col = 'value'" for each filter set. cols: the column of each filter (NULL: the
 * series has none, which only retention's from/to lack no more). */
static int where(api_call *c, lf_mysql *db, lf_buf *q, const char *const cols[N_FILTERS])
{
    static const char *const ops[N_FILTERS] = {" = ", " = ", " = ", " >= ", " <= "};
    int rc = 0;
    for (int i = 0; !rc && i < N_FILTERS; i++) {
        if (!c->filter[i][0] || !cols[i])
            continue;
        rc = lf_buf_appendf(q, " AND %s%s", cols[i], ops[i]);
        rc = rc ? rc : lf_mysql_quote(db, q, c->filter[i], strlen(c->filter[i]));
    }
    return rc;
}

static const char *const day_cols[N_FILTERS] = {"product", "product_version", "site", "day", "day"};

/* The SQL of a series and its column names; -ENOENT for an unknown series. */
static int series_sql(api_call *c, lf_mysql *db, lf_buf *q, const char **cols)
{
    int rc;
    if (strcmp(c->series, "usage") == 0) {
        *cols = "day,sessions,users,hosts,crashed,duration_p50_ms";
        rc = lf_buf_append_str(q, "SELECT day, SUM(sessions), SUM(users), SUM(hosts), SUM(crashed), "
                                  "ROUND(AVG(duration_p50_ms)) FROM daily_usage WHERE 1 = 1");
        rc = rc ? rc : where(c, db, q, day_cols);
        return rc ? rc : lf_buf_append_str(q, " GROUP BY day ORDER BY day");
    }
    if (strcmp(c->series, "features") == 0) {
        *cols = "template_id,template,events,sessions";
        rc = lf_buf_append_str(q, "SELECT template_id, MAX(template), SUM(events), SUM(sessions) FROM feature_usage "
                                  "WHERE 1 = 1");
        rc = rc ? rc : where(c, db, q, day_cols);
        return rc ? rc : lf_buf_append_str(q, " GROUP BY template_id ORDER BY SUM(events) DESC, template_id LIMIT 15");
    }
    if (strcmp(c->series, "errors") == 0) {
        *cols = "day,errors,fatals,sessions";
        rc = lf_buf_append_str(q, "SELECT day, SUM(errors), SUM(fatals), COUNT(*) FROM errors_daily WHERE 1 = 1");
        rc = rc ? rc : where(c, db, q, day_cols);
        return rc ? rc : lf_buf_append_str(q, " GROUP BY day ORDER BY day");
    }
    if (strcmp(c->series, "retention") == 0) {
        /* Cohorts of the filtered population, from each week's activity: a user's cohort is their
         * first active week among the sessions the filters keep (from/to bound the cohort week). */
        static const char *const act_cols[N_FILTERS] = {"product", "product_version", "site", NULL, NULL};
        static const char *const cohort_cols[N_FILTERS] = {NULL, NULL, NULL, "cw", "cw"};
        *cols = "cohort_week,week_offset,users,cohort_users";
        rc = lf_buf_append_str(q, "WITH f AS (SELECT DISTINCT product, user_name, week FROM retention_activity "
                                  "WHERE 1 = 1");
        rc = rc ? rc : where(c, db, q, act_cols);
        rc = rc ? rc : lf_buf_append_str(q, "), c AS (SELECT * FROM (SELECT product, user_name, MIN(week) AS cw FROM "
                                            "f GROUP BY product, user_name) m WHERE 1 = 1");
        rc = rc ? rc : where(c, db, q, cohort_cols);
        return rc ? rc
                  : lf_buf_append_str(q, "), s AS (SELECT cw, COUNT(*) AS n FROM c GROUP BY cw) "
                                         "SELECT c.cw, DATEDIFF(f.week, c.cw) DIV 7 AS k, COUNT(*), s.n FROM c "
                                         "JOIN f ON f.product = c.product AND f.user_name = c.user_name "
                                         "JOIN s ON s.cw = c.cw GROUP BY c.cw, k, s.n ORDER BY c.cw, k");
    }
    if (strcmp(c->series, "filters") == 0) {
        *cols = "kind,value";
        return lf_buf_append_str(q, "SELECT DISTINCT 'product', product FROM daily_usage UNION SELECT DISTINCT "
                                    "'version', product_version FROM daily_usage UNION SELECT DISTINCT 'site', "
                                    "site FROM daily_usage ORDER BY 1, 2");
    }
    return -ENOENT;
}

static void series_work(api_call *c)
{
    lf_mysql_options o;
    lf_mysql *db = NULL;
    lf_buf q = LF_BUF_INIT(1 << 16);
    lf_analytics_mysql_options(c->cfg, false, &o);
    o.create_database = false;
    o.read_timeout_s = o.write_timeout_s = 60;
    c->status = 500;
    if (lf_mysql_connect(&o, &db) < 0)
        return;
    const char *cols = NULL;
    int rc = series_sql(c, db, &q, &cols);
    if (rc == -ENOENT) {
        c->status = 404;
        goto out;
    }
    series_out so = {json_array(), c->csv ? &c->out : NULL, 0};
    if (c->csv)
        rc = rc ? rc : lf_buf_appendf(&c->out, "%s\r\n", cols);
    if (rc == 0 && so.rows && lf_mysql_query(db, lf_buf_cstr(&q), series_row, &so) >= 0) {
        if (c->csv) {
            c->status = 200;
        } else {
            rc = lf_buf_append_str(&c->out, "{\"columns\":[\"");
            for (const char *p = cols; !rc && *p; p++)
                rc = *p == ',' ? lf_buf_append_str(&c->out, "\",\"") : lf_buf_append_char(&c->out, *p);
            rc = rc ? rc : lf_buf_append_str(&c->out, "\"],\"rows\":");
            if (rc == 0 && lf_json_dump(so.rows, &c->out) >= 0 && lf_buf_append_str(&c->out, "}") == 0)
                c->status = 200;
        }
    } else {
        LF_WARN("analytics", "dashboard %s: %s", c->series, lf_mysql_error(db));
    }
    json_decref(so.rows);
out:
    lf_buf_free(&q);
    lf_mysql_close(db);
}

/* ---- actions --------------------------------------------------------------------------------- */

static void run_job_work(api_call *c)
{
    lf_analytics a;
    long long rows = 0;
    c->status = 500;
    if (lf_analytics_open(&a, c->cfg) != 0) {
        if (lf_buf_append_str(&c->out, "{\"error\":\"database\",\"message\":\"cannot reach the analytics "
                                       "database\"}") != 0)
            lf_buf_reset(&c->out); /* answered as a bare 500 */
        return;
    }
    int rc = lf_analytics_run(&a, c->job, NULL, NULL, false, &rows);
    lf_analytics_close(&a);
    json_t *j = NULL;
    if (rc == 1) {
        c->status = 409;
        j = json_pack("{s:s, s:s}", "error", "running", "message", "the job is running in another process");
    } else if (rc < 0) {
        c->status = 200; /* the run happened and is recorded as failed; the page shows it */
        j = json_pack("{s:s, s:s, s:s}", "job", c->job, "status", "failed", "message", lf_strerror(rc));
    } else {
        c->status = 200;
        j = json_pack("{s:s, s:s, s:I}", "job", c->job, "status", "ok", "rows", (json_int_t)rows);
    }
    if (!j || lf_json_dump(j, &c->out) < 0)
        c->status = 500;
    json_decref(j);
    LF_INFO("analytics", "dashboard: %s ran job %s: %s, %lld rows", c->who.user, c->job,
            rc == 1 ? "skipped (running elsewhere)" : rc < 0 ? "failed" : "ok", rows);
}

static void api_work(uv_work_t *w)
{
    api_call *c = w->data;
    switch (c->kind) {
    case CALL_SERIES:
        series_work(c);
        break;
    case CALL_PIPELINE:
        c->status = lf_pipeline_collect(c->cfg, &c->out) < 0 ? 500 : 200;
        break;
    case CALL_RUN_JOB:
        run_job_work(c);
        break;
    case CALL_REDRIVE:
        c->status = lf_pipeline_redrive(c->cfg, &c->out);
        LF_INFO("analytics", "dashboard: %s redrove the dead letters of queue %s: HTTP %d %.*s", c->who.user,
                c->cfg->pipeline_queue, c->status, (int)(c->out.len < 200 ? c->out.len : 200),
                c->out.data ? c->out.data : "");
        break;
    }
}

static void api_done(uv_work_t *w, int status)
{
    api_call *c = w->data;
    (void)status;
    if (c->status == 404)
        lf_http_respond_error(c->req, 404, "not_found", "no such dashboard series", api_headers);
    else if (c->kind == CALL_SERIES && c->status != 200)
        lf_http_respond_error(c->req, 500, "database", "the analytics database did not answer", api_headers);
    else if (c->status == 500 && !c->out.len)
        lf_http_respond_error(c->req, 500, "internal", "could not build the answer", api_headers);
    else if (c->csv) {
        char h[256];
        snprintf(h, sizeof h, "%sContent-Disposition: attachment; filename=\"%s.csv\"\r\n", api_headers, c->series);
        lf_http_respond(c->req, c->status, "text/csv; charset=utf-8", c->out.data, c->out.len, h);
    } else
        lf_http_respond(c->req, c->status, "application/json", c->out.data, c->out.len, api_headers);
    lf_buf_free(&c->out);
    lf_free(c);
}

/* ---- requests -------------------------------------------------------------------------------- */

struct lf_dashboard {
    lf_service *svc;
    lf_dashboard_auth *auth;
};

static lf_dashboard_auth *auth_of(lf_http_request *req)
{
    lf_dashboard *d = req->route_data;
    return d->auth;
}

static lf_service *svc_of(lf_http_request *req)
{
    lf_dashboard *d = req->route_data;
    return d->svc;
}

/* Identifies the sender; answers 401/403 itself and returns false when it may not. */
static bool allowed(lf_http_request *req, lf_dash_role need, lf_dash_identity *who)
{
    lf_dash_role r = lf_dashboard_auth_identify(auth_of(req), req, who);
    if (r == LF_DASH_NONE) {
        lf_http_respond_error(req, 401, "unauthorized", "sign in at /dashboard/login", api_headers);
        return false;
    }
    if (r < need) {
        lf_http_respond_error(req, 403, "forbidden", "this needs an admin", api_headers);
        return false;
    }
    if (need == LF_DASH_ADMIN && !lf_dashboard_auth_csrf_ok(req, who)) {
        lf_http_respond_error(req, 403, "csrf", "missing or wrong X-CSRF-Token", api_headers);
        return false;
    }
    return true;
}

static void start(lf_http_request *req, api_call *c)
{
    lf_service *svc = svc_of(req);
    c->req = req;
    c->cfg = lf_service_config_data(svc);
    lf_buf_init(&c->out, OUT_MAX);
    c->work.data = c;
    if (uv_queue_work(lf_service_loop(svc), &c->work, api_work, api_done) != 0) {
        lf_free(c);
        lf_http_respond_error(req, 503, "busy", "cannot queue the query", api_headers);
    }
}

static api_call *new_call(lf_http_request *req, call_kind kind, const lf_dash_identity *who)
{
    api_call *c = lf_calloc(1, sizeof *c);
    if (!c) {
        lf_http_respond_error(req, 503, "memory", "out of memory", api_headers);
        return NULL;
    }
    c->kind = kind;
    c->who = *who;
    return c;
}

static void on_series(lf_http_request *req)
{
    lf_dash_identity who;
    char format[8];
    if (!allowed(req, LF_DASH_READ, &who))
        return;
    api_call *c = new_call(req, CALL_SERIES, &who);
    if (!c)
        return;
    snprintf(c->series, sizeof c->series, "%s", req->params[0]);
    int frc = lf_http_request_query_param(req, "format", format, sizeof format);
    if (frc >= 0 && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
        frc = -EINVAL;
    c->csv = frc >= 0 && strcmp(format, "csv") == 0;
    for (int i = 0; i < N_FILTERS && (frc >= 0 || frc == -ENOENT); i++) {
        /* a filter that cannot be read whole is refused: dropping it would widen the answer */
        int rc = lf_http_request_query_param(req, filter_names[i], c->filter[i], sizeof c->filter[i]);
        if (rc == -ENOENT) {
            c->filter[i][0] = '\0';
        } else if (rc < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s %s", filter_names[i], lf_http_query_problem(rc));
            lf_free(c);
            lf_http_respond_error(req, 400, "bad_request", msg, api_headers);
            return;
        }
    }
    if (frc < 0 && frc != -ENOENT) {
        lf_free(c);
        lf_http_respond_error(req, 400, "bad_request", "format must be json or csv", api_headers);
        return;
    }
    start(req, c);
}

static void on_me(lf_http_request *req)
{
    lf_dash_identity who;
    lf_buf b = LF_BUF_INIT(4096);
    if (!allowed(req, LF_DASH_READ, &who))
        return;
    json_t *j = json_pack("{s:s?, s:s, s:s?}", "user", who.user[0] ? who.user : NULL, "role",
                          lf_dash_role_name(who.role), "csrf", who.csrf[0] ? who.csrf : NULL);
    if (j && lf_json_dump(j, &b) >= 0)
        lf_http_respond(req, 200, "application/json", b.data, b.len, api_headers);
    else
        lf_http_respond_error(req, 503, "memory", "out of memory", api_headers);
    json_decref(j);
    lf_buf_free(&b);
}

static void on_pipeline(lf_http_request *req)
{
    lf_dash_identity who;
    if (!allowed(req, LF_DASH_READ, &who))
        return;
    api_call *c = new_call(req, CALL_PIPELINE, &who);
    if (c)
        start(req, c);
}

static void on_run_job(lf_http_request *req)
{
    lf_dash_identity who;
    if (!allowed(req, LF_DASH_ADMIN, &who))
        return;
    const struct lf_analytics_config *cfg = lf_service_config_data(svc_of(req));
    if (strlen(req->params[0]) >= sizeof ((api_call *)0)->job || !lf_analytics_job_exists(cfg, req->params[0])) {
        lf_http_respond_error(req, 404, "not_found", "no such job", api_headers);
        return;
    }
    api_call *c = new_call(req, CALL_RUN_JOB, &who);
    if (!c)
        return;
    snprintf(c->job, sizeof c->job, "%s", req->params[0]);
    start(req, c);
}

static void on_redrive(lf_http_request *req)
{
    lf_dash_identity who;
    if (!allowed(req, LF_DASH_ADMIN, &who))
        return;
    api_call *c = new_call(req, CALL_REDRIVE, &who);
    if (c)
        start(req, c);
}

/* A page: signed in (or anonymous allowed), else to the sign-in page and back here after. */
static void page(lf_http_request *req, const char *html)
{
    lf_dash_identity who;
    if (lf_dashboard_auth_identify(auth_of(req), req, &who) == LF_DASH_NONE) {
        lf_buf loc = LF_BUF_INIT(16384);
        int rc = lf_buf_appendf(&loc, "Location: /dashboard/login?next=");
        const char *parts[3] = {req->path, req->query[0] ? "?" : "", req->query};
        for (int k = 0; k < 3 && !rc; k++)
            for (const char *p = parts[k]; *p && !rc; p++)
                rc = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '/' ||
                             *p == '-' || *p == '_' || *p == '.'
                         ? lf_buf_append_char(&loc, *p)
                         : lf_buf_appendf(&loc, "%%%02X", (unsigned char)*p);
        rc = rc ? rc : lf_buf_append_str(&loc, "\r\nCache-Control: no-store\r\n");
        if (rc)
            lf_http_respond_error(req, 414, "too_long", "the address is too long", NULL);
        else
            lf_http_respond(req, 303, "text/plain", "", 0, lf_buf_cstr(&loc));
        lf_buf_free(&loc);
        return;
    }
    lf_http_respond(req, 200, "text/html; charset=utf-8", html, strlen(html), page_headers);
}

static void on_page(lf_http_request *req)
{
    page(req, lf_analytics_dashboard_html);
}

static void on_pipeline_page(lf_http_request *req)
{
    page(req, lf_analytics_pipeline_html);
}

int lf_analytics_dashboard_start(lf_service *svc, lf_dashboard **out)
{
    lf_http_server *srv = lf_service_http(svc);
    lf_dashboard *d = lf_calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->svc = svc;
    static const struct {
        unsigned m;
        const char *path;
        uint64_t max_body;
        lf_http_handler h;
    } routes[] = {
        {LF_HTTP_GET, "/dashboard", 0, on_page},
        {LF_HTTP_GET, "/dashboard/pipeline", 0, on_pipeline_page},
        {LF_HTTP_GET, "/dashboard/api/me", 0, on_me},
        {LF_HTTP_GET, "/dashboard/api/pipeline", 0, on_pipeline},
        {LF_HTTP_GET, "/dashboard/api/{kind}", 0, on_series},
        {LF_HTTP_POST, "/dashboard/api/jobs/{job}/run", 1024, on_run_job},
        {LF_HTTP_POST, "/dashboard/api/redrive", 1024, on_redrive},
    };
    int rc = lf_dashboard_auth_new(lf_service_loop(svc), lf_service_config_data(svc), &d->auth);
    rc = rc ? rc : lf_dashboard_auth_routes(d->auth, srv);
    for (size_t i = 0; rc == 0 && i < sizeof routes / sizeof routes[0]; i++)
        rc = lf_http_server_route(srv, routes[i].m, routes[i].path, routes[i].max_body, routes[i].h, NULL, d);
    if (rc) {
        lf_analytics_dashboard_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void lf_analytics_dashboard_free(lf_dashboard *d)
{
    if (!d)
        return;
    lf_dashboard_auth_free(d->auth);
    lf_free(d);
}
