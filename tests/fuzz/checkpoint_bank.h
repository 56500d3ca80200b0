/* checkpoint_bank.h - the small parameter bank shared by fuzz_checkpoint
 * and seed_checkpoint, so that the seeds match the layout the target loads
 * into (and get past the size checks to the checksum and field checks). */
#ifndef MTLORA_FUZZ_CHECKPOINT_BANK_H
#define MTLORA_FUZZ_CHECKPOINT_BANK_H

#include <stdio.h>
#include <stdlib.h>
#include "mtlora/model/param_bank.h"

#define FUZZ_CKPT_HASH 0x0123456789abcdefULL

/* Two trainable tensors and two buffers; 0 on success. */
static inline int fuzz_checkpoint_bank(mt_ctx **ctx, param_bank *bank) {
    char err[256];
    if (mt_ctx_create(ctx, err, sizeof err)) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err);
        return 1;
    }
    param_bank_init(bank);
    const int64_t w[2] = {6, 5}, b[1] = {6};
    if (param_bank_add(*ctx, bank, "enc.weight", 2, w, MT_PARAM_TRAINABLE, 1) ||
        param_bank_add(*ctx, bank, "enc.bias", 1, b, MT_PARAM_TRAINABLE, 0) ||
        param_bank_add(*ctx, bank, "bn.running_mean", 1, b, MT_PARAM_BUFFER, 0) ||
        param_bank_add(*ctx, bank, "bn.running_var", 1, b, MT_PARAM_BUFFER, 0) ||
        param_bank_alloc(*ctx, bank)) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", mt_ctx_error(*ctx));
        return 1;
    }
    return 0;
}

#endif
