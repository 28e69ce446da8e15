#include "lf_jsconsumer.h"

#include "lf_log.h"

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
    lf_jsqueue *q;
    uint64_t visibility_ms, wait_ms;
    atomic_bool stopped;
    pthread_mutex_t lock;
    pthread_mutex_t receiving; /* one long poll at a time (lf_jsqueue serialises them anyway) */
    pthread_cond_t wake;
    bool closing;
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

/* One round of extensions. The receipts are copied out so that no lock is held while the server is
 * asked (a worker acking meanwhile must not wait for the round). */
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
    for (size_t i = 0; i < k; i++) {
        int rc = lf_jsqueue_extend(c->q, receipts[i], NULL);
        pthread_mutex_lock(&c->lock);
        tracked *t = find(c, receipts[i], NULL);
        if (t) {
            t->failures = rc ? t->failures + 1 : 0;
            /* two missed extensions: the ack wait (twice the interval) has passed without one */
            if (t->failures >= 2 && !t->lost) {
                t->lost = true;
                LF_WARN("jsqueue", "could not extend a tracked message (%s); another parser may get it", lf_strerror(rc));
            }
        }
        pthread_mutex_unlock(&c->lock);
    }
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

int lf_jsconsumer_new(lf_jsqueue *q, uint64_t visibility_ms, uint64_t wait_ms, lf_jsconsumer **out)
{
    *out = NULL;
    if (!q || visibility_ms < 2 || wait_ms > LF_QUEUE_WAIT_MAX)
        return -EINVAL;
    lf_jsconsumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
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

int lf_jsconsumer_track(lf_jsconsumer *c, const char *receipt)
{
    if (!receipt || strlen(receipt) >= LF_JSQUEUE_RECEIPT_MAX)
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
