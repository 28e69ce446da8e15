/* Running a check to completion: see check_run.h. */
#include "check_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"

void lf_check_http_get(lf_http_client *http, const char *url, const char *token, uint64_t timeout_ms,
                       lf_http_response *resp, lf_check_http *out)
{
    char *auth = NULL;
    const char *headers[3] = {"Accept: application/json, text/plain", NULL, NULL};
    if (token && token[0]) {
        size_t n = strlen(token) + sizeof("Authorization: Bearer ");
        auth = lf_malloc(n);
        if (auth) {
            snprintf(auth, n, "Authorization: Bearer %s", token);
            headers[1] = auth;
        }
    }
    lf_http_client_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .max_response = LF_CHECK_MAX_RESPONSE,
        .timeout_ms = timeout_ms ? (long)timeout_ms : 10000,
        .max_attempts = 1,
    };
    memset(out, 0, sizeof(*out));
    int rc = (token && token[0] && !auth) ? -ENOMEM : 0;
    if (rc == 0 && !url)
        rc = -EINVAL;
    if (rc == 0)
        rc = lf_http_client_fetch(http, &req, resp);
    else
        memset(resp, 0, sizeof(*resp));
    if (auth) {
        /* the token must not linger in freed memory */
        memset(auth, 0, strlen(auth));
        lf_free(auth);
    }
    out->transport_error = rc < 0 ? rc : 0;
    out->status = rc < 0 ? 0 : resp->status;
    out->body = rc < 0 ? NULL : lf_buf_cstr(&resp->body);
    out->len = rc < 0 ? 0 : resp->body.len;
}

/* GET of an Elasticsearch URL with the check's credentials and CA: a client of its own, made for
 * this run, so that a rotated password file is read again each time. False (and res filled in)
 * when the settings cannot be used: no request was made. */
static bool es_get(const lf_check_config *c, lf_http_client *shared, lf_http_response *resp, lf_check_http *out,
                   lf_check_result *res)
{
    const lf_es_auth *a = &c->es_auth;
    if (!a->user && !a->password && !a->password_file && !a->api_key && !a->api_key_file && !a->ca_file) {
        lf_check_http_get(shared, c->url, NULL, c->timeout_ms, resp, out);
        return true;
    }
    lf_es_conn conn;
    lf_buf why = LF_BUF_INIT(256);
    lf_http_client *http = NULL;
    int rc = lf_es_conn_init(&conn, c->url, a, &why);
    if (rc == 0) {
        lf_http_client_opts o;
        lf_http_client_opts_default(&o);
        lf_es_conn_client_opts(&conn, &o);
        o.max_attempts = 1;
        rc = lf_http_client_new(NULL, &o, &http);
    }
    if (rc == 0) {
        lf_check_http_get(http, c->url, NULL, c->timeout_ms, resp, out);
    } else {
        memset(res, 0, sizeof(*res));
        snprintf(res->value, sizeof(res->value), "misconfigured");
        snprintf(res->threshold, sizeof(res->threshold), "credentials readable");
        snprintf(res->message, sizeof(res->message), "Elasticsearch credentials: %s",
                 rc == -ENOMEM ? "out of memory" : lf_buf_cstr(&why));
    }
    if (http)
        lf_http_client_close(http, NULL, NULL);
    lf_es_conn_free(&conn);
    lf_buf_free(&why);
    return rc == 0;
}

void lf_check_run(const lf_check_config *c, lf_http_client *http, lf_check_progress *progress, int64_t now_ms,
                  lf_check_result *res)
{
    lf_http_response r1, r2;
    lf_check_http h1, h2;
    switch (c->kind) {
    case LF_CHECK_HEALTHZ:
        lf_check_http_get(http, c->url, NULL, c->timeout_ms, &r1, &h1);
        lf_check_eval_healthz(c, &h1, res);
        lf_http_response_free(&r1);
        break;
    case LF_CHECK_QUEUE:
        lf_check_http_get(http, c->url, c->token, c->timeout_ms, &r1, &h1);
        lf_check_eval_queue(c, &h1, res);
        lf_http_response_free(&r1);
        break;
    case LF_CHECK_ELASTICSEARCH:
        if (!es_get(c, http, &r1, &h1, res))
            break;
        lf_check_eval_elasticsearch(c, &h1, res);
        lf_http_response_free(&r1);
        break;
    case LF_CHECK_PARSER_PROGRESS:
        lf_check_http_get(http, c->url, c->token, c->timeout_ms, &r1, &h1);
        lf_check_http_get(http, c->metrics_url, NULL, c->timeout_ms, &r2, &h2);
        lf_check_eval_parser_progress(c, progress, &h1, &h2, now_ms, res);
        lf_http_response_free(&r1);
        lf_http_response_free(&r2);
        break;
    case LF_CHECK_SITE_QUIET:
        lf_check_http_get(http, c->url, c->token, c->timeout_ms, &r1, &h1);
        lf_check_eval_site_quiet(c, &h1, now_ms, res);
        lf_http_response_free(&r1);
        break;
    case LF_CHECK_SITE_REFUSALS:
        lf_check_http_get(http, c->url, c->token, c->timeout_ms, &r1, &h1);
        lf_check_eval_site_refusals(c, progress, &h1, now_ms, res);
        lf_http_response_free(&r1);
        break;
    case LF_CHECK_ANALYTICS_FRESHNESS:
        lf_check_probe_freshness(c, res);
        break;
    case LF_CHECK_MYSQL:
        lf_check_probe_mysql(c, res);
        break;
    case LF_CHECK_DISK:
        lf_check_probe_disk(c, res);
        break;
    default:
        memset(res, 0, sizeof(*res));
        snprintf(res->value, sizeof(res->value), "misconfigured");
        snprintf(res->message, sizeof(res->message), "unknown check kind %d", c->kind);
        break;
    }
}
