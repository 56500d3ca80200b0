/* model_internal.h - the structures behind mt_model (src/ only).
 *
 * Parameters are pointers into the model's param_bank; activations are
 * pointers into one arena sized for the batch; the backward's temporaries
 * into a second arena. Nothing here owns memory of its own. */
#ifndef MTLORA_MODEL_INTERNAL_H
#define MTLORA_MODEL_INTERNAL_H

#include "mtlora/ops/layers.h"
#include "mtlora/model/model.h"

#define T_MAX MT_MAX_TASKS
#define L_MAX MT_MAX_STAGES

typedef struct {
    float *v, *g; /* value; gradient (NULL when not trainable or absent) */
} ptensor;

#define CGC_MAX_EXPERTS 20 /* S + P of one task */

/* A linear layer with its adapter (docs/adapters.md): frozen base W x + b
 * plus a low-rank term on the dropped-out input.
 *  MT_ADAPTER_LORA / MTLORA: the shared term s B A (A, B); MTLoRA adds the
 *    task terms of the last block of a stage (ntask > 0).
 *  MT_ADAPTER_MTL_LORA / CGC_LORA: task-dependent; the rows split into
 *    `paths` equal parts, part p computed for task p as s K_p (A_p x) with
 *    A_p [r, in] and K_p [out, r] materialised from the parameters once per
 *    forward (adapter.c); r is then the effective rank. */
typedef struct {
    int in, out;
    ptensor w, b;
    mt_adapter_kind kind; /* MT_ADAPTER_NONE: r == 0 */
    int r;
    float scale, dropout;
    ptensor A, B;
    int ntask;
    int rt[T_MAX];
    float st[T_MAX];
    ptensor At[T_MAX], Bt[T_MAX];
    /* task-dependent kinds */
    int paths;
    int nb, diag;        /* mtl_lora: up-projections, diagonal Lambda */
    float tau;
    ptensor Bn, lam, mix; /* mtl_lora: [nb, out, r], [T, r, r] or [T, r], [T, nb] */
    int ns, np, re;      /* cgc_lora: shared experts, experts per task, expert rank */
    ptensor EA, EB, TA, TB; /* cgc_lora: [ns, re, in], [ns, out, re], [T np, re, in], [T np, out, re] */
    float *effA[T_MAX], *effK[T_MAX], *effM[T_MAX]; /* materialised; effM: mtl's mixed B */
    float *effdA[T_MAX], *effdK[T_MAX];             /* their gradients, per backward */
} lora_linear;

typedef struct {
    int dim, heads, ws, shift, H, W, ntask, index;
    float drop_path;
    ptensor norm1_w, norm1_b, norm2_w, norm2_b, table;
    lora_linear qkv, proj, fc1, fc2;
    float *mask; /* [nW, ws*ws, ws*ws] when shifted; owned by the model */
} swin_block;

typedef struct {
    int dim, H, W, depth;
    swin_block *blocks;
    int has_merge;
    ptensor mnorm_w, mnorm_b;
    lora_linear reduction; /* 4dim -> 2dim, no bias */
} swin_stage;

typedef struct {
    int K, csum; /* outputs; concatenated decoder channels */
    ptensor down[L_MAX];
    ptensor c1_w, c1_b, bn_w, bn_b, c2_w, c2_b;
    float *bn_rm, *bn_rv;
    int64_t bn_tracked;
} task_decoder;

/* Saved activations of one block (task arrays used by the last block of a
 * stage only; *_d are the LoRA-dropout inputs, equal to the undropped
 * tensor when no dropout is active). */
typedef struct {
    float *ln1, *mean1, *var1, *win, *win_d, *qkv, *mid_qkv, *probs, *ctx, *ctx_d, *mid_proj;
    float *x1, *ln2, *mean2, *var2, *ln2_d, *mid_fc1, *fc1, *g, *g_d, *mid_fc2, *out;
    float *mid_proj_t[T_MAX], *x1_t[T_MAX], *ln2_t[T_MAX], *mean2_t[T_MAX], *var2_t[T_MAX];
    float *mid_fc1_t[T_MAX], *fc1_t[T_MAX], *g_t[T_MAX], *mid_fc2_t[T_MAX], *out_t[T_MAX];
} block_acts;

typedef struct {
    float *gath, *normed, *normed_d, *mean, *var, *mid, *out;
} merge_acts;

typedef struct {
    float *tok[L_MAX], *lvl[L_MAX], *rs[L_MAX];
    float *cat, *h1, *bn_mean, *bn_var, *h2, *h3, *z, *logits, *dlogits;
} decoder_acts;

typedef struct {
    /* patch embedding */
    float *pe_conv, *pe_mean, *pe_var, *pe_out;
    float *pe_rep; /* P copies of pe_out when the encoder has P > 1 paths */
    block_acts *blocks[L_MAX];
    merge_acts merge[L_MAX][1 + T_MAX]; /* path 0 shared, 1 + t task t */
    decoder_acts dec[T_MAX];
    float *feat[T_MAX][L_MAX]; /* views: features handed to the decoders */
    /* forward temporaries (not needed by the backward) */
    float *tmp_img, *tmp_win, *tmp_base, *tmp_base4;
} model_acts;

