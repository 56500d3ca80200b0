/* attention.c - Swin's windowed multi-head self-attention core.
 *
 *   scores = scale * q k^T + table[relative_position_index] (+ mask)
 *   probs  = softmax(scores);  out = probs v
 *
 * q, k and v are strided views into the qkv linear's output and `out` is
 * written straight into the [nwb, N, C] layout the proj linear reads, so
 * the head split and merge of the PyTorch code cost no copies. */
#include <math.h>
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

static mt_status attn_check(mt_ctx *ctx, const char *what, int nwb, int ws, int C, int heads) {
    MT_NEED_DIMS(ctx, what, nwb > 0 && ws > 0 && C > 0 && heads > 0 && C % heads == 0,
                 "windows=%d window=%d C=%d heads=%d", nwb, ws, C, heads);
    return MT_OK;
}

mt_status window_attention_forward(mt_ctx *ctx, float *out, float *probs,
                                   const float *qkv, const float *table,
                                   const float *mask, int nwb, int nw, int ws,
                                   int C, int heads) {
    const char *what = "window_attention_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, probs);
    MT_NEED_PTR(ctx, what, qkv);
    MT_NEED_PTR(ctx, what, table);
    MT_CHECK(attn_check(ctx, what, nwb, ws, C, heads));
    if (mask)
        MT_NEED_DIMS(ctx, what, nw > 0 && nwb % nw == 0, "windows=%d windows-per-image=%d",
                     nwb, nw);
    const int64_t N = (int64_t)ws * ws, hd = C / heads, C3 = 3 * (int64_t)C;
    const float scale = 1.0f / sqrtf((float)hd);
    /* scores[b,h] = scale * q[b,h] (N x hd) . k[b,h]^T (hd x N) */
    const int64_t qs[4] = {N * C3, hd, C3, 1};
    const int64_t kts[4] = {N * C3, hd, 1, C3};
    const int64_t ps[4] = {heads * N * N, N * N, N, 1};
    MT_CHECK(mt_matmul(ctx, what, probs, ps, qkv, qs, qkv + C, kts, NULL, nwb, heads, N, hd, N,
                       scale, 0));
    /* Bias and mask are added in place before the softmax. */
    /* [N, N] relative_position_index */
    int32_t *index = mt_scratch(ctx, MT_SCRATCH_ATTN0, (size_t)N * N * sizeof(int32_t));
    if (!index) return MT_ERR_NOMEM;
    swin_relative_position_index(index, ws);
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < nwb; b++) {
        for (int h = 0; h < heads; h++) {
            float *s = probs + ((size_t)b * heads + h) * N * N;              /* [N, N] */
            const float *m = mask ? mask + (size_t)(b % nw) * N * N : NULL; /* [N, N] */
            for (int64_t ij = 0; ij < N * N; ij++)
                s[ij] += table[(size_t)index[ij] * heads + h] + (m ? m[ij] : 0.0f);
        }
    }
    MT_CHECK(softmax_forward(ctx, probs, probs, (int)(nwb * heads * N), (int)N));
    /* out[b,:,h*hd:(h+1)*hd] = probs[b,h] . v[b,h] */
    const int64_t vs[4] = {N * C3, hd, C3, 1};
    const int64_t os[4] = {N * C, hd, C, 1};
    return mt_matmul(ctx, what, out, os, probs, ps, qkv + 2 * C, vs, NULL, nwb, heads, N, N, hd,
                     1.0f, 0);
}

mt_status window_attention_backward(mt_ctx *ctx, float *dqkv, float *dtable,
                                    const float *dout, const float *qkv,
                                    const float *probs, int nwb, int ws, int C, int heads) {
    return window_attention_backward_ex(ctx, dqkv, dtable, dout, qkv, probs, nwb, ws, C, heads, 1);
}

/* dq, dk and dv are disjoint slices written once each, so with
 * accumulate = 0 they are plain writes and dqkv needs no zeroing. */
