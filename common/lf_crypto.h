/* Crypto basics over libsodium: BLAKE2b-256 hashing (one-shot, streaming, files), hex and base64
 * encoding, bearer-token generation and hashing, constant-time comparison.
 * Upload signatures are in lf_sign.h, encryption at rest in lf_secretstream.h, keys in
 * lf_keyring.h. Call lf_crypto_init() once before anything here (it is idempotent and
 * thread-safe; every lf_sign/lf_secretstream/lf_keyring entry point calls it too). */
#ifndef LF_CRYPTO_H
#define LF_CRYPTO_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define LF_HASH_BYTES 32                      /* BLAKE2b-256 */
#define LF_HASH_HEX_SIZE (LF_HASH_BYTES * 2 + 1) /* 64 hex digits + NUL */

/* 0, or -EIO when libsodium cannot initialise (no entropy source). */
LF_MUST_CHECK int lf_crypto_init(void);

/* ---- BLAKE2b-256 ---- */

/* One-shot, unkeyed. */
void lf_crypto_hash(uint8_t out[LF_HASH_BYTES], const void *data, size_t len);

/* Streaming. The context is plain memory owned by the caller; no cleanup needed. */
typedef struct lf_hash_ctx {
    crypto_generichash_state st;
} lf_hash_ctx;
void lf_crypto_hash_init(lf_hash_ctx *ctx);
void lf_crypto_hash_update(lf_hash_ctx *ctx, const void *data, size_t len);
void lf_crypto_hash_final(lf_hash_ctx *ctx, uint8_t out[LF_HASH_BYTES]);

/* Hashes everything readable from fd from its current offset, in 64 KiB chunks (bounded memory).
 * *size_out (may be NULL) gets the byte count. 0 or a negative errno. */
LF_MUST_CHECK int lf_crypto_hash_fd(int fd, uint8_t out[LF_HASH_BYTES], uint64_t *size_out);
/* Same for the file at path. */
LF_MUST_CHECK int lf_crypto_hash_file(const char *path, uint8_t out[LF_HASH_BYTES], uint64_t *size_out);

/* ---- hex ---- */

/* Lowercase hex of len bytes into out, which must hold 2*len+1 bytes. Returns out. */
char *lf_crypto_hex_encode(char *out, const void *bin, size_t len);
/* Decodes exactly 2*len hex digits (upper or lower case, nothing else, whole string) into len
 * bytes. 0 or -EINVAL. */
LF_MUST_CHECK int lf_crypto_hex_decode(void *bin, size_t len, const char *hex, size_t hex_len);

/* ---- base64 ---- */

enum lf_b64_variant {
    LF_B64_STANDARD,     /* "+/" with "=" padding (RFC 4648 section 4) */
    LF_B64_URLSAFE_NOPAD /* "-_" without padding (RFC 4648 section 5), for tokens in URLs */
};

/* Size of the buffer (with NUL) that encoding len bytes needs. */
size_t lf_crypto_b64_encoded_size(size_t len, enum lf_b64_variant v);
/* Encodes into out (out_size >= lf_crypto_b64_encoded_size()). 0 or -ENOBUFS. */
LF_MUST_CHECK int lf_crypto_b64_encode(char *out, size_t out_size, const void *bin, size_t len,
                         enum lf_b64_variant v);
/* Strict decode: the whole of text (text_len bytes, no whitespace, canonical padding) must be valid.
 * *out_len gets the decoded size. 0, -EINVAL (not valid base64) or -ENOBUFS (more than out_max
 * bytes). */
LF_MUST_CHECK int lf_crypto_b64_decode(void *out, size_t out_max, size_t *out_len, const char *text,
                         size_t text_len, enum lf_b64_variant v);

/* ---- constant time ---- */

/* true when the len bytes are equal; time depends only on len (sodium_memcmp). */
bool lf_crypto_equal(const void *a, const void *b, size_t len);

/* ---- bearer tokens ----
 * A token is 32 random bytes, base64url without padding (43 characters), shown to its owner once.
 * The server stores only hex(BLAKE2b-256 keyed with a server secret "token key", over the token
 * text). Tokens carry 256 bits of entropy, so a slow password hash (crypto_pwhash) would add cost
 * and nothing else: brute force is already impossible, and the keyed hash also means a stolen
 * token table cannot be checked offline without the key. Verification recomputes the hash and
 * compares in constant time. */
#define LF_TOKEN_BYTES 32
#define LF_TOKEN_TEXT_LEN 43                 /* base64url, no padding */
#define LF_TOKEN_KEY_BYTES 32
#define LF_TOKEN_HASH_HEX_SIZE LF_HASH_HEX_SIZE

/* New random token text into out (LF_TOKEN_TEXT_LEN + 1 bytes). */
void lf_crypto_token_generate(char out[LF_TOKEN_TEXT_LEN + 1]);
/* hex(keyed BLAKE2b-256(token)) into out. token_len is bounded to 1..256; else -EINVAL. */
LF_MUST_CHECK int lf_crypto_token_hash(char out[LF_TOKEN_HASH_HEX_SIZE], const uint8_t key[LF_TOKEN_KEY_BYTES],
                         const char *token, size_t token_len);
/* true when token hashes to stored_hex (a 64-digit value from lf_crypto_token_hash()); compares in
 * constant time. A malformed token or stored value gives false. */
bool lf_crypto_token_verify(const uint8_t key[LF_TOKEN_KEY_BYTES], const char *token,
                            size_t token_len, const char *stored_hex);

#endif
