/* A fast 64-bit hash for tokens and tree keys (not cryptographic; template ids use BLAKE2b). */
#ifndef LF_PARSE_HASH_H
#define LF_PARSE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t lf_phash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* A 32-bit load read as little-endian, so that the tail word below holds the bytes in order. */
static inline uint32_t lf_phash_le32(uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
}

static inline uint64_t lf_phash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0x100000001b3ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        /* the last 1-7 bytes as a little-endian word, zero-padded; two fixed-size loads instead of
         * a memcpy of variable length, which is a call to libc */
        uint64_t w;
        if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, s, 4);
            memcpy(&hi, s + n - 4, 4);
            w = lf_phash_le32(lo) | (uint64_t)lf_phash_le32(hi) >> (8 * (8 - n)) << 32;
        } else {
            w = (uint64_t)s[0] | (uint64_t)s[n / 2] << (8 * (n / 2)) | (uint64_t)s[n - 1] << (8 * (n - 1));
        }
        h = (h ^ w) * 0x94d049bb133111ebULL;
        h ^= h >> 29;
    }
    return lf_phash_mix(h);
}

static inline uint64_t lf_phash_combine(uint64_t a, uint64_t b)
{
    return lf_phash_mix(a * 0x9e3779b97f4a7c15ULL + b + 0x632be59bd9b4e019ULL);
}

#endif
