/* test_train_step.c - the library's one training step (train_step.h), the
 * step mtlora_dist and bench/train_step run:
 *  - equals the composition it documents (zero, forward, loss, backward,
 *    clip by global norm, scheduled LR, AdamW) bit for bit, on two models
 *    built alike;
 *  - a non-finite gradient skips the update: values, moments and the AdamW
 *    step count unchanged, the result says so;
 *  - clipping: with TRAIN.CLIP_GRAD far below the gradient norm the update
 *    differs from the unclipped one and the reported norm is the unclipped;
 *  - accumulation: two micro-batches add their losses and gradients (each
 *    with its own batch and dropout stream), bit for bit;
 *  - the reduction hooks: begin once before the last backward, ready ranges
 *    that cover every trainable value exactly once, finish once after. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/rng.h"
#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/train/train_step.h"
#include "test_util.h"

static char err[1024];

static void tiny_config(mt_config *c, const char *clip, int batch, int acc) {
    mt_config_default(c);
    char b[16], a[16];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(a, sizeof a, "%d", acc);
    const char *kv[][2] = {{"DATA.IMG_SIZE", "32"}, {"MODEL.SWIN.EMBED_DIM", "8"},
                           {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
                           {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
                           {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[3]"},
                           {"MODEL.MTLORA.SHARED_SCALE", "[2.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.1]"},
                           {"TASKS", "[semseg, sal, normals]"}, {"TRAIN.CLIP_GRAD", clip},
                           {"DATA.BATCH_SIZE", b}, {"TRAIN.ACCUMULATION_STEPS", a},
                           {"TRAIN.WARMUP_EPOCHS", "0"}, {"TRAIN.EPOCHS", "3"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(mt_config_set(c, kv[i][0], kv[i][1], err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_config_finalize(c, err, sizeof err) == MT_OK, "%s", err);
}

typedef struct {
    mt_config cfg;
    mt_ctx *ctx;
    mt_model *m;
    train_state ts;
    synthetic_batch own;
    int poison; /* put a NaN into the zeroed gradients at micro-batch 0 */
    int calls;
} fx;

