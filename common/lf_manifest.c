#include "lf_manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lf_alloc.h"
#include "lf_calendar.h"
#include "lf_error.h"
#include "lf_hex.h"
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

void lf_manifest_init(lf_manifest *m)
{
    memset(m, 0, sizeof *m);
    m->format = 1;
}

void lf_manifest_free(lf_manifest *m)
{
    lf_free(m->site);
    lf_free(m->product);
    lf_free(m->product_version);
    lf_free(m->log_type);
    lf_free(m->log_name);
    lf_free(m->host);
    lf_free(m->user);
    lf_free(m->source_path);
    lf_free(m->started_at);
    lf_free(m->ended_at);
    for (size_t i = 0; i < m->metadata_count; i++) {
        lf_free(m->metadata[i].key);
        lf_free(m->metadata[i].value);
    }
    lf_free(m->metadata);
    lf_manifest_init(m);
}

/* ---- value rules ---- */

static bool charset_ok(const char *s, size_t len, size_t max, const char *extra, bool upper)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              (upper && c >= 'A' && c <= 'Z') || (c && strchr(extra, c))))
            return false;
    }
    return true;
}

/* Text: 1..max bytes (UTF-8, which jansson has checked), no control characters. */
static bool text_ok(const char *s, size_t len, size_t min, size_t max)
{
    if (len < min || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool lf_session_id_valid(const char *s, size_t len)
{
    return len == LF_SESSION_ID_LEN && lf_hex_is_lower(s, len);
}

bool lf_manifest_time_valid(const char *s, int64_t *epoch)
{
    size_t len = strnlen(s, 64);
    if (len < 20 || len > 40 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[len - 1] != 'Z')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return false;
    if (len > 20) { /* fraction: "." and 1..9 digits before the Z */
        if (s[19] != '.' || len - 21 < 1 || len - 21 > 9)
            return false;
        for (size_t i = 20; i < len - 1; i++)
            if (s[i] < '0' || s[i] > '9')
                return false;
    }
    if (epoch)
        *epoch = lf_days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

/* ---- parsing ---- */

static const char *known_keys[] = {
    "format", "session_id", "site", "product", "product_version", "log_type", "log_name",
    "log_size", "log_blake2b", "host", "user", "source_path", "started_at", "ended_at",
    "continuation_of", "part", "metadata",
};

static int get_string(json_t *root, const char *key, bool required, const char **out,
                      size_t *len, char *err, size_t errsz)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    *len = 0;
    if (!v) {
        if (required)
            return bad(err, errsz, "%s: required", key);
        return 0;
    }
    if (!json_is_string(v))
        return bad(err, errsz, "%s: must be a string", key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    if (strlen(*out) != *len)
        return bad(err, errsz, "%s: contains a NUL character", key);
    return 0;
}

static int dup_into(char **dst, const char *s, size_t len)
{
    if (!s)
        return 0;
    *dst = lf_strndup(s, len);
    return *dst ? 0 : -ENOMEM;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const lf_manifest_kv *)a)->key, ((const lf_manifest_kv *)b)->key);
}

