/* model.c - mt_model: creation, the forward through patch embedding,
 * stages, patch merging (shared and per task) and decoders, the weighted
 * multi-task loss, and the backward in reverse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "mtlora/ops/layers.h"
#include "mtlora/model/loss.h"

void mt_model_destroy(mt_model *m) {
    if (!m) return;
    model_free_acts(m);
    for (int s = 0; s < MT_MAX_STAGES; s++) {
        if (m->stages[s].blocks)
            for (int b = 0; b < m->stages[s].depth; b++) free(m->stages[s].blocks[b].mask);
        free(m->stages[s].blocks);
        free(m->a.blocks[s]);
    }
    param_bank_free(&m->bank);
    model_precision_free(m);
    free(m->adapter_mem);
    free(m->reported);
    free(m);
}

mt_status mt_model_create(mt_model **out, mt_ctx *ctx, const mt_config *cfg, uint64_t seed) {
    if (!ctx) return MT_ERR_ARG;
    if (!out || !cfg) return mt_fail(ctx, MT_ERR_ARG, "mt_model_create: NULL argument");
    *out = NULL;
    if (cfg->nstages < 1 || cfg->nstages > MT_MAX_STAGES || cfg->ntasks < 1 ||
        cfg->ntasks > MT_MAX_TASKS)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_create: config not finalized");
    mt_model *m = calloc(1, sizeof *m);
    if (!m) return mt_fail(ctx, MT_ERR_NOMEM, "mt_model_create: out of memory");
    m->cfg = *cfg;
    param_bank_init(&m->bank);
    mt_status st = MT_OK;
    for (int s = 0; s < cfg->nstages; s++) {
        m->stages[s].depth = cfg->depths[s];
        m->stages[s].blocks = calloc((size_t)cfg->depths[s], sizeof(swin_block));
        m->a.blocks[s] = calloc((size_t)cfg->depths[s], sizeof(block_acts));
        if (!m->stages[s].blocks || !m->a.blocks[s]) {
            st = mt_fail(ctx, MT_ERR_NOMEM, "mt_model_create: out of memory");
            goto fail;
        }
    }
    if ((st = model_register_params(m, ctx, 0))) goto fail;
    if ((st = param_bank_alloc(ctx, &m->bank))) goto fail;
    if ((st = model_register_params(m, ctx, 1))) goto fail;
    if (!(m->reported = calloc((size_t)m->bank.count, 1))) {
        st = mt_fail(ctx, MT_ERR_NOMEM, "mt_model_create: out of memory");
        goto fail;
    }
    for (int s = 0; s < m->L; s++)
        for (int b = 0; b < m->stages[s].depth; b++) {
            swin_block *blk = &m->stages[s].blocks[b];
            if (!blk->shift) continue;
            size_t N = (size_t)blk->ws * blk->ws, nw = (size_t)(blk->H / blk->ws) * (blk->W / blk->ws);
            blk->mask = malloc(nw * N * N * sizeof(float));
            if (!blk->mask) {
                st = mt_fail(ctx, MT_ERR_NOMEM, "mt_model_create: out of memory");
                goto fail;
            }
            if ((st = swin_attn_mask(ctx, blk->mask, blk->H, blk->W, blk->ws, blk->shift))) goto fail;
        }
    if ((st = model_init_params(m, ctx, seed))) goto fail;
    if ((st = adapter_alloc(m, ctx))) goto fail;
    if ((st = model_precision_init(m, ctx))) goto fail;
    if (!m->task_paths && m->cfg.mtlora.enabled) {
        /* fc2 without task terms: the proj and fc1 task terms exist but
         * their outputs are dropped, so they never get a gradient. */
        for (int s = 0; s < m->L; s++) {
            const swin_block *lb = &m->stages[s].blocks[m->stages[s].depth - 1];
            const lora_linear *ls[2] = {&lb->proj, &lb->fc1};
            const char *kind[2] = {"attn.proj", "mlp.fc1"};
            for (int k = 0; k < 2; k++)
                for (int t = 0; t < ls[k]->ntask; t++) {
                    char n[MT_PARAM_NAME_LEN];
                    const char *ab[2] = {"A", "B"};
                    for (int q = 0; q < 2; q++) {
                        snprintf(n, sizeof n, "backbone.layers.%d.blocks.%d.%s.lora_tasks_%s.%s", s,
                                 m->stages[s].depth - 1, kind[k], ab[q], m->cfg.tasks[t]);
                        if ((st = param_bank_set_no_grad(ctx, &m->bank, n))) goto fail;
                    }
                }
        }
    }
    if (m->task_paths) {
        /* With task paths the last block's shared output feeds nothing, so
         * its shared fc2 LoRA never gets a gradient (PyTorch: grad None). */
        const swin_stage *ls = &m->stages[m->L - 1];
        const lora_linear *f2 = &ls->blocks[ls->depth - 1].fc2;
        if (f2->r && f2->A.g) {
            char n[MT_PARAM_NAME_LEN];
            const char *ab[2] = {"A", "B"};
            for (int k = 0; k < 2; k++) {
                snprintf(n, sizeof n, "backbone.layers.%d.blocks.%d.mlp.fc2.lora_shared_%s",
                         m->L - 1, ls->depth - 1, ab[k]);
                if ((st = param_bank_set_no_grad(ctx, &m->bank, n))) goto fail;
            }
        }
    }
    *out = m;
    return MT_OK;
