#include "lf_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "lf_hex.h"

#define CFG_FILE_MAX (1024 * 1024) /* a configuration file larger than this is a mistake */
#define CFG_SECTION_MAX 128
#define CFG_SECRET_MASK "(secret)"

/* A parsed value before it is stored in the target. */
union cfg_value {
    char *s;
    char **list;
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    int e;
};

/* Where an option was set (duplicate detection and REQUIRED). sec == -1: top level. */
struct cfg_seen {
    int sec;
    size_t elem;
    size_t opt;
    unsigned line;
};

struct cfg_ctx {
    const lf_config_table *t;
    void *target;
    const char *name; /* file name for messages */
    lf_buf *err;
    int rc; /* first error; 0 while none */
    unsigned line;
    /* input */
    const char *text;
    size_t len, pos;
    char *long_value; /* full value of the current line when inih's buffer is too small */
    /* current section */
    bool in_section_known;
    char section[CFG_SECTION_MAX];
    int sec;     /* -1 top level, else index into t->sections */
    size_t elem; /* element index for sec >= 0 */
    struct cfg_seen *seen;
    size_t n_seen, cap_seen;
};

/* ---------------------------------------------------------------------------------------------- */
/* Value parsers */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Leading unsigned decimal number; -EINVAL when none, -ERANGE on overflow. */
static int parse_u64_prefix(const char *text, uint64_t *v, const char **end)
{
    const char *p = skip_space(text);
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    uint64_t n = 0;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -ERANGE;
        n = n * 10 + d;
    }
    *v = n;
    *end = p;
    return 0;
}

static int mul_check(uint64_t n, uint64_t m, uint64_t *out)
{
    if (m && n > UINT64_MAX / m)
        return -ERANGE;
    *out = n * m;
    return 0;
}

int lf_config_parse_size(const char *text, uint64_t *bytes)
{
    uint64_t n;
    const char *p;
    int rc = parse_u64_prefix(text, &n, &p);
    if (rc)
        return rc;
    p = skip_space(p);
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {
        {"", 0},    {"b", 0},    {"k", 10},   {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20},
        {"mib", 20}, {"g", 30},  {"gb", 30},  {"gib", 30}, {"t", 40},  {"tb", 40}, {"tib", 40},
    };
    char unit[8];
    size_t ul = strlen(p);
    while (ul && (p[ul - 1] == ' ' || p[ul - 1] == '\t'))
        ul--;
    if (ul >= sizeof unit)
        return -EINVAL;
    memcpy(unit, p, ul);
    unit[ul] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(unit, units[i].unit) == 0)
            return mul_check(n, (uint64_t)1 << units[i].shift, bytes);
    return -EINVAL;
}

int lf_config_parse_duration(const char *text, uint64_t *ms)
{
    uint64_t n;
    const char *p;
    int rc = parse_u64_prefix(text, &n, &p);
    if (rc)
        return rc;
    p = skip_space(p);
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    char unit[4];
    size_t ul = strlen(p);
    while (ul && (p[ul - 1] == ' ' || p[ul - 1] == '\t'))
        ul--;
    if (ul >= sizeof unit)
        return -EINVAL;
    memcpy(unit, p, ul);
    unit[ul] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].unit) == 0)
            return mul_check(n, units[i].ms, ms);
    return -EINVAL;
}

int lf_config_parse_bool(const char *text, bool *value)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *value = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *value = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int format_size(uint64_t v, lf_buf *out)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (v && u < 3 && (v & 1023) == 0) {
        v >>= 10;
        u++;
    }
    if (u < 0)
        return lf_buf_appendf(out, "%" PRIu64, v);
    return lf_buf_appendf(out, "%" PRIu64 "%c", v, units[u]);
}

static int format_duration(uint64_t ms, lf_buf *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms == 0)
        return lf_buf_append_str(out, "0s");
    for (size_t i = 0; i < 4; i++)
        if (ms % units[i].ms == 0)
            return lf_buf_appendf(out, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
    return lf_buf_appendf(out, "%" PRIu64 "ms", ms);
}

static int format_double(double d, lf_buf *out)
{
    if (d == (double)(int64_t)d && d > -1e15 && d < 1e15)
        return lf_buf_appendf(out, "%" PRId64, (int64_t)d);
    /* the shortest text that reads back as the same double */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return lf_buf_append_str(out, tmp);
}

static void free_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        lf_free(*p);
    lf_free(list);
}

static bool list_item_char_ok(char c)
{
    return c != ',' && c != '\0';
}

/* "a, b ,c" -> {"a","b","c",NULL}; "" -> {NULL}. */
static int parse_list(const char *text, char ***out, lf_buf *why)
{
    size_t n = 0;
    const char *p = skip_space(text);
    if (*p) {
        n = 1;
        for (const char *q = p; *q; q++)
            n += *q == ',';
    }
    char **list = lf_calloc(n + 1, sizeof *list);
    if (!list)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p = skip_space(p);
        const char *end = p;
        while (list_item_char_ok(*end))
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last == p) {
            lf_buf_msgf(why, "item %zu of the list is empty", i + 1);
            free_list(list);
            return -EINVAL;
        }
        list[i] = lf_strndup(p, (size_t)(last - p));
        if (!list[i]) {
            free_list(list);
            return -ENOMEM;
        }
        p = *end ? end + 1 : end;
    }
    *out = list;
    return 0;
}

static bool has_limits(const lf_config_option *o)
{
    return o->min < o->max;
}

static int format_number(const lf_config_option *o, double v, lf_buf *out)
{
    if (o->type == LF_CFG_SIZE && v >= 0 && v < 1.8e19)
        return format_size((uint64_t)v, out);
    if (o->type == LF_CFG_DURATION && v >= 0 && v < 1.8e19)
        return format_duration((uint64_t)v, out);
    return format_double(v, out);
}

static int out_of_range(const lf_config_option *o, double v, lf_buf *why)
{
    if (!has_limits(o) || (v >= o->min && v <= o->max))
        return 0;
    /* message text: a part that does not fit is left out (lf_buf_msgf) */
    lf_buf_msgf(why, "must be between ");
    int rc = format_number(o, o->min, why);
    lf_buf_msgf(why, " and ");
    rc = format_number(o, o->max, why);
    (void)rc;
    return -ERANGE;
}

static const char *type_name(enum lf_config_type type)
{
    switch (type) {
    case LF_CFG_STRING: return "string";
    case LF_CFG_INT: return "integer";
    case LF_CFG_UINT: return "unsigned integer";
    case LF_CFG_BOOL: return "boolean";
    case LF_CFG_DOUBLE: return "number";
    case LF_CFG_SIZE: return "size";
    case LF_CFG_DURATION: return "duration";
    case LF_CFG_ENUM: return "enum";
    case LF_CFG_LIST: return "list";
    }
    return "?";
}

