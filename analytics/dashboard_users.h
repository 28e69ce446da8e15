/* The dashboard's users file: who may sign in to the dashboard, with which role.
 *
 * One user a line, "NAME ROLE HASH": NAME is 1-64 characters of [A-Za-z0-9._@-], ROLE is read or
 * admin (admin may also re-run jobs and redrive dead letters), HASH is libsodium's argon2id string
 * (crypto_pwhash_str). '#' starts a comment line. Written atomically (0600) by
 * `logferry-analytics users ...`; the daemon re-reads it when it changes. A file with any line it
 * cannot read is refused whole (nobody signs in) rather than read in part. */
#ifndef LF_ANALYTICS_DASHBOARD_USERS_H
#define LF_ANALYTICS_DASHBOARD_USERS_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>

#include "lf_buf.h"

#define LF_DASH_USER_MAX 64
#define LF_DASH_HASH_MAX 128 /* crypto_pwhash_STRBYTES */

typedef enum lf_dash_role { LF_DASH_NONE = 0, LF_DASH_READ = 1, LF_DASH_ADMIN = 2 } lf_dash_role;

typedef struct lf_dash_user {
    char name[LF_DASH_USER_MAX + 1];
    lf_dash_role role;
    char hash[LF_DASH_HASH_MAX];
} lf_dash_user;

typedef struct lf_dash_users {
    lf_dash_user *v;
    size_t n;
} lf_dash_users;

const char *lf_dash_role_name(lf_dash_role role);
/* "read" or "admin"; LF_DASH_NONE for anything else. */
lf_dash_role lf_dash_role_parse(const char *s);
bool lf_dash_user_name_ok(const char *name);

/* Parses a users file's text. 0, or LF_ECONFIG with "line N: reason" in err (nothing kept), or
 * -ENOMEM. */
LF_MUST_CHECK int lf_dash_users_parse(const char *text, size_t len, lf_dash_users *out, lf_buf *err);
/* Reads path (missing: no users). */
LF_MUST_CHECK int lf_dash_users_load(const char *path, lf_dash_users *out, lf_buf *err);
/* Writes the users atomically (0600). */
LF_MUST_CHECK int lf_dash_users_save(const char *path, const lf_dash_users *users);
void lf_dash_users_free(lf_dash_users *u);
const lf_dash_user *lf_dash_users_find(const lf_dash_users *u, const char *name);

/* Adds or replaces name with a new password hash (argon2id, libsodium's interactive limits). */
LF_MUST_CHECK int lf_dash_users_set(lf_dash_users *u, const char *name, lf_dash_role role, const char *password,
                                    size_t password_len);
/* 0 or -ENOENT. */
LF_MUST_CHECK int lf_dash_users_remove(lf_dash_users *u, const char *name);

/* true when password matches hash (argon2id; slow and memory hungry by design: call it off the
 * loop thread). */
bool lf_dash_password_ok(const char *hash, const char *password, size_t password_len);

#endif
