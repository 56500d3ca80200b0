/* trainer.c - set-up, the step loop and the end of a data-parallel run
 * (trainer.h). Evaluation is in dist_eval.c, checkpoints and resume in
 * dist_checkpoint.c, reporting in dist_report.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/base/clock.h"
#include "mtlora/model/model.h"
#include "trainer_internal.h"

int trainer_fail(trainer *s, const char *msg) {
    fprintf(stderr, "mtlora_dist: rank %d: %s\n", s->d->rank, msg);
    fflush(stderr);
    /* One rank's runtime error ends the job on every rank, never a hang. */
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

int trainer_fail_mpi(trainer *s, int rc, const char *call) {
    char err[TRAINER_ERRLEN];
    dist_mpi_check(rc, call, err, sizeof err);
    return trainer_fail(s, err);
}

/* What a checkpoint must agree with: the model, tasks, data and
 * optimisation settings, not how long this invocation runs, how often it
 * logs, evaluates or checkpoints, or where the files are. */
static uint64_t training_hash(const mt_config *c) {
    mt_config k = *c;
    const int sync_bn = k.run.sync_bn, lr_scaling = k.run.lr_scaling;
    memset(&k.run, 0, sizeof k.run);
    k.run.sync_bn = sync_bn;
    k.run.lr_scaling = lr_scaling;
    memset(k.data_path, 0, sizeof k.data_path);
    return dist_hash(&k, sizeof k);
}

/* ------------------------------------------------------------ batches */

/* The records the loader replaced in lb (RUN.BAD_RECORDS): skip warns and
 * counts; stop names them and marks the step, whose update is then held
 * back on every rank (ready_hook) before the job stops (train). */
static void note_bad_records(trainer *s, long u, const loader_batch *lb) {
    for (const char *p = lb->bad_msg; p && *p;) {
        const char *nl = strchr(p, '\n');
        const int len = nl ? (int)(nl - p) : (int)strlen(p);
        if (s->skip_bad)
            fprintf(stderr, "mtlora_dist: rank %d: warning: %.*s: skipped, the next record of this rank's "
                            "order takes its place (RUN.BAD_RECORDS skip)\n", s->d->rank, len, p);
        else
            fprintf(stderr, "mtlora_dist: rank %d: %.*s: stopping after a checkpoint of step %ld "
                            "(RUN.BAD_RECORDS stop)\n", s->d->rank, len, p, u);
        p += len + (nl ? 1 : 0);
    }
    fflush(stderr);
    if (s->skip_bad) s->bad_epoch += lb->nbad;
    else s->bad_stop = 1;
}

/* MTLORA_TRACE_RECORDS test hook: one line per micro-batch. */
static void trace_batch(trainer *s, long u, int micro, const loader_batch *lb) {
    fprintf(s->trace, "step %ld micro %d epoch %lld batch %lld records", u, micro, (long long)lb->epoch,
            (long long)lb->index);
    for (int k = 0; k < lb->n; k++) fprintf(s->trace, " %lld", (long long)lb->records[k]);
    fputc('\n', s->trace);
}

