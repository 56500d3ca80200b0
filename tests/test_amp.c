/* test_amp.c - the accuracy gates of mixed precision, on the default
 * model (Swin-T 448, MTLoRA shared rank 64, task rank 4, four tasks): the
 * same trainable weights and batch through one forward + loss + backward
 * with the frozen encoder's matmuls in bf16 (AMP_ENABLE True, AMP.MATMUL
 * bf16) and in f32 (AMP_ENABLE False). Not timed.
 *
 * Why not at the random initialisation: there the parameter gradients are
 * sums with heavy cancellation, and merely rounding the frozen weights to
 * bf16 in an all-f32 run moves the gradients of 132 of 178 tensors by more
 * than 5% (measured) - the test point, not the arithmetic, would be judged.
 * Six normalised-gradient steps in f32 first give a point where gradients
 * carry signal; both runs then start from those trainable values.
 *
 * Gates (docs/performance.md gives the measured values):
 *  - the total and every task loss within 1e-2 relative;
 *  - all trainable gradients together within 5e-2 relative (L2);
 *  - per tensor (relative L2): every one within 0.2, and within what
 *    storing the frozen weights in bf16 (which the memory goal asks for)
 *    costs by itself: the third run, f32 arithmetic on bf16-rounded
 *    weights, is the floor, and bf16 arithmetic may add no more than that
 *    (2 x floor + 1e-2). The 5e-2 for every tensor cannot hold: the
 *    floor run alone exceeds it on about 10% of the tensors (early-stage
 *    and rank-4 task terms, measured); the counts are printed;
 *  - excluded: the bias of each decoder's conv before BatchNorm, whose
 *    exact gradient is zero (the normalisation removes it), so both runs
 *    hold only rounding noise; checked small against its weight's gradient.
 * Skipped (exit 77) where oneDNN has no bf16 matmul. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/train/train_step.h"
#include "test_util.h"

enum { BATCH = 1, PRESTEPS = 6 };
enum { RUN_F32, RUN_BF16, RUN_F32_ROUNDED_WEIGHTS };

typedef struct {
    double loss, task[MT_MAX_TASKS];
    float *grads; /* (n_trainable) */
    mt_precision prec;
} step_result;

static float *start_values; /* (n_trainable) the trainable values both runs start from */

/* Forward, loss and backward of batch `seed` from the current values. */
static int step(mt_model *m, mt_ctx *ctx, const mt_config *cfg, synthetic_batch *sb,
                uint64_t seed, double *loss, double *task) {
    train_batch tb;
    synthetic_batch_fill(sb, cfg, seed, 0, &tb);
    param_bank *bank = mt_model_bank(m);
    memset(bank->grads, 0, bank->n_trainable * sizeof(float));
    return mt_model_forward(m, ctx, tb.images, BATCH, 1, 11 + seed) ||
           mt_model_loss(m, ctx, &tb.targets, loss, task, 1) || mt_model_backward(m, ctx);
}

static int run(int kind, step_result *r, char *err, size_t errlen) {
    mt_config cfg;
    if (mt_config_builtin(&cfg, err, errlen) ||
        mt_config_set(&cfg, "AMP_ENABLE", kind == RUN_BF16 ? "True" : "False", err, errlen) ||
        mt_config_set(&cfg, "AMP.MATMUL", "bf16", err, errlen) ||
        mt_config_finalize(&cfg, err, errlen))
        return 1;
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    synthetic_batch sb;
    if (mt_model_create(&m, ctx, &cfg, 7)) {
        snprintf(err, errlen, "%s", mt_ctx_error(ctx));
        mt_ctx_destroy(ctx);
        return 1;
    }
    r->prec = mt_model_precision(m);
    if (kind == RUN_BF16 && !r->prec.bf16) { /* nothing to compare: main skips */
        mt_model_destroy(m);
        mt_ctx_destroy(ctx);
        return 0;
    }
    param_bank *bank = mt_model_bank(m);
    int bad = synthetic_batch_alloc(&sb, BATCH, cfg.img_size, err, errlen) != MT_OK;
    for (int k = 0; !bad && !start_values && k < PRESTEPS; k++) {
        double l; /* x -= g / |g|: a unit step along the gradient */
        bad = step(m, ctx, &cfg, &sb, 100 + (uint64_t)k, &l, NULL);
        double n2 = 0.0;
        for (size_t i = 0; i < bank->n_trainable; i++) n2 += (double)bank->grads[i] * bank->grads[i];
        for (size_t i = 0; !bad && i < bank->n_trainable; i++)
            bank->trainable[i] -= (float)(1.0 / sqrt(n2)) * bank->grads[i];
        if (k == PRESTEPS - 1 && !bad) {
            start_values = malloc(bank->n_trainable * sizeof(float));
            bad = !start_values;
            if (!bad) memcpy(start_values, bank->trainable, bank->n_trainable * sizeof(float));
        }
    }
    if (!bad) memcpy(bank->trainable, start_values, bank->n_trainable * sizeof(float));
    if (!bad && kind == RUN_F32_ROUNDED_WEIGHTS) {
        mt_bf16 *h = malloc(bank->n_frozen * sizeof *h);
        bad = !h;
        if (h) {
            mt_f32_to_bf16(h, bank->frozen, bank->n_frozen);
            mt_bf16_to_f32(bank->frozen, h, bank->n_frozen);
            free(h);
        }
    }
    if (!bad) bad = step(m, ctx, &cfg, &sb, 3, &r->loss, r->task);
    if (bad && !err[0]) snprintf(err, errlen, "%s", mt_ctx_error(ctx));
    r->grads = bad ? NULL : malloc(bank->n_trainable * sizeof(float));
    if (r->grads) memcpy(r->grads, bank->grads, bank->n_trainable * sizeof(float));
    if (!bad) synthetic_batch_free(&sb);
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    return bad || !r->grads;
}

