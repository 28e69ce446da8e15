/* Durable message queue (Amazon SQS standard-queue semantics) in one SQLite file.
 *
 * One store (file) holds any number of named queues. Names: 1..LF_QUEUE_NAME_MAX characters from
 * [A-Za-z0-9._-]; a queue exists once something was sent to it. Queue "<q>.dlq" is the dead-letter
 * queue of "<q>": it can be received from, peeked, acked and counted like any queue, but not sent
 * to (-EINVAL), and it never dead-letters itself.
 *
 * Semantics
 *  - send: stores the body (bytes, up to options.max_body). With a dedup_id, a second send with the
 *    same id to the same queue within options.dedup_window_ms does not create a message: it
 *    completes with the first message's id and req->duplicate = true. delay_ms > 0 keeps the
 *    message invisible ("delayed") that long.
 *  - receive: hands out up to max visible messages, oldest-visible first, and makes them invisible
 *    for visibility_ms ("in flight"). Each delivery gets a fresh receipt handle; only the receipt of
 *    the latest delivery can ack, extend or nack the message (a stale receipt from an earlier
 *    delivery gets -ENOENT). A receipt stays valid after its visibility expired as long as nobody
 *    received the message again (SQS does the same). Long polling: with wait_ms > 0 and nothing
 *    visible, the callback fires as soon as messages become visible (a send commits, a delay or a
 *    visibility timeout expires, a nack, a redrive) or when wait_ms has passed (0 messages, status 0).
 *  - at-least-once: a message in flight comes back after its visibility timeout, also across a crash
 *    (visibility and receive counts are committed before the receive callback runs).
 *  - dead letters: when a message that was already received options.max_receives times would be
 *    delivered again, it moves to "<q>.dlq" instead (counted in dead_lettered). redrive moves
 *    messages from "<q>.dlq" back to "<q>" with a fresh receive count. Dead letters older than
 *    options.dlq_max_age_ms, or beyond options.dlq_max_count (oldest first), are purged and counted
 *    (stats.dlq_purged) and logged.
 *  - ack deletes, extend sets a new visibility timeout from now, nack makes the message visible again
 *    after delay_ms (its receive count is kept, so it still counts toward max_receives).
 *
 * Durability: SQLite in WAL mode, synchronous=FULL. A send, receive, ack, extend, nack or redrive
 * completes with status 0 only after its transaction has been committed and fsync'd. Operations
 * issued from the loop are group-committed by one writer thread (one fsync covers every operation
 * pending at that moment), and callbacks run on the loop thread. A failed commit fails every
 * operation of that batch (-EIO, -ENOSPC, LF_ECORRUPT, ...): there is never a false success. The
 * converse is not guaranteed: after a failed fsync the data may still reach the disk, so a send that
 * failed may exist after all (retry with the same dedup_id to stay exactly-once within the window).
 * After an I/O error the writer reopens the database before the next batch, so the queue works again
 * once the cause is gone.
 *
 * Time: persisted times are wall-clock milliseconds, guarded so the store's clock never runs
 * backwards: if the wall clock steps back (also across restarts), the store continues from the last
 * time it committed at the monotonic clock's rate until the wall clock catches up.
 *
 * Errors (negative codes; lf_strerror() describes them): -EINVAL bad argument or malformed
 * receipt, LF_ELIMIT body too large or too many receipts, -ENOENT unknown or stale receipt,
 * -EAGAIN too many operations pending (options.max_pending; retry later: backpressure), LF_ECLOSED the queue is closing, -ENOMEM, -EIO,
 * -ENOSPC (disk full), LF_ECORRUPT (the store failed an integrity check; see lf_queue_db_check),
 * LF_EFORMAT (the file is not a queue store or comes from a newer version), -EBUSY (another process
 * held the store's write lock for longer than options.busy_timeout_ms), LF_EDB other SQLite errors.
 *
 * Threads: all lf_queue_* functions (the asynchronous API) must be called on the loop thread.
 * The synchronous lf_queue_db_* API is for command-line tools and tests; a handle is used by one
 * thread at a time. Several processes may open the same store (SQLite locking); a long poll in one
 * process notices another process's sends within a second.
 */
