/* metrics.c - the official MTLoRA evaluation meters with a summable state.
 *
 * Each update computes one partial state per image (in parallel: images are
 * independent) and adds the partials in image order, so the result does
 * not depend on the thread count. Per-pixel arithmetic is float32 in
 * PyTorch's operation order, so thresholds fall on the same side as in the
 * official code; only the sums are taken in double.
 *
 * Floating-point contraction must stay off (it is under -std=c11): the
 * float expressions below are meant to round after every operation, and
 * the one fused multiply-add PyTorch uses (its 2-norm) is written as fmaf. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/train/metrics.h"

#define IGNORE_LABEL 255
#define EDGE_POS_WEIGHT 0.95 /* get_single_task_meter: EdgeMeter(pos_weight=0.95) */
#define SAL_BETA_SQUARED 0.3 /* SaliencyMeterWithBeta default beta_squared */

/* np.linspace(0.2, 0.9, 15), compared as float32 (torch casts the scalar to
 * the tensor's dtype): each equals the float nearest the decimal. */
static const float SAL_THRESHOLDS[METRICS_SAL_THRESHOLDS] = {
    0.2f, 0.25f, 0.3f, 0.35f, 0.4f, 0.45f, 0.5f, 0.55f,
    0.6f, 0.65f, 0.7f, 0.75f, 0.8f, 0.85f, 0.9f};

/* torch.arange(0.05, 1, 0.05) exactly as PyTorch 1.13 produces it: the
 * float nearest 0.05k except 0.6, which comes out one ulp lower. */
static const float SAL_BETA_THRESHOLDS[METRICS_SAL_BETA_THRESHOLDS] = {
    0.05f, 0.1f, 0.15f, 0.2f, 0.25f, 0.3f, 0.35f, 0.4f, 0.45f, 0.5f,
    0.55f, 0.599999964f, 0.65f, 0.7f, 0.75f, 0.8f, 0.85f, 0.9f, 0.95f};

/* Offsets into the sal state (layout in metrics.h). */
enum {
    SAL_IMAGES = 0,
    SAL_JAC = 1,
    SAL_PREC = SAL_JAC + METRICS_SAL_THRESHOLDS,
    SAL_REC = SAL_PREC + METRICS_SAL_THRESHOLDS,
    SAL_BETA_TP = SAL_REC + METRICS_SAL_THRESHOLDS,
    SAL_BETA_PP = SAL_BETA_TP + METRICS_SAL_BETA_THRESHOLDS,
    SAL_BETA_AP = SAL_BETA_PP + METRICS_SAL_BETA_THRESHOLDS,
    SAL_LEN = SAL_BETA_AP + 1
};
enum { NRM_V1_SUM, NRM_V1_N, NRM_V2_SUM, NRM_V2_N, NRM_LEN };
enum { EDGE_POS, EDGE_NEG, EDGE_N, EDGE_LEN };

struct metrics_meter {
    mt_task_kind kind;
    size_t len;
    char err[200];
    double state[];
};

/* ---- kinds ------------------------------------------------------------- */

static int known_kind(mt_task_kind k) {
    return k == MT_TASK_SEMSEG || k == MT_TASK_HUMAN_PARTS || k == MT_TASK_SAL ||
           k == MT_TASK_NORMALS || k == MT_TASK_EDGE;
}

static int class_count(mt_task_kind k) {
    return k == MT_TASK_SEMSEG ? METRICS_SEMSEG_CLASSES
           : k == MT_TASK_HUMAN_PARTS ? METRICS_HUMAN_PARTS_CLASSES : 0;
}

static const char *kind_name(mt_task_kind k) {
    switch (k) {
    case MT_TASK_SEMSEG: return "semseg";
    case MT_TASK_HUMAN_PARTS: return "human_parts";
    case MT_TASK_SAL: return "sal";
    case MT_TASK_NORMALS: return "normals";
    case MT_TASK_EDGE: return "edge";
    }
    return "?";
}

int metrics_channels(mt_task_kind kind) {
    switch (kind) {
    case MT_TASK_SEMSEG: case MT_TASK_HUMAN_PARTS: return class_count(kind);
    case MT_TASK_NORMALS: return 3;
    case MT_TASK_SAL: case MT_TASK_EDGE: return 1;
    }
    return 0;
}

