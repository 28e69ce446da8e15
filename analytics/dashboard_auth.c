/* Dashboard sign-in (dashboard_auth.h). Password checks (argon2id: slow and 64 MiB by design) run on
 * libuv's thread pool, at most LOGIN_IN_FLIGHT at once, so a burst of guesses neither blocks the loop
 * nor takes the host's memory. */
#include "dashboard_auth.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_log.h"
#include "lf_watched_file.h"

#define MAX_SESSIONS 1024
#define LOGIN_IN_FLIGHT 2
#define COOKIE "lf_dash"
#define TOKEN_BYTES 32
#define FORM_MAX 4096

typedef struct dash_session {
    uint8_t token_hash[32]; /* BLAKE2b of the cookie value: the value itself is never kept */
    char user[LF_DASH_USER_MAX + 1];
    lf_dash_role role;
    char csrf[65];
    uint64_t expires_ms; /* 0: free slot */
} dash_session;

struct lf_dashboard_auth {
    uv_loop_t *loop;
    const struct lf_analytics_config *cfg;
    lf_watched_file file;
    lf_dash_users users;
    bool users_ok; /* the file as last read was valid */
    dash_session sessions[MAX_SESSIONS];
    unsigned logins_in_flight;
    char dummy_hash[LF_DASH_HASH_MAX]; /* checked for unknown names, so they take as long */
};

static uint64_t now_ms(const lf_dashboard_auth *a)
{
    return uv_now(a->loop);
}

/* Re-reads the users file when it changed; sessions of users who left it end, roles follow it. */
static void users_refresh(lf_dashboard_auth *a)
{
    struct stat st;
    if (!lf_watched_file_changed(&a->file, &st))
        return;
    lf_dash_users u;
    lf_buf err = LF_BUF_INIT(512);
    int rc = lf_dash_users_load(a->file.path, &u, &err);
    if (rc < 0) {
        LF_ERROR("analytics", "dashboard users file %s", lf_buf_cstr(&err));
        lf_dash_users_free(&a->users);
        a->users_ok = false; /* a file that cannot be read signs nobody in */
    } else {
        lf_dash_users_free(&a->users);
        a->users = u;
        a->users_ok = true;
        LF_INFO("analytics", "dashboard users: %zu from %s", u.n, a->file.path);
    }
    lf_buf_free(&err);
    lf_watched_file_take(&a->file, &st);
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        dash_session *s = &a->sessions[i];
        if (!s->expires_ms)
            continue;
        const lf_dash_user *x = a->users_ok ? lf_dash_users_find(&a->users, s->user) : NULL;
        if (!x)
            memset(s, 0, sizeof *s);
        else
            s->role = x->role;
    }
}

int lf_dashboard_auth_new(uv_loop_t *loop, const struct lf_analytics_config *cfg, lf_dashboard_auth **out)
{
    if (sodium_init() < 0)
        return -ENOMEM;
    lf_dashboard_auth *a = lf_calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    int rc = lf_watched_file_init(&a->file, cfg->dashboard_users_file);
    if (rc < 0) {
        lf_free(a);
        return rc;
    }
    users_refresh(a);
    if (a->users.n == 0 && !cfg->dashboard_anonymous)
        LF_WARN("analytics", "dashboard: nobody can sign in yet: add a user with `logferry-analytics users add "
                             "NAME --role admin` (%s)", cfg->dashboard_users_file);
    *out = a;
    return 0;
}

void lf_dashboard_auth_free(lf_dashboard_auth *a)
{
    if (!a)
        return;
    lf_dash_users_free(&a->users);
    lf_watched_file_close(&a->file);
    sodium_memzero(a->sessions, sizeof a->sessions);
    lf_free(a);
}

const char *lf_dashboard_client_addr(const lf_http_request *req, char *buf, size_t size)
{
    const char *peer = req->remote_addr ? req->remote_addr : "?";
    const char *xff = lf_http_request_header(req, "X-Forwarded-For");
    bool loopback = strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0;
    if (!xff || !loopback) {
        snprintf(buf, size, "%s", peer);
        return buf;
    }
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    snprintf(buf, size, "%.64s via %s", last, peer);
    return buf;
}

