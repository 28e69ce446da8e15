/* Bulk indexing of parsed events into Elasticsearch (see loader_es.h). */
#include "loader_es.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "event_json.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_json.h"
#include "lf_log.h"
#include "timefmt.h"

#define ITEM_RETRIES 8
/* Keyword values longer than this many characters stay out of the keyword index: Lucene refuses
 * terms over 32766 bytes, and a character takes at most 4 in UTF-8. */
#define KEYWORD_IGNORE_ABOVE 8191
/* Above the built-in templates' 100 (logs-*-* ...), so that an overlap is never refused for an
 * equal priority and ours applies to our indices. */
#define TEMPLATE_PRIORITY 200

struct lf_loader_es {
    lf_http_client *http;
    char *url, *prefix;
    size_t bulk_bytes;
    bool template_installed;
};

int lf_loader_es_new(const lf_es_conn *conn, const char *index_prefix, size_t bulk_bytes, lf_loader_es **out)
{
    lf_loader_es *es = lf_calloc(1, sizeof *es);
    if (!es)
        return -ENOMEM;
    es->url = lf_strdup(conn->url);
    es->prefix = lf_strdup(index_prefix);
    es->bulk_bytes = bulk_bytes < 4096 ? 4096 : bulk_bytes;
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    lf_es_conn_client_opts(conn, &o); /* copied by the client */
    o.max_attempts = 6; /* bulk index by id is idempotent: a dropped connection is simply retried */
    o.backoff_base_ms = 100;
    o.backoff_max_ms = 3000;
    o.timeout_ms = 120000;
    o.max_response = 256u << 20;
    int rc = es->url && es->prefix ? lf_http_client_new(NULL, &o, &es->http) : -ENOMEM;
    if (rc < 0) {
        lf_loader_es_free(es);
        return rc;
    }
    *out = es;
    return 0;
}

void lf_loader_es_free(lf_loader_es *es)
{
    if (!es)
        return;
    if (es->http)
        lf_http_client_close(es->http, NULL, NULL);
    lf_free(es->url);
    lf_free(es->prefix);
    lf_free(es);
}

void lf_loader_es_index_name(const char *prefix, int64_t us, char *out, size_t n)
{
    time_t t = (time_t)(us / 1000000);
    if (us < 0 && us % 1000000)
        t--;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%s%04d.%02d.%02d", prefix, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* A keyword field whose too long values stay in _source but out of the index. */
static json_t *keyword(void)
{
    return json_pack("{s:s, s:i}", "type", "keyword", "ignore_above", KEYWORD_IGNORE_ABOVE);
}

/* The answer to a refused request: LF_ECONFIG for a HOLD (with the hint), LF_EHTTP otherwise. */
static int refused(const char *what, int status, const lf_buf *body, char *reason, size_t rlen)
{
    char type[64], why[256];
    lf_es_error_of(body->data, body->len, type, sizeof type, why, sizeof why);
    enum lf_es_refusal k = lf_es_classify(status, type, why);
    if (k == LF_ES_RETRY) {
        snprintf(reason, rlen, "%s: HTTP %d %s", what, status, type);
        return LF_EHTTP;
    }
    snprintf(reason, rlen, "%s: HTTP %d %s: %.200s (%s)", what, status, type[0] ? type : "", why,
             lf_es_hold_hint(status, type));
    return LF_ECONFIG; /* NEVER of a whole request is a hold too: the request is ours */
}

static int install_template(lf_loader_es *es, char *reason, size_t rlen)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/_index_template/%stemplate", es->url, es->prefix);
    json_t *body = json_pack(
        "{s:[s+], s:i, s:{s:{s:i, s:i}, s:{s:s, s:{s:o, s:{s:s}, s:{s:s}, s:{s:s}, s:o, s:o, s:o, "
        "s:{s:s}, s:o, s:o, s:o, s:o, s:{s:s, s:b}}}}}",
        "index_patterns", es->prefix, "*", "priority", TEMPLATE_PRIORITY, "template", "settings", "number_of_shards",
        1, "number_of_replicas", 0, "mappings", "dynamic", "false", "properties", "session_id", keyword(), "seq",
        "type", "long", "line", "type", "long", "@timestamp", "type", "date", "level", keyword(), "component",
        keyword(), "template_id", keyword(), "message", "type", "text", "params", keyword(), "site", keyword(),
        "product", keyword(), "product_version", keyword(), "fields", "type", "object", "enabled", 0);
    if (!body)
        return -ENOMEM;
    lf_buf b = LF_BUF_INIT(1 << 20);
    int rc = lf_json_dump(body, &b);
    json_decref(body);
    if (rc < 0) {
        lf_buf_free(&b);
        return rc;
    }
    const char *headers[] = {"Content-Type: application/json", NULL};
    lf_http_client_request req = {.method = "PUT", .url = url, .headers = headers, .body = b.data, .body_len = b.len};
    lf_http_response r;
    rc = lf_http_client_fetch(es->http, &req, &r);
    if (rc == 0 && r.status != 200) {
        rc = refused("installing the index template", r.status, &r.body, reason, rlen);
    } else if (rc < 0) {
        snprintf(reason, rlen, "installing the index template: %s", lf_strerror(rc));
    }
    lf_http_response_free(&r);
    lf_buf_free(&b);
    return rc;
}

