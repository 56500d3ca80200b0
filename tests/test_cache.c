/* test_cache.c - primitives are built once per shape and reused. */
#include <check.h>
#include <stdlib.h>

#include "mtlora/ops/layers.h"
#include "test_util.h"

START_TEST(cache_reuses_primitives) {
    mt_ctx *ctx = test_ctx();
    int rows = 8, fin = 16, fout = 4;
    float *x = alloc_uniform((size_t)rows * fin, 1, -1, 1), *w = alloc_uniform((size_t)fout * fin, 2, -1, 1);
    float *out = alloc_zero((size_t)rows * fout), *dx = alloc_zero((size_t)rows * fin);
    float *dw = alloc_zero((size_t)fout * fin);
    ck_assert_int_eq(linear_forward(ctx, out, x, w, NULL, rows, fin, fout), MT_OK);
    mt_cache_stats a = mt_ctx_cache_stats(ctx);
    ck_assert_int_eq(a.created, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(linear_forward(ctx, out, x, w, NULL, rows, fin, fout), MT_OK);
    mt_cache_stats b = mt_ctx_cache_stats(ctx);
    ck_assert_int_eq(b.created, a.created);      /* same shape: nothing new */
    ck_assert_int_eq(b.hits, a.hits + 5);
    /* The backward builds its two matmuls once, then reuses them. */
    ck_assert_int_eq(linear_backward(ctx, dx, dw, NULL, out, x, w, rows, fin, fout), MT_OK);
    mt_cache_stats c = mt_ctx_cache_stats(ctx);
    ck_assert_int_eq(c.created, b.created + 2);
    ck_assert_int_eq(linear_backward(ctx, dx, dw, NULL, out, x, w, rows, fin, fout), MT_OK);
    ck_assert_int_eq(mt_ctx_cache_stats(ctx).created, c.created);
    /* A new shape is a new primitive. */
    ck_assert_int_eq(linear_forward(ctx, out, x, w, NULL, rows / 2, fin, fout), MT_OK);
    ck_assert_int_eq(mt_ctx_cache_stats(ctx).created, c.created + 1);
    free(x); free(w); free(out); free(dx); free(dw);
    mt_ctx_destroy(ctx);
}
END_TEST

START_TEST(cache_grows_past_initial_capacity) {
    /* More distinct shapes than the table's first size: all stay findable. */
    mt_ctx *ctx = test_ctx();
    float *x = alloc_uniform(400, 3, -1, 1), *y = alloc_zero(400);
    for (int n = 1; n <= 300; n++) ck_assert_int_eq(gelu_forward(ctx, y, x, (size_t)n), MT_OK);
    mt_cache_stats a = mt_ctx_cache_stats(ctx);
    ck_assert_int_eq(a.created, 300);
    ck_assert_int_eq(a.entries, 300);
    for (int n = 1; n <= 300; n++) ck_assert_int_eq(gelu_forward(ctx, y, x, (size_t)n), MT_OK);
    ck_assert_int_eq(mt_ctx_cache_stats(ctx).created, 300);
    free(x); free(y);
    mt_ctx_destroy(ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("primitive_cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cache_reuses_primitives);
    tcase_add_test(tc, cache_grows_past_initial_capacity);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