fail:
    mt_model_destroy(m);
    return st;
}

const mt_config *mt_model_config(const mt_model *m) { return &m->cfg; }
param_bank *mt_model_bank(mt_model *m) { return &m->bank; }

const float *mt_model_logits(const mt_model *m, int t) {
    if (!m || t < 0 || t >= m->T || !m->act_mem) return NULL;
    return m->a.dec[t].logits;
}

/* ---- patch merging of one path (shared or a task) ----------------------- */

static uint64_t merge_site(int s, int path) { return 1000000u + (uint64_t)s * 64 + path; }

/* src: (B, H*W, C) of stage st -> ma->out (B, (H/2)*(W/2), 2C). */
static mt_status merge_forward(mt_ctx *ctx, const swin_stage *st, merge_acts *ma, const float *src,
                               int B, int training, uint64_t seed, uint64_t site) {
    const int C = st->dim, mrows = B * (st->H / 2) * (st->W / 2);
    const lora_linear *red = &st->reduction;
    MT_CHECK(patch_merge_gather_forward(ctx, ma->gath, src, B, st->H, st->W, C));
    MT_CHECK(layernorm_forward(ctx, ma->normed, ma->mean, ma->var, ma->gath, st->mnorm_w.v,
                               st->mnorm_b.v, mrows, 4 * C));
    MT_CHECK(base_forward(ctx, red, ma->out, ma->normed, mrows));
    if (!red->r) return MT_OK;
    MT_CHECK(lora_dropout_apply(ctx, ma->normed_drop, ma->normed, (size_t)mrows * 4 * C,
                                red->dropout, training, seed, site));
    return adapter_delta_forward(ctx, red, ma->out, NULL, ma->mid, ma->normed_drop, mrows);
}

/* With recompute: the merge's gather, norm and LoRA dropout again (its
 * output and low-rank intermediate are kept), the forward's numbers. */
static mt_status merge_recompute(mt_ctx *ctx, const swin_stage *st, merge_acts *ma,
                                 const float *src, int B, int training, uint64_t seed,
                                 uint64_t site) {
    const int C = st->dim, mrows = B * (st->H / 2) * (st->W / 2);
    const lora_linear *red = &st->reduction;
    MT_CHECK(patch_merge_gather_forward(ctx, ma->gath, src, B, st->H, st->W, C));
    MT_CHECK(layernorm_forward(ctx, ma->normed, ma->mean, ma->var, ma->gath, st->mnorm_w.v,
                               st->mnorm_b.v, mrows, 4 * C));
    if (!red->r) return MT_OK;
    return lora_dropout_apply(ctx, ma->normed_drop, ma->normed, (size_t)mrows * 4 * C,
                              red->dropout, training, seed, site);
}

