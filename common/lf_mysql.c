#include "lf_mysql.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* How lf_mysql_load_data loads on this connection: chosen at its first load (load_path_detect). */
enum load_path { LOAD_UNKNOWN = 0, LOAD_INFILE, LOAD_INSERT };

struct lf_mysql {
    MYSQL *conn;
    struct mem_infile infile;
    lf_mysql_options opt; /* strings owned */
    char error[512];
    unsigned err_no;
    enum load_path load_path;
    uint64_t max_packet;  /* the server's max_allowed_packet, for the INSERT path */
    bool db_utf8mb4;      /* the database's character set is utf8mb4 (a tail without CHARACTER SET) */
};

static char *dup_or_null(const char *s)
{
    return s ? lf_strdup(s) : NULL;
}

void lf_mysql_options_free(lf_mysql_options *o)
{
    lf_free((char *)o->host);
    lf_free((char *)o->socket);
    lf_free((char *)o->user);
    if (o->password)
        explicit_bzero((char *)o->password, strlen(o->password));
    lf_free((char *)o->password);
    lf_free((char *)o->database);
    lf_free(o->tls.ca);
    lf_free(o->tls.cert);
    lf_free(o->tls.key);
    memset(o, 0, sizeof *o);
}

int lf_mysql_options_copy(lf_mysql_options *dst, const lf_mysql_options *src)
{
    *dst = *src;
    dst->host = dup_or_null(src->host);
    dst->socket = dup_or_null(src->socket);
    dst->user = dup_or_null(src->user);
    dst->password = dup_or_null(src->password);
    dst->database = dup_or_null(src->database);
    dst->tls.ca = dup_or_null(src->tls.ca);
    dst->tls.cert = dup_or_null(src->tls.cert);
    dst->tls.key = dup_or_null(src->tls.key);
    if ((src->host && !dst->host) || (src->socket && !dst->socket) || (src->user && !dst->user) ||
        (src->password && !dst->password) || (src->database && !dst->database) || (src->tls.ca && !dst->tls.ca) ||
        (src->tls.cert && !dst->tls.cert) || (src->tls.key && !dst->tls.key)) {
        lf_mysql_options_free(dst);
        return -ENOMEM;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* TLS */

const char *const lf_mysql_ssl_modes[] = {"disabled", "preferred", "required", "verify_ca", "verify_identity", NULL};

static const char *mode_name(int mode)
{
    return mode >= LF_MYSQL_SSL_DISABLED && mode <= LF_MYSQL_SSL_VERIFY_IDENTITY ? lf_mysql_ssl_modes[mode] : "?";
}

int lf_mysql_tls_check(const lf_mysql_tls *t, const char **key, lf_buf *err)
{
    *key = "ssl_mode";
    if (t->mode < LF_MYSQL_SSL_DISABLED || t->mode > LF_MYSQL_SSL_VERIFY_IDENTITY) {
        lf_buf_msgf(err, "unknown mode %d", t->mode);
        return LF_ECONFIG;
    }
    bool verify = t->mode >= LF_MYSQL_SSL_VERIFY_CA;
    const char *files[] = {t->ca, t->cert, t->key};
    const char *names[] = {"ssl_ca", "ssl_cert", "ssl_key"};
    for (size_t i = 0; i < 3; i++) {
        if (files[i] && !*files[i]) {
            *key = names[i];
            lf_buf_msgf(err, "is empty (leave it out instead)");
            return LF_ECONFIG;
        }
    }
    if (verify && !t->ca) {
        *key = "ssl_ca";
        lf_buf_msgf(err, "ssl_mode %s checks the server's certificate against a CA: give the CA's PEM file "
                    "(a public CA: /etc/ssl/certs/ca-certificates.crt)", mode_name(t->mode));
        return LF_ECONFIG;
    }
    if (!verify && t->ca) {
        *key = "ssl_ca";
        lf_buf_msgf(err, "is used by ssl_mode verify_ca and verify_identity only, and ssl_mode is %s: set "
                    "ssl_mode = verify_ca (or verify_identity) to check the server's certificate",
                    mode_name(t->mode));
        return LF_ECONFIG;
    }
    if (!t->cert != !t->key) {
        *key = t->cert ? "ssl_key" : "ssl_cert";
        lf_buf_msgf(err, "a client certificate needs both ssl_cert and ssl_key");
        return LF_ECONFIG;
    }
    if (t->cert && t->mode == LF_MYSQL_SSL_DISABLED) {
        *key = "ssl_cert";
        lf_buf_msgf(err, "a client certificate is sent over TLS only, and ssl_mode is disabled");
        return LF_ECONFIG;
    }
    return 0;
}

void lf_mysql_tls_preflight(lf_preflight *pf, const char *section, const char *pfx, const lf_mysql_tls *t)
{
    char name[64];
    const char *key = NULL;
    lf_buf why = LF_BUF_INIT(512);
    if (lf_mysql_tls_check(t, &key, &why) != 0) {
        snprintf(name, sizeof name, "%s%s", pfx, key);
        lf_preflight_fail(pf, section, name, "%s", lf_buf_cstr(&why));
    }
    lf_buf_free(&why);
    const char *files[] = {t->ca, t->cert, t->key};
    const char *names[] = {"ssl_ca", "ssl_cert", "ssl_key"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%s%s", pfx, names[i]);
        lf_preflight_file(pf, section, name, files[i], false);
    }
}

/* The mode in effect: preferred means no TLS over a Unix socket (local; MySQL's clients do the same). */
static int effective_mode(const lf_mysql_tls *t, bool unix_socket)
{
    return t->mode == LF_MYSQL_SSL_PREFERRED && unix_socket ? LF_MYSQL_SSL_DISABLED : t->mode;
}

int lf_mysql_tls_apply(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, lf_buf *err)
{
    const char *key = NULL;
    lf_buf why = LF_BUF_INIT(512);
    int rc = lf_mysql_tls_check(t, &key, &why);
    if (rc != 0) {
        lf_buf_msgf(err, "%s: %s", key, lf_buf_cstr(&why));
        lf_buf_free(&why);
        return rc;
    }
    lf_buf_free(&why);
    int mode = effective_mode(t, unix_socket);
    /* Connector/C 3.3: MYSQL_OPT_SSL_ENFORCE asks for TLS when the server offers it (and, despite its
     * name, goes on in plaintext when it does not: lf_mysql_tls_confirm refuses that); a CA makes it
     * check the certificate chain; MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name check. Both
     * are set either way, so that a connector with other defaults behaves the same. Connector/C 3.4
     * made MYSQL_OPT_SSL_VERIFY_SERVER_CERT off mean "check nothing", the CA chain included: there
     * verify_ca sets it too, and so checks the host name as well (stricter, never weaker). */
    my_bool use_tls = mode != LF_MYSQL_SSL_DISABLED;
#if MARIADB_PACKAGE_VERSION_ID >= 30400
    my_bool verify_host = mode >= LF_MYSQL_SSL_VERIFY_CA;
#else
    my_bool verify_host = mode == LF_MYSQL_SSL_VERIFY_IDENTITY;
#endif
    const char *failed = NULL;
    if (mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &use_tls) != 0)
        failed = "MYSQL_OPT_SSL_ENFORCE";
    else if (mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify_host) != 0)
        failed = "MYSQL_OPT_SSL_VERIFY_SERVER_CERT";
    else if (use_tls && t->ca && mysql_optionsv(m, MYSQL_OPT_SSL_CA, t->ca) != 0)
        failed = "MYSQL_OPT_SSL_CA";
    else if (use_tls && t->cert && mysql_optionsv(m, MYSQL_OPT_SSL_CERT, t->cert) != 0)
        failed = "MYSQL_OPT_SSL_CERT";
    else if (use_tls && t->key && mysql_optionsv(m, MYSQL_OPT_SSL_KEY, t->key) != 0)
        failed = "MYSQL_OPT_SSL_KEY";
    if (failed) {
        lf_buf_msgf(err, "the MySQL client library refused the TLS option %s", failed);
        return LF_ECONFIG;
    }
    return 0;
}

