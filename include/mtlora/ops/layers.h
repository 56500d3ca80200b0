/* layers.h - the layer library: every op a _forward and a _backward.
 *
 * Conventions (the contract every layer keeps):
 *  - float32, row-major, PyTorch's layouts: linear weight [out, in]; images
 *    and feature maps NCHW; token sequences [B, L, C] (Swin's layout).
 *  - _forward overwrites its outputs.
 *  - _backward ADDS into every gradient it is given (dinp, dweight, dbias),
 *    as llm.c does, so residual branches and weights used twice need no
 *    extra buffers. Callers zero gradient buffers before a backward pass.
 *  - Any gradient pointer may be NULL: that gradient is not computed. A NULL
 *    dweight/dbias is how a frozen weight is handled (data gradient only).
 *  - Buffers "saved" by a forward (statistics, probabilities) are owned by
 *    the caller and passed back to the backward.
 *  - Errors: a NULL required buffer or dimensions that do not fit return
 *    MT_ERR_ARG / MT_ERR_SHAPE with a message naming the op and the shapes
 *    in mt_ctx_error(ctx). Nothing is asserted.
 */
#ifndef MTLORA_LAYERS_H
#define MTLORA_LAYERS_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/ops/context.h"
#include "mtlora/base/status.h"

/* ---- linear: out[rows, out_dim] = inp[rows, in_dim] W^T + b -------------
 * weight [out_dim, in_dim], bias [out_dim] or NULL; the backward's dout is
 * [rows, out_dim], dinp [rows, in_dim], dweight/dbias as weight/bias. */
mt_status linear_forward(mt_ctx *ctx, float *out, const float *inp,
                         const float *weight, const float *bias,
                         int rows, int in_dim, int out_dim);
mt_status linear_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int rows, int in_dim, int out_dim);

/* ---- low-rank update: y[rows, out] = base + scale * (x A^T) B^T -------
 * x [rows, in], base [rows, out] or NULL; A [r, in], B [out, r] as the
 * official lora_*_A / lora_*_B (dA, dB alike; dx as x, dy as y); mid
 * [rows, r] = x A^T is saved for the backward. The frozen base weight is a separate
 * linear call, so the same base output can be shared by several adapters:
 * base NULL adds into y, otherwise y = base + update in one pass. */
mt_status lora_delta_forward(mt_ctx *ctx, float *y, const float *base, float *mid,
                             const float *x, const float *A, const float *B, float scale,
                             int rows, int in_dim, int out_dim, int rank);
mt_status lora_delta_backward(mt_ctx *ctx, float *dx, float *dA, float *dB, const float *dy,
                              const float *x, const float *mid, const float *A, const float *B,
                              float scale, int rows, int in_dim, int out_dim, int rank);

/* ---- layer norm over the last axis, eps 1e-5 ----------------------------
 * inp, out (dinp, dout) [rows, channels]; weight, bias (dweight, dbias)
 * [channels]; mean/var ([rows]) are saved for the backward; pass NULL for
 * both in inference (no statistics kept). */
#define MT_LN_EPS 1e-5f
mt_status layernorm_forward(mt_ctx *ctx, float *out, float *mean, float *var,
                            const float *inp, const float *weight, const float *bias,
                            int rows, int channels);
mt_status layernorm_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *mean,
                             const float *var, const float *weight, const float *bias,
                             int rows, int channels);

/* ---- elementwise: GELU (exact erf form, nn.GELU()) and ReLU -------------
 * out, inp, dinp, dout: n floats each, of any shape. */
mt_status gelu_forward(mt_ctx *ctx, float *out, const float *inp, size_t n);
mt_status gelu_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *inp, size_t n);
mt_status relu_forward(mt_ctx *ctx, float *out, const float *inp, size_t n);
mt_status relu_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *inp, size_t n);

/* ---- softmax over the last axis: inp, out, dinp, dout [rows, cols] ------ */
mt_status softmax_forward(mt_ctx *ctx, float *out, const float *inp, int rows, int cols);
mt_status softmax_backward(mt_ctx *ctx, float *dinp, const float *dout, const float *out,
                           int rows, int cols);

