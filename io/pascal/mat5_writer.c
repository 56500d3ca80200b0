/* mat5_writer.c - the synthetic scene's MATLAB v5 annotations with libmatio
 * (mat5_writer.h): the human_parts struct and the LabelMap. */
#include "mtlora/io/pascal/mat5_writer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <matio.h>
#include <zlib.h>

#include "mtlora/data/pascal_classes.h"
#include "mtlora/io/atomic_file.h"

/* matio's default header holds the creation time, which would make two runs
 * of the same seed differ; a fixed one keeps the files byte-identical. */
static const char MAT_HEADER[] = "MATLAB 5.0 MAT-file, written by mtlora synthetic_pascal";

/* MATLAB is column-major: element (r, c) of an h x w matrix lives at c*h + r. */
static uint8_t *column_major_mask(const synthetic_scene *s, int k, int code) {
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
static matvar_t *mat_mask(const synthetic_scene *s, int k, int code) {
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
static matvar_t *mat_parts(const synthetic_scene *s, int k) {
    size_t count[SYNTHETIC_SCENE_PART_CODES] = {0}, m = 0;
    if (s->voc[k] == PASCAL_PERSON_CLASS)
        for (size_t p = 0; p < (size_t)s->w * s->h; p++)
            if (s->inst[p] == k + 1) count[s->code[p]]++;
    for (int c = 1; c < SYNTHETIC_SCENE_PART_CODES; c++) m += count[c] > 0;
    size_t dims[2] = {m ? 1 : 0, m};
    matvar_t *parts = Mat_VarCreateStruct2(NULL, 2, dims, PART_FIELDS);
    if (!parts) return NULL;
    size_t i = 0;
    for (int c = 1; c < SYNTHETIC_SCENE_PART_CODES; c++) {
        if (!count[c]) continue;
        if (struct_set(parts, "part_name", i, mat_string(synthetic_scene_part_name(c))) ||
            struct_set(parts, "mask", i, mat_mask(s, k, c))) {
            Mat_VarFree(parts);
            return NULL;
        }
        i++;
    }
    return parts;
}

static int object_visible(const synthetic_scene *s, int k) {
    for (size_t p = 0; p < (size_t)s->w * s->h; p++)
        if (s->inst[p] == k + 1) return 1;
    return 0;
}

/* anno.objects: the visible objects in painter's order (fully hidden ones
 * are left out, as an annotator would); class0, when not NULL, replaces the
 * first object's classIndex (the hostile forms). */
static matvar_t *mat_objects(const synthetic_scene *s, const double *class0) {
    int visible[SYNTHETIC_SCENE_MAX_OBJECTS], n = 0;
    for (int k = 0; k < s->nobj; k++)
        if (object_visible(s, k)) visible[n++] = k;
    size_t dims[2] = {1, (size_t)n};
    matvar_t *objs = Mat_VarCreateStruct2(NULL, 2, dims, OBJECT_FIELDS);
    if (!objs) return NULL;
    for (int i = 0; i < n; i++) {
        int k = visible[i], voc = s->voc[k];
        if (struct_set(objs, "class", (size_t)i, mat_string(pascal_voc_names[voc])) ||
            struct_set(objs, "classIndex", (size_t)i, mat_scalar(i == 0 && class0 ? *class0 : voc)) ||
            struct_set(objs, "mask", (size_t)i, mat_mask(s, k, 0)) ||
            struct_set(objs, "parts", (size_t)i, mat_parts(s, k))) {
            Mat_VarFree(objs);
            return NULL;
        }
    }
    return objs;
}

/* Writes var (and frees it) as the one variable of path. matio creates the
 * file itself, so it writes the atomic writer's temporary, which is renamed
 * over path only once matio has closed it complete. */
static mt_status mat_write_var(const char *path, matvar_t *var, char *err, size_t errlen) {
    if (!var) return mt_errf(err, errlen, MT_ERR_NOMEM, "cannot build the MATLAB data of %s", path);
    atomic_file af;
    mt_status st = atomic_file_reserve(&af, path, err, errlen);
    if (st) {
        Mat_VarFree(var);
        return st;
    }
    mat_t *mat = Mat_CreateVer(af.tmp, MAT_HEADER, MAT_FT_MAT5);
    if (!mat) {
        Mat_VarFree(var);
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "cannot create %s", path);
    }
    int bad = Mat_VarWrite(mat, var, MAT_COMPRESSION_ZLIB) != 0;
    Mat_VarFree(var);
    bad |= Mat_Close(mat) != 0;
    if (bad) {
        atomic_file_abort(&af);
        return mt_errf(err, errlen, MT_ERR_IO, "cannot write %s", path);
    }
    return atomic_file_commit(&af, err, errlen);
}

/* anno of scene s; objects replaced by `objects` when not NULL (taken). */
static matvar_t *mat_anno(const synthetic_scene *s, const char *id, const double *class0,
                          matvar_t *objects) {
    size_t one[2] = {1, 1};
    matvar_t *anno = Mat_VarCreateStruct2("anno", 2, one, ANNO_FIELDS);
    if (!anno) {
        Mat_VarFree(objects);
        return NULL;
    }
    if (struct_set(anno, "imname", 0, mat_string(id)) ||
        struct_set(anno, "objects", 0, objects ? objects : mat_objects(s, class0))) {
        Mat_VarFree(anno);
        return NULL;
    }
    return anno;
}

mt_status mat5_write_parts(const char *path, const synthetic_scene *s, const char *id, char *err,
                           size_t errlen) {
    if (!path || !s || !id) return mt_errf(err, errlen, MT_ERR_ARG, "mat5_write_parts: null argument");
    return mat_write_var(path, mat_anno(s, id, NULL, NULL), err, errlen);
}

mt_status mat5_write_labelmap(const char *path, const synthetic_scene *s, char *err,
                              size_t errlen) {
    if (!path || !s) return mt_errf(err, errlen, MT_ERR_ARG, "mat5_write_labelmap: null argument");
    uint16_t *cm = malloc((size_t)s->w * s->h * sizeof *cm);
    if (!cm) return mt_errf(err, errlen, MT_ERR_NOMEM, "no memory for %s", path);
    for (int c = 0; c < s->w; c++)
        for (int r = 0; r < s->h; r++) cm[(size_t)c * s->h + r] = s->context[(size_t)r * s->w + c];
    size_t dims[2] = {(size_t)s->h, (size_t)s->w};
    matvar_t *v = Mat_VarCreate("LabelMap", MAT_C_UINT16, MAT_T_UINT16, 2, dims, cm, 0);
    free(cm);
    return mat_write_var(path, v, err, errlen);
}

/* ------------------------------------------------------------ hostile forms */

/* A little-endian byte buffer for the RAW forms (uncompressed MAT v5 or
 * v4 written byte by byte, as no writer would). */
typedef struct {
    uint8_t b[512];
    size_t n;
} raw_buf;

static void raw_u32(raw_buf *r, uint32_t v) {
    for (int i = 0; i < 4; i++) r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static void raw_bytes(raw_buf *r, const void *p, size_t n, size_t pad_to) {
    memcpy(r->b + r->n, p, n);
    r->n += n;
    while (r->n % pad_to) r->b[r->n++] = 0;
}

/* The 128-byte v5 header: text, no subsystem data, version 0x0100, "IM". */
static void raw_header(raw_buf *r) {
    memset(r->b, ' ', 116);
    memcpy(r->b, MAT_HEADER, sizeof MAT_HEADER - 1);
    memset(r->b + 116, 0, 8);
    r->b[124] = 0x00;
    r->b[125] = 0x01;
    r->b[126] = 'I';
    r->b[127] = 'M';
    r->n = 128;
}

/* miMATRIX tag (its byte count patched by raw_end), array flags, dims, name. */
static size_t raw_matrix(raw_buf *r, int cls, uint32_t rows, uint32_t cols, const char *name) {
    const size_t at = r->n;
    raw_u32(r, MAT_T_MATRIX);
    raw_u32(r, 0);
    raw_u32(r, MAT_T_UINT32);
    raw_u32(r, 8);
    raw_u32(r, (uint32_t)cls);
    raw_u32(r, 0);
    raw_u32(r, MAT_T_INT32);
    raw_u32(r, 8);
    raw_u32(r, rows);
    raw_u32(r, cols);
    raw_u32(r, MAT_T_INT8);
    raw_u32(r, (uint32_t)strlen(name));
    raw_bytes(r, name, strlen(name), 8);
    return at;
}

static void raw_end(raw_buf *r, size_t at) {
    const uint32_t n = (uint32_t)(r->n - at - 8);
    for (int i = 0; i < 4; i++) r->b[at + 4 + i] = (uint8_t)(n >> (8 * i));
}

static mt_status raw_save(const char *path, const raw_buf *r, char *err, size_t errlen) {
    return atomic_write(path, r->b, r->n, err, errlen);
}

static mt_status hostile_raw(const char *path, mat5_hostile f, char *err, size_t errlen) {
    raw_buf r = {{0}, 0};
    if (f == MAT5_HOSTILE_V4_HUGE) { /* type 0 (double, little-endian), 16384 x 16384, real, name of 9 */
        const uint32_t h[5] = {0, 16384, 16384, 0, 9};
        for (int i = 0; i < 5; i++) raw_u32(&r, h[i]);
        return raw_save(path, &r, err, errlen);
    }
    raw_header(&r);
    if (f == MAT5_HOSTILE_STRUCT_COUNT_BOMB) {
        /* libmatio would build 9e8 x 2 field matvars (hundreds of GB of
         * small allocations) before noticing the data is missing */
        raw_buf in = {{0}, 0};
        const size_t at = raw_matrix(&in, MAT_C_STRUCT, 30000, 30000, "anno");
        raw_u32(&in, (uint32_t)MAT_T_INT32 | 4u << 16);
        raw_u32(&in, 32);
        raw_u32(&in, MAT_T_INT8);
        raw_u32(&in, 64);
        char names[64] = "imname";
        memcpy(names + 32, "objects", 8);
        raw_bytes(&in, names, 64, 8);
        raw_end(&in, at);
        uLongf zn = (uLongf)(sizeof r.b - r.n - 8);
        if (compress2(r.b + r.n + 8, &zn, in.b, (uLong)in.n, 6) != Z_OK)
            return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: zlib compress failed", path);
        raw_u32(&r, MAT_T_COMPRESSED);
        raw_u32(&r, (uint32_t)zn);
        r.n += zn;
    } else if (f == MAT5_HOSTILE_COUNT_OVER_DATA) {
        const size_t at = raw_matrix(&r, MAT_C_UINT16, 64, 64, "LabelMap");
        raw_u32(&r, MAT_T_UINT16); /* the data element: 0 bytes for 64 x 64 elements */
        raw_u32(&r, 0);
        raw_end(&r, at);
    } else { /* MAT5_HOSTILE_STRUCT_NO_FIELD_DATA */
        const size_t at = raw_matrix(&r, MAT_C_STRUCT, 1, 1, "anno");
        raw_u32(&r, (uint32_t)MAT_T_INT32 | 4u << 16); /* field name length 32, small element */
        raw_u32(&r, 32);
        raw_u32(&r, MAT_T_INT8); /* 2 names of 32 bytes declared, the file ends */
        raw_u32(&r, 64);
        raw_end(&r, at);
    }
    return raw_save(path, &r, err, errlen);
}

/* A LabelMap of class double (column-major) with value bad at (0, 0). */
static matvar_t *labelmap_double(const synthetic_scene *s, double bad) {
    double *cm = malloc((size_t)s->w * s->h * sizeof *cm);
    if (!cm) return NULL;
    for (int c = 0; c < s->w; c++)
        for (int r = 0; r < s->h; r++) cm[(size_t)c * s->h + r] = s->context[(size_t)r * s->w + c];
    cm[0] = bad;
    size_t dims[2] = {(size_t)s->h, (size_t)s->w};
    matvar_t *v = Mat_VarCreate("LabelMap", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, cm, 0);
    free(cm);
    return v;
}

/* A 2x2 sparse double LabelMap (one non-zero). */
static matvar_t *labelmap_sparse(void) {
    static mat_uint32_t ir[1] = {0}, jc[3] = {0, 1, 1};
    static double data[1] = {7};
    mat_sparse_t sp = {1, ir, 1, jc, 3, 1, data};
    size_t dims[2] = {2, 2};
    return Mat_VarCreate("LabelMap", MAT_C_SPARSE, MAT_T_DOUBLE, 2, dims, &sp, 0);
}

static matvar_t *labelmap_char(void) {
    uint16_t text[4] = {'a', 'b', 'c', 'd'};
    size_t dims[2] = {2, 2};
    return Mat_VarCreate("LabelMap", MAT_C_CHAR, MAT_T_UINT16, 2, dims, text, 0);
}

/* objects as a 1x1 cell holding a scalar. */
static matvar_t *objects_cell(void) {
    size_t dims[2] = {1, 1};
    matvar_t *cells[1] = {mat_scalar(15)};
    if (!cells[0]) return NULL;
    /* the cell takes the element (its pointer array is copied) */
    matvar_t *cell = Mat_VarCreate(NULL, MAT_C_CELL, MAT_T_CELL, 2, dims, cells, 0);
    if (!cell) Mat_VarFree(cells[0]);
    return cell;
}

mt_status mat5_write_hostile(const char *path, mat5_hostile f, const synthetic_scene *s, const char *id,
                             char *err, size_t errlen) {
    if (!path || (unsigned)f >= MAT5_HOSTILE_COUNT)
        return mt_errf(err, errlen, MT_ERR_ARG, "mat5_write_hostile: bad argument");
    if (f == MAT5_HOSTILE_V4_HUGE || f == MAT5_HOSTILE_COUNT_OVER_DATA || f == MAT5_HOSTILE_STRUCT_NO_FIELD_DATA ||
        f == MAT5_HOSTILE_STRUCT_COUNT_BOMB)
        return hostile_raw(path, f, err, errlen);
    if (f == MAT5_HOSTILE_SPARSE_LABELMAP) return mat_write_var(path, labelmap_sparse(), err, errlen);
    if (f == MAT5_HOSTILE_CHAR_LABELMAP) return mat_write_var(path, labelmap_char(), err, errlen);
    if (!s || !id) return mt_errf(err, errlen, MT_ERR_ARG, "mat5_write_hostile: %s needs a scene", path);
    if (f == MAT5_HOSTILE_LABELMAP_NAN) return mat_write_var(path, labelmap_double(s, NAN), err, errlen);
    if (f == MAT5_HOSTILE_LABELMAP_RANGE) return mat_write_var(path, labelmap_double(s, 1e12), err, errlen);
    if (f == MAT5_HOSTILE_CELL_OBJECTS) {
        matvar_t *objs = objects_cell();
        return mat_write_var(path, objs ? mat_anno(s, id, NULL, objs) : NULL, err, errlen);
    }
    const double cls = f == MAT5_HOSTILE_CLASS_INDEX_HUGE ? 1e12 : f == MAT5_HOSTILE_CLASS_INDEX_NAN ? NAN : 15.5;
    return mat_write_var(path, mat_anno(s, id, &cls, NULL), err, errlen);
}

const char *mat5_hostile_name(mat5_hostile f) {
    static const char *const names[MAT5_HOSTILE_COUNT] = {
        "struct-no-field-data", "sparse-labelmap", "char-labelmap", "cell-objects",
        "count-over-data", "class-index-huge", "class-index-nan", "class-index-fraction",
        "labelmap-nan", "labelmap-range", "v4-huge", "struct-count-bomb"};
    return (unsigned)f < MAT5_HOSTILE_COUNT ? names[f] : NULL;
}
