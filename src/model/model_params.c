/* model_params.c - every tensor of the model under its official
 * state-dict name, which of them train (mark_only_lora_as_trainable), and
 * their initialisation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "mtlora/base/rng.h"

typedef struct {
    mt_model *m;
    mt_ctx *ctx;
    int bind;
} reg;

/* The official trainable set: outside the backbone everything trains; in
 * the backbone with MTLoRA and FREEZE_PRETRAINED, only what
 * mark_only_lora_as_trainable's filters let through (substring tests on
 * the name, exactly as the official code does them). */
static int is_trainable(const mt_config *c, const char *name) {
    if (strncmp(name, "backbone.", 9)) return 1;
    if (c->adapter.baseline == MT_BASELINE_DECODERS_ONLY) return 0;
    if (!c->mtlora.enabled || !c->mtlora.freeze_pretrained) return 1;
    if (strstr(name, "lora_")) return 1;
    if (!c->freeze_patch_embed && strstr(name, "patch_embed")) return 1;
    if (!c->freeze_layer_norm && strstr(name, "norm")) return 1;
    int freeze_reduction = c->mtlora.downsampler_enabled || c->freeze_downsample_reduction;
    if (!freeze_reduction && strstr(name, "downsample.reduction")) return 1;
    if (!c->freeze_rel_bias && strstr(name, "relative_position_bias_table")) return 1;
    return 0;
}

static mt_status param(reg *r, ptensor *t, mt_param_kind kind, const char *name, int ndim,
                       int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (!r->bind) {
        int64_t shape[4] = {d0, d1, d2, d3};
        size_t len = strlen(name);
        int decay = !(ndim == 1 || (len >= 5 && !strcmp(name + len - 5, ".bias")));
        if (kind == MT_PARAM_TRAINABLE && !is_trainable(&r->m->cfg, name)) kind = MT_PARAM_FROZEN;
        return param_bank_add(r->ctx, &r->m->bank, name, ndim, shape, kind, decay);
    }
    const param_entry *e = param_bank_find(&r->m->bank, name);
    if (!e) return mt_fail(r->ctx, MT_ERR_ARG, "model: tensor %s not registered", name);
    t->v = param_bank_value(&r->m->bank, e);
    t->g = param_bank_grad(&r->m->bank, e);
    return MT_OK;
}

#define PARAM(r, t, name, nd, a, b, c, d) MT_CHECK(param(r, t, MT_PARAM_TRAINABLE, name, nd, a, b, c, d))

/* A linear that may carry LoRA: official names are "<p>.weight" for a plain
 * nn.Linear and "<p>.linear.weight" + "<p>.lora_*" inside MTLoRALinear. */
