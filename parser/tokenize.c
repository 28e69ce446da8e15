/* Message preprocessing (see tokenize.h and docs/parsing.md for the rules and their reasons). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenize.h"

#include <errno.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lf_alloc.h"
#include "lf_error.h"
#include "parse_hash.h"
#include "scan_space.h"
#include "template_token.h"

#define MAX_MASKS 32

typedef struct mask {
    pcre2_code *re;
    pcre2_match_data *md;
    bool jit; /* compiled by the JIT: matched with pcre2_jit_match, which skips pcre2_match's checks */
} mask;

typedef struct scratch {
    char *data;
    size_t len, cap;
} scratch;

/* Normalised forms of recently seen tokens: most tokens that need the rules (class names, keys,
 * paths) repeat from line to line, and a lookup is cheaper than the rules. Direct-mapped, fixed
 * size, so memory stays bounded; only short tokens are kept. */
#define CACHE_SLOTS 2048
#define CACHE_TOKEN 46

typedef struct cache_entry {
    uint64_t raw_hash;  /* 0: empty */
    uint64_t norm_hash;
    uint64_t list_key;
    uint8_t raw_len, norm_len;
    char raw[CACHE_TOKEN];
    char norm[CACHE_TOKEN * 3];
} cache_entry;

struct lf_tokenizer {
    cache_entry *cache;
    mask masks[MAX_MASKS];
    int nmasks;
    scratch a, b;     /* mask passes alternate between these */
    scratch norm;     /* normalised tokens */
    lf_token toks[LF_TOKEN_MAX];
    uint64_t list_key[LF_TOKEN_MAX]; /* see list_key() */
};

/* Character classes: 1 = whitespace, 2 = path delimiter, 4 = other token delimiter, 8 = digit or '<'. */
static unsigned char cls[256];
static bool cls_ready;

static void init_classes(void)
{
    if (cls_ready)
        return;
    for (const char *p = " \t\n\v\f\r"; *p; p++)
        cls[(unsigned char)*p] = 1;
    for (const char *p = ",!;:=|\"'[](){}"; *p; p++)
        cls[(unsigned char)*p] = 2;
    for (const char *p = ".-+@#$%&/"; *p; p++)
        cls[(unsigned char)*p] = 4;
    for (const char *p = "0123456789<"; *p; p++)
        cls[(unsigned char)*p] = 8; /* only for spotting plain words */
    cls_ready = true;
}

static inline uint64_t token_hash(const char *s, size_t len)
{
    if (len == 3 && s[0] == '<' && s[1] == '*' && s[2] == '>')
        return LF_TOKEN_WILD_HASH;
    uint64_t h = lf_phash_bytes(s, len);
    return h <= LF_TOKEN_WILD_HASH ? h + 2 : h;
}

uint64_t lf_token_hash(const char *s, size_t len)
{
    return token_hash(s, len);
}

int lf_tokenizer_new(lf_tokenizer **out)
{
    init_classes();
    lf_tokenizer *t = lf_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->cache = lf_calloc(CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache) {
        lf_free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void lf_tokenizer_free(lf_tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nmasks; i++) {
        pcre2_match_data_free(t->masks[i].md);
        pcre2_code_free(t->masks[i].re);
    }
    lf_free(t->a.data);
    lf_free(t->b.data);
    lf_free(t->norm.data);
    lf_free(t->cache);
    lf_free(t);
}

int lf_tokenizer_add_mask(lf_tokenizer *t, const char *regex, char *err, size_t errlen)
{
    if (t->nmasks == MAX_MASKS) {
        if (err && errlen)
            snprintf(err, errlen, "more than %d masks", MAX_MASKS);
        return LF_ECONFIG;
    }
    int ec;
    PCRE2_SIZE eo;
    /* only the whole match is used: groups need not capture (unless the mask refers back to one) */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_NO_AUTO_CAPTURE, &ec, &eo, NULL);
    if (!re)
        re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!re) {
        char msg[160];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        if (err && errlen)
            snprintf(err, errlen, "mask /%s/: %s at offset %zu", regex, msg, (size_t)eo);
        return LF_ECONFIG;
    }
    bool jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return -ENOMEM;
    }
    t->masks[t->nmasks].re = re;
    t->masks[t->nmasks].md = md;
    t->masks[t->nmasks].jit = jit;
    t->nmasks++;
    return 0;
}

