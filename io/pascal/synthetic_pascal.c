/* synthetic_pascal.c - a generated stand-in for PASCAL-Context multi-task,
 * written in the official layout (see the header).
 *
 * Every image is a pure function of (options, seed, index): its draws come
 * from the counter-based RNG under a per-image seed, and per-pixel noise is
 * hashed from the pixel index, so any number of threads writes the same
 * bytes. One scene is built as label maps first (background region, object
 * instance, region code inside the object = person part), and every output
 * (image, semseg, LabelMap, parts, saliency, normals) is derived from those
 * maps, which keeps the tasks consistent with each other by construction.
 *
 * Normals convention (the one of NYU Depth v2, whose trained network the
 * official normals were distilled from): R = x to the right, G = y DOWN the
 * image, B = z towards the camera; a floor's normal points up, so floors
 * come out purple-ish (G low) and walls facing the camera blue (128,128,255). */
#include "mtlora/io/pascal/synthetic_pascal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <matio.h>

#include "mtlora/io/image_codec.h"
#include "mtlora/data/pascal_classes.h"
#include "mtlora/base/rng.h"

enum { SYN_PATH = 4096, SYN_MAX_OBJECTS = 4, SYN_JPEG_QUALITY = 90, SYN_MIN_SIDE = 32,
       SYN_MAX_SIDE = 4096, SYN_MAX_IMAGES = 999999, SYN_MAX_THREADS = 256, SYN_ID = 32 };
static const double SYN_PI = 3.14159265358979323846;

/* matio's default header holds the creation time, which would make two runs
 * of the same seed differ; a fixed one keeps the files byte-identical. */
static const char MAT_HEADER[] = "MATLAB 5.0 MAT-file, written by mtlora synthetic_pascal";

/* The output folders, relative to the set's root. ImageSets/Parts is not
 * written to: the official loader caches its per-image object list there
 * and fails if the folder is missing. */
static const char *const SYN_DIRS[] = {
    "JPEGImages", "ImageSets/Context", "ImageSets/Parts", "semseg/pascal-context",
    "human_parts", "sal_distill", "normals_distill", "pascal-context/trainval",
};

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

/* ---- draws ------------------------------------------------------------ */

/* One image's draw sequence: the counter advances, the seed is the image's. */
typedef struct {
    uint64_t seed, counter;
} draws;

static double draw_unit(draws *d) {
    return (double)(mt_rng_bits(d->seed, d->counter++) >> 11) * (1.0 / 9007199254740992.0);
}
static double draw_between(draws *d, double lo, double hi) { return lo + (hi - lo) * draw_unit(d); }
static int draw_int(draws *d, int lo, int hi) { /* inclusive */
    return lo + (int)(draw_unit(d) * (double)(hi - lo + 1));
}
static int draw_chance(draws *d, double p) { return draw_unit(d) < p; }

/* Smooth noise in [0, 1): hashed lattice values, bilinearly blended with a
 * smoothstep, so textures look like textures and not like per-pixel grit. */
