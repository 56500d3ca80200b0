/* prediction_maps.c - logits at S x S to 8-bit maps at the image's size, the
 * official way (prediction_maps.h). */
#include "mtlora/data/prediction_maps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/image_warp.h"
#include "mtlora/data/label_colors.h"

/* numpy's float32 -> uint8 (astype) for values meant to be in [0, 255]:
 * toward zero; clamped so that NaN or a rounding step outside is defined. */
static uint8_t to_u8(float v) {
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

/* One axis of INTER_LINEAR: source index and the two weights per output. */
static void linear_axis(int src, int dst, int clamp_weights, int *ofs, float *w0, float *w1) {
    const double scale = 1.0 / ((double)dst / (double)src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (clamp_weights) {
            if (s < 0) f = 0.0f, s = 0;
            if (s >= src - 1) f = 0.0f, s = src - 1;
        }
        ofs[d] = s;
        w0[d] = 1.0f - f;
        w1[d] = f;
    }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* cv2 INTER_AREA at exactly half size on both axes: the mean of each 2 x 2,
 * summed in OpenCV's order (one channel: its vector path adds the row pairs
 * first; more channels: left to right). */
static void area_half(const float *src, int sw, int c, float *dst, int dh, int dw) {
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < c; k++) {
                const float *p = src + ((size_t)(2 * y) * sw + 2 * x) * c + k;
                const float *q = p + (size_t)sw * c;
                dst[((size_t)y * dw + x) * c + k] =
                    c == 1 ? ((p[0] + p[c]) + (q[0] + q[c])) * 0.25f : (p[0] + p[c] + q[0] + q[c]) * 0.25f;
            }
}

mt_status pred_resize_linear(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    if (!src || !dst || sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || c < 1 || c > 4) return MT_ERR_ARG;
    if (sh == dh && sw == dw) {
        memcpy(dst, src, sizeof(float) * (size_t)sh * sw * c);
        return MT_OK;
    }
    if (sw == 2 * dw && sh == 2 * dh) {
        area_half(src, sw, c, dst, dh, dw);
        return MT_OK;
    }
    int *xofs = malloc(sizeof(int) * (size_t)dw), *yofs = malloc(sizeof(int) * (size_t)dh);
    float *ax = malloc(sizeof(float) * 2 * (size_t)dw), *ay = malloc(sizeof(float) * 2 * (size_t)dh);
    float *rows = malloc(sizeof(float) * 2 * (size_t)dw * c);
    if (!xofs || !yofs || !ax || !ay || !rows) {
        free(xofs), free(yofs), free(ax), free(ay), free(rows);
        return MT_ERR_NOMEM;
    }
    linear_axis(sw, dw, 1, xofs, ax, ax + dw);
    linear_axis(sh, dh, 0, yofs, ay, ay + dh);
    const size_t rw = (size_t)dw * c;
    for (int y = 0; y < dh; y++) {
        for (int r = 0; r < 2; r++) { /* the two source rows, filtered along x */
            const float *S = src + (size_t)clampi(yofs[y] + r, 0, sh - 1) * sw * c;
            float *D = rows + r * rw;
            for (int x = 0; x < dw; x++) {
                const int sx = xofs[x];
                const float a0 = ax[x], a1 = ax[dw + x];
                for (int k = 0; k < c; k++)
                    D[(size_t)x * c + k] = sx + 1 < sw ? S[(size_t)sx * c + k] * a0 + S[(size_t)(sx + 1) * c + k] * a1
                                                       : S[(size_t)sx * c + k] * a0;
            }
        }
        const float b0 = ay[y], b1 = ay[dh + y];
        float *out = dst + (size_t)y * rw;
        for (size_t i = 0; i < rw; i++) out[i] = rows[i] * b0 + rows[rw + i] * b1;
    }
    free(xofs), free(yofs), free(ax), free(ay), free(rows);
    return MT_OK;
}

mt_status pred_labels(const float *logits, int K, int S, int h, int w, uint8_t *labels) {
    if (!logits || !labels || K < 1 || K > 256 || S <= 0 || h <= 0 || w <= 0) return MT_ERR_ARG;
    const size_t plane = (size_t)S * S;
    double *arg = malloc(sizeof(double) * plane);
    double *big = (h == S && w == S) ? arg : malloc(sizeof(double) * (size_t)h * w);
    if (!arg || !big) {
        free(arg);
        if (big != arg) free(big);
        return MT_ERR_NOMEM;
    }
    for (size_t p = 0; p < plane; p++) {
        int best = 0;
        float bv = logits[p];
        for (int k = 1; k < K; k++)
            if (logits[(size_t)k * plane + p] > bv) bv = logits[(size_t)k * plane + p], best = k;
        arg[p] = best;
    }
    mt_status st = big == arg ? MT_OK : cvx_resize(big, h, w, arg, S, S, 1, CVX_NEAREST);
    if (!st)
        for (size_t i = 0; i < (size_t)h * w; i++) labels[i] = (uint8_t)big[i];
    if (big != arg) free(big);
    free(arg);
    return st;
}

mt_status pred_probability(const float *logit, int S, int h, int w, uint8_t *gray, uint8_t *mask) {
    if (!logit || !gray || S <= 0 || h <= 0 || w <= 0) return MT_ERR_ARG;
    const size_t plane = (size_t)S * S, n = (size_t)h * w;
    float *v = malloc(sizeof(float) * plane), *out = malloc(sizeof(float) * n);
    if (!v || !out) {
        free(v), free(out);
        return MT_ERR_NOMEM;
    }
    /* torch: 255 * 1 / (1 + torch.exp(-output)), left to right, float32 */
    for (size_t p = 0; p < plane; p++) v[p] = 255.0f / (1.0f + expf(-logit[p]));
    mt_status st = pred_resize_linear(v, S, S, 1, out, h, w);
    if (!st)
        for (size_t i = 0; i < n; i++) {
            gray[i] = to_u8(out[i]);
            if (mask) mask[i] = out[i] / 255.0f > 0.5f ? 255 : 0;
        }
    free(v), free(out);
    return st;
}

mt_status pred_normals(const float *logits, int S, int h, int w, uint8_t *rgb) {
    if (!logits || !rgb || S <= 0 || h <= 0 || w <= 0) return MT_ERR_ARG;
    const size_t plane = (size_t)S * S, n = (size_t)h * w;
    float *v = malloc(sizeof(float) * 3 * plane), *out = malloc(sizeof(float) * 3 * n);
    if (!v || !out) {
        free(v), free(out);
        return MT_ERR_NOMEM;
    }
    for (size_t p = 0; p < plane; p++)
        label_normal_values(logits[p], logits[plane + p], logits[2 * plane + p], v + 3 * p);
    mt_status st = pred_resize_linear(v, S, S, 3, out, h, w);
    if (!st)
        for (size_t i = 0; i < 3 * n; i++) rgb[i] = to_u8(out[i]);
    free(v), free(out);
    return st;
}
