/* The parser's queue of session ids, on either backend ([queue] backend): the receiver's queue API
 * (lf_queue_client.h) or NATS JetStream directly (lf_jsconsumer.h). One set of calls for the
 * service's workers, with the semantics of lf_queue_client.h; where JetStream differs (acks one at a
 * time, no stale receipts) lf_jsconsumer.h says how. */
#ifndef LF_PARSER_WORK_QUEUE_H
#define LF_PARSER_WORK_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_error.h"
#include "lf_jsqueue.h"
#include "parser_config.h"

typedef struct lf_work_msg {
    int64_t id;                           /* the queue's message id (JetStream: stream sequence) */
    char receipt[LF_JSQUEUE_RECEIPT_MAX]; /* long enough for either backend's receipts */
    uint32_t receive_count;
    int64_t sent_ms;
    char *body; /* NUL-terminated, owned (lf_work_queue_msgs_free) */
    size_t len;
    char origin[LF_JSQUEUE_ORIGIN_MAX]; /* jetstream: the receiver storing the session ("": [receiver] url) */
    lf_jsqueue_msg js; /* jetstream: the message as received, body NULL (for lf_work_queue_dead_letter) */
} lf_work_msg;

typedef struct lf_work_queue lf_work_queue;

/* Connects to the configured backend (JetStream: connects, ensures the streams and the consumer).
 * err says why not. */
LF_MUST_CHECK int lf_work_queue_open(const struct lf_parser_config *cfg, lf_work_queue **out, lf_buf *err);
void lf_work_queue_stop(lf_work_queue *wq);
/* Flushes what the backend batches (up to flush_timeout_ms) and frees; on JetStream also frees
 * libnats' process-wide state (lf_jetstream_shutdown), so at most one queue per process. */
void lf_work_queue_close(lf_work_queue *wq, long flush_timeout_ms);

LF_MUST_CHECK int lf_work_queue_receive(lf_work_queue *wq, unsigned max, lf_work_msg **msgs, size_t *n);
void lf_work_queue_msgs_free(lf_work_msg *msgs, size_t n);
LF_MUST_CHECK int lf_work_queue_track(lf_work_queue *wq, const char *receipt);
void lf_work_queue_untrack(lf_work_queue *wq, const char *receipt);
bool lf_work_queue_lost(lf_work_queue *wq, const char *receipt);
LF_MUST_CHECK int lf_work_queue_ack(lf_work_queue *wq, const char *receipt);
LF_MUST_CHECK int lf_work_queue_nack(lf_work_queue *wq, const char *receipt, uint64_t delay_ms);
/* jetstream: untracks m and moves it to the dead letters with reason at once (lf_jsconsumer.h);
 * -ENOTSUP on the embedded backend. */
LF_MUST_CHECK int lf_work_queue_dead_letter(lf_work_queue *wq, const lf_work_msg *m, const char *reason);
/* Whether an ack or nack can reach the queue now (jetstream: NATS connected; embedded: always, its
 * client batches and retries on its own). */
bool lf_work_queue_connected(lf_work_queue *wq);
/* Whether messages name the receiver storing their session (jetstream). */
bool lf_work_queue_names_receiver(const lf_work_queue *wq);
/* "http://127.0.0.1:8440" or "nats://..." (the first server), for log lines. */
const char *lf_work_queue_where(const lf_work_queue *wq);

#endif
