/* augment.h - the official PASCAL-Context transforms of scale-lab/MTLoRA
 * (data/mtl_ds.py get_transformations, data/custom_transforms.py) on one
 * decoded record, exact to OpenCV's and numpy's arithmetic:
 *
 * train: RandomHorizontalFlip (p = 0.5; normals' x negated)
 *        ScaleNRotate rot U(-20, 20) deg, scale U(0.75, 1.25) about the
 *          image centre, warpAffine at the record's own size, zero border;
 *          image and normals bicubic, every other label nearest; normals
 *          first turned in-plane by the same angle
 *        FixedResize to S x S (image, normals bicubic; labels nearest;
 *          normals renormalised to unit length, + float64 eps)
 *        AddIgnoreRegions (zero normals -> 255; an all-zero parts map -> 255)
 *        ToTensor (image truncated to uint8 the way numpy's astype does:
 *          toward zero, then modulo 256), Normalize (ImageNet mean/std, float32)
 * val:   FixedResize, AddIgnoreRegions, ToTensor, Normalize.
 *
 * Random draws come from the caller (three uniforms), so the same draws
 * give the same sample on any thread. */
#ifndef MTLORA_AUGMENT_H
#define MTLORA_AUGMENT_H

#include <stdint.h>
#include "mtlora/base/status.h"

/* One decoded record at its original size h x w. NULL = task absent. */
typedef struct {
    int h, w;
    const uint8_t *image;        /* h*w*3 RGB */
    const uint8_t *semseg;       /* h*w, 0..20 or 255 */
    const uint8_t *human_parts;  /* h*w, 0..6 (all 0: no annotated person) */
    const uint8_t *sal;          /* h*w, 0/1 */
    const uint8_t *edge;         /* h*w, 0/1 */
    const uint8_t *normals;      /* h*w*3 distilled PNG values v (n = 2v/255 - 1) */
    const uint8_t *normals_mask; /* h*w, 1 where the normals are kept (valid class) */
} aug_record;

typedef struct {
    int flip;     /* 1 = flipped */
    double rot;   /* degrees */
    double scale;
} aug_draw;

/* The official formulas on uniforms in [0, 1): flip = u0 < 0.5,
 * rot = 40 u1 - 20, scale = 0.5 u2 - 0.25 + 1. */
aug_draw aug_draw_from_uniforms(double u0, double u1, double u2);

/* Output of one sample at S x S, caller-owned buffers (NULL to skip a task):
 * image [3, S, S] normalised float32; semseg, human_parts [S, S] uint8
 * (255 = ignore); sal, edge [S, S] float32 0/1; normals [3, S, S] float32,
 * 255 where ignored. */
typedef struct {
    float *image;
    uint8_t *semseg;
    uint8_t *human_parts;
    float *sal;
    float *edge;
    float *normals;
} aug_output;

/* draw == NULL: the validation transform. Scratch is allocated per call.
 * MT_ERR_ARG on a NULL image or bad sizes, MT_ERR_NOMEM. */
mt_status aug_apply(const aug_record *rec, const aug_draw *draw, int S, aug_output *out);

/* ImageNet mean / std used by Normalize. */
extern const float aug_imagenet_mean[3], aug_imagenet_std[3];

#endif
