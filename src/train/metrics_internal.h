/* metrics_internal.h - what the meter files share: the meter itself, the
 * layout of each kind's state (metrics.h documents it), the kind tables
 * (metrics.c), and the per-image partial states (metrics_image.c) that the
 * updates add up and the scores (metrics_score.c) read. Private to
 * src/train. */
#ifndef MTLORA_METRICS_INTERNAL_H
#define MTLORA_METRICS_INTERNAL_H

#include <stddef.h>

#include "mtlora/train/metrics.h"

#define IGNORE_LABEL 255

/* Offsets into the sal state. */
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

#define FAIL(m, st, ...) mt_errf((m)->err, sizeof (m)->err, (st), __VA_ARGS__)

/* Classes of semseg / human_parts, 0 for the map kinds. */
int metrics_class_count(mt_task_kind k);
const char *metrics_kind_name(mt_task_kind k);

/* One image's contribution to a kind's state, written into a zeroed part
 * (metrics_state_len(kind) doubles): logits [K, S, S], target [S, S]
 * (uint8 labels or float maps) or [3, S, S] (normals), plane = S * S. */
void metrics_image_partial(mt_task_kind kind, const float *logits, const void *target,
                           size_t plane, double *part);

#endif
