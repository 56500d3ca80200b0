/* mtlora-export - what a trained model is worth outside training:
 *
 *  --merge --task T        folds task T's adapter update into a plain Swin
 *                          (full fine-tuning layout, task T's head only) and
 *                          writes it with its config, so mtlora-infer runs it
 *                          with one encoder path and no low-rank matmuls;
 *                          --bench N times both models
 *  --adapter-out DIR       the adapter alone, in Hugging Face PEFT's layout:
 *                          adapter_model.safetensors (the lora_* tensors),
 *                          trained_modules.safetensors (PEFT's modules_to_save:
 *                          every other trained tensor and the BatchNorm
 *                          buffers), config.yaml and adapter_config.json
 *  --adapter DIR           the way back: a base model (whole-model file or
 *                          ImageNet Swin) plus DIR gives the whole model
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad command line or config. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mtlora/base/clock.h"
#include "mtlora/config/config.h"
#include "mtlora/model/adapter_peft.h"
#include "mtlora/model/model.h"
#include "mtlora/base/rng.h"

#define PROG "mtlora-export"
#define PATH_CAP 4000 /* longest path argument */

static void usage(FILE *f) {
    fputs("usage: mtlora-export [--config FILE] [--opts KEY VALUE ...] --weights MODEL.safetensors\n"
          "                     --merge --task T --output MERGED.safetensors [--bench N] [--batch B]\n"
          "       mtlora-export [--config FILE] [--opts KEY VALUE ...] --weights MODEL.safetensors\n"
          "                     --adapter-out DIR\n"
          "       mtlora-export --adapter DIR (--base MODEL.safetensors | --pretrained SWIN.safetensors)\n"
          "                     --output MODEL.safetensors\n"
          "  --config       official-format YAML (default: built-in Swin-T 448 MTLoRA r64)\n"
          "  --opts         KEY VALUE pairs overriding the config (until the next --flag)\n"
          "  --weights      whole-model weights of that config (official state-dict names):\n"
          "                 safetensors or a PyTorch .pth (its 'model' key)\n"
          "  --merge        fold task T's adapter update into the frozen weights: writes a plain\n"
          "                 Swin with task T's head to --output and its config beside it\n"
          "                 (MERGED.yaml, for mtlora-infer --config); MTLoRA models with task\n"
          "                 paths cannot be merged\n"
          "  --task         the task to merge (one of the config's TASKS)\n"
          "  --bench N      time N evaluation forwards (after one warm-up) of the adapted and\n"
          "                 the merged model on random images, batch --batch (default 1)\n"
          "  --adapter-out  write the adapter to DIR (created if absent): adapter_model.safetensors\n"
          "                 (the lora_* tensors), trained_modules.safetensors (every other trained\n"
          "                 tensor and the BatchNorm buffers), config.yaml, adapter_config.json\n"
          "  --adapter      an --adapter-out directory to load: its config.yaml builds the model,\n"
          "                 adapter_config.json is checked against it\n"
          "  --base         whole-model weights (safetensors or .pth) supplying the frozen tensors\n"
          "  --pretrained   ImageNet Swin weights (.pth of the Swin release, or safetensors with\n"
          "                 plain or timm names) supplying the encoder\n"
          "  --output       where the merged (--merge) or the whole (--adapter) model goes;\n"
          "                 a name ending in .pth is written in PyTorch's zip format as\n"
          "                 {'model': state_dict} (torch.load(weights_only=True) reads it)\n"
          "exit status: 0 ok, 1 runtime failure, 2 bad command line or config\n",
          f);
}

static int failf(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return rc;
}

