/* For C tests that need a real MariaDB: starts a private scratch server through
 * tests/lib/lfmariadb.py (its own data directory, socket and port) that stops when the test process
 * ends. Header-only so that each test program includes it. */
#ifndef LF_TEST_MARIADB_H
#define LF_TEST_MARIADB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lf_mysql.h"

struct lf_test_mariadb {
    unsigned port;
    char socket[512];
    char user[64];
    char password[64];
    FILE *pipe;
};

/* Starts `lfmariadb.py serve` with serve_opts (its options, see there): 0 on success; the server
 * lives until this process exits. */
static inline int lf_test_mariadb_serve(struct lf_test_mariadb *m, const char *serve_opts)
{
    const char *src = getenv("LF_SOURCE_DIR");
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "exec python3 %s/tests/lib/lfmariadb.py serve --parent-pid %d %s",
                     src ? src : ".", (int)getpid(), serve_opts);
    if (n <= 0 || (size_t)n >= sizeof cmd)
        return -1;
    m->pipe = popen(cmd, "r");
    if (!m->pipe)
        return -1;
    if (fscanf(m->pipe, "%u %511s %63s %63s", &m->port, m->socket, m->user, m->password) != 4)
        return -1;
    return 0;
}

/* args: NULL, or mariadbd options put after the defaults (NULL-terminated, e.g. {"--local-infile=0",
 * NULL}; no quotes or spaces in them). */
static inline int lf_test_mariadb_start_args(struct lf_test_mariadb *m, const char *const *args)
{
    char opts[2048] = "";
    size_t n = 0;
    for (size_t i = 0; args && args[i]; i++) {
        int k = snprintf(opts + n, sizeof opts - n, " --arg=%s", args[i]);
        if (k < 0 || (size_t)k >= sizeof opts - n)
            return -1;
        n += (size_t)k;
    }
    return lf_test_mariadb_serve(m, opts);
}

static inline int lf_test_mariadb_start(struct lf_test_mariadb *m)
{
    return lf_test_mariadb_start_args(m, NULL);
}

/* A server that requires TLS (lfmariadb.py tls_files and tls_required_args): its test CA and
 * certificates are made in dir (ca.pem, other-ca.pem, client.pem, client.key, ...). */
static inline int lf_test_mariadb_start_tls(struct lf_test_mariadb *m, const char *dir)
{
    char opts[1024];
    snprintf(opts, sizeof opts, "--tls-required %s", dir);
    return lf_test_mariadb_serve(m, opts);
}

static inline lf_mysql_options lf_test_mariadb_options(const struct lf_test_mariadb *m, const char *database)
{
    lf_mysql_options o = {0};
    o.host = "127.0.0.1";
    o.port = m->port;
    o.user = m->user;
    o.password = m->password;
    o.database = database;
    o.create_database = 1;
    return o;
}

/* A connection to database on m (created when missing); NULL, with the reason on stderr, when it
 * fails. */
static inline lf_mysql *lf_test_mariadb_connect(const struct lf_test_mariadb *m, const char *database)
{
    lf_mysql_options o = lf_test_mariadb_options(m, database);
    lf_mysql *db = NULL;
    int rc = lf_mysql_connect(&o, &db);
    if (rc)
        fprintf(stderr, "connecting to the test MariaDB: %s\n", lf_strerror(rc));
    return rc ? NULL : db;
}

#endif
