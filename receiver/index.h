/* Index of stored sessions: one SQLite file (WAL, synchronous=NORMAL: see index.c) in the state dir.
 * Row: id, site, size (plaintext zip bytes), stored_size, content hash (BLAKE2b-256 hex of the zip),
 * received time (ms), backend, location, status ("stored": blob written, not yet known to be
 * queued; "queued": the send to the sessions queue committed; on JetStream also "claiming": blob
 * written, the id not yet claimed in the shared LF_SESSIONS bucket, and "foreign": another receiver
 * holds the id, so this copy is never published). One connection guarded by a mutex: callable from
 * any thread. */
#ifndef LF_RECEIVER_INDEX_H
#define LF_RECEIVER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_crypto.h"
#include "lf_manifest.h"

typedef struct lf_index lf_index;

typedef struct lf_index_row {
    char id[LF_SESSION_ID_LEN + 1];
    char site[72];
    uint64_t size;
    uint64_t stored_size;
    char hash[LF_HASH_HEX_SIZE];
    uint64_t received_ms;
    char backend[16];
    char location[512];
    char status[16];
} lf_index_row;

/* 0, or LF_ECORRUPT / LF_EDB / -errno with err filled. */
int lf_index_open(const char *path, lf_index **out, char *err, size_t errsz);
void lf_index_close(lf_index *ix);
/* 0 found, -ENOENT, or an error. */
int lf_index_get(lf_index *ix, const char *id, lf_index_row *row);
/* Inserts a row; -EEXIST when the id is there already. */
int lf_index_insert(lf_index *ix, const lf_index_row *row);
int lf_index_set_status(lf_index *ix, const char *id, const char *status);
/* Sets the status of n ids in one transaction. */
int lf_index_set_status_many(lf_index *ix, const char (*ids)[LF_SESSION_ID_LEN + 1], size_t n,
                             const char *status);
/* Calls fn for every row with this status (at most max rows); fn returning non-zero stops. */
int lf_index_each_status(lf_index *ix, const char *status, size_t max,
                         int (*fn)(void *arg, const lf_index_row *row), void *arg);
/* Marks every queued row "stored" again, so start-up recovery re-sends them all (after a queue store
 * was lost). *n (may be NULL) gets the count. */
int lf_index_requeue_all(lf_index *ix, uint64_t *n);
/* Calls fn for the rows after id `after` (in id order, "" for the first) whose status is stored or
 * queued, at most max; as lf_index_each_status. */
int lf_index_each_own_after(lf_index *ix, const char *after, size_t max,
                            int (*fn)(void *arg, const lf_index_row *row), void *arg);
/* Small facts the receiver keeps with its index: -ENOENT when key has no value, LF_ELIMIT when it
 * does not fit size. */
int lf_index_meta_get(lf_index *ix, const char *key, char *out, size_t size);
int lf_index_meta_set(lf_index *ix, const char *key, const char *value);
/* This receiver's identity (32 hex digits, made at random when the index was created): the shared
 * claims name it, so a receiver recognises its own claims whatever its host name or URL becomes. */
int lf_index_receiver_id(lf_index *ix, char *out, size_t size);
/* Rows with each status (for metrics and tests). */
int lf_index_count(lf_index *ix, const char *status, uint64_t *n);

/* Per-site figures (sites list, GET /v1/sites). Refusals are counted in memory by the daemon and
 * added here in batches (site_figures.c); sessions, bytes and the last upload come from the rows. */
typedef struct lf_index_refusal {
    const char *site; /* a registered site, or "(unregistered)" */
    const char *reason;
    uint64_t count;
    uint64_t last_ms;
} lf_index_refusal;

/* Adds counts to the refusals of (site, reason), in one transaction. 0 or an error. */
int lf_index_add_refusals(lf_index *ix, const lf_index_refusal *rows, size_t n);
/* Per site that stored sessions, by name: how many (new ones: a repeated upload is not), their
 * bytes and the last one's time, read from a covering index. fn returning non-zero stops (a negative
 * value is then returned). */
int lf_index_site_uploads(lf_index *ix,
                          int (*fn)(void *arg, const char *site, uint64_t sessions, uint64_t bytes, uint64_t last_ms),
                          void *arg);
/* Every (site, reason) refusal count with its last time, by site and reason; fn as above. */
int lf_index_site_refusals(lf_index *ix,
                           int (*fn)(void *arg, const char *site, const char *reason, uint64_t count, uint64_t last_ms),
                           void *arg);

#endif