mt_status window_attention_backward_ex(mt_ctx *ctx, float *dqkv, float *dtable, const float *dout,
                                       const float *qkv, const float *probs, int nwb, int ws,
                                       int C, int heads, int accumulate) {
    const char *what = "window_attention_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_NEED_PTR(ctx, what, qkv);
    MT_NEED_PTR(ctx, what, probs);
    MT_CHECK(attn_check(ctx, what, nwb, ws, C, heads));
    if (!dqkv && !dtable) return MT_OK;
    const int64_t N = (int64_t)ws * ws, hd = C / heads, C3 = 3 * (int64_t)C;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t np = (size_t)nwb * heads * N * N;
    float *dprobs = mt_scratch(ctx, MT_SCRATCH_ATTN0, np * sizeof(float));  /* [nwb, heads, N, N] */
    float *dscores = mt_scratch(ctx, MT_SCRATCH_ATTN1, np * sizeof(float)); /* [nwb, heads, N, N] */
    if (!dprobs || !dscores) return MT_ERR_NOMEM;
    const int64_t ps[4] = {heads * N * N, N * N, N, 1};
    const int64_t pts[4] = {heads * N * N, N * N, 1, N};  /* transposed probs/scores */
    const int64_t ds[4] = {N * C, hd, C, 1};              /* dout as [b,h,N,hd] */
    const int64_t qkv_s[4] = {N * C3, hd, C3, 1};         /* q, k, v or their grads */
    const int64_t vts[4] = {N * C3, hd, 1, C3};           /* v^T */
    /* dprobs = dout . v^T */
    MT_CHECK(mt_matmul(ctx, what, dprobs, ps, dout, ds, qkv + 2 * C, vts, NULL, nwb, heads, N,
                       hd, N, 1.0f, 0));
    if (dqkv) /* dv += probs^T . dout */
        MT_CHECK(mt_matmul(ctx, what, dqkv + 2 * C, qkv_s, probs, pts, dout, ds, NULL, nwb,
                           heads, N, N, hd, 1.0f, accumulate));
    MT_CHECK(softmax_backward_into(ctx, dscores, dprobs, probs, (int)(nwb * heads * N), (int)N));
    if (dtable) {
        /* Sum over windows first (parallel over entries, fixed order), then
         * scatter into the table serially: several (i, j) share an entry. */
        double *acc = (double *)mt_scratch(ctx, MT_SCRATCH_ATTN0, /* [heads, N, N] */
                                           (size_t)heads * N * N * sizeof(double));
        if (!acc) return MT_ERR_NOMEM; /* dprobs is no longer needed */
        #pragma omp parallel for schedule(static)
        for (int64_t e = 0; e < heads * N * N; e++) {
            double s = 0.0;
            for (int b = 0; b < nwb; b++) s += dscores[(size_t)b * heads * N * N + e];
            acc[e] = s;
        }
        /* [N, N] relative_position_index */
        int32_t *index = mt_scratch(ctx, MT_SCRATCH_ATTN2, (size_t)N * N * sizeof(int32_t));
        if (!index) return MT_ERR_NOMEM;
        swin_relative_position_index(index, ws);
        for (int h = 0; h < heads; h++)
            for (int64_t ij = 0; ij < N * N; ij++)
                dtable[(size_t)index[ij] * heads + h] += (float)acc[(size_t)h * N * N + ij];
    }
    if (dqkv) {
        /* dq += scale * dscores . k ; dk += scale * dscores^T . q */
        MT_CHECK(mt_matmul(ctx, what, dqkv, qkv_s, dscores, ps, qkv + C, qkv_s, NULL, nwb, heads,
                           N, N, hd, scale, accumulate));
        MT_CHECK(mt_matmul(ctx, what, dqkv + C, qkv_s, dscores, pts, qkv, qkv_s, NULL, nwb,
                           heads, N, N, hd, scale, accumulate));
    }
    return MT_OK;
}
