/* lf_manifest_check_archive() (see lf_manifest.h): the receiver's and the parser's check of a whole
 * session archive. Apart from lf_manifest.c because it reads archives with lf_zip (libarchive),
 * which a program that only builds manifests (the uploader) then does not link. */
#include "lf_manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lf_error.h"
#include "lf_zip.h"

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errsz, const char *fmt,
                                                     ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return LF_EFORMAT;
}

struct log_check {
    lf_hash_ctx hash;
    uint64_t bytes;
    int (*fn)(void *ctx, const void *data, size_t len);
    void *ctx;
};

static int check_chunk(void *ctx, const void *data, size_t len)
{
    struct log_check *lc = ctx;
    lf_crypto_hash_update(&lc->hash, data, len);
    lc->bytes += len;
    return lc->fn ? lc->fn(lc->ctx, data, len) : 0;
}

int lf_manifest_check_archive(struct lf_zip *z, lf_manifest *m,
                              int (*log_fn)(void *ctx, const void *data, size_t len), void *ctx,
                              char *err, size_t errsz)
{
    lf_manifest_init(m);
    lf_zip_error zerr;
    lf_buf text = LF_BUF_INIT(LF_MANIFEST_MAX);
    int rc = lf_zip_read_entry_buf(z, LF_MANIFEST_NAME, LF_MANIFEST_MAX, &text, &zerr);
    if (rc) {
        if (rc == -ENOENT)
            rc = bad(err, errsz, "archive: no " LF_MANIFEST_NAME);
        else if (err && errsz)
            snprintf(err, errsz, "%s: %s", LF_MANIFEST_NAME, zerr.msg);
        lf_buf_free(&text);
        return rc;
    }
    rc = lf_manifest_parse(m, text.data ? text.data : "", text.len, err, errsz);
    lf_buf_free(&text);
    if (rc)
        return rc;
    for (size_t i = 0; i < lf_zip_entry_count(z); i++) {
        const char *name = lf_zip_entry_name(z, i);
        size_t n = strlen(name);
        if (strcmp(name, LF_MANIFEST_NAME) == 0 || strcmp(name, m->log_name) == 0 ||
            (n && name[n - 1] == '/'))
            continue;
        rc = bad(err, errsz, "archive: unexpected entry \"%.60s\" (only manifest.json and the log)",
                 name);
        goto fail;
    }
    uint64_t declared;
    if (lf_zip_entry_size(z, m->log_name, &declared) != 0) {
        rc = bad(err, errsz, "log_name: no entry \"%.60s\" in the archive", m->log_name);
        goto fail;
    }
    if (declared != m->log_size) {
        rc = LF_ECORRUPT;
        if (err && errsz)
            snprintf(err, errsz, "log_size: %" PRIu64 " but the entry holds %" PRIu64 " bytes",
                     m->log_size, declared);
        goto fail;
    }
    struct log_check lc = {.fn = log_fn, .ctx = ctx};
    lf_crypto_hash_init(&lc.hash);
    rc = lf_zip_read_entry(z, m->log_name, check_chunk, &lc, &zerr);
    if (rc) {
        if (err && errsz)
            snprintf(err, errsz, "log: %s", zerr.msg);
        goto fail;
    }
    uint8_t h[LF_HASH_BYTES], want[LF_HASH_BYTES];
    lf_crypto_hash_final(&lc.hash, h);
    if (lf_crypto_hex_decode(want, sizeof want, m->log_blake2b, 2 * LF_HASH_BYTES) != 0 ||
        lc.bytes != m->log_size || !lf_crypto_equal(h, want, sizeof h)) {
        rc = LF_ECORRUPT;
        if (err && errsz)
            snprintf(err, errsz, "log_blake2b: does not match the log's content");
        goto fail;
    }
    return 0;
fail:
    lf_manifest_free(m);
    return rc;
}
