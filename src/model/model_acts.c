/* model_acts.c - activation and backward-workspace layout for a batch.
 *
 * Both arenas are laid out by one function run twice: once to measure,
 * once to hand out pointers into a single allocation, so the list of
 * buffers is written once.
 *
 * Activation recompute (TRAIN.USE_CHECKPOINT, as torch.utils.checkpoint
 * per block in the official Swin): a block keeps only what is read from
 * outside it, its output `out` (the next block's or merge's input) and the
 * task outputs out_t[t] (a merge's input, the decoders' features). Every
 * other block_acts tensor of every block, every merge's but its output and
 * low-rank intermediate, and every task decoder's but its logits are laid
 * out from the start of one area sized for the largest of them, at the end
 * of the arena; the forward overwrites it layer after layer and the
 * backward re-runs each layer's forward into it (mt_model_backward), up
 * to what its backward reads: every block keeps fc2's low-rank
 * intermediates too, so fc2 and the task paths' fc2 terms never run again.
 *
 * Selective recompute: the blocks of the later half of the stages
 * (model.keep_from_stage) also keep what their matmuls wrote (qkv, x1,
 * fc1, the low-rank intermediates, the task paths' x1_t and F1), so their
 * backward re-runs only the norms, window moves, attention core, GELU and
 * dropout. Those stages hold few activations per matmul FLOP (Swin-T at
 * 448: a quarter and an eighth of stage 1's tokens per block), so this
 * costs little memory and saves most of the recomputed matmuls (8 of
 * Swin-T's 12 blocks). Inside a block with task paths the tasks' fc1 and
 * GELU outputs are one buffer each, recomputed per task in the backward
 * (swin_block_backward). */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

typedef struct {
    char *base; /* NULL while measuring */
    size_t used;
    size_t peak; /* the most `used` has been (the shared area's size) */
} arena;

