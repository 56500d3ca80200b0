/* test_gradcheck.c - central-difference gradient checks of every backward.
 *
 * For each op, L = sum(out * R) with a fixed random R (double accumulation);
 * the backward is run with dout = R and every input and weight gradient is
 * compared with (L(x + eps) - L(x - eps)) / 2eps. The tolerance is relative
 * to the tensor's largest gradient, so a wrong sign, a transposed weight or
 * a missing term fails, while float32 rounding does not. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/ops/layers.h"
#include "mtlora/model/loss.h"
#include "test_util.h"

#define EPS 1e-2f
#define TOL 2e-3
#define SAMPLES 60

static mt_ctx *ctx;
static void setup(void) { ctx = test_ctx(); }
static void teardown(void) { mt_ctx_destroy(ctx); }

#define CHECK_OK(call) ck_assert_msg((call) == MT_OK, "%s", mt_ctx_error(ctx))
#define GC(op, name, fn, st, x, g, n)                                                     \
    ck_assert_int_eq(gradcheck(op, name, fn, st, x, g, n, EPS, TOL, SAMPLES), 0)

/* ---- linear ---------------------------------------------------------- */
typedef struct { float *x, *w, *b, *out, *r; int rows, fin, fout; } lin_s;
static double lin_loss(void *p) {
    lin_s *s = p;
    if (linear_forward(ctx, s->out, s->x, s->w, s->b, s->rows, s->fin, s->fout)) return NAN;
    return dot_loss(s->out, s->r, (size_t)s->rows * s->fout);
}
START_TEST(grad_linear) {
    lin_s s = {0};
    s.rows = 6; s.fin = 10; s.fout = 7;
    size_t nx = (size_t)s.rows * s.fin, nw = (size_t)s.fout * s.fin, no = (size_t)s.rows * s.fout;
    s.x = alloc_uniform(nx, 1, -1, 1); s.w = alloc_uniform(nw, 2, -1, 1);
    s.b = alloc_uniform(s.fout, 3, -1, 1); s.out = alloc_zero(no); s.r = alloc_uniform(no, 4, -1, 1);
    float *dx = alloc_zero(nx), *dw = alloc_zero(nw), *db = alloc_zero(s.fout);
    lin_loss(&s);
    CHECK_OK(linear_backward(ctx, dx, dw, db, s.r, s.x, s.w, s.rows, s.fin, s.fout));
    GC("linear", "inp", lin_loss, &s, s.x, dx, nx);
    GC("linear", "weight", lin_loss, &s, s.w, dw, nw);
    GC("linear", "bias", lin_loss, &s, s.b, db, s.fout);
    /* Frozen weight: data gradient only, identical to the full backward's. */
    float *dx2 = alloc_zero(nx);
    CHECK_OK(linear_backward(ctx, dx2, NULL, NULL, s.r, s.x, s.w, s.rows, s.fin, s.fout));
    ck_assert(max_rel_err(dx2, dx, nx) < 1e-6);
    /* Gradients accumulate: a second backward doubles them. */
    CHECK_OK(linear_backward(ctx, dx2, NULL, NULL, s.r, s.x, s.w, s.rows, s.fin, s.fout));
    for (size_t i = 0; i < nx; i++) ck_assert(fabsf(dx2[i] - 2 * dx[i]) <= 1e-5f * (1 + fabsf(dx[i])));
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.r); free(dx); free(dw); free(db); free(dx2);
}
END_TEST

/* The checker itself must reject the mistakes it is meant to catch: a sign
 * error, a transposed weight gradient, and a dropped bias term in dinp's
 * sibling (a gradient scaled by 0.99, i.e. a missing 1% term). */
