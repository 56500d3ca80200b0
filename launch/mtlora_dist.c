/* mtlora_dist - data-parallel MTLoRA training over MPI: the command line.
 *
 *   mpirun -np N mtlora_dist [--config FILE] [--tasks LIST] [--opts KEY VALUE ...]
 *                            [--data DIR | --synthetic-data] [--steps N] [--seed S]
 *                            [--save-trainable FILE] [--resume auto|never|FILE] [--start-over]
 *                            [--quiet]
 *
 * This file parses the flags, builds the configuration and hands the run to
 * trainer_run (mpi/trainer.c), where the set-up, the step loop (each update
 * is train_step() of src/train/), evaluation, checkpoints and reporting live.
 *
 * Exit status: 0 done, 1 runtime error, 2 usage or configuration error,
 * 3 stopped by SIGTERM / SIGUSR1 after a checkpoint. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/mpi/trainer.h"

#define ERRLEN 1024

typedef struct {
    const char *config, *tasks, *data, *save_trainable, *resume, *metrics_url, *pretrained;
    int synthetic, steps, quiet, seed_set, bench, start_over;
    char progress; /* 'b' bar, 'l' lines, 0 auto */
    long seed;
    int nopts, nflags;
    const char *opts[64][2];
    const char *flags[64][2]; /* the official flags as KEY VALUE, applied after opts */
} args;

/* Set by SIGTERM / SIGUSR1 (as SLURM sends before a time limit); the step
 * loop agrees on it across ranks (MAX allreduce) and checkpoints. */
static volatile sig_atomic_t stop_requested = 0;
static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mtlora_dist [--config FILE] [--tasks LIST] [--opts KEY VALUE ...]\n"
            "                   [--data SHARD_DIR | --synthetic-data] [--steps N] [--seed S]\n"
            "                   [--save-trainable FILE] [--resume auto|never|FILE] [--start-over] [--quiet]\n"
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
            "  --disable_amp     AMP_ENABLE False: every matmul in f32 (the official flag)\n"
            "  --use-checkpoint  TRAIN.USE_CHECKPOINT True: recompute each Swin block's\n"
            "                    activations in the backward (less memory, more time)\n"
            "  --resume auto     continue from the newest valid checkpoint in RUN.DIR; none there: start\n"
            "                    fresh, but when RUN.DIR holds checkpoint files and none can be used\n"
            "                    (corrupt, another configuration): stop, naming them (exit 1)\n"
            "  --resume never    start fresh whatever RUN.DIR holds (its checkpoints are left alone)\n"
            "  --resume FILE     continue from that checkpoint\n"
            "  --start-over      with --resume auto: when no checkpoint in RUN.DIR can be used, start a\n"
            "                    new run beside them instead of stopping (a later --resume auto\n"
            "                    continues the new run)\n"
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
        else if (!strcmp(s, "--start-over")) a->start_over = 1;
        else if (mt_config_flag_key(s, NULL) && a->nflags < 64) {
            a->flags[a->nflags][0] = mt_config_flag_key(s, &a->flags[a->nflags][1]);
            a->nflags++;
        }
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
            char err[256];
            if (mt_opts_collect(argc, argv, &i, a->opts, &a->nopts, 64, err, sizeof err)) {
                if (!rank) fprintf(stderr, "mtlora_dist: %s\n", err);
                return 2;
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
    if (a->start_over && a->resume && strcmp(a->resume, "auto") && strcmp(a->resume, "never")) {
        if (!rank) fprintf(stderr, "mtlora_dist: --start-over goes with --resume auto, not --resume %s\n", a->resume);
        return 2;
    }
    /* the trainer's resume mode for "auto, or a new run when nothing in
     * RUN.DIR can be used" (dist_checkpoint.c) */
    if (a->start_over && a->resume && !strcmp(a->resume, "auto")) a->resume = "auto-start-over";
    return 0;
}

static mt_status load_config(const args *a, mt_config *cfg, char *err, size_t errlen) {
    mt_status st = mt_config_start(cfg, a->config, err, errlen);
    if (!st && a->tasks) st = mt_config_set_tasks(cfg, a->tasks, err, errlen);
    for (int i = 0; !st && i < a->nopts; i++) st = mt_config_set(cfg, a->opts[i][0], a->opts[i][1], err, errlen);
    for (int i = 0; !st && i < a->nflags; i++)
        st = mt_config_set(cfg, a->flags[i][0], a->flags[i][1], err, errlen);
    if (!st && a->steps > 0) cfg->run.max_steps = a->steps;
    if (!st && a->seed_set) cfg->seed = (int)a->seed;
    if (!st && a->data) snprintf(cfg->data_path, sizeof cfg->data_path, "%s", a->data);
    if (!st && a->pretrained) snprintf(cfg->pretrained, sizeof cfg->pretrained, "%s", a->pretrained);
    if (!st) st = mt_config_finalize(cfg, err, errlen);
    return st;
}

int main(int argc, char **argv) {
    signal(SIGTERM, on_stop_signal);
    signal(SIGUSR1, on_stop_signal);
    /* A file-size limit (ulimit -f) must surface as a failed write, named by
     * the writer (EFBIG, as a full disk gives ENOSPC), not kill the rank. */
    signal(SIGXFSZ, SIG_IGN);
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "mtlora_dist: MPI_Init_thread failed\n");
        return 1;
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank); /* MPI_COMM_WORLD aborts on error until dist_init */
    args a;
    int rc = parse_args(argc, argv, &a, rank);
    if (rc) {
        MPI_Finalize();
        return rc == 3 ? 0 : rc;
    }
    mt_config *cfg = malloc(sizeof *cfg);
    char err[ERRLEN];
    if (!cfg || load_config(&a, cfg, err, sizeof err)) {
        if (!rank) fprintf(stderr, "mtlora_dist: %s\n", cfg ? err : "out of memory");
        free(cfg);
        MPI_Finalize();
        return 2;
    }
    dist_ctx d;
    if (dist_init(&d, err, sizeof err)) {
        fprintf(stderr, "mtlora_dist: rank %d: %s\n", rank, err);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const trainer_opts o = {a.resume, a.metrics_url, a.save_trainable, a.synthetic, a.steps == 0, a.quiet,
                            a.bench, a.progress, &stop_requested};
    rc = trainer_run(&d, cfg, &o);
    free(cfg);
    dist_free(&d);
    MPI_Finalize();
    return rc;
}
