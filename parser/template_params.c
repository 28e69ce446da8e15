/* Parameter extraction (see template_params.h). */
#include "template_params.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lf_alloc.h"
#include "parse_hash.h"
#include "scan_space.h"

/* Matches segment g[0..gl) at p; returns end or -1. */
static long seg_at(const char *g, size_t gl, const char *s, size_t sl, size_t p)
{
    size_t i = 0;
    while (i < gl) {
        if (g[i] == ' ') {
            while (i < gl && g[i] == ' ')
                i++;
            if (p >= sl || !lf_is_space((unsigned char)s[p]))
                return -1;
            while (p < sl && lf_is_space((unsigned char)s[p]))
                p++;
        } else {
            if (p >= sl || s[p] != g[i])
                return -1;
            p++;
            i++;
        }
    }
    return (long)p;
}

static long seg_find(const char *g, size_t gl, const char *s, size_t sl, size_t p, bool at_end, long *end)
{
    if (gl == 0) {
        *end = at_end ? (long)sl : (long)p;
        return p <= sl ? *end : -1;
    }
    while (p < sl) {
        if (g[0] == ' ') {
            p = lf_next_space(s, p, sl);
            if (p >= sl)
                return -1;
        } else {
            const char *h = memchr(s + p, g[0], sl - p);
            if (!h)
                return -1;
            p = (size_t)(h - s);
        }
        long e = seg_at(g, gl, s, sl, p);
        if (e >= 0 && (!at_end || (size_t)e == sl)) {
            *end = e;
            return (long)p;
        }
        p++;
    }
    return -1;
}

static int match_general(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max);

/* Fast path: when the message has as many whitespace-separated tokens as the template, token i of
 * the template is matched against token i of the message alone (a "<*>" token takes the whole
 * token). Returns -1 when the shapes differ, and the general matcher decides. */
static int match_aligned(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max)
{
    size_t tp = 0, mp = 0;
    int n = 0;
    for (;;) {
        while (mp < mlen && lf_is_space((unsigned char)msg[mp]))
            mp++;
        if (tp >= tlen)
            return mp >= mlen ? n : -1;
        if (mp >= mlen)
            return -1;
        size_t tl = 0;
        bool has_star = false;
        while (tp + tl < tlen && tmpl[tp + tl] != ' ')
            has_star |= tmpl[tp + tl++] == '*';
        size_t me = lf_next_space(msg, mp, mlen);
        const char *t = tmpl + tp;
        if (tl == 3 && t[0] == '<' && t[1] == '*' && t[2] == '>') {
            if (n < max) {
                out[n].off = (uint32_t)mp;
                out[n].len = (uint32_t)(me - mp);
            }
            n++;
        } else if (has_star) {
            int k = match_general(t, tl, msg + mp, me - mp, n < max ? out + n : out, n < max ? max - n : 0);
            if (k < 0)
                return -1;
            for (int i = 0; i < k && n + i < max; i++)
                out[n + i].off += (uint32_t)mp;
            n += k;
        } else if (tl != me - mp || memcmp(t, msg + mp, tl) != 0) {
            return -1;
        }
        tp += tl + 1;
        mp = me;
    }
}

int lf_template_params(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max)
{
    int n = match_aligned(tmpl, tlen, msg, mlen, out, max);
    if (n >= 0)
        return n < max ? n : max;
    n = match_general(tmpl, tlen, msg, mlen, out, max);
    return n < max ? n : max;
}

/* Each "<*>" takes the shortest text that lets the rest match: non-empty, or (allow_empty) possibly
 * empty, for a parameter inside a token whose value may be nothing ("()" for "(<*>)"). */
static int match_general_as(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max,
                            bool allow_empty)
{
    /* the message without surrounding whitespace, as the tokenizer saw it */
    size_t ms = 0, me = mlen;
    while (ms < me && lf_is_space((unsigned char)msg[ms]))
        ms++;
    while (me > ms && lf_is_space((unsigned char)msg[me - 1]))
        me--;
    const char *s = msg;
    size_t sl = me;
    /* first segment, anchored at the start */
    const char *w = tmpl, *te = tmpl + tlen;
    const char *star = NULL;
    for (const char *q = w; q + 3 <= te; q++)
        if (q[0] == '<' && q[1] == '*' && q[2] == '>') {
            star = q;
            break;
        }
    size_t gl = (size_t)((star ? star : te) - w);
    long e = seg_at(w, gl, s, sl, ms);
    if (e < 0)
        return -1;
    size_t pos = (size_t)e;
    int n = 0;
    while (star) {
        w = star + 3;
        star = NULL;
        for (const char *q = w; q + 3 <= te; q++)
            if (q[0] == '<' && q[1] == '*' && q[2] == '>') {
                star = q;
                break;
            }
        gl = (size_t)((star ? star : te) - w);
        long end;
        size_t from = allow_empty ? pos : pos + 1;
        long st = seg_find(w, gl, s, sl, from <= sl ? from : sl + 1, star == NULL, &end);
        if (st < 0 || (size_t)st < from)
            return -1;
        if (n < max) {
            out[n].off = (uint32_t)pos;
            out[n].len = (uint32_t)((size_t)st - pos);
        }
        n++;
        pos = (size_t)end;
    }
    if (pos != sl)
        return -1;
    return n;
}

