/* test_lr_schedule.c - our LR schedule against a port of the official one
 * (tests/reference/lr_reference.py: main.py's scaling, timm's cosine with a
 * warmup prefix, stepped as train_one_epoch steps it). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mtlora/train/lr_schedule.h"
#include "tensor_bundle.h"
#include "test_util.h"

static tensor_bundle B;

START_TEST(official_schedule) {
    const bundle_tensor *nc = bundle_get(&B, "ncases");
    ck_assert_ptr_nonnull(nc);
    for (int k = 0; k < (int)nc->data[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "case%d.params", k);
        const float *p = bundle_get(&B, name)->data;
        snprintf(name, sizeof name, "case%d.lr", k);
        const bundle_tensor *lr = bundle_get(&B, name);
        mt_config c;
        mt_config_default(&c);
        c.base_lr = p[0];
        c.warmup_lr = p[1];
        c.min_lr = p[2];
        c.batch_size = (int)p[3];
        c.accumulation_steps = (int)p[5];
        c.epochs = (int)p[6];
        c.warmup_epochs = (int)p[7];
        const lr_schedule s = lr_schedule_make(&c, (int)p[4], (long)p[9]);
        ck_assert_int_eq((long)lr->count, s.total_updates);
        for (size_t u = 0; u < lr->count; u++) {
            const double got = lr_schedule_for_update(&s, (long)u), want = lr->data[u];
            ck_assert_msg(fabs(got - want) <= 1e-6 * fabs(want), "case %d update %zu: %g != %g", k,
                          u, got, want);
        }
    }
}
END_TEST

START_TEST(no_scaling_and_edges) {
    mt_config c;
    mt_config_default(&c);
    c.run.lr_scaling = 0;
    c.epochs = 2;
    c.warmup_epochs = 0;
    const lr_schedule s = lr_schedule_make(&c, 4, 10);
    ck_assert(fabs(s.base - 5e-4) < 1e-6 * 5e-4); /* TRAIN.BASE_LR is held as a float */
    ck_assert(lr_schedule_for_update(&s, 0) == s.base); /* no warmup: starts at the base LR */
    ck_assert(fabs(lr_schedule_value(&s, 20) - s.min) < 1e-15);
    ck_assert(lr_schedule_value(&s, 10) < s.base && lr_schedule_value(&s, 10) > s.min);
}
END_TEST

int main(void) {
    const char *dir = getenv("MTLORA_LR_CASES");
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/lr_cases.bundle", dir ? dir : ".");
    if (bundle_load(&B, path, err, sizeof err)) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        return 1;
    }
    Suite *s = suite_create("lr_schedule");
    TCase *tc = tcase_create("lr_schedule");
    tcase_add_test(tc, official_schedule);
    tcase_add_test(tc, no_scaling_and_edges);
    suite_add_tcase(s, tc);
    int rc = run_suite(s);
    bundle_free(&B);
    return rc;
}
