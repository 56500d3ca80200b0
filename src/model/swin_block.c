/* swin_block.c - one Swin Transformer block with MTLoRA, forward and
 * backward, routed exactly as the official SwinTransformerBlock does:
 *
 *   qkv = W x + b + s B A drop(x)                      (shared tokens only)
 *   proj    = P + s   B   A   drop(h),  P = W_p h + b_p
 *   proj_t  = P + s_t B_t A_t drop(h)                  (no shared term)
 *   x1 = x + DP(proj),  x1_t = x + DP(proj_t)          (after un-windowing)
 *   fc1   = F1 + s B A drop(LN2(x1)),   F1 = W1 LN2(x1) + b1
 *   fc1_t = F1 + s_t B_t A_t LN2(x1_t)                 (frozen W on shared)
 *   fc2   = F2 + s B A drop(g),  F2 = W2 g + b2,  g = GELU(fc1)
 *   fc2_t = F2 + s_t B_t A_t g_t,  g_t = GELU(fc1_t)
 *   out = x1 + DP(fc2),  out_t = x1_t + DP(fc2_t)
 *
 * Task paths exist in the last block of a stage only. In the backward the
 * frozen weights see the sum of every path's gradient (the base output is
 * shared), so each frozen matmul runs once, not once per task. */
#include <string.h>

#include "model_internal.h"
#include "mtlora/ops/layers.h"
#include "mtlora/ops/bf16.h"
#include "mtlora/base/rng.h"

enum { SITE_QKV = 1, SITE_PROJ, SITE_FC1, SITE_FC2, SITE_DP_ATTN, SITE_DP_MLP,
       SITE_DP_ATTN_T = 16, SITE_DP_MLP_T = 32 };

uint64_t model_site_seed(uint64_t seed, uint64_t site) { return mt_rng_bits(seed, site); }

static uint64_t site(const swin_block *blk, int code) { return (uint64_t)blk->index * 256 + code; }

void add_into(float *out, const float *x, const float *y, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}

static void zero(float *p, size_t n) { mt_zero(p, n); }

mt_status base_forward(mt_ctx *ctx, const lora_linear *l, float *out, const float *x,
                              int rows) {
    if (l->w.h) return linear_bf16_forward(ctx, out, NULL, x, l->w.h, l->b.h, rows, l->in, l->out);
    return linear_forward(ctx, out, x, l->w.v, l->b.v, rows, l->in, l->out);
}

mt_status base_backward(mt_ctx *ctx, const lora_linear *l, float *dx, const float *dy,
                               const float *x, int rows, int accumulate) {
    if (l->w.h)
        return linear_bf16_backward_data(ctx, dx, dy, l->w.h, rows, l->in, l->out, accumulate);
    return linear_backward_ex(ctx, dx, l->w.g, l->b.g, dy, x, l->w.v, rows, l->in, l->out,
                              accumulate);
}

mt_status lora_dropout_apply(mt_ctx *ctx, float *dst, const float *src, size_t n, float p,
                             int training, uint64_t seed, uint64_t s) {
    if (dst == src) return MT_OK;
    if (training && p > 0.0f)
        return dropout_forward(ctx, dst, src, n, p, model_site_seed(seed, s), 0);
    mt_copy(dst, src, n);
    return MT_OK;
}

/* img (B, H, W, C) -> win (B*nW, N, C), rolled by -shift first; tmp
 * (B, H, W, C) is scratch. from_windows is the inverse. */
static mt_status to_windows(mt_ctx *ctx, const swin_block *blk, float *win, const float *img,
                            float *tmp, int B) {
    if (!blk->shift) return window_partition_forward(ctx, win, img, B, blk->H, blk->W, blk->dim, blk->ws);
    MT_CHECK(roll_forward(ctx, tmp, img, B, blk->H, blk->W, blk->dim, -blk->shift, -blk->shift));
    return window_partition_forward(ctx, win, tmp, B, blk->H, blk->W, blk->dim, blk->ws);
}

