/* window.c - Swin's window partition / reverse, cyclic shift and masks.
 *
 * Partition and reverse are permutations of a 6-D view, done by oneDNN's
 * reorder. The cyclic shift wraps around, which no single strided view can
 * express, so it is a plain loop parallel over rows; the mask is constants. */
#include <string.h>
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static mt_status window_check(mt_ctx *ctx, const char *what, const void *a, const void *b,
                              int B, int H, int W, int C, int ws) {
    if (!ctx) return MT_ERR_ARG;
    if (!a || !b) return mt_fail(ctx, MT_ERR_ARG, "%s: NULL buffer", what);
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && ws > 0 && H > 0 && W > 0 && H % ws == 0 &&
                 W % ws == 0, "B=%d H=%d W=%d C=%d window=%d", B, H, W, C, ws);
    return MT_OK;
}

/* Moves tokens between the image layout [B, H, W, C] and the window layout
 * [B*nh*nw, ws*ws, C] as one oneDNN reorder over a 6-D view
 * (b, window row, window column, i, j, c) of both buffers.
 * to_windows: windows <- x, else x <- windows. accumulate: += instead of =. */
static mt_status window_move(mt_ctx *ctx, const char *what, float *windows, float *x, int B,
                             int H, int W, int C, int ws, int to_windows, int accumulate) {
    const int64_t nh = H / ws, nw = W / ws, c = C, w = W, s = ws;
    const int64_t dims[6] = {B, nh, nw, s, s, c};
    const int64_t xs[6] = {H * w * c, s * w * c, s * c, w * c, c, 1};
    const int64_t wins[6] = {nh * nw * s * s * c, nw * s * s * c, s * s * c, s * c, c, 1};
    if (to_windows) return mt_reorder(ctx, what, windows, wins, x, xs, 6, dims, accumulate);
    return mt_reorder(ctx, what, x, xs, windows, wins, 6, dims, accumulate);
}

mt_status window_partition_forward(mt_ctx *ctx, float *windows, const float *x,
                                   int B, int H, int W, int C, int ws) {
    const char *what = "window_partition_forward";
    MT_CHECK(window_check(ctx, what, windows, x, B, H, W, C, ws));
    return window_move(ctx, what, windows, (float *)x, B, H, W, C, ws, 1, 0);
}

mt_status window_partition_backward(mt_ctx *ctx, float *dx, const float *dwindows,
                                    int B, int H, int W, int C, int ws) {
    return window_partition_backward_ex(ctx, dx, dwindows, B, H, W, C, ws, 1);
}

mt_status window_partition_backward_ex(mt_ctx *ctx, float *dx, const float *dwindows, int B,
                                       int H, int W, int C, int ws, int accumulate) {
    const char *what = "window_partition_backward";
    MT_CHECK(window_check(ctx, what, dx, dwindows, B, H, W, C, ws));
    return window_move(ctx, what, (float *)dwindows, dx, B, H, W, C, ws, 0, accumulate);
}

mt_status window_reverse_forward(mt_ctx *ctx, float *x, const float *windows,
                                 int B, int H, int W, int C, int ws) {
    const char *what = "window_reverse_forward";
    MT_CHECK(window_check(ctx, what, x, windows, B, H, W, C, ws));
    return window_move(ctx, what, (float *)windows, x, B, H, W, C, ws, 0, 0);
}

mt_status window_reverse_backward(mt_ctx *ctx, float *dwindows, const float *dx,
                                  int B, int H, int W, int C, int ws) {
    return window_reverse_backward_ex(ctx, dwindows, dx, B, H, W, C, ws, 1);
}

mt_status window_reverse_backward_ex(mt_ctx *ctx, float *dwindows, const float *dx, int B, int H,
                                     int W, int C, int ws, int accumulate) {
    const char *what = "window_reverse_backward";
    MT_CHECK(window_check(ctx, what, dwindows, dx, B, H, W, C, ws));
    return window_move(ctx, what, dwindows, (float *)dx, B, H, W, C, ws, 1, accumulate);
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
    return roll_backward_ex(ctx, dx, dout, B, H, W, C, sh, sw, 1);
}

mt_status roll_backward_ex(mt_ctx *ctx, float *dx, const float *dout, int B, int H, int W, int C,
                           int sh, int sw, int accumulate) {
    MT_CHECK(window_check(ctx, "roll_backward", dx, dout, B, H, W, C, 1));
    if (dx == dout) return mt_fail(ctx, MT_ERR_ARG, "roll_backward: dx must not alias dout");
    roll_move(dx, dout, B, H, W, C, sh, sw, 1, accumulate);
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
