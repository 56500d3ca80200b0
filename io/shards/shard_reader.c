/* shard_reader.c - reading and checking HDF5 shard files of
 * PASCAL-Context records (shard.h, docs/data-format.md). Every HDF5 call is
 * checked; a failure is reported with the file and the attribute or
 * dataset, and for records the record index and id. Everything a file
 * claims (counts, sizes, types) is checked against the format before any
 * buffer is sized from it: a hostile shard costs an error message. */
#include "mtlora/io/shards/shard.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard_internal.h"

struct shard_file {
    hid_t file;
    char path[4096];
    shard_info info;
    char (*ids)[SHARD_ID_LEN];
    int32_t *hw;
    uint64_t *sums;
    int64_t *jpeg_bytes;
};

static void close_locked(shard_file *f);

/* ---------------------------------------------------------------- root attributes */

/* "1" and only that: format_version may be stored as a string by other
 * writers (h5py's default for text), never as a float (1.7 is not 1). */
static int parse_version_text(const char *s, int64_t *v) {
    if (!s[0] || strlen(s) > 9) return -1;
    int64_t x = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        x = 10 * x + (*p - '0');
    }
    *v = x;
    return 0;
}

static mt_status read_version(shard_file *f, char *err, size_t errlen) {
    shard_attr a;
    mt_status st = shard_attr_read(f->file, f->path, "format_version",
                                   SHARD_ATTR_INT | SHARD_ATTR_STRING, 15, &a, err, errlen);
    if (st) return st;
    if (a.kind == SHARD_ATTR_STRING && parse_version_text(a.s, &a.i))
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: attribute format_version: '%s', expected the integer %d", f->path, a.s,
                       SHARD_FORMAT_VERSION);
    if (a.i != SHARD_FORMAT_VERSION)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: attribute format_version: %lld, this reader knows version %d", f->path,
                       (long long)a.i, SHARD_FORMAT_VERSION);
    f->info.format_version = SHARD_FORMAT_VERSION;
    return MT_OK;
}

/* An integer attribute that must hold `want` (the label ranges checked on
 * read are those of 21 semseg and 7 part classes). */
static mt_status read_int_equal(shard_file *f, const char *name, int64_t want, char *err,
                                size_t errlen) {
    shard_attr a;
    mt_status st = shard_attr_read(f->file, f->path, name, SHARD_ATTR_INT, 0, &a, err, errlen);
    if (!st && a.i != want)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute %s: %lld, this reader knows %lld",
                     f->path, name, (long long)a.i, (long long)want);
    return st;
}

static mt_status read_root(shard_file *f, char *err, size_t errlen) {
    shard_attr a;
    mt_status st = shard_attr_read(f->file, f->path, "format", SHARD_ATTR_STRING, 63, &a, err, errlen);
    if (!st && strcmp(a.s, SHARD_FORMAT_NAME) != 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute format: '%s', expected '%s'", f->path,
                     a.s, SHARD_FORMAT_NAME);
    if (!st) st = read_version(f, err, errlen);
    if (!st) st = shard_attr_read(f->file, f->path, "split", SHARD_ATTR_STRING,
                                  sizeof f->info.split - 1, &a, err, errlen);
    if (!st && !a.s[0])
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute split: empty", f->path);
    if (!st) snprintf(f->info.split, sizeof f->info.split, "%.15s", a.s); /* checked: <= 15 */
    if (!st) st = shard_attr_read(f->file, f->path, "tasks", SHARD_ATTR_STRING, 95, &a, err, errlen);
    char bad[32] = "";
    if (!st && (f->info.tasks = shard_tasks_parse(a.s, bad, sizeof bad)) < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute tasks: unknown task '%s' in '%s'",
                     f->path, bad, a.s);
    if (!st) st = read_int_equal(f, "num_classes_semseg", 21, err, errlen);
    if (!st) st = read_int_equal(f, "num_classes_human_parts", 7, err, errlen);
    /* num_records is written last: without it the writer did not finish */
    if (!st && H5Aexists(f->file, "num_records") == 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: attribute num_records: missing (the shard was not finished)", f->path);
    if (!st) st = shard_attr_read(f->file, f->path, "num_records", SHARD_ATTR_INT, 0, &a, err, errlen);
    if (!st && (a.i < 0 || a.i > SHARD_MAX_RECORDS))
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute num_records: %lld, not in 0..%d",
                     f->path, (long long)a.i, SHARD_MAX_RECORDS);
    if (!st) f->info.nrecords = a.i;
    return st;
}

