/* prediction_maps.h - a task's output for one image, from the model's logits
 * at S x S to an 8-bit map at the image's own size h x w, as the official
 * code turns predictions into the PNGs it evaluates
 * (src/data/prediction_maps.c).
 *
 * The official pipeline: the model's forward resizes every decoder's logits
 * bilinearly to the input size S x S (models/swin_mtl.py DecoderGroup,
 * F.interpolate mode bilinear, align_corners False: mt_model_forward does
 * the same), get_output (evaluation/evaluate_utils.py) turns them into
 * per-pixel values, and the saved prediction is cv2.resize(value, (w, h),
 * interpolation=INFER_FLAGVALS[task]) then .astype(np.uint8) (the
 * predecessor code's save_model_predictions, whose INFER_FLAGVALS
 * data/mtl_ds.py keeps: INTER_NEAREST for semseg and human_parts,
 * INTER_LINEAR for sal, normals and edge):
 *   semseg, human_parts: argmax over the K classes (the first maximum, as
 *     torch.max), resized nearest;
 *   sal, edge: 255 * sigmoid(logit) in float32, resized bilinearly,
 *     truncated; the saliency mask is value / 255 > 0.5 of the resized
 *     float value (the official evaluation sweeps thresholds 0.2..0.9 for
 *     maxF; 0.5 is the threshold the loader binarises the ground truth
 *     with, sal_distill v / 255 > 0.5);
 *   normals: (n / |n| + 1) * 255 / 2 in float32 (label_colors.h), resized
 *     bilinearly, truncated, as RGB.
 * Resizing is OpenCV 4.x's arithmetic (cv2.resize on float32): the same
 * size is a copy; INTER_NEAREST as image_warp.h; INTER_LINEAR computes each
 * source position (x + 0.5) * (sw / dw) - 0.5 in double, floors it, weights
 * 1 - f, f in float, clamps at the borders (columns: the border pixel with
 * weight 1; rows: the row index clamped, the weights kept), filters rows
 * then columns in float; an exact 2x downscale on both axes is OpenCV's
 * INTER_AREA (the mean of 2 x 2), which OpenCV switches to there.
 * Logits are [K, S, S] (the model's NCHW for one image); outputs row-major
 * h x w (x 3 for normals). MT_ERR_ARG on NULL or non-positive sizes,
 * MT_ERR_NOMEM. */
#ifndef MTLORA_PREDICTION_MAPS_H
#define MTLORA_PREDICTION_MAPS_H

#include <stdint.h>
#include "mtlora/base/status.h"

/* semseg, human_parts: class labels 0..K-1 (K <= 256). */
mt_status pred_labels(const float *logits, int K, int S, int h, int w, uint8_t *labels);

/* sal, edge: 255 * sigmoid, resized, truncated into gray; mask (may be NULL)
 * 255 where the resized probability is above 0.5, else 0. */
mt_status pred_probability(const float *logit, int S, int h, int w, uint8_t *gray, uint8_t *mask);

/* normals: [3, S, S] logits to h x w x 3 RGB. */
mt_status pred_normals(const float *logits, int S, int h, int w, uint8_t *rgb);

/* cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR) of a float32
 * sh x sw x c image (c 1..4). */
mt_status pred_resize_linear(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);

#endif
