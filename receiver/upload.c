/* PUT /v1/sessions/{id}: signed session uploads.
 *
 * Headers hook (before the body is read): content type, backpressure, the Authorization header's
 * syntax, the site (unknown 401, disabled 403), the timestamp window (401) and the declared size.
 * Handler, on a worker thread: body hash and signature (constant time), zip and manifest checks
 * (lf_manifest_check_archive), idempotency against the index, encryption and durable store, index
 * row. Back on the loop: the send to the sessions queue (dedup id = session id), or with backend =
 * jetstream the publish (publish.c), which a re-upload repeats since JetStream may have lost it;
 * once it committed (the PubAck), the index row is marked queued and the client gets 201 (new) or
 * 200 (identical re-upload). A failed publish answers 503: the uploader retries.
 *
 * Several receivers on jetstream share the idempotency decision through claims in LF_SESSIONS
 * (receiver.h). Order for a new id: blob stored and fsync'd -> row "claiming" -> create-only claim ->
 * row "stored" -> publish -> 2xx -> "queued". Why it holds at every crash point:
 *  - before the claim: no 2xx was given and nothing is published (the sweep publishes "stored"
 *    rows only); the row is settled at the next start or sweep: claimed if the id is still
 *    free, "foreign" if another receiver claimed it meanwhile, so one id never has two contents queued;
 *  - after the claim: the row is (or, once settled, becomes) "stored", so recovery and the sweep
 *    publish it until JetStream acknowledges it.
 * An upload whose id another receiver claimed with the same content answers 200 duplicate without
 * storing or publishing anything: the claim is made only after the holder's blob is durable, and
 * the holder publishes it (its row stays "stored" until the PubAck). Other content answers 409.
 * Publishing it here instead would name this receiver, which lacks the blob, in the message. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_jskv.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_manifest.h"
#include "lf_secretstream.h"
#include "lf_sign.h"
#include "lf_zip.h"
#include "receiver.h"
#include "site_figures.h"

struct lf_inflight_id {
    struct lf_inflight_id *next;
    char id[LF_SESSION_ID_LEN + 1];
};

typedef struct upload {
    lf_receiver *r;
    lf_http_request *req;
    uv_work_t work;
    lf_queue_send_req send;
    lf_publish_req pub;
    struct lf_inflight_id inflight;
    uint64_t started_ns;
    uint64_t t_work_start, t_verified, t_stored, t_indexed, t_work_end, t_sent; /* stage times for the debug log */
    lf_sign_auth auth;
    uint8_t pk[LF_SIGN_PK_BYTES];
    int64_t now;
    /* results of the worker */
    int status;        /* HTTP error status, 0 when stored or duplicate */
    const char *code;  /* error code, static */
    const char *reason; /* rejection counter label, static; NULL for server-side failures */
    char msg[320];
    bool duplicate;
    bool need_enqueue;
    lf_index_row row;
} upload;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Refuses an upload: counted, recorded for its site (site_figures.h: metrics, index, a
 * rate-limited log line) and answered. auth is NULL until the signature header is parsed. */
static void reject(lf_receiver *r, lf_http_request *req, const lf_sign_auth *auth, int status, const char *reason,
                   const char *code, const char *msg)
{
    lf_receiver_count_rejection(r, reason);
    lf_counter_inc(status == 409 ? r->up_conflict : r->up_rejected);
    if (r->figures) {
        const char *id = req->n_params ? req->params[0] : NULL;
        if (id && !lf_session_id_valid(id, strlen(id)))
            id = NULL;
        const char *site = auth ? auth->site : NULL;
        bool registered = site && lf_sites_find(&r->sites, site) != NULL;
        lf_site_figures_refused(r->figures, site, registered, id, status, reason, msg);
    }
    lf_receiver_respond_error(r, req, status, code, msg);
}

static bool content_type_ok(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, "; \t");
    return n == 15 && strncasecmp(ct, "application/zip", 15) == 0;
}

