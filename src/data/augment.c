/* augment.c - the official PASCAL-Context train/val transforms on one
 * record (see augment.h). Every element goes through the same steps the
 * official Compose applies, in float64 like the numpy arrays there:
 * to double -> [flip] -> [in-plane normal rotation, warpAffine] ->
 * resize to S x S -> [normals renormalised] -> ignore regions -> output. */
#include "mtlora/data/augment.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/data/image_warp.h"

const float aug_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float aug_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

aug_draw aug_draw_from_uniforms(double u0, double u1, double u2) {
    /* custom_transforms.py: rot = (20 - -20) * r - (20 - -20) / 2,
     * sc = (1.25 - 0.75) * r - (1.25 - 0.75) / 2 + 1, in this order. */
    aug_draw d;
    d.flip = u0 < 0.5;
    d.rot = 40.0 * u1 - 20.0;
    d.scale = (0.5 * u2 - 0.25) + 1.0;
    return d;
}

/* Scratch for one element: its values at the record size, the warped copy
 * and the S x S result. */
typedef struct {
    double *a, *b, *out;
} elem_bufs;

static mt_status elem_alloc(elem_bufs *e, int h, int w, int S, int c) {
    e->a = malloc(sizeof(double) * (size_t)h * w * c);
    e->b = malloc(sizeof(double) * (size_t)h * w * c);
    e->out = malloc(sizeof(double) * (size_t)S * S * c);
    if (!e->a || !e->b || !e->out) {
        free(e->a);
        free(e->b);
        free(e->out);
        return MT_ERR_NOMEM;
    }
    return MT_OK;
}

static void elem_free(elem_bufs *e) {
    free(e->a);
    free(e->b);
    free(e->out);
}

/* Turns every normal's (x, y) by the rotation angle, as ScaleNRotate does
 * before warping, with the same numpy expressions. */
static void rotate_normals_in_plane(double *n, size_t count, double rot_deg) {
    const double rot_rad = rot_deg * 2 * 3.141592653589793 / 360;
    for (size_t i = 0; i < count; i++) {
        double *p = n + 3 * i;
        const double in_plane = atan2(p[0], p[1]);
        const double nrm0 = sqrt(p[0] * p[0] + p[1] * p[1]);
        p[0] = sin(in_plane + rot_rad) * nrm0;
        p[1] = cos(in_plane + rot_rad) * nrm0;
    }
}

/* flip -> [warp] -> resize for one element held in e->a (h x w x c). */
static mt_status elem_geometry(elem_bufs *e, int h, int w, int c, int S, const aug_draw *draw,
                               const double M[6], cvx_interp interp, int is_normals) {
    const double *src = e->a;
    if (draw) {
        if (draw->flip) {
            cvx_flip_horizontal(e->a, h, w, c);
            if (is_normals)
                for (size_t i = 0; i < (size_t)h * w; i++) e->a[3 * i] *= -1;
        }
        if (is_normals) rotate_normals_in_plane(e->a, (size_t)h * w, draw->rot);
        mt_status st = cvx_warp_affine(e->b, h, w, e->a, h, w, c, M, interp);
        if (st) return st;
        src = e->b;
    }
    return cvx_resize(e->out, S, S, src, h, w, c, interp);
}

static mt_status do_image(const aug_record *r, const aug_draw *d, const double M[6], int S,
                          float *out) {
    elem_bufs e;
    mt_status st = elem_alloc(&e, r->h, r->w, S, 3);
    if (st) return st;
    const size_t n = (size_t)r->h * r->w * 3;
    for (size_t i = 0; i < n; i++) e.a[i] = r->image[i];
    st = elem_geometry(&e, r->h, r->w, 3, S, d, M, CVX_CUBIC, 0);
    if (!st) {
        const size_t plane = (size_t)S * S;
        for (size_t p = 0; p < plane; p++)
            for (int ch = 0; ch < 3; ch++) {
                /* numpy's float64 -> uint8: truncate toward zero, keep the
                 * low 8 bits (bicubic overshoot wraps, as in the official
                 * pipeline). The cast through int is defined for |v| < 2^31,
                 * which bicubic sums of 0..255 values always are. */
                const uint8_t u = (uint8_t)(int)e.out[3 * p + ch];
                const float x = (float)u / 255.0f;
                out[ch * plane + p] = (x - aug_imagenet_mean[ch]) / aug_imagenet_std[ch];
            }
    }
    elem_free(&e);
    return st;
}

