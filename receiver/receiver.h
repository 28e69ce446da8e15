/* The receiver's shared state, handed to every route file (upload.c, session_routes.c,
 * queue_routes.c, read_routes.c) as the route data. One instance per daemon, owned by main.c;
 * no file keeps a global of its own. */
#ifndef LF_RECEIVER_H
#define LF_RECEIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "index.h"
#include "keys.h"
#include "lf_jsqueue.h"
#include "lf_metrics.h"
#include "lf_queue.h"
#include "lf_service.h"
#include "receiver_config.h"
#include "sites.h"
#include "store.h"

typedef struct lf_receiver lf_receiver;

struct lf_receiver {
    lf_service *svc;
    uv_loop_t *loop;
    const struct lf_receiver_config *cfg;
    lf_metrics *metrics;
    lf_store *store;
    lf_index *index;
    lf_receiver_keys keys;
    lf_sites sites;
    lf_tokens tokens; /* bearer tokens of every route but uploads */
    lf_queue *queue;  /* embedded backend; its data is this receiver */
    lf_jetstream *js; /* jetstream backend (publish.c): the connection and the queue */
    lf_jsqueue *jsq;
    unsigned js_publishing; /* publishes waiting for their PubAck (loop thread) */
    struct lf_publish_req *publish_wait_head, *publish_wait_tail; /* past max_publishes, FIFO */
    uv_timer_t sweep_timer; /* re-publishes rows still "stored" */
    bool sweep_timer_on, sweep_running;
    uv_work_t sweep_work;
    struct lf_read_routes *read_routes; /* list, events, search (receiver/read_routes.c) */
    struct lf_site_figures *figures;    /* per-site counts, metrics and refusal log (site_figures.h) */

    /* backpressure, refreshed by a 1 s timer on the loop */
    uv_timer_t pressure_timer;
    bool pressure_timer_on;
    bool stats_in_flight;
    uint64_t queue_depth;
    uint64_t free_disk;
    unsigned active_uploads;
    struct lf_inflight_id *inflight; /* ids being uploaded now (loop thread only) */
    bool stopping;
    /* ids whose send committed, to be marked "queued" in the index by one batched worker job */
    char (*mark_pending)[LF_SESSION_ID_LEN + 1];
    size_t mark_count, mark_cap;
    char (*mark_batch)[LF_SESSION_ID_LEN + 1]; /* being written by the worker */
    size_t mark_batch_count, mark_batch_cap;
    bool mark_running;
    uv_work_t mark_work;
    bool release_pending;               /* stop: release once the running mark, sweep and depth jobs end */
    unsigned closing_handles;           /* timers in r being closed: the release waits for them too */
    void (*release_cb)(lf_receiver *r);

    lf_counter *up_stored, *up_duplicate, *up_conflict, *up_rejected, *up_failed;
    lf_gauge *g_active;
    lf_histogram *h_upload_seconds;
    lf_counter *bytes_received;

    /* backend = jetstream: the state receivers share (lf_jskv.h; main.c opens it after the queue) */
    struct lf_jskv *kv_sites, *kv_tokens, *kv_sessions;
    struct lf_jskv_mirror *sites_mirror, *tokens_mirror; /* followed by sites and tokens */
    char node[512];          /* this receiver in session claims: advertise_url, else host and index path */
    char node_id[40];        /* this receiver in claims, for recognising its own (lf_index_receiver_id) */
};

/* Counts a rejection under lf_receiver_rejections_total{reason=...} (registered on first use). */
void lf_receiver_count_rejection(lf_receiver *r, const char *reason);
/* Responds with {"error":code,"message":...} and a Retry-After for 429 and 503. */
void lf_receiver_respond_error(lf_receiver *r, lf_http_request *req, int status, const char *code,
                               const char *message);
/* Maps a storage or queue error to its status: -ENOSPC 507, -EIO/-EAGAIN/-EBUSY/other 503. */
int lf_receiver_storage_status(int err);

/* Index status as the API reports it: "queued" also for a row whose mark is still pending. */
const char *lf_receiver_session_status(lf_receiver *r, const lf_index_row *row);
/* Writes pending marks synchronously (stop). */
void lf_receiver_flush_marks(lf_receiver *r);

/* A mark, sweep or JetStream depth job ended: releases the receiver when stop is waiting for it
 * (release_pending). */
void lf_receiver_job_done(lf_receiver *r);
/* Closes a handle embedded in r (a timer); the release waits for its close callback, since r is
 * freed by the release. */
void lf_receiver_close_handle(lf_receiver *r, uv_handle_t *h);

/* backend = jetstream (publish.c). One publish of a session id, answered by cb on the loop with 0
 * once JetStream acknowledged it (the text of a failure in err). */