/* ---------------------------------------------------------------- index */

/* What an index dataset must be: its class, byte size range, whether it
 * must be unsigned, and shape [n] or [n, 2]. */
typedef struct {
    const char *name;
    H5T_class_t cls;
    size_t min_size, max_size;
    int unsigned_only;
    int ndim;
    hid_t mem; /* the type it is read as (ids: set up by the caller) */
    void *dst;
} index_item;

/* "[a, b, c]" of nd dims. */
static const char *dims_text(char *buf, size_t cap, int nd, const hsize_t *d) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < nd && used < cap; k++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", k ? ", " : "",
                                 (unsigned long long)d[k]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

static mt_status check_shape(const char *path, const char *what, const char *name, hid_t sp, int nd,
                             const hsize_t *want, char *err, size_t errlen) {
    hsize_t dims[H5S_MAX_RANK];
    const int got = H5Sget_simple_extent_ndims(sp);
    int same = got == nd && H5Sget_simple_extent_dims(sp, dims, NULL) == nd;
    for (int k = 0; same && k < nd; k++) same = dims[k] == want[k];
    if (same) return MT_OK;
    char exp[96], have[96];
    dims_text(exp, sizeof exp, nd, want);
    if (got < 0 || got > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) != got)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: unreadable shape, expected %s",
                       path, what, name, exp);
    if (got != nd)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: %d dimensions, expected %s",
                       path, what, name, got, exp);
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: shape %s, expected %s", path, what,
                   name, dims_text(have, sizeof have, got, dims), exp);
}

/* The stored type of a dataset: class, size and sign as the format says. */
static mt_status check_type(const char *path, const char *what, const char *name, hid_t ty,
                            H5T_class_t cls, size_t min_size, size_t max_size, int unsigned_only,
                            char *err, size_t errlen) {
    const H5T_class_t c = H5Tget_class(ty);
    const size_t n = H5Tget_size(ty);
    int ok = c == cls && n >= min_size && n <= max_size;
    if (ok && c == H5T_INTEGER && unsigned_only) ok = H5Tget_sign(ty) == H5T_SGN_NONE;
    if (ok && c == H5T_STRING) ok = H5Tis_variable_str(ty) == 0;
    if (ok) return MT_OK;
    const char *cn = c == H5T_INTEGER ? (H5Tget_sign(ty) == H5T_SGN_NONE ? "an unsigned integer"
                                                                         : "a signed integer")
                     : c == H5T_FLOAT ? "a float"
                     : c == H5T_STRING ? (H5Tis_variable_str(ty) > 0 ? "a variable-length string"
                                                                     : "a fixed string")
                                       : "a non-numeric type";
    const char *want = cls == H5T_STRING ? "a fixed string"
                       : unsigned_only  ? "an unsigned integer"
                                        : "an integer";
    return mt_errf(err, errlen, MT_ERR_FORMAT,
                   "%s%s: dataset %s: stored as %s of %zu bytes, expected %s of %zu..%zu bytes", path,
                   what, name, cn, n, want, min_size, max_size);
}

/* libhdf5 1.10 copies a compact dataset's bytes by the size its dataspace
 * and type give, not the size of the buffer its layout message holds: a
 * corrupt file then makes H5Dread read past HDF5's own buffer (found by
 * fuzz_shard_raw). The stored size is checked before the read. (The writer
 * stores contiguous and chunked datasets; a consistent compact one is
 * fine.) */
