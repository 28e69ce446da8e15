/* Elasticsearch connection settings and refusals (see lf_es.h). */
#include "lf_es.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_fileio.h"

#define SECRET_MAX 4096 /* a password or an encoded API key */

int lf_es_url_validate(const void *field, lf_buf *err)
{
    const char *url = *(const char *const *)field;
    int rc = lf_http_url_validate(field, err);
    if (rc || !url)
        return rc;
    const char *host = strstr(url, "://") + 3;
    size_t host_len = strcspn(host, "/?#");
    if (memchr(host, '@', host_len)) {
        /* curl would send them, but the URL is printed in logs and by --dump-config */
        lf_buf_msgf(err, "must not hold credentials (user:password@): use the user and password_file or "
                         "api_key_file settings");
        return LF_ECONFIG;
    }
    if (strpbrk(host + host_len, "?#")) {
        lf_buf_msgf(err, "must not have a query or fragment");
        return LF_ECONFIG;
    }
    return 0;
}

int lf_es_index_name_validate(const void *field, lf_buf *err)
{
    const char *s = *(const char *const *)field;
    if (!s)
        return 0;
    size_t n = strlen(s);
    /* Elasticsearch's rules for index names (Create index API, "Path parameters"): lower case, not
     * \ / * ? " < > | space , #, no : (since 7.0), not starting with - _ +, not . or .., at most 255
     * bytes; names starting with . are hidden or system indices. The date suffix adds 11 bytes. */
    if (n == 0 || n > 200) {
        lf_buf_msgf(err, "must be 1 to 200 bytes");
        return LF_ECONFIG;
    }
    if (s[0] == '-' || s[0] == '_' || s[0] == '+' || s[0] == '.') {
        lf_buf_msgf(err, "must not start with -, _, + or . (Elasticsearch refuses or hides such indices)");
        return LF_ECONFIG;
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'A' && c <= 'Z') || strchr("\\/*?\"<>|,#: ", c) || c < 0x20 || c == 0x7f) {
            lf_buf_msgf(err, "\"%.80s\": Elasticsearch index names are lower case without \\ / * ? \" < > | , # : "
                             "or spaces", s);
            return LF_ECONFIG;
        }
    }
    /* The built-in index templates of Elasticsearch 8 (priority 100, data streams) own these name
     * spaces: an index there would become a data stream, and a template of the same priority that
     * overlaps them is refused with 400. */
    static const char *const reserved[] = {"logs-", "metrics-", "synthetics-", "traces-", "profiling-", NULL};
    for (int i = 0; reserved[i]; i++) {
        if (strncmp(s, reserved[i], strlen(reserved[i])) == 0) {
            lf_buf_msgf(err, "\"%.80s\" is in the %s* name space of Elasticsearch's built-in data stream "
                             "templates: choose another name",
                        s, reserved[i]);
            return LF_ECONFIG;
        }
    }
    return 0;
}

/* One line of secret from path: the whole file, a trailing newline allowed, nothing else. */
static int read_secret(const char *path, const char *what, char **out, lf_buf *err)
{
    lf_buf b = LF_BUF_INIT(SECRET_MAX + 2);
    int rc = lf_read_file(path, SECRET_MAX + 2, &b);
    if (rc != 0) {
        lf_buf_msgf(err, "%s file %s: %s", what, path,
                    rc == LF_ELIMIT ? "larger than a secret can be" : lf_strerror(rc));
        lf_buf_free(&b);
        return rc == -ENOMEM ? rc : LF_ECONFIG;
    }
    size_t len = b.len;
    if (len && b.data[len - 1] == '\n')
        len--;
    if (len && b.data[len - 1] == '\r')
        len--;
    bool ok = len > 0 && len <= SECRET_MAX && !memchr(b.data, '\n', len) && !memchr(b.data, '\r', len) &&
              !memchr(b.data, '\0', len);
    if (!ok) {
        lf_buf_msgf(err, "%s file %s must hold one non-empty line", what, path);
        explicit_bzero(b.data ? b.data : (char[1]){0}, b.len);
        lf_buf_free(&b);
        return LF_ECONFIG;
    }
    *out = lf_strndup(b.data, len);
    explicit_bzero(b.data, b.len);
    lf_buf_free(&b);
    return *out ? 0 : -ENOMEM;
}

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

