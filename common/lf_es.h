/* How a logferry program reaches Elasticsearch, and how it reads Elasticsearch's refusals.
 *
 * Elasticsearch 8 runs with security on by default: HTTPS with a certificate from its own CA and 401
 * without credentials. Every client (the receiver's store and search, the parser's loader, the
 * monitor's check) takes the same settings, declared with LF_ES_AUTH_OPTIONS in its configuration
 * table: a user and password (HTTP basic) or an API key, each given in the file as a secret or read
 * from a file (which keeps it out of the configuration), and a CA file. lf_es_conn_init checks them
 * at start-up and refuses a URL with credentials in it (they would reach log lines and
 * --dump-config); lf_es_conn_client_opts hands them to the HTTP client, which sends them with every
 * request and never logs them.
 *
 * Refusals: every non-2xx answer (of a whole request or of one bulk item) is one of three kinds, so
 * that nothing is dropped silently:
 *   LF_ES_RETRY  the same request will succeed later (429, 5xx, 408): retry with backoff;
 *   LF_ES_HOLD   nothing will succeed until the configuration or the cluster changes (401, 403,
 *                404 no such index with auto-creation off, 413, the shard limit, an invalid index
 *                name, a closed index, and any 4xx not known to be about the document): keep the
 *                data, say what to fix, try again;
 *   LF_ES_NEVER  this document can never be indexed as it is (the mapping refuses it): only these
 *                may be given up, counted by reason and logged with their session.
 */
#ifndef LF_ES_H
#define LF_ES_H

#include "lf_error.h"

#include <stddef.h>

#include <jansson.h>

#include "lf_buf.h"
#include "lf_config.h"
#include "lf_http_client.h"

/* The credential settings, a member of a program's configuration struct. */
typedef struct lf_es_auth {
    char *user;          /* HTTP basic authentication */
    char *password;      /* secret */
    char *password_file; /* or the password from this file */
    char *api_key;       /* secret: the "encoded" API key Elasticsearch returns (base64 of id:key) */
    char *api_key_file;  /* or the API key from this file */
    char *ca_file;       /* PEM CA bundle for https (the cluster's own CA); unset: the system's */
} lf_es_auth;

/* Configuration rows for an lf_es_auth at byte offset OFF of the target, in section SEC, keys
 * PFX "user", PFX "password", ... (PFX is "" or "es_"). */
#define LF_ES_AUTH_OPTIONS(SEC, PFX, OFF)                                                                    \
    {SEC, PFX "user", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, user),                              \
     .description = "Elasticsearch user for HTTP basic authentication (with " PFX "password or " PFX         \
                    "password_file). Elasticsearch 8 refuses requests without credentials."},                \
    {SEC, PFX "password", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, password),                      \
     .flags = LF_CFG_SECRET, .description = "Password of " PFX "user (prefer " PFX "password_file)."},       \
    {SEC, PFX "password_file", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, password_file),            \
     .description = "File holding the password of " PFX "user (one line; readable by the service only)."},   \
    {SEC, PFX "api_key", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, api_key),                        \
     .flags = LF_CFG_SECRET,                                                                                 \
     .description = "Elasticsearch API key, the \"encoded\" value the create API key call returns (instead " \
                    "of a user; prefer " PFX "api_key_file)."},                                              \
    {SEC, PFX "api_key_file", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, api_key_file),              \
     .description = "File holding the encoded API key (one line)."},                                         \
    {SEC, PFX "ca_file", LF_CFG_STRING, NULL, (OFF) + offsetof(lf_es_auth, ca_file),                        \
     .description = "PEM file of the CA that signed Elasticsearch's certificate (Elasticsearch 8 makes its " \
                    "own: config/certs/http_ca.crt); unset: the system's CAs."}

/* Validate hook for URL options: http:// or https://, a host, no user:password@, no query or
 * fragment. An unset URL passes (the program says when it needs one). */
int lf_es_url_validate(const void *field, lf_buf *err);

/* Validate hook for index names and prefixes: what Elasticsearch accepts as an index name (lower
 * case, none of \ / * ? " < > | , # : or space, not starting with - _ + or .) and not in the
 * namespaces of Elasticsearch's built-in data stream templates (logs-*-*, metrics-*-*, ...). */
int lf_es_index_name_validate(const void *field, lf_buf *err);

/* A checked connection setting: the base URL and what the HTTP client needs. Owns its strings. */
typedef struct lf_es_conn {
    char *url;           /* without a trailing '/' */
    char *authorization; /* "Basic ..." or "ApiKey ...", NULL without credentials (secret) */
    char *ca_file;
} lf_es_conn;

/* Checks url and auth and reads the secret files. 0, or LF_ECONFIG / -ENOMEM with err saying what
 * (a file that cannot be read whole, holds more than one line or nothing, both a user and an API
 * key, a user without a password, credentials in the URL). c is usable and freed either way. */
LF_MUST_CHECK int lf_es_conn_init(lf_es_conn *c, const char *url, const lf_es_auth *auth, lf_buf *err);
void lf_es_conn_free(lf_es_conn *c);
/* Sets the CA file and the credentials in o; o then points into c. */
void lf_es_conn_client_opts(const lf_es_conn *c, lf_http_client_opts *o);

enum lf_es_refusal { LF_ES_RETRY, LF_ES_HOLD, LF_ES_NEVER };

/* The kind of a refusal: HTTP status and, when the body had them, error.type and error.reason
 * (NULL otherwise). */
enum lf_es_refusal lf_es_classify(int status, const char *error_type, const char *reason);
/* "retry", "hold" or "never". */
const char *lf_es_refusal_name(enum lf_es_refusal k);

/* What to tell an operator about a HOLD refusal: a short hint naming the setting to look at
 * ("the credentials ([elasticsearch] user/password_file or api_key_file)"), never NULL. */
const char *lf_es_hold_hint(int status, const char *error_type);

/* error.type and error.reason of an Elasticsearch error body (a whole response, or one bulk item's
 * "error"), copied into type (at most tsize - 1 bytes of [a-z_]) and reason; "" when absent. */
void lf_es_error_of(const char *body, size_t len, char *type, size_t tsize, char *reason, size_t rsize);
void lf_es_error_json(const json_t *error, char *type, size_t tsize, char *reason, size_t rsize);

#endif
