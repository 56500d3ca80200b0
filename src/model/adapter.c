/* adapter.c - the low-rank term of every adapter kind (docs/adapters.md).
 *
 * lora / mtlora's shared term: s B A x on all rows. The task-dependent
 * kinds (mtl_lora, cgc_lora) see the encoder's rows as `paths` equal parts,
 * part p belonging to task p, and compute s K_p (A_p x) there. A_p and K_p
 * are materialised from the parameters once per forward, so the per-row
 * work is the same two matmuls as a plain LoRA of rank r:
 *   mtl_lora: A_p = A,  M_p = sum_i softmax(w_p / tau)_i B^i,  K_p = M_p Lambda_p
 *   cgc_lora: A_p = [A^c_1; ..; A^c_S; A^p_1; ..],  K_p = [pi_1 B^c_1, .., pi_S+k B^p_k, ..],
 *             pi = softmax(G E[p]) (one gate for the model)
 * The backward collects dA_p, dK_p per path and maps them onto the
 * parameters once the layer's backward is done (adapter_layer_grads). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "mtlora/ops/layers.h"

static int per_path(const lora_linear *l) {
    return l->kind == MT_ADAPTER_MTL_LORA || l->kind == MT_ADAPTER_CGC_LORA;
}

/* C[m, n] (+)= scale * op(A) op(B), row-major; ta/tb: A is stored [k, m] /
 * B is stored [n, k]. */
static mt_status mm(mt_ctx *ctx, float *C, const float *A, int ta, const float *B, int tb,
                    int64_t m, int64_t k, int64_t n, float scale, int acc) {
    const int64_t as[4] = {0, 0, ta ? 1 : k, ta ? m : 1};
    const int64_t bs[4] = {0, 0, tb ? 1 : n, tb ? k : 1};
    const int64_t cs[4] = {0, 0, n, 1};
    return mt_matmul(ctx, "adapter", C, cs, A, as, B, bs, NULL, 1, 1, m, k, n, scale, acc);
}

/* y (rows, out) = base + s K A x, or += without base; x (rows, in), mid
 * (rows, r) saved. Per-path kinds: rows split into `paths` parts of rp. */
mt_status adapter_delta_forward(mt_ctx *ctx, const lora_linear *l, float *y, const float *base,
                                float *mid, const float *x, int rows) {
    if (!per_path(l))
        return lora_delta_forward(ctx, y, base, mid, x, l->A.v, l->B.v, l->scale, rows, l->in,
                                  l->out, l->r);
    if (rows % l->paths)
        return mt_fail(ctx, MT_ERR_SHAPE, "adapter: %d rows do not split into %d paths", rows,
                       l->paths);
    const size_t rp = (size_t)(rows / l->paths); /* rows of one path */
    for (int p = 0; p < l->paths; p++)
        MT_CHECK(lora_delta_forward(ctx, y + p * rp * l->out, base ? base + p * rp * l->out : NULL,
                                    mid + p * rp * l->r, x + p * rp * l->in, l->effA[p],
                                    l->effK[p], l->scale, (int)rp, l->in, l->out, l->r));
    return MT_OK;
}

/* dy (rows, out) -> dx (rows, in) (accumulate: added to; NULL: skipped),
 * and the low-rank factors' gradients: A.g/B.g, or per path effdA/effdK. */
mt_status adapter_delta_backward(mt_ctx *ctx, const lora_linear *l, float *dx, const float *dy,
                                 const float *x, const float *mid, int rows, int accumulate) {
    if (!per_path(l))
        return lora_delta_backward_ex(ctx, dx, l->A.g, l->B.g, dy, x, mid, l->A.v, l->B.v,
                                      l->scale, rows, l->in, l->out, l->r, accumulate);
    const size_t rp = (size_t)(rows / l->paths);
    for (int p = 0; p < l->paths; p++)
        MT_CHECK(lora_delta_backward_ex(ctx, dx ? dx + p * rp * l->in : NULL, l->effdA[p],
                                        l->effdK[p], dy + p * rp * l->out, x + p * rp * l->in,
                                        mid + p * rp * l->r, l->effA[p], l->effK[p], l->scale,
                                        (int)rp, l->in, l->out, l->r, accumulate));
    return MT_OK;
}

