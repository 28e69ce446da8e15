#include "lf_mysql.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_log.h"

/* LOAD DATA LOCAL INFILE is served from memory only: the connector calls these handlers instead of
 * opening a file, and they refuse any name but our placeholder or any request outside
 * lf_mysql_load_data, so a hostile server cannot make us read a local file. */
struct mem_infile {
    const char *data; /* NULL when no load is in progress */
    size_t len, pos;
};

struct lf_mysql {
    MYSQL *conn;
    struct mem_infile infile;
    lf_mysql_options opt; /* strings owned */
    char error[512];
    unsigned err_no;
};

static char *dup_or_null(const char *s)
{
    return s ? lf_strdup(s) : NULL;
}

static void free_options(lf_mysql_options *o)
{
    lf_free((char *)o->host);
    lf_free((char *)o->socket);
    lf_free((char *)o->user);
    lf_free((char *)o->password);
    lf_free((char *)o->database);
}

static int copy_options(lf_mysql_options *dst, const lf_mysql_options *src)
{
    *dst = *src;
    dst->host = dup_or_null(src->host);
    dst->socket = dup_or_null(src->socket);
    dst->user = dup_or_null(src->user);
    dst->password = dup_or_null(src->password);
    dst->database = dup_or_null(src->database);
    if ((src->host && !dst->host) || (src->socket && !dst->socket) || (src->user && !dst->user) ||
        (src->password && !dst->password) || (src->database && !dst->database)) {
        free_options(dst);
        return -ENOMEM;
    }
    return 0;
}

/* Maps the connection's last error to a code and remembers its message. */
static int fail(lf_mysql *db)
{
    unsigned e = db->conn ? mysql_errno(db->conn) : CR_CONNECTION_ERROR;
    db->err_no = e;
    snprintf(db->error, sizeof db->error, "%s", db->conn ? mysql_error(db->conn) : "no connection");
    switch (e) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
        return -ECONNRESET;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        return -EDEADLK;
    case CR_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return LF_EDB;
    }
}

bool lf_mysql_retryable(int code)
{
    return code == -ECONNRESET || code == -EDEADLK || code == -ETIMEDOUT;
}

const char *lf_mysql_error(const lf_mysql *db)
{
    return db->error;
}

unsigned lf_mysql_errno(const lf_mysql *db)
{
    return db->err_no;
}

static int infile_init(void **ptr, const char *filename, void *userdata);
static int infile_read(void *ptr, char *buf, unsigned int size);
static void infile_end(void *ptr);
static int infile_error(void *ptr, char *msg, unsigned int size);

