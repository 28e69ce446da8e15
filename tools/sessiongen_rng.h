/* Deterministic pseudo-random numbers for logferry-sessiongen: xoshiro256** seeded through
 * splitmix64. Never rand() or time(): the same seed must give byte-identical output everywhere.
 * Every session gets its own generator derived from (seed, stream id), so what one session draws
 * never shifts what another gets. */
#ifndef SESSIONGEN_RNG_H
#define SESSIONGEN_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct sg_rng {
    uint64_t s[4];
} sg_rng;

static inline uint64_t sg_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A 64-bit mix of two values, for deriving stream seeds and stable per-entity properties. */
static inline uint64_t sg_mix(uint64_t a, uint64_t b)
{
    uint64_t st = a ^ (b * 0xd6e8feb86659fd93ULL);
    sg_splitmix64(&st);
    return sg_splitmix64(&st);
}

static inline void sg_rng_seed(sg_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = sg_mix(seed, stream);
    for (int i = 0; i < 4; i++)
        r->s[i] = sg_splitmix64(&st);
}

static inline uint64_t sg_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sg_next(sg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sg_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sg_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double sg_unit(sg_rng *r)
{
    return (double)(sg_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n); n > 0. Lemire's multiply-shift (the tiny bias is irrelevant here). The 128-bit
 * product is a GCC and Clang extension, hence __extension__ under -Wpedantic. */
static inline uint64_t sg_below(sg_rng *r, uint64_t n)
{
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)sg_next(r) * n) >> 64);
}

/* Uniform in [lo, hi]. */
static inline int64_t sg_range(sg_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)sg_below(r, (uint64_t)(hi - lo) + 1);
}

static inline int sg_chance(sg_rng *r, double p)
{
    return sg_unit(r) < p;
}

/* Exponential with the given mean. */
static inline double sg_exp(sg_rng *r, double mean)
{
    return -mean * log1p(-sg_unit(r));
}

/* Standard normal (Box-Muller, one of the pair). */
static inline double sg_normal(sg_rng *r)
{
    double u1 = sg_unit(r);
    double u2 = sg_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Log-normal with the given median and shape sigma. */
static inline double sg_lognormal(sg_rng *r, double median, double sigma)
{
    return median * exp(sigma * sg_normal(r));
}

/* Pareto with minimum xm and tail index alpha (smaller alpha: heavier tail). */
static inline double sg_pareto(sg_rng *r, double xm, double alpha)
{
    return xm * pow(1.0 - sg_unit(r), -1.0 / alpha);
}

#endif
