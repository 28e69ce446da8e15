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
        uint64_t w = 0;
        memcpy(&w, s, n);
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
