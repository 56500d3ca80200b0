/* test_bf16.c - bfloat16 storage and matmuls (include/mtlora/ops/bf16.h):
 *  - conversion rounds to nearest even (ties, carries into the exponent,
 *    overflow to infinity), keeps NaN a NaN and infinities infinite,
 *    flushes denormals to signed zero (as vcvtneps2bf16 does), and
 *    the vector body (AVX512_BF16, when the CPU has it) gives bit for bit
 *    what the scalar rounding gives, on a length that is not a multiple of
 *    16 and large enough to be split over threads;
 *  - widening is exact (bf16 -> f32 -> bf16 is the identity);
 *  - the frozen bf16 linear equals a float64 product of the bf16-rounded
 *    operands (so the matmul really accumulates in f32, not bf16), and
 *    stays within bf16's error of the float32 layer; its data gradient
 *    likewise, overwriting and accumulating;
 *  - the ISA probe names an implementation for each type;
 *  - without a bf16 matmul (ctest bf16_fallback: ONEDNN_MAX_CPU_ISA=AVX2)
 *    AMP_ENABLE True runs f32 and says why in one line, also when
 *    AMP.MATMUL bf16 asks for it.
 * Matmul checks are skipped (with a message) where oneDNN has no bf16
 * matmul. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/ops/bf16.h"
#include "mtlora/ops/layers.h"
#include "test_util.h"

static float f_of_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

START_TEST(rounding) {
    ck_assert_uint_eq(mt_bf16_of(1.0f), 0x3f80);
    /* exactly half-way: to the even neighbour */
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x3f808000u)), 0x3f80);
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x3f818000u)), 0x3f82);
    /* above half-way rounds up, below down */
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x3f808001u)), 0x3f81);
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x3f807fffu)), 0x3f80);
    /* a carry through the mantissa into the exponent */
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x3fffffffu)), 0x4000);
    /* the largest float rounds to infinity; infinities and NaN stay */
    ck_assert_uint_eq(mt_bf16_of(f_of_bits(0x7f7fffffu)), 0x7f80);
    ck_assert_uint_eq(mt_bf16_of(INFINITY), 0x7f80);
    ck_assert_uint_eq(mt_bf16_of(-INFINITY), 0xff80);
    ck_assert(isnan(mt_bf16_value(mt_bf16_of(NAN))));
    ck_assert(isnan(mt_bf16_value(mt_bf16_of(f_of_bits(0x7f800001u))))); /* NaN, low payload */
    ck_assert_float_eq(mt_bf16_value(0xc0a0), -5.0f);
    ck_assert_uint_eq(mt_bf16_of(1e-40f), 0x0000);
    ck_assert_uint_eq(mt_bf16_of(-1e-40f), 0x8000);
}
END_TEST

START_TEST(vector_equals_scalar) {
    const size_t n = 100003; /* not a multiple of 16; above the threading split */
    float *x = alloc_uniform(n, 11, -3.0f, 3.0f);
    for (size_t i = 0; i < n; i += 97) x[i] = f_of_bits(0x3f808000u + (uint32_t)(i % 3) * 0x10000u);
    x[5] = INFINITY, x[6] = -0.0f, x[7] = 1e-40f; /* a denormal */
    mt_bf16 *h = malloc(n * sizeof *h);
    float *back = malloc(n * sizeof *back);
    mt_bf16 *again = malloc(n * sizeof *again);
    mt_f32_to_bf16(h, x, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += h[i] != mt_bf16_of(x[i]);
    ck_assert_msg(bad == 0, "%zu of %zu conversions differ from the scalar rounding", bad, n);
    mt_bf16_to_f32(back, h, n);
    mt_f32_to_bf16(again, back, n);
    ck_assert_int_eq(memcmp(h, again, n * sizeof *h), 0);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i]) && fabsf(x[i]) > 1e-30f)
            worst = fmax(worst, fabs((double)back[i] - x[i]) / fabs((double)x[i]));
    ck_assert_msg(worst <= 1.0 / 256.0, "relative rounding error %g above 2^-8", worst);
    free(x); free(h); free(back); free(again);
}
END_TEST

