/* test_model_parity.c - the whole MTLoRA model against the independent
 * PyTorch reference (tests/reference/mtlora_reference.py) on the same
 * weights and inputs: logits, per-task losses, BatchNorm running
 * statistics, the gradient of every trainable tensor (and that the
 * trainable set is the same), and the values after two AdamW steps.
 * Cases live in $MTLORA_MODEL_CASES/<case>/. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/train/adamw.h"
#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/io/safetensors.h"
#include "tensor_bundle.h"
#include "test_util.h"

#define OUT_TOL 1e-4
#define GRAD_TOL 1e-3
#define STEP_TOL 1e-3

typedef struct {
    mt_ctx *ctx;
    mt_config cfg;
    mt_model *m;
    tensor_bundle cb;
    mt_targets tg;
    uint8_t *labels[MT_MAX_TASKS];
    char dir[512];
} fixture;

static void path(char *out, size_t cap, const fixture *f, const char *file) {
    snprintf(out, cap, "%s/%s", f->dir, file);
}

static void open_case(fixture *f, const char *name) {
    memset(f, 0, sizeof *f);
    const char *root = getenv("MTLORA_MODEL_CASES");
    ck_assert_msg(root != NULL, "MTLORA_MODEL_CASES is not set");
    snprintf(f->dir, sizeof f->dir, "%s/%s", root, name);
    f->ctx = test_ctx();
    char err[512], p[600];
    mt_config_default(&f->cfg);
    path(p, sizeof p, f, "config.yaml");
    ck_assert_msg(mt_config_load(&f->cfg, p, err, sizeof err) == MT_OK, "%s", err);
    f->cfg.amp_enable = 0; /* parity with the f64 reference is an f32 property */
    ck_assert_msg(mt_config_finalize(&f->cfg, err, sizeof err) == MT_OK, "%s", err);
    ck_assert_msg(mt_model_create(&f->m, f->ctx, &f->cfg, 99) == MT_OK, "%s", mt_ctx_error(f->ctx));
    path(p, sizeof p, f, "weights.safetensors");
    ck_assert_msg(mt_model_load(f->m, f->ctx, p, MT_LOAD_CHECKPOINT) == MT_OK, "%s",
                  mt_ctx_error(f->ctx));
    path(p, sizeof p, f, "case.bin");
    ck_assert_msg(bundle_load(&f->cb, p, err, sizeof err) == 0, "%s", err);
    for (int t = 0; t < f->cfg.ntasks; t++) {
        char key[64];
        snprintf(key, sizeof key, "target_%s", f->cfg.tasks[t]);
        const bundle_tensor *bt = bundle_get(&f->cb, key);
        ck_assert_msg(bt != NULL, "case has no %s", key);
        mt_task_kind k = f->cfg.task_kind[t];
        if (k == MT_TASK_SEMSEG || k == MT_TASK_HUMAN_PARTS) {
            f->labels[t] = malloc(bt->count);
            for (size_t i = 0; i < bt->count; i++) f->labels[t][i] = (uint8_t)bt->data[i];
            f->tg.labels[t] = f->labels[t];
        } else {
            f->tg.values[t] = bt->data;
        }
    }
}

static void close_case(fixture *f) {
    for (int t = 0; t < MT_MAX_TASKS; t++) free(f->labels[t]);
    bundle_free(&f->cb);
    mt_model_destroy(f->m);
    mt_ctx_destroy(f->ctx);
}

static const float *B(const fixture *f, const char *name) {
    const bundle_tensor *t = bundle_get(&f->cb, name);
    ck_assert_msg(t != NULL, "case has no %s", name);
    return t->data;
}

static void step(fixture *f, double *total, double *tl) {
    const int Bn = f->cfg.batch_size;
    ck_assert_msg(mt_model_forward(f->m, f->ctx, B(f, "images"), Bn, 1, 1) == MT_OK, "%s",
                  mt_ctx_error(f->ctx));
    ck_assert_msg(mt_model_loss(f->m, f->ctx, &f->tg, total, tl, 1) == MT_OK, "%s",
                  mt_ctx_error(f->ctx));
    param_bank *bank = mt_model_bank(f->m);
    memset(bank->grads, 0, bank->n_trainable * sizeof(float));
    ck_assert_msg(mt_model_backward(f->m, f->ctx) == MT_OK, "%s", mt_ctx_error(f->ctx));
}