START_TEST(grad_checker_catches_errors) {
    lin_s s = {0};
    s.rows = 6; s.fin = 8; s.fout = 8;
    size_t nx = (size_t)s.rows * s.fin, nw = (size_t)s.fout * s.fin, no = (size_t)s.rows * s.fout;
    s.x = alloc_uniform(nx, 11, -1, 1); s.w = alloc_uniform(nw, 12, -1, 1);
    s.b = alloc_uniform(s.fout, 13, -1, 1); s.out = alloc_zero(no); s.r = alloc_uniform(no, 14, -1, 1);
    float *dx = alloc_zero(nx), *dw = alloc_zero(nw), *bad = alloc_zero(nw);
    lin_loss(&s);
    CHECK_OK(linear_backward(ctx, dx, dw, NULL, s.r, s.x, s.w, s.rows, s.fin, s.fout));
    fprintf(stderr, "gradcheck: three deliberately wrong gradients follow; their mismatches are expected\n");
    for (size_t i = 0; i < nx; i++) dx[i] = -dx[i];
    ck_assert_int_gt(gradcheck("mutant", "sign", lin_loss, &s, s.x, dx, nx, EPS, TOL, SAMPLES), 0);
    for (int o = 0; o < s.fout; o++)
        for (int i = 0; i < s.fin; i++) bad[(size_t)i * s.fout + o] = dw[(size_t)o * s.fin + i];
    ck_assert_int_gt(gradcheck("mutant", "transpose", lin_loss, &s, s.w, bad, nw, EPS, TOL, SAMPLES), 0);
    for (size_t i = 0; i < nw; i++) bad[i] = 0.99f * dw[i];
    ck_assert_int_gt(gradcheck("mutant", "scaled", lin_loss, &s, s.w, bad, nw, EPS, TOL, SAMPLES), 0);
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.r); free(dx); free(dw); free(bad);
}
END_TEST

/* ---- low-rank update ------------------------------------------------ */
typedef struct { float *x, *A, *B, *base, *mid, *out, *r; int rows, fin, fout, rank; } lr_s;
static double lr_loss(void *p) {
    lr_s *s = p;
    if (lora_delta_forward(ctx, s->out, s->base, s->mid, s->x, s->A, s->B, 4.0f, s->rows, s->fin,
                           s->fout, s->rank))
        return NAN;
    return dot_loss(s->out, s->r, (size_t)s->rows * s->fout);
}
START_TEST(grad_lora) {
    lr_s s = {0};
    s.rows = 5; s.fin = 9; s.fout = 7; s.rank = 3;
    size_t nx = (size_t)s.rows * s.fin, no = (size_t)s.rows * s.fout;
    s.x = alloc_uniform(nx, 110, -1, 1); s.A = alloc_uniform((size_t)s.rank * s.fin, 111, -1, 1);
    s.B = alloc_uniform((size_t)s.fout * s.rank, 112, -1, 1); s.base = alloc_uniform(no, 113, -1, 1);
    s.mid = alloc_zero((size_t)s.rows * s.rank); s.out = alloc_zero(no); s.r = alloc_uniform(no, 114, -1, 1);
    float *dx = alloc_zero(nx), *dA = alloc_zero((size_t)s.rank * s.fin), *dB = alloc_zero((size_t)s.fout * s.rank);
    lr_loss(&s);
    CHECK_OK(lora_delta_backward(ctx, dx, dA, dB, s.r, s.x, s.mid, s.A, s.B, 4.0f, s.rows, s.fin,
                                 s.fout, s.rank));
    GC("lora_delta", "inp", lr_loss, &s, s.x, dx, nx);
    GC("lora_delta", "A", lr_loss, &s, s.A, dA, (size_t)s.rank * s.fin);
    GC("lora_delta", "B", lr_loss, &s, s.B, dB, (size_t)s.fout * s.rank);
    free(s.x); free(s.A); free(s.B); free(s.base); free(s.mid); free(s.out); free(s.r);
    free(dx); free(dA); free(dB);
}
END_TEST

