/* shard_reader.c - reading and checking HDF5 shard files of
 * PASCAL-Context records (shard.h, docs/data-format.md). Every HDF5 call is
 * checked; a failure is reported with the file and, for records, the record
 * index and id. */
#include "mtlora/io/shards/shard.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shard_internal.h"

static int get_attr_string(hid_t obj, const char *name, char *out, size_t outlen) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        char *buf = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n);
        if (buf && H5Aread(a, mt, buf) >= 0) {
            snprintf(out, outlen, "%s", buf);
            rc = 0;
        }
        H5Tclose(mt);
        free(buf);
    }
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int get_attr_i64(hid_t obj, const char *name, int64_t *v) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t s = H5Aget_space(a);
    int rc = -1;
    if (s >= 0 && H5Sget_simple_extent_npoints(s) == 1 && H5Aread(a, H5T_NATIVE_INT64, v) >= 0)
        rc = 0;
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return rc;
}

/* ---------------------------------------------------------------- reader */

static void close_locked(shard_file *f);

struct shard_file {
    hid_t file;
    char path[4096];
    shard_info info;
    char (*ids)[SHARD_ID_LEN];
    int32_t *hw;
    uint64_t *sums;
};

static mt_status read_index(shard_file *f, char *err, size_t errlen) {
    const int64_t n = f->info.nrecords;
    f->ids = calloc((size_t)(n ? n : 1), SHARD_ID_LEN);
    f->hw = calloc((size_t)(n ? n : 1) * 2, sizeof(int32_t));
    f->sums = calloc((size_t)(n ? n : 1), sizeof(uint64_t));
    if (!f->ids || !f->hw || !f->sums)
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory for the index", f->path);
    static const char *const names[3] = {"index/ids", "index/size", "index/checksum"};
    const hsize_t want[3] = {(hsize_t)n, (hsize_t)n * 2, (hsize_t)n};
    for (int k = 0; k < 3; k++) {
        if (H5Lexists(f->file, "index", H5P_DEFAULT) <= 0 ||
            H5Lexists(f->file, names[k], H5P_DEFAULT) <= 0)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s missing", f->path, names[k]);
        hid_t d = H5Dopen2(f->file, names[k], H5P_DEFAULT);
        hid_t s = d < 0 ? -1 : H5Dget_space(d);
        herr_t rc = -1;
        if (s >= 0 && (hsize_t)H5Sget_simple_extent_npoints(s) == want[k]) {
            if (n == 0) rc = 0;
            else if (k == 0) {
                hid_t st = H5Tcopy(H5T_C_S1);
                H5Tset_size(st, SHARD_ID_LEN);
                H5Tset_strpad(st, H5T_STR_NULLPAD);
                rc = H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->ids);
                H5Tclose(st);
            } else if (k == 1)
                rc = H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->hw);
            else
                rc = H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->sums);
        }
        if (s >= 0) H5Sclose(s);
        if (d >= 0) H5Dclose(d);
        if (rc < 0)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: dataset %s unreadable or not %lld entries",
                           f->path, names[k], (long long)want[k]);
    }
    for (int64_t i = 0; i < n; i++) {
        f->ids[i][SHARD_ID_LEN - 1] = '\0';
        if (f->hw[2 * i] <= 0 || f->hw[2 * i + 1] <= 0 || f->hw[2 * i] > 65535 ||
            f->hw[2 * i + 1] > 65535)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: record %lld: bad size %dx%d", f->path,
                           (long long)i, f->hw[2 * i], f->hw[2 * i + 1]);
    }
    return MT_OK;
}

static mt_status open_locked(shard_file **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    shard_quiet_hdf5();
    if (access(path, R_OK) != 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not an HDF5 file (corrupt or truncated?)", path);
    shard_file *f = calloc(1, sizeof *f);
    if (!f) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        free(f);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: cannot open as HDF5 (corrupt or truncated?)",
                       path);
    }
    char fmt[64] = "", tasks[96] = "", bad[32] = "";
    int64_t ver = 0;
    mt_status st = MT_OK;
    if (get_attr_string(f->file, "format", fmt, sizeof fmt) || strcmp(fmt, SHARD_FORMAT_NAME) != 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute 'format' is not '%s'", path,
                     SHARD_FORMAT_NAME);
    else if (get_attr_i64(f->file, "format_version", &ver) || ver != SHARD_FORMAT_VERSION)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: attribute 'format_version' is %lld, this reader knows %d", path,
                     (long long)ver, SHARD_FORMAT_VERSION);
    else if (get_attr_string(f->file, "split", f->info.split, sizeof f->info.split))
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute 'split' missing", path);
    else if (get_attr_string(f->file, "tasks", tasks, sizeof tasks) ||
             (f->info.tasks = shard_tasks_parse(tasks, bad, sizeof bad)) < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute 'tasks' missing or names '%s'", path,
                     bad);
    else if (get_attr_i64(f->file, "num_records", &f->info.nrecords) || f->info.nrecords < 0)
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s: attribute 'num_records' missing (the shard was not finished)", path);
    f->info.format_version = (int)ver;
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
    free(f);
}

