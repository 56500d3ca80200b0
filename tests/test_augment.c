/* test_augment.c - our augmentation against a Python port of the official
 * transforms run with the real OpenCV / numpy / torch
 * (tests/reference/augment_reference.py), on the same records and draws. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/augment.h"
#include "mtlora/data/image_warp.h"
#include "tensor_bundle.h"
#include "test_util.h"

static tensor_bundle B;

static const bundle_tensor *need(const char *fmt, int k) {
    char name[64];
    snprintf(name, sizeof name, fmt, k);
    const bundle_tensor *t = bundle_get(&B, name);
    ck_assert_msg(t != NULL, "missing %s", name);
    return t;
}

static uint8_t *to_u8(const bundle_tensor *t) {
    uint8_t *u = malloc(t->count);
    for (size_t i = 0; i < t->count; i++) u[i] = (uint8_t)t->data[i];
    return u;
}

static void free_record(aug_record *r) {
    free((void *)r->image);
    free((void *)r->semseg);
    free((void *)r->human_parts);
    free((void *)r->sal);
    free((void *)r->edge);
    free((void *)r->normals);
    free((void *)r->normals_mask);
}

static aug_record load_record(int ri) {
    aug_record r;
    const bundle_tensor *img = need("rec%d.image", ri);
    r.h = (int)img->dims[0];
    r.w = (int)img->dims[1];
    r.image = to_u8(img);
    r.semseg = to_u8(need("rec%d.semseg", ri));
    r.human_parts = to_u8(need("rec%d.human_parts", ri));
    r.sal = to_u8(need("rec%d.sal", ri));
    r.edge = to_u8(need("rec%d.edge", ri));
    r.normals = to_u8(need("rec%d.normals", ri));
    r.normals_mask = to_u8(need("rec%d.normals_mask", ri));
    return r;
}

static size_t count_diff_f(const float *a, const float *b, size_t n, double tol, double *worst) {
    size_t bad = 0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (d > *worst) *worst = d;
        if (d > tol) bad++;
    }
    return bad;
}

START_TEST(official_parity) {
    const bundle_tensor *nc = bundle_get(&B, "ncases");
    ck_assert_ptr_nonnull(nc);
    const int ncases = (int)nc->data[0];
    ck_assert_int_ge(ncases, 9);
    double worst_normals = 0;
    for (int k = 0; k < ncases; k++) {
        const float *d = need("case%d.draw", k)->data;
        const int train = d[0] != 0, S = (int)d[4], ri = (int)d[5];
        aug_draw draw = {(int)d[1], d[2], d[3]};
        aug_record r = load_record(ri);
        const size_t plane = (size_t)S * S;
        aug_output o = {malloc(sizeof(float) * 3 * plane), malloc(plane), malloc(plane),
                        malloc(sizeof(float) * plane), malloc(sizeof(float) * plane),
                        malloc(sizeof(float) * 3 * plane)};
        ck_assert_int_eq(aug_apply(&r, train ? &draw : NULL, S, &o), MT_OK);

        double w;
        size_t bad = count_diff_f(o.image, need("case%d.image", k)->data, 3 * plane, 0, &w);
        ck_assert_msg(bad == 0, "case %d: %zu image values differ (max %g)", k, bad, w);
        const bundle_tensor *ss = need("case%d.semseg", k), *hp = need("case%d.human_parts", k);
        for (size_t i = 0; i < plane; i++) {
            ck_assert_msg(o.semseg[i] == ss->data[i], "case %d semseg[%zu] %d != %g", k, i,
                          o.semseg[i], ss->data[i]);
            ck_assert_msg(o.human_parts[i] == hp->data[i], "case %d parts[%zu] %d != %g", k, i,
                          o.human_parts[i], hp->data[i]);
        }
        bad = count_diff_f(o.sal, need("case%d.sal", k)->data, plane, 0, &w);
        ck_assert_msg(bad == 0, "case %d: sal differs at %zu pixels", k, bad);
        bad = count_diff_f(o.edge, need("case%d.edge", k)->data, plane, 0, &w);
        ck_assert_msg(bad == 0, "case %d: edge differs at %zu pixels", k, bad);
        /* numpy's sin/cos/atan2 may differ from glibc's in the last bit. */
        bad = count_diff_f(o.normals, need("case%d.normals", k)->data, 3 * plane, 1e-6, &w);
        ck_assert_msg(bad == 0, "case %d: %zu normals values differ (max %g)", k, bad, w);
        if (w > worst_normals) worst_normals = w;
        free(o.image);
        free(o.semseg);
        free(o.human_parts);
        free(o.sal);
        free(o.edge);
        free(o.normals);
        free_record(&r);
    }
    printf("augmentation parity: %d cases, images/labels exact, normals max abs diff %.3g\n",
           ncases, worst_normals);
}
END_TEST

START_TEST(draw_formulas) {
    aug_draw d = aug_draw_from_uniforms(0.49, 0.0, 0.0);
    ck_assert_int_eq(d.flip, 1);
    ck_assert(d.rot == -20.0 && d.scale == 0.75);
    d = aug_draw_from_uniforms(0.5, 0.5, 1.0);
    ck_assert_int_eq(d.flip, 0);
    ck_assert(d.rot == 0.0 && d.scale == 1.25);
}
END_TEST

START_TEST(identity_warp_and_bad_args) {
    double src[12], dst[12], M[6];
    for (int i = 0; i < 12; i++) src[i] = i;
    cvx_rotation_matrix(M, 2.0, 1.5, 0.0, 1.0);
    ck_assert_int_eq(cvx_warp_affine(dst, 3, 4, src, 3, 4, 1, M, CVX_CUBIC), MT_OK);
    for (int i = 0; i < 12; i++) ck_assert(fabs(dst[i] - src[i]) < 1e-12);
    ck_assert_int_eq(cvx_warp_affine(dst, 0, 4, src, 3, 4, 1, M, CVX_CUBIC), MT_ERR_ARG);
    ck_assert_int_eq(cvx_resize(dst, 3, 4, NULL, 3, 4, 1, CVX_NEAREST), MT_ERR_ARG);
    ck_assert_int_eq(cvx_resize(dst, 3, 4, src, 3, 4, 5, CVX_NEAREST), MT_ERR_ARG);
    aug_record r = {0};
    aug_output o = {0};
    ck_assert_int_eq(aug_apply(&r, NULL, 8, &o), MT_ERR_ARG);
}
END_TEST

int main(void) {
    const char *dir = getenv("MTLORA_AUGMENT_CASES");
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/augment_cases.bundle", dir ? dir : ".");
    if (bundle_load(&B, path, err, sizeof err)) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        return 1;
    }
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("augment");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, official_parity);
    tcase_add_test(tc, draw_formulas);
    tcase_add_test(tc, identity_warp_and_bad_args);
    suite_add_tcase(s, tc);
    int rc = run_suite(s);
    bundle_free(&B);
    return rc;
}