static mt_status from_windows(mt_ctx *ctx, const swin_block *blk, float *img, const float *win,
                              float *tmp, int B) {
    if (!blk->shift) return window_reverse_forward(ctx, img, win, B, blk->H, blk->W, blk->dim, blk->ws);
    MT_CHECK(window_reverse_forward(ctx, tmp, win, B, blk->H, blk->W, blk->dim, blk->ws));
    return roll_forward(ctx, img, tmp, B, blk->H, blk->W, blk->dim, blk->shift, blk->shift);
}

/* d_img (B, H, W, C) = adjoint of to_windows applied to d_win (B*nW, N, C)
 * (overwritten; no zeroing needed: both moves are permutations). tmp
 * (B, H, W, C) is scratch. */
static mt_status to_windows_bwd(mt_ctx *ctx, const swin_block *blk, float *d_img,
                                const float *d_win, float *tmp, int B) {
    if (!blk->shift)
        return window_partition_backward_ex(ctx, d_img, d_win, B, blk->H, blk->W, blk->dim, blk->ws, 0);
    MT_CHECK(window_partition_backward_ex(ctx, tmp, d_win, B, blk->H, blk->W, blk->dim, blk->ws, 0));
    return roll_backward_ex(ctx, d_img, tmp, B, blk->H, blk->W, blk->dim, -blk->shift, -blk->shift, 0);
}

/* d_win = adjoint of from_windows applied to d_img (overwritten). */
static mt_status from_windows_bwd(mt_ctx *ctx, const swin_block *blk, float *d_win,
                                  const float *d_img, float *tmp, int B) {
    if (!blk->shift)
        return window_reverse_backward_ex(ctx, d_win, d_img, B, blk->H, blk->W, blk->dim, blk->ws, 0);
    MT_CHECK(roll_backward_ex(ctx, tmp, d_img, B, blk->H, blk->W, blk->dim, blk->shift, blk->shift, 0));
    return window_reverse_backward_ex(ctx, d_win, tmp, B, blk->H, blk->W, blk->dim, blk->ws, 0);
}

static int dp_active(const swin_block *blk, int training) {
    return training && blk->drop_path > 0.0f;
}

/* y (B, H*W, C) = DP(y): whole images dropped, the rest scaled. */
static mt_status drop_path_inplace(mt_ctx *ctx, const swin_block *blk, float *y, int B,
                                   int training, uint64_t seed, int code) {
    if (!dp_active(blk, training)) return MT_OK;
    size_t per = (size_t)blk->H * blk->W * blk->dim;
    return drop_path_forward(ctx, y, y, B, per, blk->drop_path,
                             model_site_seed(seed, site(blk, code)), 0);
}

/* dst = DP'(src), both (B, H*W, C): the drop-path backward, overwriting dst. */
static mt_status drop_path_grad(mt_ctx *ctx, const swin_block *blk, float *dst, const float *src,
                                int B, int training, uint64_t seed, int code) {
    size_t per = (size_t)blk->H * blk->W * blk->dim;
    if (!dp_active(blk, training)) {
        mt_copy(dst, src, (size_t)B * per);
        return MT_OK;
    }
    zero(dst, (size_t)B * per);
    return drop_path_backward(ctx, dst, src, B, per, blk->drop_path,
                              model_site_seed(seed, site(blk, code)), 0);
}

static int drop_active(const lora_linear *l, int training) {
    return training && l->r && l->dropout > 0.0f;
}

/* Shared LoRA backward with its input dropout: d_in += drop'(g), where g
 * is the gradient w.r.t. the dropped input. d_tmp is scratch of the input's
 * size; with d_tmp_holds it already holds task terms' share of g (task terms
 * that read the same dropped input), and the shared term is added to it. */