/* The session cookie's value, or NULL when absent, malformed or given twice (then no session). */
static bool cookie_value(const lf_http_request *req, char *out, size_t size)
{
    const char *h = lf_http_request_header(req, "Cookie");
    bool found = false;
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > sizeof COOKIE && memcmp(h, COOKIE "=", sizeof COOKIE) == 0) {
            size_t vlen = len - sizeof COOKIE;
            if (found || vlen >= size)
                return false;
            memcpy(out, h + sizeof COOKIE, vlen);
            out[vlen] = '\0';
            found = true;
        }
        h = end;
    }
    return found;
}

static dash_session *find_session(lf_dashboard_auth *a, const lf_http_request *req)
{
    char value[128];
    if (!cookie_value(req, value, sizeof value))
        return NULL;
    uint8_t h[32];
    crypto_generichash(h, sizeof h, (const uint8_t *)value, strlen(value), NULL, 0);
    uint64_t now = now_ms(a);
    dash_session *found = NULL;
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        dash_session *s = &a->sessions[i];
        if (s->expires_ms && s->expires_ms <= now)
            memset(s, 0, sizeof *s);
        /* every slot is compared, in constant time, so the answer's timing says nothing */
        if (s->expires_ms && lf_crypto_equal(s->token_hash, h, sizeof h))
            found = s;
    }
    return found;
}

lf_dash_role lf_dashboard_auth_identify(lf_dashboard_auth *a, const lf_http_request *req, lf_dash_identity *who)
{
    memset(who, 0, sizeof *who);
    users_refresh(a);
    dash_session *s = find_session(a, req);
    if (s) {
        snprintf(who->user, sizeof who->user, "%s", s->user);
        snprintf(who->csrf, sizeof who->csrf, "%s", s->csrf);
        who->role = s->role;
    } else if (a->cfg->dashboard_anonymous) {
        who->role = LF_DASH_READ;
    }
    return who->role;
}

bool lf_dashboard_auth_csrf_ok(const lf_http_request *req, const lf_dash_identity *who)
{
    const char *h = lf_http_request_header(req, "X-CSRF-Token");
    size_t n = strlen(who->csrf);
    return n > 0 && h && strlen(h) == n && lf_crypto_equal(h, who->csrf, n);
}

/* ---- pages ---------------------------------------------------------------------------------- */