static float lattice_value(uint64_t seed, int64_t ix, int64_t iy) {
    uint64_t counter = ((uint64_t)(uint32_t)ix << 32) | (uint32_t)iy;
    return (float)(mt_rng_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

static float value_noise(uint64_t seed, double x, double y, double cell) {
    double fx = x / cell, fy = y / cell;
    double x0 = floor(fx), y0 = floor(fy);
    double tx = fx - x0, ty = fy - y0;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    int64_t ix = (int64_t)x0, iy = (int64_t)y0;
    double a = lattice_value(seed, ix, iy), b = lattice_value(seed, ix + 1, iy);
    double c = lattice_value(seed, ix, iy + 1), e = lattice_value(seed, ix + 1, iy + 1);
    return (float)((a + (b - a) * tx) * (1 - ty) + (c + (e - c) * tx) * ty);
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void set_rgb(float out[3], const uint8_t c[3], double f) {
    for (int i = 0; i < 3; i++) out[i] = (float)(c[i] * f);
}

/* A colour varied per instance so that a class is a colour family, not one value. */
static void jitter_colour(draws *d, const uint8_t base[3], float amount, float out[3]) {
    float shared = (float)draw_between(d, -amount, amount);
    for (int i = 0; i < 3; i++)
        out[i] = (float)clampd(base[i] + shared + draw_between(d, -amount / 3, amount / 3), 0, 255);
}

/* ---- canvas: an object's region codes over its padded box --------------- */

/* Shapes are given in box units: u across the box width, v down its height,
 * radii of discs and capsules in box heights (so they stay round). */
typedef struct {
    uint8_t *code; /* region code per pixel, 0 = not the object */
    int w, h;      /* canvas size */
    double x0, y0; /* canvas position of the box's top-left corner */
    double bw, bh; /* box size in pixels */
    int flip;      /* mirrored left-right */
} canvas;

static double canvas_x(const canvas *c, double u) { return c->x0 + (c->flip ? 1.0 - u : u) * c->bw; }
static double canvas_y(const canvas *c, double v) { return c->y0 + v * c->bh; }

typedef int (*inside_fn)(const double *shape, double x, double y);

/* Writes code at every pixel whose centre is inside the shape (painter's
 * order: later shapes cover earlier ones, code 0 cuts holes). */
static void paint(canvas *c, double x0, double y0, double x1, double y1, inside_fn inside,
                  const double *shape, uint8_t code) {
    int ix0 = clampi((int)floor(x0) - 1, 0, c->w), ix1 = clampi((int)ceil(x1) + 1, 0, c->w);
    int iy0 = clampi((int)floor(y0) - 1, 0, c->h), iy1 = clampi((int)ceil(y1) + 1, 0, c->h);
    for (int y = iy0; y < iy1; y++)
        for (int x = ix0; x < ix1; x++)
            if (inside(shape, x + 0.5, y + 0.5)) c->code[(size_t)y * c->w + x] = code;
}

static int inside_ellipse(const double *s, double x, double y) {
    double dx = (x - s[0]) / s[2], dy = (y - s[1]) / s[3];
    return dx * dx + dy * dy <= 1.0;
}

static int inside_annulus(const double *s, double x, double y) {
    double d2 = (x - s[0]) * (x - s[0]) + (y - s[1]) * (y - s[1]);
    return d2 <= s[2] * s[2] && d2 >= s[3] * s[3];
}

static int inside_capsule(const double *s, double x, double y) {
    double ax = s[0], ay = s[1], dx = s[2] - ax, dy = s[3] - ay;
    double len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? clampd(((x - ax) * dx + (y - ay) * dy) / len2, 0, 1) : 0;
    double ex = x - (ax + t * dx), ey = y - (ay + t * dy);
    return ex * ex + ey * ey <= s[4] * s[4];
}

static int inside_triangle(const double *s, double x, double y) {
    double d0 = (s[2] - s[0]) * (y - s[1]) - (s[3] - s[1]) * (x - s[0]);
    double d1 = (s[4] - s[2]) * (y - s[3]) - (s[5] - s[3]) * (x - s[2]);
    double d2 = (s[0] - s[4]) * (y - s[5]) - (s[1] - s[5]) * (x - s[4]);
    return (d0 >= 0 && d1 >= 0 && d2 >= 0) || (d0 <= 0 && d1 <= 0 && d2 <= 0);
}

/* ru in box widths, rv in box heights. */
static void paint_ellipse(canvas *c, double u, double v, double ru, double rv, uint8_t code) {
    double s[4] = {canvas_x(c, u), canvas_y(c, v), fmax(ru * c->bw, 0.6), fmax(rv * c->bh, 0.6)};
    paint(c, s[0] - s[2], s[1] - s[3], s[0] + s[2], s[1] + s[3], inside_ellipse, s, code);
}

static void paint_disc(canvas *c, double u, double v, double r, uint8_t code) {
    paint_ellipse(c, u, v, r * c->bh / c->bw, r, code);
}

static void paint_ring(canvas *c, double u, double v, double r_out, double r_in, uint8_t code) {
    double s[4] = {canvas_x(c, u), canvas_y(c, v), fmax(r_out * c->bh, 1.0), r_in * c->bh};
    if (s[2] - s[3] < 0.8) s[3] = s[2] - 0.8; /* keep thin tyres visible at small sizes */
    paint(c, s[0] - s[2], s[1] - s[2], s[0] + s[2], s[1] + s[2], inside_annulus, s, code);
}

/* Thin parts never go below ~1.5 px wide, so bicycles survive small images. */
static void paint_capsule(canvas *c, double u0, double v0, double u1, double v1, double r,
                          uint8_t code) {
    double s[5] = {canvas_x(c, u0), canvas_y(c, v0), canvas_x(c, u1), canvas_y(c, v1),
                   fmax(r * c->bh, 0.75)};
    paint(c, fmin(s[0], s[2]) - s[4], fmin(s[1], s[3]) - s[4], fmax(s[0], s[2]) + s[4],
          fmax(s[1], s[3]) + s[4], inside_capsule, s, code);
}

static void paint_rect(canvas *c, double u0, double v0, double u1, double v1, uint8_t code) {
    double xa = canvas_x(c, u0), xb = canvas_x(c, u1);
    double ya = canvas_y(c, v0), yb = canvas_y(c, v1);
    int ix0 = clampi((int)lround(fmin(xa, xb)), 0, c->w), ix1 = clampi((int)lround(fmax(xa, xb)), 0, c->w);
    int iy0 = clampi((int)lround(fmin(ya, yb)), 0, c->h), iy1 = clampi((int)lround(fmax(ya, yb)), 0, c->h);
    if (ix1 == ix0 && ix1 < c->w) ix1++; /* at least one pixel wide */
    if (iy1 == iy0 && iy1 < c->h) iy1++;
    for (int y = iy0; y < iy1; y++) memset(c->code + (size_t)y * c->w + ix0, code, (size_t)(ix1 - ix0));
}

static void paint_triangle(canvas *c, double u0, double v0, double u1, double v1, double u2,
                           double v2, uint8_t code) {
    double s[6] = {canvas_x(c, u0), canvas_y(c, v0), canvas_x(c, u1), canvas_y(c, v1),
                   canvas_x(c, u2), canvas_y(c, v2)};
    paint(c, fmin(s[0], fmin(s[2], s[4])), fmin(s[1], fmin(s[3], s[5])),
          fmax(s[0], fmax(s[2], s[4])), fmax(s[1], fmax(s[3], s[5])), inside_triangle, s, code);
}

/* Corners in order around the quadrilateral (convex). */
static void paint_quad(canvas *c, const double q[8], uint8_t code) {
    paint_triangle(c, q[0], q[1], q[2], q[3], q[4], q[5], code);
    paint_triangle(c, q[0], q[1], q[4], q[5], q[6], q[7], code);
}

/* ---- class shapes ---------------------------------------------------------
 * Region codes: 1 body (class colour and texture), 2 dark accent (tyres,
 * frames, manes), 3 light detail (windows, sails, beaks). Each class has a
 * silhouette of its own so semseg is learnable from shape as well as colour. */
enum { R_BODY = 1, R_ACCENT = 2, R_DETAIL = 3 };

static void shape_aeroplane(canvas *c) {
    paint_ellipse(c, 0.5, 0.55, 0.48, 0.13, R_BODY);
    paint_triangle(c, 0.35, 0.55, 0.62, 0.55, 0.45, 0.98, R_BODY);
    paint_triangle(c, 0.40, 0.50, 0.56, 0.50, 0.50, 0.22, R_BODY);
    paint_triangle(c, 0.03, 0.52, 0.18, 0.52, 0.05, 0.10, R_DETAIL);
    paint_ellipse(c, 0.88, 0.50, 0.05, 0.06, R_ACCENT);
}

static void shape_bicycle(canvas *c) {
    paint_ring(c, 0.22, 0.70, 0.28, 0.22, R_ACCENT);
    paint_ring(c, 0.78, 0.70, 0.28, 0.22, R_ACCENT);
    const double bars[][4] = {{0.22, 0.70, 0.45, 0.40}, {0.45, 0.40, 0.75, 0.40},
                              {0.45, 0.40, 0.50, 0.72}, {0.50, 0.72, 0.22, 0.70},
                              {0.75, 0.40, 0.78, 0.70}, {0.45, 0.40, 0.42, 0.22},
                              {0.75, 0.40, 0.72, 0.18}, {0.50, 0.72, 0.75, 0.40}};
    for (size_t i = 0; i < sizeof bars / sizeof bars[0]; i++)
        paint_capsule(c, bars[i][0], bars[i][1], bars[i][2], bars[i][3], 0.025, R_BODY);
    paint_capsule(c, 0.36, 0.21, 0.48, 0.21, 0.035, R_ACCENT);
    paint_capsule(c, 0.66, 0.18, 0.80, 0.17, 0.022, R_DETAIL);
}

static void shape_bird(canvas *c) {
    paint_triangle(c, 0.22, 0.50, 0.00, 0.38, 0.02, 0.68, R_BODY);
    paint_ellipse(c, 0.45, 0.55, 0.30, 0.22, R_BODY);
    paint_disc(c, 0.76, 0.34, 0.16, R_BODY);
    paint_triangle(c, 0.86, 0.29, 1.00, 0.37, 0.86, 0.43, R_DETAIL);
    paint_ellipse(c, 0.40, 0.50, 0.22, 0.10, R_ACCENT);
    paint_capsule(c, 0.42, 0.74, 0.42, 0.98, 0.02, R_DETAIL);
    paint_capsule(c, 0.52, 0.74, 0.54, 0.98, 0.02, R_DETAIL);
}

static void shape_boat(canvas *c) {
    const double hull[8] = {0.0, 0.62, 1.0, 0.62, 0.86, 0.96, 0.12, 0.96};
    paint_quad(c, hull, R_BODY);
    paint_capsule(c, 0.50, 0.04, 0.50, 0.62, 0.015, R_ACCENT);
    paint_triangle(c, 0.53, 0.08, 0.53, 0.58, 0.90, 0.58, R_DETAIL);
    paint_triangle(c, 0.47, 0.16, 0.47, 0.58, 0.20, 0.58, R_DETAIL);
}

static void shape_bottle(canvas *c) {
    paint_rect(c, 0.10, 0.36, 0.90, 1.00, R_BODY);
    paint_ellipse(c, 0.50, 0.36, 0.40, 0.10, R_BODY);
    paint_rect(c, 0.34, 0.08, 0.66, 0.36, R_BODY);
    paint_rect(c, 0.32, 0.00, 0.68, 0.09, R_ACCENT);
    paint_rect(c, 0.10, 0.56, 0.90, 0.80, R_DETAIL);
}

static void shape_bus(canvas *c) {
    paint_rect(c, 0.00, 0.04, 1.00, 0.86, R_BODY);
    for (int i = 0; i < 5; i++) paint_rect(c, 0.04 + 0.19 * i, 0.14, 0.18 + 0.19 * i, 0.44, R_DETAIL);
    paint_disc(c, 0.20, 0.86, 0.13, R_ACCENT);
    paint_disc(c, 0.80, 0.86, 0.13, R_ACCENT);
}

static void shape_car(canvas *c) {
    const double cabin[8] = {0.20, 0.42, 0.80, 0.42, 0.66, 0.06, 0.32, 0.06};
    const double glass[8] = {0.27, 0.40, 0.73, 0.40, 0.63, 0.12, 0.35, 0.12};
    paint_quad(c, cabin, R_BODY);
    paint_quad(c, glass, R_DETAIL);
    paint_rect(c, 0.00, 0.40, 1.00, 0.82, R_BODY);
    paint_disc(c, 0.22, 0.80, 0.18, R_ACCENT);
    paint_disc(c, 0.78, 0.80, 0.18, R_ACCENT);
}

static void shape_cat(canvas *c) {
    paint_capsule(c, 0.14, 0.55, 0.03, 0.12, 0.05, R_BODY);
    paint_ellipse(c, 0.45, 0.60, 0.33, 0.25, R_BODY);
    paint_capsule(c, 0.30, 0.75, 0.30, 0.96, 0.06, R_BODY);
    paint_capsule(c, 0.62, 0.75, 0.62, 0.96, 0.06, R_BODY);
    paint_disc(c, 0.80, 0.36, 0.20, R_BODY);
    paint_triangle(c, 0.66, 0.28, 0.72, 0.02, 0.80, 0.20, R_BODY);
    paint_triangle(c, 0.82, 0.20, 0.90, 0.02, 0.95, 0.28, R_BODY);
    paint_ellipse(c, 0.76, 0.32, 0.03, 0.04, R_DETAIL);
    paint_ellipse(c, 0.87, 0.32, 0.03, 0.04, R_DETAIL);
}

static void shape_chair(canvas *c) {
    paint_rect(c, 0.10, 0.00, 0.90, 0.48, R_BODY);
    paint_rect(c, 0.22, 0.10, 0.78, 0.38, 0); /* open backrest */
    paint_rect(c, 0.04, 0.48, 0.96, 0.60, R_BODY);
    paint_rect(c, 0.08, 0.60, 0.17, 1.00, R_ACCENT);
    paint_rect(c, 0.83, 0.60, 0.92, 1.00, R_ACCENT);
    paint_rect(c, 0.30, 0.60, 0.37, 0.90, R_ACCENT);
    paint_rect(c, 0.63, 0.60, 0.70, 0.90, R_ACCENT);
}

static void shape_cow(canvas *c) {
    const double legs[4] = {0.20, 0.32, 0.62, 0.72};
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.55, legs[i], 0.97, 0.045, R_BODY);
    paint_ellipse(c, 0.45, 0.45, 0.38, 0.25, R_BODY);
    paint_rect(c, 0.14, 0.28, 0.76, 0.62, R_BODY);
    paint_capsule(c, 0.08, 0.32, 0.03, 0.65, 0.02, R_ACCENT);
    paint_ellipse(c, 0.88, 0.36, 0.10, 0.16, R_BODY);
    paint_triangle(c, 0.82, 0.22, 0.84, 0.08, 0.87, 0.22, R_DETAIL);
    paint_triangle(c, 0.90, 0.22, 0.94, 0.08, 0.95, 0.22, R_DETAIL);
    paint_ellipse(c, 0.92, 0.48, 0.06, 0.06, R_ACCENT);
}

static void shape_diningtable(canvas *c) {
    const double top[8] = {0.10, 0.00, 0.90, 0.00, 1.00, 0.22, 0.00, 0.22};
    paint_quad(c, top, R_DETAIL);
    paint_rect(c, 0.00, 0.22, 1.00, 0.32, R_BODY);
    paint_rect(c, 0.05, 0.32, 0.95, 0.40, R_BODY);
    paint_rect(c, 0.06, 0.32, 0.13, 1.00, R_ACCENT);
    paint_rect(c, 0.87, 0.32, 0.94, 1.00, R_ACCENT);
    paint_rect(c, 0.22, 0.32, 0.27, 0.86, R_ACCENT);
    paint_rect(c, 0.73, 0.32, 0.78, 0.86, R_ACCENT);
}

static void shape_dog(canvas *c) {
    const double legs[4] = {0.24, 0.34, 0.58, 0.68};
    paint_capsule(c, 0.16, 0.45, 0.05, 0.22, 0.03, R_BODY);
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.55, legs[i], 0.97, 0.05, R_BODY);
    paint_ellipse(c, 0.45, 0.50, 0.32, 0.20, R_BODY);
    paint_disc(c, 0.80, 0.30, 0.15, R_BODY);
    paint_ellipse(c, 0.94, 0.36, 0.07, 0.07, R_BODY);
    paint_ellipse(c, 0.74, 0.36, 0.05, 0.13, R_ACCENT);
    paint_disc(c, 0.99, 0.33, 0.03, R_DETAIL);
}

static void shape_horse(canvas *c) {
    const double legs[4] = {0.22, 0.32, 0.60, 0.70};
    paint_capsule(c, 0.16, 0.36, 0.06, 0.72, 0.035, R_ACCENT);
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.50, legs[i] - 0.02, 0.98, 0.035, R_BODY);
    paint_ellipse(c, 0.45, 0.44, 0.32, 0.17, R_BODY);
    paint_capsule(c, 0.70, 0.40, 0.80, 0.14, 0.08, R_BODY);
    paint_capsule(c, 0.66, 0.30, 0.76, 0.06, 0.03, R_ACCENT);
    paint_capsule(c, 0.80, 0.12, 0.96, 0.26, 0.06, R_BODY);
}