/* A context and a model for cfg (initialised, weights still to load). */
static int open_model(mt_ctx **ctx, mt_model **m, const mt_config *cfg) {
    char err[600];
    if (mt_ctx_create(ctx, err, sizeof err)) return failf(1, "%s", err);
    if (mt_model_create(m, *ctx, cfg, 0)) {
        int rc = failf(1, "%s", mt_ctx_error(*ctx));
        mt_ctx_destroy(*ctx);
        return rc;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* ---- configuration --------------------------------------------------------- */

static int load_config(mt_config *cfg, const char *path, const char *const *opts, int nopts) {
    char err[600];
    mt_status st = mt_config_start(cfg, path, err, sizeof err);
    for (int k = 0; !st && k < nopts; k += 2) st = mt_config_set(cfg, opts[k], opts[k + 1], err, sizeof err);
    if (!st) st = mt_config_finalize(cfg, err, sizeof err);
    cfg->amp_enable = 0; /* merging and export read the exact f32 weights */
    if (st) return failf(2, "%s", err);
    return 0;
}

/* What MODEL.ADAPTER.KIND amounts to (MODEL.MTLORA.ENABLED False is full_ft). */
static const char *model_kind(const mt_config *c) {
    if (c->adapter.baseline == MT_BASELINE_FULL_FT) return "full_ft";
    if (c->adapter.baseline == MT_BASELINE_DECODERS_ONLY) return "decoders_only";
    return c->adapter.kind;
}

static int file_exists(const char *path) {
    struct stat sb;
    return !stat(path, &sb) && S_ISREG(sb.st_mode);
}

/* ---- mode 1: merge --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per forward of n timed evaluation forwards after one
 * warm-up; negative on failure (the message is in ctx). */
static double bench_forward(mt_model *m, mt_ctx *ctx, const float *images, int B, int n) {
    double *t = malloc((size_t)n * sizeof *t);
    if (!t) return -1.0;
    if (mt_model_forward(m, ctx, images, B, 0, 0)) { free(t); return -1.0; }
    for (int i = 0; i < n; i++) {
        double t0 = mt_now_s();
        if (mt_model_forward(m, ctx, images, B, 0, 0)) { free(t); return -1.0; }
        t[i] = mt_now_s() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    return med;
}

/* Standard normal images (what normalised inputs look like): the
 * project's counter-based generator and Box-Muller. */
static float *random_images(size_t count, uint64_t seed) {
    float *x = malloc(count * sizeof *x);
    if (!x) return NULL;
    for (size_t i = 0; i < count; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++)
            u[k] = ((double)(mt_rng_bits(seed, i + (size_t)k) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u[0])), th = 6.283185307179586 * u[1];
        x[i] = (float)(r * cos(th));
        if (i + 1 < count) x[i + 1] = (float)(r * sin(th));
    }
    return x;
}

static int run_merge(mt_model *m, mt_ctx *ctx, const mt_config *cfg, int t, const char *output,
                     int bench, int batch) {
    char yaml[PATH_CAP + 64], err[600];
    if (ends_with(output, ".safetensors"))
        snprintf(yaml, sizeof yaml, "%.*s.yaml", (int)(strlen(output) - strlen(".safetensors")), output);
    else if (ends_with(output, ".pth"))
        snprintf(yaml, sizeof yaml, "%.*s.yaml", (int)(strlen(output) - strlen(".pth")), output);
    else
        snprintf(yaml, sizeof yaml, "%s.yaml", output);
    mt_config pc;
    if (mt_model_merged_config(m, ctx, t, &pc)) return failf(1, "%s", mt_ctx_error(ctx));
    mt_model *plain;
    if (mt_model_create(&plain, ctx, &pc, 0)) return failf(1, "%s", mt_ctx_error(ctx));
    int rc = 0;
    if (mt_model_merge_task(m, ctx, t, plain)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_save(plain, ctx, output)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_config_write_yaml(&pc, yaml, err, sizeof err)) rc = failf(1, "%s", err);
    if (!rc)
        printf("merged task %s (%s model, %d encoder path%s) into %s: %d tensors, %zu parameters; "
               "config %s\n",
               cfg->tasks[t], model_kind(cfg), cfg->adapter.paths, cfg->adapter.paths == 1 ? "" : "s",
               output, mt_model_bank(plain)->count, mt_model_param_counts(plain).total, yaml);
    if (!rc && bench > 0) {
        size_t per = (size_t)cfg->in_chans * cfg->img_size * cfg->img_size;
        float *im = random_images(per * (size_t)batch, 12345);
        if (!im) {
            rc = failf(1, "out of memory for %d bench images", batch);
        } else {
            double ta = bench_forward(m, ctx, im, batch, bench);
            double tm = ta < 0 ? -1.0 : bench_forward(plain, ctx, im, batch, bench);
            if (ta < 0 || tm < 0)
                rc = failf(1, "bench: %s", mt_ctx_error(ctx)[0] ? mt_ctx_error(ctx) : "out of memory");
            else
                printf("bench: adapted model %.4f s/batch (all %d tasks, %d encoder path%s), merged "
                       "task %s %.4f s/batch, speed-up %.2fx (batch %d, %dx%d, median of %d)\n",
                       ta, cfg->ntasks, cfg->adapter.paths, cfg->adapter.paths == 1 ? "" : "s",
                       cfg->tasks[t], tm, ta / tm, batch, cfg->img_size, cfg->img_size, bench);
            free(im);
        }
    }
    mt_model_destroy(plain);
    return rc;
}

/* ---- mode 2: adapter export ------------------------------------------------ */

static int run_adapter_out(mt_model *m, mt_ctx *ctx, const mt_config *cfg, const char *dir) {
    struct stat sb;
    if (!stat(dir, &sb)) {
        if (!S_ISDIR(sb.st_mode)) return failf(1, "%s: exists and is not a directory", dir);
    } else if (errno != ENOENT || mkdir(dir, 0777)) {
        return failf(1, "%s: cannot create the directory: %s", dir, strerror(errno));
    }
    const mt_peft_counts n = mt_peft_count(m);
    if (!n.adapter_tensors)
        return failf(1, "the model has no adapter (lora_*) tensors (MODEL.ADAPTER.KIND %s): there is "
                        "nothing to export as an adapter; its weights file is the model",
                     model_kind(cfg));
    char path[PATH_CAP + 64], err[600];
    snprintf(path, sizeof path, "%s/" MT_PEFT_ADAPTER_FILE, dir);
    if (mt_model_save_subset(m, ctx, path, mt_peft_is_adapter_tensor, NULL))
        return failf(1, "%s", mt_ctx_error(ctx));
    snprintf(path, sizeof path, "%s/" MT_PEFT_MODULES_FILE, dir);
    if (mt_model_save_subset(m, ctx, path, mt_peft_is_trained_module, m))
        return failf(1, "%s", mt_ctx_error(ctx));
    snprintf(path, sizeof path, "%s/" MT_PEFT_CONFIG_YAML, dir);
    if (mt_config_write_yaml(cfg, path, err, sizeof err)) return failf(1, "%s", err);
    snprintf(path, sizeof path, "%s/" MT_PEFT_CONFIG_JSON, dir);
    if (mt_peft_write_config(path, cfg, &n, err, sizeof err)) return failf(1, "%s", err);
    printf("wrote adapter to %s: %zu adapter tensors (%zu values), %zu trained-module tensors "
           "(%zu values), config.yaml, adapter_config.json\n", dir, n.adapter_tensors, n.adapter_values,
           n.module_tensors, n.module_values);
    return 0;
}

/* ---- mode 3: load back ------------------------------------------------------ */

static int run_adapter_in(const char *dir, const char *base, const char *pretrained, const char *output) {
    char cfg_path[PATH_CAP + 64], json[PATH_CAP + 64], am[PATH_CAP + 64], tm[PATH_CAP + 64], err[1200];
    snprintf(cfg_path, sizeof cfg_path, "%s/" MT_PEFT_CONFIG_YAML, dir);
    snprintf(json, sizeof json, "%s/" MT_PEFT_CONFIG_JSON, dir);
    snprintf(am, sizeof am, "%s/" MT_PEFT_ADAPTER_FILE, dir);
    snprintf(tm, sizeof tm, "%s/" MT_PEFT_MODULES_FILE, dir);
    struct stat sb;
    if (stat(dir, &sb)) return failf(1, "%s: cannot open the adapter directory: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return failf(1, "%s: not a directory (--adapter wants an --adapter-out directory)", dir);
    const char *need[4] = {json, cfg_path, am, tm};
    for (int i = 0; i < 4; i++)
        if (!file_exists(need[i]))
            return failf(1, "%s: missing (an --adapter-out directory holds adapter_config.json, "
                            "config.yaml, adapter_model.safetensors and trained_modules.safetensors)",
                         need[i]);
    const char *src = base ? base : pretrained;
    if (!file_exists(src)) return failf(1, "%s: no such file", src);
    mt_config cfg;
    int rc = load_config(&cfg, cfg_path, NULL, 0);
    if (rc) return rc;
    if (mt_peft_check_config(json, &cfg, err, sizeof err)) return failf(1, "%s", err);
    mt_ctx *ctx;
    mt_model *m;
    if ((rc = open_model(&ctx, &m, &cfg))) return rc;
    if (mt_model_load(m, ctx, src, base ? MT_LOAD_CHECKPOINT : MT_LOAD_PRETRAINED))
        rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_peft_check_covers(am, m, mt_peft_is_adapter_tensor, NULL, "adapter (lora_*)", err,
                                    sizeof err))
        rc = failf(1, "%s", err);
    if (!rc && mt_peft_check_covers(tm, m, mt_peft_is_trained_module, m, "trained-module", err, sizeof err))
        rc = failf(1, "%s", err);
    if (!rc && mt_peft_check_counts(json, am, tm, err, sizeof err)) rc = failf(1, "%s", err);
    if (!rc && mt_model_load(m, ctx, am, MT_LOAD_SUBSET)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_load(m, ctx, tm, MT_LOAD_SUBSET)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc && mt_model_save(m, ctx, output)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc) {
        printf("wrote %s: %s %s + adapter %s (%s, tasks", output, base ? "base" : "pretrained encoder",
               src, dir, model_kind(&cfg));
        for (int t = 0; t < cfg.ntasks; t++) printf(" %s", cfg.tasks[t]);
        printf(")\n");
    }
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}

/* ---- command line ----------------------------------------------------------- */

static int parse_count(const char *flag, const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000000) return failf(2, "%s: '%s' is not a positive count", flag, s);
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    const char *config = NULL, *weights = NULL, *task = NULL, *output = NULL, *adapter_out = NULL;
    const char *adapter = NULL, *base = NULL, *pretrained = NULL;
    const char *opts[128];
    int nopts = 0, merge = 0, bench = 0, batch = 1, have_batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--merge")) merge = 1;
        else if (!strcmp(a, "--config") && more) config = argv[++i];
        else if (!strcmp(a, "--weights") && more) weights = argv[++i];
        else if (!strcmp(a, "--task") && more) task = argv[++i];
        else if (!strcmp(a, "--output") && more) output = argv[++i];
        else if (!strcmp(a, "--adapter-out") && more) adapter_out = argv[++i];
        else if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "--base") && more) base = argv[++i];
        else if (!strcmp(a, "--pretrained") && more) pretrained = argv[++i];
        else if (!strcmp(a, "--bench") && more) { if (parse_count(a, argv[++i], &bench)) return 2; }
        else if (!strcmp(a, "--batch") && more) {
            if (parse_count(a, argv[++i], &batch)) return 2;
            have_batch = 1;
        } else if (!strcmp(a, "--opts")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (nopts >= 128) return failf(2, "too many --opts");
                opts[nopts++] = argv[++i];
            }
            if (nopts % 2) return failf(2, "--opts takes KEY VALUE pairs");
        } else {
            fprintf(stderr, PROG ": unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int modes = merge + (adapter_out != NULL) + (adapter != NULL);
    const char *why = NULL;
    if (modes != 1) why = "choose one of --merge, --adapter-out DIR or --adapter DIR";
    else if (merge && (!weights || !task || !output)) why = "--merge needs --weights, --task and --output";
    else if (adapter_out && !weights) why = "--adapter-out needs --weights";
    else if (adapter_out && output) why = "--adapter-out writes into its directory; --output is for --merge and --adapter";
    else if (adapter && (!output || !base == !pretrained))
        why = "--adapter needs --output and exactly one of --base / --pretrained";
    else if (adapter && (config || nopts || weights))
        why = "--adapter takes its config from DIR/config.yaml (no --config, --opts or --weights)";
    else if (!adapter && (base || pretrained)) why = "--base and --pretrained go with --adapter";
    else if (!merge && (task || bench || have_batch)) why = "--task, --bench and --batch go with --merge";
    const char *paths[] = {config, weights, output, adapter_out, adapter, base, pretrained};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0] && !why; k++)
        if (paths[k] && strlen(paths[k]) > PATH_CAP) why = "a path longer than 4000 characters";
    if (why) {
        fprintf(stderr, PROG ": %s\n", why);
        usage(stderr);
        return 2;
    }
    if (adapter) return run_adapter_in(adapter, base, pretrained, output);

    mt_config cfg;
    int rc = load_config(&cfg, config, opts, nopts);
    if (rc) return rc;
    int t = -1;
    if (merge) {
        t = mt_config_task_index(&cfg, task);
        if (t < 0) {
            char list[MT_MAX_TASKS * (MT_TASK_NAME_LEN + 2)] = "";
            for (int k = 0; k < cfg.ntasks; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", cfg.tasks[k]);
            return failf(2, "--task %s: no such task in the config (TASKS: %s)", task, list);
        }
    }
    if (!file_exists(weights)) return failf(1, "%s: no such file", weights);
    mt_ctx *ctx;
    mt_model *m;
    if ((rc = open_model(&ctx, &m, &cfg))) return rc;
    if (mt_model_load(m, ctx, weights, MT_LOAD_CHECKPOINT)) rc = failf(1, "%s", mt_ctx_error(ctx));
    if (!rc) rc = merge ? run_merge(m, ctx, &cfg, t, output, bench, batch) : run_adapter_out(m, ctx, &cfg, adapter_out);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}
