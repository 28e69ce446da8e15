/* Queue benchmark, JetStream part (bench_queue_js.h). Producers and consumers are threads with
 * blocking calls, as the receiver's publisher and the parser's workers use the queue. */
#include "bench_queue_js.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "lf_error.h"
#include "lf_jetstream.h"
#include "lf_jsqueue.h"

typedef struct js_phase {
    lf_jsqueue *q;
    const bench_js_cfg *cfg;
    double until;
    int tag;
    atomic_uint_fast64_t done;
    atomic_int failed;
} js_phase;

typedef struct js_worker {
    js_phase *ph;
    int index;
} js_worker;

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static void *producer(void *arg)
{
    js_worker *w = arg;
    js_phase *ph = w->ph;
    char *body = malloc(ph->cfg->body_len + 1);
    lf_buf err = LF_BUF_INIT(1024);
    if (!body) {
        atomic_store(&ph->failed, 1);
        return NULL;
    }
    memset(body, 'b', ph->cfg->body_len);
    for (uint64_t n = 0; now_s() < ph->until && !atomic_load(&ph->failed); n++) {
        char id[64];
        snprintf(id, sizeof id, "bench-%d-%d-%" PRIu64, ph->tag, w->index, n); /* unique: never a duplicate */
        int rc = lf_jsqueue_publish(ph->q, body, ph->cfg->body_len, id, NULL, NULL, &err);
        if (rc < 0) {
            fprintf(stderr, "publish: %s\n", lf_buf_cstr(&err));
            atomic_store(&ph->failed, 1);
            break;
        }
        atomic_fetch_add(&ph->done, 1);
    }
    lf_buf_free(&err);
    free(body);
    return NULL;
}

static void *consumer(void *arg)
{
    js_worker *w = arg;
    js_phase *ph = w->ph;
    lf_buf err = LF_BUF_INIT(1024);
    while (now_s() < ph->until && !atomic_load(&ph->failed)) {
        lf_jsqueue_msg *msgs = NULL;
        size_t n = 0;
        int rc = lf_jsqueue_receive(ph->q, ph->cfg->batch, 200, &msgs, &n, &err);
        if (rc < 0) {
            fprintf(stderr, "receive: %s\n", lf_buf_cstr(&err));
            atomic_store(&ph->failed, 1);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (lf_jsqueue_ack(ph->q, msgs[i].receipt, &err) < 0) {
                fprintf(stderr, "ack: %s\n", lf_buf_cstr(&err));
                atomic_store(&ph->failed, 1);
                break;
            }
            atomic_fetch_add(&ph->done, 1);
        }
        lf_jsqueue_msgs_free(msgs, n);
        if (n == 0)
            break; /* drained */
    }
    lf_buf_free(&err);
    return NULL;
}

/* Runs n threads of fn for the phase; the rate of what they did per second. */
static double run_threads(js_phase *ph, int n, void *(*fn)(void *))
{
    pthread_t *t = calloc((size_t)n, sizeof *t);
    js_worker *w = calloc((size_t)n, sizeof *w);
    if (!t || !w) {
        free(t);
        free(w);
        return -1;
    }
    atomic_store(&ph->done, 0);
    double t0 = now_s();
    ph->until = t0 + ph->cfg->seconds;
    int started = 0;
    for (int i = 0; i < n; i++) {
        w[i] = (js_worker){ph, i};
        if (pthread_create(&t[i], NULL, fn, &w[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    double elapsed = now_s() - t0;
    free(t);
    free(w);
    if (started < n || atomic_load(&ph->failed))
        return -1;
    return (double)atomic_load(&ph->done) / elapsed;
}

int bench_js_run(const bench_js_cfg *cfg, bench_queue_result *out)
{
    lf_jetstream_options jo;
    lf_jetstream_options_init(&jo);
    char *urls = strdup(cfg->urls), *save = NULL;
    for (char *u = strtok_r(urls, ",", &save); u && jo.nservers < LF_JETSTREAM_SERVERS_MAX;
         u = strtok_r(NULL, ",", &save))
        jo.servers[jo.nservers++] = u;
    jo.name = "bench-queue";
    lf_buf err = LF_BUF_INIT(4096);
    lf_jetstream *js = NULL;
    lf_jsqueue *q = NULL;
    int status = -1;
    if (lf_jetstream_connect(&jo, &js, &err) < 0) {
        fprintf(stderr, "jetstream: %s\n", lf_buf_cstr(&err));
        goto out;
    }
    lf_jsqueue_options qo;
    lf_jsqueue_options_init(&qo);
    qo.queue = "bench";
    qo.replicas = cfg->replicas;
    if (lf_jsqueue_open(js, &qo, &q, &err) < 0) {
        fprintf(stderr, "jetstream queue: %s\n", lf_buf_cstr(&err));
        goto out;
    }
    js_phase ph = {.q = q, .cfg = cfg};
    static const int prods[3] = {1, 8, 64};
    for (int i = 0; i < 3; i++) {
        ph.tag = i;
        out->sends_per_s[i] = run_threads(&ph, prods[i], producer);
        if (out->sends_per_s[i] < 0)
            goto out;
        printf("jetstream publishes, %2d producers: %9.0f acknowledged publishes/s (replicas %d)\n", prods[i],
               out->sends_per_s[i], cfg->replicas);
    }
    /* everything published above is there to be received */
    js_phase rph = {.q = q, .cfg = cfg};
    bench_js_cfg long_cfg = *cfg;
    long_cfg.seconds = cfg->seconds * 4;
    rph.cfg = &long_cfg;
    out->recv_ack_per_s = run_threads(&rph, cfg->consumers, consumer);
    if (out->recv_ack_per_s < 0)
        goto out;
    printf("jetstream receive+ack, %d consumers x %u msgs: %9.0f messages received and acked/s\n", cfg->consumers,
           cfg->batch, out->recv_ack_per_s);
    status = 0;
out:
    if (q)
        lf_jsqueue_close(q);
    if (js)
        lf_jetstream_close(js);
    lf_jetstream_shutdown();
    lf_buf_free(&err);
    free(urls);
    return status;
}