static mt_status lora_linear_params(reg *r, lora_linear *l, const char *p, int with_lora,
                                    int has_bias, const char *const *tasks) {
    char n[MT_PARAM_NAME_LEN];
    const char *lin = with_lora ? ".linear" : "";
    const int T = r->m->T;
    if (l->kind == MT_ADAPTER_MTL_LORA) {
        snprintf(n, sizeof n, "%s.lora_A", p);
        PARAM(r, &l->A, n, 2, l->r, l->in, 0, 0);
        snprintf(n, sizeof n, "%s.lora_B", p);
        PARAM(r, &l->Bn, n, 3, l->num_b, l->out, l->r, 0);
        snprintf(n, sizeof n, "%s.lora_lambda", p);
        if (l->diag) PARAM(r, &l->lam, n, 2, T, l->r, 0, 0);
        else PARAM(r, &l->lam, n, 3, T, l->r, l->r, 0);
        snprintf(n, sizeof n, "%s.lora_mix", p);
        PARAM(r, &l->mix, n, 2, T, l->num_b, 0, 0);
    } else if (l->kind == MT_ADAPTER_CGC_LORA) {
        snprintf(n, sizeof n, "%s.lora_experts_shared_A", p);
        PARAM(r, &l->EA, n, 3, l->shared_experts, l->expert_rank, l->in, 0);
        snprintf(n, sizeof n, "%s.lora_experts_shared_B", p);
        PARAM(r, &l->EB, n, 3, l->shared_experts, l->out, l->expert_rank, 0);
        snprintf(n, sizeof n, "%s.lora_experts_task_A", p);
        PARAM(r, &l->TA, n, 3, (int64_t)T * l->task_experts, l->expert_rank, l->in, 0);
        snprintf(n, sizeof n, "%s.lora_experts_task_B", p);
        PARAM(r, &l->TB, n, 3, (int64_t)T * l->task_experts, l->out, l->expert_rank, 0);
    } else if (with_lora) {
        snprintf(n, sizeof n, "%s.lora_shared_A", p);
        PARAM(r, &l->A, n, 2, l->r, l->in, 0, 0);
        snprintf(n, sizeof n, "%s.lora_shared_B", p);
        PARAM(r, &l->B, n, 2, l->out, l->r, 0, 0);
    }
    snprintf(n, sizeof n, "%s%s.weight", p, lin);
    PARAM(r, &l->w, n, 2, l->out, l->in, 0, 0);
    if (has_bias) {
        snprintf(n, sizeof n, "%s%s.bias", p, lin);
        PARAM(r, &l->b, n, 1, l->out, 0, 0, 0);
    }
    /* ParameterDict keeps task entries in name order, A's then B's. */
    int order[MT_MAX_TASKS];
    for (int i = 0; i < l->ntask; i++) order[i] = i;
    for (int i = 1; i < l->ntask; i++)
        for (int j = i; j > 0 && strcmp(tasks[order[j - 1]], tasks[order[j]]) > 0; j--) {
            int tmp = order[j]; order[j] = order[j - 1]; order[j - 1] = tmp;
        }
    for (int k = 0; k < l->ntask; k++) {
        int t = order[k];
        snprintf(n, sizeof n, "%s.lora_tasks_A.%s", p, tasks[t]);
        PARAM(r, &l->At[t], n, 2, l->task_rank[t], l->in, 0, 0);
    }
    for (int k = 0; k < l->ntask; k++) {
        int t = order[k];
        snprintf(n, sizeof n, "%s.lora_tasks_B.%s", p, tasks[t]);
        PARAM(r, &l->Bt[t], n, 2, l->out, l->task_rank[t], 0, 0);
    }
    return MT_OK;
}

