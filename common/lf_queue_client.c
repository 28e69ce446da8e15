/* The receiver's queue API from a worker's side (see lf_queue_client.h). */
#include "lf_queue_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_http_client.h"
#include "lf_json.h"
#include "lf_log.h"

#define POOL_MAX 16
#define PENDING_MAX (LF_QUEUE_ACK_MAX * 10)

typedef struct tracked {
    char receipt[LF_QUEUE_RECEIPT_MAX];
    int64_t next_ms;
    bool lost;
    bool busy; /* an extend request for it is in flight */
} tracked;

struct lf_queue_client {
    lf_queue_client_opts o;
    char *base_url, *token, *queue;
    char auth_header[512];
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* wakes the background thread */
    pthread_cond_t done_cv; /* acks answered, stop */
    pthread_t thread;
    bool thread_started, stopping, closing;
    lf_http_client *pool[POOL_MAX];
    size_t n_pool;
    /* acks waiting to be sent, and the batch being sent */
    char (*pending)[LF_QUEUE_RECEIPT_MAX];
    size_t n_pending;
    int64_t oldest_pending_ms;
    size_t sending;
    tracked *tracked;
    size_t n_tracked, cap_tracked;
    lf_queue_client_stats st;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void lf_queue_client_opts_default(lf_queue_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->base_url = "http://127.0.0.1:8440";
    o->queue = "sessions";
    o->wait_s = 10;
    o->visibility_s = 60;
    o->ack_batch_max = 100;
    o->ack_delay_ms = 20;
    o->backoff_base_ms = 100;
    o->backoff_max_ms = 5000;
    o->request_timeout_ms = 30000;
}

/* Full jitter: uniform in [0, min(max, base * 2^(n-1))]. */
static long backoff_ms(const lf_queue_client_opts *o, int n)
{
    long cap = o->backoff_base_ms;
    for (int i = 1; i < n && cap < o->backoff_max_ms; i++)
        cap *= 2;
    if (cap > o->backoff_max_ms)
        cap = o->backoff_max_ms;
    uint32_t r;
    randombytes_buf(&r, sizeof r);
    return cap > 0 ? (long)(r % (uint32_t)(cap + 1)) : 0;
}

/* Sleeps up to ms unless stopped (on qc->cv). Returns true when stopping. Called with mu held. */
static bool wait_or_stop(lf_queue_client *qc, long ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    while (!qc->stopping) {
        if (pthread_cond_timedwait(&qc->done_cv, &qc->mu, &ts) == ETIMEDOUT)
            break;
    }
    return qc->stopping;
}

static lf_http_client *take_client(lf_queue_client *qc)
{
    pthread_mutex_lock(&qc->mu);
    lf_http_client *c = qc->n_pool ? qc->pool[--qc->n_pool] : NULL;
    pthread_mutex_unlock(&qc->mu);
    if (c)
        return c;
    lf_http_client_opts ho;
    lf_http_client_opts_default(&ho);
    ho.max_attempts = 1; /* this module retries with its own policy */
    ho.connect_timeout_ms = 5000;
    ho.max_connections = 2;
    if (lf_http_client_new(NULL, &ho, &c) < 0)
        return NULL;
    return c;
}

static void give_client(lf_queue_client *qc, lf_http_client *c)
{
    pthread_mutex_lock(&qc->mu);
    if (qc->n_pool < POOL_MAX) {
        qc->pool[qc->n_pool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&qc->mu);
    if (c)
        lf_http_client_close(c, NULL, NULL);
}

/* One POST with a JSON body. Returns < 0 for transport errors, else the HTTP status (body in resp). */
static int post(lf_queue_client *qc, const char *op, json_t *body, long timeout_ms, lf_http_response *resp)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/queues/%s/%s", qc->base_url, qc->queue, op);
    lf_buf b = LF_BUF_INIT(1 << 20);
    int rc = lf_json_dump(body, &b);
    if (rc < 0) {
        lf_buf_free(&b);
        memset(resp, 0, sizeof *resp);
        return rc;
    }
    const char *headers[3] = {"Content-Type: application/json", qc->token ? qc->auth_header : NULL, NULL};
    lf_http_client_request req = {.method = "POST", .url = url, .headers = headers, .body = b.data, .body_len = b.len,
                           .timeout_ms = timeout_ms};
    lf_http_client *c = take_client(qc);
    if (!c) {
        lf_buf_free(&b);
        memset(resp, 0, sizeof *resp);
        return -ENOMEM;
    }
    rc = lf_http_client_fetch(c, &req, resp);
    give_client(qc, c);
    lf_buf_free(&b);
    return rc < 0 ? rc : resp->status;
}

static bool transient(int status)
{
    return status < 0 || status == 429 || status == 408 || status >= 500;
}

static int status_error(int status)
{
    if (status == 401 || status == 403)
        return LF_EAUTH;
    if (status == 404)
        return -ENOENT;
    return status < 0 ? status : LF_EHTTP;
}

static int parse_messages(const lf_http_response *r, lf_queue_client_msg **msgs, size_t *n)
{
    json_t *doc = NULL, *arr = NULL;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_json_parse(r->body.data ? r->body.data : "", r->body.len, 1u << 26, &doc, &err);
    lf_buf_free(&err);
    if (rc < 0)
        return LF_EFORMAT;
    if (lf_json_get_array(doc, "messages", &arr) != 0) {
        json_decref(doc);
        return LF_EFORMAT;
    }
    size_t count = json_array_size(arr);
    lf_queue_client_msg *m = count ? lf_calloc(count, sizeof *m) : NULL;
    if (count && !m) {
        json_decref(doc);
        return -ENOMEM;
    }
    rc = 0;
    for (size_t i = 0; i < count && !rc; i++) {
        json_t *jm = json_array_get(arr, i);
        const char *receipt = NULL, *body = NULL;
        int64_t id = 0, sent = 0;
        uint64_t rcount = 0;
        if (lf_json_get_string(jm, "receipt", &receipt) != 0 || strlen(receipt) >= LF_QUEUE_RECEIPT_MAX ||
            lf_json_get_int(jm, "id", &id) != 0 || lf_json_opt_uint(jm, "receive_count", &rcount) != 0 ||
            lf_json_opt_int(jm, "sent_ms", &sent) != 0) {
            rc = LF_EFORMAT;
            break;
        }
        snprintf(m[i].receipt, sizeof m[i].receipt, "%s", receipt);
        m[i].id = id;
        m[i].receive_count = (uint32_t)rcount;
        m[i].sent_ms = sent;
        if (lf_json_opt_string(jm, "body", &body) == 0 && body) {
            m[i].len = json_string_length(json_object_get(jm, "body"));
            m[i].body = lf_malloc(m[i].len + 1);
            if (!m[i].body) {
                rc = -ENOMEM;
                break;
            }
            memcpy(m[i].body, body, m[i].len);
            m[i].body[m[i].len] = '\0';
        } else if (lf_json_opt_string(jm, "body_b64", &body) == 0 && body) {
            size_t cap = strlen(body) + 1;
            m[i].body = lf_malloc(cap);
            size_t out = 0;
            if (!m[i].body) {
                rc = -ENOMEM;
                break;
            }
            if (lf_crypto_b64_decode(m[i].body, cap, &out, body, strlen(body), LF_B64_STANDARD) != 0) {
                rc = LF_EFORMAT;
                break;
            }
            m[i].len = out;
            m[i].body[out] = '\0';
        } else {
            rc = LF_EFORMAT;
        }
    }
    json_decref(doc);
    if (rc) {
        lf_queue_client_msgs_free(m, count);
        return rc;
    }
    *msgs = m;
    *n = count;
    return 0;
}

void lf_queue_client_msgs_free(lf_queue_client_msg *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        lf_free(msgs[i].body);
    lf_free(msgs);
}

static bool is_stopping(lf_queue_client *qc)
{
    pthread_mutex_lock(&qc->mu);
    bool s = qc->stopping;
    pthread_mutex_unlock(&qc->mu);
    return s;
}

static bool sleep_backoff(lf_queue_client *qc, int attempt)
{
    pthread_mutex_lock(&qc->mu);
    bool stop = wait_or_stop(qc, backoff_ms(&qc->o, attempt));
    pthread_mutex_unlock(&qc->mu);
    return stop;
}

int lf_queue_client_receive(lf_queue_client *qc, unsigned max, lf_queue_client_msg **msgs, size_t *n)
{
    *msgs = NULL;
    *n = 0;
    for (int attempt = 1;; attempt++) {
        if (is_stopping(qc))
            return LF_ECLOSED;
        json_t *body = json_pack("{s:I, s:I, s:I}", "max", (json_int_t)max, "wait_s", (json_int_t)qc->o.wait_s,
                                 "visibility_s", (json_int_t)qc->o.visibility_s);
        if (!body)
            return -ENOMEM;
        lf_http_response r;
        int st = post(qc, "receive", body, qc->o.request_timeout_ms + (long)qc->o.wait_s * 1000, &r);
        json_decref(body);
        pthread_mutex_lock(&qc->mu);
        qc->st.receive_requests++;
        pthread_mutex_unlock(&qc->mu);
        if (st == 200) {
            int rc = parse_messages(&r, msgs, n);
            lf_http_response_free(&r);
            pthread_mutex_lock(&qc->mu);
            if (rc == 0)
                qc->st.received += *n;
            pthread_mutex_unlock(&qc->mu);
            return rc;
        }
        lf_http_response_free(&r);
        pthread_mutex_lock(&qc->mu);
        qc->st.receive_failures++;
        pthread_mutex_unlock(&qc->mu);
        if (!transient(st))
            return status_error(st);
        if (attempt == 1 || attempt % 10 == 0)
            LF_WARN("queue-client", "receive from %s: %s; trying again", qc->base_url,
                    st < 0 ? lf_strerror(st) : "receiver busy or failing");
        if (sleep_backoff(qc, attempt))
            return LF_ECLOSED;
    }
}

static tracked *find_tracked(lf_queue_client *qc, const char *receipt)
{
    for (size_t i = 0; i < qc->n_tracked; i++)
        if (strcmp(qc->tracked[i].receipt, receipt) == 0)
            return &qc->tracked[i];
    return NULL;
}

int lf_queue_client_track(lf_queue_client *qc, const char *receipt)
{
    if (strlen(receipt) >= LF_QUEUE_RECEIPT_MAX)
        return -EINVAL;
    pthread_mutex_lock(&qc->mu);
    int rc = 0;
    if (!find_tracked(qc, receipt)) {
        if (qc->n_tracked == qc->cap_tracked) {
            size_t cap = qc->cap_tracked ? qc->cap_tracked * 2 : 16;
            tracked *t = lf_realloc(qc->tracked, cap * sizeof *t);
            if (!t)
                rc = -ENOMEM;
            else {
                qc->tracked = t;
                qc->cap_tracked = cap;
            }
        }
        if (!rc) {
            tracked *t = &qc->tracked[qc->n_tracked++];
            memset(t, 0, sizeof *t);
            snprintf(t->receipt, sizeof t->receipt, "%s", receipt);
            t->next_ms = mono_ms() + (int64_t)qc->o.visibility_s * 500;
            pthread_cond_signal(&qc->cv);
        }
    }
    pthread_mutex_unlock(&qc->mu);
    return rc;
}

static void untrack_locked(lf_queue_client *qc, const char *receipt)
{
    tracked *t = find_tracked(qc, receipt);
    if (t)
        *t = qc->tracked[--qc->n_tracked];
}

void lf_queue_client_untrack(lf_queue_client *qc, const char *receipt)
{
    pthread_mutex_lock(&qc->mu);
    untrack_locked(qc, receipt);
    pthread_mutex_unlock(&qc->mu);
}

bool lf_queue_client_lost(lf_queue_client *qc, const char *receipt)
{
    pthread_mutex_lock(&qc->mu);
    tracked *t = find_tracked(qc, receipt);
    bool lost = t && t->lost;
    pthread_mutex_unlock(&qc->mu);
    return lost;
}

int lf_queue_client_ack(lf_queue_client *qc, const char *receipt)
{
    if (strlen(receipt) >= LF_QUEUE_RECEIPT_MAX)
        return -EINVAL;
    pthread_mutex_lock(&qc->mu);
    untrack_locked(qc, receipt);
    int rc = 0;
    if (qc->n_pending >= PENDING_MAX) {
        rc = LF_ELIMIT;
    } else {
        if (qc->n_pending == 0)
            qc->oldest_pending_ms = mono_ms();
        snprintf(qc->pending[qc->n_pending++], LF_QUEUE_RECEIPT_MAX, "%s", receipt);
        pthread_cond_signal(&qc->cv);
    }
    pthread_mutex_unlock(&qc->mu);
    return rc;
}

int lf_queue_client_flush(lf_queue_client *qc, long timeout_ms)
{
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&qc->mu);
    int rc = 0;
    qc->oldest_pending_ms = 0; /* send now */
    pthread_cond_signal(&qc->cv);
    while (qc->n_pending > 0 || qc->sending > 0) {
        if (pthread_cond_timedwait(&qc->done_cv, &qc->mu, &ts) == ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&qc->mu);
    return rc;
}

static int simple_op(lf_queue_client *qc, const char *op, json_t *body, bool retry)
{
    if (!body)
        return -ENOMEM;
    int rc = 0;
    for (int attempt = 1;; attempt++) {
        lf_http_response r;
        int st = post(qc, op, body, qc->o.request_timeout_ms, &r);
        lf_http_response_free(&r);
        if (st == 200 || st == 204) {
            rc = 0;
            break;
        }
        rc = status_error(st);
        if (!retry || !transient(st) || attempt >= 20)
            break;
        if (sleep_backoff(qc, attempt)) {
            rc = LF_ECLOSED;
            break;
        }
    }
    json_decref(body);
    return rc;
}

int lf_queue_client_nack(lf_queue_client *qc, const char *receipt, unsigned delay_s)
{
    lf_queue_client_untrack(qc, receipt);
    int rc = simple_op(qc, "nack", json_pack("{s:s, s:I}", "receipt", receipt, "delay_s", (json_int_t)delay_s), true);
    if (rc == 0) {
        pthread_mutex_lock(&qc->mu);
        qc->st.nacks++;
        pthread_mutex_unlock(&qc->mu);
    }
    return rc;
}

int lf_queue_client_extend(lf_queue_client *qc, const char *receipt, unsigned visibility_s)
{
    return simple_op(qc, "extend",
                     json_pack("{s:s, s:I}", "receipt", receipt, "visibility_s", (json_int_t)visibility_s), false);
}

/* Sends one batch of acks (mu not held). Returns 0 when the receiver answered (results counted). */
static int send_acks(lf_queue_client *qc, char (*batch)[LF_QUEUE_RECEIPT_MAX], size_t n, uint64_t *stale)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_string(batch[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    json_t *body = arr ? json_pack("{s:o}", "receipts", arr) : NULL;
    if (!body)
        return -ENOMEM;
    lf_http_response r;
    int st = post(qc, "ack", body, qc->o.request_timeout_ms, &r);
    json_decref(body);
    int rc = 0;
    if (st == 200) {
        json_t *doc = NULL, *res = NULL;
        lf_buf err = LF_BUF_INIT(256);
        if (lf_json_parse(r.body.data ? r.body.data : "", r.body.len, 1u << 24, &doc, &err) == 0 &&
            lf_json_get_array(doc, "results", &res) == 0) {
            for (size_t i = 0; i < json_array_size(res); i++) {
                const char *s = json_string_value(json_array_get(res, i));
                if (s && strcmp(s, "acked") != 0)
                    (*stale)++;
            }
        }
        lf_buf_free(&err);
        json_decref(doc);
    } else if (transient(st)) {
        rc = st < 0 ? st : LF_EHTTP;
    } else {
        /* a request the receiver refuses will not get better: drop it, loudly */
        LF_ERROR("queue-client", "ack of %zu receipts refused with HTTP %d; they will be redelivered", n, st);
        *stale += n;
    }
    lf_http_response_free(&r);
    return rc;
}

static void *background(void *arg)
{
    lf_queue_client *qc = arg;
    char(*batch)[LF_QUEUE_RECEIPT_MAX] = lf_malloc((size_t)LF_QUEUE_ACK_MAX * LF_QUEUE_RECEIPT_MAX);
    int ack_failures = 0;
    int64_t ack_retry_at = 0;
    pthread_mutex_lock(&qc->mu);
    for (;;) {
        int64_t now = mono_ms();
        /* acks */
        bool ack_due = qc->n_pending > 0 && now >= ack_retry_at &&
                       (qc->n_pending >= qc->o.ack_batch_max || qc->closing ||
                        now - qc->oldest_pending_ms >= (int64_t)qc->o.ack_delay_ms);
        if (ack_due && batch) {
            size_t n = qc->n_pending < LF_QUEUE_ACK_MAX ? qc->n_pending : LF_QUEUE_ACK_MAX;
            memcpy(batch, qc->pending, n * LF_QUEUE_RECEIPT_MAX);
            qc->sending = n;
            pthread_mutex_unlock(&qc->mu);
            uint64_t stale = 0;
            int rc = send_acks(qc, batch, n, &stale);
            pthread_mutex_lock(&qc->mu);
            qc->st.ack_requests++;
            qc->sending = 0;
            if (rc == 0) {
                memmove(qc->pending, qc->pending + n, (qc->n_pending - n) * LF_QUEUE_RECEIPT_MAX);
                qc->n_pending -= n;
                qc->oldest_pending_ms = mono_ms();
                qc->st.acked += n - stale;
                qc->st.acks_stale += stale;
                ack_failures = 0;
                ack_retry_at = 0;
            } else {
                qc->st.ack_failures++;
                ack_failures++;
                ack_retry_at = mono_ms() + backoff_ms(&qc->o, ack_failures) + 1;
                if (ack_failures == 1 || ack_failures % 10 == 0)
                    LF_WARN("queue-client", "ack of %zu receipts: %s; keeping them", n, lf_strerror(rc));
            }
            pthread_cond_broadcast(&qc->done_cv);
            continue;
        }
        if (qc->closing && (qc->n_pending == 0 || !batch))
            break;
        /* extensions */
        tracked *due = NULL;
        for (size_t i = 0; i < qc->n_tracked; i++)
            if (!qc->tracked[i].lost && !qc->tracked[i].busy && qc->tracked[i].next_ms <= now) {
                due = &qc->tracked[i];
                break;
            }
        if (due) {
            char receipt[LF_QUEUE_RECEIPT_MAX];
            memcpy(receipt, due->receipt, sizeof receipt);
            due->busy = true;
            pthread_mutex_unlock(&qc->mu);
            int rc = lf_queue_client_extend(qc, receipt, qc->o.visibility_s);
            pthread_mutex_lock(&qc->mu);
            tracked *t = find_tracked(qc, receipt); /* may have been untracked meanwhile */
            if (t) {
                t->busy = false;
                if (rc == 0) {
                    qc->st.extends++;
                    t->next_ms = mono_ms() + (int64_t)qc->o.visibility_s * 500;
                } else if (rc == -ENOENT) {
                    t->lost = true;
                    qc->st.lost++;
                    LF_WARN("queue-client", "receipt %s expired before it could be extended", receipt);
                } else {
                    qc->st.extend_failures++;
                    t->next_ms = mono_ms() + 1000; /* try again soon, well within the visibility */
                }
            }
            continue;
        }
        /* sleep until the next due item */
        int64_t next = now + 1000;
        if (qc->n_pending > 0) {
            int64_t a = ack_retry_at > qc->oldest_pending_ms + qc->o.ack_delay_ms ? ack_retry_at
                                                                                   : qc->oldest_pending_ms + qc->o.ack_delay_ms;
            if (a < next)
                next = a;
        }
        for (size_t i = 0; i < qc->n_tracked; i++)
            if (!qc->tracked[i].lost && !qc->tracked[i].busy && qc->tracked[i].next_ms < next)
                next = qc->tracked[i].next_ms;
        if (next > now) {
            struct timespec ts;
            deadline_in(&ts, (long)(next - now));
            pthread_cond_timedwait(&qc->cv, &qc->mu, &ts);
        }
    }
    pthread_mutex_unlock(&qc->mu);
    lf_free(batch);
    return NULL;
}

int lf_queue_client_new(const lf_queue_client_opts *opts, lf_queue_client **out)
{
    if (!opts || !opts->base_url || !opts->queue || (opts->token && strlen(opts->token) > 400))
        return -EINVAL;
    lf_queue_client *qc = lf_calloc(1, sizeof *qc);
    if (!qc)
        return -ENOMEM;
    qc->o = *opts;
    if (!qc->o.ack_batch_max || qc->o.ack_batch_max > LF_QUEUE_ACK_MAX)
        qc->o.ack_batch_max = qc->o.ack_batch_max ? LF_QUEUE_ACK_MAX : 100;
    if (!qc->o.visibility_s)
        qc->o.visibility_s = 60;
    if (qc->o.backoff_max_ms <= 0)
        qc->o.backoff_max_ms = 5000;
    if (qc->o.backoff_base_ms <= 0)
        qc->o.backoff_base_ms = 100;
    if (qc->o.request_timeout_ms <= 0)
        qc->o.request_timeout_ms = 30000;
    size_t blen = strlen(opts->base_url);
    while (blen && opts->base_url[blen - 1] == '/')
        blen--;
    qc->base_url = strndup(opts->base_url, blen);
    qc->queue = strdup(opts->queue);
    qc->token = opts->token ? strdup(opts->token) : NULL;
    qc->pending = lf_malloc((size_t)PENDING_MAX * LF_QUEUE_RECEIPT_MAX);
    if (qc->token)
        snprintf(qc->auth_header, sizeof qc->auth_header, "Authorization: Bearer %s", qc->token);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&qc->mu, NULL);
    pthread_cond_init(&qc->cv, &ca);
    pthread_cond_init(&qc->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!qc->base_url || !qc->queue || (opts->token && !qc->token) || !qc->pending ||
        pthread_create(&qc->thread, NULL, background, qc) != 0) {
        lf_queue_client_close(qc, 0);
        return -ENOMEM;
    }
    qc->thread_started = true;
    *out = qc;
    return 0;
}

void lf_queue_client_stop(lf_queue_client *qc)
{
    pthread_mutex_lock(&qc->mu);
    qc->stopping = true;
    pthread_cond_broadcast(&qc->done_cv);
    pthread_cond_broadcast(&qc->cv);
    pthread_mutex_unlock(&qc->mu);
}

void lf_queue_client_close(lf_queue_client *qc, long flush_timeout_ms)
{
    if (!qc)
        return;
    if (qc->thread_started) {
        if (flush_timeout_ms > 0 && lf_queue_client_flush(qc, flush_timeout_ms) < 0)
            LF_WARN("queue-client", "%zu acks not sent at close; their messages will be redelivered", qc->n_pending);
        pthread_mutex_lock(&qc->mu);
        qc->closing = true;
        qc->stopping = true;
        qc->n_pending = 0; /* whatever is left was not flushed in time */
        pthread_cond_broadcast(&qc->cv);
        pthread_cond_broadcast(&qc->done_cv);
        pthread_mutex_unlock(&qc->mu);
        pthread_join(qc->thread, NULL);
    }
    for (size_t i = 0; i < qc->n_pool; i++)
        lf_http_client_close(qc->pool[i], NULL, NULL);
    pthread_mutex_destroy(&qc->mu);
    pthread_cond_destroy(&qc->cv);
    pthread_cond_destroy(&qc->done_cv);
    free(qc->base_url);
    free(qc->queue);
    if (qc->token) {
        sodium_memzero(qc->token, strlen(qc->token));
        free(qc->token);
    }
    sodium_memzero(qc->auth_header, sizeof qc->auth_header);
    lf_free(qc->pending);
    lf_free(qc->tracked);
    lf_free(qc);
}

void lf_queue_client_stats_get(lf_queue_client *qc, lf_queue_client_stats *out)
{
    pthread_mutex_lock(&qc->mu);
    *out = qc->st;
    pthread_mutex_unlock(&qc->mu);
}
