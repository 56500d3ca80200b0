/* model.h - the MTLoRA multi-task Swin model (and its full fine-tuning
 * baseline) as the official scale-lab/MTLoRA code defines it:
 * SwinTransformerMTLoRA + per-task Downsampler + HighResolutionHead,
 * logits resized to the input size.
 *
 * Parameters live in the model's param_bank under the official state-dict
 * names ("backbone.layers.0.blocks.0.attn.qkv.lora_shared_A", ...), so the
 * trainable ones are one contiguous buffer and their gradients another. */
#ifndef MTLORA_MODEL_H
#define MTLORA_MODEL_H

#include <stdint.h>
#include "mtlora/config/config.h"
#include "mtlora/ops/context.h"
#include "mtlora/ops/bf16.h"
#include "mtlora/model/param_bank.h"
#include "mtlora/base/status.h"

typedef struct mt_model mt_model;

/* Targets of one batch at the input resolution S x S. NULL for a task
 * means that task has no target in this batch (its loss is skipped).
 *  semseg, human_parts: labels [B, S, S], 0..K-1, 255 ignored
 *  sal, edge:            [B, S, S] in {0, 1} (>= 0.5 is positive)
 *  normals:              [B, 3, S, S], 255 ignored */
typedef struct {
    const uint8_t *labels[6];
    const float *values[6];
} mt_targets;

/* Builds the model for a finalized config: registers every tensor under
 * its official name, allocates the bank and initialises as the official
 * code does (trunc-normal 0.02 linears, LayerNorm 1/0, LoRA A
 * kaiming-uniform a=sqrt(5), B zero, PyTorch's conv defaults), with our
 * own random stream from `seed`. */
mt_status mt_model_create(mt_model **out, mt_ctx *ctx, const mt_config *cfg, uint64_t seed);
void mt_model_destroy(mt_model *m);

const mt_config *mt_model_config(const mt_model *m);
param_bank *mt_model_bank(mt_model *m);

/* Forward on images [B, in_chans, S, S] (normalised). training != 0:
 * batch-norm batch statistics, dropout and drop path drawn from `seed`
 * (a pure function of seed, so a step is reproducible), and everything
 * the backward needs is kept. */
mt_status mt_model_forward(mt_model *m, mt_ctx *ctx, const float *images, int B, int training,
                           uint64_t seed);

/* Logits of task t from the last forward: [B, K_t, S, S]. */
const float *mt_model_logits(const mt_model *m, int t);

/* Bytes of the activation arena of the last forward's batch (0 before
 * one); TRAIN.USE_CHECKPOINT makes it smaller (recompute in the backward). */
size_t mt_model_activation_bytes(const mt_model *m);
/* A testing aid for TRAIN.USE_CHECKPOINT: with on, the backward fills the
 * shared recompute area with NaNs before each layer's recompute, so a
 * tensor that a layer's backward reads but neither kept nor recomputed
 * shows in its gradients instead of reading a stale value that happens to
 * be right. Off by default; it changes no number otherwise. */
void mt_model_poison_recompute(mt_model *m, int on);

/* The official weighted multi-task loss of the last forward; per-task
 * values in task_loss (may be NULL). With want_grad, the gradient with
 * respect to the logits is kept for mt_model_backward. */
mt_status mt_model_loss(mt_model *m, mt_ctx *ctx, const mt_targets *targets, double *total,
                        double *task_loss, int want_grad);

/* Backward of the last training forward and loss: ADDS the gradients of
 * every trainable tensor into the bank's gradient buffer (zero it first). */
mt_status mt_model_backward(mt_model *m, mt_ctx *ctx);

/* BatchNorm's num_batches_tracked (training forwards so far), kept by
 * checkpoints so a resumed run saves the same model file. */
int64_t mt_model_bn_tracked(const mt_model *m);
void mt_model_set_bn_tracked(mt_model *m, int64_t n);

/* During mt_model_backward, fn(user, offset, count) is called once per
 * trainable tensor as soon as its gradient is final (no later part of the
 * backward adds to it): decoders first, then stage by stage from the last,
 * then the patch embedding. (offset, count) index the gradient buffer. The
 * data-parallel trainer starts each bucket's allreduce from here. Between
 * blocks it is also called with count 0, a progress point (Open MPI moves
 * pending messages only inside MPI calls). NULL turns it off. */
typedef void (*mt_grad_ready_fn)(void *user, size_t offset, size_t count);
void mt_model_set_grad_ready(mt_model *m, mt_grad_ready_fn fn, void *user);

/* Makes the model read its frozen tensors from caller-owned memory of
 * bank->n_frozen floats (an MPI shared-memory window that all ranks of a
 * node map), copying the current values there when copy != 0; the model
 * stops owning that memory. */
mt_status mt_model_use_frozen(mt_model *m, mt_ctx *ctx, float *frozen, int copy);

/* ---- mixed precision (model_precision.c, docs/performance.md) ----------
 * With AMP_ENABLE and a bf16 matmul that is fast here (AMP.MATMUL auto) or
 * forced (AMP.MATMUL bf16), the frozen encoder weights get a bf16 copy and
 * their matmuls (forward and data gradient) run in bf16 with float32
 * accumulation; everything that trains stays float32. Decided once, at
 * mt_model_create. */
typedef struct {
    int bf16;         /* the frozen encoder's matmuls run in bf16 */
    char isa[64];     /* oneDNN's implementation of the model's matmuls */
    char note[320];   /* one line: what was asked, what runs, and why */
} mt_precision;
mt_precision mt_model_precision(const mt_model *m);