/* ---- layer norm ------------------------------------------------------ */
typedef struct { float *x, *w, *b, *out, *mean, *var, *r; int rows, ch; } ln_s;
static double ln_loss(void *p) {
    ln_s *s = p;
    if (layernorm_forward(ctx, s->out, s->mean, s->var, s->x, s->w, s->b, s->rows, s->ch)) return NAN;
    return dot_loss(s->out, s->r, (size_t)s->rows * s->ch);
}
START_TEST(grad_layernorm) {
    ln_s s = {0};
    s.rows = 5; s.ch = 12;
    size_t n = (size_t)s.rows * s.ch;
    s.x = alloc_uniform(n, 5, -2, 2); s.w = alloc_uniform(s.ch, 6, 0.5f, 1.5f);
    s.b = alloc_uniform(s.ch, 7, -1, 1); s.out = alloc_zero(n); s.mean = alloc_zero(s.rows);
    s.var = alloc_zero(s.rows); s.r = alloc_uniform(n, 8, -1, 1);
    float *dx = alloc_zero(n), *dw = alloc_zero(s.ch), *db = alloc_zero(s.ch);
    ln_loss(&s);
    CHECK_OK(layernorm_backward(ctx, dx, dw, db, s.r, s.x, s.mean, s.var, s.w, s.b, s.rows, s.ch));
    GC("layernorm", "inp", ln_loss, &s, s.x, dx, n);
    GC("layernorm", "weight", ln_loss, &s, s.w, dw, s.ch);
    GC("layernorm", "bias", ln_loss, &s, s.b, db, s.ch);
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.mean); free(s.var); free(s.r);
    free(dx); free(dw); free(db);
}
END_TEST

/* ---- gelu / relu / softmax ---------------------------------------------- */
typedef struct { float *x, *out, *r; size_t n; int rows, cols, kind; } elt_s;
static double elt_loss(void *p) {
    elt_s *s = p;
    mt_status st = s->kind == 0   ? gelu_forward(ctx, s->out, s->x, s->n)
                   : s->kind == 1 ? relu_forward(ctx, s->out, s->x, s->n)
                                  : softmax_forward(ctx, s->out, s->x, s->rows, s->cols);
    return st ? NAN : dot_loss(s->out, s->r, s->n);
}
START_TEST(grad_eltwise_softmax) {
    const char *names[3] = {"gelu", "relu", "softmax"};
    for (int kind = 0; kind < 3; kind++) {
        elt_s s = {0};
        s.rows = 4; s.cols = 9; s.n = 36; s.kind = kind;
        s.x = alloc_uniform(s.n, 9 + kind, -3, 3);
        if (kind == 1) /* keep ReLU inputs away from the kink */
            for (size_t i = 0; i < s.n; i++) s.x[i] += s.x[i] >= 0 ? 0.1f : -0.1f;
        s.out = alloc_zero(s.n); s.r = alloc_uniform(s.n, 20 + kind, -1, 1);
        float *dx = alloc_zero(s.n);
        elt_loss(&s);
        if (kind == 0) CHECK_OK(gelu_backward(ctx, dx, s.r, s.x, s.n));
        if (kind == 1) CHECK_OK(relu_backward(ctx, dx, s.r, s.x, s.n));
        if (kind == 2) CHECK_OK(softmax_backward(ctx, dx, s.r, s.out, s.rows, s.cols));
        GC(names[kind], "inp", elt_loss, &s, s.x, dx, s.n);
        free(s.x); free(s.out); free(s.r); free(dx);
    }
}
END_TEST

