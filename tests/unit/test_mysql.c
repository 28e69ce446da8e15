/* lf_mysql against a real private MariaDB: queries, quoting of hostile strings, LOAD DATA from
 * memory with every escape, refusal to serve real files over LOCAL INFILE, migrations run once,
 * error mapping for lost connections and deadlocks. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_buf.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_test_mariadb.h"

static struct lf_test_mariadb server;

static lf_mysql *connect_db(void)
{
    lf_mysql *db = lf_test_mariadb_connect(&server, "lftest");
    assert_non_null(db);
    return db;
}

static int setup(void **state)
{
    return lf_test_mariadb_start(&server);
}

static void exec_query_and_quote(void **state)
{
    lf_mysql *db = connect_db();
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS t1") >= 0);
    assert_true(lf_mysql_exec(db, "CREATE TABLE t1 (id INT PRIMARY KEY, s VARBINARY(200))") >= 0);
    const char hostile[] = "it's a \"test\"; DROP TABLE t1; -- \\ \n\r\x1a end";
    lf_buf sql = LF_BUF_INIT(4096);
    assert_int_equal(lf_buf_append_str(&sql, "INSERT INTO t1 VALUES (1, "), 0);
    assert_int_equal(lf_mysql_quote(db, &sql, hostile, sizeof hostile - 1), 0);
    assert_int_equal(lf_buf_append_char(&sql, ')'), 0);
    assert_int_equal(lf_mysql_exec(db, lf_buf_cstr(&sql)), 1);
    lf_buf_free(&sql);
    int64_t n = -1;
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM t1 WHERE s = CONCAT('it''s a \"test\"; DROP TABLE t1; -- \\\\ ', CHAR(10), CHAR(13), CHAR(26), ' end')", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_mysql_query_int(db, "SELECT id FROM t1 WHERE id = 42", &n), -ENOENT);
    assert_int_equal(lf_mysql_exec(db, "SELECT * FROM no_such_table"), LF_EDB);
    assert_int_equal(lf_mysql_errno(db), 1146);
    lf_mysql_close(db);
}

static void load_data_from_memory_round_trips_every_byte(void **state)
{
    lf_mysql *db = connect_db();
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS t2") >= 0);
    assert_true(lf_mysql_exec(db, "CREATE TABLE t2 (id INT PRIMARY KEY, s VARBINARY(300) NULL)") >= 0);
    lf_buf data = LF_BUF_INIT(1 << 20);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    for (int row = 0; row < 100; row++) {
        char id[16];
        int len = snprintf(id, sizeof id, "%d", row);
        assert_int_equal(lf_mysql_tsv_append(&data, id, (size_t)len), 0);
        assert_int_equal(lf_buf_append_char(&data, '\t'), 0);
        if (row == 7)
            assert_int_equal(lf_mysql_tsv_append(&data, NULL, 0), 0);
        else
            assert_int_equal(lf_mysql_tsv_append(&data, all, sizeof all), 0);
        assert_int_equal(lf_buf_append_char(&data, '\n'), 0);
    }
    int64_t loaded = lf_mysql_load_data(db, "t2 (id, s)", data.data, data.len);
    assert_int_equal(loaded, 100);
    int64_t n = 0;
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM t2 WHERE s IS NULL", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM t2 WHERE LENGTH(s) = 256 AND "
                                            "s = (SELECT s FROM t2 WHERE id = 0)", &n), 0);
    assert_int_equal(n, 99);
    assert_int_equal(lf_mysql_query_int(db, "SELECT ASCII(SUBSTRING(s, 10, 1)) FROM t2 WHERE id = 3", &n), 0);
    assert_int_equal(n, 9); /* byte 9 is a tab: escaped and restored */
    lf_buf_free(&data);
    lf_mysql_close(db);
}

static void local_infile_never_reads_real_files(void **state)
{
    lf_mysql *db = connect_db();
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS t3") >= 0);
    assert_true(lf_mysql_exec(db, "CREATE TABLE t3 (line TEXT)") >= 0);
    int64_t r = lf_mysql_exec(db, "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t3");
    assert_true(r < 0);
    int64_t n = -1;
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM t3", &n), 0);
    assert_int_equal(n, 0);
    lf_mysql_close(db);
}

static const lf_mysql_migration migrations[] = {
    {1, "create a", "CREATE TABLE mig_a (id INT PRIMARY KEY);\nINSERT INTO mig_a VALUES (1);\n"},
    {2, "create b", "CREATE TABLE mig_b (id INT PRIMARY KEY)"},
};

