/* Queue benchmark, JetStream part (the scale-out backend, lf_jsqueue.h): durable publishes/s (each
 * returns after its PubAck, with a unique msg id as a receiver gives the session id) at 1, 8 and 64
 * concurrent producers, and receive+ack/s by N consumers sharing the one pull consumer, against the
 * NATS servers given (a standalone server or a cluster, replicas as given). */
#ifndef BENCH_QUEUE_JS_H
#define BENCH_QUEUE_JS_H

#include <stddef.h>
#include <stdint.h>

#include "bench_queue_result.h"

typedef struct bench_js_cfg {
    const char *urls;   /* "nats://127.0.0.1:4222[,nats://...]" */
    int replicas;
    double seconds;     /* per phase */
    int consumers;
    uint32_t batch;     /* messages per receive */
    size_t body_len;
} bench_js_cfg;

/* 0, or -1 after printing why. */
int bench_js_run(const bench_js_cfg *cfg, bench_queue_result *out);

#endif
