/* half.h - IEEE binary16 to float, exactly (subnormals, infinities and
 * NaN payloads kept): what the weight readers (safetensors F16, .pth
 * HalfStorage) convert with. */
#ifndef MTLORA_HALF_H
#define MTLORA_HALF_H

#include <stdint.h>
#include <string.h>

static inline float mt_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#endif