/* d_out: (B, (H/2)*(W/2), 2C) -> d_src: (B, H*W, C), ADDED to. */
static mt_status merge_backward(mt_ctx *ctx, const swin_stage *st, const merge_acts *ma,
                                grad_work *w, float *d_src, const float *d_out, int B,
                                int training, uint64_t seed, uint64_t site) {
    const int C = st->dim, mrows = B * (st->H / 2) * (st->W / 2);
    const size_t nn = (size_t)mrows * 4 * C;
    const lora_linear *red = &st->reduction;
    mt_zero(w->m_normed, nn);
    MT_CHECK(shared_lora_backward(ctx, red, w->m_normed, w->m_normed_drop, 0, d_out,
                                  ma->normed_drop, ma->mid, mrows, training, seed, site));
    MT_CHECK(base_backward(ctx, red, w->m_normed, d_out, ma->normed, mrows, 1));
    mt_zero(w->m_gath, nn);
    MT_CHECK(layernorm_backward(ctx, w->m_gath, st->mnorm_w.g, st->mnorm_b.g, w->m_normed, ma->gath,
                                ma->mean, ma->var, st->mnorm_w.v, st->mnorm_b.v, mrows, 4 * C));
    return patch_merge_gather_backward(ctx, d_src, w->m_gath, B, st->H, st->W, C);
}

/* ---- forward ------------------------------------------------------------ */

mt_status mt_model_forward(mt_model *m, mt_ctx *ctx, const float *images, int B, int training,
                           uint64_t seed) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !images) return mt_fail(ctx, MT_ERR_ARG, "mt_model_forward: NULL model or images");
    if (B < 1) return mt_fail(ctx, MT_ERR_SHAPE, "mt_model_forward: batch %d", B);
    if (training && B * m->feat_res[0] * m->feat_res[0] < 2)
        return mt_fail(ctx, MT_ERR_SHAPE, "mt_model_forward: batch norm needs more than one value");
    MT_CHECK(model_alloc_acts(m, ctx, B));
    m->trained_forward = m->have_loss_grad = 0;
    const mt_config *c = &m->cfg;
    model_acts *a = &m->a;
    MT_CHECK(adapter_prepare(m, ctx));
    MT_CHECK(model_precision_prepare(m, ctx));
    patch_embed_weights pw = {m->pe_w.v, m->pe_b.v, m->pe_nw.v, m->pe_nb.v};
    MT_CHECK(patch_embed_forward(ctx, a->pe_out, a->pe_conv, a->pe_mean, a->pe_var, images, pw, B,
                                 c->in_chans, m->S, m->S, c->embed_dim, c->patch_size));
    /* With task-dependent adapters the encoder runs one path per task, as a
     * batch of P * B images: path p is rows [p B, (p + 1) B). */
    const int Be = m->P * B;
    const size_t pe_n = (size_t)B * m->grid0 * m->grid0 * c->embed_dim;
    for (int p = 0; p < m->P && m->P > 1; p++) mt_copy(a->pe_rep + p * pe_n, a->pe_out, pe_n);
    const float *x = m->P > 1 ? a->pe_rep : a->pe_out; /* (Be, H*W, C) the next block's input */
    for (int s = 0; s < m->L; s++) {
        const swin_stage *st = &m->stages[s];
        for (int b = 0; b < st->depth; b++) {
            /* with m->acts_shared (TRAIN.USE_CHECKPOINT) only out / out_t are the
             * block's own: the rest lands in the area the next block overwrites */
            MT_CHECK(swin_block_forward(ctx, &st->blocks[b], &a->blocks[s][b], a, x, Be, training,
                                        seed));
            x = a->blocks[s][b].out;
        }
        const block_acts *last = &a->blocks[s][st->depth - 1];
        /* path t's slice of a shared tensor: fs floats, (B, Hf_s*Hf_s, Cf_s) */
        const size_t fs = (size_t)B * m->feat_res[s] * m->feat_res[s] * m->feat_dim[s];
        const size_t path_off = m->P > 1 ? fs : 0;
        if (st->has_merge) {
            MT_CHECK(merge_forward(ctx, st, &a->merge[s][0], last->out, Be, training, seed,
                                   merge_site(s, 0)));
            for (int t = 0; t < m->T; t++) {
                if (m->task_paths) {
                    MT_CHECK(merge_forward(ctx, st, &a->merge[s][1 + t], last->out_t[t], B,
                                           training, seed, merge_site(s, 1 + t)));
                    a->feat[t][s] = a->merge[s][1 + t].out;
                } else {
                    a->feat[t][s] = a->merge[s][0].out + t * path_off;
                }
            }
            x = a->merge[s][0].out;
        } else {
            for (int t = 0; t < m->T; t++)
                a->feat[t][s] = m->task_paths ? last->out_t[t] : last->out + t * path_off;
        }
    }
    for (int t = 0; t < m->T; t++) MT_CHECK(decoder_forward(ctx, m, t, B, training));
    m->trained_forward = training;
    m->images = images;
    m->seed = seed;
    return MT_OK;
}

