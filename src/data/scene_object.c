/* scene_object.c - one object of a synthetic scene on its own canvas: the
 * silhouette (its class's shape or a person), the relief the normals come
 * from, and its colour per pixel (scene_internal.h). */
#include "scene_internal.h"

#include <math.h>
#include <stdlib.h>

void object_free(scene_object *o) {
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
mt_status object_build(scene_object *o, draws *d) {
    const class_look *look = class_look_of(o->voc);
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

int object_code_at(const scene_object *o, int x, int y) {
    int cx = x - o->bx + o->pad, cy = y - o->by + o->pad;
    if (cx < 0 || cy < 0 || cx >= o->cv.w || cy >= o->cv.h) return 0;
    return o->cv.code[(size_t)cy * o->cv.w + cx];
}

/* The object's colour at an image pixel, before lighting. */
void object_albedo(const scene_object *o, int code, int x, int y, uint64_t seed, float out[3]) {
    if (o->voc == VOC_PERSON) {
        const float *c = person_part_colour(&o->person, code);
        double f = 0.92 + 0.16 * value_noise(seed, x, y, 3.0);
        for (int i = 0; i < 3; i++) out[i] = (float)(c[i] * f);
        return;
    }
    const class_look *look = class_look_of(o->voc);
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
    case TEX_STRIPES: f = sin(2 * SCENE_PI * (x + 0.4 * y) / fmax(3.0, 0.1 * o->bh)) > 0.3 ? 0.55 : 1.0; break;
    case TEX_SPOTS:
        if (value_noise(seed, x, y, fmax(3.0, 0.15 * o->bh)) > 0.6) {
            set_rgb(out, look->accent, 1.0);
            return;
        }
        break;
    case TEX_WOOL: f = 0.75 + 0.5 * value_noise(seed, x, y, 2.0); break;
    case TEX_FOLIAGE: f = 0.5 + 0.9 * value_noise(seed, x, y, 3.0); break;
    case TEX_WOOD: f = 0.85 + 0.15 * sin(2 * SCENE_PI * y / fmax(3.0, 0.05 * o->bh) + 4 * value_noise(seed, x, y, 8.0)); break;
    case TEX_FABRIC: f = 0.88 + 0.12 * (((x >> 1) + (y >> 1)) & 1) + 0.05 * value_noise(seed, x, y, 4.0); break;
    case TEX_SCREEN: f = 0.65 + 0.35 * lu + 0.25 * sin(6 * lv); break;
    default: f = 0.9 + 0.2 * value_noise(seed, x, y, 4.0); break;
    }
    for (int i = 0; i < 3; i++) out[i] = (float)(o->body[i] * f);
}