size_t metrics_state_len(mt_task_kind kind) {
    switch (kind) {
    case MT_TASK_SEMSEG: case MT_TASK_HUMAN_PARTS: return 3 * (size_t)class_count(kind);
    case MT_TASK_SAL: return SAL_LEN;
    case MT_TASK_NORMALS: return NRM_LEN;
    case MT_TASK_EDGE: return EDGE_LEN;
    }
    return 0;
}

/* ---- lifetime ---------------------------------------------------------- */

mt_status metrics_create(metrics_meter **out, mt_task_kind kind) {
    if (!out || !known_kind(kind)) return MT_ERR_ARG;
    *out = NULL;
    size_t len = metrics_state_len(kind);
    metrics_meter *m = calloc(1, sizeof *m + len * sizeof(double));
    if (!m) return MT_ERR_NOMEM;
    m->kind = kind;
    m->len = len;
    *out = m;
    return MT_OK;
}

void metrics_destroy(metrics_meter *m) { free(m); }

void metrics_reset(metrics_meter *m) {
    if (!m) return;
    memset(m->state, 0, m->len * sizeof(double));
    m->err[0] = '\0';
}

mt_task_kind metrics_kind(const metrics_meter *m) { return m->kind; }

const char *metrics_error(const metrics_meter *m) { return m ? m->err : "metrics: NULL meter"; }

#define FAIL(m, st, ...) mt_errf((m)->err, sizeof (m)->err, (st), __VA_ARGS__)

/* ---- float32 pieces of get_output and the meters -------------------------
 * exp, acos and atan2 are evaluated in double and rounded once: the
 * correctly rounded float (PyTorch's vectorised versions are within 1 ulp
 * of it). +, -, *, / and sqrt are exactly PyTorch's. */

static float exp_f(float x) { return (float)exp((double)x); }
static float acos_f(float x) { return (float)acos((double)x); }
static float atan2_f(float y, float x) { return (float)atan2((double)y, (double)x); }

/* torch.sigmoid on CPU: 1 / (1 + exp(-x)). */
static float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

/* get_output for sal/edge is 255 * 1 / (1 + exp(-x)), which Python turns
 * into reciprocal(1 + exp(-x)) * 255; every meter then divides by 255. */
static float prob_from_logit(float x) {
    const float encoded = sigmoid_f(x) * 255.0f;
    return encoded / 255.0f;
}

/* PyTorch's 2-norm over 3 channels: sequential sum of squares, which its
 * CPU reduction kernel fuses into multiply-adds. */
static float norm3(const float v[3]) {
    float acc = v[0] * v[0];
    acc = fmaf(v[1], v[1], acc);
    acc = fmaf(v[2], v[2], acc);
    return sqrtf(acc);
}

