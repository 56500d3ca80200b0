/* metrics.h - the official MTLoRA evaluation metrics (scale-lab/MTLoRA
 * evaluation/eval_*.py, PASCAL-Context), as meters whose state is one flat array
 * of doubles, so that ranks that each evaluated a part of the validation set
 * combine with ONE MPI_Allreduce(MPI_SUM) over that array:
 *
 *     double *st; size_t n;
 *     metrics_state(m, &st, &n);
 *     MPI_Allreduce(MPI_IN_PLACE, st, (int)n, MPI_DOUBLE, MPI_SUM, comm);
 *     metrics_score(m, &scores);
 *
 * An update takes a batch of the model's raw logits [n, K, S, S] (float32,
 * NCHW, as mt_model_logits gives them) and the batch's targets in the
 * loader's formats (metrics_targets below), applies the official get_output
 * transform and then the official meter update:
 *   semseg       argmax over 21 channels; per-class TP/FP/FN over valid pixels
 *   human_parts  argmax over 7 channels; the same
 *   sal          255*sigmoid; SaliencyMeterWithNoBeta (per image, 15
 *                thresholds) and SaliencyMeterWithBeta (over pixels, 19
 *                thresholds, applied to sigmoid(prob): see docs/metrics.md)
 *   normals      L2-normalised, encoded (n+1)*255/2; NormalsMeterV1 and V2
 *   edge         255*sigmoid; EdgeMeter (balanced BCE with pos_weight 0.95
 *                applied to the probability, as the official code does)
 * Per-pixel values follow PyTorch's float32 operation order; exp, acos and
 * atan2 are the correctly rounded float32 values. Sums are exact counts or
 * double sums (the official code accumulates some in float32).
 *
 * State layouts (doubles; counts are exact integers up to 2^53):
 *   semseg       [tp[21], fp[21], fn[21]]                          63
 *   human_parts  [tp[7],  fp[7],  fn[7]]                           21
 *   sal          [images, jaccard[15], precision[15], recall[15],    85
 *                 beta_tp[19], beta_predicted[19], beta_actual]
 *                (no-beta: per-image values summed over images;
 *                 beta: pixel counts)
 *   normals      [v1_sum_deg, v1_pixels, v2_sum_deg, v2_pixels]     4
 *   edge         [sum_pos_loss, sum_neg_loss, pixels]               3
 *
 * A meter holds no global state and is not shared between threads (an
 * update uses OpenMP inside; its result does not depend on the thread
 * count). Errors: MT_ERR_ARG for NULL pointers, wrong channel counts or bad
 * target values, MT_ERR_SHAPE for bad sizes, MT_ERR_NOMEM; the reason is in
 * metrics_error(m). */
#ifndef MTLORA_METRICS_H
#define MTLORA_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/config/config.h"
#include "mtlora/base/status.h"

#define METRICS_SEMSEG_CLASSES 21      /* 20 VOC classes + background */
#define METRICS_HUMAN_PARTS_CLASSES 7  /* 6 parts + background */
#define METRICS_SAL_THRESHOLDS 15      /* np.linspace(0.2, 0.9, 15) */
#define METRICS_SAL_BETA_THRESHOLDS 19 /* torch.arange(0.05, 1, 0.05) */
#define METRICS_MAX_SCORES 4

typedef struct metrics_meter metrics_meter;

/* A zeroed meter for one task kind (MT_ERR_ARG for an unknown kind). */
mt_status metrics_create(metrics_meter **out, mt_task_kind kind);
void metrics_destroy(metrics_meter *m);
void metrics_reset(metrics_meter *m);
mt_task_kind metrics_kind(const metrics_meter *m);
/* Why the last call on m failed ("" if none did). */
const char *metrics_error(const metrics_meter *m);

/* Logit channels a kind expects: 21, 7, 1, 3, 1. */
int metrics_channels(mt_task_kind kind);

/* semseg / human_parts: labels [n, S, S], 0..C-1 or 255 (ignored). A label
 * that is neither is refused (MT_ERR_ARG), as the loss refuses it. */
