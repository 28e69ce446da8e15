/* GET /v1/sessions/{id} (scope read): the index's view of a stored session (stored, queued), or its
 * parse status from the parsed-events database (parsed with its event count, failed). With backend =
 * jetstream a session this receiver does not hold is answered from its claim in LF_SESSIONS (upload.c):
 * status "stored" (or the parse status), and "receiver", the one that holds it, as in every answer.
 * GET /v1/sessions/{id}/blob (scope worker): the stored encrypted object, for parsers elsewhere.
 * POST /v1/sessions/{id}/reparse (scope admin): queues a stored session again (`logferry-parser
 * reparse`), as a new message without a dedup id, so that it is parsed again even when its first
 * delivery is still inside the dedup window. Loads are idempotent per session. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_jskv.h"
#include "lf_json.h"
#include "lf_log.h"
#include "read_routes.h"
#include "receiver.h"

static bool lookup(lf_receiver *r, lf_http_request *req, lf_index_row *row)
{
    const char *id = req->params[0];
    int rc = strlen(id) == LF_SESSION_ID_LEN ? lf_index_get(r->index, id, row) : -ENOENT;
    if (rc == -ENOENT) {
        lf_http_respond_error(req, 404, "not_found", "no session with this id is stored", NULL);
        return false;
    }
    if (rc != 0) {
        lf_receiver_respond_error(r, req, lf_receiver_storage_status(rc), "storage_unavailable", lf_strerror(rc));
        return false;
    }
    return true;
}

/* The status answer: the index's view, then "parsed" (with the event count) or "failed" once the
 * parsed-events database knows the session. The database is asked on the thread pool. */
typedef struct status_req {
    uv_work_t work;
    lf_http_request *http;
    lf_receiver *r;
    lf_index_row row;
    const char *parse_status; /* static string or NULL */
    long long events;
    bool shared;              /* not held here: answered from the claim */
    int claim_rc;
    lf_session_claim claim;
} status_req;

static void status_respond(status_req *sr)
{
    lf_index_row *row = &sr->row;
    const char *status = sr->parse_status ? sr->parse_status : lf_receiver_session_status(sr->r, row);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:s}", "session_id", row->id, "site", row->site,
                          "status", status, "size", (json_int_t)row->size, "stored_size",
                          (json_int_t)row->stored_size, "content_blake2b", row->hash, "received_ms",
                          (json_int_t)row->received_ms, "backend", row->backend);
    if (o && sr->parse_status && strcmp(sr->parse_status, "parsed") == 0)
        json_object_set_new(o, "events", json_integer(sr->events));
    if (o && sr->r->kv_sessions)
        json_object_set_new(o, "receiver", json_string(sr->shared ? sr->claim.receiver : sr->r->node));
    lf_buf b = LF_BUF_INIT(1 << 20);
    if (!o || lf_json_dump(o, &b) != 0) {
        json_decref(o);
        lf_buf_free(&b);
        lf_http_respond_error(sr->http, 500, "internal", "cannot build the answer", NULL);
        return;
    }
    json_decref(o);
    lf_http_respond(sr->http, 200, "application/json", b.data, b.len, NULL);
    lf_buf_free(&b);
}

static void status_work(uv_work_t *w)
{
    status_req *sr = w->data;
    if (sr->shared) {
        lf_buf err = LF_BUF_INIT(256);
        sr->claim_rc = lf_receiver_claim_get(sr->r, sr->row.id, &sr->claim, &err);
        if (sr->claim_rc != 0 && sr->claim_rc != -ENOENT)
            LF_WARN("sessions", "%s: reading its claim: %s", sr->row.id, lf_buf_cstr(&err));
        lf_buf_free(&err);
        if (sr->claim_rc != 0)
            return;
        lf_index_row *row = &sr->row;
        snprintf(row->site, sizeof row->site, "%s", sr->claim.site);
        row->size = sr->claim.size;
        row->stored_size = 0; /* the holder's figure; not in the claim */
        memcpy(row->hash, sr->claim.hash, sizeof row->hash);
        row->received_ms = sr->claim.received_ms;
        snprintf(row->backend, sizeof row->backend, "%s", sr->claim.backend);
        snprintf(row->status, sizeof row->status, "stored");
    }
    if (sr->r->read_routes)
        sr->parse_status = lf_read_routes_parse_status(sr->r->read_routes, sr->row.id, &sr->events);
}

static void status_done(uv_work_t *w, int status)
{
    status_req *sr = w->data;
    if (status != 0) { /* cancelled: answer from the index alone */
        sr->parse_status = NULL;
        if (sr->shared)
            sr->claim_rc = -ECANCELED;
    }
    if (sr->shared && sr->claim_rc == -ENOENT)
        lf_http_respond_error(sr->http, 404, "not_found", "no session with this id is stored", NULL);
    else if (sr->shared && sr->claim_rc != 0)
        lf_receiver_respond_error(sr->r, sr->http, 503, "queue_unavailable",
                                  "the shared session index (JetStream) cannot be read now");
    else
        status_respond(sr);
    lf_free(sr);
}

