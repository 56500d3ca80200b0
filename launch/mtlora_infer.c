/* mtlora-infer - the MTLoRA model in one process: inference on HDF5
 * images, one training-mode forward/backward with gradients written by
 * official name, and parameter / FLOP statistics.
 *
 * Exit status: 0 success, 1 runtime failure, 2 bad command line or config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/io/shards/h5io.h"
#include "mtlora/model/model.h"

static void usage(FILE *f) {
    fputs("usage: mtlora-infer [--config FILE] [--tasks a,b,...] [--opts KEY VALUE ...]\n"
          "                    [--weights FILE.safetensors|.pth | --pretrained SWIN.safetensors|.pth]\n"
          "                    [--seed N] [--batch N]\n"
          "                    (--stats | --input IMAGES.h5 (--output OUT.h5 |\n"
          "                     --grad TARGETS.h5 --grad-output GRADS.safetensors))\n"
          "  --config       official-format YAML (default: built-in Swin-T 448 MTLoRA r64)\n"
          "  --tasks        task list, as the official main.py takes it\n"
          "  --opts         KEY VALUE pairs overriding the config (until the next --flag)\n"
          "  --weights      whole-model weights (official state-dict names): safetensors, or a\n"
          "                 PyTorch .pth (an official checkpoint: its 'model' key)\n"
          "  --pretrained   ImageNet Swin weights to initialise the encoder: the Swin release's\n"
          "                 .pth, its names in safetensors, or timm's model.safetensors\n"
          "  --input        HDF5 with dataset /images, float32 N x C x S x S, normalised\n"
          "  --output       HDF5 written with one dataset per task: logits N x K x S x S\n"
          "  --grad         HDF5 with one dataset per task (semseg/human_parts/sal/edge\n"
          "                 N x S x S, normals N x 3 x S x S): one training-mode forward and\n"
          "                 backward of the weighted loss over all N images\n"
          "  --grad-output  safetensors of every trainable tensor's gradient (loss in metadata)\n"
          "  --stats        parameter counts and FLOPs\n",
          f);
}

static int fail(const char *msg) {
    fprintf(stderr, "mtlora-infer: %s\n", msg);
    return 1;
}

static int stats(mt_model *m) {
    const mt_config *c = mt_model_config(m);
    mt_param_counts pc = mt_model_param_counts(m);
    mt_flops fl = mt_model_flops(m);
    printf("model %s, tasks", c->name);
    for (int t = 0; t < c->ntasks; t++) printf(" %s", c->tasks[t]);
    printf(", %dx%d\n", c->img_size, c->img_size);
    const mt_adapter_config *ad = &c->adapter;
    if (ad->baseline != MT_BASELINE_NONE) {
        printf("adapter: none (%s baseline)\n",
               ad->baseline == MT_BASELINE_FULL_FT ? "full fine-tuning" : "decoders-only");
    } else {
        static const char *const layer[MT_LAYER_KINDS] = {"qkv", "proj", "fc1", "fc2"};
        printf("adapter:");
        for (int k = 0; k < MT_LAYER_KINDS; k++)
            printf(" %s %s%s", layer[k], mt_adapter_kind_name(ad->layer_kind[k]),
                   k < MT_LAYER_KINDS - 1 ? "," : "");
        printf("; encoder paths %d\n", ad->paths);
    }
    printf("parameters total      %12zu\n", pc.total);
    printf("trainable             %12zu\n", pc.trainable);
    printf("frozen                %12zu\n", pc.frozen);
    printf("  lora_*              %12zu\n", pc.lora);
    printf("  decoders+downsample %12zu\n", pc.decoder);
    printf("  patch embedding     %12zu\n", pc.patch_embed);
    printf("  layer norms         %12zu\n", pc.norms);
    printf("  rel. position bias  %12zu\n", pc.rel_bias);
    printf("  merging reductions  %12zu\n", pc.merging);
    printf("GFLOPs per image: forward %.2f, training step %.2f\n", 2e-9 * fl.forward_macs,
           2e-9 * fl.train_macs);
    printf("allreduced per step   %12zu bytes (the trainable gradients, float32)\n",
           4 * pc.trainable);
    return 0;
}

/* Copies images [lo, lo+B) of an N x C x S x S array. */
static const float *batch_ptr(const h5_array *a, int lo) {
    size_t per = a->count / (size_t)a->dims[0];
    return a->data + per * (size_t)lo;
}

