/* checkpoint.h - training checkpoints of mtlora_dist: one safetensors file
 * per checkpoint, RUN.DIR/ckpt-<step, 8 digits>.safetensors, holding
 *   trainable  F32 [n_trainable]   the trainable values (bank order)
 *   adam_m, adam_v F32 [n_trainable] AdamW moments
 *   buffers    F32 [n_buffer]      batch-norm running statistics
 *   state      I64 [9]             step, epoch, batch (the next batch the
 *                                  loader delivers), adam_step, skipped,
 *                                  config hash, world size, format version,
 *                                  BatchNorm num_batches_tracked
 *   checksum   I64 [1]             FNV-1a 64 of all the bytes above
 * Random state needs no entry: every draw is a function of (seed, step).
 * Written atomically (st_write goes through atomic_file: a temporary
 * beside it, fsync, rename, fsync of RUN.DIR); the oldest beyond `keep`
 * are deleted. A file whose checksum, sizes or config hash do not match is
 * skipped by ckpt_load_latest, which falls back to the previous one. */
#ifndef MTLORA_CHECKPOINT_H
#define MTLORA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/model/param_bank.h"
#include "mtlora/base/status.h"

#define CKPT_VERSION 1

typedef struct {
    int64_t step, epoch, batch, adam_step, skipped;
    uint64_t config_hash;
    int64_t world, bn_tracked;
} ckpt_state;

/* Writes RUN.DIR/ckpt-<step>.safetensors (path returned in path_out). */
mt_status ckpt_write(const char *dir, const ckpt_state *s, const param_bank *bank, const float *m,
                     const float *v, int keep, char *path_out, size_t path_len, char *err,
                     size_t errlen);

/* Loads one file into bank->trainable, m, v, bank->buffers and *s after
 * checking sizes, checksum and config hash (expected_hash). On any failure
 * nothing has been changed. */
mt_status ckpt_load(const char *path, uint64_t expected_hash, ckpt_state *s, param_bank *bank,
                    float *m, float *v, char *err, size_t errlen);

/* The newest valid checkpoint of dir, skipping (and describing in `skipped`,
 * one line per file) those that fail; *found = 0 when there is none. */
mt_status ckpt_load_latest(const char *dir, uint64_t expected_hash, ckpt_state *s,
                           param_bank *bank, float *m, float *v, int *found, char *path_out,
                           size_t path_len, char *skipped, size_t skipped_len, char *err,
                           size_t errlen);

#endif
