/* label_colors.c - the VOC colour map, normals colouring, gray to RGB
 * (label_colors.h). */
#include "mtlora/data/label_colors.h"

#include <math.h>

void label_voc_color(uint8_t label, uint8_t rgb[3]) {
    int r = 0, g = 0, b = 0, c = label;
    for (int j = 0; j < 8; j++, c >>= 3) {
        r |= ((c >> 0) & 1) << (7 - j);
        g |= ((c >> 1) & 1) << (7 - j);
        b |= ((c >> 2) & 1) << (7 - j);
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

void label_colorize(const uint8_t *labels, size_t n, uint8_t *rgb) {
    uint8_t table[256][3];
    for (int i = 0; i < 256; i++) label_voc_color((uint8_t)i, table[i]);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = table[labels[i]];
        rgb[3 * i] = c[0];
        rgb[3 * i + 1] = c[1];
        rgb[3 * i + 2] = c[2];
    }
}

void label_normal_values(float x, float y, float z, float v[3]) {
    /* F.normalize(p=2): x / max(||x||, eps), eps = 1e-12, in float32; then
     * (n + 1.0) * 255 / 2.0 in that order. */
    float nrm = sqrtf(x * x + y * y + z * z);
    if (!(nrm > 1e-12f)) nrm = 1e-12f;
    const float n[3] = {x / nrm, y / nrm, z / nrm};
    for (int k = 0; k < 3; k++) v[k] = (n[k] + 1.0f) * 255.0f / 2.0f;
}

/* numpy's float -> uint8 for values in [0, 255]: toward zero (clamped, so
 * a NaN or a value a rounding step outside gives 0 or 255, not garbage). */
static uint8_t to_u8(float v) {
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

void label_normal_color(float x, float y, float z, uint8_t rgb[3]) {
    float v[3];
    label_normal_values(x, y, z, v);
    for (int k = 0; k < 3; k++) rgb[k] = to_u8(v[k]);
}

void label_gray_to_rgb(const uint8_t *gray, size_t n, uint8_t *rgb) {
    for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
}