/* Fills the geometry (dims, ranks, windows) from the config; no memory. */
static void model_geometry(mt_model *m) {
    const mt_config *c = &m->cfg;
    const mt_mtlora_config *ml = &c->mtlora;
    m->L = c->nstages;
    m->T = c->ntasks;
    m->S = c->img_size;
    m->grid0 = c->img_size / c->patch_size;
    /* Task features exist when fc2 carries task terms (the official block
     * returns task tensors only from its MLP); proj and fc1 task terms
     * exist whenever their kind is on, used or not. */
    const mt_adapter_config *ad = &c->adapter;
    m->task_paths = ad->layer_kind[MT_LAYER_FC2] == MT_ADAPTER_MTLORA;
    m->P = ad->paths > 1 ? ad->paths : 1;
    m->backbone_trains = ad->baseline != MT_BASELINE_DECODERS_ONLY;
    m->gate_n = 0;
    m->gate_dim = ad->cgc_gate_dim;
    int total_blocks = 0;
    for (int s = 0; s < m->L; s++) total_blocks += c->depths[s];
    int grid = m->grid0, gidx = 0;
    for (int s = 0; s < m->L; s++) {
        swin_stage *st = &m->stages[s];
        st->dim = c->embed_dim << s;
        st->H = st->W = grid;
        st->depth = c->depths[s];
        st->has_merge = s < m->L - 1;
        for (int b = 0; b < st->depth; b++, gidx++) {
            swin_block *blk = &st->blocks[b];
            blk->index = gidx;
            blk->dim = st->dim;
            blk->heads = c->heads[s];
            blk->H = blk->W = grid;
            blk->ws = c->window_size;
            blk->shift = b % 2 ? c->window_size / 2 : 0;
            if (grid <= c->window_size) { blk->shift = 0; blk->ws = grid; }
            /* torch.linspace(0, rate, n) in float32 */
            blk->drop_path = total_blocks > 1
                                 ? (float)((double)c->drop_path_rate * gidx / (total_blocks - 1))
                                 : 0.0f;
            int last = b == st->depth - 1;
            blk->ntask = last && m->task_paths ? m->T : 0;
            int C = st->dim, hid = (int)(C * c->mlp_ratio);
            lora_linear *ls[4] = {&blk->qkv, &blk->proj, &blk->fc1, &blk->fc2};
            int ins[4] = {C, C, C, hid}, outs[4] = {3 * C, C, hid, C};
            for (int k = 0; k < 4; k++) {
                lora_linear *l = ls[k];
                memset(l, 0, sizeof *l);
                l->in = ins[k];
                l->out = outs[k];
                l->kind = ad->layer_kind[k];
                l->paths = 1;
                if (l->kind == MT_ADAPTER_MTL_LORA || l->kind == MT_ADAPTER_CGC_LORA) {
                    l->paths = m->P;
                    if (l->kind == MT_ADAPTER_MTL_LORA) {
                        l->r = ml->r[s];
                        l->num_b = ad->mtl_num_b;
                        l->tau = ad->mtl_tau;
                        l->diag = ad->mtl_diag;
                        l->scale = ad->mtl_scale;
                        l->dropout = ad->mtl_dropout;
                    } else {
                        /* all experts of a layer together cost one rank-r LoRA */
                        l->shared_experts = ad->n_shared_experts;
                        l->task_experts = ad->cgc_task;
                        l->expert_rank = mt_model_cgc_expert_rank(c, s);
                        l->r = (l->shared_experts + l->task_experts) * l->expert_rank;
                        l->scale = ad->cgc_scale;
                        l->dropout = ad->cgc_dropout;
                        m->gate_n = l->shared_experts + l->task_experts;
                    }
                } else if (l->kind == MT_ADAPTER_LORA) {
                    l->r = ml->r[s];
                    l->scale = ml->shared_scale[s];
                    l->dropout = ml->dropout[s];
                } else if (l->kind == MT_ADAPTER_MTLORA) {
                    l->r = ml->r[s];
                    l->scale = ml->shared_scale[s];
                    l->dropout = ml->dropout[s];
                    l->ntask = k > 0 && last ? m->T : 0; /* never on qkv */
                    for (int t = 0; t < l->ntask; t++) {
                        l->task_rank[t] = ml->r_task[t][s];
                        l->task_scale[t] = ml->task_scale[t][s];
                    }
                }
            }
        }
        lora_linear *red = &st->reduction;
        memset(red, 0, sizeof *red);
        red->in = 4 * st->dim;
        red->out = 2 * st->dim;
        if (ml->enabled && ml->downsampler_enabled) {
            red->kind = MT_ADAPTER_LORA;
            red->paths = 1;
            red->r = ml->r[s];
            red->scale = ml->shared_scale[s];
            red->dropout = ml->dropout[s];
        }
        if (s < m->L - 1) grid /= 2;
    }
    /* Decoder inputs: stage s's features after its merging (the last stage
     * has none): dims [2C, 4C, ..., last, last], as swin_mtl.py computes. */
    for (int s = 0; s < m->L; s++) {
        int up = s < m->L - 1 ? s + 1 : s;
        m->feat_dim[s] = c->embed_dim << up;
        m->feat_res[s] = m->grid0 >> up;
    }
    for (int t = 0; t < m->T; t++) {
        task_decoder *d = &m->dec[t];
        d->K = c->num_outputs[t];
        d->csum = 0;
        for (int s = 0; s < m->L; s++) d->csum += c->decoder_channels[s];
    }
}