typedef struct {
    float *d_cur, *d_prev;                /* block output / input gradients */
    float *d_out_t[T_MAX];                /* task-path block output gradients */
    float *d_feat[T_MAX][L_MAX];          /* decoder -> encoder feature gradients */
    float *d_ln1, *d_img, *d_win, *d_qkv, *d_ctx, *d_dh, *d_proj, *s_proj, *d_y, *d_x1;
    float *d_ln2, *d_ln2d, *s_fc1, *d_fc1, *d_g, *d_gd, *s_fc2, *d_fc2;
    float *t_fc2, *t_g, *t_fc1, *t_ln2, *t_x1, *t_y, *t_proj;
    float *acc_gd, *acc_ln2d; /* task terms reading the shared dropped inputs */
    float *m_out, *m_normed, *m_normed_d, *m_gath; /* merge backward */
    float *dz, *dh3, *dh2, *dh1, *dcat, *drs, *dlvl, *dtok; /* decoder backward */
} grad_work;

struct mt_model {
    mt_config cfg;
    param_bank bank;
    int L, T, S, grid0;
    ptensor pe_w, pe_b, pe_nw, pe_nb;
    swin_stage stages[L_MAX];
    task_decoder dec[T_MAX];
    int feat_dim[L_MAX], feat_res[L_MAX];
    int task_paths; /* 1 when the last block of each stage has task paths */
    int P;          /* encoder paths (adapter.paths): the encoder runs on P * B rows */
    int backbone_trains; /* 0: decoders-only, the backward stops at the decoders */
    /* cgc_lora's gate, one for the model: softmax(G E[t]) per task */
    ptensor gate_E, gate_G;
    int gate_dim, gate_n;
    float gate_p[T_MAX][CGC_MAX_EXPERTS];
    double gate_dp[T_MAX][CGC_MAX_EXPERTS];
    float *adapter_mem; /* effA/effK/effM/effdA/effdK of every task-dependent layer */
    /* activations for batch `B` */
    int B, trained_forward, have_loss_grad;
    const float *images;
    /* gradient-ready notifications (mt_model_set_grad_ready) */
    mt_grad_ready_fn grad_ready;
    void *grad_ready_user;
    char *reported; /* per bank entry, during a backward */
    uint64_t seed;
    void *act_mem, *work_mem;
    model_acts a;
    grad_work w;
};

/* model_params.c */
mt_status model_register_params(mt_model *m, mt_ctx *ctx, int bind);
mt_status model_init_params(mt_model *m, mt_ctx *ctx, uint64_t seed);

/* model_acts.c */
mt_status model_alloc_acts(mt_model *m, mt_ctx *ctx, int B);
void model_free_acts(mt_model *m);

/* swin_block.c */
mt_status swin_block_forward(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                             const float *x, int B, int training, uint64_t seed);
mt_status swin_block_backward(mt_ctx *ctx, const swin_block *blk, const block_acts *a,
                              grad_work *w, const float *x, float *dx, const float *dout,
                              float *const *dout_t, int B, int training, uint64_t seed);

/* Shared LoRA backward through its input dropout: d_in += drop'(g), g the
 * gradient w.r.t. the dropped input; d_tmp is scratch of the input's size,
 * or (d_tmp_holds) already holds the task terms' share of g. */
mt_status shared_lora_backward(mt_ctx *ctx, const lora_linear *l, float *d_in, float *d_tmp,
                               int d_tmp_holds, const float *dy, const float *in_d,
                               const float *mid, int rows, int training, uint64_t seed,
                               uint64_t site);

/* adapter.c: the low-rank term of any adapter kind, and the per-forward
 * materialisation of the task-dependent kinds. */
mt_status adapter_delta_forward(mt_ctx *ctx, const lora_linear *l, float *y, const float *base,
                                float *mid, const float *x, int rows);
mt_status adapter_delta_backward(mt_ctx *ctx, const lora_linear *l, float *dx, const float *dy,
                                 const float *x, const float *mid, int rows, int accumulate);
mt_status adapter_alloc(mt_model *m, mt_ctx *ctx);
mt_status adapter_prepare(mt_model *m, mt_ctx *ctx);
void adapter_zero_grads(mt_model *m);
/* Maps a layer's materialised gradients onto its parameters' (and adds
 * cgc's gate share into m->gate_dp). */
mt_status adapter_layer_grads(mt_model *m, mt_ctx *ctx, const lora_linear *l);
mt_status adapter_gate_grads(mt_model *m, mt_ctx *ctx);
/* dW (out x in) = the layer's total low-rank update for task t (path t). */
mt_status adapter_task_delta(mt_model *m, mt_ctx *ctx, const lora_linear *l, int t, float *dW);

/* decoder.c */
mt_status decoder_forward(mt_ctx *ctx, mt_model *m, int t, int B, int training);
mt_status decoder_backward(mt_ctx *ctx, mt_model *m, int t, int B);

/* A LoRA linear's dropout input: the dropped copy when dropout is active. */
mt_status lora_dropout_apply(mt_ctx *ctx, float *dst, const float *src, size_t n, float p,
                             int training, uint64_t seed, uint64_t site);
uint64_t model_site_seed(uint64_t seed, uint64_t site);

/* y = x + yv, n floats. */
void add_into(float *out, const float *x, const float *y, size_t n);

#endif
