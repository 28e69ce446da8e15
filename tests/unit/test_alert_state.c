/* The alert state machine over simulated time: exact notification sequences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alert_state.h"

#define T0 1700000000000LL /* an arbitrary Unix time in ms */
#define SEC 1000LL
#define MIN (60 * SEC)

struct sim {
    lf_alert_state state;
    lf_alert_rules rules;
    int kinds[256];
    int64_t at[256];
    uint64_t seqs[256];
    int n;
};

static void sim_init(struct sim *s)
{
    memset(s, 0, sizeof(*s));
    lf_alert_state_init(&s->state);
    s->rules.pending_count = 3;
    s->rules.reminder_ms = 60 * MIN;
    s->rules.flap_window_ms = 30 * MIN;
    s->rules.flap_threshold = 6;
}

/* One observation at T0 + t; returns how many notifications it produced. */
static int obs(struct sim *s, int64_t t, bool ok)
{
    lf_alert_observation o = {.time_ms = T0 + t, .ok = ok, .value = ok ? "depth 3" : "depth 5000",
                              .threshold = "depth <= 1000", .message = ok ? "queue drains" : "queue is deep"};
    lf_alert_note notes[LF_ALERT_MAX_NOTES];
    int n = lf_alert_step(&s->state, &o, &s->rules, &s->state, notes);
    assert_true(n >= 0 && n <= LF_ALERT_MAX_NOTES);
    for (int i = 0; i < n; i++) {
        assert_true(s->n < 256);
        assert_int_equal(notes[i].at_ms, T0 + t);
        s->kinds[s->n] = notes[i].kind;
        s->at[s->n] = notes[i].at_ms - T0;
        s->seqs[s->n] = notes[i].seq;
        s->n++;
    }
    return n;
}

/* Observations every step ms from `from` (inclusive) to `to` (exclusive). */
static void run(struct sim *s, int64_t from, int64_t to, int64_t step, bool ok)
{
    for (int64_t t = from; t < to; t += step)
        obs(s, t, ok);
}

static int count_kind(const struct sim *s, int kind)
{
    int c = 0;
    for (int i = 0; i < s->n; i++)
        c += s->kinds[i] == kind;
    return c;
}

static void test_pending_count_then_one_firing(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    run(&s, 0, 10 * MIN, MIN, true);
    assert_int_equal(s.n, 0);
    assert_int_equal(obs(&s, 10 * MIN, false), 0);
    assert_int_equal(s.state.status, LF_ALERT_PENDING);
    assert_int_equal(obs(&s, 11 * MIN, false), 0);
    assert_int_equal(obs(&s, 12 * MIN, false), 1); /* third consecutive failure */
    assert_int_equal(s.kinds[0], LF_NOTIFY_FIRING);
    assert_int_equal(s.state.status, LF_ALERT_FIRING);
    assert_int_equal(s.state.firing_since_ms, T0 + 10 * MIN);
    run(&s, 13 * MIN, 60 * MIN, MIN, false); /* still failing, reminder not due yet */
    assert_int_equal(s.n, 1);
}

static void test_pending_interrupted_sends_nothing(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    for (int i = 0; i < 20; i++) { /* two failures then one success, repeatedly */
        obs(&s, (3 * i) * MIN, false);
        obs(&s, (3 * i + 1) * MIN, false);
        obs(&s, (3 * i + 2) * MIN, true);
    }
    assert_int_equal(s.n, 0);
    assert_int_equal(s.state.status, LF_ALERT_OK);
}

static void test_pending_duration(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    s.rules.pending_ms = 5 * MIN;
    run(&s, 0, 5 * MIN, 30 * SEC, false);
    assert_int_equal(s.n, 0); /* 4.5 minutes of failure */
    obs(&s, 5 * MIN, false);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.kinds[0], LF_NOTIFY_FIRING);
    assert_int_equal(s.at[0], 5 * MIN);
}

