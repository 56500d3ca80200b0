/* mtlora_dist - data-parallel MTLoRA training over MPI: the command line.
 *
 *   mpirun -np N mtlora_dist [--config FILE] [--tasks LIST] [--opts KEY VALUE ...]
 *                            [--data DIR | --pascal PASCAL_MT | --synthetic-data] [--steps N] [--seed S]
 *                            [--save-trainable FILE] [--resume auto|never|FILE] [--start-over]
 *                            [--quiet] [the official main.py flags]
 *
 * This file parses the flags (mtlora_dist's own and every flag of the
 * official main.py, matched as argparse does: the table and the matching are
 * src/config/config_flags.c), builds the configuration, lets rank 0 decide
 * what --pascal and --resume FILE need (mpi/dist_cli.c) and hands the run
 * to trainer_run (mpi/trainer.c), where the set-up, the step loop (each
 * update is train_step() of src/train/), evaluation, checkpoints and
 * reporting live.
 *
 * Exit status: 0 done, 1 runtime error, 2 usage or configuration error,
 * 3 stopped by SIGTERM / SIGUSR1 after a checkpoint. */
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/mpi/dist.h"
#include "mtlora/mpi/dist_cli.h"
#include "mtlora/mpi/trainer.h"

#define ERRLEN 1024
#define MAX_PAIRS 64

typedef struct {
    const char *config, *tasks, *data, *save_trainable, *resume, *metrics_url, *timeline;
    /* the official flags the program acts on (docs/guide.md) */
    const char *pascal, *output, *tag, *pretrained_by;
    int synthetic, steps, quiet, seed_set, bench, start_over, eval, freeze_backbone, skip_decoder;
    int ckpt_freq; /* --ckpt-freq: epochs between checkpoints, 0: none */
    char progress; /* 'b' bar, 'l' lines, 0 auto */
    long seed;
    int nopts, nflags;
    const char *opts[MAX_PAIRS][2];
    /* the official flags that stand for a key, applied after --opts as update_config does */
    struct {
        const mt_official_flag *row;
        const char *value;
    } flags[MAX_PAIRS];
} args;

/* mtlora_dist's own flags, matched beside the official ones (config.h). */
static const mt_cli_flag OWN[] = {{"--config", 1},      {"--data", 1},       {"--synthetic-data", 0},
                                  {"--steps", 1},       {"--seed", 1},       {"--save-trainable", 1},
                                  {"--metrics-url", 1}, {"--quiet", 0},      {"--bench", 0},
                                  {"--start-over", 0},  {"--progress", 1},   {"--help", 0},
                                  {"--timeline", 1}};
