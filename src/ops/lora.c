/* lora.c - the low-rank update of a LoRA linear, y += s * (x A^T) B^T.
 * Four matmuls in all, each on views of the caller's buffers, with the
 * scale folded into oneDNN's output scale. */
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static mt_status lora_check(mt_ctx *ctx, const char *what, int rows, int in_dim, int out_dim,
                            int rank) {
    MT_NEED_DIMS(ctx, what, rows > 0 && in_dim > 0 && out_dim > 0 && rank > 0,
                 "rows=%d in=%d out=%d rank=%d", rows, in_dim, out_dim, rank);
    return MT_OK;
}

mt_status lora_delta_forward(mt_ctx *ctx, float *y, const float *base, float *mid,
                             const float *x, const float *A, const float *B, float scale,
                             int rows, int in_dim, int out_dim, int rank) {
    const char *what = "lora_delta_forward";
    MT_NEED_PTR(ctx, what, y);
    MT_NEED_PTR(ctx, what, mid);
    MT_NEED_PTR(ctx, what, x);
    MT_NEED_PTR(ctx, what, A);
    MT_NEED_PTR(ctx, what, B);
    MT_CHECK(lora_check(ctx, what, rows, in_dim, out_dim, rank));
    const int64_t xs[4] = {0, 0, in_dim, 1}, ats[4] = {0, 0, 1, in_dim};
    const int64_t ms[4] = {0, 0, rank, 1}, bts[4] = {0, 0, 1, rank}, ys[4] = {0, 0, out_dim, 1};
    /* mid = x A^T ; y = base + scale * mid B^T (or y += ...) */
    MT_CHECK(mt_matmul(ctx, what, mid, ms, x, xs, A, ats, NULL, 1, 1, rows, in_dim, rank, 1.0f, 0));
    if (base) {
        const int64_t m2[2] = {rank, 1}, b2[2] = {1, rank};
        return mt_matmul_add(ctx, what, y, base, mid, m2, B, b2, rows, rank, out_dim, scale);
    }
    return mt_matmul(ctx, what, y, ys, mid, ms, B, bts, NULL, 1, 1, rows, rank, out_dim, scale, 1);
}

mt_status lora_delta_backward(mt_ctx *ctx, float *dx, float *dA, float *dB, const float *dy,
                              const float *x, const float *mid, const float *A, const float *B,
                              float scale, int rows, int in_dim, int out_dim, int rank) {
    return lora_delta_backward_ex(ctx, dx, dA, dB, dy, x, mid, A, B, scale, rows, in_dim, out_dim,
                                  rank, 1);
}

mt_status lora_delta_backward_ex(mt_ctx *ctx, float *dx, float *dA, float *dB, const float *dy,
                                 const float *x, const float *mid, const float *A, const float *B,
                                 float scale, int rows, int in_dim, int out_dim, int rank,
                                 int accumulate) {
    const char *what = "lora_delta_backward";
    MT_NEED_PTR(ctx, what, dy);
    MT_NEED_PTR(ctx, what, B);
    MT_CHECK(lora_check(ctx, what, rows, in_dim, out_dim, rank));
    const int64_t ys[4] = {0, 0, out_dim, 1}, yts[4] = {0, 0, 1, out_dim};
    const int64_t ms[4] = {0, 0, rank, 1}, mts[4] = {0, 0, 1, rank};
    const int64_t bs[4] = {0, 0, rank, 1}, as[4] = {0, 0, in_dim, 1};
    const int64_t xs[4] = {0, 0, in_dim, 1}, rs[4] = {0, 0, in_dim, 1};
    if (dB) { /* dB[out, r] += scale * dy^T mid */
        MT_NEED_PTR(ctx, what, mid);
        MT_CHECK(mt_matmul(ctx, what, dB, bs, dy, yts, mid, ms, NULL, 1, 1, out_dim, rows, rank,
                           scale, 1));
    }
    if (!dx && !dA) return MT_OK;
    /* dmid[rows, r] = scale * dy B */
    float *dmid = mt_scratch(ctx, MT_SCRATCH_LORA, (size_t)rows * rank * sizeof(float));
    if (!dmid) return MT_ERR_NOMEM;
    MT_CHECK(mt_matmul(ctx, what, dmid, ms, dy, ys, B, bs, NULL, 1, 1, rows, out_dim, rank, scale,
                       0));
    if (dA) { /* dA[r, in] += dmid^T x */
        MT_NEED_PTR(ctx, what, x);
        MT_CHECK(mt_matmul(ctx, what, dA, rs, dmid, mts, x, xs, NULL, 1, 1, rank, rows, in_dim,
                           1.0f, 1));
    }
    if (dx) { /* dx[rows, in] += dmid A */
        MT_NEED_PTR(ctx, what, A);
        MT_CHECK(mt_matmul(ctx, what, dx, xs, dmid, ms, A, as, NULL, 1, 1, rows, rank, in_dim,
                           1.0f, accumulate));
    }
    return MT_OK;
}