int lf_es_conn_init(lf_es_conn *c, const char *url, const lf_es_auth *a, lf_buf *err)
{
    memset(c, 0, sizeof *c);
    if (!url || !*url) {
        lf_buf_msgf(err, "no Elasticsearch URL");
        return LF_ECONFIG;
    }
    int rc = lf_es_url_validate(&url, err);
    if (rc != 0)
        return rc;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    if (!(c->url = lf_strndup(url, n)))
        return -ENOMEM;
    if (!a)
        return 0;
    if (a->ca_file && !*a->ca_file) {
        lf_buf_msgf(err, "ca_file is empty");
        return LF_ECONFIG;
    }
    if (a->ca_file && !(c->ca_file = lf_strdup(a->ca_file)))
        return -ENOMEM;
    bool has_user = a->user && *a->user;
    bool has_key = (a->api_key && *a->api_key) || a->api_key_file;
    bool has_pw = (a->password && *a->password) || a->password_file;
    if (has_user && has_key) {
        lf_buf_msgf(err, "give a user or an API key, not both");
        return LF_ECONFIG;
    }
    if (!has_user && has_pw) {
        lf_buf_msgf(err, "a password without a user");
        return LF_ECONFIG;
    }
    if (a->password && *a->password && a->password_file) {
        lf_buf_msgf(err, "give password or password_file, not both");
        return LF_ECONFIG;
    }
    if (a->api_key && *a->api_key && a->api_key_file) {
        lf_buf_msgf(err, "give api_key or api_key_file, not both");
        return LF_ECONFIG;
    }
    char *secret = NULL;
    if (has_user) {
        if (!has_pw) {
            lf_buf_msgf(err, "user %s has no password or password_file", a->user);
            return LF_ECONFIG;
        }
        if (strchr(a->user, ':') || !header_safe(a->user)) { /* RFC 7617: no colon in the user-id */
            lf_buf_msgf(err, "the user name must not hold a colon or control characters");
            return LF_ECONFIG;
        }
        if (a->password_file)
            rc = read_secret(a->password_file, "password", &secret, err);
        else if (!(secret = lf_strdup(a->password)))
            rc = -ENOMEM;
        if (rc != 0)
            return rc;
        /* "Basic " base64(user ":" password), RFC 7617 */
        size_t plain_len = strlen(a->user) + 1 + strlen(secret);
        char *plain = lf_malloc(plain_len + 1);
        size_t b64_size = lf_crypto_b64_encoded_size(plain_len, LF_B64_STANDARD);
        c->authorization = lf_malloc(b64_size + 6);
        if (!plain || !c->authorization) {
            rc = -ENOMEM;
        } else {
            snprintf(plain, plain_len + 1, "%s:%s", a->user, secret);
            memcpy(c->authorization, "Basic ", 6);
            rc = lf_crypto_b64_encode(c->authorization + 6, b64_size, plain, plain_len, LF_B64_STANDARD);
        }
        if (plain)
            explicit_bzero(plain, plain_len);
        lf_free(plain);
    } else if (has_key) {
        if (a->api_key_file)
            rc = read_secret(a->api_key_file, "API key", &secret, err);
        else if (!(secret = lf_strdup(a->api_key)))
            rc = -ENOMEM;
        if (rc != 0)
            return rc;
        if (!header_safe(secret) || strchr(secret, ' ')) {
            lf_buf_msgf(err, "the API key holds a space or a control character (give the encoded key)");
            rc = LF_ECONFIG;
        } else {
            size_t len = strlen(secret) + sizeof "ApiKey ";
            if ((c->authorization = lf_malloc(len)) != NULL)
                snprintf(c->authorization, len, "ApiKey %s", secret);
            else
                rc = -ENOMEM;
        }
    }
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        lf_free(secret);
    }
    return rc;
}

void lf_es_conn_free(lf_es_conn *c)
{
    lf_free(c->url);
    lf_free(c->ca_file);
    if (c->authorization) {
        explicit_bzero(c->authorization, strlen(c->authorization));
        lf_free(c->authorization);
    }
    memset(c, 0, sizeof *c);
}

