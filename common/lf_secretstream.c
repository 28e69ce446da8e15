#include "lf_secretstream.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "lf_alloc.h"
#include "lf_crypto.h"
#include "lf_error.h"
#include "lf_fileio.h"

#define AD_BYTES 28 /* magic, version, key id, chunk size: authenticated with every record */
#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES

_Static_assert(AD_BYTES + crypto_secretstream_xchacha20poly1305_HEADERBYTES == LF_SS_HEADER_BYTES,
               "header layout");
_Static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == LF_KEY_BYTES, "key size");

/* Where bytes come from and go to: an fd or memory. */
struct source {
    int fd;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
};

struct sink {
    int fd;
    lf_buf *buf;
    uint64_t bytes;
    void (*progress)(void *arg, uint64_t plain_bytes); /* after each record written; may be NULL */
    void *progress_arg;
};

static ssize_t source_read(struct source *s, void *out, size_t len)
{
    if (s->fd >= 0)
        return lf_read_full(s->fd, out, len);
    size_t n = s->mem_len - s->mem_pos < len ? s->mem_len - s->mem_pos : len;
    memcpy(out, s->mem + s->mem_pos, n);
    s->mem_pos += n;
    return (ssize_t)n;
}

static int sink_write(struct sink *s, const void *data, size_t len)
{
    int rc = s->fd >= 0 ? lf_write_all(s->fd, data, len) : lf_buf_append(s->buf, data, len);
    if (rc == 0)
        s->bytes += len;
    if (rc == 0 && s->progress)
        s->progress(s->progress_arg, s->bytes);
    return rc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int encrypt_stream(const lf_key *key, struct source *src, struct sink *dst, size_t chunk)
{
    if (lf_crypto_init() != 0)
        return -EIO;
    if (chunk == 0)
        chunk = LF_SS_DEFAULT_CHUNK;
    if (chunk > LF_SS_MAX_CHUNK)
        return -EINVAL;
    uint8_t hdr[LF_SS_HEADER_BYTES];
    memcpy(hdr, LF_SS_MAGIC, 7); /* includes the NUL */
    hdr[7] = LF_SS_VERSION;
    memcpy(hdr + 8, key->id, LF_KEY_ID_BYTES);
    put32(hdr + 24, (uint32_t)chunk);
    crypto_secretstream_xchacha20poly1305_state st;
    crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + AD_BYTES, key->key);

    uint8_t *plain = lf_malloc(chunk);
    uint8_t *rec = lf_malloc(4 + chunk + ABYTES);
    int rc = 0;
    if (!plain || !rec) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = sink_write(dst, hdr, sizeof hdr)) != 0)
        goto out;
    for (;;) {
        ssize_t n = source_read(src, plain, chunk);
        if (n < 0) {
            rc = (int)n;
            goto out;
        }
        /* A short read means end of input: this record is the last. An input that is a multiple
         * of chunk ends with an empty FINAL record. */
        unsigned char tag = (size_t)n < chunk ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                                              : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
        unsigned long long clen = 0;
        crypto_secretstream_xchacha20poly1305_push(&st, rec + 4, &clen, plain, (size_t)n, hdr,
                                                   AD_BYTES, tag);
        put32(rec, (uint32_t)clen);
        if ((rc = sink_write(dst, rec, 4 + (size_t)clen)) != 0)
            goto out;
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            break;
    }
out:
    if (plain)
        sodium_memzero(plain, chunk);
    lf_free(plain);
    lf_free(rec);
    sodium_memzero(&st, sizeof st);
    return rc;
}

int lf_secretstream_encrypt_fd(const lf_key *key, int in_fd, int out_fd, size_t chunk,
                               uint64_t *out_bytes)
{
    struct source src = {.fd = in_fd};
    struct sink dst = {.fd = out_fd};
    int rc = encrypt_stream(key, &src, &dst, chunk);
    if (rc == 0 && out_bytes)
        *out_bytes = dst.bytes;
    return rc;
}

int lf_secretstream_encrypt_buf(const lf_key *key, const void *data, size_t len, size_t chunk,
                                lf_buf *out)
{
    struct source src = {.fd = -1, .mem = data, .mem_len = len};
    struct sink dst = {.fd = -1, .buf = out};
    size_t before = out->len;
    int rc = encrypt_stream(key, &src, &dst, chunk);
    if (rc != 0)
        lf_buf_truncate(out, before);
    return rc;
}

static int check_header(const uint8_t *hdr, size_t len, uint32_t *chunk)
{
    if (len < LF_SS_HEADER_BYTES || memcmp(hdr, LF_SS_MAGIC, 7) != 0 || hdr[7] != LF_SS_VERSION)
        return LF_ECORRUPT;
    uint32_t c = get32(hdr + 24);
    if (c == 0 || c > LF_SS_MAX_CHUNK)
        return LF_ECORRUPT;
    if (chunk)
        *chunk = c;
    return 0;
}