/* ---- loss ----------------------------------------------------------------- */

mt_status mt_model_loss(mt_model *m, mt_ctx *ctx, const mt_targets *targets, double *total,
                        double *task_loss, int want_grad) {
    if (!ctx) return MT_ERR_ARG;
    if (!m || !targets || !total) return mt_fail(ctx, MT_ERR_ARG, "mt_model_loss: NULL argument");
    if (!m->act_mem) return mt_fail(ctx, MT_ERR_ARG, "mt_model_loss: no forward yet");
    const int B = m->B;
    const size_t hw = (size_t)m->S * m->S;
    *total = 0.0;
    for (int t = 0; t < m->T; t++) {
        decoder_acts *d = &m->a.dec[t];
        const int K = m->dec[t].K;
        const float wgt = m->cfg.loss_weight[t];
        float *dl = want_grad ? d->dlogits : NULL; /* (B, K, S, S) */
        if (dl) mt_zero(dl, (size_t)B * K * hw);
        double l = 0.0;
        switch (m->cfg.task_kind[t]) {
        case MT_TASK_SEMSEG:
        case MT_TASK_HUMAN_PARTS:
            if (targets->labels[t])
                MT_CHECK(softmax_ce_loss(ctx, &l, dl, d->logits, targets->labels[t], B, K, hw, wgt));
            break;
        case MT_TASK_SAL:
            if (targets->values[t])
                MT_CHECK(balanced_bce_loss(ctx, &l, dl, d->logits, targets->values[t],
                                           (size_t)B * hw, -1.0f, wgt));
            break;
        case MT_TASK_EDGE: /* official get_loss: pos_weight edge_w = 0.95 */
            if (targets->values[t])
                MT_CHECK(balanced_bce_loss(ctx, &l, dl, d->logits, targets->values[t],
                                           (size_t)B * hw, 0.95f, wgt));
            break;
        case MT_TASK_NORMALS:
            if (targets->values[t])
                MT_CHECK(normals_loss(ctx, &l, dl, d->logits, targets->values[t], B, K, hw, wgt));
            break;
        }
        if (task_loss) task_loss[t] = l;
        *total += (double)wgt * l;
    }
    m->have_loss_grad = want_grad;
    return MT_OK;
}

/* ---- backward ------------------------------------------------------------- */

int64_t mt_model_bn_tracked(const mt_model *m) { return m && m->T ? m->dec[0].bn_tracked : 0; }

void mt_model_set_bn_tracked(mt_model *m, int64_t n) {
    for (int t = 0; m && t < m->T; t++) m->dec[t].bn_tracked = n;
}

void mt_model_set_grad_ready(mt_model *m, mt_grad_ready_fn fn, void *user) {
    if (!m) return;
    m->grad_ready = fn;
    m->grad_ready_user = user;
}

mt_status mt_model_use_frozen(mt_model *m, mt_ctx *ctx, float *frozen, int copy) {
    if (!m || !frozen) return mt_fail(ctx, MT_ERR_ARG, "mt_model_use_frozen: NULL argument");
    if (frozen == m->bank.frozen) return MT_OK;
    if (m->frozen_f32_released)
        return mt_fail(ctx, MT_ERR_ARG, "mt_model_use_frozen: the frozen weights are bf16 only");
    m->frozen_h_fresh = 0;
    if (copy) memcpy(frozen, m->bank.frozen, sizeof(float) * m->bank.n_frozen);
    if (!m->bank.frozen_external) free(m->bank.frozen);
    m->bank.frozen = frozen;
    m->bank.frozen_external = 1;
    return model_register_params(m, ctx, 1); /* re-point every frozen view */
}

