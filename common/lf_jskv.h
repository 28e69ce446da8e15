/* Key-value buckets on NATS JetStream (libnats' kvStore), for the state receivers share when
 * `[queue] backend = jetstream`: the sites (bucket LF_SITES), the tokens (LF_TOKENS) and the session
 * index's claims (LF_SESSIONS). The names are fixed, so one NATS account holds one set: receivers of
 * two separate installations need two accounts.
 *
 * lf_jskv_open binds to a bucket and creates it when missing (file storage, one value per key kept,
 * the given replicas). Keys: 1..LF_JSKV_KEY_MAX characters of [A-Za-z0-9_=/-] and dots that neither
 * start nor end the key nor follow one another (lf_jskv_key_valid).
 *
 * A mirror (lf_jskv_mirror_*) keeps a copy of every key of a bucket in memory, kept current by a
 * watch on a thread of its own: readers ask for its generation (cheap, any thread) and read the copy
 * under its lock when it changed. While the connection is away the copy stays as it was (logged
 * once); once it is back the watch is made again and its initial values replace the copy whole, so a
 * key deleted meanwhile goes too.
 *
 * Blocking calls, for worker threads and command-line tools; errors as lf_jetstream.h, plus -EEXIST
 * from create when the key holds a value and -ENOENT from get when it holds none. */
#ifndef LF_JSKV_H
#define LF_JSKV_H

#include "lf_buf.h"
#include "lf_error.h"
#include "lf_jetstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LF_JSKV_SITES "LF_SITES"
#define LF_JSKV_TOKENS "LF_TOKENS"
#define LF_JSKV_SESSIONS "LF_SESSIONS"
#define LF_JSKV_KEY_MAX 128
#define LF_JSKV_VALUE_MAX 4096 /* our values are small JSON rows; a larger one is refused */

typedef struct lf_jskv lf_jskv;

/* replicas 1..5. js must outlive the bucket handle. */
LF_MUST_CHECK int lf_jskv_open(lf_jetstream *js, const char *bucket, int replicas, lf_jskv **out, lf_buf *err);
void lf_jskv_close(lf_jskv *kv);
const char *lf_jskv_bucket(const lf_jskv *kv);

bool lf_jskv_key_valid(const char *key);

/* The value (replacing value's contents) and its revision (rev may be NULL). -ENOENT none. */
LF_MUST_CHECK int lf_jskv_get(lf_jskv *kv, const char *key, lf_buf *value, uint64_t *rev, lf_buf *err);
LF_MUST_CHECK int lf_jskv_put(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t *rev,
                              lf_buf *err);
/* Stores only when the key holds no value: -EEXIST otherwise. */
LF_MUST_CHECK int lf_jskv_create(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t *rev,
                                 lf_buf *err);
/* Stores only when the key's revision is still last: -EEXIST when it moved on. */
LF_MUST_CHECK int lf_jskv_update(lf_jskv *kv, const char *key, const void *value, size_t len, uint64_t last,
                                 uint64_t *rev, lf_buf *err);
/* Deletes (a delete marker); deleting a missing key succeeds. */
LF_MUST_CHECK int lf_jskv_delete(lf_jskv *kv, const char *key, lf_buf *err);

/* Calls fn for every key holding a value, in key order; fn returning non-zero stops and is returned. */
LF_MUST_CHECK int lf_jskv_each(lf_jskv *kv, int (*fn)(void *arg, const char *key, const void *value, size_t len),
                               void *arg, lf_buf *err);

typedef struct lf_jskv_mirror lf_jskv_mirror;

/* Starts the mirror and waits up to timeout_ms for the bucket's current values: 0, or an error
 * (-ETIMEDOUT, or the watch's) and no mirror. kv must outlive the mirror. */
LF_MUST_CHECK int lf_jskv_mirror_start(lf_jskv *kv, int64_t timeout_ms, lf_jskv_mirror **out, lf_buf *err);
/* Stops the thread (within one and a half seconds, also while the server is away) and frees; NULL is fine. */
void lf_jskv_mirror_stop(lf_jskv_mirror *m);
/* Changes every time the copy changed; starts at 1. */
uint64_t lf_jskv_mirror_generation(lf_jskv_mirror *m);
/* Calls fn for every key of the copy under its lock (fn must not call the mirror); *gen (may be
 * NULL) gets the generation read. fn returning non-zero stops and is returned. */
int lf_jskv_mirror_each(lf_jskv_mirror *m, uint64_t *gen,
                        int (*fn)(void *arg, const char *key, const void *value, size_t len), void *arg);

#endif
