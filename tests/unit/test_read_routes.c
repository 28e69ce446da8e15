/* The receiver's read routes on a real MariaDB, served by lf_http_server on a loop thread and asked
 * over raw sockets: 401 without or with an unknown token, 403 with a worker token, 200 with read and
 * admin tokens; session list filtered and paginated with its cursor; events paginated in order; 404
 * for an unparsed session; 400 for bad parameters; search answers 503 without Elasticsearch; parse
 * status for GET /v1/sessions/{id}. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "auth.h"
#include "db_schema.h"
#include "lf_mysql.h"
#include "lf_test_mariadb.h"
#include "read_routes.h"

static struct lf_test_mariadb server;
static lf_tokens tokens;
static uv_loop_t loop;
static uv_async_t stop_async;
static lf_http_server *srv;
static lf_read_routes *rr;
static pthread_t loop_thread;
static int port;

static const char *READ_TOKEN = "read-token-0123456789";
static const char *WORKER_TOKEN = "worker-token-0123456789";
static const char *ADMIN_TOKEN = "admin-token-0123456789";

static void on_stop(uv_async_t *a)
{
    (void)a;
    uv_close((uv_handle_t *)&stop_async, NULL);
    lf_http_server_free(srv);
}

static void *run_loop(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void add_token(const char *name, unsigned scopes, const char *tok)
{
    lf_token_entry *e = realloc(tokens.tokens, (tokens.count + 1) * sizeof *e);
    assert_non_null(e);
    tokens.tokens = e;
    e = &tokens.tokens[tokens.count++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->scopes = scopes;
    assert_int_equal(lf_crypto_token_hash(e->hash, tokens.key, tok, strlen(tok)), 0);
}

static int setup(void **state)
{
    (void)state;
    if (lf_test_mariadb_start(&server) != 0)
        return -1;
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_read_test");
    lf_mysql *db = NULL;
    unsigned applied;
    if (lf_mysql_connect(&o, &db) != 0 ||
        lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied) != 0)
        return -1;
    /* 7 sessions of site a (one of product Other), 2 of site b; session 1 has 5 events */
    for (int i = 1; i <= 9; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "INSERT INTO sessions (session_id, site, product, product_version, log_type, started_at, "
                 "parsed_at, parser_version, event_count) VALUES ('%032d', '%s', '%s', '1.0', 'classic', "
                 "'2026-11-0%d 10:00:00.000', NOW(3), 't', %d)",
                 i, i <= 7 ? "a" : "b", i == 3 ? "Other" : "Studio", i, i == 1 ? 5 : 0);
        if (lf_mysql_exec(db, sql) != 1)
            return -1;
    }
    for (int s = 0; s < 5; s++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO events (session_id, seq, line, ts, level, template_id, params, fields, message) VALUES "
                 "('%032d', %d, %d, '2026-11-01 10:00:0%d.000', 'INFO', 42, '[\"x\"]', '{\"Level\":\"INFO\"}', 'msg %d')",
                 1, s, s + 1, s, s);
        if (lf_mysql_exec(db, sql) != 1)
            return -1;
    }
    lf_mysql_exec(db, "INSERT INTO parse_failures (session_id, failed_at, attempt, stage, reason) VALUES "
                      "('0000000000000000000000000000000f', NOW(3), 1, 'decrypt', 'x')");
    lf_mysql_close(db);

    memset(&tokens, 0, sizeof tokens);
    /* tokens held in memory; the file they would be reloaded from does not exist */
    char dir[] = "/tmp/lf-read-routes-XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char path[64];
    snprintf(path, sizeof path, "%s/tokens", dir);
    if (lf_watched_file_init(&tokens.file, path) != 0)
        return -1;
    rmdir(dir);
    for (int i = 0; i < LF_TOKEN_KEY_BYTES; i++)
        tokens.key[i] = (uint8_t)i;
    add_token("reader", LF_SCOPE_READ, READ_TOKEN);
    add_token("worker", LF_SCOPE_WORKER, WORKER_TOKEN);
    add_token("admin", LF_SCOPE_ADMIN, ADMIN_TOKEN);

    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, on_stop);
    if (lf_http_server_new(&loop, NULL, &srv) != 0)
        return -1;
    lf_read_routes_opts ro = {.mysql = o, .pool_size = 2, .tokens = &tokens};
    if (lf_read_routes_register(srv, &loop, &ro, &rr) != 0 || lf_http_server_listen(srv, "127.0.0.1", 0) != 0)
        return -1;
    port = lf_http_server_port(srv);
    pthread_create(&loop_thread, NULL, run_loop, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    lf_read_routes_free(rr);
    lf_tokens_close(&tokens);
    return 0;
}

