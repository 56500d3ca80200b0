/* test_parity.c - every op against the independent PyTorch reference.
 *
 * The cases are written by tests/reference/layer_cases.py (a ctest fixture
 * runs it first) into $MTLORA_CASES_DIR. Each case holds the inputs, the
 * upstream gradient and PyTorch's outputs and gradients computed in float64;
 * the C library runs in float32 and must agree to FWD_TOL (outputs) and
 * BWD_TOL (gradients) in max relative error (max|ours - ref| / max|ref|). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/train/adamw.h"
#include "mtlora/ops/layers.h"
#include "mtlora/model/loss.h"
#include "tensor_bundle.h"
#include "test_util.h"

#define FWD_TOL 1e-4
#define BWD_TOL 1e-3

static mt_ctx *ctx;

static int load_case(tensor_bundle *b, const char *op, int i) {
    const char *dir = getenv("MTLORA_CASES_DIR");
    ck_assert_msg(dir != NULL, "MTLORA_CASES_DIR is not set");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s_%d.bin", dir, op, i);
    FILE *f = fopen(path, "rb");
    if (!f) {
        ck_assert_msg(i > 0, "no parity case %s (run tests/reference/layer_cases.py)", path);
        return 0;
    }
    fclose(f);
    ck_assert_msg(bundle_load(b, path, err, sizeof err) == 0, "%s", err);
    return 1;
}

static const bundle_tensor *need(const tensor_bundle *b, const char *name) {
    const bundle_tensor *t = bundle_get(b, name);
    ck_assert_msg(t != NULL, "case has no tensor %s", name);
    return t;
}
static float *D(const tensor_bundle *b, const char *name) { return need(b, name)->data; }
static int dim(const tensor_bundle *b, int k) { return (int)D(b, "dims")[k]; }

static void expect(const char *op, int i, const char *what, const float *ours,
                   const tensor_bundle *b, const char *ref, double tol) {
    const bundle_tensor *t = need(b, ref);
    double e = max_rel_err(ours, t->data, t->count);
    printf("parity %-14s case %d %-10s max_rel_err %.2e\n", op, i, what, e);
    ck_assert_msg(e <= tol, "%s case %d: %s max relative error %.3e > %.1e", op, i, what, e, tol);
}

#define CHECK_OK(call) ck_assert_msg((call) == MT_OK, "%s", mt_ctx_error(ctx))

static void setup(void) { ctx = test_ctx(); }
static void teardown(void) { mt_ctx_destroy(ctx); }

START_TEST(parity_linear) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "linear", i); i++) {
        int rows = dim(&b, 0), fin = dim(&b, 1), fout = dim(&b, 2);
        float *out = alloc_zero((size_t)rows * fout), *dx = alloc_zero((size_t)rows * fin);
        float *dw = alloc_zero((size_t)fout * fin), *db = alloc_zero(fout);
        CHECK_OK(linear_forward(ctx, out, D(&b, "inp"), D(&b, "weight"), D(&b, "bias"), rows, fin, fout));
        CHECK_OK(linear_backward(ctx, dx, dw, db, D(&b, "dout"), D(&b, "inp"), D(&b, "weight"), rows, fin, fout));
        expect("linear", i, "out", out, &b, "out", FWD_TOL);
        expect("linear", i, "dinp", dx, &b, "dinp", BWD_TOL);
        expect("linear", i, "dweight", dw, &b, "dweight", BWD_TOL);
        expect("linear", i, "dbias", db, &b, "dbias", BWD_TOL);
        free(out); free(dx); free(dw); free(db);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_lora) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "lora", i); i++) {
        int rows = dim(&b, 0), fin = dim(&b, 1), fout = dim(&b, 2), r = dim(&b, 3);
        float sc = D(&b, "scale")[0];
        float *out = alloc_zero((size_t)rows * fout), *out2 = alloc_zero((size_t)rows * fout);
        float *mid = alloc_zero((size_t)rows * r), *dx = alloc_zero((size_t)rows * fin);
        float *dA = alloc_zero((size_t)r * fin), *dB = alloc_zero((size_t)fout * r);
        CHECK_OK(lora_delta_forward(ctx, out, D(&b, "base"), mid, D(&b, "inp"), D(&b, "A"), D(&b, "B"),
                                    sc, rows, fin, fout, r));
        /* the accumulating form gives the same result */
        memcpy(out2, D(&b, "base"), (size_t)rows * fout * sizeof(float));
        CHECK_OK(lora_delta_forward(ctx, out2, NULL, mid, D(&b, "inp"), D(&b, "A"), D(&b, "B"), sc,
                                    rows, fin, fout, r));
        CHECK_OK(lora_delta_backward(ctx, dx, dA, dB, D(&b, "dout"), D(&b, "inp"), mid, D(&b, "A"),
                                     D(&b, "B"), sc, rows, fin, fout, r));
        expect("lora", i, "out", out, &b, "out", FWD_TOL);
        expect("lora", i, "out_acc", out2, &b, "out", FWD_TOL);
        expect("lora", i, "dinp", dx, &b, "dinp", BWD_TOL);
        expect("lora", i, "dA", dA, &b, "dA", BWD_TOL);
        expect("lora", i, "dB", dB, &b, "dB", BWD_TOL);
        free(out); free(out2); free(mid); free(dx); free(dA); free(dB);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_layernorm) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "layernorm", i); i++) {
        int rows = dim(&b, 0), ch = dim(&b, 1);
        size_t n = (size_t)rows * ch;
        float *out = alloc_zero(n), *mean = alloc_zero(rows), *var = alloc_zero(rows);
        float *dx = alloc_zero(n), *dw = alloc_zero(ch), *db = alloc_zero(ch);
        CHECK_OK(layernorm_forward(ctx, out, mean, var, D(&b, "inp"), D(&b, "weight"), D(&b, "bias"), rows, ch));
        CHECK_OK(layernorm_backward(ctx, dx, dw, db, D(&b, "dout"), D(&b, "inp"), mean, var,
                                    D(&b, "weight"), D(&b, "bias"), rows, ch));
        expect("layernorm", i, "out", out, &b, "out", FWD_TOL);
        expect("layernorm", i, "dinp", dx, &b, "dinp", BWD_TOL);
        expect("layernorm", i, "dweight", dw, &b, "dweight", BWD_TOL);
        expect("layernorm", i, "dbias", db, &b, "dbias", BWD_TOL);
        /* inference mode (no statistics) gives the same output */
        float *out2 = alloc_zero(n);
        CHECK_OK(layernorm_forward(ctx, out2, NULL, NULL, D(&b, "inp"), D(&b, "weight"), D(&b, "bias"), rows, ch));
        expect("layernorm", i, "out_infer", out2, &b, "out", FWD_TOL);
        free(out); free(out2); free(mean); free(var); free(dx); free(dw); free(db);
        bundle_free(&b);
    }
}
END_TEST

