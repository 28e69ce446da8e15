/* Running a check to completion: fetch (HTTP through a blocking lf_http_client, or the disk and MySQL
 * probes), then evaluate into a result. Blocking, for a worker thread (uv_queue_work): each request
 * is bounded by the check's timeout and is not retried (a failed check is retried by the next run;
 * the pending period absorbs one-off failures). */
#ifndef LF_CHECK_RUN_H
#define LF_CHECK_RUN_H

#include <stdint.h>

#include "checks.h"
#include "lf_http_client.h"

/* Largest answer a check reads (queue statistics, health, cluster health, /metrics). */
#define LF_CHECK_MAX_RESPONSE (4u << 20)

/* GET url with an optional bearer token, at most timeout_ms, one attempt. resp is initialised here
 * and freed by the caller with lf_http_response_free; out points into it. */
void lf_check_http_get(lf_http_client *http, const char *url, const char *token, uint64_t timeout_ms,
                       lf_http_response *resp, lf_check_http *out);

/* Runs check c at now_ms. http: a blocking client (created with loop NULL), used by one thread at a
 * time; progress: the check's parser_progress memory (ignored by other kinds). */
void lf_check_run(const lf_check_config *c, lf_http_client *http, lf_check_progress *progress, int64_t now_ms,
                  lf_check_result *res);

#endif
