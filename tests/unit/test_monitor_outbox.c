/* The durable outbox: restarts neither lose nor repeat, 429 bursts lose nothing, grouping, silences. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "lf_error.h"
#include "lf_test_http_server.h"
#include "monitor_engine.h"
#include "lf_http_client.h"
#include "monitor_cli.h"
#include "outbox.h"
#include "slack_send.h"

#define T0 1763776800000LL
#define SEC 1000LL
#define MINUTE (60 * SEC)

/* A webhook endpoint in memory: answers from a script, records what it accepted. */
struct fake_slack {
    int script[64];          /* statuses to answer, in order; then 200 */
    int64_t retry_after[64];
    int n_script;
    int calls;
    int accepted;            /* messages answered 200 */
    char seen[512][96];      /* "check/TITLE" of every accepted attachment */
    int n_seen;
    int attachments_per_message[256];
    char routes[256][64]; /* the route of each accepted message ("" for the default webhook) */
};

static int fake_send(const char *body, size_t len, const char *route, void *ctx, int *status, int64_t *retry_after)
{
    struct fake_slack *f = ctx;
    assert_int_equal(strlen(body), len);
    json_t *root = json_loads(body, 0, NULL);
    assert_non_null(root);
    int i = f->calls++;
    *status = i < f->n_script ? f->script[i] : 200;
    *retry_after = i < f->n_script ? f->retry_after[i] : 0;
    if (*status == -1) { /* scripted transport failure */
        *status = 0;
        json_decref(root);
        return -ECONNREFUSED;
    }
    if (*status == 200) {
        json_t *atts = json_object_get(root, "attachments");
        snprintf(f->routes[f->accepted], sizeof f->routes[0], "%s", route ? route : "");
        f->attachments_per_message[f->accepted++] = (int)json_array_size(atts);
        for (size_t k = 0; k < json_array_size(atts); k++) {
            assert_true(f->n_seen < 512);
            snprintf(f->seen[f->n_seen++], sizeof(f->seen[0]), "%s",
                     json_string_value(json_object_get(json_array_get(atts, k), "title")));
        }
    }
    json_decref(root);
    return 0;
}

static char db_path[256];

static int setup(void **st)
{
    (void)st;
    snprintf(db_path, sizeof(db_path), "/tmp/lf-test-outbox-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(db_path);
    assert_true(fd >= 0);
    close(fd);
    unlink(db_path);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char p[300];
    unlink(db_path);
    snprintf(p, sizeof(p), "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", db_path);
    unlink(p);
    return 0;
}

static lf_outbox *open_outbox(void)
{
    lf_outbox_options o = {.group_window_ms = 10 * SEC, .backoff_base_ms = 5 * SEC, .backoff_max_ms = 10 * MINUTE,
                           .jitter_seed = 42};
    lf_outbox *ob = NULL;
    assert_int_equal(lf_outbox_open(db_path, &o, &ob), 0);
    return ob;
}

static const lf_alert_rules rules = {.pending_count = 3, .reminder_ms = 60 * MINUTE, .flap_window_ms = 30 * MINUTE,
                                     .flap_threshold = 6};

static int observe(lf_outbox *ob, const char *check, int64_t t, bool ok)
{
    lf_alert_observation o = {.time_ms = T0 + t, .ok = ok, .value = ok ? "0 s" : "900 s",
                              .threshold = "< 600 s", .message = ok ? "parser is progressing" : "parser stalled"};
    int n = -1;
    assert_int_equal(lf_outbox_observe(ob, check, &rules, &o, &n), 0);
    return n;
}

static int64_t undelivered(lf_outbox *ob)
{
    int64_t n = -1;
    assert_int_equal(lf_outbox_undelivered(ob, &n), 0);
    return n;
}

/* The parser stops: one FIRING after the pending period, reminders, one RESOLVED. */
static void test_incident_end_to_end(void **st)
{
    (void)st;
    lf_outbox *ob = open_outbox();
    struct fake_slack f = {0};
    int enq = 0;
    for (int64_t t = 0; t < 150 * MINUTE; t += MINUTE) {
        enq += observe(ob, "parser_progress", t, false);
        assert_true(lf_outbox_deliver_due(ob, T0 + t, "mon", fake_send, &f, 10) >= 0);
    }
    for (int64_t t = 150 * MINUTE; t < 160 * MINUTE; t += MINUTE) {
        enq += observe(ob, "parser_progress", t, true);
        assert_true(lf_outbox_deliver_due(ob, T0 + t, "mon", fake_send, &f, 10) >= 0);
    }
    /* FIRING at 2 min, reminders at 62 and 122, RESOLVED at 150 */
    assert_int_equal(enq, 4);
    assert_int_equal(f.accepted, 4);
    assert_string_equal(f.seen[0], "FIRING: parser_progress");
    assert_string_equal(f.seen[1], "STILL FAILING: parser_progress");
    assert_string_equal(f.seen[2], "STILL FAILING: parser_progress");
    assert_string_equal(f.seen[3], "RESOLVED: parser_progress");
    assert_int_equal(undelivered(ob), 0);
    lf_alert_state s;
    assert_int_equal(lf_outbox_get_state(ob, "parser_progress", &s), 0);
    assert_int_equal(s.status, LF_ALERT_OK);
    assert_int_equal(lf_outbox_get_state(ob, "other", &s), -ENOENT);
    lf_outbox_close(ob);
}

/* Restart in the middle of an incident: reopen the file and feed the same observations again. */
static void test_restart_sends_no_duplicate(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 10 * MINUTE; t += MINUTE) {
        observe(ob, "queue", t, false);
        lf_outbox_deliver_due(ob, T0 + t, "mon", fake_send, &f, 10);
    }
    assert_int_equal(f.accepted, 1); /* the FIRING */
    lf_outbox_close(ob);

    ob = open_outbox();
    int enq = 0;
    for (int64_t t = 0; t < 10 * MINUTE; t += MINUTE) /* a replay of what the old process saw */
        enq += observe(ob, "queue", t, false);
    for (int64_t t = 10 * MINUTE; t < 40 * MINUTE; t += MINUTE) /* and the incident goes on */
        enq += observe(ob, "queue", t, false);
    assert_int_equal(enq, 0);
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 40 * MINUTE, "mon", fake_send, &f, 10), 0);
    assert_int_equal(f.accepted, 1);
    /* the reminder is due 60 minutes after the FIRING (at 2 min), not after the restart */
    assert_int_equal(observe(ob, "queue", 62 * MINUTE, false), 1);
    lf_outbox_close(ob);
}

