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
#include "lf_config.h"
#include "lf_preflight.h"

typedef struct lf_mysql lf_mysql;

/* TLS to the server, set by ssl_mode (MySQL's names):
 *   disabled         plaintext
 *   preferred        TLS when the server offers it, its certificate not checked; plaintext otherwise
 *                    (and always over a Unix socket, which is local)
 *   required         TLS or no connection; the server's certificate is not checked
 *   verify_ca        required, and the server's certificate must chain to ssl_ca
 *   verify_identity  verify_ca, and the certificate must name the host connected to (subjectAltName
 *                    DNS or IP, else CN)
 * A mode that cannot be honoured fails the connection: it never falls back to plaintext. The client
 * library (MariaDB Connector/C 3.3) would connect in plaintext to a server without TLS even when
 * asked to enforce it, so lf_mysql_tls_confirm checks the connection itself before it is used. */
enum lf_mysql_ssl_mode {
    LF_MYSQL_SSL_DISABLED = 0,
    LF_MYSQL_SSL_PREFERRED,
    LF_MYSQL_SSL_REQUIRED,
    LF_MYSQL_SSL_VERIFY_CA,
    LF_MYSQL_SSL_VERIFY_IDENTITY,
};
/* "disabled", "preferred", "required", "verify_ca", "verify_identity", NULL (LF_CFG_ENUM values). */
extern const char *const lf_mysql_ssl_modes[];

/* The TLS settings, a member of a program's configuration struct (and of lf_mysql_options). */
typedef struct lf_mysql_tls {
    int mode;   /* enum lf_mysql_ssl_mode (an LF_CFG_ENUM field); 0: disabled */
    char *ca;   /* PEM CA file: verify_ca and verify_identity need it, the other modes refuse it */
    char *cert; /* client certificate (PEM) with key, for accounts that REQUIRE X509 */
    char *key;
} lf_mysql_tls;

/* Configuration rows for an lf_mysql_tls at byte offset OFF of the target, in section SEC, keys
 * PFX "ssl_mode", PFX "ssl_ca", PFX "ssl_cert", PFX "ssl_key" (PFX is "" or "mysql_"), with FLAGS. */
#define LF_MYSQL_TLS_OPTIONS(SEC, PFX, OFF, FLAGS)                                                             \
    {SEC, PFX "ssl_mode", LF_CFG_ENUM, "preferred", (OFF) + offsetof(lf_mysql_tls, mode),                      \
     .enum_values = lf_mysql_ssl_modes, .flags = (FLAGS),                                                      \
     .description = "TLS to MySQL/MariaDB: disabled; preferred (TLS when the server offers it, certificate "    \
                    "not checked, else plaintext; never over a Unix socket); required (TLS or no connection, "  \
                    "certificate not checked); verify_ca (required, and the server's certificate must be "     \
                    "signed by " PFX "ssl_ca); verify_identity (verify_ca, and the certificate must name the " \
                    "host connected to). A mode that cannot be honoured fails the connection, it never falls " \
                    "back to plaintext."},                                                                    \
    {SEC, PFX "ssl_ca", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_mysql_tls, ca), .flags = (FLAGS),             \
     .description = "PEM file of the CA that signed the server's certificate (the server's ssl_ca); needed by " \
                    "verify_ca and verify_identity and refused with the other modes. A certificate from a "    \
                    "public CA: /etc/ssl/certs/ca-certificates.crt."},                                        \
    {SEC, PFX "ssl_cert", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_mysql_tls, cert), .flags = (FLAGS),         \
     .description = "Client certificate (PEM) for an account that requires one (REQUIRE X509, SUBJECT or "     \
                    "ISSUER), with " PFX "ssl_key; not with " PFX "ssl_mode disabled."},                       \
    {SEC, PFX "ssl_key", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_mysql_tls, key), .flags = (FLAGS),           \
     .description = "Private key (PEM, unencrypted) of " PFX "ssl_cert, readable by the service user only."}

/* Requirements across the TLS keys: verify_ca and verify_identity need ssl_ca, the other modes refuse
 * it (a CA that is silently not used would be a surprise); ssl_cert and ssl_key go together and not
 * with disabled. 0, or LF_ECONFIG with *key set to the key at fault ("ssl_ca", without prefix) and
 * the reason in err. */
