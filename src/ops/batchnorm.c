/* batchnorm.c - BatchNorm2d on NCHW (oneDNN), with PyTorch's running
 * statistics: running = (1 - momentum) * running + momentum * batch, the
 * variance entering the running estimate unbiased (n / (n - 1)). */
#include <math.h>

#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static const unsigned BN_FLAGS = dnnl_use_scale | dnnl_use_shift;

static void bn_md(dnnl_memory_desc_t *md, int B, int C, int HW) {
    dnnl_dims_t dims = {B, C, 1, HW}; /* W = HW: the kernels vectorise along W */
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nchw);
}

static mt_status bn_fwd_prim(mt_ctx *ctx, const char *what, int B, int C, int HW, int training,
                             mt_prim **out) {
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "bn_fwd:%d,%d,%d:t%d", B, C, HW, training);
    *out = mt_prim_find(ctx, key);
    if (*out) return MT_OK;
    dnnl_memory_desc_t md;
    bn_md(&md, B, C, HW);
    dnnl_batch_normalization_desc_t d;
    MT_DNNL(ctx, what, dnnl_batch_normalization_forward_desc_init(
                           &d, training ? dnnl_forward_training : dnnl_forward_inference, &md,
                           MT_BN_EPS, training ? BN_FLAGS : BN_FLAGS | dnnl_use_global_stats));
    int ids[6] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                  DNNL_ARG_VARIANCE};
    return mt_prim_build(ctx, what, key, &d, NULL, NULL, ids, 6, out);
}

/* Per-channel sums over this rank's batch into acc[c], in double: of x, or
 * with mean != NULL of (x - mean[c])^2. */
static void channel_sums(double *acc, const float *inp, int B, int C, int HW, const double *mean) {
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            if (mean)
                for (int i = 0; i < HW; i++) s += ((double)x[i] - mean[c]) * ((double)x[i] - mean[c]);
            else
                for (int i = 0; i < HW; i++) s += x[i];
        }
        acc[c] = s;
    }
}

/* SyncBN statistics: the same two passes, each summed over all ranks
 * (sum, then squared deviations from the global mean), so every rank
 * normalises with the statistics of the whole global batch. */
static mt_status sync_statistics(mt_ctx *ctx, float *save_mean, float *save_var, const float *inp,
                                 int B, int C, int HW, double *n_total) {
    double *buf = mt_scratch(ctx, MT_SCRATCH_SYNC, sizeof(double) * (2 * (size_t)C + 1));
    if (!buf) return MT_ERR_NOMEM;
    double *mean = buf + C + 1;
    channel_sums(buf, inp, B, C, HW, NULL);
    buf[C] = (double)B * HW;
    mt_status st = ctx->sync_sum(ctx->sync_user, buf, (size_t)C + 1);
    if (st) return mt_fail(ctx, st, "batchnorm_forward: synchronised sum failed");
    *n_total = buf[C];
    for (int c = 0; c < C; c++) mean[c] = buf[c] / *n_total;
    channel_sums(buf, inp, B, C, HW, mean);
    st = ctx->sync_sum(ctx->sync_user, buf, (size_t)C);
    if (st) return mt_fail(ctx, st, "batchnorm_forward: synchronised sum failed");
    for (int c = 0; c < C; c++) {
        save_mean[c] = (float)mean[c];
        save_var[c] = (float)(buf[c] / *n_total);
    }
    return MT_OK;
}

mt_status batchnorm_forward(mt_ctx *ctx, float *out, float *save_mean, float *save_var,
                            float *running_mean, float *running_var, const float *inp,
                            const float *weight, const float *bias, int B, int C, int HW,
                            int training, float momentum) {
    const char *what = "batchnorm_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, weight);
    MT_NEED_PTR(ctx, what, bias);
    MT_NEED_PTR(ctx, what, running_mean);
    MT_NEED_PTR(ctx, what, running_var);
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && HW > 0, "B=%d C=%d HW=%d", B, C, HW);
    if (training) {
        MT_NEED_PTR(ctx, what, save_mean);
        MT_NEED_PTR(ctx, what, save_var);
        long n = (long)B * HW;
        if (n < 2)
            return mt_fail(ctx, MT_ERR_SHAPE,
                           "%s: training needs more than one value per channel (B=%d HW=%d)",
                           what, B, HW);
    }
    /* Training statistics are ours, two passes in double per channel (as
     * PyTorch's CPU kernel accumulates): oneDNN's float statistics moved
     * outputs near zero across the following ReLU often enough to cost the
     * Swin-T decoders two digits of gradient accuracy. oneDNN then
     * normalises with them as given statistics. */
    double n_total = (double)B * HW;
    if (training && ctx->sync_sum) MT_CHECK(sync_statistics(ctx, save_mean, save_var, inp, B, C, HW, &n_total));
    else if (training) {
        const double cnt = (double)B * HW;
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double s = 0.0, ss = 0.0;
            for (int b = 0; b < B; b++) {
                const float *x = inp + ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) s += x[i];
            }
            double mean = s / cnt;
            for (int b = 0; b < B; b++) {
                const float *x = inp + ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) ss += ((double)x[i] - mean) * ((double)x[i] - mean);
            }
            save_mean[c] = (float)mean;
            save_var[c] = (float)(ss / cnt);
        }
    }
    mt_prim *p;
    MT_CHECK(bn_fwd_prim(ctx, what, B, C, HW, 0, &p));
    void *ptrs[6] = {(void *)inp, out, (void *)weight, (void *)bias,
                     training ? save_mean : running_mean, training ? save_var : running_var};
    MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
    if (training) {
        const double n = n_total, unbias = n / (n - 1.0);
        for (int c = 0; c < C; c++) {
            running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * save_mean[c];
            running_var[c] = (1.0f - momentum) * running_var[c] +
                             momentum * (float)(save_var[c] * unbias);
        }
    }
    return MT_OK;
}

