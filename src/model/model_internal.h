/* model_internal.h - the structures behind mt_model (src/ only).
 *
 * Parameters are pointers into the model's param_bank; activations are
 * pointers into one arena sized for the batch; the backward's temporaries
 * into a second arena. Nothing here owns memory of its own.
 *
 * Shapes in the comments, row-major, in the names the code uses:
 *   B     images in the batch (mt_model.B)
 *   P     encoder paths (mt_model.P): 1, or T with a task-dependent adapter
 *         (mtl_lora, cgc_lora), which runs path p on rows [p B, (p + 1) B)
 *   Be    = P * B, the encoder's batch (mtlora's task paths need P == 1)
 *   H, W, C   a stage's token grid and channels (swin_stage.H/W/dim);
 *         rows = Be * H * W tokens; hid = fc1.out = C * mlp_ratio
 *   ws    window side; N = ws * ws tokens per window; nW = (H/ws) * (W/ws)
 *         windows per image; nwb = Be * nW windows in the batch
 *   r     a layer's (effective) low-rank width; r_t its task-t rank
 *   T     tasks; K outputs of a task; S image side; C0 = embed_dim;
 *         g0 = grid0 = S / patch_size
 *   Hf_s, Cf_s  the features stage s hands its decoders (feat_res[s],
 *         feat_dim[s]); h0 = Hf_0, the decoder's working resolution
 *   ch_s  = decoder_channels[s]; csum = sum_s ch_s
 * "(rows, C), windows" means the rows are in window order, (nwb, N, C);
 * otherwise token tensors are in image order, (Be, H*W, C). */
#ifndef MTLORA_MODEL_INTERNAL_H
#define MTLORA_MODEL_INTERNAL_H

#include "mtlora/ops/layers.h"
#include "mtlora/model/model.h"

typedef struct {
    float *v, *g; /* value; gradient (NULL when not trainable or absent) */
    const mt_bf16 *h; /* bf16 copy of a frozen value the model runs in bf16, else NULL */
} ptensor;

#define CGC_MAX_EXPERTS 20 /* shared + task experts of one cgc_lora layer */

/* A linear layer with its adapter (docs/adapters.md): frozen base W x + b
 * plus a low-rank term on the dropped-out input.
 *  MT_ADAPTER_LORA / MTLORA: the shared term s B A (A, B); MTLoRA adds the
 *    task terms of the last block of a stage (ntask > 0).
 *  MT_ADAPTER_MTL_LORA / CGC_LORA: task-dependent; the rows split into
 *    `paths` equal parts, part p computed for task p as s K_p (A_p x) with
 *    A_p (r, in) and K_p (out, r) materialised from the parameters once per
 *    forward (adapter.c); r is then the effective rank. */