static int open_connection(lf_mysql *db)
{
    const lf_mysql_options *o = &db->opt;
    db->conn = mysql_init(NULL);
    if (!db->conn)
        return -ENOMEM;
    unsigned ct = o->connect_timeout_s ? o->connect_timeout_s : 5;
    unsigned rt = o->read_timeout_s ? o->read_timeout_s : 60;
    unsigned wt = o->write_timeout_s ? o->write_timeout_s : 60;
    unsigned local_infile = 1;
    mysql_options(db->conn, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(db->conn, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_options(db->conn, MYSQL_OPT_WRITE_TIMEOUT, &wt);
    mysql_options(db->conn, MYSQL_OPT_LOCAL_INFILE, &local_infile);
    mysql_options(db->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(db->conn, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
    if (!mysql_real_connect(db->conn, o->socket ? NULL : (o->host ? o->host : "127.0.0.1"), o->user,
                            o->password, NULL, o->port ? o->port : 3306, o->socket, 0)) {
        int rc = fail(db);
        mysql_close(db->conn);
        db->conn = NULL;
        return rc == LF_EDB ? LF_EAUTH : -ECONNREFUSED;
    }
    mysql_set_local_infile_handler(db->conn, infile_init, infile_read, infile_end, infile_error,
                                   &db->infile);
    if (o->database) {
        if (o->create_database) {
            int64_t r = lf_mysql_execf(db, "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 "
                                           "COLLATE utf8mb4_bin", o->database);
            if (r < 0)
                return (int)r;
        }
        if (mysql_select_db(db->conn, o->database) != 0)
            return fail(db);
    }
    return 0;
}

int lf_mysql_connect(const lf_mysql_options *opt, lf_mysql **out)
{
    if (opt->database && strchr(opt->database, '`'))
        return -EINVAL;
    lf_mysql *db = lf_calloc(1, sizeof *db);
    if (!db)
        return -ENOMEM;
    int rc = copy_options(&db->opt, opt);
    if (rc) {
        lf_free(db);
        return rc;
    }
    rc = open_connection(db);
    if (rc) {
        LF_WARN("mysql", "connect to %s:%u failed: %s", opt->host ? opt->host : "socket",
                opt->port, db->error);
        lf_mysql_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void lf_mysql_close(lf_mysql *db)
{
    if (!db)
        return;
    if (db->conn)
        mysql_close(db->conn);
    free_options(&db->opt);
    lf_free(db);
}

int lf_mysql_reconnect(lf_mysql *db)
{
    if (db->conn)
        mysql_close(db->conn);
    db->conn = NULL;
    return open_connection(db);
}

int64_t lf_mysql_exec(lf_mysql *db, const char *sql)
{
    if (!db->conn)
        return -ECONNRESET;
    if (mysql_real_query(db->conn, sql, strlen(sql)) != 0)
        return fail(db);
    /* Drain any result so the connection stays usable. */
    MYSQL_RES *res = mysql_store_result(db->conn);
    if (res)
        mysql_free_result(res);
    else if (mysql_field_count(db->conn) != 0)
        return fail(db);
    return (int64_t)mysql_affected_rows(db->conn);
}

int64_t lf_mysql_execf(lf_mysql *db, const char *fmt, ...)
{
    lf_buf sql = LF_BUF_INIT(1 << 20);
    va_list ap;
    va_start(ap, fmt);
    int rc = lf_buf_vappendf(&sql, fmt, ap);
    va_end(ap);
    int64_t r = rc ? rc : lf_mysql_exec(db, lf_buf_cstr(&sql));
    lf_buf_free(&sql);
    return r;
}

int lf_mysql_query(lf_mysql *db, const char *sql, lf_mysql_row_cb row_cb, void *arg)
{
    if (!db->conn)
        return -ECONNRESET;
    if (mysql_real_query(db->conn, sql, strlen(sql)) != 0)
        return fail(db);
    MYSQL_RES *res = mysql_use_result(db->conn);
    if (!res)
        return mysql_field_count(db->conn) ? fail(db) : 0;
    unsigned n = mysql_num_fields(res);
    int rc = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (rc == 0)
            rc = row_cb(arg, n, row, mysql_fetch_lengths(res));
        /* keep fetching after a stop so the connection is left clean */
    }
    if (rc == 0 && mysql_errno(db->conn))
        rc = fail(db);
    mysql_free_result(res);
    return rc;
}

static int int_row(void *arg, unsigned n, char **values, unsigned long *lengths)
{
    int64_t *out = arg;
    if (n < 1 || !values[0])
        return -ENOENT;
    *out = strtoll(values[0], NULL, 10);
    return 1;
}

int lf_mysql_query_int(lf_mysql *db, const char *sql, int64_t *out)
{
    int rc = lf_mysql_query(db, sql, int_row, out);
    return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

int lf_mysql_begin(lf_mysql *db)
{
    int64_t r = lf_mysql_exec(db, "START TRANSACTION");
    return r < 0 ? (int)r : 0;
}

int lf_mysql_commit(lf_mysql *db)
{
    if (!db->conn)
        return -ECONNRESET;
    return mysql_commit(db->conn) ? fail(db) : 0;
}

int lf_mysql_rollback(lf_mysql *db)
{
    if (!db->conn)
        return -ECONNRESET;
    return mysql_rollback(db->conn) ? fail(db) : 0;
}

int lf_mysql_quote(lf_mysql *db, lf_buf *out, const char *s, size_t len)
{
    if (len > (out->max - out->len) / 2)
        return LF_ELIMIT;
    int rc = lf_buf_reserve(out, 2 * len + 3);
    if (rc)
        return rc;
    out->data[out->len++] = '\'';
    out->len += mysql_real_escape_string(db->conn, out->data + out->len, s, (unsigned long)len);
    out->data[out->len++] = '\'';
    out->data[out->len] = '\0';
    return 0;
}


static int infile_init(void **ptr, const char *filename, void *userdata)
{
    struct mem_infile *m = userdata;
    /* Only our own placeholder name: a server must not be able to make us read a real file. */
    if (strcmp(filename, "lf-memory") != 0 || !m->data)
        return 1;
    m->pos = 0;
    *ptr = m;
    return 0;
}

static int infile_read(void *ptr, char *buf, unsigned int size)
{
    struct mem_infile *m = ptr;
    size_t n = m->len - m->pos;
    if (n > size)
        n = size;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (int)n;
}

static void infile_end(void *ptr)
{
}

static int infile_error(void *ptr, char *msg, unsigned int size)
{
    snprintf(msg, size, "logferry: LOCAL INFILE is served only from memory");
    return 2000;
}

int64_t lf_mysql_load_data(lf_mysql *db, const char *sql_tail, const char *data, size_t len)
{
    if (!db->conn)
        return -ECONNRESET;
    db->infile = (struct mem_infile){data ? data : "", len, 0};
    lf_buf sql = LF_BUF_INIT(64 * 1024);
    int rc = lf_buf_appendf(&sql, "LOAD DATA LOCAL INFILE 'lf-memory' INTO TABLE %s", sql_tail);
    int64_t r = rc ? rc : lf_mysql_exec(db, lf_buf_cstr(&sql));
    lf_buf_free(&sql);
    db->infile.data = NULL;
    return r;
}

int lf_mysql_tsv_append(lf_buf *out, const char *value, size_t len)
{
    if (!value)
        return lf_buf_append(out, "\\N", 2);
    int rc = lf_buf_reserve(out, len);
    if (rc)
        return rc;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        switch (value[i]) {
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\\': esc = "\\\\"; break;
        case '\0': esc = "\\0"; break;
        default: continue;
        }
        if ((rc = lf_buf_append(out, value + start, i - start)) != 0 || (rc = lf_buf_append(out, esc, 2)) != 0)
            return rc;
        start = i + 1;
    }
    return lf_buf_append(out, value + start, len - start);
}

/* Runs the statements of one migration, split at ";\n". */
static int run_script(lf_mysql *db, const char *sql)
{
    const char *p = sql;
    while (*p) {
        const char *end = strstr(p, ";\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *stmt = lf_strndup(p, n);
        if (!stmt)
            return -ENOMEM;
        bool blank = strspn(stmt, " \t\r\n") == n;
        int64_t r = blank ? 0 : lf_mysql_exec(db, stmt);
        lf_free(stmt);
        if (r < 0)
            return (int)r;
        p += n + (end ? 2 : 0);
    }
    return 0;
}

static int ensure_migrations_table(lf_mysql *db)
{
    int64_t r = lf_mysql_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                  " version INT UNSIGNED NOT NULL PRIMARY KEY,"
                                  " name VARCHAR(200) NOT NULL,"
                                  " applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)"
                                  ") ENGINE=InnoDB");
    return r < 0 ? (int)r : 0;
}

int lf_mysql_schema_version(lf_mysql *db, const lf_mysql_migration *list, size_t n, unsigned *version,
                            unsigned *pending)
{
    int rc = ensure_migrations_table(db);
    if (rc)
        return rc;
    int64_t v = 0;
    rc = lf_mysql_query_int(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &v);
    if (rc)
        return rc;
    *version = (unsigned)v;
    unsigned p = 0;
    for (size_t i = 0; i < n; i++)
        p += list[i].version > *version;
    *pending = p;
    return 0;
}

int lf_mysql_migrate(lf_mysql *db, const lf_mysql_migration *list, size_t n, unsigned *applied)
{
    *applied = 0;
    int64_t got = 0;
    /* A named lock so two processes starting together do not run the same migration twice. */
    int rc = lf_mysql_query_int(db, "SELECT GET_LOCK(CONCAT(DATABASE(), '.logferry_migrate'), 60)", &got);
    if (rc)
        return rc;
    if (got != 1) {
        snprintf(db->error, sizeof db->error, "timed out waiting for the migration lock");
        return -ETIMEDOUT;
    }
    unsigned version = 0, pending = 0;
    rc = lf_mysql_schema_version(db, list, n, &version, &pending);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (list[i].version <= version)
            continue;
        LF_INFO("mysql", "applying migration %u (%s)", list[i].version, list[i].name);
        rc = run_script(db, list[i].sql);
        if (rc) {
            LF_ERROR("mysql", "migration %u (%s) failed: %s", list[i].version, list[i].name, db->error);
            break;
        }
        lf_buf ins = LF_BUF_INIT(4096);
        rc = lf_buf_appendf(&ins, "INSERT INTO schema_migrations (version, name) VALUES (%u, ", list[i].version);
        if (!rc)
            rc = lf_mysql_quote(db, &ins, list[i].name, strlen(list[i].name));
        if (!rc)
            rc = lf_buf_append_char(&ins, ')');
        if (!rc) {
            int64_t r = lf_mysql_exec(db, lf_buf_cstr(&ins));
            rc = r < 0 ? (int)r : 0;
        }
        lf_buf_free(&ins);
        if (!rc)
            (*applied)++;
    }
    lf_mysql_exec(db, "DO RELEASE_LOCK(CONCAT(DATABASE(), '.logferry_migrate'))");
    return rc;
}
