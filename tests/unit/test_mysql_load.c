/* lf_mysql_load_data's two paths against real servers: LOAD DATA LOCAL INFILE on a MariaDB with
 * local_infile on, multi-row INSERT statements on one started with --local-infile=0 (and a small
 * max_allowed_packet, so that loads are split into many statements). The same data loaded through
 * both must give the same table, byte for byte, the same count, and the same all-or-nothing result;
 * the INSERT path refuses what it cannot load exactly. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lf_buf.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_test_mariadb.h"

static struct lf_test_mariadb on_server, off_server;

#define OFF_MAX_PACKET "262144"

static lf_mysql *connect_to(const struct lf_test_mariadb *m)
{
    lf_mysql *db = lf_test_mariadb_connect(m, "lfload");
    assert_non_null(db);
    return db;
}

static int setup(void **state)
{
    static const char *const off_args[] = {"--local-infile=0", "--max-allowed-packet=" OFF_MAX_PACKET, NULL};
    if (lf_test_mariadb_start(&on_server) != 0)
        return -1;
    return lf_test_mariadb_start_args(&off_server, off_args);
}

static void exec_ok(lf_mysql *db, const char *sql)
{
    int64_t r = lf_mysql_exec(db, sql);
    if (r < 0)
        fail_msg("%s: %s", sql, lf_mysql_error(db));
}

static const char table_sql[] =
    "CREATE TABLE lt (id INT PRIMARY KEY, b VARBINARY(600) NULL, t TEXT CHARACTER SET utf8mb4 "
    "COLLATE utf8mb4_bin NULL, e VARCHAR(40) NULL) ENGINE=InnoDB";

static void fresh_table(lf_mysql *db)
{
    exec_ok(db, "DROP TABLE IF EXISTS lt");
    exec_ok(db, table_sql);
}

/* Every value of every row, length-prefixed, NULL marked: the table's exact contents. */
static int dump_row(void *arg, unsigned n, char **values, unsigned long *lengths)
{
    lf_buf *out = arg;
    for (unsigned i = 0; i < n; i++) {
        int rc = values[i] ? lf_buf_appendf(out, "[%lu]", lengths[i]) : lf_buf_append_str(out, "[NULL]");
        if (rc == 0 && values[i])
            rc = lf_buf_append(out, values[i], lengths[i]);
        if (rc)
            return rc;
    }
    return lf_buf_append_char(out, '\n');
}

static void dump_table(lf_mysql *db, lf_buf *out)
{
    lf_buf_reset(out);
    int rc = lf_mysql_query(db, "SELECT id, b, t, e FROM lt ORDER BY id", dump_row, out);
    if (rc)
        fail_msg("dump: %s (%s)", lf_strerror(rc), lf_mysql_error(db));
}

/* Loads data into a fresh lt on both servers; both must return the same and hold the same bytes.
 * Returns the count. */
static int64_t load_both(const char *tail, const char *data, size_t len)
{
    lf_mysql *on = connect_to(&on_server), *off = connect_to(&off_server);
    fresh_table(on);
    fresh_table(off);
    int64_t a = lf_mysql_load_data(on, tail, data, len);
    if (a < 0)
        fail_msg("LOAD DATA path: %s (%s)", lf_strerror((int)a), lf_mysql_error(on));
    int64_t b = lf_mysql_load_data(off, tail, data, len);
    if (b < 0)
        fail_msg("INSERT path: %s (%s)", lf_strerror((int)b), lf_mysql_error(off));
    assert_string_equal(lf_mysql_load_path(on), "infile");
    assert_string_equal(lf_mysql_load_path(off), "insert");
    assert_int_equal(a, b);
    lf_buf da = LF_BUF_INIT(256 << 20), db = LF_BUF_INIT(256 << 20);
    dump_table(on, &da);
    dump_table(off, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);
    lf_buf_free(&da);
    lf_buf_free(&db);
    lf_mysql_close(on);
    lf_mysql_close(off);
    return a;
}

static void field(lf_buf *b, const char *v, size_t len, char sep)
{
    assert_int_equal(lf_mysql_tsv_append(b, v, len), 0);
    assert_int_equal(lf_buf_append_char(b, sep), 0);
}

