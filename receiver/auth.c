/* Bearer tokens (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_fileio.h"
#include "lf_jskv.h"
#include "lf_json.h"
#include "lf_log.h"
#include "lf_watched_file.h"

#define TOKENS_FILE_MAX (16u << 20)

int lf_scopes_parse(const char *text, unsigned *scopes)
{
    unsigned s = 0;
    const char *p = text;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == 6 && strncmp(p, "worker", 6) == 0)
            s |= LF_SCOPE_WORKER;
        else if (n == 4 && strncmp(p, "read", 4) == 0)
            s |= LF_SCOPE_READ;
        else if (n == 5 && strncmp(p, "admin", 5) == 0)
            s |= LF_SCOPE_ADMIN;
        else
            return -EINVAL;
        p += n + (c ? 1 : 0);
    }
    if (!s)
        return -EINVAL;
    *scopes = s;
    return 0;
}

void lf_scopes_format(unsigned scopes, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s%s%s", scopes & LF_SCOPE_WORKER ? "worker" : "",
             (scopes & LF_SCOPE_WORKER) && (scopes & (LF_SCOPE_READ | LF_SCOPE_ADMIN)) ? "," : "",
             scopes & LF_SCOPE_READ ? "read" : "",
             (scopes & LF_SCOPE_READ) && (scopes & LF_SCOPE_ADMIN) ? "," : "",
             scopes & LF_SCOPE_ADMIN ? "admin" : "");
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LF_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* Parses the tokens file text into *out (lf_free) and *count. 0 or LF_EFORMAT/-ENOMEM (err says
 * which line). */
static int parse_tokens(char *text, const char *path, lf_token_entry **out, size_t *count, lf_buf *err)
{
    lf_token_entry *v = NULL;
    size_t n = 0;
    unsigned lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char name[128], scopes[64], hash[128], extra[2];
        unsigned sc;
        if (sscanf(line, "%127s %63s %127s %1s", name, scopes, hash, extra) != 3 || !name_valid(name) ||
            lf_scopes_parse(scopes, &sc) != 0 || strlen(hash) != LF_TOKEN_HASH_HEX_SIZE - 1) {
            lf_buf_msgf(err, "%s line %u: expected NAME SCOPES HASH", path, lineno);
            lf_free(v);
            return LF_EFORMAT;
        }
        lf_token_entry *nv = lf_realloc(v, (n + 1) * sizeof *nv);
        if (!nv) {
            lf_free(v);
            return -ENOMEM;
        }
        v = nv;
        snprintf(v[n].name, sizeof v[n].name, "%.*s", LF_TOKEN_NAME_MAX, name); /* name_valid: at most that */
        v[n].scopes = sc;
        snprintf(v[n].hash, sizeof v[n].hash, "%s", hash);
        n++;
    }
    *out = v;
    *count = n;
    return 0;
}

/* (Re)loads the table; a missing file is an empty table. On failure the old table stays. */
static int load_tokens(lf_tokens *t, lf_buf *err)
{
    struct stat st;
    lf_buf b = LF_BUF_INIT(TOKENS_FILE_MAX);
    int rc = lf_watched_file_read(&t->file, TOKENS_FILE_MAX, &b, &st);
    lf_token_entry *v = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = parse_tokens(b.data ? b.data : (char[]){""}, t->file.path, &v, &n, err);
    else if (rc == -ENOENT)
        rc = 0;
    else
        lf_buf_msgf(err, "%s: %s", t->file.path, lf_strerror(rc));
    lf_buf_free(&b);
    if (rc != 0)
        return rc;
    lf_free(t->tokens);
    t->tokens = v;
    t->count = n;
    lf_watched_file_take(&t->file, &st);
    return 0;
}

