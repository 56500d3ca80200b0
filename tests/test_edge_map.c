/* test_edge_map.c - the edge target against the official loader.
 *
 * tests/reference/edge_reference.py (a ctest fixture runs it first) writes
 * $MTLORA_EDGE_CASES/edge_cases.bin: label maps with the mask
 * |cv2.Laplacian| > 0 and skimage's thin() of it, plus binary images with
 * their thinned result. Everything here is 0/1 or integer, so agreement must
 * be exact, pixel for pixel. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/edge_map.h"
#include "tensor_bundle.h"
#include "test_util.h"

/* ------------------------------------------------------------------ helpers */

static tensor_bundle cases;

static void load_cases(void) {
    const char *dir = getenv("MTLORA_EDGE_CASES");
    ck_assert_msg(dir != NULL, "MTLORA_EDGE_CASES is not set (run tests/reference/edge_reference.py)");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/edge_cases.bin", dir);
    ck_assert_msg(bundle_load(&cases, path, err, sizeof err) == 0, "%s", err);
}

static void free_cases(void) { bundle_free(&cases); }

static const bundle_tensor *need(const char *fmt, int i) {
    char name[64];
    snprintf(name, sizeof name, fmt, i);
    const bundle_tensor *t = bundle_get(&cases, name);
    ck_assert_msg(t != NULL, "bundle has no tensor %s", name);
    return t;
}

static int case_count(const char *name) {
    const bundle_tensor *t = need(name, 0);
    ck_assert_int_eq((int)t->count, 1);
    return (int)t->data[0];
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A (h, w) tensor as 0/1 bytes or int32 labels; sets *h, *w. */
static uint8_t *as_bits(const bundle_tensor *t, int *h, int *w) {
    ck_assert_int_eq(t->ndim, 2);
    *h = (int)t->dims[0];
    *w = (int)t->dims[1];
    uint8_t *b = xmalloc(t->count);
    for (size_t k = 0; k < t->count; k++) b[k] = t->data[k] != 0.0f;
    return b;
}

static int32_t *as_labels(const bundle_tensor *t, int *h, int *w) {
    ck_assert_int_eq(t->ndim, 2);
    *h = (int)t->dims[0];
    *w = (int)t->dims[1];
    int32_t *l = xmalloc(t->count * sizeof *l);
    for (size_t k = 0; k < t->count; k++) l[k] = (int32_t)t->data[k];
    return l;
}

/* Exact equality, reporting how many pixels differ and where the first is. */
static void expect_same(const char *what, int i, const uint8_t *ours, const uint8_t *ref, int h,
                        int w) {
    size_t n = (size_t)h * (size_t)w, diff = 0, first = 0;
    for (size_t k = 0; k < n; k++)
        if (ours[k] != ref[k] && diff++ == 0) first = k;
    ck_assert_msg(diff == 0, "%s case %d (%dx%d): %zu pixels differ, first at (%zu, %zu): ours %d ref %d",
                  what, i, h, w, diff, first / (size_t)w, first % (size_t)w, ours[first], ref[first]);
}

static size_t count_on(const uint8_t *b, size_t n) {
    size_t c = 0;
    for (size_t k = 0; k < n; k++) c += b[k];
    return c;
}

/* Reproducible 0/1 noise (xorshift64*), `percent` foreground. */
static void fill_bits(uint8_t *b, size_t n, uint64_t seed, int percent) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t k = 0; k < n; k++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        b[k] = (int)((s * 0x2545F4914F6CDD1Dull) >> 33) % 100 < percent;
    }
}

/* --------------------------------------------------- against the reference */

START_TEST(reference_label_maps) {
    int n = case_count("count");
    ck_assert_int_ge(n, 10);
    for (int i = 0; i < n; i++) {
        int h, w, mh, mw, eh, ew;
        int32_t *labels = as_labels(need("c%d_labels", i), &h, &w);
        uint8_t *ref_mask = as_bits(need("c%d_mask", i), &mh, &mw);
        uint8_t *ref_edge = as_bits(need("c%d_edge", i), &eh, &ew);
        ck_assert(mh == h && mw == w && eh == h && ew == w);
        size_t px = (size_t)h * (size_t)w;
        uint8_t *mask = xmalloc(px), *edge = xmalloc(px);

        ck_assert_int_eq(edge_laplacian_mask(mask, labels, h, w), MT_OK);
        expect_same("laplacian mask", i, mask, ref_mask, h, w);
        ck_assert_int_eq(edge_from_labelmap(edge, labels, h, w), MT_OK);
        expect_same("edge", i, edge, ref_edge, h, w);
        /* thin alone, on the reference's own mask. */
        memcpy(mask, ref_mask, px);
        ck_assert_int_eq(edge_thin(mask, h, w), MT_OK);
        expect_same("thin(ref mask)", i, mask, ref_edge, h, w);
        printf("edge case %2d %4dx%-4d mask %6zu edge %6zu: exact\n", i, h, w, count_on(ref_mask, px),
               count_on(ref_edge, px));
        free(labels); free(ref_mask); free(ref_edge); free(mask); free(edge);
    }
}
END_TEST

