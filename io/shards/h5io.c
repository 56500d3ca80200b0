/* h5io.c - see h5io.h. HDF5's own error stack printing is silenced; our
 * messages say what failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "mtlora/io/atomic_file.h"
#include "mtlora/io/shards/h5io.h"

#define fail mt_errf

static void quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static hid_t open_ro(const char *path) {
    quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* read-only inputs need no locks (they fail on some network file systems) */
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

int h5_has_dataset(const char *path, const char *name) {
    hid_t f = open_ro(path);
    if (f < 0) return -1;
    int r = H5Lexists(f, name, H5P_DEFAULT) > 0;
    H5Fclose(f);
    return r;
}

void h5_array_free(h5_array *a) {
    if (a) { free(a->data); memset(a, 0, sizeof *a); }
}

mt_status h5_read_f32(const char *path, const char *name, h5_array *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    hid_t f = open_ro(path);
    if (f < 0) return fail(err, errlen, MT_ERR_IO, "%s: cannot open as HDF5", path);
    mt_status st = MT_OK;
    hid_t d = -1, sp = -1, ty = -1;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0 || (d = H5Dopen2(f, name, H5P_DEFAULT)) < 0) {
        st = fail(err, errlen, MT_ERR_FORMAT, "%s: no dataset %s", path, name);
        goto done;
    }
    ty = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ty);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        st = fail(err, errlen, MT_ERR_FORMAT, "%s: dataset %s is not numeric", path, name);
        goto done;
    }
    sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd < 0 || nd > H5IO_MAX_DIMS) {
        st = fail(err, errlen, MT_ERR_FORMAT, "%s: dataset %s has %d dimensions", path, name, nd);
        goto done;
    }
    hsize_t dims[H5IO_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    out->ndim = nd;
    out->count = 1;
    for (int i = 0; i < nd; i++) {
        out->dims[i] = (int64_t)dims[i];
        if (dims[i] > ((hsize_t)1 << 34) || (dims[i] && out->count > ((size_t)1 << 34) / dims[i])) {
            st = fail(err, errlen, MT_ERR_FORMAT, "%s: dataset %s is too large", path, name);
            goto done;
        }
        out->count *= (size_t)dims[i];
    }
    out->data = malloc(out->count * sizeof(float) + 1);
    if (!out->data) {
        st = fail(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %s", path, name);
        goto done;
    }
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data) < 0)
        st = fail(err, errlen, MT_ERR_FORMAT, "%s: cannot read dataset %s", path, name);
done:
    if (st) h5_array_free(out);
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return st;
}

struct h5_writer {
    hid_t f;
    atomic_file af; /* HDF5 writes af.tmp itself; committed on close */
};

mt_status h5_writer_open(h5_writer **out, const char *path, char *err, size_t errlen) {
    quiet();
    *out = NULL;
    h5_writer *w = calloc(1, sizeof *w);
    if (!w) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    mt_status st = atomic_file_reserve(&w->af, path, err, errlen);
    if (st) {
        free(w);
        return st;
    }
    w->f = H5Fcreate(w->af.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->f < 0) {
        st = fail(err, errlen, MT_ERR_IO, "%s: cannot create %s", path, w->af.tmp);
        free(w);
        return st;
    }
    *out = w;
    return MT_OK;
}

mt_status h5_writer_put(h5_writer *w, const char *name, const float *data, int ndim,
                        const int64_t *dims, char *err, size_t errlen) {
    hsize_t hd[H5IO_MAX_DIMS];
    for (int i = 0; i < ndim; i++) hd[i] = (hsize_t)dims[i];
    hid_t sp = H5Screate_simple(ndim, hd, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(w->f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT);
    int bad = d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (bad) return fail(err, errlen, MT_ERR_IO, "%s: cannot write dataset %s", w->af.path, name);
    return MT_OK;
}

mt_status h5_writer_close(h5_writer *w, int keep, char *err, size_t errlen) {
    if (!w) return MT_OK;
    mt_status st = MT_OK;
    if (H5Fclose(w->f) < 0) st = fail(err, errlen, MT_ERR_IO, "%s: cannot close", w->af.path);
    if (keep && !st) st = atomic_file_commit(&w->af, err, errlen); /* removes af.tmp on failure */
    else atomic_file_abort(&w->af);
    free(w);
    return st;
}
