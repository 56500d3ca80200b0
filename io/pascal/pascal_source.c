/* pascal_source.c - one PASCAL-Context multi-task image and its labels,
 * read as the official loader reads them (see pascal_source.h). */
#include "mtlora/io/pascal/pascal_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/data/edge_map.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/data/image_warp.h"
#include "mtlora/data/pascal_classes.h"
#include "mtlora/io/pascal/mat_reader.h"

#define PATH_LEN 4096

void pascal_free_ids(char **ids, int64_t n) {
    if (!ids) return;
    for (int64_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

mt_status pascal_read_split(const char *root, const char *split, char ***ids_out, int64_t *n_out,
                            char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/ImageSets/Context/%s.txt", root, split);
    *ids_out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    char line[512];
    char **ids = NULL;
    int64_t n = 0, cap = 0, lineno = 0;
    mt_status st = MT_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0) continue;
        if (len >= SHARD_ID_LEN || strchr(line, '/') || strchr(line, ' ')) {
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s:%lld: '%s' is not an image id", path,
                         (long long)lineno, line);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **t = realloc(ids, sizeof(char *) * (size_t)cap);
            if (!t) {
                st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            ids = t;
        }
        if (!(ids[n] = strdup(line))) {
            st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        n++;
    }
    if (!st && ferror(f)) st = mt_errf(err, errlen, MT_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!st && n == 0) st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: lists no images", path);
    if (st) {
        pascal_free_ids(ids, n);
        return st;
    }
    *ids_out = ids;
    *n_out = n;
    return MT_OK;
}

/* ------------------------------------------------------------ MAT files */

/* Both MAT files go through mat_reader.h: the bounds-checked accessor, run
 * in a worker process that a hostile file can only take down by itself. */
static mt_status read_labelmap(const char *root, const char *id, int32_t **lm, int *h, int *w,
                               char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/pascal-context/trainval/%s.mat", root, id);
    void *data;
    mt_status st = mat_parse_isolated(MAT_KIND_LABELMAP, path, &data, h, w, err, errlen);
    *lm = data;
    return st;
}

/* --------------------------------------------------------------- labels */

static mt_status size_check(const char *path, int h, int w, const mt_image8 *img, int resize,
                            uint8_t **map, char *err, size_t errlen) {
    if (h == img->h && w == img->w) return MT_OK;
    if (!resize)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: label is %dx%d but the image is %dx%d (pass --resize-labels to resize "
                       "it as the official loader does)",
                       path, h, w, img->h, img->w);
    /* cv2.resize(..., INTER_NEAREST), exactly, through doubles. */
    double *a = malloc(sizeof(double) * (size_t)h * w);
    double *b = malloc(sizeof(double) * (size_t)img->h * img->w);
    uint8_t *out = malloc((size_t)img->h * img->w);
    mt_status st = MT_OK;
    if (!a || !b || !out) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    if (!st) {
        for (size_t i = 0; i < (size_t)h * w; i++) a[i] = (*map)[i];
        st = cvx_resize(b, img->h, img->w, a, h, w, 1, CVX_NEAREST);
        if (st) mt_errf(err, errlen, st, "%s: resize failed", path);
    }
    if (!st) {
        for (size_t i = 0; i < (size_t)img->h * img->w; i++) out[i] = (uint8_t)b[i];
        free(*map);
        *map = out;
        out = NULL;
    }
    free(a);
    free(b);
    free(out);
    return st;
}

static mt_status load_semseg(const char *root, const char *id, const mt_image8 *img, int resize,
                             uint8_t **out, char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/semseg/VOC12/%s.png", root, id);
    if (access(path, F_OK) != 0) snprintf(path, sizeof path, "%s/semseg/pascal-context/%s.png", root, id);
    if (access(path, F_OK) != 0)
        return mt_errf(err, errlen, MT_ERR_IO,
                       "%s/semseg/{VOC12,pascal-context}/%s.png: no segmentation for image %s",
                       root, id, id);
    mt_image8 m = {0};
    mt_status st = img_png_read(path, &m, err, errlen);
    if (st) return st;
    if (m.c != 1) {
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %d channels, a class-index PNG has 1", path, m.c);
        img_free(&m);
        return st;
    }
    for (size_t i = 0; i < (size_t)m.h * m.w; i++)
        if (m.data[i] > 20 && m.data[i] != 255) {
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s: label %d at row %zu col %zu is out of range (0..20 or 255)", path,
                         m.data[i], i / m.w, i % m.w);
            img_free(&m);
            return st;
        }
    st = size_check(path, m.h, m.w, img, resize, &m.data, err, errlen);
    if (st) {
        img_free(&m);
        return st;
    }
    *out = m.data;
    return MT_OK;
}