/* Parses text into v for option o; why receives the reason on failure. */
static int parse_value(const lf_config_option *o, const char *text, union cfg_value *v, lf_buf *why)
{
    int rc = 0;
    char *end;
    switch (o->type) {
    case LF_CFG_STRING:
        if ((o->flags & LF_CFG_SECRET) && strcmp(text, CFG_SECRET_MASK) == 0) {
            lf_buf_msgf(why, "\"" CFG_SECRET_MASK "\" is the mask --dump-config prints; "
                                   "put the real secret here");
            return -EINVAL;
        }
        v->s = lf_strdup(text);
        return v->s ? 0 : -ENOMEM;
    case LF_CFG_LIST:
        return parse_list(text, &v->list, why);
    case LF_CFG_INT: {
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (end == text || *end || isspace((unsigned char)*text)) {
            lf_buf_msgf(why, "\"%.80s\" is not an integer", text);
            return -EINVAL;
        }
        if (errno == ERANGE) {
            lf_buf_msgf(why, "\"%.80s\" is out of range", text);
            return -ERANGE;
        }
        v->i = n;
        return out_of_range(o, (double)n, why);
    }
    case LF_CFG_UINT: {
        errno = 0;
        if (!isdigit((unsigned char)text[0])) {
            lf_buf_msgf(why, "\"%.80s\" is not an unsigned integer", text);
            return -EINVAL;
        }
        unsigned long long n = strtoull(text, &end, 10);
        if (*end) {
            lf_buf_msgf(why, "\"%.80s\" is not an unsigned integer", text);
            return -EINVAL;
        }
        if (errno == ERANGE) {
            lf_buf_msgf(why, "\"%.80s\" is out of range", text);
            return -ERANGE;
        }
        v->u = n;
        return out_of_range(o, (double)n, why);
    }
    case LF_CFG_DOUBLE: {
        errno = 0;
        double d = strtod(text, &end);
        if (end == text || *end || isspace((unsigned char)*text) || !isfinite(d)) {
            lf_buf_msgf(why, "\"%.80s\" is not a finite number", text);
            return -EINVAL;
        }
        if (errno == ERANGE && fabs(d) > 1) {
            lf_buf_msgf(why, "\"%.80s\" is out of range", text);
            return -ERANGE;
        }
        v->d = d;
        return out_of_range(o, d, why);
    }
    case LF_CFG_BOOL:
        rc = lf_config_parse_bool(text, &v->b);
        if (rc)
            lf_buf_msgf(why, "\"%.80s\" is not a boolean (true/false, yes/no, on/off, 1/0)", text);
        return rc;
    case LF_CFG_SIZE:
        rc = lf_config_parse_size(text, &v->u);
        if (rc) {
            lf_buf_msgf(why, rc == -ERANGE ? "\"%.80s\" is too large"
                                              : "\"%.80s\" is not a size (e.g. 512, 64K, 16MiB, 2G)",
                           text);
            return rc;
        }
        return out_of_range(o, (double)v->u, why);
    case LF_CFG_DURATION:
        rc = lf_config_parse_duration(text, &v->u);
        if (rc) {
            lf_buf_msgf(why, rc == -ERANGE ? "\"%.80s\" is too long"
                                              : "\"%.80s\" is not a duration (e.g. 250ms, 30s, 5m, 2h, 7d)",
                           text);
            return rc;
        }
        return out_of_range(o, (double)v->u, why);
    case LF_CFG_ENUM:
        for (int i = 0; o->enum_values && o->enum_values[i]; i++) {
            if (strcasecmp(text, o->enum_values[i]) == 0) {
                v->e = i;
                return 0;
            }
        }
        lf_buf_msgf(why, "\"%.80s\" is not one of:", text);
        for (int i = 0; o->enum_values && o->enum_values[i]; i++)
            lf_buf_msgf(why, "%s %s", i ? "," : "", o->enum_values[i]);
        return -EINVAL;
    }
    return -EINVAL;
}

static void free_value(const lf_config_option *o, union cfg_value *v)
{
    if (o->type == LF_CFG_STRING)
        lf_free(v->s);
    else if (o->type == LF_CFG_LIST)
        free_list(v->list);
}

static void free_field(const lf_config_option *o, void *base)
{
    char *f = (char *)base + o->offset;
    if (o->type == LF_CFG_STRING) {
        lf_free(*(char **)f);
        *(char **)f = NULL;
    } else if (o->type == LF_CFG_LIST) {
        free_list(*(char ***)f);
        *(char ***)f = NULL;
    }
}

/* Moves v into the field (the field's previous value is freed). */
static void store_value(const lf_config_option *o, void *base, union cfg_value *v)
{
    char *f = (char *)base + o->offset;
    free_field(o, base);
    switch (o->type) {
    case LF_CFG_STRING: *(char **)f = v->s; break;
    case LF_CFG_LIST: *(char ***)f = v->list; break;
    case LF_CFG_INT: *(int64_t *)f = v->i; break;
    case LF_CFG_UINT:
    case LF_CFG_SIZE:
    case LF_CFG_DURATION: *(uint64_t *)f = v->u; break;
    case LF_CFG_DOUBLE: *(double *)f = v->d; break;
    case LF_CFG_BOOL: *(bool *)f = v->b; break;
    case LF_CFG_ENUM: *(int *)f = v->e; break;
    }
}

/* Parses, validates and stores; on failure the field is unchanged and why holds the reason. */
static int set_field(const lf_config_option *o, void *base, const char *text, lf_buf *why)
{
    union cfg_value v;
    memset(&v, 0, sizeof v);
    int rc = parse_value(o, text, &v, why);
    if (rc) {
        free_value(o, &v);
        if (rc == -ENOMEM && why->len == 0)
            lf_buf_msgf(why, "out of memory");
        return rc;
    }
    if (o->validate) {
        /* validate a copy of the field so a refused value never reaches the target */
        union {
            char *s;
            char **list;
            int64_t i;
            uint64_t u;
            double d;
            bool b;
            int e;
        } field;
        memset(&field, 0, sizeof field);
        switch (o->type) {
        case LF_CFG_STRING: field.s = v.s; break;
        case LF_CFG_LIST: field.list = v.list; break;
        case LF_CFG_INT: field.i = v.i; break;
        case LF_CFG_UINT:
        case LF_CFG_SIZE:
        case LF_CFG_DURATION: field.u = v.u; break;
        case LF_CFG_DOUBLE: field.d = v.d; break;
        case LF_CFG_BOOL: field.b = v.b; break;
        case LF_CFG_ENUM: field.e = v.e; break;
        }
        rc = o->validate(&field, why);
        if (rc) {
            if (why->len == 0)
                lf_buf_msgf(why, "invalid value");
            free_value(o, &v);
            return rc < 0 ? rc : -EINVAL;
        }
    }
    store_value(o, base, &v);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Tables */

static const lf_config_option *find_option(const lf_config_option *opts, size_t n, const char *section,
                                           const char *key, size_t *index)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].section, section) == 0 && strcmp(opts[i].name, key) == 0) {
            if (index)
                *index = i;
            return &opts[i];
        }
    }
    return NULL;
}

const lf_config_option *lf_config_find(const lf_config_table *t, const char *section, const char *key)
{
    return find_option(t->options, t->n_options, section, key, NULL);
}

static bool top_section_exists(const lf_config_table *t, const char *section)
{
    for (size_t i = 0; i < t->n_options; i++)
        if (strcmp(t->options[i].section, section) == 0)
            return true;
    return false;
}

static void **elem_array(const lf_config_section_table *s, void *target)
{
    return (void **)((char *)target + s->array_offset);
}

static size_t *elem_count(const lf_config_section_table *s, void *target)
{
    return (size_t *)((char *)target + s->count_offset);
}

static void *elem_at(const lf_config_section_table *s, void *target, size_t i)
{
    return (char *)*elem_array(s, target) + i * s->element_size;
}

static const char *elem_name(const lf_config_section_table *s, const void *elem)
{
    return *(char *const *)((const char *)elem + s->name_offset);
}

static bool name_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Sets every default of options (REQUIRED ones are left zero). */
static int apply_defaults(const lf_config_option *opts, size_t n, void *base, lf_buf *err,
                          const char *section_label)
{
    for (size_t i = 0; i < n; i++) {
        const lf_config_option *o = &opts[i];
        if (!o->default_value || (o->flags & LF_CFG_REQUIRED))
            continue;
        lf_buf why = LF_BUF_INIT(1024);
        int rc = set_field(o, base, o->default_value, &why);
        if (rc) {
            if (err)
                lf_buf_msgf(err, "default of [%s] %s: %s", section_label ? section_label : o->section,
                               o->name, lf_buf_cstr(&why));
            lf_buf_free(&why);
            return rc;
        }
        lf_buf_free(&why);
    }
    return 0;
}

int lf_config_defaults(const lf_config_table *t, void *target, lf_buf *err)
{
    return apply_defaults(t->options, t->n_options, target, err, NULL);
}

static void free_elements(const lf_config_section_table *s, void *target)
{
    void **arr = elem_array(s, target);
    size_t *count = elem_count(s, target);
    for (size_t i = 0; *arr && i < *count; i++) {
        void *e = elem_at(s, target, i);
        for (size_t j = 0; j < s->n_options; j++)
            free_field(&s->options[j], e);
        lf_free(*(char **)((char *)e + s->name_offset));
    }
    lf_free(*arr);
    *arr = NULL;
    *count = 0;
}