mt_status shared_lora_backward(mt_ctx *ctx, const lora_linear *l, float *d_in, float *d_tmp,
                               int d_tmp_holds, const float *dy, const float *in_drop,
                               const float *mid, int rows, int training, uint64_t seed,
                               uint64_t s) {
    if (!l->r) return MT_OK;
    size_t n = (size_t)rows * l->in;
    int drop = drop_active(l, training);
    if (!drop && !d_tmp_holds)
        return adapter_delta_backward(ctx, l, d_in, dy, in_drop, mid, rows, 1);
    MT_CHECK(adapter_delta_backward(ctx, l, d_tmp, dy, in_drop, mid, rows, d_tmp_holds));
    if (drop) return dropout_backward(ctx, d_in, d_tmp, n, l->dropout, model_site_seed(seed, s), 0);
    mt_add_inplace(d_in, d_tmp, n);
    return MT_OK;
}

/* Task t's fc1 and GELU: fc1_t (rows, hid) = F1 + s_t B_t A_t in, in the
 * task's LN2 (computed here when with_ln2) or, without proj task terms,
 * the shared fc1 input after LoRA dropout; F1 (rows, hid) the frozen base
 * output on the shared LN2. */
static mt_status task_fc1_forward(mt_ctx *ctx, const swin_block *blk, block_acts *a,
                                  const float *F1, int t, int rows, int has_pt, int with_ln2) {
    const lora_linear *fc1 = &blk->fc1;
    const int C = blk->dim, hid = fc1->out;
    const float *in = a->ln2_drop; /* (rows, C) */
    if (has_pt) {
        if (with_ln2)
            MT_CHECK(layernorm_forward(ctx, a->ln2_t[t], a->mean2_t[t], a->var2_t[t], a->x1_t[t],
                                       blk->norm2_w.v, blk->norm2_b.v, rows, C));
        in = a->ln2_t[t];
    }
    MT_CHECK(lora_delta_forward(ctx, a->fc1_t[t], F1, a->mid_fc1_t[t], in, fc1->At[t].v,
                                fc1->Bt[t].v, fc1->task_scale[t], rows, C, hid,
                                fc1->task_rank[t]));
    return gelu_forward(ctx, a->gelu_t[t], a->fc1_t[t], (size_t)rows * hid);
}

/* x: (B, H*W, C), the block's input; B here is every path's images (the
 * model's Be). Writes every block_acts tensor; tmp's forward temporaries
 * are scratch. for_backward (the recompute before the block's backward,
 * where out, out_t and every mid_fc2* are kept): stops at what the
 * backward reads, skipping fc2 and the task paths' fc2 terms (and their
 * fc1 / GELU outputs, which the backward recomputes task by task). */
