/* trainer_internal.h - the run's state shared by trainer.c (set-up and the
 * loop), dist_eval.c (evaluation) and dist_checkpoint.c (checkpoints and
 * resume). mpi/ only. */
#ifndef MTLORA_TRAINER_INTERNAL_H
#define MTLORA_TRAINER_INTERNAL_H

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
    ckpt_state ck;            /* resume / checkpoint position */
    uint64_t config_hash;
    watchdog wd;
} trainer;

/* Prints "mtlora_dist: rank R: msg" and ends the job on every rank. */
int trainer_fail(trainer *s, const char *msg);
/* As trainer_fail for a failed MPI call (code rc) named `call`. */
int trainer_fail_mpi(trainer *s, int rc, const char *call);

/* BatchNorm running statistics from rank 0 (as DDP's broadcast_buffers). */
int trainer_share_buffers(trainer *s);
/* A checkpoint from rank 0 (RUN.DIR), every rank agreeing on success. */
int trainer_checkpoint(trainer *s, const char *why);
/* --resume auto|FILE: rank 0 reads, every rank receives. */
int trainer_resume(trainer *s, const char *what);
/* One distributed pass over the validation shards; rank 0 reports. */
int trainer_evaluate(trainer *s, long step, int epoch);

#endif