/* ---- Swin window geometry (data movement, no arithmetic) ----------------
 * x is [B, H, W, C]; windows are [B * (H/ws) * (W/ws), ws*ws, C], ordered
 * as Swin's window_partition orders them. */
mt_status window_partition_forward(mt_ctx *ctx, float *windows, const float *x,
                                   int B, int H, int W, int C, int ws);
mt_status window_partition_backward(mt_ctx *ctx, float *dx, const float *dwindows,
                                    int B, int H, int W, int C, int ws);
mt_status window_reverse_forward(mt_ctx *ctx, float *x, const float *windows,
                                 int B, int H, int W, int C, int ws);
mt_status window_reverse_backward(mt_ctx *ctx, float *dwindows, const float *dx,
                                  int B, int H, int W, int C, int ws);
/* torch.roll(x, shifts=(sh, sw), dims=(1, 2)) on [B, H, W, C]; out (and
 * dx, dout) of the same shape, never aliasing the input. */
mt_status roll_forward(mt_ctx *ctx, float *out, const float *x,
                       int B, int H, int W, int C, int sh, int sw);
mt_status roll_backward(mt_ctx *ctx, float *dx, const float *dout,
                        int B, int H, int W, int C, int sh, int sw);
/* Shifted-window attention mask [nW, ws*ws, ws*ws]: 0 within a region,
 * -100 across regions, as Swin builds it for shift > 0. */
mt_status swin_attn_mask(mt_ctx *ctx, float *mask, int H, int W, int ws, int shift);
/* Swin's relative_position_index [ws*ws, ws*ws] into a [(2ws-1)^2] table. */
void swin_relative_position_index(int32_t *index, int ws);

/* ---- windowed multi-head self-attention core ----------------------------
 * qkv: [nwb, N, 3C], the output of the qkv linear (q, k, v blocks, each
 * head contiguous, as Swin's reshape(B_, N, 3, heads, C/heads)).
 * out: [nwb, N, C], the input of the proj linear.
 * probs: [nwb, heads, N, N], saved softmax output (needed by backward).
 * table: [(2ws-1)^2, heads] relative position bias; mask: [nW, N, N] or NULL
 * (window b uses mask[b % nW]); scale = head_dim^-0.5. N = ws*ws. The qkv and
 * proj linears are separate calls so that LoRA can wrap them. */
mt_status window_attention_forward(mt_ctx *ctx, float *out, float *probs,
                                   const float *qkv, const float *table,
                                   const float *mask, int nwb, int nw, int ws,
                                   int C, int heads);
mt_status window_attention_backward(mt_ctx *ctx, float *dqkv, float *dtable,
                                    const float *dout, const float *qkv,
                                    const float *probs, int nwb, int ws, int C, int heads);

/* ---- 2-D convolution, no padding (patch embedding 4x4/4, 1x1 heads) -----
 * inp NCHW [B, Cin, H, W]; weight [Cout, Cin, k, k]; bias [Cout] or NULL;
 * out [B, Cout, Ho, Wo] (NCHW) or, with out_nhwc, [B, Ho, Wo, Cout], the
 * token layout the patch embedding hands to Swin. */
mt_status conv2d_forward(mt_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int Cin, int H, int W, int Cout,
                         int k, int stride, int out_nhwc);
mt_status conv2d_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int B, int Cin, int H, int W, int Cout, int k, int stride,
                          int out_nhwc);

/* ---- patch embedding: conv k x k stride k, then layer norm --------------
 * img [B, Cin, H, W] -> out [B, (H/k)*(W/k), C]. Saved: conv_out (same
 * size as out), mean/var [B*(H/k)*(W/k)]. conv_w [C, Cin, k, k], conv_b,
 * ln_w, ln_b [C] (k = patch); dimg as img. */
typedef struct {
    const float *conv_w, *conv_b, *ln_w, *ln_b;
} patch_embed_weights;
typedef struct {
    float *conv_w, *conv_b, *ln_w, *ln_b; /* any may be NULL */
} patch_embed_grads;
mt_status patch_embed_forward(mt_ctx *ctx, float *out, float *conv_out, float *mean,
                              float *var, const float *img, patch_embed_weights w,
                              int B, int Cin, int H, int W, int C, int patch);