/* clamp_min / clamp keep NaN, as torch.clamp does. */
static float clamp_min_f(float x, float lo) { return x < lo ? lo : x; }
static float clamp_f(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* 180/math.pi as the float32 scalar torch multiplies by (rad2deg too). */
#define DEG_PER_RAD_F ((float)(180.0 / 3.14159265358979323846))

/* torch.max(dim): the first maximum; a NaN wins (max propagates NaN). */
static int argmax_channels(const float *x, int channels, size_t plane) {
    int best = 0;
    float bv = x[0];
    if (bv != bv) return 0;
    for (int k = 1; k < channels; k++) {
        const float v = x[(size_t)k * plane];
        if (v != v) return k;
        if (v > bv) {
            bv = v;
            best = k;
        }
    }
    return best;
}

/* How many of the ascending thresholds t satisfy t < p (strict) or
 * t <= p; a NaN p satisfies none, as NaN comparisons are false. */
static int thresholds_passed(const float *t, int n, float p, int inclusive) {
    int lo = 0, hi = n;
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (inclusive ? t[mid] <= p : t[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- per-image partial states -----------------------------------------
 * Each writes the image's contribution (layout of the kind's state) into
 * a zeroed `part`. */

/* SemsegMeter / HumanPartsMeter.update: for every valid pixel the
 * prediction p and label g give tp[g] if equal, else fp[p] and fn[g]. */
static void labels_image(const float *logits, const uint8_t *labels, size_t plane, int classes,
                         double *part) {
    double *tp = part, *fp = part + classes, *fn = part + 2 * classes;
    for (size_t i = 0; i < plane; i++) {
        const int g = labels[i];
        if (g == IGNORE_LABEL) continue;
        const int p = argmax_channels(logits + i, classes, plane);
        if (p == g) {
            tp[g] += 1.0;
        } else {
            fp[p] += 1.0;
            fn[g] += 1.0;
        }
    }
}

/* evaluation/jaccard.py for one image and threshold, from its counts. */
static double image_jaccard(double tp, double fp, double gt_pos) {
    if (gt_pos == 0.0 && tp + fp == 0.0) return 1.0;
    return tp / (gt_pos + fp); /* union = tp + fp + fn = gt_pos + fp */
}

/* Both saliency meters on one image. No-beta (per image): pixel p is
 * positive at threshold j when p > t_j, ground truth positive when g != 0
 * (numpy's astype(bool); 255 included); jaccard, precision and recall of
 * the image are added. Beta (over pixels): sigmoid applied once more to
 * the probability (the official meter squashes what it takes for logits),
 * positive when >= t_j, target long(g), pixels with g == 255 skipped. */
static void sal_image(const float *logits, const float *target, size_t plane, double *part) {
    enum { NT = METRICS_SAL_THRESHOLDS, NB = METRICS_SAL_BETA_THRESHOLDS };
    /* pixels by (thresholds passed, gt positive), and beta pixel count and
     * target sum by thresholds passed */
    double hist[NT + 1][2] = {{0}}, beta_n[NB + 1] = {0}, beta_t[NB + 1] = {0};
    for (size_t i = 0; i < plane; i++) {
        const float p = prob_from_logit(logits[i]), g = target[i];
        hist[thresholds_passed(SAL_THRESHOLDS, NT, p, 0)][g != 0.0f] += 1.0;
        if (g == (float)IGNORE_LABEL) continue;
        const int b = thresholds_passed(SAL_BETA_THRESHOLDS, NB, sigmoid_f(p), 1);
        beta_n[b] += 1.0;
        beta_t[b] += trunc((double)g);
    }
    double gt_pos = 0.0;
    for (int k = 0; k <= NT; k++) gt_pos += hist[k][1];
    part[SAL_IMAGES] = 1.0;
    double tp = 0.0, fp = 0.0; /* pixels positive at threshold j: passed > j */
    for (int j = NT - 1; j >= 0; j--) {
        tp += hist[j + 1][1];
        fp += hist[j + 1][0];
        part[SAL_JAC + j] = image_jaccard(tp, fp, gt_pos);
        part[SAL_PREC + j] = tp / ((tp + fp) + 1e-12);
        part[SAL_REC + j] = tp / (gt_pos + 1e-12);
    }
    double btp = 0.0, bpp = 0.0, bap = 0.0;
    for (int k = 0; k <= NB; k++) bap += beta_t[k];
    for (int j = NB - 1; j >= 0; j--) {
        btp += beta_t[j + 1];
        bpp += beta_n[j + 1];
        part[SAL_BETA_TP + j] = btp;
        part[SAL_BETA_PP + j] = bpp;
    }
    part[SAL_BETA_AP] = bap;
}

/* get_output for normals, then the meters' 2 * pred / 255 - 1. */
static void normals_decoded(const float x[3], float p[3]) {
    const float n = clamp_min_f(norm3(x), 1e-12f); /* F.normalize eps */
    for (int c = 0; c < 3; c++) {
        const float encoded = ((x[c] / n + 1.0f) * 255.0f) / 2.0f;
        p[c] = (2.0f * encoded) / 255.0f - 1.0f;
    }
}

/* NormalsMeterV1: channels equal to 255 are zeroed in both; the angle
 * acos(clamp(<p, g>)) counts where channel 0 is valid. */
static float normals_v1_degrees(const float p[3], const float g[3]) {
    float pv[3], gv[3];
    for (int c = 0; c < 3; c++) {
        const int ignored = g[c] == (float)IGNORE_LABEL;
        pv[c] = ignored ? 0.0f : p[c];
        gv[c] = ignored ? 0.0f : g[c];
    }
    const float dot = (pv[0] * gv[0] + pv[1] * gv[1]) + pv[2] * gv[2];
    return DEG_PER_RAD_F * acos_f(clamp_f(dot, -1.0f, 1.0f));
}

/* eval_normals_v2.normalize_tensor: a zero vector stays zero. */
static void normalize_or_zero(const float v[3], float out[3]) {
    const float n = norm3(v);
    for (int c = 0; c < 3; c++) out[c] = n == 0.0f ? 0.0f : v[c] / n;
}

/* NormalsMeterV2: both normalised, angle 2 atan2(|p - g|, |p + g|). */
static float normals_v2_degrees(const float p[3], const float g[3]) {
    float pn[3], gn[3], d[3], s[3];
    normalize_or_zero(p, pn);
    normalize_or_zero(g, gn);
    for (int c = 0; c < 3; c++) {
        d[c] = pn[c] - gn[c];
        s[c] = pn[c] + gn[c];
    }
    return (2.0f * atan2_f(norm3(d), norm3(s))) * DEG_PER_RAD_F;
}

static void normals_image(const float *logits, const float *target, size_t plane,
                          double *part) {
    for (size_t i = 0; i < plane; i++) {
        float x[3], g[3], p[3];
        for (int c = 0; c < 3; c++) {
            x[c] = logits[(size_t)c * plane + i];
            g[c] = target[(size_t)c * plane + i];
        }
        normals_decoded(x, p);
        if (g[0] != (float)IGNORE_LABEL) {
            part[NRM_V1_SUM] += normals_v1_degrees(p, g);
            part[NRM_V1_N] += 1.0;
        }
        if (g[0] != (float)IGNORE_LABEL && g[1] != (float)IGNORE_LABEL &&
            g[2] != (float)IGNORE_LABEL) {
            part[NRM_V2_SUM] += normals_v2_degrees(p, g);
            part[NRM_V2_N] += 1.0;
        }
    }
}

/* EdgeMeter: BalancedCrossEntropyLoss (the logits formula) applied to the
 * probability pred / 255, label positive when >= 0.5; the positive and
 * negative sums are kept apart so the weighting can wait for the score. */
static void edge_image(const float *logits, const float *target, size_t plane, double *part) {
    for (size_t i = 0; i < plane; i++) {
        const double o = prob_from_logit(logits[i]);
        const double label = target[i] >= 0.5f ? 1.0 : 0.0;
        const double gt_zero = o >= 0.0 ? 1.0 : 0.0;
        const double loss_val = o * (label - gt_zero) - log(1.0 + exp(o - 2.0 * (o * gt_zero)));
        part[EDGE_POS] += -(label * loss_val);
        part[EDGE_NEG] += -((1.0 - label) * loss_val);
    }
    part[EDGE_N] += (double)plane;
}

/* ---- updates ----------------------------------------------------------- */

static mt_status check_update(metrics_meter *m, const float *logits, int n, int channels,
                              int size, const void *target) {
    if (!m) return MT_ERR_ARG;
    m->err[0] = '\0';
    const char *k = kind_name(m->kind);
    if (!logits || !target)
        return FAIL(m, MT_ERR_ARG, "metrics %s: NULL %s", k, logits ? "target" : "logits");
    if (channels != metrics_channels(m->kind))
        return FAIL(m, MT_ERR_ARG, "metrics %s: %d logit channels, the official meter takes %d",
                    k, channels, metrics_channels(m->kind));
    if (n <= 0 || size <= 0)
        return FAIL(m, MT_ERR_SHAPE, "metrics %s: batch %d, size %d", k, n, size);
    const size_t plane = (size_t)size * (size_t)size;
    if (plane / (size_t)size != (size_t)size ||
        (size_t)n > SIZE_MAX / sizeof(float) / plane / (size_t)channels)
        return FAIL(m, MT_ERR_SHAPE, "metrics %s: batch %d of %dx%d overflows", k, n, size, size);
    return MT_OK;
}

static mt_status check_labels(metrics_meter *m, const uint8_t *labels, size_t count) {
    const int classes = class_count(m->kind);
    for (size_t i = 0; i < count; i++)
        if (labels[i] != IGNORE_LABEL && labels[i] >= classes)
            return FAIL(m, MT_ERR_ARG,
                        "metrics %s: label %d at element %zu out of range for %d classes "
                        "(255 = ignore)", kind_name(m->kind), labels[i], i, classes);
    return MT_OK;
}

static mt_status check_sal_target(metrics_meter *m, const float *target, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(target[i]))
            return FAIL(m, MT_ERR_ARG, "metrics sal: target value %g at element %zu",
                        (double)target[i], i);
    return MT_OK;
}

/* One image's partial state, dispatched by kind. */
static void image_partial(mt_task_kind kind, const float *logits, const void *target,
                          size_t plane, double *part) {
    switch (kind) {
    case MT_TASK_SEMSEG:
    case MT_TASK_HUMAN_PARTS:
        labels_image(logits, target, plane, class_count(kind), part);
        break;
    case MT_TASK_SAL: sal_image(logits, target, plane, part); break;
    case MT_TASK_NORMALS: normals_image(logits, target, plane, part); break;
    case MT_TASK_EDGE: edge_image(logits, target, plane, part); break;
    }
}

/* Partials per image in parallel, added to the state in image order. */
static mt_status accumulate(metrics_meter *m, const float *logits, int n, int size,
                            const void *target, size_t target_elem_size) {
    const size_t plane = (size_t)size * (size_t)size, len = m->len;
    const size_t logit_stride = plane * (size_t)metrics_channels(m->kind);
    const size_t target_stride = plane * (m->kind == MT_TASK_NORMALS ? 3 : 1) * target_elem_size;
    double *part = calloc((size_t)n * len, sizeof(double));
    if (!part) return FAIL(m, MT_ERR_NOMEM, "metrics %s: out of memory", kind_name(m->kind));
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++)
        image_partial(m->kind, logits + (size_t)i * logit_stride,
                      (const char *)target + (size_t)i * target_stride, plane,
                      part + (size_t)i * len);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < len; j++) m->state[j] += part[(size_t)i * len + j];
    free(part);
    return MT_OK;
}

