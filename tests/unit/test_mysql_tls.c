/* lf_mysql over TLS against a real MariaDB started with a test CA's certificate and
 * --require-secure-transport=ON (listening on 127.0.0.1 and 127.0.0.2; the certificate names only
 * 127.0.0.1 and localhost), and against one without TLS: each ssl_mode does what it says, checks
 * that cannot be honoured fail the connection (never plaintext), and the errors say why. */
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
#include "lf_log.h"
#include "lf_mysql.h"
#include "lf_preflight.h"
#include "lf_test_mariadb.h"

static struct lf_test_mariadb tls_server, plain_server;
static char dir[] = "/tmp/lf-mysql-tls-XXXXXX";
static char ca[300], other_ca[300], client_cert[300], client_key[300];

/* A server that requires TLS with the test CA's certificates (lf_test_mariadb_start_tls: it also
 * listens on 127.0.0.2, which the certificate does not name), and one without TLS. */
static int setup(void **state)
{
    if (!mkdtemp(dir) || lf_test_mariadb_start_tls(&tls_server, dir) != 0)
        return -1;
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", dir);
    snprintf(client_cert, sizeof client_cert, "%s/client.pem", dir);
    snprintf(client_key, sizeof client_key, "%s/client.key", dir);
    return lf_test_mariadb_start(&plain_server);
}

static int teardown(void **state)
{
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static lf_mysql_options opts(const struct lf_test_mariadb *m, int mode, const char *ca_file)
{
    lf_mysql_options o = lf_test_mariadb_options(m, NULL);
    o.create_database = false;
    o.connect_timeout_s = 5;
    o.tls.mode = mode;
    o.tls.ca = (char *)ca_file;
    return o;
}

/* The connection's cipher, "" without TLS. */
static int cipher_row(void *arg, unsigned n, char **values, unsigned long *lengths)
{
    snprintf(arg, 128, "%s", n > 0 && values[0] ? values[0] : "");
    return 0;
}

static void cipher_of(lf_mysql *db, char out[128])
{
    out[0] = '\0';
    assert_int_equal(lf_mysql_query(db, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE "
                                        "VARIABLE_NAME = 'Ssl_cipher'", cipher_row, out), 0);
}

static void connects_over_tls(const lf_mysql_options *o)
{
    lf_mysql *db = NULL;
    int rc = lf_mysql_connect(o, &db);
    if (rc)
        fail_msg("connect (ssl_mode %s): %s", lf_mysql_ssl_modes[o->tls.mode], lf_strerror(rc));
    char cipher[128];
    cipher_of(db, cipher);
    assert_true(cipher[0] != '\0');
    lf_mysql_close(db);
}

/* The connection is refused with rc; the logged reason (captured from the log) holds each needle. */
static void refused(const lf_mysql_options *o, int rc, const char *needle1, const char *needle2)
{
    char path[] = "/tmp/lf-mysql-tls-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    lf_log_set_fd(fd);
    lf_mysql *db = NULL;
    int got = lf_mysql_connect(o, &db);
    lf_log_set_fd(-1);
    char log[4096] = "";
    ssize_t n = pread(fd, log, sizeof log - 1, 0);
    close(fd);
    unlink(path);
    log[n > 0 ? n : 0] = '\0';
    if (got != rc)
        fail_msg("expected %s, got %s; log: %s", lf_errname(rc), lf_errname(got), log);
    assert_null(db);
    if (needle1 && !strstr(log, needle1))
        fail_msg("\"%s\" not in: %s", needle1, log);
    if (needle2 && !strstr(log, needle2))
        fail_msg("\"%s\" not in: %s", needle2, log);
}

static void verify_ca_connects_with_the_servers_ca(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_VERIFY_CA, ca);
    connects_over_tls(&o);
    /* a host name the certificate does not hold is fine for verify_ca */
    o.host = "127.0.0.2";
    connects_over_tls(&o);
}