/* Enqueued but not yet sent when the process stopped: sent once after the restart. */
static void test_undelivered_survive_restart(void **st)
{
    (void)st;
    struct fake_slack f = {.n_script = 1, .script = {503}};
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 3 * MINUTE; t += MINUTE)
        observe(ob, "disk_root", t, false);
    /* one failed attempt before the "crash" */
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 2 * MINUTE + 10 * SEC, "mon", fake_send, &f, 10), 0);
    assert_int_equal(undelivered(ob), 1);
    lf_outbox_close(ob);

    ob = open_outbox();
    assert_int_equal(undelivered(ob), 1);
    int64_t due = 0;
    assert_int_equal(lf_outbox_next_due(ob, &due), 0);
    assert_true(due > T0 + 2 * MINUTE + 10 * SEC);
    assert_int_equal(lf_outbox_deliver_due(ob, due, "mon", fake_send, &f, 10), 1);
    assert_int_equal(lf_outbox_deliver_due(ob, due + MINUTE, "mon", fake_send, &f, 10), 0);
    assert_int_equal(f.accepted, 1);
    assert_string_equal(f.seen[0], "FIRING: disk_root");
    assert_int_equal(undelivered(ob), 0);
    assert_int_equal(lf_outbox_next_due(ob, &due), -ENOENT);
    lf_outbox_close(ob);
}

/* A failure inside the transaction leaves neither the state change nor the notification. */
static void test_state_and_notification_are_atomic(void **st)
{
    (void)st;
    lf_outbox *ob = open_outbox();
    observe(ob, "mysql", 0, false);
    observe(ob, "mysql", MINUTE, false);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER boom BEFORE INSERT ON notification "
                                  "BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    lf_alert_observation o = {.time_ms = T0 + 2 * MINUTE, .ok = false, .message = "down"};
    int n = -1;
    assert_int_equal(lf_outbox_observe(ob, "mysql", &rules, &o, &n), LF_EDB);
    assert_int_equal(n, 0);
    lf_alert_state s;
    assert_int_equal(lf_outbox_get_state(ob, "mysql", &s), 0);
    assert_int_equal(s.status, LF_ALERT_PENDING); /* not FIRING: the step was rolled back */
    assert_int_equal(s.fail_count, 2);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(lf_outbox_observe(ob, "mysql", &rules, &o, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(undelivered(ob), 1);
    lf_outbox_close(ob);
}

/* A burst of 429s: each retry waits exactly Retry-After; every notification arrives once. */
/* A damaged state row does not stop the check: it starts afresh, numbering after its past. */
static void test_corrupt_state_recovers(void **st)
{
    (void)st;
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 3 * MINUTE; t += MINUTE)
        observe(ob, "es", t, false);
    observe(ob, "es", 3 * MINUTE, true); /* FIRING seq 1, RESOLVED seq 2 */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE alert_state SET state = '{not json'", NULL, NULL, NULL), SQLITE_OK);
    lf_alert_state s;
    assert_int_equal(lf_outbox_get_state(ob, "es", &s), LF_ECORRUPT);
    int enq = 0;
    for (int64_t t = 10 * MINUTE; t < 13 * MINUTE; t += MINUTE)
        enq += observe(ob, "es", t, false);
    assert_int_equal(enq, 1);
    assert_int_equal(lf_outbox_get_state(ob, "es", &s), 0);
    assert_int_equal(s.seq, 3);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(seq) FROM notification WHERE check_name = 'es'", -1,
                                        &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 3);
    assert_int_equal(sqlite3_column_int(q, 1), 3);
    sqlite3_finalize(q);
    sqlite3_close(db);
    lf_outbox_close(ob);
}

