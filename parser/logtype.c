/* Log type configuration (see logtype.h). */
#include "logtype.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"

int lf_logtype_init(lf_logtype *t, const char *name)
{
    memset(t, 0, sizeof *t);
    t->continuation = true;
    t->max_line = 16u << 20;
    t->name = lf_strdup(name ? name : "");
    return t->name ? 0 : -ENOMEM;
}

void lf_logtype_clear(lf_logtype *t)
{
    lf_free(t->name);
    lf_free(t->format);
    for (int i = 0; i < t->nmasks; i++)
        lf_free(t->masks[i]);
    lf_free(t->time_fields);
    lf_free(t->time_format);
    lf_free(t->timezone);
    lf_free(t->level_field);
    lf_free(t->content_field);
    lf_free(t->end_line);
    memset(t, 0, sizeof *t);
}

static int set_str(char **dst, const char *v)
{
    char *c = lf_strdup(v);
    if (!c)
        return -ENOMEM;
    lf_free(*dst);
    *dst = c;
    return 0;
}

int lf_logtype_set(lf_logtype *t, const char *key, const char *value)
{
    if (strcmp(key, "format") == 0)
        return set_str(&t->format, value);
    if (strcmp(key, "mask") == 0) {
        if (t->nmasks == LF_LOGTYPE_MAX_MASKS)
            return LF_ECONFIG;
        char *c = lf_strdup(value);
        if (!c)
            return -ENOMEM;
        t->masks[t->nmasks++] = c;
        return 0;
    }
    if (strcmp(key, "time_fields") == 0)
        return set_str(&t->time_fields, value);
    if (strcmp(key, "time_format") == 0)
        return set_str(&t->time_format, value);
    if (strcmp(key, "timezone") == 0)
        return set_str(&t->timezone, value);
    if (strcmp(key, "level_field") == 0)
        return set_str(&t->level_field, value);
    if (strcmp(key, "content_field") == 0 || strcmp(key, "message_key") == 0)
        return set_str(&t->content_field, value);
    if (strcmp(key, "continuation") == 0) {
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") || !strcmp(value, "1"))
            t->continuation = true;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") || !strcmp(value, "0"))
            t->continuation = false;
        else
            return LF_ECONFIG;
        return 0;
    }
    if (strcmp(key, "max_line") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || *end || v < 1024 || v > (1ULL << 31))
            return LF_ECONFIG;
        t->max_line = (size_t)v;
        return 0;
    }
    if (strcmp(key, "end_line") == 0) {
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &errcode, &erroff, NULL);
        if (!re)
            return LF_ECONFIG;
        pcre2_code_free(re);
        return set_str(&t->end_line, value);
    }
    if (strcmp(key, "builtin") == 0) {
        if (strcmp(value, "jsonlines") != 0)
            return LF_ECONFIG;
        t->jsonlines = true;
        t->continuation = false; /* a line that is not JSON is an event of its own */
        return 0;
    }
    return LF_ECONFIG;
}

typedef struct load_ctx {
    lf_logtypes *ts;
    const char *path;
    char *err;
    size_t errlen;
    int rc;
} load_ctx;

static lf_logtype *find_mut(lf_logtypes *ts, const char *name)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->types[i].name, name) == 0)
            return &ts->types[i];
    return NULL;
}

static int add_type(lf_logtypes *ts, const char *name, lf_logtype **out)
{
    lf_logtype *n = lf_realloc(ts->types, (ts->n + 1) * sizeof *n);
    if (!n)
        return -ENOMEM;
    ts->types = n;
    int rc = lf_logtype_init(&n[ts->n], name);
    if (rc < 0)
        return rc;
    *out = &n[ts->n++];
    return 0;
}

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    load_ctx *c = user;
    if (strncmp(section, "logtype.", 8) != 0)
        return 1;
    const char *name = section + 8;
    lf_logtype *t = find_mut(c->ts, name);
    int rc = 0;
    if (!t)
        rc = add_type(c->ts, name, &t);
    if (rc == 0)
        rc = lf_logtype_set(t, key, value);
    if (rc < 0) {
        c->rc = rc;
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen, "%s: [%s] %s: %s", c->path, section, key,
                     rc == LF_ECONFIG ? "unknown key or bad value" : lf_strerror(rc));
        return 0;
    }
    return 1;
}

int lf_logtypes_load(lf_logtypes *ts, const char *path, char *err, size_t errlen)
{
    memset(ts, 0, sizeof *ts);
    load_ctx c = {ts, path, err, errlen, 0};
    int rc = path ? ini_parse(path, on_ini, &c) : 0;
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open", path);
        lf_logtypes_free(ts);
        return rc == -1 ? -ENOENT : -ENOMEM;
    }
    if (c.rc < 0 || rc > 0) {
        if (c.rc == 0 && err && errlen)
            snprintf(err, errlen, "%s:%d: syntax error", path, rc);
        lf_logtypes_free(ts);
        return c.rc < 0 ? c.rc : LF_ECONFIG;
    }
    for (size_t i = 0; i < ts->n; i++) {
        if (!ts->types[i].jsonlines && !ts->types[i].format) {
            if (err && errlen)
                snprintf(err, errlen, "%s: [logtype.%s] needs format or builtin", path, ts->types[i].name);
            lf_logtypes_free(ts);
            return LF_ECONFIG;
        }
    }
    if (!find_mut(ts, "jsonlines")) {
        lf_logtype *t;
        rc = add_type(ts, "jsonlines", &t);
        if (rc < 0) {
            lf_logtypes_free(ts);
            return rc;
        }
        t->jsonlines = true;
        t->continuation = false;
    }
    return 0;
}

void lf_logtypes_free(lf_logtypes *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        lf_logtype_clear(&ts->types[i]);
    lf_free(ts->types);
    ts->types = NULL;
    ts->n = 0;
}

const lf_logtype *lf_logtypes_find(const lf_logtypes *ts, const char *name)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->types[i].name, name) == 0)
            return &ts->types[i];
    return NULL;
}
