/* patch.c - Swin's patch embedding and patch merging, composed from the
 * conv, layer-norm and linear layers. */
#include <string.h>
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

mt_status patch_embed_forward(mt_ctx *ctx, float *out, float *conv_out, float *mean,
                              float *var, const float *img, patch_embed_weights w,
                              int B, int Cin, int H, int W, int C, int patch) {
    const char *what = "patch_embed_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, conv_out);
    MT_NEED_PTR(ctx, what, w.conv_w);
    MT_NEED_PTR(ctx, what, w.ln_w);
    MT_NEED_PTR(ctx, what, w.ln_b);
    MT_NEED_DIMS(ctx, what, patch > 0 && H > 0 && W > 0 && H % patch == 0 && W % patch == 0,
                 "H=%d W=%d patch=%d", H, W, patch);
    int rows = B * (H / patch) * (W / patch);
    MT_CHECK(conv2d_forward(ctx, conv_out, img, w.conv_w, w.conv_b, B, Cin, H, W, C, patch,
                            patch, 1));
    return layernorm_forward(ctx, out, mean, var, conv_out, w.ln_w, w.ln_b, rows, C);
}

mt_status patch_embed_backward(mt_ctx *ctx, float *dimg, patch_embed_grads g,
                               const float *dout, const float *img, const float *conv_out,
                               const float *mean, const float *var, patch_embed_weights w,
                               int B, int Cin, int H, int W, int C, int patch) {
    const char *what = "patch_embed_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_DIMS(ctx, what, patch > 0 && H > 0 && W > 0 && H % patch == 0 && W % patch == 0,
                 "H=%d W=%d patch=%d", H, W, patch);
    int rows = B * (H / patch) * (W / patch);
    int need_conv = dimg || g.conv_w || g.conv_b;
    size_t n = (size_t)rows * C;
    float *dconv = NULL; /* [rows, C] w.r.t. conv_out */
    if (need_conv) {
        dconv = mt_scratch(ctx, MT_SCRATCH_COMP0, n * sizeof(float));
        if (!dconv) return MT_ERR_NOMEM;
        mt_zero(dconv, n);
    }
    MT_CHECK(layernorm_backward(ctx, dconv, g.ln_w, g.ln_b, dout, conv_out, mean, var, w.ln_w,
                                w.ln_b, rows, C));
    if (!need_conv) return MT_OK;
    return conv2d_backward(ctx, dimg, g.conv_w, g.conv_b, dconv, img, w.conv_w, B, Cin, H, W, C,
                           patch, patch, 1);
}

static mt_status merge_check(mt_ctx *ctx, const char *what, int B, int H, int W, int C) {
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && H > 0 && W > 0 && H % 2 == 0 && W % 2 == 0,
                 "B=%d H=%d W=%d C=%d (H and W must be even)", B, H, W, C);
    return MT_OK;
}

/* Channel block q of a merged token takes the neighbour (dh, dw) =
 * (q & 1, q >> 1): Swin's order x0=(0,0), x1=(1,0), x2=(0,1), x3=(1,1). Both
 * buffers are seen as 6-D views (b, i, j, dw, dh, c) and one oneDNN reorder
 * moves between them. */
static mt_status merge_move(mt_ctx *ctx, const char *what, float *gathered, float *x, int B,
                            int H, int W, int C, int to_gathered, int accumulate) {
    const int64_t Ho = H / 2, Wo = W / 2, c = C, w = W;
    const int64_t dims[6] = {B, Ho, Wo, 2, 2, c};
    const int64_t gs[6] = {Ho * Wo * 4 * c, Wo * 4 * c, 4 * c, 2 * c, c, 1};
    const int64_t xs[6] = {(int64_t)H * w * c, 2 * w * c, 2 * c, c, w * c, 1};
    if (to_gathered) return mt_reorder(ctx, what, gathered, gs, x, xs, 6, dims, accumulate);
    return mt_reorder(ctx, what, x, xs, gathered, gs, 6, dims, accumulate);
}

mt_status patch_merge_gather_forward(mt_ctx *ctx, float *out, const float *x,
                                     int B, int H, int W, int C) {
    const char *what = "patch_merge_gather_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, x);
    MT_CHECK(merge_check(ctx, what, B, H, W, C));
    return merge_move(ctx, what, out, (float *)x, B, H, W, C, 1, 0);
}

mt_status patch_merge_gather_backward(mt_ctx *ctx, float *dx, const float *dout,
                                      int B, int H, int W, int C) {
    const char *what = "patch_merge_gather_backward";
    MT_NEED_PTR(ctx, what, dx);
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(merge_check(ctx, what, B, H, W, C));
    return merge_move(ctx, what, (float *)dout, dx, B, H, W, C, 0, 1);
}

mt_status patch_merging_forward(mt_ctx *ctx, float *out, float *gathered, float *normed,
                                float *mean, float *var, const float *x,
                                const float *ln_w, const float *ln_b, const float *red_w,
                                int B, int H, int W, int C) {
    const char *what = "patch_merging_forward";
    MT_NEED_PTR(ctx, what, normed);
    MT_CHECK(merge_check(ctx, what, B, H, W, C));
    int rows = B * (H / 2) * (W / 2);
    MT_CHECK(patch_merge_gather_forward(ctx, gathered, x, B, H, W, C));
    MT_CHECK(layernorm_forward(ctx, normed, mean, var, gathered, ln_w, ln_b, rows, 4 * C));
    return linear_forward(ctx, out, normed, red_w, NULL, rows, 4 * C, 2 * C);
}

mt_status patch_merging_backward(mt_ctx *ctx, float *dx, float *dln_w, float *dln_b,
                                 float *dred_w, const float *dout, const float *gathered,
                                 const float *normed, const float *mean, const float *var,
                                 const float *ln_w, const float *ln_b, const float *red_w,
                                 int B, int H, int W, int C) {
    const char *what = "patch_merging_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(merge_check(ctx, what, B, H, W, C));
    int rows = B * (H / 2) * (W / 2);
    size_t n = (size_t)rows * 4 * C;
    int need_norm = dx || dln_w || dln_b;
    float *dnormed = NULL, *dgath = NULL; /* [rows, 4C] w.r.t. normed, gathered */
    if (need_norm) {
        dnormed = mt_scratch(ctx, MT_SCRATCH_COMP0, n * sizeof(float));
        if (!dnormed) return MT_ERR_NOMEM;
        mt_zero(dnormed, n);
    }
    MT_CHECK(linear_backward(ctx, dnormed, dred_w, NULL, dout, normed, red_w, rows, 4 * C, 2 * C));
    if (!need_norm) return MT_OK;
    if (dx) {
        dgath = mt_scratch(ctx, MT_SCRATCH_COMP1, n * sizeof(float));
        if (!dgath) return MT_ERR_NOMEM;
        mt_zero(dgath, n);
    }
    MT_CHECK(layernorm_backward(ctx, dgath, dln_w, dln_b, dnormed, gathered, mean, var, ln_w,
                                ln_b, rows, 4 * C));
    if (dx) MT_CHECK(patch_merge_gather_backward(ctx, dx, dgath, B, H, W, C));
    return MT_OK;
}