static void check_case(const char *name) {
    fixture f;
    open_case(&f, name);
    const int Bn = f.cfg.batch_size, S = f.cfg.img_size;
    double total, tl[MT_MAX_TASKS];
    step(&f, &total, tl);
    double worst_out = 0, worst_grad = 0;
    for (int t = 0; t < f.cfg.ntasks; t++) {
        char key[64];
        snprintf(key, sizeof key, "logits_%s", f.cfg.tasks[t]);
        size_t n = (size_t)Bn * f.cfg.num_outputs[t] * S * S;
        double e = max_rel_err(mt_model_logits(f.m, t), B(&f, key), n);
        printf("model %-12s logits %-12s max_rel_err %.2e\n", name, f.cfg.tasks[t], e);
        ck_assert_msg(e <= OUT_TOL, "%s: logits of %s: %.3e", name, f.cfg.tasks[t], e);
        if (e > worst_out) worst_out = e;
        snprintf(key, sizeof key, "loss_%s", f.cfg.tasks[t]);
        double ref = B(&f, key)[0], le = fabs(tl[t] - ref) / fabs(ref);
        printf("model %-12s loss   %-12s %.6f ref %.6f rel %.2e\n", name, f.cfg.tasks[t], tl[t], ref, le);
        ck_assert_msg(le <= OUT_TOL, "%s: loss of %s: %.3e", name, f.cfg.tasks[t], le);
    }
    double tref = B(&f, "loss_total")[0];
    ck_assert_msg(fabs(total - tref) / fabs(tref) <= OUT_TOL, "%s: total loss %g vs %g", name, total, tref);
    /* BatchNorm running statistics after the training forward */
    param_bank *bank = mt_model_bank(f.m);
    for (int i = 0; i < f.cb.count; i++) {
        const bundle_tensor *bt = &f.cb.t[i];
        if (strncmp(bt->name, "state_", 6)) continue;
        const param_entry *pe = param_bank_find(bank, bt->name + 6);
        ck_assert_msg(pe != NULL, "model lacks %s", bt->name + 6);
        double e = max_rel_err(param_bank_value(bank, pe), bt->data, bt->count);
        ck_assert_msg(e <= OUT_TOL, "%s: %s: %.3e", name, bt->name + 6, e);
    }
    /* every trainable tensor's gradient; the trainable sets must agree */
    char p[600], err[512];
    path(p, sizeof p, &f, "grads.safetensors");
    st_file g;
    ck_assert_msg(st_load(&g, p, err, sizeof err) == MT_OK, "%s", err);
    /* Error per tensor: max|ours - ref| / max(max|ref|, floor), the floor
     * 1e-3 of the largest reference gradient in the model, so a tensor
     * whose true gradient is zero (a conv bias right before BatchNorm) is
     * judged against the model's gradient scale, not against rounding. */
    double gmax = 0.0;
    for (int i = 0; i < g.count; i++) {
        float *ref = malloc(g.tensors[i].count * sizeof(float) + 1);
        ck_assert(st_read_f32(&g, &g.tensors[i], ref, err, sizeof err) == MT_OK);
        for (size_t k = 0; k < g.tensors[i].count; k++)
            if (fabs(ref[k]) > gmax) gmax = fabs(ref[k]);
        free(ref);
    }
    /* For the slow Swin-T case the reference also measured PyTorch's own
     * float32 error per tensor: a gradient passes at GRAD_TOL, or when it is
     * within twice what PyTorch float32 reaches on the same tensor. On a
     * full-size model a float32 run also flips the odd ReLU whose input is
     * within rounding of zero (3.4M per decoder), which moves the gradients
     * behind it by up to ~1e-2 in any float32 implementation (PyTorch's own
     * float32 run shows up to 4e-2 on other tensors of the same step), so
     * there at most 3% of the tensors may exceed that bound, none 1e-2. */
    st_file f32e;
    char p2[600];
    path(p2, sizeof p2, &f, "torch_f32_grad_error.safetensors");
    int have_f32 = st_load(&f32e, p2, err, sizeof err) == MT_OK;
    int beyond_tol = 0, nbad = 0, kink = 0;
    int matched = 0;
    for (int i = 0; i < bank->count; i++) {
        const param_entry *pe = &bank->entries[i];
        if (pe->kind != MT_PARAM_TRAINABLE) continue;
        const st_tensor *t = st_find(&g, pe->name);
        const float *ours = param_bank_grad(bank, pe);
        if (!t) {
            ck_assert_msg(pe->no_grad, "%s: %s trains here but not in the reference", name, pe->name);
            for (size_t k = 0; k < pe->count; k++) ck_assert(ours[k] == 0.0f);
            continue;
        }
        ck_assert_msg(!pe->no_grad, "%s: %s has a reference gradient but is marked no_grad", name,
                      pe->name);
        float *ref = malloc(t->count * sizeof(float));
        ck_assert(st_read_f32(&g, t, ref, err, sizeof err) == MT_OK);
        ck_assert_uint_eq(t->count, pe->count);
        double dmax = 0.0, rmax = 1e-3 * gmax;
        for (size_t k = 0; k < pe->count; k++) {
            double d = fabs((double)ours[k] - ref[k]);
            if (!(d <= dmax)) dmax = d;
            if (fabs(ref[k]) > rmax) rmax = fabs(ref[k]);
        }
        double e = dmax / rmax;
        if (e > worst_grad) worst_grad = e;
        if (getenv("MTLORA_VERBOSE")) printf("  grad %-60s %.2e\n", pe->name, e);
        double allowed = GRAD_TOL;
        const st_tensor *te = have_f32 ? st_find(&f32e, pe->name) : NULL;
        if (te) {
            float tv;
            ck_assert(st_read_f32(&f32e, te, &tv, err, sizeof err) == MT_OK);
            if (2.0 * tv > allowed) allowed = 2.0 * tv;
            if (e > GRAD_TOL) {
                beyond_tol++;
                printf("model %-12s %s: err %.2e, PyTorch float32 err %.2e\n", name, pe->name, e, (double)tv);
            }
        }
        if (getenv("MTLORA_VERBOSE")) printf("  grad %-60s %.2e\n", pe->name, e);
        if (te && e > allowed && e <= 1e-2) {
            kink++;
            printf("model %-12s %s: err %.2e beyond 2x PyTorch float32's; counted as a ReLU-kink flip\n",
                   name, pe->name, e);
        } else if (!(e <= allowed)) { /* report every offender, fail after the loop */
            printf("FAIL %s: gradient of %s: max relative error %.3e (allowed %.1e)\n", name,
                   pe->name, e, allowed);
            nbad++;
        }
        free(ref);
        matched++;
    }
    ck_assert_msg(nbad == 0, "%s: %d gradients out of tolerance (listed above)", name, nbad);
    ck_assert_msg(kink <= g.count * 3 / 100, "%s: %d gradients beyond the float32 bound", name, kink);
    ck_assert_int_eq(matched, g.count);
    st_free(&g);
    if (have_f32) {
        printf("model %-12s %d of %d gradients beyond %.0e (%d of them beyond 2x PyTorch float32's own "
               "error, all below 1e-2)\n", name, beyond_tol, matched, GRAD_TOL, kink);
        st_free(&f32e);
    }
    printf("model %-12s %d gradients, worst logits err %.2e, worst gradient err %.2e\n", name,
           matched, worst_out, worst_grad);
    close_case(&f);
}

