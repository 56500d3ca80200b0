/* metrics_score.c - final scores from a meter's summed state, under the
 * official keys and units, and the multi-task Delta_m with its published
 * single-task baselines (metrics.h).
 *
 * The saliency beta score is taken in float32 as the official tensors
 * are; contraction stays off (-std=c11) so every float operation rounds. */
#include <math.h>
#include <string.h>

#include "metrics_internal.h"

#define EDGE_POS_WEIGHT 0.95 /* get_single_task_meter: EdgeMeter(pos_weight=0.95) */
#define SAL_BETA_SQUARED 0.3 /* SaliencyMeterWithBeta default beta_squared */

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
    const int classes = metrics_class_count(m->kind);
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
    const int classes = metrics_class_count(m->kind);
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
