/* scene_draw.h - the synthetic scene's private toolkit: the class ids it
 * uses, one image's random draws, smooth noise, and the canvas that object
 * shapes are painted on (scene_paint.c). Not part of the data layer's
 * contract: only the scene_*.c files and synthetic_scene.c include it. */
#ifndef MTLORA_SCENE_DRAW_H
#define MTLORA_SCENE_DRAW_H

#include <stdint.h>

#include "mtlora/base/rng.h"

#define SCENE_PI 3.14159265358979323846

/* PASCAL-Context ids of the background classes (context_classes.json);
 * none of them is the context id of a VOC class, so a background pixel can
 * never be mistaken for an object one. */
enum {
    CTX_BUILDING = 44, CTX_CABINET = 46, CTX_CEILING = 68, CTX_CURTAIN = 105, CTX_DOOR = 115,
    CTX_FLOOR = 158, CTX_GRASS = 187, CTX_GROUND = 189, CTX_MOUNTAIN = 259, CTX_ROAD = 324,
    CTX_SKY = 360, CTX_TREE = 420, CTX_WALL = 440, CTX_WATER = 445, CTX_WINDOW = 454,
};

enum {
    VOC_AEROPLANE = 1, VOC_BICYCLE, VOC_BIRD, VOC_BOAT, VOC_BOTTLE, VOC_BUS, VOC_CAR, VOC_CAT,
    VOC_CHAIR, VOC_COW, VOC_DININGTABLE, VOC_DOG, VOC_HORSE, VOC_MOTORBIKE, VOC_PERSON,
    VOC_POTTEDPLANT, VOC_SHEEP, VOC_SOFA, VOC_TRAIN, VOC_TVMONITOR
};

/* ---- draws ------------------------------------------------------------
 * One image's draw sequence: the counter advances, the seed is the image's.
 * The order of the draws IS the scene: moving one changes every image. */
typedef struct {
    uint64_t seed, counter;
} draws;

static inline double draw_unit(draws *d) {
    return (double)(mt_rng_bits(d->seed, d->counter++) >> 11) * (1.0 / 9007199254740992.0);
}
static inline double draw_between(draws *d, double lo, double hi) {
    return lo + (hi - lo) * draw_unit(d);
}
static inline int draw_int(draws *d, int lo, int hi) { /* inclusive */
    return lo + (int)(draw_unit(d) * (double)(hi - lo + 1));
}
static inline int draw_chance(draws *d, double p) { return draw_unit(d) < p; }

#define PICK(d, table) (table)[draw_int((d), 0, (int)(sizeof(table) / sizeof((table)[0])) - 1)]

static inline double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Smooth noise in [0, 1) at (x, y), features about `cell` pixels wide. */
float value_noise(uint64_t seed, double x, double y, double cell);

void set_rgb(float out[3], const uint8_t c[3], double f);
/* A colour varied per instance so that a class is a colour family, not one value. */
void jitter_colour(draws *d, const uint8_t base[3], float amount, float out[3]);

/* ---- canvas: an object's region codes over its padded box ---------------
 * Shapes are given in box units: u across the box width, v down its height,
 * radii of discs and capsules in box heights (so they stay round). Painting
 * writes code at every pixel whose centre is inside the shape (painter's
 * order: later shapes cover earlier ones, code 0 cuts holes). */
typedef struct {
    uint8_t *code; /* region code per pixel, 0 = not the object */
    int w, h;      /* canvas size */
    double x0, y0; /* canvas position of the box's top-left corner */
    double bw, bh; /* box size in pixels */
    int flip;      /* mirrored left-right */
} canvas;

/* ru in box widths, rv in box heights. */
void paint_ellipse(canvas *c, double u, double v, double ru, double rv, uint8_t code);
void paint_disc(canvas *c, double u, double v, double r, uint8_t code);
void paint_ring(canvas *c, double u, double v, double r_out, double r_in, uint8_t code);
void paint_capsule(canvas *c, double u0, double v0, double u1, double v1, double r, uint8_t code);
void paint_rect(canvas *c, double u0, double v0, double u1, double v1, uint8_t code);
void paint_triangle(canvas *c, double u0, double v0, double u1, double v1, double u2, double v2,
                    uint8_t code);
/* Corners in order around the quadrilateral (convex). */
void paint_quad(canvas *c, const double q[8], uint8_t code);

#endif
