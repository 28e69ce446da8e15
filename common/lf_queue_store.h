/* Internal to the queue (lf_queue*.c): the SQLite store and the operations on it. Each lf_queue_store_*
 * operation runs inside a transaction the caller opened with lf_queue_store_begin and ends with
 * lf_queue_store_commit or lf_queue_store_rollback. An operation returns 0, a logical error that
 * changed nothing (-EINVAL, -ENOENT, LF_ELIMIT, -ENOMEM from our own allocations), or a storage
 * error; a storage error also sets db->fatal, after which the whole transaction must be rolled back. */
#ifndef LF_QUEUE_STORE_H
#define LF_QUEUE_STORE_H

#include "lf_error.h"

#include <sqlite3.h>

#include "lf_queue.h"

#define LF_QUEUE_VFS_NAME "lf_queue_vfs"

enum lfq_stmt {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_QUEUE_ID, ST_QUEUE_ADD, ST_DEDUP_GET, ST_DEDUP_PUT, ST_MSG_INSERT,
    ST_RECV_PICK, ST_RECV_UPDATE, ST_DEAD_MOVE, ST_ACK, ST_EXTEND, ST_NACK, ST_REDRIVE,
    ST_COUNTERS, ST_CLOCK_PUT, ST_NEXT_VISIBLE, ST_STATS, ST_STATS_TOTALS, ST_PEEK,
    ST_DLQ_PURGE_AGE, ST_DLQ_PURGE_COUNT, ST_DLQ_LIST, ST_DEDUP_EXPIRE, ST_COUNT
};

/* counter columns of the queues table, in this order */
enum lfq_counter {
    C_SENT, C_RECEIVED, C_ACKED, C_NACKED, C_DEAD, C_REDRIVEN, C_EXPIRED, C_PURGED, C_COUNT
};

struct lfq_pending_counters {
    int64_t queue_id;
    uint64_t n[C_COUNT];
};

struct lf_queue_db {
    sqlite3 *db;
    char *path;
    lf_queue_options opt;
    sqlite3_stmt *st[ST_COUNT];
    int fatal;                   /* first storage error in the current transaction, or 0 */
    bool broken;                 /* reopen before the next transaction (after an I/O error) */
    bool in_txn;
    /* store clock: never runs backwards */
    uint64_t last_now;           /* last value handed out */
    uint64_t last_mono;          /* monotonic ms when last_now was handed out */
    bool clock_warned;
    uint64_t persisted_clock;    /* store ms last written to meta.clock_ms */
    uint64_t next_maintenance;   /* store ms of the next retention / dedup purge */
    uint64_t rng[2];             /* receipts' random part */
    /* counters of the current transaction, written at commit */
    struct lfq_pending_counters *counters;
    size_t ncounters, counters_cap;
};

LF_MUST_CHECK int lf_queue_vfs_register(void);

/* SQLite result -> project code (-EIO, -ENOSPC, LF_ECORRUPT, ...). */
LF_MUST_CHECK int lf_queue_store_errcode(int rc);

LF_MUST_CHECK int lf_queue_store_open(const char *path, const lf_queue_options *opt, lf_queue_db **out);
void lf_queue_store_close(lf_queue_db *db);
/* Closes and reopens the connection (after I/O errors); 0 or a code. */
LF_MUST_CHECK int lf_queue_store_reopen(lf_queue_db *db);

uint64_t lf_queue_store_now(lf_queue_db *db);

LF_MUST_CHECK int lf_queue_store_begin(lf_queue_db *db);
/* Writes the pending counters and the clock, commits. On failure the transaction is rolled back. */
LF_MUST_CHECK int lf_queue_store_commit(lf_queue_db *db);
void lf_queue_store_rollback(lf_queue_db *db);
/* Savepoints around one operation of a batch, so a logical failure undoes only that operation. */
LF_MUST_CHECK int lf_queue_store_op_begin(lf_queue_db *db);
void lf_queue_store_op_end(lf_queue_db *db, bool undo);

LF_MUST_CHECK int lf_queue_store_send(lf_queue_db *db, const char *queue, const void *body, size_t len,
                        const char *dedup_id, uint64_t delay_ms, uint64_t *id, bool *duplicate);
/* *next_visible: store ms when the next message of queue becomes visible (0 none), for long polls. */
LF_MUST_CHECK int lf_queue_store_receive(lf_queue_db *db, const char *queue, uint32_t max, uint64_t visibility_ms,
                           lf_queue_msg **msgs, size_t *n, uint64_t *next_visible);
LF_MUST_CHECK int lf_queue_store_ack(lf_queue_db *db, const char *queue, const char *receipt);
LF_MUST_CHECK int lf_queue_store_extend(lf_queue_db *db, const char *queue, const char *receipt,
                          uint64_t visibility_ms);
LF_MUST_CHECK int lf_queue_store_nack(lf_queue_db *db, const char *queue, const char *receipt, uint64_t delay_ms);
LF_MUST_CHECK int lf_queue_store_redrive(lf_queue_db *db, const char *queue, uint64_t max, uint64_t *moved);
LF_MUST_CHECK int lf_queue_store_stats(lf_queue_db *db, const char *queue, lf_queue_statistics *out);
LF_MUST_CHECK int lf_queue_store_peek(lf_queue_db *db, const char *queue, uint32_t max, lf_queue_msg **msgs,
                        size_t *n);
LF_MUST_CHECK int lf_queue_store_list(lf_queue_db *db, char ***names, size_t *n);
LF_MUST_CHECK int lf_queue_store_check(lf_queue_db *db, char **report);
/* Retention of dead letters and expiry of dedup ids, when due (at most once a second). */
LF_MUST_CHECK int lf_queue_store_maintain(lf_queue_db *db, bool force);

/* Helpers shared by the lf_queue_store*.c files. */
/* sqlite3_step: SQLITE_ROW, SQLITE_DONE, or a negative code (recorded in db->fatal). */
LF_MUST_CHECK int lf_queue_store_step(lf_queue_db *db, sqlite3_stmt *st);
/* Records a storage error (first one wins), logs it, returns the project code. */
LF_MUST_CHECK int lf_queue_store_fail(lf_queue_db *db, int rc, const char *what);
/* Looks up (and with create, adds) a queue: 0 and *id, -ENOENT, or a storage error. */
LF_MUST_CHECK int lf_queue_store_queue_id(lf_queue_db *db, const char *name, bool create, int64_t *id);
/* Adds to a counter of queue_id; written at commit. */
LF_MUST_CHECK int lf_queue_store_count(lf_queue_db *db, int64_t queue_id, enum lfq_counter which, uint64_t n);
bool lf_queue_store_is_dlq(const char *name);

/* Argument checks shared by both APIs. */
LF_MUST_CHECK int lf_queue_check_send_args(const lf_queue_options *opt, const char *queue, size_t len,
                             const char *dedup_id, uint64_t delay_ms);

#endif