/* Reports the not yet reported trainable tensors whose name starts with
 * prefix (NULL: all; "!backbone." : all not starting with "backbone."). */
static void report_ready(mt_model *m, const char *prefix) {
    if (!m->grad_ready) return;
    const int negate = prefix && prefix[0] == '!';
    if (negate) prefix++;
    for (int i = 0; i < m->bank.count; i++) {
        const param_entry *e = &m->bank.entries[i];
        if (m->reported[i] || e->kind != MT_PARAM_TRAINABLE) continue;
        const int match = !prefix || !strncmp(e->name, prefix, strlen(prefix));
        if (match == negate) continue;
        m->reported[i] = 1;
        m->grad_ready(m->grad_ready_user, e->offset, e->count);
    }
}

mt_status mt_model_backward(mt_model *m, mt_ctx *ctx) {
    if (!ctx) return MT_ERR_ARG;
    if (!m) return mt_fail(ctx, MT_ERR_ARG, "mt_model_backward: NULL model");
    if (!m->trained_forward || !m->have_loss_grad)
        return mt_fail(ctx, MT_ERR_ARG,
                       "mt_model_backward: needs a training forward and a loss with gradient");
    const int B = m->B, training = 1;
    const uint64_t seed = m->seed;
    const mt_config *c = &m->cfg;
    model_acts *a = &m->a;
    grad_work *w = &m->w;
    memset(m->reported, 0, (size_t)m->bank.count);
    adapter_zero_grads(m);
    for (int k = 0; k < m->T; k++) {
        /* with recompute the tasks' decoders share one area, which the
         * forward left holding the last task's: that one goes first, every
         * other runs its forward again (the tasks' gradients are apart, so
         * the order changes no number) */
        const int t = m->acts_shared ? (m->T - 1 + k) % m->T : k;
        for (int s = 0; s < m->L; s++)
            mt_zero(w->d_feat[t][s], (size_t)B * m->feat_res[s] * m->feat_res[s] * m->feat_dim[s]);
        if (m->acts_shared && k > 0) {
            model_poison_shared(m);
            MT_CHECK(decoder_recompute(ctx, m, t, B));
        }
        MT_CHECK(decoder_backward(ctx, m, t, B));
        if (m->grad_ready) m->grad_ready(m->grad_ready_user, 0, 0);
    }
    report_ready(m, "!backbone.");
    if (!m->backbone_trains) { /* decoders only: nothing in the encoder trains */
        report_ready(m, NULL);
        return MT_OK;
    }
    float *dc = w->d_cur;  /* (Be, H*W, C) w.r.t. the current block's output */
    float *dp = w->d_prev; /* (Be, H*W, C) w.r.t. its input; the two swap per block */
    const int Be = m->P * B;
    for (int s = m->L - 1; s >= 0; s--) {
        const swin_stage *st = &m->stages[s];
        const size_t n = (size_t)Be * st->H * st->W * st->dim;
        const size_t fs = (size_t)B * m->feat_res[s] * m->feat_res[s] * m->feat_dim[s];
        const size_t path_off = m->P > 1 ? fs : 0;
        /* dc: gradient w.r.t. the last block's shared output */
        if (st->has_merge) {
            /* dc holds the gradient w.r.t. the merged output (next stage's input) */
            if (!m->task_paths)
                for (int t = 0; t < m->T; t++)
                    mt_add_inplace(dc + t * path_off, w->d_feat[t][s], fs);
            mt_zero(dp, n);
            const float *src = a->blocks[s][st->depth - 1].out; /* (Be, H*W, C) kept */
            if (m->acts_shared) {
                model_poison_shared(m);
                MT_CHECK(merge_recompute(ctx, st, &a->merge[s][0], src, Be, training, seed,
                                         merge_site(s, 0)));
            }
            MT_CHECK(merge_backward(ctx, st, &a->merge[s][0], w, dp, dc, Be, training, seed,
                                    merge_site(s, 0)));
            float *tmp = dc; dc = dp; dp = tmp;
        } else {
            mt_zero(dc, n);
            if (!m->task_paths)
                for (int t = 0; t < m->T; t++) mt_add_inplace(dc + t * path_off, w->d_feat[t][s], fs);
        }
        if (m->task_paths)
            for (int t = 0; t < m->T; t++) {
                if (st->has_merge) {
                    mt_zero(w->d_out_t[t], n);
                    if (m->acts_shared) model_poison_shared(m);
                    if (m->acts_shared)
                        MT_CHECK(merge_recompute(ctx, st, &a->merge[s][1 + t],
                                                 a->blocks[s][st->depth - 1].out_t[t], B,
                                                 training, seed, merge_site(s, 1 + t)));
                    MT_CHECK(merge_backward(ctx, st, &a->merge[s][1 + t], w, w->d_out_t[t],
                                            w->d_feat[t][s], B, training, seed,
                                            merge_site(s, 1 + t)));
                } else {
                    mt_copy(w->d_out_t[t], w->d_feat[t][s], n);
                }
            }
        for (int b = st->depth - 1; b >= 0; b--) {
            /* the block's input, (Be, H*W, C) */
            const float *x_in = b > 0 ? a->blocks[s][b - 1].out
                                : s > 0 ? a->merge[s - 1][0].out
                                : m->P > 1 ? a->pe_rep : a->pe_out;
            mt_zero(dp, n);
            const swin_block *blk = &st->blocks[b];
            /* TRAIN.USE_CHECKPOINT: later blocks overwrote this one's inner
             * activations, so its forward runs again on the kept input with
             * the same seed (dropout and drop-path masks are functions of seed
             * and site): the forward's numbers, up to what the backward reads
             * (out / out_t and the fc2 intermediates are kept). The decoders
             * share the area too, so every block runs again, the model's last
             * included; a block that kept its matmul outputs recomputes only
             * the rest. */
            if (m->acts_shared) model_poison_shared(m);
            if (m->acts_shared && a->blocks[s][b].keep)
                MT_CHECK(swin_block_recompute(ctx, blk, &a->blocks[s][b], a, x_in, Be, training,
                                              seed));
            else if (m->acts_shared)
                MT_CHECK(swin_block_refill(ctx, blk, &a->blocks[s][b], a, x_in, Be, training,
                                           seed));
            MT_CHECK(swin_block_backward(ctx, blk, &a->blocks[s][b], w, x_in, dp, dc,
                                         b == st->depth - 1 ? w->d_out_t : NULL, Be, training,
                                         seed));
            MT_CHECK(adapter_layer_grads(m, ctx, &blk->qkv));
            MT_CHECK(adapter_layer_grads(m, ctx, &blk->proj));
            MT_CHECK(adapter_layer_grads(m, ctx, &blk->fc1));
            MT_CHECK(adapter_layer_grads(m, ctx, &blk->fc2));
            float *tmp = dc; dc = dp; dp = tmp;
            /* a progress point: lets the caller drive its pending messages */
            if (m->grad_ready) m->grad_ready(m->grad_ready_user, 0, 0);
        }
        char prefix[48];
        snprintf(prefix, sizeof prefix, "backbone.layers.%d.", s);
        report_ready(m, prefix);
    }
    /* dc: gradient w.r.t. the patch embedding output, summed over paths */
    const size_t pe_n = (size_t)B * m->grid0 * m->grid0 * c->embed_dim;
    for (int p = 1; p < m->P; p++) mt_add_inplace(dc, dc + p * pe_n, pe_n);
    MT_CHECK(adapter_gate_grads(m, ctx));
    patch_embed_weights pw = {m->pe_w.v, m->pe_b.v, m->pe_nw.v, m->pe_nb.v};
    patch_embed_grads pg = {m->pe_w.g, m->pe_b.g, m->pe_nw.g, m->pe_nb.g};
    MT_CHECK(patch_embed_backward(ctx, NULL, pg, dc, m->images, a->pe_conv, a->pe_mean, a->pe_var,
                                  pw, B, c->in_chans, m->S, m->S, c->embed_dim, c->patch_size));
    report_ready(m, NULL);
    return MT_OK;
}

