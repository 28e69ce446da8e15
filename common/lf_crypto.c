#include "lf_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_hex.h"

int lf_crypto_init(void)
{
    /* sodium_init() is thread-safe and returns 1 when already initialised. */
    return sodium_init() < 0 ? -EIO : 0;
}

void lf_crypto_hash(uint8_t out[LF_HASH_BYTES], const void *data, size_t len)
{
    crypto_generichash(out, LF_HASH_BYTES, data, len, NULL, 0);
}

void lf_crypto_hash_init(lf_hash_ctx *ctx)
{
    crypto_generichash_init(&ctx->st, NULL, 0, LF_HASH_BYTES);
}

void lf_crypto_hash_update(lf_hash_ctx *ctx, const void *data, size_t len)
{
    crypto_generichash_update(&ctx->st, data, len);
}

void lf_crypto_hash_final(lf_hash_ctx *ctx, uint8_t out[LF_HASH_BYTES])
{
    crypto_generichash_final(&ctx->st, out, LF_HASH_BYTES);
}

int lf_crypto_hash_fd(int fd, uint8_t out[LF_HASH_BYTES], uint64_t *size_out)
{
    enum { CHUNK = 64 * 1024 };
    /* A heap chunk keeps stack use small in worker threads. */
    unsigned char *chunk = lf_malloc(CHUNK);
    if (!chunk)
        return -ENOMEM;
    lf_hash_ctx ctx;
    lf_crypto_hash_init(&ctx);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            lf_free(chunk);
            return e;
        }
        if (n == 0)
            break;
        lf_crypto_hash_update(&ctx, chunk, (size_t)n);
        total += (uint64_t)n;
    }
    lf_free(chunk);
    lf_crypto_hash_final(&ctx, out);
    if (size_out)
        *size_out = total;
    return 0;
}

int lf_crypto_hash_file(const char *path, uint8_t out[LF_HASH_BYTES], uint64_t *size_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = lf_crypto_hash_fd(fd, out, size_out);
    close(fd);
    return rc;
}

char *lf_crypto_hex_encode(char *out, const void *bin, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = bin;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

int lf_crypto_hex_decode(void *bin, size_t len, const char *hex, size_t hex_len)
{
    if (len > SIZE_MAX / 2 || hex_len != 2 * len)
        return -EINVAL;
    unsigned char *p = bin;
    for (size_t i = 0; i < len; i++) {
        int hi = lf_hex_value(hex[2 * i]), lo = lf_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        p[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int sodium_variant(enum lf_b64_variant v)
{
    return v == LF_B64_STANDARD ? sodium_base64_VARIANT_ORIGINAL
                                : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

size_t lf_crypto_b64_encoded_size(size_t len, enum lf_b64_variant v)
{
    return sodium_base64_encoded_len(len, sodium_variant(v));
}

int lf_crypto_b64_encode(char *out, size_t out_size, const void *bin, size_t len,
                         enum lf_b64_variant v)
{
    if (out_size < lf_crypto_b64_encoded_size(len, v))
        return -ENOBUFS;
    sodium_bin2base64(out, out_size, bin, len, sodium_variant(v));
    return 0;
}

int lf_crypto_b64_decode(void *out, size_t out_max, size_t *out_len, const char *text,
                         size_t text_len, enum lf_b64_variant v)
{
    /* The decoded size follows from the length (less any padding); refuse what cannot fit here,
     * so that every failure of sodium_base642bin below means "not valid base64". */
    size_t chars = text_len;
    for (int pad = 0; pad < 2 && chars > 0 && text[chars - 1] == '='; pad++)
        chars--;
    if (chars / 4 * 3 + (chars % 4 * 6) / 8 > out_max)
        return -ENOBUFS;
    const char *end = NULL;
    size_t n = 0;
    if (sodium_base642bin(out, out_max, text, text_len, NULL, &n, &end, sodium_variant(v)) != 0)
        return -EINVAL;
    if (end != text + text_len)
        return -EINVAL;
    *out_len = n;
    return 0;
}

bool lf_crypto_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void lf_crypto_token_generate(char out[LF_TOKEN_TEXT_LEN + 1])
{
    /* randombytes must be initialised before use from several threads; without an entropy source
     * no token may be handed out */
    if (lf_crypto_init() != 0)
        abort();
    uint8_t raw[LF_TOKEN_BYTES];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, LF_TOKEN_TEXT_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

int lf_crypto_token_hash(char out[LF_TOKEN_HASH_HEX_SIZE], const uint8_t key[LF_TOKEN_KEY_BYTES],
                         const char *token, size_t token_len)
{
    if (token_len == 0 || token_len > 256)
        return -EINVAL;
    uint8_t h[LF_HASH_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, token_len, key,
                       LF_TOKEN_KEY_BYTES);
    lf_crypto_hex_encode(out, h, sizeof h);
    return 0;
}

bool lf_crypto_token_verify(const uint8_t key[LF_TOKEN_KEY_BYTES], const char *token,
                            size_t token_len, const char *stored_hex)
{
    uint8_t stored[LF_HASH_BYTES], h[LF_HASH_BYTES];
    if (!stored_hex || lf_crypto_hex_decode(stored, sizeof stored, stored_hex,
                                            strnlen(stored_hex, 2 * LF_HASH_BYTES + 1)) != 0)
        return false;
    if (token_len == 0 || token_len > 256)
        return false;
    crypto_generichash(h, sizeof h, (const unsigned char *)token, token_len, key,
                       LF_TOKEN_KEY_BYTES);
    return sodium_memcmp(h, stored, sizeof h) == 0;
}