static void check_adamw(const char *name) {
    fixture f;
    open_case(&f, name);
    char p[600], err[512];
    path(p, sizeof p, &f, "step2.safetensors");
    st_file ref;
    ck_assert_msg(st_load(&ref, p, err, sizeof err) == MT_OK, "%s", err);
    param_bank *bank = mt_model_bank(f.m);
    /* Tensors whose true gradient is zero (a conv bias right before a
     * training-mode BatchNorm) get rounding noise as gradient, which Adam
     * normalises into steps of up to lr: there only |step| <= 2 lr is
     * checked, everywhere else the values themselves. */
    path(p, sizeof p, &f, "grads.safetensors");
    st_file gr;
    ck_assert_msg(st_load(&gr, p, err, sizeof err) == MT_OK, "%s", err);
    int ng = param_bank_adamw_groups(bank, 0.5f, NULL, 0); /* the reference's decay */
    adamw_group *groups = malloc((size_t)ng * sizeof *groups);
    param_bank_adamw_groups(bank, 0.5f, groups, ng);
    float *mom = calloc(bank->n_trainable + 1, sizeof(float)), *vel = calloc(bank->n_trainable + 1, sizeof(float));
    float *start = malloc((bank->n_trainable + 1) * sizeof(float));
    memcpy(start, bank->trainable, bank->n_trainable * sizeof(float));
    double total, tl[MT_MAX_TASKS];
    for (int s = 1; s <= 2; s++) {
        step(&f, &total, tl);
        ck_assert_msg(adamw_step(f.ctx, bank->trainable, bank->grads, mom, vel, bank->n_trainable,
                                 groups, ng, adamw_defaults(1e-3f), s) == MT_OK, "%s", mt_ctx_error(f.ctx));
    }
    double worst = 0, worst_update = 0;
    for (int i = 0; i < bank->count; i++) {
        const param_entry *pe = &bank->entries[i];
        if (pe->kind != MT_PARAM_TRAINABLE) continue;
        float *ours = param_bank_value(bank, pe);
        if (pe->no_grad) { /* untouched, as PyTorch leaves a grad-None parameter */
            ck_assert(memcmp(ours, start + pe->offset, pe->count * sizeof(float)) == 0);
            continue;
        }
        const st_tensor *t = st_find(&ref, pe->name), *gt = st_find(&gr, pe->name);
        ck_assert_msg(t != NULL && gt != NULL, "step2 or grads lack %s", pe->name);
        float *want = malloc(t->count * sizeof(float)), *g0 = malloc(t->count * sizeof(float));
        ck_assert(st_read_f32(&ref, t, want, err, sizeof err) == MT_OK);
        ck_assert(st_read_f32(&gr, gt, g0, err, sizeof err) == MT_OK);
        double gm = 0.0;
        for (size_t k = 0; k < pe->count; k++) gm = fabs(g0[k]) > gm ? fabs(g0[k]) : gm;
        if (gm < 1e-12) {
            for (size_t k = 0; k < pe->count; k++)
                ck_assert_msg(fabsf(ours[k] - start[pe->offset + k]) <= 2.2e-3f,
                              "%s: %s moved more than 2 lr", name, pe->name);
            free(want);
            free(g0);
            continue;
        }
        /* Adam's first steps are m / sqrt(v): about +-lr whatever the
         * gradient's size, so an element whose true gradient is zero (the
         * key bias: softmax ignores a constant per row) or near zero (where
         * float32 keeps few correct digits) may step the other way. Elements
         * with a gradient above 1e-3 of the tensor's largest must agree to
         * 1e-4 of the tensor's largest value, all but three in a hundred;
         * none may be off by more than the two steps can move it. */
        double pmax = 0.0, dmax = 0.0, du2 = 0.0, ru2 = 0.0;
        size_t off = 0;
        for (size_t k = 0; k < pe->count; k++) pmax = fabs(want[k]) > pmax ? fabs(want[k]) : pmax;
        for (size_t k = 0; k < pe->count; k++) {
            double d = fabs((double)ours[k] - want[k]);
            if (!(d <= dmax)) dmax = d;
            if (fabs(g0[k]) > 1e-3 * gm && !(d <= 1e-4 * pmax + 1e-7)) off++;
            if (fabs(g0[k]) <= 1e-3 * gm) continue;
            double ru = (double)want[k] - start[pe->offset + k];
            double ou = (double)ours[k] - start[pe->offset + k];
            du2 += (ou - ru) * (ou - ru);
            ru2 += ru * ru;
        }
        /* and the update as a whole (elements with a real gradient):
         * |du - du_ref| / |du_ref| */
        double ue = ru2 > 0 ? sqrt(du2 / ru2) : sqrt(du2);
        ck_assert_msg(ue <= 2e-2, "%s: %s: update differs by %.3e of its norm", name, pe->name, ue);
        if (ue > worst_update) worst_update = ue;
        free(g0);
        double e = dmax / (pmax > 0 ? pmax : 1.0);
        if (e > worst) worst = e;
        if (getenv("MTLORA_VERBOSE")) printf("  step %-58s off %zu/%zu max %.2e\n", pe->name, off, pe->count, dmax);
        ck_assert_msg(off <= 3 * pe->count / 100 + 1 && dmax <= 4.4e-3,
                      "%s: %s after two AdamW steps: %zu of %zu elements off, max diff %.3e", name,
                      pe->name, off, pe->count, dmax);
        free(want);
    }
    printf("model %-12s two AdamW steps: worst parameter err %.2e, worst update err %.2e\n", name,
           worst, worst_update);
    free(groups); free(mom); free(vel); free(start);
    st_free(&gr);
    st_free(&ref);
    close_case(&f);
}

