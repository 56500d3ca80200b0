/* test_rng_dropout.c - the counter-based RNG and the dropout masks built on
 * it: right drop rate and scaling, reproducible, independent of thread
 * count, and the backward sees the forward's mask. (PyTorch's RNG stream
 * cannot be matched, so dropout is held to these properties instead.) */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/ops/layers.h"
#include "mtlora/base/rng.h"
#include "test_util.h"

START_TEST(uniform_is_uniform) {
    enum { N = 200000, BINS = 10 };
    int hist[BINS] = {0};
    double mean = 0;
    for (int i = 0; i < N; i++) {
        float u = mt_rng_uniform(42, (uint64_t)i);
        ck_assert(u >= 0.0f && u < 1.0f);
        hist[(int)(u * BINS)]++;
        mean += u;
    }
    mean /= N;
    ck_assert(fabs(mean - 0.5) < 0.005);
    for (int b = 0; b < BINS; b++) ck_assert(abs(hist[b] - N / BINS) < N / BINS / 20);
    /* Different seeds give different streams. */
    ck_assert(mt_rng_bits(1, 0) != mt_rng_bits(2, 0));
    ck_assert(mt_rng_bits(1, 0) != mt_rng_bits(1, 1));
}
END_TEST

START_TEST(dropout_rate_scale_and_threads) {
    mt_ctx *ctx = test_ctx();
    size_t n = 300000;
    float p = 0.2f;
    float *x = alloc_uniform(n, 5, 1, 2), *a = alloc_zero(n), *b = alloc_zero(n), *d = alloc_zero(n);
    omp_set_num_threads(1);
    ck_assert_int_eq(dropout_forward(ctx, a, x, n, p, 99, 1000), MT_OK);
    omp_set_num_threads(2);
    ck_assert_int_eq(dropout_forward(ctx, b, x, n, p, 99, 1000), MT_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == 0.0f) dropped++;
        else ck_assert(fabsf(a[i] - x[i] / (1.0f - p)) <= 1e-6f * fabsf(a[i]));
    }
    ck_assert(fabs((double)dropped / n - p) < 0.005);
    /* backward: gradient flows exactly where the forward kept values */
    float *ones = alloc_uniform(n, 6, 1, 1);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    ck_assert_int_eq(dropout_backward(ctx, d, ones, n, p, 99, 1000), MT_OK);
    for (size_t i = 0; i < n; i++) ck_assert((d[i] == 0.0f) == (a[i] == 0.0f));
    /* another seed gives another mask */
    ck_assert_int_eq(dropout_forward(ctx, b, x, n, p, 100, 1000), MT_OK);
    ck_assert(memcmp(a, b, n * sizeof(float)) != 0);
    free(x); free(a); free(b); free(d); free(ones);
    mt_ctx_destroy(ctx);
}
END_TEST

/* The mask is its definition on whichever vector path this CPU runs
 * (AVX-512, AVX2 or plain x86-64): element i is kept when 16-bit lane
 * i % 4 of mt_rng_bits(seed, offset + i / 4) is at least p * 65536, and a
 * kept element is scaled by 1 / (1 - p) exactly. A length that is neither a
 * multiple of 4 nor of the 1024-element blocks, forward and backward. */
START_TEST(mask_is_its_definition) {
    mt_ctx *ctx = test_ctx();
    const size_t n = 200003;
    const float p = 0.3f, scale = 1.0f / (1.0f - p);
    const uint64_t seed = 7, offset = 12345;
    const uint32_t thresh = (uint32_t)(p * 65536.0f + 0.5f);
    float *x = alloc_uniform(n, 8, -1, 1), *y = alloc_zero(n), *g = alloc_zero(n);
    ck_assert_int_eq(dropout_forward(ctx, y, x, n, p, seed, offset), MT_OK);
    ck_assert_int_eq(dropout_backward(ctx, g, x, n, p, seed, offset), MT_OK);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const uint64_t draw = mt_rng_bits(seed, offset + i / 4);
        const int keep = ((draw >> (16 * (i % 4))) & 0xffffu) >= thresh;
        const float want = x[i] * (keep ? scale : 0.0f);
        ck_assert_msg(y[i] == want && g[i] == want, "element %zu: %g / %g, want %g", i,
                      (double)y[i], (double)g[i], (double)want);
        kept += keep;
    }
    ck_assert(kept > n / 2 && kept < n);
    free(x); free(y); free(g);
    mt_ctx_destroy(ctx);
}
END_TEST

START_TEST(drop_path_whole_samples) {
    mt_ctx *ctx = test_ctx();
    int B = 4000;
    size_t per = 6;
    float *x = alloc_uniform((size_t)B * per, 7, 1, 2), *o = alloc_zero((size_t)B * per);
    ck_assert_int_eq(drop_path_forward(ctx, o, x, B, per, 0.25f, 3, 0), MT_OK);
    int dropped = 0;
    for (int b = 0; b < B; b++) {
        int zeros = 0;
        for (size_t k = 0; k < per; k++) zeros += o[b * per + k] == 0.0f;
        ck_assert(zeros == 0 || zeros == (int)per); /* all or nothing per sample */
        dropped += zeros == (int)per;
    }
    ck_assert(fabs((double)dropped / B - 0.25) < 0.03);
    free(x); free(o);
    mt_ctx_destroy(ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rng_dropout");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, uniform_is_uniform);
    tcase_add_test(tc, dropout_rate_scale_and_threads);
    tcase_add_test(tc, mask_is_its_definition);
    tcase_add_test(tc, drop_path_whole_samples);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
