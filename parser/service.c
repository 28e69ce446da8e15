/* The parser daemon: worker threads from queue to MySQL (and Elasticsearch). See service.h. */
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "db_schema.h"
#include "engine.h"
#include "fetch.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_keyring.h"
#include "lf_log.h"
#include "lf_metrics.h"
#include "lf_mysql.h"
#include "loader_es.h"
#include "loader_mysql.h"
#include "logtype.h"
#include "parsed_session.h"
#include "template_share.h"
#include "work_queue.h"

#ifndef LF_VERSION
#define LF_VERSION "dev"
#endif

#define MAX_TYPES 64
#define MAX_RECEIVERS (1 + LF_PARSER_PEERS_MAX)

typedef struct worker {
    lf_parser_service *svc;
    int index;
    pthread_t thread;
    bool started;
    lf_mysql *db;
    lf_parser_fetch *fetch[MAX_RECEIVERS]; /* per receiver (receiver_state), made when first used */
    lf_loader_es *es;
    struct {
        const lf_logtype *type;
        lf_engine *engine;
        uint64_t rev; /* the templates' revision this engine's miner has seen (template_share.h) */
    } engines[MAX_TYPES];
    int n_engines;
    lf_buf scratch;
} worker;

/* Waiting out an outage of something every session needs (MySQL, Elasticsearch, the receiver): the
 * worker keeps its message, which the queue client extends while it is tracked, and retries with
 * backoff. Handing it back instead would count a receive per retry and dead-letter every waiting
 * session after max_receives, so a long outage would empty the queue into the dead-letter queue. */
typedef struct outage {
    long wait_ms;       /* next backoff step, 0 before the first */
    uint64_t warned_ns; /* last log line, so a long outage logs once a minute */
    char said[160];     /* and again at once when the reason changes */
} outage;

/* A receiver sessions are fetched from: [receiver] url (index 0) or one of [receiver] peers. On
 * jetstream, while one is away its sessions are parked (below) rather than held by the workers, so
 * that the sessions of the other receivers keep being parsed. */
typedef struct receiver_state {
    const char *url;
    bool away;
    uint64_t retry_ns; /* CLOCK_MONOTONIC: when one of its parked sessions is tried again */
    outage o;          /* backoff and log lines, as for MySQL */
} receiver_state;

/* A received message set aside while its receiver is away: still tracked (the consumer extends
 * it), so it is neither redelivered nor counted toward max_receives. */
typedef struct parked {
    struct parked *next;
    lf_work_msg m; /* body owned */
    size_t rx;
} parked;

struct lf_parser_service {
    lf_service *service;
    struct lf_parser_config *cfg;
    lf_logtypes types;
    lf_keyring keys;
    lf_work_queue *wq;
    lf_loader_mysql_opts load;
    lf_mysql_options my;
    char host[256];
    atomic_bool stopping;
    worker *workers;
    size_t n_workers;
    lf_counter *c_parsed, *c_events, *c_failed, *c_retried, *c_es_docs;
    lf_metrics *reg;
    lf_es_conn es_conn; /* checked at start; each worker's loader copies it */
    pthread_mutex_t rx_lock; /* receivers' states and the parked sessions */
    bool rx_lock_made;
    receiver_state rx[MAX_RECEIVERS];
    size_t n_rx;
    parked *parked, **parked_tail;
    size_t n_parked;
    size_t n_probing;      /* parked sessions a worker has taken up (take_parked), not yet done */
    uint64_t parked_full_warned_ns; /* the "taking no new message" line, logged once a minute at most */
    lf_gauge *g_parked;
};

void lf_parser_mysql_options(const struct lf_parser_config *cfg, lf_mysql_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = cfg->mysql_socket ? NULL : cfg->mysql_host;
    o->port = (unsigned)cfg->mysql_port;
    o->socket = cfg->mysql_socket;
    o->user = cfg->mysql_user;
    o->password = cfg->mysql_password;
    o->database = cfg->mysql_database;
    o->create_database = true;
    o->tls = cfg->mysql_tls;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The worker's engine for a log type (made the first time; its templates come from MySQL, see
 * sync_templates), and in *slot its place in w->engines. */
