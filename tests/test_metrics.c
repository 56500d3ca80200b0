/* test_metrics.c - the evaluation meters against the official MTLoRA meters.
 *
 * tests/reference/metrics_reference.py (a ctest fixture runs it first)
 * writes $MTLORA_METRICS_CASES/metrics_cases.bundle: batches of logits and
 * targets per task and the scores of the official meters run with torch,
 * in two variants (see that file): "official" (torch as is) and "exact"
 * (transcendentals correctly rounded, sums in float64).
 *
 * Tolerances (relative):
 *   semseg / human_parts mIoU, sal "Beta maxF"   0: bit for bit, both variants
 *   sal "maxF", "mIoU"                            1e-12, both variants
 *   normals, edge                                 1e-12 against "exact";
 *                                                 1e-6 against "official"
 *     (the official sums each batch in float32 and uses PyTorch's vectorised
 *      acos / atan2 / exp, within 1 ulp of the correctly rounded values)
 * Splitting the batches over two meters and merging (the MPI sum) must give
 * the count-based scores bit for bit and the others within 1e-12. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/shards/shard_loader.h"
#include "mtlora/train/metrics.h"
#include "tensor_bundle.h"
#include "test_util.h"

#define NTASKS 5
static const char *TASK[NTASKS] = {"semseg", "human_parts", "sal", "normals", "edge"};
static const mt_task_kind KIND[NTASKS] = {MT_TASK_SEMSEG, MT_TASK_HUMAN_PARTS, MT_TASK_SAL,
                                          MT_TASK_NORMALS, MT_TASK_EDGE};

static tensor_bundle cases;

/* ------------------------------------------------------------------ helpers */

