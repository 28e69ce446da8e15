/* The uploader's durable registry (SQLite, WAL, synchronous=FULL): which sessions were packed,
 * shipped, failed or dropped, and the state of each watched file at its last packing, so a scan
 * recognises a file it already handled without re-reading it. Losing it is safe (invariant 3): the
 * same files give the same session ids, which the receiver answers with 200. */
#ifndef LF_UPLOADER_REGISTRY_H
#define LF_UPLOADER_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "lf_crypto.h"
#include "lf_manifest.h"

typedef struct lf_ureg lf_ureg;

/* Session states. */
#define LF_US_OUTBOX "outbox"   /* packed, waiting in the outbox (reason: the receiver's last refusal
                                  of a kind its side can fix: unregistered or disabled site, clock) */
#define LF_US_SHIPPED "shipped" /* the receiver answered 200/201 */
#define LF_US_FAILED "failed"   /* refused with a final 4xx; zip kept in outbox/failed */
#define LF_US_RETRY "retry"     /* retry-failed put the zip back in the outbox; the daemon adopts it */
#define LF_US_DROPPED "dropped" /* skipped by the drop policy of a full outbox */

/* A watched file as it was when last packed. */
typedef struct lf_ureg_file {
    int64_t dev, ino, size, mtime_ns;
    int64_t shipped_size;              /* bytes covered by sessions so far */
    uint8_t prefix_hash[LF_HASH_BYTES]; /* BLAKE2b-256 of those bytes */
    char first_id[LF_SESSION_ID_LEN + 1];
    int part;                          /* last part number (0: the first session only) */
} lf_ureg_file;

int lf_ureg_open(const char *path, lf_ureg **out);
void lf_ureg_close(lf_ureg *r);

/* 1 found, 0 absent, < 0 error. */
int lf_ureg_file_get(lf_ureg *r, const char *watch, const char *relpath, lf_ureg_file *f);
/* The row of another name with this device and inode (a file renamed by rotation). 1, 0, < 0. */
int lf_ureg_file_by_inode(lf_ureg *r, const char *watch, int64_t dev, int64_t ino, lf_ureg_file *f);
int lf_ureg_file_put(lf_ureg *r, const char *watch, const char *relpath, const lf_ureg_file *f,
                     int64_t scan_gen);
/* Marks a file row as seen by scan gen (cheap path for unchanged files). */
int lf_ureg_file_seen(lf_ureg *r, const char *watch, const char *relpath, int64_t scan_gen);
/* Garbage collection: deletes the rows of watch not seen by scan gen (their files are gone).
 * Returns the number removed or < 0. */
int lf_ureg_file_gc(lf_ureg *r, const char *watch, int64_t scan_gen);

/* Session rows. state: 1 with *state filled (up to 16 bytes), 0 absent, < 0 error. */
int lf_ureg_session_state(lf_ureg *r, const char *id, char state[16]);
int lf_ureg_session_put(lf_ureg *r, const char *id, const char *watch, const char *relpath,
                        int64_t size, const char *state, const char *reason);
/* Source of a session: watch and relpath copied into the given buffers. 1, 0 or < 0. */
int lf_ureg_session_source(lf_ureg *r, const char *id, char *watch, size_t wsz, char *relpath,
                           size_t rsz);
/* Counts per state, for status and metrics. */
typedef struct lf_ureg_counts {
    int64_t outbox, shipped, failed, dropped;
} lf_ureg_counts;
int lf_ureg_counts_get(lf_ureg *r, lf_ureg_counts *c);
/* Calls fn for every session in state (id, relpath, reason), oldest change first; with_reason: only
 * those with a reason (an outbox session the receiver refused for a reason it can fix). */
int lf_ureg_state_each(lf_ureg *r, const char *state, bool with_reason,
                       void (*fn)(void *arg, const char *id, const char *relpath, const char *reason), void *arg);

int lf_ureg_begin(lf_ureg *r);
int lf_ureg_commit(lf_ureg *r);
int lf_ureg_rollback(lf_ureg *r);

#endif