/* SyncBN backward in C: the per-channel sums of dy and dy * xhat are summed
 * over all ranks for the data gradient (as torch.nn.SyncBatchNorm does);
 * the weight and bias gradients stay this rank's own sums, which the
 * gradient allreduce then averages like every other gradient. */
static mt_status sync_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *save_mean,
                               const float *save_var, const float *weight, int B, int C, int HW) {
    double *buf = mt_scratch(ctx, MT_SCRATCH_SYNC, sizeof(double) * (4 * (size_t)C + 1));
    if (!buf) return MT_ERR_NOMEM;
    double *local = buf + 2 * C + 1;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const double mean = save_mean[c], inv = 1.0 / sqrt((double)save_var[c] + MT_BN_EPS);
        double sdy = 0.0, sdyx = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW, *dy = dout + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                sdy += dy[i];
                sdyx += dy[i] * (((double)x[i] - mean) * inv);
            }
        }
        buf[c] = local[c] = sdy;
        buf[C + c] = local[C + c] = sdyx;
    }
    buf[2 * C] = (double)B * HW;
    mt_status st = ctx->sync_sum(ctx->sync_user, buf, 2 * (size_t)C + 1);
    if (st) return mt_fail(ctx, st, "batchnorm_backward: synchronised sum failed");
    const double N = buf[2 * C];
    if (dinp) {
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            const double mean = save_mean[c], inv = 1.0 / sqrt((double)save_var[c] + MT_BN_EPS);
            const double mdy = buf[c] / N, mdyx = buf[C + c] / N, k = weight[c] * inv;
            for (int b = 0; b < B; b++) {
                const size_t o = ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) {
                    const double xh = ((double)inp[o + i] - mean) * inv;
                    dinp[o + i] += (float)(k * ((double)dout[o + i] - mdy - xh * mdyx));
                }
            }
        }
    }
    for (int c = 0; c < C; c++) {
        if (dweight) dweight[c] += (float)local[C + c];
        if (dbias) dbias[c] += (float)local[c];
    }
    return MT_OK;
}

mt_status batchnorm_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *save_mean,
                             const float *save_var, const float *weight, const float *bias,
                             int B, int C, int HW) {
    return batchnorm_backward_ex(ctx, dinp, dweight, dbias, dout, inp, save_mean, save_var, weight,
                                 bias, B, C, HW, 1);
}

/* accumulate = 0: oneDNN writes dinp itself, instead of a temporary of
 * dinp's size added in afterwards (at batch 8 the decoder's is 433 MB). */
mt_status batchnorm_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *save_mean,
                                const float *save_var, const float *weight, const float *bias,
                                int B, int C, int HW, int accumulate) {
    const char *what = "batchnorm_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, save_mean);
    MT_NEED_PTR(ctx, what, save_var);
    MT_NEED_PTR(ctx, what, weight);
    MT_NEED_PTR(ctx, what, bias);
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && HW > 0, "B=%d C=%d HW=%d", B, C, HW);
    if (ctx->sync_sum && dinp && !accumulate) mt_zero(dinp, (size_t)B * C * HW);
    if (ctx->sync_sum) /* every rank makes the same sum call, gradients wanted or not */
        return sync_backward(ctx, dinp, dweight, dbias, dout, inp, save_mean, save_var, weight, B,
                             C, HW);
    if (!dinp && !dweight && !dbias) return MT_OK;
    char key[MT_PRIM_KEY_LEN];
    mt_prim_key(key, "bn_bwd:%d,%d,%d", B, C, HW);
    mt_prim *p = mt_prim_find(ctx, key);
    if (!p) {
        mt_prim *fwd;
        MT_CHECK(bn_fwd_prim(ctx, what, B, C, HW, 1, &fwd));
        dnnl_memory_desc_t md;
        bn_md(&md, B, C, HW);
        dnnl_batch_normalization_desc_t d;
        MT_DNNL(ctx, what, dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &md,
                                                                       &md, MT_BN_EPS, BN_FLAGS));
        /* oneDNN 2.6 wants the shift bound in backward too (see layernorm.c). */
        int ids[9] = {DNNL_ARG_SRC,      DNNL_ARG_MEAN,     DNNL_ARG_VARIANCE,
                      DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE,    DNNL_ARG_SHIFT,
                      DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
        MT_CHECK(mt_prim_build(ctx, what, key, &d, NULL, fwd->pd, ids, 9, &p));
    }
    size_t n = (size_t)B * C * HW;
    /* [B, C, HW]: dinp itself when it is overwritten */
    float *dsrc = dinp && !accumulate ? dinp : mt_scratch(ctx, MT_SCRATCH_PRIM0, n * sizeof(float));
    float *dss = mt_scratch(ctx, MT_SCRATCH_PRIM1, 2 * (size_t)C * sizeof(float)); /* [2, C] */
    if (!dsrc || !dss) return MT_ERR_NOMEM;
    void *ptrs[9] = {(void *)inp, (void *)save_mean, (void *)save_var, (void *)dout,
                     (void *)weight, (void *)bias, dsrc, dss, dss + C};
    MT_CHECK(mt_prim_run(ctx, what, p, ptrs));
    if (dinp && accumulate) mt_add_inplace(dinp, dsrc, n);
    if (dweight) mt_add_inplace(dweight, dss, (size_t)C);
    if (dbias) mt_add_inplace(dbias, dss + C, (size_t)C);
    return MT_OK;
}
