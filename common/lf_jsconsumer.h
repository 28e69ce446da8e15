/* A parser's consumer of a JetStream queue (lf_jsqueue.h), with the calls the parser service makes
 * on the receiver's queue client (lf_queue_client.h): receive, track/untrack, ack, nack, lost. One
 * background thread sends "in progress" for every tracked receipt every visibility / 2, so a long
 * job keeps its message past the ack wait.
 *
 * Differences from lf_queue_client: acks are sent one at a time and synchronously (JetStream has no
 * batch ack; the server answers each), so lf_consumer_ack's 0 means the message is gone; an extend
 * the server cannot apply is not reported (JetStream answers every ack), so lf_jsconsumer_lost is
 * true only when sending the extension failed twice in a row (the connection is gone for longer than
 * the ack wait allows); dead-lettering after max_receives happens in receive (lf_jsqueue.h).
 *
 * Return codes: 0 or a negative code; LF_ECLOSED once lf_jsconsumer_stop() was called. Threads: any
 * number of worker threads may call these at once.
 *
 * Extensions are published without waiting for each answer (one flush per round confirms the server
 * read them), so a round over thousands of tracked messages takes one round trip; a round that takes
 * over a quarter of the ack wait is logged. While the connection is away a round sends nothing and
 * counts a miss. */
#ifndef LF_JSCONSUMER_H
#define LF_JSCONSUMER_H

#include "lf_error.h"
#include "lf_jsqueue.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct lf_jsconsumer lf_jsconsumer;

/* Takes the open queue q (closed by lf_jsconsumer_close), opened on js (which must outlive the
 * consumer); visibility_ms is the queue's ack wait, wait_ms the long poll of each receive. */
LF_MUST_CHECK int lf_jsconsumer_new(lf_jetstream *js, lf_jsqueue *q, uint64_t visibility_ms, uint64_t wait_ms,
                                    lf_jsconsumer **out);
/* Makes receive return LF_ECLOSED (a receive in a long poll returns when the poll ends); nack still
 * hands messages back. */
void lf_jsconsumer_stop(lf_jsconsumer *c);
/* Stops the thread (a round in progress ends at its next message, or its flush), closes the queue
 * and frees. No other call may be in progress. */
void lf_jsconsumer_close(lf_jsconsumer *c);

/* *msgs (lf_jsqueue_msgs_free) and *n, 0 when the poll ended empty. */
LF_MUST_CHECK int lf_jsconsumer_receive(lf_jsconsumer *c, unsigned max, lf_jsqueue_msg **msgs, size_t *n);
/* Whether the connection is up now (lf_jetstream_connected): while it is not, an ack or nack waits
 * for the request timeout and fails. */
bool lf_jsconsumer_connected(lf_jsconsumer *c);
/* receipt: a "$JS.ACK." subject as received. */
LF_MUST_CHECK int lf_jsconsumer_track(lf_jsconsumer *c, const char *receipt);
void lf_jsconsumer_untrack(lf_jsconsumer *c, const char *receipt);
bool lf_jsconsumer_lost(lf_jsconsumer *c, const char *receipt);
/* Untracks and acks. */
LF_MUST_CHECK int lf_jsconsumer_ack(lf_jsconsumer *c, const char *receipt);
/* Untracks and hands the message back, deliverable again after delay_ms. */
LF_MUST_CHECK int lf_jsconsumer_nack(lf_jsconsumer *c, const char *receipt, uint64_t delay_ms);
/* Untracks m (as received) and moves it to the dead letters with reason (lf_jsqueue_dead_letter);
 * a failure is logged, and the message comes back after the ack wait. */
LF_MUST_CHECK int lf_jsconsumer_dead_letter(lf_jsconsumer *c, const lf_jsqueue_msg *m, const char *reason);

#endif
