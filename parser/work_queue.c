#include "work_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lf_jetstream.h"
#include "lf_jsconfig.h"
#include "lf_jsconsumer.h"
#include "lf_queue_client.h"

struct lf_work_queue {
    lf_queue_client *http;   /* embedded: through the receiver */
    lf_jetstream *js;        /* jetstream: the connection, */
    lf_jsconsumer *consumer; /* and the consumer over the queue */
    const char *where;
    bool nats;               /* libnats was used (even when connecting failed) */
};

static int open_http(const struct lf_parser_config *cfg, lf_work_queue *wq)
{
    lf_queue_client_opts qo;
    lf_queue_client_opts_default(&qo);
    qo.base_url = cfg->receiver_url;
    qo.token = cfg->receiver_token;
    qo.queue = cfg->queue_name;
    qo.wait_s = (unsigned)(cfg->queue_wait_ms / 1000);
    qo.visibility_s = (unsigned)(cfg->visibility_ms / 1000);
    wq->where = cfg->receiver_url;
    return lf_queue_client_new(&qo, &wq->http);
}

static int open_jetstream(const struct lf_parser_config *cfg, lf_work_queue *wq, lf_buf *err)
{
    wq->nats = true;
    lf_jetstream_options o;
    lf_jsconfig_connection(&cfg->js, "logferry-parser", &o);
    wq->where = o.nservers ? o.servers[0] : "";
    int rc = lf_jetstream_connect(&o, &wq->js, err);
    if (rc)
        return rc;
    lf_jsqueue_options qo;
    lf_jsconfig_queue(&cfg->js, cfg->queue_name, &qo);
    qo.visibility_ms = cfg->visibility_ms;
    qo.max_receives = (uint32_t)cfg->queue_max_receives;
    lf_jsqueue *q = NULL;
    rc = lf_jsqueue_open(wq->js, &qo, &q, err);
    if (rc)
        return rc;
    rc = lf_jsconsumer_new(wq->js, q, cfg->visibility_ms, cfg->queue_wait_ms, &wq->consumer);
    if (rc)
        lf_jsqueue_close(q);
    return rc;
}

int lf_work_queue_open(const struct lf_parser_config *cfg, lf_work_queue **out, lf_buf *err)
{
    *out = NULL;
    lf_work_queue *wq = calloc(1, sizeof *wq);
    if (!wq)
        return -ENOMEM;
    int rc = cfg->js.backend == LF_QUEUE_BACKEND_JETSTREAM ? open_jetstream(cfg, wq, err) : open_http(cfg, wq);
    if (rc) {
        lf_work_queue_close(wq, 0);
        return rc;
    }
    *out = wq;
    return 0;
}

void lf_work_queue_stop(lf_work_queue *wq)
{
    if (wq->http)
        lf_queue_client_stop(wq->http);
    if (wq->consumer)
        lf_jsconsumer_stop(wq->consumer);
}

void lf_work_queue_close(lf_work_queue *wq, long flush_timeout_ms)
{
    if (!wq)
        return;
    if (wq->http)
        lf_queue_client_close(wq->http, flush_timeout_ms);
    lf_jsconsumer_close(wq->consumer);
    bool used_nats = wq->nats;
    lf_jetstream_close(wq->js);
    free(wq);
    /* the parser's only NATS connection: libnats' threads and process-wide state go with it */
    if (used_nats)
        lf_jetstream_shutdown();
}

/* Either backend's messages as lf_work_msg; bodies change owner. */
static int from_http(lf_queue_client_msg *in, size_t n, lf_work_msg **out)
{
    lf_work_msg *m = n ? calloc(n, sizeof *m) : NULL;
    if (n && !m)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        m[i].id = in[i].id;
        memcpy(m[i].receipt, in[i].receipt, sizeof in[i].receipt);
        m[i].receive_count = in[i].receive_count;
        m[i].sent_ms = in[i].sent_ms;
        m[i].body = in[i].body;
        m[i].len = in[i].len;
        in[i].body = NULL;
    }
    *out = m;
    return 0;
}

