/* loss.h - the per-task losses of the official MTLoRA code
 * (mtl_loss_schemes.py), each returning the loss value and ADDING
 * grad_scale * dloss/dlogits into dlogits (NULL: value only). grad_scale is
 * where the task's loss weight enters. Sums are taken in double over fixed
 * blocks, so the value does not depend on the thread count.
 *
 * Deliberate difference: when every pixel is ignored, PyTorch's NLLLoss
 * returns NaN; softmax_ce_loss returns 0 and no gradient, so one empty
 * label map cannot poison a training run. */
#ifndef MTLORA_LOSS_H
#define MTLORA_LOSS_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/ops/context.h"
#include "mtlora/base/status.h"

#define MT_IGNORE_LABEL 255

/* semseg / human_parts: log-softmax over K channels of logits [B, K, HW],
 * NLL against labels [B, HW] (0..K-1, 255 ignored), mean over valid pixels.
 * A label >= K that is not 255 is refused (MT_ERR_ARG). */
mt_status softmax_ce_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                          const uint8_t *labels, int B, int K, size_t HW, float grad_scale);

/* sal (and edge): balanced BCE with logits over n values; a label counts as
 * positive when >= 0.5. pos_weight < 0 selects the HED weighting from the
 * batch (w = #neg / #total, as for saliency); edge uses pos_weight 0.95.
 * loss = (w * sum_pos BCE + (1 - w) * sum_neg BCE) / n. */
mt_status balanced_bce_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                            const float *labels, size_t n, float pos_weight, float grad_scale);

/* normals: predictions [B, C, HW] L2-normalised over C (norm + 1e-12), L1
 * against labels [B, C, HW] where label != 255, summed and divided by the
 * number of valid elements (at least 1e-6). */
mt_status normals_loss(mt_ctx *ctx, double *loss, float *dlogits, const float *logits,
                       const float *labels, int B, int C, size_t HW, float grad_scale);

#endif
