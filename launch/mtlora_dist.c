/* mtlora_dist - data-parallel MTLoRA training over MPI.
 *
 *   mpirun -np N mtlora_dist [--config FILE] [--tasks LIST] [--opts KEY VALUE ...]
 *                            [--data DIR | --synthetic-data] [--steps N] [--seed S]
 *                            [--save-trainable FILE] [--quiet]
 *
 * Every rank builds the model, the frozen encoder weights are placed once
 * per node in an MPI shared-memory window, rank 0's trainable values are
 * broadcast and checked by hash on every rank. Each step: a local batch
 * (from the rank's part of the shards, prepared by the loader's thread),
 * forward, weighted multi-task loss, backward during which each gradient
 * bucket's allreduce starts as soon as its gradients are final; then the
 * average, a non-finite check (all ranks see the same reduced gradients, so
 * they agree without another message), clipping by global norm, the
 * official LR schedule and AdamW. Rank 0 logs, with the step time split
 * into compute, exposed communication and data wait (min / max over ranks).
 *
 * Exit status: 0 done, 1 runtime error, 2 usage or configuration error. */
#include <math.h>
#include <mpi.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <signal.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mtlora/train/adamw.h"
#include "mtlora/train/checkpoint.h"
#include "mtlora/config/config.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/train/lr_schedule.h"
#include "mtlora/train/metrics.h"
#include "mtlora/io/metrics_post.h"
#include "mtlora/model/model.h"
#include "mtlora/model/param_bank.h"
#include "mtlora/base/rng.h"
#include "mtlora/io/shards/shard.h"
#include "mtlora/io/shards/shard_loader.h"

#include "mtlora/mpi/dist_report.h"
#include "mtlora/mpi/dist_watchdog.h"

#define ERRLEN 1024

typedef struct {
    const char *config, *tasks, *data, *save_trainable, *resume, *metrics_url, *pretrained;
    int synthetic, steps, quiet, seed_set, bench;
    char progress; /* 'b' bar, 'l' lines, 0 auto */
    long seed;
    int nopts;
    const char *opts[64][2];
} args;

/* Set by SIGTERM / SIGUSR1 (as SLURM sends before a time limit); the step
 * loop agrees on it across ranks (MAX allreduce) and checkpoints. */
static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mtlora_dist [--config FILE] [--tasks LIST] [--opts KEY VALUE ...]\n"
            "                   [--data SHARD_DIR | --synthetic-data] [--steps N] [--seed S]\n"
            "                   [--save-trainable FILE] [--resume auto|FILE] [--quiet]\n"
            "  --config          official-format YAML (default: the built-in Swin-T 448 MTLoRA)\n"
            "  --opts K V ...    override keys as the official main.py does (to the end of the line\n"
            "                    or the next --flag)\n"
            "  --data DIR        mtlora-pack output (default DATA.DATA_PATH)\n"
            "  --pretrained FILE ImageNet Swin weights, safetensors with plain Swin names\n"
            "                    (default MODEL.PRETRAINED); read once per node\n"
            "  --synthetic-data  generated batches with every label valid (tests, benchmarks)\n"
            "  --steps N         stop after N optimizer updates (RUN.MAX_STEPS); 0: no training\n"
            "  --save-trainable  write the model (safetensors, official names) at the end\n"
            "  --bench           after training, print bytes allreduced per step against full\n"
            "                    fine-tuning, the share of communication hidden behind the\n"
            "                    backward, and images/s\n"
            "  --progress MODE   bar (one updating line with ETA), lines, or auto (default: a bar\n"
            "                    when the output is a terminal)\n"
            "  --metrics-url URL also POST every record (JSON) there, from a background thread;\n"
            "                    a bearer token is read from MTLORA_METRICS_TOKEN\n"
            "  --resume auto     continue from the newest valid checkpoint in RUN.DIR (if any)\n"
            "  --resume FILE     continue from that checkpoint\n"
            "  SIGTERM / SIGUSR1: checkpoint at the end of the current step on every rank, exit 3\n");
}