static void shape_motorbike(canvas *c) {
    paint_disc(c, 0.20, 0.72, 0.26, R_ACCENT);
    paint_disc(c, 0.80, 0.72, 0.26, R_ACCENT);
    paint_disc(c, 0.20, 0.72, 0.09, R_DETAIL);
    paint_disc(c, 0.80, 0.72, 0.09, R_DETAIL);
    paint_capsule(c, 0.80, 0.72, 0.70, 0.22, 0.03, R_DETAIL);
    paint_rect(c, 0.38, 0.52, 0.62, 0.72, R_DETAIL);
    paint_ellipse(c, 0.52, 0.45, 0.22, 0.14, R_BODY);
    paint_capsule(c, 0.26, 0.40, 0.48, 0.38, 0.05, R_ACCENT);
    paint_capsule(c, 0.64, 0.20, 0.78, 0.18, 0.025, R_DETAIL);
}

static void shape_pottedplant(canvas *c) {
    paint_capsule(c, 0.50, 0.70, 0.50, 0.30, 0.03, R_BODY);
    paint_disc(c, 0.50, 0.34, 0.22, R_BODY);
    paint_disc(c, 0.28, 0.46, 0.16, R_BODY);
    paint_disc(c, 0.72, 0.44, 0.16, R_BODY);
    paint_disc(c, 0.48, 0.14, 0.13, R_BODY);
    const double pot[8] = {0.20, 0.64, 0.80, 0.64, 0.70, 1.00, 0.30, 1.00};
    paint_quad(c, pot, R_ACCENT);
    paint_rect(c, 0.17, 0.62, 0.83, 0.68, R_DETAIL);
}

static void shape_sheep(canvas *c) {
    const double legs[4] = {0.25, 0.35, 0.60, 0.70};
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.60, legs[i], 0.97, 0.03, R_ACCENT);
    paint_ellipse(c, 0.45, 0.45, 0.34, 0.22, R_BODY);
    for (int i = 0; i < 6; i++) {
        double u = 0.18 + 0.11 * i;
        paint_disc(c, u, 0.30 + 0.04 * (i % 2), 0.12, R_BODY);
        paint_disc(c, u, 0.60 - 0.04 * (i % 2), 0.12, R_BODY);
    }
    paint_ellipse(c, 0.87, 0.40, 0.08, 0.13, R_ACCENT);
    paint_ellipse(c, 0.82, 0.30, 0.05, 0.04, R_ACCENT);
}

static void shape_sofa(canvas *c) {
    paint_rect(c, 0.06, 0.08, 0.94, 0.56, R_BODY);
    paint_rect(c, 0.06, 0.52, 0.94, 0.82, R_BODY);
    paint_rect(c, 0.495, 0.54, 0.505, 0.80, R_DETAIL); /* seam between the cushions */
    paint_rect(c, 0.00, 0.30, 0.12, 0.86, R_ACCENT);
    paint_rect(c, 0.88, 0.30, 1.00, 0.86, R_ACCENT);
    paint_rect(c, 0.06, 0.86, 0.11, 1.00, R_DETAIL);
    paint_rect(c, 0.89, 0.86, 0.94, 1.00, R_DETAIL);
}

static void shape_train(canvas *c) {
    paint_rect(c, 0.00, 0.08, 0.94, 0.86, R_BODY);
    paint_ellipse(c, 0.94, 0.47, 0.06, 0.39, R_BODY);
    for (int i = 0; i < 6; i++) paint_rect(c, 0.03 + 0.15 * i, 0.18, 0.13 + 0.15 * i, 0.42, R_DETAIL);
    paint_rect(c, 0.00, 0.58, 1.00, 0.66, R_ACCENT);
    for (int i = 0; i < 6; i++) paint_disc(c, 0.08 + 0.16 * i, 0.90, 0.09, R_ACCENT);
}

static void shape_tvmonitor(canvas *c) {
    paint_rect(c, 0.00, 0.00, 1.00, 0.80, R_ACCENT);
    paint_rect(c, 0.06, 0.06, 0.94, 0.73, R_BODY);
    paint_rect(c, 0.45, 0.80, 0.55, 0.91, R_ACCENT);
    paint_rect(c, 0.28, 0.91, 0.72, 1.00, R_DETAIL);
}

typedef void (*shape_fn)(canvas *c);

enum { TEX_PLAIN, TEX_METAL, TEX_STRIPES, TEX_SPOTS, TEX_WOOL, TEX_FOLIAGE, TEX_WOOD,
       TEX_FABRIC, TEX_SCREEN };

/* What makes each class recognisable: shape, proportions, size relative to
 * a person at the same depth, colour families and texture. */
typedef struct {
    shape_fn shape;
    double aspect;      /* box width / height */
    double scale;       /* box height relative to a person's */
    int texture;        /* of the body region */
    int flies;          /* may be placed in the sky */
    uint8_t body[4][3]; /* colour choices of the body */
    uint8_t accent[3];
    uint8_t detail[3];
} class_look;

static const class_look CLASS_LOOKS[PASCAL_VOC_CLASSES] = {
    [VOC_AEROPLANE] = {shape_aeroplane, 2.2, 1.3, TEX_METAL, 1,
                       {{225, 225, 230}, {200, 205, 215}, {235, 235, 235}, {190, 195, 200}},
                       {40, 50, 70}, {180, 30, 40}},
    [VOC_BICYCLE] = {shape_bicycle, 1.5, 0.6, TEX_PLAIN, 0,
                     {{200, 30, 30}, {30, 60, 170}, {30, 30, 30}, {40, 140, 60}},
                     {25, 25, 25}, {170, 170, 175}},
    [VOC_BIRD] = {shape_bird, 1.2, 0.3, TEX_WOOL, 1,
                  {{120, 90, 60}, {90, 90, 95}, {60, 90, 160}, {200, 180, 60}},
                  {60, 45, 35}, {230, 140, 30}},
    [VOC_BOAT] = {shape_boat, 1.3, 0.9, TEX_PLAIN, 0,
                  {{230, 230, 230}, {170, 40, 40}, {40, 60, 130}, {200, 170, 60}},
                  {50, 40, 30}, {240, 240, 235}},
    [VOC_BOTTLE] = {shape_bottle, 0.35, 0.35, TEX_METAL, 0,
                    {{40, 110, 60}, {110, 60, 20}, {170, 200, 190}, {60, 90, 150}},
                    {200, 180, 40}, {230, 220, 200}},
    [VOC_BUS] = {shape_bus, 1.8, 1.5, TEX_METAL, 0,
                 {{230, 190, 30}, {190, 30, 30}, {225, 225, 225}, {40, 90, 170}},
                 {20, 20, 20}, {60, 80, 100}},
    [VOC_CAR] = {shape_car, 2.0, 0.75, TEX_METAL, 0,
                 {{190, 25, 25}, {35, 70, 160}, {180, 180, 185}, {30, 30, 35}},
                 {20, 20, 20}, {55, 65, 80}},
    [VOC_CAT] = {shape_cat, 1.2, 0.35, TEX_STRIPES, 0,
                 {{210, 130, 50}, {120, 120, 120}, {45, 40, 40}, {225, 220, 210}},
                 {60, 40, 30}, {120, 180, 60}},
    [VOC_CHAIR] = {shape_chair, 0.7, 0.55, TEX_WOOD, 0,
                   {{130, 85, 45}, {45, 45, 45}, {215, 215, 210}, {150, 40, 40}},
                   {90, 60, 30}, {200, 200, 200}},
    [VOC_COW] = {shape_cow, 1.5, 0.85, TEX_SPOTS, 0,
                 {{235, 235, 230}, {120, 70, 40}, {200, 190, 170}, {150, 100, 60}},
                 {30, 25, 25}, {220, 210, 180}},
    [VOC_DININGTABLE] = {shape_diningtable, 1.8, 0.5, TEX_WOOD, 0,
                         {{140, 95, 55}, {100, 65, 35}, {180, 140, 90}, {220, 215, 205}},
                         {80, 50, 25}, {200, 160, 110}},
    [VOC_DOG] = {shape_dog, 1.3, 0.45, TEX_PLAIN, 0,
                 {{190, 150, 100}, {110, 70, 40}, {35, 30, 30}, {225, 220, 210}},
                 {70, 45, 25}, {30, 20, 20}},
    [VOC_HORSE] = {shape_horse, 1.3, 1.1, TEX_PLAIN, 0,
                   {{120, 70, 35}, {150, 80, 40}, {40, 30, 25}, {200, 195, 190}},
                   {30, 20, 15}, {230, 225, 215}},
    [VOC_MOTORBIKE] = {shape_motorbike, 1.5, 0.7, TEX_METAL, 0,
                       {{190, 30, 30}, {30, 30, 30}, {40, 80, 170}, {230, 140, 20}},
                       {20, 20, 20}, {180, 180, 190}},
    [VOC_PERSON] = {NULL, 0.9, 1.0, TEX_PLAIN, 0, {{0}}, {0}, {0}},
    [VOC_POTTEDPLANT] = {shape_pottedplant, 0.7, 0.45, TEX_FOLIAGE, 0,
                         {{50, 120, 40}, {70, 140, 50}, {40, 100, 60}, {90, 130, 40}},
                         {170, 90, 50}, {120, 70, 40}},
    [VOC_SHEEP] = {shape_sheep, 1.4, 0.55, TEX_WOOL, 0,
                   {{225, 220, 205}, {210, 205, 190}, {235, 230, 220}, {190, 180, 165}},
                   {30, 30, 30}, {40, 35, 30}},
    [VOC_SOFA] = {shape_sofa, 2.0, 0.6, TEX_FABRIC, 0,
                  {{150, 40, 40}, {200, 180, 150}, {110, 110, 115}, {50, 70, 120}},
                  {90, 70, 60}, {60, 40, 30}},
    [VOC_TRAIN] = {shape_train, 2.5, 1.6, TEX_METAL, 0,
                   {{200, 40, 40}, {40, 80, 160}, {210, 210, 210}, {40, 120, 60}},
                   {30, 30, 30}, {60, 80, 100}},
    [VOC_TVMONITOR] = {shape_tvmonitor, 1.2, 0.4, TEX_SCREEN, 0,
                       {{90, 140, 200}, {60, 170, 120}, {200, 120, 80}, {150, 150, 210}},
                       {25, 25, 28}, {60, 60, 60}},
};