int lf_tokenizer_mask_count(const lf_tokenizer *t)
{
    return t->nmasks;
}

static int reserve(scratch *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *d = lf_realloc(s->data, cap);
    if (!d)
        return -ENOMEM;
    s->data = d;
    s->cap = cap;
    return 0;
}

/* Building a line with some spans replaced by "<*>": in[copied..start) is copied, then "<*>", and the
 * text resumes at end. The first replacement empties out; a line with none leaves it untouched. */
typedef struct replacer {
    scratch *out;
    size_t copied;
    bool any;
} replacer;

static int replace_span(replacer *r, const char *in, size_t start, size_t end)
{
    if (!r->any) {
        r->out->len = 0;
        r->any = true;
    }
    if (reserve(r->out, r->out->len + (start - r->copied) + 3 + 1) < 0)
        return -ENOMEM;
    memcpy(r->out->data + r->out->len, in + r->copied, start - r->copied);
    r->out->len += start - r->copied;
    memcpy(r->out->data + r->out->len, "<*>", 3);
    r->out->len += 3;
    r->copied = end;
    return 0;
}

/* 1 if anything was replaced (the rest of the line is appended), 0 if not, -ENOMEM. */
static int replace_finish(replacer *r, const char *in, size_t len)
{
    if (!r->any)
        return 0;
    if (reserve(r->out, r->out->len + (len - r->copied) + 1) < 0)
        return -ENOMEM;
    memcpy(r->out->data + r->out->len, in + r->copied, len - r->copied);
    r->out->len += len - r->copied;
    return 1;
}

/* The end of a mask's match without the punctuation it took from the text around the value: a
 * separator (",;:") or a closing bracket or quote that it did not open ("/.+?\s" on
 * "at (/var/lib/x): checking" takes "/var/lib/x): "; the value is "/var/lib/x"). */
static size_t give_back_closers(const char *in, size_t cs, size_t ce)
{
    while (ce - cs > 1) {
        char c = in[ce - 1];
        bool give = c == ',' || c == ';' || c == ':';
        if (c == ')' || c == ']' || c == '}') {
            char open = c == ')' ? '(' : c == ']' ? '[' : '{';
            give = memchr(in + cs, open, ce - 1 - cs) == NULL;
        } else if (c == '"' || c == '\'') {
            size_t n = 0;
            for (size_t i = cs; i < ce; i++)
                n += in[i] == c;
            give = n % 2 == 1;
        }
        if (!give)
            break;
        ce--;
    }
    return ce;
}

/* Runs one mask over in[0..len) into out. Returns 1 if anything was replaced, 0 if not (out is then
 * untouched), -ENOMEM. The whitespace at either end of a match is kept so that a mask such as
 * "0x.*?\s" does not glue two tokens together, and so are a '=' or ':' it starts with and the
 * punctuation it ends with that is not the value's (give_back_closers). */
static int apply_mask(mask *m, const char *in, size_t len, scratch *out)
{
    size_t pos = 0;
    replacer r = {out, 0, false};
    while (pos <= len) {
        int rc = m->jit ? pcre2_jit_match(m->re, (PCRE2_SPTR)in, len, pos, 0, m->md, NULL)
                        : pcre2_match(m->re, (PCRE2_SPTR)in, len, pos, 0, m->md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* empty match: move on */
            pos = ms + 1;
            continue;
        }
        size_t cs = ms, ce = me;
        while (cs < ce && cls[(unsigned char)in[cs]] == 1)
            cs++;
        while (ce > cs && cls[(unsigned char)in[ce - 1]] == 1)
            ce--;
        if (ce - cs > 1 && (in[cs] == '=' || in[cs] == ':'))
            cs++; /* the key keeps its mark: "=\d+" makes "ambient=28" "ambient=<*>", not "ambient<*>" */
        ce = give_back_closers(in, cs, ce);
        if (cs < ce && replace_span(&r, in, cs, ce) < 0)
            return -ENOMEM;
        pos = me;
    }
    return replace_finish(&r, in, len);
}

static inline bool hex_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f');
}

static inline bool word_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_';
}

