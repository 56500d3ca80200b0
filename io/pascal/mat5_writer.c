/* mat5_writer.c - the synthetic scene's MATLAB v5 annotations with libmatio
 * (mat5_writer.h): the human_parts struct and the LabelMap. */
#include "mtlora/io/pascal/mat5_writer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <matio.h>

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
 * are left out, as an annotator would). */
static matvar_t *mat_objects(const synthetic_scene *s) {
    int visible[SYNTHETIC_SCENE_MAX_OBJECTS], n = 0;
    for (int k = 0; k < s->nobj; k++)
        if (object_visible(s, k)) visible[n++] = k;
    size_t dims[2] = {1, (size_t)n};
    matvar_t *objs = Mat_VarCreateStruct2(NULL, 2, dims, OBJECT_FIELDS);
    if (!objs) return NULL;
    for (int i = 0; i < n; i++) {
        int k = visible[i], voc = s->voc[k];
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

mt_status mat5_write_parts(const char *path, const synthetic_scene *s, const char *id, char *err,
                           size_t errlen) {
    if (!path || !s || !id) return mt_errf(err, errlen, MT_ERR_ARG, "mat5_write_parts: null argument");
    size_t one[2] = {1, 1};
    matvar_t *anno = Mat_VarCreateStruct2("anno", 2, one, ANNO_FIELDS);
    if (anno && (struct_set(anno, "imname", 0, mat_string(id)) ||
                 struct_set(anno, "objects", 0, mat_objects(s)))) {
        Mat_VarFree(anno);
        anno = NULL;
    }
    return mat_write_var(path, anno, err, errlen);
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