mt_status metrics_update_labels(metrics_meter *m, const float *logits, int n, int channels,
                                int size, const uint8_t *labels) {
    mt_status st = check_update(m, logits, n, channels, size, labels);
    if (st) return st;
    if (!class_count(m->kind))
        return FAIL(m, MT_ERR_ARG, "metrics %s: takes a float target (metrics_update_maps)",
                    kind_name(m->kind));
    st = check_labels(m, labels, (size_t)n * (size_t)size * (size_t)size);
    if (st) return st;
    return accumulate(m, logits, n, size, labels, sizeof(uint8_t));
}

mt_status metrics_update_maps(metrics_meter *m, const float *logits, int n, int channels,
                              int size, const float *target) {
    mt_status st = check_update(m, logits, n, channels, size, target);
    if (st) return st;
    if (class_count(m->kind))
        return FAIL(m, MT_ERR_ARG, "metrics %s: takes uint8 labels (metrics_update_labels)",
                    kind_name(m->kind));
    if (m->kind == MT_TASK_SAL) {
        st = check_sal_target(m, target, (size_t)n * (size_t)size * (size_t)size);
        if (st) return st;
    }
    return accumulate(m, logits, n, size, target, sizeof(float));
}

mt_status metrics_update_batch(metrics_meter *m, const float *logits, int channels, int size,
                               const loader_batch *b) {
    if (!m) return MT_ERR_ARG;
    if (!b) return FAIL(m, MT_ERR_ARG, "metrics %s: NULL batch", kind_name(m->kind));
    switch (m->kind) {
    case MT_TASK_SEMSEG: return metrics_update_labels(m, logits, b->n, channels, size, b->semseg);
    case MT_TASK_HUMAN_PARTS:
        return metrics_update_labels(m, logits, b->n, channels, size, b->human_parts);
    case MT_TASK_SAL: return metrics_update_maps(m, logits, b->n, channels, size, b->sal);
    case MT_TASK_NORMALS: return metrics_update_maps(m, logits, b->n, channels, size, b->normals);
    case MT_TASK_EDGE: return metrics_update_maps(m, logits, b->n, channels, size, b->edge);
    }
    return MT_ERR_ARG;
}

