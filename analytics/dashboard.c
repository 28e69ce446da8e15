/* Dashboard routes (dashboard.h). Queries run on libuv's thread pool with a connection of their own,
 * so a slow query never blocks the loop. */
#include "dashboard.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "analytics_config.h"
#include "jobs.h"
#include "lf_alloc.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_mysql.h"

extern const char lf_analytics_dashboard_html[];

typedef struct api_call {
    uv_work_t work;
    lf_http_request *req;
    const struct lf_analytics_config *cfg;
    char kind[16];
    char filter[5][513]; /* product, version, site, from, to; "" when unset (512 bytes: 128 utf8mb4 characters) */
    lf_buf out;
    int status;
} api_call;

static const char *const filter_names[5] = {"product", "version", "site", "from", "to"};

static int json_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    json_t *rows = arg, *row = json_array();
    if (!row)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(row, v[i] ? json_stringn(v[i], len[i]) : json_null());
    json_array_append_new(rows, row);
    return 0;
}

/* Appends " AND col = 'value'" for each filter set; day_col for from/to. */
static int where(api_call *c, lf_mysql *db, lf_buf *q, const char *day_col, bool has_version, bool has_site)
{
    const char *cols[5] = {"product", has_version ? "product_version" : NULL, has_site ? "site" : NULL,
                           day_col, day_col};
    const char *ops[5] = {" = ", " = ", " = ", " >= ", " <= "};
    int rc = lf_buf_append_str(q, " WHERE 1 = 1");
    for (int i = 0; !rc && i < 5; i++) {
        if (!c->filter[i][0] || !cols[i])
            continue;
        rc = lf_buf_appendf(q, " AND %s%s", cols[i], ops[i]);
        rc = rc ? rc : lf_mysql_quote(db, q, c->filter[i], strlen(c->filter[i]));
    }
    return rc;
}

static void api_work(uv_work_t *w)
{
    api_call *c = w->data;
    const struct lf_analytics_config *cfg = c->cfg;
    lf_mysql_options o;
    lf_analytics_mysql_options(cfg, false, &o);
    o.create_database = false;
    o.read_timeout_s = o.write_timeout_s = 60;
    lf_mysql *db = NULL;
    lf_buf q = LF_BUF_INIT(1 << 16);
    c->status = 500;
    if (lf_mysql_connect(&o, &db) < 0)
        return;
    const char *cols;
    int rc;
    if (strcmp(c->kind, "usage") == 0) {
        cols = "[\"day\",\"sessions\",\"users\",\"hosts\",\"crashed\",\"duration_p50_ms\"]";
        rc = lf_buf_append_str(&q, "SELECT day, SUM(sessions), SUM(users), SUM(hosts), SUM(crashed), "
                                   "ROUND(AVG(duration_p50_ms)) FROM daily_usage");
        rc = rc ? rc : where(c, db, &q, "day", true, true);
        rc = rc ? rc : lf_buf_append_str(&q, " GROUP BY day ORDER BY day");
    } else if (strcmp(c->kind, "features") == 0) {
        cols = "[\"template_id\",\"template\",\"events\",\"sessions\"]";
        rc = lf_buf_append_str(&q, "SELECT template_id, MAX(template), SUM(events), SUM(sessions) FROM feature_usage");
        rc = rc ? rc : where(c, db, &q, "day", true, false);
        rc = rc ? rc : lf_buf_append_str(&q, " GROUP BY template_id ORDER BY SUM(events) DESC LIMIT 15");
    } else if (strcmp(c->kind, "errors") == 0) {
        cols = "[\"day\",\"errors\",\"fatals\",\"sessions\"]";
        rc = lf_buf_append_str(&q, "SELECT day, SUM(errors), SUM(fatals), COUNT(*) FROM errors_daily");
        rc = rc ? rc : where(c, db, &q, "day", true, false);
        rc = rc ? rc : lf_buf_append_str(&q, " GROUP BY day ORDER BY day");
    } else if (strcmp(c->kind, "retention") == 0) {
        cols = "[\"cohort_week\",\"week_offset\",\"users\",\"cohort_users\"]";
        rc = lf_buf_append_str(&q, "SELECT cohort_week, week_offset, SUM(users), SUM(cohort_users) FROM "
                                   "retention_weekly");
        rc = rc ? rc : where(c, db, &q, "cohort_week", false, false);
        rc = rc ? rc : lf_buf_append_str(&q, " GROUP BY cohort_week, week_offset ORDER BY cohort_week, week_offset");
    } else if (strcmp(c->kind, "filters") == 0) {
        cols = "[\"kind\",\"value\"]";
        rc = lf_buf_append_str(&q, "SELECT DISTINCT 'product', product FROM daily_usage UNION SELECT DISTINCT "
                                   "'version', product_version FROM daily_usage UNION SELECT DISTINCT 'site', "
                                   "site FROM daily_usage ORDER BY 1, 2");
    } else {
        c->status = 404;
        lf_mysql_close(db);
        return;
    }
    json_t *rows = rc ? NULL : json_array();
    if (rows && lf_mysql_query(db, lf_buf_cstr(&q), json_row, rows) >= 0) {
        if (lf_buf_appendf(&c->out, "{\"columns\":%s,\"rows\":", cols) == 0 && lf_json_dump(rows, &c->out) >= 0 &&
            lf_buf_append_str(&c->out, "}") == 0)
            c->status = 200;
    } else {
        LF_WARN("analytics", "dashboard %s: %s", c->kind, lf_mysql_error(db));
    }
    json_decref(rows);
    lf_buf_free(&q);
    lf_mysql_close(db);
}