/* The checks that need no body. On refusal it has responded and returns non-zero. */
static int precheck(lf_receiver *r, lf_http_request *req, lf_sign_auth *auth, uint8_t pk[LF_SIGN_PK_BYTES],
                    bool count_pressure)
{
    const char *id = req->n_params ? req->params[0] : "";
    if (r->stopping) {
        lf_receiver_respond_error(r, req, 503, "shutting_down", "the receiver is shutting down");
        return -1;
    }
    if (!content_type_ok(lf_http_request_header(req, "Content-Type"))) {
        reject(r, req, NULL, 415, "content_type", "unsupported_media_type",
               "the body must be a zip archive sent as Content-Type: application/zip");
        return -1;
    }
    if (!lf_session_id_valid(id, strlen(id))) {
        reject(r, req, NULL, 400, "bad_id", "bad_session_id", "session ids are 32 lowercase hex digits");
        return -1;
    }
    const char *cl = lf_http_request_header(req, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && *end == '\0' && n > r->cfg->max_upload_size) {
            reject(r, req, NULL, 413, "too_large", "too_large", "the upload is larger than store.max_upload_size");
            return -1;
        }
    }
    const char *h = lf_http_request_header(req, "Authorization");
    if (!h) {
        reject(r, req, NULL, 401, "missing_signature", "unauthorized", "the upload carries no Ferry-Ed25519 signature");
        return -1;
    }
    char err[160] = "";
    if (lf_sign_auth_parse(auth, h, strlen(h), err, sizeof err) != 0) {
        char msg[240];
        snprintf(msg, sizeof msg, "malformed Authorization header: %s", err);
        reject(r, req, NULL, 401, "malformed_signature", "unauthorized", msg);
        return -1;
    }
    lf_sites_refresh(&r->sites);
    const lf_site *site = lf_sites_find(&r->sites, auth->site);
    if (!site) {
        reject(r, req, auth, 401, "unknown_site", "unauthorized", "unknown site");
        return -1;
    }
    if (!site->enabled) {
        reject(r, req, auth, 403, "site_disabled", "forbidden", "this site is disabled");
        return -1;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t window = (int64_t)(r->cfg->signature_window_ms / 1000);
    if (auth->ts < now - window || auth->ts > now + window) {
        reject(r, req, auth, 401, "stale", "unauthorized",
               "the signature's timestamp is outside the accepted window (check the clock)");
        return -1;
    }
    if (count_pressure) {
        if (r->active_uploads >= r->cfg->max_concurrent_uploads) {
            reject(r, req, auth, 503, "busy", "busy", "too many uploads in progress; retry later");
            return -1;
        }
        const char *js_busy = r->jsq ? lf_receiver_js_busy(r) : NULL;
        if (js_busy) {
            reject(r, req, auth, 503, js_busy, js_busy, "the queue (JetStream) is unreachable; retry later");
            return -1;
        }
        if (r->queue_depth >= r->cfg->max_queue_depth) {
            reject(r, req, auth, 429, "queue_full", "queue_full", "the parsers are behind; retry later");
            return -1;
        }
        if (r->cfg->min_free_disk && r->free_disk < r->cfg->min_free_disk) {
            reject(r, req, auth, 503, "disk_low", "disk_low", "the store is low on free space; retry later");
            return -1;
        }
    }
    memcpy(pk, site->pk, LF_SIGN_PK_BYTES);
    return 0;
}

static int headers_hook(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    lf_sign_auth auth;
    uint8_t pk[LF_SIGN_PK_BYTES];
    return precheck(r, req, &auth, pk, true);
}

static void fail(upload *u, int status, const char *reason, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail(upload *u, int status, const char *reason, const char *code, const char *fmt, ...)
{
    u->status = status;
    u->reason = reason;
    u->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->msg, sizeof u->msg, fmt, ap);
    va_end(ap);
}

static void storage_fail(upload *u, const char *what, int rc)
{
    int st = lf_receiver_storage_status(rc);
    fail(u, st, NULL, st == 507 ? "storage_full" : "storage_unavailable", "%s: %s", what, lf_strerror(rc));
    LF_ERROR("upload", "%s: %s: %s", u->row.id[0] ? u->row.id : "?", what, lf_strerror(rc));
}

/* ---- the shared session index (backend = jetstream): claims in LF_SESSIONS ---- */

/* A claim's field into a fixed buffer, whole or not at all (a claim cut short could name another
 * receiver or place). */
static bool copy_whole(char *dst, size_t size, const char *src)
{
    return (size_t)snprintf(dst, size, "%s", src) < size;
}