typedef struct lf_publish_req {
    uv_work_t work;
    lf_receiver *r;
    char id[LF_SESSION_ID_LEN + 1];
    int status;
    char err[256];
    void *data;
    void (*cb)(struct lf_publish_req *p, int status);
    struct lf_publish_req *next; /* waiting for a free publish (lf_receiver.publish_wait_head) */
} lf_publish_req;
/* Connects and opens (creates or updates) the queue's streams. */
LF_MUST_CHECK int lf_receiver_js_open(lf_receiver *r);
void lf_receiver_js_close(lf_receiver *r);
/* NULL when a publish may be asked for now, else the 503's error code ("queue_unavailable"). */
const char *lf_receiver_js_busy(lf_receiver *r);
/* Publishes id, at once or, past queue.max_publishes, after the publishes before it (FIFO). -ENOTCONN
 * as lf_receiver_js_busy, or a libuv error; a failed call never calls cb. */
LF_MUST_CHECK int lf_receiver_js_publish(lf_receiver *r, lf_publish_req *p, const char *id,
                                         void (*cb)(lf_publish_req *p, int status));
/* The blocking publish (worker threads, recovery): the id as body and as Nats-Msg-Id. */
LF_MUST_CHECK int lf_receiver_js_publish_id(lf_jsqueue *q, const char *id, lf_buf *err);
void lf_receiver_js_start_sweep(lf_receiver *r);
/* Asks JetStream for the queue's depth on the pool (queue_depth; stats_in_flight meanwhile). */
void lf_receiver_js_refresh_depth(lf_receiver *r);
void lf_receiver_js_stop_sweep(lf_receiver *r);

/* backend = jetstream: the session index's claims in LF_SESSIONS (upload.c). A receiver storing a new
 * session first writes its blob and an index row "claiming", then claims the id with a create-only
 * put; only a claimed row becomes "stored" (and so is published, by the upload or the sweep). A row
 * whose id another receiver claimed becomes "foreign": never published, answered from the claim. */
typedef struct lf_session_claim {
    char site[72];
    uint64_t size;
    char hash[LF_HASH_HEX_SIZE];
    uint64_t received_ms;
    char receiver[512];
    char receiver_id[40]; /* "" in claims made before receivers had ids */
    char backend[16];
    char location[512];
} lf_session_claim;
/* Blocking (worker threads). -ENOENT when no receiver claimed id, LF_EFORMAT when the claim does
 * not parse. */
LF_MUST_CHECK int lf_receiver_claim_get(lf_receiver *r, const char *id, lf_session_claim *c, lf_buf *err);
/* Claims row's id for this receiver: 0 claimed (now, or before by this receiver with this content),
 * -EEXIST claimed by another receiver or with other content (*other holds that claim), or an error. */
LF_MUST_CHECK int lf_receiver_claim(lf_receiver *r, const lf_index_row *row, lf_session_claim *other, lf_buf *err);
/* true when c was made by this receiver for row: its receiver_id, or its name with row's blob */
bool lf_receiver_claim_is_ours(const lf_receiver *r, const lf_session_claim *c, const lf_index_row *row);
/* Settles every row left "claiming" (a claim that failed or crashed): claimed -> "stored", another's
 * -> "foreign". Blocking; at start and at the head of every sweep (publish.c). */
void lf_receiver_settle_claims(lf_receiver *r);
/* Claims up to max rows stored before claims (from `queue migrate`, or an older index); blocking.
 * Run at start and, until all are claimed, with each sweep. */
void lf_receiver_backfill_claims(lf_receiver *r, size_t max);

/* Start-up on JetStream retries what times out for LF_RECEIVER_START_WAIT_MS: a stream electing a
 * leader after a server's loss answers nothing for a few seconds, no reason to exit and wait for
 * systemd. lf_receiver_retry_start is true (after a pause, logged; err reset) when rc (-ETIMEDOUT,
 * -ENOTCONN) is worth another try before deadline (from lf_receiver_start_deadline). */
#define LF_RECEIVER_START_WAIT_MS 30000
int64_t lf_receiver_start_deadline(void);
bool lf_receiver_retry_start(int rc, int64_t deadline, const char *what, lf_buf *err);

/* Route registration, one function per route file. */
int lf_receiver_upload_routes(lf_receiver *r);
int lf_receiver_session_routes(lf_receiver *r);
int lf_receiver_queue_routes(lf_receiver *r);
int lf_receiver_read_routes(lf_receiver *r); /* read_routes.c */
int lf_receiver_site_routes(lf_receiver *r); /* site_routes.c */
int lf_receiver_probe_routes(lf_receiver *r); /* probe_routes.c */

/* Start-up recovery (recovery.c): completes half-done uploads before the daemon listens; with jsq
 * (backend = jetstream) unqueued sessions are published there instead of the embedded queue. */
int lf_receiver_recover(const struct lf_receiver_config *cfg, lf_store *store, lf_index *index,
                        const lf_receiver_keys *keys, lf_jsqueue *jsq);

#endif
