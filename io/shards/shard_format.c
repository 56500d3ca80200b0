/* shard_format.c - HDF5 shard files of PASCAL-Context records (shard.h,
 * docs/data-format.md). Every HDF5 call is checked; a failure is reported
 * with the file and, for records, the record index and id. */
#include "mtlora/io/shards/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/base/hash.h"

static const char *const task_names[] = {"semseg", "human_parts", "sal", "normals", "edge"};
enum { NTASK_NAMES = 5 };

int shard_tasks_parse(const char *list, char *bad, size_t badlen) {
    int mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int t = 0; t < NTASK_NAMES; t++)
            if (strlen(task_names[t]) == n && strncmp(task_names[t], p, n) == 0) found = t;
        if (found < 0) {
            if (bad) snprintf(bad, badlen, "%.*s", (int)n, p);
            return -1;
        }
        mask |= 1 << found;
        p = e ? e + 1 : NULL;
    }
    return mask;
}

void shard_tasks_format(int mask, char *out, size_t outlen) {
    size_t used = 0;
    if (outlen) out[0] = '\0';
    for (int t = 0; t < NTASK_NAMES; t++)
        if (mask & (1 << t)) {
            int k = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", task_names[t]);
            if (k < 0 || (size_t)k >= outlen - used) return;
            used += (size_t)k;
        }
}

void shard_record_free(shard_record *r) {
    if (!r) return;
    free(r->jpeg);
    free(r->semseg);
    free(r->human_parts);
    free(r->sal);
    free(r->edge);
    free(r->normals);
    free(r->normals_mask);
    memset(r, 0, sizeof *r);
}

uint64_t shard_record_checksum(const shard_record *r) {
    uint64_t h = MT_FNV1A64_INIT;
    const size_t px = (size_t)r->h * r->w;
    const int32_t size[2] = {r->h, r->w};
    h = mt_fnv1a64(h, r->id, strnlen(r->id, SHARD_ID_LEN));
    h = mt_fnv1a64(h, size, sizeof size);
    h = mt_fnv1a64(h, r->jpeg, r->jpeg_bytes);
    if (r->semseg) h = mt_fnv1a64(h, r->semseg, px);
    if (r->human_parts) h = mt_fnv1a64(h, r->human_parts, px);
    if (r->sal) h = mt_fnv1a64(h, r->sal, px);
    if (r->normals) h = mt_fnv1a64(h, r->normals, 3 * px);
    if (r->normals_mask) h = mt_fnv1a64(h, r->normals_mask, px);
    if (r->edge) h = mt_fnv1a64(h, r->edge, px);
    return h;
}

/* ---------------------------------------------------------------- helpers */

/* Debian's HDF5 builds are not thread-safe, and several loaders (train and
 * validation) each read from their own thread: every public entry point
 * below holds this lock while it calls HDF5. It guards HDF5's own global
 * state, so it is process-wide by necessity. */
static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

static void writer_abort_locked(shard_writer *w);
static void close_locked(shard_file *f);

static void quiet_hdf5(void) {
    /* HDF5 prints its error stack to stderr by default; we report errors
     * ourselves with the file and record. (A library-wide HDF5 setting.) */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static herr_t put_attr_string(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    H5Tset_size(t, strlen(value) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, value);
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    H5Tclose(t);
    return rc;
}

static herr_t put_attr_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *v, hsize_t n) {
    hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = s < 0 ? -1 : H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mem_type, v);
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    return rc;
}

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

/* A uint8 dataset of rank nd, chunked as one chunk and deflated (labels
 * compress 10-50x; the JPEG bytes are stored as they are). */