int lf_receiver_claim_get(lf_receiver *r, const char *id, lf_session_claim *c, lf_buf *err)
{
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    int rc = lf_jskv_get(r->kv_sessions, id, &v, NULL, err);
    json_t *o = NULL;
    if (rc == 0 && lf_json_parse(v.data ? v.data : "", v.len, LF_JSKV_VALUE_MAX, &o, NULL) != 0)
        rc = LF_EFORMAT;
    lf_buf_free(&v);
    if (rc != 0) {
        if (rc == LF_EFORMAT)
            lf_buf_msgf(err, "%s: the claim of %s is not JSON", LF_JSKV_SESSIONS, id);
        return rc;
    }
    const char *site = NULL, *hash = NULL, *receiver = NULL, *backend = NULL, *location = NULL;
    memset(c, 0, sizeof *c);
    if (!json_is_object(o) || lf_json_get_string(o, "site", &site) != 0 || lf_json_get_uint(o, "size", &c->size) != 0 ||
        lf_json_get_string(o, "content_blake2b", &hash) != 0 || strlen(hash) != LF_HASH_HEX_SIZE - 1 ||
        lf_json_get_uint(o, "received_ms", &c->received_ms) != 0 || lf_json_get_string(o, "receiver", &receiver) != 0 ||
        lf_json_get_string(o, "backend", &backend) != 0 || lf_json_get_string(o, "location", &location) != 0) {
        json_decref(o);
        lf_buf_msgf(err, "%s: the claim of %s lacks a field", LF_JSKV_SESSIONS, id);
        return LF_EFORMAT;
    }
    /* receiver_id is absent from claims made before receivers had ids; present, it must be a string */
    const char *rid = "";
    bool whole = (!json_object_get(o, "receiver_id") || lf_json_get_string(o, "receiver_id", &rid) == 0) &&
                 copy_whole(c->site, sizeof c->site, site) && copy_whole(c->hash, sizeof c->hash, hash) &&
                 copy_whole(c->receiver, sizeof c->receiver, receiver) &&
                 copy_whole(c->receiver_id, sizeof c->receiver_id, rid) &&
                 copy_whole(c->backend, sizeof c->backend, backend) &&
                 copy_whole(c->location, sizeof c->location, location);
    json_decref(o);
    if (!whole) {
        lf_buf_msgf(err, "%s: the claim of %s has a field too long or not a string", LF_JSKV_SESSIONS, id);
        return LF_EFORMAT;
    }
    return 0;
}

bool lf_receiver_claim_is_ours(const lf_receiver *r, const lf_session_claim *c, const lf_index_row *row)
{
    /* the id survives a new host name or advertise_url; the name and the blob's place cover claims
     * made before ids and an index rebuilt by recovery (which makes a new id) */
    if (c->receiver_id[0] && strcmp(c->receiver_id, r->node_id) == 0)
        return true;
    return strcmp(c->receiver, r->node) == 0 && strcmp(c->backend, row->backend) == 0 &&
           strcmp(c->location, row->location) == 0;
}

int lf_receiver_claim(lf_receiver *r, const lf_index_row *row, lf_session_claim *other, lf_buf *err)
{
    json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:s, s:s}", "site", row->site, "size",
                          (json_int_t)row->size, "content_blake2b", row->hash, "received_ms",
                          (json_int_t)row->received_ms, "receiver", r->node, "receiver_id", r->node_id, "backend",
                          row->backend, "location", row->location);
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    int rc = o ? lf_json_dump(o, &v) : -ENOMEM;
    json_decref(o);
    /* a claim deleted between the refused create and the read is tried again (three times at most) */
    for (int attempt = 0; rc == 0 || (rc == -EAGAIN && attempt < 3); attempt++) {
        rc = lf_jskv_create(r->kv_sessions, row->id, v.data, v.len, NULL, err);
        if (rc != -EEXIST)
            break;
        rc = lf_receiver_claim_get(r, row->id, other, err);
        if (rc == -ENOENT) {
            rc = -EAGAIN;
            continue;
        }
        if (rc == 0) /* ours already: an earlier claim whose answer was lost, perhaps under another URL */
            rc = strcmp(other->hash, row->hash) == 0 && lf_receiver_claim_is_ours(r, other, row) ? 0 : -EEXIST;
        break;
    }
    lf_buf_free(&v);
    return rc;
}

static int settle_one(void *arg, const lf_index_row *row)
{
    lf_receiver *r = arg;
    lf_session_claim other;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_receiver_claim(r, row, &other, &err);
    if (rc == 0) {
        rc = lf_index_set_status(r->index, row->id, "stored"); /* the sweep publishes it */
    } else if (rc == -EEXIST) {
        LF_WARN("claims", "%s: claimed by %s (%s content): this receiver's copy is not published", row->id,
                other.receiver, strcmp(other.hash, row->hash) == 0 ? "the same" : "other");
        rc = lf_index_set_status(r->index, row->id, "foreign");
    }
    if (rc != 0)
        LF_WARN("claims", "%s: cannot settle its claim now (retried): %s%s%s", row->id, lf_strerror(rc),
                err.len ? ": " : "", lf_buf_cstr(&err));
    lf_buf_free(&err);
    /* one row that cannot be settled must not hold back the rows after it; only a lost connection
     * ends the pass (every row would fail the same way) */
    return rc != 0 && !lf_jetstream_connected(r->js);
}