/* ---- state ------------------------------------------------------------- */

mt_status metrics_state(metrics_meter *m, double **state, size_t *n) {
    if (!m || !state || !n) return MT_ERR_ARG;
    *state = m->state;
    *n = m->len;
    return MT_OK;
}

mt_status metrics_merge(metrics_meter *dst, const metrics_meter *src) {
    if (!dst || !src) return MT_ERR_ARG;
    if (dst->kind != src->kind)
        return FAIL(dst, MT_ERR_ARG, "metrics: cannot merge a %s meter into a %s meter",
                    kind_name(src->kind), kind_name(dst->kind));
    for (size_t j = 0; j < dst->len; j++) dst->state[j] += src->state[j];
    return MT_OK;
}

/* ---- scores ------------------------------------------------------------ */

/* numpy's pairwise summation (np.add.reduce of a contiguous float64 array),
 * so np.mean(jac) comes out bit for bit. */
static double numpy_sum(const double *a, size_t n) {
    if (n < 8) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t half = n / 2;
    half -= half % 8;
    return numpy_sum(a, half) + numpy_sum(a + half, n - half);
}

static void class_iou(const double *state, int classes, double *iou) {
    const double *tp = state, *fp = state + classes, *fn = state + 2 * classes;
    for (int c = 0; c < classes; c++) {
        const double denom = tp[c] + fp[c] + fn[c];
        iou[c] = tp[c] / (denom > 1e-8 ? denom : 1e-8);
    }
}