mt_status patch_embed_backward(mt_ctx *ctx, float *dimg, patch_embed_grads g,
                               const float *dout, const float *img, const float *conv_out,
                               const float *mean, const float *var, patch_embed_weights w,
                               int B, int Cin, int H, int W, int C, int patch);

/* ---- patch merging: 2x2 neighbours x0,x1,x2,x3 -> LN(4C) -> linear 4C->2C
 * x [B, H, W, C] -> out [B, (H/2)*(W/2), 2C]. The gather alone is exposed
 * too, because MTLoRA applies the same merging to several task tensors and
 * MTLoRA+ wraps the reduction in LoRA. Saved: gathered and normed
 * ([B*(H/2)*(W/2), 4C]) and mean/var ([B*(H/2)*(W/2)]). ln_w, ln_b [4C];
 * red_w [2C, 4C] (no bias). The gather's out is gathered's shape. */
mt_status patch_merge_gather_forward(mt_ctx *ctx, float *out, const float *x,
                                     int B, int H, int W, int C);
mt_status patch_merge_gather_backward(mt_ctx *ctx, float *dx, const float *dout,
                                      int B, int H, int W, int C);
mt_status patch_merging_forward(mt_ctx *ctx, float *out, float *gathered, float *normed,
                                float *mean, float *var, const float *x,
                                const float *ln_w, const float *ln_b, const float *red_w,
                                int B, int H, int W, int C);
mt_status patch_merging_backward(mt_ctx *ctx, float *dx, float *dln_w, float *dln_b,
                                 float *dred_w, const float *dout, const float *gathered,
                                 const float *normed, const float *mean, const float *var,
                                 const float *ln_w, const float *ln_b, const float *red_w,
                                 int B, int H, int W, int C);

/* ---- batch norm 2d on NCHW, eps 1e-5 ------------------------------------
 * inp, out (dinp, dout) [B, C, HW]; weight, bias, running_*, save_* [C].
 * training != 0: normalises with batch statistics, saves them in
 * save_mean/save_var ([C], biased variance) and updates running_mean/var
 * with `momentum` (PyTorch's 0.1) using the unbiased variance.
 * training == 0: normalises with running statistics (save_* unused). */
#define MT_BN_EPS 1e-5f
mt_status batchnorm_forward(mt_ctx *ctx, float *out, float *save_mean, float *save_var,
                            float *running_mean, float *running_var, const float *inp,
                            const float *weight, const float *bias, int B, int C, int HW,
                            int training, float momentum);
mt_status batchnorm_backward(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *save_mean,
                             const float *save_var, const float *weight, const float *bias,
                             int B, int C, int HW);

/* ---- bilinear resize, align_corners=False (F.interpolate) ---------------
 * inp (dinp) [B, C, Hi, Wi] -> out (dout) [B, C, Ho, Wo], NCHW. */
mt_status resize_bilinear_forward(mt_ctx *ctx, float *out, const float *inp, int B, int C,
                                  int Hi, int Wi, int Ho, int Wo);
mt_status resize_bilinear_backward(mt_ctx *ctx, float *dinp, const float *dout, int B, int C,
                                   int Hi, int Wi, int Ho, int Wo);

/* ---- dropout and drop path (stochastic depth) ---------------------------
 * The keep decision of element i is a pure function of (seed, offset + i)
 * (see rng.h), so the backward regenerates the mask instead of storing it
 * and a run is identical for any thread count. p is the drop probability;
 * kept values are scaled by 1/(1-p). drop_path drops whole samples:
 * inp [B, per_sample], sample b decided by (seed, offset + b). */
mt_status dropout_forward(mt_ctx *ctx, float *out, const float *inp, size_t n, float p,
                          uint64_t seed, uint64_t offset);
mt_status dropout_backward(mt_ctx *ctx, float *dinp, const float *dout, size_t n, float p,
                           uint64_t seed, uint64_t offset);
