/* train_step - times the trainer's own training step (train_step() of
 * src/train/: forward, weighted multi-task loss, backward, non-finite check,
 * clipping, LR schedule, AdamW) of a model on generated data and prints
 * images/s, the peak memory, and the fraction of the machine's measured
 * matmul peak it reaches (the speed benchmark of issue 13; bench/compare.sh
 * runs it side by side with the official PyTorch step).
 *
 *   train_step [--config FILE] [--batch N] [--steps N] [--anchor-seconds S]
 *              [--data DIR] [--disable_amp] [--use-checkpoint] [--timeline FILE]
 *              [--opts KEY VALUE [KEY VALUE ...]]
 *
 * --timeline FILE records the step's spans (RUN.TIMELINE's, src/train/
 * trace.h) in every second timed step, writes them to FILE (one process,
 * Perfetto / chrome://tracing) and prints the median step with and without
 * them: the recording's cost, measured on alternating steps of one process.
 *
 * Threads: OMP_NUM_THREADS (oneDNN and our loops share the OpenMP pool).
 * The default model is the built-in Swin-T 448 MTLoRA r64/r4 config.
 * --opts sets config keys by their official names (as mtlora_dist and the
 * official main.py do), after --config; --disable_amp and --use-checkpoint
 * are the official flags for AMP_ENABLE False and TRAIN.USE_CHECKPOINT True
 * and, as in the official config.py, win over --opts.
 *
 * The peak is measured here and now, f32 and bf16, on the model's own
 * matmul shapes, so the utilisation is against this machine and the
 * precision that ran, not a datasheet. --anchor-seconds prints the speed-up
 * over a reference step time (the official PyTorch step measured by
 * ../shared/anchors). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mtlora/base/clock.h"
#include "mtlora/config/config.h"
#include "mtlora/ops/bf16.h"
#include "mtlora/model/model.h"
#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/train/train_step.h"

#define MAX_OPTS 64
/* Matmul rows of the peak probe: stage 0 of Swin-T 448 has 12544 tokens an
 * image; more rows than this change the GFLOP/s little and cost seconds. */
#define PEAK_MAX_ROWS 8192
#define PEAK_REPS 5

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void usage(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s [--config FILE] [--batch N] [--steps N] [--anchor-seconds S]\n"
            "          [--data SHARD_DIR] [--disable_amp] [--use-checkpoint] [--timeline FILE]\n"
            "          [--opts KEY VALUE [KEY VALUE ...]]\n"
            "  --timeline FILE    record the spans in every second step, write them to FILE and\n"
            "                     print the median step with and without (the timeline's cost)\n"
            "  --batch N          images per step (default 2; overrides DATA.BATCH_SIZE)\n"
            "  --steps N          timed steps after one warm-up (default 5, at most 1000)\n"
            "  --disable_amp      AMP_ENABLE False: every matmul in f32\n"
            "  --use-checkpoint   TRAIN.USE_CHECKPOINT True: recompute block activations\n"
            "  --opts K V ...     config keys by their official names, e.g.\n"
            "                     --opts AMP.MATMUL bf16 MODEL.ADAPTER.KIND lora\n",
            prog);
}

/* A whole-string integer in [lo, hi], else -1 (every caller's lo is >= 1). */
static long parse_int(const char *s, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= lo && v <= hi ? v : -1;
}

typedef struct {
    const char *config, *data, *timeline;
    int batch, steps; /* batch -1: not given */
    double anchor;
    int nopts, nflags;
    const char *opts[MAX_OPTS][2];
    const char *flags[MAX_OPTS][2]; /* the official flags as KEY VALUE, applied after opts */
} args;

/* 0, or 2 after a message (bad arguments; the caller prints the usage). */
static int parse_args(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->batch = -1, a->steps = 5;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(s, "--config") && has) a->config = argv[++i];
        else if (!strcmp(s, "--data") && has) a->data = argv[++i];
        else if (!strcmp(s, "--timeline") && has) a->timeline = argv[++i];
        else if (!strcmp(s, "--batch") && has) {
            long v = parse_int(argv[++i], 1, 1 << 20);
            if (v < 0) {
                fprintf(stderr, "train_step: --batch: '%s' is not a positive integer\n", argv[i]);
                return 2;
            }
            a->batch = (int)v;
        } else if (!strcmp(s, "--steps") && has) {
            long v = parse_int(argv[++i], 1, 1000);
            if (v < 0) {
                fprintf(stderr, "train_step: --steps: '%s' is not an integer in 1..1000\n",
                        argv[i]);
                return 2;
            }
            a->steps = (int)v;
        } else if (!strcmp(s, "--anchor-seconds") && has) {
            char *end;
            a->anchor = strtod(argv[++i], &end);
            if (!*argv[i] || *end || !(a->anchor > 0.0)) {
                fprintf(stderr, "train_step: --anchor-seconds: '%s' is not a positive number\n",
                        argv[i]);
                return 2;
            }
        } else if (mt_config_flag_key(s, NULL) && a->nflags < MAX_OPTS) {
            a->flags[a->nflags][0] = mt_config_flag_key(s, &a->flags[a->nflags][1]);
            a->nflags++;
        } else if (!strcmp(s, "--opts")) {
            char err[256];
            if (mt_opts_collect(argc, argv, &i, a->opts, &a->nopts, MAX_OPTS, err, sizeof err)) {
                fprintf(stderr, "train_step: %s\n", err);
                return 2;
            }
        } else if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout, argv[0]);
            exit(0);
        } else {
            fprintf(stderr, "train_step: unknown or incomplete option '%s'\n", s);
            return 2;
        }
    }
    return 0;
}

