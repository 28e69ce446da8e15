/* Sign-in for the dashboard and its JSON API.
 *
 * A user of the users file (dashboard_users.h) signs in at /dashboard/login with name and password;
 * the answer sets a session cookie (HttpOnly, SameSite=Strict, Path=/dashboard; Secure when the
 * request came over TLS as the proxy says with X-Forwarded-Proto: https, or always, per
 * [dashboard] cookie_secure). Sessions live in the daemon's memory (a restart signs everyone out)
 * for [dashboard] session_lifetime, and end when their user leaves the users file. A change of
 * state (POST) also needs the session's CSRF token in the X-CSRF-Token header. Without a session
 * the API answers 401 and the pages send the browser to the sign-in page, unless [dashboard]
 * anonymous = read. */
#ifndef LF_ANALYTICS_DASHBOARD_AUTH_H
#define LF_ANALYTICS_DASHBOARD_AUTH_H

#include "lf_error.h"

#include <stdbool.h>
#include <uv.h>

#include "analytics_config.h"
#include "dashboard_users.h"
#include "lf_http_server.h"

typedef struct lf_dashboard_auth lf_dashboard_auth;

typedef struct lf_dash_identity {
    char user[LF_DASH_USER_MAX + 1]; /* "" for anonymous access */
    lf_dash_role role;
    char csrf[65]; /* "" for anonymous access */
} lf_dash_identity;

LF_MUST_CHECK int lf_dashboard_auth_new(uv_loop_t *loop, const struct lf_analytics_config *cfg,
                                        lf_dashboard_auth **out);
void lf_dashboard_auth_free(lf_dashboard_auth *a);

/* GET/POST /dashboard/login and POST /dashboard/logout. */
LF_MUST_CHECK int lf_dashboard_auth_routes(lf_dashboard_auth *a, lf_http_server *srv);

/* Who sends req: the session's user and role, the anonymous reader, or LF_DASH_NONE. */
lf_dash_role lf_dashboard_auth_identify(lf_dashboard_auth *a, const lf_http_request *req, lf_dash_identity *who);

/* For a state-changing request: true when its X-CSRF-Token header is who's token. */
bool lf_dashboard_auth_csrf_ok(const lf_http_request *req, const lf_dash_identity *who);

/* The client's address for logs: X-Forwarded-For's last hop when the peer is loopback, else the
 * peer. */
const char *lf_dashboard_client_addr(const lf_http_request *req, char *buf, size_t size);

#endif
