/* GET /v1/search's query to Elasticsearch (see read_search.h). */
#include "read_search.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_json.h"

int lf_read_search_es(const lf_es_conn *es, const char *index_prefix, const char *q, const char *from,
                      const char *to, unsigned limit, lf_buf *out, char *err, size_t errsz)
{
    json_t *range = json_object();
    if (from)
        json_object_set_new(range, "gte", json_string(from));
    if (to)
        json_object_set_new(range, "lte", json_string(to));
    json_t *filter = json_array();
    if (from || to)
        json_array_append_new(filter, json_pack("{s:{s:O}}", "range", "@timestamp", range));
    json_decref(range);
    json_t *body = json_pack("{s:{s:{s:[{s:{s:s, s:s, s:s}}], s:o}}, s:I, s:[{s:s}], s:b}", "query", "bool",
                             "must", "query_string", "query", q, "default_field", "message", "default_operator",
                             "AND", "filter", filter, "size", (json_int_t)limit, "sort", "@timestamp", "desc",
                             "track_total_hits", 1);
    if (!body) {
        snprintf(err, errsz, "building the query");
        return -ENOMEM;
    }
    lf_buf b = LF_BUF_INIT(1 << 20);
    int rc = lf_json_dump(body, &b);
    json_decref(body);
    if (rc < 0) {
        lf_buf_free(&b);
        return rc;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/%s*/_search", es->url, index_prefix);
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    lf_es_conn_client_opts(es, &o);
    o.max_attempts = 2;
    o.timeout_ms = 15000;
    lf_http_client *c = NULL;
    if ((rc = lf_http_client_new(NULL, &o, &c)) < 0) {
        lf_buf_free(&b);
        return rc;
    }
    const char *headers[] = {"Content-Type: application/json", NULL};
    lf_http_client_request req = {.method = "POST", .url = url, .headers = headers, .body = b.data, .body_len = b.len};
    lf_http_response r;
    rc = lf_http_client_fetch(c, &req, &r);
    lf_buf_free(&b);
    json_t *doc = NULL;
    if (rc < 0) {
        snprintf(err, errsz, "Elasticsearch: %s", lf_strerror(rc));
    } else if (r.status != 200) {
        char type[64];
        lf_es_error_of(r.body.data, r.body.len, type, sizeof type, NULL, 0);
        if (lf_es_classify(r.status, type, NULL) == LF_ES_RETRY)
            snprintf(err, errsz, "Elasticsearch answered HTTP %d %s", r.status, type);
        else
            snprintf(err, errsz, "Elasticsearch answered HTTP %d %s (%s)", r.status, type,
                     lf_es_hold_hint(r.status, type));
        rc = LF_EHTTP;
    } else {
        lf_buf perr = LF_BUF_INIT(256);
        rc = lf_json_parse(r.body.data ? r.body.data : "", r.body.len, 64u << 20, &doc, &perr);
        lf_buf_free(&perr);
        if (rc < 0)
            snprintf(err, errsz, "Elasticsearch answered something that is not JSON");
    }
    lf_http_response_free(&r);
    lf_http_client_close(c, NULL, NULL);
    if (rc < 0)
        return rc;
    json_t *hits = json_object_get(json_object_get(doc, "hits"), "hits");
    json_t *total = json_object_get(json_object_get(json_object_get(doc, "hits"), "total"), "value");
    json_t *res = json_array();
    static const char *const keys[] = {"session_id", "seq", "line", "@timestamp", "level", "component",
                                       "template_id", "site", "product", "message", NULL};
    for (size_t i = 0; i < json_array_size(hits); i++) {
        json_t *src = json_object_get(json_array_get(hits, i), "_source");
        json_t *h = json_object();
        for (int k = 0; keys[k]; k++) {
            json_t *v = json_object_get(src, keys[k]);
            if (v)
                json_object_set(h, strcmp(keys[k], "@timestamp") == 0 ? "ts" : keys[k], v);
        }
        json_array_append_new(res, h);
    }
    json_t *ans = json_pack("{s:o, s:I}", "hits", res, "total", (json_int_t)(total ? json_integer_value(total) : 0));
    rc = ans ? lf_json_dump(ans, out) : -ENOMEM;
    json_decref(ans);
    json_decref(doc);
    return rc;
}