void lf_config_free(const lf_config_table *t, void *target)
{
    if (!target)
        return;
    for (size_t i = 0; i < t->n_options; i++)
        free_field(&t->options[i], target);
    for (size_t i = 0; i < t->n_sections; i++)
        free_elements(&t->sections[i], target);
}

/* Finds or creates the element NAME of repeated section s. */
static int get_element(const lf_config_section_table *s, void *target, const char *name, size_t *index,
                       lf_buf *why)
{
    size_t *count = elem_count(s, target);
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(elem_name(s, elem_at(s, target, i)), name) == 0) {
            *index = i;
            return 0;
        }
    }
    if (!*name) {
        lf_buf_msgf(why, "a [%s.NAME] section needs a name", s->prefix);
        return -EINVAL;
    }
    for (const char *p = name; *p; p++) {
        if (!name_char_ok(*p)) {
            lf_buf_msgf(why, "section name \"%s\" may only hold letters, digits, '_', '-' and '.'",
                           name);
            return -EINVAL;
        }
    }
    if (*count >= s->max_count) {
        lf_buf_msgf(why, "too many [%s.*] sections (at most %zu)", s->prefix, s->max_count);
        return LF_ELIMIT;
    }
    void **arr = elem_array(s, target);
    char *grown = lf_realloc(*arr, (*count + 1) * s->element_size);
    if (!grown) {
        lf_buf_msgf(why, "out of memory");
        return -ENOMEM;
    }
    *arr = grown;
    void *e = elem_at(s, target, *count);
    memset(e, 0, s->element_size);
    char *copy = lf_strdup(name);
    if (!copy) {
        lf_buf_msgf(why, "out of memory");
        return -ENOMEM;
    }
    *(char **)((char *)e + s->name_offset) = copy;
    (*count)++; /* counted before defaults so that lf_config_free frees what they set */
    int rc = apply_defaults(s->options, s->n_options, e, why, s->prefix);
    if (rc)
        return rc;
    *index = *count - 1;
    return 0;
}

/* Resolves a section name: -1 for a top-level section, else the index of the repeated section with
 * *elem set (the element is created when missing). */