/* A single-channel label through nearest-neighbour geometry, to doubles in e->out. */
static mt_status do_label(const uint8_t *lab, const aug_record *r, const aug_draw *d,
                          const double M[6], int S, elem_bufs *e) {
    mt_status st = elem_alloc(e, r->h, r->w, S, 1);
    if (st) return st;
    const size_t n = (size_t)r->h * r->w;
    for (size_t i = 0; i < n; i++) e->a[i] = lab[i];
    st = elem_geometry(e, r->h, r->w, 1, S, d, M, CVX_NEAREST, 0);
    if (st) elem_free(e);
    return st;
}

static mt_status do_class_map(const uint8_t *lab, const aug_record *r, const aug_draw *d,
                              const double M[6], int S, uint8_t *out, int ignore_if_empty) {
    elem_bufs e;
    mt_status st = do_label(lab, r, d, M, S, &e);
    if (st) return st;
    const size_t n = (size_t)S * S;
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)e.out[i];
        any |= out[i] != 0;
    }
    /* AddIgnoreRegions: a parts map with no annotated person is ignored. */
    if (ignore_if_empty && !any) memset(out, 255, n);
    elem_free(&e);
    return MT_OK;
}

static mt_status do_binary(const uint8_t *lab, const aug_record *r, const aug_draw *d,
                           const double M[6], int S, float *out) {
    elem_bufs e;
    mt_status st = do_label(lab, r, d, M, S, &e);
    if (st) return st;
    for (size_t i = 0; i < (size_t)S * S; i++) out[i] = (float)e.out[i];
    elem_free(&e);
    return MT_OK;
}

static mt_status do_normals(const aug_record *r, const aug_draw *d, const double M[6], int S,
                            float *out) {
    elem_bufs e;
    mt_status st = elem_alloc(&e, r->h, r->w, S, 3);
    if (st) return st;
    const size_t n = (size_t)r->h * r->w;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            e.a[3 * i + ch] =
                r->normals_mask[i] ? 2.0 * r->normals[3 * i + ch] / 255.0 - 1.0 : 0.0;
    st = elem_geometry(&e, r->h, r->w, 3, S, d, M, CVX_CUBIC, 1);
    if (!st) {
        const size_t plane = (size_t)S * S;
        for (size_t p = 0; p < plane; p++) {
            double *v = e.out + 3 * p;
            /* FixedResize renormalises (float64 eps keeps 0 at 0) ... */
            const double nn = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) + DBL_EPSILON;
            v[0] /= nn;
            v[1] /= nn;
            v[2] /= nn;
            /* ... and AddIgnoreRegions marks what is still zero. */
            const int zero = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) == 0;
            for (int ch = 0; ch < 3; ch++) out[ch * plane + p] = zero ? 255.0f : (float)v[ch];
        }
    }
    elem_free(&e);
    return st;
}

mt_status aug_apply(const aug_record *r, const aug_draw *d, int S, aug_output *out) {
    if (!r || !out || !r->image || r->h <= 0 || r->w <= 0 || S <= 0 ||
        (out->normals && (!r->normals || !r->normals_mask)))
        return MT_ERR_ARG;
    double M[6] = {1, 0, 0, 0, 1, 0};
    if (d) cvx_rotation_matrix(M, r->w / 2.0, r->h / 2.0, d->rot, d->scale);
    mt_status st = MT_OK;
    if (out->image) st = do_image(r, d, M, S, out->image);
    if (!st && out->semseg && r->semseg) st = do_class_map(r->semseg, r, d, M, S, out->semseg, 0);
    if (!st && out->human_parts && r->human_parts)
        st = do_class_map(r->human_parts, r, d, M, S, out->human_parts, 1);
    if (!st && out->sal && r->sal) st = do_binary(r->sal, r, d, M, S, out->sal);
    if (!st && out->edge && r->edge) st = do_binary(r->edge, r, d, M, S, out->edge);
    if (!st && out->normals) st = do_normals(r, d, M, S, out->normals);
    return st;
}
