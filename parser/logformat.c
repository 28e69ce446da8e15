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
#include "scan_space.h"

/* In a literal program a run of spaces is stored as this byte: formats are C strings, so a NUL
 * never appears as a literal. */
#define WS_MARK '\0'

typedef struct literal {
    char *bytes; /* atoms: a byte, or WS_MARK for \s+ */
    size_t len;
} literal;

/* The scanner's program: a format is a sequence of literals, fields and optional groups
 * ("(\[<PID>\])?"), matched the way the regex matches it (fields lazily, groups tried first). */
typedef enum { EL_LIT, EL_FIELD, EL_OPT } el_kind;

/* Where the elements after a field can start: some bytes, a whitespace run, or the end of the line;
 * "any" when a field comes next (or too many choices). */
typedef struct firsts {
    bool any, end, space;
    int n;
    unsigned char b[4];
    uint64_t set[4]; /* b[] and, with space, the whitespace bytes: the scan's test of a byte */
} firsts;


typedef struct element {
    el_kind kind;
    literal lit;               /* EL_LIT */
    int field;                 /* EL_FIELD */
    bool has_next;             /* EL_FIELD: next is known (the field is not last in a group's body) */
    firsts next;               /* EL_FIELD: where what follows it can start */
    struct element *body;      /* EL_OPT: its elements */
    int nbody;
    int first_field, end_field; /* EL_OPT: the fields inside, unset when the group is skipped */
} element;

struct lf_logformat {
    int nfields;
    char *names[LF_LOGFORMAT_MAX_FIELDS];
    bool is_literal;
    element *prog; /* when is_literal */
    int nprog;
    char *regex_src;
    pcre2_code *re;
    pcre2_match_data *md;
    bool jit;
    uint32_t group_of[LF_LOGFORMAT_MAX_FIELDS]; /* capture group number of each field */
    lf_logformat_counts counts;
};

static void precompute_firsts(element *e, int n, bool top);

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
                x >= 0x80 || lf_is_space(x))
                goto regex;
            b[n++] = (char)x;
            s += 2;
            continue;
        }
        if (strchr(".^$|?*+()[]{}", c) || lf_is_space(c))
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

static void free_program(element *e, int n)
{
    for (int i = 0; i < n; i++) {
        lf_free(e[i].lit.bytes);
        free_program(e[i].body, e[i].nbody);
    }
    lf_free(e);
}

static int add_element(element **e, int *n, const element *x)
{
    element *ne = lf_realloc(*e, (size_t)(*n + 1) * sizeof *ne);
    if (!ne)
        return -ENOMEM;
    ne[(*n)++] = *x;
    *e = ne;
    return 0;
}

/* Parses elements from *s up to its end or, inside a group, its ")". LF_EFORMAT when the format
 * uses regex syntax other than plain text and "(...)?" groups (it is then PCRE2's alone). */
