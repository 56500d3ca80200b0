/* train_step.h - one optimizer update, the one the trainer, the benchmark
 * and the tests all run:
 *
 *   zero the gradient buffer
 *   for each of TRAIN.ACCUMULATION_STEPS micro-batches:
 *     batch (from the caller), forward (training), weighted multi-task loss,
 *     backward; during the last backward every gradient that is final is
 *     reported to the caller's hook (the data-parallel trainer starts each
 *     bucket's allreduce from there)
 *   wait for the reduction (hook), then the non-finite check (after the
 *   allreduce every rank holds the same gradients, so ranks agree without
 *   another message), clipping by global norm (TRAIN.CLIP_GRAD, as
 *   torch.nn.utils.clip_grad_norm_), the official LR schedule, AdamW.
 *
 * A non-finite gradient skips the update (no AdamW step, the moments and
 * the AdamW step count unchanged) and says so in the result; what to do
 * after many (RUN.MAX_BAD_STEPS) is the caller's policy. */
#ifndef MTLORA_TRAIN_STEP_H
#define MTLORA_TRAIN_STEP_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"
#include "mtlora/config/config.h"
#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/model/model.h"
#include "mtlora/train/adamw.h"
#include "mtlora/train/lr_schedule.h"
#include "mtlora/train/trace.h"

/* One micro-batch as the step consumes it. */
typedef struct {
    const float *images; /* (B, 3, S, S) normalised */
    mt_targets targets;  /* per task, at S x S (model.h) */
} train_batch;

/* Supplies micro-batch `micro` of update `update`. Called after the
 * gradient buffer has been zeroed (a fault-injection hook may poke it). The
 * pointers must stay valid until the next call. */
typedef mt_status (*train_batch_fn)(void *user, long update, int micro, train_batch *out,
                                    char *err, size_t errlen);

/* How gradients are reduced across ranks; all NULL in a single process. */
typedef struct {
    void (*begin)(void *user);      /* before the last micro-batch's backward */
    mt_grad_ready_fn ready;         /* during it, per final gradient range */
    /* after it: wait for every range and average; *exposed_s = time waited */
    mt_status (*finish)(void *user, double *exposed_s, char *err, size_t errlen);
    void *user;
} train_reduce_hooks;

/* The optimizer's state and settings; owned by the caller (train_state_init
 * allocates the buffers, train_state_free releases them). */
typedef struct {
    mt_model *model;
    mt_ctx *ctx;
    float *mom, *vel;       /* (n_trainable,) AdamW first and second moments */
    adamw_group *groups;    /* (ngroups,) weight-decay groups over the trainable buffer */
    int ngroups;
    adamw_config adam;      /* betas and eps from the config; lr set per update */
    lr_schedule sched;
    double clip_grad;       /* TRAIN.CLIP_GRAD: max global norm (<= 0: none) */
    int accumulation;       /* TRAIN.ACCUMULATION_STEPS */
    int batch;              /* B: images per micro-batch on this rank */
    uint64_t seed;          /* dropout / drop path stream of the run */
    uint64_t seed_offset;   /* added per rank, so ranks draw different masks */
    long adam_step;         /* AdamW updates applied so far (resume restores it) */
    train_reduce_hooks reduce;
    mt_trace *trace;        /* RUN.TIMELINE: spans of each micro-batch and the update (trace.h);
                               NULL: off. Set with train_state_set_trace */
    struct train_trace *tt; /* the backward's parts by gradient offset (train_step.c) */
} train_state;

/* What one update did. */
typedef struct {
    double loss[MT_MAX_TASKS + 1]; /* total, then per task: summed over micro-batches */
    int micro_batches;
    double lr;                     /* the LR of this update */
    double grad_norm;              /* global L2 norm before clipping (0 when skipped) */
    int finite;                    /* 0: non-finite gradient, update skipped */
    double data_s, exposed_comm_s; /* time waiting for batches / for the reduction */
} train_step_result;

/* Fills s for a model from a finalized config: AdamW groups with
 * TRAIN.WEIGHT_DECAY, zero moments, betas, eps, clipping, accumulation, the
 * schedule for `world` ranks and `updates_per_epoch`. No reduction hooks. */
mt_status train_state_init(train_state *s, mt_model *m, mt_ctx *ctx, const mt_config *cfg, int world,
                           long updates_per_epoch, char *err, size_t errlen);
void train_state_free(train_state *s);

/* Records the step's spans into t (NULL: off): data wait, forward, loss,
 * backward and its parts (decoders, each stage from the last, the
 * embedding: told apart by the grad-ready reports, which come part by
 * part), the allreduce wait, clipping, AdamW. Allocates the parts' table
 * here, never during a step. */
mt_status train_state_set_trace(train_state *s, mt_trace *t, char *err, size_t errlen);

/* Optimizer update number `update` (0-based: the LR schedule's position). */
mt_status train_step(train_state *s, long update, train_batch_fn next_batch, void *user,
                     train_step_result *r, char *err, size_t errlen);

/* A loader batch as the model's targets (the tasks of cfg). */
void train_targets_from_loader(const mt_config *cfg, const loader_batch *b, mt_targets *out);

/* Generated batches with every label valid (tests, benchmarks,
 * --synthetic-data): a pure function of (seed, global sample index), so N
 * ranks with batch b see exactly the samples one rank with batch N * b sees. */
typedef struct {
    int B, S;
    float *images, *sal, *normals, *edge; /* (B,3,S,S), (B,S,S), (B,3,S,S), (B,S,S) */
    uint8_t *semseg, *parts;              /* (B,S,S) 0..20, (B,S,S) 0..6 */
} synthetic_batch;

mt_status synthetic_batch_alloc(synthetic_batch *o, int B, int S, char *err, size_t errlen);
void synthetic_batch_free(synthetic_batch *o);
/* Fills samples first_sample .. first_sample + B - 1 and points tb at them. */
void synthetic_batch_fill(synthetic_batch *o, const mt_config *cfg, uint64_t seed, int64_t first_sample,
                          train_batch *tb);

#endif