/* 0 ok, 2 usage error (message printed by rank 0 only). */
static int parse_args(int argc, char **argv, args *a, int rank) {
    memset(a, 0, sizeof *a);
    a->steps = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(s, "--config") && has) a->config = argv[++i];
        else if (!strcmp(s, "--tasks") && has) a->tasks = argv[++i];
        else if (!strcmp(s, "--data") && has) a->data = argv[++i];
        else if (!strcmp(s, "--save-trainable") && has) a->save_trainable = argv[++i];
        else if (!strcmp(s, "--resume") && has) a->resume = argv[++i];
        else if (!strcmp(s, "--pretrained") && has) a->pretrained = argv[++i];
        else if (!strcmp(s, "--metrics-url") && has) a->metrics_url = argv[++i];
        else if (!strcmp(s, "--synthetic-data")) a->synthetic = 1;
        else if (!strcmp(s, "--quiet")) a->quiet = 1;
        else if (!strcmp(s, "--bench")) a->bench = 1;
        else if (!strcmp(s, "--progress") && has) {
            const char *v = argv[++i];
            if (strcmp(v, "bar") && strcmp(v, "lines") && strcmp(v, "auto")) {
                if (!rank) fprintf(stderr, "mtlora_dist: --progress: '%s' is not bar, lines or auto\n", v);
                return 2;
            }
            a->progress = v[0] == 'b' ? 'b' : v[0] == 'l' ? 'l' : 0;
        }
        else if ((!strcmp(s, "--steps") || !strcmp(s, "--seed")) && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000000) {
                if (!rank) fprintf(stderr, "mtlora_dist: %s: '%s' is not a non-negative integer\n", s, argv[i]);
                return 2;
            }
            if (s[3] == 't') a->steps = (int)v;
            else a->seed = v, a->seed_set = 1;
        } else if (!strcmp(s, "--opts")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (i + 2 >= argc || !strncmp(argv[i + 2], "--", 2)) {
                    if (!rank) fprintf(stderr, "mtlora_dist: --opts: key '%s' has no value\n", argv[i + 1]);
                    return 2;
                }
                if (a->nopts == 64) {
                    if (!rank) fprintf(stderr, "mtlora_dist: --opts: more than 64 keys\n");
                    return 2;
                }
                a->opts[a->nopts][0] = argv[i + 1];
                a->opts[a->nopts][1] = argv[i + 2];
                a->nopts++;
                i += 2;
            }
        } else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            if (!rank) usage(stdout);
            return 3;
        } else {
            if (!rank) {
                fprintf(stderr, "mtlora_dist: unknown or incomplete option '%s'\n", s);
                usage(stderr);
            }
            return 2;
        }
    }
    if (a->synthetic && a->data) {
        if (!rank) fprintf(stderr, "mtlora_dist: --data and --synthetic-data exclude each other\n");
        return 2;
    }
    return 0;
}

static mt_status load_config(const args *a, mt_config *cfg, char *err, size_t errlen) {
    mt_status st;
    if (a->config) {
        mt_config_default(cfg);
        st = mt_config_load(cfg, a->config, err, errlen);
    } else {
        st = mt_config_builtin(cfg, err, errlen);
    }
    if (!st && a->tasks) st = mt_config_set_tasks(cfg, a->tasks, err, errlen);
    for (int i = 0; !st && i < a->nopts; i++) st = mt_config_set(cfg, a->opts[i][0], a->opts[i][1], err, errlen);
    if (!st && a->steps > 0) cfg->run.max_steps = a->steps;
    if (!st && a->seed_set) cfg->seed = (int)a->seed;
    if (!st && a->data) snprintf(cfg->data_path, sizeof cfg->data_path, "%s", a->data);
    if (!st && a->pretrained) snprintf(cfg->pretrained, sizeof cfg->pretrained, "%s", a->pretrained);
    if (!st) st = mt_config_finalize(cfg, err, errlen);
    return st;
}

/* ------------------------------------------------------------ batches */

/* One rank's batch: from the loader, or generated (every label valid, a
 * pure function of the global sample index, so N ranks with batch b see
 * exactly the samples one rank with batch N * b sees). */
typedef struct {
    int B, S;
    float *images, *sal, *normals, *edge;
    uint8_t *semseg, *parts;
} owned_batch;

static int owned_alloc(owned_batch *o, int B, int S) {
    const size_t px = (size_t)B * S * S;
    o->B = B;
    o->S = S;
    o->images = malloc(sizeof(float) * 3 * px);
    o->normals = malloc(sizeof(float) * 3 * px);
    o->sal = malloc(sizeof(float) * px);
    o->edge = malloc(sizeof(float) * px);
    o->semseg = malloc(px);
    o->parts = malloc(px);
    return !o->images || !o->normals || !o->sal || !o->edge || !o->semseg || !o->parts;
}

static void owned_free(owned_batch *o) {
    free(o->images);
    free(o->normals);
    free(o->sal);
    free(o->edge);
    free(o->semseg);
    free(o->parts);
}

static void synthetic_fill(owned_batch *o, uint64_t seed, int64_t first_sample) {
    const size_t plane = (size_t)o->S * o->S;
    for (int k = 0; k < o->B; k++) {
        const uint64_t s = mt_rng_mix64(seed ^ mt_rng_mix64((uint64_t)(first_sample + k) + 1));
        for (size_t i = 0; i < 3 * plane; i++)
            o->images[(size_t)k * 3 * plane + i] = 2.0f * mt_rng_uniform(s, i) - 1.0f;
        for (size_t i = 0; i < plane; i++) {
            const uint64_t bits = mt_rng_bits(s + 1, i);
            o->semseg[(size_t)k * plane + i] = (uint8_t)(bits % 21);
            o->parts[(size_t)k * plane + i] = (uint8_t)((bits >> 8) % 7);
            o->sal[(size_t)k * plane + i] = (float)((bits >> 16) & 1);
            o->edge[(size_t)k * plane + i] = (float)((bits >> 17) & 1);
            float n[3];
            for (int c = 0; c < 3; c++) n[c] = 2.0f * mt_rng_uniform(s + 2 + (uint64_t)c, i) - 1.0f;
            const float len = sqrtf(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]) + 1e-6f;
            for (int c = 0; c < 3; c++)
                o->normals[(size_t)k * 3 * plane + (size_t)c * plane + i] = n[c] / len;
        }
    }
}