void lf_receiver_settle_claims(lf_receiver *r)
{
    if (!r->kv_sessions)
        return;
    int rc = lf_index_each_status(r->index, "claiming", 1000, settle_one, r);
    if (rc != 0)
        LF_WARN("claims", "reading the index: %s", lf_strerror(rc));
}

/* Rows stored before this receiver claimed its sessions (an embedded queue moved by `queue migrate`,
 * an index from before claims) are claimed too, in id order, a batch at a time, so that no other
 * receiver stores one of their ids with other content; the cursor, then "done", is kept in the
 * index's meta. An id another receiver holds as well was accepted by both before claims: logged. */
typedef struct backfill {
    lf_receiver *r;
    char last[LF_SESSION_ID_LEN + 1];
    uint64_t claimed, conflicts;
    int rc;
} backfill;

static int backfill_one(void *arg, const lf_index_row *row)
{
    backfill *b = arg;
    lf_session_claim other;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_receiver_claim(b->r, row, &other, &err);
    if (rc == -EEXIST) {
        bool same = strcmp(other.hash, row->hash) == 0;
        if (!same)
            b->conflicts++;
        LF_LOG(same ? LF_LOG_INFO : LF_LOG_ERROR, "claims",
               "%s: accepted here before claims, and by %s as well (%s content); both copies were queued", row->id,
               other.receiver, same ? "the same" : "other");
        rc = 0;
    }
    if (rc != 0) {
        LF_WARN("claims", "%s: cannot claim it now (retried later): %s%s%s", row->id, lf_strerror(rc),
                err.len ? ": " : "", lf_buf_cstr(&err));
        b->rc = rc;
    } else {
        snprintf(b->last, sizeof b->last, "%s", row->id);
        b->claimed++;
    }
    lf_buf_free(&err);
    return rc != 0;
}

void lf_receiver_backfill_claims(lf_receiver *r, size_t max)
{
    if (!r->kv_sessions)
        return;
    char after[LF_SESSION_ID_LEN + 1] = "";
    int rc = lf_index_meta_get(r->index, "claims_backfilled_after", after, sizeof after);
    if (rc == 0 && strcmp(after, "done") == 0)
        return;
    if (rc != 0 && rc != -ENOENT) {
        LF_WARN("claims", "reading the index: %s", lf_strerror(rc));
        return;
    }
    backfill b = {.r = r};
    snprintf(b.last, sizeof b.last, "%s", rc == 0 ? after : "");
    rc = lf_index_each_own_after(r->index, b.last, max, backfill_one, &b);
    bool done = rc == 0 && b.rc == 0 && b.claimed < max;
    if (rc == 0 && (done || b.claimed))
        rc = lf_index_meta_set(r->index, "claims_backfilled_after", done ? "done" : b.last);
    if (rc != 0)
        LF_WARN("claims", "backfilling the claims: %s", lf_strerror(rc));
    else if (b.claimed || b.conflicts)
        LF_INFO("claims", "claimed %" PRIu64 " sessions stored before claims (%" PRIu64 " with other content "
                "elsewhere)%s", b.claimed, b.conflicts, done ? "; every stored session is claimed" : "; more later");
}

static void claim_fail(upload *u, const char *what, int rc, lf_buf *err)
{
    fail(u, 503, NULL, "queue_unavailable", "%s: %s; retry", what, lf_strerror(rc));
    LF_WARN("upload", "%s: %s: %s%s%s", u->row.id, what, lf_strerror(rc), err && err->len ? ": " : "",
            err ? lf_buf_cstr(err) : "");
}

/* Another receiver holds the id: the same content is a duplicate (its holder publishes it: its row
 * is "stored" until JetStream acknowledged it, and its sweep repeats the publish), other content a
 * conflict. Nothing is published from here: the blob is the holder's. */
static void answer_from_claim(upload *u, const lf_session_claim *c, const char *hex)
{
    if (strcmp(c->hash, hex) != 0) {
        fail(u, 409, "conflict", "conflict", "a session with this id and other content is stored (by %.200s)",
             c->receiver);
        return;
    }
    u->duplicate = true;
    u->need_enqueue = false;
    snprintf(u->row.site, sizeof u->row.site, "%s", c->site);
    u->row.size = c->size;
    memcpy(u->row.hash, c->hash, sizeof u->row.hash);
    u->row.received_ms = c->received_ms;
    snprintf(u->row.status, sizeof u->row.status, "queued");
}

/* The blob and its row ("claiming") are here: claims the id, then the row is "stored" and published,
 * or "foreign" when another receiver holds the id (answered from its claim). */