/* Runs the body for every task-dependent layer l. */
#define FOR_PATH_LAYERS(m, l, ...)                                                     \
    for (int s_ = 0; s_ < (m)->L; s_++)                                                 \
        for (int b_ = 0; b_ < (m)->stages[s_].depth; b_++) {                            \
            swin_block *blk_ = &(m)->stages[s_].blocks[b_];                             \
            lora_linear *ls_[4] = {&blk_->qkv, &blk_->proj, &blk_->fc1, &blk_->fc2};     \
            for (int k_ = 0; k_ < 4; k_++) {                                            \
                lora_linear *l = ls_[k_];                                               \
                if (!per_path(l)) continue;                                             \
                __VA_ARGS__                                                             \
            }                                                                           \
        }

mt_status adapter_alloc(mt_model *m, mt_ctx *ctx) {
    for (int pass = 0; pass < 2; pass++) {
        size_t used = 0;
        FOR_PATH_LAYERS(m, l, {
            const size_t nk = (size_t)l->out * l->r, na = (size_t)l->r * l->in;
            for (int p = 0; p < l->paths; p++) {
                float *base = pass ? m->adapter_mem + used : NULL;
                l->effK[p] = base;
                l->effdK[p] = base ? base + nk : NULL;
                used += 2 * nk;
                if (l->kind == MT_ADAPTER_CGC_LORA) {
                    l->effA[p] = pass ? m->adapter_mem + used : NULL;
                    l->effdA[p] = pass ? m->adapter_mem + used + na : NULL;
                    used += 2 * na;
                } else {
                    l->effM[p] = pass ? m->adapter_mem + used : NULL;
                    used += nk;
                }
            }
        });
        if (!pass) {
            if (!used) return MT_OK;
            m->adapter_mem = calloc(used, sizeof(float));
            if (!m->adapter_mem)
                return mt_fail(ctx, MT_ERR_NOMEM, "model: cannot allocate %.1f MB for the adapters",
                               used * 4.0 / 1e6);
        }
    }
    return MT_OK;
}

/* p = softmax(z / tau) over n entries, max subtracted. */
static void softmax_tau(float *p, const float *z, int n, float tau) {
    float mx = z[0];
    for (int i = 1; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)(z[i] - mx) / tau);
    for (int i = 0; i < n; i++) p[i] = (float)(exp((double)(z[i] - mx) / tau) / sum);
}

static void mtl_mix(const lora_linear *l, int p, float *pi) {
    softmax_tau(pi, l->mix.v + (size_t)p * l->num_b, l->num_b, l->tau);
}

static const float *mtl_lambda(const lora_linear *l, int p) {
    return l->lam.v + (size_t)p * (l->diag ? (size_t)l->r : (size_t)l->r * l->r);
}

/* Expert e's B for path p (cgc), or its gradient: (out, expert_rank). */
static float *cgc_B(const lora_linear *l, int p, int e, int grad) {
    const size_t sz = (size_t)l->out * l->expert_rank;
    if (e < l->shared_experts) return (grad ? l->EB.g : l->EB.v) + e * sz;
    const size_t task_e = (size_t)p * l->task_experts + (size_t)(e - l->shared_experts);
    return (grad ? l->TB.g : l->TB.v) + task_e * sz;
}