typedef mt_status (*elt_fwd)(mt_ctx *, float *, const float *, size_t);
typedef mt_status (*elt_bwd)(mt_ctx *, float *, const float *, const float *, size_t);

static void eltwise_case(const char *op, elt_fwd f, elt_bwd g) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, op, i); i++) {
        size_t n = (size_t)dim(&b, 0);
        float *out = alloc_zero(n), *dx = alloc_zero(n);
        CHECK_OK(f(ctx, out, D(&b, "inp"), n));
        CHECK_OK(g(ctx, dx, D(&b, "dout"), D(&b, "inp"), n));
        expect(op, i, "out", out, &b, "out", FWD_TOL);
        expect(op, i, "dinp", dx, &b, "dinp", BWD_TOL);
        free(out); free(dx);
        bundle_free(&b);
    }
}

START_TEST(parity_gelu) { eltwise_case("gelu", gelu_forward, gelu_backward); }
END_TEST
START_TEST(parity_relu) { eltwise_case("relu", relu_forward, relu_backward); }
END_TEST

START_TEST(parity_softmax) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "softmax", i); i++) {
        int rows = dim(&b, 0), cols = dim(&b, 1);
        size_t n = (size_t)rows * cols;
        float *out = alloc_zero(n), *dx = alloc_zero(n);
        CHECK_OK(softmax_forward(ctx, out, D(&b, "inp"), rows, cols));
        CHECK_OK(softmax_backward(ctx, dx, D(&b, "dout"), out, rows, cols));
        expect("softmax", i, "out", out, &b, "out", FWD_TOL);
        expect("softmax", i, "dinp", dx, &b, "dinp", BWD_TOL);
        free(out); free(dx);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_window) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "window", i); i++) {
        int B = dim(&b, 0), H = dim(&b, 1), W = dim(&b, 2), C = dim(&b, 3), ws = dim(&b, 4);
        int shift = dim(&b, 5), N = ws * ws, nW = (H / ws) * (W / ws);
        size_t n = (size_t)B * H * W * C;
        float *win = alloc_zero(n), *back = alloc_zero(n), *dx = alloc_zero(n);
        CHECK_OK(window_partition_forward(ctx, win, D(&b, "x"), B, H, W, C, ws));
        expect("window_part", i, "out", win, &b, "windows", 0.0);
        CHECK_OK(window_partition_backward(ctx, dx, D(&b, "dwindows"), B, H, W, C, ws));
        expect("window_part", i, "dx", dx, &b, "dx_partition", 0.0);
        CHECK_OK(window_reverse_forward(ctx, back, win, B, H, W, C, ws));
        expect("window_rev", i, "out", back, &b, "x", 0.0);
        float *dwin = alloc_zero(n);
        CHECK_OK(window_reverse_backward(ctx, dwin, D(&b, "dx_partition"), B, H, W, C, ws));
        expect("window_rev", i, "dwindows", dwin, &b, "dwindows", 0.0);
        float *rolled = alloc_zero(n), *dxr = alloc_zero(n);
        CHECK_OK(roll_forward(ctx, rolled, D(&b, "x"), B, H, W, C, -shift, -shift));
        expect("roll", i, "out", rolled, &b, "rolled", 0.0);
        CHECK_OK(roll_backward(ctx, dxr, D(&b, "drolled"), B, H, W, C, -shift, -shift));
        expect("roll", i, "dx", dxr, &b, "dx_roll", 0.0);
        float *mask = alloc_zero((size_t)nW * N * N);
        CHECK_OK(swin_attn_mask(ctx, mask, H, W, ws, shift));
        expect("attn_mask", i, "mask", mask, &b, "mask", 0.0);
        int32_t *idx = malloc((size_t)N * N * sizeof(int32_t));
        float *idxf = alloc_zero((size_t)N * N);
        swin_relative_position_index(idx, ws);
        for (int k = 0; k < N * N; k++) idxf[k] = (float)idx[k];
        expect("rel_index", i, "index", idxf, &b, "rel_index", 0.0);
        free(win); free(back); free(dx); free(dwin); free(rolled); free(dxr); free(mask);
        free(idx); free(idxf);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_attention) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "attention", i); i++) {
        int nwb = dim(&b, 0), nw = dim(&b, 1), ws = dim(&b, 2), C = dim(&b, 3), heads = dim(&b, 4);
        int has_mask = dim(&b, 5), N = ws * ws;
        const float *mask = has_mask ? D(&b, "mask") : NULL;
        float *out = alloc_zero((size_t)nwb * N * C);
        float *probs = alloc_zero((size_t)nwb * heads * N * N);
        float *dqkv = alloc_zero((size_t)nwb * N * 3 * C);
        float *dtable = alloc_zero((size_t)(2 * ws - 1) * (2 * ws - 1) * heads);
        CHECK_OK(window_attention_forward(ctx, out, probs, D(&b, "qkv"), D(&b, "table"), mask,
                                          nwb, nw, ws, C, heads));
        CHECK_OK(window_attention_backward(ctx, dqkv, dtable, D(&b, "dout"), D(&b, "qkv"), probs,
                                           nwb, ws, C, heads));
        expect("attention", i, "out", out, &b, "out", FWD_TOL);
        expect("attention", i, "probs", probs, &b, "probs", FWD_TOL);
        expect("attention", i, "dqkv", dqkv, &b, "dqkv", BWD_TOL);
        expect("attention", i, "dtable", dtable, &b, "dtable", BWD_TOL);
        free(out); free(probs); free(dqkv); free(dtable);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_conv) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "conv", i); i++) {
        int B = dim(&b, 0), Cin = dim(&b, 1), H = dim(&b, 2), W = dim(&b, 3), Cout = dim(&b, 4);
        int k = dim(&b, 5), nhwc = dim(&b, 6);
        size_t no = need(&b, "out")->count;
        float *out = alloc_zero(no), *dx = alloc_zero((size_t)B * Cin * H * W);
        float *dw = alloc_zero((size_t)Cout * Cin * k * k), *db = alloc_zero(Cout);
        CHECK_OK(conv2d_forward(ctx, out, D(&b, "inp"), D(&b, "weight"), D(&b, "bias"), B, Cin, H,
                                W, Cout, k, k, nhwc));
        CHECK_OK(conv2d_backward(ctx, dx, dw, db, D(&b, "dout"), D(&b, "inp"), D(&b, "weight"), B,
                                 Cin, H, W, Cout, k, k, nhwc));
        expect("conv2d", i, "out", out, &b, "out", FWD_TOL);
        expect("conv2d", i, "dinp", dx, &b, "dinp", BWD_TOL);
        expect("conv2d", i, "dweight", dw, &b, "dweight", BWD_TOL);
        expect("conv2d", i, "dbias", db, &b, "dbias", BWD_TOL);
        free(out); free(dx); free(dw); free(db);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_patch_embed) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "patch_embed", i); i++) {
        int B = dim(&b, 0), Cin = dim(&b, 1), H = dim(&b, 2), W = dim(&b, 3), C = dim(&b, 4);
        int p = dim(&b, 5), rows = B * (H / p) * (W / p);
        patch_embed_weights w = {D(&b, "conv_w"), D(&b, "conv_b"), D(&b, "ln_w"), D(&b, "ln_b")};
        float *out = alloc_zero((size_t)rows * C), *conv = alloc_zero((size_t)rows * C);
        float *mean = alloc_zero(rows), *var = alloc_zero(rows);
        float *dimg = alloc_zero((size_t)B * Cin * H * W);
        patch_embed_grads g = {alloc_zero((size_t)C * Cin * p * p), alloc_zero(C), alloc_zero(C),
                               alloc_zero(C)};
        CHECK_OK(patch_embed_forward(ctx, out, conv, mean, var, D(&b, "img"), w, B, Cin, H, W, C, p));
        CHECK_OK(patch_embed_backward(ctx, dimg, g, D(&b, "dout"), D(&b, "img"), conv, mean, var,
                                      w, B, Cin, H, W, C, p));
        expect("patch_embed", i, "out", out, &b, "out", FWD_TOL);
        expect("patch_embed", i, "dimg", dimg, &b, "dimg", BWD_TOL);
        expect("patch_embed", i, "dconv_w", g.conv_w, &b, "dconv_w", BWD_TOL);
        expect("patch_embed", i, "dconv_b", g.conv_b, &b, "dconv_b", BWD_TOL);
        expect("patch_embed", i, "dln_w", g.ln_w, &b, "dln_w", BWD_TOL);
        expect("patch_embed", i, "dln_b", g.ln_b, &b, "dln_b", BWD_TOL);
        free(out); free(conv); free(mean); free(var); free(dimg);
        free(g.conv_w); free(g.conv_b); free(g.ln_w); free(g.ln_b);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_patch_merging) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "patch_merging", i); i++) {
        int B = dim(&b, 0), H = dim(&b, 1), W = dim(&b, 2), C = dim(&b, 3);
        int rows = B * (H / 2) * (W / 2);
        float *out = alloc_zero((size_t)rows * 2 * C), *gath = alloc_zero((size_t)rows * 4 * C);
        float *normed = alloc_zero((size_t)rows * 4 * C), *mean = alloc_zero(rows);
        float *var = alloc_zero(rows), *dx = alloc_zero((size_t)B * H * W * C);
        float *dlw = alloc_zero(4 * C), *dlb = alloc_zero(4 * C), *drw = alloc_zero((size_t)8 * C * C);
        CHECK_OK(patch_merging_forward(ctx, out, gath, normed, mean, var, D(&b, "x"), D(&b, "ln_w"),
                                       D(&b, "ln_b"), D(&b, "red_w"), B, H, W, C));
        CHECK_OK(patch_merging_backward(ctx, dx, dlw, dlb, drw, D(&b, "dout"), gath, normed, mean,
                                        var, D(&b, "ln_w"), D(&b, "ln_b"), D(&b, "red_w"), B, H,
                                        W, C));
        expect("patch_merging", i, "out", out, &b, "out", FWD_TOL);
        expect("patch_merging", i, "dx", dx, &b, "dx", BWD_TOL);
        expect("patch_merging", i, "dln_w", dlw, &b, "dln_w", BWD_TOL);
        expect("patch_merging", i, "dln_b", dlb, &b, "dln_b", BWD_TOL);
        expect("patch_merging", i, "dred_w", drw, &b, "dred_w", BWD_TOL);
        free(out); free(gath); free(normed); free(mean); free(var); free(dx);
        free(dlw); free(dlb); free(drw);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_batchnorm) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "batchnorm", i); i++) {
        int B = dim(&b, 0), C = dim(&b, 1), HW = dim(&b, 2);
        size_t n = (size_t)B * C * HW;
        float *out = alloc_zero(n), *sm = alloc_zero(C), *sv = alloc_zero(C);
        float *rm = alloc_zero(C), *rv = alloc_zero(C);
        memcpy(rm, D(&b, "running_mean0"), C * sizeof(float));
        memcpy(rv, D(&b, "running_var0"), C * sizeof(float));
        float *dx = alloc_zero(n), *dw = alloc_zero(C), *db = alloc_zero(C), *oe = alloc_zero(n);
        CHECK_OK(batchnorm_forward(ctx, out, sm, sv, rm, rv, D(&b, "inp"), D(&b, "weight"),
                                   D(&b, "bias"), B, C, HW, 1, 0.1f));
        CHECK_OK(batchnorm_backward(ctx, dx, dw, db, D(&b, "dout"), D(&b, "inp"), sm, sv,
                                    D(&b, "weight"), D(&b, "bias"), B, C, HW));
        CHECK_OK(batchnorm_forward(ctx, oe, NULL, NULL, rm, rv, D(&b, "inp"), D(&b, "weight"),
                                   D(&b, "bias"), B, C, HW, 0, 0.1f));
        expect("batchnorm", i, "out", out, &b, "out", FWD_TOL);
        expect("batchnorm", i, "run_mean", rm, &b, "running_mean", FWD_TOL);
        expect("batchnorm", i, "run_var", rv, &b, "running_var", FWD_TOL);
        expect("batchnorm", i, "out_eval", oe, &b, "out_eval", FWD_TOL);
        expect("batchnorm", i, "dinp", dx, &b, "dinp", BWD_TOL);
        expect("batchnorm", i, "dweight", dw, &b, "dweight", BWD_TOL);
        expect("batchnorm", i, "dbias", db, &b, "dbias", BWD_TOL);
        free(out); free(sm); free(sv); free(rm); free(rv); free(dx); free(dw); free(db); free(oe);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_resize) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "resize", i); i++) {
        int B = dim(&b, 0), C = dim(&b, 1), hi = dim(&b, 2), wi = dim(&b, 3), ho = dim(&b, 4),
            wo = dim(&b, 5);
        float *out = alloc_zero((size_t)B * C * ho * wo), *dx = alloc_zero((size_t)B * C * hi * wi);
        CHECK_OK(resize_bilinear_forward(ctx, out, D(&b, "inp"), B, C, hi, wi, ho, wo));
        CHECK_OK(resize_bilinear_backward(ctx, dx, D(&b, "dout"), B, C, hi, wi, ho, wo));
        expect("resize", i, "out", out, &b, "out", FWD_TOL);
        expect("resize", i, "dinp", dx, &b, "dinp", BWD_TOL);
        free(out); free(dx);
        bundle_free(&b);
    }
}
END_TEST

