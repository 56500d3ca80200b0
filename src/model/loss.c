/* loss.c - task losses of the official MTLoRA code with their gradients.
 * Memory-bound per-pixel loops; partial sums per fixed block of pixels keep
 * the result independent of the thread count. */
#include <math.h>
#include <stdlib.h>
#include "mtlora/ops/context.h"
#include "mtlora/model/loss.h"

enum { BLOCK = 4096 };

static size_t nblocks(size_t n) { return (n + BLOCK - 1) / BLOCK; }

static double sum_parts(const double *part, size_t nb) {
    double s = 0.0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    return s;
}

mt_status softmax_ce_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                          const uint8_t *labels, int B, int K, size_t HW, float grad_scale) {
    const char *what = "softmax_ce_loss";
    MT_NEED_PTR(ctx, what, loss);
    MT_NEED_PTR(ctx, what, logits);
    MT_NEED_PTR(ctx, what, labels);
    MT_NEED_DIMS(ctx, what, B > 0 && K > 0 && K <= 256 && HW > 0, "B=%d K=%d HW=%zu", B, K, HW);
    size_t n = (size_t)B * HW, nb = nblocks(n);
    double *part = mt_scratch(ctx, MT_SCRATCH_PRIM0, nb * sizeof(double));
    if (!part) return MT_ERR_NOMEM;
    /* Pass 1 over the labels only: the count of valid pixels scales every
     * gradient, and labels are checked before anything is written. */
    size_t nvalid = 0;
    int bad = -1;
    for (size_t i = 0; i < n; i++) {
        int lab = labels[i];
        if (lab == MT_IGNORE_LABEL) continue;
        if (lab >= K) { bad = lab; break; }
        nvalid++;
    }
    if (bad >= 0)
        return mt_fail(ctx, MT_ERR_ARG, "%s: label %d out of range for %d classes (255 = ignore)",
                       what, bad, K);
    if (nvalid == 0) { *loss = 0.0; return MT_OK; }
    /* Pass 2: log-softmax per pixel, loss and gradient together. */
    const float g = (float)((double)grad_scale / (double)nvalid);
    #pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nb; blk++) {
        double s = 0.0;
        float e[256];
        size_t end = (blk + 1) * BLOCK < n ? (blk + 1) * BLOCK : n;
        for (size_t i = blk * BLOCK; i < end; i++) {
            int lab = labels[i];
            if (lab == MT_IGNORE_LABEL) continue;
            size_t base = (i / HW) * K * HW + i % HW;
            const float *x = logits + base;
            float mx = x[0];
            for (int k = 1; k < K; k++) mx = fmaxf(mx, x[(size_t)k * HW]);
            float z = 0.0f;
            for (int k = 0; k < K; k++) {
                e[k] = expf(x[(size_t)k * HW] - mx);
                z += e[k];
            }
            s += (double)logf(z) + mx - x[(size_t)lab * HW];
            if (dlogits) {
                float *dx = dlogits + base, inv = 1.0f / z;
                for (int k = 0; k < K; k++)
                    dx[(size_t)k * HW] += g * (e[k] * inv - (k == lab ? 1.0f : 0.0f));
            }
        }
        part[blk] = s;
    }
    *loss = sum_parts(part, nb) / (double)nvalid;
    return MT_OK;
}

/* BCE with logits in the official (overflow-safe) form. */
static double bce(double x, double y) {
    double gt0 = x >= 0 ? 1.0 : 0.0;
    return -(x * (y - gt0) - log1p(exp(x - 2.0 * x * gt0)));
}