static herr_t put_u8(hid_t g, const char *name, const uint8_t *data, int nd, const hsize_t *dims,
                     int deflate) {
    hid_t s = H5Screate_simple(nd, dims, NULL);
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    herr_t rc = -1;
    if (s >= 0 && p >= 0) {
        hsize_t n = 1;
        for (int i = 0; i < nd; i++) n *= dims[i];
        if (deflate && n > 0 && (H5Pset_chunk(p, nd, dims) < 0 || H5Pset_deflate(p, 1) < 0)) goto out;
        hid_t d = H5Dcreate2(g, name, H5T_STD_U8LE, s, H5P_DEFAULT, p, H5P_DEFAULT);
        if (d >= 0) {
            rc = H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
            H5Dclose(d);
        }
    }
out:
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    return rc;
}

/* ---------------------------------------------------------------- writer */

struct shard_writer {
    hid_t file, records;
    char path[4096], part[4100];
    char split[16];
    int tasks;
    int64_t n, cap;
    char (*ids)[SHARD_ID_LEN];
    int32_t *hw;
    uint64_t *sums;
    int64_t *jpeg_bytes;
};

static mt_status writer_open_locked(shard_writer **out, const char *path, const char *split, int tasks, const char *source, char *err, size_t errlen) {
    *out = NULL;
    if (strlen(path) >= 4096 || strlen(split) >= 16)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: path or split name too long", path);
    quiet_hdf5();
    shard_writer *w = calloc(1, sizeof *w);
    if (!w) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->part, sizeof w->part, "%s.part", path);
    snprintf(w->split, sizeof w->split, "%s", split);
    w->tasks = tasks;
    w->file = H5Fcreate(w->part, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        free(w);
        return mt_errf(err, errlen, MT_ERR_IO, "%s.part: cannot create HDF5 file", path);
    }
    char tl[96];
    shard_tasks_format(tasks, tl, sizeof tl);
    const int32_t ver = SHARD_FORMAT_VERSION, k_semseg = 21, k_parts = 7;
    const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    w->records = H5Gcreate2(w->file, "records", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (w->records < 0 || put_attr_string(w->file, "format", SHARD_FORMAT_NAME) < 0 ||
        put_attr_num(w->file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &ver, 1) < 0 ||
        put_attr_string(w->file, "split", split) < 0 || put_attr_string(w->file, "tasks", tl) < 0 ||
        put_attr_string(w->file, "source", source ? source : "") < 0 ||
        put_attr_num(w->file, "num_classes_semseg", H5T_STD_I32LE, H5T_NATIVE_INT32, &k_semseg, 1) < 0 ||
        put_attr_num(w->file, "num_classes_human_parts", H5T_STD_I32LE, H5T_NATIVE_INT32, &k_parts, 1) < 0 ||
        put_attr_num(w->file, "image_mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, mean, 3) < 0 ||
        put_attr_num(w->file, "image_std", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, std, 3) < 0 ||
        put_attr_string(w->file, "normals_encoding",
                        "n = 2*v/255 - 1 where normals_mask is 1, else 0 (ignored)") < 0) {
        writer_abort_locked(w);
        return mt_errf(err, errlen, MT_ERR_IO, "%s.part: cannot write the root attributes", path);
    }
    *out = w;
    return MT_OK;
}

static int writer_grow(shard_writer *w) {
    if (w->n < w->cap) return 0;
    const int64_t cap = w->cap ? 2 * w->cap : 256;
    void *a = realloc(w->ids, (size_t)cap * SHARD_ID_LEN);
    if (!a) return -1;
    w->ids = a;
    void *b = realloc(w->hw, (size_t)cap * 2 * sizeof(int32_t));
    if (!b) return -1;
    w->hw = b;
    void *c = realloc(w->sums, (size_t)cap * sizeof(uint64_t));
    if (!c) return -1;
    w->sums = c;
    void *d = realloc(w->jpeg_bytes, (size_t)cap * sizeof(int64_t));
    if (!d) return -1;
    w->jpeg_bytes = d;
    w->cap = cap;
    return 0;
}

static mt_status writer_add_locked(shard_writer *w, const shard_record *r, char *err, size_t errlen) {
    if (writer_grow(w)) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", w->part);
    const int need[5] = {r->semseg != NULL, r->human_parts != NULL, r->sal != NULL,
                         r->normals != NULL && r->normals_mask != NULL, r->edge != NULL};
    for (int t = 0; t < NTASK_NAMES; t++)
        if ((w->tasks & (1 << t)) && !need[t])
            return mt_errf(err, errlen, MT_ERR_ARG, "%s: record %s lacks its %s label", w->part,
                           r->id, task_names[t]);
    char name[32];
    snprintf(name, sizeof name, "%06lld", (long long)w->n);
    hid_t g = H5Gcreate2(w->records, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot create record %s", w->part, name);
    const hsize_t jd[1] = {r->jpeg_bytes}, d2[2] = {(hsize_t)r->h, (hsize_t)r->w},
                  d3[3] = {(hsize_t)r->h, (hsize_t)r->w, 3};
    herr_t rc = put_u8(g, "image_jpeg", r->jpeg, 1, jd, 0);
    if (rc >= 0 && (w->tasks & SHARD_SEMSEG)) rc = put_u8(g, "semseg", r->semseg, 2, d2, 1);
    if (rc >= 0 && (w->tasks & SHARD_HUMAN_PARTS))
        rc = put_u8(g, "human_parts", r->human_parts, 2, d2, 1);
    if (rc >= 0 && (w->tasks & SHARD_SAL)) rc = put_u8(g, "sal", r->sal, 2, d2, 1);
    if (rc >= 0 && (w->tasks & SHARD_NORMALS)) {
        rc = put_u8(g, "normals", r->normals, 3, d3, 1);
        if (rc >= 0) rc = put_u8(g, "normals_mask", r->normals_mask, 2, d2, 1);
    }
    if (rc >= 0 && (w->tasks & SHARD_EDGE)) rc = put_u8(g, "edge", r->edge, 2, d2, 1);
    H5Gclose(g);
    if (rc < 0)
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot write record %s (%s)", w->part, name,
                       r->id);
    /* The checksum covers exactly what was stored. */
    shard_record stored = *r;
    if (!(w->tasks & SHARD_SEMSEG)) stored.semseg = NULL;
    if (!(w->tasks & SHARD_HUMAN_PARTS)) stored.human_parts = NULL;
    if (!(w->tasks & SHARD_SAL)) stored.sal = NULL;
    if (!(w->tasks & SHARD_NORMALS)) stored.normals = stored.normals_mask = NULL;
    if (!(w->tasks & SHARD_EDGE)) stored.edge = NULL;
    memset(w->ids[w->n], 0, SHARD_ID_LEN);
    memcpy(w->ids[w->n], r->id, strnlen(r->id, SHARD_ID_LEN - 1));
    w->hw[2 * w->n] = r->h;
    w->hw[2 * w->n + 1] = r->w;
    w->sums[w->n] = shard_record_checksum(&stored);
    w->jpeg_bytes[w->n] = (int64_t)r->jpeg_bytes;
    w->n++;
    return MT_OK;
}

static herr_t put_index(shard_writer *w) {
    hid_t g = H5Gcreate2(w->file, "index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    const hsize_t n = (hsize_t)w->n, d2[2] = {n, 2};
    herr_t rc = -1;
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, SHARD_ID_LEN);
    H5Tset_strpad(st, H5T_STR_NULLPAD);
    hid_t s1 = H5Screate_simple(1, &n, NULL), s2 = H5Screate_simple(2, d2, NULL);
    hid_t d = H5Dcreate2(g, "ids", st, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0 && (n == 0 || H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->ids) >= 0)) {
        H5Dclose(d);
        d = H5Dcreate2(g, "size", H5T_STD_I32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0 && (n == 0 || H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->hw) >= 0)) {
            H5Dclose(d);
            d = H5Dcreate2(g, "checksum", H5T_STD_U64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (d >= 0 &&
                (n == 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->sums) >= 0)) {
                H5Dclose(d);
                d = H5Dcreate2(g, "jpeg_bytes", H5T_STD_I64LE, s1, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT);
                if (d >= 0 && (n == 0 || H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                  w->jpeg_bytes) >= 0))
                    rc = 0;
            }
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Sclose(s1);
    H5Sclose(s2);
    H5Tclose(st);
    const int64_t nrec = w->n;
    if (rc >= 0)
        rc = put_attr_num(w->file, "num_records", H5T_STD_I64LE, H5T_NATIVE_INT64, &nrec, 1);
    H5Gclose(g);
    return rc;
}