static void same_rows_through_both_paths(void **state)
{
    static const char *const texts[] = {
        "",                                   /* empty, not NULL */
        "plain",
        "tab\there, newline\nthere, cr\rthere",
        "back\\slash \\N \\t (not escapes) \\",
        "\\N",                                /* the two characters, not NULL */
        "N",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xf0\x9d\x84\x9e", /* 2, 3, 4-byte UTF-8 */
        "quote ' and \" and ; DROP TABLE lt; --",
        "ctrl \x1a \x08 \x01 \x7f",
        "trailing space ",
    };
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    lf_buf data = LF_BUF_INIT(64 << 20);
    for (int row = 0; row < 500; row++) {
        char id[16];
        int n = snprintf(id, sizeof id, "%d", row);
        field(&data, id, (size_t)n, '\t');
        /* b: every byte value (varbinary), a slice of them, NULL or empty */
        if (row % 7 == 3)
            field(&data, NULL, 0, '\t');
        else if (row % 7 == 4)
            field(&data, "", 0, '\t');
        else
            field(&data, all + row % 128, 256 - (size_t)(row % 128), '\t');
        const char *t = texts[row % (sizeof texts / sizeof texts[0])];
        if (row % 11 == 5)
            field(&data, NULL, 0, '\t');
        else
            field(&data, t, strlen(t), '\t');
        /* e: with NUL bytes inside */
        if (row % 5 == 0)
            field(&data, NULL, 0, '\n');
        else
            field(&data, "a\0b\0c", 5, '\n');
    }
    assert_int_equal(load_both("lt CHARACTER SET utf8mb4 (id, b, t, e)", data.data, data.len), 500);
    /* the analytics form: no CHARACTER SET (the database's, utf8mb4) */
    assert_int_equal(load_both("lt (id, b, t, e)", data.data, data.len), 500);
    /* the last newline is optional */
    assert_int_equal(load_both("lt (id, b, t, e)", data.data, data.len - 1), 500);
    /* no rows at all */
    assert_int_equal(load_both("lt (id, b, t, e)", "", 0), 0);
    lf_buf_free(&data);
}

/* What LOAD DATA makes of escapes lf_mysql_tsv_append never writes: \q is q, \N inside a field is
 * N, a backslash before a tab or a newline keeps it as data, \\N is the text \N. */
