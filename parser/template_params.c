/* Parameter extraction (see template_params.h). */
#include "template_params.h"

#include <stdbool.h>
#include <string.h>

static inline bool ws(unsigned char c)
{
    return c <= ' ' && (c == ' ' || (c >= '\t' && c <= '\r'));
}

/* Matches segment g[0..gl) at p; returns end or -1. */
static long seg_at(const char *g, size_t gl, const char *s, size_t sl, size_t p)
{
    size_t i = 0;
    while (i < gl) {
        if (g[i] == ' ') {
            while (i < gl && g[i] == ' ')
                i++;
            if (p >= sl || !ws((unsigned char)s[p]))
                return -1;
            while (p < sl && ws((unsigned char)s[p]))
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
            while (p < sl && !ws((unsigned char)s[p]))
                p++;
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
        while (mp < mlen && ws((unsigned char)msg[mp]))
            mp++;
        if (tp >= tlen)
            return mp >= mlen ? n : -1;
        if (mp >= mlen)
            return -1;
        size_t tl = 0;
        bool has_star = false;
        while (tp + tl < tlen && tmpl[tp + tl] != ' ')
            has_star |= tmpl[tp + tl++] == '*';
        size_t me = mp;
        while (me < mlen && !ws((unsigned char)msg[me]))
            me++;
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

static int match_general(const char *tmpl, size_t tlen, const char *msg, size_t mlen, lf_param *out, int max)
{
    /* the message without surrounding whitespace, as the tokenizer saw it */
    size_t ms = 0, me = mlen;
    while (ms < me && ws((unsigned char)msg[ms]))
        ms++;
    while (me > ms && ws((unsigned char)msg[me - 1]))
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
        long st = seg_find(w, gl, s, sl, pos + 1 <= sl ? pos + 1 : sl + 1, star == NULL, &end);
        if (st < 0 || (size_t)st <= pos)
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