START_TEST(parity_mtlora4) { check_case("mtlora4"); }
END_TEST
START_TEST(parity_mtlora_plus) { check_case("mtlora_plus"); }
END_TEST
START_TEST(parity_full_ft) { check_case("full_ft"); }
END_TEST
START_TEST(parity_no_proj) { check_case("no_proj"); }
END_TEST
START_TEST(parity_no_fc1) { check_case("no_fc1"); }
END_TEST
START_TEST(parity_no_fc2) { check_case("no_fc2"); }
END_TEST
START_TEST(adamw_no_fc2) { check_adamw("no_fc2"); }
END_TEST
START_TEST(adamw_mtlora4) { check_adamw("mtlora4"); }
END_TEST
START_TEST(adamw_mtlora_plus) { check_adamw("mtlora_plus"); }
END_TEST
START_TEST(adamw_full_ft) { check_adamw("full_ft"); }
END_TEST

/* The adapter family (docs/adapters.md): plain LoRA, MTL-LoRA (full and
 * diagonal Lambda, mixed with lora and none per layer kind), CGC-LoRA
 * (alone and mixed), and the decoders-only baseline. */
static const char *const ADAPTER_CASES[] = {"lora", "mtl_lora", "mtl_lora_diag_mixed", "cgc_lora",
                                            "cgc_lora_mixed", "decoders_only"};