static int resolve_section(const lf_config_table *t, void *target, const char *section, int *sec,
                           size_t *elem, lf_buf *why)
{
    if (top_section_exists(t, section)) {
        *sec = -1;
        return 0;
    }
    for (size_t i = 0; i < t->n_sections; i++) {
        const lf_config_section_table *s = &t->sections[i];
        size_t pl = strlen(s->prefix);
        if (strncmp(section, s->prefix, pl) == 0 && section[pl] == '.') {
            *sec = (int)i;
            return get_element(s, target, section + pl + 1, elem, why);
        }
    }
    lf_buf_msgf(why, "unknown section");
    return -EINVAL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Loading */

static int ctx_fail(struct cfg_ctx *c, int code, const char *section, const char *key, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

static int ctx_fail(struct cfg_ctx *c, int code, const char *section, const char *key, const char *fmt,
                    ...)
{
    if (c->rc)
        return c->rc;
    c->rc = code ? code : LF_ECONFIG;
    if (!c->err)
        return c->rc;
    lf_buf_reset(c->err);
    if (c->line)
        lf_buf_msgf(c->err, "%s:%u: ", c->name, c->line);
    else
        lf_buf_msgf(c->err, "%s: ", c->name);
    if (section && key)
        lf_buf_msgf(c->err, "[%s] %s: ", section, key);
    else if (section)
        lf_buf_msgf(c->err, "[%s]: ", section);
    va_list ap;
    va_start(ap, fmt);
    int text = lf_buf_vappendf(c->err, fmt, ap);
    (void)text; /* message text: left out when it does not fit (as lf_buf_msgf) */
    va_end(ap);
    return c->rc;
}

static int mark_seen(struct cfg_ctx *c, size_t opt, const char *section, const char *key, bool from_file)
{
    for (size_t i = 0; i < c->n_seen; i++) {
        struct cfg_seen *s = &c->seen[i];
        if (s->sec == c->sec && s->opt == opt && (c->sec < 0 || s->elem == c->elem)) {
            if (from_file && s->line)
                return ctx_fail(c, LF_ECONFIG, section, key, "set twice (first on line %u)", s->line);
            return 0;
        }
    }
    if (c->n_seen == c->cap_seen) {
        size_t cap = c->cap_seen ? c->cap_seen * 2 : 32;
        struct cfg_seen *p = lf_realloc(c->seen, cap * sizeof *p);
        if (!p)
            return ctx_fail(c, -ENOMEM, section, key, "out of memory");
        c->seen = p;
        c->cap_seen = cap;
    }
    c->seen[c->n_seen++] = (struct cfg_seen){c->sec, c->elem, opt, from_file ? c->line : 0};
    return 0;
}

/* A value in double quotes: strips them and decodes \" \\ \n \t \r \xHH. */
static int unquote(const char *in, char **out)
{
    size_t n = strlen(in);
    if (n < 2 || in[n - 1] != '"')
        return -EINVAL;
    char *s = lf_malloc(n);
    if (!s)
        return -ENOMEM;
    size_t o = 0;
    for (size_t i = 1; i < n - 1; i++) {
        char ch = in[i];
        if (ch == '"')
            goto bad;
        if (ch == '\\') {
            if (i + 1 >= n - 1)
                goto bad;
            ch = in[++i];
            switch (ch) {
            case '"': case '\\': break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'x': {
                if (i + 2 >= n - 1)
                    goto bad;
                int hi = lf_hex_value(in[i + 1]), lo = lf_hex_value(in[i + 2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                    goto bad;
                ch = (char)(hi * 16 + lo);
                i += 2;
                break;
            }
            default: goto bad;
            }
        }
        s[o++] = ch;
    }
    s[o] = '\0';
    *out = s;
    return 0;
bad:
    lf_free(s);
    return -EINVAL;
}

/* Appends key, value to the "*" list of a free-form element once its validate hook accepted them. */
static int add_pair(const lf_config_option *any, void *elem, const char *key, const char *value, lf_buf *why)
{
    for (const char *p = key; *p || p == key; p++) {
        if (!name_char_ok(*p)) {
            lf_buf_msgf(why, "a key may only hold letters, digits, '_', '-' and '.'");
            return -EINVAL;
        }
    }
    if (any->validate) {
        const char *const pair[2] = {key, value};
        int rc = any->validate(pair, why);
        if (rc) {
            if (why->len == 0)
                lf_buf_msgf(why, "invalid");
            return rc < 0 ? rc : -EINVAL;
        }
    }
    char ***pairs = (char ***)((char *)elem + any->offset);
    size_t n = 0;
    while (*pairs && (*pairs)[n])
        n++;
    char **grown = lf_realloc(*pairs, (n + 3) * sizeof *grown);
    if (!grown) {
        lf_buf_msgf(why, "out of memory");
        return -ENOMEM;
    }
    *pairs = grown;
    grown[n] = NULL;
    char *k = lf_strdup(key), *v = k ? lf_strdup(value) : NULL;
    if (!k || !v) {
        lf_free(k);
        lf_buf_msgf(why, "out of memory");
        return -ENOMEM;
    }
    grown[n] = k;
    grown[n + 1] = v;
    grown[n + 2] = NULL;
    return 0;
}

static bool is_any_key(const lf_config_option *o)
{
    return strcmp(o->name, LF_CFG_ANY_KEY) == 0 && o->type == LF_CFG_LIST;
}

/* Sets section.key = raw value (quotes not yet removed) in the context's current section. */
static int ctx_set(struct cfg_ctx *c, const char *section, const char *key, const char *raw,
                   bool from_file)
{
    const lf_config_option *opts = c->t->options;
    size_t n = c->t->n_options;
    void *base = c->target;
    const char *label = section;
    size_t idx = 0;
    const lf_config_option *o = NULL, *any = NULL;
    if (c->sec >= 0) {
        /* options of a repeated section are matched by name; their section field is documentation */
        const lf_config_section_table *s = &c->t->sections[c->sec];
        opts = s->options;
        n = s->n_options;
        base = elem_at(s, c->target, c->elem);
        label = c->section;
        for (size_t i = 0; i < n && !o; i++)
            if (strcmp(opts[i].name, key) == 0 && !is_any_key(&opts[i]))
                o = &opts[(idx = i)];
        for (size_t i = 0; i < n && !o && !any; i++)
            if (is_any_key(&opts[i]))
                any = &opts[i];
    } else {
        o = find_option(opts, n, section, key, &idx);
    }
    bool free_form = !o && any;
    if (!o && !free_form)
        return ctx_fail(c, LF_ECONFIG, label, key, "unknown key");
    int rc = o ? mark_seen(c, idx, label, key, from_file) : 0;
    if (rc)
        return rc;
    char *unq = NULL;
    const char *value = raw;
    if (raw[0] == '"') {
        rc = unquote(raw, &unq);
        if (rc == -ENOMEM)
            return ctx_fail(c, rc, label, key, "out of memory");
        if (rc)
            return ctx_fail(c, LF_ECONFIG, label, key,
                            "bad quoted value (escapes: \\\" \\\\ \\n \\t \\r \\xHH)");
        value = unq;
    }
    lf_buf why = LF_BUF_INIT(2048);
    if (free_form)
        rc = add_pair(any, base, key, value, &why);
    else
        rc = set_field(o, base, value, &why);
    if (rc)
        ctx_fail(c, rc == -ENOMEM ? rc : LF_ECONFIG, label, key, "%s", lf_buf_cstr(&why));
    lf_buf_free(&why);
    lf_free(unq);
    return c->rc;
}

static int cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    struct cfg_ctx *c = user;
    if (c->rc)
        return 0;
    if (!c->in_section_known) {
        /* keys before any section header: the "" section */
        c->sec = -1;
        if (*section == '\0' && !top_section_exists(c->t, ""))
            return ctx_fail(c, LF_ECONFIG, NULL, NULL, "%s: key outside of any section", name), 0;
        c->in_section_known = true;
    }
    if (c->long_value && strcmp(value, "\x01") == 0)
        value = c->long_value;
    return ctx_set(c, c->section, name, value, true) == 0;
}

/* inih strips a trailing "; comment" preceded by whitespace and surrounding whitespace; the long-line
 * path does the same so both paths read a value identically. */
static void strip_value(char *v)
{
    for (char *p = v; *p; p++) {
        if (*p == ';' && p > v && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
        v[--n] = '\0';
    char *s = v;
    while (isspace((unsigned char)*s))
        s++;
    memmove(v, s, strlen(s) + 1);
}

/* A quoted value: keeps the quotes and what is between them, drops a trailing comment. Text after
 * the closing quote other than a comment is kept, so that unquote() refuses it. */
static void strip_quoted(char *v)
{
    char *s = v;
    while (isspace((unsigned char)*s))
        s++;
    char *p = s + 1;
    while (*p && *p != '"')
        p += (*p == '\\' && p[1]) ? 2 : 1;
    if (*p == '"') {
        char *rest = p + 1;
        while (isspace((unsigned char)*rest))
            rest++;
        if (*rest == '\0' || *rest == ';' || *rest == '#')
            p[1] = '\0';
    }
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    memmove(v, s, n + 1);
}

/* inih splits a key line at the first '=' or ':'; so do we. */
static const char *find_delimiter(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] == '=' || line[i] == ':')
            return line + i;
    return NULL;
}

/* inih's reader: hands it one line at a time so that we know the line number, see section headers
 * (inih reports only keys) and can carry lines longer than inih's fixed buffer. */
static char *cfg_ini_reader(char *str, int num, void *stream)
{
    struct cfg_ctx *c = stream;
    lf_free(c->long_value);
    c->long_value = NULL;
    if (c->rc || c->pos >= c->len || num < 8)
        return NULL;
    const char *start = c->text + c->pos;
    const char *nl = memchr(start, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - start) : c->len - c->pos;
    c->pos += n + (nl ? 1 : 0);
    c->line++;
    if (memchr(start, '\0', n)) {
        ctx_fail(c, LF_ECONFIG, NULL, NULL, "NUL byte in line");
        return NULL;
    }
    if (c->line == 1 && n >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) {
        start += 3;
        n -= 3;
    }
    if (n && start[n - 1] == '\r')
        n--;
    /* Leading whitespace (any isspace, as inih sees it) would make inih treat the line as a
     * continuation of the previous value; indentation is only layout here. */
    while (n && isspace((unsigned char)*start)) {
        start++;
        n--;
    }
    if (n && *start == '[') {
        const char *close = memchr(start, ']', n);
        size_t sl = close ? (size_t)(close - start - 1) : 0;
        if (!close) {
            ctx_fail(c, LF_ECONFIG, NULL, NULL, "syntax error: section header without ']'");
            return NULL;
        }
        if (sl >= sizeof c->section) {
            ctx_fail(c, LF_ECONFIG, NULL, NULL, "section name longer than %zu bytes",
                     sizeof c->section - 1);
            return NULL;
        }
        memcpy(c->section, start + 1, sl);
        c->section[sl] = '\0';
        for (const char *p = close + 1; p < start + n; p++) {
            if (*p == ';' || *p == '#')
                break;
            if (!isspace((unsigned char)*p)) {
                ctx_fail(c, LF_ECONFIG, c->section, NULL, "syntax error: text after ']'");
                return NULL;
            }
        }
        lf_buf why = LF_BUF_INIT(512);
        int rc = resolve_section(c->t, c->target, c->section, &c->sec, &c->elem, &why);
        if (rc)
            ctx_fail(c, rc == -ENOMEM ? rc : LF_ECONFIG, c->section, NULL, "%s", lf_buf_cstr(&why));
        lf_buf_free(&why);
        if (rc)
            return NULL;
        c->in_section_known = true;
        /* inih sees the header too, so that it passes the section to the handler */
        if (sl + 3 > (size_t)num) {
            ctx_fail(c, LF_ECONFIG, c->section, NULL, "section name too long");
            return NULL;
        }
        memcpy(str, start, sl + 2);
        str[sl + 2] = '\n';
        str[sl + 3] = '\0';
        return str;
    }
    const char *eq = find_delimiter(start, n);
    bool comment = *start == ';' || *start == '#';
    bool quoted = false;
    if (eq && !comment) {
        const char *v = eq + 1;
        while (v < start + n && (*v == ' ' || *v == '\t'))
            v++;
        quoted = v < start + n && *v == '"';
    }
    if (n + 2 <= (size_t)num && !quoted) {
        memcpy(str, start, n);
        str[n] = '\n';
        str[n + 1] = '\0';
        return str;
    }
    /* Too long for inih's buffer, or quoted (inih would cut at " ;" inside the quotes): give inih
     * "key=\x01" and keep the value here. */
    if (comment) {
        str[0] = ';';
        str[1] = '\n';
        str[2] = '\0';
        return str;
    }
    if (!eq || (size_t)(eq - start) + 4 > (size_t)num) {
        ctx_fail(c, LF_ECONFIG, c->section[0] ? c->section : NULL, NULL,
                 "syntax error: line of %zu bytes without a short 'key = ' part", n);
        return NULL;
    }
    c->long_value = lf_strndup(eq + 1, n - (size_t)(eq - start) - 1);
    if (!c->long_value) {
        ctx_fail(c, -ENOMEM, NULL, NULL, "out of memory");
        return NULL;
    }
    if (quoted)
        strip_quoted(c->long_value);
    else
        strip_value(c->long_value);
    size_t kl = (size_t)(eq - start);
    memcpy(str, start, kl);
    memcpy(str + kl, "=\x01\n", 4);
    return str;
}

static int check_required(struct cfg_ctx *c)
{
    c->line = 0;
    for (size_t i = 0; i < c->t->n_options; i++) {
        const lf_config_option *o = &c->t->options[i];
        if (!(o->flags & LF_CFG_REQUIRED))
            continue;
        bool seen = false;
        for (size_t k = 0; k < c->n_seen && !seen; k++)
            seen = c->seen[k].sec < 0 && c->seen[k].opt == i;
        if (!seen)
            return ctx_fail(c, LF_ECONFIG, o->section, o->name, "required, but not set");
    }
    for (size_t si = 0; si < c->t->n_sections; si++) {
        const lf_config_section_table *s = &c->t->sections[si];
        for (size_t e = 0; e < *elem_count(s, c->target); e++) {
            for (size_t i = 0; i < s->n_options; i++) {
                if (!(s->options[i].flags & LF_CFG_REQUIRED))
                    continue;
                bool seen = false;
                for (size_t k = 0; k < c->n_seen && !seen; k++)
                    seen = c->seen[k].sec == (int)si && c->seen[k].elem == e && c->seen[k].opt == i;
                if (!seen) {
                    char label[CFG_SECTION_MAX + 64];
                    snprintf(label, sizeof label, "%s.%s", s->prefix, elem_name(s, elem_at(s, c->target, e)));
                    return ctx_fail(c, LF_ECONFIG, label, s->options[i].name, "required, but not set");
                }
            }
        }
    }
    return 0;
}

/* Reads the whole file (a regular file, or /dev/null, a pipe...) of at most CFG_FILE_MAX bytes. */
static int read_file(const char *path, char **out, size_t *len, lf_buf *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (err)
            lf_buf_msgf(err, "%s: %s", path, strerror(e));
        return -e;
    }
    lf_buf text = LF_BUF_INIT(CFG_FILE_MAX + 1); /* one more byte tells a file that is too large */
    int rc = 0;
    for (;;) {
        size_t want = text.max - text.len < 65536 ? text.max - text.len : 65536;
        if (want == 0) {
            if (err)
                lf_buf_msgf(err, "%s: larger than %d bytes", path, CFG_FILE_MAX);
            rc = LF_ECONFIG;
            break;
        }
        if ((rc = lf_buf_reserve(&text, want)) != 0)
            break;
        ssize_t r = read(fd, text.data + text.len, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            if (err)
                lf_buf_msgf(err, "%s: %s", path, strerror(-rc));
            break;
        }
        if (r == 0)
            break;
        text.len += (size_t)r;
        text.data[text.len] = '\0';
    }
    close(fd);
    if (rc) {
        lf_buf_free(&text);
        return rc;
    }
    *len = text.len;
    *out = text.data ? lf_buf_steal(&text, len) : lf_strdup("");
    if (!*out)
        return -ENOMEM;
    return 0;
}

/* Splits "section.key=value" at '=' and the last '.' before it. */
static int split_override(const char *ov, char *section, size_t ssize, char *key, size_t ksize,
                          const char **value)
{
    const char *eq = strchr(ov, '=');
    if (!eq)
        return -EINVAL;
    const char *dot = NULL;
    for (const char *p = ov; p < eq; p++)
        if (*p == '.')
            dot = p;
    if (!dot || dot == ov || dot + 1 == eq)
        return -EINVAL;
    size_t sl = (size_t)(dot - ov), kl = (size_t)(eq - dot - 1);
    if (sl >= ssize || kl >= ksize)
        return -EINVAL;
    memcpy(section, ov, sl);
    section[sl] = '\0';
    memcpy(key, dot + 1, kl);
    key[kl] = '\0';
    *value = eq + 1;
    return 0;
}

static int set_in_ctx(struct cfg_ctx *c, const char *section, const char *key, const char *value)
{
    lf_buf why = LF_BUF_INIT(512);
    int rc = resolve_section(c->t, c->target, section, &c->sec, &c->elem, &why);
    if (rc)
        ctx_fail(c, rc == -ENOMEM ? rc : LF_ECONFIG, section, NULL, "%s", lf_buf_cstr(&why));
    lf_buf_free(&why);
    if (rc)
        return c->rc;
    snprintf(c->section, sizeof c->section, "%s", section);
    return ctx_set(c, section, key, value, false);
}

static int load(const lf_config_table *t, void *target, const char *text, size_t len, const char *name,
                const char *const *overrides, size_t n_overrides, lf_buf *err)
{
    struct cfg_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.target = target;
    c.name = name;
    c.err = err;
    c.text = text;
    c.len = len;
    c.sec = -1;
    if (err)
        lf_buf_reset(err);
    int rc = lf_config_defaults(t, target, err);
    if (rc)
        return rc;
    if (text) {
        rc = ini_parse_stream(cfg_ini_reader, &c, cfg_ini_handler, &c);
        lf_free(c.long_value);
        c.long_value = NULL;
        if (!c.rc && rc > 0) {
            c.line = (unsigned)rc;
            ctx_fail(&c, LF_ECONFIG, NULL, NULL, "syntax error: expected 'key = value' or '[section]'");
        } else if (!c.rc && rc < 0) {
            ctx_fail(&c, rc == -2 ? -ENOMEM : LF_ECONFIG, NULL, NULL, "cannot parse");
        }
    }
    c.name = "--set";
    for (size_t i = 0; i < n_overrides && !c.rc; i++) {
        char section[CFG_SECTION_MAX], key[128];
        const char *value;
        c.line = 0;
        if (split_override(overrides[i], section, sizeof section, key, sizeof key, &value) != 0) {
            ctx_fail(&c, LF_ECONFIG, NULL, NULL, "\"%s\": expected section.key=value", overrides[i]);
            break;
        }
        set_in_ctx(&c, section, key, value);
    }
    c.name = name;
    if (!c.rc)
        check_required(&c);
    lf_free(c.seen);
    return c.rc;
}

int lf_config_load_string(const lf_config_table *t, void *target, const char *text, const char *name,
                          lf_buf *err)
{
    return load(t, target, text, strlen(text), name, NULL, 0, err);
}

int lf_config_load_overrides(const lf_config_table *t, void *target, const char *path,
                             const char *const *overrides, size_t n_overrides, lf_buf *err)
{
    char *text = NULL;
    size_t len = 0;
    if (err)
        lf_buf_reset(err);
    if (path) {
        int rc = read_file(path, &text, &len, err);
        if (rc)
            return rc;
    }
    int rc = load(t, target, text, len, path ? path : "(defaults)", overrides, n_overrides, err);
    lf_free(text);
    return rc;
}

int lf_config_load(const lf_config_table *t, void *target, const char *path, lf_buf *err)
{
    return lf_config_load_overrides(t, target, path, NULL, 0, err);
}

int lf_config_set(const lf_config_table *t, void *target, const char *section, const char *key,
                  const char *value, lf_buf *err)
{
    struct cfg_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.target = target;
    c.name = "--set";
    c.err = err;
    c.sec = -1;
    set_in_ctx(&c, section, key, value);
    lf_free(c.seen);
    return c.rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Dump */

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]) || s[0] == '"')
        return true;
    for (const char *p = s; *p; p++)
        if (*p == ';' || *p == '#' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static int append_quoted(lf_buf *out, const char *s)
{
    int rc = lf_buf_append_char(out, '"');
    for (const char *p = s; *p && !rc; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            rc = lf_buf_appendf(out, "\\%c", ch);
        else if (ch == '\n')
            rc = lf_buf_append_str(out, "\\n");
        else if (ch == '\t')
            rc = lf_buf_append_str(out, "\\t");
        else if (ch == '\r')
            rc = lf_buf_append_str(out, "\\r");
        else if (ch < 0x20 || ch == 0x7f || ch == ';' || ch == '#')
            rc = lf_buf_appendf(out, "\\x%02x", ch);
        else
            rc = lf_buf_append_char(out, (char)ch);
    }
    return rc ? rc : lf_buf_append_char(out, '"');
}

static int format_field(const lf_config_option *o, const void *base, lf_buf *out, bool for_ini)
{
    const char *f = (const char *)base + o->offset;
    switch (o->type) {
    case LF_CFG_STRING: {
        const char *s = *(char *const *)f;
        if (s && (o->flags & LF_CFG_SECRET))
            return lf_buf_append_str(out, CFG_SECRET_MASK);
        if (s && for_ini && needs_quotes(s))
            return append_quoted(out, s);
        return s ? lf_buf_append_str(out, s) : 0;
    }
    case LF_CFG_LIST: {
        char *const *l = *(char **const *)f;
        lf_buf joined = LF_BUF_INIT(1 << 20);
        int rc = 0;
        for (size_t i = 0; l && l[i] && !rc; i++)
            rc = lf_buf_appendf(&joined, "%s%s", i ? ", " : "", l[i]);
        if (!rc && for_ini && joined.len && needs_quotes(lf_buf_cstr(&joined)))
            rc = append_quoted(out, lf_buf_cstr(&joined));
        else if (!rc)
            rc = lf_buf_append_str(out, lf_buf_cstr(&joined));
        lf_buf_free(&joined);
        return rc;
    }
    case LF_CFG_INT: return lf_buf_appendf(out, "%" PRId64, *(const int64_t *)f);
    case LF_CFG_UINT: return lf_buf_appendf(out, "%" PRIu64, *(const uint64_t *)f);
    case LF_CFG_SIZE: return format_size(*(const uint64_t *)f, out);
    case LF_CFG_DURATION: return format_duration(*(const uint64_t *)f, out);
    case LF_CFG_DOUBLE: return format_double(*(const double *)f, out);
    case LF_CFG_BOOL: return lf_buf_append_str(out, *(const bool *)f ? "true" : "false");
    case LF_CFG_ENUM: {
        int e = *(const int *)f;
        int n = 0;
        while (o->enum_values && o->enum_values[n])
            n++;
        return lf_buf_append_str(out, e >= 0 && e < n ? o->enum_values[e] : "?");
    }
    }
    return -EINVAL;
}

int lf_config_format_value(const lf_config_option *o, const void *target, lf_buf *out)
{
    return format_field(o, target, out, false);
}

static bool field_unset(const lf_config_option *o, const void *base)
{
    const char *f = (const char *)base + o->offset;
    if (o->type == LF_CFG_STRING)
        return *(char *const *)f == NULL;
    if (o->type == LF_CFG_LIST)
        return *(char **const *)f == NULL;
    return false;
}

static int dump_options(const lf_config_option *opts, size_t n, const char *section, const void *base,
                        lf_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const lf_config_option *o = &opts[i];
        if (section && strcmp(o->section, section) != 0)
            continue;
        if (is_any_key(o)) {
            char *const *pairs = *(char **const *)((const char *)base + o->offset);
            for (size_t k = 0; !rc && pairs && pairs[k] && pairs[k + 1]; k += 2) {
                rc = lf_buf_appendf(out, "%s = ", pairs[k]);
                if (!rc && needs_quotes(pairs[k + 1]))
                    rc = append_quoted(out, pairs[k + 1]);
                else if (!rc)
                    rc = lf_buf_append_str(out, pairs[k + 1]);
                rc = rc ? rc : lf_buf_append_char(out, '\n');
            }
            continue;
        }
        if (field_unset(o, base)) {
            rc = lf_buf_appendf(out, "# %s = (unset)\n", o->name);
            continue;
        }
        rc = lf_buf_appendf(out, "%s = ", o->name);
        rc = rc ? rc : format_field(o, base, out, true);
        rc = rc ? rc : lf_buf_append_char(out, '\n');
    }
    return rc;
}

