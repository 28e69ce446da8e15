#include "lf_jsqueue.h"

#include "lf_log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define DURABLE "lf-parsers"
#define NS_PER_MS INT64_C(1000000)
#define HDR_REASON "Lf-Dead-Letter-Reason"
#define HDR_MSG_ID "Lf-Msg-Id"
#define HDR_SESSION "Lf-Session-Id"
#define HDR_ORIGIN "Lf-Receiver"

struct lf_jsqueue {
    lf_jetstream *conn;
    natsConnection *nc;
    jsCtx *js;
    lf_jsqueue_options o;
    char name[LF_JSQUEUE_NAME_MAX + 1];
    char stream[LF_JSQUEUE_NAME_MAX + 16], dlq_stream[LF_JSQUEUE_NAME_MAX + 16];
    char subject[LF_JSQUEUE_NAME_MAX + 16], dlq_subject[LF_JSQUEUE_NAME_MAX + 16];
    char ack_prefix[2 * LF_JSQUEUE_NAME_MAX + 32]; /* "$JS.ACK.<stream>.<durable>." */
    char origin[LF_JSQUEUE_ORIGIN_MAX];            /* "" when options.origin is NULL */
    natsSubscription *sub;
    pthread_mutex_t fetch_lock; /* one Fetch at a time on the shared pull subscription */
};

void lf_jsqueue_options_init(lf_jsqueue_options *o)
{
    memset(o, 0, sizeof *o);
    o->replicas = 1;
    o->dedup_window_ms = 5 * 60 * 1000;
    o->visibility_ms = 60 * 1000;
    o->max_receives = 5;
    o->max_ack_pending = 10000;
    o->dlq_max_age_ms = 14ull * 24 * 3600 * 1000;
    o->max_body = 256 * 1024;
}

bool lf_jsqueue_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!n || n > LF_JSQUEUE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool lf_jsqueue_origin_valid(const char *url)
{
    size_t n = url ? strlen(url) : 0, skip;
    if (n >= LF_JSQUEUE_ORIGIN_MAX)
        return false;
    if (n > 7 && strncmp(url, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && strncmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (url[skip] == '/')
        return false; /* no host */
    for (size_t i = 0; i < n; i++)
        if (url[i] <= ' ' || url[i] > '~')
            return false;
    return true;
}

static int64_t ms_to_ns(uint64_t ms) { return (int64_t)ms * NS_PER_MS; }

/* The dead letters must stay deduplicated for at least as long as a crashed worker's message takes
 * to come back (the ack wait), or the repeat after a crash would be stored twice. */
static int64_t dlq_dedup_ns(const lf_jsqueue_options *o)
{
    uint64_t w = o->dedup_window_ms > 2 * o->visibility_ms ? o->dedup_window_ms : 2 * o->visibility_ms;
    return ms_to_ns(w);
}

static void stream_config(const lf_jsqueue *q, bool dlq, jsStreamConfig *sc, const char **subject)
{
    jsStreamConfig_Init(sc);
    sc->Name = dlq ? q->dlq_stream : q->stream;
    *subject = dlq ? q->dlq_subject : q->subject;
    sc->Subjects = subject;
    sc->SubjectsLen = 1;
    sc->Storage = js_FileStorage;
    sc->Replicas = q->o.replicas;
    sc->MaxMsgSize = (int32_t)(q->o.max_body + 4096); /* body plus our headers */
    if (dlq) {
        sc->Retention = js_LimitsPolicy;
        sc->MaxAge = ms_to_ns(q->o.dlq_max_age_ms);
        sc->Duplicates = dlq_dedup_ns(&q->o);
    } else {
        sc->Retention = js_WorkQueuePolicy;
        sc->Duplicates = ms_to_ns(q->o.dedup_window_ms);
    }
}

static bool stream_differs(const jsStreamConfig *have, const jsStreamConfig *want)
{
    return have->Replicas != want->Replicas || have->Duplicates != want->Duplicates ||
           have->MaxAge != want->MaxAge || have->MaxMsgSize != want->MaxMsgSize;
}

static int ensure_stream(lf_jsqueue *q, bool dlq, lf_buf *err)
{
    jsStreamConfig sc;
    const char *subject;
    stream_config(q, dlq, &sc, &subject);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, q->js, sc.Name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        jerr = 0;
        s = js_AddStream(&si, q->js, &sc, NULL, &jerr);
        if (s == NATS_OK)
            LF_INFO("jsqueue", "created stream %s (replicas %d)", sc.Name, q->o.replicas);
    } else if (s == NATS_OK && stream_differs(si->Config, &sc)) {
        jsStreamInfo_Destroy(si);
        si = NULL;
        s = js_UpdateStream(&si, q->js, &sc, NULL, &jerr);
        if (s == NATS_OK)
            LF_INFO("jsqueue", "updated stream %s (replicas %d)", sc.Name, q->o.replicas);
    }
    jsStreamInfo_Destroy(si);
    return s == NATS_OK ? 0 : lf_jetstream_error(s, jerr, dlq ? "dead-letter stream" : "queue stream", err);
}

static void consumer_config(const lf_jsqueue *q, jsConsumerConfig *cc)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = DURABLE;
    cc->Description = "logferry parsers";
    cc->DeliverPolicy = js_DeliverAll;
    cc->AckPolicy = js_AckExplicit;
    cc->AckWait = ms_to_ns(q->o.visibility_ms);
    cc->MaxDeliver = -1; /* max_receives is enforced by us, with a dead letter (see the header) */
    cc->MaxAckPending = q->o.max_ack_pending;
    cc->FilterSubject = q->subject;
    cc->Replicas = q->o.replicas;
}

