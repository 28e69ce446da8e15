/* The uploader engine: scans watched directories, packs finished sessions into the outbox
 * (uploader_pack.c), and uploads the outbox on a libuv loop (uploader_ship.c). Used by the daemon
 * (`run`) and by `once`, which runs the same engine on a private loop until there is nothing left. */
#ifndef LF_UPLOADER_H
#define LF_UPLOADER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "lf_metrics.h"
#include "lf_sign.h"
#include "uploader_config.h"
#include "uploader_registry.h"

typedef struct lf_uploader lf_uploader;

/* Counters (also exported in /metrics when a registry is given). */
typedef struct lf_uploader_stats {
    uint64_t packed, shipped, already_had, failed, dropped, changed_warned, snapshot_changed;
    uint64_t outbox_full_pauses, unreadable, upload_errors, pack_errors;
    uint64_t refused_waiting; /* 401/403 answers: the session stays in the outbox */
} lf_uploader_stats;

/* Opens the registry, key, outbox and HTTP client. loop may be NULL for status-only use (no
 * uploads). metrics may be NULL. 0 or a negative code (logged). */
int lf_uploader_open(const struct lf_uploader_config *cfg, uv_loop_t *loop, lf_metrics *metrics,
                     lf_uploader **out);
/* Closes; in-flight uploads are cancelled (their zips stay in the outbox). */
void lf_uploader_close(lf_uploader *u);

/* One pass over every watch: packs finished sessions into the outbox. Stops early when the outbox
 * is full (wait policy). Returns the number of sessions packed, or < 0. */
int lf_uploader_scan(lf_uploader *u);
/* Starts uploads from the outbox up to the concurrency limit (not before a backoff ends). */
void lf_uploader_pump(lf_uploader *u);
/* Uploads in flight. */
int lf_uploader_in_flight(const lf_uploader *u);
/* Sessions waiting in the outbox (not in flight). */
int64_t lf_uploader_pending(const lf_uploader *u);
/* Milliseconds until uploads may be tried again (0: now). */
int64_t lf_uploader_backoff_ms(const lf_uploader *u);
/* The receiver's last refusal of this site (401/403, "HTTP 401: {...}") while uploads wait for its
 * side to fix it; NULL once an upload succeeds. */
const char *lf_uploader_refusal(const lf_uploader *u);
/* Puts failed sessions back into the outbox (the zip from outbox/failed, the row to "retry", which a
 * running daemon adopts at its next scan): the ids given, or every failed one when n is 0. Prints
 * one line per session to out. 0, or 1 when an id was not a failed session or could not be moved. */
int lf_uploader_retry_failed(lf_uploader *u, char **ids, size_t n, FILE *out);
/* true when the last scan stopped because the outbox was full. */
bool lf_uploader_outbox_full(const lf_uploader *u);
uint64_t lf_uploader_outbox_bytes(const lf_uploader *u);
void lf_uploader_stats_get(const lf_uploader *u, lf_uploader_stats *s);
lf_ureg *lf_uploader_registry(lf_uploader *u);
/* Called when an upload ends (the loop driver uses it to pump or finish). */
void lf_uploader_on_done(lf_uploader *u, void (*fn)(void *arg), void *arg);
/* Called after each session packed during a scan (once uses it to upload while it packs). */
void lf_uploader_on_packed(lf_uploader *u, void (*fn)(void *arg), void *arg);
/* Records a failed upload attempt (transport error or 5xx after retries); true when any happened
 * since the last call. */
bool lf_uploader_take_unreachable(lf_uploader *u);

/* The identity of a file for its session id: relpath without the rotation suffix. Exposed for
 * tests. out gets at most outsz-1 bytes. */
void lf_uploader_identity(const char *relpath, const char *rotated_suffix_re, char *out,
                          size_t outsz);

#endif