static int have_bf16(mt_ctx *ctx) {
    mt_matmul_isa isa;
    ck_assert_int_eq(mt_matmul_isa_probe(ctx, &isa), MT_OK);
    ck_assert(isa.f32_isa[0] != '\0');
    ck_assert(isa.bf16_isa[0] != '\0');
    if (!isa.bf16_available) printf("test_bf16: no bf16 matmul here (%s): skipped\n", isa.bf16_isa);
    return isa.bf16_available;
}

START_TEST(linear_matches_rounded_reference) {
    mt_ctx *ctx = test_ctx();
    if (!have_bf16(ctx)) { mt_ctx_destroy(ctx); return; }
    const int rows = 300, in = 96, out = 72;
    float *x = alloc_uniform((size_t)rows * in, 1, -1.0f, 1.0f);
    float *w = alloc_uniform((size_t)out * in, 2, -0.2f, 0.2f);
    float *b = alloc_uniform((size_t)out, 3, -0.5f, 0.5f);
    mt_bf16 *wh = malloc((size_t)out * in * sizeof *wh), *bh = malloc((size_t)out * sizeof *bh);
    mt_bf16 *xh = malloc((size_t)rows * in * sizeof *xh);
    mt_f32_to_bf16(wh, w, (size_t)out * in);
    mt_f32_to_bf16(bh, b, (size_t)out);
    float *y = alloc_zero((size_t)rows * out), *y32 = alloc_zero((size_t)rows * out);
    ck_assert_int_eq(linear_bf16_forward(ctx, y, xh, x, wh, bh, rows, in, out), MT_OK);
    ck_assert_int_eq(linear_forward(ctx, y32, x, w, b, rows, in, out), MT_OK);
    /* xh holds the converted input, as documented */
    for (size_t i = 0; i < (size_t)rows * in; i++) ck_assert_uint_eq(xh[i], mt_bf16_of(x[i]));
    double worst = 0.0, scale = 0.0;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double acc = mt_bf16_value(bh[o]);
            for (int k = 0; k < in; k++)
                acc += (double)mt_bf16_value(xh[(size_t)r * in + k]) *
                       mt_bf16_value(wh[(size_t)o * in + k]);
            worst = fmax(worst, fabs(acc - y[(size_t)r * out + o]));
            scale = fmax(scale, fabs(acc));
        }
    ck_assert_msg(worst <= 1e-5 * scale, "bf16 linear off the rounded reference by %g (scale %g)",
                  worst, scale);
    double rel = max_rel_err(y, y32, (size_t)rows * out);
    ck_assert_msg(rel < 1e-2 && rel > 0.0, "bf16 vs f32 linear: %g", rel);
    /* the data gradient: overwrite, then accumulate */
    float *dy = alloc_uniform((size_t)rows * out, 4, -1.0f, 1.0f);
    float *dx = alloc_uniform((size_t)rows * in, 5, -1.0f, 1.0f), *dx32 = alloc_zero((size_t)rows * in);
    ck_assert_int_eq(linear_bf16_backward_data(ctx, dx, dy, wh, rows, in, out, 0), MT_OK);
    ck_assert_int_eq(linear_backward(ctx, dx32, NULL, NULL, dy, x, w, rows, in, out), MT_OK);
    rel = max_rel_err(dx, dx32, (size_t)rows * in);
    ck_assert_msg(rel < 1e-2, "bf16 data gradient vs f32: %g", rel);
    ck_assert_int_eq(linear_bf16_backward_data(ctx, dx, dy, wh, rows, in, out, 1), MT_OK);
    for (size_t i = 0; i < (size_t)rows * in; i++) dx32[i] *= 2.0f;
    rel = max_rel_err(dx, dx32, (size_t)rows * in);
    ck_assert_msg(rel < 1e-2, "accumulated bf16 data gradient vs 2x f32: %g", rel);
    /* errors name the op */
    ck_assert_int_eq(linear_bf16_forward(ctx, y, NULL, x, NULL, NULL, rows, in, out), MT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(mt_ctx_error(ctx), "linear_bf16_forward"));
    ck_assert_int_eq(linear_bf16_backward_data(ctx, dx, dy, wh, 0, in, out, 0), MT_ERR_SHAPE);
    free(x); free(w); free(b); free(wh); free(bh); free(xh); free(y); free(y32);
    free(dy); free(dx); free(dx32);
    mt_ctx_destroy(ctx);
}
END_TEST