static int ensure_consumer(lf_jsqueue *q, lf_buf *err)
{
    jsConsumerConfig cc;
    consumer_config(q, &cc);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, q->js, q->stream, DURABLE, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
        jerr = 0;
        s = js_AddConsumer(&ci, q->js, q->stream, &cc, NULL, &jerr);
    } else if (s == NATS_OK && (ci->Config->AckWait != cc.AckWait || ci->Config->MaxAckPending != cc.MaxAckPending ||
                                ci->Config->MaxDeliver != cc.MaxDeliver || ci->Config->Replicas != cc.Replicas)) {
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        s = js_UpdateConsumer(&ci, q->js, q->stream, &cc, NULL, &jerr);
    }
    jsConsumerInfo_Destroy(ci);
    return s == NATS_OK ? 0 : lf_jetstream_error(s, jerr, "queue consumer", err);
}

int lf_jsqueue_open(lf_jetstream *js, const lf_jsqueue_options *o, lf_jsqueue **out, lf_buf *err)
{
    *out = NULL;
    if (!lf_jsqueue_name_valid(o->queue) || o->replicas < 1 || o->replicas > 5 || !o->visibility_ms ||
        o->visibility_ms > LF_QUEUE_VISIBILITY_MAX || !o->dedup_window_ms || o->max_ack_pending < 1 ||
        !o->max_body || o->max_body > 64 * 1024 * 1024) {
        lf_buf_msgf(err, "JetStream queue options: invalid queue name, replicas (1..5) or limits");
        return -EINVAL;
    }
    if (o->origin && !lf_jsqueue_origin_valid(o->origin)) {
        lf_buf_msgf(err, "the origin URL (advertise_url) must be http:// or https://, a host, no spaces, at most %d "
                    "characters", LF_JSQUEUE_ORIGIN_MAX - 1);
        return -EINVAL;
    }
    lf_jsqueue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->conn = js;
    q->nc = lf_jetstream_nats(js);
    q->js = lf_jetstream_ctx(js);
    q->o = *o;
    snprintf(q->name, sizeof q->name, "%s", o->queue);
    q->o.queue = q->name;
    snprintf(q->origin, sizeof q->origin, "%s", o->origin ? o->origin : "");
    q->o.origin = o->origin ? q->origin : NULL;
    snprintf(q->stream, sizeof q->stream, "LF_Q_%s", o->queue);
    snprintf(q->dlq_stream, sizeof q->dlq_stream, "LF_DLQ_%s", o->queue);
    snprintf(q->subject, sizeof q->subject, "logferry.q.%s", o->queue);
    snprintf(q->dlq_subject, sizeof q->dlq_subject, "logferry.dlq.%s", o->queue);
    snprintf(q->ack_prefix, sizeof q->ack_prefix, "$JS.ACK.%s.%s.", q->stream, DURABLE);
    if (pthread_mutex_init(&q->fetch_lock, NULL)) {
        free(q);
        return -ENOMEM;
    }
    int rc = ensure_stream(q, false, err);
    rc = rc ? rc : ensure_stream(q, true, err);
    rc = rc ? rc : ensure_consumer(q, err);
    if (!rc) {
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = q->stream;
        so.Consumer = DURABLE; /* bind to the consumer made above, never create another */
        jsErrCode jerr = 0;
        natsStatus s = js_PullSubscribe(&q->sub, q->js, q->subject, DURABLE, NULL, &so, &jerr);
        if (s != NATS_OK)
            rc = lf_jetstream_error(s, jerr, "pull subscription", err);
    }
    if (rc) {
        lf_jsqueue_close(q);
        return rc;
    }
    *out = q;
    return 0;
}

