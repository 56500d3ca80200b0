/* test_recompute.c - TRAIN.USE_CHECKPOINT (activation recompute): every
 * block keeps only its output and task outputs (the blocks of the later
 * half of the stages, here stages 1 and 2 of 0..2, also their matmul
 * outputs), the rest of its activations (the task paths' fc1 and GELU
 * outputs one buffer for all tasks, recomputed task by task), every merge's
 * (but its output and low-rank intermediate) and every task decoder's (but
 * its logits) share one area, and the backward re-runs each decoder's,
 * merge's and block's forward (or the matmul-free part of it) before its
 * backward. In float32 (AMP off) that must change
 * nothing: two models built alike, one with and one without, trained two
 * steps (train_step: forward, loss, backward, clipping, AdamW) on the same
 * batches with LoRA dropout and drop path on give the same losses, logits,
 * gradient buffer, moments, parameters and batch-norm running statistics
 * bit for bit, for every adapter
 * kind (mtlora with task paths, with and without proj task terms, lora,
 * mtl_lora and cgc_lora with one encoder path per task, decoders_only);
 * and the activation arena shrinks by at least 40%. A non-boolean
 * TRAIN.USE_CHECKPOINT is refused naming the key. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/train/train_step.h"
#include "test_util.h"

static char err[1024];

enum { BATCH = 2, IMG = 64, STEPS = 2 };

/* The test model: 64x64 images, three stages of 3, 3, 2 blocks (16x16, 8x8,
 * 4x4 tokens, 4x4 windows: shifted and unshifted blocks), three tasks,
 * MTLoRA with task ranks unlike the shared one, LoRA dropout, drop path;
 * float32. kind: MODEL.ADAPTER.KIND (NULL: mtlora); extra: key/value
 * pairs, NULL-terminated. */
