/* rng.h - counter-based random numbers.
 *
 * A draw is a pure function of (seed, counter): no state advances, so any
 * thread can draw element i without knowing what other threads drew, and a
 * run is reproducible for every thread count and every split of the work. */
#ifndef MTLORA_RNG_H
#define MTLORA_RNG_H

#include <stdint.h>

/* 64 random bits for (seed, counter). */
uint64_t mt_rng_bits(uint64_t seed, uint64_t counter);
/* Uniform float in [0, 1) with 24 random bits. */
float mt_rng_uniform(uint64_t seed, uint64_t counter);

#endif