/* ---- window geometry: roll, partition, reverse as one chain -------------- */
typedef struct { float *x, *rolled, *win, *back, *r; int B, H, W, C, ws, sh; } win_s;
static double win_loss(void *p) {
    win_s *s = p;
    size_t n = (size_t)s->B * s->H * s->W * s->C;
    if (roll_forward(ctx, s->rolled, s->x, s->B, s->H, s->W, s->C, -s->sh, -s->sh) ||
        window_partition_forward(ctx, s->win, s->rolled, s->B, s->H, s->W, s->C, s->ws))
        return NAN;
    /* Use both the windows and a reversed copy so both backward paths count. */
    if (window_reverse_forward(ctx, s->back, s->win, s->B, s->H, s->W, s->C, s->ws)) return NAN;
    return dot_loss(s->win, s->r, n) + 0.5 * dot_loss(s->back, s->r, n);
}
START_TEST(grad_window) {
    win_s s = {0};
    s.B = 2; s.H = 8; s.W = 12; s.C = 3; s.ws = 4; s.sh = 2;
    size_t n = (size_t)s.B * s.H * s.W * s.C;
    s.x = alloc_uniform(n, 30, -1, 1); s.rolled = alloc_zero(n); s.win = alloc_zero(n);
    s.back = alloc_zero(n); s.r = alloc_uniform(n, 31, -1, 1);
    float *dback = alloc_zero(n), *dwin = alloc_zero(n), *drolled = alloc_zero(n), *dx = alloc_zero(n);
    win_loss(&s);
    for (size_t i = 0; i < n; i++) dback[i] = 0.5f * s.r[i];
    memcpy(dwin, s.r, n * sizeof(float));
    CHECK_OK(window_reverse_backward(ctx, dwin, dback, s.B, s.H, s.W, s.C, s.ws));
    CHECK_OK(window_partition_backward(ctx, drolled, dwin, s.B, s.H, s.W, s.C, s.ws));
    CHECK_OK(roll_backward(ctx, dx, drolled, s.B, s.H, s.W, s.C, -s.sh, -s.sh));
    GC("roll+window", "x", win_loss, &s, s.x, dx, n);
    free(s.x); free(s.rolled); free(s.win); free(s.back); free(s.r);
    free(dback); free(dwin); free(drolled); free(dx);
}
END_TEST

/* ---- window attention ------------------------------------------------- */
typedef struct { float *qkv, *table, *mask, *out, *probs, *r; int nwb, nw, ws, C, heads; } at_s;
static double at_loss(void *p) {
    at_s *s = p;
    if (window_attention_forward(ctx, s->out, s->probs, s->qkv, s->table, s->mask, s->nwb, s->nw,
                                 s->ws, s->C, s->heads))
        return NAN;
    return dot_loss(s->out, s->r, (size_t)s->nwb * s->ws * s->ws * s->C);
}
START_TEST(grad_attention) {
    at_s s = {0};
    int H = 8;
    s.ws = 4; s.C = 8; s.heads = 2; s.nw = (H / s.ws) * (H / s.ws); s.nwb = 2 * s.nw;
    int N = s.ws * s.ws;
    size_t nq = (size_t)s.nwb * N * 3 * s.C, nt = (size_t)(2 * s.ws - 1) * (2 * s.ws - 1) * s.heads;
    size_t no = (size_t)s.nwb * N * s.C;
    s.qkv = alloc_uniform(nq, 40, -1, 1); s.table = alloc_uniform(nt, 41, -1, 1);
    s.mask = alloc_zero((size_t)s.nw * N * N);
    CHECK_OK(swin_attn_mask(ctx, s.mask, H, H, s.ws, 2));
    s.out = alloc_zero(no); s.probs = alloc_zero((size_t)s.nwb * s.heads * N * N);
    s.r = alloc_uniform(no, 42, -1, 1);
    float *dqkv = alloc_zero(nq), *dtable = alloc_zero(nt);
    at_loss(&s);
    CHECK_OK(window_attention_backward(ctx, dqkv, dtable, s.r, s.qkv, s.probs, s.nwb, s.ws, s.C, s.heads));
    GC("window_attention", "qkv", at_loss, &s, s.qkv, dqkv, nq);
    GC("window_attention", "table", at_loss, &s, s.table, dtable, nt);
    free(s.qkv); free(s.table); free(s.mask); free(s.out); free(s.probs); free(s.r);
    free(dqkv); free(dtable);
}
END_TEST

