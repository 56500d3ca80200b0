/* conv.c - 2-D convolution without padding on oneDNN (patch embedding and
 * the decoders' 1x1 convolutions). User layouts are plain NCHW / OIHW; the
 * output may be NHWC, which is the token layout Swin wants after the patch
 * embedding.
 *
 * A convolution whose stride equals its kernel (the patch embedding) is a
 * linear layer on non-overlapping patches: one reorder gathers the patches
 * and a matmul does the rest. oneDNN 2.6 has no optimised kernel for a
 * 3-channel NCHW input with a 4x4/4 kernel and falls back to its reference
 * implementation, which cost two seconds per Swin-T 448 step. */
#include <string.h>

#include "ops_internal.h"
#include "mtlora/ops/layers.h"

typedef struct {
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t strides, pad;
} conv_mds;

static void conv_describe(conv_mds *m, int B, int Cin, int H, int W, int Cout, int k, int s,
                          int out_nhwc) {
    int Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
    dnnl_dims_t sd = {B, Cin, H, W}, wd = {Cout, Cin, k, k}, bd = {Cout}, dd = {B, Cout, Ho, Wo};
    dnnl_memory_desc_init_by_tag(&m->src, 4, sd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&m->wei, 4, wd, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&m->bias, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_init_by_tag(&m->dst, 4, dd, dnnl_f32, out_nhwc ? dnnl_nhwc : dnnl_nchw);
    m->strides[0] = m->strides[1] = s;
    m->pad[0] = m->pad[1] = 0;
}

static mt_status conv_check(mt_ctx *ctx, const char *what, int B, int Cin, int H, int W,
                            int Cout, int k, int s) {
    MT_NEED_DIMS(ctx, what, B > 0 && Cin > 0 && Cout > 0 && k > 0 && s > 0 && H >= k && W >= k &&
                 (H - k) % s == 0 && (W - k) % s == 0,
                 "B=%d Cin=%d H=%d W=%d Cout=%d kernel=%d stride=%d", B, Cin, H, W, Cout, k, s);
    return MT_OK;
}

static mt_status conv_fwd_prim(mt_ctx *ctx, const char *what, int B, int Cin, int H, int W,
                               int Cout, int k, int s, int nhwc, int has_bias, mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "conv_fwd:%d,%d,%d,%d,%d,%d,%d:%d:%d", B, Cin, H, W, Cout, k, s, nhwc,
                has_bias);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    conv_mds m;
    conv_describe(&m, B, Cin, H, W, Cout, k, s, nhwc);
    dnnl_convolution_desc_t d;
    MT_DNNL(ctx, what, dnnl_convolution_forward_desc_init(
                           &d, dnnl_forward_training, dnnl_convolution_direct, &m.src, &m.wei,
                           has_bias ? &m.bias : NULL, &m.dst, m.strides, m.pad, m.pad));
    int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    return mt_prim_build(ctx, what, key, &d, NULL, NULL, ids, has_bias ? 4 : 3, out);
}

static int patch_path(int k, int stride, int out_nhwc) { return k == stride && k > 1 && out_nhwc; }

/* patches[B*Ho*Wo, Cin*k*k] (+)= the k x k blocks of inp, or the adjoint. */
static mt_status patch_move(mt_ctx *ctx, float *patches, float *img, int B, int Cin, int H, int W,
                            int k, int to_patches, int accumulate) {
    const int64_t Ho = H / k, Wo = W / k, K = (int64_t)Cin * k * k;
    const int64_t dims[6] = {B, Ho, Wo, Cin, k, k};
    const int64_t is[6] = {(int64_t)Cin * H * W, (int64_t)k * W, k, (int64_t)H * W, W, 1};
    const int64_t ps[6] = {Ho * Wo * K, Wo * K, K, (int64_t)k * k, k, 1};
    if (to_patches) return mt_reorder(ctx, "conv2d", patches, ps, img, is, 6, dims, accumulate);
    return mt_reorder(ctx, "conv2d", img, is, patches, ps, 6, dims, accumulate);
}

mt_status conv2d_forward(mt_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int Cin, int H, int W, int Cout,
                         int k, int stride, int out_nhwc) {
    const char *what = "conv2d_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, weight);
    MT_CHECK(conv_check(ctx, what, B, Cin, H, W, Cout, k, stride));
    if (patch_path(k, stride, out_nhwc)) {
        const int rows = B * (H / k) * (W / k), K = Cin * k * k;
        /* [rows, K]: one row per k x k patch, (Cin, k, k) flattened */
        float *patches = mt_scratch(ctx, MT_SCRATCH_PATCH0, (size_t)rows * K * sizeof(float));
        if (!patches) return MT_ERR_NOMEM;
        MT_CHECK(patch_move(ctx, patches, (float *)inp, B, Cin, H, W, k, 1, 0));
        return linear_forward(ctx, out, patches, weight, bias, rows, K, Cout);
    }
    mt_prim *p;
    MT_CHECK(conv_fwd_prim(ctx, what, B, Cin, H, W, Cout, k, stride, out_nhwc, bias != NULL, &p));
    void *ptrs[4] = {(void *)inp, (void *)weight, out, (void *)bias};
    return mt_prim_run(ctx, what, p, ptrs);
}

mt_status conv2d_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int B, int Cin, int H, int W, int Cout, int k, int stride,
                          int out_nhwc) {
    return conv2d_backward_ex(ctx, dinp, dweight, dbias, dout, inp, weight, B, Cin, H, W, Cout, k,
                              stride, out_nhwc, 1);
}

