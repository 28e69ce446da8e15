/* GET /v1/probe: what `logferry-uploader test` asks with a request signed exactly as an upload (the
 * body is empty): is this site registered and enabled, does the key verify, and how far apart are
 * the two clocks. Every answer carries the receiver's time and signature window, the refusals too,
 * so that a site whose clock is off learns by how much. Probes are not uploads: they are neither
 * counted nor logged as refused uploads. */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lf_crypto.h"
#include "lf_sign.h"
#include "receiver.h"

static void answer(lf_http_request *req, int status, const char *error, const char *message, const char *site,
                   int64_t now, int64_t window, int64_t skew, bool have_skew)
{
    json_t *o = json_pack("{s:I,s:I,s:o}", "server_time", (json_int_t)now, "signature_window_s", (json_int_t)window,
                          "clock_skew_s", have_skew ? json_integer((json_int_t)skew) : json_null());
    if (o && error) {
        json_object_set_new(o, "error", json_string(error));
        json_object_set_new(o, "message", json_string(message));
    } else if (o) {
        json_object_set_new(o, "site", json_string(site));
        json_object_set_new(o, "state", json_string("enabled"));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        lf_http_respond_error(req, 503, "no_memory", "out of memory", NULL);
        return;
    }
    lf_http_respond(req, status, "application/json", text, strlen(text), NULL);
    free(text);
}

static void handle_probe(lf_http_request *req)
{
    lf_receiver *r = req->route_data;
    int64_t now = (int64_t)time(NULL);
    int64_t window = (int64_t)(r->cfg->signature_window_ms / 1000);
    const char *h = lf_http_request_header(req, "Authorization");
    lf_sign_auth auth;
    char err[160] = "";
    if (!h) {
        answer(req, 401, "missing_signature", "the probe carries no Ferry-Ed25519 signature", NULL, now, window, 0,
               false);
        return;
    }
    if (lf_sign_auth_parse(&auth, h, strlen(h), err, sizeof err) != 0) {
        answer(req, 401, "malformed_signature", "malformed Authorization header", NULL, now, window, 0, false);
        return;
    }
    lf_sites_refresh(&r->sites);
    const lf_site *site = lf_sites_find(&r->sites, auth.site);
    if (!site) {
        answer(req, 401, "unknown_site", "this site is not registered", NULL, now, window, 0, false);
        return;
    }
    /* authenticate first, whatever the time, so that the skew is only told to the key's holder */
    uint8_t hash[LF_HASH_BYTES];
    lf_crypto_hash(hash, "", 0);
    enum lf_sign_status st = LF_SIGN_OK;
    if (lf_sign_verify(&auth, site->pk, "GET", req->path, hash, auth.ts, 0, &st) != 0) {
        answer(req, 401, "bad_signature", "the signature does not verify with the key registered for this site",
               NULL, now, window, 0, false);
        return;
    }
    int64_t skew = now - auth.ts;
    if (!site->enabled) {
        answer(req, 403, "site_disabled", "this site is disabled", NULL, now, window, skew, true);
        return;
    }
    if (skew > window || skew < -window) {
        answer(req, 401, "stale", "the signature's time is outside the accepted window (check the clock)", NULL, now,
               window, skew, true);
        return;
    }
    answer(req, 200, NULL, NULL, site->name, now, window, skew, true);
}

int lf_receiver_probe_routes(lf_receiver *r)
{
    return lf_http_server_route(lf_service_http(r->svc), LF_HTTP_GET, "/v1/probe", 0, handle_probe, NULL, r);
}