static void append_doc(lf_jw *w, const char *prefix, const lf_psession *ps, size_t seq)
{
    const lf_pevent *e = &ps->events[seq];
    const lf_manifest *m = &ps->manifest;
    int64_t t = e->has_ts ? e->ts_us : ps->first_us != INT64_MIN ? ps->first_us : (int64_t)time(NULL) * 1000000;
    char index[256];
    lf_loader_es_index_name(prefix, t, index, sizeof index);
    char head[512];
    int n = snprintf(head, sizeof head, "{\"index\":{\"_index\":\"%s\",\"_id\":\"%s-%zu\"}}\n{\"session_id\":\"%s\",\"seq\":%zu,\"line\":%u",
                     index, m->session_id, seq, m->session_id, seq, e->line);
    lf_jw_raw(w, head, (size_t)n);
    if (e->has_ts) {
        char ts[32];
        size_t tl = lf_timefmt_iso8601(e->ts_us, ts);
        lf_jw_raw(w, ",\"@timestamp\":\"", 15);
        lf_jw_raw(w, ts, tl);
        lf_jw_raw(w, "\"", 1);
    }
    if (e->has_level) {
        lf_jw_raw(w, ",\"level\":", 9);
        lf_jw_str(w, lf_psession_str(ps, e->level), e->level.len);
    }
    if (e->has_component) {
        lf_jw_raw(w, ",\"component\":", 13);
        lf_jw_str(w, lf_psession_str(ps, e->component), e->component.len);
    }
    lf_jw_raw(w, ",\"template_id\":", 15);
    lf_jw_hex64(w, e->template_id);
    lf_jw_raw(w, ",\"site\":", 8);
    lf_jw_str(w, m->site, strlen(m->site));
    lf_jw_raw(w, ",\"product\":", 11);
    lf_jw_str(w, m->product, strlen(m->product));
    lf_jw_raw(w, ",\"product_version\":", 19);
    lf_jw_str(w, m->product_version, strlen(m->product_version));
    lf_jw_raw(w, ",\"params\":", 10);
    lf_jw_raw(w, lf_psession_str(ps, e->params), e->params.len);
    lf_jw_raw(w, ",\"fields\":", 10);
    lf_jw_raw(w, lf_psession_str(ps, e->fields), e->fields.len);
    lf_jw_raw(w, ",\"message\":", 11);
    lf_jw_str(w, lf_psession_str(ps, e->message), e->message.len);
    lf_jw_raw(w, "}\n", 2);
}

static void count_refusal(lf_loader_es_result *res, const char *type)
{
    res->refused++;
    const char *t = type[0] ? type : "unknown";
    size_t i = 0;
    while (i < res->n_refusal_types && strcmp(res->refusals[i].type, t) != 0)
        i++;
    if (i == res->n_refusal_types) {
        if (i == LF_LOADER_ES_REFUSAL_TYPES) {
            t = "other";
            for (i = 0; i < res->n_refusal_types && strcmp(res->refusals[i].type, t) != 0; i++)
                ;
        }
        if (i == res->n_refusal_types) {
            snprintf(res->refusals[i].type, sizeof res->refusals[i].type, "%s", t);
            res->n_refusal_types++;
        }
    }
    res->refusals[i].count++;
}

/* Sends one bulk body for the events seqs[0..n). On return, seqs holds the events to retry (429)
 * and *n_retry their count. LF_ECONFIG when an item is held. */
