/* A small, fast, seedable PRNG (xoshiro256**, seeded through splitmix64) used wherever hai
 * needs reproducible randomness: sampling and synthetic weights. */
#ifndef HAI_RNG_H
#define HAI_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct hai_rng {
    uint64_t s[4];
} hai_rng;

static inline uint64_t hai_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void hai_rng_seed(hai_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = hai_splitmix64(&seed);
}

static inline uint64_t hai_rng_next(hai_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double hai_rng_uniform(hai_rng *r) { return (double)(hai_rng_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal pair (Box-Muller). */
static inline void hai_rng_normal2(hai_rng *r, float *a, float *b) {
    double u1 = hai_rng_uniform(r), u2 = hai_rng_uniform(r);
    double rad = sqrt(-2.0 * log(1.0 - u1));
    *a = (float)(rad * cos(6.283185307179586 * u2));
    *b = (float)(rad * sin(6.283185307179586 * u2));
}

#endif