static void writer_free(shard_writer *w) {
    free(w->ids);
    free(w->hw);
    free(w->sums);
    free(w->jpeg_bytes);
    free(w);
}

static mt_status writer_finish_locked(shard_writer *w, char *err, size_t errlen) {
    herr_t rc = put_index(w);
    H5Gclose(w->records);
    if (rc >= 0) rc = H5Fflush(w->file, H5F_SCOPE_GLOBAL);
    if (H5Fclose(w->file) < 0) rc = -1;
    w->file = -1;
    if (rc < 0) {
        mt_status st = mt_errf(err, errlen, MT_ERR_IO, "%s: cannot write the index", w->part);
        unlink(w->part);
        writer_free(w);
        return st;
    }
    /* Durable before it gets its final name. */
    int fd = open(w->part, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0 || rename(w->part, w->path) != 0) {
        mt_status st = mt_errf(err, errlen, MT_ERR_IO, "%s: cannot sync and rename: %s", w->part,
                               strerror(errno));
        if (fd >= 0) close(fd);
        unlink(w->part);
        writer_free(w);
        return st;
    }
    writer_free(w);
    return MT_OK;
}

static void writer_abort_locked(shard_writer *w) {
    if (!w) return;
    if (w->records >= 0 && w->file >= 0) H5Gclose(w->records);
    if (w->file >= 0) H5Fclose(w->file);
    unlink(w->part);
    writer_free(w);
}

