/* manifest.json: the description of one session that travels inside its zip (docs/manifest.md is
 * the full reference). Strict schema: unknown keys, duplicate keys, wrong types and out-of-range
 * values are refused with a message that names the field, so the receiver can answer 400 with it.
 *
 *   format            required  integer 1
 *   session_id        required  32 lowercase hex digits (lf_manifest_session_id)
 *   site              required  [a-z0-9._-]{1,64}
 *   product           required  1..128 bytes of UTF-8, no control characters
 *   product_version   required  1..128 bytes of UTF-8, no control characters
 *   log_type          required  [a-z0-9_-]{1,64}
 *   log_name          required  the log's entry name in the zip (zip name rules, not manifest.json)
 *   log_size          required  integer >= 0, the log's exact size in bytes
 *   log_blake2b       required  64 lowercase hex digits: BLAKE2b-256 of the log bytes
 *   host, user        optional  1..255 bytes of UTF-8, no control characters
 *   source_path       optional  1..4096 bytes of UTF-8, no control characters
 *   started_at        optional  RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SS[.fraction]Z"
 *   ended_at          optional  same; not before started_at
 *   continuation_of   optional  a session id (not this one); requires part
 *   part              optional  integer 1..1000000; requires continuation_of
 *   metadata          optional  object of at most 64 keys ([A-Za-z0-9._-]{1,64}) with string
 *                               values of at most 1024 bytes, no control characters
 * The whole document is at most LF_MANIFEST_MAX bytes.
 *
 * Session ids (architecture invariant 3): lf_manifest_session_id() derives the id from the site,
 * the source's identity at the site and the BLAKE2b-256 of the log bytes:
 *   id = hex(first 16 bytes of BLAKE2b-256(
 *          field("logferry.session-id.v1") || field(site) || field(identity) || field(hash)))
 *   field(x) = 8-byte big-endian length of x || x
 * where identity is the source's identity at the site (the log's path relative to its watched
 * directory, as UTF-8 bytes) and hash is the 32 raw bytes of BLAKE2b-256(log). The length prefixes
 * make the encoding injective: no two different tuples hash the same input. An uploader that lost
 * its state recomputes the same id for the same file, so the receiver answers 200, not a copy. */
#ifndef LF_MANIFEST_H
#define LF_MANIFEST_H

#include "lf_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"
#include "lf_crypto.h"

#define LF_MANIFEST_MAX (64 * 1024)
#define LF_MANIFEST_NAME "manifest.json"
#define LF_SESSION_ID_LEN 32
/* A session id: exactly LF_SESSION_ID_LEN lower-case hex digits. */
bool lf_session_id_valid(const char *s, size_t len);
#define LF_MANIFEST_MAX_METADATA 64

typedef struct lf_manifest_kv {
    char *key;
    char *value;
} lf_manifest_kv;

/* Every string is owned by the struct (lf_manifest_free); optional ones are NULL when absent. */
typedef struct lf_manifest {
    int format;
    char session_id[LF_SESSION_ID_LEN + 1];
    char *site;
    char *product;
    char *product_version;
    char *log_type;
    char *log_name;
    uint64_t log_size;
    char log_blake2b[LF_HASH_HEX_SIZE];
    char *host;
    char *user;
    char *source_path;
    char *started_at;
    char *ended_at;
    char continuation_of[LF_SESSION_ID_LEN + 1]; /* "" when absent */
    uint32_t part;                               /* 0 when absent */
    lf_manifest_kv *metadata;                    /* sorted by key */
    size_t metadata_count;
} lf_manifest;

/* An empty manifest (format 1, everything else absent). */
void lf_manifest_init(lf_manifest *m);
void lf_manifest_free(lf_manifest *m);

/* Parses and validates len bytes of JSON into m (which is initialised here). On failure m is
 * empty and err (may be NULL) names the field and the rule: "site: must match [a-z0-9._-]{1,64}".
 * 0, LF_EFORMAT (invalid), LF_ELIMIT (larger than LF_MANIFEST_MAX) or -ENOMEM. */
LF_MUST_CHECK int lf_manifest_parse(lf_manifest *m, const void *json, size_t len, char *err, size_t errsz);

/* Canonical JSON of m (keys sorted, compact, UTF-8) appended to out; the result is validated like
 * a parsed one, so nothing invalid is ever built. 0, LF_EFORMAT (err names the field), or
 * lf_buf's errors. */
LF_MUST_CHECK int lf_manifest_build(const lf_manifest *m, lf_buf *out, char *err, size_t errsz);

/* Adds or replaces a metadata pair (copied). 0, -EINVAL (bad key), LF_ELIMIT (too many), -ENOMEM.
 */
LF_MUST_CHECK int lf_manifest_set_metadata(lf_manifest *m, const char *key, const char *value);

/* Derives a session id (see above) into out (33 bytes with NUL). identity may hold any bytes. */
void lf_manifest_session_id(char out[LF_SESSION_ID_LEN + 1], const char *site,
                            const void *identity, size_t identity_len,
                            const uint8_t content_hash[LF_HASH_BYTES]);

/* The whole check of a session archive, as the receiver (and the parser) need it, on an archive
 * already opened with lf_zip_open_fd/mem (which checked its structure): reads manifest.json
 * (bounded by LF_MANIFEST_MAX), parses it into m, requires the archive to hold exactly
 * manifest.json and the log named by log_name (directory entries aside), requires the log's
 * declared size to equal log_size, then streams the log through log_fn (may be NULL; see
 * lf_zip_data_fn: chunks before a failure must be discarded) while hashing it, and requires its
 * BLAKE2b-256 to equal log_blake2b. Returns 0 (m filled, owned by the caller), or a negative code
 * with m empty and err naming the problem (a field, or an entry): LF_EFORMAT (manifest or archive
 * layout invalid), LF_ECORRUPT (log size or hash mismatch, damaged data), LF_ELIMIT, -ENOMEM,
 * -EIO, or log_fn's own non-zero result. */
struct lf_zip;
LF_MUST_CHECK int lf_manifest_check_archive(struct lf_zip *z, lf_manifest *m,
                              int (*log_fn)(void *ctx, const void *data, size_t len), void *ctx,
                              char *err, size_t errsz);

/* RFC 3339 UTC check as used for started_at/ended_at; *epoch (may be NULL) gets the seconds. */
bool lf_manifest_time_valid(const char *s, int64_t *epoch);

#endif
