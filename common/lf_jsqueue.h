/* The durable queue on NATS JetStream: the scale-out backend behind `[queue] backend = jetstream`,
 * shared by any number of receivers (publishers) and parsers (consumers).
 *
 * Layout, per queue <q> (names: 1..LF_JSQUEUE_NAME_MAX characters from [A-Za-z0-9_-]):
 *  - stream "LF_Q_<q>", subject "logferry.q.<q>": work-queue retention (a message is gone once
 *    acked or terminated), file storage, options.replicas replicas, a deduplication window of
 *    options.dedup_window_ms;
 *  - stream "LF_DLQ_<q>", subject "logferry.dlq.<q>": the dead letters, limits retention (kept
 *    options.dlq_max_age_ms), file storage, same replicas;
 *  - durable pull consumer "lf-parsers" on the first stream, shared by every parser: explicit acks,
 *    deliver-all, AckWait = options.visibility_ms, no server-side delivery limit (max_receives is
 *    ours, see dead letters), at most options.max_ack_pending messages in flight.
 * lf_jsqueue_open creates what is missing and updates what differs from the options (replicas,
 * windows, ack wait), so every process opening a queue with the same options converges on one
 * configuration.
 *
 * Semantics
 *  - publish: returns only after the stream's PubAck: stored by the leader and, when replicated, by
 *    a quorum of the replicas. Not fsync'd: nats-server 2.9 writes to the page cache and syncs
 *    every 2 minutes (it has no sync_interval option), so a message survives a killed server but
 *    not a power cut of a single server; durability across power loss comes from replicas on
 *    independent hosts. With a msg_id (the session id), a second publish with the same id within
 *    the dedup window stores nothing: *duplicate = true and *seq is the first one's stream sequence.
 *    After a server restart the window is rebuilt from the messages still stored, so the id of a
 *    message already acked (gone, work-queue retention) is forgotten: a re-publish then stores a
 *    second copy, which the idempotent loads absorb (ARCHITECTURE.md, invariant 2).
 *  - receive: up to max messages, long-polling up to wait_ms (0: answer now). A delivered message
 *    is invisible to other consumers for the ack wait; the receipt (the delivery's ack subject) acks,
 *    extends or nacks it. receive_count comes from the delivery metadata (NumDelivered).
 *  - ack removes the message; nack makes it deliverable again after delay_ms (the delivery still
 *    counts toward max_receives); extend ("in progress") restarts the ack wait from now.
 *  - dead letters: a message delivered more than options.max_receives times (0 = never) is not
 *    returned: it is published to the dead-letter stream, with the reason in header
 *    "Lf-Dead-Letter-Reason", its original msg id in "Lf-Msg-Id" and its session id in
 *    "Lf-Session-Id", and only then terminated. The dead-letter publish's msg id is derived from the
 *    message's stream sequence ("<q>.<seq>"), so a crash between the publish and the terminate makes
 *    the repeat a deduplicated no-op. lf_jsqueue_dead_letter does the same for a message its worker
 *    found unprocessable.
 *  - redrive publishes each dead letter to the queue again under a fresh msg id
 *    "<session id>.r<dead-letter sequence>" (the original id may still be in the dedup window, which
 *    would drop it), the session id kept in "Lf-Session-Id" and its origin in "Lf-Receiver", then
 *    deletes it from the dead-letter stream; a repeat after a crash is deduplicated the same way.
 *  - origin: a queue opened with options.origin (a receiver's [queue] advertise_url) publishes
 *    every message with header "Lf-Receiver: <origin>", the receiver that stores the session, so a
 *    parser fetches the blob from there; receive, peek and dead letters hand it back in
 *    lf_jsqueue_msg.origin (dead letters and redrives keep it). A delivery whose "Lf-Receiver" is not
 *    an http(s) URL of at most LF_JSQUEUE_ORIGIN_MAX - 1 printable characters is not returned: it is
 *    dead-lettered with that reason (never truncated, which could name another host).
 *
 * What differs from the embedded queue (lf_queue.h):
 *  - the visibility timeout is the consumer's ack wait, one value per queue, not per receive;
 *    extend restarts that same wait (it cannot set another);
 *  - a receipt does not go stale when the message is redelivered, and acking, extending or nacking
 *    a message that is already gone still succeeds (the server answers every ack): no -ENOENT, and
 *    a lost job cannot be detected from an extend;
 *  - delayed sends do not exist; a message nacked with a delay counts as in flight, not delayed;
 *  - stats: totals other than sent/received/redelivered are not kept (zero); depth is the
 *    consumer's pending count, which a nacked message rejoins only when its delay ends;
 *  - dead letters are purged by age only (dlq_max_count is not supported).
 *
 * Threads: all calls are blocking; a queue may be used from several threads (receives are
 * serialised on one pull subscription, the rest run in parallel). Errors as lf_jetstream.h, plus
 * -EINVAL bad argument or a receipt this queue did not hand out, LF_ELIMIT body too large, and
 * LF_ECORRUPT from check when it found problems. */
#ifndef LF_JSQUEUE_H
#define LF_JSQUEUE_H

#include "lf_buf.h"
#include "lf_error.h"
#include "lf_jetstream.h"
#include "lf_queue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_JSQUEUE_NAME_MAX 64
#define LF_JSQUEUE_RECEIPT_MAX 192   /* "$JS.ACK.<stream>.<consumer>.<9 numbers>" and a NUL */
#define LF_JSQUEUE_REASON_MAX 256
/* an origin URL and a NUL; small enough that a reason naming it fits LF_JSQUEUE_REASON_MAX */
#define LF_JSQUEUE_ORIGIN_MAX 201