void lf_jsqueue_close(lf_jsqueue *q)
{
    if (!q)
        return;
    /* Destroy, not Unsubscribe: unsubscribing a bound durable would not delete it, but a plain
     * destroy never risks it either */
    natsSubscription_Destroy(q->sub);
    pthread_mutex_destroy(&q->fetch_lock);
    free(q);
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return LF_ELIMIT;
    memcpy(dst, src ? src : "", n + 1);
    return 0;
}

static int publish(lf_jsqueue *q, const char *subject, const void *body, size_t len, const char *msg_id,
                   const char *const *headers, bool *duplicate, uint64_t *seq, lf_buf *err)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, body, (int)len);
    for (size_t i = 0; s == NATS_OK && headers && headers[i]; i += 2)
        s = natsMsgHeader_Set(m, headers[i], headers[i + 1]);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = lf_jetstream_timeout_ms(q->conn);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK)
        s = js_PublishMsg(&pa, q->js, m, &po, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return lf_jetstream_error(s, jerr, "publishing to JetStream", err);
    if (duplicate)
        *duplicate = pa->Duplicate;
    if (seq)
        *seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    return 0;
}

int lf_jsqueue_publish(lf_jsqueue *q, const void *body, size_t len, const char *msg_id, bool *duplicate,
                       uint64_t *seq, lf_buf *err)
{
    if (len > q->o.max_body)
        return LF_ELIMIT;
    if (msg_id && (!*msg_id || strlen(msg_id) >= LF_QUEUE_DEDUP_MAX))
        return -EINVAL;
    const char *headers[] = {HDR_ORIGIN, q->origin, NULL};
    return publish(q, q->subject, body, len, msg_id, q->origin[0] ? headers : NULL, duplicate, seq, err);
}

/* Fills m from a stored or delivered message: body, ids, reason, origin. LF_EFORMAT (m filled but for
 * origin) when its origin header is not one (lf_jsqueue_origin_valid). */
static int fill_msg(lf_jsqueue_msg *m, natsMsg *nm)
{
    const char *v = NULL;
    int rc = 0;
    if (natsMsgHeader_Get(nm, "Nats-Msg-Id", &v) == NATS_OK)
        rc = copy_str(m->msg_id, sizeof m->msg_id, v);
    v = NULL;
    if (!rc && natsMsgHeader_Get(nm, HDR_MSG_ID, &v) == NATS_OK) /* a dead letter's original id */
        rc = copy_str(m->msg_id, sizeof m->msg_id, v);
    v = NULL;
    if (!rc)
        rc = copy_str(m->session_id, sizeof m->session_id,
                      natsMsgHeader_Get(nm, HDR_SESSION, &v) == NATS_OK ? v : m->msg_id);
    v = NULL;
    if (!rc && natsMsgHeader_Get(nm, HDR_REASON, &v) == NATS_OK)
        rc = copy_str(m->reason, sizeof m->reason, v);
    if (rc)
        return -EINVAL;
    int len = natsMsg_GetDataLength(nm);
    m->len = len > 0 ? (size_t)len : 0;
    m->body = malloc(m->len + 1);
    if (!m->body)
        return -ENOMEM;
    if (m->len)
        memcpy(m->body, natsMsg_GetData(nm), m->len);
    ((char *)m->body)[m->len] = '\0';
    v = NULL;
    if (natsMsgHeader_Get(nm, HDR_ORIGIN, &v) == NATS_OK) {
        if (!lf_jsqueue_origin_valid(v))
            return LF_EFORMAT; /* refused whole: a cut URL could name another host */
        snprintf(m->origin, sizeof m->origin, "%s", v);
    }
    return 0;
}

