/* The pipeline page's figures (pipeline.h). */
#include "pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"
#include "lf_alloc.h"
#include "lf_fileio.h"
#include "lf_http_client.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_mysql.h"

#define TOKEN_FILE_MAX 4096
#define RECEIVER_TIMEOUT_MS 5000
#define RUNS_PER_JOB 5

/* ---- the receiver --------------------------------------------------------------------------- */

/* "Authorization: Bearer <token>" from the token file (read at each use, so a rotated token is
 * taken without a restart). 0, or a negative code with the reason in err. */
static int bearer(const struct lf_analytics_config *cfg, char *out, size_t size, lf_buf *err)
{
    lf_buf t = LF_BUF_INIT(TOKEN_FILE_MAX);
    int rc = lf_read_file(cfg->pipeline_receiver_token_file, TOKEN_FILE_MAX, &t);
    if (rc < 0) {
        lf_buf_msgf(err, "reading %s: %s", cfg->pipeline_receiver_token_file, lf_strerror(rc));
        lf_buf_free(&t);
        return rc;
    }
    size_t n = t.len;
    while (n && (t.data[n - 1] == '\n' || t.data[n - 1] == '\r' || t.data[n - 1] == ' '))
        n--;
    if (n == 0 || n + sizeof "Bearer " > size || memchr(t.data, '\n', n) || memchr(t.data, '\0', n)) {
        lf_buf_msgf(err, "%s does not hold one token", cfg->pipeline_receiver_token_file);
        rc = LF_ECONFIG;
    } else {
        snprintf(out, size, "Bearer %.*s", (int)n, t.data);
    }
    if (t.data)
        sodium_memzero(t.data, t.len);
    lf_buf_free(&t);
    return rc;
}

/* One request to the receiver: 0 with *body (a JSON value) on a 2xx; else the reason in err. */
static int receiver_call(const struct lf_analytics_config *cfg, const char *method, const char *path,
                         const char *req_body, json_t **body, int *status, lf_buf *err)
{
    char auth[TOKEN_FILE_MAX + 16];
    char url[2048];
    *body = NULL;
    *status = 0;
    int rc = bearer(cfg, auth, sizeof auth, err);
    if (rc < 0)
        return rc;
    snprintf(url, sizeof url, "%s%s", cfg->pipeline_receiver_url, path);
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.ca_file = cfg->pipeline_receiver_ca_file;
    o.authorization = auth;
    o.timeout_ms = RECEIVER_TIMEOUT_MS;
    o.connect_timeout_ms = RECEIVER_TIMEOUT_MS;
    o.max_attempts = 1;
    lf_http_client *http = NULL;
    rc = lf_http_client_new(NULL, &o, &http);
    sodium_memzero(auth, sizeof auth);
    if (rc < 0) {
        lf_buf_msgf(err, "%s", lf_strerror(rc));
        return rc;
    }
    const char *headers[] = {"Content-Type: application/json", NULL};
    lf_http_client_request r = {.method = method, .url = url, .headers = headers, .body = req_body,
                                .body_len = req_body ? strlen(req_body) : 0};
    lf_http_response resp;
    rc = lf_http_client_fetch(http, &r, &resp);
    *status = resp.status;
    if (rc < 0) {
        lf_buf_msgf(err, "%s: %s", url, lf_strerror(rc));
    } else {
        json_error_t je;
        *body = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
        if (resp.status / 100 != 2 || !*body) {
            json_t *m = *body ? json_object_get(*body, "message") : NULL;
            lf_buf_msgf(err, "%s: HTTP %d%s%s", url, resp.status, m ? ": " : "", m ? json_string_value(m) : "");
            json_decref(*body);
            *body = NULL;
            rc = -EPROTO;
        }
    }
    lf_http_response_free(&resp);
    lf_http_client_close(http, NULL, NULL);
    return rc;
}

