/* adamw.h - AdamW exactly as torch.optim.AdamW (decoupled weight decay,
 * bias correction), over one flat parameter buffer split into groups that
 * differ only in weight decay (e.g. 0 for norms and biases). */
#ifndef MTLORA_ADAMW_H
#define MTLORA_ADAMW_H

#include <stddef.h>
#include "mtlora/ops/context.h"
#include "mtlora/base/status.h"
#include "mtlora/model/param_bank.h"

typedef struct {
    size_t offset, count; /* elements [offset, offset + count) of the buffer */
    float weight_decay;
} adamw_group;

typedef struct {
    float lr, beta1, beta2, eps; /* PyTorch defaults: beta 0.9/0.999, eps 1e-8 */
} adamw_config;

adamw_config adamw_defaults(float lr);

/* One update at step `step` (1 for the first). m and v are the moment
 * buffers (zero before the first step), same size as params. Groups must
 * lie inside [0, n) and not overlap; elements outside every group are not
 * touched. */
mt_status adamw_step(mt_ctx *ctx, float *params, const float *grads, float *m, float *v,
                     size_t n, const adamw_group *groups, int ngroups, adamw_config cfg,
                     long step);

/* AdamW groups over the trainable buffer: maximal runs of tensors with the
 * same decay flag, weight decay `wd` or 0, leaving out no_grad tensors.
 * Writes at most `max` groups and returns how many the bank needs (call
 * with max 0 to size the array). */
int param_bank_adamw_groups(const param_bank *bank, float wd, adamw_group *groups, int max);

#endif
