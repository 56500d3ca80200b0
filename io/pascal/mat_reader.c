/* mat_reader.c - the bounds-checked accessor over libmatio and the parse of
 * the layout's two MAT files with it (mat_reader.h). The isolation of
 * libmatio in a worker process is mat_worker.c. */
#include "mtlora/io/pascal/mat_reader.h"

#include <errno.h>
#include <math.h>
#include <matio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtlora/data/pascal_classes.h"
#include "mat_internal.h"

/* ------------------------------------------------------ libmatio's voice */

/* libmatio reports why it failed only through its log function (silent by
 * default); the last message of this thread is appended to a refusal. */
static _Thread_local char mat_last_log[200];
static pthread_once_t mat_log_once = PTHREAD_ONCE_INIT;

static void mat_log_capture(int level, char *message) {
    (void)level;
    if (!message) return;
    snprintf(mat_last_log, sizeof mat_last_log, "%s", message);
    /* one line: HDF5's messages span several */
    for (char *p = mat_last_log; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* Mat_LogInitFunc calls into HDF5 (H5Eset_auto2, under HDF5's global
 * mutex): done once, under the HDF5 lock, and by the packer before its
 * first fork, never in a worker, whose copy of that mutex may be held by a
 * thread that does not exist there. */
static void mat_log_install(void) {
    mat_hdf5_lock();
    Mat_LogInitFunc("mtlora-pack", mat_log_capture);
    mat_hdf5_unlock();
}

void mat_log_init(void) { pthread_once(&mat_log_once, mat_log_install); }

/* ------------------------------------------------------------ messages */

/* Where a value sits: the file, the variable, the field path within it. */
typedef struct {
    const char *path, *var;
    char field[192];
} mat_where;

static mt_status refuse(const mat_where *at, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mt_status refuse(const mat_where *at, char *err, size_t errlen, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (at->field[0])
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: variable %s field %s: %s", at->path, at->var,
                       at->field, what);
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: variable %s: %s", at->path, at->var, what);
}

/* at with ".name(i)" (1-based, as MATLAB writes it) or ".name" appended. */
static mat_where sub(const mat_where *at, const char *name, long index1) {
    mat_where w = *at;
    const char *dot = at->field[0] ? "." : "";
    const int k = index1 > 0 ? snprintf(w.field, sizeof w.field, "%s%s%s(%ld)", at->field, dot, name, index1)
                             : snprintf(w.field, sizeof w.field, "%s%s%s", at->field, dot, name);
    if (k < 0 || (size_t)k >= sizeof w.field) /* a path this deep is cut, still NUL-terminated */
        w.field[sizeof w.field - 1] = '\0';
    return w;
}

static const char *class_name(int c) {
    static const char *const names[] = {"empty",  "cell",   "struct", "object", "char",   "sparse",
                                        "double", "single", "int8",   "uint8",  "int16",  "uint16",
                                        "int32",  "uint32", "int64",  "uint64", "function", "opaque"};
    return c >= 0 && c < (int)(sizeof names / sizeof names[0]) ? names[c] : "unknown";
}

/* ------------------------------------------------------------ accessor */

/* A validated view of a numeric or char array: n elements of esize bytes
 * at data, rows x cols when 2-D. Only the accessor builds one. */
typedef struct {
    const void *data;
    enum matio_types type;
    size_t esize, n, rows, cols;
} mat_view;

/* The element count from rank and dims; -1 if they are missing or overflow. */
static int elem_count(const matvar_t *v, size_t *n) {
    if (v->rank < 1 || v->rank > 32 || !v->dims) return -1;
    size_t c = 1;
    for (int i = 0; i < v->rank; i++) {
        if (v->dims[i] && c > SIZE_MAX / v->dims[i]) return -1;
        c *= v->dims[i];
    }
    *n = c;
    return 0;
}

/* The shape and data checks shared by numeric and char arrays. */
static mt_status check_array(const matvar_t *v, const mat_where *at, size_t esize, mat_view *out,
                             char *err, size_t errlen) {
    size_t n;
    if (v->rank != 2 || elem_count(v, &n))
        return refuse(at, err, errlen, "has rank %d or corrupt dimensions (a 2-D array is expected)",
                      v->rank);
    if (v->isComplex) return refuse(at, err, errlen, "is complex (a real array is expected)");
    if (n && (!v->data || v->nbytes / esize < n))
        return refuse(at, err, errlen, "declares %zux%zu elements but holds data for %zu", v->dims[0],
                      v->dims[1], v->data ? v->nbytes / esize : (size_t)0);
    out->data = v->data;
    out->type = v->data_type;
    out->esize = esize;
    out->n = n;
    out->rows = v->dims[0];
    out->cols = v->dims[1];
    return MT_OK;
}

/* A real, full (not sparse) numeric 2-D array. */
static mt_status get_numeric(const matvar_t *v, const mat_where *at, mat_view *out, char *err,
                             size_t errlen) {
    if (!v) return refuse(at, err, errlen, "missing or unreadable");
    if (v->class_type == MAT_C_SPARSE)
        return refuse(at, err, errlen, "is sparse (a full numeric array is expected)");
    if (v->class_type < MAT_C_DOUBLE || v->class_type > MAT_C_UINT64)
        return refuse(at, err, errlen, "is of class %s (a numeric array is expected)",
                      class_name(v->class_type));
    const size_t esize = mat_type_size(v->data_type);
    if (!mat_numeric_type(v->data_type) || v->data_size != (int)esize)
        return refuse(at, err, errlen, "has data type %d with %d-byte elements (corrupt)",
                      (int)v->data_type, v->data_size);
    return check_array(v, at, esize, out, err, errlen);
}

/* Element k (< m->n, which every caller loops below) as double. */
static double view_at(const mat_view *m, size_t k) {
    const void *p = m->data;
    switch (m->type) {
    case MAT_T_DOUBLE: return ((const double *)p)[k];
    case MAT_T_SINGLE: return ((const float *)p)[k];
    case MAT_T_INT8: return ((const int8_t *)p)[k];
    case MAT_T_UINT8: return ((const uint8_t *)p)[k];
    case MAT_T_INT16: return ((const int16_t *)p)[k];
    case MAT_T_UINT16: return ((const uint16_t *)p)[k];
    case MAT_T_INT32: return ((const int32_t *)p)[k];
    case MAT_T_UINT32: return ((const uint32_t *)p)[k];
    case MAT_T_INT64: return (double)((const int64_t *)p)[k];
    case MAT_T_UINT64: return (double)((const uint64_t *)p)[k];
    default: return NAN; /* unreachable: get_numeric admits numeric types only */
    }
}

/* v as an integer in lo..hi: -1 for NaN, inf, a fraction or out of range
 * (so a cast never overflows). */
static int as_int(double v, long lo, long hi, long *out) {
    if (!(v >= (double)lo && v <= (double)hi)) return -1;
    const long i = (long)v;
    if ((double)i != v) return -1;
    *out = i;
    return 0;
}

/* A character array as a NUL-terminated ASCII string. */
static mt_status get_string(const matvar_t *v, const mat_where *at, char *out, size_t outlen,
                            char *err, size_t errlen) {
    if (!v) return refuse(at, err, errlen, "missing or unreadable");
    if (v->class_type != MAT_C_CHAR)
        return refuse(at, err, errlen, "is of class %s (a char array is expected)",
                      class_name(v->class_type));
    const enum matio_types t = v->data_type;
    const size_t esize = mat_type_size(t);
    if (t == MAT_T_SINGLE || t == MAT_T_DOUBLE || t == MAT_T_INT64 || t == MAT_T_UINT64 || !esize)
        return refuse(at, err, errlen, "has character data type %d (corrupt)", (int)v->data_type);
    mat_view s;
    mt_status st = check_array(v, at, esize, &s, err, errlen);
    if (st) return st;
    if (s.n >= outlen) return refuse(at, err, errlen, "is %zu characters long (at most %zu)", s.n, outlen - 1);
    for (size_t i = 0; i < s.n; i++) {
        const unsigned c = esize == 1 ? ((const uint8_t *)s.data)[i]
                           : esize == 2 ? ((const uint16_t *)s.data)[i]
                                        : ((const uint32_t *)s.data)[i];
        if (c == 0 || c > 126) return refuse(at, err, errlen, "character %zu is not printable ASCII", i + 1);
        out[i] = (char)c;
    }
    out[s.n] = '\0';
    return MT_OK;
}

/* A struct array whose field names and field data are all present (what
 * Mat_VarGetStructFieldByName dereferences without checking). */
typedef struct {
    const matvar_t *v;
    size_t n;         /* elements */
    unsigned nfields;
    char *const *names;
} mat_struct;

static mt_status get_struct(const matvar_t *v, const mat_where *at, mat_struct *out, char *err,
                            size_t errlen) {
    if (!v) return refuse(at, err, errlen, "missing or unreadable");
    if (v->class_type != MAT_C_STRUCT)
        return refuse(at, err, errlen, "is of class %s (a struct is expected)", class_name(v->class_type));
    size_t n;
    if (elem_count(v, &n)) return refuse(at, err, errlen, "has rank %d or corrupt dimensions", v->rank);
    const unsigned nf = Mat_VarGetNumberOfFields((matvar_t *)v);
    char *const *names = Mat_VarGetStructFieldnames(v);
    if (nf && !names) return refuse(at, err, errlen, "has %u fields but no field names (corrupt)", nf);
    for (unsigned k = 0; k < nf; k++)
        if (!names[k]) return refuse(at, err, errlen, "field %u has no name (corrupt)", k + 1);
    if (n && nf) {
        if (n > SIZE_MAX / nf / sizeof(matvar_t *) || !v->data || v->data_size != (int)sizeof(matvar_t *) ||
            v->nbytes / sizeof(matvar_t *) / nf < n)
            return refuse(at, err, errlen, "declares %zu elements of %u fields but holds no field data for them",
                          n, nf);
    }
    out->v = v;
    out->n = n;
    out->nfields = nf;
    out->names = names;
    return MT_OK;
}

/* Field `name` of element i (< s->n) of a validated struct; NULL when the
 * struct has no such field, or its value could not be read. */
static const matvar_t *struct_field(const mat_struct *s, const char *name, size_t i) {
    for (unsigned k = 0; k < s->nfields; k++)
        if (strcmp(s->names[k], name) == 0) return ((matvar_t *const *)s->v->data)[i * s->nfields + k];
    return NULL;
}

/* 1 if a field value holds no elements (absent, of the empty class or a
 * 0-element array): how MATLAB stores "no parts". */
static int field_empty(const matvar_t *f) {
    size_t n;
    return !f || f->class_type == MAT_C_EMPTY || (elem_count(f, &n) == 0 && n == 0);
}

/* ------------------------------------------------------------ open */

int mat_file_is_hdf5(const char *path) {
    unsigned char h[128];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    return mat_is_hdf5_header(h, n);
}

typedef struct {
    mat_t *mat;
    int locked;
    size_t file_size;
} mat_handle;

static mt_status open_mat(mat_handle *h, const char *path, char *err, size_t errlen) {
    mat_log_init();
    mat_last_log[0] = '\0';
    h->locked = 0;
    struct stat sb;
    if (stat(path, &sb) != 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return mt_errf(err, errlen, MT_ERR_IO, "%s: not a regular file", path);
    h->file_size = (size_t)sb.st_size;
    if (access(path, R_OK) != 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (mat_file_is_hdf5(path)) {
        mat_hdf5_lock();
        h->locked = 1;
    }
    h->mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!h->mat) {
        if (h->locked) mat_hdf5_unlock();
        h->locked = 0;
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: not a readable MATLAB file (corrupt or truncated?)%s%s%s", path,
                       mat_last_log[0] ? " (libmatio: " : "", mat_last_log, mat_last_log[0] ? ")" : "");
    }
    return MT_OK;
}

static void close_mat(mat_handle *h) {
    Mat_Close(h->mat);
    if (h->locked) mat_hdf5_unlock();
}

/* Mat_VarRead or a refusal naming the variable (and libmatio's reason). */
static mt_status read_var(mat_handle *h, const char *path, const char *name, const char *what,
                          matvar_t **out, char *err, size_t errlen) {
    *out = Mat_VarRead(h->mat, name);
    if (*out) return MT_OK;
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: no %svariable '%s' (or unreadable)%s%s%s", path,
                   what, name, mat_last_log[0] ? " (libmatio: " : "", mat_last_log,
                   mat_last_log[0] ? ")" : "");
}

/* ------------------------------------------------------------ LabelMap */

static mt_status labelmap_from(const matvar_t *v, const mat_where *at, int32_t **out, int *h, int *w,
                               char *err, size_t errlen) {
    mat_view m;
    mt_status st = get_numeric(v, at, &m, err, errlen);
    if (st) return st;
    if (m.rows == 0 || m.cols == 0 || m.rows > MAT_MAX_SIDE || m.cols > MAT_MAX_SIDE)
        return refuse(at, err, errlen, "is %zux%zu (each side must be 1..%d)", m.rows, m.cols, MAT_MAX_SIDE);
    int32_t *lm = malloc(sizeof(int32_t) * m.n);
    if (!lm) return refuse(at, err, errlen, "out of memory for %zux%zu", m.rows, m.cols);
    for (size_t x = 0; x < m.cols; x++)
        for (size_t y = 0; y < m.rows; y++) {
            const double d = view_at(&m, x * m.rows + y); /* column-major */
            long id;
            if (as_int(d, 0, PASCAL_CONTEXT_CLASSES, &id)) {
                free(lm);
                return refuse(at, err, errlen, "value %g at row %zu col %zu is not a class id (an integer in 0..%d)",
                              d, y, x, PASCAL_CONTEXT_CLASSES);
            }
            lm[y * m.cols + x] = (int32_t)id;
        }
    *out = lm;
    *h = (int)m.rows;
    *w = (int)m.cols;
    return MT_OK;
}

/* libmatio allocates the declared elements before it inflates a byte of
 * them; every element takes at least one stored byte and zlib packs at
 * most 1032 to one, so more than that many per byte of file is a lie.
 * Mat_VarReadInfo reads only the header (dims, class). */
static mt_status declared_size_plausible(mat_handle *mh, const char *path, const char *name, char *err,
                                         size_t errlen) {
    matvar_t *info = Mat_VarReadInfo(mh->mat, name);
    if (!info) return MT_OK; /* Mat_VarRead says why */
    size_t n = 0;
    const int bad = info->class_type >= MAT_C_CHAR && info->class_type <= MAT_C_UINT64 &&
                    (elem_count(info, &n) || (double)n > 1100.0 * (double)mh->file_size + 4096);
    const mat_where at = {path, name, ""};
    mt_status st = MT_OK;
    if (bad)
        st = refuse(&at, err, errlen, "declares %zu elements, more than a %zu-byte file can hold (corrupt)", n,
                    mh->file_size);
    Mat_VarFree(info);
    return st;
}

static mt_status parse_labelmap(const char *path, int32_t **lm, int *h, int *w, char *err, size_t errlen) {
    mat_handle mh;
    mt_status st = open_mat(&mh, path, err, errlen);
    if (st) return st;
    matvar_t *v = NULL;
    st = declared_size_plausible(&mh, path, "LabelMap", err, errlen);
    if (!st) st = read_var(&mh, path, "LabelMap", "", &v, err, errlen);
    if (!st) {
        const mat_where at = {path, "LabelMap", ""};
        st = labelmap_from(v, &at, lm, h, w, err, errlen);
    }
    Mat_VarFree(v);
    close_mat(&mh);
    return st;
}

/* --------------------------------------------------------- human parts */

/* A 2-D numeric mask, every value finite (nonzero = inside). */
static mt_status get_mask(const matvar_t *v, const mat_where *at, mat_view *m, char *err, size_t errlen) {
    mt_status st = get_numeric(v, at, m, err, errlen);
    if (st) return st;
    if (m->rows == 0 || m->cols == 0 || m->rows > MAT_MAX_SIDE || m->cols > MAT_MAX_SIDE)
        return refuse(at, err, errlen, "is %zux%zu (each side must be 1..%d)", m->rows, m->cols, MAT_MAX_SIDE);
    if (m->type == MAT_T_DOUBLE || m->type == MAT_T_SINGLE)
        for (size_t k = 0; k < m->n; k++)
            if (!isfinite(view_at(m, k)))
                return refuse(at, err, errlen, "value at row %zu col %zu is %g (a mask holds finite values)",
                              k % m->rows, k / m->rows, view_at(m, k));
    return MT_OK;
}

static int mask_nonempty(const mat_view *m) {
    for (size_t k = 0; k < m->n; k++)
        if (view_at(m, k) != 0) return 1;
    return 0;
}

/* Object o's VOC class index, an integer in 0..20. */
static mt_status get_class(const mat_struct *objs, size_t o, const mat_where *at, long *cls, char *err,
                           size_t errlen) {
    const mat_where w = sub(at, "classIndex", 0);
    mat_view c;
    mt_status st = get_numeric(struct_field(objs, "classIndex", o), &w, &c, err, errlen);
    if (st) return st;
    if (c.n != 1) return refuse(&w, err, errlen, "has %zu elements (a scalar is expected)", c.n);
    const double d = view_at(&c, 0);
    if (as_int(d, 0, PASCAL_VOC_CLASSES - 1, cls))
        return refuse(&w, err, errlen, "%g is not a VOC class index (an integer in 0..%d)", d,
                      PASCAL_VOC_CLASSES - 1);
    return MT_OK;
}

/* The official has_human_parts: some person object with a non-empty mask. */
static mt_status any_person(const mat_struct *objs, const mat_where *at, int *has, char *err,
                            size_t errlen) {
    *has = 0;
    for (size_t o = 0; o < objs->n; o++) {
        const mat_where ow = sub(at, "objects", (long)o + 1);
        long cls;
        mt_status st = get_class(objs, o, &ow, &cls, err, errlen);
        const mat_where mw = sub(&ow, "mask", 0);
        mat_view m;
        if (!st) st = get_mask(struct_field(objs, "mask", o), &mw, &m, err, errlen);
        if (st) return st;
        if (cls == PASCAL_PERSON_CLASS && mask_nonempty(&m)) *has = 1;
    }
    return MT_OK;
}

/* Paints the parts of person object o into target (th x tw, allocated
 * from the first person with parts, as the official loader does). */
static mt_status paint_parts(const mat_struct *objs, size_t o, const mat_where *ow, uint8_t **target,
                             int *th, int *tw, char *err, size_t errlen) {
    const matvar_t *pv = struct_field(objs, "parts", o);
    if (field_empty(pv)) return MT_OK;
    const mat_where pw = sub(ow, "parts", 0);
    mat_struct parts;
    mt_status st = get_struct(pv, &pw, &parts, err, errlen);
    if (st) return st;
    if (!*target) {
        mat_view m; /* validated by any_person */
        const mat_where mw = sub(ow, "mask", 0);
        if ((st = get_mask(struct_field(objs, "mask", o), &mw, &m, err, errlen))) return st;
        if (!(*target = calloc(m.n, 1))) return refuse(&mw, err, errlen, "out of memory");
        *th = (int)m.rows;
        *tw = (int)m.cols;
    }
    for (size_t p = 0; p < parts.n; p++) {
        const mat_where qw = sub(ow, "parts", (long)p + 1);
        const mat_where nw = sub(&qw, "part_name", 0), mw = sub(&qw, "mask", 0);
        char name[64];
        mat_view m;
        int pid = -1;
        if ((st = get_string(struct_field(&parts, "part_name", p), &nw, name, sizeof name, err, errlen)))
            return st;
        if ((pid = pascal_human_part_id(name)) < 0)
            return refuse(&nw, err, errlen, "unknown person part '%s'", name);
        if ((st = get_mask(struct_field(&parts, "mask", p), &mw, &m, err, errlen))) return st;
        if (m.rows != (size_t)*th || m.cols != (size_t)*tw)
            return refuse(&mw, err, errlen, "is %zux%zu, not %dx%d as the person's mask", m.rows, m.cols,
                          *th, *tw);
        for (size_t x = 0; x < m.cols; x++)
            for (size_t y = 0; y < m.rows; y++)
                if (view_at(&m, x * m.rows + y) != 0) (*target)[y * m.cols + x] = (uint8_t)pid;
    }
    return MT_OK;
}

static mt_status parts_from(const matvar_t *anno, const char *path, uint8_t **out, int *h, int *w,
                            char *err, size_t errlen) {
    const mat_where at = {path, "anno", ""};
    mat_struct a, objs;
    mt_status st = get_struct(anno, &at, &a, err, errlen);
    if (!st && a.n == 0) st = refuse(&at, err, errlen, "is an empty struct array");
    const mat_where ow = sub(&at, "objects", 0);
    if (!st) st = get_struct(struct_field(&a, "objects", 0), &ow, &objs, err, errlen);
    int has = 0;
    if (!st) st = any_person(&objs, &at, &has, err, errlen);
    uint8_t *target = NULL;
    int th = 0, tw = 0;
    long cls;
    for (size_t o = 0; o < objs.n && !st && has; o++) {
        const mat_where pw = sub(&at, "objects", (long)o + 1);
        if ((st = get_class(&objs, o, &pw, &cls, err, errlen)) || cls != PASCAL_PERSON_CLASS) continue;
        st = paint_parts(&objs, o, &pw, &target, &th, &tw, err, errlen);
    }
    if (st) {
        free(target);
        return st;
    }
    *out = target;
    *h = target ? th : 0;
    *w = target ? tw : 0;
    return MT_OK;
}

static mt_status parse_parts(const char *path, uint8_t **map, int *h, int *w, char *err, size_t errlen) {
    mat_handle mh;
    mt_status st = open_mat(&mh, path, err, errlen);
    if (st) return st;
    matvar_t *anno;
    st = read_var(&mh, path, "anno", "struct ", &anno, err, errlen);
    if (!st && anno->class_type != MAT_C_STRUCT)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: no struct variable 'anno' (it is of class %s)", path,
                     class_name(anno->class_type));
    if (!st) st = parts_from(anno, path, map, h, w, err, errlen);
    Mat_VarFree(anno);
    close_mat(&mh);
    return st;
}

mt_status mat_parse_file(mat_kind kind, const char *path, void **data, int *h, int *w, char *err,
                         size_t errlen) {
    *data = NULL;
    *h = *w = 0;
    if (kind == MAT_KIND_PARTS) return parse_parts(path, (uint8_t **)data, h, w, err, errlen);
    if (kind == MAT_KIND_LABELMAP) return parse_labelmap(path, (int32_t **)data, h, w, err, errlen);
    return mt_errf(err, errlen, MT_ERR_ARG, "%s: unknown MAT file kind %d", path, (int)kind);
}