int lf_tokens_open(lf_tokens *t, const char *path, const char *key_path, bool create_key, lf_buf *err)
{
    memset(t, 0, sizeof *t);
    int rc = lf_watched_file_init(&t->file, path);
    if (rc != 0)
        return rc;
    int fd = open(key_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create_key) {
        randombytes_buf(t->key, sizeof t->key);
        rc = lf_write_file_atomic(key_path, t->key, sizeof t->key, 0600);
        if (rc != 0)
            lf_buf_msgf(err, "cannot create the token key %s: %s", key_path, lf_strerror(rc));
    } else if (fd < 0) {
        rc = -errno;
        lf_buf_msgf(err, "token key %s: %s", key_path, strerror(errno));
    } else {
        struct stat st;
        if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
            lf_buf_msgf(err, "token key %s: must be a file only its owner can read (mode 0600)", key_path);
            rc = -EPERM;
        } else if (lf_read_full(fd, t->key, sizeof t->key) != (ssize_t)sizeof t->key) {
            lf_buf_msgf(err, "token key %s: must hold %d bytes", key_path, LF_TOKEN_KEY_BYTES);
            rc = LF_EFORMAT;
        }
        close(fd);
    }
    if (rc == 0)
        rc = load_tokens(t, err);
    if (rc != 0)
        lf_tokens_close(t);
    return rc;
}

void lf_tokens_close(lf_tokens *t)
{
    lf_free(t->tokens);
    lf_watched_file_close(&t->file);
    sodium_memzero(t, sizeof *t);
}

static void rebuild_from_mirror(lf_tokens *t);

void lf_tokens_refresh(lf_tokens *t)
{
    if (t->mirror) {
        if (lf_jskv_mirror_generation(t->mirror) != t->mirror_gen)
            rebuild_from_mirror(t);
        return;
    }
    struct stat now;
    if (!lf_watched_file_changed(&t->file, &now))
        return;
    lf_buf err = LF_BUF_INIT(512);
    if (load_tokens(t, &err) != 0)
        LF_ERROR("auth", "keeping the previous token table: %s", lf_buf_cstr(&err));
    lf_buf_free(&err);
}

int lf_tokens_save(const lf_tokens *t)
{
    lf_buf b = LF_BUF_INIT(TOKENS_FILE_MAX);
    int rc = 0;
    for (size_t i = 0; i < t->count && rc == 0; i++) {
        char sc[32];
        lf_scopes_format(t->tokens[i].scopes, sc, sizeof sc);
        rc = lf_buf_appendf(&b, "%s %s %s\n", t->tokens[i].name, sc, t->tokens[i].hash);
    }
    if (rc == 0)
        rc = lf_write_file_atomic(t->file.path, b.data ? b.data : "", b.len, 0600);
    lf_buf_free(&b);
    return rc;
}

unsigned lf_tokens_check(const lf_tokens *t, const char *token, size_t len, const char **name)
{
    unsigned scopes = 0;
    /* every entry is compared, so the time does not tell which one matched */
    for (size_t i = 0; i < t->count; i++) {
        if (lf_crypto_token_verify(t->key, token, len, t->tokens[i].hash) && !scopes) {
            scopes = t->tokens[i].scopes;
            if (name)
                *name = t->tokens[i].name;
        }
    }
    return scopes;
}

int lf_tokens_authorize(lf_tokens *t, lf_http_request *req, const char *scope)
{
    unsigned need = 0;
    if (lf_scopes_parse(scope, &need) != 0 || !t) {
        lf_http_respond_error(req, 500, "internal", "authorization is not configured", NULL);
        return -1;
    }
    static const char challenge[] = "WWW-Authenticate: Bearer realm=\"logferry\"\r\n";
    const char *h = lf_http_request_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        lf_http_respond_error(req, 401, "unauthorized", "a bearer token is required", challenge);
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    while (len && tok[len - 1] == ' ')
        len--;
    lf_tokens_refresh(t);
    unsigned have = len ? lf_tokens_check(t, tok, len, NULL) : 0;
    if (!have) {
        lf_http_respond_error(req, 401, "unauthorized", "unknown or revoked token", challenge);
        return -1;
    }
    if (have & LF_SCOPE_ADMIN)
        have |= LF_SCOPE_WORKER | LF_SCOPE_READ;
    if ((have & need) == 0) {
        lf_http_respond_error(req, 403, "forbidden", "the token lacks the scope this route needs", NULL);
        return -1;
    }
    return 0;
}

/* ---- backend = jetstream: the bucket LF_TOKENS ---- */

