/* test_model_grad.c - the whole model's backward against central
 * differences with LoRA dropout and drop path ON (the PyTorch parity cases
 * run with both off, since PyTorch's random stream cannot be matched): for
 * a fixed seed the masks are fixed, the step is a deterministic function of
 * the parameters, and every kind of trainable tensor is checked on a few
 * elements. Also: a step is bit-reproducible from its seed, and the seed
 * matters. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/base/rng.h"
#include "test_util.h"

static char err[1024];

typedef struct {
    mt_ctx *ctx;
    mt_model *m;
    float *img;
    uint8_t *lab;
    float *sal;
    mt_targets tg;
    int B;
} fx;

/* kind: NULL for MTLoRA, else MODEL.ADAPTER.KIND plus extra key/value
 * pairs (NULL-terminated) */
static void setup_fx_kind(fx *f, const char *downsampler, const char *kind,
                          const char *const *extra) {
    memset(f, 0, sizeof *f);
    mt_config c;
    mt_config_default(&c);
    const char *kv[][2] = {{"DATA.IMG_SIZE", "32"}, {"MODEL.SWIN.EMBED_DIM", "8"},
                           {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
                           {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
                           {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[3]"},
                           {"MODEL.MTLORA.SHARED_SCALE", "[2.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.2]"},
                           {"MODEL.MTLORA.DOWNSAMPLER_ENABLED", downsampler},
                           {"MODEL.DROP_PATH_RATE", "0.5"}, {"TASKS", "[semseg, sal]"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_msg(mt_config_set(&c, kv[i][0], kv[i][1], err, sizeof err) == MT_OK, "%s", err);
    if (kind)
        ck_assert_msg(mt_config_set(&c, "MODEL.ADAPTER.KIND", kind, err, sizeof err) == MT_OK,
                      "%s", err);
    for (int i = 0; extra && extra[i]; i += 2)
        ck_assert_msg(mt_config_set(&c, extra[i], extra[i + 1], err, sizeof err) == MT_OK, "%s",
                      err);
    /* finite differences check the f32 arithmetic (AMP has its own gates, test_amp.c) */
    c.amp_enable = 0;
    ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
    f->ctx = test_ctx();
    ck_assert_int_eq(mt_model_create(&f->m, f->ctx, &c, 3), MT_OK);
    /* LoRA B starts at zero: give it values so every path carries gradient */
    param_bank *bank = mt_model_bank(f->m);
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (strstr(e->name, "lora_") && strstr(e->name, "_B"))
            fill_uniform(param_bank_value(bank, e), e->count, 100 + (uint64_t)i, -0.3f, 0.3f);
    }
    f->B = 4; /* drop path draws per sample: four samples see both outcomes */
    size_t npix = (size_t)f->B * 32 * 32;
    f->img = alloc_uniform(3 * npix, 7, -1, 1);
    f->lab = malloc(npix);
    f->sal = alloc_zero(npix);
    for (size_t i = 0; i < npix; i++) {
        f->lab[i] = (uint8_t)(mt_rng_bits(8, i) % 21);
        f->sal[i] = mt_rng_uniform(9, i) > 0.6f;
    }
    f->tg.labels[0] = f->lab;
    f->tg.values[1] = f->sal;
}

static void setup_fx(fx *f, const char *downsampler) { setup_fx_kind(f, downsampler, NULL, NULL); }

static void teardown_fx(fx *f) {
    mt_model_destroy(f->m);
    mt_ctx_destroy(f->ctx);
    free(f->img); free(f->lab); free(f->sal);
}

static double step_loss(fx *f, uint64_t seed, int want_grad) {
    double total;
    ck_assert_msg(mt_model_forward(f->m, f->ctx, f->img, f->B, 1, seed) == MT_OK, "%s", mt_ctx_error(f->ctx));
    ck_assert_msg(mt_model_loss(f->m, f->ctx, &f->tg, &total, NULL, want_grad) == MT_OK, "%s",
                  mt_ctx_error(f->ctx));
    return total;
}

static double loss_at(void *p) { return step_loss(p, 42, 0); }

static void check_model_gradients(const char *downsampler) {
    fx f;
    setup_fx(&f, downsampler);
    param_bank *bank = mt_model_bank(f.m);
    step_loss(&f, 42, 1);
    memset(bank->grads, 0, bank->n_trainable * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    float *g = malloc(bank->n_trainable * sizeof(float));
    memcpy(g, bank->grads, bank->n_trainable * sizeof(float));
    /* one tensor of every kind, across stages, shared and task paths */
    const char *names[] = {
        "backbone.patch_embed.proj.weight", "backbone.layers.0.blocks.0.attn.qkv.lora_shared_A",
        "backbone.layers.0.blocks.1.attn.qkv.lora_shared_B", "backbone.layers.0.blocks.1.attn.relative_position_bias_table",
        "backbone.layers.0.blocks.1.attn.proj.lora_shared_A", "backbone.layers.0.blocks.1.attn.proj.lora_tasks_B.sal",
        "backbone.layers.0.blocks.1.norm2.weight", "backbone.layers.0.blocks.1.mlp.fc1.lora_shared_B",
        "backbone.layers.0.blocks.1.mlp.fc1.lora_tasks_A.semseg", "backbone.layers.0.blocks.1.mlp.fc2.lora_shared_A",
        "backbone.layers.0.blocks.1.mlp.fc2.lora_tasks_B.semseg", "backbone.layers.0.downsample.norm.bias",
        "backbone.layers.1.blocks.1.mlp.fc2.lora_tasks_A.sal", "backbone.layers.1.blocks.0.norm1.bias",
        "downsampler.sal.downsample_1.weight", "decoders.decoders.semseg.last_layer.1.weight",
    };
    /* Finite differences through the decoders' ReLUs (and float32) are off
     * on a few elements for any eps (also with dropout off, where PyTorch
     * parity proves the gradients): at most 3% of the checked elements may
     * miss. A dropout or drop-path mask that differed between forward and
     * backward fails far more. */
    int fails = 0, checked = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const param_entry *e = param_bank_find(bank, names[k]);
        ck_assert_msg(e != NULL, "no tensor %s", names[k]);
        fails += gradcheck("model+dropout", names[k], loss_at, &f, param_bank_value(bank, e),
                           g + e->offset, e->count, 1e-3f, 2e-2, 8);
        checked += e->count < 8 ? (int)e->count : 8;
    }
    if (!strcmp(downsampler, "True")) {
        const param_entry *e = param_bank_find(bank, "backbone.layers.0.downsample.reduction.lora_shared_A");
        ck_assert_ptr_nonnull(e);
        fails += gradcheck("model+dropout", e->name, loss_at, &f, param_bank_value(bank, e),
                           g + e->offset, e->count, 1e-3f, 2e-2, 8);
        checked += 8;
    }
    printf("model gradient check (dropout 0.2, drop path 0.5, downsampler LoRA %s): %d of %d "
           "elements off\n", downsampler, fails, checked);
    ck_assert_msg(fails <= 2 || fails * 100 <= 3 * checked, "%d of %d elements off", fails, checked);
    free(g);
    teardown_fx(&f);
}

/* The other adapter kinds, with their dropout and drop path on: one tensor
 * of every parameter kind across stages and layer kinds. */
static void check_kind_gradients(const char *kind, const char *const *extra,
                                 const char *const *names, int nnames) {
    fx f;
    setup_fx_kind(&f, "False", kind, extra);
    param_bank *bank = mt_model_bank(f.m);
    /* cgc's A ~ N(0, 0.01^2) makes every adapter gradient tiny against the
     * float32 noise of a central difference: give the factors real size */
    for (int i = 0; i < bank->count; i++) {
        const param_entry *e = &bank->entries[i];
        if (strstr(e->name, "lora_experts"))
            fill_uniform(param_bank_value(bank, e), e->count, 300 + (uint64_t)i, -0.3f, 0.3f);
    }
    step_loss(&f, 42, 1);
    memset(bank->grads, 0, bank->n_trainable * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    float *g = malloc(bank->n_trainable * sizeof(float));
    memcpy(g, bank->grads, bank->n_trainable * sizeof(float));
    int fails = 0, checked = 0;
    for (int k = 0; k < nnames; k++) {
        const param_entry *e = param_bank_find(bank, names[k]);
        ck_assert_msg(e != NULL, "no tensor %s", names[k]);
        /* eps 3e-3 and 5% of the tensor's largest gradient: these
         * gradients are smaller than MTLoRA's against the float32 noise of
         * the loss difference (which falls as 1/eps); a dropout or drop-path
         * mask that differed between forward and backward misses by far more */
        fails += gradcheck(kind, names[k], loss_at, &f, param_bank_value(bank, e), g + e->offset,
                           e->count, 3e-3f, 5e-2, 16);
        checked += e->count < 16 ? (int)e->count : 16;
    }
    printf("model gradient check (%s, adapter dropout 0.2, drop path 0.5): %d of %d elements off\n",
           kind, fails, checked);
    ck_assert_msg(fails <= 2 || fails * 100 <= 3 * checked, "%d of %d elements off", fails, checked);
    free(g);
    teardown_fx(&f);
}

START_TEST(gradients_mtl_lora_with_dropout) {
    static const char *const extra[] = {"MODEL.ADAPTER.MTL_LORA.DROPOUT", "0.2",
                                        "MODEL.ADAPTER.MTL_LORA.TAU", "0.5",
                                        "MODEL.ADAPTER.FC2", "lora", NULL};
    static const char *const names[] = {
        "backbone.patch_embed.proj.weight", "backbone.layers.0.blocks.0.attn.qkv.lora_A",
        "backbone.layers.0.blocks.0.attn.qkv.lora_B", "backbone.layers.0.blocks.1.attn.proj.lora_lambda",
        "backbone.layers.0.blocks.1.attn.proj.lora_mix", "backbone.layers.1.blocks.1.mlp.fc1.lora_B",
        "backbone.layers.1.blocks.0.mlp.fc1.lora_mix", "backbone.layers.1.blocks.1.mlp.fc2.lora_shared_A",
        "backbone.layers.0.blocks.1.norm2.weight", "backbone.layers.0.downsample.norm.bias",
        "backbone.layers.0.blocks.1.attn.relative_position_bias_table",
        "decoders.decoders.semseg.last_layer.1.weight"};
    check_kind_gradients("mtl_lora", extra, names, (int)(sizeof names / sizeof names[0]));
}
END_TEST

START_TEST(gradients_cgc_lora_with_dropout) {
    static const char *const extra[] = {"MODEL.ADAPTER.CGC_LORA.DROPOUT", "0.2",
                                        "MODEL.ADAPTER.CGC_LORA.GATE_DIM", "4",
                                        "MODEL.MTLORA.R", "[8]", NULL};
    static const char *const names[] = {
        "backbone.patch_embed.norm.weight", "backbone.lora_gate.embedding", "backbone.lora_gate.weight",
        "backbone.layers.0.blocks.0.attn.qkv.lora_experts_shared_A",
        "backbone.layers.0.blocks.1.attn.proj.lora_experts_shared_B",
        "backbone.layers.1.blocks.0.mlp.fc1.lora_experts_task_A",
        "backbone.layers.1.blocks.1.mlp.fc2.lora_experts_task_B",
        "backbone.layers.1.blocks.1.norm1.bias", "downsampler.sal.downsample_1.weight"};
    check_kind_gradients("cgc_lora", extra, names, (int)(sizeof names / sizeof names[0]));
}
END_TEST

START_TEST(gradients_with_dropout_and_drop_path) { check_model_gradients("False"); }
END_TEST
START_TEST(gradients_mtlora_plus_with_dropout) { check_model_gradients("True"); }
END_TEST

START_TEST(step_reproducible_from_seed) {
    fx f;
    setup_fx(&f, "False");
    param_bank *bank = mt_model_bank(f.m);
    size_t n = bank->n_trainable;
    float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
    double l1 = step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    memcpy(g1, bank->grads, n * sizeof(float));
    double l2 = step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    memcpy(g2, bank->grads, n * sizeof(float));
    ck_assert(l1 == l2);
    ck_assert(memcmp(g1, g2, n * sizeof(float)) == 0);
    double l3 = step_loss(&f, 6, 0); /* another seed, other masks */
    ck_assert(l3 != l1);
    free(g1); free(g2);
    teardown_fx(&f);
}
END_TEST

/* The gradient-ready hook: every trainable tensor reported exactly once, and
 * its gradient at report time already equals the final one (nothing later
 * in the backward adds to it), which is what lets a bucket's allreduce start. */
typedef struct {
    const float *grads;
    float *snapshot;
    int *times;
    size_t n;
} ready_log;

static void grad_ready_log(void *user, size_t off, size_t count) {
    ready_log *r = user;
    if (count == 0) return; /* a progress point */
    ck_assert(off + count <= r->n);
    memcpy(r->snapshot + off, r->grads + off, count * sizeof(float));
    for (size_t i = off; i < off + count; i++) r->times[i]++;
}

START_TEST(grad_ready_reports_final_gradients) {
    fx f;
    setup_fx(&f, "False");
    param_bank *bank = mt_model_bank(f.m);
    const size_t n = bank->n_trainable;
    ready_log r = {bank->grads, malloc(n * sizeof(float)), calloc(n, sizeof(int)), n};
    mt_model_set_grad_ready(f.m, grad_ready_log, &r);
    step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(r.times[i], 1);
    ck_assert(memcmp(r.snapshot, bank->grads, n * sizeof(float)) == 0);
    free(r.snapshot);
    free(r.times);
    teardown_fx(&f);
}
END_TEST

/* Every trainable tensor reported once, with its final gradient, also when
 * the gradient of cgc's gate only completes at the end of the backward. */
START_TEST(grad_ready_cgc_lora) {
    static const char *const extra[] = {"MODEL.ADAPTER.CGC_LORA.GATE_DIM", "4", NULL};
    fx f;
    setup_fx_kind(&f, "False", "cgc_lora", extra);
    param_bank *bank = mt_model_bank(f.m);
    const size_t n = bank->n_trainable;
    float *snap = malloc(n * sizeof(float));
    int *times = calloc(n, sizeof(int));
    ck_assert_ptr_nonnull(param_bank_find(bank, "backbone.lora_gate.weight"));
    ready_log r = {bank->grads, snap, times, n};
    mt_model_set_grad_ready(f.m, grad_ready_log, &r);
    step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(times[i], 1);
    ck_assert(memcmp(snap, bank->grads, n * sizeof(float)) == 0);
    free(snap);
    free(times);
    teardown_fx(&f);
}
END_TEST

/* SyncBN with a one-rank "sum" (identity) must equal per-rank batch norm:
 * it checks the C backward of the synchronised path against oneDNN's. */
static mt_status identity_sum(void *user, double *v, size_t n) {
    (void)v;
    (void)n;
    ++*(int *)user;
    return MT_OK;
}

START_TEST(sync_batchnorm_single_rank_equals_local) {
    fx f;
    setup_fx(&f, "False");
    param_bank *bank = mt_model_bank(f.m);
    const size_t n = bank->n_trainable;
    float *g_local = malloc(n * sizeof(float));
    double l_local = step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    memcpy(g_local, bank->grads, n * sizeof(float));
    int calls = 0;
    mt_ctx_set_sync_sum(f.ctx, identity_sum, &calls);
    double l_sync = step_loss(&f, 5, 1);
    memset(bank->grads, 0, n * sizeof(float));
    ck_assert_int_eq(mt_model_backward(f.m, f.ctx), MT_OK);
    ck_assert_int_gt(calls, 0);
    ck_assert_msg(fabs(l_sync - l_local) <= 1e-6 * fabs(l_local), "loss %g vs %g", l_sync, l_local);
    const double e = max_rel_err(bank->grads, g_local, n);
    ck_assert_msg(e < 1e-4, "SyncBN gradients differ from local BN: max rel err %g", e);
    mt_ctx_set_sync_sum(f.ctx, NULL, NULL);
    free(g_local);
    teardown_fx(&f);
}
END_TEST

/* Frozen tensors moved to caller memory (as into a shared window): same step. */
START_TEST(frozen_in_external_memory) {
    fx f;
    setup_fx(&f, "False");
    param_bank *bank = mt_model_bank(f.m);
    double before = step_loss(&f, 5, 0);
    float *ext = malloc(bank->n_frozen * sizeof(float));
    ck_assert_int_eq(mt_model_use_frozen(f.m, f.ctx, ext, 1), MT_OK);
    ck_assert_ptr_eq(bank->frozen, ext);
    ck_assert(step_loss(&f, 5, 0) == before);
    for (size_t i = 0; i < bank->n_frozen; i++) ext[i] *= 0.5f; /* the model reads it there */
    ck_assert(step_loss(&f, 5, 0) != before);
    teardown_fx(&f);
    free(ext); /* still the caller's */
}
END_TEST

int main(void) {
    Suite *s = suite_create("model_grad");
    TCase *tc = tcase_create("central_difference");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, gradients_with_dropout_and_drop_path);
    tcase_add_test(tc, gradients_mtlora_plus_with_dropout);
    tcase_add_test(tc, gradients_mtl_lora_with_dropout);
    tcase_add_test(tc, gradients_cgc_lora_with_dropout);
    tcase_add_test(tc, grad_ready_cgc_lora);
    tcase_add_test(tc, step_reproducible_from_seed);
    tcase_add_test(tc, grad_ready_reports_final_gradients);
    tcase_add_test(tc, sync_batchnorm_single_rank_equals_local);
    tcase_add_test(tc, frozen_in_external_memory);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