static mt_status block_forward(mt_ctx *ctx, const swin_block *blk, block_acts *a,
                               model_acts *tmp, const float *x, int B, int training,
                               uint64_t seed, int for_backward) {
    const int C = blk->dim, rows = B * blk->H * blk->W, hid = blk->fc1.out;
    const int N = blk->ws * blk->ws, nwb = rows / N, nw = (blk->H / blk->ws) * (blk->W / blk->ws);
    const size_t n = (size_t)rows * C, n4 = (size_t)rows * hid;
    const lora_linear *qkv = &blk->qkv, *proj = &blk->proj, *fc1 = &blk->fc1, *fc2 = &blk->fc2;
    /* which task terms the paths have (the layer kinds are switched apart) */
    const int has_pt = blk->ntask && proj->ntask, has_ft = blk->ntask && fc1->ntask;

    MT_CHECK(layernorm_forward(ctx, a->ln1, a->mean1, a->var1, x, blk->norm1_w.v, blk->norm1_b.v,
                               rows, C));
    MT_CHECK(to_windows(ctx, blk, a->win, a->ln1, tmp->tmp_img, B));
    MT_CHECK(base_forward(ctx, qkv, a->qkv, a->win, rows));
    if (qkv->r) {
        MT_CHECK(lora_dropout_apply(ctx, a->win_drop, a->win, n, qkv->dropout, training, seed,
                                    site(blk, SITE_QKV)));
        MT_CHECK(adapter_delta_forward(ctx, qkv, a->qkv, NULL, a->mid_qkv, a->win_drop, rows));
    }
    MT_CHECK(window_attention_forward(ctx, a->ctx, a->probs, a->qkv, blk->table.v,
                                      blk->shift ? blk->mask : NULL, nwb, nw, blk->ws, C,
                                      blk->heads));
    /* proj: base output P shared by every path */
    float *P = tmp->tmp_base;  /* (rows, C), windows: W_p ctx + b_p */
    float *pw = tmp->tmp_win;  /* (rows, C), windows: P + a path's low-rank term */
    MT_CHECK(base_forward(ctx, proj, P, a->ctx, rows));
    if (proj->r)
        MT_CHECK(lora_dropout_apply(ctx, a->ctx_drop, a->ctx, n, proj->dropout, training, seed,
                                    site(blk, SITE_PROJ)));
    if (proj->r)
        MT_CHECK(adapter_delta_forward(ctx, proj, pw, P, a->mid_proj, a->ctx_drop, rows));
    MT_CHECK(from_windows(ctx, blk, a->x1, proj->r ? pw : P, tmp->tmp_img, B));
    MT_CHECK(drop_path_inplace(ctx, blk, a->x1, B, training, seed, SITE_DP_ATTN));
    add_into(a->x1, a->x1, x, n);
    for (int t = 0; has_pt && t < blk->ntask; t++) {
        MT_CHECK(lora_delta_forward(ctx, pw, P, a->mid_proj_t[t], a->ctx_drop, proj->At[t].v,
                                    proj->Bt[t].v, proj->task_scale[t], rows, C, C,
                                    proj->task_rank[t]));
        MT_CHECK(from_windows(ctx, blk, a->x1_t[t], pw, tmp->tmp_img, B));
        MT_CHECK(drop_path_inplace(ctx, blk, a->x1_t[t], B, training, seed, SITE_DP_ATTN_T + t));
        add_into(a->x1_t[t], a->x1_t[t], x, n);
    }
    /* MLP: fc1 base F1 on the shared LN2 output, shared by every path */
    /* (rows, hid) W1 ln2 + b1 (only with fc1 LoRA); kept when a->keep */
    float *F1 = a->f1_keep ? a->f1_keep : tmp->tmp_base4;
    MT_CHECK(layernorm_forward(ctx, a->ln2, a->mean2, a->var2, a->x1, blk->norm2_w.v,
                               blk->norm2_b.v, rows, C));
    if (fc1->r) {
        MT_CHECK(base_forward(ctx, fc1, F1, a->ln2, rows));
        MT_CHECK(lora_dropout_apply(ctx, a->ln2_drop, a->ln2, n, fc1->dropout, training, seed,
                                    site(blk, SITE_FC1)));
        MT_CHECK(adapter_delta_forward(ctx, fc1, a->fc1, F1, a->mid_fc1, a->ln2_drop, rows));
    } else {
        MT_CHECK(base_forward(ctx, fc1, a->fc1, a->ln2, rows));
    }
    MT_CHECK(gelu_forward(ctx, a->gelu, a->fc1, n4));
    a->f1_base = F1;
    if (for_backward) {
        if (fc2->r)
            MT_CHECK(lora_dropout_apply(ctx, a->gelu_drop, a->gelu, n4, fc2->dropout, training,
                                        seed, site(blk, SITE_FC2)));
        for (int t = 0; has_ft && t < blk->ntask; t++) {
            if (!a->task_mlp_shared)
                MT_CHECK(task_fc1_forward(ctx, blk, a, F1, t, rows, has_pt, 1));
            else if (has_pt)
                MT_CHECK(layernorm_forward(ctx, a->ln2_t[t], a->mean2_t[t], a->var2_t[t],
                                           a->x1_t[t], blk->norm2_w.v, blk->norm2_b.v, rows, C));
        }
        return MT_OK;
    }
    /* fc2: base F2 on the shared GELU output */
    float *F2 = tmp->tmp_base; /* (rows, C) W2 gelu + b2 (only with fc2 LoRA) */
    if (fc2->r) {
        MT_CHECK(base_forward(ctx, fc2, F2, a->gelu, rows));
        MT_CHECK(lora_dropout_apply(ctx, a->gelu_drop, a->gelu, n4, fc2->dropout, training, seed,
                                    site(blk, SITE_FC2)));
        MT_CHECK(adapter_delta_forward(ctx, fc2, a->out, F2, a->mid_fc2, a->gelu_drop, rows));
    } else {
        MT_CHECK(base_forward(ctx, fc2, a->out, a->gelu, rows));
    }
    MT_CHECK(drop_path_inplace(ctx, blk, a->out, B, training, seed, SITE_DP_MLP));
    add_into(a->out, a->out, a->x1, n);
    /* each task's MLP after the shared one, task by task: with recompute
     * the tasks' fc1_t / gelu_t share one buffer (model_acts.c) */
    for (int t = 0; t < blk->ntask; t++) {
        if (has_ft) MT_CHECK(task_fc1_forward(ctx, blk, a, F1, t, rows, has_pt, 1));
        const float *in = has_ft ? a->gelu_t[t] : a->gelu_drop; /* (rows, hid) */
        MT_CHECK(lora_delta_forward(ctx, a->out_t[t], F2, a->mid_fc2_t[t], in, fc2->At[t].v,
                                    fc2->Bt[t].v, fc2->task_scale[t], rows, hid, C,
                                    fc2->task_rank[t]));
        MT_CHECK(drop_path_inplace(ctx, blk, a->out_t[t], B, training, seed, SITE_DP_MLP_T + t));
        /* without proj task terms the official task output has no residual */
        if (has_pt) add_into(a->out_t[t], a->out_t[t], a->x1_t[t], n);
    }
    return MT_OK;
}