typedef struct {
    int in, out;
    ptensor w;            /* (out, in) frozen or trained base weight */
    ptensor b;            /* (out), NULL v when the layer has no bias */
    mt_adapter_kind kind; /* MT_ADAPTER_NONE: r == 0 */
    int r;                /* low-rank width (0: plain linear) */
    float scale, dropout;
    ptensor A;            /* (r, in): lora, mtlora (shared term), mtl_lora */
    ptensor B;            /* (out, r): lora, mtlora (shared term) */
    /* mtlora's task terms (proj, fc1, fc2 of a stage's last block) */
    int ntask;                          /* 0 or T */
    int task_rank[MT_MAX_TASKS];        /* r_t */
    float task_scale[MT_MAX_TASKS];     /* s_t */
    ptensor At[MT_MAX_TASKS];           /* (r_t, in) */
    ptensor Bt[MT_MAX_TASKS];           /* (out, r_t) */
    /* task-dependent kinds */
    int paths;            /* P for mtl_lora / cgc_lora, else 1 */
    int num_b, diag;      /* mtl_lora: up-projections B^i, diagonal Lambda */
    float tau;            /* mtl_lora: softmax temperature of the mixing */
    ptensor Bn;           /* mtl_lora: (num_b, out, r), the B^i */
    ptensor lam;          /* mtl_lora: (T, r, r), or (T, r) when diag */
    ptensor mix;          /* mtl_lora: (T, num_b) mixing logits */
    /* cgc_lora: experts of rank expert_rank, shared_experts shared by every
     * task plus task_experts of each task; r = (shared + task) * expert_rank */
    int shared_experts, task_experts, expert_rank;
    ptensor EA;           /* (shared_experts, expert_rank, in) */
    ptensor EB;           /* (shared_experts, out, expert_rank) */
    ptensor TA;           /* (T * task_experts, expert_rank, in) */
    ptensor TB;           /* (T * task_experts, out, expert_rank) */
    /* materialised per forward for path p < paths (adapter.c), in
     * m->adapter_mem; their gradients filled per backward */
    float *effA[MT_MAX_TASKS];  /* (r, in) A_p; mtl_lora: a view of A.v */
    float *effK[MT_MAX_TASKS];  /* (out, r) K_p */
    float *effM[MT_MAX_TASKS];  /* (out, r) mtl_lora only: M_p, the mixed B */
    float *effdA[MT_MAX_TASKS]; /* (r, in) dA_p; mtl_lora: a view of A.g */
    float *effdK[MT_MAX_TASKS]; /* (out, r) dK_p */
} lora_linear;

typedef struct {
    int dim, heads, ws, shift, H, W; /* C = dim; shift 0 or ws / 2 */
    int ntask;                       /* T in a stage's last block with task paths, else 0 */
    int index;                       /* the block's number over all stages */
    float drop_path;
    ptensor norm1_w, norm1_b, norm2_w, norm2_b; /* (C) each */
    ptensor table;                   /* ((2ws-1)^2, heads) relative position bias */
    lora_linear qkv;                 /* C -> 3C */
    lora_linear proj;                /* C -> C */
    lora_linear fc1;                 /* C -> hid */
    lora_linear fc2;                 /* hid -> C */
    float *mask; /* (nW, N, N) when shifted, else NULL; owned by the model */
} swin_block;

typedef struct {
    int dim, H, W, depth;  /* C, the token grid, blocks */
    swin_block *blocks;    /* (depth) */
    int has_merge;         /* every stage but the last ends in a patch merging */
    ptensor mnorm_w, mnorm_b; /* (4C) the merging's layer norm */
    lora_linear reduction; /* 4C -> 2C, no bias */
} swin_stage;

typedef struct {
    int K, csum; /* outputs; concatenated decoder channels */
    ptensor down[MT_MAX_STAGES]; /* (ch_s, Cf_s, 1, 1) 1x1 conv of level s, no bias */
    ptensor c1_w;                /* (4 csum, csum, 1, 1) first 1x1 conv */
    ptensor c1_b;                /* (4 csum) */
    ptensor bn_w, bn_b;          /* (4 csum) BatchNorm2d affine */
    ptensor c2_w;                /* (K, 4 csum, 1, 1) 1x1 conv to the outputs */
    ptensor c2_b;                /* (K) */
    float *bn_running_mean;      /* (4 csum) BatchNorm2d buffers, in the bank */
    float *bn_running_var;       /* (4 csum) */
    int64_t bn_tracked;
} task_decoder;

/* Saved activations of one block, rows = Be * H * W (model_acts.c sizes
 * them). *_drop are the LoRA-dropout inputs: views of the undropped tensor
 * when the layer has no LoRA or no dropout. mid_* = (LoRA input) A^T, the
 * low-rank intermediate, NULL when the layer has r == 0. */