int lf_config_dump(const lf_config_table *t, const void *target, FILE *out)
{
    lf_buf b = LF_BUF_INIT(16 << 20);
    int rc = lf_buf_appendf(&b, "# %s: effective configuration\n", t->program);
    /* the "" section first: its keys must come before any header */
    rc = rc ? rc : dump_options(t->options, t->n_options, "", target, &b);
    for (size_t i = 0; i < t->n_options && !rc; i++) {
        const char *section = t->options[i].section;
        if (!*section)
            continue;
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = strcmp(t->options[j].section, section) != 0;
        if (!first)
            continue;
        rc = lf_buf_appendf(&b, "\n[%s]\n", section);
        rc = rc ? rc : dump_options(t->options, t->n_options, section, target, &b);
    }
    for (size_t si = 0; si < t->n_sections && !rc; si++) {
        const lf_config_section_table *s = &t->sections[si];
        size_t count = *(const size_t *)((const char *)target + s->count_offset);
        const char *arr = *(char *const *)((const char *)target + s->array_offset);
        for (size_t e = 0; e < count && !rc; e++) {
            const void *elem = arr + e * s->element_size;
            rc = lf_buf_appendf(&b, "\n[%s.%s]\n", s->prefix, elem_name(s, elem));
            rc = rc ? rc : dump_options(s->options, s->n_options, NULL, elem, &b);
        }
    }
    /* all or nothing: a configuration dump cut short would read as a different configuration */
    size_t len = b.len;
    if (rc == 0 && fwrite(lf_buf_cstr(&b), 1, len, out) != len)
        rc = -EIO;
    lf_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reload */

static bool lists_equal(char *const *la, char *const *lb)
{
    if (!la || !lb)
        return la == lb;
    size_t i = 0;
    for (; la[i] && lb[i]; i++)
        if (strcmp(la[i], lb[i]) != 0)
            return false;
    return la[i] == lb[i];
}

static bool fields_equal(const lf_config_option *o, const void *a, const void *b)
{
    const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;
    switch (o->type) {
    case LF_CFG_STRING: {
        const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
        return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
    }
    case LF_CFG_LIST: {
        return lists_equal(*(char **const *)fa, *(char **const *)fb);
    }
    case LF_CFG_INT: return *(const int64_t *)fa == *(const int64_t *)fb;
    case LF_CFG_UINT:
    case LF_CFG_SIZE:
    case LF_CFG_DURATION: return *(const uint64_t *)fa == *(const uint64_t *)fb;
    case LF_CFG_DOUBLE: return memcmp(fa, fb, sizeof(double)) == 0;
    case LF_CFG_BOOL: return *(const bool *)fa == *(const bool *)fb;
    case LF_CFG_ENUM: return *(const int *)fa == *(const int *)fb;
    }
    return false;
}

static size_t field_size(enum lf_config_type type)
{
    switch (type) {
    case LF_CFG_STRING: return sizeof(char *);
    case LF_CFG_LIST: return sizeof(char **);
    case LF_CFG_INT: return sizeof(int64_t);
    case LF_CFG_UINT:
    case LF_CFG_SIZE:
    case LF_CFG_DURATION: return sizeof(uint64_t);
    case LF_CFG_DOUBLE: return sizeof(double);
    case LF_CFG_BOOL: return sizeof(bool);
    case LF_CFG_ENUM: return sizeof(int);
    }
    return 0;
}

static void swap_bytes(void *a, void *b, size_t n)
{
    unsigned char tmp[16];
    while (n) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        memcpy(tmp, a, k);
        memcpy(a, b, k);
        memcpy(b, tmp, k);
        a = (char *)a + k;
        b = (char *)b + k;
        n -= k;
    }
}