void lf_jsqueue_msgs_free(lf_jsqueue_msg *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++)
        free(msgs[i].body);
    free(msgs);
}

static int valid_receipt(const lf_jsqueue *q, const char *receipt)
{
    size_t n = receipt ? strlen(receipt) : 0, p = strlen(q->ack_prefix);
    if (n <= p || n >= LF_JSQUEUE_RECEIPT_MAX || strncmp(receipt, q->ack_prefix, p))
        return -EINVAL;
    for (size_t i = p; i < n; i++)
        if (!((receipt[i] >= '0' && receipt[i] <= '9') || receipt[i] == '.'))
            return -EINVAL;
    return 0;
}

/* Sends an acknowledgement and waits for the server's answer, so that when this returns 0 the
 * consumer has processed it (a plain publish could be lost with the connection). */
static int ack_request(lf_jsqueue *q, const char *receipt, const char *body, const char *what, lf_buf *err)
{
    int rc = valid_receipt(q, receipt);
    if (rc) {
        lf_buf_msgf(err, "%s: not a receipt of queue %s", what, q->name);
        return rc;
    }
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_RequestString(&reply, q->nc, receipt, body, lf_jetstream_timeout_ms(q->conn));
    natsMsg_Destroy(reply);
    return s == NATS_OK ? 0 : lf_jetstream_error(s, 0, what, err);
}

int lf_jsqueue_ack(lf_jsqueue *q, const char *receipt, lf_buf *err)
{
    return ack_request(q, receipt, "+ACK", "ack", err);
}

int lf_jsqueue_extend(lf_jsqueue *q, const char *receipt, lf_buf *err)
{
    return ack_request(q, receipt, "+WPI", "extend", err);
}

int lf_jsqueue_nack(lf_jsqueue *q, const char *receipt, uint64_t delay_ms, lf_buf *err)
{
    if (delay_ms > LF_QUEUE_DELAY_MAX)
        return -EINVAL;
    if (!delay_ms)
        return ack_request(q, receipt, "-NAK", "nack", err);
    char body[64];
    snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}", ms_to_ns(delay_ms));
    return ack_request(q, receipt, body, "nack", err);
}

static int dead_letter(lf_jsqueue *q, const lf_jsqueue_msg *m, const char *reason, lf_buf *err)
{
    char id[LF_JSQUEUE_NAME_MAX + 32];
    snprintf(id, sizeof id, "%s.%" PRIu64, q->name, m->seq);
    const char *headers[] = {HDR_REASON, reason, HDR_MSG_ID, m->msg_id, HDR_SESSION, m->session_id,
                             m->origin[0] ? HDR_ORIGIN : NULL, m->origin, NULL};
    int rc = publish(q, q->dlq_subject, m->body, m->len, id, headers, NULL, NULL, err);
    /* only once the dead letter is stored: a crash before this point redelivers the message, and the
     * repeated publish above is deduplicated by its id */
    rc = rc ? rc : ack_request(q, m->receipt, "+TERM", "terminating a dead letter", err);
    if (!rc)
        LF_WARN("jsqueue", "queue %s: message %" PRIu64 " (session %s) dead-lettered: %s", q->name, m->seq,
                m->session_id[0] ? m->session_id : "-", reason);
    return rc;
}

int lf_jsqueue_dead_letter(lf_jsqueue *q, const lf_jsqueue_msg *m, const char *reason, lf_buf *err)
{
    if (!reason || !*reason || strlen(reason) >= LF_JSQUEUE_REASON_MAX)
        return -EINVAL;
    return dead_letter(q, m, reason, err);
}

int lf_jsqueue_publish_dead(lf_jsqueue *q, const void *body, size_t len, const char *msg_id,
                            const char *session_id, const char *reason, lf_buf *err)
{
    if (len > q->o.max_body || !msg_id || !*msg_id || strlen(msg_id) >= LF_QUEUE_DEDUP_MAX || !session_id ||
        !reason || !*reason || strlen(reason) >= LF_JSQUEUE_REASON_MAX)
        return -EINVAL;
    const char *headers[] = {HDR_REASON, reason, HDR_MSG_ID, session_id, HDR_SESSION, session_id,
                             q->origin[0] ? HDR_ORIGIN : NULL, q->origin, NULL};
    return publish(q, q->dlq_subject, body, len, msg_id, headers, NULL, NULL, err);
}