const shard_info *shard_file_info(const shard_file *f) { return &f->info; }
const char *shard_record_id(const shard_file *f, int64_t i) { return f->ids[i]; }
void shard_record_size(const shard_file *f, int64_t i, int *h, int *w) {
    *h = f->hw[2 * i];
    *w = f->hw[2 * i + 1];
}

/* Reads uint8 dataset `name` of group g, which must have exactly n elements. */
static int get_u8(hid_t g, const char *name, uint8_t **out, hsize_t n, size_t *count) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -2;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    int rc = -1;
    if (s >= 0) {
        hssize_t np = H5Sget_simple_extent_npoints(s);
        if (n == 0) n = (hsize_t)np; /* JPEG bytes: any length */
        if (np > 0 && (hsize_t)np == n) {
            *out = malloc(n);
            if (*out && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) >= 0) {
                rc = 0;
                if (count) *count = (size_t)n;
            } else {
                free(*out);
                *out = NULL;
            }
        } else
            rc = -3;
    }
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return rc;
}

static mt_status check_range(const shard_file *f, int64_t i, const char *what, const uint8_t *v,
                             size_t n, int max, int allow255, char *err, size_t errlen) {
    for (size_t k = 0; k < n; k++)
        if (v[k] > max && !(allow255 && v[k] == 255))
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s record %lld (%s): %s value %d > %d at pixel %zu",
                           f->path, (long long)i, f->ids[i], what, v[k], max, k);
    return MT_OK;
}

static mt_status read_locked(shard_file *f, int64_t i, int tasks, shard_record *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (i < 0 || i >= f->info.nrecords)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: record %lld out of range (%lld records)",
                       f->path, (long long)i, (long long)f->info.nrecords);
    tasks &= f->info.tasks;
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
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s record %lld (%s): group %s missing", f->path,
                       (long long)i, f->ids[i], name);
    const hsize_t px = (hsize_t)r->h * r->w;
    struct { int bit; const char *name; uint8_t **dst; hsize_t n; } items[] = {
        {-1, "image_jpeg", &r->jpeg, 0},
        {SHARD_SEMSEG, "semseg", &r->semseg, px},
        {SHARD_HUMAN_PARTS, "human_parts", &r->human_parts, px},
        {SHARD_SAL, "sal", &r->sal, px},
        {SHARD_NORMALS, "normals", &r->normals, 3 * px},
        {SHARD_NORMALS, "normals_mask", &r->normals_mask, px},
        {SHARD_EDGE, "edge", &r->edge, px},
    };
    mt_status st = MT_OK;
    for (size_t k = 0; k < sizeof items / sizeof items[0] && !st; k++) {
        if (items[k].bit > 0 && !(tasks & items[k].bit)) continue;
        int rc = get_u8(g, items[k].name, items[k].dst, items[k].n, k == 0 ? &r->jpeg_bytes : NULL);
        if (rc == -2)
            st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s record %lld (%s): dataset %s missing",
                         f->path, (long long)i, f->ids[i], items[k].name);
        else if (rc == -3)
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s record %lld (%s): dataset %s does not hold %dx%d%s values", f->path,
                         (long long)i, f->ids[i], items[k].name, r->h, r->w,
                         items[k].n == 3 * px ? "x3" : "");
        else if (rc < 0)
            st = mt_errf(err, errlen, MT_ERR_FORMAT,
                         "%s record %lld (%s): dataset %s unreadable (corrupt or truncated?)",
                         f->path, (long long)i, f->ids[i], items[k].name);
    }
    H5Gclose(g);
    if (!st && r->semseg) st = check_range(f, i, "semseg", r->semseg, px, 20, 1, err, errlen);
    if (!st && r->human_parts)
        st = check_range(f, i, "human_parts", r->human_parts, px, 6, 0, err, errlen);
    if (!st && r->sal) st = check_range(f, i, "sal", r->sal, px, 1, 0, err, errlen);
    if (!st && r->edge) st = check_range(f, i, "edge", r->edge, px, 1, 0, err, errlen);
    if (!st && r->normals_mask)
        st = check_range(f, i, "normals_mask", r->normals_mask, px, 1, 0, err, errlen);
    /* The checksum can be checked when everything the shard holds was read. */
    if (!st && tasks == f->info.tasks && shard_record_checksum(r) != f->sums[i])
        st = mt_errf(err, errlen, MT_ERR_FORMAT,
                     "%s record %lld (%s): checksum mismatch (the record is corrupt)", f->path,
                     (long long)i, f->ids[i]);
    if (st) {
        shard_record_free(r);
        return st;
    }
    return MT_OK;
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
