/* conv.c - 2-D convolution without padding on oneDNN (patch embedding and
 * the decoders' 1x1 convolutions). User layouts are plain NCHW / OIHW, so no
 * reorders happen outside oneDNN; the output may be NHWC, which is the token
 * layout Swin wants after the patch embedding. */
#include "ctx_internal.h"
#include "mtlora/layers.h"

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

mt_status conv2d_forward(mt_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int Cin, int H, int W, int Cout,
                         int k, int stride, int out_nhwc) {
    const char *what = "conv2d_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, weight);
    MT_CHECK(conv_check(ctx, what, B, Cin, H, W, Cout, k, stride));
    mt_prim *p;
    MT_CHECK(conv_fwd_prim(ctx, what, B, Cin, H, W, Cout, k, stride, out_nhwc, bias != NULL, &p));
    void *ptrs[4] = {(void *)inp, (void *)weight, out, (void *)bias};
    return mt_prim_run(ctx, what, p, ptrs);
}

mt_status conv2d_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int B, int Cin, int H, int W, int Cout, int k, int stride,
                          int out_nhwc) {
    const char *what = "conv2d_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(conv_check(ctx, what, B, Cin, H, W, Cout, k, stride));
    /* The forward hint must match the forward that ran: with a bias exactly
     * when a bias gradient is asked for (a frozen bias still had one). */
    int has_bias = dbias != NULL;
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
        float *tmp = mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float));
        if (!tmp) return MT_ERR_NOMEM;
        void *ptrs[3] = {(void *)dout, (void *)weight, tmp};
        MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
        mt_add_inplace(dinp, tmp, n);
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
        float *tw = mt_scratch(ctx, MT_SCRATCH_PRIM1, nw * sizeof(float));
        float *tb = mt_scratch(ctx, MT_SCRATCH_PRIM2, (size_t)Cout * sizeof(float));
        if (!tw || !tb) return MT_ERR_NOMEM;
        void *ptrs[4] = {(void *)inp, (void *)dout, tw, tb};
        MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
        if (dweight) mt_add_inplace(dweight, tw, nw);
        if (dbias) mt_add_inplace(dbias, tb, (size_t)Cout);
    }
    return MT_OK;
}
