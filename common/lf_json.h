/* Small helpers over jansson used by every program: bounded parsing with a readable error, typed
 * field access that validates, and serialisation into an lf_buf. */
#ifndef LF_JSON_H
#define LF_JSON_H

#include "lf_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_buf.h"

/* Parses len bytes of text (no NUL needed) into *out (a new reference: json_decref it). Duplicate
 * keys and \u0000 are refused. LF_ELIMIT when len > max; LF_EFORMAT with "line L, column C: reason"
 * in err (may be NULL) when the text is not one JSON value. */
LF_MUST_CHECK int lf_json_parse(const char *text, size_t len, size_t max, json_t **out, lf_buf *err);

/* Required fields of an object: 0, or -EINVAL when obj is not an object, the key is missing or the
 * value has another type. Borrowed results (strings, objects, arrays) live as long as obj. */
LF_MUST_CHECK int lf_json_get_string(const json_t *obj, const char *key, const char **out);
LF_MUST_CHECK int lf_json_get_int(const json_t *obj, const char *key, int64_t *out);
/* A non-negative integer. */
LF_MUST_CHECK int lf_json_get_uint(const json_t *obj, const char *key, uint64_t *out);
/* An integer or a real. */
LF_MUST_CHECK int lf_json_get_double(const json_t *obj, const char *key, double *out);
LF_MUST_CHECK int lf_json_get_bool(const json_t *obj, const char *key, bool *out);
LF_MUST_CHECK int lf_json_get_object(const json_t *obj, const char *key, json_t **out);
LF_MUST_CHECK int lf_json_get_array(const json_t *obj, const char *key, json_t **out);

/* Optional fields: 0 and *out untouched when the key is missing or null; -EINVAL on another type. */
LF_MUST_CHECK int lf_json_opt_string(const json_t *obj, const char *key, const char **out);
LF_MUST_CHECK int lf_json_opt_int(const json_t *obj, const char *key, int64_t *out);
LF_MUST_CHECK int lf_json_opt_uint(const json_t *obj, const char *key, uint64_t *out);
LF_MUST_CHECK int lf_json_opt_bool(const json_t *obj, const char *key, bool *out);

/* Appends the compact serialisation of v (keys in insertion order). 0, -ENOMEM or LF_ELIMIT; on
 * failure out is as it was. */
LF_MUST_CHECK int lf_json_dump(const json_t *v, lf_buf *out);

#endif
