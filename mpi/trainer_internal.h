/* trainer_internal.h - the run's state shared by trainer.c (set-up and the
 * loop), dist_eval.c (evaluation) and dist_checkpoint.c (checkpoints and
 * resume). mpi/ only. */
#ifndef MTLORA_TRAINER_INTERNAL_H
#define MTLORA_TRAINER_INTERNAL_H

#include <stdio.h>

#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/model/model.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/mpi/dist_report.h"
#include "mtlora/mpi/dist_watchdog.h"
#include "mtlora/mpi/trainer.h"
#include "mtlora/train/checkpoint.h"
#include "mtlora/train/train_step.h"

#define TRAINER_ERRLEN 1024

typedef struct {
    dist_ctx *d;
    mt_config cfg;
    const trainer_opts *opts;
    mt_ctx *ctx;
    mt_model *m;
    grad_buckets *buckets;
    shard_loader *loader;     /* NULL with synthetic batches */
    synthetic_batch own;      /* the synthetic batch of this rank */
    int batch_epoch;          /* epoch of the last loader batch */
    reporter R;
    train_state ts;           /* AdamW state, schedule, reduction hooks */
    long per_epoch;           /* optimizer updates per epoch */
    long steps_done;
    int epoch_done;
    double sum_step, sum_comm, sum_data; /* whole run, this rank (for --bench) */
    long counted;
    ckpt_state ck;            /* resume / checkpoint position; ck.world is the world size the
                               * run's global batch was set by (batch x world x accumulation of
                               * the config), ck.batch counts that world's per-rank batches */
    uint64_t config_hash;
    watchdog wd;
    /* Resumed on another number of ranks (trainer.c, adapt_world): the
     * loader's batch index times pos_num / pos_den is ck.batch; gradients
     * are multiplied by grad_scale (accumulation of the checkpoint's world
     * over this one's: micro-batch gradients add up, not average). 1, 1, 1
     * otherwise. */
    int64_t pos_num, pos_den;
    float grad_scale;
    /* RUN.BAD_RECORDS (loader records replaced by the loader, see
     * shard_loader.h): skip counts them, stop holds the update back (a NaN
     * through the allreduce, see ready_hook) and stops after a checkpoint of
     * the step before. */
    int skip_bad;             /* 1: skip, 0: stop */
    int bad_stop;             /* this rank met a bad record in this step (stop) */
    long bad_epoch, bad_total;/* records skipped this epoch / this invocation, this rank */
    int64_t step_epoch, step_batch; /* ck position at the start of the step */
    float *buffers_before;    /* BatchNorm running statistics at the start of the step (stop) */
    FILE *trace;              /* MTLORA_TRACE_RECORDS test hook: records per micro-batch */
} trainer;

/* Prints "mtlora_dist: rank R: msg" and ends the job on every rank. */
int trainer_fail(trainer *s, const char *msg);
/* As trainer_fail for a failed MPI call (code rc) named `call`. */
int trainer_fail_mpi(trainer *s, int rc, const char *call);
/* Creates the model on every rank and loads MODEL.PRETRAINED and
 * opts->weights (trainer_model.c); 0 ok, else the job is ended. */
int trainer_build_model(trainer *s);

/* BatchNorm running statistics from rank 0 (as DDP's broadcast_buffers). */
int trainer_share_buffers(trainer *s);
/* A checkpoint from rank 0 (RUN.DIR), every rank agreeing on success. */
int trainer_checkpoint(trainer *s, const char *why);
/* --resume auto|FILE: rank 0 reads, every rank receives. */
int trainer_resume(trainer *s, const char *what);
/* One distributed pass over the validation shards; rank 0 reports. */
int trainer_evaluate(trainer *s, long step, int epoch);

/* RUN.TIMELINE (dist_timeline.c): open after the set-up (t_setup: when it
 * began), the steps' end (then --bench, the final checkpoint and
 * evaluation), close at the end: rank 0 writes the merged file; a file
 * that cannot be written is reported once and changes nothing else. */
int trainer_timeline_open(trainer *s, double t_setup);
void trainer_timeline_steps_done(trainer *s);
int trainer_timeline_close(trainer *s);
/* trainer_evaluate as an "evaluation" span. */
int trainer_evaluate_traced(trainer *s, long step, int epoch);

#endif
