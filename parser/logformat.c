/* Line format compilation and matching (see logformat.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "logformat.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"

/* In a literal program a run of spaces is stored as this byte: formats are C strings, so a NUL
 * never appears as a literal. */
#define WS_MARK '\0'

typedef struct literal {
    char *bytes; /* atoms: a byte, or WS_MARK for \s+ */
    size_t len;
} literal;

struct lf_logformat {
    int nfields;
    char *names[LF_LOGFORMAT_MAX_FIELDS];
    bool is_literal;
    literal lits[LF_LOGFORMAT_MAX_FIELDS + 1]; /* lits[i] precedes field i; lits[nfields] ends */
    char *regex_src;
    pcre2_code *re;
    pcre2_match_data *md;
    uint32_t group_of[LF_LOGFORMAT_MAX_FIELDS]; /* capture group number of each field */
};

static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Length of a placeholder "<Name>" at s, or 0. */
static size_t placeholder_len(const char *s)
{
    if (s[0] != '<' || !is_name_start(s[1]))
        return 0;
    size_t i = 2;
    while (is_name_char(s[i]))
        i++;
    return s[i] == '>' ? i + 1 : 0;
}

/* err receives prefix followed by arg. */
static int set_err(char *err, size_t errlen, const char *prefix, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s", prefix, arg);
    return LF_ECONFIG;
}

/* Turns the fragment [s, e) into a literal program; false when it uses regex syntax. */
static bool fragment_to_literal(const char *s, const char *e, literal *out)
{
    char *b = lf_malloc((size_t)(e - s) + 1);
    if (!b)
        return false;
    size_t n = 0;
    while (s < e) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ') {
            while (s < e && *s == ' ')
                s++;
            b[n++] = WS_MARK;
            continue;
        }
        if (c == '\\') {
            unsigned char x = (unsigned char)s[1];
            if (s + 1 >= e || (x >= '0' && x <= '9') || (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') ||
                x >= 0x80 || is_space(x))
                goto regex;
            b[n++] = (char)x;
            s += 2;
            continue;
        }
        if (strchr(".^$|?*+()[]{}", c) || is_space(c))
            goto regex;
        b[n++] = (char)c;
        s++;
    }
    out->bytes = b;
    out->len = n;
    return true;
regex:
    lf_free(b);
    return false;
}

static int build_regex(lf_logformat *f, const char *format, char *err, size_t errlen)
{
    size_t cap = strlen(format) * 4 + 16 * (size_t)(f->nfields + 1) + 16;
    char *r = lf_malloc(cap);
    if (!r)
        return -ENOMEM;
    size_t n = 0;
    int field = 0;
    r[n++] = '^';
    for (const char *s = format; *s;) {
        size_t pl = placeholder_len(s);
        if (pl) {
            n += (size_t)snprintf(r + n, cap - n, "(?<f%d>.*?)", field++);
            s += pl;
        } else if (*s == ' ') {
            while (*s == ' ')
                s++;
            memcpy(r + n, "\\s+", 3);
            n += 3;
        } else if (*s == '\\' && s[1]) {
            r[n++] = *s++;
            r[n++] = *s++;
        } else {
            r[n++] = *s++;
        }
    }
    r[n++] = '$';
    r[n] = '\0';
    f->regex_src = r;
    int ec;
    PCRE2_SIZE eo;
    f->re = pcre2_compile((PCRE2_SPTR)r, n, PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
    if (!f->re) {
        char msg[160], full[200];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        snprintf(full, sizeof full, "%s at offset %zu of the generated regex", msg, (size_t)eo);
        return set_err(err, errlen, "bad line format: ", full);
    }
    (void)pcre2_jit_compile(f->re, PCRE2_JIT_COMPLETE); /* without JIT the interpreter still works */
    f->md = pcre2_match_data_create_from_pattern(f->re, NULL);
    if (!f->md)
        return -ENOMEM;
    for (int i = 0; i < f->nfields; i++) {
        char gname[16];
        snprintf(gname, sizeof gname, "f%d", i);
        int g = pcre2_substring_number_from_name(f->re, (PCRE2_SPTR)gname);
        if (g <= 0)
            return set_err(err, errlen, "bad line format: ", "field group lost");
        f->group_of[i] = (uint32_t)g;
    }
    return 0;
}

int lf_logformat_compile(const char *format, lf_logformat **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!format)
        return set_err(err, errlen, "empty line format", "");
    lf_logformat *f = lf_calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int rc = 0;
    /* Split into fragments and placeholders. */
    const char *frag = format;
    f->is_literal = true;
    const char *s = format;
    for (;;) {
        size_t pl = *s ? placeholder_len(s) : 0;
        if (*s == '\0' || pl) {
            if (f->is_literal && !fragment_to_literal(frag, s, &f->lits[f->nfields]))
                f->is_literal = false;
            if (!*s)
                break;
            if (f->nfields == LF_LOGFORMAT_MAX_FIELDS) {
                rc = set_err(err, errlen, "line format has more than 64 fields", "");
                goto fail;
            }
            char *name = lf_strndup(s + 1, pl - 2);
            if (!name) {
                rc = -ENOMEM;
                goto fail;
            }
            for (int i = 0; i < f->nfields; i++) {
                if (strcmp(f->names[i], name) == 0) {
                    rc = set_err(err, errlen, "line format repeats the field ", name);
                    lf_free(name);
                    goto fail;
                }
            }
            f->names[f->nfields++] = name;
            s += pl;
            frag = s;
            continue;
        }
        if (*s == '\\' && s[1])
            s++;
        s++;
    }
    rc = build_regex(f, format, err, errlen);
    if (rc < 0)
        goto fail;
    *out = f;
    return 0;
fail:
    lf_logformat_free(f);
    return rc;
}

