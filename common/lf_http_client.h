/* HTTP client for every logferry program (uploads, the parsers' queue client, Elasticsearch, Slack),
 * built on libcurl.
 *
 * Design choice: the curl MULTI interface driven by the libuv loop (curl_multi_socket_action with
 * one uv_poll_t per socket curl asks to watch and one uv_timer_t for curl's timeout), not a worker
 * thread. Why: the programs are single-loop libuv programs; a worker thread would need a queue, a
 * uv_async_t and locking to hand results back, and would hold one blocked thread per concurrent
 * transfer or run its own event loop anyway. With the multi interface many transfers share the
 * loop, callbacks run on the loop thread like every other libuv callback, and the multi handle's
 * connection cache is the keep-alive pool shared by every request of a client.
 *
 * The blocking API (lf_http_client_fetch) shares the same core: the same request set-up, response
 * capture, error mapping, retry policy and counters; it drives a private multi handle with
 * curl_multi_perform/curl_multi_poll instead of the loop, and sleeps between retries. It is meant for
 * command-line tools and worker threads. A client is either loop-bound (created with a loop: use
 * lf_http_client_send) or blocking (created with loop == NULL: use lf_http_client_fetch); neither
 * kind may be used from two threads at once, except lf_http_client_stats which any thread may call.
 *
 * Results follow libuv's rules: 0 or a negative code. A transfer that got an HTTP response (after
 * retries) succeeds with 0 whatever the status; the status is in lf_http_response.status.
 * Transport failures are negated errno values:
 *   -ECONNREFUSED (or the connect errno curl saw: -EHOSTUNREACH, -ENETUNREACH...) could not connect,
 *   -ETIMEDOUT    connect, total or low-speed timeout,
 *   -EHOSTUNREACH name or proxy could not be resolved,
 *   -ECONNRESET   the peer closed or reset the connection (also mid-body, or nothing received),
 *   -EPROTO       malformed HTTP answer or a TLS handshake failure,
 *   LF_EAUTH      the peer's TLS certificate failed verification,
 *   LF_ELIMIT     the response body passed max_response,
 *   -EIO/-ENOENT  reading the request body file or writing the response file failed,
 *   -ECANCELED    the client was closed with the transfer in flight,
 *   -EINVAL       bad request arguments, -ENOMEM.
 * A call that fails (returns < 0) never calls its callback.
 *
 * Retries: exponential backoff with full jitter (delay = uniform(0, min(backoff_max_ms,
 * backoff_base_ms * 2^(retry-1)))). On 429 and 503 a Retry-After header (delta-seconds or an
 * HTTP-date) is honoured: the delay is at least what it says; when it asks for longer than
 * max_retry_after_ms, or the next attempt would pass deadline_ms, the client stops retrying and
 * returns that response (its retry_after_ms tells the caller when to come back). By default 408,
 * 429, 500, 502, 503 and 504 are retried, and the transport errors ECONNREFUSED, ECONNRESET,
 * ETIMEDOUT, EHOSTUNREACH and EPROTO; no other 4xx ever is unless listed in retry_statuses. Retries
 * re-send the same request, so callers retry only idempotent requests (logferry's PUTs are keyed by
 * id) or set max_attempts = 1.
 *
 * TLS: peer and host verification are on unless tls_insecure is set. Proxy: proxy option, else the
 * usual environment variables, which libcurl reads itself (http_proxy, HTTPS_PROXY, ALL_PROXY,
 * NO_PROXY; note curl ignores upper-case HTTP_PROXY); proxy = "" disables any proxy. curl's
 * "Expect: 100-continue" is disabled (one round trip less; logferry's server does not send 100).
 * Only http and https URLs are accepted; redirects are not followed (a 3xx is returned as it is).
 *
 * Example (blocking):
 *     lf_http_client *c;  lf_http_client_new(NULL, NULL, &c);
 *     lf_http_client_request req = {.method = "PUT", .url = u, .body_file = path, .headers = hdrs};
 *     lf_http_response r;
 *     int rc = lf_http_client_fetch(c, &req, &r);   // rc < 0: no answer; else r.status
 *     lf_http_response_free(&r);  lf_http_client_close(c, NULL, NULL);
 */
#ifndef LF_HTTP_CLIENT_H
#define LF_HTTP_CLIENT_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lf_buf.h"
#include "lf_metrics.h"