static const char login_head[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>logferry analytics: sign in</title>\n"
    "<style>body{font:14px sans-serif;background:#fafafa;color:#222;display:flex;justify-content:center}"
    "form{margin-top:80px;background:#fff;border:1px solid #ddd;border-radius:4px;padding:20px;width:280px}"
    "label{display:block;margin:8px 0}input{width:100%;box-sizing:border-box;padding:5px}"
    "#problem{color:#b00;min-height:1em}button{margin-top:10px;padding:6px 14px}</style></head><body>\n"
    "<form method=\"post\" action=\"/dashboard/login\"><h1 style=\"font-size:18px\">logferry analytics</h1>"
    "<p id=\"problem\" role=\"alert\">";
static const char login_tail[] =
    "</p><label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label>"
    "<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
    "</label><input type=\"hidden\" name=\"next\" value=\"";
static const char login_end[] = "\"><button type=\"submit\">Sign in</button></form></body></html>\n";

/* next must be one of our own pages: anything else (another host, a scheme) goes to /dashboard. */
static const char *safe_next(const char *next)
{
    if (strncmp(next, "/dashboard", 10) != 0 || strpbrk(next, "\\\"'<>") || strstr(next, "//"))
        return "/dashboard";
    for (const unsigned char *p = (const unsigned char *)next; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) /* it goes into a header and an attribute as it is */
            return "/dashboard";
    return next;
}

static void respond_login_page(lf_http_request *req, int status, const char *problem, const char *next)
{
    lf_buf b = LF_BUF_INIT(16384);
    int rc = lf_buf_append_str(&b, login_head);
    rc = rc ? rc : lf_buf_append_str(&b, problem);
    rc = rc ? rc : lf_buf_append_str(&b, login_tail);
    rc = rc ? rc : lf_buf_append_str(&b, safe_next(next));
    rc = rc ? rc : lf_buf_append_str(&b, login_end);
    if (rc)
        lf_http_respond_error(req, 503, "memory", "out of memory", NULL);
    else
        lf_http_respond(req, status, "text/html; charset=utf-8", b.data, b.len,
                        "Cache-Control: no-store\r\nX-Frame-Options: DENY\r\n"
                        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                        "form-action 'self'; frame-ancestors 'none'\r\n");
    lf_buf_free(&b);
}

static void on_login_page(lf_http_request *req)
{
    char next[512];
    int rc = lf_http_request_query_param(req, "next", next, sizeof next);
    respond_login_page(req, 200, "", rc >= 0 ? next : "/dashboard");
}

/* ---- sign in -------------------------------------------------------------------------------- */

typedef struct login {
    uv_work_t work;
    lf_dashboard_auth *a;
    lf_http_request *req;
    char user[LF_DASH_USER_MAX + 1];
    char password[1024];
    size_t password_len;
    char next[512];
    char hash[LF_DASH_HASH_MAX];
    lf_dash_role role;
    bool known, ok;
} login;

static void login_work(uv_work_t *w)
{
    login *l = w->data;
    l->ok = lf_dash_password_ok(l->hash, l->password, l->password_len) && l->known;
}

static bool secure_request(const lf_dashboard_auth *a, const lf_http_request *req)
{
    if (a->cfg->dashboard_cookie_secure == 1) /* always */
        return true;
    if (a->cfg->dashboard_cookie_secure == 2) /* never */
        return false;
    const char *proto = lf_http_request_header(req, "X-Forwarded-Proto");
    return proto && strcmp(proto, "https") == 0;
}

static void login_done(uv_work_t *w, int status)
{
    login *l = w->data;
    lf_dashboard_auth *a = l->a;
    char addr[160];
    (void)status;
    a->logins_in_flight--;
    lf_dashboard_client_addr(l->req, addr, sizeof addr);
    users_refresh(a);
    const lf_dash_user *u = l->ok ? lf_dash_users_find(&a->users, l->user) : NULL;
    if (!u) { /* wrong password, unknown name, or removed meanwhile */
        LF_WARN("analytics", "dashboard: sign-in refused for %s from %s", l->user, addr);
        respond_login_page(l->req, 401, "Wrong user or password.", l->next);
        goto out;
    }
    dash_session *slot = NULL;
    uint64_t now = now_ms(a);
    for (size_t i = 0; i < MAX_SESSIONS && !slot; i++)
        if (!a->sessions[i].expires_ms || a->sessions[i].expires_ms <= now)
            slot = &a->sessions[i];
    if (!slot) { /* full: the session closest to its end makes room */
        slot = &a->sessions[0];
        for (size_t i = 1; i < MAX_SESSIONS; i++)
            if (a->sessions[i].expires_ms < slot->expires_ms)
                slot = &a->sessions[i];
    }
    uint8_t token[TOKEN_BYTES], csrf[TOKEN_BYTES / 2];
    char value[2 * TOKEN_BYTES + 1];
    randombytes_buf(token, sizeof token);
    randombytes_buf(csrf, sizeof csrf);
    lf_crypto_hex_encode(value, token, sizeof token);
    memset(slot, 0, sizeof *slot);
    crypto_generichash(slot->token_hash, sizeof slot->token_hash, (const uint8_t *)value, strlen(value), NULL, 0);
    snprintf(slot->user, sizeof slot->user, "%s", u->name);
    slot->role = u->role;
    lf_crypto_hex_encode(slot->csrf, csrf, sizeof csrf);
    slot->expires_ms = now + a->cfg->dashboard_session_lifetime;
    char headers[512];
    snprintf(headers, sizeof headers,
             "Location: %s\r\nCache-Control: no-store\r\nSet-Cookie: " COOKIE "=%s; Path=/dashboard; Max-Age=%llu; "
             "HttpOnly; SameSite=Strict%s\r\n",
             safe_next(l->next), value, (unsigned long long)(a->cfg->dashboard_session_lifetime / 1000),
             secure_request(a, l->req) ? "; Secure" : "");
    sodium_memzero(value, sizeof value);
    sodium_memzero(token, sizeof token);
    LF_INFO("analytics", "dashboard: %s (%s) signed in from %s", u->name, lf_dash_role_name(u->role), addr);
    lf_http_respond(l->req, 303, "text/plain", "", 0, headers);
out:
    sodium_memzero(l, sizeof *l);
    lf_free(l);
}

static void on_login(lf_http_request *req)
{
    lf_dashboard_auth *a = req->route_data;
    if (!req->body.data && req->body.len) {
        lf_http_respond_error(req, 413, "too_large", "the form is too large", NULL);
        return;
    }
    const char *form = req->body.data ? req->body.data : "";
    size_t len = (size_t)req->body.len;
    login *l = lf_calloc(1, sizeof *l);
    if (!l) {
        lf_http_respond_error(req, 503, "memory", "out of memory", NULL);
        return;
    }
    l->a = a;
    l->req = req;
    int ru = lf_http_form_param(form, len, "user", l->user, sizeof l->user);
    int rp = lf_http_form_param(form, len, "password", l->password, sizeof l->password);
    int rn = lf_http_form_param(form, len, "next", l->next, sizeof l->next);
    if (rn == -ENOENT)
        snprintf(l->next, sizeof l->next, "/dashboard");
    if (ru <= 0 || rp <= 0 || (rn < 0 && rn != -ENOENT)) {
        /* a field that is missing or cannot be read whole is a failed sign-in, never a guess */
        respond_login_page(req, 400, "Give a user and a password.", rn >= 0 ? l->next : "/dashboard");
        lf_free(l);
        return;
    }
    l->password_len = (size_t)rp;
    users_refresh(a);
    if (a->logins_in_flight >= LOGIN_IN_FLIGHT) {
        sodium_memzero(l, sizeof *l);
        lf_free(l);
        lf_http_respond_error(req, 503, "busy", "too many sign-ins at once; try again", "Retry-After: 1\r\n");
        return;
    }
    const lf_dash_user *u = a->users_ok ? lf_dash_users_find(&a->users, l->user) : NULL;
    if (u) {
        l->known = true;
        snprintf(l->hash, sizeof l->hash, "%s", u->hash);
    } else {
        /* an unknown name costs the same check, against a hash of nothing anyone knows */
        if (!a->dummy_hash[0]) {
            uint8_t junk[16];
            randombytes_buf(junk, sizeof junk);
            if (crypto_pwhash_str(a->dummy_hash, (const char *)junk, sizeof junk, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                a->dummy_hash[0] = '\0';
        }
        snprintf(l->hash, sizeof l->hash, "%s", a->dummy_hash);
    }
    l->work.data = l;
    a->logins_in_flight++;
    if (uv_queue_work(a->loop, &l->work, login_work, login_done) != 0) {
        a->logins_in_flight--;
        sodium_memzero(l, sizeof *l);
        lf_free(l);
        lf_http_respond_error(req, 503, "busy", "cannot check the password now", NULL);
    }
}

static void on_logout(lf_http_request *req)
{
    lf_dashboard_auth *a = req->route_data;
    lf_dash_identity who;
    users_refresh(a);
    dash_session *s = find_session(a, req);
    if (s) {
        memset(&who, 0, sizeof who);
        snprintf(who.csrf, sizeof who.csrf, "%s", s->csrf);
        if (!lf_dashboard_auth_csrf_ok(req, &who)) {
            lf_http_respond_error(req, 403, "csrf", "missing or wrong X-CSRF-Token", NULL);
            return;
        }
        LF_INFO("analytics", "dashboard: %s signed out", s->user);
        memset(s, 0, sizeof *s);
    }
    lf_http_respond(req, 204, "text/plain", "", 0,
                    "Cache-Control: no-store\r\nSet-Cookie: " COOKIE "=; Path=/dashboard; Max-Age=0; HttpOnly; "
                    "SameSite=Strict\r\n");
}

int lf_dashboard_auth_routes(lf_dashboard_auth *a, lf_http_server *srv)
{
    int rc = lf_http_server_route(srv, LF_HTTP_GET, "/dashboard/login", 0, on_login_page, NULL, a);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_POST, "/dashboard/login", FORM_MAX, on_login, NULL, a);
    if (rc == 0)
        rc = lf_http_server_route(srv, LF_HTTP_POST, "/dashboard/logout", 0, on_logout, NULL, a);
    return rc;
}
