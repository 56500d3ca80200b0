/* resize.c - bilinear resize with align_corners=False on oneDNN resampling.
 *
 * oneDNN's linear resampling uses the half-pixel rule
 * src = (dst + 0.5) * in/out - 0.5 with edge clamping, which is what
 * PyTorch's F.interpolate(mode="bilinear", align_corners=False) computes
 * when given an output size; the parity tests hold it to that, up and down.
 * The backward is our own separable loop (see below). */
#include <stdlib.h>

#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static void rs_mds(dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst, int B, int C, int Hi,
                   int Wi, int Ho, int Wo) {
    dnnl_dims_t sd = {B, C, Hi, Wi}, dd = {B, C, Ho, Wo};
    dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, dnnl_nchw);
}

static mt_status rs_check(mt_ctx *ctx, const char *what, int B, int C, int Hi, int Wi, int Ho,
                          int Wo) {
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && Hi > 0 && Wi > 0 && Ho > 0 && Wo > 0,
                 "B=%d C=%d in=%dx%d out=%dx%d", B, C, Hi, Wi, Ho, Wo);
    return MT_OK;
}

static mt_status rs_fwd_prim(mt_ctx *ctx, const char *what, int B, int C, int Hi, int Wi,
                             int Ho, int Wo, mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "resize_fwd:%d,%d,%d,%d,%d,%d", B, C, Hi, Wi, Ho, Wo);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    dnnl_memory_desc_t s, d;
    rs_mds(&s, &d, B, C, Hi, Wi, Ho, Wo);
    dnnl_resampling_desc_t rd;
    MT_DNNL(ctx, what, dnnl_resampling_forward_desc_init(&rd, dnnl_forward_training,
                                                         dnnl_resampling_linear, NULL, &s, &d));
    int ids[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return mt_prim_build(ctx, what, key, &rd, NULL, NULL, ids, 2, out);
}

mt_status resize_bilinear_forward(mt_ctx *ctx, float *out, const float *inp, int B, int C,
                                  int Hi, int Wi, int Ho, int Wo) {
    const char *what = "resize_bilinear_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_CHECK(rs_check(ctx, what, B, C, Hi, Wi, Ho, Wo));
    mt_prim *p;
    MT_CHECK(rs_fwd_prim(ctx, what, B, C, Hi, Wi, Ho, Wo, &p));
    void *ptrs[2] = {(void *)inp, out};
    return mt_prim_run(ctx, what, p, ptrs);
}

/* Source taps of output index o along an axis, as PyTorch computes them
 * for align_corners=False: src = (o + 0.5) * in/out - 0.5, clamped at 0. */
static void taps(int o, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int h = (int)src;
    if (h > in - 1) h = in - 1;
    *i0 = h;
    *i1 = h + (h < in - 1 ? 1 : 0);
    *l1 = src - (float)h;
    *l0 = 1.0f - *l1;
}

/* The adjoint of bilinear interpolation, separably: first along the width
 * (each output column adds into its two input columns), then along the
 * height. oneDNN 2.6 runs its reference kernel for this backward (tens of
 * milliseconds for the decoders' 56 -> 448 resize); this is a few. */
mt_status resize_bilinear_backward(mt_ctx *ctx, float *dinp, const float *dout, int B, int C,
                                   int Hi, int Wi, int Ho, int Wo) {
    const char *what = "resize_bilinear_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(rs_check(ctx, what, B, C, Hi, Wi, Ho, Wo));
    if (!dinp) return MT_OK;
    int *wi = malloc((size_t)(2 * Wo + 2 * Ho) * sizeof(int));
    float *wl = malloc((size_t)(2 * Wo + 2 * Ho) * sizeof(float));
    if (!wi || !wl) {
        free(wi);
        free(wl);
        return mt_fail(ctx, MT_ERR_NOMEM, "%s: out of memory", what);
    }
    int *hi = wi + 2 * Wo;
    float *hl = wl + 2 * Wo;
    for (int o = 0; o < Wo; o++) taps(o, Wi, Wo, &wi[2 * o], &wi[2 * o + 1], &wl[2 * o], &wl[2 * o + 1]);
    for (int o = 0; o < Ho; o++) taps(o, Hi, Ho, &hi[2 * o], &hi[2 * o + 1], &hl[2 * o], &hl[2 * o + 1]);
    const long planes = (long)B * C;
    mt_status st = MT_OK;
    #pragma omp parallel
    {
        float *row = malloc((size_t)Wi * sizeof(float));
        if (!row) {
            #pragma omp atomic write
            st = MT_ERR_NOMEM;
        }
        #pragma omp for schedule(static)
        for (long pl = 0; pl < planes; pl++) {
            if (!row) continue;
            const float *dy = dout + (size_t)pl * Ho * Wo;
            float *dx = dinp + (size_t)pl * Hi * Wi;
            for (int oh = 0; oh < Ho; oh++) {
                /* this output row, reduced to input columns */
                for (int iw = 0; iw < Wi; iw++) row[iw] = 0.0f;
                const float *r = dy + (size_t)oh * Wo;
                for (int ow = 0; ow < Wo; ow++) {
                    row[wi[2 * ow]] += wl[2 * ow] * r[ow];
                    row[wi[2 * ow + 1]] += wl[2 * ow + 1] * r[ow];
                }
                float *x0 = dx + (size_t)hi[2 * oh] * Wi, *x1 = dx + (size_t)hi[2 * oh + 1] * Wi;
                const float a0 = hl[2 * oh], a1 = hl[2 * oh + 1];
                for (int iw = 0; iw < Wi; iw++) {
                    x0[iw] += a0 * row[iw];
                    x1[iw] += a1 * row[iw];
                }
            }
        }
        free(row);
    }
    free(wi);
    free(wl);
    if (st) return mt_fail(ctx, st, "%s: out of memory", what);
    return MT_OK;
}