static int64_t stored_at(const char *check)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT updated_ms FROM alert_state WHERE check_name = ?", -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, check, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* A healthy check, and a firing one between reminders, cost no write per run. */
static void test_steady_state_is_not_rewritten(void **st)
{
    (void)st;
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 30 * MINUTE; t += MINUTE)
        observe(ob, "disk", t, true);
    assert_int_equal(stored_at("disk"), T0); /* written once, when first seen */
    for (int64_t t = 30 * MINUTE; t < 40 * MINUTE; t += MINUTE)
        observe(ob, "disk", t, false);
    assert_int_equal(stored_at("disk"), T0 + 32 * MINUTE); /* pending counted, then FIRING at 32 */
    assert_int_equal(observe(ob, "disk", 92 * MINUTE, false), 1); /* the reminder is still on time */
    assert_int_equal(stored_at("disk"), T0 + 92 * MINUTE);
    lf_outbox_close(ob);
    /* a restart replaying the unrecorded runs emits nothing */
    ob = open_outbox();
    int enq = 0;
    for (int64_t t = 0; t < 93 * MINUTE; t += MINUTE)
        enq += observe(ob, "disk", t, t < 30 * MINUTE);
    assert_int_equal(enq, 0);
    lf_outbox_close(ob);
}

static void test_429_burst_loses_nothing(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    f.n_script = 8;
    for (int i = 0; i < 8; i++) {
        f.script[i] = 429;
        f.retry_after[i] = (i + 1) * 7 * SEC;
    }
    lf_outbox *ob = open_outbox();
    int enq = 0;
    char name[32];
    /* 30 checks fail at once, then recover 20 minutes later */
    for (int64_t t = 0; t < 3 * MINUTE; t += MINUTE)
        for (int c = 0; c < 30; c++) {
            snprintf(name, sizeof(name), "check_%02d", c);
            enq += observe(ob, name, t, false);
        }
    for (int c = 0; c < 30; c++) {
        snprintf(name, sizeof(name), "check_%02d", c);
        enq += observe(ob, name, 20 * MINUTE, true);
    }
    assert_int_equal(enq, 60);
    int64_t now = T0 + 2 * MINUTE;
    int64_t due = 0;
    assert_int_equal(lf_outbox_next_due(ob, &due), 0);
    assert_int_equal(due, T0 + 2 * MINUTE + 10 * SEC); /* grouping window */
    now = due;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(lf_outbox_deliver_due(ob, now, "mon", fake_send, &f, 10), 0);
        assert_int_equal(f.calls, i + 1);
        assert_int_equal(lf_outbox_next_due(ob, &due), 0);
        assert_int_equal(due, now + (i + 1) * 7 * SEC); /* Retry-After honoured exactly */
        /* nothing is sent early */
        assert_int_equal(lf_outbox_deliver_due(ob, due - 1, "mon", fake_send, &f, 10), 0);
        assert_int_equal(f.calls, i + 1);
        now = due;
    }
    int delivered = 0;
    for (int round = 0; round < 50 && undelivered(ob) > 0; round++) {
        int r = lf_outbox_deliver_due(ob, now, "mon", fake_send, &f, 100);
        assert_true(r >= 0);
        delivered += r;
        now += 30 * SEC;
        if (now < T0 + 21 * MINUTE)
            now = T0 + 21 * MINUTE;
    }
    assert_int_equal(undelivered(ob), 0);
    assert_int_equal(delivered, 4); /* 30 FIRINGs in 20 + 10, 30 RESOLVEDs in 20 + 10 */
    assert_int_equal(f.accepted, 4);
    assert_int_equal(f.n_seen, 60);
    /* each check: exactly one FIRING then one RESOLVED, in that order */
    for (int c = 0; c < 30; c++) {
        char firing[96], resolved[96];
        snprintf(firing, sizeof(firing), "FIRING: check_%02d", c);
        snprintf(resolved, sizeof(resolved), "RESOLVED: check_%02d", c);
        int fi = -1, ri = -1, count = 0;
        for (int k = 0; k < f.n_seen; k++) {
            if (strcmp(f.seen[k], firing) == 0)
                fi = k, count++;
            if (strcmp(f.seen[k], resolved) == 0)
                ri = k, count++;
        }
        assert_int_equal(count, 2);
        assert_true(fi >= 0 && ri > fi);
    }
    /* 30 FIRINGs in groups of at most 20 */
    assert_int_equal(f.attachments_per_message[0], 20);
    assert_int_equal(f.attachments_per_message[1], 10);
    lf_outbox_close(ob);
}

