/* Upload signatures (Ed25519, libsodium).
 *
 * The uploader signs the string
 *     METHOD "\n" PATH "\n" TIMESTAMP "\n" hex(BLAKE2b-256(body))
 * (TIMESTAMP: decimal Unix seconds; hex lowercase) and sends the header value
 *     Ferry-Ed25519 site="NAME", ts="UNIX", sig="BASE64"
 * in Authorization (BASE64: standard alphabet with padding, 88 characters for 64 bytes).
 * The receiver parses the header strictly (lf_sign_auth_parse), looks up the site's public key by
 * name, and calls lf_sign_verify(), which checks the signature (constant time) and then that the
 * timestamp lies within +-window seconds of now.
 *
 * Key files: the secret key file holds base64 (standard) of the 64-byte libsodium secret key and a
 * newline, mode 0600, written atomically; loading refuses a file readable by group or others. The
 * public key is base64 of 32 bytes (44 characters), the text put in the receiver's site table. */
#ifndef LF_SIGN_H
#define LF_SIGN_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"
#include "lf_crypto.h"

#define LF_SIGN_PK_BYTES 32
#define LF_SIGN_SK_BYTES 64
#define LF_SIGN_SIG_BYTES 64
#define LF_SIGN_PK_B64_SIZE 45  /* 44 characters + NUL */
#define LF_SIGN_SIG_B64_SIZE 89 /* 88 characters + NUL */
#define LF_SIGN_SITE_MAX 64     /* site names: [a-z0-9._-]{1,64} */
#define LF_SIGN_HEADER_MAX 512  /* longer Authorization values are malformed */
#define LF_SIGN_SCHEME "Ferry-Ed25519"

/* Why a verification failed, for the receiver's error message and counters. */
enum lf_sign_status {
    LF_SIGN_OK = 0,
    LF_SIGN_MALFORMED,     /* header not parseable (lf_sign_auth_parse) */
    LF_SIGN_BAD_SIGNATURE, /* signature does not verify under the site's key */
    LF_SIGN_STALE,         /* timestamp older than now - window */
    LF_SIGN_FUTURE,        /* timestamp newer than now + window */
};
const char *lf_sign_status_str(enum lf_sign_status s);

/* A parsed Authorization value. */
typedef struct lf_sign_auth {
    char site[LF_SIGN_SITE_MAX + 1];
    int64_t ts;
    uint8_t sig[LF_SIGN_SIG_BYTES];
} lf_sign_auth;

/* New random keypair. 0 or -EIO. */
LF_MUST_CHECK int lf_sign_keypair(uint8_t pk[LF_SIGN_PK_BYTES], uint8_t sk[LF_SIGN_SK_BYTES]);
/* The public half of a secret key. */
void lf_sign_sk_to_pk(uint8_t pk[LF_SIGN_PK_BYTES], const uint8_t sk[LF_SIGN_SK_BYTES]);

/* Writes the secret key file (mode 0600, atomic, fsync'd). 0 or a negative errno. */
LF_MUST_CHECK int lf_sign_sk_save(const char *path, const uint8_t sk[LF_SIGN_SK_BYTES]);
/* Loads it. -EPERM with a reason in err when the file is not a regular file or has any group or
 * other permission bits; LF_EFORMAT when its content is not a valid key. err (errsz bytes, may be
 * NULL) gets a human-readable reason on failure. */
LF_MUST_CHECK int lf_sign_sk_load(const char *path, uint8_t sk[LF_SIGN_SK_BYTES], char *err, size_t errsz);

/* Public key <-> base64 text. decode: 0 or LF_EFORMAT (surrounding spaces/newline are trimmed). */
void lf_sign_pk_encode(char out[LF_SIGN_PK_B64_SIZE], const uint8_t pk[LF_SIGN_PK_BYTES]);
LF_MUST_CHECK int lf_sign_pk_decode(uint8_t pk[LF_SIGN_PK_BYTES], const char *text, size_t len);

/* The string to sign, appended to out. method: [A-Z]{1,16}; path: 1..2048 visible ASCII
 * characters starting with '/'; else -EINVAL. */
LF_MUST_CHECK int lf_sign_message(lf_buf *out, const char *method, const char *path, int64_t ts,
                    const uint8_t body_hash[LF_HASH_BYTES]);

/* Signs a request and builds the whole Authorization value into out (appended).
 * site must match [a-z0-9._-]{1,64}. 0, -EINVAL, or lf_buf's errors. */
LF_MUST_CHECK int lf_sign_request(lf_buf *out, const uint8_t sk[LF_SIGN_SK_BYTES], const char *site,
                    const char *method, const char *path, int64_t ts,
                    const uint8_t body_hash[LF_HASH_BYTES]);

/* Builds the Authorization value from its parts (appended to out). */
LF_MUST_CHECK int lf_sign_auth_build(lf_buf *out, const char *site, int64_t ts,
                       const uint8_t sig[LF_SIGN_SIG_BYTES]);

/* Parses an Authorization value (not NUL-terminated; len bytes). Strict grammar:
 *   "Ferry-Ed25519" 1*SP param *( *SP "," *SP param ) *SP
 *   param = ("site" | "ts" | "sig") "=" DQUOTE value DQUOTE
 * in any order, each exactly once, nothing else (no other keys, no escapes inside quotes);
 * ts: 1..19 decimal digits, no sign, within int64; sig: base64 of exactly 64 bytes; site:
 * [a-z0-9._-]{1,64}. Values longer than LF_SIGN_HEADER_MAX in total are refused.
 * 0 or LF_EFORMAT; err (may be NULL) gets the reason. */
LF_MUST_CHECK int lf_sign_auth_parse(lf_sign_auth *out, const char *value, size_t len, char *err, size_t errsz);

/* Verifies a parsed header against the site's public key and the request. The signature check is
 * constant-time (crypto_sign_verify_detached); the timestamp is checked after it, so an attacker
 * learns nothing about the window from forged requests. window_s >= 0.
 * Returns 0, or LF_EAUTH with *status (may be NULL) saying why; -EINVAL for bad method/path. */
LF_MUST_CHECK int lf_sign_verify(const lf_sign_auth *auth, const uint8_t pk[LF_SIGN_PK_BYTES],
                   const char *method, const char *path, const uint8_t body_hash[LF_HASH_BYTES],
                   int64_t now, int64_t window_s, enum lf_sign_status *status);

/* true when name matches [a-z0-9._-]{1,64} (len bytes). */
bool lf_sign_site_valid(const char *name, size_t len);

#endif