static void api_done(uv_work_t *w, int status)
{
    api_call *c = w->data;
    (void)status;
    if (c->status == 200)
        lf_http_respond(c->req, 200, "application/json", c->out.data, c->out.len, NULL);
    else if (c->status == 404)
        lf_http_respond_error(c->req, 404, "not_found", "no such dashboard series", NULL);
    else
        lf_http_respond_error(c->req, 500, "database", "the analytics database did not answer", NULL);
    lf_buf_free(&c->out);
    lf_free(c);
}

static void on_api(lf_http_request *req)
{
    lf_service *svc = req->route_data;
    api_call *c = lf_calloc(1, sizeof *c);
    if (!c) {
        lf_http_respond_error(req, 503, "memory", "out of memory", NULL);
        return;
    }
    c->req = req;
    c->cfg = lf_service_config_data(svc);
    snprintf(c->kind, sizeof c->kind, "%s", req->params[0]);
    for (int i = 0; i < 5; i++) {
        /* a filter that cannot be read whole is refused: dropping it would widen the answer */
        int rc = lf_http_request_query_param(req, filter_names[i], c->filter[i], sizeof c->filter[i]);
        if (rc == -ENOENT) {
            c->filter[i][0] = '\0';
        } else if (rc < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s %s", filter_names[i], lf_http_query_problem(rc));
            lf_free(c);
            lf_http_respond_error(req, 400, "bad_request", msg, NULL);
            return;
        }
    }
    lf_buf_init(&c->out, 64u << 20);
    c->work.data = c;
    if (uv_queue_work(lf_service_loop(svc), &c->work, api_work, api_done) != 0) {
        lf_free(c);
        lf_http_respond_error(req, 503, "busy", "cannot queue the query", NULL);
    }
}

static void on_page(lf_http_request *req)
{
    lf_http_respond(req, 200, "text/html; charset=utf-8", lf_analytics_dashboard_html,
                    strlen(lf_analytics_dashboard_html),
                    "Content-Security-Policy: default-src 'self'; script-src 'unsafe-inline'; "
                    "style-src 'unsafe-inline'\r\n");
}

int lf_analytics_dashboard_routes(lf_service *svc)
{
    lf_http_server *srv = lf_service_http(svc);
    int rc = lf_http_server_route(srv, LF_HTTP_GET, "/dashboard", 0, on_page, NULL, svc);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_GET, "/dashboard/api/{kind}", 0, on_api, NULL, svc);
    return rc;
}
