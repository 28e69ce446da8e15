/* Queue benchmark over HTTP (see bench_queue_http.h). The sessions are pre-built (zip + manifest) by
 * bench/queue/make_pool.py and signed here once at load (lf_sign_request, timestamp now), so the
 * timed part is only HTTP: every producer keeps one upload in flight on the async client (libcurl
 * multi on the libuv loop) and starts the next when the answer comes. */
#include "bench_queue_http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "lf_buf.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_sign.h"

typedef struct pool_item {
    char url[128];
    char auth[LF_SIGN_HEADER_MAX + 32];
    const char *body;
    size_t len;
} pool_item;

static char *pool_data;
static pool_item *pool;
static size_t pool_n, pool_next;

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static int load_pool(const bench_http_cfg *cfg)
{
    FILE *f = fopen(cfg->pool, "rb");
    if (!f) {
        perror(cfg->pool);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    pool_data = malloc((size_t)size + 1);
    if (!pool_data || fread(pool_data, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        fprintf(stderr, "cannot read %s\n", cfg->pool);
        return -1;
    }
    fclose(f);
    uint8_t sk[LF_SIGN_SK_BYTES];
    char err[256];
    if (lf_sign_sk_load(cfg->sk, sk, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", cfg->sk, err);
        return -1;
    }
    size_t cap = 1024;
    pool = malloc(cap * sizeof *pool);
    int64_t ts = (int64_t)time(NULL);
    char *p = pool_data, *end = pool_data + size;
    while (p < end && pool) {
        char id[64];
        size_t len;
        int used = 0;
        if (sscanf(p, "%63s %zu\n%n", id, &len, &used) != 2 || used == 0 || (size_t)(end - p - used) < len) {
            fprintf(stderr, "%s: bad record at %ld\n", cfg->pool, (long)(p - pool_data));
            return -1;
        }
        p += used;
        if (pool_n == cap) {
            cap *= 2;
            pool_item *np = realloc(pool, cap * sizeof *pool);
            if (!np)
                break;
            pool = np;
        }
        pool_item *it = &pool[pool_n++];
        snprintf(it->url, sizeof it->url, "http://127.0.0.1:%d/v1/sessions/%s", cfg->port, id);
        it->body = p;
        it->len = len;
        p += len;
        uint8_t hash[LF_HASH_BYTES];
        lf_crypto_hash(hash, it->body, it->len);
        char path[96];
        snprintf(path, sizeof path, "/v1/sessions/%s", id);
        lf_buf b = LF_BUF_INIT(LF_SIGN_HEADER_MAX);
        if (lf_buf_append(&b, "Authorization: ", 15) != 0 ||
            lf_sign_request(&b, sk, cfg->site, "PUT", path, ts, hash) != 0 || b.len >= sizeof it->auth) {
            fprintf(stderr, "signing failed\n");
            return -1;
        }
        memcpy(it->auth, b.data, b.len);
        it->auth[b.len] = 0;
        lf_buf_free(&b);
    }
    if (!pool) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    return 0;
}

/* --- sends --- */

typedef struct send_run {
    lf_http_client *client;
    double t_end, t_last;
    uint64_t ok, failed, in_flight;
    int first_fail_status;
} send_run;

static void send_one(send_run *r);

static void sent(lf_http_client *c, int rc, lf_http_response *resp, void *arg)
{
    (void)c;
    send_run *r = arg;
    r->in_flight--;
    r->t_last = now_s();
    if (rc == 0 && resp->status >= 200 && resp->status < 300) {
        r->ok++;
    } else {
        if (!r->first_fail_status)
            r->first_fail_status = rc < 0 ? rc : resp->status;
        r->failed++;
    }
    send_one(r);
}

static void send_one(send_run *r)
{
    if (now_s() >= r->t_end || pool_next >= pool_n)
        return;
    pool_item *it = &pool[pool_next++];
    const char *hdrs[] = {it->auth, "Content-Type: application/zip", NULL};
    lf_http_client_request req = {.method = "PUT", .url = it->url, .headers = hdrs, .body = it->body,
                                  .body_len = it->len, .max_attempts = 1};
    int rc = lf_http_client_send(r->client, &req, sent, r);
    if (rc < 0) {
        r->failed++;
        return;
    }
    r->in_flight++;
}

static void closed(void *arg)
{
    *(int *)arg = 1;
}

static lf_http_client *new_client(uv_loop_t *loop, int conns)
{
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.max_attempts = 1;
    o.proxy = "";
    o.max_connections = conns;
    o.timeout_ms = 30000;
    lf_http_client *c = NULL;
    int rc = lf_http_client_new(loop, &o, &c);
    if (rc != 0) {
        fprintf(stderr, "http client: %s\n", lf_strerror(rc));
        return NULL;
    }
    return c;
}

static void close_client(uv_loop_t *loop, lf_http_client *c)
{
    int done = 0;
    lf_http_client_close(c, closed, &done);
    while (!done && uv_run(loop, UV_RUN_ONCE))
        ;
}

static double bench_http_sends(uv_loop_t *loop, const bench_http_cfg *cfg, int nprod)
{
    send_run r = {0};
    r.client = new_client(loop, nprod);
    if (!r.client)
        return -1;
    size_t first = pool_next;
    double t0 = now_s();
    r.t_end = t0 + cfg->seconds;
    for (int i = 0; i < nprod; i++)
        send_one(&r);
    uv_run(loop, UV_RUN_DEFAULT);
    double t = r.t_last - t0;
    close_client(loop, r.client);
    double rate = t > 0 ? (double)r.ok / t : 0;
    printf("HTTP sends, %2d producers: %9.0f durable sends/s  (%" PRIu64 " uploads stored, %" PRIu64
           " failed, first failure %d, %.2f s%s)\n", nprod, rate, r.ok, r.failed, r.first_fail_status, t, pool_next >= pool_n && pool_next - first < pool_n ? ", pool exhausted" : "");
    return r.failed ? -1 : rate;
}

/* --- receive + ack --- */

typedef struct consumer {
    struct recv_run *run;
    char ack_body[64 + 200 * 1024];
    size_t ack_len;
} consumer;

typedef struct recv_run {
    lf_http_client *client;
    const bench_http_cfg *cfg;
    char recv_url[128], ack_url[128], auth[256], recv_body[128];
    double t_end, t_last;
    uint64_t acked, errors, empty;
} recv_run;

static void receive_next(consumer *c);

static const char **json_hdrs(recv_run *r)
{
    static const char *h[3];
    h[0] = r->auth;
    h[1] = "Content-Type: application/json";
    h[2] = NULL;
    return h;
}

static void on_ack(lf_http_client *cl, int rc, lf_http_response *resp, void *arg)
{
    (void)cl;
    consumer *c = arg;
    recv_run *r = c->run;
    r->t_last = now_s();
    json_t *js = rc == 0 && resp->status == 200 ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    json_int_t n = js ? json_integer_value(json_object_get(js, "acked")) : 0;
    if (!js)
        r->errors++;
    r->acked += (uint64_t)n;
    json_decref(js);
    receive_next(c);
}

static void on_receive(lf_http_client *cl, int rc, lf_http_response *resp, void *arg)
{
    (void)cl;
    consumer *c = arg;
    recv_run *r = c->run;
    json_t *js = rc == 0 && resp->status == 200 ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    json_t *msgs = js ? json_object_get(js, "messages") : NULL;
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        if (!js)
            r->errors++;
        else
            r->empty++;
        json_decref(js);
        return; /* queue drained (or an error): this consumer stops */
    }
    size_t len = (size_t)snprintf(c->ack_body, sizeof c->ack_body, "{\"receipts\":[");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *rcpt = json_string_value(json_object_get(json_array_get(msgs, i), "receipt"));
        if (rcpt && len + strlen(rcpt) + 8 < sizeof c->ack_body)
            len += (size_t)snprintf(c->ack_body + len, sizeof c->ack_body - len, "%s\"%s\"", i ? "," : "", rcpt);
    }
    len += (size_t)snprintf(c->ack_body + len, sizeof c->ack_body - len, "]}");
    c->ack_len = len;
    json_decref(js);
    lf_http_client_request req = {.method = "POST", .url = r->ack_url, .headers = json_hdrs(r),
                                  .body = c->ack_body, .body_len = c->ack_len, .max_attempts = 1};
    if (lf_http_client_send(r->client, &req, on_ack, c) < 0)
        r->errors++;
}

static void receive_next(consumer *c)
{
    recv_run *r = c->run;
    if (now_s() >= r->t_end)
        return;
    lf_http_client_request req = {.method = "POST", .url = r->recv_url, .headers = json_hdrs(r),
                                  .body = r->recv_body, .body_len = strlen(r->recv_body), .max_attempts = 1};
    if (lf_http_client_send(r->client, &req, on_receive, c) < 0)
        r->errors++;
}

static double bench_http_consume(uv_loop_t *loop, const bench_http_cfg *cfg)
{
    recv_run r = {0};
    r.cfg = cfg;
    r.client = new_client(loop, cfg->consumers);
    if (!r.client)
        return -1;
    snprintf(r.recv_url, sizeof r.recv_url, "http://127.0.0.1:%d/v1/queues/sessions/receive", cfg->port);
    snprintf(r.ack_url, sizeof r.ack_url, "http://127.0.0.1:%d/v1/queues/sessions/ack", cfg->port);
    snprintf(r.auth, sizeof r.auth, "Authorization: Bearer %s", cfg->token);
    snprintf(r.recv_body, sizeof r.recv_body, "{\"max\":%u,\"wait_s\":0,\"visibility_s\":60}", cfg->batch);
    consumer *cs = calloc((size_t)cfg->consumers, sizeof *cs);
    if (!cs)
        return -1;
    double t0 = now_s();
    r.t_end = t0 + cfg->seconds;
    for (int i = 0; i < cfg->consumers; i++) {
        cs[i].run = &r;
        receive_next(&cs[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    double t = r.t_last - t0;
    close_client(loop, r.client);
    free(cs);
    double rate = t > 0 ? (double)r.acked / t : 0;
    printf("HTTP receive+ack, %d consumers x %u msgs: %9.0f messages received and acked/s (%" PRIu64
           " acked in %.2f s, %" PRIu64 " errors%s)\n", cfg->consumers, cfg->batch, rate, r.acked, t, r.errors,
           r.empty ? ", queue drained" : "");
    return r.errors ? -1 : rate;
}

int bench_http_run(const bench_http_cfg *cfg, bench_queue_result *out)
{
    if (load_pool(cfg) != 0)
        return -1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int prods[] = {1, 8, 64};
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        out->sends_per_s[i] = bench_http_sends(&loop, cfg, prods[i]);
        if (out->sends_per_s[i] < 0)
            rc = -1;
    }
    out->recv_ack_per_s = bench_http_consume(&loop, cfg);
    if (out->recv_ack_per_s < 0)
        rc = -1;
    uv_loop_close(&loop);
    free(pool);
    free(pool_data);
    return rc;
}