/* Non-empty parameters where the message allows, else empty ones where it takes them. */
static int match_general(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max)
{
    int n = match_general_as(tmpl, tlen, msg, mlen, out, max, false);
    return n >= 0 ? n : match_general_as(tmpl, tlen, msg, mlen, out, max, true);
}

/* ---- the cache: templates split into tokens once ---- */

#define CACHE_SLOTS 1024 /* a slot is ~1 KiB; calloc leaves the pages of unused ones untouched */
#define CACHED_TEXT 512  /* longer templates are not cached */
#define CACHED_TOKENS 96

enum { T_LIT, T_STAR, T_PATTERN };

typedef struct ctok {
    uint16_t off, len;
    uint8_t kind;
} ctok;

typedef struct centry {
    uint64_t hash; /* 0: empty */
    uint16_t tlen, ntok;
    char text[CACHED_TEXT];
    ctok tok[CACHED_TOKENS];
} centry;

struct lf_params_cache {
    centry slot[CACHE_SLOTS];
};

int lf_params_cache_new(lf_params_cache **out)
{
    *out = lf_calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void lf_params_cache_free(lf_params_cache *c)
{
    lf_free(c);
}

/* The entry for the template, split now if it is not there; NULL when it cannot be cached. */
static const centry *lookup(lf_params_cache *c, const char *tmpl, size_t tlen)
{
    if (tlen == 0 || tlen > CACHED_TEXT)
        return NULL;
    uint64_t h = lf_phash_bytes(tmpl, tlen) | 1;
    centry *e = &c->slot[h & (CACHE_SLOTS - 1)];
    if (e->hash == h && e->tlen == tlen && memcmp(e->text, tmpl, tlen) == 0)
        return e;
    uint16_t n = 0;
    for (size_t i = 0; i < tlen;) {
        size_t j = i;
        bool star = false;
        while (j < tlen && tmpl[j] != ' ')
            star |= tmpl[j++] == '*';
        if (j > i) {
            if (n == CACHED_TOKENS)
                return NULL;
            bool bare = j - i == 3 && tmpl[i] == '<' && tmpl[i + 1] == '*' && tmpl[i + 2] == '>';
            e->tok[n++] = (ctok){(uint16_t)i, (uint16_t)(j - i), bare ? T_STAR : star ? T_PATTERN : T_LIT};
        }
        i = j + 1;
    }
    memcpy(e->text, tmpl, tlen);
    e->tlen = (uint16_t)tlen;
    e->ntok = n;
    e->hash = h;
    return e;
}

/* match_aligned over the split template. */
static int match_split(const centry *e, const char *msg, size_t mlen, lf_param *out, int max)
{
    size_t mp = 0;
    int n = 0;
    for (uint16_t k = 0; k < e->ntok; k++) {
        while (mp < mlen && lf_is_space((unsigned char)msg[mp]))
            mp++;
        if (mp >= mlen)
            return -1;
        size_t me = lf_next_space(msg, mp, mlen);
        const ctok *t = &e->tok[k];
        if (t->kind == T_STAR) {
            if (n < max)
                out[n] = (lf_param){(uint32_t)mp, (uint32_t)(me - mp)};
            n++;
        } else if (t->kind == T_LIT) {
            if (t->len != me - mp || memcmp(e->text + t->off, msg + mp, t->len) != 0)
                return -1;
        } else {
            int r = match_general(e->text + t->off, t->len, msg + mp, me - mp, n < max ? out + n : out,
                                  n < max ? max - n : 0);
            if (r < 0)
                return -1;
            for (int i = 0; i < r && n + i < max; i++)
                out[n + i].off += (uint32_t)mp;
            n += r;
        }
        mp = me;
    }
    while (mp < mlen && lf_is_space((unsigned char)msg[mp]))
        mp++;
    return mp >= mlen ? n : -1;
}

int lf_template_params_cached(lf_params_cache *c, const char *tmpl, size_t tlen, const char *msg, size_t mlen,
                              lf_param *out, int max)
{
    const centry *e = c ? lookup(c, tmpl, tlen) : NULL;
    if (!e)
        return lf_template_params(tmpl, tlen, msg, mlen, out, max);
    int n = match_split(e, msg, mlen, out, max);
    if (n < 0)
        n = match_general(tmpl, tlen, msg, mlen, out, max);
    return n < max ? n : max;
}