static mt_status check_storage(const char *path, const char *what, const char *name, hid_t d,
                               hid_t ty, hid_t sp, int filters_ok, char *err, size_t errlen) {
    hid_t pl = H5Dget_create_plist(d);
    if (pl < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: unreadable layout", path, what,
                       name);
    const H5D_layout_t lay = H5Pget_layout(pl);
    const int nf = lay == H5D_CHUNKED ? H5Pget_nfilters(pl) : 0;
    H5Pclose(pl);
    /* the same HDF5 weakness as read_one_chunk's, for datasets the format
     * stores unfiltered (the index) */
    if (!filters_ok && nf != 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s%s: dataset %s: filtered (the format stores it unfiltered)", path, what, name);
    if (lay < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: unreadable layout", path, what,
                       name);
    if (lay != H5D_COMPACT) return MT_OK;
    const hssize_t np = H5Sget_simple_extent_npoints(sp);
    const size_t ts = H5Tget_size(ty);
    const hsize_t have = H5Dget_storage_size(d);
    if (np < 0 || ts == 0 || have != (hsize_t)np * ts)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s%s: dataset %s: compact storage of %llu bytes for %lld values of %zu bytes "
                       "(corrupt file)",
                       path, what, name, (unsigned long long)have, (long long)np, ts);
    return MT_OK;
}