/* Turns one delivery into m; 1 when it was dead-lettered instead (not to be returned). */
static int take_delivery(lf_jsqueue *q, natsMsg *nm, lf_jsqueue_msg *m, lf_buf *err)
{
    memset(m, 0, sizeof *m);
    jsMsgMetaData *meta = NULL;
    natsStatus s = natsMsg_GetMetaData(&meta, nm);
    if (s != NATS_OK)
        return lf_jetstream_error(s, 0, "delivery metadata", err);
    m->seq = meta->Sequence.Stream;
    m->receive_count = meta->NumDelivered > UINT32_MAX ? UINT32_MAX : (uint32_t)meta->NumDelivered;
    m->sent_ms = meta->Timestamp > 0 ? (uint64_t)(meta->Timestamp / NS_PER_MS) : 0;
    jsMsgMetaData_Destroy(meta);
    int rc = copy_str(m->receipt, sizeof m->receipt, natsMsg_GetReply(nm));
    rc = rc ? -EINVAL : fill_msg(m, nm);
    bool bad_origin = rc == LF_EFORMAT;
    if (rc && !bad_origin) {
        free(m->body);
        m->body = NULL;
        return rc;
    }
    if (bad_origin || (q->o.max_receives && m->receive_count > q->o.max_receives)) {
        char reason[LF_JSQUEUE_REASON_MAX];
        if (bad_origin)
            snprintf(reason, sizeof reason, "header " HDR_ORIGIN " is not an http(s) URL of at most %d characters",
                     LF_JSQUEUE_ORIGIN_MAX - 1);
        else
            snprintf(reason, sizeof reason, "received %" PRIu32 " times, more than max_receives (%" PRIu32 ")",
                     m->receive_count, q->o.max_receives);
        rc = dead_letter(q, m, reason, err);
        free(m->body);
        m->body = NULL;
        if (rc) /* left unacknowledged: it comes back after the ack wait and is tried again */
            LF_WARN("jsqueue", "queue %s: dead-lettering message %" PRIu64 " failed: %s", q->name, m->seq,
                    lf_strerror(rc));
        return 1;
    }
    return 0;
}

int lf_jsqueue_receive(lf_jsqueue *q, uint32_t max, uint64_t wait_ms, lf_jsqueue_msg **msgs, size_t *n, lf_buf *err)
{
    *msgs = NULL;
    *n = 0;
    if (!max || max > LF_QUEUE_RECEIVE_MAX || wait_ms > LF_QUEUE_WAIT_MAX)
        return -EINVAL;
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = (int)max;
    if (wait_ms)
        fr.Expires = ms_to_ns(wait_ms);
    else
        fr.NoWait = true;
    natsMsgList list = {0};
    pthread_mutex_lock(&q->fetch_lock);
    natsStatus s = natsSubscription_FetchRequest(&list, q->sub, &fr);
    pthread_mutex_unlock(&q->fetch_lock);
    /* an empty long poll is an answer, not an error */
    if (s == NATS_TIMEOUT || (s == NATS_NOT_FOUND && !list.Count))
        return 0;
    if (s != NATS_OK)
        return lf_jetstream_error(s, 0, "receiving from JetStream", err);
    int rc = 0;
    lf_jsqueue_msg *out = list.Count ? calloc((size_t)list.Count, sizeof *out) : NULL;
    if (list.Count && !out)
        rc = -ENOMEM;
    size_t k = 0;
    for (int i = 0; !rc && i < list.Count; i++) {
        int t = take_delivery(q, list.Msgs[i], &out[k], err);
        if (t < 0)
            rc = t;
        else if (t == 0)
            k++;
    }
    natsMsgList_Destroy(&list);
    if (rc) {
        /* what was delivered comes back after the ack wait */
        lf_jsqueue_msgs_free(out, k);
        return rc;
    }
    if (!k) {
        free(out);
        out = NULL;
    }
    *msgs = out;
    *n = k;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int lf_jsqueue_stats(lf_jsqueue *q, lf_queue_statistics *out, lf_buf *err)
{
    memset(out, 0, sizeof *out);
    jsStreamInfo *si = NULL, *dsi = NULL;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, q->js, q->stream, NULL, &jerr);
    if (s == NATS_OK)
        s = js_GetConsumerInfo(&ci, q->js, q->stream, DURABLE, NULL, &jerr);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&dsi, q->js, q->dlq_stream, NULL, &jerr);
    int rc = s == NATS_OK ? 0 : lf_jetstream_error(s, jerr, "queue statistics", err);
    if (!rc) {
        out->exists = true;
        out->depth = ci->NumPending;
        out->in_flight = ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
        /* work-queue retention: the first message stored is the oldest not yet acked */
        uint64_t first_ms = si->State.FirstTime > 0 ? (uint64_t)(si->State.FirstTime / NS_PER_MS) : 0;
        uint64_t now = now_ms();
        out->oldest_age_ms = si->State.Msgs && first_ms && now > first_ms ? now - first_ms : 0;
        out->dlq_depth = dsi->State.Msgs;
        out->sent = si->State.LastSeq;
        out->received = ci->Delivered.Consumer;
        out->expired_redeliveries = ci->NumRedelivered > 0 ? (uint64_t)ci->NumRedelivered : 0;
    }
    jsStreamInfo_Destroy(si);
    jsStreamInfo_Destroy(dsi);
    jsConsumerInfo_Destroy(ci);
    return rc;
}