mt_status adapter_prepare(mt_model *m, mt_ctx *ctx) {
    for (int t = 0; t < m->T && m->gate_n; t++) {
        float z[CGC_MAX_EXPERTS]; /* (gate_n) logits G E[t] */
        const float *e = m->gate_E.v + (size_t)t * m->gate_dim; /* (gate_dim) E[t] */
        for (int j = 0; j < m->gate_n; j++) {
            double acc = 0.0;
            const float *g = m->gate_G.v + (size_t)j * m->gate_dim; /* (gate_dim) row j of G */
            for (int d = 0; d < m->gate_dim; d++) acc += (double)g[d] * e[d];
            z[j] = (float)acc;
        }
        softmax_tau(m->gate_p[t], z, m->gate_n, 1.0f);
    }
    FOR_PATH_LAYERS(m, l, {
        const size_t nk = (size_t)l->out * l->r;
        for (int p = 0; p < l->paths; p++) {
            if (l->kind == MT_ADAPTER_MTL_LORA) {
                float pi[16];
                mtl_mix(l, p, pi);
                float *M = l->effM[p]; /* (out, r) */
                mt_zero(M, nk);
                for (int i = 0; i < l->num_b; i++) {
                    const float *Bi = l->Bn.v + (size_t)i * nk; /* (out, r) */
                    for (size_t q = 0; q < nk; q++) M[q] += pi[i] * Bi[q];
                }
                const float *lam = mtl_lambda(l, p); /* (r, r), or (r) when diag */
                if (l->diag) {
                    for (int o = 0; o < l->out; o++)
                        for (int j = 0; j < l->r; j++)
                            l->effK[p][(size_t)o * l->r + j] = M[(size_t)o * l->r + j] * lam[j];
                } else {
                    MT_CHECK(mm(ctx, l->effK[p], M, 0, lam, 0, l->out, l->r, l->r, 1.0f, 0));
                }
                l->effA[p] = l->A.v;
                l->effdA[p] = l->A.g;
            } else {
                const float *pi = m->gate_p[p];
                const size_t ea = (size_t)l->expert_rank * l->in;
                memcpy(l->effA[p], l->EA.v, (size_t)l->shared_experts * ea * sizeof(float));
                memcpy(l->effA[p] + (size_t)l->shared_experts * ea,
                       l->TA.v + (size_t)p * l->task_experts * ea,
                       (size_t)l->task_experts * ea * sizeof(float));
                for (int e = 0; e < l->shared_experts + l->task_experts; e++) {
                    const float *Be = cgc_B(l, p, e, 0); /* (out, expert_rank) */
                    for (int o = 0; o < l->out; o++)
                        for (int q = 0; q < l->expert_rank; q++)
                            l->effK[p][(size_t)o * l->r + (size_t)e * l->expert_rank + q] =
                                pi[e] * Be[(size_t)o * l->expert_rank + q];
                }
            }
        }
    });
    return MT_OK;
}

void adapter_zero_grads(mt_model *m) {
    memset(m->gate_dp, 0, sizeof m->gate_dp);
    FOR_PATH_LAYERS(m, l, {
        for (int p = 0; p < l->paths; p++) {
            mt_zero(l->effdK[p], (size_t)l->out * l->r);
            if (l->kind == MT_ADAPTER_CGC_LORA) mt_zero(l->effdA[p], (size_t)l->r * l->in);
        }
    });
}