static void add_score(metrics_scores *s, const char *name, double value) {
    s->name[s->count] = name;
    s->value[s->count] = value;
    s->count++;
}

static void labels_scores(const metrics_meter *m, metrics_scores *out) {
    const int classes = class_count(m->kind);
    double iou[METRICS_SEMSEG_CLASSES];
    class_iou(m->state, classes, iou);
    add_score(out, "mIoU", numpy_sum(iou, (size_t)classes) / classes);
}

/* SaliencyMeterWithBeta.get_score, in float32 as the official tensors are:
 * F = (1 + b2) P R / (b2 P + R), NaN (0/0) set to 0, max over thresholds. */
static double sal_beta_maxf(const double *st) {
    const float ap = (float)st[SAL_BETA_AP];
    const float one_plus_b2 = (float)(1.0 + SAL_BETA_SQUARED), b2 = (float)SAL_BETA_SQUARED;
    float best = 0.0f;
    for (int j = 0; j < METRICS_SAL_BETA_THRESHOLDS; j++) {
        const float tp = (float)st[SAL_BETA_TP + j], pp = (float)st[SAL_BETA_PP + j];
        if (pp == 0.0f || ap == 0.0f) continue; /* precision or recall 0/0 */
        const float precision = tp / pp, recall = tp / ap;
        const float num = (one_plus_b2 * precision) * recall;
        const float denom = b2 * precision + recall;
        const float f = denom == 0.0f ? 0.0f : num / denom;
        if (f > best) best = f;
    }
    return best;
}

/* SaliencyMeterWithNoBeta.get_score: means over images per threshold,
 * F = 2 mP mR / (mP + mR + 1e-12); maxF and mIoU are maxima over
 * thresholds (not necessarily the same threshold). */
static void sal_scores(const double *st, metrics_scores *out) {
    const double images = st[SAL_IMAGES];
    double maxf = NAN, miou = NAN;
    if (images > 0.0) {
        maxf = -INFINITY;
        miou = -INFINITY;
        for (int j = 0; j < METRICS_SAL_THRESHOLDS; j++) {
            const double mp = st[SAL_PREC + j] / images, mr = st[SAL_REC + j] / images;
            const double f = 2.0 * mp * mr / (mp + mr + 1e-12);
            const double jac = st[SAL_JAC + j] / images;
            if (f > maxf) maxf = f;
            if (jac > miou) miou = jac;
        }
    }
    add_score(out, "Beta maxF", sal_beta_maxf(st));
    add_score(out, "maxF", maxf);
    add_score(out, "mIoU", miou);
}

