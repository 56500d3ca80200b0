/* synthetic_scene.c - one synthetic scene from its seed (synthetic_scene.h):
 * the draws that pick the scene (sides, indoor or not, the objects and
 * where they stand), the painter's-order composite of the objects into the
 * label maps, and the render of every per-pixel output from those maps.
 *
 * Every draw comes from the counter-based RNG under the image's seed, and
 * per-pixel noise is hashed from the pixel index, so a scene does not
 * depend on which thread builds it or what was built before. The order of
 * the draws below is the scene: reordering them changes every image. */
#include "mtlora/data/synthetic_scene.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/pascal_classes.h"
#include "scene_internal.h"

/* The objects of one scene, farthest first once sorted. */
typedef struct {
    scene_object obj[SYNTHETIC_SCENE_MAX_OBJECTS];
    int n;
} scene_objects;

static void objects_free(scene_objects *so) {
    for (int k = 0; k < so->n; k++) object_free(&so->obj[k]);
    so->n = 0;
}

void synthetic_scene_free(synthetic_scene *s) {
    if (!s) return;
    free(s->inst), free(s->code), free(s->context), free(s->semseg), free(s->sal), free(s->rgb),
        free(s->normals);
    memset(s, 0, sizeof *s);
}

static mt_status scene_alloc(synthetic_scene *s, int w, int h) {
    size_t n = (size_t)w * h;
    memset(s, 0, sizeof *s);
    s->w = w, s->h = h;
    s->inst = calloc(n, 1);
    s->code = calloc(n, 1);
    s->context = calloc(n, sizeof *s->context);
    s->semseg = calloc(n, 1);
    s->sal = calloc(n, 1);
    s->rgb = calloc(n, 3);
    s->normals = calloc(n, 3);
    if (!s->inst || !s->code || !s->context || !s->semseg || !s->sal || !s->rgb || !s->normals) {
        synthetic_scene_free(s);
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
    const class_look *look = class_look_of(o->voc);
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
static mt_status draw_objects(scene_objects *so, draws *d, const background *bg, const int *classes,
                              int n) {
    for (int k = 0; k < n; k++) {
        scene_object *o = &so->obj[k];
        o->voc = classes[k];
        place_object(o, d, bg);
        so->n = k + 1;
        mt_status st = object_build(o, d);
        if (st) return st;
    }
    sort_by_depth(so->obj, so->n);
    return MT_OK;
}

/* Painter's order: nearer objects overwrite farther ones, so instance
 * masks, part masks, semseg and LabelMap all share one visibility. */
static void scene_composite(synthetic_scene *s, const scene_objects *so) {
    for (int k = 0; k < so->n; k++) {
        const scene_object *o = &so->obj[k];
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
static void scene_render(synthetic_scene *s, const scene_objects *so, const background *bg,
                         uint64_t image_seed) {
    uint64_t tex_seed = mt_rng_mix64(image_seed ^ 0x7465787475726573ULL);
    uint64_t noise_seed = mt_rng_mix64(image_seed ^ 0x6e6f697365000000ULL);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            size_t p = (size_t)y * s->w + x;
            float albedo[3], gx, gy;
            int emissive = 0;
            if (s->inst[p]) {
                const scene_object *o = &so->obj[s->inst[p] - 1];
                size_t c = (size_t)(y - o->by + o->pad) * o->cv.w + (size_t)(x - o->bx + o->pad);
                s->semseg[p] = (uint8_t)o->voc;
                s->context[p] = (uint16_t)pascal_voc_to_context[o->voc];
                s->sal[p] = 255;
                gx = o->tilt_x + o->gx[c];
                gy = o->tilt_y + o->gy[c];
                object_albedo(o, s->code[p], x, y, tex_seed, albedo);
            } else {
                int region = bg_region(bg, x, y);
                s->context[p] = (uint16_t)bg_region_ctx(bg, region);
                bg_slope(bg, region, x, &gx, &gy);
                bg_albedo(bg, region, x, y, tex_seed, albedo);
                emissive = s->context[p] == CTX_SKY;
            }
            /* surface z = H(x, y): normal (-Hx, -Hy, 1), x right, y down, z to the camera */
            double len = sqrt((double)gx * gx + (double)gy * gy + 1.0);
            double n[3] = {-gx / len, -gy / len, 1.0 / len};
            for (int i = 0; i < 3; i++) s->normals[3 * p + i] = encode_normal(n[i]);
            shade_pixel(albedo, n, emissive, noise_seed, p, &s->rgb[3 * p]);
        }
}

mt_status synthetic_scene_build(synthetic_scene *s, uint64_t image_seed, int min_side,
                                int max_side) {
    if (!s) return MT_ERR_ARG;
    memset(s, 0, sizeof *s);
    if (min_side < SYNTHETIC_SCENE_MIN_SIDE || max_side > SYNTHETIC_SCENE_MAX_SIDE ||
        min_side > max_side)
        return MT_ERR_ARG;
    draws d = {image_seed, 0};
    int w = draw_int(&d, min_side, max_side), h = draw_int(&d, min_side, max_side);
    mt_status st = scene_alloc(s, w, h);
    if (st) return st;
    int indoor = draw_chance(&d, 0.5);
    int n = draw_int(&d, 1, SYNTHETIC_SCENE_MAX_OBJECTS);
    int people = draw_chance(&d, 0.55) ? 1 + draw_chance(&d, 0.3) : 0;
    int classes[SYNTHETIC_SCENE_MAX_OBJECTS], has_boat = 0;
    for (int k = 0; k < n; k++) {
        classes[k] = k < people ? VOC_PERSON : draw_object_class(&d, indoor);
        has_boat |= classes[k] == VOC_BOAT;
    }
    background bg;
    bg_draw(&bg, &d, w, h, indoor, has_boat);
    scene_objects so;
    memset(&so, 0, sizeof so);
    st = draw_objects(&so, &d, &bg, classes, n);
    if (st) {
        objects_free(&so);
        synthetic_scene_free(s);
        return st;
    }
    scene_composite(s, &so);
    scene_render(s, &so, &bg, image_seed);
    /* The objects' canvases served the composite and the render; what the
     * caller needs of them is their class. */
    s->nobj = so.n;
    for (int k = 0; k < so.n; k++) s->voc[k] = so.obj[k].voc;
    objects_free(&so);
    return MT_OK;
}
