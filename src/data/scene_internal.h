/* scene_internal.h - the pieces of a synthetic scene, shared by the files
 * that build one: class looks (scene_classes.c), people (scene_person.c),
 * objects (scene_object.c) and the background (scene_background.c);
 * synthetic_scene.c puts them together. Private to the data layer. */
#ifndef MTLORA_SCENE_INTERNAL_H
#define MTLORA_SCENE_INTERNAL_H

#include <stdint.h>

#include "mtlora/base/status.h"
#include "scene_draw.h"

/* ---- class looks ----------------------------------------------------------
 * Region codes: 1 body (class colour and texture), 2 dark accent (tyres,
 * frames, manes), 3 light detail (windows, sails, beaks). Each class has a
 * silhouette of its own so semseg is learnable from shape as well as colour. */
enum { R_BODY = 1, R_ACCENT = 2, R_DETAIL = 3 };

enum { TEX_PLAIN, TEX_METAL, TEX_STRIPES, TEX_SPOTS, TEX_WOOL, TEX_FOLIAGE, TEX_WOOD,
       TEX_FABRIC, TEX_SCREEN };

typedef void (*shape_fn)(canvas *c);

/* What makes each class recognisable: shape, proportions, size relative to
 * a person at the same depth, colour families and texture. */
typedef struct {
    shape_fn shape;     /* NULL for the person (scene_person.c draws people) */
    double aspect;      /* box width / height */
    double scale;       /* box height relative to a person's */
    int texture;        /* of the body region */
    int flies;          /* may be placed in the sky */
    uint8_t body[4][3]; /* colour choices of the body */
    uint8_t accent[3];
    uint8_t detail[3];
} class_look;

/* The look of VOC class voc (1..20). */
const class_look *class_look_of(int voc);

/* ---- people ---------------------------------------------------------------
 * Region codes of a person are its parts, named as PASCAL-Part names them
 * ("l"/"r" are the person's own left/right; people face the camera, so the
 * person's left is on the image's right). P_COUNT is
 * SYNTHETIC_SCENE_PART_CODES. */
enum { P_HAIR = 1, P_HEAD, P_NECK, P_TORSO, P_LUARM, P_RUARM, P_LLARM, P_RLARM, P_LHAND,
       P_RHAND, P_LULEG, P_RULEG, P_LLLEG, P_RLLEG, P_LFOOT, P_RFOOT, P_COUNT };

typedef struct {
    float skin[3], hair[3], shirt[3], pants[3], shoes[3];
    int short_sleeves, shorts;
} person_look;

void person_draw_look(draws *d, person_look *p);
/* A standing person in a random pose over the canvas' box (aspect = box
 * width / height), its parts as region codes. */
void shape_person(canvas *c, draws *d, double aspect);
const float *person_part_colour(const person_look *p, int part);

/* ---- objects ------------------------------------------------------------- */

typedef struct {
    int voc;
    int bx, by, bw, bh;   /* box in image pixels (may leave the image) */
    int pad;              /* canvas margin around the box, room for the bump's blur */
    canvas cv;
    float *gx, *gy;       /* slope of the object's bump, canvas-sized */
    float tilt_x, tilt_y; /* slope of the plane the object's front lies in */
    float body[3];        /* body colour of this instance */
    person_look person;
    double bottom;        /* box bottom in the image, for the painter's order */
} scene_object;

void object_free(scene_object *o);
/* Rasterises the placed object's silhouette and relief on its own canvas
 * (MT_ERR_NOMEM; what was allocated is left for object_free). */
mt_status object_build(scene_object *o, draws *d);
/* Region code of the object at image pixel (x, y), 0 outside it. */
int object_code_at(const scene_object *o, int x, int y);
/* The object's colour at an image pixel, before lighting. */
void object_albedo(const scene_object *o, int code, int x, int y, uint64_t seed, float out[3]);

/* ---- background ---------------------------------------------------------- */

typedef struct {
    int ctx;
    double x0, y0, x1, y1;
    float colour[3];
} bg_feature;

/* Regions of the background, in the order a pixel is tested; feature i is
 * region BG_FEATURE + i. */
enum { BG_LOWER, BG_UPPER, BG_CEILING, BG_SKYLINE, BG_FEATURE };

typedef struct {
    int w, h, indoor;
    double hy, hslope;          /* horizon: y = hy + hslope * (x - w/2) */
    int upper, lower;           /* classes above / below the horizon */
    int ceiling;                /* indoor: ceiling above cy + hslope * (x - w/2) */
    double cy;
    int skyline;                /* outdoor: mountains or trees above the horizon */
    double amp, freq, phase;
    int floor_tiles;
    int nfeat;
    bg_feature feat[3];
    float upper_rgb[3], lower_rgb[3], ceiling_rgb[3], skyline_rgb[3];
    float wall_gx, wall_gy;     /* slope of the vertical planes (walls, sky) */
    float floor_gx, floor_gy;   /* slope of the ground plane (> 0: recedes upwards) */
    double curtain_period;
} background;

void bg_draw(background *bg, draws *d, int w, int h, int indoor, int has_boat);
int bg_region(const background *bg, int x, int y);
int bg_region_ctx(const background *bg, int region);
/* Slope of the background's height field in a region at column x. */
void bg_slope(const background *bg, int region, int x, float *gx, float *gy);
void bg_albedo(const background *bg, int region, int x, int y, uint64_t seed, float out[3]);

#endif