typedef struct {
    float *ln1;       /* (rows, C) LN1(x) */
    float *mean1;     /* (rows) */
    float *var1;      /* (rows) */
    float *win;       /* (rows, C), windows: ln1 rolled by -shift and partitioned */
    float *win_drop;  /* (rows, C), windows: qkv's LoRA input */
    float *qkv;       /* (nwb, N, 3C) */
    float *mid_qkv;   /* (rows, qkv.r), windows */
    float *probs;     /* (nwb, heads, N, N) attention softmax */
    float *ctx;       /* (nwb, N, C) attention output, proj's input */
    float *ctx_drop;  /* (nwb, N, C) proj's LoRA input */
    float *mid_proj;  /* (rows, proj.r), windows */
    float *x1;        /* (Be, H*W, C) x + DP(proj), proj un-windowed and rolled back */
    float *ln2;       /* (rows, C) LN2(x1) */
    float *mean2;     /* (rows) */
    float *var2;      /* (rows) */
    float *ln2_drop;  /* (rows, C) fc1's LoRA input */
    float *mid_fc1;   /* (rows, fc1.r) */
    float *fc1;       /* (rows, hid) */
    float *gelu;      /* (rows, hid) GELU(fc1) */
    float *gelu_drop; /* (rows, hid) fc2's LoRA input */
    float *mid_fc2;   /* (rows, fc2.r) */
    float *out;       /* (Be, H*W, C) x1 + DP(fc2), the block's output */
    /* Task paths t < ntask: only in a stage's last block with mtlora's task
     * terms (P == 1, so rows = B * H * W); unused entries are NULL. The
     * proj group (mid_proj_t .. var2_t) exists when proj has task terms,
     * the fc1 group (mid_fc1_t .. gelu_t) when fc1 has, the fc2 group
     * (mid_fc2_t, out_t) in every such block. */
    float *mid_proj_t[MT_MAX_TASKS]; /* (rows, proj.task_rank[t]), windows */
    float *x1_t[MT_MAX_TASKS];       /* (B, H*W, C) */
    float *ln2_t[MT_MAX_TASKS];      /* (rows, C) LN2(x1_t) */
    float *mean2_t[MT_MAX_TASKS];    /* (rows) */
    float *var2_t[MT_MAX_TASKS];     /* (rows) */
    float *mid_fc1_t[MT_MAX_TASKS];  /* (rows, fc1.task_rank[t]) */
    float *fc1_t[MT_MAX_TASKS];      /* (rows, hid) */
    float *gelu_t[MT_MAX_TASKS];     /* (rows, hid) GELU(fc1_t) */
    float *mid_fc2_t[MT_MAX_TASKS];  /* (rows, fc2.task_rank[t]) */
    float *out_t[MT_MAX_TASKS];      /* (B, H*W, C) task t's block output */
    /* With recompute (TRAIN.USE_CHECKPOINT) every task's fc1_t and gelu_t
     * are one buffer each: the backward recomputes task t's from f1_base
     * (the frozen fc1 output on the shared LN2, model_acts.tmp_base4,
     * valid right after this block's forward) before its backward. */
    int task_mlp_shared;
    const float *f1_base;            /* (rows, hid), set by the forward */
    /* With recompute in a stage from model.keep_from_stage on, the block
     * keeps what its matmuls wrote (qkv, x1, fc1, every mid_*, x1_t[t],
     * and F1 in f1_keep when fc1 has task terms): its backward recomputes
     * only the layer norms, window moves, attention core, GELU and dropout
     * (swin_block_recompute), not the matmuls. */
    int keep;
    float *f1_keep;                  /* (rows, hid) F1, or NULL */
} block_acts;

/* Saved activations of one patch merging of stage s (H, W, C the stage's),
 * mrows = Be * (H/2) * (W/2) for the shared path, B * (H/2) * (W/2) for a
 * task path (where P == 1, the same). */