static void claim_stored(upload *u, const lf_index_row *row)
{
    lf_receiver *r = u->r;
    lf_session_claim other;
    lf_buf err = LF_BUF_INIT(256);
    int rc = lf_receiver_claim(r, row, &other, &err);
    if (rc == 0) {
        rc = lf_index_set_status(r->index, row->id, "stored");
        if (rc != 0) {
            storage_fail(u, "indexing the session", rc);
        } else {
            if (row != &u->row) {
                u->row = *row;
                u->duplicate = true;
            }
            snprintf(u->row.status, sizeof u->row.status, "stored");
            u->need_enqueue = true;
        }
    } else if (rc == -EEXIST) {
        rc = lf_index_set_status(r->index, row->id, "foreign");
        if (rc != 0)
            LF_WARN("upload", "%s: cannot mark the row foreign: %s (settled later)", row->id, lf_strerror(rc));
        char hex[LF_HASH_HEX_SIZE];
        memcpy(hex, row->hash, sizeof hex);
        answer_from_claim(u, &other, hex);
    } else {
        /* the row stays "claiming": a retry or the next sweep makes the claim */
        claim_fail(u, "claiming the session id on JetStream", rc, &err);
    }
    lf_buf_free(&err);
}

static void work_upload(uv_work_t *w)
{
    upload *u = w->data;
    lf_receiver *r = u->r;
    lf_http_request *req = u->req;
    const lf_http_body *body = &req->body;
    u->t_work_start = uv_hrtime();
    snprintf(u->row.id, sizeof u->row.id, "%s", req->params[0]);

    uint8_t hash[LF_HASH_BYTES];
    int rc = 0;
    if (body->fd >= 0) {
        uint64_t n = 0;
        if (lseek(body->fd, 0, SEEK_SET) < 0)
            rc = -errno;
        else
            rc = lf_crypto_hash_fd(body->fd, hash, &n);
        if (rc != 0) {
            storage_fail(u, "reading the body", rc);
            return;
        }
    } else {
        lf_crypto_hash(hash, body->data ? body->data : "", (size_t)body->len);
    }
    enum lf_sign_status sst = LF_SIGN_OK;
    int64_t window = (int64_t)(r->cfg->signature_window_ms / 1000);
    rc = lf_sign_verify(&u->auth, u->pk, "PUT", req->path, hash, (int64_t)time(NULL), window, &sst);
    if (rc != 0) {
        if (sst == LF_SIGN_STALE || sst == LF_SIGN_FUTURE) {
            fail(u, 401, "stale", "unauthorized", "the signature's timestamp is outside the window");
            return;
        }
        fail(u, 401, "bad_signature", "unauthorized", "the signature does not verify");
        return;
    }

    lf_zip_limits lim;
    lf_zip_limits_default(&lim);
    lim.max_entries = (size_t)r->cfg->zip_max_entries;
    lim.max_total_size = r->cfg->zip_max_total_size;
    lim.max_entry_ratio = r->cfg->zip_max_ratio;
    lim.max_total_ratio = r->cfg->zip_max_ratio;
    lf_zip *z = NULL;
    lf_zip_error zerr = {0};
    if (body->fd >= 0)
        rc = lf_zip_open_fd(&z, body->fd, &lim, &zerr);
    else
        rc = lf_zip_open_mem(&z, body->data ? body->data : "", (size_t)body->len, &lim, &zerr);
    if (rc != 0) {
        if (rc == -ENOMEM || rc == -EIO) {
            storage_fail(u, "reading the archive", rc);
            return;
        }
        fail(u, 400, zerr.reason == LF_ZIP_RATIO || zerr.reason == LF_ZIP_TOO_LARGE ? "zip_limit" : "bad_zip",
             "invalid_archive", "%s: %s", lf_zip_reason_name(zerr.reason), zerr.msg);
        return;
    }
    lf_manifest m;
    char err[256] = "";
    rc = lf_manifest_check_archive(z, &m, NULL, NULL, err, sizeof err);
    lf_zip_close(z);
    if (rc != 0) {
        if (rc == -ENOMEM || rc == -EIO) {
            storage_fail(u, "reading the archive", rc);
            return;
        }
        if (rc == LF_EFORMAT)
            fail(u, 400, "bad_manifest", "invalid_manifest", "%s", err);
        else if (rc == LF_ELIMIT)
            fail(u, 400, "zip_limit", "invalid_archive", "%s", err);
        else
            fail(u, 400, "content_mismatch", "invalid_archive", "%s", err);
        return;
    }
    bool id_ok = strcmp(m.session_id, u->row.id) == 0;
    bool site_ok = strcmp(m.site, u->auth.site) == 0;
    lf_manifest_free(&m);
    if (!id_ok) {
        fail(u, 400, "id_mismatch", "id_mismatch", "the manifest's session_id is not the id in the URL");
        return;
    }
    if (!site_ok) {
        fail(u, 403, "site_mismatch", "forbidden", "the manifest names another site than the signer");
        return;
    }

    u->t_verified = uv_hrtime();
    char hex[LF_HASH_HEX_SIZE];
    lf_crypto_hex_encode(hex, hash, sizeof hash);
    lf_index_row old;
    rc = lf_index_get(r->index, u->row.id, &old);
    /* "claiming" and "foreign" mean something only with the shared index; a receiver moved back to
     * the embedded queue treats its rows as its own */
    bool foreign = r->kv_sessions && rc == 0 && strcmp(old.status, "foreign") == 0;
    bool claiming = r->kv_sessions && rc == 0 && strcmp(old.status, "claiming") == 0;
    bool other_content = rc == 0 && strcmp(old.hash, hex) != 0;
    if (rc == 0 && !foreign && !(claiming && other_content)) {
        if (other_content) {
            fail(u, 409, "conflict", "conflict", "a session with this id and other content is stored");
            return;
        }
        if (claiming) { /* stored here, its claim not yet made */
            claim_stored(u, &old);
            return;
        }
        u->duplicate = true;
        /* JetStream may have lost an acknowledged publish (a server's power cut before its sync) */
        u->need_enqueue = r->jsq || strcmp(old.status, "queued") != 0;
        u->row = old;
        return;
    }
    if (rc != 0 && rc != -ENOENT) {
        storage_fail(u, "reading the index", rc);
        return;
    }
    if (r->kv_sessions) {
        /* another receiver may hold it: answer from its claim without storing a copy */
        lf_session_claim c;
        lf_buf why = LF_BUF_INIT(256);
        rc = lf_receiver_claim_get(r, u->row.id, &c, &why);
        if (rc == 0) {
            answer_from_claim(u, &c, hex);
        } else if (rc == -ENOENT && claiming) {
            /* ours, with other content, not claimed yet: it will be claimed with ours */
            fail(u, 409, "conflict", "conflict", "a session with this id and other content is stored");
        } else if (rc != -ENOENT || foreign) {
            /* a foreign row whose claim is gone (an operator purged it): nothing to decide from */
            claim_fail(u, "reading the session's claim", rc == -ENOENT ? -EIO : rc, &why);
        }
        lf_buf_free(&why);
        if (rc != -ENOENT || foreign || claiming)
            return;
    }

    const lf_keyring *kr = lf_receiver_keys_get(&r->keys);
    const lf_key *key = lf_keyring_current(kr);
    if (!key) {
        storage_fail(u, "no current encryption key", -ENOKEY);
        return;
    }
    lf_store_src src = {body->data, body->fd, body->len};
    u->row.received_ms = wall_ms();
    rc = r->store->ops->put(r->store, u->row.id, key, &src, u->row.received_ms, u->row.location,
                            sizeof u->row.location, &u->row.stored_size);
    if (rc != 0) {
        storage_fail(u, "storing the session", rc);
        return;
    }
    u->t_stored = uv_hrtime();
    snprintf(u->row.site, sizeof u->row.site, "%s", u->auth.site);
    u->row.size = body->len;
    memcpy(u->row.hash, hex, sizeof hex);
    snprintf(u->row.backend, sizeof u->row.backend, "%s", r->store->ops->name);
    /* shared index: not publishable ("stored") before the claim is made */
    snprintf(u->row.status, sizeof u->row.status, "%s", r->kv_sessions ? "claiming" : "stored");
    rc = lf_index_insert(r->index, &u->row);
    if (rc != 0) {
        storage_fail(u, "indexing the session", rc);
        return;
    }
    u->t_indexed = uv_hrtime();
    if (r->kv_sessions) {
        claim_stored(u, &u->row);
        return;
    }
    u->need_enqueue = true;
}