static void test_reminders_once_per_interval_then_resolved(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    /* fails from 0 to 3h59m every 30 s */
    run(&s, 0, 4 * 60 * MIN, 30 * SEC, false);
    int expect[] = {LF_NOTIFY_FIRING, LF_NOTIFY_REMINDER, LF_NOTIFY_REMINDER, LF_NOTIFY_REMINDER};
    assert_int_equal(s.n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.kinds[i], expect[i]);
        assert_int_equal(s.at[i], i * 60 * MIN);
        assert_int_equal(s.seqs[i], (uint64_t)i + 1);
    }
    run(&s, 4 * 60 * MIN, 5 * 60 * MIN, 30 * SEC, true);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.kinds[4], LF_NOTIFY_RESOLVED);
    assert_int_equal(s.at[4], 4 * 60 * MIN);
    assert_int_equal(s.state.status, LF_ALERT_OK);
    assert_int_equal(s.state.announced, LF_ANNOUNCED_OK);
}

static void test_no_reminders_when_zero(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    s.rules.reminder_ms = 0;
    run(&s, 0, 10 * 60 * MIN, MIN, false);
    assert_int_equal(s.n, 1);
}

static void test_resolved_carries_incident_start(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    lf_alert_observation o = {.time_ms = T0, .ok = false, .value = "x"};
    lf_alert_note notes[LF_ALERT_MAX_NOTES];
    s.rules.pending_count = 2;
    assert_int_equal(lf_alert_step(&s.state, &o, &s.rules, &s.state, notes), 0);
    o.time_ms = T0 + MIN;
    assert_int_equal(lf_alert_step(&s.state, &o, &s.rules, &s.state, notes), 1);
    assert_int_equal(notes[0].since_ms, T0);
    assert_string_equal(notes[0].value, "x");
    o.time_ms = T0 + 7 * MIN;
    o.ok = true;
    o.value = "fine";
    assert_int_equal(lf_alert_step(&s.state, &o, &s.rules, &s.state, notes), 1);
    assert_int_equal(notes[0].kind, LF_NOTIFY_RESOLVED);
    assert_int_equal(notes[0].since_ms, T0);
    assert_int_equal(notes[0].at_ms, T0 + 7 * MIN);
    assert_string_equal(notes[0].value, "fine");
}

static void test_replayed_observation_is_ignored(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    assert_int_equal(obs(&s, 0, false), 1);
    lf_alert_state before = s.state;
    assert_int_equal(obs(&s, 0, false), 0);           /* same time again */
    assert_int_equal(obs(&s, -MIN, true), 0);         /* older */
    assert_memory_equal(&before, &s.state, sizeof(before));
    assert_int_equal(obs(&s, SEC, true), 1);
    assert_int_equal(s.kinds[1], LF_NOTIFY_RESOLVED);
}

/* A check that fires and resolves every 2 minutes: exactly one FLAPPING, then nothing. */
static void test_flapping_reported_once(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    for (int i = 0; i < 30; i++)
        obs(&s, i * 2 * MIN, i % 2 == 0 ? false : true);
    /* transitions at 0,2,4,6,8 send FIRING/RESOLVED; the sixth (10 min) makes it flapping */
    int expect[] = {LF_NOTIFY_FIRING, LF_NOTIFY_RESOLVED, LF_NOTIFY_FIRING, LF_NOTIFY_RESOLVED,
                    LF_NOTIFY_FIRING, LF_NOTIFY_FLAPPING};
    assert_int_equal(s.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(s.kinds[i], expect[i]);
        assert_int_equal(s.at[i], i * 2 * MIN);
    }
    assert_int_equal(count_kind(&s, LF_NOTIFY_FLAPPING), 1);
    assert_true(s.state.flapping);
    /* stays flapping while it keeps toggling for hours */
    for (int i = 30; i < 300; i++)
        obs(&s, i * 2 * MIN, i % 2 == 0 ? false : true);
    assert_int_equal(s.n, 6);
    /* quiet and healthy for the quiet period (the window, 30 min): one FLAP_ENDED */
    run(&s, 600 * MIN, 640 * MIN, MIN, true);
    assert_int_equal(s.n, 7);
    assert_int_equal(s.kinds[6], LF_NOTIFY_FLAP_ENDED);
    assert_false(s.state.flapping);
    assert_int_equal(s.state.announced, LF_ANNOUNCED_OK);
}

