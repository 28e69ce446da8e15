/* Token classes for the miner (see template_token.h). */
#include "template_token.h"

#include <string.h>

#include "parse_hash.h"

static inline bool wild_at(const char *s, size_t n, size_t i)
{
    return i + 3 <= n && s[i] == '<' && s[i + 1] == '*' && s[i + 2] == '>';
}

bool lf_ttok_has_wild(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (wild_at(s, n, i))
            return true;
    return false;
}

static inline bool is_alpha(unsigned char c)
{
    return (c | 32) >= 'a' && (c | 32) <= 'z';
}

bool lf_ttok_is_bare(const char *s, size_t n)
{
    bool wild = false;
    for (size_t i = 0; i < n; i++) {
        if (wild_at(s, n, i)) {
            wild = true;
            i += 2;
        } else if (is_alpha((unsigned char)s[i])) {
            return false;
        }
    }
    return wild;
}

bool lf_ttok_is_caps(const char *s, size_t n)
{
    size_t a = 0, b = n;
    while (a < b && strchr("([{'\"<", s[a]))
        a++;
    while (b > a && strchr(")]}'\">,.;:", s[b - 1]))
        b--;
    size_t caps = 0;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            caps++;
        else if (!((c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return caps >= 2;
}

size_t lf_ttok_key_length(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return i > 0 && c == '=' ? i + 1 : 0;
    }
    return 0;
}

bool lf_ttok_is_empty_value(const char *s, size_t n)
{
    if (n > 0 && (s[n - 1] == ',' || s[n - 1] == ';'))
        n--;
    if (n < 2 || s[n - 1] != '=')
        return false;
    /* the key's characters, or a template's "<*>" in them ("<*>=" is keys given no value) */
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (wild_at(s, n, i))
            i += 2;
        else if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool lf_ttok_is_past(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] && strchr(",.;:", s[n - 1]))
        n--;
    if (n < 5 || s[n - 2] != 'e' || s[n - 1] != 'd')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (i == 0 && c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static inline bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'f');
}

uint64_t lf_ttok_shape(const char *s, size_t n)
{
    char buf[256];
    size_t o = 0;
    size_t i = 0;
    while (i < n && o < sizeof buf) {
        if (!is_hex((unsigned char)s[i])) {
            buf[o++] = s[i++];
            continue;
        }
        size_t e = i;
        bool digit = false;
        while (e < n && is_hex((unsigned char)s[e]))
            digit |= s[e++] <= '9';
        if (digit) {
            buf[o++] = '\x01';
        } else {
            size_t k = e - i < sizeof buf - o ? e - i : sizeof buf - o;
            memcpy(buf + o, s + i, k);
            o += k;
        }
        i = e;
    }
    /* a token longer than the buffer: its tail is hashed as it is */
    uint64_t h = lf_phash_bytes(buf, o);
    return i < n ? lf_phash_combine(h, lf_phash_bytes(s + i, n - i)) : h;
}

static bool affix_char(char ch)
{
    return ch != '\0' && strchr(",;:=|\"'[](){}.-+@#$%&/\\!?", ch) != NULL;
}

size_t lf_ttok_generalise(const char *a, size_t al, const char *m, size_t ml, char *out)
{
    size_t lim = al < ml ? al : ml;
    size_t pre = 0, suf = 0;
    /* up to two closing characters ("<*>,", "<*>'.") */
    while (suf < 2 && suf < lim && a[al - 1 - suf] == m[ml - 1 - suf] && affix_char(a[al - 1 - suf]))
        suf++;
    /* and the common head up to a key mark or an opening bracket closed at the end; what is left of
     * the shorter token may be nothing: "()" and "(host)" give "(<*>)" (a key's value may not: the
     * partition keeps "rhost=" apart from "rhost=h") */
    static const char open[] = "([{'\"<", close[] = ")]}'\">";
    for (size_t k = 0; k + suf < lim && a[k] == m[k]; k++) {
        const char *op = a[k] ? strchr(open, a[k]) : NULL;
        if (a[k] == '=' || a[k] == ':' || (op && suf > 0 && a[al - suf] == close[op - open]))
            pre = k + 1;
    }
    /* never cut into a "<*>" of a: its head or tail is kept whole or not at all */
    while (pre > 0 && (wild_at(a, al, pre - 1) || (pre >= 2 && wild_at(a, al, pre - 2))))
        pre--;
    memcpy(out, a, pre);
    memcpy(out + pre, "<*>", 3);
    memcpy(out + pre + 3, a + al - suf, suf);
    return pre + 3 + suf;
}