typedef struct lf_http_client lf_http_client;

#define LF_HTTP_MAX_RETRY_STATUSES 16

typedef struct lf_http_client_opts {
    /* Timeouts per attempt, in milliseconds; 0 takes the default. */
    long connect_timeout_ms;  /* default 10000 */
    long timeout_ms;          /* whole attempt, default 60000; -1 for none (streaming downloads) */
    long low_speed_limit;     /* bytes/s; below it for low_speed_time_s seconds fails. 0 = off */
    long low_speed_time_s;    /* default 30 when low_speed_limit is set */

    /* Retries. max_attempts counts the first one: 1 disables retries. Default 4. */
    int max_attempts;
    long backoff_base_ms;    /* default 200 */
    long backoff_max_ms;     /* default 30000 */
    long max_retry_after_ms; /* a longer Retry-After is not waited for; default 120000 */
    long deadline_ms;        /* all attempts and waits together; 0 = no overall deadline */
    /* HTTP statuses that are retried, 0-terminated; empty (first element 0) takes the default set. */
    int retry_statuses[LF_HTTP_MAX_RETRY_STATUSES];
    bool no_retry_transport; /* do not retry transport errors */

    /* TLS. */
    const char *ca_file;     /* CA bundle (PEM); NULL = system default */
    const char *client_cert; /* PEM client certificate, optional */
    const char *client_key;  /* PEM key for it */
    bool tls_insecure;       /* disables peer and host verification (development only) */
    /* Credentials: the value of an Authorization header sent with every request that has none of
     * its own ("Basic dXNlcjpwdw==", "ApiKey ..."). A secret: copied, wiped when the client
     * closes, never logged. NULL = none. */
    const char *authorization;

    /* Proxy: NULL = environment variables, "" = never a proxy, else "http://host:port". */
    const char *proxy;
    const char *no_proxy;    /* comma-separated hosts that bypass the proxy; NULL = from env */

    /* Limits. */
    size_t max_response;       /* response body bytes, default 16 MiB */
    size_t max_header_bytes;   /* all response header lines, default 64 KiB */
    int64_t max_send_speed;    /* request body bytes/s, 0 = unlimited (CURLOPT_MAX_SEND_SPEED_LARGE) */
    long max_connections;      /* connection cache size (keep-alive pool), default 8 */
    long upload_buffer_size;   /* curl's upload buffer per transfer (16 KiB..2 MiB); 0: curl's
                                * default (64 KiB) */
    const char *user_agent;    /* default "logferry/<version>" */
} lf_http_client_opts;

typedef struct lf_http_client_request {
    const char *method;   /* "GET" (default when NULL), "HEAD", "PUT", "POST", "DELETE", ... */
    const char *url;      /* required */
    /* NULL-terminated array of "Name: value" lines; copied by send/fetch, the caller keeps them. */
    const char *const *headers;
    /* Body from memory: BORROWED; with send it must stay valid and unchanged until the callback. */
    const void *body;
    size_t body_len;
    /* Or body streamed from a file (opened per request, read with pread, re-read on retry). */
    const char *body_file;
    /* Response body streamed to this file (created or truncated, 0600) instead of into
     * lf_http_response.body; its contents are meaningful only when the transfer returns 0. */
    const char *response_file;
    /* Per-request overrides; 0 keeps the client's. */
    size_t max_response;
    long timeout_ms;
    int max_attempts;
    int64_t max_send_speed;
} lf_http_client_request;

typedef struct lf_http_response {
    int status;              /* final HTTP status, 0 when none was received */
    int attempts;            /* attempts made (1 = no retry) */
    int64_t retry_after_ms;  /* Retry-After of the final response in ms, -1 when absent */
    double elapsed_s;        /* from send to completion, waits included */
    lf_buf body;             /* response body (not filled when response_file is set) */
    lf_buf headers;          /* internal: "name\0value\0" pairs of the final response */
} lf_http_response;

typedef struct lf_http_client_stats {
    uint64_t requests;        /* requests started */
    uint64_t attempts;        /* attempts made, retries included */
    uint64_t retries;
    uint64_t responses_2xx, responses_3xx, responses_4xx, responses_5xx;
    uint64_t transport_errors; /* attempts that got no HTTP response */
    uint64_t timeouts;
    uint64_t connections_opened; /* new connections; attempts minus these reused the pool */
    uint64_t bytes_sent, bytes_received;
    uint64_t in_flight;
} lf_http_client_stats;