static void test_flap_ends_while_failing_sends_firing(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    for (int i = 0; i < 8; i++)
        obs(&s, i * MIN, i % 2 == 0 ? false : true);
    assert_int_equal(count_kind(&s, LF_NOTIFY_FLAPPING), 1);
    int before = s.n;
    run(&s, 8 * MIN, 60 * MIN, MIN, false); /* fails steadily from 8 min */
    /* last transition at 8 min; quiet 30 min later */
    assert_int_equal(s.n, before + 2);
    assert_int_equal(s.kinds[before], LF_NOTIFY_FLAP_ENDED);
    assert_int_equal(s.kinds[before + 1], LF_NOTIFY_FIRING);
    assert_int_equal(s.at[before], 38 * MIN);
    /* reminders count from the FIRING */
    run(&s, 60 * MIN, 98 * MIN + 1, MIN, false);
    assert_int_equal(s.n, before + 3);
    assert_int_equal(s.kinds[before + 2], LF_NOTIFY_REMINDER);
    assert_int_equal(s.at[before + 2], 98 * MIN);
}

static void test_flap_detection_off(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    s.rules.flap_threshold = 0;
    for (int i = 0; i < 40; i++)
        obs(&s, i * MIN, i % 2 == 0 ? false : true);
    assert_int_equal(count_kind(&s, LF_NOTIFY_FIRING), 20);
    assert_int_equal(count_kind(&s, LF_NOTIFY_RESOLVED), 20);
    assert_int_equal(count_kind(&s, LF_NOTIFY_FLAPPING), 0);
}

static void test_slow_toggling_is_not_flapping(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    /* one transition every 10 minutes: at most 3 inside any 30-minute window */
    for (int i = 0; i < 30; i++)
        obs(&s, i * 10 * MIN, i % 2 == 0 ? false : true);
    assert_int_equal(count_kind(&s, LF_NOTIFY_FLAPPING), 0);
    assert_int_equal(s.n, 30);
}

static void test_silence_suppresses_until_it_ends(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    s.rules.silence_until_ms = T0 + 2 * 60 * MIN + 30 * SEC;
    run(&s, 0, 2 * 60 * MIN, MIN, false); /* fires and would remind: all silenced */
    assert_int_equal(s.n, 0);
    assert_int_equal(s.state.status, LF_ALERT_FIRING); /* state advanced anyway */
    assert_true(s.state.silenced);
    run(&s, 2 * 60 * MIN, 3 * 60 * MIN, MIN, false);
    /* silence ends at 2h00m30s: one FIRING at the next observation (2h01m), no backlog */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.kinds[0], LF_NOTIFY_FIRING);
    assert_int_equal(s.at[0], 2 * 60 * MIN + MIN);
    obs(&s, 3 * 60 * MIN + MIN, false); /* the reminder counts from that FIRING */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.kinds[1], LF_NOTIFY_REMINDER);
}

static void test_silence_over_already_announced_incident(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    obs(&s, 0, false);
    assert_int_equal(s.n, 1);
    s.rules.silence_until_ms = T0 + 5 * 60 * MIN; /* silenced from the command line */
    run(&s, MIN, 5 * 60 * MIN, MIN, false);
    assert_int_equal(s.n, 1); /* no reminders */
    obs(&s, 5 * 60 * MIN, false);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.kinds[1], LF_NOTIFY_FIRING); /* one FIRING, not the missed reminders */
}