mt_status balanced_bce_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                            const float *labels, size_t n, float pos_weight, float grad_scale) {
    const char *what = "balanced_bce_loss";
    MT_NEED_PTR(ctx, what, loss);
    MT_NEED_PTR(ctx, what, logits);
    MT_NEED_PTR(ctx, what, labels);
    MT_NEED_DIMS(ctx, what, n > 0, "n=%zu", n);
    if (pos_weight > 1.0f)
        return mt_fail(ctx, MT_ERR_ARG, "%s: pos_weight %g above 1", what, (double)pos_weight);
    size_t nb = nblocks(n);
    double *part = mt_scratch(ctx, MT_SCRATCH_PRIM0, 3 * nb * sizeof(double));
    if (!part) return MT_ERR_NOMEM;
    #pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nb; blk++) {
        double sp = 0.0, sn = 0.0, np = 0.0;
        size_t end = (blk + 1) * BLOCK < n ? (blk + 1) * BLOCK : n;
        for (size_t i = blk * BLOCK; i < end; i++) {
            int pos = labels[i] >= 0.5f;
            double l = bce(logits[i], pos);
            if (pos) { sp += l; np += 1.0; }
            else sn += l;
        }
        part[blk] = sp;
        part[nb + blk] = sn;
        part[2 * nb + blk] = np;
    }
    double sum_pos = sum_parts(part, nb), sum_neg = sum_parts(part + nb, nb);
    double npos = sum_parts(part + 2 * nb, nb);
    double w = pos_weight < 0 ? ((double)n - npos) / (double)n : pos_weight;
    *loss = (w * sum_pos + (1.0 - w) * sum_neg) / (double)n;
    if (!dlogits) return MT_OK;
    const double gp = grad_scale * w / (double)n, gn = grad_scale * (1.0 - w) / (double)n;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double sig = 1.0 / (1.0 + exp(-(double)logits[i]));
        dlogits[i] += (float)(labels[i] >= 0.5f ? gp * (sig - 1.0) : gn * sig);
    }
    return MT_OK;
}

mt_status normals_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                       const float *labels, int B, int C, size_t HW, float grad_scale) {
    const char *what = "normals_loss";
    MT_NEED_PTR(ctx, what, loss);
    MT_NEED_PTR(ctx, what, logits);
    MT_NEED_PTR(ctx, what, labels);
    MT_NEED_DIMS(ctx, what, B > 0 && C > 0 && C <= 16 && HW > 0, "B=%d C=%d HW=%zu", B, C, HW);
    size_t n = (size_t)B * HW, nb = nblocks(n);
    double *part = mt_scratch(ctx, MT_SCRATCH_PRIM0, 2 * nb * sizeof(double));
    if (!part) return MT_ERR_NOMEM;
    #pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nb; blk++) {
        double s = 0.0, cnt = 0.0;
        size_t end = (blk + 1) * BLOCK < n ? (blk + 1) * BLOCK : n;
        for (size_t i = blk * BLOCK; i < end; i++) {
            size_t base = (i / HW) * C * HW + i % HW;
            double sq = 0.0;
            for (int c = 0; c < C; c++) {
                double x = logits[base + (size_t)c * HW];
                sq += x * x;
            }
            /* The official code normalises in float32: mirror its rounding. */
            float qn = (float)sqrt(sq) + 1e-12f;
            for (int c = 0; c < C; c++) {
                float lab = labels[base + (size_t)c * HW];
                if (lab == (float)MT_IGNORE_LABEL) continue;
                s += fabs((double)(logits[base + (size_t)c * HW] / qn) - lab);
                cnt += 1.0;
            }
        }
        part[blk] = s;
        part[nb + blk] = cnt;
    }
    double nvalid = sum_parts(part + nb, nb);
    double denom = nvalid > 1e-6 ? nvalid : 1e-6;
    *loss = sum_parts(part, nb) / denom;
    if (!dlogits) return MT_OK;
    const double g = grad_scale / denom;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        size_t base = (i / HW) * C * HW + i % HW;
        double sq = 0.0;
        for (int c = 0; c < C; c++) {
            double x = logits[base + (size_t)c * HW];
            sq += x * x;
        }
        double norm = sqrt(sq);
        float qn = (float)norm + 1e-12f;
        /* dL/dy_c = sign(y_c - label_c) on valid elements; then through
         * y = x / (|x| + eps): dx = dy/qn - x (dy . x) / (|x| qn^2). */
        double dy_dot_x = 0.0;
        double dy[16];
        int cc = C; /* C <= 16 checked above */
        for (int c = 0; c < cc; c++) {
            float lab = labels[base + (size_t)c * HW];
            double x = logits[base + (size_t)c * HW];
            double y = (double)(logits[base + (size_t)c * HW] / qn);
            double d = lab == (float)MT_IGNORE_LABEL ? 0.0 : (y > lab ? 1.0 : (y < lab ? -1.0 : 0.0));
            dy[c] = d * g;
            dy_dot_x += dy[c] * x;
        }
        for (int c = 0; c < cc; c++) {
            double x = logits[base + (size_t)c * HW];
            double dx = dy[c] / qn;
            if (norm > 0.0) dx -= x * dy_dot_x / (norm * (double)qn * qn);
            dlogits[base + (size_t)c * HW] += (float)dx;
        }
    }
    return MT_OK;
}