#ifndef LF_QUEUE_H
#define LF_QUEUE_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define LF_QUEUE_NAME_MAX 120          /* longest queue name (a ".dlq" name may be 4 longer) */
#define LF_QUEUE_RECEIPT_MAX 64        /* receipt handles are shorter, NUL included */
#define LF_QUEUE_DEDUP_MAX 128         /* longest deduplication id */
#define LF_QUEUE_RECEIVE_MAX 1000      /* most messages one receive may return */
#define LF_QUEUE_ACK_MAX 1000          /* most receipts one ack may carry */
#define LF_QUEUE_VISIBILITY_MAX (12ull * 3600 * 1000) /* longest visibility timeout, ms (as SQS) */
#define LF_QUEUE_DELAY_MAX (12ull * 3600 * 1000)      /* longest send or nack delay, ms */
#define LF_QUEUE_WAIT_MAX (3600ull * 1000)           /* longest long poll, ms */
#define LF_QUEUE_SCHEMA_VERSION 1      /* PRAGMA user_version of stores this code writes */

typedef struct lf_queue_options {
    size_t max_body;            /* largest body in bytes; default 256 KiB */
    uint64_t dedup_window_ms;   /* how long a dedup id is remembered; default 5 min */
    uint32_t max_receives;      /* deliveries before dead-lettering; default 5; 0 = never */
    uint64_t dlq_max_age_ms;    /* purge dead letters older than this; default 14 days; 0 = keep */
    uint64_t dlq_max_count;     /* keep at most this many dead letters per queue; default 0 = no cap */
    uint32_t max_batch;         /* most operations per transaction; default 4096 */
    uint32_t max_pending;       /* more queued operations than this -> -EAGAIN; default 100000 */
    uint32_t busy_timeout_ms;   /* wait for another process's write lock; default 5000 */
    bool skip_open_check;       /* skip PRAGMA quick_check at open (huge stores); default false */
    /* Test hook: the wall clock in ms since the epoch. NULL = the real clock. */
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
} lf_queue_options;

/* Fills opt with the defaults above. */
void lf_queue_options_init(lf_queue_options *opt);

/* A delivered or peeked message. */
typedef struct lf_queue_msg {
    uint64_t id;                /* unique in the store, increasing with send order */
    char receipt[LF_QUEUE_RECEIPT_MAX]; /* receive: this delivery's receipt; peek: "" */
    uint32_t receive_count;     /* deliveries so far, this one included */
    uint64_t sent_ms;           /* wall-clock ms of the send */
    uint64_t visible_at_ms;     /* receive: when it becomes visible again; peek: current value */
    bool in_flight;             /* peek only: received and its visibility not expired */
    size_t len;
    void *body;                 /* len bytes plus a NUL terminator (so text can be used directly) */
} lf_queue_msg;

typedef struct lf_queue_statistics {
    bool exists;                /* false: nothing was ever sent to this queue (all zeros) */
    uint64_t depth;             /* visible now */
    uint64_t in_flight;         /* received, visibility not expired */
    uint64_t delayed;           /* sent with a delay or nacked with a delay, not yet visible */
    uint64_t oldest_age_ms;     /* age of the oldest message in the queue (any state); 0 if empty */
    uint64_t dlq_depth;         /* messages in "<q>.dlq" */
    uint64_t dlq_purged;        /* dead letters removed by the retention limits */
    /* totals since the queue was created */
    uint64_t sent, received, acked, nacked, dead_lettered, redriven, expired_redeliveries;
} lf_queue_statistics;

/* ---- asynchronous API (libuv style) ----------------------------------------------------------
 * Requests are allocated by the caller and must stay valid until their callback has run; req->data
 * is the caller's. Strings and bodies passed in are copied before the call returns. A call that
 * returns an error never calls its callback; otherwise the callback runs exactly once, on the loop
 * thread, with status 0 or a negative code (never from inside the call itself). Results in the
 * request (ids, messages, counts) are valid until the callback returns: copy what you keep.
 * Callbacks may call any lf_queue_* function, lf_queue_close included. Operations submitted during
 * one loop iteration reach the writer together (and usually share one commit). Waiting long polls
 * count toward options.max_pending. The queue's handles keep the loop alive until it is closed. */

typedef struct lf_queue lf_queue;
typedef struct lf_queue_op lf_queue_op; /* internal */

typedef struct lf_queue_send_req lf_queue_send_req;
typedef struct lf_queue_receive_req lf_queue_receive_req;
typedef struct lf_queue_ack_req lf_queue_ack_req;
typedef struct lf_queue_op_req lf_queue_op_req;

