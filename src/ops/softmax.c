/* softmax.c - softmax over the last axis: the forward on oneDNN softmax v2
 * (accurate), the backward our own loop. */
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static void rc_md(dnnl_memory_desc_t *md, int rows, int cols) {
    dnnl_dims_t dims = {rows, cols};
    dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_ab);
}

static mt_status softmax_fwd_prim(mt_ctx *ctx, const char *what, int rows, int cols,
                                  mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "softmax_fwd:%d,%d", rows, cols);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    dnnl_memory_desc_t md;
    rc_md(&md, rows, cols);
    dnnl_softmax_v2_desc_t d;
    MT_DNNL(ctx, what, dnnl_softmax_v2_forward_desc_init(&d, dnnl_forward_training,
                                                         dnnl_softmax_accurate, &md, &md, 1));
    int ids[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    return mt_prim_build(ctx, what, key, &d, NULL, NULL, ids, 2, out);
}

mt_status softmax_forward(mt_ctx *ctx, float *out, const float *inp, int rows, int cols) {
    const char *what = "softmax_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_DIMS(ctx, what, rows > 0 && cols > 0, "rows=%d cols=%d", rows, cols);
    mt_prim *p;
    MT_CHECK(softmax_fwd_prim(ctx, what, rows, cols, &p));
    void *ptrs[2] = {(void *)inp, out};
    return mt_prim_run(ctx, what, p, ptrs);
}

/* dsrc = out * (dout - sum(dout * out)) row by row, our own loop: oneDNN
 * 2.6 has no vectorised softmax backward without AVX-512 and ran its
 * reference kernel there (115 ms of a 3.4 s Swin-T 448 step at batch 2 on
 * Zen 3). dsrc may be dout (each element is read before it is written). */
mt_status softmax_backward_into(mt_ctx *ctx, float *dsrc, const float *dout, const float *out,
                                int rows, int cols) {
    const char *what = "softmax_backward";
    MT_NEED_PTR(ctx, what, dsrc);
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_DIMS(ctx, what, rows > 0 && cols > 0, "rows=%d cols=%d", rows, cols);
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols > 65536)
    for (int r = 0; r < rows; r++) {
        const float *y = out + (size_t)r * cols, *dy = dout + (size_t)r * cols;
        float *dx = dsrc + (size_t)r * cols;
        float dot = 0.0f;
        for (int c = 0; c < cols; c++) dot += dy[c] * y[c];
        for (int c = 0; c < cols; c++) dx[c] = y[c] * (dy[c] - dot);
    }
    return MT_OK;
}

mt_status softmax_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *out,
                           int rows, int cols) {
    const char *what = "softmax_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_DIMS(ctx, what, rows > 0 && cols > 0, "rows=%d cols=%d", rows, cols);
    if (!dinp) return MT_OK;
    size_t n = (size_t)rows * cols;
    float *tmp = mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float)); /* [rows, cols] */
    if (!tmp) return MT_ERR_NOMEM;
    MT_CHECK(softmax_backward_into(ctx, tmp, dout, out, rows, cols));
    mt_add_inplace(dinp, tmp, n);
    return MT_OK;
}
