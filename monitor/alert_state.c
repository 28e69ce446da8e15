/* The per-check alert state machine: see alert_state.h. */
#include "alert_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void lf_alert_state_init(lf_alert_state *s)
{
    memset(s, 0, sizeof(*s));
    s->status = LF_ALERT_OK;
    s->announced = LF_ANNOUNCED_OK;
    s->last_obs_ms = INT64_MIN;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static lf_alert_note *add_note(lf_alert_state *s, lf_alert_note *notes, int *n, int kind,
                               const lf_alert_observation *obs, int64_t since_ms)
{
    lf_alert_note *note = &notes[(*n)++];
    memset(note, 0, sizeof(*note));
    note->kind = kind;
    note->seq = ++s->seq;
    note->at_ms = obs->time_ms;
    note->since_ms = since_ms;
    copy_text(note->value, sizeof(note->value), obs->value);
    copy_text(note->threshold, sizeof(note->threshold), obs->threshold);
    copy_text(note->message, sizeof(note->message), obs->message);
    return note;
}

/* Records an OK<->FIRING transition at t and forgets those that left the window. */
static void flap_record(lf_alert_state *s, const lf_alert_rules *r, int64_t t, bool changed)
{
    if (changed) {
        if (s->n_changes == LF_ALERT_FLAP_HISTORY) {
            memmove(&s->changes_ms[0], &s->changes_ms[1], (LF_ALERT_FLAP_HISTORY - 1) * sizeof(int64_t));
            s->n_changes--;
        }
        s->changes_ms[s->n_changes++] = t;
        s->last_change_ms = t;
    }
    if (r->flap_window_ms > 0) {
        uint32_t drop = 0;
        while (drop < s->n_changes && t - s->changes_ms[drop] >= r->flap_window_ms)
            drop++;
        if (drop) {
            memmove(&s->changes_ms[0], &s->changes_ms[drop], (s->n_changes - drop) * sizeof(int64_t));
            s->n_changes -= drop;
        }
    }
    if (r->flap_threshold == 0) {
        s->flapping = false;
        return;
    }
    uint32_t threshold = r->flap_threshold > LF_ALERT_FLAP_HISTORY ? LF_ALERT_FLAP_HISTORY : r->flap_threshold;
    int64_t quiet = r->flap_quiet_ms > 0 ? r->flap_quiet_ms : r->flap_window_ms;
    if (!s->flapping) {
        if (s->n_changes >= threshold) {
            s->flapping = true;
            s->flapping_since_ms = s->changes_ms[s->n_changes - threshold];
        }
    } else if (t - s->last_change_ms >= quiet) {
        /* calm again: start counting afresh so old transitions cannot re-trigger at once */
        s->flapping = false;
        s->n_changes = 0;
    }
}

int lf_alert_step(const lf_alert_state *prev, const lf_alert_observation *obs, const lf_alert_rules *rules,
                  lf_alert_state *next, lf_alert_note *notes)
{
    lf_alert_state s = *prev;
    int n = 0;
    int64_t t = obs->time_ms;
    if (t <= prev->last_obs_ms) {
        *next = s;
        return 0;
    }
    s.last_obs_ms = t;

    bool changed = false;
    if (obs->ok) {
        if (s.status == LF_ALERT_FIRING)
            changed = true;
        s.status = LF_ALERT_OK;
        s.fail_count = 0;
        s.fail_since_ms = 0;
    } else {
        if (s.fail_count == 0)
            s.fail_since_ms = t;
        /* counted toward the pending period only: a firing check's state stays the same between
         * reminders, so storing it can be skipped */
        if (s.status != LF_ALERT_FIRING && s.fail_count < UINT32_MAX)
            s.fail_count++;
        if (s.status != LF_ALERT_FIRING) {
            uint32_t need = rules->pending_count > 1 ? rules->pending_count : 1;
            if (s.fail_count >= need && t - s.fail_since_ms >= rules->pending_ms) {
                s.status = LF_ALERT_FIRING;
                s.firing_since_ms = s.fail_since_ms;
                changed = true;
            } else {
                s.status = LF_ALERT_PENDING;
            }
        }
    }
    int64_t flap_since = s.flapping_since_ms; /* for FLAP_ENDED, before a new episode replaces it */
    flap_record(&s, rules, t, changed);

    bool silenced = rules->silence_until_ms > t;
    bool silence_ended = prev->silenced && !silenced;
    s.silenced = silenced;
    if (silenced) {
        *next = s;
        return 0;
    }

    int desired = s.flapping ? LF_ANNOUNCED_FLAPPING
                  : s.status == LF_ALERT_FIRING ? LF_ANNOUNCED_FIRING
                                                : LF_ANNOUNCED_OK;
    switch (desired) {
    case LF_ANNOUNCED_FLAPPING:
        if (s.announced != LF_ANNOUNCED_FLAPPING)
            add_note(&s, notes, &n, LF_NOTIFY_FLAPPING, obs, s.flapping_since_ms);
        break;
    case LF_ANNOUNCED_FIRING:
        if (s.announced == LF_ANNOUNCED_FLAPPING) {
            add_note(&s, notes, &n, LF_NOTIFY_FLAP_ENDED, obs, flap_since);
            add_note(&s, notes, &n, LF_NOTIFY_FIRING, obs, s.firing_since_ms);
            s.last_announce_ms = t;
        } else if (s.announced == LF_ANNOUNCED_OK || silence_ended) {
            add_note(&s, notes, &n, LF_NOTIFY_FIRING, obs, s.firing_since_ms);
            s.last_announce_ms = t;
        } else if (rules->reminder_ms > 0 && t - s.last_announce_ms >= rules->reminder_ms) {
            add_note(&s, notes, &n, LF_NOTIFY_REMINDER, obs, s.firing_since_ms);
            s.last_announce_ms = t;
        }
        break;
    default:
        if (s.announced == LF_ANNOUNCED_FLAPPING)
            add_note(&s, notes, &n, LF_NOTIFY_FLAP_ENDED, obs, flap_since);
        else if (s.announced == LF_ANNOUNCED_FIRING)
            add_note(&s, notes, &n, LF_NOTIFY_RESOLVED, obs, s.firing_since_ms);
        break;
    }
    s.announced = desired;
    *next = s;
    return n;
}

bool lf_alert_state_same(const lf_alert_state *a, const lf_alert_state *b)
{
    if (a->status != b->status || a->announced != b->announced || a->fail_count != b->fail_count ||
        a->fail_since_ms != b->fail_since_ms || a->firing_since_ms != b->firing_since_ms ||
        a->last_announce_ms != b->last_announce_ms || a->silenced != b->silenced || a->flapping != b->flapping ||
        a->flapping_since_ms != b->flapping_since_ms || a->last_change_ms != b->last_change_ms ||
        a->n_changes != b->n_changes || a->seq != b->seq)
        return false;
    for (uint32_t i = 0; i < a->n_changes && i < LF_ALERT_FLAP_HISTORY; i++)
        if (a->changes_ms[i] != b->changes_ms[i])
            return false;
    return true;
}

static const char *const kind_names[] = {NULL, "FIRING", "REMINDER", "RESOLVED", "FLAPPING", "FLAP_ENDED"};

const char *lf_alert_kind_name(int kind)
{
    if (kind >= LF_NOTIFY_FIRING && kind <= LF_NOTIFY_FLAP_ENDED)
        return kind_names[kind];
    return "UNKNOWN";
}

int lf_alert_kind_parse(const char *name)
{
    for (int k = LF_NOTIFY_FIRING; k <= LF_NOTIFY_FLAP_ENDED; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return -EINVAL;
}

const char *lf_alert_status_name(int status)
{
    switch (status) {
    case LF_ALERT_OK:
        return "ok";
    case LF_ALERT_PENDING:
        return "pending";
    case LF_ALERT_FIRING:
        return "firing";
    default:
        return "unknown";
    }
}