typedef struct {
    float *gath;        /* (mrows, 4C) the 2x2 neighbours x0..x3 concatenated */
    float *normed;      /* (mrows, 4C) LN(gath) */
    float *normed_drop; /* (mrows, 4C) reduction's LoRA input (view of normed without dropout) */
    float *mean;        /* (mrows) */
    float *var;         /* (mrows) */
    float *mid;         /* (mrows, reduction.r), NULL when r == 0; kept with recompute */
    float *out;         /* (Be, (H/2)*(W/2), 2C) the next stage's input */
} merge_acts;

/* Saved activations of task t's decoder; level s < L at Hf_s x Hf_s. */
typedef struct {
    float *down_tok[MT_MAX_STAGES];  /* (B, Hf_s*Hf_s, ch_s) 1x1 conv of the features, tokens */
    float *down_nchw[MT_MAX_STAGES]; /* (B, ch_s, Hf_s, Hf_s) the same in NCHW (s > 0 only) */
    float *resized[MT_MAX_STAGES];   /* (B, ch_s, h0, h0) bilinear to level 0 (s > 0 only) */
    float *cat;     /* (B, csum, h0, h0) the levels concatenated */
    float *conv1;   /* (B, 4 csum, h0, h0) */
    float *bn_mean; /* (4 csum) batch statistics (training) */
    float *bn_var;  /* (4 csum) biased */
    float *bn;      /* (B, 4 csum, h0, h0) BatchNorm2d(conv1) */
    float *relu;    /* (B, 4 csum, h0, h0) */
    float *conv2;   /* (B, K, h0, h0) */
    float *logits;  /* (B, K, S, S) conv2 resized to the input */
    float *dlogits; /* (B, K, S, S) the loss's gradient w.r.t. logits */
} decoder_acts;

typedef struct {
    /* patch embedding */
    float *pe_conv; /* (B, g0*g0, C0) the conv's output, tokens */
    float *pe_mean; /* (B*g0*g0) */
    float *pe_var;  /* (B*g0*g0) */
    float *pe_out;  /* (B, g0*g0, C0) */
    float *pe_rep;  /* (P*B, g0*g0, C0) P copies of pe_out; NULL when P == 1 */
    block_acts *blocks[MT_MAX_STAGES];        /* (depth) per stage */
    merge_acts merge[MT_MAX_STAGES][1 + MT_MAX_TASKS]; /* path 0 shared, 1 + t task t */
    decoder_acts dec[MT_MAX_TASKS];
    /* views: the (B, Hf_s*Hf_s, Cf_s) features of task t at level s (a
     * task path's output, or path t's slice of the shared tensor) */
    float *feat[MT_MAX_TASKS][MT_MAX_STAGES];
    /* forward temporaries (not needed by the backward), sized for the
     * largest stage and used as (rows, C) / (rows, hid) of the one at hand */
    float *tmp_img;   /* (rows, C) between the roll and the window move */
    float *tmp_win;   /* (rows, C), windows: proj's output with its low-rank term */
    float *tmp_base;  /* (rows, C) frozen base output shared by every path: proj's P, fc2's F2 */
    float *tmp_base4; /* (rows, hid) fc1's frozen base output F1 */
} model_acts;

/* The backward's workspace. Encoder buffers are sized for the largest
 * stage and used as the shapes of the stage at hand (rows = Be * H * W);
 * d_x: gradient w.r.t. block_acts x on the shared path, t_x: the same on
 * the task path being processed, s_x: the sum over every path of the
 * gradient w.r.t. the output of a frozen weight shared by the paths. */