static void handle_status(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    if (lf_tokens_authorize(&r->tokens, req, "read") != 0)
        return;
    status_req *sr = lf_calloc(1, sizeof *sr);
    if (!sr) {
        lf_http_respond_error(req, 503, "out_of_memory", "try again", "Retry-After: 1\r\n");
        return;
    }
    sr->http = req;
    sr->r = r;
    const char *id = req->params[0];
    if (r->kv_sessions && lf_session_id_valid(id, strlen(id))) {
        int rc = lf_index_get(r->index, id, &sr->row);
        /* not here, or here but claimed by another receiver: its claim answers */
        if (rc == -ENOENT || (rc == 0 && strcmp(sr->row.status, "foreign") == 0)) {
            memset(&sr->row, 0, sizeof sr->row);
            snprintf(sr->row.id, sizeof sr->row.id, "%s", id);
            sr->shared = true;
            sr->work.data = sr;
            if (uv_queue_work(r->loop, &sr->work, status_work, status_done) != 0) {
                lf_receiver_respond_error(r, req, 503, "busy", "cannot schedule the lookup; retry");
                lf_free(sr);
            }
            return;
        }
    }
    if (!lookup(r, req, &sr->row)) {
        lf_free(sr);
        return;
    }
    sr->work.data = sr;
    if (!r->read_routes || uv_queue_work(r->loop, &sr->work, status_work, status_done) != 0) {
        status_respond(sr);
        lf_free(sr);
    }
}

static void handle_blob(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    if (lf_tokens_authorize(&r->tokens, req, "worker") != 0)
        return;
    lf_index_row row;
    if (!lookup(r, req, &row))
        return;
    int fd = -1;
    uint64_t size = 0;
    int rc = r->store->ops->open(r->store, row.location, &fd, &size);
    if (rc != 0) {
        LF_ERROR("blob", "%s: cannot open %s: %s", row.id, row.location, lf_strerror(rc));
        lf_receiver_respond_error(r, req, 503, "storage_unavailable", "the stored object cannot be read");
        return;
    }
    char hdr[160];
    snprintf(hdr, sizeof hdr, "X-Content-Blake2b: %s\r\n", row.hash);
    lf_http_respond_fd(req, 200, "application/octet-stream", fd, size, hdr);
}

typedef struct reparse_req {
    lf_queue_send_req send;
    lf_http_request *http;
    lf_receiver *r;
    char id[LF_SESSION_ID_LEN + 1];
} reparse_req;

static void on_reparse_sent(lf_queue_send_req *s, int status)
{
    reparse_req *rp = s->data;
    if (status != 0) {
        lf_receiver_respond_error(rp->r, rp->http, lf_receiver_storage_status(status), "queue_unavailable",
                                  lf_strerror(status));
    } else {
        char body[160];
        int n = snprintf(body, sizeof body, "{\"session_id\":\"%s\",\"status\":\"queued\",\"message_id\":%" PRIu64
                         "}", rp->id, s->id);
        LF_INFO("reparse", "%s queued again (message %" PRIu64 ")", rp->id, s->id);
        lf_http_respond(rp->http, 202, "application/json", body, (size_t)n, NULL);
    }
    lf_free(rp);
}

static void handle_reparse(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    if (lf_tokens_authorize(&r->tokens, req, "admin") != 0)
        return;
    lf_index_row row;
    if (!lookup(r, req, &row))
        return;
    reparse_req *rp = lf_calloc(1, sizeof *rp);
    if (!rp) {
        lf_http_respond_error(req, 503, "out_of_memory", "try again", "Retry-After: 1\r\n");
        return;
    }
    rp->http = req;
    rp->r = r;
    rp->send.data = rp;
    memcpy(rp->id, row.id, LF_SESSION_ID_LEN);
    int rc = r->queue ? lf_queue_send(r->queue, &rp->send, r->cfg->queue_name, rp->id, LF_SESSION_ID_LEN, NULL, 0,
                                      on_reparse_sent)
                      : LF_ECLOSED;
    if (rc != 0) { /* a failed call never fires its callback */
        lf_receiver_respond_error(r, req, lf_receiver_storage_status(rc), "queue_unavailable", lf_strerror(rc));
        lf_free(rp);
    }
}

int lf_receiver_session_routes(lf_receiver *r)
{
    lf_http_server *srv = lf_service_http(r->svc);
    int rc = lf_http_server_route(srv, LF_HTTP_GET | LF_HTTP_HEAD, "/v1/sessions/{id}", 0, handle_status, NULL, r);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_GET | LF_HTTP_HEAD, "/v1/sessions/{id}/blob", 0, handle_blob, NULL,
                                  r);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_POST, "/v1/sessions/{id}/reparse", 4096, handle_reparse, NULL, r);
    return rc;
}