static lf_engine *engine_for(worker *w, const char *type_name, int *slot, char *err, size_t errlen)
{
    for (int i = 0; i < w->n_engines; i++)
        if (strcmp(w->engines[i].type->name, type_name) == 0) {
            *slot = i;
            return w->engines[i].engine;
        }
    const lf_logtype *t = lf_logtypes_find(&w->svc->types, type_name);
    if (!t) {
        snprintf(err, errlen, "no log type \"%s\" in the parser's configuration", type_name);
        return NULL;
    }
    if (w->n_engines == MAX_TYPES) {
        snprintf(err, errlen, "more than %d log types in one worker", MAX_TYPES);
        return NULL;
    }
    lf_engine *e = NULL;
    int rc = lf_engine_new(t, NULL, &e, err, errlen);
    if (rc < 0)
        return NULL;
    w->engines[w->n_engines].type = t;
    w->engines[w->n_engines].engine = e;
    w->engines[w->n_engines].rev = 0;
    *slot = w->n_engines++;
    return e;
}

static int ensure_db(worker *w)
{
    if (w->db)
        return 0;
    int rc = lf_mysql_connect(&w->svc->my, &w->db);
    if (rc < 0)
        w->db = NULL;
    return rc;
}

/* Records a failure (best effort: MySQL may be the thing that failed). */
static void record_failure(worker *w, const char *id, unsigned attempt, const char *stage, const char *reason)
{
    LF_WARN("parser", "session %s (receive %u): %s: %s", id, attempt, stage, reason);
    lf_counter_inc(w->svc->c_failed);
    if (ensure_db(w) == 0) {
        int rc = lf_loader_mysql_record_failure(w->db, id, attempt, stage, reason, w->svc->host);
        if (rc < 0)
            LF_WARN("parser", "session %s: recording the failure: %s", id, lf_strerror(rc));
    }
}

static void give_back(lf_parser_service *s, const lf_work_msg *m, uint64_t delay_ms)
{
    /* NATS away: the nack would wait out the request timeout (5 s, each) and fail; the message comes
     * back after its ack wait anyway, as the warning below says, once no longer extended */
    if (!lf_work_queue_connected(s->wq)) {
        lf_work_queue_untrack(s->wq, m->receipt);
        LF_DEBUG("parser", "nack %s: the queue is away (it comes back after its visibility timeout)", m->receipt);
        return;
    }
    int rc = lf_work_queue_nack(s->wq, m->receipt, delay_ms);
    if (rc < 0 && rc != LF_ECLOSED)
        LF_WARN("parser", "nack %s: %s (it comes back after its visibility timeout)", m->receipt, lf_strerror(rc));
}

static void hand_back(worker *w, const lf_work_msg *m, uint64_t delay_ms)
{
    give_back(w->svc, m, delay_ms);
}

static bool mysql_away(int rc)
{
    return rc == -ECONNRESET || rc == -ETIMEDOUT;
}

/* Whether a new reason says what the logged one said, numbers aside (which event, how many bytes),
 * as far as the logged one was kept. */
static bool same_reason(const char *said, const char *why)
{
    char cut[sizeof ((outage *)0)->said];
    snprintf(cut, sizeof cut, "%s", why); /* cut as said was */
    const char *a = said, *b = cut;
    for (;;) {
        while (*a >= '0' && *a <= '9')
            a++;
        while (*b >= '0' && *b <= '9')
            b++;
        if (*a != *b)
            return false;
        if (!*a)
            return true;
        a++, b++;
    }
}

/* The next backoff step of o for reason why (o->wait_ms: 0.5 s doubling up to nack_delay, at least
 * 1 s); true when it is to be logged: the first time, once a minute, and when the reason changes. */
static bool outage_step(const lf_parser_service *s, outage *o, const char *why)
{
    long cap_ms = s->cfg->nack_delay_ms > 1000 ? (long)s->cfg->nack_delay_ms : 1000;
    o->wait_ms = o->wait_ms == 0 ? 500 : (o->wait_ms * 2 > cap_ms ? cap_ms : o->wait_ms * 2);
    uint64_t now = mono_ns();
    if (o->warned_ns != 0 && now - o->warned_ns <= 60ULL * 1000000000ULL && same_reason(o->said, why))
        return false;
    snprintf(o->said, sizeof o->said, "%.*s", (int)sizeof o->said - 1, why);
    o->warned_ns = now;
    return true;
}

/* Logs (outage_step) and sleeps the next backoff step. False once the service is stopping: the
 * caller gives the message back. */
static bool outage_wait_as(worker *w, outage *o, const char *id, const char *what, const char *why, bool refusing)
{
    lf_parser_service *s = w->svc;
    if (atomic_load(&s->stopping))
        return false;
    if (outage_step(s, o, why)) {
        if (refusing)
            LF_ERROR("parser", "session %s: %s refuses it: %s; holding it until that is fixed", id, what, why);
        else
            LF_WARN("parser", "session %s: %s is unavailable (%s); holding it until %s is back", id, what, why, what);
    }
    lf_counter_inc(s->c_retried);
    for (long t = 0; t < o->wait_ms / 100 && !atomic_load(&s->stopping); t++)
        sleep_ms(100);
    return !atomic_load(&s->stopping);
}

