/* Client of the receiver's queue API (POST /v1/queues/{q}/receive|ack|extend|nack, bearer token
 * with the worker scope), for parsers on any host. Blocking calls, safe from several worker threads
 * at once (each call borrows a blocking lf_http_client from a small pool), plus one background
 * thread that:
 *   - sends acks in batches: lf_queue_client_ack() queues the receipt; the batch goes out when it
 *     holds ack_batch_max receipts or its oldest is ack_delay_ms old, as one request; a batch that
 *     could not be sent (receiver away) is kept and sent again with backoff;
 *   - extends the visibility of every tracked receipt (a job in progress) every visibility_s / 2,
 *     so a long job keeps its message; a receipt the queue no longer knows (404) stops being
 *     extended and is reported by lf_queue_client_lost().
 * Receive long-polls (wait_s) and, while the receiver cannot be reached or answers 5xx/429, tries
 * again after exponential backoff with full jitter (backoff_base_ms doubling up to backoff_max_ms)
 * until a message arrives, one long poll ends empty, or the client is stopped.
 *
 * Return codes: 0 or a negative code; LF_ECLOSED once lf_queue_client_stop() was called; LF_EAUTH
 * for 401/403 (a token without the worker scope: retrying will not help); LF_EHTTP for other
 * unexpected statuses; -ENOENT from extend/nack for a stale receipt. */
#ifndef LF_QUEUE_CLIENT_H
#define LF_QUEUE_CLIENT_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_queue.h"

typedef struct lf_queue_client lf_queue_client;

typedef struct lf_queue_client_opts {
    const char *base_url;  /* "http://127.0.0.1:8440" (no trailing slash needed) */
    const char *token;     /* bearer token, NULL for none */
    const char *queue;     /* "sessions" */
    unsigned wait_s;       /* long poll, default 10 */
    unsigned visibility_s; /* visibility of received messages and of each extension, default 60 */
    unsigned ack_batch_max;  /* default 100 (at most LF_QUEUE_ACK_MAX) */
    unsigned ack_delay_ms;   /* default 20 */
    long backoff_base_ms;    /* default 100 */
    long backoff_max_ms;     /* default 5000 */
    long request_timeout_ms; /* besides the long poll; default 30000 */
} lf_queue_client_opts;

void lf_queue_client_opts_default(lf_queue_client_opts *o);

typedef struct lf_queue_client_msg {
    int64_t id;
    char receipt[LF_QUEUE_RECEIPT_MAX];
    uint32_t receive_count;
    int64_t sent_ms;
    char *body; /* NUL-terminated, owned (lf_queue_client_msgs_free) */
    size_t len;
} lf_queue_client_msg;

typedef struct lf_queue_client_stats {
    uint64_t received, receive_requests, receive_failures;
    uint64_t acked, ack_requests, ack_failures, acks_stale;
    uint64_t extends, extend_failures, lost;
    uint64_t nacks;
} lf_queue_client_stats;

/* Copies the options' strings; starts the background thread. 0, -EINVAL or -ENOMEM. */
LF_MUST_CHECK int lf_queue_client_new(const lf_queue_client_opts *opts, lf_queue_client **out);
/* Makes receive/nack return LF_ECLOSED (a receive in a long poll returns when the poll ends);
 * queued acks are still sent by lf_queue_client_close. Any thread. */
void lf_queue_client_stop(lf_queue_client *qc);
/* Sends queued acks (trying for up to flush_timeout_ms), stops the thread and frees. No other call
 * may be in progress. */
void lf_queue_client_close(lf_queue_client *qc, long flush_timeout_ms);

/* Receives up to max messages; *msgs (lf_queue_client_msgs_free) and *n (0 when the poll ended
 * empty). */
LF_MUST_CHECK int lf_queue_client_receive(lf_queue_client *qc, unsigned max, lf_queue_client_msg **msgs, size_t *n);
void lf_queue_client_msgs_free(lf_queue_client_msg *msgs, size_t n);

/* Keeps a receipt's message invisible while its job runs (extended every visibility_s / 2). */
LF_MUST_CHECK int lf_queue_client_track(lf_queue_client *qc, const char *receipt);
void lf_queue_client_untrack(lf_queue_client *qc, const char *receipt);
/* true when the queue refused to extend this tracked receipt (it expired and may be with another
 * worker): the job should not ack. Clears nothing; untrack forgets it. */
bool lf_queue_client_lost(lf_queue_client *qc, const char *receipt);

/* Untracks and queues the receipt for the next ack batch. 0, or LF_ELIMIT when more than
 * LF_QUEUE_ACK_MAX * 10 acks are waiting (the receiver has been away long). */
LF_MUST_CHECK int lf_queue_client_ack(lf_queue_client *qc, const char *receipt);
/* Waits until every queued ack was answered, up to timeout_ms. 0 or -ETIMEDOUT. */
LF_MUST_CHECK int lf_queue_client_flush(lf_queue_client *qc, long timeout_ms);
/* Untracks and hands the message back, visible again after delay_s. One request (with retries
 * while the receiver is away, until stopped). */
LF_MUST_CHECK int lf_queue_client_nack(lf_queue_client *qc, const char *receipt, unsigned delay_s);
/* Extends one receipt now. */
LF_MUST_CHECK int lf_queue_client_extend(lf_queue_client *qc, const char *receipt, unsigned visibility_s);

void lf_queue_client_stats_get(lf_queue_client *qc, lf_queue_client_stats *out);

#endif