/* 0: equal; 1: only reloadable options of the same elements changed; 2: anything else changed. */
static int sections_diff(const lf_config_section_table *s, void *a, void *b)
{
    if (*elem_count(s, a) != *elem_count(s, b))
        return 2;
    int diff = 0;
    for (size_t e = 0; e < *elem_count(s, a); e++) {
        void *ea = elem_at(s, a, e), *eb = elem_at(s, b, e);
        if (strcmp(elem_name(s, ea), elem_name(s, eb)) != 0)
            return 2;

        for (size_t i = 0; i < s->n_options; i++) {
            if (fields_equal(&s->options[i], ea, eb))
                continue;
            if (!(s->options[i].flags & LF_CFG_RELOADABLE))
                return 2;
            diff = 1;
        }
    }
    return diff;
}

static void list_append(lf_buf *list, const char *item)
{
    lf_buf_msgf(list, "%s%s", list && list->len ? ", " : "", item); /* for the log */
}

int lf_config_reload_overrides(const lf_config_table *t, void *current, const char *path,
                               const char *const *overrides, size_t n_overrides, lf_buf *changed,
                               lf_buf *needs_restart, lf_buf *err)
{
    void *fresh = lf_calloc(1, t->target_size);
    if (!fresh) {
        if (err)
            lf_buf_msgf(err, "out of memory");
        return -ENOMEM;
    }
    int rc = lf_config_load_overrides(t, fresh, path, overrides, n_overrides, err);
    if (rc) {
        lf_config_free(t, fresh);
        lf_free(fresh);
        return rc;
    }
    char label[CFG_SECTION_MAX + 160];
    for (size_t i = 0; i < t->n_options; i++) {
        const lf_config_option *o = &t->options[i];
        if (fields_equal(o, current, fresh))
            continue;
        snprintf(label, sizeof label, "[%s] %s", o->section, o->name);
        if (o->flags & LF_CFG_RELOADABLE) {
            swap_bytes((char *)current + o->offset, (char *)fresh + o->offset, field_size(o->type));
            list_append(changed, label);
        } else {
            list_append(needs_restart, label);
        }
    }
    for (size_t si = 0; si < t->n_sections; si++) {
        const lf_config_section_table *s = &t->sections[si];
        int diff = sections_diff(s, current, fresh);
        if (diff == 0)
            continue;
        snprintf(label, sizeof label, "[%s.*]", s->prefix);
        if (diff == 1) {
            swap_bytes(elem_array(s, current), elem_array(s, fresh), sizeof(void *));
            list_append(changed, label);
        } else {
            list_append(needs_restart, label);
        }
    }
    lf_config_free(t, fresh);
    lf_free(fresh);
    return 0;
}

