/* Queue benchmark (in-process): durable sends/s at 1, 8 and 64 concurrent producers (each producer
 * sends its next message when the previous send's callback fired), receive+ack/s, and the raw
 * fsync rate of the same disk, with the batching factor (sends per commit).
 *
 *   bench-queue [--dir DIR] [--seconds S] [--body BYTES] [--consumers N] [--batch N]
 *               [--http-port P --pool FILE --sk SKFILE --site NAME --token TOKEN]
 * With --http-port, the HTTP part (bench_queue_http.h) runs after the in-process one against that
 * receiver; with --nats URLS, the same two phases run on the JetStream backend (bench_queue_js.h)
 * against those servers; all are summarised side by side.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "bench_queue_http.h"
#include "bench_queue_js.h"
#include "lf_error.h"
#include "lf_log.h"
#include "lf_queue.h"

static const char *dir = ".";
static double seconds = 3.0;
static size_t body_len = 64;
static int consumers = 8;
static uint32_t recv_batch = 10;
static double inproc_sends[3], inproc_recv_ack;

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

static double fsync_rate(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-fsync.tmp", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    char block[4096];
    memset(block, 'x', sizeof block);
    double t0 = now_s(), t;
    long n = 0;
    do {
        if (pwrite(fd, block, sizeof block, (off_t)(n % 256) * 4096) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            perror("write/fdatasync");
            exit(1);
        }
        n++;
        t = now_s();
    } while (t - t0 < seconds);
    close(fd);
    unlink(path);
    return (double)n / (t - t0);
}

static void remove_store(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* ---- producers ---- */
struct producer {
    lf_queue_send_req req;
    struct run *run;
};

struct run {
    lf_queue *q;
    double deadline;
    uint64_t done, failed;
    int active;
    char *body;
    uint64_t seq;
};

static void send_next(struct producer *p);

static void sent(lf_queue_send_req *req, int status)
{
    struct producer *p = req->data;
    if (status)
        p->run->failed++;
    else
        p->run->done++;
    send_next(p);
}

static void send_next(struct producer *p)
{
    struct run *r = p->run;
    if (now_s() >= r->deadline) {
        r->active--;
        return;
    }
    p->req.data = p;
    r->seq++;
    memcpy(r->body, &r->seq, sizeof r->seq < body_len ? sizeof r->seq : body_len);
    int rc = lf_queue_send(r->q, &p->req, "bench", r->body, body_len, NULL, 0, sent);
    if (rc) {
        fprintf(stderr, "send: %s\n", lf_strerror(rc));
        r->active--;
    }
}

static void bench_sends(int nprod, const lf_queue_options *opt)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-queue.db", dir);
    remove_store(path);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct run r = {0};
    r.body = calloc(1, body_len + 8);
    int rc = lf_queue_open(&loop, path, opt, &r.q);
    if (rc) {
        fprintf(stderr, "open: %s\n", lf_strerror(rc));
        exit(1);
    }
    struct producer *ps = calloc((size_t)nprod, sizeof *ps);
    double t0 = now_s();
    r.deadline = t0 + seconds;
    r.active = nprod;
    for (int i = 0; i < nprod; i++) {
        ps[i].run = &r;
        send_next(&ps[i]);
    }
    while (r.active > 0)
        uv_run(&loop, UV_RUN_ONCE);
    double t = now_s() - t0;
    lf_queue_engine_stats es;
    lf_queue_engine_stats_get(r.q, &es);
    lf_queue_close(r.q, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("sends, %2d producers: %9.0f durable sends/s  (%" PRIu64 " sends, %" PRIu64
           " failed, %" PRIu64 " commits, %.1f sends/commit, %.0f commits/s)\n",
           nprod, (double)r.done / t, r.done, r.failed, es.commits,
           es.commits ? (double)es.committed_ops / (double)es.commits : 0.0,
           (double)es.commits / t);
    free(ps);
    free(r.body);
    inproc_sends[nprod == 1 ? 0 : nprod == 8 ? 1 : 2] = (double)r.done / t;
}

/* ---- consumers ---- */
struct consumer {
    lf_queue_receive_req rreq;
    lf_queue_ack_req areq;
    struct crun *run;
    char receipts[LF_QUEUE_RECEIVE_MAX][LF_QUEUE_RECEIPT_MAX];
    const char *rp[LF_QUEUE_RECEIVE_MAX];
};

struct crun {
    lf_queue *q;
    double deadline;
    uint64_t acked, received;
    int active;
};

static void consume_next(struct consumer *c);

static void acked(lf_queue_ack_req *req, int status)
{
    struct consumer *c = req->data;
    if (status == 0)
        c->run->acked += req->acked;
    consume_next(c);
}

static void received(lf_queue_receive_req *req, int status)
{
    struct consumer *c = req->data;
    if (status || req->count == 0) {
        c->run->active--;
        return;
    }
    c->run->received += req->count;
    for (size_t i = 0; i < req->count; i++) {
        memcpy(c->receipts[i], req->msgs[i].receipt, LF_QUEUE_RECEIPT_MAX);
        c->rp[i] = c->receipts[i];
    }
    c->areq.data = c;
    if (lf_queue_ack(c->run->q, &c->areq, "bench", c->rp, req->count, acked) != 0)
        c->run->active--;
}

static void consume_next(struct consumer *c)
{
    if (now_s() >= c->run->deadline) {
        c->run->active--;
        return;
    }
    c->rreq.data = c;
    if (lf_queue_receive(c->run->q, &c->rreq, "bench", recv_batch, 30000, 0, received) != 0)
        c->run->active--;
}

