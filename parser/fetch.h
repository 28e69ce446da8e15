/* Getting a session's log from the receiver: GET /v1/sessions/{id}/blob (worker token), decrypt
 * with the receiver's keyring, open the zip with the receiver's limits and check it as the
 * receiver did (manifest, layout, log size and BLAKE2b), writing the log to an fd.
 * One lf_parser_fetch per worker thread (it holds a blocking HTTP client). */
#ifndef LF_PARSER_FETCH_H
#define LF_PARSER_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_keyring.h"
#include "lf_manifest.h"

typedef struct lf_parser_fetch lf_parser_fetch;

typedef struct lf_parser_fetch_result {
    const char *stage;   /* where it failed: "fetch", "decrypt", "archive" */
    bool transient;      /* worth trying again later (receiver away, 5xx) */
    bool away;           /* transient, and not this session's fault: the receiver is unreachable or
                          * overloaded (no answer, 429, 502, 503, 504) */
    char reason[512];
} lf_parser_fetch_result;

/* kr is borrowed (must outlive the fetcher). max_log bounds the decrypted zip and the log. */
int lf_parser_fetch_new(const char *base_url, const char *token, const lf_keyring *kr, uint64_t max_log,
                        lf_parser_fetch **out);
void lf_parser_fetch_free(lf_parser_fetch *f);

/* Fetches, decrypts and checks session id; the log goes to log_fd (from its offset), the manifest
 * into m (initialised here; lf_manifest_free). 0, or a negative code with res filled. */
int lf_parser_fetch_session(lf_parser_fetch *f, const char *id, int log_fd, lf_manifest *m,
                            lf_parser_fetch_result *res);

/* The same from an encrypted object already in memory (tests, the store read directly). */
int lf_parser_open_object(const lf_keyring *kr, uint64_t max_log, const void *obj, size_t len, int log_fd,
                          lf_manifest *m, lf_parser_fetch_result *res);

#endif
