/* The parser's schema migrates a fresh database, is a no-op the second time, and holds what the
 * design needs (a session's rows replaced in one transaction; unique (session, seq)). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db_schema.h"
#include "lf_error.h"
#include "lf_mysql.h"
#include "lf_test_mariadb.h"

static struct lf_test_mariadb server;

static int setup(void **state)
{
    return lf_test_mariadb_start(&server);
}

static void migrates_once_and_enforces_keys(void **state)
{
    lf_mysql_options o = lf_test_mariadb_options(&server, "lf_schema_test");
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    unsigned applied = 0, version = 0, pending = 0;
    assert_int_equal(lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied), 0);
    assert_int_equal(applied, lf_parser_migrations_count);
    assert_int_equal(lf_mysql_migrate(db, lf_parser_migrations, lf_parser_migrations_count, &applied), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(lf_mysql_schema_version(db, lf_parser_migrations, lf_parser_migrations_count,
                                             &version, &pending), 0);
    assert_int_equal(version, lf_parser_migrations[lf_parser_migrations_count - 1].version);
    assert_int_equal(pending, 0);

    assert_int_equal(lf_mysql_exec(db, "INSERT INTO events (session_id, seq, line, template_id, message) "
                                       "VALUES ('0123456789abcdef0123456789abcdef', 1, 1, 42, 'm')"), 1);
    assert_int_equal(lf_mysql_exec(db, "INSERT INTO events (session_id, seq, line, template_id, message) "
                                       "VALUES ('0123456789abcdef0123456789abcdef', 1, 2, 43, 'dup')"), LF_EDB);
    assert_int_equal(lf_mysql_errno(db), 1062); /* duplicate key */
    /* template ids use all 64 bits; a merged template names the one it joined */
    assert_int_equal(lf_mysql_exec(db, "INSERT INTO templates (template_id, log_type, template, first_seen, last_seen, "
                                       "occurrences, canonical_id) VALUES (18446744073709551615, 'classic', "
                                       "'Opened <*>', NOW(3), NOW(3), 1, 18446744073709551614)"), 1);
    int64_t rev = -1;
    assert_int_equal(lf_mysql_query_int(db, "SELECT rev FROM template_revs WHERE id = 1", &rev), 0);
    assert_int_equal(rev, 0);
    lf_mysql_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrates_once_and_enforces_keys),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
