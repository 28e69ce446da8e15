/* Probes that need no HTTP client: free disk space (statvfs) and MySQL (libmariadb). */
#include <errno.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "checks.h"
#include "lf_error.h"
#include "lf_mysql.h"

void lf_check_probe_disk(const lf_check_config *c, lf_check_result *res)
{
    struct statvfs sv;
    if (!c->path || statvfs(c->path, &sv) != 0) {
        lf_check_eval_disk(c, c->path ? -errno : -EINVAL, 0, 0, res);
        return;
    }
    /* f_bavail: what an unprivileged writer (the programs) can still use */
    uint64_t frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    lf_check_eval_disk(c, 0, (uint64_t)sv.f_bavail * frsize, (uint64_t)sv.f_blocks * frsize, res);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Connects with the check's timeout on connect, read and write. NULL with err filled on failure. */
static MYSQL *connect_db(const lf_check_config *c, char *err, size_t cap)
{
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    unsigned timeout_s = (unsigned)((c->timeout_ms + 999) / 1000);
    if (timeout_s == 0)
        timeout_s = 1;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const char *host = c->mysql_socket ? NULL : (c->mysql_host ? c->mysql_host : "127.0.0.1");
    bool unix_socket = c->mysql_socket != NULL;
    lf_buf why = LF_BUF_INIT(cap);
    int rc = lf_mysql_tls_apply(m, &c->mysql_tls, unix_socket, &why);
    if (rc == 0 && !mysql_real_connect(m, host, c->mysql_user, c->mysql_password, c->mysql_database,
                                       (unsigned)c->mysql_port, c->mysql_socket, 0)) {
        lf_mysql_tls_connect_error(m, &c->mysql_tls, unix_socket, err, cap);
        rc = LF_EDB;
    } else if (rc == 0) {
        rc = lf_mysql_tls_confirm(m, &c->mysql_tls, unix_socket, &why); /* fail closed: never query in plaintext */
    }
    if (rc != 0 && why.len)
        snprintf(err, cap, "%s", lf_buf_cstr(&why));
    lf_buf_free(&why);
    if (rc != 0) {
        mysql_close(m);
        return NULL;
    }
    return m;
}

void lf_check_probe_mysql(const lf_check_config *c, lf_check_result *res)
{
    char err[512] = "";
    MYSQL *m = connect_db(c, err, sizeof(err));
    if (!m) {
        lf_check_eval_mysql(c, -ECONNREFUSED, err, 0, res);
        return;
    }
    double t0 = now_ms();
    int rc = 0;
    if (mysql_query(m, "SELECT 1") != 0) {
        snprintf(err, sizeof(err), "SELECT 1 failed: %s", mysql_error(m));
        rc = LF_EDB;
    } else {
        MYSQL_RES *r = mysql_store_result(m);
        MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
        if (!row || !row[0] || strcmp(row[0], "1") != 0) {
            snprintf(err, sizeof(err), "SELECT 1 gave no row: %s", mysql_error(m));
            rc = LF_EDB;
        }
        mysql_free_result(r);
    }
    double latency = now_ms() - t0;
    mysql_close(m);
    lf_check_eval_mysql(c, rc, err, latency, res);
}

#define FRESHNESS_MAX_ROWS 256

void lf_check_probe_freshness(const lf_check_config *c, lf_check_result *res)
{
    char err[512] = "";
    if (!c->query || !c->query[0]) {
        lf_check_eval_freshness(c, NULL, 0, -EINVAL, "no query configured", res);
        return;
    }
    MYSQL *m = connect_db(c, err, sizeof(err));
    if (!m) {
        lf_check_eval_freshness(c, NULL, 0, -ECONNREFUSED, err, res);
        return;
    }
    if (mysql_query(m, c->query) != 0) {
        snprintf(err, sizeof(err), "%s", mysql_error(m));
        mysql_close(m);
        lf_check_eval_freshness(c, NULL, 0, LF_EDB, err, res);
        return;
    }
    MYSQL_RES *r = mysql_store_result(m);
    if (!r || mysql_num_fields(r) < 2) {
        snprintf(err, sizeof(err), "the query must return (job, seconds since last success)%s%s",
                 mysql_errno(m) ? ": " : "", mysql_errno(m) ? mysql_error(m) : "");
        mysql_free_result(r);
        mysql_close(m);
        lf_check_eval_freshness(c, NULL, 0, LF_EFORMAT, err, res);
        return;
    }
    lf_check_job_age rows[FRESHNESS_MAX_ROWS];
    size_t n = 0;
    MYSQL_ROW row;
    while (n < FRESHNESS_MAX_ROWS && (row = mysql_fetch_row(r)) != NULL) {
        if (!row[0])
            continue;
        rows[n].job = row[0];
        rows[n].age_s = row[1] ? strtoll(row[1], NULL, 10) : -1;
        if (rows[n].age_s < 0 && row[1])
            rows[n].age_s = 0; /* a run stamped in the future (clock skew) is fresh */
        n++;
    }
    lf_check_eval_freshness(c, rows, n, 0, NULL, res); /* rows point into r: evaluate before freeing */
    mysql_free_result(r);
    mysql_close(m);
}
