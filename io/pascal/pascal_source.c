/* pascal_source.c - one PASCAL-Context multi-task image and its labels,
 * read as the official loader reads them (see pascal_source.h). */
#include "mtlora/io/pascal/pascal_source.h"

#include <errno.h>
#include <matio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/data/edge_map.h"
#include "mtlora/io/image_codec.h"
#include "mtlora/data/image_warp.h"
#include "mtlora/data/pascal_classes.h"

#define PATH_LEN 4096

/* libmatio reads MATLAB v7.3 files through (serial, not thread-safe) HDF5,
 * and the packer reads from several threads: v7.3 files are read one at a
 * time. MATLAB v5 files (PASCAL's) are plain zlib streams and are read in
 * parallel; inflating their full-size part masks is most of packing. */
static pthread_mutex_t mat_lock = PTHREAD_MUTEX_INITIALIZER;

/* 1 if path has a MAT v7.3 (HDF5) header: version 0x0200 at byte 124. */
static int mat_is_hdf5(const char *path) {
    unsigned char h[128];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    if (n < sizeof h) return 0;
    const int le = h[126] == 'I' && h[127] == 'M';
    const unsigned ver = le ? (unsigned)(h[124] | h[125] << 8) : (unsigned)(h[124] << 8 | h[125]);
    return ver == 0x0200;
}

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

/* ------------------------------------------------------------ MAT helpers */

/* Element k of a numeric MAT variable as double. */
static int mat_number(const matvar_t *v, size_t k, double *out) {
    if (!v || !v->data) return -1;
    switch (v->data_type) {
    case MAT_T_DOUBLE: *out = ((const double *)v->data)[k]; return 0;
    case MAT_T_SINGLE: *out = ((const float *)v->data)[k]; return 0;
    case MAT_T_INT8: *out = ((const int8_t *)v->data)[k]; return 0;
    case MAT_T_UINT8: *out = ((const uint8_t *)v->data)[k]; return 0;
    case MAT_T_INT16: *out = ((const int16_t *)v->data)[k]; return 0;
    case MAT_T_UINT16: *out = ((const uint16_t *)v->data)[k]; return 0;
    case MAT_T_INT32: *out = ((const int32_t *)v->data)[k]; return 0;
    case MAT_T_UINT32: *out = ((const uint32_t *)v->data)[k]; return 0;
    case MAT_T_INT64: *out = (double)((const int64_t *)v->data)[k]; return 0;
    case MAT_T_UINT64: *out = (double)((const uint64_t *)v->data)[k]; return 0;
    default: return -1;
    }
}

static size_t mat_count(const matvar_t *v) {
    size_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->dims[i];
    return n;
}

/* A numeric 2-D MAT matrix (column-major) as a row-major int32 h x w map. */
static mt_status mat_matrix(const matvar_t *v, const char *path, const char *what, int32_t **out,
                            int *h, int *w, char *err, size_t errlen) {
    if (!v || v->rank != 2 || v->class_type == MAT_C_CHAR || v->class_type == MAT_C_STRUCT ||
        v->class_type == MAT_C_CELL || v->isComplex || !v->data)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s is not a real 2-D numeric matrix", path,
                       what);
    const int rows = (int)v->dims[0], cols = (int)v->dims[1];
    if (rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s has size %dx%d", path, what, rows, cols);
    int32_t *m = malloc(sizeof(int32_t) * (size_t)rows * cols);
    if (!m) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    for (int x = 0; x < cols; x++)
        for (int y = 0; y < rows; y++) {
            double d;
            if (mat_number(v, (size_t)x * rows + y, &d)) {
                free(m);
                return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %s has an unsupported data type",
                               path, what);
            }
            m[(size_t)y * cols + x] = (int32_t)d;
        }
    *out = m;
    *h = rows;
    *w = cols;
    return MT_OK;
}

/* Opens a MAT file; a v7.3 (HDF5) file is read under mat_lock until
 * mat_close. */
static mt_status mat_open(mat_t **mat, int *locked, const char *path, char *err, size_t errlen) {
    *locked = 0;
    if (access(path, R_OK) != 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (mat_is_hdf5(path)) {
        pthread_mutex_lock(&mat_lock);
        *locked = 1;
    }
    *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!*mat) {
        if (*locked) pthread_mutex_unlock(&mat_lock);
        *locked = 0;
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a readable MATLAB file (corrupt or truncated?)",
                       path);
    }
    return MT_OK;
}

static void mat_close(mat_t *mat, int locked) {
    Mat_Close(mat);
    if (locked) pthread_mutex_unlock(&mat_lock);
}

