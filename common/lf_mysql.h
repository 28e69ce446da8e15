/* MySQL/MariaDB access through libmariadb (the libmysqlclient API), for the parser, analytics,
 * the receiver's read routes and the monitor.
 *
 * A connection is used by one thread at a time. Every call returns 0 (or a count) or a negative
 * code: LF_EDB for a server-side error, -ECONNRESET when the connection was lost, -EDEADLK for a
 * deadlock or lock wait timeout, -ETIMEDOUT for a network timeout. lf_mysql_retryable() says which
 * are worth retrying after reconnecting (lost connection, deadlock); the message of the last error is
 * lf_mysql_error().
 */
#ifndef LF_MYSQL_H
#define LF_MYSQL_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"

typedef struct lf_mysql lf_mysql;

typedef struct lf_mysql_options {
    const char *host;     /* "127.0.0.1"; NULL with socket set */
    unsigned port;        /* 3306 */
    const char *socket;   /* unix socket path, or NULL */
    const char *user;
    const char *password;
    const char *database; /* may be NULL */
    unsigned connect_timeout_s; /* default 5 */
    unsigned read_timeout_s;    /* default 60 */
    unsigned write_timeout_s;   /* default 60 */
    bool create_database;       /* CREATE DATABASE IF NOT EXISTS before selecting it */
} lf_mysql_options;

/* Connects (utf8mb4, UTC session time zone, autocommit on, LOCAL INFILE allowed only from memory
 * handlers of this module). The options' strings are copied. */
LF_MUST_CHECK int lf_mysql_connect(const lf_mysql_options *opt, lf_mysql **out);
void lf_mysql_close(lf_mysql *db);
/* Closes and opens the connection again with the same options. */
LF_MUST_CHECK int lf_mysql_reconnect(lf_mysql *db);

const char *lf_mysql_error(const lf_mysql *db);
unsigned lf_mysql_errno(const lf_mysql *db);
/* true for codes that a retry after lf_mysql_reconnect may cure. */
bool lf_mysql_retryable(int code);

/* Runs statements that return no rows. Returns affected rows (>= 0) or a negative code. */
int64_t lf_mysql_exec(lf_mysql *db, const char *sql);
int64_t lf_mysql_execf(lf_mysql *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs a query and calls row_cb for every row (values NULL for SQL NULL, lengths given). A non-zero
 * return from row_cb stops and is returned. */
typedef int (*lf_mysql_row_cb)(void *arg, unsigned n_fields, char **values, unsigned long *lengths);
LF_MUST_CHECK int lf_mysql_query(lf_mysql *db, const char *sql, lf_mysql_row_cb row_cb, void *arg);
/* First column of the first row as an integer; -ENOENT when no row, or the value is NULL. */
LF_MUST_CHECK int lf_mysql_query_int(lf_mysql *db, const char *sql, int64_t *out);

LF_MUST_CHECK int lf_mysql_begin(lf_mysql *db);
LF_MUST_CHECK int lf_mysql_commit(lf_mysql *db);
int lf_mysql_rollback(lf_mysql *db);

/* Appends s as a quoted SQL string literal ('...' with escapes for the connection's charset). */
LF_MUST_CHECK int lf_mysql_quote(lf_mysql *db, lf_buf *out, const char *s, size_t len);

/* LOAD DATA LOCAL INFILE fed from memory: data is tab-separated rows in the server's default
 * escaping (\t, \n, \\ and \N for NULL: see lf_mysql_tsv_append). sql_tail is what follows
 * "LOAD DATA LOCAL INFILE '<mem>' INTO TABLE ", e.g. "events (session_id, seq, ts)".
 * The data is not copied and must stay valid for the call. Returns rows loaded. */
int64_t lf_mysql_load_data(lf_mysql *db, const char *sql_tail, const char *data, size_t len);
/* Appends one field in LOAD DATA's default escaping; NULL value -> \N. */
LF_MUST_CHECK int lf_mysql_tsv_append(lf_buf *out, const char *value, size_t len);

/* Versioned schema migrations. Each migration runs once, in order, recorded in the table
 * schema_migrations(version, name, applied_at); a MySQL named lock (GET_LOCK) keeps two processes
 * from migrating at once. sql may hold several statements separated by ";\n". */
typedef struct lf_mysql_migration {
    unsigned version;
    const char *name;
    const char *sql;
} lf_mysql_migration;
/* Applies pending migrations; *applied gets how many ran. */
LF_MUST_CHECK int lf_mysql_migrate(lf_mysql *db, const lf_mysql_migration *list, size_t n, unsigned *applied);
/* Current schema version (0 when none) and how many known migrations are pending. */
LF_MUST_CHECK int lf_mysql_schema_version(lf_mysql *db, const lf_mysql_migration *list, size_t n, unsigned *version,
                            unsigned *pending);

#endif