/* Values of the bf16 frozen copy (bank->n_frozen) when the model runs in
 * bf16, else 0. */
size_t mt_model_frozen_bf16_count(const mt_model *m);
/* Makes the model read its bf16 frozen weights from caller memory of
 * mt_model_frozen_bf16_count values (the node-shared window), converting
 * the float32 values into it when fill != 0. release_f32: then free the
 * float32 frozen copy where nothing needs it any more (every frozen tensor
 * is a bf16-run encoder weight or bias); *released says whether it did.
 * After that, saving or loading frozen tensors is refused. */
mt_status mt_model_use_frozen_bf16(mt_model *m, mt_ctx *ctx, mt_bf16 *buf, int fill,
                                   int release_f32, int *released);

/* 1 when the model reads f32 frozen values even in bf16 (some frozen
 * tensor is not a bf16-run base linear: decoders_only), or runs in f32. */
int mt_model_frozen_f32_needed(const mt_model *m);

/* Parameter counts by group. */
typedef struct {
    size_t total, trainable, frozen;
    size_t lora, decoder, patch_embed, norms, rel_bias, merging;
} mt_param_counts;
mt_param_counts mt_model_param_counts(const mt_model *m);

/* Analytic multiply-accumulate counts per image (2 FLOPs each): one
 * forward, and one training step (forward + backward of what trains). */
typedef struct {
    double forward_macs, train_macs;
} mt_flops;
mt_flops mt_model_flops(const mt_model *m);

/* ---- weights in safetensors (io/model_io.c) --------------------------
 * Saved: every parameter and buffer under its official state-dict name,
 * including BatchNorm running statistics and num_batches_tracked, the
 * relative_position_index and attn_mask buffers, so the file loads into the
 * official PyTorch model with strict=True. A path ending in ".pth" is
 * written in PyTorch's zip format instead, as {"model": state_dict} (what
 * torch.load(weights_only=True) and the official main.py --resume read);
 * mt_model_save_subset likewise. */
mt_status mt_model_save(mt_model *m, mt_ctx *ctx, const char *path);

typedef enum {
    MT_LOAD_CHECKPOINT, /* a whole-model file: every tensor must match */
    MT_LOAD_PRETRAINED, /* an ImageNet Swin file (plain names, with or without
                           "backbone."): initialises the encoder; LoRA,
                           decoders, norm.* and head.* are expected absent */
    MT_LOAD_NO_DECODERS, /* a whole-model file without its decoders, as the official
                            --skip_decoder: decoders.* in the file are skipped and the
                            model's keep their values; every other tensor must match */
    MT_LOAD_SUBSET      /* some of the model's tensors under their names (an
                           adapter file): each must exist with its shape,
                           the rest is left as it is */
} mt_load_mode;

/* Loads weights from safetensors or a PyTorch .pth (zip or legacy; the
 * dict under "model" or "state_dict", else the top level: weight_file.h).
 * MT_LOAD_PRETRAINED takes the Swin release's names, with or without
 * "backbone.", and timm's layout (downsample one stage later, head.fc):
 * plain Linear weights are renamed to ".linear." inside adapted layers, as
 * the official loader does; relative_position_index and attn_mask are
 * derived and skipped; head.* and norm.* are not used. Missing, unexpected
 * and wrongly shaped tensors are listed by name in the context's error
 * (a bias table of another window size says so), and nothing is
 * half-applied: the model is only changed when the whole file checks out. */
mt_status mt_model_load(mt_model *m, mt_ctx *ctx, const char *path, mt_load_mode mode);

/* As mt_model_load; on success note (if not NULL) says what was read: the
 * format, the key, the layout, the tensors not used and the file's other
 * top-level keys, e.g. "pth (zip), key 'model'; not used: head.weight,
 * head.bias; beside it in the file: optimizer (dict), epoch (int)". */
mt_status mt_model_load_report(mt_model *m, mt_ctx *ctx, const char *path, mt_load_mode mode, char *note,
                               size_t notelen);

/* Saves only the tensors for which keep(user, name) is non-zero (no derived
 * buffers); keep NULL: as mt_model_save. */
mt_status mt_model_save_subset(mt_model *m, mt_ctx *ctx, const char *path,
                               int (*keep)(void *user, const char *name), void *user);

/* ---- rules a configuration implies (src/model/model_rules.c) ---------- */

/* cgc_lora's expert rank at stage `stage` of a finalized config: all
 * experts of a layer together cost one rank-r LoRA, max(1, r / (S + T P)). */
int mt_model_cgc_expert_rank(const mt_config *cfg, int stage);

/* Turns cfg into the full fine-tuning baseline of the same model (plain
 * Swin, no adapters); finalize again before use. */
void mt_model_full_ft_config(mt_config *cfg);

/* ---- per-task merging (src/model_merge.c) -----------------------------
 * Task t's adapted weights fold into a plain model: every adapted linear
 * becomes W + dW_t (its whole low-rank update on path t), the rest is
 * copied, and only task t's head is kept. The plain model is a full
 * fine-tuning Swin (plain names) with the one task: its config comes from
 * mt_model_merged_config. MTLoRA's task paths cannot be folded (their
 * fc1/fc2 task terms apply the frozen weight to the shared activation and
 * the low-rank term to the task's); such models are refused. */
mt_status mt_model_merged_config(const mt_model *m, mt_ctx *ctx, int t, mt_config *out);
mt_status mt_model_merge_task(mt_model *m, mt_ctx *ctx, int t, mt_model *plain);

/* Writes the gradient of every trainable tensor under its official name. */
mt_status mt_model_save_grads(mt_model *m, mt_ctx *ctx, const char *path, double loss);

#endif