static void every_escape_decodes_as_load_data_does(void **state)
{
    static const char raw[] = "1\t\\q\t\\N\t\\\\\n"
                              "2\ta\\Nb\t\\Nx\tx\\N\n"
                              "3\tx\\\ty\tx\\\ny\t\\\\N\n"
                              "4\t\\Z\\b\\0\\r\\n\\t\t\t\\\\\\\\\n"
                              "5\t\xc3\xa9\\\xc3\xa9\t\\'\\\"\t\\N";
    assert_int_equal(load_both("lt (id, b, t, e)", raw, sizeof raw - 1), 5);
    lf_mysql *off = connect_to(&off_server);
    int64_t n = -1;
    assert_int_equal(lf_mysql_query_int(off, "SELECT COUNT(*) FROM lt WHERE id = 3 AND b = 'x\\ty' AND "
                                             "t = 'x\\ny' AND e = '\\\\N'", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(lf_mysql_query_int(off, "SELECT COUNT(*) FROM lt WHERE t IS NULL OR e IS NULL", &n), 0);
    assert_int_equal(n, 2); /* row 1's t and row 5's e */
    lf_mysql_close(off);
}

/* 20000 rows of about 400 bytes: one LOAD DATA, dozens of INSERT statements under 256 KiB. */
static void build_large(lf_buf *data, int rows)
{
    char text[400];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    for (int row = 0; row < rows; row++) {
        char id[16];
        int n = snprintf(id, sizeof id, "%d", row);
        field(data, id, (size_t)n, '\t');
        field(data, text, 100 + (size_t)(row % 300), '\t');
        field(data, row % 3 ? "\ttab\\ and\nline" : NULL, row % 3 ? 15 : 0, '\t');
        field(data, id, (size_t)n, '\n');
    }
}

static void large_load_is_split_under_max_allowed_packet(void **state)
{
    lf_buf data = LF_BUF_INIT(64 << 20);
    build_large(&data, 20000);
    assert_true(data.len > 20 * (size_t)atoi(OFF_MAX_PACKET));
    assert_int_equal(load_both("lt (id, b, t, e)", data.data, data.len), 20000);
    /* committed: another connection sees every row */
    lf_mysql *other = connect_to(&off_server);
    int64_t n = 0;
    assert_int_equal(lf_mysql_query_int(other, "SELECT COUNT(*) FROM lt", &n), 0);
    assert_int_equal(n, 20000);
    /* a row as large as the packet allows is refused with a clear error, nothing written */
    lf_buf big = LF_BUF_INIT(4 << 20);
    char *x = malloc(300000);
    assert_non_null(x);
    memset(x, 'x', 300000);
    field(&big, "1", 1, '\t');
    field(&big, NULL, 0, '\t');
    field(&big, x, 300000, '\t');
    field(&big, NULL, 0, '\n');
    exec_ok(other, "DELETE FROM lt");
    assert_int_equal(lf_mysql_load_data(other, "lt (id, b, t, e)", big.data, big.len), LF_ELIMIT);
    assert_non_null(strstr(lf_mysql_error(other), "max_allowed_packet"));
    free(x);
    lf_buf_free(&big);
    lf_mysql_close(other);
    lf_buf_free(&data);
}

/* A trigger refuses row 19000, long after the first statements ran: neither path leaves a row,
 * alone or inside the caller's transaction (which goes on with what it had). */
static void a_failed_load_leaves_no_row_on_either_path(void **state)
{
    lf_buf data = LF_BUF_INIT(64 << 20);
    build_large(&data, 20000);
    const struct lf_test_mariadb *servers[] = {&on_server, &off_server};
    for (size_t s = 0; s < 2; s++) {
        lf_mysql *db = connect_to(servers[s]);
        fresh_table(db);
        exec_ok(db, "CREATE TRIGGER lt_refuse BEFORE INSERT ON lt FOR EACH ROW BEGIN IF NEW.id = 19000 THEN "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'row 19000 refused'; END IF; END");
        /* alone (autocommit) */
        assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", data.data, data.len), LF_EDB);
        assert_non_null(strstr(lf_mysql_error(db), "row 19000 refused"));
        int64_t n = -1;
        assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
        assert_int_equal(n, 0);
        /* inside the caller's transaction */
        assert_int_equal(lf_mysql_begin(db), 0);
        exec_ok(db, "INSERT INTO lt (id) VALUES (-1)");
        assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", data.data, data.len), LF_EDB);
        exec_ok(db, "INSERT INTO lt (id) VALUES (-2)");
        assert_int_equal(lf_mysql_commit(db), 0);
        assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
        assert_int_equal(n, 2);
        /* and a load that works inside a transaction is the caller's to commit or take back */
        exec_ok(db, "DROP TRIGGER lt_refuse");
        assert_int_equal(lf_mysql_begin(db), 0);
        assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", data.data, data.len), 20000);
        assert_int_equal(lf_mysql_rollback(db), 0);
        assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(lf_mysql_load_path(db), s == 0 ? "infile" : "insert");
        lf_mysql_close(db);
    }
    lf_buf_free(&data);
}

/* LOAD DATA LOCAL skips rows that repeat a unique key (as IGNORE does); so does the INSERT path. */
static void duplicate_keys_count_the_same(void **state)
{
    static const char rows[] = "1\ta\tfirst\t\\N\n2\tb\tsecond\t\\N\n1\tc\tagain\t\\N\n3\td\tthird\t\\N\n";
    assert_int_equal(load_both("lt (id, b, t, e)", rows, sizeof rows - 1), 3);
}

static void malformed_rows_and_unsupported_tails_are_refused(void **state)
{
    lf_mysql *db = connect_to(&off_server);
    fresh_table(db);
    int64_t n = -1;
    /* a row with a field too few, at the end of a load that needs many statements */
    lf_buf data = LF_BUF_INIT(64 << 20);
    build_large(&data, 5000);
    assert_int_equal(lf_buf_append_str(&data, "5000\tonly\tthree\n"), 0);
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", data.data, data.len), LF_EFORMAT);
    assert_non_null(strstr(lf_mysql_error(db), "row 5001 has 3 fields"));
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
    assert_int_equal(n, 0);
    /* a field too many */
    static const char extra[] = "1\ta\tb\tc\td\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", extra, sizeof extra - 1), LF_EFORMAT);
    /* a backslash that escapes nothing */
    static const char lone[] = "1\ta\tb\tc\\";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", lone, sizeof lone - 1), LF_EFORMAT);
    assert_non_null(strstr(lf_mysql_error(db), "backslash"));
    /* an empty line in a four-column load */
    static const char empty_line[] = "1\ta\tb\tc\n\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", empty_line, sizeof empty_line - 1), LF_EFORMAT);
    /* tails the INSERT statements cannot express */
    static const char ok[] = "1\ta\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b) SET e = 'x'", ok, sizeof ok - 1), -ENOTSUP);
    assert_non_null(strstr(lf_mysql_error(db), "SET clause"));
    assert_int_equal(lf_mysql_load_data(db, "lt (id, @b) ", ok, sizeof ok - 1), -ENOTSUP);
    assert_int_equal(lf_mysql_load_data(db, "lt", ok, sizeof ok - 1), -ENOTSUP);
    assert_int_equal(lf_mysql_load_data(db, "lt CHARACTER SET latin1 (id, b)", ok, sizeof ok - 1), -ENOTSUP);
    assert_int_equal(lf_mysql_load_data(db, "lt FIELDS TERMINATED BY ',' (id, b)", ok, sizeof ok - 1), -ENOTSUP);
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
    assert_int_equal(n, 0);
    /* and the connection is still good */
    assert_int_equal(lf_mysql_load_data(db, "lt  ( id ,b )", ok, sizeof ok - 1), 1);
    lf_buf_free(&data);
    lf_mysql_close(db);
}