static void targets_from(const mt_config *c, mt_targets *tg, uint8_t *semseg, uint8_t *parts,
                         float *sal, float *normals, float *edge) {
    memset(tg, 0, sizeof *tg);
    for (int t = 0; t < c->ntasks; t++) switch (c->task_kind[t]) {
        case MT_TASK_SEMSEG: tg->labels[t] = semseg; break;
        case MT_TASK_HUMAN_PARTS: tg->labels[t] = parts; break;
        case MT_TASK_SAL: tg->values[t] = sal; break;
        case MT_TASK_NORMALS: tg->values[t] = normals; break;
        case MT_TASK_EDGE: tg->values[t] = edge; break;
        }
}

/* ------------------------------------------------------------ the run */

static int all_finite(const float *g, size_t n) {
    int ok = 1;
    #pragma omp parallel for reduction(&& : ok)
    for (size_t i = 0; i < n; i++) ok = ok && isfinite(g[i]);
    return ok;
}

/* torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when below 1. */
static double clip_by_global_norm(float *g, size_t n, double max_norm) {
    double ss = 0.0;
    #pragma omp parallel for reduction(+ : ss)
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    const double norm = sqrt(ss);
    if (max_norm > 0) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            const float k = (float)coef;
            #pragma omp parallel for
            for (size_t i = 0; i < n; i++) g[i] *= k;
        }
    }
    return norm;
}

typedef struct {
    dist_ctx d;
    mt_config cfg;
    mt_ctx *ctx;
    mt_model *m;
    grad_buckets *buckets;
    shard_loader *loader;
    owned_batch own;
    reporter R;
    float *mom, *vel;
    adamw_group *groups;
    int ngroups;
    long steps_done;
    int epoch_done;
    double sum_step, sum_comm, sum_data; /* whole run, this rank (for --bench) */
    long counted;
    /* resume / checkpoint position */
    ckpt_state ck;
    uint64_t config_hash;
    watchdog wd;
} run_state;

static int fail_all(run_state *s, const char *msg) {
    fprintf(stderr, "mtlora_dist: rank %d: %s\n", s->d.rank, msg);
    fflush(stderr);
    /* One rank's runtime error ends the job on every rank, never a hang. */
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
}

static int evaluate(run_state *s, long step, int epoch);

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

/* BatchNorm running statistics: with per-rank statistics each rank's differ;
 * as DDP (broadcast_buffers) rank 0's are the model's. */
static int share_buffers(run_state *s) {
    param_bank *bank = mt_model_bank(s->m);
    char err[ERRLEN];
    if (dist_bcast_floats(&s->d, bank->buffers, bank->n_buffer, err, sizeof err)) return fail_all(s, err);
    return 0;
}

static int write_checkpoint(run_state *s, const char *why) {
    if (!s->cfg.run.dir[0]) return 0;
    if (share_buffers(s)) return 1;
    int rc = 0;
    if (s->d.rank == 0) {
        char err[ERRLEN], path[4200];
        if (ckpt_write(s->cfg.run.dir, &s->ck, mt_model_bank(s->m), s->mom, s->vel,
                       s->cfg.run.keep_checkpoints, path, sizeof path, err, sizeof err))
            rc = 1, fprintf(stderr, "mtlora_dist: checkpoint: %s\n", err);
        else if (!s->R.quiet) {
            report_line_break(&s->R);
            printf("checkpoint (%s) after step %lld: %s\n", why, (long long)s->ck.step, path);
        }
        fflush(stdout);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, s->d.sync);
    if (rc) return fail_all(s, "writing the checkpoint failed");
    return 0;
}

/* --resume: rank 0 reads the checkpoint and every rank receives it, so no
 * shared file system is needed. */
