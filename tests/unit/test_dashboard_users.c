/* The dashboard's users file: a password set is verified and a wrong one is not; the file saved is
 * read back the same and private (0600); a removed user is gone; a file with any bad line is refused
 * whole with the line named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dashboard_users.h"
#include "lf_error.h"

static void test_set_save_load_verify(void **state)
{
    (void)state;
    char dir[] = "/tmp/lf_dash_users_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/users", dir);
    lf_dash_users u = {NULL, 0}, back;
    lf_buf err = LF_BUF_INIT(512);
    assert_int_equal(lf_dash_users_load(path, &back, &err), 0); /* missing: nobody */
    assert_int_equal(back.n, 0);
    assert_int_equal(lf_dash_users_set(&u, "alice@example", LF_DASH_ADMIN, "pw one", 6), 0);
    assert_int_equal(lf_dash_users_set(&u, "bob", LF_DASH_READ, "x", 1), 0);
    assert_int_equal(lf_dash_users_set(&u, "bad name", LF_DASH_READ, "x", 1), -EINVAL);
    assert_int_equal(lf_dash_users_set(&u, "carol", LF_DASH_NONE, "x", 1), -EINVAL);
    assert_int_equal(lf_dash_users_set(&u, "carol", LF_DASH_READ, "", 0), -EINVAL);
    assert_int_equal(lf_dash_users_save(path, &u), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lf_dash_users_load(path, &back, &err), 0);
    assert_int_equal(back.n, 2);
    const lf_dash_user *a = lf_dash_users_find(&back, "alice@example");
    assert_non_null(a);
    assert_int_equal(a->role, LF_DASH_ADMIN);
    assert_true(lf_dash_password_ok(a->hash, "pw one", 6));
    assert_false(lf_dash_password_ok(a->hash, "pw on", 5));
    assert_false(lf_dash_password_ok(a->hash, "pw one ", 7));
    assert_int_equal(lf_dash_users_remove(&back, "alice@example"), 0);
    assert_int_equal(lf_dash_users_remove(&back, "alice@example"), -ENOENT);
    assert_null(lf_dash_users_find(&back, "alice@example"));
    assert_non_null(lf_dash_users_find(&back, "bob"));
    lf_dash_users_free(&back);
    lf_dash_users_free(&u);
    lf_buf_free(&err);
    unlink(path);
    rmdir(dir);
}

static void refused(const char *text, const char *why)
{
    lf_dash_users u;
    lf_buf err = LF_BUF_INIT(512);
    assert_int_equal(lf_dash_users_parse(text, strlen(text), &u, &err), LF_ECONFIG);
    assert_non_null(strstr(lf_buf_cstr(&err), why));
    lf_buf_free(&err);
}

static void test_bad_files_refused_whole(void **state)
{
    (void)state;
    refused("alice read $argon2id$a\nbob boss $argon2id$b\n", "line 2");
    refused("alice read $argon2id$a\nalice admin $argon2id$b\n", "given twice");
    refused("alice read\n", "line 1: expected NAME ROLE HASH");
    refused("alice read $argon2id$a extra\n", "expected NAME ROLE HASH");
    refused("alice read plaintext\n", "line 1");
    refused("al/ice read $argon2id$a\n", "line 1");
    lf_dash_users u;
    lf_buf err = LF_BUF_INIT(512);
    const char ok[] = "# comment\n\n  \nalice read $argon2id$a\n";
    assert_int_equal(lf_dash_users_parse(ok, sizeof ok - 1, &u, &err), 0);
    assert_int_equal(u.n, 1);
    lf_dash_users_free(&u);
    const char nul[] = "alice read $argon2id$a\0x\n";
    assert_int_equal(lf_dash_users_parse(nul, sizeof nul - 1, &u, &err), LF_ECONFIG);
    lf_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_save_load_verify),
        cmocka_unit_test(test_bad_files_refused_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
