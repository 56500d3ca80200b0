/* window.c - Swin's window partition / reverse, cyclic shift and masks.
 *
 * Pure data movement (and a mask of constants): there is no arithmetic for
 * oneDNN to do here, so these are plain loops, parallel over windows. */
#include <string.h>
#include "ctx_internal.h"
#include "mtlora/layers.h"

static mt_status window_check(mt_ctx *ctx, const char *what, const void *a, const void *b,
                              int B, int H, int W, int C, int ws) {
    if (!ctx) return MT_ERR_ARG;
    if (!a || !b) return mt_fail(ctx, MT_ERR_ARG, "%s: NULL buffer", what);
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && ws > 0 && H > 0 && W > 0 && H % ws == 0 &&
                 W % ws == 0, "B=%d H=%d W=%d C=%d window=%d", B, H, W, C, ws);
    return MT_OK;
}

/* Moves rows between the image layout and the window layout.
 * to_windows: windows <- x, else x <- windows. accumulate: += instead of =. */
static void window_move(float *windows, float *x, int B, int H, int W, int C, int ws,
                        int to_windows, int accumulate) {
    int nh = H / ws, nw = W / ws;
    long nwin = (long)B * nh * nw;
    #pragma omp parallel for schedule(static)
    for (long win = 0; win < nwin; win++) {
        int b = (int)(win / ((long)nh * nw));
        int wh = (int)((win / nw) % nh), ww = (int)(win % nw);
        for (int i = 0; i < ws; i++) {
            for (int j = 0; j < ws; j++) {
                float *wrow = windows + ((size_t)win * ws * ws + (size_t)i * ws + j) * C;
                float *xrow = x + (((size_t)b * H + (size_t)wh * ws + i) * W +
                                   (size_t)ww * ws + j) * C;
                float *dst = to_windows ? wrow : xrow;
                const float *src = to_windows ? xrow : wrow;
                if (accumulate)
                    for (int c = 0; c < C; c++) dst[c] += src[c];
                else
                    memcpy(dst, src, (size_t)C * sizeof(float));
            }
        }
    }
}

mt_status window_partition_forward(mt_ctx *ctx, float *windows, const float *x,
                                   int B, int H, int W, int C, int ws) {
    MT_CHECK(window_check(ctx, "window_partition_forward", windows, x, B, H, W, C, ws));
    window_move(windows, (float *)x, B, H, W, C, ws, 1, 0);
    return MT_OK;
}

mt_status window_partition_backward(mt_ctx *ctx, float *dx, const float *dwindows,
                                    int B, int H, int W, int C, int ws) {
    MT_CHECK(window_check(ctx, "window_partition_backward", dx, dwindows, B, H, W, C, ws));
    window_move((float *)dwindows, dx, B, H, W, C, ws, 0, 1);
    return MT_OK;
}

mt_status window_reverse_forward(mt_ctx *ctx, float *x, const float *windows,
                                 int B, int H, int W, int C, int ws) {
    MT_CHECK(window_check(ctx, "window_reverse_forward", x, windows, B, H, W, C, ws));
    window_move((float *)windows, x, B, H, W, C, ws, 0, 0);
    return MT_OK;
}

mt_status window_reverse_backward(mt_ctx *ctx, float *dwindows, const float *dx,
                                  int B, int H, int W, int C, int ws) {
    MT_CHECK(window_check(ctx, "window_reverse_backward", dwindows, dx, B, H, W, C, ws));
    window_move(dwindows, (float *)dx, B, H, W, C, ws, 1, 1);
    return MT_OK;
}

static int mod(int a, int m) { int r = a % m; return r < 0 ? r + m : r; }

/* dst[b, (i+sh)%H, (j+sw)%W] (+)= src[b, i, j]: torch.roll semantics. With
 * `inverse`, dst[b, i, j] (+)= src[b, (i+sh)%H, (j+sw)%W]. */
static void roll_move(float *dst, const float *src, int B, int H, int W, int C, int sh, int sw,
                      int inverse, int accumulate) {
    long rows = (long)B * H;
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++) {
        int b = (int)(r / H), i = (int)(r % H);
        int ti = mod(i + sh, H);
        for (int j = 0; j < W; j++) {
            int tj = mod(j + sw, W);
            size_t a = (((size_t)b * H + i) * W + j) * C;
            size_t t = (((size_t)b * H + ti) * W + tj) * C;
            float *d = dst + (inverse ? a : t);
            const float *s = src + (inverse ? t : a);
            if (accumulate)
                for (int c = 0; c < C; c++) d[c] += s[c];
            else
                memcpy(d, s, (size_t)C * sizeof(float));
        }
    }
}

mt_status roll_forward(mt_ctx *ctx, float *out, const float *x, int B, int H, int W, int C,
                       int sh, int sw) {
    MT_CHECK(window_check(ctx, "roll_forward", out, x, B, H, W, C, 1));
    if (out == x) return mt_fail(ctx, MT_ERR_ARG, "roll_forward: out must not alias x");
    roll_move(out, x, B, H, W, C, sh, sw, 0, 0);
    return MT_OK;
}

mt_status roll_backward(mt_ctx *ctx, float *dx, const float *dout, int B, int H, int W, int C,
                        int sh, int sw) {
    MT_CHECK(window_check(ctx, "roll_backward", dx, dout, B, H, W, C, 1));
    if (dx == dout) return mt_fail(ctx, MT_ERR_ARG, "roll_backward: dx must not alias dout");
    roll_move(dx, dout, B, H, W, C, sh, sw, 1, 1);
    return MT_OK;
}

/* Region of a coordinate in the shifted image: Swin slices each axis into
 * [0, L-ws), [L-ws, L-shift), [L-shift, L). */
static int region(int p, int L, int ws, int shift) {
    if (p < L - ws) return 0;
    if (p < L - shift) return 1;
    return 2;
}

mt_status swin_attn_mask(mt_ctx *ctx, float *mask, int H, int W, int ws, int shift) {
    const char *what = "swin_attn_mask";
    MT_NEED_PTR(ctx, what, mask);
    MT_NEED_DIMS(ctx, what, ws > 0 && H % ws == 0 && W % ws == 0 && H > 0 && W > 0 &&
                 shift > 0 && shift < ws, "H=%d W=%d window=%d shift=%d", H, W, ws, shift);
    int nh = H / ws, nw = W / ws, N = ws * ws;
    for (int wh = 0; wh < nh; wh++) {
        for (int ww = 0; ww < nw; ww++) {
            float *m = mask + (size_t)(wh * nw + ww) * N * N;
            for (int i = 0; i < N; i++) {
                int ri = region(wh * ws + i / ws, H, ws, shift) * 3 +
                         region(ww * ws + i % ws, W, ws, shift);
                for (int j = 0; j < N; j++) {
                    int rj = region(wh * ws + j / ws, H, ws, shift) * 3 +
                             region(ww * ws + j % ws, W, ws, shift);
                    m[i * N + j] = ri == rj ? 0.0f : -100.0f;
                }
            }
        }
    }
    return MT_OK;
}

void swin_relative_position_index(int32_t *index, int ws) {
    int N = ws * ws, span = 2 * ws - 1;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            index[i * N + j] = (i / ws - j / ws + ws - 1) * span + (i % ws - j % ws + ws - 1);
}