static json_t *receiver_stage(const struct lf_analytics_config *cfg)
{
    json_t *st = json_object();
    if (!st)
        return NULL;
    json_object_set_new(st, "configured", json_boolean(cfg->pipeline_receiver_url != NULL));
    if (!cfg->pipeline_receiver_url)
        return st;
    if (!cfg->pipeline_receiver_token_file) {
        json_object_set_new(st, "error", json_string("[pipeline] receiver_token_file is not set"));
        return st;
    }
    lf_buf err = LF_BUF_INIT(1024);
    json_t *sites = NULL, *queue = NULL;
    int status;
    char path[256];
    if (receiver_call(cfg, "GET", "/v1/sites", NULL, &sites, &status, &err) == 0)
        json_object_set(st, "sites", json_object_get(sites, "sites"));
    snprintf(path, sizeof path, "/v1/queues/%s", cfg->pipeline_queue);
    if (receiver_call(cfg, "GET", path, NULL, &queue, &status, &err) == 0)
        json_object_set(st, "queue", queue);
    if (err.len)
        json_object_set_new(st, "error", json_stringn(err.data, err.len));
    json_decref(sites);
    json_decref(queue);
    lf_buf_free(&err);
    return st;
}

int lf_pipeline_redrive(const struct lf_analytics_config *cfg, lf_buf *out)
{
    if (!cfg->pipeline_receiver_url || !cfg->pipeline_receiver_token_file)
        return lf_buf_append_str(out, "{\"error\":\"not_configured\",\"message\":\"[pipeline] receiver_url and "
                                      "receiver_token_file are not set\"}") ? 500 : 409;
    lf_buf err = LF_BUF_INIT(1024);
    json_t *body = NULL;
    int status;
    char path[256];
    snprintf(path, sizeof path, "/v1/queues/%s/redrive", cfg->pipeline_queue);
    int rc = receiver_call(cfg, "POST", path, "{}", &body, &status, &err);
    int answer = 200;
    if (rc == 0) {
        rc = lf_json_dump(body, out);
    } else {
        json_t *e = json_pack("{s:s, s:s#}", "error", "receiver", "message", err.data ? err.data : "",
                              (int)err.len);
        rc = e ? lf_json_dump(e, out) : -ENOMEM;
        json_decref(e);
        answer = status == 401 || status == 403 ? 403 : 502;
    }
    json_decref(body);
    lf_buf_free(&err);
    return rc < 0 ? 500 : answer;
}

/* ---- the databases -------------------------------------------------------------------------- */

typedef struct rows_arg {
    json_t *rows;
    const char *const *names;
} rows_arg;

/* Each row as an object of the given column names (NULL stays null; numbers stay strings, as the
 * server sends them: the page converts). */
static int object_row(void *arg, unsigned n, char **v, unsigned long *len)
{
    rows_arg *r = arg;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    for (unsigned i = 0; i < n && r->names[i]; i++)
        json_object_set_new(o, r->names[i], v[i] ? json_stringn(v[i], len[i]) : json_null());
    return json_array_append_new(r->rows, o) == 0 ? 0 : -ENOMEM;
}

static json_t *query_objects(lf_mysql *db, const char *sql, const char *const *names, lf_buf *err)
{
    rows_arg r = {json_array(), names};
    if (!r.rows)
        return NULL;
    int rc = lf_mysql_query(db, sql, object_row, &r);
    if (rc < 0) {
        lf_buf_msgf(err, "%s", lf_mysql_error(db));
        json_decref(r.rows);
        return NULL;
    }
    return r.rows;
}

