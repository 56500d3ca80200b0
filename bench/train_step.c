/* train_step - times the trainer's own training step (train_step() of
 * src/train/: forward, weighted multi-task loss, backward, non-finite check,
 * clipping, LR schedule, AdamW) of a model on generated data and prints
 * images/s and the fraction of the machine's measured matmul peak it
 * reaches.
 *
 *   train_step [--config FILE] [--batch N] [--steps N] [--anchor-seconds S] [--data DIR]
 *
 * Threads: OMP_NUM_THREADS (oneDNN and our loops share the OpenMP pool).
 * The default model is the built-in Swin-T 448 MTLoRA r64/r4 config. The
 * peak is measured here and now with a large oneDNN f32 matmul
 * (4096x768x768), so the utilisation is against this machine, not a
 * datasheet. --anchor-seconds prints the speed-up over a reference step
 * time (the official PyTorch step measured by ../shared/anchors). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtlora/base/clock.h"
#include "mtlora/config/config.h"
#include "mtlora/ops/layers.h"
#include "mtlora/model/model.h"
#include "mtlora/base/rng.h"
#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/train/train_step.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GFLOP/s of a 4096x768 by 768x768 f32 matmul, median of 7. */
static double matmul_peak(mt_ctx *ctx) {
    const int M = 4096, K = 768, N = 768;
    float *a = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K),
          *c = malloc(sizeof(float) * M * N);
    if (!a || !w || !c) { free(a); free(w); free(c); return 0.0; }
    for (int i = 0; i < M * K; i++) a[i] = mt_rng_uniform(1, (uint64_t)i) - 0.5f;
    for (int i = 0; i < N * K; i++) w[i] = mt_rng_uniform(2, (uint64_t)i) - 0.5f;
    double t[7];
    for (int r = -2; r < 7; r++) {
        double t0 = mt_now_s();
        if (linear_forward(ctx, c, a, w, NULL, M, K, N)) break;
        if (r >= 0) t[r] = mt_now_s() - t0;
    }
    free(a); free(w); free(c);
    return 2.0 * M * K * N / median(t, 7) / 1e9;
}

/* Where the step's batches come from: the loader, or generated ones. */
typedef struct {
    const mt_config *cfg;
    shard_loader *loader;
    synthetic_batch own;
} bench_source;

static mt_status next_batch(void *user, long update, int micro, train_batch *tb, char *err, size_t errlen) {
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

int main(int argc, char **argv) {
    const char *config = NULL, *data = NULL;
    int batch = 2, steps = 5;
    double anchor = 0.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--anchor-seconds") && i + 1 < argc) anchor = atof(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--config FILE] [--batch N] [--steps N] [--anchor-seconds S] "
                            "[--data SHARD_DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (batch < 1 || steps < 1 || steps > 1000) {
        fprintf(stderr, "train_step: --batch and --steps must be positive (steps <= 1000)\n");
        return 2;
    }
    char err[512];
    mt_config cfg;
    mt_status st = config ? (mt_config_default(&cfg), mt_config_load(&cfg, config, err, sizeof err))
                          : mt_config_builtin(&cfg, err, sizeof err);
    /* the benchmark's batch, one micro-batch per update */
    if (!st) cfg.batch_size = batch, cfg.accumulation_steps = 1, st = mt_config_finalize(&cfg, err, sizeof err);
    if (st) { fprintf(stderr, "train_step: %s\n", err); return 2; }
    mt_ctx *ctx;
    if (mt_ctx_create(&ctx, err, sizeof err)) { fprintf(stderr, "train_step: %s\n", err); return 1; }
    mt_model *m;
    if (mt_model_create(&m, ctx, &cfg, 1)) {
        fprintf(stderr, "train_step: %s\n", mt_ctx_error(ctx));
        return 1;
    }
    const int S = cfg.img_size;
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
    if (data) {
        int tasks = 0;
        for (int t = 0; t < cfg.ntasks; t++) tasks |= 1 << (int)cfg.task_kind[t];
        loader_opts lo = {data, "train", tasks, 0, 1, batch, S, 1, 7, 2, 0, 0};
        if (loader_open(&src.loader, &lo, err, sizeof err)) {
            fprintf(stderr, "train_step: %s\n", err);
            return 1;
        }
    }
    double *waits = calloc((size_t)steps, sizeof(double));
    double *times = malloc(sizeof(double) * (size_t)steps), loss = 0.0;
    for (int s = -1; s < steps; s++) { /* step -1 warms up: primitives, first touch */
        double t0 = mt_now_s();
        train_step_result r;
        if (train_step(&ts, s + 1, next_batch, &src, &r, err, sizeof err)) {
            fprintf(stderr, "train_step: %s\n", err);
            return 1;
        }
        loss = r.loss[0];
        if (s >= 0) times[s] = mt_now_s() - t0, waits[s] = r.data_s;
    }
    double med = median(times, steps), best = times[0];
    mt_flops fl = mt_model_flops(m);
    mt_param_counts pc = mt_model_param_counts(m);
    double peak = matmul_peak(ctx);
    double ips = batch / med, gflops = 2.0 * fl.train_macs * ips / 1e9;
    printf("model %s, %d tasks, %dx%d, batch %d, %d threads\n", cfg.name, cfg.ntasks, S, S, batch,
           omp_get_max_threads());
    printf("parameters %zu, trainable %zu\n", pc.total, pc.trainable);
    printf("step median %.3f s (best %.3f s over %d steps), loss %.4f\n", med, best, steps, loss);
    printf("images/s %.3f\n", ips);
    printf("model FLOPs per image: forward %.1f G, training step %.1f G\n",
           2.0 * fl.forward_macs / 1e9, 2.0 * fl.train_macs / 1e9);
    printf("achieved %.1f GFLOP/s, matmul peak %.1f GFLOP/s, utilisation %.1f%%\n", gflops, peak,
           peak > 0 ? 100.0 * gflops / peak : 0.0);
    if (src.loader) {
        double wmed = median(waits, steps), wsum = 0, tsum = 0;
        for (int i = 0; i < steps; i++) wsum += waits[i], tsum += times[i];
        printf("data wait (shard loader, augmentation on its own thread): median %.2f ms, "
               "total %.1f%% of step time\n", 1e3 * wmed, 100.0 * wsum / tsum);
        loader_close(src.loader);
    }
    if (anchor > 0.0)
        printf("speed-up over the anchor step (%.3f s): %.2fx (%.3f images/s)\n", anchor,
               anchor / med, batch / anchor);
    synthetic_batch_free(&src.own);
    train_state_free(&ts);
    free(waits); free(times);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return 0;
}