/* ---- conv2d (patch 4x4/4 to NHWC, and 1x1 NCHW) -------------------------- */
typedef struct { float *x, *w, *b, *out, *r; int B, Cin, H, W, Cout, k, nhwc; size_t no; } cv_s;
static double cv_loss(void *p) {
    cv_s *s = p;
    if (conv2d_forward(ctx, s->out, s->x, s->w, s->b, s->B, s->Cin, s->H, s->W, s->Cout, s->k,
                       s->k, s->nhwc))
        return NAN;
    return dot_loss(s->out, s->r, s->no);
}
START_TEST(grad_conv2d) {
    int cfg[2][7] = {{2, 3, 8, 8, 5, 4, 1}, {2, 6, 3, 5, 4, 1, 0}};
    for (int c = 0; c < 2; c++) {
        cv_s s = {0};
        s.B = cfg[c][0]; s.Cin = cfg[c][1]; s.H = cfg[c][2]; s.W = cfg[c][3]; s.Cout = cfg[c][4];
        s.k = cfg[c][5]; s.nhwc = cfg[c][6];
        size_t nx = (size_t)s.B * s.Cin * s.H * s.W, nw = (size_t)s.Cout * s.Cin * s.k * s.k;
        s.no = (size_t)s.B * s.Cout * (s.H / s.k) * (s.W / s.k);
        s.x = alloc_uniform(nx, 50, -1, 1); s.w = alloc_uniform(nw, 51, -1, 1);
        s.b = alloc_uniform(s.Cout, 52, -1, 1); s.out = alloc_zero(s.no);
        s.r = alloc_uniform(s.no, 53, -1, 1);
        float *dx = alloc_zero(nx), *dw = alloc_zero(nw), *db = alloc_zero(s.Cout);
        cv_loss(&s);
        CHECK_OK(conv2d_backward(ctx, dx, dw, db, s.r, s.x, s.w, s.B, s.Cin, s.H, s.W, s.Cout, s.k,
                                 s.k, s.nhwc));
        GC("conv2d", "inp", cv_loss, &s, s.x, dx, nx);
        GC("conv2d", "weight", cv_loss, &s, s.w, dw, nw);
        GC("conv2d", "bias", cv_loss, &s, s.b, db, s.Cout);
        free(s.x); free(s.w); free(s.b); free(s.out); free(s.r); free(dx); free(dw); free(db);
    }
}
END_TEST

/* ---- patch embedding ---------------------------------------------------- */
typedef struct { float *img, *cw, *cb, *lw, *lb, *out, *conv, *mean, *var, *r; int B, Cin, H, C, p; } pe_s;
static double pe_loss(void *p) {
    pe_s *s = p;
    patch_embed_weights w = {s->cw, s->cb, s->lw, s->lb};
    if (patch_embed_forward(ctx, s->out, s->conv, s->mean, s->var, s->img, w, s->B, s->Cin, s->H,
                            s->H, s->C, s->p))
        return NAN;
    return dot_loss(s->out, s->r, (size_t)s->B * (s->H / s->p) * (s->H / s->p) * s->C);
}
START_TEST(grad_patch_embed) {
    pe_s s = {0};
    s.B = 2; s.Cin = 3; s.H = 8; s.C = 6; s.p = 4;
    int rows = s.B * (s.H / s.p) * (s.H / s.p);
    size_t ni = (size_t)s.B * s.Cin * s.H * s.H, nw = (size_t)s.C * s.Cin * s.p * s.p;
    s.img = alloc_uniform(ni, 60, -1, 1); s.cw = alloc_uniform(nw, 61, -1, 1);
    s.cb = alloc_uniform(s.C, 62, -1, 1); s.lw = alloc_uniform(s.C, 63, 0.5f, 1.5f);
    s.lb = alloc_uniform(s.C, 64, -1, 1); s.out = alloc_zero((size_t)rows * s.C);
    s.conv = alloc_zero((size_t)rows * s.C); s.mean = alloc_zero(rows); s.var = alloc_zero(rows);
    s.r = alloc_uniform((size_t)rows * s.C, 65, -1, 1);
    float *dimg = alloc_zero(ni);
    patch_embed_grads g = {alloc_zero(nw), alloc_zero(s.C), alloc_zero(s.C), alloc_zero(s.C)};
    pe_loss(&s);
    patch_embed_weights w = {s.cw, s.cb, s.lw, s.lb};
    CHECK_OK(patch_embed_backward(ctx, dimg, g, s.r, s.img, s.conv, s.mean, s.var, w, s.B, s.Cin,
                                  s.H, s.H, s.C, s.p));
    GC("patch_embed", "img", pe_loss, &s, s.img, dimg, ni);
    GC("patch_embed", "conv_w", pe_loss, &s, s.cw, g.conv_w, nw);
    GC("patch_embed", "conv_b", pe_loss, &s, s.cb, g.conv_b, s.C);
    GC("patch_embed", "ln_w", pe_loss, &s, s.lw, g.ln_w, s.C);
    GC("patch_embed", "ln_b", pe_loss, &s, s.lb, g.ln_b, s.C);
    free(s.img); free(s.cw); free(s.cb); free(s.lw); free(s.lb); free(s.out); free(s.conv);
    free(s.mean); free(s.var); free(s.r); free(dimg);
    free(g.conv_w); free(g.conv_b); free(g.ln_w); free(g.ln_b);
}
END_TEST

