/* See uploader_http.h. */
#include "uploader_http.h"

#include <errno.h>

#include "lf_alloc.h"
#include "lf_http_client.h"

struct lf_uhttp {
    lf_http_client *c;
};

struct call {
    lf_uhttp_cb cb;
    void *arg;
};

int lf_uhttp_new(uv_loop_t *loop, const lf_uhttp_opts *uo, lf_metrics *metrics, lf_uhttp **out)
{
    lf_uhttp *h = lf_calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.timeout_ms = uo->timeout_ms;
    o.max_attempts = 3; /* quick retries here; longer waits are the engine's backoff */
    o.backoff_max_ms = 5000;
    o.max_retry_after_ms = 10000;
    o.proxy = uo->proxy;
    o.ca_file = uo->ca_file;
    o.max_send_speed = uo->max_send_speed;
    o.max_connections = uo->max_connections;
    o.max_response = 64 * 1024;
    /* 16 KiB per upload instead of curl's 64: concurrency x 48 KiB less heap, same throughput on
     * the small zips sessions make. */
    o.upload_buffer_size = 16 * 1024;
    int rc = lf_http_client_new(loop, &o, &h->c);
    if (rc < 0) {
        lf_free(h);
        return rc;
    }
    if (metrics && (rc = lf_http_client_metrics(h->c, metrics, "receiver")) != 0) {
        lf_uhttp_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

static void done(lf_http_client *c, int rc, lf_http_response *resp, void *arg)
{
    (void)c;
    struct call call = *(struct call *)arg;
    lf_free(arg);
    if (rc == 0)
        call.cb(call.arg, 0, resp->status, resp->retry_after_ms, resp->body.data);
    else
        call.cb(call.arg, rc, 0, -1, NULL);
}

int lf_uhttp_put_file(lf_uhttp *h, const char *url, const char *const *headers, const char *path,
                      lf_uhttp_cb cb, void *arg)
{
    struct call *call = lf_malloc(sizeof *call);
    if (!call)
        return -ENOMEM;
    call->cb = cb;
    call->arg = arg;
    lf_http_client_request req = {.method = "PUT", .url = url, .headers = headers, .body_file = path};
    int rc = lf_http_client_send(h->c, &req, done, call);
    if (rc < 0)
        lf_free(call);
    return rc;
}

void lf_uhttp_close(lf_uhttp *h)
{
    if (!h)
        return;
    lf_http_client_close(h->c, NULL, NULL);
    lf_free(h);
}