mt_status model_register_params(mt_model *m, mt_ctx *ctx, int bind) {
    reg r = {m, ctx, bind};
    const mt_config *c = &m->cfg;
    if (!bind) model_geometry(m);
    const char *tasks[MT_MAX_TASKS];
    for (int t = 0; t < m->T; t++) tasks[t] = c->tasks[t];
    char n[MT_PARAM_NAME_LEN];
    int C0 = c->embed_dim, p = c->patch_size;
    PARAM(&r, &m->pe_w, "backbone.patch_embed.proj.weight", 4, C0, c->in_chans, p, p);
    PARAM(&r, &m->pe_b, "backbone.patch_embed.proj.bias", 1, C0, 0, 0, 0);
    PARAM(&r, &m->pe_nw, "backbone.patch_embed.norm.weight", 1, C0, 0, 0, 0);
    PARAM(&r, &m->pe_nb, "backbone.patch_embed.norm.bias", 1, C0, 0, 0, 0);
    for (int s = 0; s < m->L; s++) {
        swin_stage *st = &m->stages[s];
        for (int b = 0; b < st->depth; b++) {
            swin_block *blk = &st->blocks[b];
            int C = blk->dim, span = 2 * blk->ws - 1;
            char pre[64], q[96];
            snprintf(pre, sizeof pre, "backbone.layers.%d.blocks.%d", s, b);
            snprintf(n, sizeof n, "%s.norm1.weight", pre);
            PARAM(&r, &blk->norm1_w, n, 1, C, 0, 0, 0);
            snprintf(n, sizeof n, "%s.norm1.bias", pre);
            PARAM(&r, &blk->norm1_b, n, 1, C, 0, 0, 0);
            snprintf(n, sizeof n, "%s.attn.relative_position_bias_table", pre);
            PARAM(&r, &blk->table, n, 2, (int64_t)span * span, blk->heads, 0, 0);
            snprintf(q, sizeof q, "%s.attn.qkv", pre);
            MT_CHECK(lora_linear_params(&r, &blk->qkv, q, blk->qkv.r > 0, c->qkv_bias, tasks));
            snprintf(q, sizeof q, "%s.attn.proj", pre);
            MT_CHECK(lora_linear_params(&r, &blk->proj, q, blk->proj.r > 0, 1, tasks));
            snprintf(n, sizeof n, "%s.norm2.weight", pre);
            PARAM(&r, &blk->norm2_w, n, 1, C, 0, 0, 0);
            snprintf(n, sizeof n, "%s.norm2.bias", pre);
            PARAM(&r, &blk->norm2_b, n, 1, C, 0, 0, 0);
            snprintf(q, sizeof q, "%s.mlp.fc1", pre);
            MT_CHECK(lora_linear_params(&r, &blk->fc1, q, blk->fc1.r > 0, 1, tasks));
            snprintf(q, sizeof q, "%s.mlp.fc2", pre);
            MT_CHECK(lora_linear_params(&r, &blk->fc2, q, blk->fc2.r > 0, 1, tasks));
        }
        if (st->has_merge) {
            char q[96];
            snprintf(q, sizeof q, "backbone.layers.%d.downsample.reduction", s);
            MT_CHECK(lora_linear_params(&r, &st->reduction, q, st->reduction.r > 0, 0, tasks));
            snprintf(n, sizeof n, "backbone.layers.%d.downsample.norm.weight", s);
            PARAM(&r, &st->mnorm_w, n, 1, 4 * st->dim, 0, 0, 0);
            snprintf(n, sizeof n, "backbone.layers.%d.downsample.norm.bias", s);
            PARAM(&r, &st->mnorm_b, n, 1, 4 * st->dim, 0, 0, 0);
        }
    }
    if (m->gate_n) {
        PARAM(&r, &m->gate_E, "backbone.lora_gate.embedding", 2, m->T, m->gate_dim, 0, 0);
        PARAM(&r, &m->gate_G, "backbone.lora_gate.weight", 2, m->gate_n, m->gate_dim, 0, 0);
    }
    for (int t = 0; t < m->T; t++)
        for (int s = 0; s < m->L; s++) {
            snprintf(n, sizeof n, "downsampler.%s.downsample_%d.weight", tasks[t], s);
            PARAM(&r, &m->dec[t].down[s], n, 4, c->decoder_channels[s], m->feat_dim[s], 1, 1);
        }
    for (int t = 0; t < m->T; t++) {
        task_decoder *d = &m->dec[t];
        int cs = d->csum;
        char pre[64];
        snprintf(pre, sizeof pre, "decoders.decoders.%s.last_layer", tasks[t]);
        snprintf(n, sizeof n, "%s.0.weight", pre);
        PARAM(&r, &d->c1_w, n, 4, 4 * cs, cs, 1, 1);
        snprintf(n, sizeof n, "%s.0.bias", pre);
        PARAM(&r, &d->c1_b, n, 1, 4 * cs, 0, 0, 0);
        snprintf(n, sizeof n, "%s.1.weight", pre);
        PARAM(&r, &d->bn_w, n, 1, 4 * cs, 0, 0, 0);
        snprintf(n, sizeof n, "%s.1.bias", pre);
        PARAM(&r, &d->bn_b, n, 1, 4 * cs, 0, 0, 0);
        ptensor rm = {0}, rv = {0};
        snprintf(n, sizeof n, "%s.1.running_mean", pre);
        MT_CHECK(param(&r, &rm, MT_PARAM_BUFFER, n, 1, 4 * cs, 0, 0, 0));
        snprintf(n, sizeof n, "%s.1.running_var", pre);
        MT_CHECK(param(&r, &rv, MT_PARAM_BUFFER, n, 1, 4 * cs, 0, 0, 0));
        d->bn_running_mean = rm.v;
        d->bn_running_var = rv.v;
        snprintf(n, sizeof n, "%s.3.weight", pre);
        PARAM(&r, &d->c2_w, n, 4, d->K, 4 * cs, 1, 1);
        snprintf(n, sizeof n, "%s.3.bias", pre);
        PARAM(&r, &d->c2_b, n, 1, d->K, 0, 0, 0);
    }
    return MT_OK;
}