/* ---- patch merging ------------------------------------------------------ */
typedef struct { float *x, *lw, *lb, *rw, *out, *gath, *normed, *mean, *var, *r; int B, H, W, C; } pm_s;
static double pm_loss(void *p) {
    pm_s *s = p;
    if (patch_merging_forward(ctx, s->out, s->gath, s->normed, s->mean, s->var, s->x, s->lw, s->lb,
                              s->rw, s->B, s->H, s->W, s->C))
        return NAN;
    return dot_loss(s->out, s->r, (size_t)s->B * (s->H / 2) * (s->W / 2) * 2 * s->C);
}
START_TEST(grad_patch_merging) {
    pm_s s = {0};
    s.B = 2; s.H = 4; s.W = 6; s.C = 3;
    int rows = s.B * (s.H / 2) * (s.W / 2);
    size_t nx = (size_t)s.B * s.H * s.W * s.C;
    s.x = alloc_uniform(nx, 70, -1, 1); s.lw = alloc_uniform(4 * s.C, 71, 0.5f, 1.5f);
    s.lb = alloc_uniform(4 * s.C, 72, -1, 1); s.rw = alloc_uniform((size_t)8 * s.C * s.C, 73, -1, 1);
    s.out = alloc_zero((size_t)rows * 2 * s.C); s.gath = alloc_zero((size_t)rows * 4 * s.C);
    s.normed = alloc_zero((size_t)rows * 4 * s.C); s.mean = alloc_zero(rows); s.var = alloc_zero(rows);
    s.r = alloc_uniform((size_t)rows * 2 * s.C, 74, -1, 1);
    float *dx = alloc_zero(nx), *dlw = alloc_zero(4 * s.C), *dlb = alloc_zero(4 * s.C);
    float *drw = alloc_zero((size_t)8 * s.C * s.C);
    pm_loss(&s);
    CHECK_OK(patch_merging_backward(ctx, dx, dlw, dlb, drw, s.r, s.gath, s.normed, s.mean, s.var,
                                    s.lw, s.lb, s.rw, s.B, s.H, s.W, s.C));
    GC("patch_merging", "x", pm_loss, &s, s.x, dx, nx);
    GC("patch_merging", "ln_w", pm_loss, &s, s.lw, dlw, 4 * s.C);
    GC("patch_merging", "ln_b", pm_loss, &s, s.lb, dlb, 4 * s.C);
    GC("patch_merging", "red_w", pm_loss, &s, s.rw, drw, (size_t)8 * s.C * s.C);
    free(s.x); free(s.lw); free(s.lb); free(s.rw); free(s.out); free(s.gath); free(s.normed);
    free(s.mean); free(s.var); free(s.r); free(dx); free(dlw); free(dlb); free(drw);
}
END_TEST