void lf_tokens_key_id(const lf_tokens *t, char out[LF_TOKEN_KEY_ID_SIZE])
{
    uint8_t h[LF_HASH_BYTES];
    lf_crypto_hash(h, t->key, sizeof t->key);
    lf_crypto_hex_encode(out, h, 8);
}

typedef struct token_build {
    const lf_tokens *t;
    char key_id[LF_TOKEN_KEY_ID_SIZE];
    lf_token_entry *v;
    size_t n;
} token_build;

static int add_token(void *arg, const char *name, const void *value, size_t len)
{
    token_build *b = arg;
    json_t *o = NULL;
    const char *scopes = NULL, *hash = NULL, *key = NULL;
    unsigned sc = 0;
    bool ok = name_valid(name) && lf_json_parse(value, len, LF_JSKV_VALUE_MAX, &o, NULL) == 0 && json_is_object(o) &&
              lf_json_get_string(o, "scopes", &scopes) == 0 && lf_scopes_parse(scopes, &sc) == 0 &&
              lf_json_get_string(o, "hash", &hash) == 0 && strlen(hash) == LF_TOKEN_HASH_HEX_SIZE - 1 &&
              lf_json_get_string(o, "key", &key) == 0;
    if (!ok) {
        LF_ERROR("auth", "%s: entry %s is not a token: left out", LF_JSKV_TOKENS, name);
    } else if (strcmp(key, b->key_id) != 0) {
        LF_ERROR("auth", "%s: token %s was made under another token key (%s, this receiver's is %s): left out; every "
                 "receiver needs the same [auth] token_key_file", LF_JSKV_TOKENS, name, key, b->key_id);
    } else {
        lf_token_entry *nv = lf_realloc(b->v, (b->n + 1) * sizeof *nv);
        if (!nv) {
            json_decref(o);
            return -ENOMEM;
        }
        b->v = nv;
        snprintf(nv[b->n].name, sizeof nv[b->n].name, "%s", name);
        nv[b->n].scopes = sc;
        snprintf(nv[b->n].hash, sizeof nv[b->n].hash, "%s", hash);
        b->n++;
    }
    json_decref(o);
    return 0;
}

static void rebuild_from_mirror(lf_tokens *t)
{
    token_build b = {.t = t};
    lf_tokens_key_id(t, b.key_id);
    uint64_t gen = 0;
    int rc = lf_jskv_mirror_each(t->mirror, &gen, add_token, &b);
    if (rc != 0) {
        lf_free(b.v);
        LF_ERROR("auth", "keeping the previous token table: %s", lf_strerror(rc));
        return;
    }
    lf_free(t->tokens);
    t->tokens = b.v;
    t->count = b.n;
    t->mirror_gen = gen;
    LF_INFO("auth", "token table from %s: %zu tokens", LF_JSKV_TOKENS, t->count);
}

void lf_tokens_follow(lf_tokens *t, struct lf_jskv_mirror *m)
{
    t->mirror = m;
    t->mirror_gen = 0;
    rebuild_from_mirror(t);
}

int lf_tokens_load_kv(lf_tokens *t, struct lf_jskv *kv, lf_buf *err)
{
    token_build b = {.t = t};
    lf_tokens_key_id(t, b.key_id);
    int rc = lf_jskv_each(kv, add_token, &b, err);
    if (rc != 0) {
        lf_free(b.v);
        return rc;
    }
    lf_free(t->tokens);
    t->tokens = b.v;
    t->count = b.n;
    return 0;
}

int lf_tokens_kv_create(const lf_tokens *t, struct lf_jskv *kv, const lf_token_entry *e, lf_buf *err)
{
    char sc[32], key_id[LF_TOKEN_KEY_ID_SIZE];
    lf_scopes_format(e->scopes, sc, sizeof sc);
    lf_tokens_key_id(t, key_id);
    lf_buf v = LF_BUF_INIT(LF_JSKV_VALUE_MAX);
    int rc = lf_buf_appendf(&v, "{\"scopes\":\"%s\",\"hash\":\"%s\",\"key\":\"%s\"}", sc, e->hash, key_id);
    if (rc == 0)
        rc = lf_jskv_create(kv, e->name, v.data, v.len, NULL, err);
    lf_buf_free(&v);
    return rc;
}