mt_status swin_block_forward(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                             const float *x, int B, int training, uint64_t seed) {
    return block_forward(ctx, blk, a, tmp, x, B, training, seed, 0);
}

mt_status swin_block_refill(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                            const float *x, int B, int training, uint64_t seed) {
    return block_forward(ctx, blk, a, tmp, x, B, training, seed, 1);
}

mt_status swin_block_recompute(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                               const float *x, int B, int training, uint64_t seed) {
    const int C = blk->dim, rows = B * blk->H * blk->W, hid = blk->fc1.out;
    const int N = blk->ws * blk->ws, nwb = rows / N, nw = (blk->H / blk->ws) * (blk->W / blk->ws);
    const size_t n = (size_t)rows * C, n4 = (size_t)rows * hid;
    const lora_linear *qkv = &blk->qkv, *proj = &blk->proj, *fc1 = &blk->fc1, *fc2 = &blk->fc2;
    const int has_pt = blk->ntask && proj->ntask, has_ft = blk->ntask && fc1->ntask;
    if (!a->keep) return mt_fail(ctx, MT_ERR_ARG, "swin_block_recompute: block keeps nothing");
    /* each step as in swin_block_forward, on the kept qkv, x1, fc1 */
    MT_CHECK(layernorm_forward(ctx, a->ln1, a->mean1, a->var1, x, blk->norm1_w.v, blk->norm1_b.v,
                               rows, C));
    MT_CHECK(to_windows(ctx, blk, a->win, a->ln1, tmp->tmp_img, B));
    if (qkv->r)
        MT_CHECK(lora_dropout_apply(ctx, a->win_drop, a->win, n, qkv->dropout, training, seed,
                                    site(blk, SITE_QKV)));
    MT_CHECK(window_attention_forward(ctx, a->ctx, a->probs, a->qkv, blk->table.v,
                                      blk->shift ? blk->mask : NULL, nwb, nw, blk->ws, C,
                                      blk->heads));
    if (proj->r)
        MT_CHECK(lora_dropout_apply(ctx, a->ctx_drop, a->ctx, n, proj->dropout, training, seed,
                                    site(blk, SITE_PROJ)));
    MT_CHECK(layernorm_forward(ctx, a->ln2, a->mean2, a->var2, a->x1, blk->norm2_w.v,
                               blk->norm2_b.v, rows, C));
    if (fc1->r)
        MT_CHECK(lora_dropout_apply(ctx, a->ln2_drop, a->ln2, n, fc1->dropout, training, seed,
                                    site(blk, SITE_FC1)));
    MT_CHECK(gelu_forward(ctx, a->gelu, a->fc1, n4));
    if (fc2->r)
        MT_CHECK(lora_dropout_apply(ctx, a->gelu_drop, a->gelu, n4, fc2->dropout, training, seed,
                                    site(blk, SITE_FC2)));
    a->f1_base = a->f1_keep;
    /* task paths: their LN2 again; fc1_t / gelu_t here only when the
     * backward does not recompute them task by task */
    for (int t = 0; has_ft && t < blk->ntask; t++) {
        if (!a->task_mlp_shared)
            MT_CHECK(task_fc1_forward(ctx, blk, a, a->f1_keep, t, rows, has_pt, 1));
        else if (has_pt)
            MT_CHECK(layernorm_forward(ctx, a->ln2_t[t], a->mean2_t[t], a->var2_t[t],
                                       a->x1_t[t], blk->norm2_w.v, blk->norm2_b.v, rows, C));
    }
    return MT_OK;
}