static void make_config(mt_config *c, const char *kind, const char *const *extra, int ckpt) {
    mt_config_default(c);
    const char *kv[][2] = {
        {"DATA.IMG_SIZE", "64"}, {"MODEL.SWIN.EMBED_DIM", "16"},
        {"MODEL.SWIN.DEPTHS", "[3, 3, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2, 4]"},
        {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4, 4]"},
        {"TASKS", "[semseg, sal, normals]"}, {"MODEL.MTLORA.ENABLED", "True"},
        {"MODEL.MTLORA.R_PER_TASK", "{shared: [4], semseg: [2], sal: [3], normals: [1]}"},
        {"MODEL.MTLORA.R", "[4]"}, {"MODEL.MTLORA.SHARED_SCALE", "[2.0]"},
        {"MODEL.MTLORA.DROPOUT", "[0.2]"},
        {"MODEL.MTLORA.DOWNSAMPLER_ENABLED", "True"}, {"MODEL.DROP_PATH_RATE", "0.4"},
        {"AMP_ENABLE", "False"}, {"DATA.BATCH_SIZE", "2"}, {"TRAIN.WARMUP_EPOCHS", "0"},
        {"TRAIN.EPOCHS", "3"}, {"TRAIN.USE_CHECKPOINT", ckpt ? "True" : "False"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(mt_config_set(c, kv[i][0], kv[i][1], err, sizeof err) == MT_OK, "%s", err);
    if (kind)
        ck_assert_msg(mt_config_set(c, "MODEL.ADAPTER.KIND", kind, err, sizeof err) == MT_OK,
                      "%s", err);
    for (int i = 0; extra && extra[i]; i += 2)
        ck_assert_msg(mt_config_set(c, extra[i], extra[i + 1], err, sizeof err) == MT_OK, "%s",
                      err);
    ck_assert_msg(mt_config_finalize(c, err, sizeof err) == MT_OK, "%s", err);
    c->amp_enable = 0; /* float32: bit identity is the claim */
    ck_assert_int_eq(c->use_checkpoint, ckpt);
}

typedef struct {
    mt_config cfg;
    mt_ctx *ctx;
    mt_model *m;
    train_state ts;
    synthetic_batch own;
} fx;

static void fx_open(fx *f, const char *kind, const char *const *extra, int ckpt) {
    memset(f, 0, sizeof *f);
    make_config(&f->cfg, kind, extra, ckpt);
    f->ctx = test_ctx();
    ck_assert_int_eq(mt_model_create(&f->m, f->ctx, &f->cfg, 5), MT_OK);
    param_bank *bank = mt_model_bank(f->m);
    for (int i = 0; i < bank->count; i++) { /* LoRA B starts at zero: give it values */
        const param_entry *e = &bank->entries[i];
        if (strstr(e->name, "lora_") && strstr(e->name, "_B"))
            fill_uniform(param_bank_value(bank, e), e->count, 40 + (uint64_t)i, -0.2f, 0.2f);
    }
    /* NaNs over the recompute area before each layer's recompute: a tensor
     * read but neither kept nor recomputed fails the comparison */
    mt_model_poison_recompute(f->m, 1);
    ck_assert_msg(train_state_init(&f->ts, f->m, f->ctx, &f->cfg, 1, 4, err, sizeof err) == MT_OK,
                  "%s", err);
    ck_assert_int_eq(synthetic_batch_alloc(&f->own, BATCH, IMG, err, sizeof err), MT_OK);
}

static void fx_close(fx *f) {
    synthetic_batch_free(&f->own);
    train_state_free(&f->ts);
    mt_model_destroy(f->m);
    mt_ctx_destroy(f->ctx);
}

static mt_status next(void *user, long u, int micro, train_batch *tb, char *e, size_t elen) {
    (void)micro, (void)e, (void)elen;
    fx *f = user;
    synthetic_batch_fill(&f->own, &f->cfg, 11, (int64_t)u * BATCH, tb);
    return MT_OK;
}

/* Trains both models STEPS steps and compares everything after each;
 * *plain_bytes / *ckpt_bytes: the activation arenas without / with recompute. */
static void check_same_training(const char *kind, const char *const *extra, size_t *plain_bytes,
                                size_t *ckpt_bytes) {
    fx a, b; /* a: every activation kept; b: TRAIN.USE_CHECKPOINT */
    fx_open(&a, kind, extra, 0);
    fx_open(&b, kind, extra, 1);
    const param_bank *ba = mt_model_bank(a.m), *bb = mt_model_bank(b.m);
    const size_t n = ba->n_trainable;
    ck_assert_uint_eq(n, bb->n_trainable);
    ck_assert_mem_eq(ba->trainable, bb->trainable, sizeof(float) * n);
    for (long u = 0; u < STEPS; u++) {
        train_step_result ra, rb;
        ck_assert_msg(train_step(&a.ts, u, next, &a, &ra, err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(train_step(&b.ts, u, next, &b, &rb, err, sizeof err) == MT_OK, "%s", err);
        ck_assert(ra.finite && rb.finite);
        for (int t = 0; t <= a.cfg.ntasks; t++)
            ck_assert_mem_eq(&ra.loss[t], &rb.loss[t], sizeof(double));
        ck_assert_mem_eq(&ra.grad_norm, &rb.grad_norm, sizeof(double));
        ck_assert(ra.grad_norm > 0.0);
        for (int t = 0; t < a.cfg.ntasks; t++) {
            const size_t nl = (size_t)BATCH * a.cfg.num_outputs[t] * IMG * IMG;
            ck_assert_mem_eq(mt_model_logits(a.m, t), mt_model_logits(b.m, t), sizeof(float) * nl);
        }
        /* the gradient buffer (clipped by the same factor), moments, values */
        ck_assert_mem_eq(ba->grads, bb->grads, sizeof(float) * n);
        ck_assert_mem_eq(a.ts.mom, b.ts.mom, sizeof(float) * n);
        ck_assert_mem_eq(a.ts.vel, b.ts.vel, sizeof(float) * n);
        ck_assert_mem_eq(ba->trainable, bb->trainable, sizeof(float) * n);
        /* batch-norm running statistics: the decoders' recomputed forward
         * must not move them a second time */
        ck_assert_uint_eq(ba->n_buffer, bb->n_buffer);
        ck_assert_mem_eq(ba->buffers, bb->buffers, sizeof(float) * ba->n_buffer);
        ck_assert_int_eq(mt_model_bn_tracked(a.m), mt_model_bn_tracked(b.m));
    }
    /* the comparison is not of zeros: most trainable values get a gradient */
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += ba->grads[i] != 0.0f;
    ck_assert_uint_gt(nonzero, n / 2);
    *plain_bytes = mt_model_activation_bytes(a.m);
    *ckpt_bytes = mt_model_activation_bytes(b.m);
    printf("%-14s activations %.2f MB kept, %.2f MB with recompute (%.0f%% less)\n",
           kind ? kind : "mtlora", *plain_bytes / 1e6, *ckpt_bytes / 1e6,
           100.0 * (1.0 - (double)*ckpt_bytes / (double)*plain_bytes));
    fflush(stdout); /* Check's forked child may not flush at a failure */
    ck_assert_uint_gt(*ckpt_bytes, 0);
    ck_assert_uint_lt(*ckpt_bytes, *plain_bytes);
    fx_close(&a);
    fx_close(&b);
}

START_TEST(mtlora_task_paths_same_and_smaller) {
    size_t plain, ckpt;
    check_same_training(NULL, NULL, &plain, &ckpt);
    ck_assert_msg(ckpt * 10 <= plain * 6, "activations %zu -> %zu: less than 40%% saved", plain,
                  ckpt);
}
END_TEST

START_TEST(mtlora_without_proj_task_terms_same) {
    /* task paths without proj / fc1 task terms: the fc1 and fc2 task terms
     * read the shared dropped inputs, no attention residual on the path */
    static const char *const fc1[] = {"MODEL.MTLORA.PROJ_ENABLED", "False", NULL};
    static const char *const fc2[] = {"MODEL.MTLORA.PROJ_ENABLED", "False",
                                      "MODEL.MTLORA.FC1_ENABLED", "False", NULL};
    size_t plain, ckpt;
    check_same_training(NULL, fc1, &plain, &ckpt);
    check_same_training(NULL, fc2, &plain, &ckpt);
}
END_TEST

START_TEST(mtlora_one_task_same) {
    /* one task: its fc1 / GELU outputs are its own buffers, so a block that
     * keeps its matmul outputs recomputes them itself (no per-task pass) */
    static const char *const one[] = {"TASKS", "[semseg]", "MODEL.MTLORA.R_PER_TASK",
                                      "{shared: [4], semseg: [2]}", NULL};
    size_t plain, ckpt;
    check_same_training(NULL, one, &plain, &ckpt);
}
END_TEST

START_TEST(lora_same) {
    size_t plain, ckpt;
    check_same_training("lora", NULL, &plain, &ckpt);
    ck_assert_msg(ckpt * 10 <= plain * 6, "activations %zu -> %zu", plain, ckpt);
}
END_TEST

START_TEST(mtl_lora_paths_same) {
    static const char *const extra[] = {"MODEL.ADAPTER.MTL_LORA.DROPOUT", "0.2",
                                        "MODEL.ADAPTER.MTL_LORA.TAU", "0.5",
                                        "MODEL.ADAPTER.FC2", "lora", NULL};
    size_t plain, ckpt;
    check_same_training("mtl_lora", extra, &plain, &ckpt);
    ck_assert_msg(ckpt * 10 <= plain * 6, "activations %zu -> %zu", plain, ckpt);
}
END_TEST

START_TEST(cgc_lora_paths_same) {
    static const char *const extra[] = {"MODEL.ADAPTER.CGC_LORA.DROPOUT", "0.2",
                                        "MODEL.ADAPTER.CGC_LORA.GATE_DIM", "4",
                                        "MODEL.MTLORA.R_PER_TASK",
                                        "{shared: [8], semseg: [2], sal: [3], normals: [1]}",
                                        NULL};
    size_t plain, ckpt;
    check_same_training("cgc_lora", extra, &plain, &ckpt);
    ck_assert_msg(ckpt * 10 <= plain * 6, "activations %zu -> %zu", plain, ckpt);
}
END_TEST

START_TEST(decoders_only_same) {
    /* the backward stops at the decoders: nothing to recompute, the
     * forward's features still come from the kept block outputs */
    size_t plain, ckpt;
    check_same_training("decoders_only", NULL, &plain, &ckpt);
}
END_TEST

START_TEST(non_boolean_refused_naming_the_key) {
    mt_config c;
    mt_config_default(&c);
    const char *bad[] = {"maybe", "2", "[True]", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        const mt_status st = mt_config_set(&c, "TRAIN.USE_CHECKPOINT", bad[i], err, sizeof err);
        ck_assert_int_ne(st, MT_OK);
        ck_assert_msg(strstr(err, "TRAIN.USE_CHECKPOINT"), "'%s': %s", bad[i], err);
    }
    ck_assert_int_eq(mt_config_set(&c, "TRAIN.USE_CHECKPOINT", "True", err, sizeof err), MT_OK);
    ck_assert_int_eq(c.use_checkpoint, 1);
    ck_assert_int_eq(mt_config_set(&c, "TRAIN.USE_CHECKPOINT", "False", err, sizeof err), MT_OK);
    ck_assert_int_eq(c.use_checkpoint, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("recompute");
    TCase *tc = tcase_create("recompute");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, non_boolean_refused_naming_the_key);
    tcase_add_test(tc, mtlora_task_paths_same_and_smaller);
    tcase_add_test(tc, mtlora_without_proj_task_terms_same);
    tcase_add_test(tc, mtlora_one_task_same);
    tcase_add_test(tc, lora_same);
    tcase_add_test(tc, mtl_lora_paths_same);
    tcase_add_test(tc, cgc_lora_paths_same);
    tcase_add_test(tc, decoders_only_same);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