/* ---- people ---------------------------------------------------------------
 * Region codes of a person are its parts, named as PASCAL-Part names them
 * ("l"/"r" are the person's own left/right; people face the camera, so the
 * person's left is on the image's right). */
enum { P_HAIR = 1, P_HEAD, P_NECK, P_TORSO, P_LUARM, P_RUARM, P_LLARM, P_RLARM, P_LHAND,
       P_RHAND, P_LULEG, P_RULEG, P_LLLEG, P_RLLEG, P_LFOOT, P_RFOOT, P_COUNT };

static const char *const PERSON_PART_NAMES[P_COUNT] = {
    NULL, "hair", "head", "neck", "torso", "luarm", "ruarm", "llarm", "rlarm",
    "lhand", "rhand", "luleg", "ruleg", "llleg", "rlleg", "lfoot", "rfoot",
};

typedef struct {
    float skin[3], hair[3], shirt[3], pants[3], shoes[3];
    int short_sleeves, shorts;
} person_look;

static const uint8_t SKIN_TONES[][3] = {{240, 200, 170}, {210, 160, 120}, {160, 110, 75}, {100, 65, 45}};
static const uint8_t HAIR_COLOURS[][3] = {{30, 25, 20}, {90, 60, 30}, {200, 170, 100}, {140, 60, 30}, {150, 150, 150}};
static const uint8_t SHIRT_COLOURS[][3] = {{200, 40, 40}, {40, 90, 180}, {235, 235, 235}, {40, 140, 70},
                                           {240, 200, 50}, {30, 30, 30}};
static const uint8_t PANTS_COLOURS[][3] = {{40, 60, 110}, {30, 30, 35}, {170, 150, 110}, {110, 110, 115}};
static const uint8_t SHOE_COLOURS[][3] = {{25, 20, 20}, {90, 60, 40}, {220, 220, 220}};

#define PICK(d, table) (table)[draw_int((d), 0, (int)(sizeof(table) / sizeof((table)[0])) - 1)]

static void person_draw_look(draws *d, person_look *p) {
    jitter_colour(d, PICK(d, SKIN_TONES), 12, p->skin);
    jitter_colour(d, PICK(d, HAIR_COLOURS), 10, p->hair);
    jitter_colour(d, PICK(d, SHIRT_COLOURS), 25, p->shirt);
    jitter_colour(d, PICK(d, PANTS_COLOURS), 15, p->pants);
    jitter_colour(d, PICK(d, SHOE_COLOURS), 10, p->shoes);
    p->short_sleeves = draw_chance(d, 0.4);
    p->shorts = draw_chance(d, 0.25);
}

/* Person coordinates: dx in body heights from the box centre, y down in
 * body heights; the box is aspect (= width/height) wide. */
typedef struct {
    canvas *c;
    double aspect;
} body_pen;

static double body_u(const body_pen *b, double dx) { return 0.5 + dx / b->aspect; }

static void body_limb(const body_pen *b, double x0, double y0, double x1, double y1, double r, int part) {
    paint_capsule(b->c, body_u(b, x0), y0, body_u(b, x1), y1, r, (uint8_t)part);
}

/* One arm or leg: two segments from a joint, angles from straight down
 * (positive = away from the body on that side). Returns the end point. */
static void body_chain(const body_pen *b, double side, double x, double y, const double len[2],
                       const double angle[2], const double radius[2], const int part[2],
                       double end[2]) {
    double mid_x = x + side * len[0] * sin(angle[0]), mid_y = y + len[0] * cos(angle[0]);
    double end_x = mid_x + side * len[1] * sin(angle[1]), end_y = mid_y + len[1] * cos(angle[1]);
    body_limb(b, x, y, mid_x, mid_y, radius[0], part[0]);
    body_limb(b, mid_x, mid_y, end_x, end_y, radius[1], part[1]);
    end[0] = end_x;
    end[1] = end_y;
}

/* A standing person in a random pose, painted back to front: legs, torso,
 * neck, hair, head, then arms (in front of the torso). */
static void shape_person(canvas *c, draws *d, double aspect) {
    body_pen b = {c, aspect};
    double lean = draw_between(d, -0.02, 0.02);
    for (int s = 0; s < 2; s++) {
        double side = s == 0 ? 1.0 : -1.0; /* person's left first */
        double a1 = draw_between(d, -0.05, 0.3), a2 = a1 + draw_between(d, -0.25, 0.1);
        const double len[2] = {0.24, 0.22}, ang[2] = {a1, a2}, rad[2] = {0.05, 0.04};
        const int part[2] = {s == 0 ? P_LULEG : P_RULEG, s == 0 ? P_LLLEG : P_RLLEG};
        double ankle[2];
        body_chain(&b, side, side * 0.06, 0.50, len, ang, rad, part, ankle);
        body_limb(&b, ankle[0], ankle[1] + 0.005, ankle[0] + side * 0.06, ankle[1] + 0.012, 0.022,
                  s == 0 ? P_LFOOT : P_RFOOT);
    }
    const double torso[8] = {body_u(&b, -0.115), 0.19, body_u(&b, 0.115), 0.19,
                             body_u(&b, 0.09), 0.53, body_u(&b, -0.09), 0.53};
    paint_quad(c, torso, P_TORSO);
    body_limb(&b, -0.09, 0.215, 0.09, 0.215, 0.03, P_TORSO);
    paint_rect(c, body_u(&b, lean - 0.026), 0.15, body_u(&b, lean + 0.026), 0.20, P_NECK);
    if (draw_chance(d, 0.85))
        paint_ellipse(c, body_u(&b, lean), 0.073, 0.068 / aspect, 0.066, P_HAIR);
    paint_ellipse(c, body_u(&b, lean), 0.095, 0.060 / aspect, 0.072, P_HEAD);
    for (int s = 0; s < 2; s++) {
        double side = s == 0 ? 1.0 : -1.0;
        double a1 = draw_between(d, -0.1, 1.3);
        double bend = draw_between(d, 0.0, 1.5);
        double a2 = draw_chance(d, 0.5) ? a1 + bend : a1 - bend; /* out/up or across the body */
        const double len[2] = {0.16, 0.15}, ang[2] = {a1, a2}, rad[2] = {0.036, 0.03};
        const int part[2] = {s == 0 ? P_LUARM : P_RUARM, s == 0 ? P_LLARM : P_RLARM};
        double wrist[2];
        body_chain(&b, side, side * 0.105, 0.215, len, ang, rad, part, wrist);
        paint_disc(c, body_u(&b, wrist[0]), wrist[1], 0.03, (uint8_t)(s == 0 ? P_LHAND : P_RHAND));
    }
}

static const float *person_part_colour(const person_look *p, int part) {
    switch (part) {
    case P_HAIR: return p->hair;
    case P_HEAD: case P_NECK: case P_LHAND: case P_RHAND: return p->skin;
    case P_TORSO: case P_LUARM: case P_RUARM: return p->shirt;
    case P_LLARM: case P_RLARM: return p->short_sleeves ? p->skin : p->shirt;
    case P_LULEG: case P_RULEG: return p->pants;
    case P_LLLEG: case P_RLLEG: return p->shorts ? p->skin : p->pants;
    default: return p->shoes;
    }
}

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

static void object_free(scene_object *o) {
    free(o->cv.code);
    free(o->gx);
    free(o->gy);
    o->cv.code = NULL;
    o->gx = o->gy = NULL;
}

/* Box blur of radius r along rows (zero outside the canvas), src -> dst. */
static void blur_rows(const float *src, float *dst, int w, int h, int r, double *line) {
    for (int y = 0; y < h; y++) {
        const float *s = src + (size_t)y * w;
        line[0] = 0;
        for (int x = 0; x < w; x++) line[x + 1] = line[x] + s[x];
        for (int x = 0; x < w; x++) {
            int lo = x - r < 0 ? 0 : x - r, hi = x + r + 1 > w ? w : x + r + 1;
            dst[(size_t)y * w + x] = (float)((line[hi] - line[lo]) / (2 * r + 1));
        }
    }
}

static void transpose(const float *src, float *dst, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) dst[(size_t)x * h + y] = src[(size_t)y * w + x];
}

/* The object's relief: its silhouette blurred twice with a box (a smooth
 * dome with rounded edges), scaled so the edges slope about 1.6, and
 * differentiated. Thin parts come out as rounded ridges. */
static mt_status object_bump(scene_object *o, int r) {
    int w = o->cv.w, h = o->cv.h;
    size_t n = (size_t)w * h;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double *line = malloc(((size_t)(w > h ? w : h) + 1) * sizeof *line);
    o->gx = calloc(n, sizeof *o->gx);
    o->gy = calloc(n, sizeof *o->gy);
    if (!a || !b || !line || !o->gx || !o->gy) {
        free(a), free(b), free(line);
        return MT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) a[i] = o->cv.code[i] != 0;
    for (int pass = 0; pass < 2; pass++) {
        blur_rows(a, b, w, h, r, line);
        transpose(b, a, w, h);
        blur_rows(a, b, h, w, r, line);
        transpose(b, a, h, w);
    }
    float amp = 1.6f * (float)(2 * r + 1);
    for (int y = 1; y + 1 < h; y++)
        for (int x = 1; x + 1 < w; x++) {
            size_t i = (size_t)y * w + x;
            o->gx[i] = amp * 0.5f * (a[i + 1] - a[i - 1]);
            o->gy[i] = amp * 0.5f * (a[i + w] - a[i - w]);
        }
    free(a), free(b), free(line);
    return MT_OK;
}

/* Rasterises the object's silhouette and relief on its own canvas. */
static mt_status object_build(scene_object *o, draws *d) {
    const class_look *look = &CLASS_LOOKS[o->voc];
    int is_person = o->voc == VOC_PERSON;
    int small = o->bw < o->bh ? o->bw : o->bh;
    int r = (int)lround((is_person ? 0.022 : 0.07) * small);
    if (r < 1) r = 1;
    o->pad = 2 * r + 2;
    o->cv.w = o->bw + 2 * o->pad;
    o->cv.h = o->bh + 2 * o->pad;
    o->cv.x0 = o->cv.y0 = o->pad;
    o->cv.bw = o->bw;
    o->cv.bh = o->bh;
    o->cv.flip = is_person ? 0 : draw_chance(d, 0.5);
    o->cv.code = calloc((size_t)o->cv.w * o->cv.h, 1);
    if (!o->cv.code) return MT_ERR_NOMEM;
    if (is_person) {
        shape_person(&o->cv, d, (double)o->bw / o->bh);
        person_draw_look(d, &o->person);
    } else {
        look->shape(&o->cv);
        jitter_colour(d, look->body[draw_int(d, 0, 3)], 18, o->body);
    }
    o->tilt_x = (float)draw_between(d, -0.25, 0.25);
    o->tilt_y = (float)draw_between(d, -0.15, 0.15);
    return object_bump(o, r);
}

