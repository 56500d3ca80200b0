/* rng.c - counter-based generator: two rounds of the SplitMix64 finaliser
 * over a Weyl-sequence position. Passes as a hash for dropout masks; not
 * for cryptography. */
#include "mtlora/rng.h"

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t mt_rng_bits(uint64_t seed, uint64_t counter) {
    return mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (counter * 0x9e3779b97f4a7c15ULL));
}

float mt_rng_uniform(uint64_t seed, uint64_t counter) {
    return (float)(mt_rng_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}