static int parse_program(const char **s, int depth, int *field, element **out, int *n)
{
    *out = NULL;
    *n = 0;
    int rc = 0;
    while (**s && rc == 0) {
        const char *p = *s;
        size_t pl = placeholder_len(p);
        if (pl) {
            element x = {.kind = EL_FIELD, .field = (*field)++};
            rc = add_element(out, n, &x);
            *s = p + pl;
        } else if (*p == '(') {
            if (p[1] == '?' || p[1] == '*' || depth >= 8)
                return LF_EFORMAT;
            element x = {.kind = EL_OPT, .first_field = *field};
            *s = p + 1;
            rc = parse_program(s, depth + 1, field, &x.body, &x.nbody);
            x.end_field = *field;
            if (rc == 0 && ((*s)[0] != ')' || (*s)[1] != '?' || (*s)[2] == '?' || (*s)[2] == '+'))
                rc = LF_EFORMAT; /* a group that is not a plain greedy "?" */
            if (rc == 0) {
                *s += 2;
                rc = add_element(out, n, &x);
            }
            if (rc < 0)
                free_program(x.body, x.nbody);
        } else if (*p == ')') {
            if (depth == 0)
                return LF_EFORMAT;
            return 0;
        } else {
            const char *e = p;
            while (*e && !placeholder_len(e) && *e != '(' && *e != ')')
                e += e[0] == '\\' && e[1] ? 2 : 1;
            element x = {.kind = EL_LIT};
            if (!fragment_to_literal(p, e, &x.lit))
                return LF_EFORMAT;
            rc = x.lit.len ? add_element(out, n, &x) : 0;
            if (rc < 0 || !x.lit.len)
                lf_free(x.lit.bytes);
            *s = e;
        }
    }
    return rc;
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
    /* without JIT the interpreter still works */
    f->jit = pcre2_jit_compile(f->re, PCRE2_JIT_COMPLETE) == 0;
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
    /* The fields' names, in order. */
    const char *s = format;
    for (;;) {
        size_t pl = *s ? placeholder_len(s) : 0;
        if (*s == '\0' || pl) {
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
            continue;
        }
        if (*s == '\\' && s[1])
            s++;
        s++;
    }
    rc = build_regex(f, format, err, errlen);
    if (rc < 0)
        goto fail;
    /* the scanner when every fragment is plain text and the only regex syntax is optional groups */
    const char *p = format;
    int field = 0;
    rc = parse_program(&p, 0, &field, &f->prog, &f->nprog);
    if (rc < 0 && rc != LF_EFORMAT)
        goto fail;
    f->is_literal = rc == 0 && *p == '\0' && field == f->nfields;
    if (f->is_literal)
        precompute_firsts(f->prog, f->nprog, true);
    if (!f->is_literal) {
        free_program(f->prog, f->nprog);
        f->prog = NULL;
        f->nprog = 0;
    }
    rc = 0;
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
    free_program(f->prog, f->nprog);
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
static inline long lit_at(const literal *l, const char *s, size_t len, size_t pos)
{
    size_t p = pos;
    for (size_t i = 0; i < l->len; i++) {
        char a = l->bytes[i];
        if (a == WS_MARK) {
            if (p >= len || !lf_is_space((unsigned char)s[p]))
                return -1;
            while (p < len && lf_is_space((unsigned char)s[p]))
                p++;
        } else {
            if (p >= len || s[p] != a)
                return -1;
            p++;
        }
    }
    return (long)p;
}

/* What is left to match after the elements being matched: the rest of the enclosing sequences. */
typedef struct cont {
    const element *e;
    int n, i;
    const struct cont *next;
} cont;

typedef struct mctx {
    const char *s;
    size_t len;
    lf_span *spans;
    long budget; /* steps left; the regex decides the lines that use them up */
} mctx;

#define SCAN_STEPS 4096

static void add_firsts(const element *e, int n, int i, const cont *k, firsts *f, int depth)
{
    for (;;) {
        if (f->any)
            return;
        if (i == n) {
            if (!k) {
                f->end = true;
                return;
            }
            e = k->e;
            n = k->n;
            i = k->i;
            k = k->next;
            continue;
        }
        const element *x = &e[i];
        if (x->kind == EL_FIELD || depth > 4) {
            f->any = true;
            return;
        }
        if (x->kind == EL_OPT) { /* the group's start, or what follows it */
            cont after = {e, n, i + 1, k};
            add_firsts(x->body, x->nbody, 0, &after, f, depth + 1);
            i++;
            continue;
        }
        unsigned char c = (unsigned char)x->lit.bytes[0];
        if (c == (unsigned char)WS_MARK) {
            f->space = true;
            f->set[0] |= 1ULL << ' ' | 1ULL << '\t' | 1ULL << '\n' | 1ULL << '\v' | 1ULL << '\f' | 1ULL << '\r';
        } else {
            f->set[c >> 6] |= 1ULL << (c & 63);
            bool have = false;
            for (int j = 0; j < f->n; j++)
                have |= f->b[j] == c;
            if (!have && f->n == 4)
                f->any = true;
            else if (!have)
                f->b[f->n++] = c;
        }
        return;
    }
}

static inline bool can_start(const firsts *f, unsigned char c)
{
    return (f->set[c >> 6] >> (c & 63)) & 1;
}

static void unset_fields(mctx *c, int from, int to)
{
    for (int f = from; f < to; f++)
        c->spans[f] = (lf_span){0, 0, false};
}

/* Where what follows the field x (at e[i]) can start: worked out before the first line when the
 * field's sequence ends inside the format, else now (into *computed). */
static inline const firsts *followers(const element *e, int n, int i, const cont *k, firsts *computed)
{
    const element *x = &e[i];
    if (x->has_next)
        return &x->next;
    *computed = (firsts){0};
    add_firsts(e, n, i + 1, k, computed, 0);
    return computed;
}

/* A field followed by nothing but the end of the line takes the rest of it. */
static inline bool ends_line(const firsts *f)
{
    return f->end && !f->any && !f->space && f->n == 0;
}

/* Moves *at to the first offset at or after it where what follows the field can start (where it
 * might end); false when there is none. */
static inline bool next_end(const mctx *c, const firsts *f, size_t *at)
{
    if (f->any)
        return true;
    size_t p = *at;
    if (f->n == 1 && !f->space) {
        const char *hit = p < c->len ? memchr(c->s + p, f->b[0], c->len - p) : NULL;
        p = hit ? (size_t)(hit - c->s) : c->len;
    } else if (f->n == 0) { /* a whitespace run */
        p = lf_next_space(c->s, p, c->len);
    } else {
        while (p < c->len && !can_start(f, (unsigned char)c->s[p]))
            p++;
    }
    *at = p;
    return p < c->len || f->end;
}

/* A place in the format: element i of the sequence e[0..n), then what k says is left. */
typedef struct cursor {
    const element *e;
    int n, i;
    const cont *k;
} cursor;

/* Moves u over literals (matching them at *pos) and the ends of sequences to the next field or group:
 * 1 there, 0 at the end of the format, -1 when a literal does not match. */
static inline int to_choice(const mctx *c, cursor *u, size_t *pos)
{
    for (;;) {
        if (u->i == u->n) {
            if (!u->k)
                return 0;
            *u = (cursor){u->k->e, u->k->n, u->k->i, u->k->next};
            continue;
        }
        const element *x = &u->e[u->i];
        if (x->kind != EL_LIT)
            return 1;
        long p = lit_at(&x->lit, c->s, c->len, *pos);
        if (p < 0)
            return -1;
        *pos = (size_t)p;
        u->i++;
    }
}

/* Depth first, in the regex's order of preference: a field takes the shortest text that lets the
 * rest match, a group is tried before it is skipped, a whitespace run takes all of the run. Literals
 * are matched in a loop; only the choices (a field's end, a group) recurse. */
static bool match_seq(mctx *c, cursor u, size_t pos)
{
    for (;;) {
        if (--c->budget < 0)
            return false;
        int at = to_choice(c, &u, &pos);
        if (at <= 0)
            return at == 0 && pos == c->len;
        const element *x = &u.e[u.i];
        if (x->kind == EL_OPT) {
            cont after = {u.e, u.n, u.i + 1, u.k};
            if (match_seq(c, (cursor){x->body, x->nbody, 0, &after}, pos))
                return true;
            if (c->budget < 0)
                return false;
            unset_fields(c, x->first_field, x->end_field);
            u.i++;
            continue;
        }
        firsts computed;
        const firsts *f = followers(u.e, u.n, u.i, u.k, &computed);
        if (ends_line(f)) {
            c->spans[x->field] = (lf_span){(uint32_t)pos, (uint32_t)(c->len - pos), true};
            pos = c->len;
            u.i++;
            continue;
        }
        for (size_t p = pos; p <= c->len; p++) {
            if (!next_end(c, f, &p))
                return false;
            c->spans[x->field] = (lf_span){(uint32_t)pos, (uint32_t)(p - pos), true};
            if (match_seq(c, (cursor){u.e, u.n, u.i + 1, u.k}, p))
                return true;
            if (c->budget < 0)
                return false;
        }
        return false;
    }
}

#define FIRST_PATH_GROUPS 8

/* The path match_seq explores first: every field ends at the first place where the literal that
 * follows it matches (or, with no literal next, where what follows can start), every group is taken
 * unless its first literal does not match. When it matches, match_seq's answer is the same, found
 * without one recursive call per field (which was most of the scan's cost on a well-formed line);
 * when it does not, match_seq searches the rest. */
static bool match_first_path(mctx *c, const element *prog, int nprog)
{
    cont taken[FIRST_PATH_GROUPS];
    int ntaken = 0;
    cursor u = {prog, nprog, 0, NULL};
    size_t pos = 0;
    for (;;) {
        int at = to_choice(c, &u, &pos);
        if (at <= 0)
            return at == 0 && pos == c->len;
        const element *x = &u.e[u.i];
        if (x->kind == EL_OPT) {
            const element *b0 = x->body;
            if (x->nbody > 0 && b0->kind == EL_LIT && lit_at(&b0->lit, c->s, c->len, pos) < 0) {
                /* match_seq would fail at the group's first literal and skip the group */
                unset_fields(c, x->first_field, x->end_field);
                u.i++;
                continue;
            }
            if (ntaken == FIRST_PATH_GROUPS)
                return false;
            taken[ntaken] = (cont){u.e, u.n, u.i + 1, u.k};
            u = (cursor){x->body, x->nbody, 0, &taken[ntaken++]};
            continue;
        }
        firsts computed;
        const firsts *f = followers(u.e, u.n, u.i, u.k, &computed);
        size_t p = c->len;
        if (!ends_line(f)) {
            /* the first end after which the literal that follows matches: match_seq fails at once
             * at the others, without a choice between */
            const element *lit = u.i + 1 < u.n && u.e[u.i + 1].kind == EL_LIT ? &u.e[u.i + 1] : NULL;
            long after = -1;
            for (p = pos;; p++) {
                if (!next_end(c, f, &p))
                    return false;
                if (!lit || (after = lit_at(&lit->lit, c->s, c->len, p)) >= 0)
                    break;
                if (p == c->len)
                    return false;
            }
            if (lit) { /* matched: go on after it */
                c->spans[x->field] = (lf_span){(uint32_t)pos, (uint32_t)(p - pos), true};
                pos = (size_t)after;
                u.i += 2;
                continue;
            }
        }
        c->spans[x->field] = (lf_span){(uint32_t)pos, (uint32_t)(p - pos), true};
        pos = p;
        u.i++;
    }
}

/* Fields whose followers are in their own sequence (or that end the format) learn them now, so the
 * scan does not work them out on every line. */
static void precompute_firsts(element *e, int n, bool top)
{
    for (int i = 0; i < n; i++) {
        if (e[i].kind == EL_OPT)
            precompute_firsts(e[i].body, e[i].nbody, false);
        if (e[i].kind == EL_FIELD && (i + 1 < n || top)) {
            e[i].next = (firsts){0};
            add_firsts(e, n, i + 1, NULL, &e[i].next, 0);
            e[i].has_next = true;
        }
    }
}

/* Matched by the scanner; false when it does not match or its steps ran out (the regex then decides). */
static bool match_literal(lf_logformat *f, const char *s, size_t len, lf_span *spans)
{
    mctx c = {s, len, spans, SCAN_STEPS};
    if (match_first_path(&c, f->prog, f->nprog)) {
        f->counts.first_path++;
        return true;
    }
    if (match_seq(&c, (cursor){f->prog, f->nprog, 0, NULL}, 0)) {
        f->counts.search++;
        return true;
    }
    return false;
}

int lf_logformat_match_regex(lf_logformat *f, const char *line, size_t len, lf_span *spans)
{
    if (len > UINT32_MAX)
        return 0;
    int rc = f->jit ? pcre2_jit_match(f->re, (PCRE2_SPTR)line, len, 0, 0, f->md, NULL)
                    : pcre2_match(f->re, (PCRE2_SPTR)line, len, 0, 0, f->md, NULL);
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
    if (len > UINT32_MAX) {
        f->counts.unmatched++;
        return 0;
    }
    /* The scanner searches depth first in the regex's order of preference (fields shortest, groups
     * taken before skipped, whitespace runs whole), so when it succeeds its answer is the regex's
     * first answer. When it fails, the regex may still match by backtracking into a whitespace run
     * ("a  b" split around an empty field), so it decides (as it does when the scanner's steps run
     * out). */
    if (f->is_literal && match_literal(f, line, len, spans))
        return 1;
    f->counts.regex++;
    int rc = lf_logformat_match_regex(f, line, len, spans);
    f->counts.unmatched += rc != 1;
    return rc;
}

void lf_logformat_get_counts(const lf_logformat *f, lf_logformat_counts *out)
{
    *out = f->counts;
}