static void bench_consume(const lf_queue_options *opt)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-queue.db", dir);
    /* The store left by the 64-producer run holds plenty of messages. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct crun r = {0};
    int rc = lf_queue_open(&loop, path, opt, &r.q);
    if (rc) {
        fprintf(stderr, "open: %s\n", lf_strerror(rc));
        exit(1);
    }
    struct consumer *cs = calloc((size_t)consumers, sizeof *cs);
    lf_queue_engine_stats es0, es1;
    lf_queue_engine_stats_get(r.q, &es0);
    double t0 = now_s();
    r.deadline = t0 + seconds;
    r.active = consumers;
    for (int i = 0; i < consumers; i++) {
        cs[i].run = &r;
        consume_next(&cs[i]);
    }
    while (r.active > 0)
        uv_run(&loop, UV_RUN_ONCE);
    double t = now_s() - t0;
    lf_queue_engine_stats_get(r.q, &es1);
    lf_queue_close(r.q, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    printf("receive+ack, %d consumers x %u msgs: %9.0f messages received and acked/s (%" PRIu64
           " acked, %" PRIu64 " commits)\n",
           consumers, recv_batch, (double)r.acked / t, r.acked, es1.commits - es0.commits);
    inproc_recv_ack = (double)r.acked / t;
    free(cs);
}

int main(int argc, char **argv)
{
    bench_http_cfg hc = {0};
    bench_js_cfg jc = {.replicas = 1};
    bool http_only = false; /* skip the in-process phases (profiling the receiver) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--body") && i + 1 < argc)
            body_len = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--consumers") && i + 1 < argc)
            consumers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            recv_batch = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--http-only"))
            http_only = true;
        else if (!strcmp(argv[i], "--http-port") && i + 1 < argc)
            hc.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pool") && i + 1 < argc)
            hc.pool = argv[++i];
        else if (!strcmp(argv[i], "--sk") && i + 1 < argc)
            hc.sk = argv[++i];
        else if (!strcmp(argv[i], "--site") && i + 1 < argc)
            hc.site = argv[++i];
        else if (!strcmp(argv[i], "--token") && i + 1 < argc)
            hc.token = argv[++i];
        else if (!strcmp(argv[i], "--nats") && i + 1 < argc)
            jc.urls = argv[++i];
        else if (!strcmp(argv[i], "--nats-replicas") && i + 1 < argc)
            jc.replicas = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--body BYTES] [--consumers N]"
                    " [--batch N] [--http-only] [--http-port P --pool FILE --sk SKFILE --site NAME --token TOKEN]"
                    " [--nats URL[,URL...] [--nats-replicas N]]\n", argv[0]);
            return 2;
        }
    }
    if (recv_batch == 0 || recv_batch > LF_QUEUE_RECEIVE_MAX || consumers < 1 || seconds <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    lf_log_set_level(LF_LOG_WARN);
    lf_queue_options opt;
    lf_queue_options_init(&opt);
    opt.skip_open_check = true;
    printf("queue benchmark: dir %s, %.1f s per phase, %zu-byte bodies\n", dir, seconds, body_len);
    double f = fsync_rate();
    printf("raw fsync rate (write 4 KiB + fdatasync): %.0f/s (%.3f ms each)\n", f, 1000.0 / f);
    int prods[] = {1, 8, 64};
    for (size_t i = 0; i < 3 && !http_only; i++)
        bench_sends(prods[i], &opt);
    if (!http_only)
        bench_consume(&opt);
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-queue.db", dir);
    remove_store(path);
    bench_queue_result jr = {{-1, -1, -1}, -1};
    int jrc = 0;
    if (jc.urls) {
        jc.seconds = seconds;
        jc.consumers = consumers;
        jc.batch = recv_batch;
        jc.body_len = body_len;
        jrc = bench_js_run(&jc, &jr);
    }
    bench_queue_result hr = {{-1, -1, -1}, -1};
    int hrc = 0;
    if (hc.port) {
        if (!hc.pool || !hc.sk || !hc.site || !hc.token) {
            fprintf(stderr, "--http-port needs --pool, --sk, --site and --token\n");
            return 2;
        }
        hc.seconds = seconds;
        hc.consumers = consumers;
        hc.batch = recv_batch;
        hrc = bench_http_run(&hc, &hr);
    }
    if (!hc.port && !jc.urls)
        return 0;
    printf("\nsummary          %12s %12s %14s %12s\n", "embedded", "HTTP", "HTTP/fsync", "JetStream");
    for (size_t i = 0; i < 4; i++) {
        double e = i < 3 ? inproc_sends[i] : inproc_recv_ack, h = i < 3 ? hr.sends_per_s[i] : hr.recv_ack_per_s;
        double j = i < 3 ? jr.sends_per_s[i] : jr.recv_ack_per_s;
        char row[32], hs[32] = "-", hf[32] = "-", js[32] = "-";
        if (i < 3)
            snprintf(row, sizeof row, "sends/s, %2d prod", prods[i]);
        else
            snprintf(row, sizeof row, "receive+ack/s");
        if (h >= 0) { /* < 0: not measured */
            snprintf(hs, sizeof hs, "%.0f", h);
            snprintf(hf, sizeof hf, "%.1f", h / f);
        }
        if (j >= 0)
            snprintf(js, sizeof js, "%.0f", j);
        printf("%-16s %12.0f %12s %14s %12s\n", row, e, hs, hf, js);
    }
    printf("raw fsyncs/s     %12.0f   (HTTP/fsync: durable operations per raw fsync time; > 1 means the\n"
           "                                 receiver batches several uploads or acks into one commit)\n", f);
    if (jc.urls)
        printf("JetStream: replicas %d; a publish counts once its PubAck arrived (nats-server 2.9 syncs to disk\n"
               "           every 2 min, so this is not fsync-durable: see lf_jsqueue.h)\n", jc.replicas);
    return hrc == 0 && jrc == 0 ? 0 : 1;
}
