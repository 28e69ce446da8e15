/* The receiver's read API (scope read; admin includes it), answered from the parsed-events database
 * and Elasticsearch:
 *   GET /v1/sessions?site=&product=&from=&to=&limit=&cursor=
 *       sessions newest first (started_at, then session id), keyset pagination: the answer's
 *       "next_cursor" (absent on the last page) is passed back as cursor. from/to bound started_at
 *       ("YYYY-MM-DD[ HH:MM:SS[.fff]]" or ...T...Z). limit 1..1000, default 100.
 *   GET /v1/sessions/{id}/events?limit=&cursor=
 *       the session's events in order; cursor is the next seq. limit 1..10000, default 1000.
 *       404 when the session has not been loaded.
 *   GET /v1/search?q=&from=&to=&limit=
 *       full-text search over events in Elasticsearch, limit 1..1000 (default 100); 503 when no
 *       Elasticsearch is configured or it does not answer.
 * Queries run on the libuv thread pool, each on a MySQL connection taken from a small pool (opened on
 * demand, reopened after a lost connection). lf_read_routes_parse_status() gives the parse status of a
 * session for GET /v1/sessions/{id}: "parsed", "failed" or NULL (not known to the database). */
#ifndef LF_RECEIVER_READ_ROUTES_H
#define LF_RECEIVER_READ_ROUTES_H

#include <stddef.h>
#include <uv.h>

#include "auth.h"
#include "lf_es.h"
#include "lf_http_server.h"
#include "lf_mysql.h"

typedef struct lf_read_routes_opts {
    lf_mysql_options mysql;      /* copied */
    const char *es_url;          /* NULL: no search */
    const lf_es_auth *es_auth;   /* its credentials and CA, NULL for none (read when registering) */
    const char *es_index_prefix; /* default "logferry-events-" */
    unsigned pool_size;          /* MySQL connections at most, default 4 */
    lf_tokens *tokens;           /* authorises every route (scope read); not copied, outlives the routes */
} lf_read_routes_opts;

typedef struct lf_read_routes lf_read_routes;

/* Registers the three routes on srv. */
int lf_read_routes_register(lf_http_server *srv, uv_loop_t *loop, const lf_read_routes_opts *opts,
                            lf_read_routes **out);
/* After the server drained (no query in flight). */
void lf_read_routes_free(lf_read_routes *rr);

/* Blocking (call off the loop): "parsed" (with *events set), "failed" (parse_failures rows and no
 * sessions row), or NULL. */
const char *lf_read_routes_parse_status(lf_read_routes *rr, const char *session_id, long long *events);

#endif