/* Without CHARACTER SET, LOAD DATA reads the data in the database's character set: the INSERT path
 * sends utf8mb4 and so refuses a database of another one rather than load other characters. */
static void a_database_in_another_character_set_needs_the_clause(void **state)
{
    lf_mysql *root = connect_to(&off_server);
    exec_ok(root, "CREATE DATABASE IF NOT EXISTS lfload_latin1 CHARACTER SET latin1");
    lf_mysql_close(root);
    lf_mysql_options o = lf_test_mariadb_options(&off_server, "lfload_latin1");
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    exec_ok(db, "DROP TABLE IF EXISTS lt");
    exec_ok(db, table_sql);
    static const char row[] = "1\tcaf\xc3\xa9\tcaf\xc3\xa9\t\\N\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", row, sizeof row - 1), -ENOTSUP);
    assert_non_null(strstr(lf_mysql_error(db), "utf8mb4"));
    assert_int_equal(lf_mysql_load_data(db, "lt CHARACTER SET utf8mb4 (id, b, t, e)", row, sizeof row - 1), 1);
    int64_t n = 0;
    assert_int_equal(lf_mysql_query_int(db, "SELECT CHAR_LENGTH(t) FROM lt", &n), 0);
    assert_int_equal(n, 4);
    lf_mysql_close(db);
}

/* local_infile turned off while a connection runs: its next load is refused by the server (4166 on
 * MariaDB) and goes through INSERT statements instead, inside the same transaction. */
static void a_refusal_later_switches_the_connection_to_insert(void **state)
{
    lf_mysql *db = connect_to(&on_server), *admin = connect_to(&on_server);
    fresh_table(db);
    static const char a[] = "1\ta\tb\tc\n", b[] = "2\ta\tb\tc\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", a, sizeof a - 1), 1);
    assert_string_equal(lf_mysql_load_path(db), "infile");
    exec_ok(admin, "SET GLOBAL local_infile = 0");
    assert_int_equal(lf_mysql_begin(db), 0);
    int64_t r = lf_mysql_load_data(db, "lt (id, b, t, e)", b, sizeof b - 1);
    exec_ok(admin, "SET GLOBAL local_infile = 1");
    assert_int_equal(r, 1);
    assert_int_equal(lf_mysql_commit(db), 0);
    assert_string_equal(lf_mysql_load_path(db), "insert");
    int64_t n = 0;
    assert_int_equal(lf_mysql_query_int(db, "SELECT COUNT(*) FROM lt", &n), 0);
    assert_int_equal(n, 2);
    /* a new connection chooses again */
    assert_int_equal(lf_mysql_reconnect(db), 0);
    assert_null(lf_mysql_load_path(db));
    static const char c[] = "3\ta\tb\tc\n";
    assert_int_equal(lf_mysql_load_data(db, "lt (id, b, t, e)", c, sizeof c - 1), 1);
    assert_string_equal(lf_mysql_load_path(db), "infile");
    lf_mysql_close(db);
    lf_mysql_close(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_rows_through_both_paths),
        cmocka_unit_test(every_escape_decodes_as_load_data_does),
        cmocka_unit_test(large_load_is_split_under_max_allowed_packet),
        cmocka_unit_test(a_failed_load_leaves_no_row_on_either_path),
        cmocka_unit_test(duplicate_keys_count_the_same),
        cmocka_unit_test(malformed_rows_and_unsupported_tails_are_refused),
        cmocka_unit_test(a_database_in_another_character_set_needs_the_clause),
        cmocka_unit_test(a_refusal_later_switches_the_connection_to_insert),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