static int object_code_at(const scene_object *o, int x, int y) {
    int cx = x - o->bx + o->pad, cy = y - o->by + o->pad;
    if (cx < 0 || cy < 0 || cx >= o->cv.w || cy >= o->cv.h) return 0;
    return o->cv.code[(size_t)cy * o->cv.w + cx];
}

/* The object's colour at an image pixel, before lighting. */
static void object_albedo(const scene_object *o, int code, int x, int y, uint64_t seed, float out[3]) {
    if (o->voc == VOC_PERSON) {
        const float *c = person_part_colour(&o->person, code);
        double f = 0.92 + 0.16 * value_noise(seed, x, y, 3.0);
        for (int i = 0; i < 3; i++) out[i] = (float)(c[i] * f);
        return;
    }
    const class_look *look = &CLASS_LOOKS[o->voc];
    double lu = (x - o->bx) / (double)o->bw, lv = (y - o->by) / (double)o->bh;
    if (code == R_ACCENT) {
        set_rgb(out, look->accent, 0.9 + 0.2 * value_noise(seed, x, y, 3.0));
        return;
    }
    if (code == R_DETAIL) {
        set_rgb(out, look->detail, 0.9 + 0.2 * value_noise(seed, x, y, 5.0));
        return;
    }
    double f = 1.0;
    switch (look->texture) {
    case TEX_METAL: f = 1.15 - 0.35 * lv + 0.1 * value_noise(seed, x, y, 6.0); break;
    case TEX_STRIPES: f = sin(2 * SYN_PI * (x + 0.4 * y) / fmax(3.0, 0.1 * o->bh)) > 0.3 ? 0.55 : 1.0; break;
    case TEX_SPOTS:
        if (value_noise(seed, x, y, fmax(3.0, 0.15 * o->bh)) > 0.6) {
            set_rgb(out, look->accent, 1.0);
            return;
        }
        break;
    case TEX_WOOL: f = 0.75 + 0.5 * value_noise(seed, x, y, 2.0); break;
    case TEX_FOLIAGE: f = 0.5 + 0.9 * value_noise(seed, x, y, 3.0); break;
    case TEX_WOOD: f = 0.85 + 0.15 * sin(2 * SYN_PI * y / fmax(3.0, 0.05 * o->bh) + 4 * value_noise(seed, x, y, 8.0)); break;
    case TEX_FABRIC: f = 0.88 + 0.12 * (((x >> 1) + (y >> 1)) & 1) + 0.05 * value_noise(seed, x, y, 4.0); break;
    case TEX_SCREEN: f = 0.65 + 0.35 * lu + 0.25 * sin(6 * lv); break;
    default: f = 0.9 + 0.2 * value_noise(seed, x, y, 4.0); break;
    }
    for (int i = 0; i < 3; i++) out[i] = (float)(o->body[i] * f);
}

/* ---- background ---------------------------------------------------------- */

typedef struct {
    int ctx;
    double x0, y0, x1, y1;
    float colour[3];
} bg_feature;

/* Regions of the background, in the order a pixel is tested. */
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

typedef struct {
    int ctx;
    uint8_t rgb[3];
} ctx_colour;

static const ctx_colour BG_COLOURS[] = {
    {CTX_WALL, {215, 205, 185}}, {CTX_FLOOR, {150, 105, 65}}, {CTX_CEILING, {235, 235, 228}},
    {CTX_DOOR, {120, 80, 45}},   {CTX_WINDOW, {170, 200, 230}}, {CTX_CURTAIN, {150, 45, 55}},
    {CTX_CABINET, {110, 75, 40}}, {CTX_SKY, {120, 170, 225}},  {CTX_GRASS, {70, 130, 40}},
    {CTX_GROUND, {140, 110, 80}}, {CTX_ROAD, {90, 90, 95}},     {CTX_TREE, {40, 85, 35}},
    {CTX_MOUNTAIN, {110, 115, 135}}, {CTX_WATER, {50, 90, 140}}, {CTX_BUILDING, {160, 150, 140}},
};

static void bg_colour(draws *d, int ctx, float out[3]) {
    for (size_t i = 0; i < sizeof BG_COLOURS / sizeof BG_COLOURS[0]; i++)
        if (BG_COLOURS[i].ctx == ctx) {
            jitter_colour(d, BG_COLOURS[i].rgb, 25, out);
            return;
        }
    out[0] = out[1] = out[2] = 128;
}

static double horizon_at(const background *bg, double x) { return bg->hy + bg->hslope * (x - bg->w / 2.0); }

static void bg_add_feature(background *bg, draws *d, int ctx, double x0, double y0, double x1, double y1) {
    if (bg->nfeat >= 3) return;
    bg_feature *f = &bg->feat[bg->nfeat++];
    f->ctx = ctx;
    f->x0 = x0, f->y0 = y0, f->x1 = x1, f->y1 = y1;
    bg_colour(d, ctx, f->colour);
}

/* Indoors: wall over floor, maybe a ceiling, doors/windows/curtains/
 * cabinets on the wall (all classes with valid normals). */
static void bg_draw_indoor(background *bg, draws *d) {
    int w = bg->w, h = bg->h;
    bg->upper = CTX_WALL;
    bg->lower = CTX_FLOOR;
    bg->ceiling = draw_chance(d, 0.45);
    bg->cy = bg->hy * draw_between(d, 0.15, 0.3);
    bg->floor_tiles = draw_chance(d, 0.5);
    int n = draw_int(d, 0, 2);
    for (int i = 0; i < n; i++) {
        double x0 = draw_between(d, -0.05, 0.8) * w, fw = draw_between(d, 0.12, 0.25) * w;
        double floor_y = horizon_at(bg, x0 + fw / 2);
        switch (draw_int(d, 0, 3)) {
        case 0: bg_add_feature(bg, d, CTX_DOOR, x0, floor_y - 0.45 * h, x0 + fw, floor_y); break;
        case 1: bg_add_feature(bg, d, CTX_WINDOW, x0, bg->cy + 0.08 * h, x0 + fw, floor_y - 0.12 * h); break;
        case 2: bg_add_feature(bg, d, CTX_CURTAIN, x0, bg->cy, x0 + fw, floor_y - 0.02 * h); break;
        default: bg_add_feature(bg, d, CTX_CABINET, x0, floor_y - 0.25 * h, x0 + fw, floor_y + 0.05 * h); break;
        }
    }
}

/* Outdoors: sky over grass/ground/road (water under boats), maybe
 * mountains or trees on the horizon, a building or a garden wall. */
static void bg_draw_outdoor(background *bg, draws *d, int has_boat) {
    int w = bg->w, h = bg->h;
    static const int grounds[] = {CTX_GRASS, CTX_GROUND, CTX_ROAD};
    bg->upper = CTX_SKY;
    bg->lower = has_boat ? CTX_WATER : grounds[draw_int(d, 0, 2)];
    if (draw_chance(d, 0.6)) {
        bg->skyline = draw_chance(d, 0.5) ? CTX_MOUNTAIN : CTX_TREE;
        bg->amp = draw_between(d, 0.05, 0.2) * h;
        bg->freq = draw_between(d, 2.0, 7.0) * 2 * SYN_PI / w;
        bg->phase = draw_between(d, 0, 2 * SYN_PI);
        bg_colour(d, bg->skyline, bg->skyline_rgb);
    }
    if (draw_chance(d, 0.4)) {
        double x0 = draw_between(d, -0.1, 0.7) * w, fw = draw_between(d, 0.15, 0.35) * w;
        double base = horizon_at(bg, x0 + fw / 2);
        bg_add_feature(bg, d, CTX_BUILDING, x0, base - draw_between(d, 0.2, 0.45) * h, x0 + fw, base + 0.01 * h);
    }
    if (draw_chance(d, 0.5)) { /* a garden wall: valid normals outdoors too */
        double x0 = draw_between(d, -0.2, 0.6) * w, fw = draw_between(d, 0.3, 0.6) * w;
        double base = horizon_at(bg, x0 + fw / 2) + 0.04 * h;
        bg_add_feature(bg, d, CTX_WALL, x0, base - draw_between(d, 0.08, 0.16) * h, x0 + fw, base);
    }
}

static void bg_draw(background *bg, draws *d, int w, int h, int indoor, int has_boat) {
    memset(bg, 0, sizeof *bg);
    bg->w = w, bg->h = h, bg->indoor = indoor;
    bg->hy = draw_between(d, indoor ? 0.45 : 0.3, indoor ? 0.7 : 0.6) * h;
    bg->hslope = draw_between(d, -0.08, 0.08);
    bg->wall_gx = (float)draw_between(d, -0.4, 0.4);
    bg->wall_gy = (float)draw_between(d, -0.15, 0.15);
    bg->floor_gx = (float)draw_between(d, -0.3, 0.3);
    bg->floor_gy = (float)draw_between(d, 1.5, 3.5);
    bg->curtain_period = draw_between(d, 0.03, 0.06) * w + 4;
    if (indoor) bg_draw_indoor(bg, d);
    else bg_draw_outdoor(bg, d, has_boat);
    bg_colour(d, bg->upper, bg->upper_rgb);
    bg_colour(d, bg->lower, bg->lower_rgb);
    bg_colour(d, CTX_CEILING, bg->ceiling_rgb);
}

/* Region of a background pixel: BG_FEATURE + i for feature i. */
static int bg_region(const background *bg, int x, int y) {
    double px = x + 0.5, py = y + 0.5;
    for (int i = bg->nfeat - 1; i >= 0; i--) {
        const bg_feature *f = &bg->feat[i];
        if (px >= f->x0 && px < f->x1 && py >= f->y0 && py < f->y1) return BG_FEATURE + i;
    }
    double hor = horizon_at(bg, px);
    if (py >= hor) return BG_LOWER;
    if (bg->ceiling && py < bg->cy + bg->hslope * (px - bg->w / 2.0)) return BG_CEILING;
    if (bg->skyline && py >= hor - bg->amp * (0.55 + 0.45 * sin(bg->freq * px + bg->phase))) return BG_SKYLINE;
    return BG_UPPER;
}