typedef struct {
    float *d_cur;  /* (Be, H*W, C) gradient w.r.t. the current block's output */
    float *d_prev; /* (Be, H*W, C) ... w.r.t. its input (swapped with d_cur per block) */
    float *d_out_t[MT_MAX_TASKS];                /* (B, H*W, C) w.r.t. out_t[t] */
    float *d_feat[MT_MAX_TASKS][MT_MAX_STAGES];  /* (B, Hf_s*Hf_s, Cf_s) w.r.t. feat[t][s] */
    /* block backward, shared path */
    float *d_ln1;       /* (rows, C) */
    float *d_img;       /* (rows, C) scratch between the roll and the window move */
    float *d_win;       /* (rows, C), windows */
    float *d_qkv;       /* (nwb, N, 3C) */
    float *d_ctx;       /* (nwb, N, C) */
    float *d_ctx_drop;  /* (rows, C), windows: w.r.t. ctx_drop (every path's proj
                         * low-rank terms); then qkv's scratch for win_drop's */
    float *d_proj;      /* (rows, C), windows: w.r.t. proj's output */
    float *s_proj;      /* (rows, C), windows */
    float *d_proj_img;  /* (Be, H*W, C) w.r.t. proj's output un-windowed, before DP */
    float *d_x1;        /* (Be, H*W, C) */
    float *d_ln2;       /* (rows, C) */
    float *d_ln2_drop;  /* (rows, C) scratch: w.r.t. ln2_drop (the bytes of d_x1) */
    float *s_fc1;       /* (rows, hid) */
    float *d_fc1;       /* (rows, hid) */
    float *d_gelu;      /* (rows, hid) */
    float *d_gelu_drop; /* (rows, hid) scratch: w.r.t. gelu_drop (the bytes of d_fc1) */
    float *s_fc2;       /* (rows, C) */
    float *d_fc2;       /* (rows, C) */
    /* block backward, task path t (P == 1: rows = B * H * W); each is the
     * same buffer as the shared path's of its name (d_fc2, d_gelu, d_fc1,
     * d_ln2, d_x1, d_proj_img, d_proj): the task paths finish first */
    float *t_fc2;       /* (rows, C) */
    float *t_gelu;      /* (rows, hid) */
    float *t_fc1;       /* (rows, hid) */
    float *t_ln2;       /* (rows, C) */
    float *t_x1;        /* (B, H*W, C) */
    float *t_proj_img;  /* (B, H*W, C) */
    float *t_proj;      /* (rows, C), windows */
    /* task terms that read the shared dropped inputs, summed over tasks */
    float *acc_gelu_drop; /* (rows, hid) fc2's task terms w.r.t. gelu_drop (fc1 without) */
    float *acc_ln2_drop;  /* (rows, C) fc1's task terms w.r.t. ln2_drop (proj without) */
    /* merge backward, mrows = rows / 4 of the merged stage: the same
     * buffers as d_ln1, d_img, d_win (no block's backward is running) */
    float *m_normed;      /* (mrows, 4C) w.r.t. normed */
    float *m_normed_drop; /* (mrows, 4C) scratch: w.r.t. normed_drop */
    float *m_gath;        /* (mrows, 4C) w.r.t. gath */
    /* decoder backward, sized for the largest task and level; the same
     * bytes as the encoder's buffers above (model_acts.c: the decoders'
     * backward is over before the encoder's starts) */
    float *d_conv2;     /* (B, K, h0, h0) */
    float *d_relu;      /* (B, 4 csum, h0, h0) */
    float *d_bn;        /* (B, 4 csum, h0, h0), the same buffer as d_relu */
    float *d_conv1;     /* (B, 4 csum, h0, h0) */
    float *d_cat;       /* (B, csum, h0, h0) */
    float *d_resized;   /* (B, ch_s, h0, h0) */
    float *d_down_nchw; /* (B, ch_s, Hf_s, Hf_s) */
    float *d_down_tok;  /* (B, Hf_s*Hf_s, ch_s) */
} grad_work;

