/* mtlora-predict - the model's predictions on JPEG or PNG files as pictures:
 * per image a side-by-side panel and each task's PNG files at the image's
 * own size (src/train/predict.c does the work; docs/guide.md, "Seeing the
 * results").
 *
 * Exit status: 0 every input written; 1 some input skipped (unreadable, not
 * an image) while the others were written, or a runtime failure; 2 a bad
 * command line or config, or an output directory that cannot be written
 * (refused before any work). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/base/clock.h"
#include "mtlora/config/config.h"
#include "mtlora/io/atomic_file.h"
#include "mtlora/model/model.h"
#include "mtlora/train/predict.h"

static void usage(FILE *f) {
    fputs("usage: mtlora-predict [--config FILE] [--opts KEY VALUE ...] [--weights FILE]\n"
          "                      [--tasks a,b,...] [--batch N] [--threads N] [--quiet]\n"
          "                      --output DIR  IMAGE_OR_DIR ...\n"
          "  IMAGE_OR_DIR  JPEG or PNG files (told apart by content), or directories: their\n"
          "                *.jpg, *.jpeg, *.png files (any case), sorted, not recursing\n"
          "  --output      where the pictures go: DIR/NAME.png (the panel: the input and each\n"
          "                task side by side) and DIR/NAME/<task>.png ... per input, NAME its\n"
          "                file name without the extension (-2, -3 added when two collide)\n"
          "  --config      official-format YAML, e.g. a run's config.yaml or mtlora-export\n"
          "                --merge's MERGED.yaml (default: built-in Swin-T 448 MTLoRA r64)\n"
          "  --opts        KEY VALUE pairs overriding the config (until the next --flag)\n"
          "  --weights     whole-model weights (official state-dict names): safetensors\n"
          "                (--save-trainable, mtlora-export) or a PyTorch .pth; without it\n"
          "                the model is the random initialisation\n"
          "  --tasks       write only these of the model's tasks (default: all of them); with\n"
          "                a config that names no TASKS (an official YAML), the model's tasks\n"
          "  --batch       images per forward (default 2)\n"
          "  --threads     CPU threads (default: OMP_NUM_THREADS, else every core)\n"
          "  --quiet       no progress\n",
          f);
}

/* The output directory exists (or is made) and takes a file: checked by
 * creating and removing one, so that root (who passes permission bits)
 * and read-only file systems are told the truth before any work. */