START_TEST(reference_thin_images) {
    int n = case_count("thin_count");
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n; i++) {
        int h, w, rh, rw;
        uint8_t *img = as_bits(need("t%d_image", i), &h, &w);
        uint8_t *ref = as_bits(need("t%d_thinned", i), &rh, &rw);
        ck_assert(rh == h && rw == w);
        ck_assert_int_eq(edge_thin(img, h, w), MT_OK);
        expect_same("thin", i, img, ref, h, w);
        free(img); free(ref);
    }
}
END_TEST

/* ---------------------------------------------------------------- unit tests */

START_TEST(constant_map_has_no_edges) {
    enum { H = 13, W = 17 };
    int32_t labels[H * W];
    uint8_t out[H * W];
    for (int k = 0; k < H * W; k++) labels[k] = 459;
    memset(out, 7, sizeof out);
    ck_assert_int_eq(edge_laplacian_mask(out, labels, H, W), MT_OK);
    ck_assert_uint_eq(count_on(out, sizeof out), 0);
    memset(out, 7, sizeof out);
    ck_assert_int_eq(edge_from_labelmap(out, labels, H, W), MT_OK);
    ck_assert_uint_eq(count_on(out, sizeof out), 0);
}
END_TEST

/* Two classes split at column S: the Laplacian marks both sides (columns
 * S-1 and S); thinning leaves one 8-connected line, one pixel per row. */
START_TEST(vertical_split_thins_to_a_line) {
    enum { H = 24, W = 18, S = 7 };
    int32_t labels[H * W];
    uint8_t mask[H * W], edge[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) labels[y * W + x] = x < S ? 3 : 250;
    ck_assert_int_eq(edge_laplacian_mask(mask, labels, H, W), MT_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(mask[y * W + x], x == S - 1 || x == S);

    ck_assert_int_eq(edge_from_labelmap(edge, labels, H, W), MT_OK);
    int rows_hit = 0, prev_x = -1;
    for (int y = 0; y < H; y++) {
        int on = 0, at = -1;
        for (int x = 0; x < W; x++)
            if (edge[y * W + x]) on++, at = x;
        ck_assert_msg(on <= 1, "row %d has %d edge pixels: not 1 px wide", y, on);
        if (!on) continue;
        ck_assert_msg(at == S - 1 || at == S, "row %d: edge at column %d", y, at);
        ck_assert_msg(prev_x < 0 || abs(at - prev_x) <= 1, "line breaks at row %d", y);
        prev_x = at;
        rows_hit++;
    }
    /* Only the ends may be eaten (the frame outside is background). */
    ck_assert_int_ge(rows_hit, H - 2);
}
END_TEST

static void expect_idempotent(uint8_t *img, int h, int w, const char *what) {
    size_t n = (size_t)h * (size_t)w;
    ck_assert_int_eq(edge_thin(img, h, w), MT_OK);
    uint8_t *again = xmalloc(n);
    memcpy(again, img, n);
    ck_assert_int_eq(edge_thin(again, h, w), MT_OK);
    expect_same(what, 0, again, img, h, w);
    free(again);
}

START_TEST(thinning_is_idempotent) {
    static const int sizes[][2] = {{1, 1}, {1, 30}, {30, 1}, {2, 2}, {17, 23}, {64, 64}, {100, 37}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int percent = 20; percent <= 100; percent += 40) {
            int h = sizes[s][0], w = sizes[s][1];
            uint8_t *img = xmalloc((size_t)h * (size_t)w);
            fill_bits(img, (size_t)h * (size_t)w, (uint64_t)(s * 100 + percent), percent);
            expect_idempotent(img, h, w, "thin(thin(x)) vs thin(x), noise");
            free(img);
        }
    int n = case_count("count");
    for (int i = 0; i < n; i++) {
        int h, w;
        uint8_t *edge = as_bits(need("c%d_edge", i), &h, &w);
        expect_idempotent(edge, h, w, "thin(reference edge)");
        free(edge);
    }
}
END_TEST

/* The example in skimage's thin() docstring, with its documented output. */
START_TEST(skimage_docstring_example) {
    static const char *in[7] = {"0100000", "0011100", "0011100", "0011100",
                                "0011100", "0011100", "0000000"};
    static const char *want[7] = {"0100000", "0010000", "0001000", "0001000",
                                  "0001000", "0000000", "0000000"};
    uint8_t img[49], ref[49];
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 7; x++) {
            img[y * 7 + x] = in[y][x] == '1';
            ref[y * 7 + x] = want[y][x] == '1';
        }
    ck_assert_int_eq(edge_thin(img, 7, 7), MT_OK);
    expect_same("docstring", 0, img, ref, 7, 7);
}
END_TEST