static void another_ca_is_refused(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_VERIFY_CA, other_ca);
    refused(&o, LF_EAUTH, "TLS (ssl_mode verify_ca, ssl_ca ", "certificate");
    o.tls.mode = LF_MYSQL_SSL_VERIFY_IDENTITY;
    refused(&o, LF_EAUTH, "TLS (ssl_mode verify_identity", NULL);
}

static void verify_identity_checks_the_host_name(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_VERIFY_IDENTITY, ca);
    connects_over_tls(&o); /* 127.0.0.1 is in the certificate */
    o.host = "127.0.0.2";  /* the same server, an address the certificate does not name */
    refused(&o, LF_EAUTH, "TLS (ssl_mode verify_identity", "Validation of SSL server certificate failed");
}

static void required_and_preferred_use_tls_without_checking(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_REQUIRED, NULL);
    connects_over_tls(&o);
    o.tls.mode = LF_MYSQL_SSL_PREFERRED;
    connects_over_tls(&o);
    /* over the Unix socket, required still means TLS (MariaDB offers it there too) */
    o.tls.mode = LF_MYSQL_SSL_REQUIRED;
    o.host = NULL;
    o.socket = tls_server.socket;
    connects_over_tls(&o);
}

static void plaintext_is_refused_by_the_server_and_explained(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_DISABLED, NULL);
    refused(&o, LF_EAUTH, "Access denied", "require_secure_transport");
}

/* Connector/C 3.3 goes on in plaintext when the server has no TLS, whatever it was asked: the
 * connection must still be refused. */
static void a_server_without_tls_is_refused_when_tls_is_required(void **state)
{
    int modes[] = {LF_MYSQL_SSL_REQUIRED, LF_MYSQL_SSL_VERIFY_CA, LF_MYSQL_SSL_VERIFY_IDENTITY};
    for (size_t i = 0; i < 3; i++) {
        lf_mysql_options o = opts(&plain_server, modes[i], modes[i] == LF_MYSQL_SSL_REQUIRED ? NULL : ca);
        refused(&o, LF_EAUTH, lf_mysql_ssl_modes[modes[i]], "TLS");
    }
    /* preferred connects, in plaintext */
    lf_mysql_options o = opts(&plain_server, LF_MYSQL_SSL_PREFERRED, NULL);
    lf_mysql *db = NULL;
    assert_int_equal(lf_mysql_connect(&o, &db), 0);
    char cipher[128];
    cipher_of(db, cipher);
    assert_string_equal(cipher, "");
    lf_mysql_close(db);
}

