/* edge_map.h - the PASCAL-Context edge target, as the official loader makes
 * it from the 459-class LabelMap: edge = thin(|Laplacian(LabelMap)| > 0).
 *   Laplacian: OpenCV's cv2.Laplacian(src, CV_64F) with its default ksize=1,
 *     i.e. the 3x3 kernel [[0,1,0],[1,-4,1],[0,1,0]], borders reflected as
 *     BORDER_REFLECT_101 (OpenCV's default: ... c b | a b c | b a ...).
 *   thin: scikit-image's skimage.morphology.thin (Guo-Hall two-subiteration
 *     parallel thinning with its lookup tables), iterated until nothing
 *     changes, on an image padded with background. */
#ifndef MTLORA_EDGE_MAP_H
#define MTLORA_EDGE_MAP_H

#include <stdint.h>
#include "mtlora/base/status.h"

/* out[h*w] = 1 on edge pixels, 0 elsewhere. labels[h*w] row-major.
 * MT_ERR_ARG for NULL/non-positive sizes, MT_ERR_NOMEM. */
mt_status edge_from_labelmap(uint8_t *out, const int32_t *labels, int h, int w);

/* The two steps on their own (for tests): mask = |Laplacian| > 0, and
 * skimage's thin applied in place to a 0/1 image. */
mt_status edge_laplacian_mask(uint8_t *mask, const int32_t *labels, int h, int w);
mt_status edge_thin(uint8_t *img, int h, int w);

#endif