/* Other failures back off exponentially with jitter, capped; nothing is dropped. */
static void test_backoff_with_jitter(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    f.n_script = 12;
    for (int i = 0; i < 12; i++)
        f.script[i] = i % 3 == 0 ? -1 : 500;
    f.script[5] = 429; /* without Retry-After: backoff too */
    lf_outbox *ob = open_outbox();
    observe(ob, "es", 0, false);
    observe(ob, "es", MINUTE, false);
    observe(ob, "es", 2 * MINUTE, false);
    int64_t now = T0 + 3 * MINUTE;
    int64_t expect = 5 * SEC;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(lf_outbox_deliver_due(ob, now, "mon", fake_send, &f, 10), 0);
        int64_t due = 0;
        assert_int_equal(lf_outbox_next_due(ob, &due), 0);
        int64_t delay = due - now;
        assert_true(delay >= expect / 2);
        assert_true(delay <= expect);
        expect = expect * 2 > 10 * MINUTE ? 10 * MINUTE : expect * 2;
        now = due;
    }
    assert_int_equal(lf_outbox_deliver_due(ob, now, "mon", fake_send, &f, 10), 1);
    assert_int_equal(f.accepted, 1);
    lf_outbox_close(ob);
}

static void test_grouping_window(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    lf_outbox *ob = open_outbox();
    lf_alert_rules now_rules = rules;
    now_rules.pending_count = 1;
    const char *names[] = {"a", "b", "c", "d"};
    int64_t at[] = {0, 2 * SEC, 9 * SEC, 15 * SEC};
    for (int i = 0; i < 4; i++) {
        lf_alert_observation o = {.time_ms = T0 + at[i], .ok = false, .message = "x"};
        int n = 0;
        assert_int_equal(lf_outbox_observe(ob, names[i], &now_rules, &o, &n), 0);
        assert_int_equal(n, 1);
    }
    /* the head waits for its window */
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 9 * SEC, "mon", fake_send, &f, 10), 0);
    assert_int_equal(f.calls, 0);
    lf_outbox_batch b;
    assert_int_equal(lf_outbox_next_batch(ob, T0 + 10 * SEC, &b), 3);
    assert_string_equal(b.items[0].check, "a");
    assert_string_equal(b.items[2].check, "c");
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 10 * SEC, "mon", fake_send, &f, 10), 1);
    assert_int_equal(f.attachments_per_message[0], 3);
    /* d (15 s) is outside a's window: its own message at 25 s */
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 24 * SEC, "mon", fake_send, &f, 10), 0);
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 25 * SEC, "mon", fake_send, &f, 10), 1);
    assert_int_equal(f.attachments_per_message[1], 1);
    assert_string_equal(f.seen[3], "FIRING: d");
    lf_outbox_close(ob);
}

/* Checks routed to their own webhook: one message per webhook, each check's notifications in
 * order, the default webhook for the rest. */
static const char *test_route_of(void *arg, const char *check)
{
    (void)arg;
    return strcmp(check, "b") == 0 || strcmp(check, "d") == 0 ? "https://hooks.example.test/team-b" : NULL;
}

static void test_routes_by_check(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    lf_outbox *ob = open_outbox();
    lf_slack_links links = {.route_of = test_route_of};
    lf_outbox_set_links(ob, &links);
    lf_alert_rules now_rules = rules;
    now_rules.pending_count = 1;
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        lf_alert_observation o = {.time_ms = T0 + i * SEC, .ok = false, .message = "x"};
        int n = 0;
        assert_int_equal(lf_outbox_observe(ob, names[i], &now_rules, &o, &n), 0);
    }
    lf_outbox_batch b;
    assert_int_equal(lf_outbox_next_batch(ob, T0 + 10 * SEC, &b), 2); /* a and c: the default webhook */
    assert_string_equal(b.items[0].check, "a");
    assert_string_equal(b.items[1].check, "c");
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 20 * SEC, "mon", fake_send, &f, 10), 2);
    assert_int_equal(f.accepted, 2);
    assert_string_equal(f.routes[0], "");
    assert_int_equal(f.attachments_per_message[0], 2);
    assert_string_equal(f.routes[1], "https://hooks.example.test/team-b");
    assert_int_equal(f.attachments_per_message[1], 2);
    assert_string_equal(f.seen[2], "FIRING: b");
    assert_string_equal(f.seen[3], "FIRING: d");
    lf_outbox_close(ob);
}

