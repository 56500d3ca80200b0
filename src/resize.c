/* resize.c - bilinear resize with align_corners=False on oneDNN resampling.
 *
 * oneDNN's linear resampling uses the half-pixel rule
 * src = (dst + 0.5) * in/out - 0.5 with edge clamping, which is what
 * PyTorch's F.interpolate(mode="bilinear", align_corners=False) computes
 * when given an output size; the parity tests hold it to that, up and down. */
#include "ctx_internal.h"
#include "mtlora/layers.h"

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

mt_status resize_bilinear_backward(mt_ctx *ctx, float *dinp, const float *dout, int B, int C,
                                   int Hi, int Wi, int Ho, int Wo) {
    const char *what = "resize_bilinear_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(rs_check(ctx, what, B, C, Hi, Wi, Ho, Wo));
    if (!dinp) return MT_OK;
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "resize_bwd:%d,%d,%d,%d,%d,%d", B, C, Hi, Wi, Ho, Wo);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        mt_prim *fwd;
        MT_CHECK(rs_fwd_prim(ctx, what, B, C, Hi, Wi, Ho, Wo, &fwd));
        dnnl_memory_desc_t s, d;
        rs_mds(&s, &d, B, C, Hi, Wi, Ho, Wo);
        dnnl_resampling_desc_t rd;
        MT_DNNL(ctx, what, dnnl_resampling_backward_desc_init(&rd, dnnl_resampling_linear, NULL,
                                                              &s, &d));
        int ids[2] = {DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        MT_CHECK(mt_prim_build(ctx, what, key, &rd, NULL, fwd->pd, ids, 2, &p));
    }
    size_t n = (size_t)B * C * Hi * Wi;
    float *tmp = mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float));
    if (!tmp) return MT_ERR_NOMEM;
    void *ptrs[2] = {(void *)dout, tmp};
    MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
    mt_add_inplace(dinp, tmp, n);
    return MT_OK;
}