static json_t *parser_stage(const struct lf_analytics_config *cfg)
{
    json_t *st = json_object();
    lf_mysql_options o;
    lf_mysql *db = NULL;
    lf_buf err = LF_BUF_INIT(1024);
    if (!st)
        return NULL;
    lf_analytics_mysql_options(cfg, true, &o);
    o.read_timeout_s = o.write_timeout_s = 30;
    if (lf_mysql_connect(&o, &db) < 0) {
        json_object_set_new(st, "error", json_string("cannot connect to the parsed tables' database"));
        return st;
    }
    static const char *const rate_names[] = {"sessions_1h", "events_1h", "sessions_15m", "last_parsed_at",
                                             "failures_1h", NULL};
    json_t *rate = query_objects(db,
                                 "SELECT (SELECT COUNT(*) FROM sessions WHERE parsed_at > NOW(3) - INTERVAL 1 HOUR), "
                                 "(SELECT COALESCE(SUM(event_count), 0) FROM sessions WHERE parsed_at > NOW(3) - "
                                 "INTERVAL 1 HOUR), (SELECT COUNT(*) FROM sessions WHERE parsed_at > NOW(3) - "
                                 "INTERVAL 15 MINUTE), (SELECT DATE_FORMAT(MAX(parsed_at), '%Y-%m-%dT%H:%i:%sZ') "
                                 "FROM sessions), (SELECT COUNT(*) FROM parse_failures WHERE failed_at > NOW(3) - "
                                 "INTERVAL 1 HOUR)",
                                 rate_names, &err);
    if (rate && json_array_size(rate) == 1)
        json_object_update(st, json_array_get(rate, 0));
    json_decref(rate);
    static const char *const failure_names[] = {"session_id", "failed_at", "attempt", "stage", "reason",
                                                "parser_host", NULL};
    json_t *failures = query_objects(db,
                                     "SELECT session_id, DATE_FORMAT(failed_at, '%Y-%m-%dT%H:%i:%sZ'), attempt, "
                                     "stage, LEFT(reason, 300), parser_host FROM parse_failures ORDER BY id DESC "
                                     "LIMIT 10",
                                     failure_names, &err);
    if (failures)
        json_object_set_new(st, "recent_failures", failures);
    if (err.len)
        json_object_set_new(st, "error", json_stringn(err.data, err.len));
    lf_mysql_close(db);
    lf_buf_free(&err);
    return st;
}

static json_t *analytics_stage(const struct lf_analytics_config *cfg)
{
    json_t *st = json_object();
    lf_mysql_options o;
    lf_mysql *db = NULL;
    lf_buf err = LF_BUF_INIT(1024), q = LF_BUF_INIT(1 << 16);
    if (!st)
        return NULL;
    lf_analytics_mysql_options(cfg, false, &o);
    o.create_database = false;
    o.read_timeout_s = o.write_timeout_s = 30;
    if (lf_mysql_connect(&o, &db) < 0) {
        json_object_set_new(st, "error", json_string("cannot connect to the analytics database"));
        goto out;
    }
    /* the last runs of every job, built-in and configured, even of one that never ran */
    int rc = lf_buf_append_str(&q, "SELECT r.job, r.id, r.status, DATE_FORMAT(r.started_at, '%Y-%m-%dT%H:%i:%sZ'), "
                                   "r.duration_ms, r.`rows`, r.window_from, r.window_to, LEFT(r.error, 500), r.host "
                                   "FROM job_runs r WHERE r.id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
                                   "(PARTITION BY job ORDER BY id DESC) AS k FROM job_runs) x WHERE x.k <= ");
    rc = rc ? rc : lf_buf_appendf(&q, "%d) ORDER BY r.job, r.id DESC", RUNS_PER_JOB);
    static const char *const run_names[] = {"job", "id", "status", "started_at", "duration_ms", "rows",
                                            "window_from", "window_to", "error", "host", NULL};
    json_t *runs = rc ? NULL : query_objects(db, lf_buf_cstr(&q), run_names, &err);
    json_t *jobs = json_array();
    size_t n = 4 + cfg->n_jobs;
    for (size_t i = 0; jobs && i < n; i++) {
        const char *name = i < 4 ? lf_analytics_builtin_jobs[i] : cfg->jobs[i - 4].name;
        json_t *mine = json_array();
        size_t k;
        json_t *r;
        json_array_foreach(runs, k, r)
        {
            if (strcmp(json_string_value(json_object_get(r, "job")), name) == 0)
                json_array_append(mine, r);
        }
        json_array_append_new(jobs, json_pack("{s:s, s:o}", "job", name, "runs", mine ? mine : json_array()));
    }
    json_decref(runs);
    if (jobs)
        json_object_set_new(st, "jobs", jobs);
    if (err.len)
        json_object_set_new(st, "error", json_stringn(err.data, err.len));
    lf_mysql_close(db);
out:
    lf_buf_free(&err);
    lf_buf_free(&q);
    return st;
}

int lf_pipeline_collect(const struct lf_analytics_config *cfg, lf_buf *out)
{
    json_t *all = json_pack("{s:o?, s:o?, s:o?}", "receiver", receiver_stage(cfg), "parser", parser_stage(cfg),
                            "analytics", analytics_stage(cfg));
    if (!all)
        return -ENOMEM;
    int rc = lf_json_dump(all, out);
    json_decref(all);
    return rc < 0 ? rc : 0;
}