static void migrations_run_once_in_order(void **state)
{
    lf_mysql *db = connect_db();
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS mig_a, mig_b, schema_migrations") >= 0);
    unsigned version = 99, pending = 99, applied = 99;
    assert_int_equal(lf_mysql_schema_version(db, migrations, 2, &version, &pending), 0);
    assert_int_equal(version, 0);
    assert_int_equal(pending, 2);
    assert_int_equal(lf_mysql_migrate(db, migrations, 1, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(lf_mysql_migrate(db, migrations, 2, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(lf_mysql_migrate(db, migrations, 2, &applied), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(lf_mysql_schema_version(db, migrations, 2, &version, &pending), 0);
    assert_int_equal(version, 2);
    assert_int_equal(pending, 0);
    int64_t n = 0;
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM mig_a", &n), 0);
    assert_int_equal(n, 1);
    lf_mysql_close(db);
}

static void failed_migration_is_not_recorded(void **state)
{
    static const lf_mysql_migration bad[] = {
        {1, "ok", "CREATE TABLE IF NOT EXISTS mig_c (id INT PRIMARY KEY)"},
        {2, "broken", "CREATE TABLE mig_d (id INT PRIMARY KEY);\nTHIS IS NOT SQL"},
    };
    lf_mysql *db = connect_db();
    assert_true(lf_mysql_exec(db, "DROP TABLE IF EXISTS mig_c, mig_d, schema_migrations") >= 0);
    unsigned applied = 0, version = 0, pending = 0;
    assert_int_equal(lf_mysql_migrate(db, bad, 2, &applied), LF_EDB);
    assert_int_equal(applied, 1);
    assert_int_equal(lf_mysql_schema_version(db, bad, 2, &version, &pending), 0);
    assert_int_equal(version, 1);
    assert_int_equal(pending, 1);
    lf_mysql_close(db);
}

static void lost_connection_is_retryable_and_reconnect_works(void **state)
{
    lf_mysql *victim = connect_db();
    lf_mysql *killer = connect_db();
    int64_t id = 0;
    assert_int_equal(lf_mysql_query_int(victim, "SELECT CONNECTION_ID()", &id), 0);
    assert_true(lf_mysql_execf(killer, "KILL CONNECTION %lld", (long long)id) >= 0);
    int64_t r = lf_mysql_exec(victim, "SELECT 1");
    assert_true(r < 0);
    assert_true(lf_mysql_retryable((int)r));
    assert_int_equal(lf_mysql_reconnect(victim), 0);
    int64_t one = 0;
    assert_int_equal(lf_mysql_query_int(victim, "SELECT 1", &one), 0);
    assert_int_equal(one, 1);
    lf_mysql_close(victim);
    lf_mysql_close(killer);
}

struct deadlock_side {
    lf_mysql *db;
    int first, second;
    int64_t result;
};

static void *deadlock_thread(void *arg)
{
    struct deadlock_side *s = arg;
    s->result = lf_mysql_execf(s->db, "UPDATE t4 SET v = v + 1 WHERE id = %d", s->second);
    return NULL;
}

static void deadlock_maps_to_edeadlk(void **state)
{
    lf_mysql *a = connect_db(), *b = connect_db();
    assert_true(lf_mysql_exec(a, "DROP TABLE IF EXISTS t4") >= 0);
    assert_true(lf_mysql_exec(a, "CREATE TABLE t4 (id INT PRIMARY KEY, v INT) ENGINE=InnoDB") >= 0);
    assert_true(lf_mysql_exec(a, "INSERT INTO t4 VALUES (1, 0), (2, 0)") >= 0);
    assert_int_equal(lf_mysql_begin(a), 0);
    assert_int_equal(lf_mysql_begin(b), 0);
    assert_int_equal(lf_mysql_exec(a, "UPDATE t4 SET v = 1 WHERE id = 1"), 1);
    assert_int_equal(lf_mysql_exec(b, "UPDATE t4 SET v = 1 WHERE id = 2"), 1);
    struct deadlock_side side_a = {a, 1, 2, 0};
    pthread_t t;
    pthread_create(&t, NULL, deadlock_thread, &side_a); /* a waits for row 2 */
    usleep(300 * 1000);
    int64_t rb = lf_mysql_exec(b, "UPDATE t4 SET v = 2 WHERE id = 1"); /* closes the cycle */
    pthread_join(t, NULL);
    /* InnoDB picks one victim: exactly one side sees the deadlock. */
    int deadlocks = (rb == -EDEADLK) + (side_a.result == -EDEADLK);
    assert_int_equal(deadlocks, 1);
    assert_true(lf_mysql_retryable(-EDEADLK));
    lf_mysql_rollback(a);
    lf_mysql_rollback(b);
    lf_mysql_close(a);
    lf_mysql_close(b);
}

static void connection_refused_is_reported(void **state)
{
    lf_mysql_options o = lf_test_mariadb_options(&server, "lftest");
    o.port = 1; /* nothing listens on port 1 */
    o.connect_timeout_s = 2;
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), -ECONNREFUSED);
    assert_null(db);
    o = lf_test_mariadb_options(&server, "lftest");
    o.password = "wrong";
    assert_int_equal(lf_mysql_connect(&o, &db), LF_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exec_query_and_quote),
        cmocka_unit_test(load_data_from_memory_round_trips_every_byte),
        cmocka_unit_test(local_infile_never_reads_real_files),
        cmocka_unit_test(migrations_run_once_in_order),
        cmocka_unit_test(failed_migration_is_not_recorded),
        cmocka_unit_test(lost_connection_is_retryable_and_reconnect_works),
        cmocka_unit_test(deadlock_maps_to_edeadlk),
        cmocka_unit_test(connection_refused_is_reported),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
