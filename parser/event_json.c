/* JSON output writer (see event_json.h). */
#include "event_json.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lf_alloc.h"

/* 0: copy as is; 1: needs an escape; 2: start of a multi-byte UTF-8 sequence to check */
static const unsigned char esc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

int lf_jw_init(lf_jw *w, int fd, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->cap = cap < 4096 ? 4096 : cap;
    w->buf = lf_malloc(w->cap);
    return w->buf ? 0 : -ENOMEM;
}

void lf_jw_free(lf_jw *w)
{
    lf_free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

int lf_jw_flush(lf_jw *w)
{
    if (w->fd < 0)
        return w->error;
    size_t off = 0;
    while (off < w->len && !w->error) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            w->error = -errno;
            break;
        }
        off += (size_t)n;
    }
    w->len = 0;
    return w->error;
}

int lf_jw_reserve_slow(lf_jw *w, size_t n)
{
    if (w->len + n <= w->cap)
        return 0;
    if (w->fd >= 0 && n <= w->cap / 2) {
        lf_jw_flush(w);
        return w->error;
    }
    if (w->fd >= 0)
        lf_jw_flush(w);
    size_t cap = w->cap;
    while (cap < w->len + n)
        cap *= 2;
    char *b = lf_realloc(w->buf, cap);
    if (!b) {
        if (!w->error)
            w->error = -ENOMEM;
        return -ENOMEM;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

/* Length of a valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;
        if (c == 0xed && s[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

void lf_jw_str(lf_jw *w, const char *str, size_t n)
{
    /* worst case: every byte becomes 6 ("\u0000") */
    if (lf_jw_reserve(w, n * 6 + 2) < 0)
        return;
    const unsigned char *s = (const unsigned char *)str;
    char *o = w->buf + w->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
#ifdef __SSE2__
        /* sixteen bytes at a time while none is a control byte, '"', '\\' or non-ASCII (a signed
         * "less than space" is true for controls and for every byte >= 0x80) */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        while (j + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + j));
            unsigned bad = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                _mm_cmplt_epi8(x, space), _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash))));
            if (bad) {
                unsigned k = (unsigned)__builtin_ctz(bad);
                memcpy(o, s + j, k);
                o += k;
                j += k;
                break;
            }
            _mm_storeu_si128((__m128i *)(void *)o, x);
            o += 16;
            j += 16;
        }
#endif
        /* eight bytes at a time while none is a control byte, '"', '\\' or non-ASCII */
        while (j + 8 <= n) {
            uint64_t x, q, b;
            memcpy(&x, s + j, 8);
            q = x ^ 0x2222222222222222ULL;
            b = x ^ 0x5c5c5c5c5c5c5c5cULL;
            uint64_t hit = ((x - 0x2020202020202020ULL) | ((q - 0x0101010101010101ULL) & ~q) |
                            ((b - 0x0101010101010101ULL) & ~b) | x) &
                           0x8080808080808080ULL;
            if (hit)
                break;
            memcpy(o, s + j, 8);
            o += 8;
            j += 8;
        }
        i = j;
        while (j < n && esc_class[s[j]] == 0)
            j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        i = j;
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (esc_class[c] == 2) {
            size_t k = utf8_seq(s + i, n - i);
            if (k) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            } else {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
                i++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
        i++;
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

bool lf_jw_is_clean(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t j = 0;
#ifdef __SSE2__
    /* 16 bytes at a time: a signed "less than space" is true for controls and for every byte >= 0x80 */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    for (; j + 16 <= n; j += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + j));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, space),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
        if (_mm_movemask_epi8(bad))
            return false;
    }
#endif
    uint64_t acc = 0;
    size_t words_from = j;
    for (; j + 8 <= n; j += 8) {
        uint64_t x, q, b;
        memcpy(&x, s + j, 8);
        q = x ^ 0x2222222222222222ULL;
        b = x ^ 0x5c5c5c5c5c5c5c5cULL;
        acc |= ((x - 0x2020202020202020ULL) | ((q - 0x0101010101010101ULL) & ~q) |
                ((b - 0x0101010101010101ULL) & ~b) | x);
    }
    if (acc & 0x8080808080808080ULL) {
        /* the word test may be wrong about bytes next to a borrow: decide byte by byte */
        for (size_t i = words_from; i < n; i++)
            if (esc_class[s[i]])
                return false;
        return true;
    }
    for (; j < n; j++)
        if (esc_class[s[j]])
            return false;
    return true;
}

void lf_jw_u64(lf_jw *w, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (lf_jw_reserve(w, (size_t)n) < 0)
        return;
    while (n)
        w->buf[w->len++] = tmp[--n];
}

void lf_jw_hex64(lf_jw *w, uint64_t v)
{
    if (lf_jw_reserve(w, 18) < 0)
        return;
    char *o = w->buf + w->len;
    o[0] = '"';
    for (int i = 0; i < 16; i++)
        o[1 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
    o[17] = '"';
    w->len += 18;
}