struct status_rows {
    int n;
    char names[8][32];
    int64_t until[8];
    int64_t waiting[8];
    int status[8];
};

static int collect_status(const lf_outbox_status_row *row, void *ctx)
{
    struct status_rows *r = ctx;
    assert_true(r->n < 8);
    snprintf(r->names[r->n], sizeof(r->names[0]), "%s", row->check);
    r->until[r->n] = row->silence_until_ms;
    r->waiting[r->n] = row->undelivered;
    r->status[r->n] = row->has_state ? row->state.status : -1;
    r->n++;
    return 0;
}

static void test_silence_and_status(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    lf_outbox *ob = open_outbox();
    assert_int_equal(lf_outbox_silence(ob, "parser", T0 + 2 * 60 * MINUTE, "ops", "deploying", T0), 0);
    int64_t until = 0;
    assert_int_equal(lf_outbox_silence_until(ob, "parser", T0, &until), 0);
    assert_int_equal(until, T0 + 2 * 60 * MINUTE);
    assert_int_equal(lf_outbox_silence_until(ob, "parser", T0 + 3 * 60 * MINUTE, &until), 0);
    assert_int_equal(until, 0);
    int enq = 0;
    for (int64_t t = 0; t < 2 * 60 * MINUTE; t += MINUTE)
        enq += observe(ob, "parser", t, false);
    assert_int_equal(enq, 0); /* silenced: nothing, not even reminders */
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 2 * 60 * MINUTE, "mon", fake_send, &f, 10), 0);
    assert_int_equal(observe(ob, "parser", 2 * 60 * MINUTE, false), 1); /* silence over: one FIRING */
    assert_int_equal(observe(ob, "parser", 2 * 60 * MINUTE + MINUTE, false), 0);

    /* silence everything, then lift it early */
    assert_int_equal(lf_outbox_silence(ob, LF_OUTBOX_ALL_CHECKS, T0 + 10 * 60 * MINUTE, "ops", NULL, T0), 0);
    for (int64_t t = 0; t < 5 * MINUTE; t += MINUTE)
        assert_int_equal(observe(ob, "queue", t, false), 0);
    assert_int_equal(lf_outbox_unsilence(ob, LF_OUTBOX_ALL_CHECKS), 0);
    assert_int_equal(lf_outbox_unsilence(ob, LF_OUTBOX_ALL_CHECKS), -ENOENT);
    assert_int_equal(observe(ob, "queue", 5 * MINUTE, false), 1);
    assert_int_equal(lf_outbox_silence(ob, "disk", T0 + 60 * MINUTE, NULL, NULL, T0), 0);

    struct status_rows r = {0};
    assert_int_equal(lf_outbox_foreach_status(ob, T0 + 3 * 60 * MINUTE, collect_status, &r), 0);
    assert_int_equal(r.n, 2); /* disk's silence has ended by then and it has no state */
    assert_string_equal(r.names[0], "parser");
    assert_string_equal(r.names[1], "queue");
    assert_int_equal(r.status[0], LF_ALERT_FIRING);
    assert_int_equal(r.waiting[0], 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(lf_outbox_foreach_status(ob, T0, collect_status, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.names[0], "disk");
    assert_int_equal(r.until[0], T0 + 60 * MINUTE);
    assert_int_equal(r.status[0], -1);
    assert_int_equal(r.until[1], T0 + 2 * 60 * MINUTE);

    assert_int_equal(lf_outbox_silence(ob, "", T0, NULL, NULL, T0), -EINVAL);
    lf_alert_observation o = {.time_ms = T0, .ok = true};
    assert_int_equal(lf_outbox_observe(ob, LF_OUTBOX_ALL_CHECKS, &rules, &o, NULL), -EINVAL);
    lf_outbox_close(ob);
}

static void test_prune(void **st)
{
    (void)st;
    struct fake_slack f = {0};
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 3 * MINUTE; t += MINUTE)
        observe(ob, "x", t, false);
    observe(ob, "y", 0, false);
    assert_int_equal(lf_outbox_deliver_due(ob, T0 + 3 * MINUTE, "mon", fake_send, &f, 10), 1);
    assert_int_equal(lf_outbox_silence(ob, "x", T0 + MINUTE, NULL, NULL, T0), 0);
    assert_int_equal(lf_outbox_prune(ob, T0 + 4 * MINUTE), 2); /* the delivered FIRING and the silence */
    assert_int_equal(lf_outbox_prune(ob, T0 + 4 * MINUTE), 0);
    lf_outbox_close(ob);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The whole path over loopback HTTP: a burst of 429s with Retry-After, then a 500; the grouped
 * message arrives exactly once and not before the server allowed it. */
static void test_webhook_over_http_429_burst(void **st)
{
    (void)st;
    struct lf_test_http_server *srv = calloc(1, sizeof(*srv));
    assert_non_null(srv);
    int script[] = {429, 429, 429, 500};
    int ra[] = {1, 1, 1, -1};
    for (int i = 0; i < 4; i++) {
        srv->statuses[i] = script[i];
        srv->retry_after_s[i] = ra[i];
    }
    srv->n_script = 4;
    lf_test_http_server_start(srv);
    lf_http_client *http = NULL;
    assert_int_equal(lf_http_client_new(NULL, NULL, &http), 0);
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/services/T000/B000/secret", srv->port);
    lf_slack_sender sender = {http, url, 5000};

    lf_outbox_options o = {.group_window_ms = -1, .backoff_base_ms = 200, .backoff_max_ms = 1000, .jitter_seed = 7};
    lf_outbox *ob = NULL;
    assert_int_equal(lf_outbox_open(db_path, &o, &ob), 0);
    lf_alert_rules r1 = rules;
    r1.pending_count = 1;
    int64_t start = wall_ms();
    const char *names[] = {"receiver_healthz", "parser_progress", "root_disk"};
    for (int i = 0; i < 3; i++) {
        lf_alert_observation ob_ = {.time_ms = start, .ok = false, .value = "v", .message = "down"};
        int n = 0;
        assert_int_equal(lf_outbox_observe(ob, names[i], &r1, &ob_, &n), 0);
        assert_int_equal(n, 1);
    }
    int64_t retry_at[8] = {0};
    int failures = 0;
    for (int round = 0; round < 60 && undelivered(ob) > 0; round++) {
        int64_t now = wall_ms();
        assert_true(now - start < 20000);
        int before = srv->n_requests;
        assert_true(lf_outbox_deliver_due(ob, now, "mon-host", lf_slack_send, &sender, 10) >= 0);
        if (srv->n_requests > before && undelivered(ob) > 0) {
            int64_t due = 0;
            assert_int_equal(lf_outbox_next_due(ob, &due), 0);
            retry_at[failures++] = due - now;
        }
        int64_t due = 0;
        if (lf_outbox_next_due(ob, &due) == 0 && due > wall_ms()) {
            int64_t wait = due - wall_ms();
            usleep((useconds_t)((wait > 2000 ? 2000 : wait) * 1000 + 1000));
        }
    }
    assert_int_equal(undelivered(ob), 0);
    assert_int_equal(failures, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(retry_at[i], 1000); /* Retry-After: 1, exactly */
    /* the 500 is the fourth attempt: backoff 200 ms * 2^3, capped at 1 s, with equal jitter */
    assert_true(retry_at[3] >= 500 && retry_at[3] <= 1000);
    assert_true(wall_ms() - start >= 3000);
    assert_int_equal(srv->n_requests, 5);
    assert_int_equal(srv->n_ok, 1);
    for (int i = 0; i < 3; i++)
        assert_non_null(strstr(srv->bodies[0], names[i])); /* one message, all three */
    json_t *root = json_loads(srv->bodies[0], 0, NULL);
    assert_non_null(root);
    assert_int_equal(json_array_size(json_object_get(root, "attachments")), 3);
    json_decref(root);

    /* heartbeat: 2xx is fine, anything else is an error */
    char hb[96];
    snprintf(hb, sizeof(hb), "http://127.0.0.1:%d/ping/abc", srv->port);
    assert_int_equal(lf_slack_heartbeat(http, hb, 2000), 0);
    pthread_mutex_lock(&srv->mu);
    srv->statuses[6] = 404; /* the next request is the seventh */
    srv->retry_after_s[6] = -1;
    srv->n_script = 7;
    pthread_mutex_unlock(&srv->mu);
    assert_int_equal(lf_slack_heartbeat(http, hb, 2000), LF_EHTTP);

    lf_outbox_close(ob);
    lf_test_http_server_stop(srv);
    free(srv);

    /* nobody listening: a transport error, status 0 */
    int status = -1;
    int64_t retry = -1;
    assert_true(lf_slack_send("{}", 2, NULL, &sender, &status, &retry) < 0);
    assert_int_equal(status, 0);
    assert_true(lf_slack_heartbeat(http, hb, 2000) < 0);
    lf_slack_sender none = {http, NULL, 0};
    assert_int_equal(lf_slack_send("{}", 2, NULL, &none, &status, &retry), -EINVAL);
    lf_http_client_close(http, NULL, NULL);
}

/* silence / unsilence / status as the command line runs them. */
static int cli(const char *line, char **outp, char **errp)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", line);
    char *argv[16];
    int argc = 0;
    for (char *tok = strtok(buf, " "); tok && argc < 16; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(outp, &ol), *err = open_memstream(errp, &el);
    int rc = lf_monitor_cli_run(db_path, argc, argv, T0, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

static void set_answer(struct lf_test_http_server *srv, int slot, const char *body)
{
    pthread_mutex_lock(&srv->mu);
    srv->body_for_path[slot][1] = body;
    pthread_mutex_unlock(&srv->mu);
}

static int webhook_posts(struct lf_test_http_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    int n = srv->n_ok;
    pthread_mutex_unlock(&srv->mu);
    return n;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void run_loop_for(uv_loop_t *loop, int64_t ms)
{
    int64_t end = wall_ms() + ms;
    uv_timer_t tick; /* keeps uv_run from blocking past the end */
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, (uint64_t)ms, 0);
    while (wall_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop until the webhook has received n posts, for at most max_ms. */
static void run_loop_until_posts(uv_loop_t *loop, struct lf_test_http_server *srv, int n, int64_t max_ms)
{
    for (int64_t waited = 0; waited < max_ms && webhook_posts(srv) < n; waited += 100)
        run_loop_for(loop, 100);
}

static void on_stopped(void *arg)
{
    *(int *)arg = 1;
}

static void stop_engine(uv_loop_t *loop, lf_monitor_engine *eng)
{
    int stopped = 0;
    lf_monitor_engine_stop(eng, on_stopped, &stopped);
    for (int i = 0; i < 1000 && !stopped; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(stopped);
}

/* The whole monitor on a loop: the service goes down -> exactly one FIRING; the monitor restarts in
 * the middle of the incident -> nothing repeated; the service is back -> exactly one RESOLVED. */
static void test_engine_incident_with_restart(void **st)
{
    (void)st;
    struct lf_test_http_server *srv = calloc(1, sizeof(*srv));
    assert_non_null(srv);
    srv->body_for_path[0][0] = "/healthz";
    srv->body_for_path[0][1] = "{\"status\":\"ok\"}";
    lf_test_http_server_start(srv);
    char health[96], hook[96], ping[96];
    snprintf(health, sizeof(health), "http://127.0.0.1:%d/healthz", srv->port);
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/services/T/B/secret", srv->port);
    snprintf(ping, sizeof(ping), "http://127.0.0.1:%d/ping", srv->port);
    lf_check_config check;
    memset(&check, 0, sizeof(check));
    check.name = "receiver_healthz";
    check.kind = LF_CHECK_HEALTHZ;
    check.enabled = true;
    check.url = health;
    check.interval_ms = 200;
    check.timeout_ms = 150;
    check.pending_count = 2;
    check.flap_window_ms = 60000;
    lf_monitor_engine_opts o = {
        .checks = &check,
        .n_checks = 1,
        .outbox_path = db_path,
        .outbox = {.group_window_ms = -1, .backoff_base_ms = 100, .backoff_max_ms = 500, .jitter_seed = 3},
        .webhook_url = hook,
        .slack_timeout_ms = 2000,
        .heartbeat_url = ping,
        .heartbeat_interval_ms = 200,
        .host = "mon-test",
        .delivery_poll_ms = 50,
    };
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    o.loop = &loop;
    lf_monitor_engine *eng = NULL;
    lf_monitor_engine_opts bad = o;
    bad.outbox_path = "";
    assert_int_equal(lf_monitor_engine_start(&bad, &eng), -EINVAL);
    bad.outbox_path = "/nonexistent-dir/monitor.db";
    assert_true(lf_monitor_engine_start(&bad, &eng) < 0);
    assert_null(eng);
    assert_int_equal(lf_monitor_engine_start(&o, &eng), 0);
    run_loop_for(&loop, 800);
    assert_int_equal(webhook_posts(srv), 0);
    lf_monitor_engine_stats stats;
    lf_monitor_engine_stats_get(eng, &stats);
    assert_true(stats.checks_run >= 2);
    assert_int_equal(stats.checks_failed, 0);
    assert_true(stats.heartbeats_ok >= 1);

    set_answer(srv, 0, "{\"status\":\"failing\"}");
    run_loop_until_posts(&loop, srv, 1, 5000);
    run_loop_for(&loop, 600); /* and nothing more while it keeps failing */
    assert_int_equal(webhook_posts(srv), 1);
    assert_non_null(strstr(srv->bodies[0], "FIRING: receiver_healthz"));
    assert_non_null(strstr(srv->bodies[0], "mon-test"));
    lf_monitor_engine_stats_get(eng, &stats);
    assert_true(stats.checks_failed >= 3);
    assert_int_equal(stats.notifications, 1);
    assert_int_equal(stats.messages_sent, 1);
    stop_engine(&loop, eng);

    /* a new process, same outbox file, same incident */
    eng = NULL;
    assert_int_equal(lf_monitor_engine_start(&o, &eng), 0);
    run_loop_for(&loop, 1000);
    assert_int_equal(webhook_posts(srv), 1);
    set_answer(srv, 0, "{\"status\":\"ok\"}");
    run_loop_until_posts(&loop, srv, 2, 5000);
    run_loop_for(&loop, 600);
    assert_int_equal(webhook_posts(srv), 2);
    assert_non_null(strstr(srv->bodies[1], "RESOLVED: receiver_healthz"));
    stop_engine(&loop, eng);
    assert_int_equal(uv_loop_close(&loop), 0); /* every handle was closed */
    lf_test_http_server_stop(srv);
    free(srv);
}

static void test_cli(void **st)
{
    (void)st;
    char *o = NULL, *e = NULL;
    assert_true(lf_monitor_cli_is_command("silence"));
    assert_false(lf_monitor_cli_is_command("run"));
    assert_int_equal(cli("status", &o, &e), 0);
    assert_non_null(strstr(o, "no check has run yet"));
    free(o), free(e);
    assert_int_equal(cli("silence parser_progress 2h deploying parser 1.4", &o, &e), 0);
    assert_string_equal(o, "parser_progress silenced until 2025-11-22 04:00:00 UTC (2h 0m)\n");
    free(o), free(e);
    assert_int_equal(cli("silence parser_progress soon", &o, &e), 2);
    assert_non_null(strstr(e, "not a duration"));
    free(o), free(e);
    assert_int_equal(cli("silence <!channel> 1h", &o, &e), 2);
    free(o), free(e);
    assert_int_equal(cli("silence x", &o, &e), 2);
    free(o), free(e);
    assert_int_equal(cli("frobnicate", &o, &e), 2);
    free(o), free(e);

    /* the daemon side sees the silence */
    lf_outbox *ob = open_outbox();
    for (int64_t t = 0; t < 5 * MINUTE; t += MINUTE)
        assert_int_equal(observe(ob, "parser_progress", t, false), 0);
    for (int64_t t = 0; t < 3 * MINUTE; t += MINUTE)
        observe(ob, "root_disk", t, false);
    lf_outbox_close(ob);

    assert_int_equal(cli("status", &o, &e), 0);
    assert_non_null(strstr(o, "parser_progress"));
    assert_non_null(strstr(o, "firing"));
    assert_non_null(strstr(o, "deploying parser 1.4"));
    assert_non_null(strstr(o, "root_disk"));
    assert_non_null(strstr(o, "1 notification(s) waiting for Slack"));
    free(o), free(e);

    assert_int_equal(cli("unsilence parser_progress", &o, &e), 0);
    free(o), free(e);
    assert_int_equal(cli("unsilence parser_progress", &o, &e), 1);
    assert_non_null(strstr(e, "has no silence"));
    free(o), free(e);
    ob = open_outbox();
    assert_int_equal(observe(ob, "parser_progress", 5 * MINUTE, false), 1); /* one FIRING once lifted */
    lf_outbox_close(ob);
}

/* The daemon starting while `logferry-monitor status` opens, reads and closes the same database, as
 * an operator's watch loop or a test polling the status does, from the moment it is created: every
 * open must succeed. Two connections turning a new database to WAL at once get SQLITE_BUSY at once,
 * without the busy timeout (integration.test_receiver_jetstream's monitor failed to start so). */
static void test_open_while_status_polls(void **st)
{
    (void)st;
    enum { ROUNDS = 200, POLLERS = 2, POLLS = 3, OPENS = 2 };
    for (int round = 0; round < ROUNDS; round++) {
        teardown(NULL); /* a database nobody has made yet */
        pid_t kids[POLLERS];
        for (int k = 0; k < POLLERS; k++) {
            kids[k] = fork();
            assert_true(kids[k] >= 0);
            if (kids[k] == 0) {
                int bad = 0;
                for (int i = 0; i < POLLS; i++) {
                    lf_outbox *ob = NULL;
                    if (lf_outbox_open(db_path, NULL, &ob) != 0) {
                        bad = 1;
                        continue;
                    }
                    int64_t until;
                    bad |= lf_outbox_silence_until(ob, "x", T0, &until) != 0;
                    lf_outbox_close(ob);
                }
                _exit(bad);
            }
        }
        for (int i = 0; i < OPENS; i++) {
            lf_outbox *ob = NULL;
            assert_int_equal(lf_outbox_open(db_path, NULL, &ob), 0);
            lf_outbox_close(ob);
        }
        int failed = 0;
        for (int k = 0; k < POLLERS; k++) {
            int status = 0;
            assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
            failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert_int_equal(failed, 0);
    }
}

static void test_open_failure(void **st)
{
    (void)st;
    lf_outbox *ob = NULL;
    assert_true(lf_outbox_open("/nonexistent-dir/x/outbox.db", NULL, &ob) < 0);
    assert_null(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incident_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_sends_no_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undelivered_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_and_notification_are_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_state_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steady_state_is_not_rewritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_burst_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_with_jitter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grouping_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_by_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_over_http_429_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_incident_with_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_while_status_polls, setup, teardown),
        cmocka_unit_test(test_open_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
