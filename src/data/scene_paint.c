/* scene_paint.c - the synthetic scene's noise, colours and canvas shapes
 * (scene_draw.h): everything below the class shapes. Pure functions of
 * their arguments. */
#include "scene_draw.h"

#include <math.h>
#include <string.h>

/* ---- noise and colours -------------------------------------------------- */

/* Smooth noise in [0, 1): hashed lattice values, bilinearly blended with a
 * smoothstep, so textures look like textures and not like per-pixel grit. */
static float lattice_value(uint64_t seed, int64_t ix, int64_t iy) {
    uint64_t counter = ((uint64_t)(uint32_t)ix << 32) | (uint32_t)iy;
    return (float)(mt_rng_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}

float value_noise(uint64_t seed, double x, double y, double cell) {
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

void set_rgb(float out[3], const uint8_t c[3], double f) {
    for (int i = 0; i < 3; i++) out[i] = (float)(c[i] * f);
}

/* A colour varied per instance so that a class is a colour family, not one value. */
void jitter_colour(draws *d, const uint8_t base[3], float amount, float out[3]) {
    float shared = (float)draw_between(d, -amount, amount);
    for (int i = 0; i < 3; i++)
        out[i] = (float)clampd(base[i] + shared + draw_between(d, -amount / 3, amount / 3), 0, 255);
}

/* ---- canvas ------------------------------------------------------------ */

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
void paint_ellipse(canvas *c, double u, double v, double ru, double rv, uint8_t code) {
    double s[4] = {canvas_x(c, u), canvas_y(c, v), fmax(ru * c->bw, 0.6), fmax(rv * c->bh, 0.6)};
    paint(c, s[0] - s[2], s[1] - s[3], s[0] + s[2], s[1] + s[3], inside_ellipse, s, code);
}

void paint_disc(canvas *c, double u, double v, double r, uint8_t code) {
    paint_ellipse(c, u, v, r * c->bh / c->bw, r, code);
}

void paint_ring(canvas *c, double u, double v, double r_out, double r_in, uint8_t code) {
    double s[4] = {canvas_x(c, u), canvas_y(c, v), fmax(r_out * c->bh, 1.0), r_in * c->bh};
    if (s[2] - s[3] < 0.8) s[3] = s[2] - 0.8; /* keep thin tyres visible at small sizes */
    paint(c, s[0] - s[2], s[1] - s[2], s[0] + s[2], s[1] + s[2], inside_annulus, s, code);
}

/* Thin parts never go below ~1.5 px wide, so bicycles survive small images. */
void paint_capsule(canvas *c, double u0, double v0, double u1, double v1, double r, uint8_t code) {
    double s[5] = {canvas_x(c, u0), canvas_y(c, v0), canvas_x(c, u1), canvas_y(c, v1),
                   fmax(r * c->bh, 0.75)};
    paint(c, fmin(s[0], s[2]) - s[4], fmin(s[1], s[3]) - s[4], fmax(s[0], s[2]) + s[4],
          fmax(s[1], s[3]) + s[4], inside_capsule, s, code);
}

void paint_rect(canvas *c, double u0, double v0, double u1, double v1, uint8_t code) {
    double xa = canvas_x(c, u0), xb = canvas_x(c, u1);
    double ya = canvas_y(c, v0), yb = canvas_y(c, v1);
    int ix0 = clampi((int)lround(fmin(xa, xb)), 0, c->w), ix1 = clampi((int)lround(fmax(xa, xb)), 0, c->w);
    int iy0 = clampi((int)lround(fmin(ya, yb)), 0, c->h), iy1 = clampi((int)lround(fmax(ya, yb)), 0, c->h);
    if (ix1 == ix0 && ix1 < c->w) ix1++; /* at least one pixel wide */
    if (iy1 == iy0 && iy1 < c->h) iy1++;
    for (int y = iy0; y < iy1; y++) memset(c->code + (size_t)y * c->w + ix0, code, (size_t)(ix1 - ix0));
}

void paint_triangle(canvas *c, double u0, double v0, double u1, double v1, double u2, double v2,
                    uint8_t code) {
    double s[6] = {canvas_x(c, u0), canvas_y(c, v0), canvas_x(c, u1), canvas_y(c, v1),
                   canvas_x(c, u2), canvas_y(c, v2)};
    paint(c, fmin(s[0], fmin(s[2], s[4])), fmin(s[1], fmin(s[3], s[5])),
          fmax(s[0], fmax(s[2], s[4])), fmax(s[1], fmax(s[3], s[5])), inside_triangle, s, code);
}

/* Corners in order around the quadrilateral (convex). */
void paint_quad(canvas *c, const double q[8], uint8_t code) {
    paint_triangle(c, q[0], q[1], q[2], q[3], q[4], q[5], code);
    paint_triangle(c, q[0], q[1], q[4], q[5], q[6], q[7], code);
}