struct mt_model {
    mt_config cfg;
    param_bank bank;
    int L, T, S, grid0; /* stages, tasks, image side, g0 = S / patch_size */
    ptensor pe_w;       /* (C0, in_chans, patch, patch) patch embedding conv */
    ptensor pe_b;       /* (C0) */
    ptensor pe_nw, pe_nb; /* (C0) its layer norm */
    swin_stage stages[MT_MAX_STAGES];
    task_decoder dec[MT_MAX_TASKS];
    int feat_dim[MT_MAX_STAGES], feat_res[MT_MAX_STAGES]; /* Cf_s, Hf_s */
    int task_paths; /* 1 when the last block of each stage has task paths */
    int P;          /* encoder paths (adapter.paths): the encoder runs on P * B rows */
    int backbone_trains; /* 0: decoders-only, the backward stops at the decoders */
    /* cgc_lora's gate, one for the model: softmax(G E[t]) per task */
    ptensor gate_E;     /* (T, gate_dim) task embeddings */
    ptensor gate_G;     /* (gate_n, gate_dim) */
    int gate_dim, gate_n; /* gate_n = shared + task experts of a layer */
    float gate_p[MT_MAX_TASKS][CGC_MAX_EXPERTS];   /* (T, gate_n) softmax(G E[t]), per forward */
    double gate_dp[MT_MAX_TASKS][CGC_MAX_EXPERTS]; /* (T, gate_n) its gradient, per backward */
    float *adapter_mem; /* effA/effK/effM/effdA/effdK of every task-dependent layer */
    /* mixed precision (model_precision.c) */
    mt_precision prec;
    mt_bf16 *frozen_h;      /* (bank.n_frozen) bf16 copy of the frozen values, when prec.bf16 */
    int frozen_h_external;  /* frozen_h is caller memory (the node-shared window) */
    int frozen_h_fresh;     /* frozen_h holds the current float32 values */
    int frozen_f32_released;
    /* activations for batch `B` */
    int B, trained_forward, have_loss_grad;
    const float *images; /* (B, in_chans, S, S) the last forward's, kept for the backward */
    /* gradient-ready notifications (mt_model_set_grad_ready) */
    mt_grad_ready_fn grad_ready;
    void *grad_ready_user;
    char *reported; /* (bank.count) per bank entry, during a backward */
    uint64_t seed;
    void *act_mem;  /* the arena behind `a` */
    void *work_mem; /* the arena behind `w` */
    model_acts a;
    grad_work w;
    /* activation recompute (TRAIN.USE_CHECKPOINT, model_acts.c): with
     * acts_shared every block keeps only out and out_t[t] of its own; its
     * other block_acts tensors lie in one area all blocks share, so the
     * backward re-runs a block's forward before its backward */
    int acts_shared;  /* the arena was laid out so (cfg.use_checkpoint at that time) */
    int keep_from_stage; /* with acts_shared, the first stage whose blocks keep their
                          * matmul outputs (block_acts.keep): the later half, whose
                          * activations are the fewest per matmul FLOP */
    size_t act_bytes; /* bytes of the arena behind `a`, shared area included */
    char *shared_area;   /* with acts_shared: the recompute area, shared_bytes long */
    size_t shared_bytes;
    int poison_recompute; /* mt_model_poison_recompute */
};

/* model_precision.c: decides m->prec (at create); before a forward makes
 * the bf16 frozen copy current (a no-op in float32 or when fresh). */
mt_status model_precision_init(mt_model *m, mt_ctx *ctx);
mt_status model_precision_prepare(mt_model *m, mt_ctx *ctx);
void model_precision_free(mt_model *m);

/* model_params.c */
mt_status model_register_params(mt_model *m, mt_ctx *ctx, int bind);
mt_status model_init_params(mt_model *m, mt_ctx *ctx, uint64_t seed);

/* model_acts.c */
mt_status model_alloc_acts(mt_model *m, mt_ctx *ctx, int B);
void model_free_acts(mt_model *m);
/* With mt_model_poison_recompute on: NaN bytes over the recompute area. */
void model_poison_shared(mt_model *m);

/* swin_block.c: x, dx, dout, dout_t[t] are (B, H*W, C) with B every
 * path's images (the model's Be); the backward ADDS into dx and reads
 * dout_t only in a block with task paths. */