/* accumulate = 0 (the direct path only): oneDNN writes dinp itself, instead
 * of a temporary of dinp's size added in afterwards. */
mt_status conv2d_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             int Cin, int H, int W, int Cout, int k, int stride, int out_nhwc,
                             int accumulate) {
    const char *what = "conv2d_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(conv_check(ctx, what, B, Cin, H, W, Cout, k, stride));
    /* The forward hint must match the forward that ran: with a bias exactly
     * when a bias gradient is asked for (a frozen bias still had one). */
    int has_bias = dbias != NULL;
    if (patch_path(k, stride, out_nhwc)) {
        if (!dinp && !dweight && !dbias) return MT_OK;
        if (dinp && !accumulate) mt_zero(dinp, (size_t)B * Cin * H * W);
        const int rows = B * (H / k) * (W / k), K = Cin * k * k;
        float *patches = NULL, *dpatches = NULL; /* [rows, K] each */
        if (dweight) {
            MT_NEED_PTR(ctx, what, inp);
            patches = mt_scratch(ctx, MT_SCRATCH_PATCH0, (size_t)rows * K * sizeof(float));
            if (!patches) return MT_ERR_NOMEM;
            MT_CHECK(patch_move(ctx, patches, (float *)inp, B, Cin, H, W, k, 1, 0));
        }
        if (dinp) {
            MT_NEED_PTR(ctx, what, weight);
            dpatches = mt_scratch(ctx, MT_SCRATCH_PATCH1, (size_t)rows * K * sizeof(float));
            if (!dpatches) return MT_ERR_NOMEM;
            mt_zero(dpatches, (size_t)rows * K);
        }
        MT_CHECK(linear_backward(ctx, dpatches, dweight, dbias, dout, patches, weight, rows, K, Cout));
        if (dinp) MT_CHECK(patch_move(ctx, dpatches, dinp, B, Cin, H, W, k, 0, 1));
        return MT_OK;
    }
    conv_mds m;
    conv_describe(&m, B, Cin, H, W, Cout, k, stride, out_nhwc);
    char key[MT_PRIM_KEY_LEN];
    if (dinp) {
        MT_NEED_PTR(ctx, what, weight);
        mt_prim_key(key, "conv_bwd_d:%d,%d,%d,%d,%d,%d,%d:%d", B, Cin, H, W, Cout, k, stride,
                    out_nhwc);
        mt_prim *p = mt_prim_find(ctx, key);
        if (!p) {
            mt_prim *fwd;
            MT_CHECK(conv_fwd_prim(ctx, what, B, Cin, H, W, Cout, k, stride, out_nhwc, 0, &fwd));
            dnnl_convolution_desc_t d;
            MT_DNNL(ctx, what, dnnl_convolution_backward_data_desc_init(
                                   &d, dnnl_convolution_direct, &m.src, &m.wei, &m.dst,
                                   m.strides, m.pad, m.pad));
            int ids[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
            MT_CHECK(mt_prim_build(ctx, what, key, &d, NULL, fwd->pd, ids, 3, &p));
        }
        size_t n = (size_t)B * Cin * H * W;
        /* [B, Cin, H, W]: dinp itself when it is overwritten */
        float *tmp = accumulate ? mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float)) : dinp;
        if (!tmp) return MT_ERR_NOMEM;
        void *ptrs[3] = {(void *)dout, (void *)weight, tmp};
        MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
        if (accumulate) mt_add_inplace(dinp, tmp, n);
    }
    if (dweight || dbias) {
        MT_NEED_PTR(ctx, what, inp);
        mt_prim_key(key, "conv_bwd_w:%d,%d,%d,%d,%d,%d,%d:%d:%d", B, Cin, H, W, Cout, k, stride,
                    out_nhwc, has_bias);
        mt_prim *p = mt_prim_find(ctx, key);
        if (!p) {
            mt_prim *fwd;
            MT_CHECK(conv_fwd_prim(ctx, what, B, Cin, H, W, Cout, k, stride, out_nhwc, has_bias,
                                   &fwd));
            dnnl_convolution_desc_t d;
            MT_DNNL(ctx, what, dnnl_convolution_backward_weights_desc_init(
                                   &d, dnnl_convolution_direct, &m.src, &m.wei,
                                   has_bias ? &m.bias : NULL, &m.dst, m.strides, m.pad, m.pad));
            int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS,
                          DNNL_ARG_DIFF_BIAS};
            MT_CHECK(mt_prim_build(ctx, what, key, &d, NULL, fwd->pd, ids, has_bias ? 4 : 3, &p));
        }
        size_t nw = (size_t)Cout * Cin * k * k;
        float *tw = mt_scratch(ctx, MT_SCRATCH_PRIM1, nw * sizeof(float)); /* [Cout, Cin, k, k] */
        float *tb = mt_scratch(ctx, MT_SCRATCH_PRIM2, (size_t)Cout * sizeof(float)); /* [Cout] */
        if (!tw || !tb) return MT_ERR_NOMEM;
        void *ptrs[4] = {(void *)inp, (void *)dout, tw, tb};
        MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
        if (dweight) mt_add_inplace(dweight, tw, nw);
        if (dbias) mt_add_inplace(dbias, tb, (size_t)Cout);
    }
    return MT_OK;
}
