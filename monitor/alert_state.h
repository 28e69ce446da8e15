/* The alert state machine of one check, as a pure function.
 *
 *   lf_alert_step(previous state, observation, rules) -> new state + notifications to emit
 *
 * No clock is read and nothing is allocated: time arrives in the observation, so the same inputs
 * always give the same outputs (tests run whole incidents in simulated time, and a restarted
 * monitor that replays an observation it already recorded gets nothing new).
 *
 * Condition of the check:  OK -> PENDING (failing, not for long enough yet) -> FIRING -> OK.
 * What the channel was told ("announced"): OK, FIRING or FLAPPING. Each step compares what the
 * channel should now believe with what it was told and emits only the difference:
 *   OK -> FIRING: FIRING        FIRING -> OK: RESOLVED        FIRING held: REMINDER every interval
 *   any -> FLAPPING: FLAPPING   FLAPPING -> OK: FLAP_ENDED    FLAPPING -> FIRING: FLAP_ENDED, FIRING
 * A silence suppresses notifications while the state keeps advancing; the first observation after
 * the silence ends sends one FIRING if the check is still firing, or one RESOLVED if the channel
 * was last told it was firing, never the backlog.
 *
 * Flapping counts transitions between OK and FIRING (the ones that would each send a message), so
 * an intermittent single failure filtered by the pending period does not count. */
#ifndef LF_ALERT_STATE_H
#define LF_ALERT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lf_alert_status {
    LF_ALERT_OK = 0,
    LF_ALERT_PENDING = 1, /* failing, pending period not over */
    LF_ALERT_FIRING = 2,
};

/* What the channel currently believes about the check. */
enum lf_alert_announced {
    LF_ANNOUNCED_OK = 0,
    LF_ANNOUNCED_FIRING = 1,
    LF_ANNOUNCED_FLAPPING = 2,
};

enum lf_alert_kind {
    LF_NOTIFY_FIRING = 1,
    LF_NOTIFY_REMINDER = 2,
    LF_NOTIFY_RESOLVED = 3,
    LF_NOTIFY_FLAPPING = 4,
    LF_NOTIFY_FLAP_ENDED = 5,
};

/* Transitions remembered for flap detection; a threshold above this is clamped to it. */
#define LF_ALERT_FLAP_HISTORY 64
#define LF_ALERT_VALUE_MAX 128
#define LF_ALERT_MESSAGE_MAX 512

typedef struct lf_alert_rules {
    uint32_t pending_count;       /* consecutive failures before firing (0 and 1: the first) */
    int64_t pending_ms;           /* and failing for at least this long (0: no duration) */
    int64_t reminder_ms;          /* while firing, a REMINDER this often (0: never) */
    int64_t flap_window_ms;       /* transitions counted within this window ... */
    uint32_t flap_threshold;      /* ... this many or more => flapping (0: flap detection off) */
    int64_t flap_quiet_ms;        /* no transition for this long leaves flapping (0: the window) */
    int64_t silence_until_ms;     /* notifications suppressed while time < this (0: none) */
} lf_alert_rules;

typedef struct lf_alert_observation {
    int64_t time_ms;       /* when the check ran (Unix ms); must increase between steps */
    bool ok;
    const char *value;     /* what was measured ("depth 1520"); may be NULL */
    const char *threshold; /* what it was compared with ("depth <= 1000"); may be NULL */
    const char *message;   /* what failed, for people; may be NULL */
} lf_alert_observation;

typedef struct lf_alert_state {
    int status;             /* enum lf_alert_status */
    int announced;          /* enum lf_alert_announced */
    uint32_t fail_count;    /* consecutive failed observations, counted until the alert fires */
    int64_t fail_since_ms;  /* first failure of the current failing run (0 when ok) */
    int64_t firing_since_ms;  /* start of the failing run that fired (kept for RESOLVED) */
    int64_t last_announce_ms; /* last FIRING or REMINDER sent: reminders count from here */
    int64_t last_obs_ms;    /* time of the last observation taken (replays are ignored) */
    bool silenced;          /* the last observation fell inside a silence */
    bool flapping;
    int64_t flapping_since_ms;
    int64_t last_change_ms; /* last OK<->FIRING transition (0: none) */
    uint32_t n_changes;     /* OK<->FIRING transition times, oldest first, within the window */
    int64_t changes_ms[LF_ALERT_FLAP_HISTORY];
    uint64_t seq;           /* notifications emitted so far: the next one gets seq + 1 */
} lf_alert_state;

typedef struct lf_alert_note {
    int kind;               /* enum lf_alert_kind */
    uint64_t seq;           /* per check, increasing: (check, seq) identifies a notification */
    int64_t at_ms;          /* created */
    int64_t since_ms;       /* the failure (or flapping) began */
    char value[LF_ALERT_VALUE_MAX];
    char threshold[LF_ALERT_VALUE_MAX];
    char message[LF_ALERT_MESSAGE_MAX];
} lf_alert_note;

/* At most this many notifications come out of one step. */
#define LF_ALERT_MAX_NOTES 3

/* A fresh state (OK, nothing announced). */
void lf_alert_state_init(lf_alert_state *s);

/* Advances prev by one observation into next (prev and next may be the same object) and writes the
 * notifications to send into notes (room for LF_ALERT_MAX_NOTES). Returns how many (0..3). An
 * observation not newer than the last one is a replay: next = prev and nothing is emitted. */
int lf_alert_step(const lf_alert_state *prev, const lf_alert_observation *obs, const lf_alert_rules *rules,
                  lf_alert_state *next, lf_alert_note *notes);

/* true when a and b differ at most in last_obs_ms (the outbox then skips writing the state: a
 * healthy check costs no disk write per run). */
bool lf_alert_state_same(const lf_alert_state *a, const lf_alert_state *b);

const char *lf_alert_kind_name(int kind);     /* "FIRING", ... */
int lf_alert_kind_parse(const char *name);    /* kind or -EINVAL */
const char *lf_alert_status_name(int status); /* "ok", "pending", "firing" */

#endif