#define NOWN ((int)(sizeof OWN / sizeof OWN[0]))

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
            "                   [--data SHARD_DIR | --pascal PASCAL_MT | --synthetic-data] [--steps N] [--seed S]\n"
            "                   [--save-trainable FILE] [--resume auto|never|FILE] [--start-over] [--quiet]\n"
            "                   [the official main.py flags: --cfg --batch-size --epochs --eval --output --tag ...]\n"
            "  --config, --cfg   official-format YAML (default: the built-in Swin-T 448 MTLoRA)\n"
            "  --opts K V ...    override keys as the official main.py does (to the end of the line\n"
            "                    or the next --flag)\n"
            "  --data DIR        mtlora-pack output (default DATA.DATA_PATH)\n"
            "  --pascal DIR      a PASCAL_MT directory, packed into shards once by mtlora-pack (a cache\n"
            "                    in DIR/.mtlora-cache or $MTLORA_CACHE, reused while DIR is unchanged)\n"
            "  --pretrained FILE ImageNet Swin weights: the Swin release's .pth, safetensors with its\n"
            "                    names, or timm's model.safetensors\n"
            "                    (default MODEL.PRETRAINED; --resume-backbone is the same); read once per node\n"
            "  --synthetic-data  generated batches with every label valid (tests, benchmarks)\n"
            "  --steps N         stop after N optimizer updates (RUN.MAX_STEPS); 0: no training\n"
            "  --eval            evaluate only (--steps 0); with --resume FILE, that model\n"
            "  --save-trainable  write the model (official names) at the end: safetensors, or a\n"
            "                    PyTorch .pth ({'model': state_dict}) when the name ends in .pth\n"
            "  --bench           after training, print bytes allreduced per step against full\n"
            "                    fine-tuning, the share of communication hidden behind the\n"
            "                    backward, and images/s\n"
            "  --progress MODE   bar (one updating line with ETA), lines, or auto (default: a bar\n"
            "                    when the output is a terminal)\n"
            "  --metrics-url URL also POST every record (JSON) there, from a background thread;\n"
            "                    a bearer token is read from MTLORA_METRICS_TOKEN\n"
            "  --timeline FILE   RUN.TIMELINE: every rank's spans of the last RUN.TIMELINE_STEPS\n"
            "                    updates as one Chrome trace-event JSON (Perfetto, chrome://tracing)\n"
            "  --disable_amp     AMP_ENABLE False: every matmul in f32 (the official flag)\n"
            "  --use-checkpoint  TRAIN.USE_CHECKPOINT True: recompute each Swin block's\n"
            "                    activations in the backward (less memory, more time)\n"
            "  --output D --tag T  RUN.DIR = D/MODEL.NAME/T (defaults output, default)\n"
            "  --resume auto     continue from the newest valid checkpoint in RUN.DIR; none there: start\n"
            "                    fresh, but when RUN.DIR holds checkpoint files and none can be used\n"
            "                    (corrupt, another configuration): stop, naming them (exit 1)\n"
            "  --resume never    start fresh whatever RUN.DIR holds (its checkpoints are left alone)\n"
            "  --resume FILE     continue from that checkpoint; a file that is not an mtlora checkpoint\n"
            "                    is loaded as the model's weights (then trained, or evaluated with --eval):\n"
            "                    safetensors, or a .pth such as an official MTLoRA checkpoint (its\n"
            "                    'model' key; --skip_decoder leaves the decoders out)\n"
            "  --start-over      with --resume auto: when no checkpoint in RUN.DIR can be used, start a\n"
            "                    new run beside them instead of stopping (a later --resume auto\n"
            "                    continues the new run)\n"
            "  every official main.py flag, '--flag=value' and unique prefixes: docs/guide.md\n"
            "  SIGTERM / SIGUSR1: checkpoint at the end of the current step on every rank, exit 3\n");
}

/* An integer argument in [lo, hi], else a usage error naming the flag. */
static int int_arg(const char *flag, const char *v, long lo, long hi, long *out, int rank) {
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        if (!rank) fprintf(stderr, "mtlora_dist: %s: '%s' is not an integer in %ld..%ld\n", flag, v, lo, hi);
        return 2;
    }
    *out = x;
    return 0;
}