/* Is a UUID (8-4-4-4-12 hex digits, not inside a longer word) at in[p]? */
static bool uuid_at(const char *in, size_t len, size_t p)
{
    static const unsigned char group[5] = {8, 4, 4, 4, 12};
    if (p + 36 > len || (p > 0 && word_char((unsigned char)in[p - 1])))
        return false;
    size_t q = p;
    for (int g = 0; g < 5; g++) {
        if (g && in[q++] != '-')
            return false;
        for (int k = 0; k < group[g]; k++)
            if (!hex_char((unsigned char)in[q++]))
                return false;
    }
    return q == len || !word_char((unsigned char)in[q]);
}

/* Writes in[0..len) to out with every UUID replaced by "<*>", before the log type's masks: an id
 * is one value, whatever a mask such as "\d+" would make of its parts ("b9000564-fe1a-409b-bdcc-..."
 * would otherwise keep "bdcc" as a word). Returns 1 if anything was replaced, 0 if not, -ENOMEM. */
static int mask_uuids(const char *in, size_t len, scratch *out)
{
    const char *dash = len >= 36 ? memchr(in + 8, '-', len - 8) : NULL;
    replacer r = {out, 0, false};
    while (dash) {
        size_t d = (size_t)(dash - in);
        if (d >= 8 && uuid_at(in, len, d - 8)) {
            if (replace_span(&r, in, d - 8, d + 28) < 0)
                return -ENOMEM;
            d += 27; /* the UUID's last character: the search goes on after it */
        }
        dash = d + 1 < len ? memchr(in + d + 1, '-', len - d - 1) : NULL;
    }
    return replace_finish(&r, in, len);
}

static bool all_digits(const char *s, size_t n)
{
    if (n > 1 && s[0] == '-') {
        s++;
        n--;
    }
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool word_eq(const char *s, size_t n, const char *w)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != w[i])
            return false;
    }
    return true;
}

/* A weekday or month name, abbreviated or whole, Capitalised or in capitals ("Jul", "JULY", "Sunday"): a
 * part of a date written into the message. Lower case words ("may", "sun") are left alone. */
static bool date_word(const char *s, size_t n)
{
    if (n < 3 || n > 9 || s[0] < 'A' || s[0] > 'Z')
        return false;
    bool lower = s[1] >= 'a' && s[1] <= 'z'; /* Capitalised, or else all in capitals */
    uint32_t k = (uint32_t)(s[0] | 32) << 16 | (uint32_t)(s[1] | 32) << 8 | (uint32_t)(s[2] | 32);
    const char *whole; /* the whole name whose first three letters these are */
#define DW(a, b, c, w)                                                                                        \
    case (uint32_t)(a) << 16 | (uint32_t)(b) << 8 | (uint32_t)(c):                                            \
        whole = w;                                                                                            \
        break;
    switch (k) {
        DW('m', 'o', 'n', "monday") DW('t', 'u', 'e', "tuesday") DW('w', 'e', 'd', "wednesday")
        DW('t', 'h', 'u', "thursday") DW('f', 'r', 'i', "friday") DW('s', 'a', 't', "saturday")
        DW('s', 'u', 'n', "sunday") DW('j', 'a', 'n', "january") DW('f', 'e', 'b', "february")
        DW('m', 'a', 'r', "march") DW('a', 'p', 'r', "april") DW('m', 'a', 'y', "may") DW('j', 'u', 'n', "june")
        DW('j', 'u', 'l', "july") DW('a', 'u', 'g', "august") DW('s', 'e', 'p', "september")
        DW('o', 'c', 't', "october") DW('n', 'o', 'v', "november") DW('d', 'e', 'c', "december")
    default:
        return false;
    }
#undef DW
    for (size_t i = 1; i < n; i++)
        if (lower ? !(s[i] >= 'a' && s[i] <= 'z') : !(s[i] >= 'A' && s[i] <= 'Z'))
            return false;
    return n == 3 || (n == strlen(whole) && word_eq(s, n, whole));
}

