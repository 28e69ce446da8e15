#include "lf_jsconsumer.h"

#include "lf_log.h"

#include <nats/nats.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tracked {
    struct tracked *next;
    unsigned failures; /* extensions that could not be sent, in a row */
    bool lost;
    char receipt[LF_JSQUEUE_RECEIPT_MAX];
} tracked;

struct lf_jsconsumer {
    lf_jetstream *js;
    lf_jsqueue *q;
    uint64_t visibility_ms, wait_ms;
    atomic_bool stopped;
    pthread_mutex_t lock;
    pthread_mutex_t receiving; /* one long poll at a time (lf_jsqueue serialises them anyway) */
    pthread_cond_t wake;
    bool closing;
    atomic_bool closing_flag; /* closing, read by a round without the lock */
    tracked *list;
    pthread_t thread;
};

static tracked *find(lf_jsconsumer *c, const char *receipt, tracked ***link)
{
    for (tracked **p = &c->list; *p; p = &(*p)->next)
        if (strcmp((*p)->receipt, receipt) == 0) {
            if (link)
                *link = p;
            return *p;
        }
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One round of extensions. The receipts are copied out so that no lock is held while the server is
 * asked (a worker acking meanwhile must not wait for the round). "+WPI" is published without a reply
 * subject (the server applies an ack either way and answers only a request, as libnats'
 * natsMsg_InProgress does), so a round costs one round trip, the flush that follows, and not one per
 * message: thousands tracked at a few ms each would outlast the ack wait. While the connection is
 * away nothing is sent (the reconnect buffer would hold stale extensions) and the round counts a
 * miss for each. A round stops early once closing, so that close does not wait for it. */
static void extend_round(lf_jsconsumer *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = 0;
    for (tracked *t = c->list; t; t = t->next)
        n++;
    char (*receipts)[LF_JSQUEUE_RECEIPT_MAX] = n ? malloc(n * sizeof *receipts) : NULL;
    size_t k = 0;
    for (tracked *t = c->list; receipts && t; t = t->next)
        memcpy(receipts[k++], t->receipt, sizeof t->receipt);
    pthread_mutex_unlock(&c->lock);
    if (!k) {
        free(receipts);
        return;
    }
    uint64_t start = now_ms();
    natsConnection *nc = lf_jetstream_nats(c->js);
    natsStatus s = lf_jetstream_connected(c->js) ? NATS_OK : NATS_CONNECTION_DISCONNECTED;
    for (size_t i = 0; s == NATS_OK && i < k; i++) {
        if (atomic_load(&c->closing_flag)) {
            free(receipts);
            return;
        }
        s = natsConnection_PublishString(nc, receipts[i], "+WPI");
    }
    if (s == NATS_OK) {
        /* the server has read everything before the flush's PONG: the extensions arrived. Bounded
         * by half the ack wait, the time left before the next round. */
        int64_t limit = lf_jetstream_timeout_ms(c->js);
        if ((uint64_t)limit > c->visibility_ms / 2)
            limit = (int64_t)(c->visibility_ms / 2);
        s = natsConnection_FlushTimeout(nc, limit > 0 ? limit : 1);
    }
    int rc = s == NATS_OK ? 0 : lf_jetstream_error(s, 0, "extend", NULL);
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < k; i++) {
        tracked *t = find(c, receipts[i], NULL);
        if (!t)
            continue;
        t->failures = rc ? t->failures + 1 : 0;
        /* two missed extensions: the ack wait (twice the interval) has passed without one */
        if (t->failures >= 2 && !t->lost) {
            t->lost = true;
            LF_WARN("jsqueue", "could not extend a tracked message (%s); another parser may get it", lf_strerror(rc));
        }
    }
    pthread_mutex_unlock(&c->lock);
    uint64_t took = now_ms() - start;
    if (took > c->visibility_ms / 4)
        LF_WARN("jsqueue", "extending %zu tracked messages took %llu ms (ack wait %llu ms): the extensions barely "
                           "keep up",
                k, (unsigned long long)took, (unsigned long long)c->visibility_ms);
    free(receipts);
}

