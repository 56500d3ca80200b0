/* shard_writer.c - writing HDF5 shard files of PASCAL-Context records
 * (shard.h, docs/data-format.md). Every HDF5 call is checked; a failure is
 * reported with the file and, for records, the record index and id. The
 * file is written under atomic_file's temporary name and only gets its
 * final one when the index is written and the file is on disk. */
#include "mtlora/io/shards/shard.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/io/atomic_file.h"
#include "shard_internal.h"

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
    atomic_file af; /* the final name and the temporary HDF5 writes */
    char split[16];
    int tasks;
    int64_t n, cap;
    char (*ids)[SHARD_ID_LEN];
    int32_t *hw;
    uint64_t *sums;
    int64_t *jpeg_bytes;
};

static void writer_abort_locked(shard_writer *w);

static mt_status writer_open_locked(shard_writer **out, const char *path, const char *split, int tasks,
                                    const char *source, char *err, size_t errlen) {
    *out = NULL;
    if (strlen(split) >= 16) return mt_errf(err, errlen, MT_ERR_ARG, "%s: split name too long", path);
    shard_quiet_hdf5();
    shard_writer *w = calloc(1, sizeof *w);
    if (!w) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    mt_status st = atomic_file_reserve(&w->af, path, err, errlen);
    if (st) {
        free(w);
        return st;
    }
    snprintf(w->split, sizeof w->split, "%s", split);
    w->tasks = tasks;
    w->records = -1;
    w->file = H5Fcreate(w->af.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        st = mt_errf(err, errlen, MT_ERR_IO, "%s: cannot create the HDF5 file %s", path, w->af.tmp);
        free(w);
        return st;
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
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot write the root attributes", path);
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
    /* What the reader would refuse is not written (shard.h's SHARD_MAX_*). */
    if (w->n >= SHARD_MAX_RECORDS)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: more than %d records in one shard", w->af.path,
                       SHARD_MAX_RECORDS);
    if (r->h <= 0 || r->w <= 0 || r->h > SHARD_MAX_SIDE || r->w > SHARD_MAX_SIDE ||
        (int64_t)r->h * r->w > SHARD_MAX_PIXELS)
        return mt_errf(err, errlen, MT_ERR_ARG,
                       "%s: record %s: size %dx%d (sides 1..%d, at most %d pixels)", w->af.path,
                       r->id, r->h, r->w, SHARD_MAX_SIDE, SHARD_MAX_PIXELS);
    if (!r->jpeg || r->jpeg_bytes == 0 || r->jpeg_bytes > SHARD_MAX_JPEG_BYTES)
        return mt_errf(err, errlen, MT_ERR_ARG, "%s: record %s: a JPEG of %zu bytes (1..%d)",
                       w->af.path, r->id, r->jpeg_bytes, SHARD_MAX_JPEG_BYTES);
    if (writer_grow(w)) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", w->af.path);
    const int need[5] = {r->semseg != NULL, r->human_parts != NULL, r->sal != NULL,
                         r->normals != NULL && r->normals_mask != NULL, r->edge != NULL};
    for (int t = 0; t < SHARD_NTASK_NAMES; t++)
        if ((w->tasks & (1 << t)) && !need[t])
            return mt_errf(err, errlen, MT_ERR_ARG, "%s: record %s lacks its %s label", w->af.path,
                           r->id, shard_task_names[t]);
    char name[32];
    snprintf(name, sizeof name, "%06lld", (long long)w->n);
    hid_t g = H5Gcreate2(w->records, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot create record %s", w->af.path, name);
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
        return mt_errf(err, errlen, MT_ERR_IO, "%s: cannot write record %s (%s)", w->af.path, name,
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
    mt_status st;
    if (rc < 0) {
        st = mt_errf(err, errlen, MT_ERR_IO, "%s: cannot write the index", w->af.path);
        atomic_file_abort(&w->af);
    } else {
        /* HDF5 has closed the file: fsync, rename, fsync of the directory */
        st = atomic_file_commit(&w->af, err, errlen);
    }
    writer_free(w);
    return st;
}

static void writer_abort_locked(shard_writer *w) {
    if (!w) return;
    if (w->records >= 0 && w->file >= 0) H5Gclose(w->records);
    if (w->file >= 0) H5Fclose(w->file);
    atomic_file_abort(&w->af);
    writer_free(w);
}

/* ---------------------------------------------------------------- locked entry points */

mt_status shard_writer_open(shard_writer **out, const char *path, const char *split, int tasks,
                            const char *source, char *err, size_t errlen) {
    shard_h5_lock();
    mt_status st = writer_open_locked(out, path, split, tasks, source, err, errlen);
    shard_h5_unlock();
    return st;
}

mt_status shard_writer_add(shard_writer *w, const shard_record *r, char *err, size_t errlen) {
    shard_h5_lock();
    mt_status st = writer_add_locked(w, r, err, errlen);
    shard_h5_unlock();
    return st;
}

mt_status shard_writer_finish(shard_writer *w, char *err, size_t errlen) {
    shard_h5_lock();
    mt_status st = writer_finish_locked(w, err, errlen);
    shard_h5_unlock();
    return st;
}

void shard_writer_abort(shard_writer *w) {
    shard_h5_lock();
    writer_abort_locked(w);
    shard_h5_unlock();
}
