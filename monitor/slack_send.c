/* Webhook delivery and heartbeat pings: see slack_send.h. */
#include "slack_send.h"

#include <errno.h>
#include <string.h>

#include "lf_error.h"
#include "lf_log.h"

int lf_slack_send(const char *body, size_t len, const char *route, void *ctx, int *http_status,
                  int64_t *retry_after_ms)
{
    const lf_slack_sender *s = ctx;
    *http_status = 0;
    *retry_after_ms = 0;
    const char *url = route && route[0] ? route : s ? s->webhook_url : NULL;
    if (!s || !s->http || !url || !url[0])
        return -EINVAL;
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    lf_http_client_request req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = len,
        .max_response = 64 * 1024,
        .timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 10000,
        .max_attempts = 1,
    };
    lf_http_response resp;
    int rc = lf_http_client_fetch(s->http, &req, &resp);
    if (rc == 0) {
        *http_status = resp.status;
        *retry_after_ms = resp.retry_after_ms > 0 ? resp.retry_after_ms : 0;
        if (resp.status != 200)
            /* Slack explains refusals in the body ("invalid_payload", "no_service", ...) */
            LF_WARN("slack", "webhook answered %d: %.200s", resp.status, lf_buf_cstr(&resp.body));
    }
    lf_http_response_free(&resp);
    return rc;
}

int lf_slack_heartbeat(lf_http_client *http, const char *url, long timeout_ms)
{
    if (!http || !url || !url[0])
        return -EINVAL;
    lf_http_client_request req = {
        .method = "GET",
        .url = url,
        .max_response = 64 * 1024,
        .timeout_ms = timeout_ms > 0 ? timeout_ms : 10000,
        .max_attempts = 1,
    };
    lf_http_response resp;
    int rc = lf_http_client_fetch(http, &req, &resp);
    if (rc == 0 && (resp.status < 200 || resp.status > 299))
        rc = LF_EHTTP;
    lf_http_response_free(&resp);
    return rc;
}