static void finish(upload *u)
{
    lf_receiver *r = u->r;
    struct lf_inflight_id **pp = &r->inflight;
    while (*pp && *pp != &u->inflight)
        pp = &(*pp)->next;
    if (*pp)
        *pp = u->inflight.next;
    r->active_uploads--;
    lf_gauge_set(r->g_active, r->active_uploads);
    lf_histogram_observe(r->h_upload_seconds, (double)(uv_hrtime() - u->started_ns) / 1e9);
    lf_free(u);
}

/* Milliseconds between two stage times; 0 when a stage did not run (a re-upload stores nothing). */
static double ms_between(uint64_t from_ns, uint64_t to_ns)
{
    return from_ns && to_ns ? (double)(to_ns - from_ns) / 1e6 : 0.0;
}

static void respond_ok(upload *u)
{
    lf_receiver *r = u->r;
    uint64_t t = uv_hrtime();
    LF_DEBUG("upload",
             "%s: pool wait %.2f ms, verify %.2f ms, store %.2f ms, index %.2f ms, to loop %.2f ms, queue %.2f ms, "
             "respond %.2f ms",
             u->row.id, ms_between(u->started_ns, u->t_work_start), ms_between(u->t_work_start, u->t_verified),
             ms_between(u->t_verified, u->t_stored), ms_between(u->t_stored, u->t_indexed),
             ms_between(u->t_indexed, u->t_work_end), ms_between(u->t_work_end, u->t_sent),
             ms_between(u->t_sent ? u->t_sent : u->t_work_end, t));
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"session_id\":\"%s\",\"status\":\"queued\",\"duplicate\":%s,\"size\":%" PRIu64
                     ",\"content_blake2b\":\"%s\",\"site\":\"%s\"}",
                     u->row.id, u->duplicate ? "true" : "false", u->row.size, u->row.hash, u->row.site);
    lf_counter_inc(u->duplicate ? r->up_duplicate : r->up_stored);
    if (!u->duplicate) {
        lf_counter_add(r->bytes_received, u->row.size);
        if (r->figures)
            lf_site_figures_stored(r->figures, u->row.site, u->row.size);
    }
    lf_http_respond(u->req, u->duplicate ? 200 : 201, "application/json", body, (size_t)n, NULL);
    finish(u);
}