static bool outage_wait(worker *w, outage *o, const char *id, const char *what, const char *why)
{
    return outage_wait_as(w, o, id, what, why, false);
}

/* ---- the receivers a session may be fetched from (jetstream: the one a message names) ---- */

static bool same_url(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    while (na && a[na - 1] == '/')
        na--;
    while (nb && b[nb - 1] == '/')
        nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

/* The receiver a message names: 0 when it names none ([receiver] url), -1 when it names one this
 * parser was not given, which must never see the worker token. */
static int receiver_of(const lf_parser_service *s, const char *origin)
{
    if (!origin[0])
        return 0;
    for (size_t i = 0; i < s->n_rx; i++)
        if (same_url(s->rx[i].url, origin))
            return (int)i;
    return -1;
}

static lf_parser_fetch *fetcher(worker *w, size_t rx)
{
    const struct lf_parser_config *cfg = w->svc->cfg;
    if (!w->fetch[rx] &&
        lf_parser_fetch_new(w->svc->rx[rx].url, cfg->receiver_token, &w->svc->keys, cfg->max_log_size, &w->fetch[rx]) < 0)
        w->fetch[rx] = NULL;
    return w->fetch[rx];
}

/* Whether receiver rx may be asked now: it is not away, or its next try is due, which this caller
 * then makes (the one after it is a backoff step later). */
static bool receiver_due(lf_parser_service *s, size_t rx)
{
    receiver_state *r = &s->rx[rx];
    pthread_mutex_lock(&s->rx_lock);
    uint64_t now = mono_ns();
    bool due = !r->away || now >= r->retry_ns;
    if (r->away && due)
        r->retry_ns = now + (uint64_t)r->o.wait_ms * 1000000ULL;
    pthread_mutex_unlock(&s->rx_lock);
    return due;
}

/* Marks receiver rx away: its next try one backoff step (as outage_wait's) from now; logged as
 * outage_wait does. */
static void receiver_away(worker *w, size_t rx, const char *id, const char *why)
{
    lf_parser_service *s = w->svc;
    receiver_state *r = &s->rx[rx];
    /* what failed, without the session's URL, so that one outage logs once and not once per session */
    const char *blob = strstr(why, "/blob: ");
    why = blob ? blob + 7 : why;
    pthread_mutex_lock(&s->rx_lock);
    bool say = outage_step(s, &r->o, why);
    r->away = true;
    r->retry_ns = mono_ns() + (uint64_t)r->o.wait_ms * 1000000ULL;
    pthread_mutex_unlock(&s->rx_lock);
    if (say)
        LF_WARN("parser", "session %s: the receiver %s is unavailable (%s); its sessions wait until it is back", id,
                r->url, why);
    lf_counter_inc(s->c_retried);
}

static void receiver_back(lf_parser_service *s, size_t rx)
{
    receiver_state *r = &s->rx[rx];
    pthread_mutex_lock(&s->rx_lock);
    bool was_away = r->away;
    r->away = false;
    r->o = (outage){0};
    pthread_mutex_unlock(&s->rx_lock);
    if (was_away)
        LF_INFO("parser", "the receiver %s is back; the sessions waiting for it are parsed now", r->url);
}

/* Whether [receiver] max_waiting_sessions are set aside (those being tried again included): workers
 * then take no new message (worker_main), rather than each holding one it cannot set aside, which
 * would leave no worker for the sessions whose receiver is back. So at most that many plus one per
 * worker are in flight (a worker may have received one just before the list filled), which keeps
 * the parsers together below the consumer's max_ack_pending, past which JetStream delivers to none. */
static bool parked_full(lf_parser_service *s)
{
    pthread_mutex_lock(&s->rx_lock);
    size_t n = s->n_parked + s->n_probing;
    bool full = n >= s->cfg->max_waiting_sessions;
    uint64_t now = mono_ns();
    bool say = full && (s->parked_full_warned_ns == 0 || now - s->parked_full_warned_ns > 60ULL * 1000000000ULL);
    if (say)
        s->parked_full_warned_ns = now;
    pthread_mutex_unlock(&s->rx_lock);
    if (say)
        LF_WARN("parser", "%zu sessions wait for receivers that are away ([receiver] max_waiting_sessions); taking no "
                          "new message until one of them is parsed", n);
    return full;
}

/* Sets m aside (a copy) until receiver rx is back; false when out of memory or when, past
 * max_waiting_sessions, one more per worker is set aside already (a worker received its message
 * before the list filled; never expected). */
static bool park(lf_parser_service *s, const lf_work_msg *m, size_t rx)
{
    parked *p = calloc(1, sizeof *p);
    char *body = p ? malloc(m->len + 1) : NULL;
    if (!body) {
        free(p);
        return false;
    }
    memcpy(body, m->body, m->len + 1);
    p->m = *m;
    p->m.body = body;
    p->rx = rx;
    pthread_mutex_lock(&s->rx_lock);
    bool ok = s->n_parked < s->cfg->max_waiting_sessions + s->n_workers;
    if (ok) {
        *s->parked_tail = p;
        s->parked_tail = &p->next;
        s->n_parked++;
        if (s->g_parked)
            lf_gauge_set(s->g_parked, (double)s->n_parked);
    }
    pthread_mutex_unlock(&s->rx_lock);
    if (!ok) {
        free(body);
        free(p);
    }
    return ok;
}

/* The oldest parked session whose receiver is back or due for a try (which the caller makes, then
 * counts done: n_probing). */
static parked *take_parked(lf_parser_service *s)
{
    pthread_mutex_lock(&s->rx_lock);
    uint64_t now = mono_ns();
    parked *p = NULL;
    for (parked **link = &s->parked; *link; link = &(*link)->next) {
        receiver_state *r = &s->rx[(*link)->rx];
        if (r->away && now < r->retry_ns)
            continue;
        p = *link;
        *link = p->next;
        if (s->parked_tail == &p->next)
            s->parked_tail = link;
        if (r->away)
            r->retry_ns = now + (uint64_t)r->o.wait_ms * 1000000ULL;
        s->n_parked--;
        s->n_probing++;
        if (s->g_parked)
            lf_gauge_set(s->g_parked, (double)s->n_parked);
        break;
    }
    pthread_mutex_unlock(&s->rx_lock);
    return p;
}

/* jetstream: fetches session id from receiver rx (probe: the try is already claimed, see
 * take_parked). While that receiver is away the message is parked, still tracked, and 1 returned;
 * when it cannot be (park) the worker holds it here instead. Otherwise 0, with *rc and fr as
 * lf_parser_fetch_session's (fr->away once stopping). */
static int fetch_named(worker *w, const lf_work_msg *m, size_t rx, bool probe, const char *id, int fd,
                       lf_manifest *man, lf_parser_fetch_result *fr, int *rc)
{
    lf_parser_service *s = w->svc;
    outage hold = {0};
    for (;;) {
        if (!probe && !receiver_due(s, rx)) {
            if (park(s, m, rx))
                return 1;
            if (!outage_wait(w, &hold, id, s->rx[rx].url, "too many sessions waiting for receivers")) {
                fr->away = true;
                *rc = LF_ECLOSED;
                return 0;
            }
            continue;
        }
        probe = false;
        lf_parser_fetch *f = fetcher(w, rx);
        if (!f) {
            fr->stage = "fetch";
            fr->transient = true;
            snprintf(fr->reason, sizeof fr->reason, "no memory for a client of %s", s->rx[rx].url);
            *rc = -ENOMEM;
            return 0;
        }
        *rc = lf_parser_fetch_session(f, id, fd, man, fr);
        if (*rc < 0 && fr->away) {
            receiver_away(w, rx, id, fr->reason);
            lf_manifest_free(man);
            *fr = (lf_parser_fetch_result){0};
            if (atomic_load(&s->stopping)) {
                fr->away = true;
                *rc = LF_ECLOSED;
                return 0;
            }
            continue; /* parked by the next round */
        }
        receiver_back(s, rx);
        return 0;
    }
}

/* Counts and says what Elasticsearch can never index of this session (the session is acked). */
static void report_es_refusals(worker *w, const char *id, unsigned receive_count, const lf_loader_es_result *er)
{
    lf_parser_service *s = w->svc;
    for (size_t i = 0; i < er->n_refusal_types; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "reason=\"%s\"", er->refusals[i].type);
        lf_counter *c = lf_metrics_counter(s->reg, "lf_parser_es_refused_total",
                                           "Events Elasticsearch can never index as they are, by error type (they "
                                           "are in MySQL; the session's parse_failures row says why)",
                                           labels);
        if (c)
            lf_counter_add(c, er->refusals[i].count);
    }
    LF_WARN("parser", "session %s: %llu of its events can never be indexed into Elasticsearch (first: %s)", id,
            (unsigned long long)er->refused, er->reason);
    record_failure(w, id, receive_count, "index", er->reason);
}

