/* trainer.h - the data-parallel training run (mtlora_dist's library).
 *
 * Every rank builds the model; the frozen encoder weights are placed once
 * per node in an MPI shared-memory window; rank 0's trainable values are
 * broadcast and checked by hash on every rank. Each update is train_step()
 * (src/train/) with the gradient buckets as its reduction hooks: each
 * bucket's allreduce starts as soon as its gradients are final. Around the
 * steps: logging (rank 0, with compute / exposed communication / data wait
 * as min and max over ranks), the stop signal agreed across ranks,
 * checkpoints, evaluation at epoch ends, the final cross-rank check.
 *
 * Any rank's runtime error ends the job on every rank (MPI_Abort after a
 * message naming the rank and what failed), never a hang.
 *
 * --resume with a checkpoint written by another number of ranks (a
 * requeued job that got fewer or more nodes) keeps the global batch
 * (batch x ranks x accumulation of the run that started it): by the
 * accumulation where that divides, else by the per-rank batch, else it is
 * refused naming the numbers; the epoch continues where it stopped, each
 * update sees the same samples and the LR schedule is unchanged.
 * A training record that fails its checks is named (shard file, record)
 * and handled by RUN.BAD_RECORDS: stop (a checkpoint of the last completed
 * step, exit 1) or skip (replaced by the next record of the rank's order,
 * counted per epoch and in all).
 * Test hook: MTLORA_TRACE_RECORDS=FILE makes every rank append one line per
 * micro-batch ("step U micro M epoch E batch I records R...") to FILE.<rank>. */
#ifndef MTLORA_TRAINER_H
#define MTLORA_TRAINER_H

#include <signal.h>
#include "mtlora/config/config.h"
#include "mtlora/mpi/dist.h"

typedef struct {
    const char *resume;         /* "auto", "auto-start-over" (--resume auto --start-over), "never",
                                   a checkpoint file, or NULL */
    const char *metrics_url;    /* POST every record there (NULL: no) */
    const char *save_trainable; /* write the model at the end (NULL: no) */
    int synthetic;              /* generated batches instead of shards */
    int no_training;            /* --steps 0: evaluate or save only */
    int quiet;
    int bench;                  /* print the data-parallel costs at the end */
    char progress;              /* 'b' bar, 'l' lines, 0 auto */
    volatile sig_atomic_t *stop;/* set by SIGTERM / SIGUSR1; may be NULL */
    const char *weights;        /* the whole model's weights (MT_LOAD_CHECKPOINT), read by each
                                   node's first rank after MODEL.PRETRAINED (mtlora_dist --resume
                                   with a file that is not a checkpoint); NULL: none */
    int checkpoint_epochs;      /* also a checkpoint at the end of every N-th epoch (--ckpt-freq) */
    int weights_skip_decoders;  /* weights without their decoders (--skip_decoder: MT_LOAD_NO_DECODERS) */
} trainer_opts;

/* The whole run on this rank for a finalized config. Returns the exit
 * status: 0 done, 1 runtime error or a bad record under RUN.BAD_RECORDS
 * stop (after a checkpoint), 3 stopped by a signal after writing a
 * checkpoint on every rank. */
int trainer_run(dist_ctx *d, const mt_config *cfg, const trainer_opts *o);

#endif