static double ratio_or_nan(double num, double den) { return den > 0.0 ? num / den : NAN; }

mt_status metrics_score(const metrics_meter *m, metrics_scores *out) {
    if (!m || !out) return MT_ERR_ARG;
    memset(out, 0, sizeof *out);
    const double *st = m->state;
    switch (m->kind) {
    case MT_TASK_SEMSEG:
    case MT_TASK_HUMAN_PARTS: labels_scores(m, out); break;
    case MT_TASK_SAL: sal_scores(st, out); break;
    case MT_TASK_NORMALS: {
        /* the official "rmse" is the same mean (get_score divides the
         * angle sum, not a sum of squares) */
        const double v1 = ratio_or_nan(st[NRM_V1_SUM], st[NRM_V1_N]);
        const double v2 = ratio_or_nan(st[NRM_V2_SUM], st[NRM_V2_N]);
        add_score(out, "mean", v1);
        add_score(out, "rmse", v1);
        add_score(out, "mean_v2", v2);
        add_score(out, "rmse_v2", v2);
        break;
    }
    case MT_TASK_EDGE: {
        const double w = EDGE_POS_WEIGHT;
        add_score(out, "loss",
                  ratio_or_nan(w * st[EDGE_POS] + (1.0 - w) * st[EDGE_NEG], st[EDGE_N]));
        break;
    }
    }
    return MT_OK;
}

mt_status metrics_scores_get(const metrics_scores *s, const char *name, double *value) {
    if (!s || !name || !value) return MT_ERR_ARG;
    for (int i = 0; i < s->count && i < METRICS_MAX_SCORES; i++)
        if (s->name[i] && !strcmp(s->name[i], name)) {
            *value = s->value[i];
            return MT_OK;
        }
    return MT_ERR_ARG;
}

mt_status metrics_class_iou(const metrics_meter *m, double *iou, int nclasses) {
    if (!m || !iou) return MT_ERR_ARG;
    const int classes = class_count(m->kind);
    if (!classes || nclasses != classes) return MT_ERR_ARG;
    class_iou(m->state, classes, iou);
    return MT_OK;
}

/* ---- Delta_m ----------------------------------------------------------- */

const char *metrics_delta_key(mt_task_kind kind) {
    switch (kind) {
    case MT_TASK_SEMSEG: case MT_TASK_HUMAN_PARTS: case MT_TASK_SAL: return "mIoU";
    case MT_TASK_NORMALS: return "mean";
    case MT_TASK_EDGE: return NULL; /* odsF: external SEISM evaluation */
    }
    return NULL;
}

mt_status metrics_delta_m(double *delta, int ntasks, const mt_task_kind *kinds,
                          const double *mtl, const double *stl) {
    if (!delta || !kinds || !mtl || !stl || ntasks <= 0) return MT_ERR_ARG;
    for (int t = 0; t < ntasks; t++) {
        if (!metrics_delta_key(kinds[t]) || !isfinite(mtl[t]) || !isfinite(stl[t]) ||
            stl[t] == 0.0)
            return MT_ERR_ARG;
        for (int u = 0; u < t; u++)
            if (kinds[u] == kinds[t]) return MT_ERR_ARG; /* the official dict has each once */
    }
    /* calculate_multi_task_performance, term by term in task order */
    double sum = 0.0;
    for (int t = 0; t < ntasks; t++) {
        const double rel = (mtl[t] - stl[t]) / stl[t];
        if (kinds[t] == MT_TASK_NORMALS)
            sum -= rel; /* mean angle: lower is better */
        else
            sum += rel;
    }
    *delta = sum / ntasks;
    return MT_OK;
}

mt_status metrics_stl_baseline(mt_task_kind kind, double *value) {
    if (!value) return MT_ERR_ARG;
    switch (kind) {
    case MT_TASK_SEMSEG: *value = 0.6721; return MT_OK;
    case MT_TASK_HUMAN_PARTS: *value = 0.6193; return MT_OK;
    case MT_TASK_SAL: *value = 0.6235; return MT_OK;
    case MT_TASK_NORMALS: *value = 17.97; return MT_OK;
    case MT_TASK_EDGE: break;
    }
    return MT_ERR_ARG;
}
