/* Hexadecimal digits: the one decoder every parser of hex text uses (percent-escapes, config
 * escapes, keys and hashes, template ids). Whole strings: lf_crypto_hex_decode/encode. */
#ifndef LF_HEX_H
#define LF_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* 0-15 for 0-9, a-f, A-F; -1 for anything else. */
static inline int lf_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* true when s holds exactly len bytes of lower-case hex (ids and hashes are written that way). */
static inline bool lf_hex_is_lower(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

#endif