typedef void (*lf_queue_send_cb)(lf_queue_send_req *req, int status);
typedef void (*lf_queue_receive_cb)(lf_queue_receive_req *req, int status);
typedef void (*lf_queue_ack_cb)(lf_queue_ack_req *req, int status);
typedef void (*lf_queue_op_cb)(lf_queue_op_req *req, int status);
typedef void (*lf_queue_close_cb)(lf_queue *q);

struct lf_queue_send_req {
    void *data;
    uint64_t id;                /* the message's id (the first one's when duplicate) */
    bool duplicate;             /* dedup hit: nothing new was stored */
    lf_queue_op *op_;
};

struct lf_queue_receive_req {
    void *data;
    lf_queue_msg *msgs;         /* count messages */
    size_t count;
    lf_queue_op *op_;
};

struct lf_queue_ack_req {
    void *data;
    int *results;               /* per receipt, in order: 0 deleted, -ENOENT stale or unknown,
                                 * -EINVAL not a receipt this queue hands out */
    size_t count;               /* number of receipts */
    size_t acked;               /* how many were deleted */
    lf_queue_op *op_;
};

/* extend, nack, redrive, stats, peek, check */
struct lf_queue_op_req {
    void *data;
    uint64_t count;             /* redrive: messages moved */
    lf_queue_statistics stats;      /* stats */
    lf_queue_msg *msgs;         /* peek: up to max messages, oldest id first, state unchanged */
    size_t nmsgs;
    char *report;               /* check: "ok" or one problem per line */
    lf_queue_op *op_;
};

/* Opens (creating if needed) the store at path and starts its writer thread. opt may be NULL for
 * the defaults. A corrupt or truncated file fails with LF_ECORRUPT (logged with the reason), a file
 * that is not a queue store with LF_EFORMAT. On success *out is the queue, to be closed with
 * lf_queue_close. */
LF_MUST_CHECK int lf_queue_open(uv_loop_t *loop, const char *path, const lf_queue_options *opt, lf_queue **out);

/* Stops taking new operations (they fail with LF_ECLOSED), ends waiting long polls (0 messages,
 * status 0), lets every submitted operation commit and run its callback, stops the writer, closes
 * the store, then calls cb (may be NULL). The queue is freed after cb returns. */
void lf_queue_close(lf_queue *q, lf_queue_close_cb cb);

/* The caller's pointer, as libuv handles have data: NULL until set, never touched by the queue,
 * readable in the close callback. */
void lf_queue_set_data(lf_queue *q, void *data);
void *lf_queue_data(const lf_queue *q);

/* Figures of the writer thread, for metrics and benchmarks. */
typedef struct lf_queue_engine_stats {
    uint64_t commits;           /* transactions committed */
    uint64_t committed_ops;     /* write operations in them (ops / commits = batching factor) */
    uint64_t failed_commits;    /* transactions that failed (their operations got the error) */
    uint64_t pending;           /* operations waiting for the writer now */
    uint64_t waiting;           /* long polls waiting now */
} lf_queue_engine_stats;
void lf_queue_engine_stats_get(lf_queue *q, lf_queue_engine_stats *out);

/* dedup_id may be NULL (no deduplication); delay_ms <= LF_QUEUE_DELAY_MAX. Body may hold any bytes.
 * Errors: -EINVAL (name, dedup id or delay), LF_ELIMIT (len > max_body), -ENOMEM, -EAGAIN,
 * LF_ECLOSED. */
LF_MUST_CHECK int lf_queue_send(lf_queue *q, lf_queue_send_req *req, const char *queue, const void *body,
                  size_t len, const char *dedup_id, uint64_t delay_ms, lf_queue_send_cb cb);

/* max 1..LF_QUEUE_RECEIVE_MAX, visibility_ms 1..LF_QUEUE_VISIBILITY_MAX, wait_ms 0 = answer now,
 * at most LF_QUEUE_WAIT_MAX. A receive from a queue that does not exist yet waits like an empty one. */
LF_MUST_CHECK int lf_queue_receive(lf_queue *q, lf_queue_receive_req *req, const char *queue, uint32_t max,
                     uint64_t visibility_ms, uint64_t wait_ms, lf_queue_receive_cb cb);