static int validate(json_t *root, lf_manifest *m, char *err, size_t errsz)
{
    if (!json_is_object(root))
        return bad(err, errsz, "manifest: must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof known_keys / sizeof *known_keys; i++)
            known |= strcmp(key, known_keys[i]) == 0;
        if (!known) {
            char shown[48];
            size_t n = 0;
            for (const char *p = key; *p && n < 40; p++)
                shown[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
            shown[n] = '\0';
            return bad(err, errsz, "%s: unknown key", shown);
        }
    }

    json_t *fmt = json_object_get(root, "format");
    if (!fmt)
        return bad(err, errsz, "format: required");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != 1)
        return bad(err, errsz, "format: must be the integer 1");
    m->format = 1;

    const char *s;
    size_t len;
    int rc;
#define STR(key, req)                                                                              \
    if ((rc = get_string(root, key, req, &s, &len, err, errsz)) != 0)                              \
        return rc;

    STR("session_id", true);
    if (!lf_session_id_valid(s, len))
        return bad(err, errsz, "session_id: must be 32 lowercase hex digits");
    memcpy(m->session_id, s, len + 1);

    STR("site", true);
    if (!charset_ok(s, len, 64, "._-", false))
        return bad(err, errsz, "site: must match [a-z0-9._-]{1,64}");
    if ((rc = dup_into(&m->site, s, len)) != 0)
        return rc;

    STR("product", true);
    if (!text_ok(s, len, 1, 128))
        return bad(err, errsz, "product: must be 1..128 bytes of UTF-8 without control characters");
    if ((rc = dup_into(&m->product, s, len)) != 0)
        return rc;

    STR("product_version", true);
    if (!text_ok(s, len, 1, 128))
        return bad(err, errsz,
                   "product_version: must be 1..128 bytes of UTF-8 without control characters");
    if ((rc = dup_into(&m->product_version, s, len)) != 0)
        return rc;

    STR("log_type", true);
    if (!charset_ok(s, len, 64, "_-", false))
        return bad(err, errsz, "log_type: must match [a-z0-9_-]{1,64}");
    if ((rc = dup_into(&m->log_type, s, len)) != 0)
        return rc;

    STR("log_name", true);
    bool is_dir = false;
    if (!lf_zip_name_valid(s, len, 255, &is_dir) || is_dir || strcmp(s, LF_MANIFEST_NAME) == 0)
        return bad(err, errsz,
                   "log_name: must be a relative file name in the zip (no \"..\", no leading "
                   "\"/\", printable ASCII, not manifest.json)");
    if ((rc = dup_into(&m->log_name, s, len)) != 0)
        return rc;

    json_t *size = json_object_get(root, "log_size");
    if (!size)
        return bad(err, errsz, "log_size: required");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return bad(err, errsz, "log_size: must be a non-negative integer");
    m->log_size = (uint64_t)json_integer_value(size);

    STR("log_blake2b", true);
    if ((len != 2 * LF_HASH_BYTES || !lf_hex_is_lower(s, len)))
        return bad(err, errsz, "log_blake2b: must be 64 lowercase hex digits");
    memcpy(m->log_blake2b, s, len + 1);

    STR("host", false);
    if (s && !text_ok(s, len, 1, 255))
        return bad(err, errsz, "host: must be 1..255 bytes of UTF-8 without control characters");
    if ((rc = dup_into(&m->host, s, len)) != 0)
        return rc;
    STR("user", false);
    if (s && !text_ok(s, len, 1, 255))
        return bad(err, errsz, "user: must be 1..255 bytes of UTF-8 without control characters");
    if ((rc = dup_into(&m->user, s, len)) != 0)
        return rc;
    STR("source_path", false);
    if (s && !text_ok(s, len, 1, 4096))
        return bad(err, errsz,
                   "source_path: must be 1..4096 bytes of UTF-8 without control characters");
    if ((rc = dup_into(&m->source_path, s, len)) != 0)
        return rc;

    int64_t t0 = 0, t1 = 0;
    STR("started_at", false);
    if (s && !lf_manifest_time_valid(s, &t0))
        return bad(err, errsz, "started_at: must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.frac]Z)");
    if ((rc = dup_into(&m->started_at, s, len)) != 0)
        return rc;
    STR("ended_at", false);
    if (s && !lf_manifest_time_valid(s, &t1))
        return bad(err, errsz, "ended_at: must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.frac]Z)");
    if ((rc = dup_into(&m->ended_at, s, len)) != 0)
        return rc;
    if (m->started_at && m->ended_at && t1 < t0)
        return bad(err, errsz, "ended_at: before started_at");

    STR("continuation_of", false);
    json_t *part = json_object_get(root, "part");
    if (s) {
        if (!lf_session_id_valid(s, len))
            return bad(err, errsz, "continuation_of: must be 32 lowercase hex digits");
        if (strcmp(s, m->session_id) == 0)
            return bad(err, errsz, "continuation_of: must name another session");
        memcpy(m->continuation_of, s, len + 1);
        if (!part)
            return bad(err, errsz, "part: required with continuation_of");
    }
    if (part) {
        if (!json_is_integer(part) || json_integer_value(part) < 1 ||
            json_integer_value(part) > 1000000)
            return bad(err, errsz, "part: must be an integer 1..1000000");
        if (!s)
            return bad(err, errsz, "continuation_of: required with part");
        m->part = (uint32_t)json_integer_value(part);
    }
#undef STR

    json_t *md = json_object_get(root, "metadata");
    if (md) {
        if (!json_is_object(md))
            return bad(err, errsz, "metadata: must be an object");
        size_t n = json_object_size(md);
        if (n > LF_MANIFEST_MAX_METADATA)
            return bad(err, errsz, "metadata: at most %d keys", LF_MANIFEST_MAX_METADATA);
        if (n) {
            m->metadata = lf_calloc(n, sizeof *m->metadata);
            if (!m->metadata)
                return -ENOMEM;
        }
        json_object_foreach(md, key, val)
        {
            if (!charset_ok(key, strlen(key), 64, "._-", true))
                return bad(err, errsz, "metadata: keys must match [A-Za-z0-9._-]{1,64}");
            if (!json_is_string(val))
                return bad(err, errsz, "metadata.%s: must be a string", key);
            const char *v = json_string_value(val);
            size_t vlen = json_string_length(val);
            if (strlen(v) != vlen || !text_ok(v, vlen, 0, 1024))
                return bad(err, errsz,
                           "metadata.%s: at most 1024 bytes without control characters", key);
            lf_manifest_kv *kv = &m->metadata[m->metadata_count];
            kv->key = lf_strdup(key);
            kv->value = lf_strndup(v, vlen);
            m->metadata_count++;
            if (!kv->key || !kv->value)
                return -ENOMEM;
        }
        qsort(m->metadata, m->metadata_count, sizeof *m->metadata, cmp_kv);
    }
    return 0;
}

