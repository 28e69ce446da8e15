/* Durable notification outbox of the monitor (SQLite, WAL, synchronous=FULL).
 *
 * One file holds the alert state of every check, the notifications waiting for Slack, and the
 * silences set from the command line. lf_outbox_observe() steps a check's state machine and, in the
 * same transaction, stores the new state and enqueues the notifications it produced: after a crash
 * either both happened or neither, so a restart neither loses a notification nor sends one twice
 * (the state already says it was announced; the (check, seq) key refuses a second copy).
 *
 * Delivery: a notification is marked delivered only after the webhook answered 200. Notifications
 * leave in order of creation: the oldest undelivered one is the head, and nothing newer is sent
 * before it (a RESOLVED never overtakes its FIRING). The head waits until its grouping window has
 * passed; then it and every undelivered notification created within the window after it (at most
 * LF_SLACK_MAX_ITEMS) go out as one message. A failed attempt reschedules the whole group: a 429
 * with Retry-After exactly that much later, anything else with exponential backoff and jitter.
 * Nothing is ever dropped for failing; it waits.
 *
 * Not thread-safe: one thread (the monitor's loop, or the command line) per lf_outbox. Several
 * processes may open the same file (busy timeout 5 s). */
#ifndef LF_OUTBOX_H
#define LF_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_state.h"
#include "slack_message.h"

typedef struct lf_outbox lf_outbox;

/* A field left 0 takes its default. */
typedef struct lf_outbox_options {
    int64_t group_window_ms; /* notifications created this close together share a message (10 s);
                                negative: no grouping window */
    int64_t backoff_base_ms; /* first retry after a failure (5 s), doubling per attempt ... */
    int64_t backoff_max_ms;  /* ... up to this (10 min) */
    uint64_t jitter_seed;    /* 0: seeded from time and pid; tests pass a fixed seed */
} lf_outbox_options;

#define LF_OUTBOX_DEFAULT_GROUP_WINDOW_MS 10000
#define LF_OUTBOX_DEFAULT_BACKOFF_BASE_MS 5000
#define LF_OUTBOX_DEFAULT_BACKOFF_MAX_MS 600000

/* A "silence" for this name applies to every check. */
#define LF_OUTBOX_ALL_CHECKS "*"
#define LF_OUTBOX_CHECK_MAX 256

/* Opens (creating if needed) the outbox at path. opts may be NULL (defaults). */
int lf_outbox_open(const char *path, const lf_outbox_options *opts, lf_outbox **out);
void lf_outbox_close(lf_outbox *ob);

/* Steps the state machine of check with obs and rules (rules->silence_until_ms is raised to any
 * silence stored for the check or for all checks), storing the new state and enqueuing the
 * notifications in one transaction. *n_enqueued (may be NULL) receives how many were enqueued.
 * 0 or negative code (LF_EDB); on error nothing changed. */
int lf_outbox_observe(lf_outbox *ob, const char *check, const lf_alert_rules *rules, const lf_alert_observation *obs,
                      int *n_enqueued);

/* The stored state of check: 0, -ENOENT (never observed), or negative code. */
int lf_outbox_get_state(lf_outbox *ob, const char *check, lf_alert_state *out);

/* Silences: until_ms is absolute; who and why are free text for `status` (may be NULL). A new
 * silence replaces the previous one of the same check. */
int lf_outbox_silence(lf_outbox *ob, const char *check, int64_t until_ms, const char *who, const char *why,
                      int64_t now_ms);
/* 0, or -ENOENT when the check had no silence. */
int lf_outbox_unsilence(lf_outbox *ob, const char *check);
/* The end of the silence in force for check at now_ms (its own or all checks'), 0 when none. */
int lf_outbox_silence_until(lf_outbox *ob, const char *check, int64_t now_ms, int64_t *until_ms);

/* One row of `logferry-monitor status`: every check with a state or a silence, by name. */
typedef struct lf_outbox_status_row {
    const char *check;
    bool has_state;
    lf_alert_state state;
    int64_t silence_until_ms; /* 0: not silenced now */
    const char *silence_who;
    const char *silence_why;
    int64_t undelivered;      /* notifications of this check waiting for Slack */
} lf_outbox_status_row;
/* Calls cb for each row; a non-zero return from cb stops and is returned. */
int lf_outbox_foreach_status(lf_outbox *ob, int64_t now_ms, int (*cb)(const lf_outbox_status_row *row, void *ctx),
                             void *ctx);

typedef struct lf_outbox_entry {
    int64_t id;
    char check[LF_OUTBOX_CHECK_MAX];
    lf_alert_note note;
    uint32_t attempts;
    int64_t next_attempt_ms;
} lf_outbox_entry;

typedef struct lf_outbox_batch {
    size_t n;
    lf_outbox_entry items[LF_SLACK_MAX_ITEMS];
} lf_outbox_batch;

/* The group that is due at now_ms into batch. Returns batch->n (0: nothing due) or negative. */
int lf_outbox_next_batch(lf_outbox *ob, int64_t now_ms, lf_outbox_batch *batch);
/* Marks every notification of batch delivered. */
int lf_outbox_mark_delivered(lf_outbox *ob, const lf_outbox_batch *batch, int64_t now_ms);
/* Records a failed attempt for every notification of batch. http_status 429 with retry_after_ms > 0
 * waits exactly retry_after_ms; otherwise backoff with jitter. *next_ms (may be NULL) receives the
 * time of the next attempt. */
int lf_outbox_mark_failed(lf_outbox *ob, const lf_outbox_batch *batch, int64_t now_ms, int http_status,
                          int64_t retry_after_ms, const char *error, int64_t *next_ms);

/* Undelivered notifications in total. */
int lf_outbox_undelivered(lf_outbox *ob, int64_t *count);
/* When the head of the outbox is due (its next attempt, or the end of its grouping window);
 * -ENOENT when nothing is waiting. For scheduling the delivery timer. */
int lf_outbox_next_due(lf_outbox *ob, int64_t *due_ms);

/* Sends one message body; sets *http_status (0 for a transport failure) and *retry_after_ms (0 when
 * the answer had no Retry-After). Returns 0 when an HTTP answer was received, negative otherwise. */
/* route: the webhook of the message's checks (lf_slack_links.route_of), NULL for the default one. */
typedef int (*lf_outbox_send_fn)(const char *body, size_t len, const char *route, void *ctx, int *http_status,
                                 int64_t *retry_after_ms);

/* Sends what is due at now_ms, at most max_messages messages, stopping at the first failure (the
 * endpoint is down or rate-limiting: later messages wait behind the head). host names the monitor
 * in the messages. Returns how many messages were delivered, or a negative code. */
int lf_outbox_deliver_due(lf_outbox *ob, int64_t now_ms, const char *host, lf_outbox_send_fn send, void *ctx,
                          int max_messages);

/* Links put into every message this handle delivers (copied; its strings and arg must outlive the
 * handle). NULL: none. */
void lf_outbox_set_links(lf_outbox *ob, const lf_slack_links *links);

/* Failed webhook attempts made through lf_outbox_deliver_due on this handle. */
uint64_t lf_outbox_delivery_failures(const lf_outbox *ob);

/* Deletes delivered notifications and ended silences older than before_ms. Returns rows removed. */
int lf_outbox_prune(lf_outbox *ob, int64_t before_ms);

#endif
