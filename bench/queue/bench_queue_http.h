/* Queue benchmark, HTTP part: against a running logferry-receiver, durable sends/s (signed uploads of
 * tiny sessions: each stored upload enqueues its id on "sessions") at 1, 8 and 64 concurrent
 * producers, and receive+ack/s through POST /v1/queues/sessions/{receive,ack}. */
#ifndef BENCH_QUEUE_HTTP_H
#define BENCH_QUEUE_HTTP_H

#include <stdint.h>

#include "bench_queue_result.h"

typedef struct bench_http_cfg {
    int port;
    const char *pool;   /* file of pre-built sessions: "ID LEN\n" then LEN bytes of zip, repeated */
    const char *sk;     /* the site's secret key file */
    const char *site;
    const char *token;  /* worker bearer token */
    double seconds;     /* per phase */
    int consumers;
    uint32_t batch;     /* messages per receive */
} bench_http_cfg;

/* 0, or -1 after printing why. */
int bench_http_run(const bench_http_cfg *cfg, bench_queue_result *out);

#endif