static int resume(run_state *s, const char *what) {
    param_bank *bank = mt_model_bank(s->m);
    char err[ERRLEN] = "", path[4200] = "", skipped[4096] = "";
    int found = 0;
    if (s->d.rank == 0) {
        mt_status st;
        if (!strcmp(what, "auto"))
            st = ckpt_load_latest(s->cfg.run.dir, s->config_hash, &s->ck, bank, s->mom, s->vel, &found,
                                  path, sizeof path, skipped, sizeof skipped, err, sizeof err);
        else {
            st = ckpt_load(what, s->config_hash, &s->ck, bank, s->mom, s->vel, err, sizeof err);
            found = st ? -1 : 1;
            snprintf(path, sizeof path, "%s", what);
        }
        if (st) found = -1;
        if (skipped[0]) fprintf(stderr, "mtlora_dist: skipped checkpoints:\n%s", skipped);
        if (found < 0) fprintf(stderr, "mtlora_dist: --resume %s: %s\n", what, err);
        else if (!found && !s->R.quiet) printf("no checkpoint in %s: starting fresh\n", s->cfg.run.dir);
        else if (!s->R.quiet) printf("resuming from %s at step %lld\n", path, (long long)s->ck.step);
    }
    if (s->d.rank == 0 && found > 0 && s->ck.world != s->d.size) {
        fprintf(stderr, "mtlora_dist: --resume: %s was written by %lld ranks, this job has %d: "
                        "resume with the same number of ranks\n", path, (long long)s->ck.world, s->d.size);
        found = -1;
    }
    MPI_Bcast(&found, 1, MPI_INT, 0, s->d.sync);
    if (found < 0) return fail_all(s, "cannot resume");
    if (!found) return 0;
    int64_t st8[8] = {s->ck.step, s->ck.epoch, s->ck.batch, s->ck.adam_step, s->ck.skipped,
                      (int64_t)s->ck.config_hash, s->ck.world, s->ck.bn_tracked};
    MPI_Bcast(st8, 8, MPI_INT64_T, 0, s->d.sync);
    mt_model_set_bn_tracked(s->m, st8[7]);
    s->ck.step = st8[0];
    s->ck.epoch = st8[1];
    s->ck.batch = st8[2];
    s->ck.adam_step = st8[3];
    s->ck.skipped = st8[4];
    if (dist_bcast_floats(&s->d, bank->trainable, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(&s->d, s->mom, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(&s->d, s->vel, bank->n_trainable, err, sizeof err) ||
        dist_bcast_floats(&s->d, bank->buffers, bank->n_buffer, err, sizeof err))
        return fail_all(s, err);
    return 0;
}

static int train(run_state *s, const args *a) {
    mt_config *c = &s->cfg;
    char err[ERRLEN];
    param_bank *bank = mt_model_bank(s->m);
    const int B = c->batch_size, acc = c->accumulation_steps;
    long per_epoch;
    if (s->loader) per_epoch = loader_batches_per_epoch(s->loader) / acc;
    else per_epoch = 100; /* synthetic: a nominal epoch for the schedule */
    if (per_epoch < 1) return fail_all(s, "fewer batches per epoch than TRAIN.ACCUMULATION_STEPS");
    const lr_schedule sched = lr_schedule_make(c, s->d.size, per_epoch);
    const long total = a->steps == 0              ? 0 /* --steps 0: evaluate or save only */
                       : c->run.max_steps > 0 ? c->run.max_steps
                                              : sched.total_updates;
    adamw_config ac = adamw_defaults(0.0f);
    ac.beta1 = c->betas[0];
    ac.beta2 = c->betas[1];
    ac.eps = c->optimizer_eps;
    if (s->d.rank == 0 && !a->quiet)
        printf("training %ld updates (%ld per epoch), %d ranks on %d node(s), batch %d per rank "
               "(global %d), accumulation %d, LR %.3e (warmup %.3e, min %.3e), %d gradient buckets\n",
               total, per_epoch, s->d.size, s->d.nodes, B, B * s->d.size, acc, sched.base,
               sched.warmup, sched.min, buckets_count(s->buckets));
    double loss_sum[MT_MAX_TASKS + 1] = {0}, times[NT] = {0};
    int nsamples = 0, skipped = (int)s->ck.skipped, skipped_in_a_row = 0;
    const double t_start = now_s();
    double t_window = t_start;
    const long u0 = (long)s->ck.step;
    long adam_step = (long)s->ck.adam_step, window_u = u0;
    for (long u = u0; u < total; u++) {
        const double t_step = now_s();
        watchdog_mark(&s->wd, "training (forward, backward, gradient allreduce)");
        if (fault_pair("MTLORA_FAULT_HANG", s->d.rank, u))
            for (;;) pause(); /* test hook: a hung rank */
        double t_data = 0, t_comm = 0;
        memset(bank->grads, 0, sizeof(float) * bank->n_trainable);
        /* test hook: the backward adds into this, so the NaN reaches the allreduce */
        if (fault_pair("MTLORA_FAULT_NAN", s->d.rank, u)) bank->grads[0] = NAN;
        int epoch = (int)(u / per_epoch);
        for (int micro = 0; micro < acc; micro++) {
            const float *img;
            mt_targets tg;
            const double t0 = now_s();
            if (s->loader) {
                loader_batch *lb;
                if (loader_next(s->loader, &lb, err, sizeof err)) return fail_all(s, err);
                img = lb->images;
                targets_from(c, &tg, lb->semseg, lb->human_parts, lb->sal, lb->normals, lb->edge);
                epoch = (int)lb->epoch;
                /* the next batch the loader will deliver: the resume position */
                s->ck.epoch = lb->epoch;
                s->ck.batch = lb->index + 1;
                if (s->ck.batch == loader_batches_per_epoch(s->loader)) s->ck.epoch++, s->ck.batch = 0;
            } else {
                const int64_t global = ((int64_t)u * acc + micro) * B * s->d.size + (int64_t)s->d.rank * B;
                synthetic_fill(&s->own, (uint64_t)c->seed + 77, global);
                img = s->own.images;
                targets_from(c, &tg, s->own.semseg, s->own.parts, s->own.sal, s->own.normals, s->own.edge);
            }
            t_data += now_s() - t0;
            const uint64_t seed = mt_rng_mix64(((uint64_t)c->seed << 32) ^ (uint64_t)(u * acc + micro)) +
                                  (uint64_t)s->d.rank;
            double total_loss, task_loss[MT_MAX_TASKS];
            const int last = micro == acc - 1;
            if (last) buckets_begin(s->buckets);
            mt_model_set_grad_ready(s->m, last ? buckets_on_ready : NULL, s->buckets);
            if (mt_model_forward(s->m, s->ctx, img, B, 1, seed) ||
                mt_model_loss(s->m, s->ctx, &tg, &total_loss, task_loss, 1) ||
                mt_model_backward(s->m, s->ctx))
                return fail_all(s, mt_ctx_error(s->ctx));
            loss_sum[0] += total_loss;
            for (int t = 0; t < c->ntasks; t++) loss_sum[1 + t] += task_loss[t];
            nsamples++;
        }
        if (buckets_finish(s->buckets, &t_comm, err, sizeof err)) return fail_all(s, err);
        const double lr = lr_schedule_for_update(&sched, u);
        /* After the allreduce every rank holds the same gradients, so the
         * non-finite check needs no further message to agree. */
        if (!all_finite(bank->grads, bank->n_trainable)) {
            skipped++;
            if (s->d.rank == 0)
                fprintf(stderr, "mtlora_dist: step %ld: non-finite loss or gradient, update skipped "
                                "(%d in a row)\n", u, ++skipped_in_a_row);
            else
                ++skipped_in_a_row;
            if (skipped_in_a_row >= c->run.max_bad_steps) {
                snprintf(err, sizeof err, "%d non-finite steps in a row (RUN.MAX_BAD_STEPS): stopping",
                         skipped_in_a_row);
                return fail_all(s, err);
            }
        } else {
            skipped_in_a_row = 0;
            clip_by_global_norm(bank->grads, bank->n_trainable, c->clip_grad);
            ac.lr = (float)lr;
            if (adamw_step(s->ctx, bank->trainable, bank->grads, s->mom, s->vel, bank->n_trainable,
                           s->groups, s->ngroups, ac, ++adam_step))
                return fail_all(s, mt_ctx_error(s->ctx));
        }
        const double t_end = now_s();
        if (u > u0) { /* the first step builds primitives: not counted */
            s->sum_step += t_end - t_step;
            s->sum_comm += t_comm;
            s->sum_data += t_data;
            s->counted++;
        }
        times[T_STEP] += t_end - t_step;
        times[T_COMM] += t_comm;
        times[T_DATA] += t_data;
        times[T_COMPUTE] += (t_end - t_step) - t_comm - t_data;
        if ((u + 1) % c->run.log_every == 0 || u + 1 == total) {
            const long steps_in = u + 1 - window_u;
            for (int k = 0; k < NT; k++) times[k] /= (double)steps_in;
            const double imgs = (double)steps_in * acc * B * s->d.size / (t_end - t_window);
            log_step(&s->R, &s->d, c, u + 1, total, epoch, lr, loss_sum, nsamples, times, imgs,
                     t_end - t_start, skipped);
            memset(loss_sum, 0, sizeof loss_sum);
            memset(times, 0, sizeof times);
            nsamples = 0;
            t_window = t_end;
            window_u = u + 1;
        }
        s->steps_done = u + 1;
        s->epoch_done = epoch;
        s->ck.step = u + 1;
        s->ck.adam_step = adam_step;
        s->ck.skipped = skipped;
        s->ck.bn_tracked = mt_model_bn_tracked(s->m);
        /* A stop signal on any rank stops every rank after the same step. */
        int stop = stop_requested, any_stop = 0;
        MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, s->d.sync);
        if (any_stop) {
            if (write_checkpoint(s, "stop signal")) return 1;
            if (s->d.rank == 0)
                fprintf(stderr, "mtlora_dist: stopped by signal after step %ld of %ld; continue with "
                                "--resume auto\n", u + 1, total);
            return 3;
        }
        if (c->run.checkpoint_every > 0 && (u + 1) % c->run.checkpoint_every == 0 && u + 1 < total &&
            write_checkpoint(s, "interval"))
            return 1;
        /* RUN.EVAL_EVERY epochs: evaluate at the end of those epochs. */
        if (s->loader && c->run.eval_every > 0 && (u + 1) % per_epoch == 0 && u + 1 < total &&
            ((u + 1) / per_epoch) % c->run.eval_every == 0) {
            const int rc = evaluate(s, u + 1, epoch);
            if (rc) return rc;
        }
    }
    return 0;
}

/* A distributed pass over the validation shards: each rank evaluates its
 * part, the meters' states (sums) are added over ranks, rank 0 reports the
 * official scores and Delta_m. */
static int evaluate(run_state *s, long step, int epoch) {
    mt_config *c = &s->cfg;
    char err[ERRLEN];
    int tasks = 0;
    for (int t = 0; t < c->ntasks; t++) tasks |= 1 << (int)c->task_kind[t];
    loader_opts lo = {c->data_path, "val", tasks, s->d.rank, s->d.size, c->batch_size,
                      c->img_size, 0, (uint64_t)c->seed, 2, 0, 0};
    shard_loader *L;
    if (loader_open(&L, &lo, err, sizeof err)) return fail_all(s, err);
    metrics_meter *meter[MT_MAX_TASKS] = {0};
    for (int t = 0; t < c->ntasks; t++)
        if (metrics_create(&meter[t], c->task_kind[t])) return fail_all(s, "out of memory for meters");
    const double t0 = now_s();
    long images = 0;
    for (;;) {
        loader_batch *b;
        if (loader_next(L, &b, err, sizeof err)) return fail_all(s, err);
        if (!b) break;
        watchdog_mark(&s->wd, "evaluating");
        if (mt_model_forward(s->m, s->ctx, b->images, b->n, 0, 0))
            return fail_all(s, mt_ctx_error(s->ctx));
        for (int t = 0; t < c->ntasks; t++)
            if (metrics_update_batch(meter[t], mt_model_logits(s->m, t), c->num_outputs[t],
                                     c->img_size, b))
                return fail_all(s, metrics_error(meter[t]));
        images += b->n;
    }
    loader_close(L);
    long all_images = 0;
    MPI_Reduce(&images, &all_images, 1, MPI_LONG, MPI_SUM, 0, s->d.sync);
    double key[MT_MAX_TASKS], stl[MT_MAX_TASKS];
    int delta_ok = 1;
    for (int t = 0; t < c->ntasks; t++) {
        double *state;
        size_t n;
        metrics_state(meter[t], &state, &n);
        if (MPI_Allreduce(MPI_IN_PLACE, state, (int)n, MPI_DOUBLE, MPI_SUM, s->d.sync) != MPI_SUCCESS)
            return fail_all(s, "evaluation: reducing the metrics failed");
    }
    if (s->d.rank == 0) {
        char rec[4096], line[4096];
        size_t n = 0, ln = 0;
        appendf(rec, sizeof rec, &n, "{\"eval_step\": %ld, \"epoch\": %d, \"images\": %ld", step, epoch,
                all_images);
        appendf(line, sizeof line, &ln, "eval after step %ld (epoch %d), %ld images, %.1f s:", step, epoch,
                all_images, now_s() - t0);
        int header = s->R.eval_csv && ftell(s->R.eval_csv) == 0;
        if (header) fprintf(s->R.eval_csv, "eval_step,epoch,images");
        for (int t = 0; t < c->ntasks; t++) {
            metrics_scores sc;
            metrics_score(meter[t], &sc);
            for (int k = 0; k < sc.count; k++) {
                appendf(line, sizeof line, &ln, " %s %s %.4f", c->tasks[t], sc.name[k], sc.value[k]);
                appendf(rec, sizeof rec, &n, ", \"%s %s\": %.6f", c->tasks[t], sc.name[k], sc.value[k]);
                if (header) fprintf(s->R.eval_csv, ",%s %s", c->tasks[t], sc.name[k]);
            }
            const char *kname = metrics_delta_key(c->task_kind[t]);
            if (!kname || metrics_scores_get(&sc, kname, &key[t])) delta_ok = 0;
            if (c->run.n_stl) stl[t] = c->run.stl[t];
            else if (metrics_stl_baseline(c->task_kind[t], &stl[t])) delta_ok = 0;
        }
        double delta = NAN;
        if (delta_ok && !metrics_delta_m(&delta, c->ntasks, c->task_kind, key, stl)) {
            appendf(line, sizeof line, &ln, " | Delta_m %+.2f%%", 100.0 * delta);
            appendf(rec, sizeof rec, &n, ", \"delta_m\": %.6f", delta);
        }
        appendf(rec, sizeof rec, &n, "}");
        report_json(&s->R, rec);
        if (s->R.eval_csv) {
            if (header) fprintf(s->R.eval_csv, ",delta_m\n");
            fprintf(s->R.eval_csv, "%ld,%d,%ld", step, epoch, all_images);
            for (int t = 0; t < c->ntasks; t++) {
                metrics_scores sc;
                metrics_score(meter[t], &sc);
                for (int k = 0; k < sc.count; k++) fprintf(s->R.eval_csv, ",%.6f", sc.value[k]);
            }
            fprintf(s->R.eval_csv, ",%.6f\n", delta);
            fflush(s->R.eval_csv);
        }
        if (!s->R.quiet) {
            report_line_break(&s->R);
            printf("%s\n", line);
        }
        fflush(stdout);
    }
    for (int t = 0; t < c->ntasks; t++) metrics_destroy(meter[t]);
    return 0;
}

/* --bench: what data parallelism costs here. The hidden share compares the
 * exposed wait after the backward with the time the same buckets take when
 * nothing overlaps them (reduced back to back, median of 5). */
static int bench_report(run_state *s) {
    param_bank *bank = mt_model_bank(s->m);
    char err[ERRLEN];
    double t[5];
    for (int k = 0; k < 5; k++) {
        MPI_Barrier(s->d.world);
        const double t0 = now_s();
        buckets_begin(s->buckets);
        if (buckets_finish(s->buckets, NULL, err, sizeof err)) return fail_all(s, err);
        t[k] = now_s() - t0;
    }
    for (int i = 0; i < 5; i++) /* median of 5 */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) { const double x = t[i]; t[i] = t[j]; t[j] = x; }
    double mine[4] = {s->counted ? s->sum_step / s->counted : 0, s->counted ? s->sum_comm / s->counted : 0,
                      s->counted ? s->sum_data / s->counted : 0, t[2]}, worst[4];
    MPI_Reduce(mine, worst, 4, MPI_DOUBLE, MPI_MAX, 0, s->d.sync);
    if (s->d.rank) return 0;
    mt_config full = s->cfg; /* the same model as the full fine-tuning baseline */
    mt_config_use_full_ft(&full);
    size_t full_trainable = 0;
    mt_model *fm;
    if (!mt_config_finalize(&full, err, sizeof err) && !mt_model_create(&fm, s->ctx, &full, 1)) {
        full_trainable = mt_model_param_counts(fm).trainable;
        mt_model_destroy(fm);
    }
    const double bytes = 4.0 * (double)bank->n_trainable;
    printf("bench: %d ranks, %d node(s), batch %d per rank, %ld steps timed (the first not counted)\n",
           s->d.size, s->d.nodes, s->cfg.batch_size, s->counted);
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
    printf("bench: %.3f images/s\n", worst[0] > 0 ? s->cfg.batch_size * s->d.size / worst[0] : 0.0);
    fflush(stdout);
    return 0;
}

