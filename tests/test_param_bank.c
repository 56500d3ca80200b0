/* test_param_bank.c - named views into three contiguous buffers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/model/param_bank.h"
#include "mtlora/train/adamw.h"
#include "test_util.h"

START_TEST(layout_and_groups) {
    mt_ctx *ctx = test_ctx();
    param_bank bank;
    param_bank_init(&bank);
    int64_t w[2] = {8, 4}, b[1] = {8}, a[2] = {2, 4};
    ck_assert_int_eq(param_bank_add(ctx, &bank, "fc.weight", 2, w, MT_PARAM_FROZEN, 1), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &bank, "fc.lora_A", 2, a, MT_PARAM_TRAINABLE, 1), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &bank, "norm.weight", 1, b, MT_PARAM_TRAINABLE, 0), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &bank, "norm.bias", 1, b, MT_PARAM_TRAINABLE, 0), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &bank, "head.weight", 2, w, MT_PARAM_TRAINABLE, 1), MT_OK);
    ck_assert_int_eq(param_bank_add(ctx, &bank, "norm.bias", 1, b, MT_PARAM_TRAINABLE, 0), MT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(mt_ctx_error(ctx), "norm.bias registered twice"));
    int64_t bad[1] = {0};
    ck_assert_int_eq(param_bank_add(ctx, &bank, "zero", 1, bad, MT_PARAM_TRAINABLE, 0), MT_ERR_SHAPE);
    ck_assert_uint_eq(bank.n_trainable, 8 + 8 + 8 + 32);
    ck_assert_uint_eq(bank.n_frozen, 32);
    int64_t rs[1] = {8};
    ck_assert_int_eq(param_bank_add(ctx, &bank, "bn.running_mean", 1, rs, MT_PARAM_BUFFER, 0), MT_OK);
    ck_assert_uint_eq(bank.n_buffer, 8);
    ck_assert_int_eq(param_bank_alloc(ctx, &bank), MT_OK);
    const param_entry *e = param_bank_find(&bank, "norm.bias");
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->offset, 16);
    ck_assert_ptr_eq(param_bank_value(&bank, e), bank.trainable + 16);
    ck_assert_ptr_eq(param_bank_grad(&bank, e), bank.grads + 16);
    ck_assert_ptr_null(param_bank_grad(&bank, param_bank_find(&bank, "fc.weight")));
    ck_assert_ptr_null(param_bank_find(&bank, "missing"));
    const param_entry *rm = param_bank_find(&bank, "bn.running_mean");
    ck_assert_ptr_eq(param_bank_value(&bank, rm), bank.buffers);
    ck_assert_ptr_null(param_bank_grad(&bank, rm));
    adamw_group g[8];
    int n = param_bank_adamw_groups(&bank, 0.05f, g, 8);
    ck_assert_int_eq(n, 3); /* decay [0,8), no decay [8,24), decay [24,56) */
    ck_assert_uint_eq(g[0].offset, 0); ck_assert_uint_eq(g[0].count, 8);
    ck_assert_uint_eq(g[1].offset, 8); ck_assert_uint_eq(g[1].count, 16);
    ck_assert(g[1].weight_decay == 0.0f);
    ck_assert_uint_eq(g[2].offset, 24); ck_assert_uint_eq(g[2].count, 32);
    ck_assert(g[2].weight_decay == 0.05f);
    ck_assert_int_eq(param_bank_adamw_groups(&bank, 0.05f, g, 1), 3); /* sizes when short */
    ck_assert_int_eq(param_bank_add(ctx, &bank, "late", 1, b, MT_PARAM_TRAINABLE, 0), MT_ERR_ARG);
    param_bank_free(&bank);
    mt_ctx_destroy(ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("param_bank");
    TCase *tc = tcase_create("bank");
    tcase_add_test(tc, layout_and_groups);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