/* ||a - b|| / ||b|| over one tensor (0 when both vanish, inf when only b). */
static double rel_l2(const float *a, const float *b, size_t n) {
    double d2 = 0.0, r2 = 0.0;
    for (size_t k = 0; k < n; k++) {
        const double d = (double)a[k] - b[k];
        d2 += d * d;
        r2 += (double)b[k] * b[k];
    }
    return r2 > 0.0 ? sqrt(d2 / r2) : d2 > 0.0 ? INFINITY : 0.0;
}

static int bn_cancelled_bias(const char *name) {
    const char *p = strstr(name, ".last_layer.0.bias");
    return strncmp(name, "decoders.", 9) == 0 && p && !p[strlen(".last_layer.0.bias")];
}

int main(void) {
    char err[1024] = "";
    step_result h = {0}, f = {0}, fr = {0};
    if (run(RUN_BF16, &h, err, sizeof err)) { fprintf(stderr, "bf16 step: %s\n", err); return 1; }
    printf("bf16 run: %s\n", h.prec.note);
    if (!h.prec.bf16) {
        printf("test_amp: no bf16 matmul on this CPU: skipped\n");
        free(h.grads);
        return 77;
    }
    if (run(RUN_F32, &f, err, sizeof err)) { fprintf(stderr, "f32 step: %s\n", err); return 1; }
    if (run(RUN_F32_ROUNDED_WEIGHTS, &fr, err, sizeof err)) {
        fprintf(stderr, "f32 step on rounded weights: %s\n", err);
        return 1;
    }
    if (f.prec.bf16) { fprintf(stderr, "AMP_ENABLE False still ran bf16\n"); return 1; }
    /* the layout of the gradient buffer */
    mt_config cfg;
    mt_ctx *ctx = test_ctx();
    mt_model *m;
    if (mt_config_builtin(&cfg, err, sizeof err) || mt_config_finalize(&cfg, err, sizeof err) ||
        mt_model_create(&m, ctx, &cfg, 7)) {
        fprintf(stderr, "layout model: %s %s\n", err, mt_ctx_error(ctx));
        return 1;
    }
    const param_bank *bank = mt_model_bank(m);
    int fails = 0;
    const double lrel = fabs(h.loss - f.loss) / fabs(f.loss);
    printf("loss: f32 %.6f bf16 %.6f, relative %.2e (gate 1e-2)\n", f.loss, h.loss, lrel);
    fails += !(lrel <= 1e-2);
    for (int t = 0; t < cfg.ntasks; t++) {
        const double rel = fabs(h.task[t] - f.task[t]) / fmax(fabs(f.task[t]), 1e-12);
        printf("  %-12s f32 %.6f bf16 %.6f, relative %.2e\n", cfg.tasks[t], f.task[t], h.task[t], rel);
        fails += !(rel <= 1e-2);
    }
    const double global = rel_l2(h.grads, f.grads, bank->n_trainable);
    printf("all gradients: relative L2 %.3e (gate 5e-2)\n", global);
    fails += !(global <= 5e-2);
    int counted = 0, within = 0, floor_within = 0, differ = 0;
    double worst = 0.0, worst_floor = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (e->kind != MT_PARAM_TRAINABLE || e->no_grad) continue;
        const float *gh = h.grads + e->offset, *gf = f.grads + e->offset, *gr = fr.grads + e->offset;
        if (bn_cancelled_bias(e->name)) { /* its weight is the entry before it */
            const param_entry *w = &bank->entries[i - 1];
            double bn = 0.0, wn = 0.0;
            for (size_t k = 0; k < e->count; k++) bn += (double)gh[k] * gh[k];
            for (size_t k = 0; k < w->count; k++) wn += (double)h.grads[w->offset + k] * h.grads[w->offset + k];
            if (!(sqrt(bn) <= 1e-3 * sqrt(wn))) {
                printf("  FAIL %s: |g| %.3e not small against its weight's %.3e\n", e->name,
                       sqrt(bn), sqrt(wn));
                fails++;
            }
            continue;
        }
        const double rel = rel_l2(gh, gf, e->count), floor = rel_l2(gr, gf, e->count);
        if (rel == 0.0 && floor == 0.0 && rel_l2(gf, gh, e->count) == 0.0) continue; /* both zero */
        counted++;
        differ += rel > 0.0;
        within += rel <= 5e-2;
        floor_within += floor <= 5e-2;
        if (rel > worst) worst = rel, worst_name = e->name;
        if (floor > worst_floor) worst_floor = floor;
        if (!(rel <= 0.2)) { printf("  FAIL %s: relative L2 %.3e (gate 0.2)\n", e->name, rel); fails++; }
        if (!(rel <= 2.0 * floor + 1e-2)) {
            printf("  FAIL %s: bf16 %.3e, more than twice what bf16 weights cost (%.3e)\n", e->name,
                   rel, floor);
            fails++;
        }
    }
    printf("per tensor: %d of %d within 5e-2, worst %.3e (%s, gate 0.2); bf16 weights alone in "
           "f32: %d within 5e-2, worst %.3e\n", within, counted, worst, worst_name, floor_within,
           worst_floor);
    if (!differ) { printf("  FAIL: bf16 gradients equal the f32 ones: bf16 did not run\n"); fails++; }
    mt_model_destroy(m);
    mt_ctx_destroy(ctx);
    free(h.grads); free(f.grads); free(fr.grads); free(start_values);
    printf("%s\n", fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}