static int bg_region_ctx(const background *bg, int region) {
    switch (region) {
    case BG_LOWER: return bg->lower;
    case BG_UPPER: return bg->upper;
    case BG_CEILING: return CTX_CEILING;
    case BG_SKYLINE: return bg->skyline;
    default: return bg->feat[region - BG_FEATURE].ctx;
    }
}

/* Slope of the background's height field: vertical planes nearly face the
 * camera, the ground recedes upwards, the ceiling downwards; curtains fold. */
static void bg_slope(const background *bg, int region, int x, float *gx, float *gy) {
    int ctx = bg_region_ctx(bg, region);
    if (region == BG_LOWER) {
        *gx = bg->floor_gx, *gy = bg->floor_gy;
    } else if (region == BG_CEILING) {
        *gx = bg->floor_gx, *gy = -bg->floor_gy;
    } else {
        *gx = bg->wall_gx, *gy = bg->wall_gy;
        if (ctx == CTX_CURTAIN) *gx += (float)(0.8 * sin(2 * SYN_PI * x / bg->curtain_period));
    }
}

static void bg_albedo(const background *bg, int region, int x, int y, uint64_t seed, float out[3]) {
    const float *base = region == BG_LOWER ? bg->lower_rgb : region == BG_UPPER ? bg->upper_rgb
                      : region == BG_CEILING ? bg->ceiling_rgb : region == BG_SKYLINE ? bg->skyline_rgb
                      : bg->feat[region - BG_FEATURE].colour;
    int ctx = bg_region_ctx(bg, region);
    double f = 1.0, hor = horizon_at(bg, x + 0.5), below = y + 0.5 - hor;
    for (int i = 0; i < 3; i++) out[i] = base[i];
    switch (ctx) {
    case CTX_SKY: {
        double t = clampd((y + 0.5) / fmax(hor, 1.0), 0, 1); /* paler towards the horizon */
        double cloud = clampd((value_noise(seed, x, y * 2.5, bg->w / 6.0 + 1) - 0.55) * 3, 0, 1);
        for (int i = 0; i < 3; i++) {
            double c = base[i] + (235 - base[i]) * 0.6 * t;
            out[i] = (float)(c + (245 - c) * cloud);
        }
        return;
    }
    case CTX_FLOOR: {
        double depth = fmax(below, 2.0);
        int plank = (int)floor((x + 0.5 - bg->w / 2.0) / depth * 3.0);
        int row = bg->floor_tiles ? (int)floor(6.0 * log(depth)) : 0;
        f = ((plank + row) & 1 ? 0.82 : 1.0) * (0.92 + 0.16 * value_noise(seed, x, y, 6.0));
        break;
    }
    case CTX_GRASS: f = (0.6 + 0.7 * value_noise(seed, x, y, 2.5)) * (0.85 + 0.3 * value_noise(seed ^ 1, x, y, 25.0)); break;
    case CTX_GROUND: f = 0.75 + 0.5 * value_noise(seed, x, y, 5.0); break;
    case CTX_ROAD:
        f = 0.9 + 0.2 * value_noise(seed, x, y, 2.0);
        if (fabs(x + 0.5 - bg->w / 2.0) < 0.03 * below && ((int)floor(4.0 * log(fmax(below, 1.0))) & 1)) {
            out[0] = out[1] = out[2] = 225; /* dashed centre line */
            return;
        }
        break;
    case CTX_WATER: f = 0.8 + 0.3 * (0.5 + 0.5 * sin(0.6 * y + 6 * value_noise(seed, x, y, 12.0))); break;
    case CTX_TREE: f = 0.55 + 0.9 * value_noise(seed, x, y, 4.0); break;
    case CTX_MOUNTAIN: f = 0.8 + 0.4 * value_noise(seed, x, y, 15.0); break;
    case CTX_CEILING: f = 0.97 + 0.06 * value_noise(seed, x, y, 20.0); break;
    case CTX_WALL: f = 0.94 + 0.1 * value_noise(seed, x, y, 30.0); break;
    default: {
        const bg_feature *ft = &bg->feat[region - BG_FEATURE];
        double lu = (x + 0.5 - ft->x0) / (ft->x1 - ft->x0), lv = (y + 0.5 - ft->y0) / (ft->y1 - ft->y0);
        int border = lu < 0.08 || lu > 0.92 || lv < 0.06 || lv > 0.94;
        if (ctx == CTX_WINDOW && (border || fabs(lu - 0.5) < 0.03 || fabs(lv - 0.5) < 0.03)) {
            out[0] = out[1] = out[2] = 235; /* white frame and cross bars */
            return;
        }
        if (ctx == CTX_WINDOW) f = 0.8 + 0.3 * lv;
        if (ctx == CTX_DOOR || ctx == CTX_CABINET) f = border ? 0.75 : 0.95 + 0.1 * value_noise(seed, x, y, 7.0);
        if (ctx == CTX_BUILDING)
            f = (fmod(x - ft->x0, 18.0) < 9.0 && fmod(y - ft->y0, 22.0) < 11.0) ? 0.45 : 1.0;
        break;
    }
    }
    for (int i = 0; i < 3; i++) out[i] = (float)(base[i] * f);
}

/* ---- the scene ---------------------------------------------------------- */

typedef struct {
    int w, h;
    uint8_t *inst;   /* 0 background, k + 1 = objects[k] */
    uint8_t *code;   /* region code of the visible object (person part) */
    uint16_t *ctx;   /* LabelMap, row-major */
    uint8_t *voc;    /* semseg */
    uint8_t *sal;
    uint8_t *rgb;
    uint8_t *normal;
    scene_object obj[SYN_MAX_OBJECTS];
    int nobj;
} scene;

static void scene_free(scene *s) {
    free(s->inst), free(s->code), free(s->ctx), free(s->voc), free(s->sal), free(s->rgb), free(s->normal);
    for (int k = 0; k < s->nobj; k++) object_free(&s->obj[k]);
    memset(s, 0, sizeof *s);
}

static mt_status scene_alloc(scene *s, int w, int h) {
    size_t n = (size_t)w * h;
    memset(s, 0, sizeof *s);
    s->w = w, s->h = h;
    s->inst = calloc(n, 1);
    s->code = calloc(n, 1);
    s->ctx = calloc(n, sizeof *s->ctx);
    s->voc = calloc(n, 1);
    s->sal = calloc(n, 1);
    s->rgb = calloc(n, 3);
    s->normal = calloc(n, 3);
    if (!s->inst || !s->code || !s->ctx || !s->voc || !s->sal || !s->rgb || !s->normal) {
        scene_free(s);
        return MT_ERR_NOMEM;
    }
    return MT_OK;
}

static const int INDOOR_CLASSES[] = {VOC_BOTTLE, VOC_CAT, VOC_CHAIR, VOC_DININGTABLE, VOC_DOG,
                                     VOC_POTTEDPLANT, VOC_SOFA, VOC_TVMONITOR};
static const int OUTDOOR_CLASSES[] = {VOC_AEROPLANE, VOC_BICYCLE, VOC_BIRD, VOC_BOAT, VOC_BUS, VOC_CAR,
                                      VOC_COW, VOC_DOG, VOC_HORSE, VOC_MOTORBIKE, VOC_SHEEP, VOC_TRAIN};

/* Mostly classes that belong in the scene, sometimes any (PASCAL has odd scenes too). */
static int draw_object_class(draws *d, int indoor) {
    if (draw_chance(d, 0.85))
        return indoor ? PICK(d, INDOOR_CLASSES) : PICK(d, OUTDOOR_CLASSES);
    int voc = draw_int(d, 1, 19);
    return voc >= VOC_PERSON ? voc + 1 : voc;
}

/* Size and position: objects stand on the ground below the horizon (nearer
 * = lower and larger), fliers may be in the sky. */
static void place_object(scene_object *o, draws *d, const background *bg) {
    const class_look *look = &CLASS_LOOKS[o->voc];
    int w = bg->w, h = bg->h;
    double hor = fmax(bg->hy, 0.0), bh;
    if (look->flies && !bg->indoor && draw_chance(d, 0.5)) {
        bh = h * draw_between(d, 0.15, 0.35) * look->scale;
        o->bottom = draw_between(d, bh * 0.6, fmax(bh * 0.6, hor));
    } else {
        o->bottom = draw_between(d, hor + 0.15 * (h - hor), h * 1.05);
        double near = (o->bottom - hor) / fmax(h - hor, 1.0);
        bh = h * draw_between(d, 0.45, 0.75) * look->scale * (0.55 + 0.6 * near);
    }
    double bw = bh * look->aspect * draw_between(d, 0.9, 1.1);
    if (bw > 1.1 * w) bh *= 1.1 * w / bw, bw = 1.1 * w;
    o->bh = (int)fmax(lround(bh), 10);
    o->bw = (int)fmax(lround(bw), 6);
    o->by = (int)lround(o->bottom) - o->bh;
    o->bx = (int)lround(draw_between(d, -0.15 * o->bw, w - 0.85 * o->bw));
}

static void sort_by_depth(scene_object *obj, int n) {
    for (int i = 1; i < n; i++) /* insertion sort: stable, n <= 4 */
        for (int j = i; j > 0 && obj[j].bottom < obj[j - 1].bottom; j--) {
            scene_object t = obj[j];
            obj[j] = obj[j - 1];
            obj[j - 1] = t;
        }
}

/* Draws the scene's content: about 55% of the images hold people. */
static mt_status scene_draw_objects(scene *s, draws *d, const background *bg, const int *classes, int n) {
    for (int k = 0; k < n; k++) {
        scene_object *o = &s->obj[k];
        o->voc = classes[k];
        place_object(o, d, bg);
        s->nobj = k + 1;
        mt_status st = object_build(o, d);
        if (st) return st;
    }
    sort_by_depth(s->obj, s->nobj);
    return MT_OK;
}

/* Painter's order: nearer objects overwrite farther ones, so instance
 * masks, part masks, semseg and LabelMap all share one visibility. */
