/* Sending to the Slack incoming webhook and pinging the dead-man's-switch URL, through a blocking
 * lf_http_client. One attempt per call: the outbox owns the retry policy (Retry-After exactly on 429,
 * backoff otherwise) and persists it, so a restart honours a pending Retry-After too. */
#ifndef LF_SLACK_SEND_H
#define LF_SLACK_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "lf_http_client.h"

typedef struct lf_slack_sender {
    lf_http_client *http;    /* blocking client (loop NULL) */
    const char *webhook_url; /* secret: it is the credential */
    long timeout_ms;         /* per attempt; 0: 10 s */
} lf_slack_sender;

/* An lf_outbox_send_fn: ctx is an lf_slack_sender. POSTs body as application/json to route (a
 * check's own webhook_url) or, when route is NULL, the sender's webhook_url. Returns 0 when an
 * HTTP answer arrived (*http_status set; *retry_after_ms from Retry-After, 0 when absent), else the
 * transport error (*http_status 0). */
int lf_slack_send(const char *body, size_t len, const char *route, void *ctx, int *http_status,
                  int64_t *retry_after_ms);

/* The dead-man's switch: GET url once. 0 on a 2xx answer, LF_EHTTP for another status, or the
 * transport error. */
int lf_slack_heartbeat(lf_http_client *http, const char *url, long timeout_ms);

#endif
