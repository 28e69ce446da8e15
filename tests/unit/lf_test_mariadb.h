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

/* 0 on success; the server lives until this process exits. */
static int lf_test_mariadb_start(struct lf_test_mariadb *m)
{
    const char *src = getenv("LF_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec python3 %s/tests/lib/lfmariadb.py serve --parent-pid %d",
             src ? src : ".", (int)getpid());
    m->pipe = popen(cmd, "r");
    if (!m->pipe)
        return -1;
    if (fscanf(m->pipe, "%u %511s %63s %63s", &m->port, m->socket, m->user, m->password) != 4)
        return -1;
    return 0;
}

static lf_mysql_options lf_test_mariadb_options(const struct lf_test_mariadb *m, const char *database)
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

#endif