/* Is the sub-token a variable by the rules? One pass collects what the rules look at. */
static bool subtoken_is_var(const char *s, size_t n)
{
    if (n == 0)
        return false;
    size_t digits = 0, hex = 0;
    bool wild = false, under = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9')
            digits++, hex++;
        else if ((c | 32) >= 'a' && (c | 32) <= 'f')
            hex++;
        else if (c == '_')
            under = true;
        else if (c == '<' && i + 2 < n && s[i + 1] == '*' && s[i + 2] == '>')
            wild = true;
    }
    if (digits == n || (s[0] == '-' && n > 1 && digits == n - 1))
        return true; /* DG: a number */
    if (wild)
        return true; /* WV: a word joined to a variable */
    if (digits == 0) {
        /* DT: names of weekdays and months are parts of dates. (true/false/null stay words: a
         * message with another boolean is another event type; the template shows it as "<*>") */
        return date_word(s, n);
    }
    /* a number with a unit: 10000ms, 1001rts, 64KB */
    if (digits < n && n - digits <= 3 && s[0] >= '0' && s[0] <= '9') {
        size_t i = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return true;
    }
    /* 0x-prefixed hex numbers */
    if (n > 2 && s[0] == '0' && (s[1] | 32) == 'x' && hex == n - 1)
        return true;
    /* hex numbers of six or more digits that hold a decimal digit: 003a90dc */
    if (n >= 6 && hex == n)
        return true;
    /* identifiers built on numbers: blk_123, attempt_1445_0020_m_000000_0 (WV after DG) */
    if (under) {
        const char *p = s, *e = s + n;
        while (p < e) {
            const char *u = memchr(p, '_', (size_t)(e - p));
            const char *pe = u ? u : e;
            if (all_digits(p, (size_t)(pe - p)) && (u || p != s))
                return true;
            p = u ? u + 1 : e;
        }
    }
    return false;
}

/* Is the piece a Unix path (PS): "/a/b/c", or a relative one to a file, of three or more names
 * joined by single '/', the last with an extension ("Nodes/dn731/pkts_out.rrd",
 * "Chrome.app/Contents/Info.plist"; not "seq/ack/win" or "TCP/IP")? */
