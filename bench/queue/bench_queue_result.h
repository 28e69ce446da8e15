/* What each remote part of the queue benchmark measures (bench_queue_http.h, bench_queue_js.h), in
 * one shape so bench_queue.c prints them side by side. */
#ifndef BENCH_QUEUE_RESULT_H
#define BENCH_QUEUE_RESULT_H

typedef struct bench_queue_result {
    double sends_per_s[3]; /* at 1, 8, 64 producers */
    double recv_ack_per_s;
} bench_queue_result;

#endif