static mt_status read_index_item(shard_file *f, const index_item *it, const hsize_t *dims,
                                 char *err, size_t errlen) {
    const htri_t ex = H5Lexists(f->file, it->name, H5P_DEFAULT);
    if (ex <= 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s: missing", f->path, it->name);
    hid_t d = H5Dopen2(f->file, it->name, H5P_DEFAULT);
    if (d < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s: cannot be opened (not a dataset?)",
                       f->path, it->name);
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    mt_status st = MT_OK;
    if (ty < 0 || sp < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s: unreadable type or shape", f->path,
                     it->name);
    if (!st)
        st = check_type(f->path, "", it->name, ty, it->cls, it->min_size, it->max_size,
                        it->unsigned_only, err, errlen);
    if (!st) st = check_shape(f->path, "", it->name, sp, it->ndim, dims, err, errlen);
    if (!st) st = check_storage(f->path, "", it->name, d, ty, sp, 0, err, errlen);
    if (!st && dims[0] > 0 && H5Dread(d, it->mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, it->dst) < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s: unreadable (corrupt or truncated?)",
                     f->path, it->name);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    H5Dclose(d);
    return st;
}

/* Each index entry: an id of printable characters, a size within the
 * bounds, a JPEG length within its bound. */
static mt_status check_index(const shard_file *f, char *err, size_t errlen) {
    for (int64_t i = 0; i < f->info.nrecords; i++) {
        char *id = f->ids[i];
        id[SHARD_ID_LEN - 1] = '\0';
        for (const char *p = id; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                return mt_errf(err, errlen, MT_ERR_FORMAT,
                               "%s: dataset index/ids: record %lld: a control character in the id",
                               f->path, (long long)i);
        const int32_t h = f->hw[2 * i], w = f->hw[2 * i + 1];
        if (h <= 0 || w <= 0 || h > SHARD_MAX_SIDE || w > SHARD_MAX_SIDE ||
            (int64_t)h * w > SHARD_MAX_PIXELS)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: dataset index/size: record %lld (%s): bad size %dx%d (sides 1..%d, "
                           "at most %d pixels)",
                           f->path, (long long)i, id, h, w, SHARD_MAX_SIDE, SHARD_MAX_PIXELS);
        if (f->jpeg_bytes[i] <= 0 || f->jpeg_bytes[i] > SHARD_MAX_JPEG_BYTES)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: dataset index/jpeg_bytes: record %lld (%s): %lld bytes, not in 1..%d",
                           f->path, (long long)i, id, (long long)f->jpeg_bytes[i],
                           SHARD_MAX_JPEG_BYTES);
    }
    return MT_OK;
}

static mt_status read_index(shard_file *f, char *err, size_t errlen) {
    const int64_t n = f->info.nrecords; /* bounded by read_root */
    const size_t m = (size_t)(n ? n : 1);
    f->ids = calloc(m, SHARD_ID_LEN);
    f->hw = calloc(m * 2, sizeof(int32_t));
    f->sums = calloc(m, sizeof(uint64_t));
    f->jpeg_bytes = calloc(m, sizeof(int64_t));
    if (!f->ids || !f->hw || !f->sums || !f->jpeg_bytes)
        return mt_errf(err, errlen, MT_ERR_NOMEM,
                       "%s: out of memory for the index of %lld records (attribute num_records)",
                       f->path, (long long)n);
    if (H5Lexists(f->file, "index", H5P_DEFAULT) <= 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: group index: missing", f->path);
    hid_t idt = H5Tcopy(H5T_C_S1);
    if (idt < 0 || H5Tset_size(idt, SHARD_ID_LEN) < 0 || H5Tset_strpad(idt, H5T_STR_NULLPAD) < 0) {
        if (idt >= 0) H5Tclose(idt);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: cannot make the id string type", f->path);
    }
    const index_item items[4] = {
        {"index/ids", H5T_STRING, 1, SHARD_ID_LEN, 0, 1, idt, f->ids},
        {"index/size", H5T_INTEGER, 1, 8, 0, 2, H5T_NATIVE_INT32, f->hw},
        {"index/checksum", H5T_INTEGER, 8, 8, 1, 1, H5T_NATIVE_UINT64, f->sums},
        {"index/jpeg_bytes", H5T_INTEGER, 1, 8, 0, 1, H5T_NATIVE_INT64, f->jpeg_bytes},
    };
    const hsize_t dims[2] = {(hsize_t)n, 2};
    mt_status st = MT_OK;
    for (int k = 0; k < 4 && !st; k++) st = read_index_item(f, &items[k], dims, err, errlen);
    H5Tclose(idt);
    return st ? st : check_index(f, err, errlen);
}

/* ---------------------------------------------------------------- open */

static hid_t open_ro(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    /* read-only shards need no locks (they fail on some network file systems) */
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

static mt_status open_locked(shard_file **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    shard_quiet_hdf5();
    struct stat sb;
    if (stat(path, &sb) != 0 || access(path, R_OK) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) /* a FIFO would block HDF5's open; a directory is no shard */
        return mt_errf(err, errlen, MT_ERR_IO, "%s: not a regular file", path);
    if (strlen(path) >= sizeof((shard_file *)0)->path)
        return mt_errf(err, errlen, MT_ERR_ARG, "%.200s...: path too long", path);
    if (H5Fis_hdf5(path) <= 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not an HDF5 file (corrupt or truncated?)", path);
    shard_file *f = calloc(1, sizeof *f);
    if (!f) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->file = open_ro(path);
    if (f->file < 0) {
        free(f);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: cannot open as HDF5 (corrupt or truncated?)",
                       path);
    }
    mt_status st = read_root(f, err, errlen);
    if (!st) st = read_index(f, err, errlen);
    if (st) {
        close_locked(f);
        return st;
    }
    *out = f;
    return MT_OK;
}

static void close_locked(shard_file *f) {
    if (!f) return;
    if (f->file >= 0) H5Fclose(f->file);
    free(f->ids);
    free(f->hw);
    free(f->sums);
    free(f->jpeg_bytes);
    free(f);
}

const shard_info *shard_file_info(const shard_file *f) { return &f->info; }
const char *shard_file_path(const shard_file *f) { return f->path; }
const char *shard_record_id(const shard_file *f, int64_t i) { return f->ids[i]; }
void shard_record_size(const shard_file *f, int64_t i, int *h, int *w) {
    *h = f->hw[2 * i];
    *w = f->hw[2 * i + 1];
}

/* ---------------------------------------------------------------- records */

typedef struct {
    const shard_file *f;
    int64_t i;
    char what[64]; /* " record N (ID)" */
} rec_ctx;

/* Dataset `name` of record group g: stored as uint8 (a float or wider
 * integer dataset would be converted by HDF5 on read, silently rounding
 * 0.5 to 0 or clamping 300 to 255, and the checksum over the converted
 * bytes would then pass), of exactly the shape nd x dims. */
static mt_status read_u8(const rec_ctx *c, hid_t g, const char *name, int nd, const hsize_t *dims,
                         uint8_t **out, char *err, size_t errlen) {
    const char *path = c->f->path;
    const htri_t ex = H5Lexists(g, name, H5P_DEFAULT);
    if (ex <= 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: missing", path, c->what, name);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: cannot be opened", path,
                       c->what, name);
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    mt_status st = MT_OK;
    if (ty < 0 || sp < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: unreadable type or shape", path,
                     c->what, name);
    if (!st) st = check_type(path, c->what, name, ty, H5T_INTEGER, 1, 1, 1, err, errlen);
    if (!st) st = check_shape(path, c->what, name, sp, nd, dims, err, errlen);
    if (!st) st = check_storage(path, c->what, name, d, ty, sp, 1, err, errlen);
    size_t n = 1;
    for (int k = 0; k < nd; k++) n *= (size_t)dims[k]; /* bounded by the index checks */
    if (!st && !(*out = malloc(n)))
        st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s%s: dataset %s: out of memory (%zu bytes)", path,
                     c->what, name, n);
    const int rv = st ? 0 : shard_read_label_values(d, nd, dims, n, *out);
    if (rv == -2)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s%s: dataset %s: its chunk does not hold %zu bytes (corrupt)", path,
                     c->what, name, n);
    else if (rv == -3)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s%s: dataset %s: not stored as one chunk, deflated or not (the shard format)",
                     path, c->what, name);
    else if (rv < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: dataset %s: unreadable (corrupt or truncated?)",
                     path, c->what, name);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    H5Dclose(d);
    return st;
}