mt_status swin_block_forward(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                             const float *x, int B, int training, uint64_t seed);
mt_status swin_block_backward(mt_ctx *ctx, const swin_block *blk, block_acts *a,
                              grad_work *w, const float *x, float *dx, const float *dout,
                              float *const *dout_t, int B, int training, uint64_t seed);
/* With recompute, a block without a->keep before its backward: its
 * forward again up to what the backward reads (not fc2 nor the task fc2
 * terms: out, out_t and the mid_fc2* are kept). */
mt_status swin_block_refill(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                            const float *x, int B, int training, uint64_t seed);
/* A block with a->keep, after later layers overwrote its shared-area
 * tensors: writes them again from x and the kept matmul outputs, the same
 * numbers its forward wrote, without running a matmul. */
mt_status swin_block_recompute(mt_ctx *ctx, const swin_block *blk, block_acts *a, model_acts *tmp,
                               const float *x, int B, int training, uint64_t seed);

/* The base linear of a lora_linear, in bf16 when the model keeps a bf16
 * copy of this frozen weight (AMP): out (rows, l->out) = W x + b, x (rows,
 * l->in); the backward dx (rows, l->in) (+)= dy W, with W's and b's
 * gradients when they train (a bf16 weight is frozen with its bias). */
mt_status base_forward(mt_ctx *ctx, const lora_linear *l, float *out, const float *x, int rows);
mt_status base_backward(mt_ctx *ctx, const lora_linear *l, float *dx, const float *dy,
                        const float *x, int rows, int accumulate);

/* Shared LoRA backward through its input dropout: d_in (rows, in) +=
 * drop'(g), g the gradient w.r.t. the dropped input in_drop (rows, in);
 * dy (rows, out), mid (rows, r). d_tmp (rows, in) is scratch, or
 * (d_tmp_holds) already holds the task terms' share of g. */
mt_status shared_lora_backward(mt_ctx *ctx, const lora_linear *l, float *d_in, float *d_tmp,
                               int d_tmp_holds, const float *dy, const float *in_drop,
                               const float *mid, int rows, int training, uint64_t seed,
                               uint64_t site);

/* adapter.c: the low-rank term of any adapter kind, and the per-forward
 * materialisation of the task-dependent kinds. y, base, dy: (rows, out);
 * x, dx: (rows, in); mid: (rows, r); base NULL adds into y; the per-path
 * kinds take path p's rows as the p-th of `paths` equal parts. */
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
/* dW (out, in) = the layer's total low-rank update for task t (path t). */
mt_status adapter_task_delta(mt_model *m, mt_ctx *ctx, const lora_linear *l, int t, float *dW);

/* decoder.c: task t's head on m->a.feat[t][*] -> m->a.dec[t].logits
 * (B, K, S, S); the backward reads dlogits and writes w.d_feat[t][*]
 * (ADDED to). */
mt_status decoder_forward(mt_ctx *ctx, mt_model *m, int t, int B, int training);
mt_status decoder_backward(mt_ctx *ctx, mt_model *m, int t, int B);
/* TRAIN.USE_CHECKPOINT: task t's training forward again up to its ReLU,
 * what the backward reads (its activations share one area with the other
 * tasks' and the blocks'; its logits are kept), leaving the batch-norm
 * running statistics as they were. */
mt_status decoder_recompute(mt_ctx *ctx, mt_model *m, int t, int B);

/* A LoRA linear's dropout input, n floats: dst = drop(src) when dropout is
 * active, a copy otherwise; nothing when dst == src (the *_drop view). */
mt_status lora_dropout_apply(mt_ctx *ctx, float *dst, const float *src, size_t n, float p,
                             int training, uint64_t seed, uint64_t site);
uint64_t model_site_seed(uint64_t seed, uint64_t site);

/* out = x + y, n floats (out may be x or y). */
void add_into(float *out, const float *x, const float *y, size_t n);

#endif
