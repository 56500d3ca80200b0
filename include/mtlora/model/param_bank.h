/* param_bank.h - where a model's tensors live.
 *
 * Contiguous allocations, as in llm.c: trainable values, their gradients
 * (same layout, so the data-parallel allreduce is a few large calls over
 * one buffer), frozen values (which node-local ranks can share), and
 * buffers (state that changes but is not trained: batch-norm running
 * statistics). Each named tensor is a view (offset, count) into one.
 * Tensors are registered first, then the bank is allocated once; the
 * registration order is the memory order. */
#ifndef MTLORA_PARAM_BANK_H
#define MTLORA_PARAM_BANK_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/ops/context.h"
#include "mtlora/base/status.h"

#define MT_PARAM_NAME_LEN 128
#define MT_PARAM_MAX_DIMS 4

typedef enum { MT_PARAM_TRAINABLE, MT_PARAM_FROZEN, MT_PARAM_BUFFER } mt_param_kind;

typedef struct {
    char name[MT_PARAM_NAME_LEN];
    int ndim;
    int64_t shape[MT_PARAM_MAX_DIMS];
    size_t offset, count; /* into the allocation of its kind */
    mt_param_kind kind;
    int decay;            /* AdamW weight decay applies (0 for norms, biases) */
    int no_grad;          /* trainable but never reached by the loss: like a
                             PyTorch parameter whose grad stays None, the
                             optimizer leaves it alone */
} param_entry;

typedef struct {
    param_entry *entries;
    int count, cap;
    size_t n_trainable, n_frozen, n_buffer;
    float *trainable, *grads, *frozen, *buffers; /* NULL until param_bank_alloc */
    int frozen_external; /* frozen lives in caller memory (a shared window): not freed */
} param_bank;

void param_bank_init(param_bank *bank);
void param_bank_free(param_bank *bank);

/* Registers a tensor. Refused: empty or too long name, a name already
 * registered, a bad shape, or a bank already allocated. */
mt_status param_bank_add(mt_ctx *ctx, param_bank *bank, const char *name, int ndim,
                         const int64_t *shape, mt_param_kind kind, int decay);

/* Allocates the four buffers (64-byte aligned), all zeroed. */
mt_status param_bank_alloc(mt_ctx *ctx, param_bank *bank);

const param_entry *param_bank_find(const param_bank *bank, const char *name);
/* Value and gradient of a tensor (gradient NULL for frozen ones). */
float *param_bank_value(const param_bank *bank, const param_entry *e);
float *param_bank_grad(const param_bank *bank, const param_entry *e);

/* Marks a trainable tensor as never receiving a gradient. */
mt_status param_bank_set_no_grad(mt_ctx *ctx, param_bank *bank, const char *name);


#endif