/* One GET; returns the status, the body (parsed JSON) in *out. */
static int get(const char *path, const char *token, json_t **out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[2048];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s\r\n", path,
                     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    char *body = strstr(buf, "\r\n\r\n");
    if (out)
        *out = body ? json_loads(body + 4, 0, NULL) : NULL;
    return status;
}

static void scopes_are_enforced(void **state)
{
    (void)state;
    assert_int_equal(get("/v1/sessions", NULL, NULL), 401);
    assert_int_equal(get("/v1/sessions", "nope-not-a-token", NULL), 401);
    assert_int_equal(get("/v1/sessions", WORKER_TOKEN, NULL), 403);
    assert_int_equal(get("/v1/sessions/00000000000000000000000000000001/events", WORKER_TOKEN, NULL), 403);
    assert_int_equal(get("/v1/search?q=x", WORKER_TOKEN, NULL), 403);
    assert_int_equal(get("/v1/sessions", READ_TOKEN, NULL), 200);
    assert_int_equal(get("/v1/sessions", ADMIN_TOKEN, NULL), 200);
}

static void sessions_list_paginates(void **state)
{
    (void)state;
    char path[256] = "/v1/sessions?site=a&limit=2";
    char seen[10] = {0};
    int pages = 0, total = 0, prev = 100;
    for (;;) {
        json_t *j = NULL;
        assert_int_equal(get(path, READ_TOKEN, &j), 200);
        assert_non_null(j);
        json_t *arr = json_object_get(j, "sessions");
        for (size_t i = 0; i < json_array_size(arr); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(arr, i), "session_id"));
            int k = atoi(id);
            assert_true(k >= 1 && k <= 7);
            assert_int_equal(seen[k], 0);
            seen[k] = 1;
            total++;
            assert_true(k < prev); /* newest first, across pages too */
            prev = k;
        }
        pages++;
        const char *cur = json_string_value(json_object_get(j, "next_cursor"));
        if (!cur) {
            json_decref(j);
            break;
        }
        snprintf(path, sizeof path, "/v1/sessions?site=a&limit=2&cursor=%s", cur);
        json_decref(j);
        assert_true(pages < 10);
    }
    assert_int_equal(total, 7);
    assert_int_equal(pages, 4);
    json_t *j = NULL;
    assert_int_equal(get("/v1/sessions?product=Other", READ_TOKEN, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "sessions")), 1);
    json_decref(j);
    assert_int_equal(get("/v1/sessions?from=2026-11-08&to=2026-11-09T23:59:59Z", READ_TOKEN, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "sessions")), 2);
    json_decref(j);
    assert_int_equal(get("/v1/sessions?limit=0", READ_TOKEN, NULL), 400);
    assert_int_equal(get("/v1/sessions?from=yesterday", READ_TOKEN, NULL), 400);
    assert_int_equal(get("/v1/sessions?cursor=abc", READ_TOKEN, NULL), 400);
}

static void events_paginate_in_order(void **state)
{
    (void)state;
    json_t *j = NULL;
    assert_int_equal(get("/v1/sessions/00000000000000000000000000000001/events?limit=3", READ_TOKEN, &j), 200);
    json_t *ev = json_object_get(j, "events");
    assert_int_equal(json_array_size(ev), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 2), "seq")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "message")), "msg 0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "template_id")), "000000000000002a");
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(ev, 0), "params"), 0)), "x");
    const char *cur = json_string_value(json_object_get(j, "next_cursor"));
    assert_string_equal(cur, "3");
    json_decref(j);
    assert_int_equal(get("/v1/sessions/00000000000000000000000000000001/events?limit=3&cursor=3", READ_TOKEN, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "events")), 2);
    assert_null(json_object_get(j, "next_cursor"));
    json_decref(j);
    assert_int_equal(get("/v1/sessions/0000000000000000000000000000dead/events", READ_TOKEN, NULL), 404);
    assert_int_equal(get("/v1/sessions/NOT-AN-ID/events", READ_TOKEN, NULL), 400);
}

static void search_without_elasticsearch_is_503(void **state)
{
    (void)state;
    assert_int_equal(get("/v1/search?q=msg", READ_TOKEN, NULL), 503);
}

static void parse_status(void **state)
{
    (void)state;
    long long events = -1;
    const char *s = lf_read_routes_parse_status(rr, "00000000000000000000000000000001", &events);
    assert_non_null(s);
    assert_string_equal(s, "parsed");
    assert_int_equal(events, 5);
    s = lf_read_routes_parse_status(rr, "0000000000000000000000000000000f", NULL);
    assert_non_null(s);
    assert_string_equal(s, "failed");
    assert_null(lf_read_routes_parse_status(rr, "0000000000000000000000000000abcd", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scopes_are_enforced),
        cmocka_unit_test(sessions_list_paginates),
        cmocka_unit_test(events_paginate_in_order),
        cmocka_unit_test(search_without_elasticsearch_is_503),
        cmocka_unit_test(parse_status),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