static int check_images(const h5_array *im, const mt_config *c, const char *path) {
    if (im->ndim != 4 || im->dims[1] != c->in_chans || im->dims[2] != c->img_size ||
        im->dims[3] != c->img_size || im->dims[0] < 1) {
        fprintf(stderr,
                "mtlora-infer: %s: /images is %dD [%lld, %lld, %lld, %lld]; the model wants "
                "N x %d x %d x %d\n", path, im->ndim, (long long)im->dims[0],
                (long long)(im->ndim > 1 ? im->dims[1] : 0), (long long)(im->ndim > 2 ? im->dims[2] : 0),
                (long long)(im->ndim > 3 ? im->dims[3] : 0), c->in_chans, c->img_size, c->img_size);
        return 0;
    }
    return 1;
}

static int run_output(mt_model *m, mt_ctx *ctx, const h5_array *im, const char *out, int batch) {
    const mt_config *c = mt_model_config(m);
    const int N = (int)im->dims[0], S = c->img_size;
    char err[512];
    float *res[MT_MAX_TASKS] = {0};
    for (int t = 0; t < c->ntasks; t++) {
        res[t] = malloc((size_t)N * c->num_outputs[t] * S * S * sizeof(float));
        if (!res[t]) return fail("out of memory for the outputs");
    }
    for (int lo = 0; lo < N; lo += batch) {
        int B = N - lo < batch ? N - lo : batch;
        if (mt_model_forward(m, ctx, batch_ptr(im, lo), B, 0, 0)) return fail(mt_ctx_error(ctx));
        for (int t = 0; t < c->ntasks; t++) {
            size_t per = (size_t)c->num_outputs[t] * S * S;
            memcpy(res[t] + per * (size_t)lo, mt_model_logits(m, t), per * (size_t)B * sizeof(float));
        }
    }
    h5_writer *w;
    if (h5_writer_open(&w, out, err, sizeof err)) return fail(err);
    int bad = 0;
    for (int t = 0; t < c->ntasks && !bad; t++) {
        int64_t dims[4] = {N, c->num_outputs[t], S, S};
        bad = h5_writer_put(w, c->tasks[t], res[t], 4, dims, err, sizeof err) != MT_OK;
    }
    for (int t = 0; t < c->ntasks; t++) free(res[t]);
    if (h5_writer_close(w, !bad, bad ? NULL : err, sizeof err) != MT_OK || bad) return fail(err);
    printf("wrote %s: %d images, %d tasks\n", out, N, c->ntasks);
    return 0;
}

static int run_grad(mt_model *m, mt_ctx *ctx, const h5_array *im, const char *tpath,
                    const char *gout, uint64_t seed) {
    const mt_config *c = mt_model_config(m);
    const int N = (int)im->dims[0], S = c->img_size;
    char err[600];
    h5_array tg[MT_MAX_TASKS];
    uint8_t *labels[MT_MAX_TASKS] = {0};
    mt_targets targets;
    memset(&targets, 0, sizeof targets);
    memset(tg, 0, sizeof tg);
    int rc = 0;
    for (int t = 0; t < c->ntasks && !rc; t++) {
        if (h5_read_f32(tpath, c->tasks[t], &tg[t], err, sizeof err)) { rc = fail(err); break; }
        mt_task_kind k = c->task_kind[t];
        int64_t want_c = k == MT_TASK_NORMALS ? 3 : 1;
        const h5_array *a = &tg[t];
        int shape_ok = (k == MT_TASK_NORMALS)
                           ? a->ndim == 4 && a->dims[1] == 3 && a->dims[2] == S && a->dims[3] == S
                           : (a->ndim == 3 && a->dims[1] == S && a->dims[2] == S) ||
                                 (a->ndim == 4 && a->dims[1] == 1 && a->dims[2] == S && a->dims[3] == S);
        if (!shape_ok || a->dims[0] != N) {
            snprintf(err, sizeof err, "%s: dataset %s must be %d x %s%d x %d (as the images)", tpath,
                     c->tasks[t], N, want_c == 3 ? "3 x " : "", S, S);
            rc = fail(err);
            break;
        }
        if (k == MT_TASK_SEMSEG || k == MT_TASK_HUMAN_PARTS) {
            labels[t] = malloc(a->count);
            if (!labels[t]) { rc = fail("out of memory"); break; }
            for (size_t i = 0; i < a->count; i++) {
                float v = a->data[i];
                if (!(v == 255.0f || (v >= 0.0f && v < (float)c->num_outputs[t] && v == (float)(int)v))) {
                    snprintf(err, sizeof err, "%s: dataset %s element %zu is %g: labels are 0..%d or 255",
                             tpath, c->tasks[t], i, (double)v, c->num_outputs[t] - 1);
                    rc = fail(err);
                    break;
                }
                labels[t][i] = (uint8_t)v;
            }
            targets.labels[t] = labels[t];
        } else {
            targets.values[t] = a->data;
        }
    }
    double total = 0.0, tl[MT_MAX_TASKS] = {0};
    if (!rc) {
        param_bank *bank = mt_model_bank(m);
        memset(bank->grads, 0, bank->n_trainable * sizeof(float));
        if (mt_model_forward(m, ctx, im->data, N, 1, seed) ||
            mt_model_loss(m, ctx, &targets, &total, tl, 1) || mt_model_backward(m, ctx) ||
            mt_model_save_grads(m, ctx, gout, total))
            rc = fail(mt_ctx_error(ctx));
    }
    if (!rc) {
        printf("loss %.8f", total);
        for (int t = 0; t < c->ntasks; t++) printf(" %s %.8f", c->tasks[t], tl[t]);
        printf("\nwrote %s\n", gout);
    }
    for (int t = 0; t < MT_MAX_TASKS; t++) { free(labels[t]); h5_array_free(&tg[t]); }
    return rc;
}

