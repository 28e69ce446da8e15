/* `logferry-receiver queue ...` with backend = jetstream: the same subcommands answered by JetStream
 * (lf_jsqueue.h). peek shows the dead letters with their reasons (JetStream has no peek of the
 * queue itself: its messages are the consumer's); the figures are printed as for the embedded queue.
 * migrate moves the embedded queue onto JetStream (queue_migrate.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "lf_error.h"
#include "lf_jsconfig.h"

int lf_receiver_queue_command_js(const struct lf_receiver_config *cfg, const char *cmd, const char *q,
                                 unsigned long n)
{
    if (strcmp(q, cfg->queue_name) != 0) {
        fprintf(stderr, "logferry-receiver: on JetStream only the configured queue (%s) exists\n", cfg->queue_name);
        return LF_RECEIVER_EXIT_USAGE;
    }
    lf_jetstream_options o;
    lf_jsconfig_connection(&cfg->js, "logferry-receiver queue", &o);
    lf_buf err = LF_BUF_INIT(512);
    lf_jetstream *js = NULL;
    lf_jsqueue *jq = NULL;
    int rc = lf_jetstream_connect(&o, &js, &err);
    if (rc == 0) {
        lf_jsqueue_options qo;
        lf_jsconfig_queue(&cfg->js, q, &qo);
        qo.visibility_ms = cfg->js_visibility_ms;
        qo.max_receives = (uint32_t)cfg->max_receives;
        qo.origin = cfg->advertise_url; /* what this command publishes is stored here */
        rc = lf_jsqueue_open(js, &qo, &jq, &err);
    }
    if (rc == 0 && strcmp(cmd, "stats") == 0) {
        lf_queue_statistics s;
        if ((rc = lf_jsqueue_stats(jq, &s, &err)) == 0)
            lf_receiver_print_queue_stats(q, &s);
    } else if (rc == 0 && strcmp(cmd, "peek") == 0) {
        lf_jsqueue_msg *msgs = NULL;
        size_t cnt = 0;
        if ((rc = lf_jsqueue_peek_dead(jq, (uint32_t)n, &msgs, &cnt, &err)) == 0) {
            for (size_t i = 0; i < cnt; i++)
                printf("%" PRIu64 " dead sent_ms=%" PRIu64 " %s reason=\"%s\"%s%s\n", msgs[i].seq, msgs[i].sent_ms,
                       msgs[i].session_id, msgs[i].reason, msgs[i].origin[0] ? " receiver=" : "", msgs[i].origin);
            lf_jsqueue_msgs_free(msgs, cnt);
        }
    } else if (rc == 0 && strcmp(cmd, "redrive") == 0) {
        uint64_t moved = 0;
        if ((rc = lf_jsqueue_redrive(jq, 0, &moved, &err)) == 0)
            printf("moved %" PRIu64 " messages from the dead letters of %s to %s\n", moved, q, q);
    } else if (rc == 0 && strcmp(cmd, "check") == 0) {
        lf_buf report = LF_BUF_INIT(64 * 1024);
        rc = lf_jsqueue_check(jq, &report);
        printf("%s\n", report.len ? lf_buf_cstr(&report) : lf_strerror(rc));
        lf_buf_free(&report);
    } else if (rc == 0 && strcmp(cmd, "migrate") == 0) {
        rc = lf_receiver_queue_migrate(cfg, js, jq, &err);
    } else if (rc == 0) {
        rc = -EINVAL;
        lf_buf_msgf(&err, "unknown queue command");
    }
    int ret = 0;
    if (rc != 0) {
        fprintf(stderr, "logferry-receiver: queue %s on JetStream: %s\n", cmd, err.len ? lf_buf_cstr(&err) : lf_strerror(rc));
        ret = LF_RECEIVER_EXIT_RUNTIME;
    }
    lf_buf_free(&err);
    lf_jsqueue_close(jq);
    lf_jetstream_close(js);
    lf_jetstream_shutdown();
    return ret;
}