/* Marks are batched: the answer does not wait for them (a lost mark only means recovery re-sends
 * the id with the same dedup id), and one transaction covers every id pending at that moment. */
static void work_marks(uv_work_t *w)
{
    lf_receiver *r = w->data;
    int rc = lf_index_set_status_many(r->index, (const char (*)[LF_SESSION_ID_LEN + 1])r->mark_batch,
                                      r->mark_batch_count, "queued");
    if (rc != 0)
        LF_WARN("upload", "cannot mark %zu sessions queued in the index: %s (recovery re-sends them)",
                r->mark_batch_count, lf_strerror(rc));
}

static void kick_marks(lf_receiver *r);

static void after_marks(uv_work_t *w, int status)
{
    (void)status;
    lf_receiver *r = w->data;
    r->mark_running = false;
    r->mark_batch_count = 0;
    if (r->release_pending) {
        lf_receiver_job_done(r);
        return;
    }
    kick_marks(r);
}

static void kick_marks(lf_receiver *r)
{
    if (r->mark_running || r->mark_count == 0 || r->stopping)
        return;
    /* swap the pending list (and its capacity) with the idle batch list */
    char(*tmp)[LF_SESSION_ID_LEN + 1] = r->mark_batch;
    size_t tcap = r->mark_batch_cap;
    r->mark_batch = r->mark_pending;
    r->mark_batch_cap = r->mark_cap;
    r->mark_batch_count = r->mark_count;
    r->mark_pending = tmp;
    r->mark_cap = tcap;
    r->mark_count = 0;
    r->mark_work.data = r;
    if (uv_queue_work(r->loop, &r->mark_work, work_marks, after_marks) == 0)
        r->mark_running = true;
    else
        r->mark_batch_count = 0; /* recovery re-sends them */
}

static void queue_mark(lf_receiver *r, const char *id)
{
    if (r->mark_count == r->mark_cap) {
        size_t ncap = r->mark_cap ? r->mark_cap * 2 : 64;
        void *a = lf_realloc(r->mark_pending, ncap * sizeof *r->mark_pending);
        if (!a)
            return; /* recovery re-sends it */
        r->mark_pending = a;
        r->mark_cap = ncap;
    }
    snprintf(r->mark_pending[r->mark_count++], LF_SESSION_ID_LEN + 1, "%s", id);
    kick_marks(r);
}

void lf_receiver_flush_marks(lf_receiver *r)
{
    if (r->mark_count && r->index)
        lf_index_set_status_many(r->index, (const char (*)[LF_SESSION_ID_LEN + 1])r->mark_pending, r->mark_count,
                                 "queued");
    r->mark_count = 0;
    lf_free(r->mark_pending);
    lf_free(r->mark_batch);
    r->mark_pending = r->mark_batch = NULL;
    r->mark_cap = r->mark_batch_cap = 0;
}

const char *lf_receiver_session_status(lf_receiver *r, const lf_index_row *row)
{
    if (strcmp(row->status, "stored") == 0) {
        for (size_t i = 0; i < r->mark_count; i++)
            if (strcmp(r->mark_pending[i], row->id) == 0)
                return "queued";
        for (size_t i = 0; i < r->mark_batch_count; i++)
            if (strcmp(r->mark_batch[i], row->id) == 0)
                return "queued";
    }
    return row->status;
}