/* The configuration: file or built-in, then --opts, then the official
 * flags (they override --opts, as config.py's update_config does), then the
 * benchmark's batch with one micro-batch per update. */
static mt_status load_config(args *a, mt_config *cfg, char *err, size_t errlen) {
    mt_status st = mt_config_start(cfg, a->config, err, errlen);
    int batch_opt = 0;
    for (int i = 0; !st && i < a->nopts; i++) {
        st = mt_config_set(cfg, a->opts[i][0], a->opts[i][1], err, errlen);
        batch_opt |= !strcmp(a->opts[i][0], "DATA.BATCH_SIZE");
    }
    for (int i = 0; !st && i < a->nflags; i++)
        st = mt_config_set(cfg, a->flags[i][0], a->flags[i][1], err, errlen);
    if (st) return st;
    /* --batch wins; an explicit --opts DATA.BATCH_SIZE comes next; the
     * file's or built-in batch size (a training batch of 32 or more) is not
     * what a step benchmark on a CPU wants, so 2 otherwise */
    if (a->batch < 0) a->batch = batch_opt && cfg->batch_size > 0 ? cfg->batch_size : 2;
    cfg->batch_size = a->batch, cfg->accumulation_steps = 1;
    return mt_config_finalize(cfg, err, errlen);
}

/* Best GFLOP/s of each type over the model's own encoder matmul shapes:
 * per stage s the token grid (img/patch >> s)^2 times the batch (capped at
 * PEAK_MAX_ROWS), C = embed_dim << s, and qkv (C -> 3C), fc1 (C -> 4C),
 * fc2 (4C -> C). The probe allocates its own buffers of at most
 * 8192 x 4C floats per operand (a few tens of MB), which is why the peak
 * memory is read before it runs. */
static void matmul_peaks(mt_ctx *ctx, const mt_config *cfg, int batch, double *f32,
                         double *bf16) {
    *f32 = *bf16 = 0.0;
    for (int s = 0; s < cfg->nstages; s++) {
        long side = (long)(cfg->img_size / cfg->patch_size) >> s;
        long rows = (long)batch * side * side;
        int m = (int)(rows > PEAK_MAX_ROWS ? PEAK_MAX_ROWS : rows), c = cfg->embed_dim << s;
        if (m < 1) break;
        const int shapes[3][2] = {{c, 3 * c}, {c, 4 * c}, {4 * c, c}};
        for (int i = 0; i < 3; i++) {
            double g = mt_matmul_gflops(ctx, 0, m, shapes[i][0], shapes[i][1], PEAK_REPS);
            double h = mt_matmul_gflops(ctx, 1, m, shapes[i][0], shapes[i][1], PEAK_REPS);
            if (g > *f32) *f32 = g;
            if (h > *bf16) *bf16 = h;
        }
    }
}

/* Where the step's batches come from: the loader, or generated ones. */
typedef struct {
    const mt_config *cfg;
    shard_loader *loader;
    synthetic_batch own;
} bench_source;

static mt_status next_batch(void *user, long update, int micro, train_batch *tb, char *err,
                            size_t errlen) {
    bench_source *src = user;
    (void)micro;
    if (src->loader) {
        loader_batch *lb;
        mt_status st = loader_next(src->loader, &lb, err, errlen);
        if (st) return st;
        tb->images = lb->images;
        train_targets_from_loader(src->cfg, lb, &tb->targets);
        return MT_OK;
    }
    synthetic_batch_fill(&src->own, src->cfg, 3, (int64_t)update * src->own.B, tb);
    return MT_OK;
}

/* --timeline: the median of the recording steps against the others, and
 * the file. */
