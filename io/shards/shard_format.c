/* shard_format.c - what the shard writer (shard_writer.c) and reader
 * (shard_reader.c) share: task names and masks, records and their checksum,
 * the HDF5 lock and the one attribute reader (shard.h, shard_internal.h,
 * docs/data-format.md). */
#include "mtlora/io/shards/shard.h"

#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtlora/base/hash.h"
#include "shard_internal.h"

const char *const shard_task_names[] = {"semseg", "human_parts", "sal", "normals", "edge"};

int shard_tasks_parse(const char *list, char *bad, size_t badlen) {
    int mask = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int t = 0; t < SHARD_NTASK_NAMES; t++)
            if (strlen(shard_task_names[t]) == n && strncmp(shard_task_names[t], p, n) == 0) found = t;
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
    for (int t = 0; t < SHARD_NTASK_NAMES; t++)
        if (mask & (1 << t)) {
            int k = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", shard_task_names[t]);
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

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void shard_h5_lock(void) { pthread_mutex_lock(&h5_lock); }
void shard_h5_unlock(void) { pthread_mutex_unlock(&h5_lock); }

void shard_quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------- attributes */

static mt_status attr_fail(char *err, size_t errlen, const char *file, const char *name,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static mt_status attr_fail(char *err, size_t errlen, const char *file, const char *name,
                           const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: attribute %s: %s", file, name, what);
}

static const char *class_text(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "an integer";
    case H5T_FLOAT: return "a float";
    case H5T_STRING: return "a string";
    case H5T_BITFIELD: return "a bitfield";
    case H5T_OPAQUE: return "an opaque value";
    case H5T_COMPOUND: return "a compound value";
    case H5T_REFERENCE: return "a reference";
    case H5T_ENUM: return "an enum";
    case H5T_VLEN: return "a variable-length sequence";
    case H5T_ARRAY: return "an array type";
    default: return "an unknown HDF5 type";
    }
}

static const char *allowed_text(int allowed) {
    switch (allowed) {
    case SHARD_ATTR_STRING: return "a string";
    case SHARD_ATTR_INT: return "an integer";
    case SHARD_ATTR_FLOAT: return "a float";
    case SHARD_ATTR_INT | SHARD_ATTR_STRING: return "an integer (or a string holding one)";
    case SHARD_ATTR_INT | SHARD_ATTR_FLOAT: return "a number";
    default: return "a string or a number";
    }
}

/* One value: a scalar dataspace, or a simple one of exactly one element (h5py
 * writes [1] arrays for some values). An array would overflow a buffer sized
 * for one value, which is the bug this check exists for. */
static mt_status check_one_value(hid_t sp, const char *file, const char *name, char *err,
                                 size_t errlen) {
    const H5S_class_t c = H5Sget_simple_extent_type(sp);
    if (c == H5S_SCALAR) return MT_OK;
    if (c == H5S_NULL) return attr_fail(err, errlen, file, name, "holds no value (a null dataspace)");
    if (c != H5S_SIMPLE) return attr_fail(err, errlen, file, name, "unreadable dataspace");
    const hssize_t n = H5Sget_simple_extent_npoints(sp);
    if (n != 1)
        return attr_fail(err, errlen, file, name, "an array of %lld values, expected a single value",
                         (long long)n);
    return MT_OK;
}

/* The characters of a string attribute: no control characters (they would
 * reach messages and file names), at most maxlen bytes. */
static mt_status check_text(const char *s, size_t maxlen, const char *file, const char *name,
                            char *err, size_t errlen) {
    const size_t n = strnlen(s, maxlen + 1);
    if (n > maxlen)
        return attr_fail(err, errlen, file, name, "a string longer than %zu bytes", maxlen);
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)s[k] < 0x20 || (unsigned char)s[k] == 0x7f)
            return attr_fail(err, errlen, file, name, "a control character (0x%02x) at byte %zu",
                             (unsigned char)s[k], k);
    return MT_OK;
}

/* Fixed-length strings may be NUL-terminated, NUL- or space-padded; a
 * variable-length one is a pointer HDF5 allocates. The memory type is sized
 * from the file's type, so nothing is written past the buffer. */