/* ---- batch norm (training) ------------------------------------------------ */
typedef struct { float *x, *w, *b, *out, *sm, *sv, *rm, *rv, *r; int B, C, HW; } bn_s;
static double bn_loss(void *p) {
    bn_s *s = p;
    if (batchnorm_forward(ctx, s->out, s->sm, s->sv, s->rm, s->rv, s->x, s->w, s->b, s->B, s->C,
                          s->HW, 1, 0.1f))
        return NAN;
    return dot_loss(s->out, s->r, (size_t)s->B * s->C * s->HW);
}
START_TEST(grad_batchnorm) {
    bn_s s = {0};
    s.B = 3; s.C = 4; s.HW = 5;
    size_t n = (size_t)s.B * s.C * s.HW;
    s.x = alloc_uniform(n, 80, -2, 2); s.w = alloc_uniform(s.C, 81, 0.5f, 1.5f);
    s.b = alloc_uniform(s.C, 82, -1, 1); s.out = alloc_zero(n); s.sm = alloc_zero(s.C);
    s.sv = alloc_zero(s.C); s.rm = alloc_zero(s.C); s.rv = alloc_zero(s.C);
    s.r = alloc_uniform(n, 83, -1, 1);
    float *dx = alloc_zero(n), *dw = alloc_zero(s.C), *db = alloc_zero(s.C);
    bn_loss(&s);
    CHECK_OK(batchnorm_backward(ctx, dx, dw, db, s.r, s.x, s.sm, s.sv, s.w, s.b, s.B, s.C, s.HW));
    GC("batchnorm", "inp", bn_loss, &s, s.x, dx, n);
    GC("batchnorm", "weight", bn_loss, &s, s.w, dw, s.C);
    GC("batchnorm", "bias", bn_loss, &s, s.b, db, s.C);
    free(s.x); free(s.w); free(s.b); free(s.out); free(s.sm); free(s.sv); free(s.rm); free(s.rv);
    free(s.r); free(dx); free(dw); free(db);
}
END_TEST

/* ---- bilinear resize up and down ------------------------------------------ */
typedef struct { float *x, *out, *r; int B, C, hi, wi, ho, wo; } rs_s;
static double rs_loss(void *p) {
    rs_s *s = p;
    if (resize_bilinear_forward(ctx, s->out, s->x, s->B, s->C, s->hi, s->wi, s->ho, s->wo)) return NAN;
    return dot_loss(s->out, s->r, (size_t)s->B * s->C * s->ho * s->wo);
}
START_TEST(grad_resize) {
    int cfg[2][4] = {{3, 5, 11, 8}, {12, 9, 5, 4}};
    for (int c = 0; c < 2; c++) {
        rs_s s = {0};
        s.B = 2; s.C = 2; s.hi = cfg[c][0]; s.wi = cfg[c][1]; s.ho = cfg[c][2]; s.wo = cfg[c][3];
        size_t ni = (size_t)s.B * s.C * s.hi * s.wi, no = (size_t)s.B * s.C * s.ho * s.wo;
        s.x = alloc_uniform(ni, 90, -1, 1); s.out = alloc_zero(no); s.r = alloc_uniform(no, 91, -1, 1);
        float *dx = alloc_zero(ni);
        rs_loss(&s);
        CHECK_OK(resize_bilinear_backward(ctx, dx, s.r, s.B, s.C, s.hi, s.wi, s.ho, s.wo));
        GC(c ? "resize_down" : "resize_up", "inp", rs_loss, &s, s.x, dx, ni);
        free(s.x); free(s.out); free(s.r); free(dx);
    }
}
END_TEST

/* ---- dropout and drop path (fixed seed: a linear map) ---------------------- */
typedef struct { float *x, *out, *r; size_t n; int B, path; } dp_s;
static double dp_loss(void *p) {
    dp_s *s = p;
    mt_status st = s->path ? drop_path_forward(ctx, s->out, s->x, s->B, s->n / s->B, 0.3f, 7, 100)
                           : dropout_forward(ctx, s->out, s->x, s->n, 0.3f, 7, 100);
    return st ? NAN : dot_loss(s->out, s->r, s->n);
}
START_TEST(grad_dropout) {
    for (int path = 0; path < 2; path++) {
        dp_s s = {0};
        s.n = 64; s.B = 8; s.path = path;
        s.x = alloc_uniform(s.n, 95, -1, 1); s.out = alloc_zero(s.n); s.r = alloc_uniform(s.n, 96, -1, 1);
        float *dx = alloc_zero(s.n);
        dp_loss(&s);
        if (path) CHECK_OK(drop_path_backward(ctx, dx, s.r, s.B, s.n / s.B, 0.3f, 7, 100));
        else CHECK_OK(dropout_backward(ctx, dx, s.r, s.n, 0.3f, 7, 100));
        GC(path ? "drop_path" : "dropout", "inp", dp_loss, &s, s.x, dx, s.n);
        free(s.x); free(s.out); free(s.r); free(dx);
    }
}
END_TEST

