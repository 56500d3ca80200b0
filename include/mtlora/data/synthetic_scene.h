/* synthetic_scene.h - one synthetic PASCAL-Context scene: an RGB image and
 * every label of the multi-task set, computed from a seed alone (no files;
 * io/pascal/synthetic_pascal.c writes them in the official layout).
 *
 * A scene is a background of context classes (some normals-valid such as
 * wall/floor/ceiling, some not such as sky/grass), 1..4 objects of the 20
 * VOC classes (each class a shape and a colour/texture of its own so a
 * model can learn them), people built from the official part names (head,
 * torso, arms, hands, legs, feet ...), saliency = the foreground objects,
 * normals from a smooth height field of the objects over a tilted
 * background plane. It is built as label maps first (instance, region code
 * inside the object), and every output is derived from those maps, which
 * keeps the tasks consistent with each other by construction.
 *
 * Deterministic: the same (image_seed, sides) gives the same bytes, on any
 * thread, in any order. No global state; thread-safe. */
#ifndef MTLORA_SYNTHETIC_SCENE_H
#define MTLORA_SYNTHETIC_SCENE_H

#include <stdint.h>
#include "mtlora/base/status.h"

#define SYNTHETIC_SCENE_MAX_OBJECTS 4
#define SYNTHETIC_SCENE_MIN_SIDE 32   /* smaller scenes lose the thin parts */
#define SYNTHETIC_SCENE_MAX_SIDE 4096
/* Person part codes run 1..SYNTHETIC_SCENE_PART_CODES - 1. */
#define SYNTHETIC_SCENE_PART_CODES 17

/* All planes are row-major h x w (x 3 for rgb and normals), malloc'd. */
typedef struct {
    int w, h;
    uint8_t *inst;     /* 0 background, k + 1 = object k */
    uint8_t *code;     /* region code of the visible object; for a person,
                          its part code (synthetic_scene_part_name) */
    uint16_t *context; /* PASCAL-Context ids 1..459 (the LabelMap) */
    uint8_t *semseg;   /* VOC class 0..20 */
    uint8_t *sal;      /* 255 salient (an object), 0 not */
    uint8_t *rgb;      /* the image, RGB */
    uint8_t *normals;  /* v = round((n + 1) / 2 * 255): R = x right, G = y DOWN,
                          B = z towards the camera (NYU Depth v2's convention) */
    int nobj;
    int voc[SYNTHETIC_SCENE_MAX_OBJECTS]; /* class of object k, farthest first
                                             (painter's order); may be hidden */
} synthetic_scene;

/* Builds the scene of image_seed, its sides drawn in [min_side, max_side]
 * (within SYNTHETIC_SCENE_MIN_SIDE..MAX_SIDE, else MT_ERR_ARG). On failure
 * (MT_ERR_ARG, MT_ERR_NOMEM) *s is left zeroed, holding nothing. */
mt_status synthetic_scene_build(synthetic_scene *s, uint64_t image_seed, int min_side,
                                int max_side);
/* Frees the planes; safe on a zeroed or freed scene. */
void synthetic_scene_free(synthetic_scene *s);

/* PASCAL-Part name of a person part code ("hair", "head", ... "rfoot"),
 * NULL for 0 or a code past the last. */
const char *synthetic_scene_part_name(int code);

#endif
