/* Session blobs from the receiver to a log the engine can read (see fetch.h). */
#include "fetch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_http_client.h"
#include "lf_secretstream.h"
#include "lf_zip.h"

struct lf_parser_fetch {
    lf_http_client *http;
    char *base_url;
    char auth[512];
    const lf_keyring *kr;
    uint64_t max_log;
};

int lf_parser_fetch_new(const char *base_url, const char *token, const lf_keyring *kr, uint64_t max_log,
                        lf_parser_fetch **out)
{
    lf_parser_fetch *f = lf_calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    size_t n = strlen(base_url);
    while (n && base_url[n - 1] == '/')
        n--;
    f->base_url = strndup(base_url, n);
    f->kr = kr;
    f->max_log = max_log;
    if (token)
        snprintf(f->auth, sizeof f->auth, "Authorization: Bearer %s", token);
    lf_http_client_opts o;
    lf_http_client_opts_default(&o);
    o.max_attempts = 3;
    /* A whole large blob may take minutes, but a receiver that went silent (a cut cable, a host that
     * vanished) must be found out in seconds, not after the 300 s: a short connect timeout and a
     * low-speed limit bound each attempt, so the session is set aside as away (service.c) within
     * about half a minute while the other receivers' sessions go on. */
    o.connect_timeout_ms = 5000;
    o.low_speed_limit = 1024;
    o.low_speed_time_s = 15;
    o.timeout_ms = 300000;
    o.max_response = (size_t)max_log + (1u << 20);
    int rc = f->base_url ? lf_http_client_new(NULL, &o, &f->http) : -ENOMEM;
    if (rc < 0) {
        lf_parser_fetch_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void lf_parser_fetch_free(lf_parser_fetch *f)
{
    if (!f)
        return;
    if (f->http)
        lf_http_client_close(f->http, NULL, NULL);
    sodium_memzero(f->auth, sizeof f->auth);
    free(f->base_url);
    lf_free(f);
}

static int fail(lf_parser_fetch_result *res, const char *stage, bool transient, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(lf_parser_fetch_result *res, const char *stage, bool transient, int rc, const char *fmt, ...)
{
    res->stage = stage;
    res->transient = transient;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->reason, sizeof res->reason, fmt, ap);
    va_end(ap);
    return rc < 0 ? rc : LF_EFORMAT;
}

static int write_log(void *ctx, const void *data, size_t len)
{
    return lf_write_all(*(int *)ctx, data, len);
}

int lf_parser_open_object(const lf_keyring *kr, uint64_t max_log, const void *obj, size_t len, int log_fd,
                          lf_manifest *m, lf_parser_fetch_result *res)
{
    lf_manifest_init(m);
    lf_buf plain = LF_BUF_INIT((size_t)max_log + (1u << 20));
    int rc = lf_secretstream_decrypt_buf(kr, obj, len, &plain);
    if (rc < 0) {
        lf_buf_free(&plain);
        /* an unknown key may arrive with the next copy of the keyring: still not worth a quick retry */
        return fail(res, "decrypt", false, rc, "decrypting the stored object: %s", lf_strerror(rc));
    }
    lf_zip_limits lim;
    lf_zip_limits_default(&lim);
    if (lim.max_total_size > max_log)
        lim.max_total_size = max_log;
    lf_zip *z = NULL;
    lf_zip_error zerr = {0};
    rc = lf_zip_open_mem(&z, plain.data ? plain.data : "", plain.len, &lim, &zerr);
    if (rc < 0) {
        lf_buf_free(&plain);
        return fail(res, "archive", false, rc, "opening the archive: %s (%s)", zerr.msg, lf_zip_reason_name(zerr.reason));
    }
    char err[512] = "";
    rc = lf_manifest_check_archive(z, m, write_log, &log_fd, err, sizeof err);
    lf_zip_close(z);
    lf_buf_free(&plain);
    if (rc < 0)
        return fail(res, "archive", false, rc, "checking the archive: %s (%s)", err[0] ? err : "-", lf_strerror(rc));
    return 0;
}

int lf_parser_fetch_session(lf_parser_fetch *f, const char *id, int log_fd, lf_manifest *m,
                            lf_parser_fetch_result *res)
{
    lf_manifest_init(m);
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/sessions/%s/blob", f->base_url, id);
    const char *headers[2] = {f->auth[0] ? f->auth : NULL, NULL};
    lf_http_client_request req = {.method = "GET", .url = url, .headers = headers};
    lf_http_response r;
    int rc = lf_http_client_fetch(f->http, &req, &r);
    if (rc < 0) {
        lf_http_response_free(&r);
        res->away = rc != LF_ELIMIT;
        return fail(res, "fetch", rc != LF_ELIMIT, rc, "GET %s: %s", url, lf_strerror(rc));
    }
    if (r.status != 200) {
        int st = r.status;
        lf_http_response_free(&r);
        /* 5xx and 429: come back later; 404 (unknown session) and the rest will not get better. A
         * 500 may be this session's own (an object the receiver cannot read): not "away". */
        bool transient = st == 429 || st >= 500;
        res->away = st == 429 || st == 502 || st == 503 || st == 504;
        return fail(res, "fetch", transient, st == 401 || st == 403 ? LF_EAUTH : LF_EHTTP, "GET %s: HTTP %d", url, st);
    }
    rc = lf_parser_open_object(f->kr, f->max_log, r.body.data ? r.body.data : "", r.body.len, log_fd, m, res);
    lf_http_response_free(&r);
    return rc;
}
