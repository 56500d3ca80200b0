/* model_merge.c - folding one task's adapter updates into a plain Swin.
 *
 * Every adapter kind but MTLoRA's task paths is, for a fixed task, a
 * linear map of the layer's input: lora s B A, mtl_lora s M_t Lambda_t A,
 * cgc_lora s K_t A_t (adapter.c). So W + dW_t reproduces path t exactly
 * (dropout off, as in evaluation), and the merged model is a plain Swin
 * with task t's head: one encoder path instead of P, and no low-rank
 * matmuls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

mt_status mt_model_merged_config(const mt_model *m, mt_ctx *ctx, int t, mt_config *out) {
    if (!m || !out || t < 0 || t >= m->T)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_merged_config: bad argument");
    mt_config c = m->cfg;
    mt_model_full_ft_config(&c);
    c.ntasks = 1;
    if (t) memcpy(c.tasks[0], m->cfg.tasks[t], sizeof c.tasks[0]);
    if (c.run.n_stl) {
        c.run.stl[0] = m->cfg.run.stl[t];
        c.run.n_stl = 1;
    }
    char err[512];
    mt_status st = mt_config_finalize(&c, err, sizeof err);
    if (st) return mt_fail(ctx, st, "merged config: %s", err);
    *out = c;
    return MT_OK;
}

/* The source tensor a plain-model name takes its value from: the same
 * name, or the base linear inside an adapted layer ("x.weight" is
 * "x.linear.weight" there). */
static const param_entry *source_entry(const mt_model *m, const char *name) {
    const param_entry *e = param_bank_find(&m->bank, name);
    if (e) return e;
    const char *dot = strrchr(name, '.');
    if (!dot) return NULL;
    char alt[MT_PARAM_NAME_LEN];
    snprintf(alt, sizeof alt, "%.*s.linear%s", (int)(dot - name), name, dot);
    return param_bank_find(&m->bank, alt);
}

static mt_status fold(mt_model *m, mt_ctx *ctx, const lora_linear *src, const lora_linear *dst,
                      int t, float *dW) {
    if (!src->r) return MT_OK;
    if (src->in != dst->in || src->out != dst->out)
        return mt_fail(ctx, MT_ERR_SHAPE, "merge: layer shapes differ");
    MT_CHECK(adapter_task_delta(m, ctx, src, t, dW));
    mt_add_inplace(dst->w.v, dW, (size_t)src->out * src->in);
    return MT_OK;
}

mt_status mt_model_merge_task(mt_model *m, mt_ctx *ctx, int t, mt_model *plain) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !plain || t < 0 || t >= m->T)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_merge_task: bad argument");
    if (m->task_paths)
        return mt_fail(ctx, MT_ERR_ARG,
                       "merge: MTLoRA's task-specific terms cannot be folded into one plain Swin: "
                       "in the last block of a stage fc1_t = W1 LN2(x1) + s_t B_t A_t LN2(x1_t) "
                       "applies the frozen weight to the shared activation and the low-rank term "
                       "to the task's, and the next stage reads the shared path, not task %s's "
                       "(docs/adapters.md); merge a lora, mtl_lora or cgc_lora model",
                       m->cfg.tasks[t]);
    if (plain->T != 1 || strcmp(plain->cfg.tasks[0], m->cfg.tasks[t]) || plain->L != m->L ||
        plain->P != 1 || plain->cfg.adapter.baseline != MT_BASELINE_FULL_FT)
        return mt_fail(ctx, MT_ERR_ARG, "merge: the plain model is not task %s's merged layout",
                       m->cfg.tasks[t]);
    for (int i = 0; i < plain->bank.count; i++) {
        const param_entry *d = &plain->bank.entries[i];
        const param_entry *s = source_entry(m, d->name);
        if (!s || s->count != d->count)
            return mt_fail(ctx, MT_ERR_ARG, "merge: %s has no counterpart of %zu values", d->name,
                           d->count);
        memcpy(param_bank_value(&plain->bank, d), param_bank_value(&m->bank, s),
               d->count * sizeof(float));
    }
    plain->dec[0].bn_tracked = m->dec[t].bn_tracked;
    MT_CHECK(adapter_prepare(m, ctx));
    size_t maxw = 0;
    for (int s = 0; s < m->L; s++) {
        const size_t C = (size_t)m->stages[s].dim, hid = (size_t)m->stages[s].blocks[0].fc1.out;
        if (3 * C * C > maxw) maxw = 3 * C * C;
        if (C * hid > maxw) maxw = C * hid;
        if (8 * C * C > maxw) maxw = 8 * C * C;
    }
    float *dW = malloc(maxw * sizeof(float));
    if (!dW) return mt_fail(ctx, MT_ERR_NOMEM, "merge: out of memory");
    mt_status st = MT_OK;
    for (int s = 0; s < m->L && !st; s++) {
        const swin_stage *a = &m->stages[s], *b = &plain->stages[s];
        for (int k = 0; k < a->depth && !st; k++) {
            const swin_block *x = &a->blocks[k], *y = &b->blocks[k];
            if (!(st = fold(m, ctx, &x->qkv, &y->qkv, t, dW)) &&
                !(st = fold(m, ctx, &x->proj, &y->proj, t, dW)) &&
                !(st = fold(m, ctx, &x->fc1, &y->fc1, t, dW)))
                st = fold(m, ctx, &x->fc2, &y->fc2, t, dW);
        }
        if (!st && a->has_merge) st = fold(m, ctx, &a->reduction, &b->reduction, t, dW);
    }
    free(dW);
    return st;
}