static int usage_error(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(int rank, const char *fmt, ...) {
    if (!rank) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "mtlora_dist: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    return 2;
}

/* One matched flag. 0 ok, 2 usage error, 3 help. */
static int take(args *a, const mt_flag_match *m, int argc, char **argv, int *i, int rank) {
    const char *n = m->name, *v = m->value;
    long x;
    if (m->row && m->row->use == MT_FLAG_REFUSED) return usage_error(rank, "%s: %s", n, m->row->note);
    if (m->row && m->row->use == MT_FLAG_NO_EFFECT)
        return !strncmp(n, "--local", 7) ? int_arg(n, v, -1000000, 1000000, &x, rank) : 0;
    if (m->row && m->row->use == MT_FLAG_KEY) {
        if (a->nflags >= MAX_PAIRS) return usage_error(rank, "%s: more than %d key flags", n, MAX_PAIRS);
        if (!strcmp(m->row->key, "MODEL.PRETRAINED")) {
            if (a->pretrained_by && strcmp(a->pretrained_by, n))
                return usage_error(rank, "%s and %s both set MODEL.PRETRAINED: give one", a->pretrained_by, n);
            a->pretrained_by = n;
        }
        a->flags[a->nflags].row = m->row;
        a->flags[a->nflags++].value = v;
        return 0;
    }
    if (!strcmp(n, "--config") || !strcmp(n, "--cfg")) a->config = v;
    else if (!strcmp(n, "--tasks")) a->tasks = v;
    else if (!strcmp(n, "--data")) a->data = v;
    else if (!strcmp(n, "--pascal")) a->pascal = v;
    else if (!strcmp(n, "--save-trainable")) a->save_trainable = v;
    else if (!strcmp(n, "--resume")) a->resume = v;
    else if (!strcmp(n, "--output")) a->output = v;
    else if (!strcmp(n, "--tag")) a->tag = v;
    else if (!strcmp(n, "--metrics-url")) a->metrics_url = v;
    else if (!strcmp(n, "--timeline")) a->timeline = v;
    else if (!strcmp(n, "--synthetic-data")) a->synthetic = 1;
    else if (!strcmp(n, "--quiet")) a->quiet = 1;
    else if (!strcmp(n, "--bench")) a->bench = 1;
    else if (!strcmp(n, "--start-over")) a->start_over = 1;
    else if (!strcmp(n, "--eval")) a->eval = 1;
    else if (!strcmp(n, "--freeze-backbone")) a->freeze_backbone = 1;
    else if (!strcmp(n, "--skip_decoder")) a->skip_decoder = 1;
    else if (!strcmp(n, "--help")) {
        if (!rank) usage(stdout);
        return 3;
    } else if (!strcmp(n, "--progress")) {
        if (strcmp(v, "bar") && strcmp(v, "lines") && strcmp(v, "auto"))
            return usage_error(rank, "--progress: '%s' is not bar, lines or auto", v);
        a->progress = v[0] == 'b' ? 'b' : v[0] == 'l' ? 'l' : 0;
    } else if (!strcmp(n, "--steps") || !strcmp(n, "--seed")) {
        if (int_arg(n, v, 0, 1000000000, &x, rank)) return 2;
        if (n[3] == 't') a->steps = (int)x;
        else a->seed = x, a->seed_set = 1;
    } else if (!strcmp(n, "--ckpt-freq")) {
        if (int_arg(n, v, 0, 1000000, &x, rank)) return 2;
        a->ckpt_freq = x ? (int)x : 1; /* main.py: 0 leaves SAVE_FREQ at 1 */
    } else if (!strcmp(n, "--opts")) {
        char err[256];
        if (mt_opts_collect(argc, argv, i, a->opts, &a->nopts, MAX_PAIRS, err, sizeof err))
            return usage_error(rank, "%s", err);
    } else {
        return usage_error(rank, "%s: not handled (a bug)", n);
    }
    return 0;
}

/* The combinations that cannot mean anything. 0 ok, 2 usage error. */
static int check_args(args *a, int rank) {
    const int resume_file = a->resume && strcmp(a->resume, "auto") && strcmp(a->resume, "never");
    if (a->synthetic + !!a->data + !!a->pascal > 1)
        return usage_error(rank, "--data, --pascal and --synthetic-data exclude each other");
    if (a->start_over && resume_file)
        return usage_error(rank, "--start-over goes with --resume auto, not --resume %s", a->resume);
    if (a->eval && a->steps > 0) return usage_error(rank, "--eval trains nothing: not with --steps %d", a->steps);
    if (a->eval && a->synthetic)
        return usage_error(rank, "--eval scores the validation split: give --pascal DIR or --data DIR");
    /* the trainer's resume mode for "auto, or a new run when nothing in
     * RUN.DIR can be used" (dist_checkpoint.c) */
    if (a->start_over && a->resume && !strcmp(a->resume, "auto")) a->resume = "auto-start-over";
    if (a->eval) a->steps = 0;
    return 0;
}

/* 0 ok, 2 usage error (message printed by rank 0 only), 3 help. */
static int parse_args(int argc, char **argv, args *a, int rank) {
    memset(a, 0, sizeof *a);
    a->steps = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h")) {
            if (!rank) usage(stdout);
            return 3;
        }
        mt_flag_match m;
        char err[768];
        if (mt_flag_next(argc, argv, &i, OWN, NOWN, &m, err, sizeof err)) {
            if (!rank) {
                fprintf(stderr, "mtlora_dist: %s\n", err);
                usage(stderr);
            }
            return 2;
        }
        const int rc = take(a, &m, argc, argv, &i, rank);
        if (rc) return rc;
    }
    return check_args(a, rank);
}