static int from_js(lf_jsqueue_msg *in, size_t n, lf_work_msg **out)
{
    lf_work_msg *m = n ? calloc(n, sizeof *m) : NULL;
    if (n && !m)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        m[i].id = (int64_t)in[i].seq;
        memcpy(m[i].receipt, in[i].receipt, sizeof in[i].receipt);
        m[i].receive_count = in[i].receive_count;
        m[i].sent_ms = (int64_t)in[i].sent_ms;
        m[i].body = in[i].body;
        m[i].len = in[i].len;
        memcpy(m[i].origin, in[i].origin, sizeof in[i].origin);
        in[i].body = NULL;
        m[i].js = in[i];
    }
    *out = m;
    return 0;
}

int lf_work_queue_receive(lf_work_queue *wq, unsigned max, lf_work_msg **msgs, size_t *n)
{
    *msgs = NULL;
    *n = 0;
    size_t got = 0;
    int rc;
    if (wq->http) {
        lf_queue_client_msg *in = NULL;
        rc = lf_queue_client_receive(wq->http, max, &in, &got);
        if (!rc)
            rc = from_http(in, got, msgs);
        lf_queue_client_msgs_free(in, got);
    } else {
        lf_jsqueue_msg *in = NULL;
        rc = lf_jsconsumer_receive(wq->consumer, max, &in, &got);
        if (!rc)
            rc = from_js(in, got, msgs);
        lf_jsqueue_msgs_free(in, got);
    }
    /* a message not handed out comes back after its visibility timeout */
    if (!rc)
        *n = got;
    return rc;
}

void lf_work_queue_msgs_free(lf_work_msg *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++)
        free(msgs[i].body);
    free(msgs);
}

int lf_work_queue_track(lf_work_queue *wq, const char *receipt)
{
    return wq->http ? lf_queue_client_track(wq->http, receipt) : lf_jsconsumer_track(wq->consumer, receipt);
}

void lf_work_queue_untrack(lf_work_queue *wq, const char *receipt)
{
    if (wq->http)
        lf_queue_client_untrack(wq->http, receipt);
    else
        lf_jsconsumer_untrack(wq->consumer, receipt);
}

bool lf_work_queue_lost(lf_work_queue *wq, const char *receipt)
{
    return wq->http ? lf_queue_client_lost(wq->http, receipt) : lf_jsconsumer_lost(wq->consumer, receipt);
}

int lf_work_queue_ack(lf_work_queue *wq, const char *receipt)
{
    return wq->http ? lf_queue_client_ack(wq->http, receipt) : lf_jsconsumer_ack(wq->consumer, receipt);
}

int lf_work_queue_nack(lf_work_queue *wq, const char *receipt, uint64_t delay_ms)
{
    /* the receiver's API counts whole seconds */
    return wq->http ? lf_queue_client_nack(wq->http, receipt, (unsigned)((delay_ms + 999) / 1000))
                    : lf_jsconsumer_nack(wq->consumer, receipt, delay_ms);
}

const char *lf_work_queue_where(const lf_work_queue *wq)
{
    return wq->where;
}

int lf_work_queue_dead_letter(lf_work_queue *wq, const lf_work_msg *m, const char *reason)
{
    if (!wq->consumer)
        return -ENOTSUP;
    lf_jsqueue_msg jm = m->js;
    jm.body = m->body;
    jm.len = m->len;
    return lf_jsconsumer_dead_letter(wq->consumer, &jm, reason);
}

bool lf_work_queue_connected(lf_work_queue *wq)
{
    return wq->http ? true : lf_jsconsumer_connected(wq->consumer);
}

bool lf_work_queue_names_receiver(const lf_work_queue *wq)
{
    return wq->consumer != NULL;
}