static void expect_loss(const char *op, int i, double loss, const tensor_bundle *b) {
    float l = (float)loss;
    expect(op, i, "loss", &l, b, "loss", FWD_TOL);
}

START_TEST(parity_losses) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "ce_loss", i); i++) {
        int B = dim(&b, 0), K = dim(&b, 1), HW = dim(&b, 2);
        const bundle_tensor *lt = need(&b, "labels");
        uint8_t *lab = malloc(lt->count);
        for (size_t k = 0; k < lt->count; k++) lab[k] = (uint8_t)lt->data[k];
        float *dl = alloc_zero((size_t)B * K * HW);
        double loss;
        CHECK_OK(softmax_ce_loss(ctx, &loss, dl, D(&b, "logits"), lab, B, K, (size_t)HW, 1.0f));
        expect_loss("ce_loss", i, loss, &b);
        expect("ce_loss", i, "dlogits", dl, &b, "dlogits", BWD_TOL);
        free(lab); free(dl);
        bundle_free(&b);
    }
    for (int i = 0; load_case(&b, "bce_loss", i); i++) {
        size_t n = (size_t)dim(&b, 0);
        float *dl = alloc_zero(n);
        double loss;
        CHECK_OK(balanced_bce_loss(ctx, &loss, dl, D(&b, "logits"), D(&b, "labels"), n,
                                   D(&b, "pos_weight")[0], 1.0f));
        expect_loss("bce_loss", i, loss, &b);
        expect("bce_loss", i, "dlogits", dl, &b, "dlogits", BWD_TOL);
        free(dl);
        bundle_free(&b);
    }
    for (int i = 0; load_case(&b, "normals_loss", i); i++) {
        int B = dim(&b, 0), C = dim(&b, 1), HW = dim(&b, 2);
        float *dl = alloc_zero((size_t)B * C * HW);
        double loss;
        CHECK_OK(normals_loss(ctx, &loss, dl, D(&b, "logits"), D(&b, "labels"), B, C, (size_t)HW, 1.0f));
        expect_loss("normals_loss", i, loss, &b);
        expect("normals_loss", i, "dlogits", dl, &b, "dlogits", BWD_TOL);
        free(dl);
        bundle_free(&b);
    }
}
END_TEST