mt_status adapter_layer_grads(mt_model *m, mt_ctx *ctx, const lora_linear *l) {
    if (!per_path(l)) return MT_OK;
    const size_t nk = (size_t)l->out * l->r;
    for (int p = 0; p < l->paths; p++) {
        const float *dK = l->effdK[p]; /* (out, r) */
        if (l->kind == MT_ADAPTER_MTL_LORA) {
            /* K = M Lambda: dLambda = M^T dK, dM = dK Lambda^T; M = sum pi_i B^i */
            const float *M = l->effM[p];         /* (out, r) */
            const float *lam = mtl_lambda(l, p); /* (r, r), or (r) when diag */
            float *dM = mt_scratch(ctx, MT_SCRATCH_LORA, nk * sizeof(float)); /* (out, r) */
            if (!dM) return MT_ERR_NOMEM;
            if (l->diag) {
                float *dl = l->lam.g + (size_t)p * l->r; /* (r) */
                for (int j = 0; j < l->r; j++) {
                    double acc = 0.0;
                    for (int o = 0; o < l->out; o++)
                        acc += (double)M[(size_t)o * l->r + j] * dK[(size_t)o * l->r + j];
                    dl[j] += (float)acc;
                }
                for (int o = 0; o < l->out; o++)
                    for (int j = 0; j < l->r; j++)
                        dM[(size_t)o * l->r + j] = dK[(size_t)o * l->r + j] * lam[j];
            } else {
                MT_CHECK(mm(ctx, l->lam.g + (size_t)p * l->r * l->r, M, 1, dK, 0, l->r, l->out,
                            l->r, 1.0f, 1));
                MT_CHECK(mm(ctx, dM, dK, 0, lam, 1, l->out, l->r, l->r, 1.0f, 0));
            }
            float pi[16];
            double dpi[16], dot = 0.0;
            mtl_mix(l, p, pi);
            for (int i = 0; i < l->num_b; i++) {
                const float *Bi = l->Bn.v + (size_t)i * nk; /* (out, r) */
                float *dBi = l->Bn.g + (size_t)i * nk;      /* (out, r) */
                double acc = 0.0;
                for (size_t q = 0; q < nk; q++) {
                    acc += (double)Bi[q] * dM[q];
                    dBi[q] += pi[i] * dM[q];
                }
                dpi[i] = acc;
                dot += pi[i] * acc;
            }
            float *dw = l->mix.g + (size_t)p * l->num_b; /* (num_b) */
            for (int i = 0; i < l->num_b; i++) dw[i] += (float)(pi[i] * (dpi[i] - dot) / l->tau);
        } else {
            const float *dA = l->effdA[p]; /* (r, in) */
            const size_t ea = (size_t)l->expert_rank * l->in;
            mt_add_inplace(l->EA.g, dA, (size_t)l->shared_experts * ea);
            mt_add_inplace(l->TA.g + (size_t)p * l->task_experts * ea,
                           dA + (size_t)l->shared_experts * ea, (size_t)l->task_experts * ea);
            const float *pi = m->gate_p[p];
            for (int e = 0; e < l->shared_experts + l->task_experts; e++) {
                const float *Be = cgc_B(l, p, e, 0); /* (out, expert_rank) */
                float *dBe = cgc_B(l, p, e, 1);      /* (out, expert_rank) */
                double acc = 0.0;
                for (int o = 0; o < l->out; o++)
                    for (int q = 0; q < l->expert_rank; q++) {
                        const float g = dK[(size_t)o * l->r + (size_t)e * l->expert_rank + q];
                        acc += (double)Be[(size_t)o * l->expert_rank + q] * g;
                        dBe[(size_t)o * l->expert_rank + q] += pi[e] * g;
                    }
                m->gate_dp[p][e] += acc;
            }
        }
    }
    return MT_OK;
}

mt_status adapter_gate_grads(mt_model *m, mt_ctx *ctx) {
    (void)ctx;
    if (!m->gate_n || !m->gate_G.g) return MT_OK;
    for (int t = 0; t < m->T; t++) {
        const float *pi = m->gate_p[t];
        double dot = 0.0, dz[CGC_MAX_EXPERTS];
        for (int j = 0; j < m->gate_n; j++) dot += pi[j] * m->gate_dp[t][j];
        for (int j = 0; j < m->gate_n; j++) dz[j] = pi[j] * (m->gate_dp[t][j] - dot);
        const float *e = m->gate_E.v + (size_t)t * m->gate_dim; /* (gate_dim) E[t] */
        float *de = m->gate_E.g + (size_t)t * m->gate_dim;      /* (gate_dim) its gradient */
        for (int d = 0; d < m->gate_dim; d++) {
            double acc = 0.0;
            for (int j = 0; j < m->gate_n; j++) {
                m->gate_G.g[(size_t)j * m->gate_dim + d] += (float)(dz[j] * e[d]);
                acc += dz[j] * m->gate_G.v[(size_t)j * m->gate_dim + d];
            }
            de[d] += (float)acc;
        }
    }
    return MT_OK;
}

mt_status adapter_task_delta(mt_model *m, mt_ctx *ctx, const lora_linear *l, int t, float *dW) {
    (void)m;
    const size_t n = (size_t)l->out * l->in;
    if (!l->r) {
        mt_zero(dW, n);
        return MT_OK;
    }
    if (per_path(l)) /* dW = s K_t A_t */
        return mm(ctx, dW, l->effK[t], 0, l->effA[t], 0, l->out, l->r, l->in, l->scale, 0);
    return mm(ctx, dW, l->B.v, 0, l->A.v, 0, l->out, l->r, l->in, l->scale, 0);
}
