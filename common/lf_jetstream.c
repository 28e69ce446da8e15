#include "lf_jetstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

struct lf_jetstream {
    natsConnection *nc;
    jsCtx *js;
    int64_t timeout_ms;
};

void lf_jetstream_options_init(lf_jetstream_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 2000;
    o->request_timeout_ms = 5000;
}

int lf_jetstream_error(int nats_status, int js_errcode, const char *what, lf_buf *err)
{
    natsStatus s = (natsStatus)nats_status;
    int rc;
    switch (s) {
    case NATS_OK: return 0;
    case NATS_NO_MEMORY: rc = -ENOMEM; break;
    case NATS_INVALID_ARG: rc = -EINVAL; break;
    case NATS_TIMEOUT: rc = -ETIMEDOUT; break;
    case NATS_NO_SERVER: rc = -ECONNREFUSED; break;
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION: rc = -ENOTCONN; break;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED: rc = LF_EAUTH; break;
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_REQUIRED:
    case NATS_SECURE_CONNECTION_WANTED: rc = -EPROTO; break;
    case NATS_NOT_FOUND: rc = -ENOENT; break;
    default: rc = -EIO; break;
    }
    /* JetStream's own "not found" codes (stream 10059, consumer 10014, message 10037) */
    if (js_errcode == 10059 || js_errcode == 10014 || js_errcode == 10037)
        rc = -ENOENT;
    if (err) {
        /* libnats' last error text names the server or the API reply, never a credential: the
         * options' user, password and seed are not part of any message it formats */
        natsStatus last = NATS_OK;
        const char *text = nats_GetLastError(&last);
        /* the last error is per thread and outlives its call: use it only when it is this one */
        if (last != s)
            text = NULL;
        if (js_errcode)
            lf_buf_msgf(err, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(s), js_errcode,
                        text && *text ? ": " : "", text ? text : "");
        else
            lf_buf_msgf(err, "%s: %s%s%s", what, natsStatus_GetText(s), text && *text ? ": " : "",
                        text ? text : "");
    }
    return rc;
}

static int set_options(natsOptions *no, const lf_jetstream_options *o, lf_buf *err)
{
    natsStatus s = natsOptions_SetServers(no, (const char **)o->servers, (int)o->nservers);
    /* the list is the operator's order of preference (and a test's deterministic choice) */
    if (s == NATS_OK)
        s = natsOptions_SetNoRandomize(no, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(no, o->connect_timeout_ms);
    if (s == NATS_OK && o->name)
        s = natsOptions_SetName(no, o->name);
    /* a daemon keeps its connection through server restarts and leader changes */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(no, 250);
    if (s == NATS_OK && o->user)
        s = natsOptions_SetUserInfo(no, o->user, o->password ? o->password : "");
    if (s == NATS_OK && o->nkey_public)
        s = natsOptions_SetNKeyFromSeed(no, o->nkey_public, o->nkey_seed_file);
    if (s != NATS_OK)
        return lf_jetstream_error(s, 0, "NATS options", err);
    if (o->ca_file) {
        s = natsOptions_SetSecure(no, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(no, o->ca_file);
        if (s != NATS_OK)
            return lf_jetstream_error(s, 0, "loading the NATS CA file", err);
    }
    return 0;
}

int lf_jetstream_connect(const lf_jetstream_options *o, lf_jetstream **out, lf_buf *err)
{
    *out = NULL;
    if (!o->nservers || o->nservers > LF_JETSTREAM_SERVERS_MAX || (o->user && o->nkey_public) ||
        (o->nkey_public && !o->nkey_seed_file) || o->connect_timeout_ms <= 0 || o->request_timeout_ms <= 0) {
        lf_buf_msgf(err, "NATS options: servers, one kind of credentials and positive timeouts are required");
        return -EINVAL;
    }
    for (size_t i = 0; i < o->nservers; i++)
        if (!o->servers[i] || !*o->servers[i]) {
            lf_buf_msgf(err, "NATS options: empty server URL");
            return -EINVAL;
        }
    lf_jetstream *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->timeout_ms = o->request_timeout_ms;
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    int rc = s == NATS_OK ? set_options(no, o, err) : lf_jetstream_error(s, 0, "NATS options", err);
    if (!rc) {
        s = natsConnection_Connect(&j->nc, no);
        if (s != NATS_OK)
            rc = lf_jetstream_error(s, 0, "connecting to NATS", err);
    }
    if (!rc) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = o->request_timeout_ms;
        s = natsConnection_JetStream(&j->js, j->nc, &jo);
        if (s != NATS_OK)
            rc = lf_jetstream_error(s, 0, "JetStream context", err);
    }
    natsOptions_Destroy(no);
    if (rc) {
        lf_jetstream_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

void lf_jetstream_close(lf_jetstream *js)
{
    if (!js)
        return;
    jsCtx_Destroy(js->js);
    if (js->nc) {
        natsConnection_Close(js->nc);
        natsConnection_Destroy(js->nc);
    }
    free(js);
}

void lf_jetstream_shutdown(void)
{
    /* waits for libnats' threads to end, so a leak checker at exit sees their memory freed */
    natsStatus s = nats_CloseAndWait(5000);
    if (s != NATS_OK)
        nats_Close();
}

int lf_jetstream_ping(lf_jetstream *js, lf_buf *err)
{
    jsAccountInfo *ai = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetAccountInfo(&ai, js->js, NULL, &jerr);
    jsAccountInfo_Destroy(ai);
    return s == NATS_OK ? 0 : lf_jetstream_error(s, jerr, "JetStream account information", err);
}

bool lf_jetstream_connected(lf_jetstream *js)
{
    return js && js->nc && natsConnection_Status(js->nc) == NATS_CONN_STATUS_CONNECTED;
}

void *lf_jetstream_nats(lf_jetstream *js) { return js->nc; }
void *lf_jetstream_ctx(lf_jetstream *js) { return js->js; }
int64_t lf_jetstream_timeout_ms(const lf_jetstream *js) { return js->timeout_ms; }
