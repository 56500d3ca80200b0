/* metrics_image.c - one image's contribution to each meter's state
 * (metrics_internal.h): the official get_output transforms and meter
 * updates, per pixel, in float32 in PyTorch's operation order, so
 * thresholds fall on the same side as in the official code; only the sums
 * are taken in double.
 *
 * Floating-point contraction must stay off (it is under -std=c11): the
 * float expressions below are meant to round after every operation, and
 * the one fused multiply-add PyTorch uses (its 2-norm) is written as fmaf. */
#include <math.h>
#include <stdint.h>

#include "metrics_internal.h"

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

/* One image's partial state, dispatched by kind. */
void metrics_image_partial(mt_task_kind kind, const float *logits, const void *target,
                           size_t plane, double *part) {
    switch (kind) {
    case MT_TASK_SEMSEG:
    case MT_TASK_HUMAN_PARTS:
        labels_image(logits, target, plane, metrics_class_count(kind), part);
        break;
    case MT_TASK_SAL: sal_image(logits, target, plane, part); break;
    case MT_TASK_NORMALS: normals_image(logits, target, plane, part); break;
    case MT_TASK_EDGE: edge_image(logits, target, plane, part); break;
    }
}