/* ---- losses ----------------------------------------------------------- */
typedef struct { float *logits; const void *labels; int kind, B, K; size_t HW; } ls_s;
static double ls_loss(void *p) {
    ls_s *s = p;
    double l = NAN;
    mt_status st = s->kind == 0 ? softmax_ce_loss(ctx, &l, NULL, s->logits, s->labels, s->B, s->K, s->HW, 1)
                   : s->kind == 1 ? balanced_bce_loss(ctx, &l, NULL, s->logits, s->labels,
                                                      (size_t)s->B * s->HW, -1.0f, 1)
                                  : normals_loss(ctx, &l, NULL, s->logits, s->labels, s->B, s->K, s->HW, 1);
    return st ? NAN : l;
}
START_TEST(grad_losses) {
    const char *names[3] = {"softmax_ce_loss", "balanced_bce", "normals_loss"};
    for (int kind = 0; kind < 3; kind++) {
        ls_s s = {0};
        s.kind = kind; s.B = 2; s.HW = 12; s.K = kind == 0 ? 5 : kind == 1 ? 1 : 3;
        size_t n = (size_t)s.B * s.K * s.HW;
        s.logits = alloc_uniform(n, 100 + kind, -2, 2);
        uint8_t *lab8 = malloc((size_t)s.B * s.HW);
        float *labf = alloc_zero(n);
        for (size_t i = 0; i < (size_t)s.B * s.HW; i++) lab8[i] = i % 7 == 3 ? 255 : (uint8_t)(i * 3 % 5);
        for (size_t i = 0; i < n; i++)
            labf[i] = kind == 1 ? (i % 3 == 0) : (i % 11 == 5 ? 255.0f : 0.3f * (float)(i % 5) - 0.6f);
        s.labels = kind == 0 ? (const void *)lab8 : (const void *)labf;
        float *dl = alloc_zero(n);
        double l;
        if (kind == 0) CHECK_OK(softmax_ce_loss(ctx, &l, dl, s.logits, lab8, s.B, s.K, s.HW, 1.0f));
        if (kind == 1) CHECK_OK(balanced_bce_loss(ctx, &l, dl, s.logits, labf, n, -1.0f, 1.0f));
        if (kind == 2) CHECK_OK(normals_loss(ctx, &l, dl, s.logits, labf, s.B, s.K, s.HW, 1.0f));
        ck_assert_int_eq(gradcheck(names[kind], "logits", ls_loss, &s, s.logits, dl, n, 1e-3f, TOL, SAMPLES), 0);
        free(s.logits); free(lab8); free(labf); free(dl);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("gradcheck");
    TCase *tc = tcase_create("central_difference");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, grad_linear);
    tcase_add_test(tc, grad_checker_catches_errors);
    tcase_add_test(tc, grad_lora);
    tcase_add_test(tc, grad_layernorm);
    tcase_add_test(tc, grad_eltwise_softmax);
    tcase_add_test(tc, grad_window);
    tcase_add_test(tc, grad_attention);
    tcase_add_test(tc, grad_conv2d);
    tcase_add_test(tc, grad_patch_embed);
    tcase_add_test(tc, grad_patch_merging);
    tcase_add_test(tc, grad_batchnorm);
    tcase_add_test(tc, grad_resize);
    tcase_add_test(tc, grad_dropout);
    tcase_add_test(tc, grad_losses);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