static mt_status read_string(hid_t a, hid_t ty, const char *file, const char *name, size_t maxlen,
                             shard_attr *out, char *err, size_t errlen) {
    const htri_t vlen = H5Tis_variable_str(ty);
    if (vlen < 0) return attr_fail(err, errlen, file, name, "unreadable string type");
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt < 0) return attr_fail(err, errlen, file, name, "cannot make a string type");
    mt_status st = MT_OK;
    if (vlen) {
        char *p = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &p) < 0)
            st = attr_fail(err, errlen, file, name, "unreadable variable-length string");
        else if (p && !(st = check_text(p, maxlen, file, name, err, errlen)))
            snprintf(out->s, sizeof out->s, "%s", p);
        if (p) H5free_memory(p);
    } else {
        const size_t n = H5Tget_size(ty);
        /* a fixed string may be padded beyond its text; 64 KiB bounds the buffer */
        if (n == 0 || n > 65536) {
            st = attr_fail(err, errlen, file, name, "a fixed string of %zu bytes", n);
        } else {
            char *buf = calloc(n + 1, 1);
            if (!buf)
                st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: attribute %s: out of memory (%zu bytes)",
                             file, name, n + 1);
            else if (H5Tset_size(mt, n) < 0 || H5Tset_strpad(mt, H5T_STR_NULLPAD) < 0 ||
                     H5Aread(a, mt, buf) < 0)
                st = attr_fail(err, errlen, file, name, "unreadable string");
            else if (!(st = check_text(buf, maxlen, file, name, err, errlen)))
                snprintf(out->s, sizeof out->s, "%s", buf);
            free(buf);
        }
    }
    H5Tclose(mt);
    return st;
}

/* Integers of up to 8 bytes, signed or not; an unsigned 64-bit value above
 * INT64_MAX is refused rather than clamped by HDF5's conversion. */
static mt_status read_int(hid_t a, hid_t ty, const char *file, const char *name, shard_attr *out,
                          char *err, size_t errlen) {
    const size_t n = H5Tget_size(ty);
    const H5T_sign_t sg = H5Tget_sign(ty);
    if (n == 0 || n > 8 || sg == H5T_SGN_ERROR)
        return attr_fail(err, errlen, file, name, "an integer of %zu bytes (at most 8 read)", n);
    if (sg == H5T_SGN_NONE && n == 8) {
        uint64_t u;
        if (H5Aread(a, H5T_NATIVE_UINT64, &u) < 0)
            return attr_fail(err, errlen, file, name, "unreadable integer");
        if (u > (uint64_t)INT64_MAX)
            return attr_fail(err, errlen, file, name, "value %llu out of range",
                             (unsigned long long)u);
        out->i = (int64_t)u;
    } else if (H5Aread(a, H5T_NATIVE_INT64, &out->i) < 0) {
        return attr_fail(err, errlen, file, name, "unreadable integer");
    }
    return MT_OK;
}

static mt_status read_float(hid_t a, const char *file, const char *name, shard_attr *out, char *err,
                            size_t errlen) {
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &out->f) < 0)
        return attr_fail(err, errlen, file, name, "unreadable float");
    if (!isfinite(out->f)) return attr_fail(err, errlen, file, name, "not a finite number");
    return MT_OK;
}

static mt_status read_value(hid_t a, const char *file, const char *name, int allowed, size_t maxlen,
                            shard_attr *out, char *err, size_t errlen) {
    hid_t ty = H5Aget_type(a), sp = H5Aget_space(a);
    mt_status st = MT_OK;
    if (ty < 0 || sp < 0) st = attr_fail(err, errlen, file, name, "unreadable type or dataspace");
    if (!st) st = check_one_value(sp, file, name, err, errlen);
    if (!st) {
        const H5T_class_t c = H5Tget_class(ty);
        const int kind = c == H5T_STRING ? SHARD_ATTR_STRING
                         : c == H5T_INTEGER ? SHARD_ATTR_INT
                         : c == H5T_FLOAT ? SHARD_ATTR_FLOAT : 0;
        if (!(kind & allowed))
            st = attr_fail(err, errlen, file, name, "%s, expected %s", class_text(c),
                           allowed_text(allowed));
        else if (kind == SHARD_ATTR_STRING)
            st = read_string(a, ty, file, name, maxlen, out, err, errlen);
        else if (kind == SHARD_ATTR_INT)
            st = read_int(a, ty, file, name, out, err, errlen);
        else
            st = read_float(a, file, name, out, err, errlen);
        if (!st) out->kind = kind;
    }
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    return st;
}

mt_status shard_attr_read(hid_t obj, const char *file, const char *name, int allowed, size_t maxlen,
                          shard_attr *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (maxlen >= SHARD_ATTR_STR_MAX) maxlen = SHARD_ATTR_STR_MAX - 1;
    const htri_t ex = H5Aexists(obj, name);
    if (ex < 0) return attr_fail(err, errlen, file, name, "cannot be looked up (corrupt file?)");
    if (ex == 0) return attr_fail(err, errlen, file, name, "missing");
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return attr_fail(err, errlen, file, name, "cannot be opened (corrupt file?)");
    mt_status st = read_value(a, file, name, allowed, maxlen, out, err, errlen);
    H5Aclose(a);
    return st;
}
