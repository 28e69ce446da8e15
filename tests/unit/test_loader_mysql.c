/* The MySQL loader against a real MariaDB: a session parsed with the engine loads with either method,
 * loading it again (redelivery, reparse) leaves exactly one copy of its rows and the template counts
 * of one load, a lost connection mid-way is retried, and parse failures are recorded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "db_schema.h"
#include "engine.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_test_mariadb.h"
#include "loader_mysql.h"
#include "parsed_session.h"

static struct lf_test_mariadb server;

static const char LOG[] =
    "2026-11-02 09:15:01.123 INFO [core] Starting Atlas 3.2.1\n"
    "2026-11-02 09:15:02.000 INFO [ui] Opened dialog Export in the main window\n"
    "2026-11-02 09:15:03.000 WARN [io] Slow disk: 120 ms\n"
    "2026-11-02 09:15:04.000 ERROR [io] Failed to open C:\\data\\a.txt\n"
    "\tat io.open(file.c:12)\n"
    "\tat main(main.c:3)\n"
    "2026-11-02 09:15:05.000 INFO [ui] Opened dialog Import in the main window\n"
    "2026-11-02 09:15:06.000 INFO [core] Shutdown complete after 5 s\n";

static int setup(void **state)
{
    (void)state;
    if (lf_test_mariadb_start(&server) != 0)
        return -1;
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_loader_test");
    lf_mysql *db = NULL;
    unsigned applied;
    if (lf_mysql_connect(&o, &db) != 0 ||
        lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied) != 0)
        return -1;
    lf_mysql_close(db);
    return 0;
}

static lf_engine *classic_engine(lf_logtype *t)
{
    assert_int_equal(lf_logtype_init(t, "classic"), 0);
    assert_int_equal(lf_logtype_set(t, "format", "<Date> <Time> <Level> \\[<Component>\\] <Content>"), 0);
    assert_int_equal(lf_logtype_set(t, "time_fields", "Date Time"), 0);
    assert_int_equal(lf_logtype_set(t, "time_format", "%Y-%m-%d %H:%M:%S.%f"), 0);
    assert_int_equal(lf_logtype_set(t, "level_field", "Level"), 0);
    lf_engine *e = NULL;
    char err[256];
    int rc = lf_engine_new(t, NULL, &e, err, sizeof err);
    if (rc)
        fprintf(stderr, "engine: %s\n", err);
    assert_int_equal(rc, 0);
    return e;
}

static void parse_session(lf_psession *ps, const char *sid)
{
    lf_logtype t;
    lf_engine *e = classic_engine(&t);
    assert_int_equal(lf_psession_init(ps), 0);
    static const char man[] = "{\"format\":1,\"session_id\":\"%s\",\"site\":\"acme\",\"product\":\"Atlas\","
                              "\"product_version\":\"3.2.1\",\"log_type\":\"classic\",\"log_name\":\"a.log\","
                              "\"log_size\":%zu,\"log_blake2b\":\"%064d\",\"metadata\":{\"crashed\":\"false\"}}";
    char json[1024];
    int n = snprintf(json, sizeof json, man, sid, sizeof LOG - 1, 0);
    char err[256];
    lf_manifest_free(&ps->manifest);
    assert_int_equal(lf_manifest_parse(&ps->manifest, json, (size_t)n, err, sizeof err), 0);
    int fd = memfd_create("log", 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, LOG, sizeof LOG - 1), (ssize_t)(sizeof LOG - 1));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(lf_psession_parse(ps, e, fd, 0), 0);
    close(fd);
    lf_engine_free(e);
    lf_logtype_clear(&t);
}

static int64_t qint(lf_mysql *db, const char *sql)
{
    int64_t v = -1;
    assert_int_equal(lf_mysql_query_int(db, sql, &v), 0);
    return v;
}

static void parsed_rows_are_right(void **state)
{
    (void)state;
    lf_psession ps;
    parse_session(&ps, "00000000000000000000000000000001");
    assert_int_equal(ps.n_events, 6);
    assert_int_equal(ps.line_count, 8);
    assert_int_equal(ps.warning_count, 1);
    assert_int_equal(ps.error_count, 1);
    /* the error event carries its stack trace */
    const lf_pevent *err = &ps.events[3];
    assert_int_equal(err->line, 4);
    assert_int_equal(err->message.len,
                     strlen("2026-11-02 09:15:04.000 ERROR [io] Failed to open C:\\data\\a.txt\n\tat io.open(file.c:12)\n\tat main(main.c:3)"));
    assert_memory_equal(lf_psession_str(&ps, err->component), "io", 2);
    /* two dialog names are, for a miner that has seen only them, two event types (a third would
     * make the name a parameter: tests/unit/test_miner.c) */
    assert_true(ps.events[1].template_id != ps.events[4].template_id);
    /* a parameter comes out of the message, and the template is counted once per session */
    assert_true(ps.events[2].template_id == lf_miner_template_id("classic", "Slow disk: <*> ms", 17));
    size_t found = 0;
    for (size_t i = 0; i < ps.n_templates; i++)
        if (ps.templates[i].id == ps.events[2].template_id) {
            assert_int_equal(ps.templates[i].text.len, 17);
            assert_memory_equal(lf_psession_str(&ps, ps.templates[i].text), "Slow disk: <*> ms", 17);
            assert_int_equal(ps.templates[i].count, 1);
            found++;
        }
    assert_int_equal(found, 1);
    assert_memory_equal(lf_psession_str(&ps, ps.events[2].params), "[\"120\"]", 7);
    lf_psession_free(&ps);
}

