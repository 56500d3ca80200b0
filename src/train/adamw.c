/* adamw.c - torch.optim.AdamW, single-tensor form of PyTorch 1.13:
 *   p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Scalars are computed in double, as Python does, then used in float. */
#include <math.h>
#include "mtlora/ops/context.h"
#include "mtlora/train/adamw.h"

adamw_config adamw_defaults(float lr) {
    adamw_config c = {lr, 0.9f, 0.999f, 1e-8f};
    return c;
}

mt_status adamw_step(mt_ctx *ctx, float *params, const float *grads, float *m, float *v,
                     size_t n, const adamw_group *groups, int ngroups, adamw_config cfg,
                     long step) {
    const char *what = "adamw_step";
    MT_NEED_PTR(ctx, what, params);
    MT_NEED_PTR(ctx, what, grads);
    MT_NEED_PTR(ctx, what, m);
    MT_NEED_PTR(ctx, what, v);
    MT_NEED_PTR(ctx, what, groups);
    /* Each refusal names the field it comes from: the step count is the
     * trainer's (a checkpoint's state.adam_step + 1 after a resume), the
     * rest are config keys. */
    if (step < 1)
        return mt_fail(ctx, MT_ERR_ARG, "%s: AdamW step %ld (the optimizer step count: a checkpoint's "
                       "state.adam_step + 1) must be >= 1", what, step);
    if (!(cfg.lr >= 0.0f) || isinf(cfg.lr))
        return mt_fail(ctx, MT_ERR_ARG, "%s: learning rate %g (TRAIN.BASE_LR and the schedule) must be "
                       "finite and >= 0", what, (double)cfg.lr);
    if (!(cfg.beta1 >= 0.0f && cfg.beta1 < 1.0f) || !(cfg.beta2 >= 0.0f && cfg.beta2 < 1.0f))
        return mt_fail(ctx, MT_ERR_ARG, "%s: TRAIN.OPTIMIZER.BETAS [%g, %g] must each be in [0, 1)", what,
                       (double)cfg.beta1, (double)cfg.beta2);
    if (!(cfg.eps > 0.0f) || isinf(cfg.eps))
        return mt_fail(ctx, MT_ERR_ARG, "%s: TRAIN.OPTIMIZER.EPS %g must be finite and > 0", what,
                       (double)cfg.eps);
    for (int gi = 0; gi < ngroups; gi++) {
        if (groups[gi].offset > n || groups[gi].count > n - groups[gi].offset)
            return mt_fail(ctx, MT_ERR_SHAPE, "%s: group %d [%zu, +%zu) outside buffer of %zu",
                           what, gi, groups[gi].offset, groups[gi].count, n);
        if (!isfinite(groups[gi].weight_decay))
            return mt_fail(ctx, MT_ERR_ARG, "%s: group %d weight decay %g (TRAIN.WEIGHT_DECAY) must be finite",
                           what, gi, (double)groups[gi].weight_decay);
    }
    const double bc1 = 1.0 - pow(cfg.beta1, (double)step);
    const double bc2 = 1.0 - pow(cfg.beta2, (double)step);
    const float step_size = (float)(cfg.lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
    const float omb1 = (float)(1.0 - cfg.beta1), omb2 = (float)(1.0 - cfg.beta2);
    for (int gi = 0; gi < ngroups; gi++) {
        const float decay = (float)(1.0 - (double)cfg.lr * groups[gi].weight_decay);
        size_t a = groups[gi].offset, e = a + groups[gi].count;
        #pragma omp parallel for schedule(static) if (e - a > 65536)
        for (size_t i = a; i < e; i++) {
            float g = grads[i];
            float p = params[i] * decay;
            float mi = m[i] * b1 + omb1 * g;
            float vi = v[i] * b2 + omb2 * (g * g);
            m[i] = mi;
            v[i] = vi;
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            params[i] = p - step_size * (mi / denom);
        }
    }
    return MT_OK;
}

int param_bank_adamw_groups(const param_bank *bank, float wd, adamw_group *groups, int max) {
    int n = 0, cur_decay = -1;
    size_t next = (size_t)-1; /* offset where the current run would continue */
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (e->kind != MT_PARAM_TRAINABLE || e->no_grad) continue;
        if (e->decay != cur_decay || e->offset != next) {
            if (n < max) {
                groups[n].offset = e->offset;
                groups[n].count = 0;
                groups[n].weight_decay = e->decay ? wd : 0.0f;
            }
            n++;
            cur_decay = e->decay;
        }
        if (n <= max) groups[n - 1].count += e->count;
        next = e->offset + e->count;
    }
    return n;
}