/* ---- initialisation --------------------------------------------------- */

typedef struct {
    uint64_t seed, counter;
} init_rng;

static float uni(init_rng *r) { return mt_rng_uniform(r->seed, r->counter++); }

/* timm's trunc_normal_(std) cuts at +-2 absolute, i.e. +-100 std for
 * 0.02: in practice a normal; values beyond the cut are redrawn. */
static void fill_trunc_normal(init_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) {
        float v;
        do {
            float u1 = uni(r), u2 = uni(r);
            if (u1 < 1e-12f) u1 = 1e-12f;
            v = std * sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
        } while (v < -2.0f || v > 2.0f);
        x[i] = v;
    }
}

static void fill_uniform_bound(init_rng *r, float *x, size_t n, float bound) {
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * uni(r) - 1.0f) * bound;
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void fill_normal(init_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) {
        float u1 = uni(r), u2 = uni(r);
        if (u1 < 1e-12f) u1 = 1e-12f;
        x[i] = std * sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
    }
}

static void init_lora_linear(init_rng *r, lora_linear *l, int T) {
    fill_trunc_normal(r, l->w.v, (size_t)l->out * l->in, 0.02f);
    if (l->b.v) fill_const(l->b.v, (size_t)l->out, 0.0f);
    /* kaiming_uniform_(a=sqrt(5)): bound = 1/sqrt(fan_in); B = 0 */
    float bound = 1.0f / sqrtf((float)l->in);
    if (l->kind == MT_ADAPTER_MTL_LORA) {
        /* the MTL-LoRA authors' code: A kaiming, B^i 0, Lambda identity
         * (diagonal: ones), mixing logits kaiming over the nb entries */
        fill_uniform_bound(r, l->A.v, (size_t)l->r * l->in, bound);
        fill_const(l->Bn.v, (size_t)l->num_b * l->out * l->r, 0.0f);
        for (int t = 0; t < T; t++) {
            float *lam = l->lam.v + (size_t)t * (l->diag ? l->r : l->r * l->r);
            if (l->diag) fill_const(lam, (size_t)l->r, 1.0f);
            else
                for (int i = 0; i < l->r; i++)
                    for (int j = 0; j < l->r; j++) lam[i * l->r + j] = i == j ? 1.0f : 0.0f;
        }
        fill_uniform_bound(r, l->mix.v, (size_t)T * l->num_b, 1.0f / sqrtf((float)l->num_b));
        return;
    }
    if (l->kind == MT_ADAPTER_CGC_LORA) { /* MOELoRA's: A ~ N(0, 0.01^2), B = 0 */
        fill_normal(r, l->EA.v, (size_t)l->shared_experts * l->expert_rank * l->in, 0.01f);
        fill_const(l->EB.v, (size_t)l->shared_experts * l->out * l->expert_rank, 0.0f);
        fill_normal(r, l->TA.v, (size_t)T * l->task_experts * l->expert_rank * l->in, 0.01f);
        fill_const(l->TB.v, (size_t)T * l->task_experts * l->out * l->expert_rank, 0.0f);
        return;
    }
    if (l->r) {
        fill_uniform_bound(r, l->A.v, (size_t)l->r * l->in, bound);
        fill_const(l->B.v, (size_t)l->out * l->r, 0.0f);
    }
    for (int t = 0; t < l->ntask; t++) {
        fill_uniform_bound(r, l->At[t].v, (size_t)l->task_rank[t] * l->in, bound);
        fill_const(l->Bt[t].v, (size_t)l->out * l->task_rank[t], 0.0f);
    }
}

