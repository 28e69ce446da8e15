#include "lf_sign.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lf_error.h"
#include "lf_fileio.h"

#define SET_ERR(...)                                                                               \
    do {                                                                                           \
        if (err && errsz)                                                                          \
            snprintf(err, errsz, __VA_ARGS__);                                                     \
    } while (0)

const char *lf_sign_status_str(enum lf_sign_status s)
{
    switch (s) {
    case LF_SIGN_OK:
        return "ok";
    case LF_SIGN_MALFORMED:
        return "malformed Authorization header";
    case LF_SIGN_BAD_SIGNATURE:
        return "bad signature";
    case LF_SIGN_STALE:
        return "timestamp too old";
    case LF_SIGN_FUTURE:
        return "timestamp in the future";
    }
    return "unknown";
}

bool lf_sign_site_valid(const char *name, size_t len)
{
    if (len == 0 || len > LF_SIGN_SITE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

int lf_sign_keypair(uint8_t pk[LF_SIGN_PK_BYTES], uint8_t sk[LF_SIGN_SK_BYTES])
{
    if (lf_crypto_init() != 0)
        return -EIO;
    return crypto_sign_keypair(pk, sk) == 0 ? 0 : -EIO;
}

void lf_sign_sk_to_pk(uint8_t pk[LF_SIGN_PK_BYTES], const uint8_t sk[LF_SIGN_SK_BYTES])
{
    crypto_sign_ed25519_sk_to_pk(pk, sk);
}

int lf_sign_sk_save(const char *path, const uint8_t sk[LF_SIGN_SK_BYTES])
{
    char text[LF_SIGN_SIG_B64_SIZE + 1]; /* 64 bytes -> 88 chars, + newline */
    sodium_bin2base64(text, LF_SIGN_SIG_B64_SIZE, sk, LF_SIGN_SK_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    size_t n = strlen(text);
    text[n++] = '\n';
    int rc = lf_write_file_atomic(path, text, n, 0600);
    sodium_memzero(text, sizeof text);
    return rc;
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\n' ||
                    (*s)[*len - 1] == '\r'))
        (*len)--;
}

int lf_sign_sk_load(const char *path, uint8_t sk[LF_SIGN_SK_BYTES], char *err, size_t errsz)
{
    if (lf_crypto_init() != 0)
        return -EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        SET_ERR("%s: %s", path, e == ELOOP ? "is a symbolic link" : strerror(e));
        return e == ELOOP ? -EPERM : -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        SET_ERR("%s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        SET_ERR("%s: not a regular file", path);
        return -EPERM;
    }
    if (st.st_mode & 077) {
        close(fd);
        SET_ERR("%s: mode %04o gives group or others access to a secret key; chmod 600 it", path,
                (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    char text[256];
    ssize_t n = lf_read_full(fd, text, sizeof text);
    close(fd);
    if (n < 0) {
        SET_ERR("%s: %s", path, strerror((int)-n));
        return (int)n;
    }
    const char *p = text;
    size_t len = (size_t)n;
    trim(&p, &len);
    size_t got = 0;
    uint8_t key[LF_SIGN_SK_BYTES];
    int rc = 0;
    if ((size_t)n == sizeof text ||
        lf_crypto_b64_decode(key, sizeof key, &got, p, len, LF_B64_STANDARD) != 0 ||
        got != LF_SIGN_SK_BYTES) {
        SET_ERR("%s: not a base64 Ed25519 secret key of 64 bytes", path);
        rc = LF_EFORMAT;
    } else {
        /* The last 32 bytes must be the public key of the seed: catches a damaged file. */
        uint8_t pk[LF_SIGN_PK_BYTES], seed_pk[LF_SIGN_PK_BYTES], tmp_sk[LF_SIGN_SK_BYTES];
        crypto_sign_seed_keypair(seed_pk, tmp_sk, key);
        lf_sign_sk_to_pk(pk, key);
        if (sodium_memcmp(pk, seed_pk, sizeof pk) != 0) {
            SET_ERR("%s: secret key is inconsistent (damaged file)", path);
            rc = LF_EFORMAT;
        } else {
            memcpy(sk, key, sizeof key);
        }
        sodium_memzero(tmp_sk, sizeof tmp_sk);
    }
    sodium_memzero(key, sizeof key);
    sodium_memzero(text, sizeof text);
    return rc;
}

void lf_sign_pk_encode(char out[LF_SIGN_PK_B64_SIZE], const uint8_t pk[LF_SIGN_PK_BYTES])
{
    sodium_bin2base64(out, LF_SIGN_PK_B64_SIZE, pk, LF_SIGN_PK_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
}

int lf_sign_pk_decode(uint8_t pk[LF_SIGN_PK_BYTES], const char *text, size_t len)
{
    trim(&text, &len);
    size_t got = 0;
    uint8_t tmp[LF_SIGN_PK_BYTES];
    if (lf_crypto_b64_decode(tmp, sizeof tmp, &got, text, len, LF_B64_STANDARD) != 0 ||
        got != LF_SIGN_PK_BYTES)
        return LF_EFORMAT;
    memcpy(pk, tmp, sizeof tmp);
    return 0;
}

static bool method_valid(const char *m)
{
    size_t n = strnlen(m, 17);
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}

static bool path_valid(const char *p)
{
    size_t n = strnlen(p, 2049);
    if (n == 0 || n > 2048 || p[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return false;
    return true;
}

int lf_sign_message(lf_buf *out, const char *method, const char *path, int64_t ts,
                    const uint8_t body_hash[LF_HASH_BYTES])
{
    if (!method_valid(method) || !path_valid(path) || ts < 0)
        return -EINVAL;
    char hex[LF_HASH_HEX_SIZE];
    lf_crypto_hex_encode(hex, body_hash, LF_HASH_BYTES);
    return lf_buf_appendf(out, "%s\n%s\n%" PRId64 "\n%s", method, path, ts, hex);
}

int lf_sign_auth_build(lf_buf *out, const char *site, int64_t ts,
                       const uint8_t sig[LF_SIGN_SIG_BYTES])
{
    if (!lf_sign_site_valid(site, strlen(site)) || ts < 0)
        return -EINVAL;
    char b64[LF_SIGN_SIG_B64_SIZE];
    sodium_bin2base64(b64, sizeof b64, sig, LF_SIGN_SIG_BYTES, sodium_base64_VARIANT_ORIGINAL);
    return lf_buf_appendf(out, LF_SIGN_SCHEME " site=\"%s\", ts=\"%" PRId64 "\", sig=\"%s\"", site,
                          ts, b64);
}

int lf_sign_request(lf_buf *out, const uint8_t sk[LF_SIGN_SK_BYTES], const char *site,
                    const char *method, const char *path, int64_t ts,
                    const uint8_t body_hash[LF_HASH_BYTES])
{
    if (lf_crypto_init() != 0)
        return -EIO;
    if (!lf_sign_site_valid(site, strlen(site)))
        return -EINVAL;
    lf_buf msg = LF_BUF_INIT(4096);
    int rc = lf_sign_message(&msg, method, path, ts, body_hash);
    if (rc == 0) {
        uint8_t sig[LF_SIGN_SIG_BYTES];
        crypto_sign_detached(sig, NULL, (const unsigned char *)msg.data, msg.len, sk);
        rc = lf_sign_auth_build(out, site, ts, sig);
    }
    lf_buf_free(&msg);
    return rc;
}

int lf_sign_auth_parse(lf_sign_auth *out, const char *value, size_t len, char *err, size_t errsz)
{
    static const char scheme[] = LF_SIGN_SCHEME;
    const size_t slen = sizeof scheme - 1;
    if (len > LF_SIGN_HEADER_MAX) {
        SET_ERR("Authorization header longer than %d bytes", LF_SIGN_HEADER_MAX);
        return LF_EFORMAT;
    }
    if (len < slen + 1 || memcmp(value, scheme, slen) != 0 || value[slen] != ' ') {
        SET_ERR("Authorization scheme is not " LF_SIGN_SCHEME);
        return LF_EFORMAT;
    }
    size_t i = slen;
    bool have_site = false, have_ts = false, have_sig = false;
    lf_sign_auth res;
    memset(&res, 0, sizeof res);
    while (i < len && value[i] == ' ')
        i++;
    for (int nparam = 0;; nparam++) {
        if (nparam > 0) {
            while (i < len && value[i] == ' ')
                i++;
            if (i == len)
                break;
            if (value[i] != ',') {
                SET_ERR("expected ',' between Authorization parameters");
                return LF_EFORMAT;
            }
            i++;
            while (i < len && value[i] == ' ')
                i++;
        }
        if (nparam >= 3) {
            SET_ERR("too many Authorization parameters");
            return LF_EFORMAT;
        }
        size_t key_start = i;
        while (i < len && value[i] >= 'a' && value[i] <= 'z')
            i++;
        size_t key_len = i - key_start;
        const char *key = value + key_start;
        if (i + 1 >= len || value[i] != '=' || value[i + 1] != '"') {
            SET_ERR("expected key=\"value\" in Authorization header");
            return LF_EFORMAT;
        }
        i += 2;
        size_t val_start = i;
        while (i < len && value[i] != '"') {
            /* No escapes, no controls, no non-ASCII: none of the values needs them. */
            if (value[i] == '\\' || (unsigned char)value[i] < 0x20 ||
                (unsigned char)value[i] >= 0x7f) {
                SET_ERR("invalid character in Authorization parameter");
                return LF_EFORMAT;
            }
            i++;
        }
        if (i == len) {
            SET_ERR("unterminated quoted value in Authorization header");
            return LF_EFORMAT;
        }
        const char *val = value + val_start;
        size_t val_len = i - val_start;
        i++; /* closing quote */

        if (key_len == 4 && memcmp(key, "site", 4) == 0) {
            if (have_site) {
                SET_ERR("duplicate site parameter");
                return LF_EFORMAT;
            }
            if (!lf_sign_site_valid(val, val_len)) {
                SET_ERR("invalid site name");
                return LF_EFORMAT;
            }
            memcpy(res.site, val, val_len);
            res.site[val_len] = '\0';
            have_site = true;
        } else if (key_len == 2 && memcmp(key, "ts", 2) == 0) {
            if (have_ts) {
                SET_ERR("duplicate ts parameter");
                return LF_EFORMAT;
            }
            if (val_len == 0 || val_len > 19) {
                SET_ERR("invalid ts");
                return LF_EFORMAT;
            }
            uint64_t v = 0;
            for (size_t k = 0; k < val_len; k++) {
                if (val[k] < '0' || val[k] > '9') {
                    SET_ERR("invalid ts");
                    return LF_EFORMAT;
                }
                v = v * 10 + (uint64_t)(val[k] - '0'); /* 19 digits fit in uint64 */
            }
            if (v > INT64_MAX) {
                SET_ERR("ts out of range");
                return LF_EFORMAT;
            }
            res.ts = (int64_t)v;
            have_ts = true;
        } else if (key_len == 3 && memcmp(key, "sig", 3) == 0) {
            if (have_sig) {
                SET_ERR("duplicate sig parameter");
                return LF_EFORMAT;
            }
            size_t got = 0;
            if (val_len != LF_SIGN_SIG_B64_SIZE - 1 ||
                lf_crypto_b64_decode(res.sig, sizeof res.sig, &got, val, val_len,
                                     LF_B64_STANDARD) != 0 ||
                got != LF_SIGN_SIG_BYTES) {
                SET_ERR("sig is not base64 of 64 bytes");
                return LF_EFORMAT;
            }
            have_sig = true;
        } else {
            SET_ERR("unknown Authorization parameter");
            return LF_EFORMAT;
        }
    }
    if (!have_site || !have_ts || !have_sig) {
        SET_ERR("Authorization header lacks %s", !have_site ? "site" : !have_ts ? "ts" : "sig");
        return LF_EFORMAT;
    }
    *out = res;
    return 0;
}

int lf_sign_verify(const lf_sign_auth *auth, const uint8_t pk[LF_SIGN_PK_BYTES],
                   const char *method, const char *path, const uint8_t body_hash[LF_HASH_BYTES],
                   int64_t now, int64_t window_s, enum lf_sign_status *status)
{
    enum lf_sign_status dummy;
    if (!status)
        status = &dummy;
    if (lf_crypto_init() != 0)
        return -EIO;
    lf_buf b = LF_BUF_INIT(4096);
    int rc = lf_sign_message(&b, method, path, auth->ts, body_hash);
    if (rc != 0) {
        lf_buf_free(&b);
        *status = LF_SIGN_MALFORMED;
        return rc;
    }
    int bad = crypto_sign_verify_detached(auth->sig, (const unsigned char *)b.data, b.len, pk);
    lf_buf_free(&b);
    if (bad) {
        *status = LF_SIGN_BAD_SIGNATURE;
        return LF_EAUTH;
    }
    if (window_s < 0)
        window_s = 0;
    /* Differences in uint64: a > b makes (uint64)a - (uint64)b exact, whatever the signs. */
    if (auth->ts < now && (uint64_t)now - (uint64_t)auth->ts > (uint64_t)window_s) {
        *status = LF_SIGN_STALE;
        return LF_EAUTH;
    }
    if (auth->ts > now && (uint64_t)auth->ts - (uint64_t)now > (uint64_t)window_s) {
        *status = LF_SIGN_FUTURE;
        return LF_EAUTH;
    }
    *status = LF_SIGN_OK;
    return 0;
}