static int output_writable(const char *dir) {
    char err[1200];
    if (mt_make_dirs(dir, err, sizeof err)) {
        fprintf(stderr, "mtlora-predict: --output %s: %s\n", dir, err);
        return 0;
    }
    char probe[MT_PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.mtlora-predict-probe.%ld", dir, (long)getpid());
    if (atomic_write(probe, "ok\n", 3, err, sizeof err)) {
        fprintf(stderr, "mtlora-predict: --output %s is not writable: %s\n", dir, err);
        return 0;
    }
    remove(probe);
    return 1;
}

/* A bar on a terminal, one line per image otherwise. */
typedef struct {
    int tty, quiet, open;
    int total, done, skipped;
    double t0;
} progress;

static void progress_break(progress *p) {
    if (p->open) putchar('\n'), fflush(stdout);
    p->open = 0;
}

static void progress_show(progress *p, const predict_file *f, int ok, const char *out) {
    if (p->quiet) return;
    const double dt = mt_now_s() - p->t0, rate = dt > 0 ? (p->done - p->skipped) / dt : 0.0;
    if (p->tty) {
        char bar[31];
        const int fill = p->total ? 30 * p->done / p->total : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        const double eta = p->done ? dt / p->done * (p->total - p->done) : 0.0;
        printf("\r[%s] %d/%d %3.0f%% %.2f img/s ETA %02ld:%02ld  ", bar, p->done, p->total,
               100.0 * p->done / (p->total ? p->total : 1), rate, (long)eta / 60, (long)eta % 60);
        p->open = 1;
    } else if (ok) {
        printf("[%d/%d] %s -> %s/%s.png (%.2f img/s)\n", p->done, p->total, f->path, out, f->name, rate);
    }
    fflush(stdout);
}

static int parse_count(const char *flag, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 1 || x > 4096) {
        fprintf(stderr, "mtlora-predict: %s takes a number 1..4096, not '%s'\n", flag, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* --tasks: a subset of the model's tasks, as bits of cfg's task order. */
static int select_tasks(const mt_config *c, const char *list, unsigned *sel) {
    *sel = 0;
    if (!list) {
        *sel = (1u << c->ntasks) - 1;
        return 1;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < c->ntasks && strcmp(c->tasks[k], t)) k++;
        if (k == c->ntasks) {
            fprintf(stderr, "mtlora-predict: --tasks: '%s' is not one of the model's tasks (", t);
            for (int j = 0; j < c->ntasks; j++) fprintf(stderr, "%s%s", j ? "," : "", c->tasks[j]);
            fprintf(stderr, ")\n");
            return 0;
        }
        *sel |= 1u << k;
    }
    if (!*sel) fprintf(stderr, "mtlora-predict: --tasks names no task\n");
    return *sel != 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *weights = NULL, *tasks = NULL, *output = NULL;
    const char *opts[128], *inputs[4096];
    int nopts = 0, ninputs = 0, batch = 2, threads = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--config") && more) config = argv[++i];
        else if (!strcmp(a, "--weights") && more) weights = argv[++i];
        else if (!strcmp(a, "--tasks") && more) tasks = argv[++i];
        else if (!strcmp(a, "--output") && more) output = argv[++i];
        else if (!strcmp(a, "--batch") && more) { if (!parse_count(a, argv[++i], &batch)) return 2; }
        else if (!strcmp(a, "--threads") && more) { if (!parse_count(a, argv[++i], &threads)) return 2; }
        else if (!strcmp(a, "--opts")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (nopts >= 128) { fprintf(stderr, "mtlora-predict: too many --opts\n"); return 2; }
                opts[nopts++] = argv[++i];
            }
            if (nopts % 2) { fprintf(stderr, "mtlora-predict: --opts takes KEY VALUE pairs\n"); return 2; }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mtlora-predict: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (ninputs < 4096) {
            inputs[ninputs++] = a;
        } else {
            fprintf(stderr, "mtlora-predict: more than 4096 inputs: give directories\n");
            return 2;
        }
    }
    if (!output || !ninputs) {
        fprintf(stderr, "mtlora-predict: %s\n", !output ? "--output DIR is needed" : "no input files");
        usage(stderr);
        return 2;
    }
    char err[1200];
    mt_config cfg;
    mt_status st = mt_config_start(&cfg, config, err, sizeof err);
    for (int k = 0; !st && k < nopts; k += 2) st = mt_config_set(&cfg, opts[k], opts[k + 1], err, sizeof err);
    /* an official YAML leaves TASKS to main.py's --tasks: then --tasks is the model's list */
    if (!st && tasks && cfg.ntasks == 0) st = mt_config_set_tasks(&cfg, tasks, err, sizeof err);
    if (!st) st = mt_config_finalize(&cfg, err, sizeof err);
    cfg.amp_enable = 0; /* AMP is a training setting: predictions are exact f32 */
    if (st) { fprintf(stderr, "mtlora-predict: %s\n", err); return 2; }
    unsigned sel;
    if (!select_tasks(&cfg, tasks, &sel)) return 2;
    if (!output_writable(output)) return 2;
    predict_file *files;
    int nfiles;
    if (predict_list_inputs(inputs, ninputs, &files, &nfiles, err, sizeof err)) {
        fprintf(stderr, "mtlora-predict: %s\n", err);
        return 1;
    }
    if (!nfiles) {
        fprintf(stderr, "mtlora-predict: no JPEG or PNG files in the inputs given\n");
        free(files);
        return 1;
    }
    if (threads) omp_set_num_threads(threads);

    mt_ctx *ctx;
    mt_model *m = NULL;
    int rc = 0;
    if (mt_ctx_create(&ctx, err, sizeof err)) { fprintf(stderr, "mtlora-predict: %s\n", err); free(files); return 1; }
    if (mt_model_create(&m, ctx, &cfg, 0) ||
        (weights && mt_model_load_report(m, ctx, weights, MT_LOAD_CHECKPOINT, err, sizeof err))) {
        fprintf(stderr, "mtlora-predict: %s\n", mt_ctx_error(ctx));
        const char *base = weights ? strrchr(weights, '/') : NULL;
        base = base ? base + 1 : weights;
        if (m && base && !strncmp(base, "ckpt-", 5))
            fprintf(stderr, "mtlora-predict: %s looks like a training checkpoint, which holds the trainer's "
                            "state, not a model: write the model with mtlora_dist --config RUN.DIR/config.yaml "
                            "--data SHARDS --resume %s --steps 0 --save-trainable MODEL.safetensors\n",
                    weights, weights);
        rc = 1;
    } else if (!quiet) {
        printf("model %s (%dx%d), tasks", cfg.name, cfg.img_size, cfg.img_size);
        for (int t = 0; t < cfg.ntasks; t++)
            if (sel & (1u << t)) printf(" %s", cfg.tasks[t]);
        printf("; weights: %s%s%s; %d file%s, batch %d, %d threads -> %s\n", weights ? weights : "random",
               weights ? ", " : "", weights ? err : "", nfiles, nfiles == 1 ? "" : "s", batch,
               omp_get_max_threads(), output);
    }
    progress P = {isatty(1), quiet, 0, nfiles, 0, 0, mt_now_s()};
    const predict_opts po = {&cfg, sel, output};
    int *ok = malloc(sizeof(int) * (size_t)batch);
    char (*msg)[PREDICT_MSG_LEN] = malloc(sizeof *msg * (size_t)batch);
    if (!rc && (!ok || !msg)) { fprintf(stderr, "mtlora-predict: out of memory\n"); rc = 1; }
    for (int lo = 0; !rc && lo < nfiles; lo += batch) {
        const int n = nfiles - lo < batch ? nfiles - lo : batch;
        if (predict_batch(m, ctx, &po, files + lo, n, ok, msg, err, sizeof err)) {
            progress_break(&P);
            fprintf(stderr, "mtlora-predict: %s\n", err);
            rc = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            P.done++;
            if (!ok[i]) {
                P.skipped++;
                progress_break(&P);
                fprintf(stderr, "mtlora-predict: %s; skipped\n", msg[i]);
            }
            progress_show(&P, &files[lo + i], ok[i], output);
        }
    }
    progress_break(&P);
    if (!rc && !quiet)
        printf("wrote %d of %d images to %s in %.1f s\n", P.done - P.skipped, nfiles, output, mt_now_s() - P.t0);
    if (!rc && P.skipped) {
        fprintf(stderr, "mtlora-predict: %d of %d inputs skipped (named above)\n", P.skipped, nfiles);
        rc = 1;
    }
    free(ok);
    free(msg);
    free(files);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}