/* Calls fn on up to max dead letters, oldest first; fn returns 0, or a code that stops the walk. */
typedef int (*dead_fn)(lf_jsqueue *q, lf_jsqueue_msg *m, void *arg, lf_buf *err);

static int walk_dead(lf_jsqueue *q, uint64_t max, dead_fn fn, void *arg, uint64_t *count, lf_buf *err)
{
    *count = 0;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, q->js, q->dlq_stream, NULL, &jerr);
    if (s != NATS_OK)
        return lf_jetstream_error(s, jerr, "dead-letter stream", err);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    int rc = 0;
    for (uint64_t seq = first; !rc && msgs && seq <= last && (!max || *count < max); seq++) {
        natsMsg *nm = NULL;
        jerr = 0;
        s = js_GetMsg(&nm, q->js, q->dlq_stream, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            continue; /* deleted (redriven) or purged by age meanwhile */
        if (s != NATS_OK)
            return lf_jetstream_error(s, jerr, "reading a dead letter", err);
        lf_jsqueue_msg m = {0};
        m.seq = seq;
        m.sent_ms = natsMsg_GetTime(nm) > 0 ? (uint64_t)(natsMsg_GetTime(nm) / NS_PER_MS) : 0;
        rc = fill_msg(&m, nm);
        natsMsg_Destroy(nm);
        rc = rc ? rc : fn(q, &m, arg, err);
        free(m.body);
        if (!rc)
            (*count)++;
    }
    return rc;
}

typedef struct peek_acc {
    lf_jsqueue_msg *msgs;
    size_t n;
} peek_acc;

static int peek_one(lf_jsqueue *q, lf_jsqueue_msg *m, void *arg, lf_buf *err)
{
    peek_acc *a = arg;
    a->msgs[a->n] = *m;
    a->msgs[a->n].body = malloc(m->len + 1);
    if (!a->msgs[a->n].body)
        return -ENOMEM;
    memcpy(a->msgs[a->n].body, m->body, m->len + 1);
    a->n++;
    return 0;
}

int lf_jsqueue_peek_dead(lf_jsqueue *q, uint32_t max, lf_jsqueue_msg **msgs, size_t *n, lf_buf *err)
{
    *msgs = NULL;
    *n = 0;
    if (!max || max > LF_QUEUE_RECEIVE_MAX)
        return -EINVAL;
    peek_acc a = {calloc(max, sizeof(lf_jsqueue_msg)), 0};
    if (!a.msgs)
        return -ENOMEM;
    uint64_t count = 0;
    int rc = walk_dead(q, max, peek_one, &a, &count, err);
    if (rc || !a.n) {
        lf_jsqueue_msgs_free(a.msgs, a.n);
        return rc;
    }
    *msgs = a.msgs;
    *n = a.n;
    return 0;
}