typedef struct lf_jsqueue_options {
    const char *queue;          /* "sessions" */
    int replicas;               /* 1..5; default 1 (3 for a cluster) */
    uint64_t dedup_window_ms;   /* default 5 min, as the embedded queue */
    uint64_t visibility_ms;     /* ack wait; default 60 s */
    uint32_t max_receives;      /* default 5; 0 = never dead-letter */
    int64_t max_ack_pending;    /* default 10000 */
    uint64_t dlq_max_age_ms;    /* default 14 days; 0 = keep */
    size_t max_body;            /* default 256 KiB */
    const char *origin;         /* NULL, or the URL published as header "Lf-Receiver" (see above) */
} lf_jsqueue_options;

void lf_jsqueue_options_init(lf_jsqueue_options *o);

typedef struct lf_jsqueue_msg {
    uint64_t seq;               /* sequence in its stream (the queue's, or the dead letters') */
    char receipt[LF_JSQUEUE_RECEIPT_MAX]; /* receive: the ack subject; peek: "" */
    uint32_t receive_count;     /* receive: deliveries so far, this one included */
    uint64_t sent_ms;           /* when the stream stored it */
    char msg_id[LF_QUEUE_DEDUP_MAX];     /* its Nats-Msg-Id ("" when published without) */
    char session_id[LF_QUEUE_DEDUP_MAX]; /* "Lf-Session-Id", else the msg id */
    char reason[LF_JSQUEUE_REASON_MAX];  /* dead letters: why */
    char origin[LF_JSQUEUE_ORIGIN_MAX];  /* "Lf-Receiver": the receiver that stores it, or "" */
    size_t len;
    void *body;                 /* len bytes plus a NUL */
} lf_jsqueue_msg;

typedef struct lf_jsqueue lf_jsqueue;

/* Ensures the streams and the consumer (see above); js must outlive the queue. */
LF_MUST_CHECK int lf_jsqueue_open(lf_jetstream *js, const lf_jsqueue_options *o, lf_jsqueue **out, lf_buf *err);
void lf_jsqueue_close(lf_jsqueue *q);

/* msg_id may be NULL (no deduplication); duplicate and seq may be NULL. Adds the queue's origin. */
LF_MUST_CHECK int lf_jsqueue_publish(lf_jsqueue *q, const void *body, size_t len, const char *msg_id,
                                     bool *duplicate, uint64_t *seq, lf_buf *err);
/* max 1..LF_QUEUE_RECEIVE_MAX, wait_ms <= LF_QUEUE_WAIT_MAX. *msgs (lf_jsqueue_msgs_free) and *n,
 * 0 when the poll ended empty. */
LF_MUST_CHECK int lf_jsqueue_receive(lf_jsqueue *q, uint32_t max, uint64_t wait_ms, lf_jsqueue_msg **msgs,
                                     size_t *n, lf_buf *err);
LF_MUST_CHECK int lf_jsqueue_ack(lf_jsqueue *q, const char *receipt, lf_buf *err);
LF_MUST_CHECK int lf_jsqueue_extend(lf_jsqueue *q, const char *receipt, lf_buf *err);
/* delay_ms <= LF_QUEUE_DELAY_MAX; 0 = deliverable again now. */
LF_MUST_CHECK int lf_jsqueue_nack(lf_jsqueue *q, const char *receipt, uint64_t delay_ms, lf_buf *err);
/* Moves a received message to the dead letters with reason (crash-safe as above). */
LF_MUST_CHECK int lf_jsqueue_dead_letter(lf_jsqueue *q, const lf_jsqueue_msg *m, const char *reason, lf_buf *err);

/* Stores a dead letter that was never delivered here (a message moved from another queue, such as
 * `queue migrate` from the embedded queue): body with reason, session_id as its Lf-Msg-Id and
 * Lf-Session-Id, and the queue's origin. msg_id deduplicates a repeat; it must differ from the ids
 * this queue gives its own dead letters ("<q>.<seq>") and redrives ("<id>.r<seq>"). */
LF_MUST_CHECK int lf_jsqueue_publish_dead(lf_jsqueue *q, const void *body, size_t len, const char *msg_id,
                                          const char *session_id, const char *reason, lf_buf *err);

/* Figures in the embedded queue's struct (see above for what is not kept). */
LF_MUST_CHECK int lf_jsqueue_stats(lf_jsqueue *q, lf_queue_statistics *out, lf_buf *err);
/* Up to max dead letters, oldest first, with their reasons; state unchanged. */
LF_MUST_CHECK int lf_jsqueue_peek_dead(lf_jsqueue *q, uint32_t max, lf_jsqueue_msg **msgs, size_t *n, lf_buf *err);
/* Moves up to max (0 = all) dead letters back; *moved counts them. */
LF_MUST_CHECK int lf_jsqueue_redrive(lf_jsqueue *q, uint64_t max, uint64_t *moved, lf_buf *err);
/* Streams and consumer exist with the configured replicas, every replica current, and the consumer
 * as configured. 0 and "ok" in report, or LF_ECORRUPT and one problem per line; other codes when
 * the cluster could not be asked. */
LF_MUST_CHECK int lf_jsqueue_check(lf_jsqueue *q, lf_buf *report);

void lf_jsqueue_msgs_free(lf_jsqueue_msg *msgs, size_t n);

bool lf_jsqueue_name_valid(const char *name);
/* An origin as above: "http://" or "https://", a host, printable ASCII without spaces, shorter than
 * LF_JSQUEUE_ORIGIN_MAX. */
bool lf_jsqueue_origin_valid(const char *url);

#endif
