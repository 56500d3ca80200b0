/* checkpoint.h - training checkpoints of mtlora_dist: one safetensors file
 * per checkpoint, RUN.DIR/ckpt-<step, 8 digits>.safetensors, holding
 *   trainable  F32 [n_trainable]   the trainable values (bank order)
 *   adam_m, adam_v F32 [n_trainable] AdamW moments
 *   buffers    F32 [n_buffer]      batch-norm running statistics
 *   state      I64 [10]            step, epoch, batch (the next batch the
 *                                  loader delivers), adam_step, skipped,
 *                                  config hash, world size of the run's
 *                                  global batch (the world that started
 *                                  the run; kept across a resize), format version,
 *                                  BatchNorm num_batches_tracked, run start
 *   checksum   I64 [1]             FNV-1a 64 of the header (the JSON with
 *                                  __metadata__, every name, shape and
 *                                  offset) and of every data byte except
 *                                  the checksum's own eight
 * and __metadata__ format, version, layout and the run identity in words.
 * Random state needs no entry: every draw is a function of (seed, step).
 *
 * The run identity is (config hash, run start): the run start is the
 * wall-clock time (ns since 1970, UTC) the run first started, restored from
 * the checkpoint on resume, so a resumed run keeps it. Version 1 files (no
 * run start, a checksum of the tensor bytes only) still load, with identity
 * "unknown" (run_start 0); retention never deletes them.
 *
 * Written atomically: st_write to a staging name beside the target, the
 * checksum (which covers the header st_write produced) patched in and
 * fsynced, renamed to the final name, the directory fsynced, then read back
 * and checked. Retention (keep the newest `keep`) only deletes files that
 * validate, carry this run's identity and the name this writer gives; the
 * file just written always stays; anything else is left alone.
 *
 * On load every field of the state is range-checked, every float of
 * trainable, adam_m and buffers must be finite and adam_v finite and >= 0;
 * a file that is not a regular file is refused without being opened for a
 * blocking read. Each refusal names the file and the field or tensor. */
#ifndef MTLORA_CHECKPOINT_H
#define MTLORA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/model/param_bank.h"
#include "mtlora/base/status.h"

#define CKPT_VERSION 2
#define CKPT_PATH_LEN 4200
/* Sane bounds of the state (a value beyond is corruption or a hand edit). */
#define CKPT_MAX_STEP (INT64_C(1) << 40)
#define CKPT_MAX_WORLD (INT64_C(1) << 24)

typedef struct {
    int64_t step, epoch, batch, adam_step, skipped;
    uint64_t config_hash;
    int64_t world, bn_tracked;
    int64_t run_start; /* ns since 1970 UTC when the run first started; 0 unknown (version 1) */
    int64_t version;   /* of the file it was read from (ckpt_load, ckpt_check) */
} ckpt_state;

/* The wall clock in ns since 1970 (CLOCK_REALTIME): a new run's run_start. */
int64_t ckpt_now_ns(void);

/* Writes RUN.DIR/ckpt-<step>.safetensors (path returned in path_out), then
 * applies retention (above). Refused before anything is written: a state
 * that would not load back (out of range, run_start <= 0). On failure the
 * previous checkpoints are untouched and err names the file. */
mt_status ckpt_write(const char *dir, const ckpt_state *s, const param_bank *bank, const float *m,
                     const float *v, int keep, char *path_out, size_t path_len, char *err,
                     size_t errlen);

/* Checks one file as ckpt_load does (and its config hash against
 * expected_hash) without changing anything; the state read in *s. */
mt_status ckpt_check(const char *path, uint64_t expected_hash, const param_bank *bank, ckpt_state *s,
                     char *err, size_t errlen);

/* Loads one file into bank->trainable, m, v, bank->buffers and *s after
 * the checks above. On any failure nothing has been changed. */
mt_status ckpt_load(const char *path, uint64_t expected_hash, ckpt_state *s, param_bank *bank,
                    float *m, float *v, char *err, size_t errlen);

typedef struct {
    int found;                   /* 1: a checkpoint was loaded */
    int refused;                 /* files named ckpt-<step>.safetensors that could not be used */
    char path[CKPT_PATH_LEN];    /* the one loaded */
    char skipped[4096];          /* one line per refused file, newest first (cut at the size) */
} ckpt_scan;

/* The newest valid checkpoint of dir (by the step in the name), falling back
 * past those that fail. A missing or empty dir: found 0, MT_OK. Files named
 * like checkpoints but none usable: an error listing them (MT_ERR_FORMAT),
 * unless start_over, which allows starting fresh beside them (found 0). */
mt_status ckpt_load_latest(const char *dir, uint64_t expected_hash, int start_over, ckpt_state *s,
                           param_bank *bank, float *m, float *v, ckpt_scan *scan, char *err,
                           size_t errlen);

#endif
