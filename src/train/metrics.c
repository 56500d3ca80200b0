/* metrics.c - the official MTLoRA evaluation meters with a summable state
 * (metrics.h): kinds, lifetime, the checked updates, the state and merge.
 * The per-pixel work is metrics_image.c's, the scores metrics_score.c's.
 *
 * Each update computes one partial state per image (in parallel: images are
 * independent) and adds the partials in image order, so the result does
 * not depend on the thread count. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_internal.h"

/* ---- kinds ------------------------------------------------------------- */

static int known_kind(mt_task_kind k) {
    return k == MT_TASK_SEMSEG || k == MT_TASK_HUMAN_PARTS || k == MT_TASK_SAL ||
           k == MT_TASK_NORMALS || k == MT_TASK_EDGE;
}

int metrics_class_count(mt_task_kind k) {
    return k == MT_TASK_SEMSEG ? METRICS_SEMSEG_CLASSES
           : k == MT_TASK_HUMAN_PARTS ? METRICS_HUMAN_PARTS_CLASSES : 0;
}

const char *metrics_kind_name(mt_task_kind k) {
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
    case MT_TASK_SEMSEG: case MT_TASK_HUMAN_PARTS: return metrics_class_count(kind);
    case MT_TASK_NORMALS: return 3;
    case MT_TASK_SAL: case MT_TASK_EDGE: return 1;
    }
    return 0;
}

size_t metrics_state_len(mt_task_kind kind) {
    switch (kind) {
    case MT_TASK_SEMSEG: case MT_TASK_HUMAN_PARTS: return 3 * (size_t)metrics_class_count(kind);
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

/* ---- updates ----------------------------------------------------------- */

static mt_status check_update(metrics_meter *m, const float *logits, int n, int channels,
                              int size, const void *target) {
    if (!m) return MT_ERR_ARG;
    m->err[0] = '\0';
    const char *k = metrics_kind_name(m->kind);
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
    const int classes = metrics_class_count(m->kind);
    for (size_t i = 0; i < count; i++)
        if (labels[i] != IGNORE_LABEL && labels[i] >= classes)
            return FAIL(m, MT_ERR_ARG,
                        "metrics %s: label %d at element %zu out of range for %d classes "
                        "(255 = ignore)", metrics_kind_name(m->kind), labels[i], i, classes);
    return MT_OK;
}

static mt_status check_sal_target(metrics_meter *m, const float *target, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(target[i]))
            return FAIL(m, MT_ERR_ARG, "metrics sal: target value %g at element %zu",
                        (double)target[i], i);
    return MT_OK;
}

/* Partials per image in parallel, added to the state in image order. */
static mt_status accumulate(metrics_meter *m, const float *logits, int n, int size,
                            const void *target, size_t target_elem_size) {
    const size_t plane = (size_t)size * (size_t)size, len = m->len;
    const size_t logit_stride = plane * (size_t)metrics_channels(m->kind);
    const size_t target_stride = plane * (m->kind == MT_TASK_NORMALS ? 3 : 1) * target_elem_size;
    double *part = calloc((size_t)n * len, sizeof(double));
    if (!part) return FAIL(m, MT_ERR_NOMEM, "metrics %s: out of memory", metrics_kind_name(m->kind));
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++)
        metrics_image_partial(m->kind, logits + (size_t)i * logit_stride,
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
    if (!metrics_class_count(m->kind))
        return FAIL(m, MT_ERR_ARG, "metrics %s: takes a float target (metrics_update_maps)",
                    metrics_kind_name(m->kind));
    st = check_labels(m, labels, (size_t)n * (size_t)size * (size_t)size);
    if (st) return st;
    return accumulate(m, logits, n, size, labels, sizeof(uint8_t));
}

mt_status metrics_update_maps(metrics_meter *m, const float *logits, int n, int channels,
                              int size, const float *target) {
    mt_status st = check_update(m, logits, n, channels, size, target);
    if (st) return st;
    if (metrics_class_count(m->kind))
        return FAIL(m, MT_ERR_ARG, "metrics %s: takes uint8 labels (metrics_update_labels)",
                    metrics_kind_name(m->kind));
    if (m->kind == MT_TASK_SAL) {
        st = check_sal_target(m, target, (size_t)n * (size_t)size * (size_t)size);
        if (st) return st;
    }
    return accumulate(m, logits, n, size, target, sizeof(float));
}

mt_status metrics_update_targets(metrics_meter *m, const float *logits, int channels, int size,
                                 const metrics_targets *t) {
    if (!m) return MT_ERR_ARG;
    if (!t) return FAIL(m, MT_ERR_ARG, "metrics %s: NULL targets", metrics_kind_name(m->kind));
    switch (m->kind) {
    case MT_TASK_SEMSEG: return metrics_update_labels(m, logits, t->n, channels, size, t->semseg);
    case MT_TASK_HUMAN_PARTS:
        return metrics_update_labels(m, logits, t->n, channels, size, t->human_parts);
    case MT_TASK_SAL: return metrics_update_maps(m, logits, t->n, channels, size, t->sal);
    case MT_TASK_NORMALS: return metrics_update_maps(m, logits, t->n, channels, size, t->normals);
    case MT_TASK_EDGE: return metrics_update_maps(m, logits, t->n, channels, size, t->edge);
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
                    metrics_kind_name(src->kind), metrics_kind_name(dst->kind));
    for (size_t j = 0; j < dst->len; j++) dst->state[j] += src->state[j];
    return MT_OK;
}