static void settings_that_do_not_go_together_are_config_errors(void **state)
{
    struct {
        lf_mysql_tls t;
        const char *key;
    } cases[] = {
        {{LF_MYSQL_SSL_VERIFY_CA, NULL, NULL, NULL}, "ssl_ca"},
        {{LF_MYSQL_SSL_VERIFY_IDENTITY, NULL, NULL, NULL}, "ssl_ca"},
        {{LF_MYSQL_SSL_PREFERRED, ca, NULL, NULL}, "ssl_ca"},
        {{LF_MYSQL_SSL_REQUIRED, ca, NULL, NULL}, "ssl_ca"},
        {{LF_MYSQL_SSL_DISABLED, ca, NULL, NULL}, "ssl_ca"},
        {{LF_MYSQL_SSL_REQUIRED, NULL, client_cert, NULL}, "ssl_key"},
        {{LF_MYSQL_SSL_REQUIRED, NULL, NULL, client_key}, "ssl_cert"},
        {{LF_MYSQL_SSL_DISABLED, NULL, client_cert, client_key}, "ssl_cert"},
        {{LF_MYSQL_SSL_VERIFY_CA, "", NULL, NULL}, "ssl_ca"},
        {{7, NULL, NULL, NULL}, "ssl_mode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *key = NULL;
        lf_buf why = LF_BUF_INIT(512);
        assert_int_equal(lf_mysql_tls_check(&cases[i].t, &key, &why), LF_ECONFIG);
        assert_string_equal(key, cases[i].key);
        assert_true(why.len > 0);
        lf_buf_free(&why);
        lf_mysql_options o = lf_test_mariadb_options(&tls_server, NULL);
        o.tls = cases[i].t;
        refused(&o, LF_ECONFIG, cases[i].key, NULL);
    }
    lf_mysql_tls good = {LF_MYSQL_SSL_VERIFY_IDENTITY, ca, client_cert, client_key};
    const char *key = NULL;
    assert_int_equal(lf_mysql_tls_check(&good, &key, NULL), 0);
}

/* lf_mysql_tls_preflight finds as many problems as want, the first of them holding each needle. */
static void preflight_finds(const char *section, const char *pfx, const lf_mysql_tls *t, size_t want,
                            const char *needle1, const char *needle2)
{
    lf_preflight pf;
    lf_preflight_init(&pf, NULL);
    lf_mysql_tls_preflight(&pf, section, pfx, t);
    if (pf.n_problems != want || (needle1 && !strstr(lf_buf_cstr(&pf.problems), needle1)) ||
        (needle2 && !strstr(lf_buf_cstr(&pf.problems), needle2)))
        fail_msg("preflight of [%s]: %zu problems: %s", section, pf.n_problems, lf_buf_cstr(&pf.problems));
    lf_preflight_free(&pf);
}

static void an_unreadable_ca_fails_preflight_and_the_connection(void **state)
{
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no-such-ca.pem", dir);
    lf_mysql_tls t = {LF_MYSQL_SSL_VERIFY_CA, missing, NULL, NULL};
    preflight_finds("check.db", "mysql_", &t, 1, "[check.db] mysql_ssl_ca", "no-such-ca.pem");
    /* the check across keys is reported there too */
    lf_mysql_tls half = {LF_MYSQL_SSL_REQUIRED, NULL, client_cert, NULL};
    preflight_finds("mysql", "", &half, 1, "[mysql] ssl_key", NULL);
    lf_mysql_tls ok = {LF_MYSQL_SSL_VERIFY_CA, ca, client_cert, client_key};
    preflight_finds("mysql", "", &ok, 0, NULL, NULL);
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_VERIFY_CA, missing);
    refused(&o, LF_EAUTH, "TLS (ssl_mode verify_ca", "no-such-ca.pem");
}

/* An account that requires a client certificate: refused without one, accepted with ssl_cert and
 * ssl_key. */
static void a_client_certificate_is_sent(void **state)
{
    lf_mysql_options o = opts(&tls_server, LF_MYSQL_SSL_VERIFY_CA, ca);
    lf_mysql *admin = NULL;
    assert_int_equal(lf_mysql_connect(&o, &admin), 0);
    assert_true(lf_mysql_exec(admin, "CREATE USER IF NOT EXISTS 'lfx509'@'%' IDENTIFIED BY 'pw' REQUIRE X509") >= 0);
    lf_mysql_close(admin);
    o.user = "lfx509";
    o.password = "pw";
    refused(&o, LF_EAUTH, "Access denied", NULL);
    o.tls.cert = client_cert;
    o.tls.key = client_key;
    connects_over_tls(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verify_ca_connects_with_the_servers_ca),
        cmocka_unit_test(another_ca_is_refused),
        cmocka_unit_test(verify_identity_checks_the_host_name),
        cmocka_unit_test(required_and_preferred_use_tls_without_checking),
        cmocka_unit_test(plaintext_is_refused_by_the_server_and_explained),
        cmocka_unit_test(a_server_without_tls_is_refused_when_tls_is_required),
        cmocka_unit_test(settings_that_do_not_go_together_are_config_errors),
        cmocka_unit_test(an_unreadable_ca_fails_preflight_and_the_connection),
        cmocka_unit_test(a_client_certificate_is_sent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