/* Checks that url is http:// or https:// with a host and holds no space, control character or
 * non-ASCII byte. 0 with *host_len the length of the authority (up to the first / ? or #), or
 * LF_ECONFIG with the reason in err ("must start with http:// or https://"). */
LF_MUST_CHECK int lf_http_url_check(const char *url, size_t *host_len, lf_buf *err);
/* The same as a configuration validate hook (field: a char *, NULL passes). */
int lf_http_url_validate(const void *field, lf_buf *err);

/* Fills opts with the defaults above (every field set, so callers change only what they need). */
void lf_http_client_opts_default(lf_http_client_opts *opts);

/* loop: the libuv loop for lf_http_client_send, or NULL for a blocking client (fetch).
 * opts: NULL for the defaults; its strings are copied. 0 and *out, or -EINVAL/-ENOMEM. */
LF_MUST_CHECK int lf_http_client_new(uv_loop_t *loop, const lf_http_client_opts *opts, lf_http_client **out);

/* Loop-bound clients: the callback runs on the loop thread once the transfer has ended (after any
 * retries). resp is owned by the client and valid only during the callback; keep the body by taking
 * it with lf_buf_steal(&resp->body, ...). rc is 0 when an HTTP response arrived, else < 0. */
typedef void (*lf_http_cb)(lf_http_client *client, int rc, lf_http_response *resp, void *arg);
LF_MUST_CHECK int lf_http_client_send(lf_http_client *client, const lf_http_client_request *req, lf_http_cb cb, void *arg);

/* Blocking clients: performs the request with retries. resp is initialised here whatever the
 * result; the caller frees it with lf_http_response_free. */
LF_MUST_CHECK int lf_http_client_fetch(lf_http_client *client, const lf_http_client_request *req, lf_http_response *resp);
void lf_http_response_free(lf_http_response *resp);

/* Value of a header of the final response (case-insensitive name), NUL-terminated and trimmed, or
 * NULL. Valid as long as the response is. */
const char *lf_http_response_header(const lf_http_response *resp, const char *name);

/* Parses a Retry-After value (delta-seconds or HTTP-date) relative to now (time(NULL)); the delay in
 * ms (0 for a date in the past), or -EINVAL. */
int64_t lf_http_parse_retry_after(const char *value, int64_t now);

/* The delay before retry number `retry` (1 = first retry) with full jitter, given the server's
 * Retry-After in ms (-1 none); rnd is a uniform random 64-bit value. Exposed for tests. */
int64_t lf_http_backoff_ms(const lf_http_client_opts *opts, int retry, int64_t retry_after_ms,
                           uint64_t rnd);

/* true when the options' policy retries this HTTP status / this transport error code. */
bool lf_http_status_retryable(const lf_http_client_opts *opts, int status);
bool lf_http_error_retryable(const lf_http_client_opts *opts, int rc);

/* Counter snapshot for /metrics; safe from any thread. */
void lf_http_client_stats_get(const lf_http_client *client, lf_http_client_stats *out);

/* Also counts into reg, labelled client="<name>" (name: [A-Za-z0-9_-], e.g. "elasticsearch"):
 *   lf_http_client_requests_total, _attempts_total, _retries_total, _responses_total{class="2xx"..},
 *   _transport_errors_total, _timeouts_total, _connections_opened_total, _sent_bytes_total,
 *   _received_bytes_total (counters), lf_http_client_in_flight (gauge) and
 *   lf_http_client_request_seconds (histogram of whole requests, retries included).
 * Call it once, before the first request; counting starts then. The registry must outlive the
 * client. 0, -EINVAL (bad name, or already attached) or -ENOMEM. */
LF_MUST_CHECK int lf_http_client_metrics(lf_http_client *client, lf_metrics *reg, const char *name);

/* Loop-bound clients: in-flight transfers end with -ECANCELED (their callbacks run from inside this
 * call), handles are closed, and the client is freed once libuv has closed them; close_cb (may be
 * NULL) runs then. Blocking clients are freed at once (close_cb runs before return). */
void lf_http_client_close(lf_http_client *client, void (*close_cb)(void *arg), void *arg);

#endif