mt_status drop_path_forward(mt_ctx *ctx, float *out, const float *inp, int B,
                            size_t per_sample, float p, uint64_t seed, uint64_t offset);
mt_status drop_path_backward(mt_ctx *ctx, float *dinp, const float *dout, int B,
                             size_t per_sample, float p, uint64_t seed, uint64_t offset);


/* ---- building blocks for composite layers (the model's blocks) -------- */

/* dst (+)= src, element by element, where both are `ndims`-dimensional
 * views of shape `dims` with their own strides: a permuting copy on the
 * oneDNN reorder primitive (window partition, patch-merge gather). */
mt_status mt_reorder(mt_ctx *ctx, const char *what, float *dst, const int64_t *dst_strides,
                     const float *src, const int64_t *src_strides, int ndims,
                     const int64_t *dims, int accumulate);

/* dst[i] += src[i] for n floats (used where oneDNN overwrites a result that
 * our backward convention accumulates). */
void mt_add_inplace(float *dst, const float *src, size_t n);

/* memset(0) and memcpy for large float buffers, split over the OpenMP
 * threads (glibc's are single-threaded, and on two cores the other one
 * would wait). */
void mt_zero(float *dst, size_t n);
void mt_copy(float *dst, const float *src, size_t n);

/* C (+)= scale * A B on strided views, batched over two leading dims.
 * A is [b0, b1, m, k], B [b0, b1, k, n], C [b0, b1, m, n]; each given by its
 * base pointer and four strides (elements). With b0 == b1 == 1 a 2-D matmul
 * is built (the bias [n], if any, is only allowed there). accumulate adds to
 * C through a sum post-op. Shared by linear and window attention. */
mt_status mt_matmul(mt_ctx *ctx, const char *what, float *c, const int64_t cs[4],
                    const float *a, const int64_t as[4], const float *b, const int64_t bs[4],
                    const float *bias, int64_t b0, int64_t b1, int64_t m, int64_t k, int64_t n,
                    float scale, int accumulate);

/* Backward variants with the accumulation made explicit: accumulate = 0
 * overwrites the data gradient instead of adding to it, so a caller whose
 * buffer would otherwise be zeroed first saves two passes over it. The
 * public *_backward functions are these with accumulate = 1; every buffer
 * has the shape documented there. */
mt_status linear_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int rows,
                             int in_dim, int out_dim, int accumulate);
mt_status lora_delta_backward_ex(mt_ctx *ctx, float *dx, float *dA, float *dB, const float *dy,
                                 const float *x, const float *mid, const float *A, const float *B,
                                 float scale, int rows, int in_dim, int out_dim, int rank,
                                 int accumulate);
mt_status gelu_backward_ex(mt_ctx *ctx, float *dinp, const float *dout, const float *inp,
                           size_t n, int accumulate);
mt_status conv2d_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             int Cin, int H, int W, int Cout, int k, int stride, int out_nhwc,
                             int accumulate);
mt_status batchnorm_backward_ex(mt_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *save_mean,
                                const float *save_var, const float *weight, const float *bias,
                                int B, int C, int HW, int accumulate);
/* accumulate = 0 may run in place (dinp == dout). */
mt_status relu_backward_ex(mt_ctx *ctx, float *dinp, const float *dout, const float *inp,
                           size_t n, int accumulate);
mt_status window_attention_backward_ex(mt_ctx *ctx, float *dqkv, float *dtable, const float *dout,
                                       const float *qkv, const float *probs, int nwb, int ws,
                                       int C, int heads, int accumulate);
mt_status window_partition_backward_ex(mt_ctx *ctx, float *dx, const float *dwindows, int B,
                                       int H, int W, int C, int ws, int accumulate);
mt_status window_reverse_backward_ex(mt_ctx *ctx, float *dwindows, const float *dx, int B, int H,
                                     int W, int C, int ws, int accumulate);
mt_status roll_backward_ex(mt_ctx *ctx, float *dx, const float *dout, int B, int H, int W, int C,
                           int sh, int sw, int accumulate);

#endif