static void fx_open(fx *f, const char *clip, int batch, int acc) {
    memset(f, 0, sizeof *f);
    tiny_config(&f->cfg, clip, batch, acc);
    f->ctx = test_ctx();
    ck_assert_int_eq(mt_model_create(&f->m, f->ctx, &f->cfg, 5), MT_OK);
    param_bank *bank = mt_model_bank(f->m);
    for (int i = 0; i < bank->count; i++) { /* LoRA B starts at zero: give it values */
        const param_entry *e = &bank->entries[i];
        if (strstr(e->name, "lora_") && strstr(e->name, "_B"))
            fill_uniform(param_bank_value(bank, e), e->count, 40 + (uint64_t)i, -0.2f, 0.2f);
    }
    ck_assert_msg(train_state_init(&f->ts, f->m, f->ctx, &f->cfg, 1, 4, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_int_eq(synthetic_batch_alloc(&f->own, batch, 32, err, sizeof err), MT_OK);
}

static void fx_close(fx *f) {
    synthetic_batch_free(&f->own);
    train_state_free(&f->ts);
    mt_model_destroy(f->m);
    mt_ctx_destroy(f->ctx);
}

/* Samples (update * acc + micro) * B ...: the same images whatever the split. */
static mt_status next(void *user, long u, int micro, train_batch *tb, char *e, size_t elen) {
    (void)e, (void)elen;
    fx *f = user;
    f->calls++;
    if (micro == 0 && f->poison) mt_model_bank(f->m)->grads[7] = NAN;
    synthetic_batch_fill(&f->own, &f->cfg, 11, ((int64_t)u * f->ts.accumulation + micro) * f->own.B, tb);
    return MT_OK;
}

static size_t n_trainable(fx *f) { return mt_model_bank(f->m)->n_trainable; }

START_TEST(step_is_the_documented_composition) {
    fx a, b;
    fx_open(&a, "5.0", 2, 1);
    fx_open(&b, "5.0", 2, 1);
    param_bank *ba = mt_model_bank(a.m), *bb = mt_model_bank(b.m);
    ck_assert_mem_eq(ba->trainable, bb->trainable, sizeof(float) * ba->n_trainable);
    for (long u = 0; u < 3; u++) {
        train_step_result r;
        ck_assert_msg(train_step(&a.ts, u, next, &a, &r, err, sizeof err) == MT_OK, "%s", err);
        ck_assert(r.finite);
        ck_assert_int_eq(r.micro_batches, 1);
        /* by hand */
        memset(bb->grads, 0, sizeof(float) * bb->n_trainable);
        train_batch tb;
        synthetic_batch_fill(&b.own, &b.cfg, 11, u * 2, &tb);
        double loss, task[MT_MAX_TASKS];
        const uint64_t seed = mt_rng_mix64(((uint64_t)b.cfg.seed << 32) ^ (uint64_t)u);
        ck_assert_int_eq(mt_model_forward(b.m, b.ctx, tb.images, 2, 1, seed), MT_OK);
        ck_assert_int_eq(mt_model_loss(b.m, b.ctx, &tb.targets, &loss, task, 1), MT_OK);
        ck_assert_int_eq(mt_model_backward(b.m, b.ctx), MT_OK);
        ck_assert_double_eq(r.loss[0], loss);
        for (int t = 0; t < b.cfg.ntasks; t++) ck_assert_double_eq(r.loss[1 + t], task[t]);
        double ss = 0;
        for (size_t i = 0; i < bb->n_trainable; i++) ss += (double)bb->grads[i] * bb->grads[i];
        const double norm = sqrt(ss);
        ck_assert_double_eq_tol(r.grad_norm, norm, 1e-9 * norm);
        const double coef = 5.0 / (norm + 1e-6);
        if (coef < 1.0)
            for (size_t i = 0; i < bb->n_trainable; i++) bb->grads[i] *= (float)coef;
        adamw_config ac = b.ts.adam;
        ac.lr = (float)lr_schedule_for_update(&b.ts.sched, u);
        ck_assert_double_eq(r.lr, lr_schedule_for_update(&b.ts.sched, u));
        ck_assert_int_eq(adamw_step(b.ctx, bb->trainable, bb->grads, b.ts.mom, b.ts.vel, bb->n_trainable,
                                    b.ts.groups, b.ts.ngroups, ac, u + 1),
                         MT_OK);
        ck_assert_mem_eq(ba->trainable, bb->trainable, sizeof(float) * ba->n_trainable);
        ck_assert_mem_eq(a.ts.mom, b.ts.mom, sizeof(float) * ba->n_trainable);
    }
    ck_assert_int_eq(a.ts.adam_step, 3);
    fx_close(&a);
    fx_close(&b);
}
END_TEST

START_TEST(non_finite_gradient_skips_the_update) {
    fx f;
    fx_open(&f, "5.0", 2, 1);
    train_step_result r;
    ck_assert_int_eq(train_step(&f.ts, 0, next, &f, &r, err, sizeof err), MT_OK);
    const size_t n = n_trainable(&f);
    float *before = malloc(sizeof(float) * n), *mom = malloc(sizeof(float) * n);
    memcpy(before, mt_model_bank(f.m)->trainable, sizeof(float) * n);
    memcpy(mom, f.ts.mom, sizeof(float) * n);
    f.poison = 1;
    ck_assert_int_eq(train_step(&f.ts, 1, next, &f, &r, err, sizeof err), MT_OK);
    ck_assert_int_eq(r.finite, 0);
    ck_assert_int_eq(f.ts.adam_step, 1);
    ck_assert_mem_eq(before, mt_model_bank(f.m)->trainable, sizeof(float) * n);
    ck_assert_mem_eq(mom, f.ts.mom, sizeof(float) * n);
    f.poison = 0; /* and training goes on */
    ck_assert_int_eq(train_step(&f.ts, 2, next, &f, &r, err, sizeof err), MT_OK);
    ck_assert(r.finite);
    ck_assert_int_eq(f.ts.adam_step, 2);
    ck_assert(memcmp(before, mt_model_bank(f.m)->trainable, sizeof(float) * n) != 0);
    free(before);
    free(mom);
    fx_close(&f);
}
END_TEST

START_TEST(clipping_changes_the_update) {
    fx a, b;
    fx_open(&a, "0.0", 2, 1);   /* no clipping */
    fx_open(&b, "1e-4", 2, 1);  /* far below any gradient norm */
    train_step_result ra, rb;
    ck_assert_int_eq(train_step(&a.ts, 0, next, &a, &ra, err, sizeof err), MT_OK);
    ck_assert_int_eq(train_step(&b.ts, 0, next, &b, &rb, err, sizeof err), MT_OK);
    ck_assert(ra.grad_norm > 1e-2);
    ck_assert_double_eq(ra.grad_norm, rb.grad_norm); /* reported before clipping */
    /* clipped gradients: norm 1e-4 in the buffer */
    const param_bank *bb = mt_model_bank(b.m);
    double ss = 0;
    for (size_t i = 0; i < bb->n_trainable; i++) ss += (double)bb->grads[i] * bb->grads[i];
    ck_assert_double_eq_tol(sqrt(ss), 1e-4, 1e-6);
    /* AdamW's first step is sign-like, so compare the first moments */
    ck_assert(max_rel_err(b.ts.mom, a.ts.mom, bb->n_trainable) > 0.5);
    fx_close(&a);
    fx_close(&b);
}
END_TEST

START_TEST(accumulation_adds_micro_batches) {
    fx two, hand;
    fx_open(&two, "0.0", 2, 2);  /* no clipping: the buffer keeps the summed gradients */
    fx_open(&hand, "0.0", 2, 2);
    train_step_result r;
    ck_assert_int_eq(train_step(&two.ts, 0, next, &two, &r, err, sizeof err), MT_OK);
    ck_assert_int_eq(r.micro_batches, 2);
    ck_assert_int_eq(two.calls, 2);
    /* by hand: both micro-batches' gradients added, not averaged (as the
     * official loop), each with its own dropout stream */
    param_bank *bh = mt_model_bank(hand.m);
    memset(bh->grads, 0, sizeof(float) * bh->n_trainable);
    double sum = 0;
    for (int micro = 0; micro < 2; micro++) {
        train_batch tb;
        synthetic_batch_fill(&hand.own, &hand.cfg, 11, (int64_t)micro * 2, &tb);
        const uint64_t seed = mt_rng_mix64(((uint64_t)hand.cfg.seed << 32) ^ (uint64_t)micro);
        double loss;
        ck_assert_int_eq(mt_model_forward(hand.m, hand.ctx, tb.images, 2, 1, seed), MT_OK);
        ck_assert_int_eq(mt_model_loss(hand.m, hand.ctx, &tb.targets, &loss, NULL, 1), MT_OK);
        ck_assert_int_eq(mt_model_backward(hand.m, hand.ctx), MT_OK);
        sum += loss;
    }
    ck_assert_double_eq(r.loss[0], sum);
    ck_assert_mem_eq(mt_model_bank(two.m)->grads, bh->grads, sizeof(float) * bh->n_trainable);
    fx_close(&two);
    fx_close(&hand);
}
END_TEST

typedef struct {
    int begins, finishes, order_ok;
    unsigned char *seen; /* (n_trainable,) times each value was reported */
    size_t n;
} hook_log;

static void h_begin(void *u) {
    hook_log *h = u;
    h->begins++;
    if (h->finishes) h->order_ok = 0;
}
static void h_ready(void *u, size_t off, size_t cnt) {
    hook_log *h = u;
    if (!h->begins || h->finishes) h->order_ok = 0;
    for (size_t i = off; i < off + cnt && i < h->n; i++) h->seen[i]++;
}
static mt_status h_finish(void *u, double *exposed, char *e, size_t elen) {
    (void)e, (void)elen;
    hook_log *h = u;
    h->finishes++;
    *exposed = 0.25;
    return MT_OK;
}

START_TEST(reduction_hooks_cover_every_gradient_once) {
    fx f;
    fx_open(&f, "5.0", 2, 2);
    hook_log h = {0, 0, 1, NULL, n_trainable(&f)};
    h.seen = calloc(h.n, 1);
    f.ts.reduce = (train_reduce_hooks){h_begin, h_ready, h_finish, &h};
    train_step_result r;
    ck_assert_int_eq(train_step(&f.ts, 0, next, &f, &r, err, sizeof err), MT_OK);
    ck_assert_int_eq(h.begins, 1);
    ck_assert_int_eq(h.finishes, 1);
    ck_assert(h.order_ok);
    ck_assert_double_eq(r.exposed_comm_s, 0.25);
    /* no_grad tensors (none in this model) would be the only exception */
    size_t once = 0;
    for (size_t i = 0; i < h.n; i++) once += h.seen[i] == 1;
    ck_assert_uint_eq(once, h.n);
    free(h.seen);
    fx_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train_step");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, step_is_the_documented_composition);
    tcase_add_test(tc, non_finite_gradient_skips_the_update);
    tcase_add_test(tc, clipping_changes_the_update);
    tcase_add_test(tc, accumulation_adds_micro_batches);
    tcase_add_test(tc, reduction_hooks_cover_every_gradient_once);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
