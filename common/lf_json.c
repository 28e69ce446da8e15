#include "lf_json.h"

#include <errno.h>

#include "lf_error.h"

int lf_json_parse(const char *text, size_t len, size_t max, json_t **out, lf_buf *err)
{
    if (len > max) {
        if (err)
            lf_buf_msgf(err, "JSON text of %zu bytes is larger than the limit of %zu", len, max);
        return LF_ELIMIT;
    }
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        if (err)
            lf_buf_msgf(err, "line %d, column %d: %s", e.line, e.column, e.text);
        return json_error_code(&e) == json_error_out_of_memory ? -ENOMEM : LF_EFORMAT;
    }
    *out = v;
    return 0;
}

static json_t *field(const json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

int lf_json_get_string(const json_t *obj, const char *key, const char **out)
{
    json_t *v = field(obj, key);
    if (!json_is_string(v))
        return -EINVAL;
    *out = json_string_value(v);
    return 0;
}

int lf_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = field(obj, key);
    if (!json_is_integer(v))
        return -EINVAL;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int lf_json_get_uint(const json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = field(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int lf_json_get_double(const json_t *obj, const char *key, double *out)
{
    json_t *v = field(obj, key);
    if (!json_is_number(v))
        return -EINVAL;
    *out = json_number_value(v);
    return 0;
}

int lf_json_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = field(obj, key);
    if (!json_is_boolean(v))
        return -EINVAL;
    *out = json_is_true(v);
    return 0;
}

int lf_json_get_object(const json_t *obj, const char *key, json_t **out)
{
    json_t *v = field(obj, key);
    if (!json_is_object(v))
        return -EINVAL;
    *out = v;
    return 0;
}

int lf_json_get_array(const json_t *obj, const char *key, json_t **out)
{
    json_t *v = field(obj, key);
    if (!json_is_array(v))
        return -EINVAL;
    *out = v;
    return 0;
}

/* 1 when the optional key is absent or null, 0 when present, -EINVAL when obj is no object. */
static int absent(const json_t *obj, const char *key)
{
    if (!json_is_object(obj))
        return -EINVAL;
    json_t *v = json_object_get(obj, key);
    return !v || json_is_null(v);
}

int lf_json_opt_string(const json_t *obj, const char *key, const char **out)
{
    int a = absent(obj, key);
    return a ? (a < 0 ? a : 0) : lf_json_get_string(obj, key, out);
}

int lf_json_opt_int(const json_t *obj, const char *key, int64_t *out)
{
    int a = absent(obj, key);
    return a ? (a < 0 ? a : 0) : lf_json_get_int(obj, key, out);
}

int lf_json_opt_uint(const json_t *obj, const char *key, uint64_t *out)
{
    int a = absent(obj, key);
    return a ? (a < 0 ? a : 0) : lf_json_get_uint(obj, key, out);
}

int lf_json_opt_bool(const json_t *obj, const char *key, bool *out)
{
    int a = absent(obj, key);
    return a ? (a < 0 ? a : 0) : lf_json_get_bool(obj, key, out);
}

struct dump_ctx {
    lf_buf *out;
    int rc;
};

static int dump_chunk(const char *buffer, size_t size, void *data)
{
    struct dump_ctx *d = data;
    d->rc = lf_buf_append(d->out, buffer, size);
    return d->rc ? -1 : 0;
}

int lf_json_dump(const json_t *v, lf_buf *out)
{
    size_t before = out->len;
    struct dump_ctx d = {out, 0};
    if (json_dump_callback(v, dump_chunk, &d, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) != 0) {
        lf_buf_truncate(out, before);
        return d.rc ? d.rc : -EINVAL;
    }
    return 0;
}