#define N_ADAPTER_CASES (int)(sizeof ADAPTER_CASES / sizeof ADAPTER_CASES[0])
START_TEST(parity_adapters) { check_case(ADAPTER_CASES[_i]); }
END_TEST
START_TEST(adamw_adapters) { check_adamw(ADAPTER_CASES[_i]); }
END_TEST

static char **extra_cases;
static int n_extra;
START_TEST(parity_named) { check_case(extra_cases[_i]); }
END_TEST

int main(int argc, char **argv) {
    Suite *s = suite_create("model_parity");
    if (argc > 1) { /* named cases only (the slow Swin-T 448 one), gradients and outputs */
        extra_cases = argv + 1;
        n_extra = argc - 1;
        TCase *tc = tcase_create("named");
        tcase_set_timeout(tc, 3000);
        tcase_add_loop_test(tc, parity_named, 0, n_extra);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
    }
    TCase *tc = tcase_create("pytorch_model");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, parity_mtlora4);
    tcase_add_test(tc, parity_mtlora_plus);
    tcase_add_test(tc, parity_full_ft);
    tcase_add_test(tc, parity_no_proj);
    tcase_add_test(tc, parity_no_fc1);
    tcase_add_test(tc, parity_no_fc2);
    tcase_add_test(tc, adamw_no_fc2);
    tcase_add_test(tc, adamw_mtlora4);
    tcase_add_test(tc, adamw_mtlora_plus);
    tcase_add_test(tc, adamw_full_ft);
    tcase_add_loop_test(tc, parity_adapters, 0, N_ADAPTER_CASES);
    tcase_add_loop_test(tc, adamw_adapters, 0, N_ADAPTER_CASES);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