static int redrive_one(lf_jsqueue *q, lf_jsqueue_msg *m, void *arg, lf_buf *err)
{
    /* a fresh id: the original may still be in the dedup window, which would drop the message */
    char id[LF_QUEUE_DEDUP_MAX + 32];
    const char *sid = m->session_id[0] ? m->session_id : q->name;
    snprintf(id, sizeof id, "%.*s.r%" PRIu64, LF_QUEUE_DEDUP_MAX - 1, sid, m->seq);
    /* the origin stays: the session is still where it was stored */
    const char *headers[5] = {NULL};
    size_t h = 0;
    if (m->session_id[0])
        headers[h++] = HDR_SESSION, headers[h++] = m->session_id;
    if (m->origin[0])
        headers[h++] = HDR_ORIGIN, headers[h++] = m->origin;
    int rc = publish(q, q->subject, m->body, m->len, id, h ? headers : NULL, NULL, NULL, err);
    if (rc)
        return rc;
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteMsg(q->js, q->dlq_stream, m->seq, NULL, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND && jerr != JSNoMessageFoundErr && jerr != JSSequenceNotFoundErr)
        return lf_jetstream_error(s, jerr, "removing a redriven dead letter", err);
    return 0;
}

int lf_jsqueue_redrive(lf_jsqueue *q, uint64_t max, uint64_t *moved, lf_buf *err)
{
    int rc = walk_dead(q, max, redrive_one, NULL, moved, err);
    if (*moved)
        LF_INFO("jsqueue", "queue %s: %" PRIu64 " dead letters redriven", q->name, *moved);
    return rc;
}

static void check_cluster(const char *what, const jsClusterInfo *c, lf_buf *report, int *problems)
{
    if (!c)
        return; /* a single server: no replicas to be current */
    if (!c->Leader || !*c->Leader) {
        lf_buf_msgf(report, "%s has no leader\n", what);
        (*problems)++;
    }
    for (int i = 0; i < c->ReplicasLen; i++)
        if (c->Replicas[i] && (!c->Replicas[i]->Current || c->Replicas[i]->Offline)) {
            lf_buf_msgf(report, "%s: replica %s is %s\n", what, c->Replicas[i]->Name,
                        c->Replicas[i]->Offline ? "offline" : "behind");
            (*problems)++;
        }
}

static int check_stream(lf_jsqueue *q, const char *name, lf_buf *report, int *problems, lf_buf *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, q->js, name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        lf_buf_msgf(report, "stream %s is missing\n", name);
        (*problems)++;
        return 0;
    }
    if (s != NATS_OK)
        return lf_jetstream_error(s, jerr, name, err);
    if (si->Config->Replicas != q->o.replicas) {
        lf_buf_msgf(report, "stream %s has %" PRId64 " replicas, configured %d\n", name, si->Config->Replicas,
                    q->o.replicas);
        (*problems)++;
    }
    if (si->Config->Storage != js_FileStorage) {
        lf_buf_msgf(report, "stream %s is not on file storage\n", name);
        (*problems)++;
    }
    check_cluster(name, si->Cluster, report, problems);
    jsStreamInfo_Destroy(si);
    return 0;
}

int lf_jsqueue_check(lf_jsqueue *q, lf_buf *report)
{
    int problems = 0;
    lf_buf err = LF_BUF_INIT(1024);
    int rc = check_stream(q, q->stream, report, &problems, &err);
    rc = rc ? rc : check_stream(q, q->dlq_stream, report, &problems, &err);
    if (!rc) {
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetConsumerInfo(&ci, q->js, q->stream, DURABLE, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
            lf_buf_msgf(report, "consumer %s of stream %s is missing\n", DURABLE, q->stream);
            problems++;
        } else if (s != NATS_OK) {
            rc = lf_jetstream_error(s, jerr, "queue consumer", &err);
        } else {
            if (ci->Config->AckWait != ms_to_ns(q->o.visibility_ms) || ci->Config->AckPolicy != js_AckExplicit) {
                lf_buf_msgf(report, "consumer %s: ack wait or policy differ from the configuration\n", DURABLE);
                problems++;
            }
            check_cluster("consumer " DURABLE, ci->Cluster, report, &problems);
        }
        jsConsumerInfo_Destroy(ci);
    }
    if (rc)
        lf_buf_msgf(report, "%s\n", err.data ? err.data : lf_strerror(rc));
    else if (!problems)
        lf_buf_msgf(report, "ok");
    lf_buf_free(&err);
    return rc ? rc : problems ? LF_ECORRUPT : 0;
}