int lf_config_reload(const lf_config_table *t, void *current, const char *path, lf_buf *needs_restart,
                     lf_buf *err)
{
    return lf_config_reload_overrides(t, current, path, NULL, 0, NULL, needs_restart, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Markdown reference */

bool lf_config_section_first(const lf_config_table *t, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(t->options[j].section, t->options[i].section) == 0)
            return false;
    return true;
}

static int md_escape(lf_buf *b, const char *s)
{
    int rc = 0;
    for (; s && *s && !rc; s++) {
        if (*s == '|')
            rc = lf_buf_append_str(b, "\\|");
        else if (*s == '\n')
            rc = lf_buf_append_char(b, ' ');
        else
            rc = lf_buf_append_char(b, *s);
    }
    return rc;
}

static int md_type(lf_buf *b, const lf_config_option *o)
{
    int rc = lf_buf_append_str(b, type_name(o->type));
    if (!rc && o->type == LF_CFG_ENUM) {
        rc = lf_buf_append_str(b, ": ");
        for (int i = 0; !rc && o->enum_values && o->enum_values[i]; i++)
            rc = lf_buf_appendf(b, "%s`%s`", i ? ", " : "", o->enum_values[i]);
    }
    if (!rc && has_limits(o)) {
        rc = lf_buf_append_str(b, " (");
        rc = rc ? rc : format_number(o, o->min, b);
        rc = rc ? rc : lf_buf_append_str(b, " to ");
        rc = rc ? rc : format_number(o, o->max, b);
        rc = rc ? rc : lf_buf_append_char(b, ')');
    }
    return rc;
}

static int md_default(lf_buf *b, const lf_config_option *o)
{
    if (o->flags & LF_CFG_REQUIRED)
        return lf_buf_append_str(b, "**required**");
    if (!o->default_value)
        return lf_buf_append_str(b, "unset");
    if (!*o->default_value)
        return lf_buf_append_str(b, "empty");
    int rc = lf_buf_append_char(b, '`');
    rc = rc ? rc : md_escape(b, o->default_value);
    return rc ? rc : lf_buf_append_char(b, '`');
}

static int md_options(lf_buf *b, const lf_config_option *opts, size_t n, const char *section)
{
    int rc = lf_buf_append_str(b, "| key | type | default | reload | description |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < n && !rc; i++) {
        const lf_config_option *o = &opts[i];
        if (section && strcmp(o->section, section) != 0)
            continue;
        const char *reload = (o->flags & LF_CFG_RELOADABLE) ? "SIGHUP" : "restart";
        if (is_any_key(o)) {
            rc = lf_buf_appendf(b, "| any other key | string, may repeat | | %s | ", reload);
        } else {
            rc = lf_buf_appendf(b, "| `%s` | ", o->name);
            rc = rc ? rc : md_type(b, o);
            rc = rc ? rc : lf_buf_append_str(b, " | ");
            rc = rc ? rc : md_default(b, o);
            rc = rc ? rc : lf_buf_appendf(b, " | %s | ", reload);
        }
        rc = rc ? rc : md_escape(b, o->description);
        if (!rc && !is_any_key(o) && (o->flags & LF_CFG_SECRET))
            rc = lf_buf_append_str(b, " Secret: masked in `--dump-config`.");
        rc = rc ? rc : lf_buf_append_str(b, " |\n");
    }
    return rc;
}

int lf_config_write_markdown(const lf_config_table *const *tables, size_t n, FILE *out)
{
    lf_buf b = LF_BUF_INIT(16 << 20);
    int rc = lf_buf_append_str(&b,
        "# Configuration reference\n\n"
        "<!-- Generated by logferry-config-docs from the programs' configuration tables; "
        "do not edit. -->\n\n"
        "Each program reads one INI file (`--config PATH`, default below). Unknown sections and keys "
        "are errors, reported with file, line and key. `--set section.key=value` overrides one "
        "option, `--dump-config` prints the effective configuration (loadable again) and "
        "`--check-config` only validates it. On SIGHUP the file is read again: options marked "
        "SIGHUP take effect at once, a change to any other option is logged as needing a restart "
        "and the running value is kept.\n\n"
        "Value types: **size** in bytes with an optional K, M, G or T suffix (powers of 1024: "
        "`64K`, `16MiB`); **duration** with a unit `ms`, `s`, `m`, `h` or `d` (`250ms`, `30s`; a "
        "bare number is seconds); **boolean** `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`; "
        "**list** comma-separated; a value may be double-quoted with C escapes (`\\\"`, `\\\\`, "
        "`\\n`, `\\t`, `\\xHH`) to keep spaces, `;` or `#`.\n");
    for (size_t ti = 0; ti < n && !rc; ti++) {
        const lf_config_table *t = tables[ti];
        rc = lf_buf_appendf(&b, "\n## %s\n\n", t->program);
        if (!rc && t->description)
            rc = lf_buf_appendf(&b, "%s\n\n", t->description);
        rc = rc ? rc : lf_buf_appendf(&b, "Default file: `%s`\n", t->default_path ? t->default_path : "(none)");
        for (size_t i = 0; i < t->n_options && !rc; i++) {
            const char *section = t->options[i].section;
            if (!lf_config_section_first(t, i))
                continue;
            if (*section)
                rc = lf_buf_appendf(&b, "\n### `[%s]`\n\n", section);
            else
                rc = lf_buf_append_str(&b, "\n### Before any section\n\n");
            rc = rc ? rc : md_options(&b, t->options, t->n_options, section);
        }
        for (size_t si = 0; si < t->n_sections && !rc; si++) {
            const lf_config_section_table *s = &t->sections[si];
            rc = lf_buf_appendf(&b, "\n### `[%s.NAME]` (repeated, up to %zu)\n\n", s->prefix, s->max_count);
            if (!rc && s->description)
                rc = lf_buf_appendf(&b, "%s\n\n", s->description);
            rc = rc ? rc : md_options(&b, s->options, s->n_options, NULL);
        }
    }
    size_t len = b.len;
    if (rc == 0 && fwrite(lf_buf_cstr(&b), 1, len, out) != len)
        rc = -EIO;
    lf_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Locating a key in a file (for messages about a loaded configuration) */

static char *trim_in_place(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* "key" of a "key = value" line (also of a commented-out one when commented), trimmed, in place;
 * NULL when the line is not one. */
static char *key_of_line(char *s, bool commented)
{
    if (commented) {
        if (*s != '#' && *s != ';')
            return NULL;
        s = trim_in_place(s + 1);
    } else if (*s == '#' || *s == ';') {
        return NULL;
    }
    char *eq = strpbrk(s, "=:");
    if (!eq)
        return NULL;
    *eq = '\0';
    return trim_in_place(s);
}

int lf_config_locate(const char *path, const char *section, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    char current[256] = "";
    int n = 0, found = 0, commented = 0, header = 0;
    bool at_start = true; /* the next piece fgets gives begins a line */
    while (!found && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        bool was_start = at_start;
        at_start = len > 0 && line[len - 1] == '\n';
        if (!was_start)
            continue; /* the rest of a line longer than the buffer: counted once, never read as a key */
        n++;
        char *s = trim_in_place(line);
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close) {
                *close = '\0';
                snprintf(current, sizeof current, "%s", trim_in_place(s + 1));
                if (!header && strcmp(current, section) == 0)
                    header = n;
            }
            continue;
        }
        if (strcmp(current, section) != 0)
            continue;
        char copy[sizeof line];
        memcpy(copy, s, strlen(s) + 1);
        const char *k = key_of_line(s, false);
        if (k && strcmp(k, key) == 0)
            found = n;
        k = key_of_line(copy, true);
        if (!commented && k && strcmp(k, key) == 0)
            commented = n;
    }
    fclose(f);
    return found ? found : commented ? commented : header;
}

/* ---------------------------------------------------------------------------------------------- */
/* Manual page logferry.conf(5) */

int lf_config_man_escape(lf_buf *b, const char *s)
{
    int rc = 0;
    bool line_start = true;
    for (; s && *s && !rc; s++) {
        if (line_start && (*s == '.' || *s == '\''))
            rc = lf_buf_append_str(b, "\\&");
        if (rc)
            break;
        if (*s == '\\')
            rc = lf_buf_append_str(b, "\\e");
        else if (*s == '-')
            rc = lf_buf_append_str(b, "\\-");
        else if (*s == '\n')
            rc = lf_buf_append_char(b, ' ');
        else
            rc = lf_buf_append_char(b, *s);
        line_start = false;
    }
    return rc;
}

static int man_option(lf_buf *b, const lf_config_option *o)
{
    int rc;
    if (is_any_key(o))
        return lf_buf_append_str(b, ".TP\n\\fIany other key\\fR (string, may repeat)\n");
    rc = lf_buf_append_str(b, ".TP\n\\fB");
    rc = rc ? rc : lf_config_man_escape(b, o->name);
    rc = rc ? rc : lf_buf_append_str(b, "\\fR (");
    rc = rc ? rc : lf_buf_append_str(b, type_name(o->type));
    if (!rc && o->type == LF_CFG_ENUM) {
        rc = lf_buf_append_str(b, ": ");
        for (int i = 0; !rc && o->enum_values && o->enum_values[i]; i++) {
            rc = lf_buf_append_str(b, i ? ", " : "");
            rc = rc ? rc : lf_config_man_escape(b, o->enum_values[i]);
        }
    }
    if (!rc && has_limits(o)) {
        rc = lf_buf_append_str(b, ", ");
        lf_buf num = LF_BUF_INIT(64);
        rc = rc ? rc : format_number(o, o->min, &num);
        rc = rc ? rc : lf_buf_append_str(&num, " to ");
        rc = rc ? rc : format_number(o, o->max, &num);
        rc = rc ? rc : lf_config_man_escape(b, lf_buf_cstr(&num));
        lf_buf_free(&num);
    }
    if (!rc && (o->flags & LF_CFG_REQUIRED))
        rc = lf_buf_append_str(b, ", required");
    else if (!rc && o->default_value && *o->default_value) {
        rc = lf_buf_append_str(b, ", default ");
        rc = rc ? rc : lf_config_man_escape(b, o->default_value);
    }
    rc = rc ? rc : lf_buf_append_str(b, (o->flags & LF_CFG_RELOADABLE) ? ", SIGHUP" : "");
    return rc ? rc : lf_buf_append_str(b, ")\n");
}

static int man_options(lf_buf *b, const lf_config_option *opts, size_t n, const char *section)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const lf_config_option *o = &opts[i];
        if (section && strcmp(o->section, section) != 0)
            continue;
        rc = man_option(b, o);
        rc = rc ? rc : lf_config_man_escape(b, o->description);
        if (!rc && !is_any_key(o) && (o->flags & LF_CFG_SECRET))
            rc = lf_buf_append_str(b, " Secret: masked in \\fB\\-\\-dump\\-config\\fR.");
        rc = rc ? rc : lf_buf_append_char(b, '\n');
    }
    return rc;
}