static mt_status load_config(const args *a, mt_config *cfg, char *err, size_t errlen) {
    mt_status st = mt_config_start(cfg, a->config, err, errlen);
    for (int i = 0; !st && i < a->nopts; i++) st = mt_config_set(cfg, a->opts[i][0], a->opts[i][1], err, errlen);
    for (int i = 0; !st && i < a->nflags; i++)
        st = mt_config_set_flag(cfg, a->flags[i].row, a->flags[i].value, err, errlen);
    /* main.py: --tasks after --opts */
    if (!st && a->tasks) st = mt_config_set_tasks(cfg, a->tasks, err, errlen);
    if (!st && a->freeze_backbone) {
        if (cfg->mtlora.enabled)
            return mt_errf(err, errlen, MT_ERR_ARG, "--freeze-backbone with MODEL.MTLORA.ENABLED True: "
                                                    "main.py asserts MTLoRA is off with it");
        st = mt_config_set(cfg, "MODEL.ADAPTER.KIND", "decoders_only", err, errlen);
    }
    if (!st && a->steps > 0) cfg->run.max_steps = a->steps;
    if (!st && a->seed_set) cfg->seed = (int)a->seed;
    if (!st && a->timeline) st = mt_config_set(cfg, "RUN.TIMELINE", a->timeline, err, errlen);
    if (!st && a->data) snprintf(cfg->data_path, sizeof cfg->data_path, "%s", a->data);
    /* main.py's OUTPUT: <--output>/<MODEL.NAME>/<--tag> */
    if (!st && (a->output || a->tag) &&
        snprintf(cfg->run.dir, sizeof cfg->run.dir, "%s/%s/%s", a->output ? a->output : "output", cfg->name,
                 a->tag ? a->tag : "default") >= (int)sizeof cfg->run.dir)
        return mt_errf(err, errlen, MT_ERR_ARG, "--output/--tag: the run directory is too long");
    if (!st) st = mt_config_finalize(cfg, err, errlen);
    return st;
}

/* The run's tasks in the table's order (semseg, human_parts, sal, normals,
 * edge): the name of a --pascal cache. */
static void canonical_tasks(const mt_config *cfg, char *out, size_t cap) {
    out[0] = '\0';
    for (int k = MT_TASK_SEMSEG; k <= MT_TASK_EDGE; k++)
        for (int t = 0; t < cfg->ntasks; t++)
            if ((int)cfg->task_kind[t] == k)
                snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "", cfg->tasks[t]);
}

/* What rank 0 decides for every rank: --pascal's shards, what --resume
 * names. 0 ok, else the exit status. */
static int prepare_run(dist_ctx *d, const args *a, mt_config *cfg, trainer_opts *o) {
    char err[ERRLEN + 4096];
    if (a->pascal) {
        char tasks[128], fallback[1100], shards[sizeof cfg->data_path];
        canonical_tasks(cfg, tasks, sizeof tasks);
        snprintf(fallback, sizeof fallback, "%s%s.mtlora-cache", cfg->run.dir, cfg->run.dir[0] ? "/" : "");
        pascal_cache_opts po = {a->pascal, getenv("MTLORA_CACHE"), fallback, NULL, tasks, a->quiet, 0};
        if (dist_pascal_shards(d, &po, shards, sizeof shards, err, sizeof err)) {
            if (!d->rank) fprintf(stderr, "mtlora_dist: %s\n", err);
            return 1;
        }
        snprintf(cfg->data_path, sizeof cfg->data_path, "%s", shards);
    }
    if (a->resume && strcmp(a->resume, "auto") && strcmp(a->resume, "auto-start-over") && strcmp(a->resume, "never")) {
        int ckpt = 1;
        if (dist_resume_kind(d, a->resume, &ckpt, err, sizeof err)) {
            fprintf(stderr, "mtlora_dist: rank %d: %s\n", d->rank, err);
            return 1;
        }
        if (ckpt && a->skip_decoder) {
            if (d->rank == 0)
                fprintf(stderr, "mtlora_dist: --skip_decoder: %s is an mtlora training checkpoint, which resumes "
                        "whole; --skip_decoder applies to model weights (an official .pth, --save-trainable)\n",
                        a->resume);
            return 2;
        }
        if (!ckpt) o->weights = a->resume, o->resume = NULL, o->weights_skip_decoders = a->skip_decoder;
    }
    return 0;
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
    trainer_opts o = {a.resume, a.metrics_url, a.save_trainable, a.synthetic, a.steps == 0, a.quiet,
                      a.bench, a.progress, &stop_requested, NULL, a.ckpt_freq, 0};
    rc = prepare_run(&d, &a, cfg, &o);
    if (!rc) rc = trainer_run(&d, cfg, &o);
    free(cfg);
    dist_free(&d);
    MPI_Finalize();
    return rc;
}