LF_MUST_CHECK int lf_mysql_tls_check(const lf_mysql_tls *t, const char **key, lf_buf *err);
/* For a program's preflight: lf_mysql_tls_check, and that the files are readable regular files.
 * pfx as in LF_MYSQL_TLS_OPTIONS. */
void lf_mysql_tls_preflight(lf_preflight *pf, const char *section, const char *pfx, const lf_mysql_tls *t);

/* For code that drives libmariadb itself (the monitor's probes; lf_mysql_connect uses them too).
 * m is a MYSQL * from mysql_init; unix_socket: the connection goes over a Unix socket.
 * lf_mysql_tls_apply sets the TLS options before mysql_real_connect: 0, or LF_ECONFIG / -ENOMEM with
 * err. lf_mysql_tls_confirm, after mysql_real_connect succeeded, checks that the connection honours
 * the mode (TLS in use for required and the verify modes): 0, or LF_EAUTH with err, and then the
 * connection must be closed unused. lf_mysql_tls_connect_error writes why mysql_real_connect failed,
 * with what the TLS setting has to do with it. */
struct st_mysql;
LF_MUST_CHECK int lf_mysql_tls_apply(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, lf_buf *err);
LF_MUST_CHECK int lf_mysql_tls_confirm(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, lf_buf *err);
void lf_mysql_tls_connect_error(struct st_mysql *m, const lf_mysql_tls *t, bool unix_socket, char *out, size_t size);

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
    lf_mysql_tls tls;           /* {0}: disabled */
} lf_mysql_options;

/* Connects (utf8mb4, UTC session time zone, autocommit on, LOCAL INFILE allowed only from memory
 * handlers of this module, TLS as opt->tls says). The options' strings are copied. TLS settings
 * that do not go together give LF_ECONFIG; a TLS handshake or certificate check that fails, or a
 * server without TLS when the mode requires it, gives LF_EAUTH; the reason is logged. */
LF_MUST_CHECK int lf_mysql_connect(const lf_mysql_options *opt, lf_mysql **out);
/* A deep copy of the options (dst owns its strings; free with lf_mysql_options_free). */
LF_MUST_CHECK int lf_mysql_options_copy(lf_mysql_options *dst, const lf_mysql_options *src);
void lf_mysql_options_free(lf_mysql_options *o);
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

/* Loads tab-separated rows into a table. data is in LOAD DATA's default format (fields ended by a
 * tab, lines by a newline, the last newline optional; \N alone is NULL; backslash escapes \0 \b \n
 * \r \t \Z \\, and a backslash before any other character stands for that character: see
 * lf_mysql_tsv_append). sql_tail is what follows "LOAD DATA LOCAL INFILE '<mem>' INTO TABLE ", e.g.
 * "events CHARACTER SET utf8mb4 (session_id, seq, ts)". The data is not copied and must stay valid
 * for the call. Returns the rows inserted (duplicates of a unique key are skipped, as LOAD DATA LOCAL
 * does), or a negative code.
 *
 * Two paths, chosen per connection at its first load: LOAD DATA LOCAL INFILE fed from memory, or,
 * when the server has local_infile off (MySQL 8's default) or refuses LOCAL (then from that load
 * on), multi-row INSERT IGNORE statements built from the same data, each under the server's
 * max_allowed_packet, with the same result: the same rows, and all or none of them (several
 * statements run in a transaction of their own, or inside the caller's under a savepoint). Which path
 * a connection uses is logged once. The INSERT path needs a tail of the form "TABLE [CHARACTER SET
 * utf8mb4] (col, ...)" (no SET clause, no @variables; without CHARACTER SET the database's character
 * set must be utf8mb4), and refuses data whose rows do not have one field per column, or that ends
 * in a lone backslash, with LF_EFORMAT and the row in lf_mysql_error, before any row is written. */
int64_t lf_mysql_load_data(lf_mysql *db, const char *sql_tail, const char *data, size_t len);
/* "infile" or "insert": the path lf_mysql_load_data takes on this connection; NULL before its first
 * load (the path is chosen then). */
const char *lf_mysql_load_path(const lf_mysql *db);
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