/* Loads the session's rows, holding it while MySQL is away (no connection, or the connection
 * lost). Returns 0, the last error of a load refused or retried out for another reason
 * (deadlocks), or the outage's error once stopping. */
static int load_through_outage(worker *w, const lf_psession *ps, lf_miner *shared, const char *id, int *attempts)
{
    lf_parser_service *s = w->svc;
    outage o = {0};
    for (;;) {
        int rc = ensure_db(w);
        if (rc == 0) {
            uint64_t rev = 0;
            rc = lf_loader_mysql_load_retry_shared(w->db, ps, shared, &s->load, &w->scratch, attempts, &rev);
            if (rc == 0)
                lf_miner_commit(shared, rev); /* the miner's changes are in MySQL now */
            if (rc == 0 || !mysql_away(rc))
                return rc;
            lf_mysql_close(w->db); /* start the next attempt on a new connection */
            w->db = NULL;
        }
        if (!outage_wait(w, &o, id, "MySQL", lf_strerror(rc)))
            return rc;
    }
}

/* Brings the engine's templates up to what the other parsers stored (template_share.h) before it
 * mines a session, holding the session while MySQL is away as the load does. 0, or the outage's error
 * once stopping, or another MySQL error (the session is then parsed with the templates it has, and
 * the merges of the next sync reconcile them). */