static bool is_path(const char *s, size_t n)
{
    if (n < 2 || s[n - 1] == '/')
        return false;
    if (s[0] == '/')
        return true;
    if (n < 7 || !memchr(s, '/', n)) /* the common case, cheaply: "a/b/c.d" at the least */
        return false;
    size_t slashes = 0, dot = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            if (i == 0 || s[i - 1] == '/')
                return false;
            slashes++;
            dot = 0;
        } else if (s[i] == '.') {
            dot = i;
        } else if (!word_char((unsigned char)s[i]) && s[i] != '-') {
            return false;
        }
    }
    /* the extension: letters after the last name's last dot */
    if (slashes < 2 || dot == 0 || s[dot - 1] == '/' || dot + 1 >= n)
        return false;
    for (size_t i = dot + 1; i < n; i++)
        if (!((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z'))
            return false;
    return true;
}

/* The closing quote of the quoted value that the quote at s[i] opens, if a key is given it there:
 * tag="AudioMix", mode='fast', tag="View Lock" (the token runs on to the closing quote, see
 * quoted_value_end, so this also keeps the whitespace inside out of the tokens). The value is data
 * the program prints, whatever its words: the key names it. */
static const char *quoted_value(const char *s, size_t n, size_t i)
{
    if ((s[i] != '"' && s[i] != '\'') || i == 0 || s[i - 1] != '=' || i + 1 >= n || s[i + 1] == s[i])
        return NULL;
    return memchr(s + i + 1, s[i], n - i - 1);
}

/* Appends "<*>" unless it would follow "<*>" or "<*>." (merging CV and DV as they arise). */
static void emit_wild(char *o, size_t *n, size_t start)
{
    size_t k = *n - start;
    if (k >= 3 && memcmp(o + *n - 3, "<*>", 3) == 0)
        return;
    if (k >= 4 && memcmp(o + *n - 4, "<*>.", 4) == 0) {
        (*n)--;
        return;
    }
    memcpy(o + *n, "<*>", 3);
    *n += 3;
}

/* Angle brackets separate like the other brackets ("<memory:1024," "vCores:32>"), except the ones of a
 * "<*>" that a mask wrote. */
static bool angle_delim(const char *s, size_t n, size_t i)
{
    if (s[i] == '<')
        return !(i + 2 < n && s[i + 1] == '*' && s[i + 2] == '>');
    if (s[i] == '>')
        return !(i >= 2 && s[i - 1] == '*' && s[i - 2] == '<');
    return false;
}

static inline bool piece_delim(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    return cls[c] == 2 || ((c == '<' || c == '>') && angle_delim(s, n, i));
}

/* Is the core of the token (inside wrapping brackets, quotes and trailing punctuation) an IPv6 or MAC
 * address: groups of at most four hex digits joined by at least two colons, with a decimal digit
 * somewhere ("fe80::1c57:7ef3", "FF:F2:9F:16:7B:E0")? [*a, *b) is then the core. */
static bool hex_address(const char *s, size_t n, size_t *a, size_t *b)
{
    size_t x = 0, y = n;
    while (x < y && strchr("([{'\"<", s[x]))
        x++;
    while (y > x && strchr(")]}'\">,.;", s[y - 1]))
        y--;
    size_t colons = 0, group = 0;
    bool digit = false;
    for (size_t i = x; i < y; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':') {
            colons++;
            group = 0;
        } else if ((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f')) {
            digit |= c <= '9';
            if (++group > 4)
                return false;
        } else {
            return false;
        }
    }
    *a = x;
    *b = y;
    return colons >= 2 && digit;
}

/* Normalises the token s[0..n) into o at *on (room for 3n bytes is reserved by the caller). */
static void normalise(const char *s, size_t n, char *o, size_t *on)
{
    size_t start = *on;
    size_t i = 0;
    size_t ha, hb;
    if (hex_address(s, n, &ha, &hb)) {
        memcpy(o + *on, s, ha);
        *on += ha;
        memcpy(o + *on, "<*>", 3);
        *on += 3;
        memcpy(o + *on, s + hb, n - hb);
        *on += n - hb;
        return;
    }
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (piece_delim(s, n, i)) {
            o[(*on)++] = (char)c;
            const char *close = quoted_value(s, n, i);
            i++;
            if (close) {
                emit_wild(o, on, start);
                i = (size_t)(close - s);
            }
            continue;
        }
        size_t pe = i;
        while (pe < n && !piece_delim(s, n, pe))
            pe++;
        if (is_path(s + i, pe - i)) {
            emit_wild(o, on, start);
            i = pe;
            continue;
        }
        size_t piece = i;
        while (i < pe) {
            c = (unsigned char)s[i];
            /* a minus sign that starts a number is part of it: "-27", "blk_-69", and "-<*>" where a
             * mask took the digits but not the sign */
            bool sign = c == '-' && i + 1 < pe &&
                        ((s[i + 1] >= '0' && s[i + 1] <= '9') ||
                         (i + 3 < pe && s[i + 1] == '<' && s[i + 2] == '*' && s[i + 3] == '>')) &&
                        (i == piece || cls[(unsigned char)s[i - 1]] == 4 || s[i - 1] == '_');
            if (cls[c] == 4 && !sign) {
                o[(*on)++] = (char)c;
                i++;
                continue;
            }
            size_t se = i + (sign ? 1 : 0);
            while (se < pe && (cls[(unsigned char)s[se]] != 4 ||
                               (s[se] == '-' && s[se - 1] == '_' && se + 1 < pe && s[se + 1] >= '0' && s[se + 1] <= '9')))
                se++;
            if (subtoken_is_var(s + i, se - i)) {
                emit_wild(o, on, start);
            } else {
                memcpy(o + *on, s + i, se - i);
                *on += se - i;
            }
            i = se;
        }
    }
}

/* Is s[0..n) a host name that holds a parameter (after a key "name=", whose length goes to *key): three or more labels of letters, digits, '-', '_' and
 * "<*>" joined by single dots, the last (the top-level domain) all letters and at least two
 * ("cp-<*>.tcloud-<*>.utah.cloudlab.us")? Not "core.<*>", not "dcbf.......<*>". */
static bool host_name(const char *s, size_t n, size_t *key)
{
    *key = 0;
    size_t labels = 1, label_len = 0;
    bool wild = false, letters = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label_len == 0)
                return false;
            labels++;
            label_len = 0;
            letters = true;
            continue;
        }
        label_len++;
        if (c == '<' && i + 2 < n && s[i + 1] == '*' && s[i + 2] == '>') {
            wild = true;
            letters = false;
            i += 2;
        } else if ((c | 32) >= 'a' && (c | 32) <= 'z') {
            continue;
        } else if (c == '-' || c == '_' || (c >= '0' && c <= '9')) {
            letters = false;
        } else if (c == '=' && !wild && *key == 0 && i > 0 && label_len > 1) {
            /* "name=" before the host name: the key stays (what came before is a key by
             * lf_ttok_key_length's measure: only its characters got here); found in this scan so
             * that a token without a host name pays nothing for it */
            *key = i + 1;
            labels = 1;
            label_len = 0;
            letters = true;
        } else {
            return false;
        }
    }
    return wild && labels >= 3 && letters && label_len >= 2;
}