static void setup(void) {
    const char *dir = getenv("MTLORA_METRICS_CASES");
    ck_assert_msg(dir != NULL,
                  "MTLORA_METRICS_CASES is not set (run tests/reference/metrics_reference.py)");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/metrics_cases.bundle", dir);
    ck_assert_msg(bundle_load(&cases, path, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) { bundle_free(&cases); }

static const bundle_tensor *need(const char *name) {
    const bundle_tensor *t = bundle_get(&cases, name);
    ck_assert_msg(t != NULL, "bundle has no tensor %s", name);
    return t;
}

static int scalar_int(const char *task, const char *what) {
    char name[64];
    snprintf(name, sizeof name, "%s.%s", task, what);
    return (int)need(name)->data[0];
}

static const bundle_tensor *batch_tensor(int t, int b, const char *what) {
    char name[64];
    snprintf(name, sizeof name, "%s.b%d.%s", TASK[t], b, what);
    return need(name);
}

/* Expected doubles, stored as their bit patterns in four 16-bit pieces. */
static void expected_array(int t, const char *variant, const char *key, double *out, int n) {
    char name[96], flat[32];
    snprintf(flat, sizeof flat, "%s", key);
    for (char *c = flat; *c; c++)
        if (*c == ' ') *c = '_';
    snprintf(name, sizeof name, "%s.%s.%s.f64", TASK[t], variant, flat);
    const bundle_tensor *p = need(name);
    ck_assert_int_eq((int)p->count, 4 * n);
    for (int i = 0; i < n; i++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++) bits |= (uint64_t)p->data[4 * i + k] << (16 * k);
        memcpy(&out[i], &bits, sizeof out[i]);
    }
}

static double expected(int t, const char *variant, const char *key) {
    double v;
    expected_array(t, variant, key, &v, 1);
    return v;
}

static metrics_meter *new_meter(mt_task_kind kind) {
    metrics_meter *m = NULL;
    ck_assert_int_eq(metrics_create(&m, kind), MT_OK);
    return m;
}

static uint8_t *as_labels(const bundle_tensor *t) {
    uint8_t *u = malloc(t->count);
    ck_assert_ptr_nonnull(u);
    for (size_t i = 0; i < t->count; i++) u[i] = (uint8_t)t->data[i];
    return u;
}

/* Feeds images [i0, i1) of batch b of task t (the whole batch: 0, -1). */
static void feed_images(metrics_meter *m, int t, int b, int i0, int i1) {
    const bundle_tensor *x = batch_tensor(t, b, "logits"), *y = batch_tensor(t, b, "target");
    const int n = (int)x->dims[0], k = (int)x->dims[1], s = (int)x->dims[3];
    if (i1 < 0) i1 = n;
    const size_t xs = (size_t)k * s * s, ys = y->count / (size_t)n;
    mt_status st;
    if (KIND[t] == MT_TASK_SEMSEG || KIND[t] == MT_TASK_HUMAN_PARTS) {
        uint8_t *lab = as_labels(y);
        st = metrics_update_labels(m, x->data + i0 * xs, i1 - i0, k, s, lab + i0 * ys);
        free(lab);
    } else {
        st = metrics_update_maps(m, x->data + i0 * xs, i1 - i0, k, s, y->data + i0 * ys);
    }
    ck_assert_msg(st == MT_OK, "%s batch %d: %s", TASK[t], b, metrics_error(m));
}

static void feed(metrics_meter *m, int t, int from, int to) {
    for (int b = from; b < to; b++) feed_images(m, t, b, 0, -1);
}

static double rel_diff(double a, double ref) {
    if (a == ref) return 0.0;
    return fabs(a - ref) / fmax(fabs(ref), 1e-300);
}

/* Count-based scores must agree bit for bit. */
static int is_count_based(int t, const char *key) {
    return KIND[t] == MT_TASK_SEMSEG || KIND[t] == MT_TASK_HUMAN_PARTS ||
           !strcmp(key, "Beta maxF");
}

static double tolerance(int t, const char *key, int official) {
    if (is_count_based(t, key)) return 0.0;
    if (KIND[t] == MT_TASK_SAL) return 1e-12;
    if (official) return 1e-6;
    /* PyTorch's non-AVX2 CPU kernels do not fuse the 2-norm's multiply-adds
     * as ours (and its AVX2 kernels) do: normals then differ in the last
     * bits of some pixels, about 1e-9 over the set. */
    if (KIND[t] == MT_TASK_NORMALS && need("torch_norm_fused")->data[0] == 0.0f) return 1e-8;
    return 1e-12;
}

static void all_batches_meter(metrics_meter *m, int t) {
    feed(m, t, 0, scalar_int(TASK[t], "nbatches"));
}

static void states_equal(metrics_meter *a, metrics_meter *b, const char *what) {
    double *sa, *sb;
    size_t na, nb;
    ck_assert_int_eq(metrics_state(a, &sa, &na), MT_OK);
    ck_assert_int_eq(metrics_state(b, &sb, &nb), MT_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(sa, sb, na * sizeof(double)) == 0, "%s: states differ", what);
}

/* --------------------------------------------------------- official parity */

START_TEST(scores_match_official) {
    for (int t = 0; t < NTASKS; t++) {
        metrics_meter *m = new_meter(KIND[t]);
        all_batches_meter(m, t);
        metrics_scores sc;
        ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
        ck_assert_int_ge(sc.count, 1);
        for (int i = 0; i < sc.count; i++) {
            for (int official = 0; official <= 1; official++) {
                const char *variant = official ? "official" : "exact";
                const double ref = expected(t, variant, sc.name[i]);
                const double d = rel_diff(sc.value[i], ref), tol = tolerance(t, sc.name[i], official);
                printf("metrics %-11s %-9s vs %-8s: ours %.17g ref %.17g rel %.2g (tol %g)\n",
                       TASK[t], sc.name[i], variant, sc.value[i], ref, d, tol);
                ck_assert_msg(d <= tol, "%s %s vs %s: %.17g, expected %.17g (rel %.3g > %g)",
                              TASK[t], sc.name[i], variant, sc.value[i], ref, d, tol);
            }
        }
        metrics_destroy(m);
    }
}
END_TEST

/* The state itself against the official meters' accumulators. */
START_TEST(counts_match_official) {
    for (int t = 0; t < 2; t++) {
        metrics_meter *m = new_meter(KIND[t]);
        all_batches_meter(m, t);
        double *st;
        size_t n;
        ck_assert_int_eq(metrics_state(m, &st, &n), MT_OK);
        char name[64];
        snprintf(name, sizeof name, "%s.official.state", TASK[t]);
        const bundle_tensor *ref = need(name);
        ck_assert_uint_eq(n, ref->count);
        ck_assert_uint_eq(n, metrics_state_len(KIND[t]));
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(st[j] == ref->data[j], "%s state[%zu] = %g, official %g", TASK[t], j,
                          st[j], (double)ref->data[j]);
        double iou[METRICS_SEMSEG_CLASSES];
        const int classes = (int)(n / 3);
        ck_assert_int_eq(metrics_class_iou(m, iou, classes), MT_OK);
        /* the never-labelled, never-predicted last class: 0 / 1e-8 = 0 */
        ck_assert(iou[classes - 1] == 0.0);
        metrics_destroy(m);
    }
    /* saliency beta meter: tp, predicted, actual per threshold (actual is
     * one number here, the same for every threshold in the official) */
    metrics_meter *m = new_meter(MT_TASK_SAL);
    all_batches_meter(m, 2);
    double *st;
    size_t n;
    ck_assert_int_eq(metrics_state(m, &st, &n), MT_OK);
    const bundle_tensor *ref = need("sal.official.beta_state");
    const int nb = METRICS_SAL_BETA_THRESHOLDS;
    ck_assert_int_eq((int)ref->count, 3 * nb);
    const double *tp = st + 1 + 3 * METRICS_SAL_THRESHOLDS, *pp = tp + nb, *ap = pp + nb;
    ck_assert_uint_eq(n, (size_t)(ap - st) + 1);
    for (int j = 0; j < nb; j++) {
        ck_assert_msg(tp[j] == ref->data[j], "beta tp[%d] %g vs %g", j, tp[j], (double)ref->data[j]);
        ck_assert_msg(pp[j] == ref->data[nb + j], "beta pp[%d]", j);
        ck_assert_msg(*ap == ref->data[2 * nb + j], "beta ap[%d]", j);
    }
    ck_assert_double_eq(st[0], 12.0); /* images: 3 + 2 + 4 + 3 */
    metrics_destroy(m);
}
END_TEST

/* The no-beta saliency means per threshold (official mIoUs, mPrec, mRec)
 * from the state: checks every threshold, not only the best one. */
START_TEST(sal_per_threshold_means) {
    enum { NT = METRICS_SAL_THRESHOLDS };
    metrics_meter *m = new_meter(MT_TASK_SAL);
    all_batches_meter(m, 2);
    double *st;
    size_t n;
    ck_assert_int_eq(metrics_state(m, &st, &n), MT_OK);
    const char *keys[3] = {"mIoUs", "mPrec", "mRec"};
    for (int official = 0; official <= 1; official++)
        for (int k = 0; k < 3; k++) {
            double ref[NT];
            expected_array(2, official ? "official" : "exact", keys[k], ref, NT);
            for (int j = 0; j < NT; j++) {
                const double ours = st[1 + k * NT + j] / st[0];
                ck_assert_msg(rel_diff(ours, ref[j]) <= 1e-12, "sal %s[%d]: %.17g vs %.17g",
                              keys[k], j, ours, ref[j]);
            }
        }
    metrics_destroy(m);
}
END_TEST

/* ------------------------------------------------------ reduction over ranks */

START_TEST(split_and_merge_equals_one_meter) {
    for (int t = 0; t < NTASKS; t++) {
        const int nbatch = scalar_int(TASK[t], "nbatches"), split = scalar_int(TASK[t], "split");
        ck_assert(split > 0 && split < nbatch);
        metrics_meter *one = new_meter(KIND[t]), *r0 = new_meter(KIND[t]),
                      *r1 = new_meter(KIND[t]), *summed = new_meter(KIND[t]);
        feed(one, t, 0, nbatch);
        feed(r0, t, 0, split);
        feed(r1, t, split, nbatch);
        /* what MPI_Allreduce(MPI_SUM) does with the two flat states */
        double *s0, *s1, *ss;
        size_t n0, n1, ns;
        ck_assert_int_eq(metrics_state(r0, &s0, &n0), MT_OK);
        ck_assert_int_eq(metrics_state(r1, &s1, &n1), MT_OK);
        ck_assert_int_eq(metrics_state(summed, &ss, &ns), MT_OK);
        ck_assert(n0 == n1 && n1 == ns);
        for (size_t j = 0; j < ns; j++) ss[j] = s0[j] + s1[j];
        ck_assert_int_eq(metrics_merge(r0, r1), MT_OK);
        states_equal(r0, summed, "merge vs state sum");

        metrics_scores a, b;
        ck_assert_int_eq(metrics_score(one, &a), MT_OK);
        ck_assert_int_eq(metrics_score(r0, &b), MT_OK);
        ck_assert_int_eq(a.count, b.count);
        for (int i = 0; i < a.count; i++) {
            ck_assert_str_eq(a.name[i], b.name[i]);
            const double tol = is_count_based(t, a.name[i]) ? 0.0 : 1e-12;
            ck_assert_msg(rel_diff(b.value[i], a.value[i]) <= tol, "%s %s: merged %.17g, one %.17g",
                          TASK[t], a.name[i], b.value[i], a.value[i]);
        }
        metrics_destroy(one);
        metrics_destroy(r0);
        metrics_destroy(r1);
        metrics_destroy(summed);
    }
}
END_TEST

/* Per-image partials added in image order: the same bits for any thread
 * count and for a batch fed whole or one image at a time. */
START_TEST(state_independent_of_threads_and_batching) {
    const int saved = omp_get_max_threads();
    for (int t = 0; t < NTASKS; t++) {
        metrics_meter *one_thread = new_meter(KIND[t]), *four = new_meter(KIND[t]),
                      *singles = new_meter(KIND[t]);
        omp_set_num_threads(1);
        all_batches_meter(one_thread, t);
        omp_set_num_threads(4);
        all_batches_meter(four, t);
        const int nbatch = scalar_int(TASK[t], "nbatches");
        for (int b = 0; b < nbatch; b++) {
            const int n = (int)batch_tensor(t, b, "logits")->dims[0];
            for (int i = 0; i < n; i++) feed_images(singles, t, b, i, i + 1);
        }
        states_equal(one_thread, four, TASK[t]);
        states_equal(one_thread, singles, TASK[t]);
        metrics_destroy(one_thread);
        metrics_destroy(four);
        metrics_destroy(singles);
    }
    omp_set_num_threads(saved);
}
END_TEST

/* The targets entry point reads the field of the meter's kind, filled from
 * a loader batch as the evaluation loop fills it. */
START_TEST(update_from_targets) {
    for (int t = 0; t < NTASKS; t++) {
        const bundle_tensor *x = batch_tensor(t, 0, "logits"), *y = batch_tensor(t, 0, "target");
        const int k = (int)x->dims[1], s = (int)x->dims[3];
        loader_batch lb;
        memset(&lb, 0, sizeof lb);
        lb.n = (int)x->dims[0];
        uint8_t *lab = NULL;
        switch (KIND[t]) {
        case MT_TASK_SEMSEG: lb.semseg = lab = as_labels(y); break;
        case MT_TASK_HUMAN_PARTS: lb.human_parts = lab = as_labels(y); break;
        case MT_TASK_SAL: lb.sal = y->data; break;
        case MT_TASK_NORMALS: lb.normals = y->data; break;
        case MT_TASK_EDGE: lb.edge = y->data; break;
        }
        const metrics_targets tg = {.n = lb.n, .semseg = lb.semseg, .human_parts = lb.human_parts,
                                    .sal = lb.sal, .edge = lb.edge, .normals = lb.normals};
        metrics_meter *direct = new_meter(KIND[t]), *via = new_meter(KIND[t]);
        feed(direct, t, 0, 1);
        ck_assert_int_eq(metrics_update_targets(via, x->data, k, s, &tg), MT_OK);
        states_equal(direct, via, TASK[t]);
        /* only the kind's own field is read: every other one set, its own NULL */
        uint8_t other_labels[1] = {0};
        metrics_targets others = {.n = tg.n, .semseg = other_labels, .human_parts = other_labels,
                                  .sal = x->data, .edge = x->data, .normals = x->data};
        switch (KIND[t]) {
        case MT_TASK_SEMSEG: others.semseg = NULL; break;
        case MT_TASK_HUMAN_PARTS: others.human_parts = NULL; break;
        case MT_TASK_SAL: others.sal = NULL; break;
        case MT_TASK_NORMALS: others.normals = NULL; break;
        case MT_TASK_EDGE: others.edge = NULL; break;
        }
        ck_assert_int_eq(metrics_update_targets(via, x->data, k, s, &others), MT_ERR_ARG);
        states_equal(direct, via, TASK[t]); /* the refused call added nothing */
        free(lab);
        metrics_destroy(direct);
        metrics_destroy(via);
    }
}
END_TEST

/* ------------------------------------------------------------ small cases */

/* Scores of a meter that has seen nothing: official zero IoUs, NaN where
 * the official code would divide by zero. */
START_TEST(empty_meters) {
    metrics_scores sc;
    double v;
    metrics_meter *m = new_meter(MT_TASK_SEMSEG);
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    ck_assert_int_eq(metrics_scores_get(&sc, "mIoU", &v), MT_OK);
    ck_assert(v == 0.0);
    metrics_destroy(m);
    m = new_meter(MT_TASK_SAL);
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    ck_assert_int_eq(sc.count, 3);
    ck_assert_str_eq(sc.name[0], "Beta maxF");
    ck_assert(sc.value[0] == 0.0 && isnan(sc.value[1]) && isnan(sc.value[2]));
    metrics_destroy(m);
    m = new_meter(MT_TASK_NORMALS);
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    ck_assert_int_eq(sc.count, 4);
    for (int i = 0; i < 4; i++) ck_assert(isnan(sc.value[i]));
    metrics_destroy(m);
}
END_TEST

/* Hand-made: one 2x2 semseg image. Labels {0, 1, 1, 255}, predictions
 * {0, 0, 1, x}: class 0 tp 1 fp 1, class 1 tp 1 fn 1 -> IoU 1/2 each, the
 * 19 other classes 0, so mIoU = 1/21. Normals: prediction along x, target
 * along y: 90 degrees in V1 and V2; "rmse" is that mean too. */
START_TEST(hand_made_values) {
    float x[21 * 4];
    for (int i = 0; i < 21 * 4; i++) x[i] = -1.0f;
    const int pred[4] = {0, 0, 1, 5};
    for (int p = 0; p < 4; p++) x[pred[p] * 4 + p] = 1.0f;
    const uint8_t lab[4] = {0, 1, 1, 255};
    metrics_meter *m = new_meter(MT_TASK_SEMSEG);
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 21, 2, lab), MT_OK);
    metrics_scores sc;
    double v;
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    ck_assert_int_eq(metrics_scores_get(&sc, "mIoU", &v), MT_OK);
    ck_assert_double_eq_tol(v, 1.0 / 21.0, 1e-15);
    metrics_destroy(m);

    float nx[3 * 4] = {0}, ny[3 * 4] = {0};
    for (int p = 0; p < 4; p++) {
        nx[0 * 4 + p] = 3.0f; /* channel 0 */
        ny[1 * 4 + p] = 1.0f; /* channel 1 */
    }
    ny[0 * 4 + 3] = ny[1 * 4 + 3] = ny[2 * 4 + 3] = 255.0f; /* one ignored pixel */
    m = new_meter(MT_TASK_NORMALS);
    ck_assert_int_eq(metrics_update_maps(m, nx, 1, 3, 2, ny), MT_OK);
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    const char *keys[4] = {"mean", "rmse", "mean_v2", "rmse_v2"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(sc.name[i], keys[i]);
        ck_assert_double_eq_tol(sc.value[i], 90.0, 1e-5);
    }
    double *st;
    size_t n;
    ck_assert_int_eq(metrics_state(m, &st, &n), MT_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert(st[1] == 3.0 && st[3] == 3.0); /* valid pixels, V1 and V2 */
    metrics_destroy(m);
}
END_TEST

