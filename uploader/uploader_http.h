/* The uploader's thin wrapper around lf_http_client (kept in its own file: lf_http_client.h and
 * lf_service.h both define an lf_http_request and cannot meet in one translation unit). */
#ifndef LF_UPLOADER_HTTP_H
#define LF_UPLOADER_HTTP_H

#include <stdint.h>
#include <uv.h>

#include "lf_metrics.h"

typedef struct lf_uhttp lf_uhttp;

typedef struct lf_uhttp_opts {
    const char *proxy;
    const char *ca_file; /* NULL: the system's CA bundle */
    long timeout_ms;
    int64_t max_send_speed;
    long max_connections;
} lf_uhttp_opts;

/* rc: 0 with an HTTP status, else a transport error. body: the response body (may be NULL),
 * valid during the call. retry_after_ms: -1 when absent. */
typedef void (*lf_uhttp_cb)(void *arg, int rc, int status, int64_t retry_after_ms,
                            const char *body);

int lf_uhttp_new(uv_loop_t *loop, const lf_uhttp_opts *o, lf_metrics *metrics, lf_uhttp **out);
/* PUT of a file with the given extra header lines (NULL-terminated). */
int lf_uhttp_put_file(lf_uhttp *h, const char *url, const char *const *headers, const char *path,
                      lf_uhttp_cb cb, void *arg);
void lf_uhttp_close(lf_uhttp *h);

#endif