int lf_config_write_man(const lf_config_table *const *tables, size_t n, FILE *out)
{
    lf_buf b = LF_BUF_INIT(16 << 20);
    int rc = lf_buf_append_str(&b,
        ".\\\" Generated by logferry-config-docs --man from the programs' configuration tables; do not edit.\n"
        ".TH LOGFERRY.CONF 5 \"\" \"logferry\" \"logferry manual\"\n"
        ".SH NAME\nlogferry.conf \\- configuration files of the logferry programs\n"
        ".SH SYNOPSIS\n");
    for (size_t ti = 0; ti < n && !rc; ti++)
        rc = lf_buf_appendf(&b, "%s\\fI%s\\fR\n", ti ? ".br\n" : "",
                            tables[ti]->default_path ? tables[ti]->default_path : tables[ti]->program);
    rc = rc ? rc : lf_buf_append_str(&b,
        ".SH DESCRIPTION\n"
        "Each program reads one INI file (\\fB\\-\\-config\\fR \\fIPATH\\fR, default above). Unknown sections "
        "and keys are errors, reported with file, line and key. \\fB\\-\\-set\\fR \\fIsection.key=value\\fR "
        "overrides one option, \\fB\\-\\-dump\\-config\\fR prints the effective configuration (loadable "
        "again), \\fB\\-\\-check\\-config\\fR checks it and what the service needs to start. On SIGHUP the "
        "file is read again: options marked SIGHUP take effect at once, a change to any other option is "
        "logged as needing a restart and the running value is kept.\n"
        ".PP\n"
        "Value types: \\fBsize\\fR in bytes with an optional K, M, G or T suffix (powers of 1024); "
        "\\fBduration\\fR with a unit ms, s, m, h or d (a bare number is seconds); \\fBboolean\\fR "
        "true/false, yes/no, on/off, 1/0; \\fBlist\\fR comma\\-separated. A value may be double\\-quoted "
        "with C escapes to keep spaces, ; or #.\n");
    for (size_t ti = 0; ti < n && !rc; ti++) {
        const lf_config_table *t = tables[ti];
        rc = lf_buf_append_str(&b, ".SH ");
        rc = rc ? rc : lf_config_man_escape(&b, t->program);
        rc = rc ? rc : lf_buf_append_str(&b, "\n");
        if (!rc && t->description) {
            rc = lf_config_man_escape(&b, t->description);
            rc = rc ? rc : lf_buf_append_str(&b, "\n.PP\n");
        }
        rc = rc ? rc : lf_buf_appendf(&b, "Default file: \\fI%s\\fR.\n", t->default_path ? t->default_path : "(none)");
        for (size_t i = 0; i < t->n_options && !rc; i++) {
            const char *section = t->options[i].section;
            if (!lf_config_section_first(t, i))
                continue;
            rc = *section ? lf_buf_appendf(&b, ".SS [%s]\n", section) : lf_buf_append_str(&b, ".SS Before any section\n");
            rc = rc ? rc : man_options(&b, t->options, t->n_options, section);
        }
        for (size_t si = 0; si < t->n_sections && !rc; si++) {
            const lf_config_section_table *s = &t->sections[si];
            rc = lf_buf_appendf(&b, ".SS [%s.NAME] (repeated, up to %zu)\n", s->prefix, s->max_count);
            if (!rc && s->description) {
                rc = lf_config_man_escape(&b, s->description);
                rc = rc ? rc : lf_buf_append_char(&b, '\n');
            }
            rc = rc ? rc : man_options(&b, s->options, s->n_options, NULL);
        }
    }
    rc = rc ? rc : lf_buf_append_str(&b, ".SH SEE ALSO\n");
    for (size_t ti = 0; ti < n && !rc; ti++)
        rc = lf_buf_appendf(&b, ".BR %s (8)%s\n", tables[ti]->program, ti + 1 < n ? "," : "");
    size_t len = b.len;
    if (rc == 0 && fwrite(lf_buf_cstr(&b), 1, len, out) != len)
        rc = -EIO;
    lf_buf_free(&b);
    return rc;
}