int lf_mysql_tls_confirm(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, lf_buf *err)
{
    int mode = effective_mode(t, unix_socket);
    if (mode < LF_MYSQL_SSL_REQUIRED || mysql_get_ssl_cipher(m) != NULL)
        return 0;
    lf_buf_msgf(err, "ssl_mode %s, but the server did not set up TLS (it has no certificate: its ssl_cert and "
                "ssl_key settings); closed without using the connection", mode_name(mode));
    return LF_EAUTH;
}

void lf_mysql_tls_connect_error(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, char *out, size_t size)
{
    unsigned e = mysql_errno(m);
    int mode = effective_mode(t, unix_socket);
    if (e == CR_SSL_CONNECTION_ERROR && mode == LF_MYSQL_SSL_VERIFY_IDENTITY)
        snprintf(out, size, "TLS (ssl_mode verify_identity, ssl_ca %s): %s (the certificate must also name %s)",
                 t->ca ? t->ca : "", mysql_error(m), m->host ? m->host : "the host connected to");
    else if (e == CR_SSL_CONNECTION_ERROR)
        snprintf(out, size, "TLS (ssl_mode %s%s%s): %s", mode_name(mode), t->ca ? ", ssl_ca " : "",
                 t->ca ? t->ca : "", mysql_error(m));
    else if (e == ER_ACCESS_DENIED_ERROR && mode == LF_MYSQL_SSL_DISABLED)
        snprintf(out, size, "%s (this connection did not use TLS: a server with require_secure_transport=ON "
                 "refuses plaintext connections with this error; see ssl_mode)", mysql_error(m));
    else
        snprintf(out, size, "%s", mysql_error(m));
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
    db->load_path = LOAD_UNKNOWN;
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
    bool unix_socket = o->socket != NULL;
    lf_buf why = LF_BUF_INIT(sizeof db->error);
    int rc = lf_mysql_tls_apply(db->conn, &o->tls, unix_socket, &why);
    if (rc == 0 && !mysql_real_connect(db->conn, o->socket ? NULL : (o->host ? o->host : "127.0.0.1"), o->user,
                                       o->password, NULL, o->port ? o->port : 3306, o->socket, 0)) {
        rc = fail(db) == LF_EDB ? LF_EAUTH : -ECONNREFUSED; /* TLS failures are LF_EDB too */
        lf_mysql_tls_connect_error(db->conn, &o->tls, unix_socket, db->error, sizeof db->error);
    } else if (rc == 0) {
        rc = lf_mysql_tls_confirm(db->conn, &o->tls, unix_socket, &why);
    }
    if (rc != 0) {
        if (why.len)
            snprintf(db->error, sizeof db->error, "%s", lf_buf_cstr(&why));
        lf_buf_free(&why);
        mysql_close(db->conn);
        db->conn = NULL;
        return rc;
    }
    lf_buf_free(&why);
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
    int rc = lf_mysql_options_copy(&db->opt, opt);
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
    lf_mysql_options_free(&db->opt);
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

static int64_t load_infile(lf_mysql *db, const char *sql_tail, const char *data, size_t len)
{
    db->infile = (struct mem_infile){data ? data : "", len, 0};
    lf_buf sql = LF_BUF_INIT(64 * 1024);
    int rc = lf_buf_appendf(&sql, "LOAD DATA LOCAL INFILE 'lf-memory' INTO TABLE %s", sql_tail);
    int64_t r = rc ? rc : lf_mysql_exec(db, lf_buf_cstr(&sql));
    lf_buf_free(&sql);
    db->infile.data = NULL;
    return r;
}

/* ---------------------------------------------------------------------------------------------- */
/* The INSERT path of lf_mysql_load_data, for servers with local_infile off */

/* Refusals of LOAD DATA LOCAL: 1148 ER_NOT_ALLOWED_COMMAND (MySQL 5.7, older MariaDB), 3948
 * ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8), 4166 ER_LOAD_INFILE_CAPABILITY_DISABLED (MariaDB 10.4
 * and later: what 10.11 answers with local_infile off). */
static bool infile_refused(unsigned e)
{
    return e == 1148 || e == 3948 || e == 4166;
}

/* Largest INSERT statement the INSERT path builds (smaller when max_allowed_packet is). */
#define LOAD_BATCH_MAX (4u << 20)

static const char *conn_name(const lf_mysql *db, char *buf, size_t size)
{
    const lf_mysql_options *o = &db->opt;
    if (o->socket)
        snprintf(buf, size, "%s%s%s", o->socket, o->database ? " database " : "", o->database ? o->database : "");
    else
        snprintf(buf, size, "%s:%u%s%s", o->host ? o->host : "127.0.0.1", o->port ? o->port : 3306,
                 o->database ? " database " : "", o->database ? o->database : "");
    return buf;
}

static void set_error(lf_mysql *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(lf_mysql *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->error, sizeof db->error, fmt, ap);
    va_end(ap);
    db->err_no = 0;
}

struct load_vars {
    bool seen, local_infile, utf8mb4;
    uint64_t max_packet;
};

static int load_vars_row(void *arg, unsigned n, char **v, unsigned long *lengths)
{
    struct load_vars *lv = arg;
    if (n == 3 && v[0] && v[1]) {
        lv->seen = true;
        lv->local_infile = strtoll(v[0], NULL, 10) != 0;
        lv->max_packet = strtoull(v[1], NULL, 10);
        lv->utf8mb4 = v[2] && strcmp(v[2], "utf8mb4") == 0;
    }
    return 0;
}

/* Chooses the path of this connection from the server's settings, and says which. */
static int load_path_detect(lf_mysql *db)
{
    struct load_vars lv = {0};
    int rc = lf_mysql_query(db, "SELECT @@GLOBAL.local_infile, @@max_allowed_packet, @@character_set_database",
                            load_vars_row, &lv);
    if (rc != 0)
        return rc;
    if (!lv.seen || lv.max_packet < 1024) {
        set_error(db, "SELECT @@GLOBAL.local_infile, @@max_allowed_packet gave no usable row");
        return LF_EDB;
    }
    db->max_packet = lv.max_packet;
    db->db_utf8mb4 = lv.utf8mb4;
    db->load_path = lv.local_infile ? LOAD_INFILE : LOAD_INSERT;
    char name[300];
    if (lv.local_infile)
        LF_INFO("mysql", "%s: loading rows with LOAD DATA LOCAL INFILE", conn_name(db, name, sizeof name));
    else
        LF_INFO("mysql", "%s: the server has local_infile off: loading rows with multi-row INSERT statements "
                "(max_allowed_packet %" PRIu64 ")", conn_name(db, name, sizeof name), db->max_packet);
    return 0;
}

/* The parts of "TABLE [CHARACTER SET utf8mb4] (col, ...)" the INSERT statements use. */
struct load_tail {
    const char *table, *cols; /* cols: "(col, ...)" with its parentheses */
    size_t table_len, cols_len;
    unsigned n_cols;
    bool charset; /* CHARACTER SET utf8mb4 was given */
};

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
           c == '.' || c == '`';
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static bool keyword(const char *p, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(p, word, n) == 0 && !ident_char(p[n]);
}

static int parse_tail(lf_mysql *db, const char *tail, struct load_tail *t)
{
    memset(t, 0, sizeof *t);
    const char *p = skip_space(tail);
    t->table = p;
    while (ident_char(*p))
        p++;
    t->table_len = (size_t)(p - t->table);
    p = skip_space(p);
    if (t->table_len && keyword(p, "CHARACTER")) {
        p = skip_space(p + 9);
        if (!keyword(p, "SET")) {
            set_error(db, "loading with INSERT statements: cannot read the LOAD DATA tail \"%s\"", tail);
            return -ENOTSUP;
        }
        p = skip_space(p + 3);
        if (!keyword(p, "utf8mb4")) {
            set_error(db, "loading with INSERT statements: only CHARACTER SET utf8mb4 is supported (\"%s\")", tail);
            return -ENOTSUP;
        }
        t->charset = true;
        p = skip_space(p + 7);
    }
    if (!t->table_len || *p != '(') {
        set_error(db, "loading with INSERT statements needs a LOAD DATA tail \"TABLE [CHARACTER SET utf8mb4] "
                      "(col, ...)\", not \"%s\"", tail);
        return -ENOTSUP;
    }
    t->cols = p++;
    for (;;) {
        p = skip_space(p);
        const char *name = p;
        while (ident_char(*p))
            p++;
        if (p == name) {
            set_error(db, "loading with INSERT statements: the column list of \"%s\" must name columns only "
                          "(no @variables)", tail);
            return -ENOTSUP;
        }
        t->n_cols++;
        p = skip_space(p);
        if (*p == ',') {
            p++;
        } else if (*p == ')') {
            p++;
            break;
        } else {
            set_error(db, "loading with INSERT statements: cannot read the column list of \"%s\"", tail);
            return -ENOTSUP;
        }
    }
    t->cols_len = (size_t)(p - t->cols);
    p = skip_space(p);
    if (*p) {
        set_error(db, "loading with INSERT statements: %s \"%s\" after the column list is not supported",
                  keyword(p, "SET") ? "the SET clause" : "the text", p);
        return -ENOTSUP;
    }
    return 0;
}

/* The end of the field starting at i: the first tab or newline that no backslash escapes, or len.
 * *lone (may be NULL) says whether the data ended in a backslash that escapes nothing. */
static size_t field_end(const char *d, size_t len, size_t i, bool *lone)
{
    while (i < len && d[i] != '\t' && d[i] != '\n')
        i += d[i] == '\\' ? 2 : 1;
    if (lone)
        *lone = i > len;
    return i < len ? i : len;
}

/* Checks that every row has n_cols fields and that no backslash is left without its character, so
 * that nothing is written from data that would be refused; *rows gets the count. */
static int check_rows(lf_mysql *db, const char *d, size_t len, unsigned n_cols, size_t *rows)
{
    size_t row = 0, i = 0;
    while (i < len) {
        unsigned fields = 0;
        for (;;) {
            bool lone = false;
            i = field_end(d, len, i, &lone);
            fields++;
            if (lone) {
                set_error(db, "row %zu: the data ends in a backslash that escapes nothing: refused (nothing loaded)",
                          row + 1);
                return LF_EFORMAT;
            }
            if (i >= len || d[i] == '\n')
                break;
            i++; /* the tab */
        }
        row++;
        if (fields != n_cols) {
            set_error(db, "row %zu has %u field%s where the column list has %u: refused (nothing loaded)", row,
                      fields, fields == 1 ? "" : "s", n_cols);
            return LF_EFORMAT;
        }
        i++; /* the newline (or past the end) */
    }
    *rows = row;
    return 0;
}

/* Decodes one field d[a, b) as LOAD DATA does; *null when it is \N alone. */
static int decode_field(const char *d, size_t a, size_t b, lf_buf *out, bool *null)
{
    lf_buf_reset(out);
    *null = b - a == 2 && d[a] == '\\' && d[a + 1] == 'N';
    if (*null)
        return 0;
    int rc = lf_buf_reserve(out, b - a);
    if (rc)
        return rc;
    for (size_t i = a; i < b; i++) {
        char c = d[i];
        if (c == '\\' && i + 1 < b) {
            switch (c = d[++i]) {
            case '0': c = '\0'; break;
            case 'b': c = '\b'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'Z': c = '\032'; break;
            default: break; /* \\, \N inside a longer field, a tab, a newline, anything: itself */
            }
        }
        out->data[out->len++] = c;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Appends "(v1,v2,...)" for the row at *pos and moves *pos past it. */
static int render_row(lf_mysql *db, const char *d, size_t len, size_t *pos, unsigned n_cols, lf_buf *row,
                      lf_buf *field)
{
    size_t i = *pos;
    int rc = lf_buf_append_char(row, '(');
    for (unsigned f = 0; f < n_cols && rc == 0; f++) {
        size_t end = field_end(d, len, i, NULL);
        bool null = false;
        rc = f ? lf_buf_append_char(row, ',') : 0;
        rc = rc ? rc : decode_field(d, i, end, field, &null);
        if (rc == 0)
            rc = null ? lf_buf_append(row, "NULL", 4) : lf_mysql_quote(db, row, field->data ? field->data : "", field->len);
        i = end + 1; /* past the tab, or the newline of the last field */
    }
    *pos = i;
    return rc ? rc : lf_buf_append_char(row, ')');
}

/* Several statements load as one: in a transaction of their own, or under a savepoint in the
 * caller's, so that a failure leaves no row behind (LOAD DATA is one statement). */
enum wrap { WRAP_NONE, WRAP_TRANSACTION, WRAP_SAVEPOINT };

static int wrap_begin(lf_mysql *db, enum wrap *w)
{
    unsigned status = 0;
    if (mariadb_get_infov(db->conn, MARIADB_CONNECTION_SERVER_STATUS, &status) != 0) {
        set_error(db, "cannot read the connection's transaction status");
        return LF_EDB;
    }
    bool in_caller_tx = (status & SERVER_STATUS_IN_TRANS) || !(status & SERVER_STATUS_AUTOCOMMIT);
    int64_t r = lf_mysql_exec(db, in_caller_tx ? "SAVEPOINT lf_load_data" : "START TRANSACTION");
    if (r < 0)
        return (int)r;
    *w = in_caller_tx ? WRAP_SAVEPOINT : WRAP_TRANSACTION;
    return 0;
}

/* Commits (rc 0) or takes back (rc < 0, whose message is kept) the wrapped statements. */
static int wrap_end(lf_mysql *db, enum wrap w, int rc)
{
    if (w == WRAP_NONE)
        return rc;
    if (rc == 0) {
        int64_t r = lf_mysql_exec(db, w == WRAP_SAVEPOINT ? "RELEASE SAVEPOINT lf_load_data" : "COMMIT");
        return r < 0 ? (int)r : 0;
    }
    char error[sizeof db->error];
    unsigned err_no = db->err_no;
    memcpy(error, db->error, sizeof error);
    /* may fail too (a deadlock already rolled the whole transaction back, the connection is gone):
     * the first error is the one to report */
    if (lf_mysql_exec(db, w == WRAP_SAVEPOINT ? "ROLLBACK TO SAVEPOINT lf_load_data" : "ROLLBACK") < 0)
        LF_DEBUG("mysql", "taking back a partial load: %s", db->error);
    memcpy(db->error, error, sizeof error);
    db->err_no = err_no;
    return rc;
}

static int64_t load_insert(lf_mysql *db, const char *sql_tail, const char *data, size_t len)
{
    struct load_tail t;
    size_t rows = 0;
    int rc = parse_tail(db, sql_tail, &t);
    if (rc == 0 && !t.charset && !db->db_utf8mb4) {
        set_error(db, "loading with INSERT statements sends utf8mb4, and the database's character set is not "
                      "utf8mb4: give CHARACTER SET utf8mb4 in \"%s\"", sql_tail);
        rc = -ENOTSUP;
    }
    if (rc == 0)
        rc = check_rows(db, data, len, t.n_cols, &rows);
    if (rc != 0 || rows == 0)
        return rc;
    /* the packet holds the statement and a command byte; leave room */
    size_t max_stmt = (size_t)(db->max_packet > 4096 ? db->max_packet - 1024 : db->max_packet / 2);
    size_t batch = max_stmt < LOAD_BATCH_MAX ? max_stmt : LOAD_BATCH_MAX;
    lf_buf stmt = LF_BUF_INIT(max_stmt), row = LF_BUF_INIT(max_stmt), field = LF_BUF_INIT(max_stmt);
    rc = lf_buf_appendf(&stmt, "INSERT IGNORE INTO %.*s %.*s VALUES ", (int)t.table_len, t.table, (int)t.cols_len,
                        t.cols);
    size_t head = stmt.len, pos = 0, in_stmt = 0;
    int64_t total = 0;
    enum wrap w = WRAP_NONE;
    for (size_t n = 1; rc == 0 && n <= rows; n++) {
        lf_buf_reset(&row);
        rc = render_row(db, data, len, &pos, t.n_cols, &row, &field);
        if (rc == LF_ELIMIT || (rc == 0 && head + row.len > max_stmt)) {
            set_error(db, "row %zu does not fit in one INSERT statement under the server's max_allowed_packet "
                          "(%" PRIu64 " bytes)", n, db->max_packet);
            rc = LF_ELIMIT;
            break;
        }
        if (rc == 0 && in_stmt && stmt.len + 1 + row.len > batch) {
            if (w == WRAP_NONE)
                rc = wrap_begin(db, &w);
            int64_t r = rc ? rc : lf_mysql_exec(db, lf_buf_cstr(&stmt));
            if (r < 0)
                rc = (int)r;
            else
                total += r;
            lf_buf_truncate(&stmt, head);
            in_stmt = 0;
        }
        if (rc == 0 && in_stmt)
            rc = lf_buf_append_char(&stmt, ',');
        if (rc == 0)
            rc = lf_buf_append(&stmt, row.data, row.len);
        in_stmt++;
    }
    if (rc == 0 && in_stmt) {
        int64_t r = lf_mysql_exec(db, lf_buf_cstr(&stmt));
        if (r < 0)
            rc = (int)r;
        else
            total += r;
    }
    rc = wrap_end(db, w, rc);
    lf_buf_free(&stmt);
    lf_buf_free(&row);
    lf_buf_free(&field);
    return rc ? rc : total;
}

int64_t lf_mysql_load_data(lf_mysql *db, const char *sql_tail, const char *data, size_t len)
{
    if (!db->conn)
        return -ECONNRESET;
    if (db->load_path == LOAD_UNKNOWN) {
        int rc = load_path_detect(db);
        if (rc != 0)
            return rc;
    }
    if (db->load_path == LOAD_INFILE) {
        int64_t r = load_infile(db, sql_tail, data, len);
        if (r >= 0 || !infile_refused(db->err_no))
            return r;
        /* local_infile was turned off since the connection chose (SET GLOBAL), or LOCAL is refused
         * for another reason: the statement changed nothing, the caller's transaction goes on */
        char name[300];
        LF_WARN("mysql", "%s: the server refused LOAD DATA LOCAL INFILE (%s): loading rows with INSERT statements "
                "on this connection from now on", conn_name(db, name, sizeof name), db->error);
        db->load_path = LOAD_INSERT;
    }
    return load_insert(db, sql_tail, data, len);
}

const char *lf_mysql_load_path(const lf_mysql *db)
{
    return db->load_path == LOAD_INFILE ? "infile" : db->load_path == LOAD_INSERT ? "insert" : NULL;
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
