/* The monitor's engine on a libuv loop: runs every check on its interval, records each result in
 * the outbox (state machine + notifications, one transaction), delivers what is due to the Slack
 * webhook, and pings the heartbeat URL.
 *
 * Probes block (HTTP through blocking lf_http_client, MySQL, statvfs), so each check runs on the
 * libuv thread pool (uv_queue_work), never twice at once; its result is recorded on the loop
 * thread. Delivery and the heartbeat run on the pool as well, one at a time each, with their own
 * outbox connection and HTTP clients. A slow check therefore never delays another check's timer or
 * the delivery of alerts (with many slow checks, raise UV_THREADPOOL_SIZE, default 4).
 *
 * Times are wall-clock Unix milliseconds (Slack shows them); an observation whose time is not later
 * than the check's previous one is ignored, so a clock stepped backwards pauses a check's alerting
 * until it catches up rather than confusing it. */
#ifndef LF_MONITOR_ENGINE_H
#define LF_MONITOR_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "checks.h"
#include "outbox.h"

typedef struct lf_monitor_engine lf_monitor_engine;

typedef struct lf_monitor_engine_opts {
    uv_loop_t *loop;
    const lf_check_config *checks; /* copied: the caller may free its configuration afterwards */
    size_t n_checks;
    const char *outbox_path;   /* SQLite file of states, notifications and silences */
    lf_outbox_options outbox;  /* grouping window, backoff (zeros: defaults) */
    const char *webhook_url;   /* Slack incoming webhook; NULL: notifications wait in the outbox */
    const char *dashboard_url; /* linked from every message; NULL: none */
    long slack_timeout_ms;     /* per webhook attempt (0: 10 s) */
    const char *heartbeat_url; /* dead-man's switch; NULL: none */
    uint64_t heartbeat_interval_ms; /* 0: 60 s */
    const char *host;          /* shown in messages; NULL: gethostname() */
    uint64_t delivery_poll_ms; /* how often the outbox is looked at for due messages (0: 1 s) */
} lf_monitor_engine_opts;

typedef struct lf_monitor_engine_stats {
    uint64_t checks_run;       /* probes completed */
    uint64_t checks_failed;    /* of which failed */
    uint64_t notifications;    /* enqueued */
    uint64_t messages_sent;    /* webhook messages answered 200 */
    uint64_t delivery_failures; /* webhook attempts that failed (429 included) */
    uint64_t heartbeats_ok, heartbeats_failed;
    uint64_t record_errors;    /* outbox writes that failed (the observation is lost, the next one counts) */
    int64_t undelivered;       /* notifications waiting, as of the last look */
} lf_monitor_engine_stats;

/* Starts the checks (the first run of each is spread over its first second). 0 or negative code. */
int lf_monitor_engine_start(const lf_monitor_engine_opts *opts, lf_monitor_engine **out);

/* Stops timers, waits for probes and deliveries in flight, frees everything, then calls done (may be
 * NULL) on the loop thread. For a reload: stop, and start a new engine with the new checks in done
 * (the alert state is in the outbox, keyed by check name, so nothing is lost or repeated). */
void lf_monitor_engine_stop(lf_monitor_engine *eng, void (*done)(void *arg), void *arg);

/* Counter snapshot, on the loop thread. */
void lf_monitor_engine_stats_get(const lf_monitor_engine *eng, lf_monitor_engine_stats *out);

#endif