/* A token whose core (inside wrapping punctuation) holds "<*>:<*>", "<*>/<*>" or "://" is one
 * variable: host:port, host/address, URLs ("msra-sa-<*>/<*>:<*>" -> "<*>", "[hdfs://<*>:<*>]" ->
 * "[<*>]"), while "key:<*>" keeps its key. Returns the new length. */
static size_t one_variable(char *t, size_t n)
{
    size_t a = 0, b = n;
    while (a < b && (t[a] == '(' || t[a] == '[' || t[a] == '{' || t[a] == '\'' || t[a] == '"'))
        a++;
    /* a closing bracket is wrapping only when its opener is not in the core ("0000:00:02.0[A]" is
     * one value, "[A]" and all) */
    while (b > a && memchr(")]}'\",.;:", t[b - 1], 9)) {
        char c = t[b - 1];
        char open = c == ')' ? '(' : c == ']' ? '[' : c == '}' ? '{' : 0;
        if (open && memchr(t + a, open, b - 1 - a))
            break;
        b--;
    }
    if (b - a < 7)
        return n;
    bool hit = false;
    for (size_t i = a; i + 7 <= b && !hit; i++)
        hit = memcmp(t + i, "<*>", 3) == 0 && (t[i + 3] == ':' || t[i + 3] == '/') && memcmp(t + i + 4, "<*>", 3) == 0;
    for (size_t i = a; i + 3 <= b && !hit; i++)
        hit = memcmp(t + i, "://", 3) == 0;
    /* a key given the value stays: "delay=00:00:01," -> "delay=<*>," */
    size_t key = 0;
    if (hit)
        key = lf_ttok_key_length(t + a, b - a);
    else
        hit = host_name(t + a, b - a, &key);
    if (!hit)
        return n;
    a += key;
    memmove(t + a + 3, t + b, n - b);
    memcpy(t + a, "<*>", 3);
    return a + 3 + (n - b);
}

/* The end of the token in[i..e), taken on to the end of the token that closes a quoted value it
 * opens ('tag="View Lock",' is one token, so that the value is one parameter, whatever its words). */
static size_t quoted_value_end(const char *in, size_t len, size_t i, size_t e)
{
    const char *eq = memchr(in + i, '=', e - i);
    while (eq && (size_t)(eq - in) + 1 < e) {
        size_t q = (size_t)(eq - in) + 1;
        char quote = in[q];
        if (quote == '"' || quote == '\'') {
            if (memchr(in + q + 1, quote, e - q - 1))
                return e; /* closed within the token */
            const char *close = memchr(in + e, quote, len - e);
            if (!close)
                return e;
            return lf_next_space(in, (size_t)(close - in), len);
        }
        eq = memchr(in + q, '=', e - q);
    }
    return e;
}

/* Tokens that may form a list: a parameter (1), or a token that holds a digit, by its shape
 * ("an101", "an102" alike); 0 for the others. */
static uint64_t list_key(const char *s, size_t n, uint64_t hash)
{
    if (hash == LF_TOKEN_WILD_HASH)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9')
            return lf_ttok_shape(s, n) | 2;
    return 0;
}