static mt_status read_labelmap(const char *root, const char *id, int32_t **lm, int *h, int *w,
                               char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/pascal-context/trainval/%s.mat", root, id);
    mat_t *mat;
    int locked;
    mt_status st = mat_open(&mat, &locked, path, err, errlen);
    if (st) return st;
    matvar_t *v = Mat_VarRead(mat, "LabelMap");
    if (!v)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: no variable 'LabelMap' (or unreadable)", path);
    else
        st = mat_matrix(v, path, "LabelMap", lm, h, w, err, errlen);
    Mat_VarFree(v);
    mat_close(mat, locked);
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

static matvar_t *field(matvar_t *s, const char *name, size_t i) {
    return s && s->class_type == MAT_C_STRUCT ? Mat_VarGetStructFieldByName(s, name, i) : NULL;
}

static int mat_string(const matvar_t *v, char *out, size_t outlen) {
    if (!v || v->class_type != MAT_C_CHAR || !v->data) return -1;
    size_t n = mat_count(v);
    if (n >= outlen) n = outlen - 1;
    const int wide = v->data_type == MAT_T_UINT16 || v->data_type == MAT_T_UTF16;
    for (size_t i = 0; i < n; i++)
        out[i] = wide ? (char)((const uint16_t *)v->data)[i] : ((const char *)v->data)[i];
    out[n] = '\0';
    return 0;
}

static mt_status load_parts(const char *root, const char *id, const mt_image8 *img, int resize,
                            uint8_t **out, char *err, size_t errlen) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/human_parts/%s.mat", root, id);
    mat_t *mat;
    int locked;
    mt_status st = mat_open(&mat, &locked, path, err, errlen);
    if (st) return st;
    matvar_t *anno = Mat_VarRead(mat, "anno");
    matvar_t *objs = field(anno, "objects", 0);
    uint8_t *target = NULL;
    int th = 0, tw = 0, has_person = 0;
    if (!anno || anno->class_type != MAT_C_STRUCT)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: no struct variable 'anno'", path);
    else if (!objs || objs->class_type != MAT_C_STRUCT)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: anno has no struct field 'objects'", path);
    const size_t nobj = st ? 0 : mat_count(objs);
    /* Pass 1, the official has_human_parts: a person object with area > 0. */
    for (size_t o = 0; o < nobj && !st; o++) {
        double cls, px;
        matvar_t *ci = field(objs, "classIndex", o), *mk = field(objs, "mask", o);
        if (!ci || mat_number(ci, 0, &cls) || mat_count(ci) != 1)
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: object %zu has no scalar 'classIndex'", path, o);
        else if (!mk || !mk->data || mk->rank != 2)
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: object %zu has no 2-D 'mask'", path, o);
        else if ((int)cls == PASCAL_PERSON_CLASS)
            for (size_t k = 0; k < mat_count(mk) && !has_person; k++)
                if (!mat_number(mk, k, &px) && px != 0) has_person = 1;
    }
    /* Pass 2, _load_human_parts: paint the parts of every person object. */
    for (size_t o = 0; o < nobj && !st && has_person; o++) {
        double cls;
        mat_number(field(objs, "classIndex", o), 0, &cls);
        matvar_t *parts = field(objs, "parts", o), *mk = field(objs, "mask", o);
        if ((int)cls != PASCAL_PERSON_CLASS || !parts || mat_count(parts) == 0) continue;
        if (parts->class_type != MAT_C_STRUCT) {
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: object %zu 'parts' is not a struct array", path, o);
            break;
        }
        if (!target) {
            th = (int)mk->dims[0];
            tw = (int)mk->dims[1];
            if (!(target = calloc((size_t)th * tw, 1))) {
                st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
        }
        for (size_t p = 0; p < mat_count(parts) && !st; p++) {
            char name[64];
            matvar_t *pn = field(parts, "part_name", p), *pm = field(parts, "mask", p);
            int pid = -1;
            if (mat_string(pn, name, sizeof name))
                st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: object %zu part %zu has no 'part_name'", path, o, p);
            else if ((pid = pascal_human_part_id(name)) < 0)
                st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: object %zu: unknown person part '%s'", path, o, name);
            else if (!pm || !pm->data || pm->rank != 2 || (int)pm->dims[0] != th || (int)pm->dims[1] != tw)
                st = mt_errf(err, errlen, MT_ERR_FORMAT,
                             "%s: object %zu part '%s': mask missing or not %dx%d", path, o, name, th, tw);
            for (int x = 0; x < tw && !st; x++)
                for (int y = 0; y < th; y++) {
                    double v;
                    if (mat_number(pm, (size_t)x * th + y, &v)) {
                        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: part mask of unsupported type", path);
                        break;
                    }
                    if (v != 0) target[(size_t)y * tw + x] = (uint8_t)pid;
                }
        }
    }
    Mat_VarFree(anno);
    mat_close(mat, locked);
    if (!st && !target) { /* no annotated person: an all-zero map */
        th = img->h;
        tw = img->w;
        if (!(target = calloc((size_t)th * tw, 1)))
            st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!st) st = size_check(path, th, tw, img, resize, &target, err, errlen);
    if (st) {
        free(target);
        return st;
    }
    *out = target;
    return MT_OK;
}


/* --------------------------------------------------------------- record */

mt_status pascal_load_record(const char *root, const char *id, int tasks, int resize_labels,
                             shard_record *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
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
        st = load_parts(root, id, &img, resize_labels, &r->human_parts, err, errlen);
    if (!st && (tasks & SHARD_SAL)) st = load_sal(root, id, &img, resize_labels, &r->sal, err, errlen);
    if (!st && (tasks & (SHARD_NORMALS | SHARD_EDGE))) {
        int32_t *lm = NULL;
        int lh = 0, lw = 0;
        st = read_labelmap(root, id, &lm, &lh, &lw, err, errlen);
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