static mt_status load_sal(const char *root, const char *id, const mt_image8 *img, int resize,
                          uint8_t **out, char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/sal_distill/%s.png", root, id);
    mt_image8 m = {0};
    mt_status st = img_png_read(path, &m, err, errlen);
    if (st) return st;
    if (m.c != 1) {
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %d channels, a saliency PNG has 1", path, m.c);
        img_free(&m);
        return st;
    }
    /* v / 255 > 0.5 in double is v >= 128. */
    for (size_t i = 0; i < (size_t)m.h * m.w; i++) m.data[i] = m.data[i] / 255.0 > 0.5;
    st = size_check(path, m.h, m.w, img, resize, &m.data, err, errlen);
    if (st) {
        img_free(&m);
        return st;
    }
    *out = m.data;
    return MT_OK;
}

static mt_status load_normals(const char *root, const char *id, const mt_image8 *img,
                              const int32_t *lm, int lh, int lw, uint8_t **code, uint8_t **mask,
                              char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/normals_distill/%s.png", root, id);
    mt_image8 m = {0};
    mt_status st = img_png_read(path, &m, err, errlen);
    if (st) return st;
    if (m.c != 3)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %d channels, a normals PNG has 3 (RGB)", path, m.c);
    else if (m.h != lh || m.w != lw)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: normals are %dx%d but pascal-context/trainval/%s.mat LabelMap is %dx%d",
                     path, m.h, m.w, id, lh, lw);
    else if (m.h != img->h || m.w != img->w)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: normals are %dx%d but the image is %dx%d", path,
                     m.h, m.w, img->h, img->w);
    if (!st && !(*mask = malloc((size_t)m.h * m.w)))
        st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    if (st) {
        img_free(&m);
        return st;
    }
    for (size_t i = 0; i < (size_t)m.h * m.w; i++) (*mask)[i] = (uint8_t)pascal_normals_valid(lm[i]);
    *code = m.data;
    return MT_OK;
}

static mt_status load_edge(const char *path, const mt_image8 *img, const int32_t *lm, int lh,
                           int lw, int resize, uint8_t **out, char *err, size_t errlen) {
    uint8_t *e = malloc((size_t)lh * lw);
    if (!e) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    mt_status st = edge_from_labelmap(e, lm, lh, lw);
    if (st) st = mt_errf(err, errlen, st, "%s: edge map failed", path);
    if (!st) st = size_check(path, lh, lw, img, resize, &e, err, errlen);
    if (st) {
        free(e);
        return st;
    }
    *out = e;
    return MT_OK;
}

/* ---------------------------------------------------------- human parts */

static mt_status load_parts(const char *root, const char *id, const mt_image8 *img, int resize,
                            uint8_t **out, int *mat_failed, char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/human_parts/%s.mat", root, id);
    void *data;
    int th, tw;
    mt_status st = mat_parse_isolated(MAT_KIND_PARTS, path, &data, &th, &tw, err, errlen);
    *mat_failed = st != MT_OK;
    if (st) return st;
    uint8_t *target = data;
    if (!target) { /* no annotated person: an all-zero map */
        th = img->h;
        tw = img->w;
        if (!(target = calloc((size_t)th * tw, 1)))
            return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    st = size_check(path, th, tw, img, resize, &target, err, errlen);
    if (st) {
        free(target);
        return st;
    }
    *out = target;
    return MT_OK;
}


/* --------------------------------------------------------------- record */

mt_status pascal_load_record(const char *root, const char *id, int tasks, int resize_labels,
                             shard_record *r, int *mat_failed, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    *mat_failed = 0;
    if (strlen(id) >= SHARD_ID_LEN)
        return mt_errf(err, errlen, MT_ERR_ARG, "image id '%s' longer than %d characters", id,
                       SHARD_ID_LEN - 1);
    snprintf(r->id, sizeof r->id, "%s", id);
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/JPEGImages/%s.jpg", root, id);
    mt_image8 img = {0};
    mt_status st = img_jpeg_read(path, &img, &r->jpeg, &r->jpeg_bytes, err, errlen);
    if (st) return st;
    r->h = img.h;
    r->w = img.w;
    if (tasks & SHARD_SEMSEG) st = load_semseg(root, id, &img, resize_labels, &r->semseg, err, errlen);
    if (!st && (tasks & SHARD_HUMAN_PARTS))
        st = load_parts(root, id, &img, resize_labels, &r->human_parts, mat_failed, err, errlen);
    if (!st && (tasks & SHARD_SAL)) st = load_sal(root, id, &img, resize_labels, &r->sal, err, errlen);
    if (!st && (tasks & (SHARD_NORMALS | SHARD_EDGE))) {
        int32_t *lm = NULL;
        int lh = 0, lw = 0;
        st = read_labelmap(root, id, &lm, &lh, &lw, err, errlen);
        *mat_failed = st != MT_OK;
        if (!st && (tasks & SHARD_NORMALS))
            st = load_normals(root, id, &img, lm, lh, lw, &r->normals, &r->normals_mask, err, errlen);
        if (!st && (tasks & SHARD_EDGE)) {
            snprintf(path, sizeof path, "%s/pascal-context/trainval/%s.mat", root, id);
            st = load_edge(path, &img, lm, lh, lw, resize_labels, &r->edge, err, errlen);
        }
        free(lm);
    }
    img_free(&img);
    if (st) shard_record_free(r);
    return st;
}