/* ---- counts --------------------------------------------------------------- */

mt_param_counts mt_model_param_counts(const mt_model *m) {
    mt_param_counts pc;
    memset(&pc, 0, sizeof pc);
    for (int i = 0; i < m->bank.count; i++) {
        const param_entry *e = &m->bank.entries[i];
        if (e->kind == MT_PARAM_BUFFER) continue;
        pc.total += e->count;
        if (e->kind == MT_PARAM_TRAINABLE) pc.trainable += e->count;
        else pc.frozen += e->count;
        if (strstr(e->name, "lora_")) pc.lora += e->count;
        else if (strncmp(e->name, "backbone.", 9)) pc.decoder += e->count;
        else if (strstr(e->name, "patch_embed")) pc.patch_embed += e->count;
        else if (strstr(e->name, "norm")) pc.norms += e->count;
        else if (strstr(e->name, "relative_position_bias_table")) pc.rel_bias += e->count;
        else if (strstr(e->name, "downsample.reduction")) pc.merging += e->count;
    }
    return pc;
}

/* Multiply-accumulates of one LoRA linear on `rows` rows: forward, and the
 * backward as executed (data gradient of the base always, its weight
 * gradient when it trains; two matmuls forward and four backward for every
 * low-rank term). */
static void lin_macs(const lora_linear *l, double rows, double *fwd, double *bwd) {
    double base = rows * l->in * l->out;
    double low = l->r ? rows * l->r * (l->in + l->out) : 0.0;
    for (int t = 0; t < l->ntask; t++) low += rows * l->task_rank[t] * (l->in + l->out);
    *fwd += base + low;
    *bwd += base + (l->w.g ? base : 0.0) + 2.0 * low;
}

