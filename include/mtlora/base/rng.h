/* rng.h - counter-based random numbers.
 *
 * A draw is a pure function of (seed, counter): no state advances, so any
 * thread can draw element i without knowing what other threads drew, and a
 * run is reproducible for every thread count and every split of the work. */
#ifndef MTLORA_RNG_H
#define MTLORA_RNG_H

#include <stdint.h>

/* Two rounds of the SplitMix64 finaliser over a Weyl-sequence position:
 * good enough as a hash for dropout masks and initialisation; not for
 * cryptography. Inline because dropout draws one per element. */
static inline uint64_t mt_rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 64 random bits for (seed, counter). */
static inline uint64_t mt_rng_bits(uint64_t seed, uint64_t counter) {
    return mt_rng_mix64(mt_rng_mix64(seed + 0x9e3779b97f4a7c15ULL) ^
                        (counter * 0x9e3779b97f4a7c15ULL));
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float mt_rng_uniform(uint64_t seed, uint64_t counter) {
    return (float)(mt_rng_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