static int sync_templates(worker *w, int slot, const char *id)
{
    outage o = {0};
    for (;;) {
        int rc = ensure_db(w);
        if (rc == 0) {
            rc = lf_template_share_sync(w->db, lf_engine_miner(w->engines[slot].engine), w->engines[slot].type->name,
                                        &w->engines[slot].rev);
            if (rc == 0 || !mysql_away(rc))
                return rc;
            lf_mysql_close(w->db);
            w->db = NULL;
        }
        if (!outage_wait(w, &o, id, "MySQL", lf_strerror(rc)))
            return rc;
    }
}

/* probe: m was parked, and this is its receiver's claimed try (take_parked). */
static void process(worker *w, const lf_work_msg *m, bool probe)
{
    lf_parser_service *s = w->svc;
    const struct lf_parser_config *cfg = s->cfg;
    char id[LF_SESSION_ID_LEN + 1];
    if (!lf_session_id_valid(m->body, m->len)) {
        LF_ERROR("parser", "message %lld is not a session id; handing it back (it will be dead-lettered)",
                 (long long)m->id);
        hand_back(w, m, cfg->failure_delay_ms);
        return;
    }
    memcpy(id, m->body, LF_SESSION_ID_LEN + 1);
    int rx = receiver_of(s, m->origin);
    if (rx < 0) {
        char reason[LF_JSQUEUE_REASON_MAX];
        snprintf(reason, sizeof reason, "receiver %s is not in [receiver] url or peers", m->origin);
        record_failure(w, id, m->receive_count, "fetch", reason);
        int drc = lf_work_queue_dead_letter(s->wq, m, reason);
        (void)drc; /* logged there; a message not moved comes back after the ack wait */
        return;
    }
    int trc = lf_work_queue_track(s->wq, m->receipt);
    if (trc != 0) { /* untracked, its visibility would lapse during a long parse */
        LF_ERROR("parser", "session %s: cannot keep the message invisible (%s); handing it back", id,
                 lf_strerror(trc));
        hand_back(w, m, cfg->failure_delay_ms);
        return;
    }

    int fd = memfd_create("lf-session-log", MFD_CLOEXEC);
    if (fd < 0) {
        LF_ERROR("parser", "memfd_create: %s", strerror(errno));
        hand_back(w, m, cfg->nack_delay_ms);
        return;
    }
    lf_psession ps;
    lf_parser_fetch_result fr = {0};
    if (lf_psession_init(&ps) < 0) {
        close(fd);
        hand_back(w, m, cfg->nack_delay_ms);
        return;
    }
    lf_manifest_free(&ps.manifest);
    int rc;
    if (lf_work_queue_names_receiver(s->wq)) {
        if (fetch_named(w, m, (size_t)rx, probe, id, fd, &ps.manifest, &fr, &rc) == 1) {
            /* parked: still tracked, taken up again once its receiver is back */
            lf_psession_free(&ps);
            close(fd);
            return;
        }
    } else {
        outage fetch_wait = {0};
        while ((rc = lf_parser_fetch_session(w->fetch[0], id, fd, &ps.manifest, &fr)) < 0 && fr.away &&
               outage_wait(w, &fetch_wait, id, "the receiver", fr.reason)) {
            lf_manifest_free(&ps.manifest);
            fr = (lf_parser_fetch_result){0};
        }
    }
    if (rc < 0) {
        if (fr.away) { /* stopping */
            hand_back(w, m, 0);
        } else if (fr.transient) {
            LF_WARN("parser", "session %s: %s: %s; trying again later", id, fr.stage, fr.reason);
            lf_counter_inc(s->c_retried);
            hand_back(w, m, cfg->nack_delay_ms);
        } else {
            record_failure(w, id, m->receive_count, fr.stage, fr.reason);
            hand_back(w, m, cfg->failure_delay_ms);
        }
        goto out;
    }
    if (strcmp(ps.manifest.session_id, id) != 0) {
        char reason[128];
        snprintf(reason, sizeof reason, "the archive's manifest names session %s", ps.manifest.session_id);
        record_failure(w, id, m->receive_count, "archive", reason);
        hand_back(w, m, cfg->failure_delay_ms);
        goto out;
    }
    char err[512] = "";
    int slot = 0;
    lf_engine *e = engine_for(w, ps.manifest.log_type, &slot, err, sizeof err);
    if (!e) {
        record_failure(w, id, m->receive_count, "parse", err);
        hand_back(w, m, cfg->failure_delay_ms);
        goto out;
    }
    if ((rc = sync_templates(w, slot, id)) < 0) {
        if (atomic_load(&s->stopping)) {
            hand_back(w, m, 0);
            goto out;
        }
        LF_WARN("parser", "session %s: reading the shared templates: %s (%s); parsing with the ones this worker has",
                id, lf_strerror(rc), w->db ? lf_mysql_error(w->db) : "");
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || (rc = lf_psession_parse(&ps, e, fd, cfg->max_events)) < 0) {
        snprintf(err, sizeof err, "parsing the log: %s", lf_strerror(rc < 0 ? rc : -errno));
        record_failure(w, id, m->receive_count, "parse", err);
        hand_back(w, m, cfg->failure_delay_ms);
        goto out;
    }
    ps.received_ms = m->sent_ms;
    int attempts = 0;
    rc = load_through_outage(w, &ps, lf_engine_miner(e), id, &attempts);
    if (rc < 0 && atomic_load(&s->stopping)) {
        hand_back(w, m, 0);
        goto out;
    }
    if (rc < 0) {
        if (lf_mysql_retryable(rc) || rc == -ETIMEDOUT) {
            LF_WARN("parser", "session %s: loading MySQL failed %d times (%s); trying again later", id, attempts,
                    lf_strerror(rc));
            lf_counter_inc(s->c_retried);
            hand_back(w, m, cfg->nack_delay_ms);
        } else {
            snprintf(err, sizeof err, "MySQL refused the rows: %s", lf_mysql_error(w->db));
            record_failure(w, id, m->receive_count, "load", err);
            hand_back(w, m, cfg->failure_delay_ms);
        }
        goto out;
    }
    if (w->es) {
        /* the rows are in MySQL already; the documents' ids make indexing them again harmless */
        /* held while Elasticsearch is away and while it refuses until something is fixed
         * (credentials, privileges, index creation): only events it can never index are given up */
        lf_loader_es_result er;
        outage es_wait = {0};
        do {
            er = (lf_loader_es_result){0};
            rc = lf_loader_es_load(w->es, &ps, &er);
            lf_counter_add(s->c_es_docs, er.indexed);
        } while (rc < 0 && outage_wait_as(w, &es_wait, id, "Elasticsearch", er.reason, rc == LF_ECONFIG));
        if (rc < 0) { /* stopping */
            hand_back(w, m, 0);
            goto out;
        }
        if (er.refused)
            report_es_refusals(w, id, m->receive_count, &er);
    }
    lf_counter_inc(s->c_parsed);
    lf_counter_add(s->c_events, ps.n_events);
    LF_DEBUG("parser", "session %s: %zu events loaded", id, ps.n_events);
    if ((rc = lf_work_queue_ack(s->wq, m->receipt)) < 0)
        LF_WARN("parser", "ack %s: %s (the session will be loaded again, idempotently)", id, lf_strerror(rc));
out:
    lf_work_queue_untrack(s->wq, m->receipt);
    lf_psession_free(&ps);
    close(fd);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    lf_parser_service *s = w->svc;
    int backoff = 0;
    while (!atomic_load(&s->stopping)) {
        /* sessions whose receiver is back first: they were received before anything the queue has */
        parked *p = take_parked(s);
        if (p) {
            process(w, &p->m, true);
            free(p->m.body);
            free(p);
            pthread_mutex_lock(&s->rx_lock);
            s->n_probing--;
            pthread_mutex_unlock(&s->rx_lock);
            continue;
        }
        if (lf_work_queue_names_receiver(s->wq) && parked_full(s)) {
            /* until a set-aside session's receiver is due (take_parked) */
            for (int t = 0; t < 2 && !atomic_load(&s->stopping); t++)
                sleep_ms(100);
            continue;
        }
        lf_work_msg *msgs = NULL;
        size_t n = 0;
        int rc = lf_work_queue_receive(s->wq, 1, &msgs, &n);
        if (rc == LF_ECLOSED)
            break;
        if (rc < 0) {
            LF_ERROR("parser", "receiving from the queue: %s", lf_strerror(rc));
            backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 1000;
            for (int t = 0; t < backoff / 100 && !atomic_load(&s->stopping); t++)
                sleep_ms(100);
            continue;
        }
        backoff = 0;
        for (size_t i = 0; i < n; i++)
            process(w, &msgs[i], false);
        lf_work_queue_msgs_free(msgs, n);
    }
    return NULL;
}