/* Delta_m = (1/4) [ (0.66-0.60)/0.60 + (0.57-0.60)/0.60 + (0.60-0.50)/0.50
 *                   - (18.0-20.0)/20.0 ] = (0.1 - 0.05 + 0.2 + 0.1) / 4 = 0.0875 */
START_TEST(delta_m) {
    const mt_task_kind k[4] = {MT_TASK_SEMSEG, MT_TASK_HUMAN_PARTS, MT_TASK_SAL, MT_TASK_NORMALS};
    const double mtl[4] = {0.66, 0.57, 0.60, 18.0}, stl[4] = {0.60, 0.60, 0.50, 20.0};
    double d = 0;
    ck_assert_int_eq(metrics_delta_m(&d, 4, k, mtl, stl), MT_OK);
    ck_assert_double_eq_tol(d, 0.0875, 1e-15);
    /* normals alone: worse angle -> negative */
    const double worse = 22.0, base = 20.0;
    ck_assert_int_eq(metrics_delta_m(&d, 1, k + 3, &worse, &base), MT_OK);
    ck_assert_double_eq_tol(d, -0.1, 1e-15);
    ck_assert_str_eq(metrics_delta_key(MT_TASK_SAL), "mIoU");
    ck_assert_str_eq(metrics_delta_key(MT_TASK_NORMALS), "mean");
    ck_assert_ptr_null(metrics_delta_key(MT_TASK_EDGE));
    double b[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(metrics_stl_baseline(k[i], &b[i]), MT_OK);
    ck_assert(b[0] == 0.6721 && b[1] == 0.6193 && b[2] == 0.6235 && b[3] == 17.97);
    /* refused: edge (odsF), zero or NaN baseline, a task twice, no task */
    const mt_task_kind edge = MT_TASK_EDGE;
    const double zero = 0.0, nan_v = NAN, one = 1.0;
    ck_assert_int_eq(metrics_delta_m(&d, 1, &edge, &one, &one), MT_ERR_ARG);
    ck_assert_int_eq(metrics_delta_m(&d, 1, k, &one, &zero), MT_ERR_ARG);
    ck_assert_int_eq(metrics_delta_m(&d, 1, k, &nan_v, &one), MT_ERR_ARG);
    const mt_task_kind twice[2] = {MT_TASK_SAL, MT_TASK_SAL};
    ck_assert_int_eq(metrics_delta_m(&d, 2, twice, mtl, stl), MT_ERR_ARG);
    ck_assert_int_eq(metrics_delta_m(&d, 0, k, mtl, stl), MT_ERR_ARG);
    ck_assert_int_eq(metrics_delta_m(NULL, 4, k, mtl, stl), MT_ERR_ARG);
    ck_assert_int_eq(metrics_stl_baseline(MT_TASK_EDGE, &d), MT_ERR_ARG);
}
END_TEST

START_TEST(bad_arguments) {
    metrics_meter *m = NULL, *other = NULL;
    ck_assert_int_eq(metrics_create(NULL, MT_TASK_SEMSEG), MT_ERR_ARG);
    ck_assert_int_eq(metrics_create(&m, (mt_task_kind)42), MT_ERR_ARG);
    ck_assert_ptr_null(m);
    ck_assert_uint_eq(metrics_state_len((mt_task_kind)42), 0);
    ck_assert_int_eq(metrics_channels((mt_task_kind)42), 0);
    m = new_meter(MT_TASK_SEMSEG);
    other = new_meter(MT_TASK_SAL);
    float x[21 * 4] = {0}, y[4] = {0, 1, 0, 1};
    uint8_t lab[4] = {0, 1, 2, 255};
    ck_assert_int_eq(metrics_update_labels(NULL, x, 1, 21, 2, lab), MT_ERR_ARG);
    ck_assert_int_eq(metrics_update_labels(m, NULL, 1, 21, 2, lab), MT_ERR_ARG);
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 21, 2, NULL), MT_ERR_ARG);
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 7, 2, lab), MT_ERR_ARG);
    ck_assert_msg(strstr(metrics_error(m), "21") != NULL, "%s", metrics_error(m));
    ck_assert_int_eq(metrics_update_labels(m, x, 0, 21, 2, lab), MT_ERR_SHAPE);
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 21, -2, lab), MT_ERR_SHAPE);
    ck_assert_int_eq(metrics_update_labels(m, x, 1 << 30, 21, 1 << 16, lab), MT_ERR_SHAPE);
    lab[2] = 21; /* neither a class nor ignore */
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 21, 2, lab), MT_ERR_ARG);
    ck_assert_msg(strstr(metrics_error(m), "label 21") != NULL, "%s", metrics_error(m));
    ck_assert_int_eq(metrics_update_maps(m, x, 1, 21, 2, y), MT_ERR_ARG); /* wrong entry */
    ck_assert_int_eq(metrics_update_labels(other, x, 1, 1, 2, lab), MT_ERR_ARG);
    y[1] = NAN;
    ck_assert_int_eq(metrics_update_maps(other, x, 1, 1, 2, y), MT_ERR_ARG);
    y[1] = INFINITY;
    ck_assert_int_eq(metrics_update_maps(other, x, 1, 1, 2, y), MT_ERR_ARG);
    ck_assert_int_eq(metrics_update_targets(m, x, 21, 2, NULL), MT_ERR_ARG);
    /* nothing was added by the refused calls */
    double *st;
    size_t n;
    ck_assert_int_eq(metrics_state(m, &st, &n), MT_OK);
    for (size_t j = 0; j < n; j++) ck_assert(st[j] == 0.0);
    ck_assert_int_eq(metrics_state(m, NULL, &n), MT_ERR_ARG);
    ck_assert_int_eq(metrics_merge(m, other), MT_ERR_ARG);
    ck_assert_int_eq(metrics_merge(NULL, other), MT_ERR_ARG);
    metrics_scores sc;
    double v, iou[21];
    ck_assert_int_eq(metrics_score(NULL, &sc), MT_ERR_ARG);
    ck_assert_int_eq(metrics_score(m, NULL), MT_ERR_ARG);
    ck_assert_int_eq(metrics_score(m, &sc), MT_OK);
    ck_assert_int_eq(metrics_scores_get(&sc, "maxF", &v), MT_ERR_ARG);
    ck_assert_int_eq(metrics_class_iou(m, iou, 7), MT_ERR_ARG);
    ck_assert_int_eq(metrics_class_iou(other, iou, 21), MT_ERR_ARG);
    /* a good call after failures works and clears the message */
    lab[2] = 2;
    ck_assert_int_eq(metrics_update_labels(m, x, 1, 21, 2, lab), MT_OK);
    ck_assert_str_eq(metrics_error(m), "");
    metrics_reset(m);
    ck_assert(st[0] == 0.0);
    metrics_destroy(m);
    metrics_destroy(other);
    metrics_destroy(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("metrics");
    TCase *ref = tcase_create("official");
    tcase_add_checked_fixture(ref, setup, teardown);
    tcase_add_test(ref, scores_match_official);
    tcase_add_test(ref, counts_match_official);
    tcase_add_test(ref, sal_per_threshold_means);
    tcase_add_test(ref, split_and_merge_equals_one_meter);
    tcase_add_test(ref, state_independent_of_threads_and_batching);
    tcase_add_test(ref, update_from_targets);
    tcase_set_timeout(ref, 60);
    suite_add_tcase(s, ref);
    TCase *unit = tcase_create("unit");
    tcase_add_test(unit, empty_meters);
    tcase_add_test(unit, hand_made_values);
    tcase_add_test(unit, delta_m);
    tcase_add_test(unit, bad_arguments);
    suite_add_tcase(s, unit);
    return run_suite(s);
}