static void *extender(void *arg)
{
    lf_jsconsumer *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + c->visibility_ms / 2 * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        int rc = 0;
        while (!c->closing && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        if (c->closing)
            break;
        pthread_mutex_unlock(&c->lock);
        extend_round(c);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int lf_jsconsumer_new(lf_jetstream *js, lf_jsqueue *q, uint64_t visibility_ms, uint64_t wait_ms,
                      lf_jsconsumer **out)
{
    *out = NULL;
    if (!js || !q || visibility_ms < 2 || wait_ms > LF_QUEUE_WAIT_MAX)
        return -EINVAL;
    lf_jsconsumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->js = js;
    c->q = q;
    c->visibility_ms = visibility_ms;
    c->wait_ms = wait_ms;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    ok = ok && pthread_cond_init(&c->wake, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok || pthread_mutex_init(&c->lock, NULL)) {
        free(c);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&c->receiving, NULL)) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -ENOMEM;
    }
    if (pthread_create(&c->thread, NULL, extender, c)) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->receiving);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -EAGAIN;
    }
    *out = c;
    return 0;
}

void lf_jsconsumer_stop(lf_jsconsumer *c)
{
    atomic_store(&c->stopped, true);
}

void lf_jsconsumer_close(lf_jsconsumer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    atomic_store(&c->closing_flag, true);
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    while (c->list) {
        tracked *t = c->list;
        c->list = t->next;
        free(t);
    }
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->receiving);
    pthread_mutex_destroy(&c->lock);
    lf_jsqueue_close(c->q);
    free(c);
}

int lf_jsconsumer_receive(lf_jsconsumer *c, unsigned max, lf_jsqueue_msg **msgs, size_t *n)
{
    *msgs = NULL;
    *n = 0;
    /* checked again once the previous poll ended: with many workers waiting their turn, a stop must
     * not wait for one more poll per worker */
    pthread_mutex_lock(&c->receiving);
    if (atomic_load(&c->stopped)) {
        pthread_mutex_unlock(&c->receiving);
        return LF_ECLOSED;
    }
    lf_buf err = LF_BUF_INIT(1024);
    int rc = lf_jsqueue_receive(c->q, max, c->wait_ms, msgs, n, &err);
    pthread_mutex_unlock(&c->receiving);
    if (rc)
        LF_WARN("jsqueue", "receive: %s", err.data ? err.data : lf_strerror(rc));
    lf_buf_free(&err);
    return rc;
}

bool lf_jsconsumer_connected(lf_jsconsumer *c)
{
    return lf_jetstream_connected(c->js);
}

int lf_jsconsumer_track(lf_jsconsumer *c, const char *receipt)
{
    /* the extender publishes to it: an ack subject only */
    if (!receipt || strlen(receipt) >= LF_JSQUEUE_RECEIPT_MAX || strncmp(receipt, "$JS.ACK.", 8) != 0)
        return -EINVAL;
    tracked *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    memcpy(t->receipt, receipt, strlen(receipt) + 1);
    pthread_mutex_lock(&c->lock);
    if (find(c, receipt, NULL)) {
        free(t);
    } else {
        t->next = c->list;
        c->list = t;
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void lf_jsconsumer_untrack(lf_jsconsumer *c, const char *receipt)
{
    pthread_mutex_lock(&c->lock);
    tracked **link = NULL;
    tracked *t = find(c, receipt, &link);
    if (t) {
        *link = t->next;
        free(t);
    }
    pthread_mutex_unlock(&c->lock);
}

bool lf_jsconsumer_lost(lf_jsconsumer *c, const char *receipt)
{
    pthread_mutex_lock(&c->lock);
    tracked *t = find(c, receipt, NULL);
    bool lost = t && t->lost;
    pthread_mutex_unlock(&c->lock);
    return lost;
}

int lf_jsconsumer_ack(lf_jsconsumer *c, const char *receipt)
{
    lf_jsconsumer_untrack(c, receipt);
    return lf_jsqueue_ack(c->q, receipt, NULL);
}

int lf_jsconsumer_nack(lf_jsconsumer *c, const char *receipt, uint64_t delay_ms)
{
    /* also once stopped: handed back now, another parser need not wait out the ack wait */
    lf_jsconsumer_untrack(c, receipt);
    return lf_jsqueue_nack(c->q, receipt, delay_ms, NULL);
}

int lf_jsconsumer_dead_letter(lf_jsconsumer *c, const lf_jsqueue_msg *m, const char *reason)
{
    lf_jsconsumer_untrack(c, m->receipt);
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_jsqueue_dead_letter(c->q, m, reason, &err);
    if (rc) /* left unacknowledged: it comes back after the ack wait and is tried again */
        LF_WARN("jsqueue", "dead-lettering message %llu: %s", (unsigned long long)m->seq,
                err.data ? err.data : lf_strerror(rc));
    lf_buf_free(&err);
    return rc;
}
