/* eltwise.c - GELU (exact erf form) and ReLU on oneDNN eltwise. */
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static void flat_md(dnnl_memory_desc_t *md, size_t n) {
    dnnl_dims_t dims = {(int64_t)n};
    dnnl_memory_desc_init_by_tag(md, 1, dims, dnnl_f32, dnnl_a);
}

static mt_status eltwise_fwd_prim(mt_ctx *ctx, const char *what, dnnl_alg_kind_t alg,
                                  size_t n, mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "elt_fwd:%d:%zu", (int)alg, n);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    dnnl_memory_desc_t md;
    flat_md(&md, n);
    dnnl_eltwise_desc_t d;
    MT_DNNL(ctx, what, dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, alg, &md, 0.f, 0.f));
    int ids[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return mt_prim_build(ctx, what, key, &d, NULL, NULL, ids, 2, out);
}

static mt_status eltwise_forward(mt_ctx *ctx, const char *what, dnnl_alg_kind_t alg,
                                 float *out, const float *inp, size_t n) {
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_DIMS(ctx, what, n > 0, "n=%zu", n);
    mt_prim *p;
    MT_CHECK(eltwise_fwd_prim(ctx, what, alg, n, &p));
    void *ptrs[2] = {(void *)inp, out};
    return mt_prim_run(ctx, what, p, ptrs);
}

static mt_status eltwise_backward(mt_ctx *ctx, const char *what, dnnl_alg_kind_t alg,
                                  float *dinp, const float *dout, const float *inp, size_t n,
                                  int accumulate) {
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_DIMS(ctx, what, n > 0, "n=%zu", n);
    if (!dinp) return MT_OK;
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "elt_bwd:%d:%zu", (int)alg, n);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        mt_prim *fwd;
        MT_CHECK(eltwise_fwd_prim(ctx, what, alg, n, &fwd));
        dnnl_memory_desc_t md;
        flat_md(&md, n);
        dnnl_eltwise_desc_t d;
        MT_DNNL(ctx, what, dnnl_eltwise_backward_desc_init(&d, alg, &md, &md, 0.f, 0.f));
        int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        MT_CHECK(mt_prim_build(ctx, what, key, &d, NULL, fwd->pd, ids, 3, &p));
    }
    float *tmp = dinp; /* n floats: the overwritten gradient */
    if (accumulate) {
        tmp = mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float));
        if (!tmp) return MT_ERR_NOMEM;
    }
    void *ptrs[3] = {(void *)inp, (void *)dout, tmp};
    MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
    if (accumulate) mt_add_inplace(dinp, tmp, n);
    return MT_OK;
}

mt_status gelu_forward(mt_ctx *ctx, float *out, const float *inp, size_t n) {
    return eltwise_forward(ctx, "gelu_forward", dnnl_eltwise_gelu_erf, out, inp, n);
}
mt_status gelu_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
    return eltwise_backward(ctx, "gelu_backward", dnnl_eltwise_gelu_erf, dinp, dout, inp, n, 1);
}
mt_status gelu_backward_ex(mt_ctx *ctx, float *dinp, const float *dout, const float *inp,
                           size_t n, int accumulate) {
    return eltwise_backward(ctx, "gelu_backward", dnnl_eltwise_gelu_erf, dinp, dout, inp, n,
                            accumulate);
}
mt_status relu_forward(mt_ctx *ctx, float *out, const float *inp, size_t n) {
    return eltwise_forward(ctx, "relu_forward", dnnl_eltwise_relu, out, inp, n);
}
mt_status relu_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *inp, size_t n) {
    return eltwise_backward(ctx, "relu_backward", dnnl_eltwise_relu, dinp, dout, inp, n, 1);
}
mt_status relu_backward_ex(mt_ctx *ctx, float *dinp, const float *dout, const float *inp, size_t n,
                           int accumulate) {
    return eltwise_backward(ctx, "relu_backward", dnnl_eltwise_relu, dinp, dout, inp, n,
                            accumulate);
}