int lf_secretstream_key_id(const void *header, size_t len, uint8_t id[LF_KEY_ID_BYTES])
{
    int rc = check_header(header, len, NULL);
    if (rc == 0)
        memcpy(id, (const uint8_t *)header + 8, LF_KEY_ID_BYTES);
    return rc;
}

static int decrypt_stream(const lf_keyring *kr, struct source *src, struct sink *dst)
{
    if (lf_crypto_init() != 0)
        return -EIO;
    uint8_t hdr[LF_SS_HEADER_BYTES];
    ssize_t n = source_read(src, hdr, sizeof hdr);
    if (n < 0)
        return (int)n;
    uint32_t chunk;
    if (check_header(hdr, (size_t)n, &chunk) != 0)
        return LF_ECORRUPT;
    const lf_key *key = lf_keyring_find(kr, hdr + 8);
    if (!key)
        return -ENOKEY;
    crypto_secretstream_xchacha20poly1305_state st;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr + AD_BYTES, key->key) != 0)
        return LF_ECORRUPT;
    uint8_t *rec = lf_malloc(chunk + ABYTES);
    uint8_t *plain = lf_malloc(chunk);
    int rc = 0;
    if (!rec || !plain) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        uint8_t lenbuf[4];
        n = source_read(src, lenbuf, 4);
        if (n < 0) {
            rc = (int)n;
            goto out;
        }
        if (n < 4) { /* end of input before the FINAL record: truncated */
            rc = LF_ECORRUPT;
            goto out;
        }
        uint32_t clen = get32(lenbuf);
        if (clen < ABYTES || clen > chunk + ABYTES) {
            rc = LF_ECORRUPT;
            goto out;
        }
        n = source_read(src, rec, clen);
        if (n < 0) {
            rc = (int)n;
            goto out;
        }
        if ((size_t)n < clen) {
            rc = LF_ECORRUPT;
            goto out;
        }
        unsigned long long plen = 0;
        unsigned char tag = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, plain, &plen, &tag, rec, clen, hdr,
                                                       AD_BYTES) != 0) {
            rc = LF_EAUTH;
            goto out;
        }
        if ((rc = sink_write(dst, plain, (size_t)plen)) != 0)
            goto out;
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
            uint8_t extra;
            n = source_read(src, &extra, 1);
            if (n < 0)
                rc = (int)n;
            else if (n > 0)
                rc = LF_ECORRUPT; /* bytes after the end */
            goto out;
        }
        if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
            rc = LF_ECORRUPT; /* our writer uses no other tags */
            goto out;
        }
    }
out:
    if (plain)
        sodium_memzero(plain, chunk);
    lf_free(plain);
    lf_free(rec);
    sodium_memzero(&st, sizeof st);
    return rc;
}

int lf_secretstream_decrypt_fd(const lf_keyring *kr, int in_fd, int out_fd,
                               uint64_t *plain_bytes)
{
    return lf_secretstream_decrypt_fd_progress(kr, in_fd, out_fd, plain_bytes, NULL, NULL);
}

int lf_secretstream_decrypt_fd_progress(const lf_keyring *kr, int in_fd, int out_fd, uint64_t *plain_bytes,
                                        void (*progress)(void *arg, uint64_t plain_bytes), void *arg)
{
    struct source src = {.fd = in_fd};
    struct sink dst = {.fd = out_fd, .progress = progress, .progress_arg = arg};
    int rc = decrypt_stream(kr, &src, &dst);
    if (rc == 0 && plain_bytes)
        *plain_bytes = dst.bytes;
    return rc;
}

int lf_secretstream_decrypt_buf(const lf_keyring *kr, const void *data, size_t len, lf_buf *out)
{
    struct source src = {.fd = -1, .mem = data, .mem_len = len};
    struct sink dst = {.fd = -1, .buf = out};
    size_t before = out->len;
    int rc = decrypt_stream(kr, &src, &dst);
    if (rc != 0)
        lf_buf_truncate(out, before);
    return rc;
}

int lf_secretstream_encrypt_mem_fd(const lf_key *key, const void *data, size_t len, int out_fd,
                                   size_t chunk, uint64_t *out_bytes)
{
    struct source src = {.fd = -1, .mem = data, .mem_len = len};
    struct sink dst = {.fd = out_fd};
    int rc = encrypt_stream(key, &src, &dst, chunk);
    if (rc == 0 && out_bytes)
        *out_bytes = dst.bytes;
    return rc;
}

int lf_secretstream_decrypt_fd_buf(const lf_keyring *kr, int in_fd, lf_buf *out)
{
    struct source src = {.fd = in_fd};
    struct sink dst = {.fd = -1, .buf = out};
    size_t before = out->len;
    int rc = decrypt_stream(kr, &src, &dst);
    if (rc != 0)
        lf_buf_truncate(out, before);
    return rc;
}