/* train_batch_fn: the next loader batch, or this rank's synthetic one. */
static mt_status next_batch(void *user, long u, int micro, train_batch *tb, char *err, size_t errlen) {
    trainer *s = user;
    const mt_config *c = &s->cfg;
    param_bank *bank = mt_model_bank(s->m);
    /* test hook: the backward adds into the zeroed buffer, so the NaN
     * reaches the allreduce */
    if (micro == 0 && fault_pair("MTLORA_FAULT_NAN", s->d->rank, u)) bank->grads[0] = NAN;
    if (s->loader) {
        loader_batch *lb;
        mt_status st = loader_next(s->loader, &lb, err, errlen);
        if (st) return st;
        /* before the step's first forward changes them: a bad record
         * stops with the statistics of the step before */
        if (micro == 0 && s->buffers_before)
            memcpy(s->buffers_before, bank->buffers, sizeof(float) * bank->n_buffer);
        if (lb->nbad) note_bad_records(s, u, lb);
        if (s->trace) trace_batch(s, u, micro, lb);
        tb->images = lb->images;
        train_targets_from_loader(c, lb, &tb->targets);
        s->batch_epoch = (int)lb->epoch;
        /* the next batch the loader will deliver: the resume position, in
         * per-rank batches of the checkpoint's world (adapt_world) */
        int64_t next = lb->index + 1, epoch = lb->epoch;
        if (next == loader_batches_per_epoch(s->loader)) epoch++, next = 0;
        s->ck.epoch = epoch;
        s->ck.batch = next * s->pos_num / s->pos_den;
        return MT_OK;
    }
    const int B = c->batch_size;
    const int64_t global = ((int64_t)u * c->accumulation_steps + micro) * B * s->d->size + (int64_t)s->d->rank * B;
    synthetic_batch_fill(&s->own, c, (uint64_t)c->seed + 77, global, tb);
    return MT_OK;
}

/* The gradient buckets as train_step's reduction hooks. */
static void reduce_begin(void *user) { buckets_begin(((trainer *)user)->buckets); }

static void ready_hook(void *user, size_t offset, size_t count) {
    trainer *s = user;
    /* RUN.BAD_RECORDS stop: element 0's gradient is final here and its
     * bucket not started yet, so this NaN reaches every rank through the
     * allreduce and train_step skips the update everywhere; no message is
     * needed to agree before the update, and a clean step pays one test. */
    if (s->bad_stop && offset == 0 && count) mt_model_bank(s->m)->grads[0] = NAN;
    buckets_on_ready(s->buckets, offset, count);
}

static mt_status reduce_finish(void *user, double *exposed_s, char *err, size_t errlen) {
    trainer *s = user;
    const mt_status st = buckets_finish(s->buckets, exposed_s, err, errlen);
    if (st || s->grad_scale == 1.0f) return st;
    /* resumed on another world size with more micro-batches (adapt_world):
     * their gradients add up, so they are brought back to the sum over the
     * checkpoint world's micro-batches */
    param_bank *bank = mt_model_bank(s->m);
    for (size_t i = 0; i < bank->n_trainable; i++) bank->grads[i] *= s->grad_scale;
    return MT_OK;
}

/* ------------------------------------------------------------ the loop */

/* Once per update, on every rank: bit 0, a stop signal on some rank; bit
 * 1, a bad record on some rank under RUN.BAD_RECORDS stop. */