mt_flops mt_model_flops(const mt_model *m) {
    mt_flops f = {0.0, 0.0};
    const mt_config *c = &m->cfg;
    double fwd = 0.0, bwd = 0.0;
    double pe = (double)m->grid0 * m->grid0 * c->embed_dim * c->in_chans * c->patch_size *
                c->patch_size;
    fwd += pe;
    bwd += m->pe_w.g ? pe : 0.0;
    for (int s = 0; s < m->L; s++) {
        const swin_stage *st = &m->stages[s];
        double rows = (double)st->H * st->W * m->P; /* every path's rows */
        for (int b = 0; b < st->depth; b++) {
            const swin_block *blk = &st->blocks[b];
            lin_macs(&blk->qkv, rows, &fwd, &bwd);
            double attn = 2.0 * rows * blk->ws * blk->ws * blk->dim; /* q k^T and p v */
            fwd += attn;
            bwd += 2.0 * attn;
            lin_macs(&blk->proj, rows, &fwd, &bwd);
            lin_macs(&blk->fc1, rows, &fwd, &bwd);
            lin_macs(&blk->fc2, rows, &fwd, &bwd);
        }
        if (st->has_merge) {
            int paths = 1 + (m->task_paths ? m->T : 0);
            for (int p = 0; p < paths; p++) lin_macs(&st->reduction, rows / 4, &fwd, &bwd);
        }
    }
    if (!m->backbone_trains) bwd = 0.0; /* decoders only: no encoder backward */
    for (int t = 0; t < m->T; t++) {
        const task_decoder *d = &m->dec[t];
        double hw0 = (double)m->feat_res[0] * m->feat_res[0], dec = 0.0;
        for (int s = 0; s < m->L; s++)
            dec += (double)m->feat_res[s] * m->feat_res[s] * m->feat_dim[s] * c->decoder_channels[s];
        dec += hw0 * d->csum * 4.0 * d->csum + hw0 * 4.0 * d->csum * d->K;
        fwd += dec;
        bwd += 2.0 * dec;
    }
    f.forward_macs = fwd;
    f.train_macs = fwd + bwd;
    return f;
}