/* PyTorch's Conv2d default: weight and bias U(-1/sqrt(fan_in), +). */
static void init_conv(init_rng *r, ptensor *w, ptensor *b, int cout, int fan_in) {
    float bound = 1.0f / sqrtf((float)fan_in);
    fill_uniform_bound(r, w->v, (size_t)cout * fan_in, bound);
    if (b && b->v) fill_uniform_bound(r, b->v, (size_t)cout, bound);
}

mt_status model_init_params(mt_model *m, mt_ctx *ctx, uint64_t seed) {
    (void)ctx;
    init_rng r = {seed, 0};
    const mt_config *c = &m->cfg;
    int C0 = c->embed_dim, p = c->patch_size;
    init_conv(&r, &m->pe_w, &m->pe_b, C0, c->in_chans * p * p);
    fill_const(m->pe_nw.v, (size_t)C0, 1.0f);
    fill_const(m->pe_nb.v, (size_t)C0, 0.0f);
    for (int s = 0; s < m->L; s++) {
        swin_stage *st = &m->stages[s];
        for (int b = 0; b < st->depth; b++) {
            swin_block *blk = &st->blocks[b];
            int C = blk->dim, span = 2 * blk->ws - 1;
            fill_const(blk->norm1_w.v, (size_t)C, 1.0f);
            fill_const(blk->norm1_b.v, (size_t)C, 0.0f);
            fill_const(blk->norm2_w.v, (size_t)C, 1.0f);
            fill_const(blk->norm2_b.v, (size_t)C, 0.0f);
            fill_trunc_normal(&r, blk->table.v, (size_t)span * span * blk->heads, 0.02f);
            init_lora_linear(&r, &blk->qkv, m->T);
            init_lora_linear(&r, &blk->proj, m->T);
            init_lora_linear(&r, &blk->fc1, m->T);
            init_lora_linear(&r, &blk->fc2, m->T);
        }
        if (st->has_merge) {
            init_lora_linear(&r, &st->reduction, m->T);
            fill_const(st->mnorm_w.v, (size_t)4 * st->dim, 1.0f);
            fill_const(st->mnorm_b.v, (size_t)4 * st->dim, 0.0f);
        }
    }
    if (m->gate_n) { /* MOELoRA's gate: embedding N(0, 1), linear PyTorch's default */
        fill_normal(&r, m->gate_E.v, (size_t)m->T * m->gate_dim, 1.0f);
        fill_uniform_bound(&r, m->gate_G.v, (size_t)m->gate_n * m->gate_dim,
                           1.0f / sqrtf((float)m->gate_dim));
    }
    for (int t = 0; t < m->T; t++) {
        task_decoder *d = &m->dec[t];
        for (int s = 0; s < m->L; s++)
            init_conv(&r, &d->down[s], NULL, c->decoder_channels[s], m->feat_dim[s]);
        init_conv(&r, &d->c1_w, &d->c1_b, 4 * d->csum, d->csum);
        fill_const(d->bn_w.v, (size_t)4 * d->csum, 1.0f);
        fill_const(d->bn_b.v, (size_t)4 * d->csum, 0.0f);
        fill_const(d->bn_running_mean, (size_t)4 * d->csum, 0.0f);
        fill_const(d->bn_running_var, (size_t)4 * d->csum, 1.0f);
        d->bn_tracked = 0;
        init_conv(&r, &d->c2_w, &d->c2_b, d->K, 4 * d->csum);
    }
    return MT_OK;
}