/* Nonzero input values count as foreground; output is strictly 0/1. */
START_TEST(thin_takes_any_nonzero_as_foreground) {
    uint8_t img[12] = {0, 255, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0};
    ck_assert_int_eq(edge_thin(img, 3, 4), MT_OK);
    for (int k = 0; k < 12; k++) ck_assert_uint_le(img[k], 1);
}
END_TEST

START_TEST(bad_arguments) {
    int32_t labels[6] = {0, 1, 2, 3, 4, 5};
    uint8_t out[6];
    ck_assert_int_eq(edge_from_labelmap(NULL, labels, 2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_from_labelmap(out, NULL, 2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_from_labelmap(out, labels, 0, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_from_labelmap(out, labels, 2, -1), MT_ERR_ARG);
    ck_assert_int_eq(edge_laplacian_mask(NULL, labels, 2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_laplacian_mask(out, NULL, 2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_laplacian_mask(out, labels, -2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_laplacian_mask(out, labels, 2, 0), MT_ERR_ARG);
    ck_assert_int_eq(edge_thin(NULL, 2, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_thin(out, 0, 3), MT_ERR_ARG);
    ck_assert_int_eq(edge_thin(out, 2, -3), MT_ERR_ARG);
}
END_TEST

/* Two threads at once, including the first use of the lookup tables (this
 * test runs in its own forked process, so the tables start unbuilt). */
typedef struct {
    int32_t labels[48 * 40];
    uint8_t out[48 * 40];
    mt_status st;
} thread_job;

static void *run_job(void *arg) {
    thread_job *j = arg;
    j->st = edge_from_labelmap(j->out, j->labels, 48, 40);
    return NULL;
}

START_TEST(concurrent_callers_agree) {
    thread_job *jobs = xmalloc(2 * sizeof *jobs);
    uint8_t bits[48 * 40];
    fill_bits(bits, sizeof bits, 77, 50);
    for (int k = 0; k < 48 * 40; k++) jobs[0].labels[k] = jobs[1].labels[k] = bits[k] * 300;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(jobs[0].st, MT_OK);
    ck_assert_int_eq(jobs[1].st, MT_OK);
    uint8_t serial[48 * 40];
    ck_assert_int_eq(edge_from_labelmap(serial, jobs[0].labels, 48, 40), MT_OK);
    expect_same("thread 0", 0, jobs[0].out, serial, 48, 40);
    expect_same("thread 1", 1, jobs[1].out, serial, 48, 40);
    free(jobs);
}
END_TEST

static void setup(void) { load_cases(); }
static void teardown(void) { free_cases(); }

int main(void) {
    Suite *s = suite_create("edge_map");
    TCase *ref = tcase_create("reference");
    tcase_add_checked_fixture(ref, setup, teardown);
    tcase_add_test(ref, reference_label_maps);
    tcase_add_test(ref, reference_thin_images);
    tcase_add_test(ref, thinning_is_idempotent);
    tcase_set_timeout(ref, 60);
    suite_add_tcase(s, ref);

    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, constant_map_has_no_edges);
    tcase_add_test(unit, vertical_split_thins_to_a_line);
    tcase_add_test(unit, skimage_docstring_example);
    tcase_add_test(unit, thin_takes_any_nonzero_as_foreground);
    tcase_add_test(unit, bad_arguments);
    tcase_add_test(unit, concurrent_callers_agree);
    suite_add_tcase(s, unit);
    return run_suite(s);
}