static void load_twice(lf_load_method method, const char *sid)
{
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_loader_test");
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    lf_psession ps;
    parse_session(&ps, sid);
    lf_loader_mysql_opts lo;
    lf_loader_mysql_opts_default(&lo);
    lo.method = method;
    lo.insert_batch_bytes = 300; /* several statements */
    lf_buf scratch = LF_BUF_INIT(SIZE_MAX / 4);
    int64_t before = qint(db, "SELECT COALESCE(SUM(occurrences),0) FROM templates");
    for (int round = 0; round < 3; round++) {
        assert_int_equal(lf_loader_mysql_load(db, &ps, &lo, &scratch), 0);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM events WHERE session_id='%s'", sid);
        assert_int_equal(qint(db, sql), 6);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM sessions WHERE session_id='%s' AND event_count=6 "
                                  "AND error_count=1 AND warning_count=1 AND line_count=8", sid);
        assert_int_equal(qint(db, sql), 1);
        snprintf(sql, sizeof sql, "SELECT SUM(occurrences) FROM session_templates WHERE session_id='%s'", sid);
        assert_int_equal(qint(db, sql), 6);
        /* reloading took the earlier counts back */
        assert_int_equal(qint(db, "SELECT SUM(occurrences) FROM templates") - before, 6);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM events WHERE session_id='%s' AND seq=3 AND "
                                  "message LIKE '%%\\n\\tat main(main.c:3)' AND level='ERROR' AND component='io' "
                                  "AND ts='2026-11-02 09:15:04.000' AND JSON_EXTRACT(fields,'$.Level')='ERROR'", sid);
        assert_int_equal(qint(db, sql), 1);
    }
    lf_buf_free(&scratch);
    lf_psession_free(&ps);
    lf_mysql_close(db);
}

static void infile_load_is_idempotent(void **state)
{
    (void)state;
    load_twice(LF_LOAD_INFILE, "00000000000000000000000000000002");
}

static void insert_load_is_idempotent(void **state)
{
    (void)state;
    load_twice(LF_LOAD_INSERT, "00000000000000000000000000000003");
}

static void both_methods_store_the_same_rows(void **state)
{
    (void)state;
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_loader_test");
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    int64_t a = qint(db, "SELECT SUM(CRC32(CONCAT_WS('|',seq,line,ts,level,component,template_id,params,fields,"
                         "message))) FROM events WHERE session_id='00000000000000000000000000000002'");
    int64_t b = qint(db, "SELECT SUM(CRC32(CONCAT_WS('|',seq,line,ts,level,component,template_id,params,fields,"
                         "message))) FROM events WHERE session_id='00000000000000000000000000000003'");
    assert_true(a == b);
    lf_mysql_close(db);
}

static void lost_connection_is_retried(void **state)
{
    (void)state;
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_loader_test");
    lf_mysql *db = NULL, *admin = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    assert_int_equal(lf_mysql_connect(&o, &admin), 0);
    int64_t id = qint(db, "SELECT CONNECTION_ID()");
    char sql[64];
    snprintf(sql, sizeof sql, "KILL CONNECTION %lld", (long long)id);
    assert_true(lf_mysql_exec(admin, sql) >= 0);
    lf_psession ps;
    parse_session(&ps, "00000000000000000000000000000004");
    lf_loader_mysql_opts lo;
    lf_loader_mysql_opts_default(&lo);
    lo.backoff_ms = 10;
    lf_buf scratch = LF_BUF_INIT(SIZE_MAX / 4);
    int attempts = 0;
    assert_int_equal(lf_loader_mysql_load_retry(db, &ps, &lo, &scratch, &attempts), 0);
    assert_int_equal(attempts, 2);
    assert_int_equal(qint(admin, "SELECT COUNT(*) FROM events WHERE session_id='00000000000000000000000000000004'"), 6);
    lf_buf_free(&scratch);
    lf_psession_free(&ps);
    lf_mysql_close(db);
    lf_mysql_close(admin);
}

static void failures_are_recorded(void **state)
{
    (void)state;
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_loader_test");
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    assert_int_equal(lf_loader_mysql_record_failure(db, "00000000000000000000000000000009", 3, "decrypt",
                                                    "no key 'abc' in the keyring", "h1"), 0);
    assert_int_equal(qint(db, "SELECT COUNT(*) FROM parse_failures WHERE session_id='00000000000000000000000000000009' "
                              "AND attempt=3 AND stage='decrypt' AND reason='no key \\'abc\\' in the keyring'"), 1);
    lf_mysql_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parsed_rows_are_right),
        cmocka_unit_test(infile_load_is_idempotent),
        cmocka_unit_test(insert_load_is_idempotent),
        cmocka_unit_test(both_methods_store_the_same_rows),
        cmocka_unit_test(lost_connection_is_retried),
        cmocka_unit_test(failures_are_recorded),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