static int timeline_report(mt_trace *trace, const char *path, const double *times, int steps) {
    double on[1000], off[1000];
    int n_on = 0, n_off = 0;
    for (int s = 0; s < steps; s++) {
        if (s % 2) on[n_on++] = times[s];
        else off[n_off++] = times[s];
    }
    if (n_on && n_off) {
        /* median sorts: on[0] and off[0] are then the best steps */
        const double m_on = median(on, n_on), m_off = median(off, n_off);
        printf("timeline: step median %.3f ms recording spans (%d steps), %.3f ms not (%d steps): %+.2f%%; "
               "best %.3f ms and %.3f ms: %+.2f%%\n",
               1e3 * m_on, n_on, 1e3 * m_off, n_off, 100.0 * (m_on - m_off) / m_off, 1e3 * on[0], 1e3 * off[0],
               100.0 * (on[0] - off[0]) / off[0]);
    }
    char err[1024];
    mt_span *spans = malloc(sizeof(mt_span) * (mt_trace_capacity(trace) + 1));
    if (!spans) { fprintf(stderr, "train_step: out of memory\n"); return 1; }
    const mt_trace_rank rank = {0, spans, mt_trace_collect(trace, spans)};
    const mt_status st = mt_trace_write(path, &rank, 1, err, sizeof err);
    free(spans);
    if (st) {
        fprintf(stderr, "train_step: %s\n", err);
        return 1;
    }
    printf("timeline: %s (%zu spans)\n", path, rank.n);
    return 0;
}