START_TEST(peak_probe) {
    mt_ctx *ctx = test_ctx();
    ck_assert(mt_matmul_gflops(ctx, 0, 256, 64, 64, 3) > 0.0);
    if (have_bf16(ctx)) ck_assert(mt_matmul_gflops(ctx, 1, 256, 64, 64, 3) > 0.0);
    ck_assert(mt_matmul_gflops(ctx, 0, 0, 64, 64, 3) == 0.0);
    mt_ctx_destroy(ctx);
}
END_TEST

/* ctest bf16_fallback runs this suite with ONEDNN_MAX_CPU_ISA=AVX2 (a CPU
 * without bf16 as oneDNN sees it) and MTLORA_EXPECT_NO_BF16=1: AMP_ENABLE
 * True then runs f32 and says so in one line; AMP.MATMUL bf16 cannot force
 * what is not there. Elsewhere only the note of a run in f32 is checked. */
START_TEST(fallback_without_bf16) {
    char err[512];
    mt_ctx *ctx = test_ctx();
    const int expect_none = getenv("MTLORA_EXPECT_NO_BF16") != NULL;
    const char *modes[2] = {"auto", "bf16"};
    for (int i = 0; i < 2; i++) {
        mt_config c;
        mt_config_default(&c);
        const char *kv[][2] = {{"DATA.IMG_SIZE", "32"}, {"MODEL.SWIN.EMBED_DIM", "8"},
                               {"MODEL.SWIN.DEPTHS", "[2, 2]"}, {"MODEL.SWIN.NUM_HEADS", "[1, 2]"},
                               {"MODEL.SWIN.WINDOW_SIZE", "4"}, {"MODEL.DECODER_CHANNELS", "[4, 4]"},
                               {"MODEL.MTLORA.ENABLED", "True"}, {"MODEL.MTLORA.R", "[4]"},
                               {"MODEL.MTLORA.SHARED_SCALE", "[2.0]"}, {"MODEL.MTLORA.DROPOUT", "[0.1]"},
                               {"TASKS", "[semseg, sal]"},
                               {"AMP_ENABLE", "True"}, {"AMP.MATMUL", modes[i]}};
        for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
            ck_assert_msg(mt_config_set(&c, kv[k][0], kv[k][1], err, sizeof err) == MT_OK, "%s", err);
        ck_assert_msg(mt_config_finalize(&c, err, sizeof err) == MT_OK, "%s", err);
        mt_model *m;
        ck_assert_int_eq(mt_model_create(&m, ctx, &c, 1), MT_OK);
        mt_precision p = mt_model_precision(m);
        printf("AMP.MATMUL %s: %s\n", modes[i], p.note);
        if (expect_none) {
            ck_assert_int_eq(p.bf16, 0);
            ck_assert_ptr_nonnull(strstr(p.note, "no bf16 matmul"));
            ck_assert_ptr_nonnull(strstr(p.note, "stay f32"));
            ck_assert_uint_eq(mt_model_frozen_bf16_count(m), 0);
        }
        if (!p.bf16) ck_assert_ptr_null(strchr(p.note, '\n')); /* one line */
        mt_model_destroy(m);
    }
    mt_ctx_destroy(ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rounding);
    tcase_add_test(tc, vector_equals_scalar);
    tcase_add_test(tc, linear_matches_rounded_reference);
    tcase_add_test(tc, peak_probe);
    tcase_add_test(tc, fallback_without_bf16);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
