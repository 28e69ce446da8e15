/* Bearer-token authentication for every route but uploads (which are signed by sites).
 *
 * Tokens file, one token a line: "NAME SCOPES HASH" where SCOPES is a comma-separated subset of
 * worker,read,admin and HASH the keyed BLAKE2b of the token (lf_crypto_token_hash, key in
 * [auth] token_key_file). Written atomically (0600); the daemon re-reads it when it changes.
 * Scope admin includes worker and read.
 *
 * With `[queue] backend = jetstream` the tokens are the bucket LF_TOKENS (lf_jskv.h), shared by every
 * receiver: key the token's name, value {"scopes":"worker,read","hash":HEX,"key":KEY_ID}. The hash is
 * keyed, so every receiver needs the same token_key_file; KEY_ID (lf_tokens_key_id) tells which key
 * made a hash, and an entry made under another key is left out with an error in the log. The daemon
 * follows the bucket through a mirror (lf_tokens_follow); the file is not read. */
#ifndef LF_RECEIVER_AUTH_H
#define LF_RECEIVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lf_crypto.h"
#include "lf_buf.h"
#include "lf_http_server.h"
#include "lf_watched_file.h"

#define LF_TOKEN_NAME_MAX 64

enum { LF_SCOPE_WORKER = 1, LF_SCOPE_READ = 2, LF_SCOPE_ADMIN = 4 };

typedef struct lf_token_entry {
    char name[LF_TOKEN_NAME_MAX + 1];
    unsigned scopes;
    char hash[LF_TOKEN_HASH_HEX_SIZE];
} lf_token_entry;

struct lf_jskv;
struct lf_jskv_mirror;

#define LF_TOKEN_KEY_ID_SIZE 17 /* 16 hex digits and a NUL */

typedef struct lf_tokens {
    lf_watched_file file; /* the tokens file */
    uint8_t key[LF_TOKEN_KEY_BYTES];
    lf_token_entry *tokens;
    size_t count;
    struct lf_jskv_mirror *mirror; /* jetstream: the table follows this copy of LF_TOKENS (not owned) */
    uint64_t mirror_gen;
} lf_tokens;

/* Loads the key (creating it when create_key and missing) and the tokens file (missing = none).
 * 0 or a negative code (err says why). */
int lf_tokens_open(lf_tokens *t, const char *path, const char *key_path, bool create_key, lf_buf *err);
void lf_tokens_close(lf_tokens *t);
/* Re-reads the file when it changed; keeps the old table if the new one is invalid (logged). */
void lf_tokens_refresh(lf_tokens *t);
int lf_tokens_save(const lf_tokens *t);
/* "worker,read" -> bits; -EINVAL for unknown or empty. */
int lf_scopes_parse(const char *text, unsigned *scopes);
void lf_scopes_format(unsigned scopes, char *out, size_t size);
/* The scopes of a presented token (0 when unknown). Constant time per stored token. */
unsigned lf_tokens_check(const lf_tokens *t, const char *token, size_t len, const char **name);

/* backend = jetstream: from now on the table is the mirror's (rebuilt by refresh when it changed).
 * Builds it once now. */
void lf_tokens_follow(lf_tokens *t, struct lf_jskv_mirror *m);
/* Which token key made the hashes: the first 8 bytes of BLAKE2b(key), in hex. */
void lf_tokens_key_id(const lf_tokens *t, char out[LF_TOKEN_KEY_ID_SIZE]);
/* Replaces t's table with the bucket's (for the commands). */
int lf_tokens_load_kv(lf_tokens *t, struct lf_jskv *kv, lf_buf *err);
/* Adds e to the bucket: -EEXIST when a token of that name is there. */
int lf_tokens_kv_create(const lf_tokens *t, struct lf_jskv *kv, const lf_token_entry *e, lf_buf *err);

/* Checks "Authorization: Bearer TOKEN" against t for scope ("worker", "read" or "admin", or a list
 * such as "worker,read" of which any one is enough; admin has them all). Returns 0 when allowed;
 * otherwise it has answered 401 (missing or unknown token) or 403 (scope) itself and returns
 * non-zero: the handler must then return without responding. */
int lf_tokens_authorize(lf_tokens *t, lf_http_request *req, const char *scope);

#endif