static void respond_failure(upload *u)
{
    lf_receiver *r = u->r;
    if (u->reason) {
        reject(r, u->req, &u->auth, u->status, u->reason, u->code, u->msg);
    } else {
        lf_counter_inc(r->up_failed);
        /* a session stored but not queued (JetStream away) is the queue's failure, not the store's */
        bool unqueued = u->code && strcmp(u->code, "queue_unavailable") == 0;
        lf_receiver_count_rejection(r, u->status == 507 ? "storage_full" : unqueued ? "queue_unavailable" : "storage_error");
        lf_receiver_respond_error(r, u->req, u->status, u->code, u->msg);
    }
    finish(u);
}

static void on_sent(lf_queue_send_req *s, int status)
{
    upload *u = s->data;
    u->t_sent = uv_hrtime();
    if (status != 0) {
        storage_fail(u, "queueing the session", status);
        respond_failure(u);
        return;
    }
    queue_mark(u->r, u->row.id);
    respond_ok(u);
}

static void on_published(lf_publish_req *p, int status)
{
    upload *u = p->data;
    u->t_sent = uv_hrtime();
    if (status != 0) {
        LF_WARN("upload", "%s: publishing to JetStream: %s (answered 503; the sweep or a retry publishes it)",
                u->row.id, p->err);
        fail(u, 503, NULL, "queue_unavailable", "the session is stored but could not be queued (%s); retry",
             lf_strerror(status));
        respond_failure(u);
        return;
    }
    queue_mark(u->r, u->row.id);
    respond_ok(u);
}

static void after_upload(uv_work_t *w, int status)
{
    upload *u = w->data;
    lf_receiver *r = u->r;
    u->t_work_end = uv_hrtime();
    if (status != 0 && u->status == 0)
        storage_fail(u, "upload cancelled", -ECANCELED);
    if (u->status != 0) {
        respond_failure(u);
        return;
    }
    if (u->status == 0 && u->row.status[0] == '\0')
        snprintf(u->row.status, sizeof u->row.status, "queued");
    if (!u->need_enqueue) {
        respond_ok(u);
        return;
    }
    if (r->jsq) {
        u->pub.data = u;
        int rc = lf_receiver_js_publish(r, &u->pub, u->row.id, on_published);
        if (rc != 0) {
            fail(u, 503, NULL, "queue_unavailable", "the session is stored but could not be queued now (%s); retry",
                 lf_strerror(rc));
            respond_failure(u);
        }
        return;
    }
    u->send.data = u;
    int rc = r->queue ? lf_queue_send(r->queue, &u->send, r->cfg->queue_name, u->row.id, LF_SESSION_ID_LEN,
                                      u->row.id, 0, on_sent)
                      : LF_ECLOSED;
    if (rc != 0) {
        storage_fail(u, "queueing the session", rc);
        respond_failure(u);
    }
}

static void handle_put(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    upload *u = lf_calloc(1, sizeof *u);
    if (!u) {
        lf_receiver_respond_error(r, req, 503, "no_memory", "out of memory; retry later");
        return;
    }
    u->r = r;
    u->req = req;
    u->started_ns = uv_hrtime();
    /* the hook passed; sites may have changed since, so check again (no pressure re-check: the
     * body has been read already) */
    if (precheck(r, req, &u->auth, u->pk, false) != 0) {
        lf_free(u);
        return;
    }
    const char *id = req->params[0];
    for (struct lf_inflight_id *p = r->inflight; p; p = p->next) {
        if (strcmp(p->id, id) == 0) {
            reject(r, req, &u->auth, 503, "in_progress", "in_progress",
                   "an upload of this session is in progress; retry later");
            lf_free(u);
            return;
        }
    }
    snprintf(u->inflight.id, sizeof u->inflight.id, "%s", id);
    u->inflight.next = r->inflight;
    r->inflight = &u->inflight;
    r->active_uploads++;
    lf_gauge_set(r->g_active, r->active_uploads);
    u->work.data = u;
    int rc = uv_queue_work(r->loop, &u->work, work_upload, after_upload);
    if (rc != 0) {
        storage_fail(u, "scheduling", -ENOMEM);
        respond_failure(u);
    }
}

int lf_receiver_upload_routes(lf_receiver *r)
{
    return lf_http_server_route(lf_service_http(r->svc), LF_HTTP_PUT, "/v1/sessions/{id}", r->cfg->max_upload_size,
                                handle_put, headers_hook, r);
}