/* nfloats from a, 64-byte aligned (and every size a multiple of 64). */
static float *take(arena *a, size_t nfloats) {
    size_t bytes = (nfloats * sizeof(float) + 63) & ~(size_t)63;
    float *p = a->base ? (float *)(a->base + a->used) : NULL;
    a->used += bytes ? bytes : 64;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

/* Where one layer's inner tensors go: the shared recompute area, from its
 * start, or (sh NULL) the arena itself. */
static arena *inner(arena *ar, arena *sh) {
    if (!sh) return ar;
    sh->used = 0;
    return sh;
}

/* Every buffer's shape is written at its field in model_internal.h. sh:
 * the shared recompute area, or NULL to give every block its own tensors;
 * returns the bytes the shared area needs (0 without it). */
static size_t layout_acts(mt_model *m, arena *ar, arena *sh, int B) {
    model_acts *a = &m->a;
    const mt_config *c = &m->cfg;
    size_t rows0 = (size_t)B * m->grid0 * m->grid0;
    a->pe_conv = take(ar, rows0 * c->embed_dim);
    a->pe_mean = take(ar, rows0);
    a->pe_var = take(ar, rows0);
    a->pe_out = take(ar, rows0 * c->embed_dim);
    /* the encoder runs every path as one batch of P * B images */
    const size_t Be = (size_t)m->P * B;
    a->pe_rep = m->P > 1 ? take(ar, Be * m->grid0 * m->grid0 * c->embed_dim) : NULL;
    size_t max_n = 0, max_n4 = 0;
    for (int s = 0; s < m->L; s++) {
        swin_stage *st = &m->stages[s];
        size_t rows = Be * st->H * st->W, C = (size_t)st->dim;
        size_t hid = (size_t)(st->dim * c->mlp_ratio), n = rows * C;
        if (n > max_n) max_n = n;
        if (rows * hid > max_n4) max_n4 = rows * hid;
        for (int b = 0; b < st->depth; b++) {
            const swin_block *blk = &st->blocks[b];
            block_acts *ba = &a->blocks[s][b];
            size_t N = (size_t)blk->ws * blk->ws, nwb = rows / N;
            /* the block's inner tensors: its own, or the shared area's start;
             * kp: what a block that keeps its matmul outputs keeps */
            arena *in = inner(ar, sh);
            ba->keep = sh && s >= m->keep_from_stage;
            arena *kp = ba->keep ? ar : in;
            ba->ln1 = take(in, n);
            ba->mean1 = take(in, rows);
            ba->var1 = take(in, rows);
            ba->win = take(in, n);
            ba->win_drop = blk->qkv.r && blk->qkv.dropout > 0 ? take(in, n) : ba->win;
            ba->qkv = take(kp, 3 * n);
            ba->mid_qkv = blk->qkv.r ? take(kp, rows * blk->qkv.r) : NULL;
            ba->probs = take(in, nwb * blk->heads * N * N);
            ba->ctx = take(in, n);
            ba->ctx_drop = blk->proj.r && blk->proj.dropout > 0 ? take(in, n) : ba->ctx;
            ba->mid_proj = blk->proj.r ? take(kp, rows * blk->proj.r) : NULL;
            ba->x1 = take(kp, n);
            ba->ln2 = take(in, n);
            ba->mean2 = take(in, rows);
            ba->var2 = take(in, rows);
            ba->ln2_drop = blk->fc1.r && blk->fc1.dropout > 0 ? take(in, n) : ba->ln2;
            ba->mid_fc1 = blk->fc1.r ? take(kp, rows * blk->fc1.r) : NULL;
            ba->fc1 = take(kp, rows * hid);
            ba->gelu = take(in, rows * hid);
            ba->gelu_drop = blk->fc2.r && blk->fc2.dropout > 0 ? take(in, rows * hid) : ba->gelu;
            ba->mid_fc2 = blk->fc2.r ? take(ar, rows * blk->fc2.r) : NULL;
            ba->out = take(ar, n); /* kept */
            const int has_pt = blk->ntask && blk->proj.ntask;
            const int has_ft = blk->ntask && blk->fc1.ntask;
            ba->task_mlp_shared = sh && has_ft && blk->ntask > 1;
            ba->f1_keep = ba->keep && has_ft ? take(ar, rows * hid) : NULL;
            for (int t = 0; t < blk->ntask; t++) {
                if (has_pt) {
                    ba->mid_proj_t[t] = take(kp, rows * blk->proj.task_rank[t]);
                    ba->x1_t[t] = take(kp, n);
                    ba->ln2_t[t] = take(in, n);
                    ba->mean2_t[t] = take(in, rows);
                    ba->var2_t[t] = take(in, rows);
                }
                if (has_ft) {
                    ba->mid_fc1_t[t] = take(kp, rows * blk->fc1.task_rank[t]);
                    /* with recompute, one fc1_t / gelu_t for every task
                     * (swin_block_backward recomputes task t's) */
                    ba->fc1_t[t] = sh && t ? ba->fc1_t[0] : take(in, rows * hid);
                    ba->gelu_t[t] = sh && t ? ba->gelu_t[0] : take(in, rows * hid);
                }
                ba->mid_fc2_t[t] = take(ar, rows * blk->fc2.task_rank[t]);
                ba->out_t[t] = take(ar, n); /* kept */
            }
        }
        if (st->has_merge) {
            size_t mrows = rows / 4;
            int npaths = 1 + (m->task_paths ? m->T : 0);
            for (int p = 0; p < npaths; p++) {
                /* with recompute only the merged output and the low-rank
                 * intermediate are kept; the backward re-runs each merge's
                 * gather, norm and dropout from its kept input */
                merge_acts *ma = &a->merge[s][p];
                arena *in = inner(ar, sh);
                ma->gath = take(in, mrows * 4 * C);
                ma->normed = take(in, mrows * 4 * C);
                ma->normed_drop = st->reduction.r && st->reduction.dropout > 0
                                   ? take(in, mrows * 4 * C) : ma->normed;
                ma->mean = take(in, mrows);
                ma->var = take(in, mrows);
                ma->mid = st->reduction.r ? take(ar, mrows * st->reduction.r) : NULL;
                ma->out = take(ar, mrows * 2 * C); /* kept */
            }
        }
    }
    for (int t = 0; t < m->T; t++) {
        decoder_acts *d = &a->dec[t];
        const task_decoder *td = &m->dec[t];
        size_t h0 = (size_t)m->feat_res[0], hw0 = h0 * h0;
        /* with recompute, one task's decoder at a time: the same shared
         * area (the backward re-runs decoder t before its backward) */
        arena *in = inner(ar, sh);
        for (int s = 0; s < m->L; s++) {
            size_t hw = (size_t)m->feat_res[s] * m->feat_res[s];
            d->down_tok[s] = take(in, (size_t)B * hw * c->decoder_channels[s]);
            d->down_nchw[s] = take(in, (size_t)B * hw * c->decoder_channels[s]);
            d->resized[s] = take(in, (size_t)B * hw0 * c->decoder_channels[s]);
        }
        d->cat = take(in, (size_t)B * td->csum * hw0);
        d->conv1 = take(in, (size_t)B * 4 * td->csum * hw0);
        d->bn_mean = take(in, (size_t)4 * td->csum);
        d->bn_var = take(in, (size_t)4 * td->csum);
        /* ReLU runs in place on the batch norm's output: its backward needs
         * only where the output is positive, and BatchNorm's its input */
        d->bn = take(in, (size_t)B * 4 * td->csum * hw0);
        d->relu = d->bn;
        d->conv2 = take(in, (size_t)B * td->K * hw0);
        d->logits = take(ar, (size_t)B * td->K * m->S * m->S);  /* kept: the loss reads it */
        d->dlogits = take(ar, (size_t)B * td->K * m->S * m->S); /* kept */
    }
    a->tmp_img = take(ar, max_n);
    a->tmp_win = take(ar, max_n);
    a->tmp_base = take(ar, max_n);
    a->tmp_base4 = take(ar, max_n4);
    return sh ? sh->peak : 0;
}

static void layout_work(mt_model *m, arena *ar, int B) {
    grad_work *w = &m->w;
    const mt_config *c = &m->cfg;
    size_t max_n = 0, max_n4 = 0, max_3n = 0;
    for (int s = 0; s < m->L; s++) {
        const swin_stage *st = &m->stages[s];
        size_t rows = (size_t)m->P * B * st->H * st->W, n = rows * st->dim;
        size_t n4 = rows * (size_t)(st->dim * c->mlp_ratio);
        if (n > max_n) max_n = n;
        if (n4 > max_n4) max_n4 = n4;
        if (3 * n > max_3n) max_3n = 3 * n;
    }
    w->d_cur = take(ar, max_n);
    w->d_prev = take(ar, max_n);
    for (int t = 0; t < m->T; t++) {
        w->d_out_t[t] = take(ar, max_n);
        for (int s = 0; s < m->L; s++)
            w->d_feat[t][s] =
                take(ar, (size_t)B * m->feat_res[s] * m->feat_res[s] * m->feat_dim[s]);
    }
    /* From here on two groups whose lifetimes do not meet share the same
     * bytes: the encoder's (blocks and merges) and the decoders'. The
     * backward runs every decoder first and the encoder after, and each
     * buffer is first written where it is used, so nothing passes from one
     * group to the other. */
    const size_t shared_from = ar->used;
    w->d_ln1 = take(ar, max_n);
    w->d_img = take(ar, max_n);
    w->d_win = take(ar, max_n);
    w->d_qkv = take(ar, max_3n);
    w->d_ctx = take(ar, max_n);
    w->d_ctx_drop = take(ar, max_n);
    w->d_proj = take(ar, max_n);
    w->s_proj = take(ar, max_n);
    w->d_proj_img = take(ar, max_n);
    w->d_x1 = take(ar, max_n);
    w->d_ln2 = take(ar, max_n);
    w->s_fc1 = take(ar, max_n4);
    w->d_fc1 = take(ar, max_n4);
    w->d_gelu = take(ar, max_n4);
    /* the LoRA-dropout temporaries of fc2 and fc1 (shared_lora_backward)
     * are done with before gelu_backward writes d_fc1 and before d_x1 is
     * first written: the same bytes */
    w->d_gelu_drop = w->d_fc1;
    w->d_ln2_drop = w->d_x1;
    w->s_fc2 = take(ar, max_n);
    w->d_fc2 = take(ar, max_n);
    /* A block's task paths run first in its backward and are done before
     * the shared path writes any of these, so each task buffer is the same
     * bytes as a shared-path one of its size (swin_block_backward). */
    w->t_fc2 = w->d_fc2;
    w->t_gelu = w->d_gelu;
    w->t_fc1 = w->d_fc1;
    w->t_ln2 = w->d_ln2;
    w->t_x1 = w->d_x1;
    w->t_proj_img = w->d_proj_img;
    w->t_proj = w->d_proj;
    w->acc_gelu_drop = take(ar, max_n4);
    w->acc_ln2_drop = take(ar, max_n);
    /* merge backward, between blocks, where no block buffer is live:
     * (mrows, 4C) = (rows, C) of the merged stage, at most max_n */
    w->m_normed = w->d_ln1;
    w->m_normed_drop = w->d_img;
    w->m_gath = w->d_win;
    size_t maxcs = 0, maxK = 0, maxch = 0;
    for (int t = 0; t < m->T; t++) {
        if ((size_t)m->dec[t].csum > maxcs) maxcs = (size_t)m->dec[t].csum;
        if ((size_t)m->dec[t].K > maxK) maxK = (size_t)m->dec[t].K;
    }
    for (int s = 0; s < m->L; s++)
        if ((size_t)c->decoder_channels[s] > maxch) maxch = (size_t)c->decoder_channels[s];
    size_t hw0 = (size_t)m->feat_res[0] * m->feat_res[0];
    ar->used = shared_from;
    w->d_conv2 = take(ar, (size_t)B * maxK * hw0);
    w->d_relu = take(ar, (size_t)B * 4 * maxcs * hw0);
    w->d_bn = w->d_relu; /* the ReLU's backward runs in place */
    w->d_conv1 = take(ar, (size_t)B * 4 * maxcs * hw0);
    w->d_cat = take(ar, (size_t)B * maxcs * hw0);
    w->d_resized = take(ar, (size_t)B * maxch * hw0);
    w->d_down_nchw = take(ar, (size_t)B * maxch * hw0);
    w->d_down_tok = take(ar, (size_t)B * maxch * hw0);
    ar->used = ar->peak; /* the longer of the two groups */
}

void model_free_acts(mt_model *m) {
    free(m->act_mem);
    free(m->work_mem);
    m->act_mem = m->work_mem = NULL;
    m->act_bytes = 0;
    m->acts_shared = 0;
    m->shared_area = NULL;
    m->shared_bytes = 0;
    m->B = 0;
    m->trained_forward = m->have_loss_grad = 0;
}

mt_status model_alloc_acts(mt_model *m, mt_ctx *ctx, int B) {
    const int shared = m->cfg.use_checkpoint != 0;
    if (m->B == B && m->act_mem && m->acts_shared == shared) return MT_OK;
    model_free_acts(m);
    m->keep_from_stage = m->L / 2;
    arena a = {NULL, 0, 0}, sh = {NULL, 0, 0}, w = {NULL, 0, 0};
    const size_t sh_bytes = layout_acts(m, &a, shared ? &sh : NULL, B);
    const size_t own = a.used; /* everything but the shared area, a multiple of 64 */
    layout_work(m, &w, B);
    m->act_mem = aligned_alloc(64, own + sh_bytes);
    m->work_mem = aligned_alloc(64, w.used);
    if (!m->act_mem || !m->work_mem) {
        model_free_acts(m);
        return mt_fail(ctx, MT_ERR_NOMEM,
                       "model: cannot allocate activations for batch %d (%.1f MB + %.1f MB)", B,
                       (own + sh_bytes) / 1e6, w.used / 1e6);
    }
    a.base = m->act_mem;
    a.used = 0;
    sh.base = (char *)m->act_mem + own;
    w.base = m->work_mem;
    w.used = 0;
    layout_acts(m, &a, shared ? &sh : NULL, B);
    layout_work(m, &w, B);
    m->B = B;
    m->acts_shared = shared;
    m->act_bytes = own + sh_bytes;
    m->shared_area = shared ? (char *)m->act_mem + own : NULL;
    m->shared_bytes = shared ? sh_bytes : 0;
    return MT_OK;
}

size_t mt_model_activation_bytes(const mt_model *m) { return m ? m->act_bytes : 0; }

void mt_model_poison_recompute(mt_model *m, int on) {
    if (m) m->poison_recompute = on != 0;
}

void model_poison_shared(mt_model *m) {
    if (m->poison_recompute && m->shared_area) memset(m->shared_area, 0xff, m->shared_bytes);
}