/* dst = src for the first contribution, dst += src after. */
static void gather(float *dst, const float *src, size_t n, int first) {
    if (first) mt_copy(dst, src, n);
    else mt_add_inplace(dst, src, n);
}

/* x: (B, H*W, C) the forward's input; dx: (B, H*W, C), ADDED to; dout:
 * (B, H*W, C) w.r.t. out; dout_t[t]: (B, H*W, C) w.r.t. out_t[t] (read only
 * when blk->ntask). B as in the forward (the model's Be). */
mt_status swin_block_backward(mt_ctx *ctx, const swin_block *blk, block_acts *a,
                              grad_work *w, const float *x, float *dx, const float *dout,
                              float *const *dout_t, int B, int training, uint64_t seed) {
    const int C = blk->dim, rows = B * blk->H * blk->W, hid = blk->fc1.out;
    const int nwb = rows / (blk->ws * blk->ws);
    const size_t n = (size_t)rows * C, n4 = (size_t)rows * hid;
    const lora_linear *qkv = &blk->qkv, *proj = &blk->proj, *fc1 = &blk->fc1, *fc2 = &blk->fc2;
    const int has_pt = blk->ntask && proj->ntask, has_ft = blk->ntask && fc1->ntask;
    /* task terms that read the shared inputs after LoRA dropout (fc2's when
     * fc1 has no task terms, fc1's when proj has none) add into these, and
     * join the shared term's gradient before the dropout's backward */
    const int acc_gelu = blk->ntask && !has_ft, acc_ln2 = has_ft && !has_pt;
    if (has_pt && proj->r) zero(w->d_ctx_drop, n);
    if (acc_gelu) zero(w->acc_gelu_drop, n4);
    if (acc_ln2) zero(w->acc_ln2_drop, n);

    /* Gradient buffers are overwritten by their first writer and added to
     * by the rest, so none is zeroed beforehand. With task paths the frozen
     * weights see the sums s_* of every path's output gradient. */
    /* ---- task paths, each down to dx and the frozen-weight sums */
    for (int t = 0; t < blk->ntask; t++) {
        /* recompute: the tasks share one fc1_t / gelu_t, which now holds the
         * last task's; this task's again from F1 (the block's forward just
         * ran) and its kept LN2 */
        if (has_ft && a->task_mlp_shared)
            MT_CHECK(task_fc1_forward(ctx, blk, a, a->f1_base, t, rows, has_pt, 0));
        MT_CHECK(drop_path_grad(ctx, blk, w->t_fc2, dout_t[t], B, training, seed,
                                SITE_DP_MLP_T + t));
        gather(w->s_fc2, w->t_fc2, n, t == 0);
        if (!has_ft) {
            MT_CHECK(lora_delta_backward_ex(ctx, w->acc_gelu_drop, fc2->At[t].g, fc2->Bt[t].g,
                                            w->t_fc2, a->gelu_drop, a->mid_fc2_t[t], fc2->At[t].v,
                                            fc2->Bt[t].v, fc2->task_scale[t], rows, hid, C,
                                            fc2->task_rank[t], 1));
        } else {
            MT_CHECK(lora_delta_backward_ex(ctx, w->t_gelu, fc2->At[t].g, fc2->Bt[t].g, w->t_fc2,
                                            a->gelu_t[t], a->mid_fc2_t[t], fc2->At[t].v,
                                            fc2->Bt[t].v, fc2->task_scale[t], rows, hid, C,
                                            fc2->task_rank[t], 0));
            MT_CHECK(gelu_backward_ex(ctx, w->t_fc1, w->t_gelu, a->fc1_t[t], n4, 0));
            gather(w->s_fc1, w->t_fc1, n4, t == 0);
            /* (rows, C): w.r.t. fc1's task input, and that input */
            float *d_in = has_pt ? w->t_ln2 : w->acc_ln2_drop;
            const float *in = has_pt ? a->ln2_t[t] : a->ln2_drop;
            MT_CHECK(lora_delta_backward_ex(ctx, d_in, fc1->At[t].g, fc1->Bt[t].g, w->t_fc1, in,
                                            a->mid_fc1_t[t], fc1->At[t].v, fc1->Bt[t].v,
                                            fc1->task_scale[t], rows, C, hid, fc1->task_rank[t],
                                            !has_pt));
        }
        if (!has_pt) continue; /* no attention residual on this path */
        mt_copy(w->t_x1, dout_t[t], n);
        if (has_ft)
            MT_CHECK(layernorm_backward(ctx, w->t_x1, blk->norm2_w.g, blk->norm2_b.g, w->t_ln2,
                                        a->x1_t[t], a->mean2_t[t], a->var2_t[t], blk->norm2_w.v,
                                        blk->norm2_b.v, rows, C));
        mt_add_inplace(dx, w->t_x1, n);
        MT_CHECK(drop_path_grad(ctx, blk, w->t_proj_img, w->t_x1, B, training, seed,
                                SITE_DP_ATTN_T + t));
        MT_CHECK(from_windows_bwd(ctx, blk, w->t_proj, w->t_proj_img, w->d_img, B));
        gather(w->s_proj, w->t_proj, n, t == 0);
        MT_CHECK(lora_delta_backward(ctx, w->d_ctx_drop, proj->At[t].g, proj->Bt[t].g, w->t_proj,
                                     a->ctx_drop, a->mid_proj_t[t], proj->At[t].v, proj->Bt[t].v,
                                     proj->task_scale[t], rows, C, C, proj->task_rank[t]));
    }
    /* ---- shared path: fc2 */
    MT_CHECK(drop_path_grad(ctx, blk, w->d_fc2, dout, B, training, seed, SITE_DP_MLP));
    const float *s2 = w->d_fc2; /* (rows, C) what fc2's frozen weight sees */
    if (blk->ntask) { mt_add_inplace(w->s_fc2, w->d_fc2, n); s2 = w->s_fc2; }
    MT_CHECK(base_backward(ctx, fc2, w->d_gelu, s2, a->gelu, rows, 0));
    MT_CHECK(shared_lora_backward(ctx, fc2, w->d_gelu,
                                  acc_gelu ? w->acc_gelu_drop : w->d_gelu_drop, acc_gelu,
                                  w->d_fc2, a->gelu_drop, a->mid_fc2, rows, training, seed,
                                  site(blk, SITE_FC2)));
    /* fc1 */
    MT_CHECK(gelu_backward_ex(ctx, w->d_fc1, w->d_gelu, a->fc1, n4, 0));
    const float *s1 = w->d_fc1; /* (rows, hid) what fc1's frozen weight sees */
    if (has_ft) { mt_add_inplace(w->s_fc1, w->d_fc1, n4); s1 = w->s_fc1; }
    MT_CHECK(base_backward(ctx, fc1, w->d_ln2, s1, a->ln2, rows, 0));
    MT_CHECK(shared_lora_backward(ctx, fc1, w->d_ln2, acc_ln2 ? w->acc_ln2_drop : w->d_ln2_drop,
                                  acc_ln2, w->d_fc1, a->ln2_drop, a->mid_fc1, rows, training,
                                  seed, site(blk, SITE_FC1)));
    mt_copy(w->d_x1, dout, n);
    MT_CHECK(layernorm_backward(ctx, w->d_x1, blk->norm2_w.g, blk->norm2_b.g, w->d_ln2, a->x1,
                                a->mean2, a->var2, blk->norm2_w.v, blk->norm2_b.v, rows, C));
    mt_add_inplace(dx, w->d_x1, n);
    /* attention branch: proj */
    MT_CHECK(drop_path_grad(ctx, blk, w->d_proj_img, w->d_x1, B, training, seed, SITE_DP_ATTN));
    MT_CHECK(from_windows_bwd(ctx, blk, w->d_proj, w->d_proj_img, w->d_img, B));
    const float *sp = w->d_proj; /* (rows, C), windows: what proj's frozen weight sees */
    if (has_pt) { mt_add_inplace(w->s_proj, w->d_proj, n); sp = w->s_proj; }
    if (proj->r)
        MT_CHECK(adapter_delta_backward(ctx, proj, w->d_ctx_drop, w->d_proj, a->ctx_drop,
                                        a->mid_proj, rows, has_pt));
    MT_CHECK(base_backward(ctx, proj, w->d_ctx, sp, a->ctx, rows, 0));
    if (proj->r) {
        if (drop_active(proj, training))
            MT_CHECK(dropout_backward(ctx, w->d_ctx, w->d_ctx_drop, n, proj->dropout,
                                      model_site_seed(seed, site(blk, SITE_PROJ)), 0));
        else
            mt_add_inplace(w->d_ctx, w->d_ctx_drop, n);
    }
    /* attention core and qkv */
    MT_CHECK(window_attention_backward_ex(ctx, w->d_qkv, blk->table.g, w->d_ctx, a->qkv, a->probs,
                                          nwb, blk->ws, C, blk->heads, 0));
    MT_CHECK(base_backward(ctx, qkv, w->d_win, w->d_qkv, a->win, rows, 0));
    MT_CHECK(shared_lora_backward(ctx, qkv, w->d_win, w->d_ctx_drop, 0, w->d_qkv, a->win_drop,
                                  a->mid_qkv, rows, training, seed, site(blk, SITE_QKV)));
    MT_CHECK(to_windows_bwd(ctx, blk, w->d_ln1, w->d_win, w->d_img, B));
    return layernorm_backward(ctx, dx, blk->norm1_w.g, blk->norm1_b.g, w->d_ln1, x, a->mean1,
                              a->var1, blk->norm1_w.v, blk->norm1_b.v, rows, C);
}