/* ---------------------------------------------------------------- reader */

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
    quiet_hdf5();
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

mt_status shard_writer_open(shard_writer **out, const char *path, const char *split, int tasks,
                            const char *source, char *err, size_t errlen) {
    pthread_mutex_lock(&h5_lock);
    mt_status st = writer_open_locked(out, path, split, tasks, source, err, errlen);
    pthread_mutex_unlock(&h5_lock);
    return st;
}

mt_status shard_writer_add(shard_writer *w, const shard_record *r, char *err, size_t errlen) {
    pthread_mutex_lock(&h5_lock);
    mt_status st = writer_add_locked(w, r, err, errlen);
    pthread_mutex_unlock(&h5_lock);
    return st;
}

mt_status shard_writer_finish(shard_writer *w, char *err, size_t errlen) {
    pthread_mutex_lock(&h5_lock);
    mt_status st = writer_finish_locked(w, err, errlen);
    pthread_mutex_unlock(&h5_lock);
    return st;
}

mt_status shard_open(shard_file **out, const char *path, char *err, size_t errlen) {
    pthread_mutex_lock(&h5_lock);
    mt_status st = open_locked(out, path, err, errlen);
    pthread_mutex_unlock(&h5_lock);
    return st;
}

mt_status shard_read(shard_file *f, int64_t i, int tasks, shard_record *r, char *err,
                     size_t errlen) {
    pthread_mutex_lock(&h5_lock);
    mt_status st = read_locked(f, i, tasks, r, err, errlen);
    pthread_mutex_unlock(&h5_lock);
    return st;
}

void shard_writer_abort(shard_writer *w) {
    pthread_mutex_lock(&h5_lock);
    writer_abort_locked(w);
    pthread_mutex_unlock(&h5_lock);
}

void shard_close(shard_file *f) {
    pthread_mutex_lock(&h5_lock);
    close_locked(f);
    pthread_mutex_unlock(&h5_lock);
}
