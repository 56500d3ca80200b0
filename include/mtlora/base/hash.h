/* hash.h - 64-bit FNV-1a, the one checksum mtlora writes into files (shard
 * records, checkpoints) and compares across ranks. Not cryptographic: it
 * detects corruption and accidental differences. */
#ifndef MTLORA_HASH_H
#define MTLORA_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MT_FNV1A64_INIT 0xcbf29ce484222325ULL

/* Continues hash h over n bytes (start with MT_FNV1A64_INIT). */
static inline uint64_t mt_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#endif