int main(int argc, char **argv) {
    const char *config = NULL, *tasks = NULL, *weights = NULL, *pretrained = NULL;
    const char *input = NULL, *output = NULL, *grad = NULL, *grad_out = NULL;
    const char *opts[128];
    int nopts = 0, do_stats = 0, batch = 2;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--stats")) do_stats = 1;
        else if (!strcmp(a, "--config") && more) config = argv[++i];
        else if (!strcmp(a, "--tasks") && more) tasks = argv[++i];
        else if (!strcmp(a, "--weights") && more) weights = argv[++i];
        else if (!strcmp(a, "--pretrained") && more) pretrained = argv[++i];
        else if (!strcmp(a, "--input") && more) input = argv[++i];
        else if (!strcmp(a, "--output") && more) output = argv[++i];
        else if (!strcmp(a, "--grad") && more) grad = argv[++i];
        else if (!strcmp(a, "--grad-output") && more) grad_out = argv[++i];
        else if (!strcmp(a, "--seed") && more) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end) { fprintf(stderr, "mtlora-infer: --seed: '%s' is not a number\n", argv[i]); return 2; }
        } else if (!strcmp(a, "--batch") && more) {
            batch = atoi(argv[++i]);
            if (batch < 1) { fprintf(stderr, "mtlora-infer: --batch must be >= 1\n"); return 2; }
        } else if (!strcmp(a, "--opts")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (nopts >= 128) { fprintf(stderr, "mtlora-infer: too many --opts\n"); return 2; }
                opts[nopts++] = argv[++i];
            }
            if (nopts % 2) { fprintf(stderr, "mtlora-infer: --opts takes KEY VALUE pairs\n"); return 2; }
        } else {
            fprintf(stderr, "mtlora-infer: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int modes = do_stats + (output != NULL) + (grad != NULL);
    if (modes != 1 || ((output || grad) && !input) || (grad && !grad_out) || (!grad && grad_out) ||
        (weights && pretrained)) {
        fprintf(stderr, "mtlora-infer: choose one of --stats, --input with --output, or --input with "
                        "--grad and --grad-output (and at most one of --weights / --pretrained)\n");
        usage(stderr);
        return 2;
    }
    char err[512];
    mt_config cfg;
    mt_status st = mt_config_start(&cfg, config, err, sizeof err);
    if (!st && tasks) st = mt_config_set_tasks(&cfg, tasks, err, sizeof err);
    for (int k = 0; !st && k < nopts; k += 2) st = mt_config_set(&cfg, opts[k], opts[k + 1], err, sizeof err);
    if (!st) st = mt_config_finalize(&cfg, err, sizeof err);
    cfg.amp_enable = 0; /* AMP is a training setting: predictions are exact f32 */
    if (st) { fprintf(stderr, "mtlora-infer: %s\n", err); return 2; }
    mt_ctx *ctx;
    if (mt_ctx_create(&ctx, err, sizeof err)) return fail(err);
    mt_model *m;
    if (mt_model_create(&m, ctx, &cfg, seed)) { int r = fail(mt_ctx_error(ctx)); mt_ctx_destroy(ctx); return r; }
    int rc = 0;
    if (weights && mt_model_load(m, ctx, weights, MT_LOAD_CHECKPOINT)) rc = fail(mt_ctx_error(ctx));
    if (!rc && pretrained && mt_model_load(m, ctx, pretrained, MT_LOAD_PRETRAINED))
        rc = fail(mt_ctx_error(ctx));
    if (!rc && do_stats) rc = stats(m);
    if (!rc && input) {
        h5_array im;
        if (h5_read_f32(input, "images", &im, err, sizeof err)) {
            rc = fail(err);
        } else {
            if (!check_images(&im, &cfg, input)) rc = 1;
            else if (output) rc = run_output(m, ctx, &im, output, batch);
            else rc = run_grad(m, ctx, &im, grad, grad_out, seed);
            h5_array_free(&im);
        }
    }
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return rc;
}