static void scene_composite(scene *s) {
    for (int k = 0; k < s->nobj; k++) {
        const scene_object *o = &s->obj[k];
        int x0 = clampi(o->bx - o->pad, 0, s->w), x1 = clampi(o->bx - o->pad + o->cv.w, 0, s->w);
        int y0 = clampi(o->by - o->pad, 0, s->h), y1 = clampi(o->by - o->pad + o->cv.h, 0, s->h);
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                int code = object_code_at(o, x, y);
                if (!code) continue;
                size_t p = (size_t)y * s->w + x;
                s->inst[p] = (uint8_t)(k + 1);
                s->code[p] = (uint8_t)code;
            }
    }
}

static uint8_t encode_normal(double n) { return (uint8_t)clampd(floor((n + 1) * 0.5 * 255 + 0.5), 0, 255); }

/* Lambert shading under a light from the upper left, and sensor noise
 * hashed from the pixel index. */
static void shade_pixel(const float albedo[3], const double n[3], int emissive, uint64_t seed,
                        size_t p, uint8_t out[3]) {
    static const double L[3] = {-0.38, -0.62, 0.69};
    double lambert = fmax(0.0, n[0] * L[0] + n[1] * L[1] + n[2] * L[2]);
    double shade = emissive ? 1.0 : 0.5 + 0.6 * lambert;
    uint64_t bits = mt_rng_bits(seed, p);
    double common = ((double)(bits & 0xff) - 127.5) / 127.5 * 5.0;
    for (int i = 0; i < 3; i++) {
        double own = ((double)((bits >> (8 + 8 * i)) & 0xff) - 127.5) / 127.5 * 4.0;
        out[i] = (uint8_t)clampd(floor(albedo[i] * shade + common + own + 0.5), 0, 255);
    }
}

/* Every per-pixel output from the label maps. */
static void scene_render(scene *s, const background *bg, uint64_t image_seed) {
    uint64_t tex_seed = mt_rng_mix64(image_seed ^ 0x7465787475726573ULL);
    uint64_t noise_seed = mt_rng_mix64(image_seed ^ 0x6e6f697365000000ULL);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            size_t p = (size_t)y * s->w + x;
            float albedo[3], gx, gy;
            int emissive = 0;
            if (s->inst[p]) {
                const scene_object *o = &s->obj[s->inst[p] - 1];
                size_t c = (size_t)(y - o->by + o->pad) * o->cv.w + (size_t)(x - o->bx + o->pad);
                s->voc[p] = (uint8_t)o->voc;
                s->ctx[p] = (uint16_t)pascal_voc_to_context[o->voc];
                s->sal[p] = 255;
                gx = o->tilt_x + o->gx[c];
                gy = o->tilt_y + o->gy[c];
                object_albedo(o, s->code[p], x, y, tex_seed, albedo);
            } else {
                int region = bg_region(bg, x, y);
                s->ctx[p] = (uint16_t)bg_region_ctx(bg, region);
                bg_slope(bg, region, x, &gx, &gy);
                bg_albedo(bg, region, x, y, tex_seed, albedo);
                emissive = s->ctx[p] == CTX_SKY;
            }
            /* surface z = H(x, y): normal (-Hx, -Hy, 1), x right, y down, z to the camera */
            double len = sqrt((double)gx * gx + (double)gy * gy + 1.0);
            double n[3] = {-gx / len, -gy / len, 1.0 / len};
            for (int i = 0; i < 3; i++) s->normal[3 * p + i] = encode_normal(n[i]);
            shade_pixel(albedo, n, emissive, noise_seed, p, &s->rgb[3 * p]);
        }
}

static mt_status scene_build(scene *s, uint64_t image_seed, const synthetic_opts *o) {
    draws d = {image_seed, 0};
    int w = draw_int(&d, o->min_side, o->max_side), h = draw_int(&d, o->min_side, o->max_side);
    mt_status st = scene_alloc(s, w, h);
    if (st) return st;
    int indoor = draw_chance(&d, 0.5);
    int n = draw_int(&d, 1, SYN_MAX_OBJECTS);
    int people = draw_chance(&d, 0.55) ? 1 + draw_chance(&d, 0.3) : 0;
    int classes[SYN_MAX_OBJECTS], has_boat = 0;
    for (int k = 0; k < n; k++) {
        classes[k] = k < people ? VOC_PERSON : draw_object_class(&d, indoor);
        has_boat |= classes[k] == VOC_BOAT;
    }
    background bg;
    bg_draw(&bg, &d, w, h, indoor, has_boat);
    st = scene_draw_objects(s, &d, &bg, classes, n);
    if (st) return st;
    scene_composite(s);
    scene_render(s, &bg, image_seed);
    return MT_OK;
}

/* ---- files ---------------------------------------------------------------- */

static void errno_text(int e, char *buf, size_t n) {
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "errno %d", e);
}

static mt_status join_path(char *out, const char *dir, const char *a, const char *b, const char *c,
                           char *err, size_t errlen) {
    int len = snprintf(out, SYN_PATH, "%s/%s%s%s", dir, a, b ? b : "", c ? c : "");
    if (len < 0 || len >= SYN_PATH - 8) /* room for ".tmp" */
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: path too long under %s", dir);
    return MT_OK;
}

/* mkdir -p. */
static mt_status make_dirs(const char *path, char *err, size_t errlen) {
    char buf[SYN_PATH], why[128];
    size_t n = strlen(path);
    if (n >= sizeof buf) return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char keep = buf[i];
        buf[i] = '\0';
        struct stat sb;
        if (mkdir(buf, 0777) != 0 && (errno != EEXIST || stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
            errno_text(errno == EEXIST ? ENOTDIR : errno, why, sizeof why);
            return mt_errf(err, errlen, MT_ERR_IO, "cannot create directory %s: %s", buf, why);
        }
        buf[i] = keep;
    }
    return MT_OK;
}

typedef mt_status (*file_writer)(const char *path, const void *what, char *err, size_t errlen);

/* Writes <path>.tmp and renames it, so a file under its final name is
 * always complete. */
