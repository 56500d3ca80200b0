/* layernorm.c - layer normalization over the last axis (oneDNN).
 *
 * oneDNN's backward overwrites diff_src / diff_scale / diff_shift, while our
 * convention accumulates; results land in scratch and are then added. */
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static const unsigned LN_FLAGS = dnnl_use_scale | dnnl_use_shift;

static void data_md(dnnl_memory_desc_t *md, int rows, int ch) {
    dnnl_dims_t dims = {rows, ch};
    dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_ab);
}

static mt_status ln_fwd_prim(mt_ctx *ctx, const char *what, int rows, int ch, int training,
                             mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "ln_fwd:%d,%d:t%d", rows, ch, training);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    dnnl_memory_desc_t md;
    data_md(&md, rows, ch);
    dnnl_layer_normalization_desc_t d;
    MT_DNNL(ctx, what, dnnl_layer_normalization_forward_desc_init(
                           &d, training ? dnnl_forward_training : dnnl_forward_inference, &md,
                           NULL, MT_LN_EPS, LN_FLAGS));
    int ids[6] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                  DNNL_ARG_VARIANCE};
    return mt_prim_build(ctx, what, key, &d, NULL, NULL, ids, training ? 6 : 4, out);
}

mt_status layernorm_forward(mt_ctx *ctx, float *out, float *mean, float *var,
                            const float *inp, const float *weight, const float *bias,
                            int rows, int channels) {
    const char *what = "layernorm_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, weight);
    MT_NEED_PTR(ctx, what, bias);
    MT_NEED_DIMS(ctx, what, rows > 0 && channels > 0, "rows=%d channels=%d", rows, channels);
    if ((mean == NULL) != (var == NULL))
        return mt_fail(ctx, MT_ERR_ARG, "%s: mean and var must both be given or both NULL", what);
    int training = mean != NULL;
    mt_prim *p;
    MT_CHECK(ln_fwd_prim(ctx, what, rows, channels, training, &p));
    void *ptrs[6] = {(void *)inp, out, (void *)weight, (void *)bias, mean, var};
    return mt_prim_run(ctx, what, p, ptrs);
}

mt_status layernorm_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *mean,
                             const float *var, const float *weight, const float *bias,
                             int rows, int channels) {
    const char *what = "layernorm_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, mean);
    MT_NEED_PTR(ctx, what, var);
    MT_NEED_PTR(ctx, what, weight);
    MT_NEED_PTR(ctx, what, bias);
    MT_NEED_DIMS(ctx, what, rows > 0 && channels > 0, "rows=%d channels=%d", rows, channels);
    if (!dinp && !dweight && !dbias) return MT_OK;
    int params = dweight || dbias;
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "ln_bwd:%d,%d:p%d", rows, channels, params);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        mt_prim *fwd;
        MT_CHECK(ln_fwd_prim(ctx, what, rows, channels, 1, &fwd));
        dnnl_memory_desc_t md;
        data_md(&md, rows, channels);
        dnnl_layer_normalization_desc_t d;
        MT_DNNL(ctx, what, dnnl_layer_normalization_backward_desc_init(
                               &d, params ? dnnl_backward : dnnl_backward_data, &md, &md, NULL,
                               MT_LN_EPS, LN_FLAGS));
        /* oneDNN 2.6 wants the shift bound in backward too when the forward
         * used one, although the gradients do not depend on it. */
        int ids[9] = {DNNL_ARG_SRC,      DNNL_ARG_MEAN,     DNNL_ARG_VARIANCE,
                      DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE,    DNNL_ARG_SHIFT,
                      DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
        MT_CHECK(mt_prim_build(ctx, what, key, &d, NULL, fwd->pd, ids, params ? 9 : 7, &p));
    }
    size_t n = (size_t)rows * channels;
    float *dsrc = mt_scratch(ctx, MT_SCRATCH_PRIM1, n * sizeof(float)); /* [rows, channels] */
    /* [2, channels]: dscale, dshift */
    float *dss = mt_scratch(ctx, MT_SCRATCH_PRIM2, 2 * (size_t)channels * sizeof(float));
    if (!dsrc || !dss) return MT_ERR_NOMEM;
    void *ptrs[9] = {(void *)inp, (void *)mean, (void *)var, (void *)dout, (void *)weight,
                     (void *)bias, dsrc, dss, dss + channels};
    MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
    if (dinp) mt_add_inplace(dinp, dsrc, n);
    if (dweight) mt_add_inplace(dweight, dss, (size_t)channels);
    if (dbias) mt_add_inplace(dbias, dss + channels, (size_t)channels);
    return MT_OK;
}
