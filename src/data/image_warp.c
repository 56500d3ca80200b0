/* image_warp.c - OpenCV 4.x's warpAffine / resize / flip on float64 images,
 * reproduced operation by operation (see image_warp.h for why). The order of
 * every floating-point sum and the float/double casts follow OpenCV's
 * imgwarp.cpp and resize.cpp, because the official augmentation's output is
 * truncated to uint8 afterwards and a last-bit difference can flip a pixel. */
#include "mtlora/data/image_warp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    INTER_BITS = 5,
    INTER_TAB_SIZE = 1 << INTER_BITS,
    AB_BITS = 10, /* MAX(10, INTER_BITS) */
    AB_SCALE = 1 << AB_BITS
};

/* OpenCV's interpolateCubic: float arithmetic, A = -0.75. */
static void cubic_weights(float x, float w[4]) {
    const float A = -0.75f;
    w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    w[3] = 1.f - w[0] - w[1] - w[2];
}

/* The 2-D table remap uses for floating-point images: entry (ty, tx) holds
 * the 16 products vy[k1] * vx[k2] in float. Built on the stack per call
 * (16 KB of floats, microseconds) so there is no shared state. */
static void bicubic_table(float tab[INTER_TAB_SIZE * INTER_TAB_SIZE][16]) {
    float w1d[INTER_TAB_SIZE][4];
    const float step = 1.f / INTER_TAB_SIZE;
    for (int i = 0; i < INTER_TAB_SIZE; i++) cubic_weights((float)i * step, w1d[i]);
    for (int i = 0; i < INTER_TAB_SIZE; i++)
        for (int j = 0; j < INTER_TAB_SIZE; j++)
            for (int k1 = 0; k1 < 4; k1++)
                for (int k2 = 0; k2 < 4; k2++)
                    tab[i * INTER_TAB_SIZE + j][k1 * 4 + k2] = w1d[i][k1] * w1d[j][k2];
}

/* cvRound / saturate_cast<int>(double): round half to even. */
static int round_int(double v) {
    if (v >= 2147483647.0) return INT32_MAX;
    if (v <= -2147483648.0) return INT32_MIN;
    return (int)lrint(v);
}

static short sat_short(int v) {
    return (short)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
}

void cvx_rotation_matrix(double M[6], double cx, double cy, double angle_deg, double scale) {
    /* center is a cv::Point2f in OpenCV: round it to float first. */
    const double fx = (double)(float)cx, fy = (double)(float)cy;
    const double a = angle_deg * (3.1415926535897932384626433832795 / 180);
    const double alpha = cos(a) * scale, beta = sin(a) * scale;
    M[0] = alpha;
    M[1] = beta;
    M[2] = (1 - alpha) * fx - beta * fy;
    M[3] = -beta;
    M[4] = alpha;
    M[5] = beta * fx + (1 - alpha) * fy;
}

/* OpenCV's borderInterpolate for BORDER_CONSTANT: -1 outside. */
static int inside_or_neg(int p, int len) { return (unsigned)p < (unsigned)len ? p : -1; }

static void remap_cubic_pixel(double *D, const double *src, int sh, int sw, int c, int sx, int sy,
                              const float *w) {
    const size_t sstep = (size_t)sw * c;
    if ((unsigned)sx < (unsigned)(sw > 3 ? sw - 3 : 0) &&
        (unsigned)sy < (unsigned)(sh > 3 ? sh - 3 : 0)) {
        for (int k = 0; k < c; k++) {
            const double *S = src + (size_t)sy * sstep + (size_t)sx * c + k;
            double sum = S[0] * w[0] + S[c] * w[1] + S[2 * c] * w[2] + S[3 * c] * w[3];
            S += sstep;
            sum += S[0] * w[4] + S[c] * w[5] + S[2 * c] * w[6] + S[3 * c] * w[7];
            S += sstep;
            sum += S[0] * w[8] + S[c] * w[9] + S[2 * c] * w[10] + S[3 * c] * w[11];
            S += sstep;
            sum += S[0] * w[12] + S[c] * w[13] + S[2 * c] * w[14] + S[3 * c] * w[15];
            D[k] = sum;
        }
        return;
    }
    if (sx >= sw || sx + 4 <= 0 || sy >= sh || sy + 4 <= 0) {
        for (int k = 0; k < c; k++) D[k] = 0.0;
        return;
    }
    int xs[4], ys[4];
    for (int i = 0; i < 4; i++) {
        xs[i] = inside_or_neg(sx + i, sw);
        ys[i] = inside_or_neg(sy + i, sh);
    }
    for (int k = 0; k < c; k++) {
        /* cval = 0: sum = cv*ONE, then (S - cv) * w for the inside taps. */
        double sum = 0.0;
        for (int i = 0; i < 4; i++) {
            if (ys[i] < 0) continue;
            const double *S = src + (size_t)ys[i] * sstep + k;
            const float *wr = w + 4 * i;
            for (int j = 0; j < 4; j++)
                if (xs[j] >= 0) sum += (S[(size_t)xs[j] * c] - 0.0) * wr[j];
        }
        D[k] = sum;
    }
}