static int send_bulk(lf_loader_es *es, lf_jw *w, const lf_psession *ps, size_t *seqs, size_t n, size_t *n_retry,
                     lf_loader_es_result *res)
{
    *n_retry = 0;
    char url[1024];
    snprintf(url, sizeof url, "%s/_bulk", es->url);
    const char *headers[] = {"Content-Type: application/x-ndjson", NULL};
    lf_http_client_request req = {.method = "POST", .url = url, .headers = headers, .body = w->buf, .body_len = w->len};
    lf_http_response r;
    int rc = lf_http_client_fetch(es->http, &req, &r);
    if (rc < 0) {
        snprintf(res->reason, sizeof res->reason, "bulk request: %s", lf_strerror(rc));
        lf_http_response_free(&r);
        return rc;
    }
    if (r.status != 200) {
        rc = refused("bulk request", r.status, &r.body, res->reason, sizeof res->reason);
        lf_http_response_free(&r);
        return rc;
    }
    json_t *doc = NULL, *items = NULL;
    lf_buf err = LF_BUF_INIT(256);
    rc = lf_json_parse(r.body.data ? r.body.data : "", r.body.len, 512u << 20, &doc, &err);
    lf_buf_free(&err);
    lf_http_response_free(&r);
    if (rc < 0 || lf_json_get_array(doc, "items", &items) != 0 || json_array_size(items) != n) {
        json_decref(doc);
        snprintf(res->reason, sizeof res->reason, "bulk response without one item per document");
        return LF_EFORMAT;
    }
    bool hold = false;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_object_get(json_array_get(items, i), "index");
        int64_t st = 0;
        if (!it || lf_json_get_int(it, "status", &st) != 0)
            st = 500;
        if (st == 200 || st == 201) {
            res->indexed++;
            continue;
        }
        char type[64], why[300];
        lf_es_error_json(json_object_get(it, "error"), type, sizeof type, why, sizeof why);
        enum lf_es_refusal k = lf_es_classify((int)st, type, why);
        if (k == LF_ES_RETRY) {
            seqs[(*n_retry)++] = seqs[i];
        } else if (k == LF_ES_NEVER) {
            count_refusal(res, type);
            if (!res->reason[0])
                snprintf(res->reason, sizeof res->reason, "event %zu can never be indexed (HTTP %d %s): %s", seqs[i],
                         (int)st, type, why);
        } else if (!hold) { /* the first hold says what to fix; the session is sent again whole */
            hold = true;
            snprintf(res->reason, sizeof res->reason, "event %zu refused (HTTP %d %s): %.200s (%s)", seqs[i],
                     (int)st, type[0] ? type : "", why, lf_es_hold_hint((int)st, type));
        }
    }
    json_decref(doc);
    return hold ? LF_ECONFIG : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int lf_loader_es_load(lf_loader_es *es, const lf_psession *ps, lf_loader_es_result *res)
{
    memset(res, 0, sizeof *res);
    if (!es->template_installed) {
        int rc = install_template(es, res->reason, sizeof res->reason);
        if (rc < 0)
            return rc;
        es->template_installed = true;
    }
    if (ps->n_events == 0)
        return 0;
    size_t *todo = lf_malloc(ps->n_events * sizeof *todo);
    size_t *batch = lf_malloc(ps->n_events * sizeof *batch);
    lf_jw w;
    if (!todo || !batch || lf_jw_init(&w, -1, es->bulk_bytes + 4096) < 0) {
        lf_free(todo);
        lf_free(batch);
        return -ENOMEM;
    }
    size_t n_todo = ps->n_events;
    for (size_t i = 0; i < n_todo; i++)
        todo[i] = i;
    int rc = 0;
    for (int round = 0; n_todo > 0 && rc == 0; round++) {
        if (round > ITEM_RETRIES) {
            snprintf(res->reason, sizeof res->reason, "%zu documents still refused with 429 after %d retries", n_todo,
                     ITEM_RETRIES);
            rc = LF_ELIMIT;
            break;
        }
        if (round > 0)
            sleep_ms(100L << (round < 6 ? round : 6));
        size_t next_todo = 0, pos = 0;
        while (pos < n_todo && rc == 0) {
            w.len = 0;
            size_t nb = 0;
            while (pos < n_todo && (nb == 0 || w.len < es->bulk_bytes)) {
                size_t before = w.len;
                append_doc(&w, es->prefix, ps, todo[pos]);
                if (nb > 0 && w.len > es->bulk_bytes) { /* keep the body under the bound */
                    w.len = before;
                    break;
                }
                batch[nb++] = todo[pos++];
            }
            if (w.error) {
                rc = w.error;
                break;
            }
            size_t n_retry = 0;
            rc = send_bulk(es, &w, ps, batch, nb, &n_retry, res);
            for (size_t i = 0; i < n_retry; i++)
                todo[next_todo++] = batch[i]; /* next_todo <= pos: safe in place */
        }
        if (rc == 0) {
            n_todo = next_todo;
        }
    }
    lf_jw_free(&w);
    lf_free(todo);
    lf_free(batch);
    return rc;
}
