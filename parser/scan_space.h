/* Finding the end of a token or a field: the first whitespace byte after it. The parser's byte loops
 * spent more time on this search than on any rule (a Mac or OpenStack line is 150-300 bytes of
 * short tokens), so it looks at sixteen bytes at a time where it can. Whitespace is ' ' and
 * '\t'..'\r' everywhere in the parser. */
#ifndef LF_SCAN_SPACE_H
#define LF_SCAN_SPACE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

static inline bool lf_is_space(unsigned char c)
{
    return c == ' ' || (unsigned char)(c - '\t') <= '\r' - '\t';
}

#ifdef __SSE2__
/* Bit k set when byte k of the sixteen is whitespace. */
static inline unsigned lf_space_mask16(__m128i x)
{
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('\t')); /* '\t'..'\r' become 0..4: unsigned d <= 4 */
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8('\r' - '\t')), d);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')), ctl));
}
#endif

/* The offset of the first whitespace byte in s[p..len), or len. Reads nothing outside s[0..len). */
static inline size_t lf_next_space(const char *s, size_t p, size_t len)
{
#ifdef __SSE2__
    while (p + 16 <= len) {
        unsigned m = lf_space_mask16(_mm_loadu_si128((const __m128i *)(const void *)(s + p)));
        if (m)
            return p + (size_t)__builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < len && !lf_is_space((unsigned char)s[p]))
        p++;
    return p;
}

#endif