static void test_resolved_during_silence_reconciled_after(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    obs(&s, 0, false);
    s.rules.silence_until_ms = T0 + 60 * MIN;
    run(&s, MIN, 30 * MIN, MIN, false);
    run(&s, 30 * MIN, 60 * MIN, MIN, true); /* recovered while silenced */
    assert_int_equal(s.n, 1);
    obs(&s, 60 * MIN, true);
    /* the channel was told FIRING: it hears RESOLVED once the silence is over */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.kinds[1], LF_NOTIFY_RESOLVED);
    run(&s, 61 * MIN, 120 * MIN, MIN, true);
    assert_int_equal(s.n, 2);
}

static void test_incident_entirely_inside_silence_sends_nothing(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 1;
    s.rules.silence_until_ms = T0 + 60 * MIN;
    run(&s, 0, 20 * MIN, MIN, false);
    run(&s, 20 * MIN, 120 * MIN, MIN, true);
    assert_int_equal(s.n, 0);
}

static void test_deterministic(void **st)
{
    (void)st;
    struct sim a, b;
    sim_init(&a);
    sim_init(&b);
    uint32_t x = 12345;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        bool ok = (x >> 16) % 3 != 0;
        obs(&a, i * 20 * SEC, ok);
        obs(&b, i * 20 * SEC, ok);
    }
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.kinds, b.kinds, sizeof(a.kinds));
    assert_memory_equal(&a.state, &b.state, sizeof(a.state));
    /* sequence numbers increase by one with every notification */
    for (int i = 0; i < a.n; i++)
        assert_int_equal(a.seqs[i], (uint64_t)i + 1);
}

static void test_state_same(void **st)
{
    (void)st;
    struct sim s;
    sim_init(&s);
    s.rules.pending_count = 2;
    obs(&s, 0, true);
    lf_alert_state a = s.state;
    obs(&s, MIN, true);
    assert_true(lf_alert_state_same(&a, &s.state)); /* only the time moved */
    obs(&s, 2 * MIN, false);
    assert_false(lf_alert_state_same(&a, &s.state)); /* pending */
    obs(&s, 3 * MIN, false);
    a = s.state; /* firing */
    obs(&s, 4 * MIN, false);
    assert_true(lf_alert_state_same(&a, &s.state)); /* firing, no reminder due */
    a.changes_ms[0]++;
    assert_false(lf_alert_state_same(&a, &s.state));
}

static void test_names(void **st)
{
    (void)st;
    for (int k = LF_NOTIFY_FIRING; k <= LF_NOTIFY_FLAP_ENDED; k++)
        assert_int_equal(lf_alert_kind_parse(lf_alert_kind_name(k)), k);
    assert_true(lf_alert_kind_parse("nope") < 0);
    assert_string_equal(lf_alert_status_name(LF_ALERT_PENDING), "pending");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_count_then_one_firing),
        cmocka_unit_test(test_pending_interrupted_sends_nothing),
        cmocka_unit_test(test_pending_duration),
        cmocka_unit_test(test_reminders_once_per_interval_then_resolved),
        cmocka_unit_test(test_no_reminders_when_zero),
        cmocka_unit_test(test_resolved_carries_incident_start),
        cmocka_unit_test(test_replayed_observation_is_ignored),
        cmocka_unit_test(test_flapping_reported_once),
        cmocka_unit_test(test_flap_ends_while_failing_sends_firing),
        cmocka_unit_test(test_flap_detection_off),
        cmocka_unit_test(test_slow_toggling_is_not_flapping),
        cmocka_unit_test(test_silence_suppresses_until_it_ends),
        cmocka_unit_test(test_silence_over_already_announced_incident),
        cmocka_unit_test(test_resolved_during_silence_reconciled_after),
        cmocka_unit_test(test_incident_entirely_inside_silence_sends_nothing),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_state_same),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