static mt_status write_atomically(const char *path, file_writer write, const void *what, char *err,
                                  size_t errlen) {
    char tmp[SYN_PATH + 8], why[128];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    mt_status st = write(tmp, what, err, errlen);
    if (st) {
        remove(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        errno_text(errno, why, sizeof why);
        remove(tmp);
        return mt_errf(err, errlen, MT_ERR_IO, "cannot rename %s to %s: %s", tmp, path, why);
    }
    return MT_OK;
}

typedef struct {
    const mt_image8 *im;
    int palette;
} png_job;

static mt_status write_png(const char *path, const void *what, char *err, size_t errlen) {
    const png_job *j = what;
    return img_png_write(path, j->im, j->palette, err, errlen);
}

static mt_status write_jpeg(const char *path, const void *what, char *err, size_t errlen) {
    return img_jpeg_write(path, what, SYN_JPEG_QUALITY, err, errlen);
}

/* MATLAB is column-major: element (r, c) of an h x w matrix lives at c*h + r. */
static uint8_t *column_major_mask(const scene *s, int k, int code) {
    uint8_t *m = malloc((size_t)s->w * s->h);
    if (!m) return NULL;
    for (int c = 0; c < s->w; c++)
        for (int r = 0; r < s->h; r++) {
            size_t p = (size_t)r * s->w + c;
            m[(size_t)c * s->h + r] = s->inst[p] == k + 1 && (code == 0 || s->code[p] == code);
        }
    return m;
}

/* 16-bit chars, as MATLAB stores them. Not 8-bit: matio 1.5.23 writes an
 * 8-bit char array inside a compressed struct with a byte count 8 too large,
 * which scipy tolerates but matio itself cannot read back. */
static matvar_t *mat_string(const char *text) {
    uint16_t wide[64];
    size_t n = strlen(text);
    if (n > sizeof wide / sizeof wide[0]) return NULL;
    for (size_t i = 0; i < n; i++) wide[i] = (unsigned char)text[i];
    size_t dims[2] = {1, n};
    return Mat_VarCreate(NULL, MAT_C_CHAR, MAT_T_UINT16, 2, dims, wide, 0);
}

static matvar_t *mat_scalar(double v) {
    size_t dims[2] = {1, 1};
    return Mat_VarCreate(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &v, 0);
}

/* A uint8 h x w mask of object k (restricted to one part when code != 0). */
static matvar_t *mat_mask(const scene *s, int k, int code) {
    uint8_t *m = column_major_mask(s, k, code);
    if (!m) return NULL;
    size_t dims[2] = {(size_t)s->h, (size_t)s->w};
    matvar_t *v = Mat_VarCreate(NULL, MAT_C_UINT8, MAT_T_UINT8, 2, dims, m, 0);
    free(m);
    return v;
}

/* Takes ownership of field (freed on failure). */
static int struct_set(matvar_t *st, const char *name, size_t index, matvar_t *field) {
    if (!field) return -1;
    matvar_t *old = Mat_VarSetStructFieldByName(st, name, index, field);
    if (Mat_VarGetStructFieldByName(st, name, index) != field) {
        Mat_VarFree(field);
        return -1;
    }
    if (old) Mat_VarFree(old);
    return 0;
}

/* Field order matters: the official loader indexes fields by position. */
static const char *const ANNO_FIELDS[] = {"imname", "objects", NULL};
static const char *const OBJECT_FIELDS[] = {"class", "classIndex", "mask", "parts", NULL};
static const char *const PART_FIELDS[] = {"part_name", "mask", NULL};

/* The visible parts of person k, a 1xM struct (0x0 when it shows none). */
static matvar_t *mat_parts(const scene *s, int k) {
    size_t count[P_COUNT] = {0}, m = 0;
    if (s->obj[k].voc == VOC_PERSON)
        for (size_t p = 0; p < (size_t)s->w * s->h; p++)
            if (s->inst[p] == k + 1) count[s->code[p]]++;
    for (int c = 1; c < P_COUNT; c++) m += count[c] > 0;
    size_t dims[2] = {m ? 1 : 0, m};
    matvar_t *parts = Mat_VarCreateStruct2(NULL, 2, dims, PART_FIELDS);
    if (!parts) return NULL;
    size_t i = 0;
    for (int c = 1; c < P_COUNT; c++) {
        if (!count[c]) continue;
        if (struct_set(parts, "part_name", i, mat_string(PERSON_PART_NAMES[c])) ||
            struct_set(parts, "mask", i, mat_mask(s, k, c))) {
            Mat_VarFree(parts);
            return NULL;
        }
        i++;
    }
    return parts;
}

typedef struct {
    const scene *s;
    const char *id;
} anno_job;

static int object_visible(const scene *s, int k) {
    for (size_t p = 0; p < (size_t)s->w * s->h; p++)
        if (s->inst[p] == k + 1) return 1;
    return 0;
}

/* anno.objects: the visible objects in painter's order (fully hidden ones
 * are left out, as an annotator would). */
static matvar_t *mat_objects(const scene *s) {
    int visible[SYN_MAX_OBJECTS], n = 0;
    for (int k = 0; k < s->nobj; k++)
        if (object_visible(s, k)) visible[n++] = k;
    size_t dims[2] = {1, (size_t)n};
    matvar_t *objs = Mat_VarCreateStruct2(NULL, 2, dims, OBJECT_FIELDS);
    if (!objs) return NULL;
    for (int i = 0; i < n; i++) {
        int k = visible[i], voc = s->obj[k].voc;
        if (struct_set(objs, "class", (size_t)i, mat_string(pascal_voc_names[voc])) ||
            struct_set(objs, "classIndex", (size_t)i, mat_scalar(voc)) ||
            struct_set(objs, "mask", (size_t)i, mat_mask(s, k, 0)) ||
            struct_set(objs, "parts", (size_t)i, mat_parts(s, k))) {
            Mat_VarFree(objs);
            return NULL;
        }
    }
    return objs;
}

static mt_status mat_write_var(const char *path, matvar_t *var, char *err, size_t errlen) {
    if (!var) return mt_errf(err, errlen, MT_ERR_NOMEM, "cannot build the MATLAB data of %s", path);
    mat_t *mat = Mat_CreateVer(path, MAT_HEADER, MAT_FT_MAT5);
    if (!mat) {
        Mat_VarFree(var);
        return mt_errf(err, errlen, MT_ERR_IO, "cannot create %s", path);
    }
    int bad = Mat_VarWrite(mat, var, MAT_COMPRESSION_ZLIB) != 0;
    Mat_VarFree(var);
    bad |= Mat_Close(mat) != 0;
    return bad ? mt_errf(err, errlen, MT_ERR_IO, "cannot write %s", path) : MT_OK;
}

static mt_status write_parts_mat(const char *path, const void *what, char *err, size_t errlen) {
    const anno_job *j = what;
    size_t one[2] = {1, 1};
    matvar_t *anno = Mat_VarCreateStruct2("anno", 2, one, ANNO_FIELDS);
    if (anno && (struct_set(anno, "imname", 0, mat_string(j->id)) ||
                 struct_set(anno, "objects", 0, mat_objects(j->s)))) {
        Mat_VarFree(anno);
        anno = NULL;
    }
    return mat_write_var(path, anno, err, errlen);
}

static mt_status write_labelmap_mat(const char *path, const void *what, char *err, size_t errlen) {
    const scene *s = what;
    uint16_t *cm = malloc((size_t)s->w * s->h * sizeof *cm);
    if (!cm) return mt_errf(err, errlen, MT_ERR_NOMEM, "no memory for %s", path);
    for (int c = 0; c < s->w; c++)
        for (int r = 0; r < s->h; r++) cm[(size_t)c * s->h + r] = s->ctx[(size_t)r * s->w + c];
    size_t dims[2] = {(size_t)s->h, (size_t)s->w};
    matvar_t *v = Mat_VarCreate("LabelMap", MAT_C_UINT16, MAT_T_UINT16, 2, dims, cm, 0);
    free(cm);
    return mat_write_var(path, v, err, errlen);
}

static mt_status scene_write(const scene *s, const char *dir, const char *id, char *err, size_t errlen) {
    char path[SYN_PATH];
    mt_image8 rgb = {s->h, s->w, 3, s->rgb}, voc = {s->h, s->w, 1, s->voc};
    mt_image8 sal = {s->h, s->w, 1, s->sal}, nrm = {s->h, s->w, 3, s->normal};
    png_job semseg_png = {&voc, 1}, sal_png = {&sal, 0}, normal_png = {&nrm, 0};
    anno_job anno = {s, id};
    struct {
        const char *sub, *ext;
        file_writer write;
        const void *what;
    } files[] = {
        {"JPEGImages/", ".jpg", write_jpeg, &rgb},
        {"semseg/pascal-context/", ".png", write_png, &semseg_png},
        {"sal_distill/", ".png", write_png, &sal_png},
        {"normals_distill/", ".png", write_png, &normal_png},
        {"pascal-context/trainval/", ".mat", write_labelmap_mat, s},
        {"human_parts/", ".mat", write_parts_mat, &anno},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        mt_status st = join_path(path, dir, files[i].sub, id, files[i].ext, err, errlen);
        if (!st) st = write_atomically(path, files[i].write, files[i].what, err, errlen);
        if (st) return st;
    }
    return MT_OK;
}

static void image_id(int index, char out[SYN_ID]) { snprintf(out, SYN_ID, "2008_%06d", index + 1); }

static int is_val(const synthetic_opts *o, int index) {
    return o->val_every > 0 && (index + 1) % o->val_every == 0;
}

typedef struct {
    const synthetic_opts *o;
    int val;
} split_job;

static mt_status write_split(const char *path, const void *what, char *err, size_t errlen) {
    const split_job *j = what;
    char why[128], id[SYN_ID];
    FILE *f = fopen(path, "w");
    if (!f) {
        errno_text(errno, why, sizeof why);
        return mt_errf(err, errlen, MT_ERR_IO, "cannot create %s: %s", path, why);
    }
    for (int i = 0; i < j->o->n; i++)
        if (is_val(j->o, i) == j->val) {
            image_id(i, id);
            fprintf(f, "%s\n", id);
        }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? mt_errf(err, errlen, MT_ERR_IO, "cannot write %s", path) : MT_OK;
}

/* ---- driver ---------------------------------------------------------------- */

void synthetic_opts_default(synthetic_opts *o) {
    o->n = 100;
    o->seed = 1;
    o->min_side = 240;
    o->max_side = 500;
    o->val_every = 5;
    o->threads = 2;
}

static mt_status check_opts(const char *dir, const synthetic_opts *o, char *err, size_t errlen) {
    if (!dir || !*dir || !o) return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: no directory or options");
    if (o->n < 1 || o->n > SYN_MAX_IMAGES)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: n = %d, must be 1..%d", o->n, SYN_MAX_IMAGES);
    if (o->min_side < SYN_MIN_SIDE || o->max_side > SYN_MAX_SIDE || o->min_side > o->max_side)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: sides %d..%d, must lie in %d..%d",
                       o->min_side, o->max_side, SYN_MIN_SIDE, SYN_MAX_SIDE);
    if (o->val_every < 0)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: val_every = %d, must be >= 0", o->val_every);
    if (o->threads < 1 || o->threads > SYN_MAX_THREADS)
        return mt_errf(err, errlen, MT_ERR_ARG, "synthetic: threads = %d, must be 1..%d", o->threads,
                       SYN_MAX_THREADS);
    return MT_OK;
}

/* Shared by the workers: the next image to make and the first failure. */
typedef struct {
    const char *dir;
    const synthetic_opts *o;
    int quiet;
    pthread_mutex_t lock;
    int next, done;
    mt_status st;
    char err[1024];
} work_queue;

static mt_status make_image(const work_queue *q, int index, char *err, size_t errlen) {
    char id[SYN_ID];
    image_id(index, id);
    scene s;
    mt_status st = scene_build(&s, mt_rng_bits(q->o->seed, (uint64_t)index), q->o);
    if (st == MT_ERR_NOMEM) mt_errf(err, errlen, st, "synthetic: no memory for image %s", id);
    if (!st) st = scene_write(&s, q->dir, id, err, errlen);
    scene_free(&s);
    return st;
}

static void *worker(void *arg) {
    work_queue *q = arg;
    char err[sizeof q->err];
    for (;;) {
        pthread_mutex_lock(&q->lock);
        int index = q->st ? q->o->n : q->next++;
        pthread_mutex_unlock(&q->lock);
        if (index >= q->o->n) return NULL;
        err[0] = '\0';
        mt_status st = make_image(q, index, err, sizeof err);
        pthread_mutex_lock(&q->lock);
        if (st && !q->st) {
            q->st = st;
            snprintf(q->err, sizeof q->err, "%s", err);
        } else if (!st) {
            q->done++;
            int step = q->o->n / 10 > 0 ? q->o->n / 10 : 1;
            if (!q->quiet && (q->done % step == 0 || q->done == q->o->n))
                fprintf(stderr, "synthetic: %d/%d images in %s\n", q->done, q->o->n, q->dir);
        }
        pthread_mutex_unlock(&q->lock);
    }
}

/* threads - 1 helpers plus the calling thread; if a helper cannot start,
 * the others take its share (the output does not depend on who makes what). */
static mt_status run_workers(work_queue *q) {
    pthread_t tid[SYN_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < q->o->threads && t < q->o->n; t++) {
        if (pthread_create(&tid[started], NULL, worker, q) != 0) break;
        started++;
    }
    worker(q);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    return q->st;
}

mt_status synthetic_pascal_write(const char *dir, const synthetic_opts *o, int quiet, char *err, size_t errlen) {
    mt_status st = check_opts(dir, o, err, errlen);
    if (st) return st;
    char path[SYN_PATH];
    for (size_t i = 0; i < sizeof SYN_DIRS / sizeof SYN_DIRS[0]; i++) {
        st = join_path(path, dir, SYN_DIRS[i], NULL, NULL, err, errlen);
        if (!st) st = make_dirs(path, err, errlen);
        if (st) return st;
    }
    work_queue q = {.dir = dir, .o = o, .quiet = quiet};
    if (pthread_mutex_init(&q.lock, NULL) != 0)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "synthetic: cannot create a mutex");
    st = run_workers(&q);
    pthread_mutex_destroy(&q.lock);
    if (st) return mt_errf(err, errlen, st, "%s", q.err);
    /* Split files last: they never list an image that was not written. */
    for (int val = 0; val < 2; val++) {
        split_job job = {o, val};
        st = join_path(path, dir, "ImageSets/Context/", val ? "val" : "train", ".txt", err, errlen);
        if (!st) st = write_atomically(path, write_split, &job, err, errlen);
        if (st) return st;
    }
    return MT_OK;
}