void lf_es_conn_client_opts(const lf_es_conn *c, lf_http_client_opts *o)
{
    if (c->ca_file)
        o->ca_file = c->ca_file;
    o->authorization = c->authorization;
}

/* Error types that say the document itself cannot be indexed as it is (mapping and parsing of its
 * fields); Elasticsearch 8.8 renamed mapper_parsing_exception to document_parsing_exception. */
static const char *const never_types[] = {"document_parsing_exception", "mapper_parsing_exception",
                                          "strict_dynamic_mapping_exception", "mapper_exception", NULL};

enum lf_es_refusal lf_es_classify(int status, const char *type, const char *reason)
{
    if (status == 408 || status == 429 || status >= 500 || status <= 0)
        return LF_ES_RETRY;
    if (status == 400 && type) {
        for (int i = 0; never_types[i]; i++)
            if (strcmp(type, never_types[i]) == 0)
                return LF_ES_NEVER;
        /* illegal_argument_exception is also a configuration error (a data stream that wants
         * op_type create, ...): only a term longer than Lucene takes is about the document */
        if (strcmp(type, "illegal_argument_exception") == 0 && reason && strstr(reason, "immense term"))
            return LF_ES_NEVER;
    }
    /* 401, 403, 404, 409, 413, validation_exception (the shard limit), invalid_index_name_exception,
     * index_closed_exception and whatever else: a person has to act, so keep the data */
    return LF_ES_HOLD;
}

const char *lf_es_refusal_name(enum lf_es_refusal k)
{
    return k == LF_ES_RETRY ? "retry" : k == LF_ES_HOLD ? "hold" : "never";
}

const char *lf_es_hold_hint(int status, const char *type)
{
    type = type ? type : "";
    if (status == 401)
        return "Elasticsearch does not accept the credentials: check user and password_file, or api_key_file";
    if (status == 403)
        return "the Elasticsearch user or API key lacks a privilege (docs/operations.md lists the roles each "
               "component needs)";
    if (status == 404 || strcmp(type, "index_not_found_exception") == 0)
        return "the index does not exist and Elasticsearch does not create it (action.auto_create_index): "
               "allow the index names or create them";
    if (status == 413)
        return "the request is larger than Elasticsearch's http.max_content_length: lower the chunk or bulk size";
    if (strcmp(type, "validation_exception") == 0)
        return "Elasticsearch refuses to create the index (often cluster.max_shards_per_node): free shards or "
               "raise the limit";
    if (strcmp(type, "invalid_index_name_exception") == 0)
        return "the index name is invalid: change the index setting";
    if (strcmp(type, "index_closed_exception") == 0)
        return "the index is closed: open it";
    if (strcmp(type, "cluster_block_exception") == 0)
        return "the index or cluster is blocked (read-only, often the disk flood-stage watermark)";
    return "Elasticsearch refuses the request: see its reason";
}

static void copy_type(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; s && s[n] && n + 1 < size; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || c == '_'))
            break;
    }
    if (size) {
        memcpy(out, s ? s : "", s ? n : 0);
        out[s ? n : 0] = '\0';
    }
}

void lf_es_error_of(const char *body, size_t len, char *type, size_t tsize, char *reason, size_t rsize)
{
    json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    lf_es_error_json(json_object_get(doc, "error"), type, tsize, reason, rsize);
    json_decref(doc);
}

void lf_es_error_json(const json_t *e, char *type, size_t tsize, char *reason, size_t rsize)
{
    if (tsize)
        type[0] = '\0';
    if (rsize)
        reason[0] = '\0';
    if (json_is_string(e)) { /* very old format, and some proxies */
        if (rsize)
            snprintf(reason, rsize, "%s", json_string_value(e));
    } else if (json_is_object(e)) {
        copy_type(type, tsize, json_string_value(json_object_get(e, "type")));
        const char *r = json_string_value(json_object_get(e, "reason"));
        if (rsize && r)
            snprintf(reason, rsize, "%s", r);
    }
}
