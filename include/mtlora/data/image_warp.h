/* image_warp.h - OpenCV-exact resampling of float64 images.
 *
 * The official PASCAL augmentation runs cv2.warpAffine and cv2.resize on
 * float64 arrays. To reproduce its output to the last bit we follow
 * OpenCV 4.x's arithmetic, not just its formulas:
 *  - warpAffine inverts M in double, then quantises every source position to
 *    1/32 pixel (INTER_BITS = 5, AB_BITS = 10, cvRound = round half to even)
 *    and interpolates with its 32 x 32 table of float bicubic weights
 *    (A = -0.75); pixels outside the source read the constant border 0;
 *  - resize (INTER_CUBIC) computes each source position in float, clamps
 *    indices at the borders (replicate), filters rows then columns in double
 *    with float weights;
 *  - INTER_NEAREST uses floor(x / (dw / sw)) for resize, and the 1/1024
 *    fixed point rounding for warpAffine.
 * Images are row-major h x w x c (interleaved channels), as numpy holds them. */
#ifndef MTLORA_IMAGE_WARP_H
#define MTLORA_IMAGE_WARP_H

#include "mtlora/base/status.h"

typedef enum { CVX_NEAREST = 0, CVX_CUBIC = 2 } cvx_interp;

/* cv2.getRotationMatrix2D(center, angle_deg, scale) into M (2 x 3, row-major). */
void cvx_rotation_matrix(double M[6], double cx, double cy, double angle_deg, double scale);

/* cv2.warpAffine(src, M, (dw, dh), flags=interp) with BORDER_CONSTANT 0.
 * MT_ERR_ARG on NULL / non-positive sizes / c outside 1..4, MT_ERR_NOMEM. */
mt_status cvx_warp_affine(double *dst, int dh, int dw, const double *src, int sh, int sw, int c,
                          const double M[6], cvx_interp interp);

/* cv2.resize(src, (dw, dh), interpolation=interp). */
mt_status cvx_resize(double *dst, int dh, int dw, const double *src, int sh, int sw, int c,
                     cvx_interp interp);

/* cv2.flip(img, 1) in place. */
void cvx_flip_horizontal(double *img, int h, int w, int c);

#endif
