/* test_bad_input.c - NULL buffers and shapes that do not fit are refused
 * with an error code and a message naming the op and the shapes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/train/adamw.h"
#include "mtlora/ops/layers.h"
#include "mtlora/model/loss.h"
#include "test_util.h"

static mt_ctx *ctx;
static float *buf;
static void setup(void) { ctx = test_ctx(); buf = alloc_zero(1 << 16); }
static void teardown(void) { mt_ctx_destroy(ctx); free(buf); }

static void expect_err(mt_status st, mt_status want, const char *needle1, const char *needle2) {
    ck_assert_int_eq(st, want);
    const char *msg = mt_ctx_error(ctx);
    ck_assert_msg(strstr(msg, needle1) != NULL, "message '%s' lacks '%s'", msg, needle1);
    if (needle2) ck_assert_msg(strstr(msg, needle2) != NULL, "message '%s' lacks '%s'", msg, needle2);
}

START_TEST(null_buffers) {
    expect_err(linear_forward(ctx, buf, NULL, buf, NULL, 2, 3, 4), MT_ERR_ARG, "linear_forward", "inp");
    expect_err(layernorm_forward(ctx, buf, NULL, NULL, buf, NULL, buf, 2, 3), MT_ERR_ARG,
               "layernorm_forward", "weight");
    expect_err(gelu_forward(ctx, NULL, buf, 4), MT_ERR_ARG, "gelu_forward", "out");
    expect_err(window_attention_forward(ctx, buf, buf, buf, NULL, NULL, 1, 1, 2, 4, 2), MT_ERR_ARG,
               "window_attention_forward", "table");
    expect_err(batchnorm_forward(ctx, buf, NULL, NULL, buf, buf, buf, buf, buf, 2, 3, 4, 1, 0.1f),
               MT_ERR_ARG, "batchnorm_forward", "save_mean");
    double l;
    expect_err(softmax_ce_loss(ctx, &l, NULL, buf, NULL, 1, 2, 3, 1.0f), MT_ERR_ARG,
               "softmax_ce_loss", "labels");
    /* layer calls with a NULL context return an error and do not crash */
    ck_assert_int_eq(linear_forward(NULL, buf, buf, buf, NULL, 2, 3, 4), MT_ERR_ARG);
}
END_TEST

START_TEST(bad_shapes) {
    expect_err(linear_forward(ctx, buf, buf, buf, NULL, 0, 3, 4), MT_ERR_SHAPE, "linear_forward", "rows=0");
    expect_err(window_partition_forward(ctx, buf, buf, 1, 10, 14, 3, 7), MT_ERR_SHAPE,
               "window_partition_forward", "H=10");
    expect_err(window_attention_forward(ctx, buf, buf, buf, buf, NULL, 2, 1, 2, 10, 3), MT_ERR_SHAPE,
               "window_attention_forward", "heads=3");
    expect_err(window_attention_forward(ctx, buf, buf, buf, buf, buf, 3, 2, 2, 4, 2), MT_ERR_SHAPE,
               "window_attention_forward", "windows=3");
    expect_err(conv2d_forward(ctx, buf, buf, buf, NULL, 1, 3, 10, 10, 4, 4, 4, 0), MT_ERR_SHAPE,
               "conv2d_forward", "H=10");
    expect_err(patch_merging_forward(ctx, buf, buf, buf, buf, buf, buf, buf, buf, buf, 1, 5, 4, 2),
               MT_ERR_SHAPE, "patch_merging_forward", "H=5");
    expect_err(swin_attn_mask(ctx, buf, 14, 14, 7, 7), MT_ERR_SHAPE, "swin_attn_mask", "shift=7");
    expect_err(batchnorm_forward(ctx, buf, buf, buf, buf, buf, buf, buf, buf, 1, 3, 1, 1, 0.1f),
               MT_ERR_SHAPE, "batchnorm_forward", "B=1");
    expect_err(resize_bilinear_forward(ctx, buf, buf, 1, 1, 0, 4, 8, 8), MT_ERR_SHAPE,
               "resize_bilinear_forward", "in=0x4");
    expect_err(roll_forward(ctx, buf, buf, 1, 2, 2, 1, 1, 1), MT_ERR_ARG, "roll_forward", "alias");
}
END_TEST

START_TEST(bad_values) {
    expect_err(dropout_forward(ctx, buf, buf, 4, 1.0f, 1, 0), MT_ERR_ARG, "dropout_forward", "1");
    uint8_t lab[4] = {0, 1, 9, 255};
    double l;
    expect_err(softmax_ce_loss(ctx, &l, NULL, buf, lab, 1, 3, 4, 1.0f), MT_ERR_ARG,
               "softmax_ce_loss", "label 9");
    adamw_group g = {10, 100, 0.0f};
    expect_err(adamw_step(ctx, buf, buf, buf, buf, 50, &g, 1, adamw_defaults(1e-3f), 1),
               MT_ERR_SHAPE, "adamw_step", "group 0");
    adamw_group ok = {0, 4, 0.0f};
    expect_err(adamw_step(ctx, buf, buf, buf, buf, 4, &ok, 1, adamw_defaults(1e-3f), 0),
               MT_ERR_ARG, "adamw_step", "step 0");
}
END_TEST

int main(void) {
    Suite *s = suite_create("bad_input");
    TCase *tc = tcase_create("refusals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, null_buffers);
    tcase_add_test(tc, bad_shapes);
    tcase_add_test(tc, bad_values);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