mt_status metrics_update_labels(metrics_meter *m, const float *logits, int n, int channels,
                                int size, const uint8_t *labels);
/* sal / edge: target [n, S, S] (0/1; sal 255 = ignored by the beta meter,
 * positive for the no-beta meter, as official). normals: target
 * [n, 3, S, S], 255 = ignored. Non-finite sal targets are refused. */
mt_status metrics_update_maps(metrics_meter *m, const float *logits, int n, int channels,
                              int size, const float *target);
/* A batch's targets, one plane per task (NULL for a task not loaded), in
 * the formats above: what a loader batch (shard_loader.h) holds, without
 * the meters depending on the loader. */
typedef struct {
    int n;                      /* images in the batch */
    const uint8_t *semseg;      /* [n, S, S] */
    const uint8_t *human_parts; /* [n, S, S] */
    const float *sal, *edge;    /* [n, S, S] */
    const float *normals;       /* [n, 3, S, S] */
} metrics_targets;

/* metrics_update_labels / _maps with the field of t that m's kind reads
 * (a NULL field is MT_ERR_ARG); the other fields are not read. */
mt_status metrics_update_targets(metrics_meter *m, const float *logits, int channels, int size,
                                 const metrics_targets *t);

/* The meter's state: *state points into the meter (writable, so MPI can
 * reduce in place), *n = metrics_state_len(kind). */
mt_status metrics_state(metrics_meter *m, double **state, size_t *n);
size_t metrics_state_len(mt_task_kind kind); /* 0 for an unknown kind */
/* dst += src (same kind): what the MPI sum does, for tests and one process. */
mt_status metrics_merge(metrics_meter *dst, const metrics_meter *src);

/* Final scores under the official dict keys and units (fractions for mIoU
 * and F, degrees for normals), in the official order:
 *   semseg, human_parts  "mIoU"
 *   sal                  "Beta maxF", "maxF", "mIoU"
 *   normals              "mean", "rmse", "mean_v2", "rmse_v2"
 *                        (the official "rmse" IS the mean angle)
 *   edge                 "loss"
 * A score whose official formula divides by zero (normals or edge with no
 * pixel, sal with no image) is NaN; the official code raises there. */
typedef struct {
    int count;
    const char *name[METRICS_MAX_SCORES];
    double value[METRICS_MAX_SCORES];
} metrics_scores;

mt_status metrics_score(const metrics_meter *m, metrics_scores *out);
/* value of the named score; MT_ERR_ARG if s has none of that name. */
mt_status metrics_scores_get(const metrics_scores *s, const char *name, double *value);
/* Per-class IoU ("jaccards_all_categs") of semseg / human_parts; nclasses
 * must be the kind's class count. */
mt_status metrics_class_iou(const metrics_meter *m, double *iou, int nclasses);

/* ---- Delta_m (evaluation/evaluate_utils.py calculate_multi_task_performance)
 * Delta_m = (1/T) sum_t s_t (M_mtl,t - M_stl,t) / M_stl,t, with M the key
 * score below, s = +1 where higher is better (semseg, human_parts and sal
 * "mIoU") and -1 for normals "mean". A fraction, like the official value
 * (x100 for the percent the papers print). Edge's official key "odsF" comes
 * from the external SEISM evaluation and is not computed here: MT_ERR_ARG.
 * mtl and stl must be in the same units; stl values finite and non-zero. */
const char *metrics_delta_key(mt_task_kind kind); /* NULL for edge / unknown */
mt_status metrics_delta_m(double *delta, int ntasks, const mt_task_kind *kinds,
                          const double *mtl, const double *stl);
/* The published Swin-T single-task baselines (docs/metrics.md), in the
 * meters' units: semseg 0.6721, human_parts 0.6193, sal 0.6235 (mIoU
 * fractions), normals 17.97 (degrees). MT_ERR_ARG for edge. */
mt_status metrics_stl_baseline(mt_task_kind kind, double *value);

#endif