int lf_tokenizer_run(lf_tokenizer *t, const char *s, size_t len, const lf_token **toks, const char **text)
{
    const char *in = s;
    size_t inlen = len;
    scratch *next = &t->a;
    int urc = mask_uuids(in, inlen, next);
    if (urc < 0)
        return urc;
    if (urc == 1) {
        in = next->data;
        inlen = next->len;
        next = &t->b;
    }
    for (int i = 0; i < t->nmasks; i++) {
        int rc = apply_mask(&t->masks[i], in, inlen, next);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            in = next->data;
            inlen = next->len;
            next = next == &t->a ? &t->b : &t->a;
        }
    }
    if (reserve(&t->norm, inlen * 3 + 8) < 0)
        return -ENOMEM;
    char *o = t->norm.data;
    size_t on = 0;
    int nt = 0;
    size_t i = 0;
    while (i < inlen) {
        while (i < inlen && cls[(unsigned char)in[i]] == 1)
            i++;
        if (i >= inlen)
            break;
        size_t e = lf_next_space(in, i, inlen);
        unsigned acc = 0;
        for (size_t k = i; k < e; k++)
            acc |= cls[(unsigned char)in[k]];
        if (acc & 2)
            e = quoted_value_end(in, inlen, i, e);
        size_t ts = on;
        if (nt == LF_TOKEN_MAX - 1) {
            /* the tail of a very long message is one parameter */
            memcpy(o + on, "<*>", 3);
            on += 3;
            t->toks[nt].off = (uint32_t)ts;
            t->toks[nt].len = 3;
            t->toks[nt].hash = LF_TOKEN_WILD_HASH;
            nt++;
            break;
        }
        if (acc == 0 && !(in[i] >= 'A' && in[i] <= 'Z' && date_word(in + i, e - i))) {
            /* a plain word (no digit, delimiter or "<"): the rules leave it as it is, unless it is
             * a weekday or month name */
            memcpy(o + on, in + i, e - i);
            on += e - i;
            t->list_key[nt] = 0;
        } else if (e - i <= CACHE_TOKEN) {
            size_t rl = e - i;
            uint64_t rh = lf_phash_bytes(in + i, rl) | 1;
            cache_entry *ce = &t->cache[rh & (CACHE_SLOTS - 1)];
            if (ce->raw_hash == rh && ce->raw_len == rl && memcmp(ce->raw, in + i, rl) == 0) {
                memcpy(o + on, ce->norm, ce->norm_len);
                on += ce->norm_len;
                t->toks[nt].off = (uint32_t)ts;
                t->toks[nt].len = ce->norm_len;
                t->toks[nt].hash = ce->norm_hash;
                t->list_key[nt] = ce->list_key;
                nt++;
                o[on++] = ' ';
                i = e;
                continue;
            }
            normalise(in + i, rl, o, &on);
            on = ts + one_variable(o + ts, on - ts);
            ce->raw_hash = rh;
            ce->raw_len = (uint8_t)rl;
            memcpy(ce->raw, in + i, rl);
            ce->norm_len = (uint8_t)(on - ts);
            memcpy(ce->norm, o + ts, on - ts);
            ce->norm_hash = token_hash(o + ts, on - ts);
            ce->list_key = list_key(o + ts, on - ts, ce->norm_hash);
            t->toks[nt].off = (uint32_t)ts;
            t->toks[nt].len = (uint32_t)(on - ts);
            t->toks[nt].hash = ce->norm_hash;
            t->list_key[nt] = ce->list_key;
            nt++;
            o[on++] = ' ';
            i = e;
            continue;
        } else {
            normalise(in + i, e - i, o, &on);
            on = ts + one_variable(o + ts, on - ts);
        }
        t->toks[nt].off = (uint32_t)ts;
        t->toks[nt].len = (uint32_t)(on - ts);
        t->toks[nt].hash = token_hash(o + ts, on - ts);
        if (on - ts != e - i || acc != 0) /* a plain word has no digit */
            t->list_key[nt] = list_key(o + ts, on - ts, t->toks[nt].hash);
        nt++;
        o[on++] = ' ';
        i = e;
    }
    o[on] = '\0';
    /* a run of five or more parameters, or of tokens that differ only in their numbers ("an101
     * an102 ..."), is a variable-length list: one parameter */
    int w = 0;
    for (int r = 0; r < nt;) {
        int e = r + 1;
        uint64_t k = t->list_key[r];
        while (k && e < nt && t->list_key[e] == k)
            e++;
        if (e - r >= LF_TOKEN_LIST_RUN) {
            t->toks[w] = t->toks[r];
            if (k != 1) { /* write "<*>" over the first token of the run */
                memcpy(o + t->toks[w].off, "<*>", 3);
                memset(o + t->toks[w].off + 3, ' ', t->toks[w].len - 3);
                t->toks[w].len = 3;
                t->toks[w].hash = LF_TOKEN_WILD_HASH;
            }
            w++;
            r = e;
        } else {
            while (r < e)
                t->toks[w++] = t->toks[r++];
        }
    }
    nt = w;
    *toks = t->toks;
    *text = o;
    return nt;
}