#define STOP_SIGNAL 1
#define STOP_BAD_RECORD 2
static int agree_stop(trainer *s, int *any) {
    int mine = (s->opts->stop && *s->opts->stop ? STOP_SIGNAL : 0) | (s->bad_stop ? STOP_BAD_RECORD : 0);
    const int rc = MPI_Allreduce(&mine, any, 1, MPI_INT, MPI_BOR, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Allreduce (stop signal)");
    return 0;
}

/* RUN.BAD_RECORDS skip: the records skipped since the last report, summed
 * over ranks (once per epoch and at the end, never per step), on rank 0's
 * stderr. `epoch` < 0: the final summary. */
static int report_bad_records(trainer *s, int epoch) {
    long mine[2] = {s->bad_epoch, s->bad_total + s->bad_epoch}, all[2];
    const int rc = MPI_Allreduce(mine, all, 2, MPI_LONG, MPI_SUM, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Allreduce (bad records)");
    s->bad_total += s->bad_epoch;
    s->bad_epoch = 0;
    if (s->d->rank) return 0;
    if (epoch >= 0 && all[0])
        fprintf(stderr, "mtlora_dist: training records that failed their checks, skipped in epoch %d: %ld "
                        "(RUN.BAD_RECORDS skip)\n", epoch, all[0]);
    if (epoch < 0)
        fprintf(stderr, "mtlora_dist: training records that failed their checks, skipped in this run: %ld "
                        "(RUN.BAD_RECORDS skip)\n", all[1]);
    fflush(stderr);
    return 0;
}

/* RUN.BAD_RECORDS stop: update u was held back on every rank (ready_hook),
 * so the state is that of step u - 1 but for the loader position and the
 * BatchNorm statistics of u's forwards, which are put back before the
 * checkpoint; a resume after the shard is repaired runs step u again. */
static int stop_on_bad_record(trainer *s, long u) {
    param_bank *bank = mt_model_bank(s->m);
    s->ck.epoch = s->step_epoch;
    s->ck.batch = s->step_batch;
    if (s->buffers_before) memcpy(bank->buffers, s->buffers_before, sizeof(float) * bank->n_buffer);
    mt_model_set_bn_tracked(s->m, s->ck.bn_tracked);
    const int saved = s->cfg.run.dir[0] && s->ck.step > 0;
    if (saved && trainer_checkpoint(s, "bad record")) return 1;
    if (s->d->rank == 0) {
        if (saved)
            fprintf(stderr, "mtlora_dist: step %ld: a training record failed its checks (named above): stopped "
                            "with a checkpoint of step %ld (RUN.BAD_RECORDS stop); repair or re-pack the shard, "
                            "then --resume auto\n", u, u);
        else
            fprintf(stderr, "mtlora_dist: step %ld: a training record failed its checks (named above): stopped "
                            "(RUN.BAD_RECORDS stop); %s\n", u,
                    s->ck.step > 0 ? "no checkpoint written: RUN.DIR is not set" : "nothing trained yet");
        fflush(stderr);
    }
    return 1;
}

/* After an update: the stop signal (any rank's stops every rank after the
 * same step, agreed by agree_stop), interval checkpoints, evaluation at the
 * ends of epochs. Returns 0 to go on, else the exit status. */
static int after_update(trainer *s, long u, long total, int epoch, int any_stop) {
    const mt_config *c = &s->cfg;
    /* the end of an epoch: RUN.BAD_RECORDS skip's count for it */
    if (s->loader && s->skip_bad && (u + 1) % s->per_epoch == 0 && report_bad_records(s, epoch)) return 1;
    if (any_stop & STOP_SIGNAL) {
        if (trainer_checkpoint(s, "stop signal")) return 1;
        if (s->d->rank == 0)
            fprintf(stderr, "mtlora_dist: stopped by signal after step %ld of %ld; continue with "
                            "--resume auto\n", u + 1, total);
        return 3;
    }
    /* RUN.CHECKPOINT_EVERY updates; --ckpt-freq N: the end of every N-th epoch */
    const int ce = s->opts->checkpoint_epochs;
    const int at_interval = c->run.checkpoint_every > 0 && (u + 1) % c->run.checkpoint_every == 0;
    const int at_epoch = s->loader && ce > 0 && (u + 1) % s->per_epoch == 0 && ((u + 1) / s->per_epoch) % ce == 0;
    if ((at_interval || at_epoch) && u + 1 < total && trainer_checkpoint(s, at_interval ? "interval" : "epoch"))
        return 1;
    /* RUN.EVAL_EVERY epochs: evaluate at the end of those epochs. */
    if (s->loader && c->run.eval_every > 0 && (u + 1) % s->per_epoch == 0 && u + 1 < total &&
        ((u + 1) / s->per_epoch) % c->run.eval_every == 0)
        return trainer_evaluate_traced(s, u + 1, epoch);
    return 0;
}

static int train(trainer *s) {
    const mt_config *c = &s->cfg;
    char err[TRAINER_ERRLEN];
    const int B = c->batch_size, acc = c->accumulation_steps;
    const long total = s->opts->no_training ? 0 /* --steps 0: evaluate or save only */
                       : c->run.max_steps > 0 ? c->run.max_steps
                                              : s->ts.sched.total_updates;
    const lr_schedule *sched = &s->ts.sched;
    if (s->d->rank == 0 && !s->opts->quiet)
        printf("training %ld updates (%ld per epoch), %d ranks on %d node(s), batch %d per rank "
               "(global %d), accumulation %d, LR %.3e (warmup %.3e, min %.3e), %d gradient buckets\n",
               total, s->per_epoch, s->d->size, s->d->nodes, B, B * s->d->size, acc, sched->base,
               sched->warmup, sched->min, buckets_count(s->buckets));
    double loss_sum[MT_MAX_TASKS + 1] = {0}, times[STEP_TIME_KINDS] = {0};
    int nsamples = 0, skipped = (int)s->ck.skipped, skipped_in_a_row = 0;
    const double t_start = mt_now_s();
    double t_window = t_start;
    const long u0 = (long)s->ck.step;
    long window_u = u0;
    s->ts.adam_step = (long)s->ck.adam_step;
    for (long u = u0; u < total; u++) {
        const double t_step = mt_now_s();
        mt_trace_step(s->ts.trace, u); /* RUN.TIMELINE: this update's spans */
        watchdog_mark(&s->wd, "training (forward, backward, gradient allreduce)");
        if (fault_pair("MTLORA_FAULT_HANG", s->d->rank, u))
            for (;;) pause(); /* test hook: a hung rank */
        int epoch = (int)(u / s->per_epoch);
        train_step_result r;
        s->step_epoch = s->ck.epoch;
        s->step_batch = s->ck.batch;
        if (train_step(&s->ts, u, next_batch, s, &r, err, sizeof err)) return trainer_fail(s, err);
        int any_stop;
        if (agree_stop(s, &any_stop)) return 1;
        if (any_stop & STOP_BAD_RECORD) return stop_on_bad_record(s, u);
        if (s->loader) epoch = s->batch_epoch;
        for (int k = 0; k <= c->ntasks; k++) loss_sum[k] += r.loss[k];
        nsamples += r.micro_batches;
        if (!r.finite) {
            skipped++;
            ++skipped_in_a_row;
            if (s->d->rank == 0)
                fprintf(stderr, "mtlora_dist: step %ld: non-finite loss or gradient, update skipped "
                                "(%d in a row)\n", u, skipped_in_a_row);
            if (skipped_in_a_row >= c->run.max_bad_steps) {
                snprintf(err, sizeof err, "%d non-finite steps in a row (RUN.MAX_BAD_STEPS): stopping",
                         skipped_in_a_row);
                return trainer_fail(s, err);
            }
        } else {
            skipped_in_a_row = 0;
        }
        const double t_end = mt_now_s();
        mt_trace_add(s->ts.trace, MT_SPAN_STEP, MT_TRACE_TID_MAIN, t_step, t_end, (int)u, r.finite);
        if (u > u0) { /* the first step builds primitives: not counted */
            s->sum_step += t_end - t_step;
            s->sum_comm += r.exposed_comm_s;
            s->sum_data += r.data_s;
            s->counted++;
        }
        times[TIME_STEP] += t_end - t_step;
        times[TIME_COMM_EXPOSED] += r.exposed_comm_s;
        times[TIME_DATA_WAIT] += r.data_s;
        times[TIME_COMPUTE] += (t_end - t_step) - r.exposed_comm_s - r.data_s;
        if ((u + 1) % c->run.log_every == 0 || u + 1 == total) {
            const long steps_in = u + 1 - window_u;
            for (int k = 0; k < STEP_TIME_KINDS; k++) times[k] /= (double)steps_in;
            const double imgs = (double)steps_in * acc * B * s->d->size / (t_end - t_window);
            if (log_step(&s->R, s->d, c, u + 1, total, epoch, r.lr, loss_sum, nsamples, times, imgs,
                         t_end - t_start, skipped, err, sizeof err))
                return trainer_fail(s, err);
            mt_trace_add(s->ts.trace, MT_SPAN_REPORT, MT_TRACE_TID_MAIN, t_end, mt_now_s(), 0, 0);
            memset(loss_sum, 0, sizeof loss_sum);
            memset(times, 0, sizeof times);
            nsamples = 0;
            t_window = t_end;
            window_u = u + 1;
        }
        s->steps_done = u + 1;
        s->epoch_done = epoch;
        s->ck.step = u + 1;
        s->ck.adam_step = s->ts.adam_step;
        s->ck.skipped = skipped;
        s->ck.bn_tracked = mt_model_bn_tracked(s->m);
        const int rc = after_update(s, u, total, epoch, any_stop);
        if (rc) {
            if (rc == 3 && s->loader && s->skip_bad && report_bad_records(s, -1)) return 1;
            return rc;
        }
    }
    if (s->loader && s->skip_bad && report_bad_records(s, -1)) return 1;
    return 0;
}

/* --bench: what data parallelism costs here. The hidden share compares the
 * exposed wait after the backward with the time the same buckets take when
 * nothing overlaps them (reduced back to back, median of 5). */
static int bench_report(trainer *s) {
    param_bank *bank = mt_model_bank(s->m);
    char err[TRAINER_ERRLEN];
    double t[5];
    for (int k = 0; k < 5; k++) {
        const int rc = MPI_Barrier(s->d->world);
        if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Barrier (bench)");
        const double t0 = mt_now_s();
        buckets_begin(s->buckets);
        if (buckets_finish(s->buckets, NULL, err, sizeof err)) return trainer_fail(s, err);
        t[k] = mt_now_s() - t0;
    }
    for (int i = 0; i < 5; i++) /* median of 5 */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) { const double x = t[i]; t[i] = t[j]; t[j] = x; }
    const double n = s->counted ? (double)s->counted : 1.0;
    double mine[4] = {s->sum_step / n, s->sum_comm / n, s->sum_data / n, t[2]}, worst[4];
    const int rc = MPI_Reduce(mine, worst, 4, MPI_DOUBLE, MPI_MAX, 0, s->d->sync);
    if (rc != MPI_SUCCESS) return trainer_fail_mpi(s, rc, "MPI_Reduce (bench times)");
    if (s->d->rank) return 0;
    mt_config full = s->cfg; /* the same model as the full fine-tuning baseline */
    mt_model_full_ft_config(&full);
    size_t full_trainable = 0;
    mt_model *fm;
    if (!mt_config_finalize(&full, err, sizeof err) && !mt_model_create(&fm, s->ctx, &full, 1)) {
        full_trainable = mt_model_param_counts(fm).trainable;
        mt_model_destroy(fm);
    }
    const double bytes = 4.0 * (double)bank->n_trainable;
    printf("bench: %d ranks, %d node(s), batch %d per rank, %ld steps timed (the first not counted)\n",
           s->d->size, s->d->nodes, s->cfg.batch_size, s->counted);
    printf("bench: allreduced per step %.0f bytes = 4 x %zu trainable (full fine-tuning: %.0f bytes, "
           "%.1fx more), %d buckets of %.1f MB\n",
           bytes, bank->n_trainable, 4.0 * (double)full_trainable,
           bytes > 0 ? 4.0 * (double)full_trainable / bytes : 0.0, buckets_count(s->buckets),
           s->cfg.run.bucket_mb);
    printf("bench: step %.3f s (slowest rank), exposed communication %.4f s = %.2f%% of a step, data "
           "wait %.4f s = %.2f%%\n",
           worst[0], worst[1], worst[0] > 0 ? 100.0 * worst[1] / worst[0] : 0.0, worst[2],
           worst[0] > 0 ? 100.0 * worst[2] / worst[0] : 0.0);
    printf("bench: the same allreduce without overlap %.4f s; hidden behind the backward %.1f%%\n",
           worst[3], worst[3] > 0 ? 100.0 * (1.0 - worst[1] / worst[3]) : 0.0);
    printf("bench: %.3f images/s (%.3f per rank)\n",
           worst[0] > 0 ? s->cfg.batch_size * s->d->size / worst[0] : 0.0,
           worst[0] > 0 ? s->cfg.batch_size / worst[0] : 0.0);
    printf("bench: precision: %s\n", mt_model_precision(s->m).note);
    printf("bench: node-shared frozen weights %.1f MB per node, %.1f MB per rank\n",
           1e-6 * (double)s->d->shared_bytes, 1e-6 * (double)s->d->shared_bytes / s->d->node_size);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------ set-up */

static void print_banner(trainer *s) {
    const mt_config *c = &s->cfg;
    const param_bank *bank = mt_model_bank(s->m);
    const char *slurm_job = getenv("SLURM_JOB_ID");
    if (s->d->rank == 0 && slurm_job)
        printf("mtlora_dist: SLURM job %s, %s tasks, rank 0 is SLURM task %s\n", slurm_job,
               getenv("SLURM_NTASKS") ? getenv("SLURM_NTASKS") : "?",
               getenv("SLURM_PROCID") ? getenv("SLURM_PROCID") : "?");
    if (s->d->rank || s->opts->quiet) return;
    printf("mtlora_dist: model %s, tasks", c->name);
    for (int t = 0; t < c->ntasks; t++) printf(" %s", c->tasks[t]);
    printf("; %zu trainable values (%.1f MB allreduced per step), frozen encoder %.1f MB per "
           "node in shared memory (%.1f MB per rank)\n",
           bank->n_trainable, 4e-6 * (double)bank->n_trainable, 1e-6 * (double)s->d->shared_bytes,
           1e-6 * (double)s->d->shared_bytes / s->d->node_size);
    printf("mtlora_dist: precision: %s\n", mt_model_precision(s->m).note);
}

/* --resume with a checkpoint of another world size W (a requeued job that
 * got fewer or more nodes). The global batch G = B x W x A of the config
 * (batch, accumulation) on W is kept: by the accumulation where A x W
 * divides by this world W' (A' = A W / W'), else by the per-rank batch
 * (B' = B W / W'), else refused. Each epoch then uses the same positions of
 * its permutation (whole updates only, shard_loader.h) and update u the
 * positions [u G, (u + 1) G) on any world, so with A' the same samples
 * (per-rank micro-batches of B); the LR schedule (scaled by G) and the
 * updates per epoch do not change. The position is converted through
 * samples: ck.batch per-rank batches of B on W are ck.batch B W samples,
 * which must be whole batches of B' on W'. Checkpoints keep W's units, so a
 * chain of resizes always converts from the first. */
static int adapt_world(trainer *s) {
    mt_config *c = &s->cfg;
    const long long W = s->ck.world, Wn = s->d->size, B = c->batch_size, A = c->accumulation_steps;
    if (W == Wn) return 0;
    char err[TRAINER_ERRLEN];
    if (W < 1 || W > (1 << 24)) {
        snprintf(err, sizeof err, "--resume: the checkpoint's world size %lld is out of range", W);
        return trainer_fail(s, err);
    }
    const long long G = B * W * A;
    long long Bn = B, An = A;
    if (A * W % Wn == 0) {
        An = A * W / Wn;
    } else if (B * W % Wn == 0) {
        Bn = B * W / Wn;
    } else {
        snprintf(err, sizeof err,
                 "--resume: the checkpoint's global batch %lld (DATA.BATCH_SIZE %lld x %lld ranks x "
                 "TRAIN.ACCUMULATION_STEPS %lld) cannot be kept on %lld ranks: neither %lld nor %lld "
                 "divides by %lld; resume on a number of ranks that divides %lld or %lld",
                 G, B, W, A, Wn, A * W, B * W, Wn, A * W, B * W);
        return trainer_fail(s, err);
    }
    const long long samples = (long long)s->ck.batch * B * W;
    if (samples % (Bn * Wn)) {
        snprintf(err, sizeof err,
                 "--resume: the checkpoint stopped %lld samples into epoch %lld (%lld batches of %lld on "
                 "%lld ranks), not a whole number of batches of %lld on %lld ranks: resume on %lld ranks",
                 samples, (long long)s->ck.epoch, (long long)s->ck.batch, B, W, Bn, Wn, W);
        return trainer_fail(s, err);
    }
    if (An > (1 << 20) || Bn > (1 << 20)) {
        snprintf(err, sizeof err, "--resume: %lld ranks would need batch %lld x accumulation %lld", Wn, Bn, An);
        return trainer_fail(s, err);
    }
    s->pos_num = Bn * Wn;
    s->pos_den = B * W;
    s->grad_scale = (float)A / (float)An;
    c->batch_size = (int)Bn;
    c->accumulation_steps = (int)An;
    s->ts.batch = (int)Bn;
    s->ts.accumulation = (int)An;
    if (s->d->rank == 0) {
        if (An != A)
            printf("mtlora_dist: resumed a %lld-rank checkpoint on %lld ranks: accumulation %lld -> %lld, "
                   "batch %lld per rank, global batch %lld kept (micro-batch gradients x %g, LR schedule "
                   "unchanged)\n", W, Wn, A, An, B, G, (double)s->grad_scale);
        else
            printf("mtlora_dist: resumed a %lld-rank checkpoint on %lld ranks: batch per rank %lld -> %lld, "
                   "accumulation %lld, global batch %lld kept (LR schedule unchanged; batch norm and the "
                   "per-batch loss means see other groups of samples)\n", W, Wn, B, Bn, A, G);
        fflush(stdout);
    }
    return 0;
}

/* RUN.BAD_RECORDS: the policy for the records the loader replaces. */
static int open_bad_record_policy(trainer *s) {
    const param_bank *bank = mt_model_bank(s->m);
    s->skip_bad = !strcmp(s->cfg.run.bad_records, "skip");
    if (s->skip_bad || !bank->n_buffer) return 0;
    s->buffers_before = malloc(sizeof(float) * bank->n_buffer);
    if (!s->buffers_before) return trainer_fail(s, "out of memory (RUN.BAD_RECORDS stop: BatchNorm statistics)");
    return 0;
}

/* MTLORA_TRACE_RECORDS=FILE (a test hook, docs/testing.md): every rank
 * appends the records of each micro-batch to FILE.<rank>. */
static int open_trace(trainer *s) {
    const char *path = getenv("MTLORA_TRACE_RECORDS");
    if (!path || !*path) return 0;
    char name[4200], err[TRAINER_ERRLEN];
    snprintf(name, sizeof name, "%s.%d", path, s->d->rank);
    s->trace = fopen(name, "a");
    if (s->trace) return 0;
    snprintf(err, sizeof err, "MTLORA_TRACE_RECORDS: cannot open %.900s", name);
    return trainer_fail(s, err);
}

static int set_up(trainer *s) {
    const mt_config *c = &s->cfg;
    const trainer_opts *o = s->opts;
    char err[TRAINER_ERRLEN];
    watchdog_start(&s->wd, s->d->rank, c->run.step_timeout);
    if (dist_check_same(s->d, dist_hash(c, sizeof *c), "configuration (config file, --opts, --tasks)", err,
                        sizeof err))
        return trainer_fail(s, err);
    if (trainer_build_model(s)) return 1;
    print_banner(s);
    param_bank *bank = mt_model_bank(s->m);
    if (c->run.sync_bn) mt_ctx_set_sync_sum(s->ctx, dist_sum_doubles, s->d);
    if (buckets_create(&s->buckets, s->d, bank->grads, bank->n_trainable, (size_t)(c->run.bucket_mb * 1048576.0),
                       err, sizeof err))
        return trainer_fail(s, err);
    /* the schedule is made again once the loader says how long an epoch is */
    if (train_state_init(&s->ts, s->m, s->ctx, c, s->d->size, 1, err, sizeof err)) return trainer_fail(s, err);
    s->ts.seed_offset = (uint64_t)s->d->rank;
    s->ts.reduce = (train_reduce_hooks){reduce_begin, ready_hook, reduce_finish, s};
    if (!o->synthetic && !c->data_path[0])
        return trainer_fail(s, "no data: give --data SHARD_DIR, DATA.DATA_PATH, or --synthetic-data");
    if (reporter_open(&s->R, c, s->d->rank, o->quiet, o->progress, o->metrics_url, err, sizeof err))
        return trainer_fail(s, err);
    s->config_hash = training_hash(c);
    s->ck.world = s->d->size;
    s->ck.config_hash = s->config_hash;
    s->pos_num = s->pos_den = 1;
    s->grad_scale = 1.0f;
    if (o->resume && trainer_resume(s, o->resume)) return 1;
    if (adapt_world(s)) return 1; /* may change the batch or the accumulation */
    if (o->synthetic && synthetic_batch_alloc(&s->own, c->batch_size, c->img_size, err, sizeof err))
        return trainer_fail(s, err);
    s->steps_done = (long)s->ck.step;
    if (!o->synthetic) {
        int tasks = 0;
        for (int t = 0; t < c->ntasks; t++) tasks |= 1 << (int)c->task_kind[t];
        /* whole updates per epoch (shard_loader.h); bad records replaced and
         * reported in the batch, the policy is next_batch's */
        loader_opts lo = {c->data_path, "train", tasks, s->d->rank, s->d->size, c->batch_size,
                          c->img_size, 1, (uint64_t)c->seed, 2, s->ck.epoch,
                          s->ck.batch * s->pos_den / s->pos_num};
        const loader_train_opts lt = {c->accumulation_steps, 1};
        if (loader_open_train(&s->loader, &lo, &lt, err, sizeof err)) return trainer_fail(s, err);
        if (open_bad_record_policy(s) || open_trace(s)) return 1;
    }
    /* synthetic: a nominal epoch of 100 updates for the schedule */
    s->per_epoch = s->loader ? loader_batches_per_epoch(s->loader) / c->accumulation_steps : 100;
    if (s->per_epoch < 1) return trainer_fail(s, "fewer batches per epoch than TRAIN.ACCUMULATION_STEPS");
    s->ts.sched = lr_schedule_make(c, s->d->size, s->per_epoch);
    return 0;
}

static int run(trainer *s) {
    char err[TRAINER_ERRLEN];
    const double t_setup = mt_now_s();
    if (set_up(s) || trainer_timeline_open(s, t_setup)) return 1;
    int rc = train(s);
    trainer_timeline_steps_done(s);
    /* Every rank must end with the same trainable values; a difference
     * would mean the ranks trained apart (a bug, or a broken network). */
    const param_bank *bank = mt_model_bank(s->m);
    if (!rc && dist_check_same(s->d, dist_hash(bank->trainable, sizeof(float) * bank->n_trainable),
                               "trainable values at the end of training", err, sizeof err))
        return trainer_fail(s, err);
    if (!rc && s->opts->bench) rc = bench_report(s);
    if (!rc && s->steps_done > 0 && trainer_checkpoint(s, "end")) rc = 1;
    if (!rc && s->loader) rc = trainer_share_buffers(s) || trainer_evaluate_traced(s, s->steps_done, s->epoch_done);
    if (!rc && s->opts->save_trainable && s->d->rank == 0 && mt_model_save(s->m, s->ctx, s->opts->save_trainable))
        return trainer_fail(s, mt_ctx_error(s->ctx));
    return rc;
}

int trainer_run(dist_ctx *d, const mt_config *cfg, const trainer_opts *o) {
    trainer *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "mtlora_dist: rank %d: out of memory\n", d->rank);
        return 1;
    }
    s->d = d;
    s->cfg = *cfg;
    s->opts = o;
    int rc = run(s);
    if (trainer_timeline_close(s)) rc = 1; /* the merged timeline (RUN.TIMELINE) */
    watchdog_stop(&s->wd);
    if (s->trace) fclose(s->trace);
    free(s->buffers_before);
    loader_close(s->loader);
    synthetic_batch_free(&s->own);
    buckets_free(s->buckets);
    reporter_close(&s->R);
    train_state_free(&s->ts);
    mt_model_destroy(s->m);
    mt_ctx_destroy(s->ctx);
    free(s);
    return rc;
}