static void worker_free(worker *w)
{
    for (int i = 0; i < w->n_engines; i++)
        lf_engine_free(w->engines[i].engine); /* their templates are in MySQL */
    w->n_engines = 0;
    if (w->db)
        lf_mysql_close(w->db);
    for (size_t i = 0; i < MAX_RECEIVERS; i++)
        lf_parser_fetch_free(w->fetch[i]);
    lf_loader_es_free(w->es);
    lf_buf_free(&w->scratch);
}

int lf_parser_service_start(lf_service *svc, lf_parser_service **out)
{
    struct lf_parser_config *cfg = lf_service_config_data(svc);
    lf_parser_service *s = lf_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->service = svc;
    s->cfg = cfg;
    if (pthread_mutex_init(&s->rx_lock, NULL) != 0) {
        lf_free(s);
        return -ENOMEM;
    }
    s->rx_lock_made = true;
    s->parked_tail = &s->parked;
    s->rx[s->n_rx++].url = cfg->receiver_url;
    for (size_t i = 0; cfg->receiver_peers && cfg->receiver_peers[i] && s->n_rx < MAX_RECEIVERS; i++)
        s->rx[s->n_rx++].url = cfg->receiver_peers[i];
    lf_keyring_init(&s->keys);
    if (gethostname(s->host, sizeof s->host - 1) != 0)
        snprintf(s->host, sizeof s->host, "unknown");
    lf_loader_mysql_opts_default(&s->load);
    s->load.method = (lf_load_method)cfg->load_method;
    s->load.parser_version = "logferry-parser " LF_VERSION;
    lf_parser_mysql_options(cfg, &s->my);
    if (cfg->templates_dir)
        LF_WARN("parser", "[parser] templates_dir is no longer used (templates are kept in MySQL and shared by "
                          "every parser); remove it from the configuration");
    if (cfg->receiver_peers && cfg->receiver_peers[0] && cfg->js.backend != LF_QUEUE_BACKEND_JETSTREAM)
        LF_WARN("parser", "[receiver] peers is used only with [queue] backend = jetstream (the embedded queue's "
                          "sessions are all fetched from [receiver] url)");
    char err[512] = "";
    int rc = lf_logtypes_load(&s->types, lf_service_config_path(svc), err, sizeof err);
    if (rc < 0) {
        LF_ERROR("parser", "log types: %s", err[0] ? err : lf_strerror(rc));
        goto fail;
    }
    rc = lf_keyring_load(&s->keys, cfg->keys_dir, true, err, sizeof err);
    if (rc < 0) {
        LF_ERROR("parser", "keyring %s: %s", cfg->keys_dir, err[0] ? err : lf_strerror(rc));
        goto fail;
    }
    /* the schema is the program's: migrate before the first load (other parsers wait on the lock) */
    lf_mysql *db = NULL;
    rc = lf_mysql_connect(&s->my, &db);
    if (rc == 0) {
        unsigned applied = 0;
        rc = lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied);
        if (rc < 0)
            LF_ERROR("parser", "migrating the database: %s", lf_mysql_error(db));
        else if (applied)
            LF_INFO("parser", "database migrated: %u migrations applied", applied);
        lf_mysql_close(db);
        if (rc < 0)
            goto fail;
    } else {
        /* not fatal: workers connect when MySQL is back (and migrate then via the next start) */
        LF_WARN("parser", "MySQL not reachable at start (%s); sessions wait in the queue", lf_strerror(rc));
    }
    lf_buf qwhy = LF_BUF_INIT(1024);
    rc = lf_work_queue_open(cfg, &s->wq, &qwhy);
    if (rc < 0)
        LF_ERROR("parser", "queue (%s backend): %s", lf_queue_backends[cfg->js.backend],
                 qwhy.data ? qwhy.data : lf_strerror(rc));
    lf_buf_free(&qwhy);
    if (rc < 0)
        goto fail;
    lf_metrics *reg = s->reg = lf_service_metrics(svc);
    if (cfg->es_url) {
        lf_buf why = LF_BUF_INIT(512);
        rc = lf_es_conn_init(&s->es_conn, cfg->es_url, &cfg->es_auth, &why);
        if (rc != 0)
            LF_ERROR("parser", "[elasticsearch]: %s", rc == -ENOMEM ? "out of memory" : lf_buf_cstr(&why));
        lf_buf_free(&why);
        if (rc != 0)
            goto fail;
    }
    s->c_parsed = lf_metrics_counter(reg, "lf_parser_sessions_total", "Sessions parsed and loaded", NULL);
    s->c_events = lf_metrics_counter(reg, "lf_parser_events_total", "Events loaded into MySQL", NULL);
    s->c_failed = lf_metrics_counter(reg, "lf_parser_failures_total", "Sessions that failed (parse_failures rows)", NULL);
    s->c_retried = lf_metrics_counter(reg, "lf_parser_retries_total", "Retries after a passing failure: a session handed back, or a wait for MySQL, Elasticsearch or the receiver", NULL);
    s->g_parked = lf_metrics_gauge(reg, "lf_parser_sessions_waiting_for_receiver",
                                   "Sessions set aside until the receiver storing them is back (jetstream)", NULL);
    s->c_es_docs = lf_metrics_counter(reg, "lf_parser_es_documents_total", "Events indexed into Elasticsearch", NULL);
    s->workers = lf_calloc(cfg->workers, sizeof *s->workers);
    if (!s->workers) {
        rc = -ENOMEM;
        goto fail;
    }
    s->n_workers = cfg->workers;
    for (size_t i = 0; i < s->n_workers; i++) {
        worker *w = &s->workers[i];
        w->svc = s;
        w->index = (int)i;
        lf_buf_init(&w->scratch, SIZE_MAX / 4);
        rc = lf_parser_fetch_new(cfg->receiver_url, cfg->receiver_token, &s->keys, cfg->max_log_size, &w->fetch[0]);
        if (rc == 0 && cfg->es_url)
            rc = lf_loader_es_new(&s->es_conn, cfg->es_index_prefix, (size_t)cfg->es_bulk_bytes, &w->es);
        if (rc == 0 && pthread_create(&w->thread, NULL, worker_main, w) != 0)
            rc = -EAGAIN;
        if (rc < 0)
            goto fail;
        w->started = true;
    }
    LF_INFO("parser", "%zu workers on queue %s at %s (%s loading%s)", s->n_workers, cfg->queue_name, lf_work_queue_where(s->wq),
            lf_parser_load_methods[cfg->load_method], cfg->es_url ? ", Elasticsearch indexing" : "");
    *out = s;
    return 0;
fail:
    lf_parser_service_stop(s);
    return rc < 0 ? rc : LF_ECONFIG;
}

void lf_parser_service_stop(lf_parser_service *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    if (s->wq)
        lf_work_queue_stop(s->wq);
    for (size_t i = 0; i < s->n_workers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
        if (s->workers[i].svc)
            worker_free(&s->workers[i]);
    }
    lf_free(s->workers);
    /* handed back now, so that another parser need not wait out the ack wait; not while NATS is away
     * (give_back), where each would wait the request timeout, nor past a few seconds in all (NATS
     * lost meanwhile): the ack wait gives them back */
    uint64_t give_back_until = mono_ns() + 3000000000ULL;
    for (parked *p = s->parked, *next; p; p = next) {
        next = p->next;
        if (s->wq && mono_ns() < give_back_until)
            give_back(s, &p->m, 0);
        free(p->m.body);
        free(p);
    }
    s->parked = NULL;
    if (s->rx_lock_made)
        pthread_mutex_destroy(&s->rx_lock);
    lf_work_queue_close(s->wq, 5000);
    lf_logtypes_free(&s->types);
    lf_keyring_free(&s->keys);
    lf_es_conn_free(&s->es_conn);
    lf_free(s);
}