/* The value domain of a label, one pass over bytes already in memory:
 * 0..max, or also 255 (ignore) where allow255. */
static mt_status check_range(const rec_ctx *c, const char *name, const uint8_t *v, size_t n, int max,
                             int allow255, char *err, size_t errlen) {
    for (size_t k = 0; k < n; k++)
        if (v[k] > max && !(allow255 && v[k] == 255))
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s%s: dataset %s: value %d at pixel %zu, expected 0..%d%s", c->f->path,
                           c->what, name, v[k], k, max, allow255 ? " or 255" : "");
    return MT_OK;
}

static mt_status check_labels(const rec_ctx *c, const shard_record *r, char *err, size_t errlen) {
    const size_t px = (size_t)r->h * r->w;
    mt_status st = MT_OK;
    if (!st && r->semseg) st = check_range(c, "semseg", r->semseg, px, 20, 1, err, errlen);
    if (!st && r->human_parts) st = check_range(c, "human_parts", r->human_parts, px, 6, 0, err, errlen);
    if (!st && r->sal) st = check_range(c, "sal", r->sal, px, 1, 0, err, errlen);
    if (!st && r->edge) st = check_range(c, "edge", r->edge, px, 1, 0, err, errlen);
    if (!st && r->normals_mask)
        st = check_range(c, "normals_mask", r->normals_mask, px, 1, 0, err, errlen);
    return st; /* normals: PNG values, every byte is one */
}

static mt_status read_items(const rec_ctx *c, hid_t g, int tasks, shard_record *r, char *err,
                            size_t errlen) {
    const hsize_t jd[1] = {(hsize_t)c->f->jpeg_bytes[c->i]}, d2[2] = {(hsize_t)r->h, (hsize_t)r->w},
                  d3[3] = {(hsize_t)r->h, (hsize_t)r->w, 3};
    const struct { int bit; const char *name; uint8_t **dst; int nd; const hsize_t *dims; } items[] = {
        {0, "image_jpeg", &r->jpeg, 1, jd},
        {SHARD_SEMSEG, "semseg", &r->semseg, 2, d2},
        {SHARD_HUMAN_PARTS, "human_parts", &r->human_parts, 2, d2},
        {SHARD_SAL, "sal", &r->sal, 2, d2},
        {SHARD_NORMALS, "normals", &r->normals, 3, d3},
        {SHARD_NORMALS, "normals_mask", &r->normals_mask, 2, d2},
        {SHARD_EDGE, "edge", &r->edge, 2, d2},
    };
    mt_status st = MT_OK;
    for (size_t k = 0; k < sizeof items / sizeof items[0] && !st; k++) {
        if (items[k].bit && !(tasks & items[k].bit)) continue;
        st = read_u8(c, g, items[k].name, items[k].nd, items[k].dims, items[k].dst, err, errlen);
    }
    if (!st) r->jpeg_bytes = (size_t)jd[0];
    return st;
}