static int setup_and_train(run_state *s, const args *a) {
    char err[ERRLEN];
    mt_config *c = &s->cfg;
    watchdog_start(&s->wd, s->d.rank, c->run.step_timeout);
    if (dist_check_same(&s->d, dist_hash(c, sizeof *c), "configuration (config file, --opts, --tasks)",
                        err, sizeof err))
        return fail_all(s, err);
    if (mt_ctx_create(&s->ctx, err, sizeof err)) return fail_all(s, err);
    if (mt_model_create(&s->m, s->ctx, c, (uint64_t)c->seed)) return fail_all(s, mt_ctx_error(s->ctx));
    param_bank *bank = mt_model_bank(s->m);
    /* Pretrained encoder weights: read by each node's first rank only; the
     * frozen ones reach the node's ranks through the shared window, the
     * trainable ones (norms, patch embedding, ...) through the broadcast. */
    int load_rc = 0;
    if (c->pretrained[0] && s->d.node_rank == 0 &&
        mt_model_load(s->m, s->ctx, c->pretrained, MT_LOAD_PRETRAINED))
        load_rc = 1, fprintf(stderr, "mtlora_dist: rank %d: %s\n", s->d.rank, mt_ctx_error(s->ctx));
    int any_rc = 0;
    MPI_Allreduce(&load_rc, &any_rc, 1, MPI_INT, MPI_MAX, s->d.sync);
    if (any_rc) return fail_all(s, "cannot load the pretrained weights (MODEL.PRETRAINED / --pretrained)");
    if (c->pretrained[0] && s->d.rank == 0 && !a->quiet) printf("pretrained encoder weights: %s\n", c->pretrained);
    if (dist_share_frozen(&s->d, s->m, s->ctx, err, sizeof err)) return fail_all(s, err);
    if (dist_bcast_floats(&s->d, bank->trainable, bank->n_trainable, err, sizeof err))
        return fail_all(s, err);
    if (dist_check_same(&s->d, dist_hash(bank->trainable, sizeof(float) * bank->n_trainable),
                        "trainable values after broadcast", err, sizeof err))
        return fail_all(s, err);
    const char *slurm_job = getenv("SLURM_JOB_ID");
    if (s->d.rank == 0 && slurm_job)
        printf("mtlora_dist: SLURM job %s, %s tasks, rank 0 is SLURM task %s\n", slurm_job,
               getenv("SLURM_NTASKS") ? getenv("SLURM_NTASKS") : "?",
               getenv("SLURM_PROCID") ? getenv("SLURM_PROCID") : "?");
    if (s->d.rank == 0 && !a->quiet) {
        printf("mtlora_dist: model %s, tasks", c->name);
        for (int t = 0; t < c->ntasks; t++) printf(" %s", c->tasks[t]);
        printf("; %zu trainable values (%.1f MB allreduced per step), frozen encoder %.1f MB per "
               "node in shared memory (%.1f MB per rank)\n",
               bank->n_trainable, 4e-6 * (double)bank->n_trainable, 4e-6 * (double)bank->n_frozen,
               4e-6 * (double)bank->n_frozen / s->d.node_size);
    }
    if (c->run.sync_bn) mt_ctx_set_sync_sum(s->ctx, dist_sum_doubles, &s->d);
    if (buckets_create(&s->buckets, &s->d, bank->grads, bank->n_trainable,
                       (size_t)(c->run.bucket_mb * 1048576.0), err, sizeof err))
        return fail_all(s, err);
    s->ngroups = param_bank_adamw_groups(bank, c->weight_decay, NULL, 0);
    s->groups = malloc(sizeof(adamw_group) * (size_t)(s->ngroups > 0 ? s->ngroups : 1));
    s->mom = calloc(bank->n_trainable + 1, sizeof(float));
    s->vel = calloc(bank->n_trainable + 1, sizeof(float));
    if (!s->groups || !s->mom || !s->vel) return fail_all(s, "out of memory for the optimizer state");
    param_bank_adamw_groups(bank, c->weight_decay, s->groups, s->ngroups);
    if (a->synthetic) {
        if (owned_alloc(&s->own, c->batch_size, c->img_size)) return fail_all(s, "out of memory");
    } else if (!c->data_path[0]) {
        return fail_all(s, "no data: give --data SHARD_DIR, DATA.DATA_PATH, or --synthetic-data");
    }
    if (s->d.rank == 0 && c->run.dir[0]) {
        char path[1200];
        mkdir(c->run.dir, 0777);
        snprintf(path, sizeof path, "%s/metrics.jsonl", c->run.dir);
        s->R.jsonl = fopen(path, "a");
        if (!s->R.jsonl) return fail_all(s, "cannot open RUN.DIR/metrics.jsonl for appending");
        snprintf(path, sizeof path, "%s/metrics.csv", c->run.dir);
        s->R.csv = fopen(path, "a");
        snprintf(path, sizeof path, "%s/eval.csv", c->run.dir);
        s->R.eval_csv = fopen(path, "a");
        if (!s->R.csv || !s->R.eval_csv) return fail_all(s, "cannot open RUN.DIR/*.csv for appending");
        /* The effective configuration: saved, and printed once. */
        snprintf(path, sizeof path, "%s/config.yaml", c->run.dir);
        if (mt_config_write_yaml(c, path, err, sizeof err)) return fail_all(s, err);
        if (!a->quiet) {
            printf("effective configuration (saved as %s):\n", path);
            FILE *f = fopen(path, "r");
            char line[512];
            while (f && fgets(line, sizeof line, f))
                if (line[0] != '#') printf("  %s", line);
            if (f) fclose(f);
        }
    }
    if (s->d.rank == 0 && a->metrics_url &&
        metrics_post_start(&s->R.post, a->metrics_url, getenv("MTLORA_METRICS_TOKEN"), 5.0, 1000, err,
                           sizeof err))
        return fail_all(s, err);
    s->R.quiet = a->quiet;
    s->R.tty = a->progress == 'b' ? 1 : a->progress == 'l' ? 0 : terminal_output();
    s->config_hash = training_hash(c);
    s->ck.world = s->d.size;
    s->ck.config_hash = s->config_hash;
    if (a->resume && resume(s, a->resume)) return 1;
    s->steps_done = (long)s->ck.step;
    if (!a->synthetic) {
        int tasks = 0;
        for (int t = 0; t < c->ntasks; t++) tasks |= 1 << (int)c->task_kind[t];
        loader_opts lo = {c->data_path, "train", tasks, s->d.rank, s->d.size, c->batch_size,
                          c->img_size, 1, (uint64_t)c->seed, 2, s->ck.epoch, s->ck.batch};
        if (loader_open(&s->loader, &lo, err, sizeof err)) return fail_all(s, err);
    }
    int rc = train(s, a);
    /* Every rank must end with the same trainable values; a difference
     * would mean the ranks trained apart (a bug, or a broken network). */
    if (!rc && dist_check_same(&s->d, dist_hash(mt_model_bank(s->m)->trainable,
                                                sizeof(float) * mt_model_bank(s->m)->n_trainable),
                               "trainable values at the end of training", err, sizeof err))
        return fail_all(s, err);
    if (!rc && a->bench) rc = bench_report(s);
    if (!rc && s->steps_done > (long)0 && write_checkpoint(s, "end")) rc = 1;
    if (!rc && s->loader) rc = share_buffers(s) || evaluate(s, s->steps_done, s->epoch_done);
    if (!rc && a->save_trainable && s->d.rank == 0 && mt_model_save(s->m, s->ctx, a->save_trainable))
        return fail_all(s, mt_ctx_error(s->ctx));
    return rc;
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_stop_signal);
    signal(SIGUSR1, on_stop_signal);
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    args a;
    int rc = parse_args(argc, argv, &a, rank);
    if (rc) {
        MPI_Finalize();
        return rc == 3 ? 0 : rc;
    }
    run_state s;
    memset(&s, 0, sizeof s);
    char err[ERRLEN];
    if (load_config(&a, &s.cfg, err, sizeof err)) {
        if (!rank) fprintf(stderr, "mtlora_dist: %s\n", err);
        MPI_Finalize();
        return 2;
    }
    if (dist_init(&s.d, err, sizeof err)) {
        fprintf(stderr, "mtlora_dist: rank %d: %s\n", rank, err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    rc = setup_and_train(&s, &a);
    watchdog_stop(&s.wd);
    loader_close(s.loader);
    owned_free(&s.own);
    buckets_free(s.buckets);
    if (s.R.bar_open) putchar('\n');
    if (s.R.post) {
        metrics_post_stats ps = metrics_post_stop(s.R.post, 10.0);
        if (!a.quiet || ps.failed || ps.dropped)
            fprintf(ps.failed || ps.dropped ? stderr : stdout,
                    "metrics endpoint: %ld records posted, %ld failed, %ld dropped\n", ps.posted,
                    ps.failed, ps.dropped);
    }
    if (s.R.jsonl) fclose(s.R.jsonl);
    if (s.R.csv) fclose(s.R.csv);
    if (s.R.eval_csv) fclose(s.R.eval_csv);
    free(s.groups);
    free(s.mom);
    free(s.vel);
    mt_model_destroy(s.m);
    mt_ctx_destroy(s.ctx);
    dist_free(&s.d);
    MPI_Finalize();
    return rc;
}