int main(int argc, char **argv) {
    args a;
    if (parse_args(argc, argv, &a)) {
        usage(stderr, argv[0]);
        return 2;
    }
    char err[512];
    mt_config cfg;
    if (load_config(&a, &cfg, err, sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 2;
    }
    const int batch = a.batch, steps = a.steps, S = cfg.img_size;
    mt_ctx *ctx;
    if (mt_ctx_create(&ctx, err, sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 1;
    }
    mt_model *m;
    if (mt_model_create(&m, ctx, &cfg, 1)) {
        fprintf(stderr, "train_step: %s\n", mt_ctx_error(ctx));
        return 1;
    }
    /* As on a rank of mtlora_dist: with bf16 matmuls the frozen weights are
     * held in bf16 only (the f32 copy freed), so the peak memory is what a
     * rank holds (plus the node-shared bf16 weights, here private). */
    mt_bf16 *frozen_h = NULL; /* (mt_model_frozen_bf16_count) */
    int f32_freed = 0;
    if (mt_model_frozen_bf16_count(m) && !mt_model_frozen_f32_needed(m)) {
        frozen_h = malloc(mt_model_frozen_bf16_count(m) * sizeof *frozen_h);
        if (!frozen_h || mt_model_use_frozen_bf16(m, ctx, frozen_h, 1, 1, &f32_freed)) {
            fprintf(stderr, "train_step: %s\n", frozen_h ? mt_ctx_error(ctx) : "out of memory");
            return 1;
        }
    }
    train_state ts;
    if (train_state_init(&ts, m, ctx, &cfg, 1, 100, err, sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 1;
    }
    bench_source src = {&cfg, NULL, {0}};
    if (synthetic_batch_alloc(&src.own, batch, S, err, sizeof err)) {
        fprintf(stderr, "train_step: %s\n", err);
        return 1;
    }
    /* With --data, batches come from the shard loader (augmented on its own
     * thread while the step runs) and the time spent waiting for them is
     * reported: the data pipeline's cost as the trainer sees it. */
    if (a.data) {
        int tasks = 0;
        for (int t = 0; t < cfg.ntasks; t++) tasks |= 1 << (int)cfg.task_kind[t];
        loader_opts lo = {a.data, "train", tasks, 0, 1, batch, S, 1, 7, 2, 0, 0};
        if (loader_open(&src.loader, &lo, err, sizeof err)) {
            fprintf(stderr, "train_step: %s\n", err);
            return 1;
        }
    }
    double *waits = calloc((size_t)steps, sizeof(double));
    double *times = malloc(sizeof(double) * (size_t)steps), loss = 0.0;
    if (!waits || !times) { fprintf(stderr, "train_step: out of memory\n"); return 1; }
    /* --timeline: a ring for every step (the odd ones record) */
    mt_trace *trace = NULL;
    const int acc = cfg.accumulation_steps > 0 ? cfg.accumulation_steps : 1;
    if (a.timeline && (mt_trace_create(&trace, steps + 1, acc * (4 + cfg.nstages + 2) + 16, 8, err, sizeof err) ||
                       train_state_set_trace(&ts, trace, err, sizeof err))) {
        fprintf(stderr, "train_step: %s\n", err);
        return 1;
    }
    for (int s = -1; s < steps; s++) { /* step -1 warms up: primitives, first touch */
        const int traced = trace && s >= 0 && s % 2;
        if (trace) {
            mt_trace_step(trace, s + 1);
            train_state_set_trace(&ts, traced ? trace : NULL, err, sizeof err);
        }
        double t0 = mt_now_s();
        train_step_result r;
        if (train_step(&ts, s + 1, next_batch, &src, &r, err, sizeof err)) {
            fprintf(stderr, "train_step: %s\n", err);
            return 1;
        }
        const double t1 = mt_now_s();
        if (traced) mt_trace_add(trace, MT_SPAN_STEP, MT_TRACE_TID_MAIN, t0, t1, s + 1, r.finite);
        loss = r.loss[0];
        if (s >= 0) times[s] = t1 - t0, waits[s] = r.data_s;
    }
    if (trace && timeline_report(trace, a.timeline, times, steps)) return 1;
    mt_trace_free(trace);
    /* Peak resident set of the whole run so far (model, optimizer state,
     * the activations kept for the backward), read before the matmul probe
     * so its buffers do not count. Linux gives ru_maxrss in KiB; GB here is
     * 10^9 bytes, as /usr/bin/time users usually quote it. */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) { perror("train_step: getrusage"); return 1; }
    double peak_gb = (double)ru.ru_maxrss * 1024.0 / 1e9;
    double med = median(times, steps), best = times[0];
    mt_flops fl = mt_model_flops(m);
    mt_param_counts pc = mt_model_param_counts(m);
    mt_precision prec = mt_model_precision(m);
    double peak_f32, peak_bf16;
    matmul_peaks(ctx, &cfg, batch, &peak_f32, &peak_bf16);
    if (peak_f32 <= 0.0) {
        fprintf(stderr, "train_step: the f32 matmul peak could not be measured\n");
        return 1;
    }
    /* the utilisation is against the peak of the precision the frozen
     * encoder's matmuls ran in (the rest is f32 either way) */
    int ran_bf16 = prec.bf16 && peak_bf16 > 0.0;
    double peak = ran_bf16 ? peak_bf16 : peak_f32;
    double ips = batch / med, gflops = 2.0 * fl.train_macs * ips / 1e9;
    printf("model %s, %d tasks, %dx%d, batch %d, %d threads\n", cfg.name, cfg.ntasks, S, S, batch,
           omp_get_max_threads());
    printf("precision: %s\n", prec.note);
    if (f32_freed)
        printf("frozen weights: bf16 only, the f32 copy freed (as on a rank of mtlora_dist)\n");
    printf("activation recompute (TRAIN.USE_CHECKPOINT): %s\n", cfg.use_checkpoint ? "on" : "off");
    printf("parameters %zu, trainable %zu\n", pc.total, pc.trainable);
    printf("step median %.3f s (best %.3f s over %d steps), loss %.4f\n", med, best, steps, loss);
    printf("images/s %.3f\n", ips);
    printf("peak memory %.2f GB\n", peak_gb);
    printf("model FLOPs per image: forward %.1f G, training step %.1f G\n",
           2.0 * fl.forward_macs / 1e9, 2.0 * fl.train_macs / 1e9);
    if (peak_bf16 > 0.0)
        printf("matmul peak: f32 %.1f GFLOP/s, bf16 %.1f GFLOP/s\n", peak_f32, peak_bf16);
    else
        printf("matmul peak: f32 %.1f GFLOP/s, bf16 none\n", peak_f32);
    if (peak_bf16 > 0.0) printf("bf16/f32 peak ratio %.2f\n", peak_bf16 / peak_f32);
    else printf("bf16/f32 peak ratio n/a\n");
    printf("achieved %.1f GFLOP/s, %s matmul peak %.1f GFLOP/s, utilisation %.1f%%, "
           "f32-relative %.1f%%\n",
           gflops, ran_bf16 ? "bf16" : "f32", peak, 100.0 * gflops / peak,
           100.0 * gflops / peak_f32);
    if (src.loader) {
        double wmed = median(waits, steps), wsum = 0, tsum = 0;
        for (int i = 0; i < steps; i++) wsum += waits[i], tsum += times[i];
        printf("data wait (shard loader, augmentation on its own thread): median %.2f ms, "
               "total %.1f%% of step time\n", 1e3 * wmed, 100.0 * wsum / tsum);
        loader_close(src.loader);
    }
    if (a.anchor > 0.0)
        printf("speed-up over the anchor step (%.3f s): %.2fx (%.3f images/s)\n", a.anchor,
               a.anchor / med, batch / a.anchor);
    synthetic_batch_free(&src.own);
    train_state_free(&ts);
    free(waits); free(times);
    mt_model_destroy(m);
    free(frozen_h);
    mt_ctx_destroy(ctx);
    return 0;
}