static mt_status read_locked(shard_file *f, int64_t i, int tasks, shard_record *r, char *err,
                             size_t errlen) {
    memset(r, 0, sizeof *r);
    if (i < 0 || i >= f->info.nrecords)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: record %lld out of range (%lld records)",
                       f->path, (long long)i, (long long)f->info.nrecords);
    tasks &= f->info.tasks;
    rec_ctx c = {f, i, ""};
    snprintf(c.what, sizeof c.what, " record %lld (%s)", (long long)i, f->ids[i]);
    snprintf(r->id, sizeof r->id, "%s", f->ids[i]);
    r->h = f->hw[2 * i];
    r->w = f->hw[2 * i + 1];
    char name[40];
    snprintf(name, sizeof name, "records/%06lld", (long long)i);
    hid_t g = H5Lexists(f->file, "records", H5P_DEFAULT) > 0 &&
                      H5Lexists(f->file, name, H5P_DEFAULT) > 0
                  ? H5Gopen2(f->file, name, H5P_DEFAULT)
                  : -1;
    if (g < 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s%s: group %s: missing or not a group", f->path,
                       c.what, name);
    mt_status st = read_items(&c, g, tasks, r, err, errlen);
    H5Gclose(g);
    if (!st) st = check_labels(&c, r, err, errlen);
    /* The checksum can be checked when everything the shard holds was read. */
    if (!st && tasks == f->info.tasks && shard_record_checksum(r) != f->sums[i])
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s%s: checksum mismatch (the record is corrupt; dataset index/checksum)",
                     f->path, c.what);
    if (st) shard_record_free(r);
    return st;
}

/* ---------------------------------------------------------------- a split's shards */

mt_status shard_check_listed(const shard_file *f, const shard_manifest *m,
                             const shard_manifest_entry *e, char *err, size_t errlen) {
    if (strcmp(f->info.split, m->split) != 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: attribute split: '%s', but %s line %d lists it for split '%s'", f->path,
                       f->info.split, m->path, e->line, m->split);
    if (f->info.nrecords != e->records)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: attribute num_records: %lld, but %s line %d says %lld", f->path,
                       (long long)f->info.nrecords, m->path, e->line, (long long)e->records);
    if (f->info.tasks != m->tasks) {
        char have[96], want[96];
        shard_tasks_format(f->info.tasks, have, sizeof have);
        shard_tasks_format(m->tasks, want, sizeof want);
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: attribute tasks: '%s', but the manifest %s says '%s'", f->path, have,
                       m->path, want);
    }
    return MT_OK;
}

typedef struct {
    const char *id;
    int file;
    int64_t rec;
} id_ref;

static int cmp_id_ref(const void *a, const void *b) {
    const id_ref *x = a, *y = b;
    const int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->file != y->file ? (x->file < y->file ? -1 : 1) : (x->rec < y->rec ? -1 : x->rec > y->rec);
}

mt_status shard_check_unique_ids(shard_file *const *files, int n, char *err, size_t errlen) {
    size_t total = 0;
    for (int k = 0; k < n; k++) total += (size_t)files[k]->info.nrecords;
    id_ref *v = malloc(sizeof *v * (total ? total : 1));
    if (!v)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %zu ids",
                       n ? files[0]->path : "shards", total);
    size_t m = 0;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < files[k]->info.nrecords; i++) v[m++] = (id_ref){files[k]->ids[i], k, i};
    qsort(v, m, sizeof *v, cmp_id_ref);
    mt_status st = MT_OK;
    for (size_t j = 1; j < m && !st; j++)
        if (strcmp(v[j - 1].id, v[j].id) == 0)
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s record %lld and %s record %lld: the same image id '%s' (a shard or "
                         "record packed twice)",
                         files[v[j - 1].file]->path, (long long)v[j - 1].rec, files[v[j].file]->path,
                         (long long)v[j].rec, v[j].id);
    free(v);
    return st;
}

/* ---------------------------------------------------------------- locked entry points */

mt_status shard_open(shard_file **out, const char *path, char *err, size_t errlen) {
    shard_h5_lock();
    mt_status st = open_locked(out, path, err, errlen);
    shard_h5_unlock();
    return st;
}

mt_status shard_read(shard_file *f, int64_t i, int tasks, shard_record *r, char *err,
                     size_t errlen) {
    shard_h5_lock();
    mt_status st = read_locked(f, i, tasks, r, err, errlen);
    shard_h5_unlock();
    return st;
}

void shard_close(shard_file *f) {
    shard_h5_lock();
    close_locked(f);
    shard_h5_unlock();
}