mt_status cvx_warp_affine(double *dst, int dh, int dw, const double *src, int sh, int sw, int c,
                          const double M0[6], cvx_interp interp) {
    if (!dst || !src || !M0 || dh <= 0 || dw <= 0 || sh <= 0 || sw <= 0 || c < 1 || c > 4 ||
        (interp != CVX_NEAREST && interp != CVX_CUBIC))
        return MT_ERR_ARG;
    /* Invert M as warpAffine does without WARP_INVERSE_MAP. */
    double M[6];
    memcpy(M, M0, sizeof M);
    double D = M[0] * M[4] - M[1] * M[3];
    D = D != 0 ? 1. / D : 0;
    const double A11 = M[4] * D, A22 = M[0] * D;
    M[0] = A11;
    M[1] *= -D;
    M[3] *= -D;
    M[4] = A22;
    const double b1 = -M[0] * M[2] - M[1] * M[5];
    const double b2 = -M[3] * M[2] - M[4] * M[5];
    M[2] = b1;
    M[5] = b2;

    int *adelta = malloc(sizeof(int) * (size_t)dw * 2);
    float(*tab)[16] = interp == CVX_CUBIC ? malloc(sizeof(float) * 16 * INTER_TAB_SIZE * INTER_TAB_SIZE)
                                          : NULL;
    if (!adelta || (interp == CVX_CUBIC && !tab)) {
        free(adelta);
        free(tab);
        return MT_ERR_NOMEM;
    }
    int *bdelta = adelta + dw;
    for (int x = 0; x < dw; x++) {
        adelta[x] = round_int(M[0] * x * AB_SCALE);
        bdelta[x] = round_int(M[3] * x * AB_SCALE);
    }
    if (tab) bicubic_table(tab);
    const int round_delta = interp == CVX_NEAREST ? AB_SCALE / 2 : AB_SCALE / INTER_TAB_SIZE / 2;
    for (int y = 0; y < dh; y++) {
        const int X0 = round_int((M[1] * y + M[2]) * AB_SCALE) + round_delta;
        const int Y0 = round_int((M[4] * y + M[5]) * AB_SCALE) + round_delta;
        double *drow = dst + (size_t)y * dw * c;
        for (int x = 0; x < dw; x++) {
            double *Dp = drow + (size_t)x * c;
            if (interp == CVX_NEAREST) {
                const int sx = sat_short((X0 + adelta[x]) >> AB_BITS);
                const int sy = sat_short((Y0 + bdelta[x]) >> AB_BITS);
                if ((unsigned)sx < (unsigned)sw && (unsigned)sy < (unsigned)sh)
                    memcpy(Dp, src + ((size_t)sy * sw + sx) * c, sizeof(double) * c);
                else
                    for (int k = 0; k < c; k++) Dp[k] = 0.0;
            } else {
                const int X = (X0 + adelta[x]) >> (AB_BITS - INTER_BITS);
                const int Y = (Y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
                const int sx = sat_short(X >> INTER_BITS) - 1;
                const int sy = sat_short(Y >> INTER_BITS) - 1;
                const int a = (Y & (INTER_TAB_SIZE - 1)) * INTER_TAB_SIZE + (X & (INTER_TAB_SIZE - 1));
                remap_cubic_pixel(Dp, src, sh, sw, c, sx, sy, tab[a]);
            }
        }
    }
    free(adelta);
    free(tab);
    return MT_OK;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static mt_status resize_nearest(double *dst, int dh, int dw, const double *src, int sh, int sw,
                                int c) {
    const double ifx = 1. / ((double)dw / sw), ify = 1. / ((double)dh / sh);
    int *xofs = malloc(sizeof(int) * (size_t)dw);
    if (!xofs) return MT_ERR_NOMEM;
    for (int x = 0; x < dw; x++) {
        const int sx = (int)floor(x * ifx);
        xofs[x] = sx < sw - 1 ? sx : sw - 1;
    }
    for (int y = 0; y < dh; y++) {
        int sy = (int)floor(y * ify);
        if (sy > sh - 1) sy = sh - 1;
        const double *srow = src + (size_t)sy * sw * c;
        double *drow = dst + (size_t)y * dw * c;
        for (int x = 0; x < dw; x++)
            memcpy(drow + (size_t)x * c, srow + (size_t)xofs[x] * c, sizeof(double) * c);
    }
    free(xofs);
    return MT_OK;
}

/* Source index (floor) and float weights for output position d, as
 * resizeGeneric_ computes them. */
static void cubic_tap(int d, double scale, int *s0, float w[4]) {
    float f = (float)((d + 0.5) * scale - 0.5);
    const int s = (int)floorf(f);
    f -= (float)s;
    *s0 = s;
    cubic_weights(f, w);
}

static mt_status resize_cubic(double *dst, int dh, int dw, const double *src, int sh, int sw,
                              int c) {
    const double scale_x = 1. / ((double)dw / sw), scale_y = 1. / ((double)dh / sh);
    int *xofs = malloc(sizeof(int) * (size_t)dw * 4);
    float *alpha = malloc(sizeof(float) * (size_t)dw * 4);
    double *rows = malloc(sizeof(double) * (size_t)dw * c * 4);
    if (!xofs || !alpha || !rows) {
        free(xofs);
        free(alpha);
        free(rows);
        return MT_ERR_NOMEM;
    }
    for (int x = 0; x < dw; x++) {
        int s;
        cubic_tap(x, scale_x, &s, alpha + 4 * x);
        for (int j = 0; j < 4; j++) xofs[4 * x + j] = clampi(s - 1 + j, 0, sw - 1);
    }
    for (int y = 0; y < dh; y++) {
        int sy;
        float beta[4];
        cubic_tap(y, scale_y, &sy, beta);
        /* Horizontal pass of the 4 source rows (clamped), in double. */
        for (int k = 0; k < 4; k++) {
            const double *S = src + (size_t)clampi(sy - 1 + k, 0, sh - 1) * sw * c;
            double *R = rows + (size_t)k * dw * c;
            for (int x = 0; x < dw; x++) {
                const int *xo = xofs + 4 * x;
                const float *a = alpha + 4 * x;
                for (int ch = 0; ch < c; ch++)
                    R[(size_t)x * c + ch] = S[(size_t)xo[0] * c + ch] * a[0] +
                                            S[(size_t)xo[1] * c + ch] * a[1] +
                                            S[(size_t)xo[2] * c + ch] * a[2] +
                                            S[(size_t)xo[3] * c + ch] * a[3];
            }
        }
        const double b0 = beta[0], b1 = beta[1], b2 = beta[2], b3 = beta[3];
        const size_t n = (size_t)dw * c;
        const double *S0 = rows, *S1 = rows + n, *S2 = rows + 2 * n, *S3 = rows + 3 * n;
        double *drow = dst + (size_t)y * n;
        for (size_t i = 0; i < n; i++) drow[i] = S0[i] * b0 + S1[i] * b1 + S2[i] * b2 + S3[i] * b3;
    }
    free(xofs);
    free(alpha);
    free(rows);
    return MT_OK;
}

mt_status cvx_resize(double *dst, int dh, int dw, const double *src, int sh, int sw, int c,
                     cvx_interp interp) {
    if (!dst || !src || dh <= 0 || dw <= 0 || sh <= 0 || sw <= 0 || c < 1 || c > 4)
        return MT_ERR_ARG;
    if (dh == sh && dw == sw) { /* cv::resize copies when the size is unchanged */
        memcpy(dst, src, sizeof(double) * (size_t)dh * dw * c);
        return MT_OK;
    }
    if (interp == CVX_NEAREST) return resize_nearest(dst, dh, dw, src, sh, sw, c);
    if (interp == CVX_CUBIC) return resize_cubic(dst, dh, dw, src, sh, sw, c);
    return MT_ERR_ARG;
}

void cvx_flip_horizontal(double *img, int h, int w, int c) {
    for (int y = 0; y < h; y++) {
        double *row = img + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                const double t = row[(size_t)a * c + k];
                row[(size_t)a * c + k] = row[(size_t)b * c + k];
                row[(size_t)b * c + k] = t;
            }
    }
}