/* Deletes the messages of up to LF_QUEUE_ACK_MAX receipts in one commit; results per receipt.
 * Status 0 means the commit succeeded; look at req->results for each receipt. */
LF_MUST_CHECK int lf_queue_ack(lf_queue *q, lf_queue_ack_req *req, const char *queue,
                 const char *const *receipts, size_t n, lf_queue_ack_cb cb);

/* Status -ENOENT when the receipt is stale or unknown. */
LF_MUST_CHECK int lf_queue_extend(lf_queue *q, lf_queue_op_req *req, const char *queue, const char *receipt,
                    uint64_t visibility_ms, lf_queue_op_cb cb);
LF_MUST_CHECK int lf_queue_nack(lf_queue *q, lf_queue_op_req *req, const char *queue, const char *receipt,
                  uint64_t delay_ms, lf_queue_op_cb cb);
/* Moves up to max (0 = all) messages from "<queue>.dlq" back to queue; req->count = moved. */
LF_MUST_CHECK int lf_queue_redrive(lf_queue *q, lf_queue_op_req *req, const char *queue, uint64_t max,
                     lf_queue_op_cb cb);
LF_MUST_CHECK int lf_queue_stats(lf_queue *q, lf_queue_op_req *req, const char *queue, lf_queue_op_cb cb);
/* max 1..LF_QUEUE_RECEIVE_MAX. */
LF_MUST_CHECK int lf_queue_peek(lf_queue *q, lf_queue_op_req *req, const char *queue, uint32_t max,
                  lf_queue_op_cb cb);
/* PRAGMA integrity_check plus the queue's invariants. Status 0 and report "ok", or LF_ECORRUPT and
 * the problems in req->report. */
LF_MUST_CHECK int lf_queue_check(lf_queue *q, lf_queue_op_req *req, lf_queue_op_cb cb);

/* ---- synchronous API (command-line tools, tests) --------------------------------------------
 * Each call is one transaction, committed before it returns. Same semantics and codes as above. */

typedef struct lf_queue_db lf_queue_db;

LF_MUST_CHECK int lf_queue_db_open(const char *path, const lf_queue_options *opt, lf_queue_db **out);
void lf_queue_db_close(lf_queue_db *db);
LF_MUST_CHECK int lf_queue_db_send(lf_queue_db *db, const char *queue, const void *body, size_t len,
                     const char *dedup_id, uint64_t delay_ms, uint64_t *id, bool *duplicate);
/* *msgs is allocated (free with lf_queue_msgs_free); *n may be 0. */
LF_MUST_CHECK int lf_queue_db_receive(lf_queue_db *db, const char *queue, uint32_t max, uint64_t visibility_ms,
                        lf_queue_msg **msgs, size_t *n);
/* 0 deleted, -ENOENT stale or unknown receipt, -EINVAL malformed receipt. */
LF_MUST_CHECK int lf_queue_db_ack(lf_queue_db *db, const char *queue, const char *receipt);
LF_MUST_CHECK int lf_queue_db_extend(lf_queue_db *db, const char *queue, const char *receipt,
                       uint64_t visibility_ms);
LF_MUST_CHECK int lf_queue_db_nack(lf_queue_db *db, const char *queue, const char *receipt, uint64_t delay_ms);
LF_MUST_CHECK int lf_queue_db_redrive(lf_queue_db *db, const char *queue, uint64_t max, uint64_t *moved);
LF_MUST_CHECK int lf_queue_db_stats(lf_queue_db *db, const char *queue, lf_queue_statistics *out);
LF_MUST_CHECK int lf_queue_db_peek(lf_queue_db *db, const char *queue, uint32_t max, lf_queue_msg **msgs,
                     size_t *n);
/* Names of all queues (dead-letter queues included), sorted. Free with lf_queue_names_free. */
LF_MUST_CHECK int lf_queue_db_list(lf_queue_db *db, char ***names, size_t *n);
/* *report (allocated, free with lf_free()) is "ok" or one problem per line; returns 0 or LF_ECORRUPT. */
LF_MUST_CHECK int lf_queue_db_check(lf_queue_db *db, char **report);

void lf_queue_msgs_free(lf_queue_msg *msgs, size_t n);
void lf_queue_names_free(char **names, size_t n);

/* true when name is a valid queue name. */
bool lf_queue_name_valid(const char *name);

#endif
