/* The dashboard's users file (dashboard_users.h). */
#include "dashboard_users.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_fileio.h"

#define USERS_FILE_MAX (1u << 20)

const char *lf_dash_role_name(lf_dash_role role)
{
    return role == LF_DASH_ADMIN ? "admin" : role == LF_DASH_READ ? "read" : "none";
}

lf_dash_role lf_dash_role_parse(const char *s)
{
    if (strcmp(s, "read") == 0)
        return LF_DASH_READ;
    if (strcmp(s, "admin") == 0)
        return LF_DASH_ADMIN;
    return LF_DASH_NONE;
}

bool lf_dash_user_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > LF_DASH_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '@' || c == '-'))
            return false;
    }
    return true;
}

static int push(lf_dash_users *u, const lf_dash_user *x)
{
    void *p = lf_realloc(u->v, (u->n + 1) * sizeof *u->v);
    if (!p)
        return -ENOMEM;
    u->v = p;
    u->v[u->n++] = *x;
    return 0;
}

int lf_dash_users_parse(const char *text, size_t len, lf_dash_users *out, lf_buf *err)
{
    lf_dash_users u = {NULL, 0};
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char line[512];
        line_no++;
        if (n >= sizeof line) {
            lf_buf_msgf(err, "line %zu: longer than %zu bytes", line_no, sizeof line - 1);
            goto bad;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (memchr(line, '\0', n)) {
            lf_buf_msgf(err, "line %zu: holds a NUL byte", line_no);
            goto bad;
        }
        if (line[0] == '#' || line[strspn(line, " \t\r")] == '\0')
            continue;
        char name[LF_DASH_USER_MAX + 2], role[16], hash[LF_DASH_HASH_MAX + 1], extra[2];
        lf_dash_user x;
        if (sscanf(line, "%65s %15s %128s %1s", name, role, hash, extra) != 3) {
            lf_buf_msgf(err, "line %zu: expected NAME ROLE HASH", line_no);
            goto bad;
        }
        if (!lf_dash_user_name_ok(name) || (x.role = lf_dash_role_parse(role)) == LF_DASH_NONE ||
            strncmp(hash, "$argon2", 7) != 0 || strlen(hash) >= LF_DASH_HASH_MAX) {
            lf_buf_msgf(err, "line %zu: bad name, role (read or admin) or password hash", line_no);
            goto bad;
        }
        if (lf_dash_users_find(&u, name)) {
            lf_buf_msgf(err, "line %zu: %s is given twice", line_no, name);
            goto bad;
        }
        memcpy(x.name, name, strlen(name) + 1); /* lengths checked above */
        memcpy(x.hash, hash, strlen(hash) + 1);
        if (push(&u, &x) != 0) {
            lf_dash_users_free(&u);
            return -ENOMEM;
        }
    }
    *out = u;
    return 0;
bad:
    lf_dash_users_free(&u);
    return LF_ECONFIG;
}

int lf_dash_users_load(const char *path, lf_dash_users *out, lf_buf *err)
{
    lf_buf text = LF_BUF_INIT(USERS_FILE_MAX);
    int rc = lf_read_file(path, USERS_FILE_MAX, &text);
    if (rc == -ENOENT) {
        out->v = NULL;
        out->n = 0;
        lf_buf_free(&text);
        return 0;
    }
    if (rc < 0) {
        lf_buf_msgf(err, "%s: %s", path, lf_strerror(rc));
        lf_buf_free(&text);
        return rc;
    }
    rc = lf_dash_users_parse(text.data ? text.data : "", text.len, out, err);
    lf_buf_free(&text);
    return rc;
}

int lf_dash_users_save(const char *path, const lf_dash_users *users)
{
    lf_buf b = LF_BUF_INIT(USERS_FILE_MAX);
    int rc = lf_buf_append_str(&b, "# logferry-analytics dashboard users: NAME ROLE HASH (see `logferry-analytics "
                                   "users --help`)\n");
    for (size_t i = 0; rc == 0 && i < users->n; i++)
        rc = lf_buf_appendf(&b, "%s %s %s\n", users->v[i].name, lf_dash_role_name(users->v[i].role),
                            users->v[i].hash);
    if (rc == 0)
        rc = lf_write_file_atomic(path, b.data, b.len, 0600);
    lf_buf_free(&b);
    return rc;
}

void lf_dash_users_free(lf_dash_users *u)
{
    if (u->v)
        sodium_memzero(u->v, u->n * sizeof *u->v);
    lf_free(u->v);
    u->v = NULL;
    u->n = 0;
}

const lf_dash_user *lf_dash_users_find(const lf_dash_users *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->v[i].name, name) == 0)
            return &u->v[i];
    return NULL;
}

int lf_dash_users_set(lf_dash_users *u, const char *name, lf_dash_role role, const char *password,
                      size_t password_len)
{
    lf_dash_user x;
    if (!lf_dash_user_name_ok(name) || role == LF_DASH_NONE || password_len == 0)
        return -EINVAL;
    if (sodium_init() < 0)
        return -ENOMEM;
    memset(&x, 0, sizeof x);
    snprintf(x.name, sizeof x.name, "%s", name);
    x.role = role;
    if (crypto_pwhash_str(x.hash, password, password_len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->v[i].name, name) == 0) {
            u->v[i] = x;
            return 0;
        }
    }
    return push(u, &x);
}

int lf_dash_users_remove(lf_dash_users *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->v[i].name, name) == 0) {
            memmove(&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof *u->v);
            u->n--;
            return 0;
        }
    }
    return -ENOENT;
}

bool lf_dash_password_ok(const char *hash, const char *password, size_t password_len)
{
    return sodium_init() >= 0 && crypto_pwhash_str_verify(hash, password, password_len) == 0;
}