int lf_manifest_parse(lf_manifest *m, const void *json, size_t len, char *err, size_t errsz)
{
    lf_manifest_init(m);
    if (len > LF_MANIFEST_MAX) {
        if (err && errsz)
            snprintf(err, errsz, "manifest: larger than %d bytes", LF_MANIFEST_MAX);
        return LF_ELIMIT;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return bad(err, errsz, "manifest: invalid JSON at line %d column %d: %s", jerr.line,
                   jerr.column, jerr.text);
    int rc = validate(root, m, err, errsz);
    json_decref(root);
    if (rc) {
        if (rc == -ENOMEM && err && errsz)
            snprintf(err, errsz, "manifest: out of memory");
        lf_manifest_free(m);
    }
    return rc;
}

/* ---- building ---- */

static int set_str(json_t *o, const char *key, const char *v)
{
    if (!v)
        return 0;
    json_t *s = json_string(v); /* NULL for invalid UTF-8 */
    if (!s || json_object_set_new(o, key, s) != 0)
        return -EINVAL;
    return 0;
}

int lf_manifest_build(const lf_manifest *m, lf_buf *out, char *err, size_t errsz)
{
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = 0;
    const char *failed = NULL;
#define S(key, v)                                                                                  \
    if (!failed && set_str(o, key, v) != 0)                                                        \
        failed = key;
    json_object_set_new(o, "format", json_integer(m->format));
    S("session_id", m->session_id);
    S("site", m->site);
    S("product", m->product);
    S("product_version", m->product_version);
    S("log_type", m->log_type);
    S("log_name", m->log_name);
    if (m->log_size > (uint64_t)INT64_MAX)
        failed = "log_size";
    else
        json_object_set_new(o, "log_size", json_integer((json_int_t)m->log_size));
    S("log_blake2b", m->log_blake2b);
    S("host", m->host);
    S("user", m->user);
    S("source_path", m->source_path);
    S("started_at", m->started_at);
    S("ended_at", m->ended_at);
    if (m->continuation_of[0])
        S("continuation_of", m->continuation_of);
    if (m->part)
        json_object_set_new(o, "part", json_integer(m->part));
    if (m->metadata_count) {
        json_t *md = json_object();
        json_object_set_new(o, "metadata", md);
        for (size_t i = 0; i < m->metadata_count && !failed; i++)
            if (!md || set_str(md, m->metadata[i].key, m->metadata[i].value) != 0)
                failed = "metadata";
    }
#undef S
    if (failed) {
        json_decref(o);
        return bad(err, errsz, "%s: not valid UTF-8 text", failed);
    }
    char *text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    if (!text)
        return -ENOMEM;
    /* What we build must pass our own validation: check it before handing it out. */
    lf_manifest check;
    size_t tlen = strlen(text);
    rc = lf_manifest_parse(&check, text, tlen, err, errsz);
    lf_manifest_free(&check);
    if (rc == 0)
        rc = lf_buf_append(out, text, tlen);
    free(text);
    return rc;
}

int lf_manifest_set_metadata(lf_manifest *m, const char *key, const char *value)
{
    if (!charset_ok(key, strlen(key), 64, "._-", true))
        return -EINVAL;
    for (size_t i = 0; i < m->metadata_count; i++) {
        if (strcmp(m->metadata[i].key, key) == 0) {
            char *v = lf_strdup(value);
            if (!v)
                return -ENOMEM;
            lf_free(m->metadata[i].value);
            m->metadata[i].value = v;
            return 0;
        }
    }
    if (m->metadata_count >= LF_MANIFEST_MAX_METADATA)
        return LF_ELIMIT;
    lf_manifest_kv *kv = lf_realloc(m->metadata, (m->metadata_count + 1) * sizeof *kv);
    if (!kv)
        return -ENOMEM;
    m->metadata = kv;
    char *k = lf_strdup(key), *v = lf_strdup(value);
    if (!k || !v) {
        lf_free(k);
        lf_free(v);
        return -ENOMEM;
    }
    m->metadata[m->metadata_count].key = k;
    m->metadata[m->metadata_count].value = v;
    m->metadata_count++;
    qsort(m->metadata, m->metadata_count, sizeof *m->metadata, cmp_kv);
    return 0;
}

static void hash_field(lf_hash_ctx *ctx, const void *data, size_t len)
{
    uint8_t prefix[8];
    uint64_t n = len;
    for (int i = 7; i >= 0; i--, n >>= 8)
        prefix[i] = (uint8_t)n;
    lf_crypto_hash_update(ctx, prefix, sizeof prefix);
    lf_crypto_hash_update(ctx, data, len);
}

void lf_manifest_session_id(char out[LF_SESSION_ID_LEN + 1], const char *site,
                            const void *identity, size_t identity_len,
                            const uint8_t content_hash[LF_HASH_BYTES])
{
    static const char tag[] = "logferry.session-id.v1";
    lf_hash_ctx ctx;
    lf_crypto_hash_init(&ctx);
    hash_field(&ctx, tag, sizeof tag - 1);
    hash_field(&ctx, site, strlen(site));
    hash_field(&ctx, identity, identity_len);
    hash_field(&ctx, content_hash, LF_HASH_BYTES);
    uint8_t h[LF_HASH_BYTES];
    lf_crypto_hash_final(&ctx, h);
    lf_crypto_hex_encode(out, h, LF_SESSION_ID_LEN / 2);
}
