/* linear.c - fully connected layer on oneDNN matmul.
 *
 * PyTorch stores W as [out, in]; matmul takes it as a transposed strided
 * view, so no copy of the weight is ever made. The backward is two more
 * matmuls on transposed views (dX = dY W, dW = dY^T X) with a sum post-op,
 * which is how gradients accumulate without temporaries. */
#include <stdlib.h>
#include <string.h>
#include "ops_internal.h"
#include "mtlora/ops/layers.h"

/* C[m, n] (+)= A[m, k] B[k, n] with A and B given by their row/column
 * strides: the three matmuls of a linear layer. */
static mt_status matmul2d(mt_ctx *ctx, const char *what, float *c, const float *a,
                          const float *b, const float *bias, int64_t m, int64_t k,
                          int64_t n, int64_t as0, int64_t as1, int64_t bs0, int64_t bs1,
                          int accumulate) {
    const int64_t as[4] = {0, 0, as0, as1}, bs[4] = {0, 0, bs0, bs1}, cs[4] = {0, 0, n, 1};
    return mt_matmul(ctx, what, c, cs, a, as, b, bs, bias, 1, 1, m, k, n, 1.0f, accumulate);
}

static mt_status linear_check(mt_ctx *ctx, const char *what, int rows, int in_dim, int out_dim) {
    MT_NEED_DIMS(ctx, what, rows > 0 && in_dim > 0 && out_dim > 0,
                 "rows=%d in=%d out=%d", rows, in_dim, out_dim);
    return MT_OK;
}

mt_status linear_forward(mt_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int rows, int in_dim, int out_dim) {
    const char *what = "linear_forward";
    MT_NEED_PTR(ctx, what, out);
    MT_NEED_PTR(ctx, what, inp);
    MT_NEED_PTR(ctx, what, weight);
    MT_CHECK(linear_check(ctx, what, rows, in_dim, out_dim));
    /* out = inp[rows,in] x W^T, W^T viewed as [in, out] with strides (1, in). */
    return matmul2d(ctx, what, out, inp, weight, bias, rows, in_dim, out_dim, in_dim, 1, 1,
                    in_dim, 0);
}

/* Column sums of dout accumulated into dbias. Rows are split into blocks
 * summed in double, then blocks added in a fixed order so that the result
 * does not depend on the thread count. */
static mt_status bias_grad(mt_ctx *ctx, float *dbias, const float *dout, int rows, int cols) {
    enum { BLOCK = 256 };
    int nblk = (rows + BLOCK - 1) / BLOCK;
    /* [nblk, cols]: column sums of each block of rows */
    double *part = mt_scratch(ctx, MT_SCRATCH_PRIM0, (size_t)nblk * cols * sizeof(double));
    if (!part) return MT_ERR_NOMEM;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        double *acc = part + (size_t)b * cols;
        for (int j = 0; j < cols; j++) acc[j] = 0.0;
        int r1 = (b + 1) * BLOCK < rows ? (b + 1) * BLOCK : rows;
        for (int r = b * BLOCK; r < r1; r++) {
            const float *row = dout + (size_t)r * cols;
            for (int j = 0; j < cols; j++) acc[j] += row[j];
        }
    }
    for (int j = 0; j < cols; j++) {
        double s = 0.0;
        for (int b = 0; b < nblk; b++) s += part[(size_t)b * cols + j];
        dbias[j] += (float)s;
    }
    return MT_OK;
}

mt_status linear_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int rows, int in_dim, int out_dim) {
    return linear_backward_ex(ctx, dinp, dweight, dbias, dout, inp, weight, rows, in_dim, out_dim, 1);
}

mt_status linear_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int rows,
                             int in_dim, int out_dim, int accumulate) {
    const char *what = "linear_backward";
    MT_NEED_PTR(ctx, what, dout);
    MT_CHECK(linear_check(ctx, what, rows, in_dim, out_dim));
    if (dinp) {
        MT_NEED_PTR(ctx, what, weight);
        /* dinp[rows,in] += dout[rows,out] x W[out,in] */
        MT_CHECK(matmul2d(ctx, what, dinp, dout, weight, NULL, rows, out_dim, in_dim, out_dim,
                          1, in_dim, 1, accumulate));
    }
    if (dweight) {
        MT_NEED_PTR(ctx, what, inp);
        /* dW[out,in] += dout^T[out,rows] x inp[rows,in] */
        MT_CHECK(matmul2d(ctx, what, dweight, dout, inp, NULL, out_dim, rows, in_dim, 1,
                          out_dim, in_dim, 1, 1));
    }
    if (dbias) MT_CHECK(bias_grad(ctx, dbias, dout, rows, out_dim));
    return MT_OK;
}