START_TEST(parity_adamw) {
    tensor_bundle b;
    for (int i = 0; load_case(&b, "adamw", i); i++) {
        size_t nd = (size_t)dim(&b, 0), np = (size_t)dim(&b, 1), n = nd + np;
        int steps = dim(&b, 2);
        float *p = alloc_zero(n), *m = alloc_zero(n), *v = alloc_zero(n);
        memcpy(p, D(&b, "params0"), n * sizeof(float));
        adamw_group groups[2] = {{0, nd, 0.05f}, {nd, np, 0.0f}};
        for (int s = 0; s < steps; s++)
            CHECK_OK(adamw_step(ctx, p, D(&b, "grads") + (size_t)s * n, m, v, n, groups, 2,
                                adamw_defaults(D(&b, "lr")[0]), s + 1));
        expect("adamw", i, "params", p, &b, "params", 1e-6);
        free(p); free(m); free(v);
        bundle_free(&b);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("pytorch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, parity_linear);
    tcase_add_test(tc, parity_lora);
    tcase_add_test(tc, parity_layernorm);
    tcase_add_test(tc, parity_gelu);
    tcase_add_test(tc, parity_relu);
    tcase_add_test(tc, parity_softmax);
    tcase_add_test(tc, parity_window);
    tcase_add_test(tc, parity_attention);
    tcase_add_test(tc, parity_conv);
    tcase_add_test(tc, parity_patch_embed);
    tcase_add_test(tc, parity_patch_merging);
    tcase_add_test(tc, parity_batchnorm);
    tcase_add_test(tc, parity_resize);
    tcase_add_test(tc, parity_losses);
    tcase_add_test(tc, parity_adamw);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