void lf_logformat_free(lf_logformat *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->nfields; i++)
        lf_free(f->names[i]);
    for (int i = 0; i <= LF_LOGFORMAT_MAX_FIELDS; i++)
        lf_free(f->lits[i].bytes);
    lf_free(f->regex_src);
    pcre2_match_data_free(f->md);
    pcre2_code_free(f->re);
    lf_free(f);
}

int lf_logformat_field_count(const lf_logformat *f)
{
    return f->nfields;
}

const char *lf_logformat_field_name(const lf_logformat *f, int i)
{
    return i >= 0 && i < f->nfields ? f->names[i] : NULL;
}

int lf_logformat_field_index(const lf_logformat *f, const char *name)
{
    for (int i = 0; i < f->nfields; i++)
        if (strcmp(f->names[i], name) == 0)
            return i;
    return -1;
}

bool lf_logformat_is_literal(const lf_logformat *f)
{
    return f->is_literal;
}

/* Matches literal l at pos; returns the end offset or -1. Whitespace runs are greedy, which gives
 * the regex's first answer because a whitespace atom is never followed by a whitespace byte. */
static long lit_at(const literal *l, const char *s, size_t len, size_t pos)
{
    size_t p = pos;
    for (size_t i = 0; i < l->len; i++) {
        char a = l->bytes[i];
        if (a == WS_MARK) {
            if (p >= len || !is_space((unsigned char)s[p]))
                return -1;
            while (p < len && is_space((unsigned char)s[p]))
                p++;
        } else {
            if (p >= len || s[p] != a)
                return -1;
            p++;
        }
    }
    return (long)p;
}

/* Earliest start >= pos at which l matches (and, if at_end, ends exactly at len). */
static long lit_find(const literal *l, const char *s, size_t len, size_t pos, bool at_end, long *end)
{
    if (l->len == 0) {
        if (at_end && pos > len)
            return -1;
        *end = at_end ? (long)len : (long)pos;
        return at_end ? (long)len : (long)pos;
    }
    bool fixed = memchr(l->bytes, WS_MARK, l->len) == NULL;
    if (at_end && fixed) {
        if (len < l->len || len - l->len < pos)
            return -1;
        size_t st = len - l->len;
        if (memcmp(s + st, l->bytes, l->len) != 0)
            return -1;
        *end = (long)len;
        return (long)st;
    }
    char first = l->bytes[0];
    size_t p = pos;
    while (p < len) {
        if (first == WS_MARK) {
            while (p < len && !is_space((unsigned char)s[p]))
                p++;
            if (p >= len)
                return -1;
        } else {
            /* fields are short: a plain loop beats a call to memchr for the first bytes */
            size_t stop = p + 16 < len ? p + 16 : len;
            while (p < stop && s[p] != first)
                p++;
            if (p == stop) {
                if (p >= len)
                    return -1;
                const char *hit = memchr(s + p, first, len - p);
                if (!hit)
                    return -1;
                p = (size_t)(hit - s);
            }
        }
        long e = lit_at(l, s, len, p);
        if (e >= 0 && (!at_end || (size_t)e == len)) {
            *end = e;
            return (long)p;
        }
        p++;
    }
    return -1;
}

static int match_literal(const lf_logformat *f, const char *s, size_t len, lf_span *spans)
{
    long e = lit_at(&f->lits[0], s, len, 0);
    if (e < 0)
        return 0;
    size_t pos = (size_t)e;
    if (f->nfields == 0)
        return pos == len;
    for (int i = 0; i < f->nfields; i++) {
        bool last = i == f->nfields - 1;
        long end;
        long st = lit_find(&f->lits[i + 1], s, len, pos, last, &end);
        if (st < 0)
            return 0;
        spans[i].off = (uint32_t)pos;
        spans[i].len = (uint32_t)((size_t)st - pos);
        spans[i].set = true;
        pos = (size_t)end;
    }
    return 1;
}

int lf_logformat_match_regex(lf_logformat *f, const char *line, size_t len, lf_span *spans)
{
    if (len > UINT32_MAX)
        return 0;
    int rc = pcre2_match(f->re, (PCRE2_SPTR)line, len, 0, 0, f->md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return LF_ELIMIT; /* a backtracking or depth limit: the line counts as not matching */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->md);
    uint32_t nov = pcre2_get_ovector_count(f->md);
    for (int i = 0; i < f->nfields; i++) {
        uint32_t g = f->group_of[i];
        if (g < nov && (int)g < rc && ov[2 * g] != PCRE2_UNSET) {
            spans[i].off = (uint32_t)ov[2 * g];
            spans[i].len = (uint32_t)(ov[2 * g + 1] - ov[2 * g]);
            spans[i].set = true;
        } else {
            spans[i].off = 0;
            spans[i].len = 0;
            spans[i].set = false;
        }
    }
    return 1;
}

int lf_logformat_match(lf_logformat *f, const char *line, size_t len, lf_span *spans)
{
    if (len > UINT32_MAX)
        return 0;
    /* The scanner takes the regex's most preferred choice at every step (whitespace runs greedy,
     * fields shortest), so when it succeeds its answer is the regex's first answer. When it fails,
     * the regex may still match by backtracking into a whitespace run ("a  b" split around an empty
     * field), so it decides. */
    if (f->is_literal && match_literal(f, line, len, spans) == 1)
        return 1;
    return lf_logformat_match_regex(f, line, len, spans);
}
