/* pth_tensor.c - one chosen tensor (pth_internal.h): its view (offset,
 * sizes, strides) checked against its storage, then gathered row by row
 * into a contiguous copy and converted: f16, bf16 and f64 to f32 exactly
 * as tensor.float() does (f16 and bf16 widen exactly, f64 rounds to
 * nearest even), every integer kind and bool to i64 (bool as 0 or 1). */
#include <stdlib.h>
#include <string.h>

#include "pth_internal.h"
#include "mtlora/base/half.h"

/* Elements a tensor may have: 2^40 (a 4 TiB f32 tensor), so counts and
 * byte sizes never overflow size_t. */
#define PTH_MAX_COUNT ((uint64_t)1 << 40)

size_t pth_stype_size(pth_stype s) {
    switch (s) {
    case PTH_S_F32: case PTH_S_I32: return 4;
    case PTH_S_F16: case PTH_S_BF16: case PTH_S_I16: return 2;
    case PTH_S_F64: case PTH_S_I64: return 8;
    case PTH_S_I8: case PTH_S_U8: case PTH_S_BOOL: return 1;
    }
    return 0;
}

const char *pth_stype_name(pth_stype s) {
    switch (s) {
    case PTH_S_F32: return "FloatStorage";
    case PTH_S_F16: return "HalfStorage";
    case PTH_S_BF16: return "BFloat16Storage";
    case PTH_S_F64: return "DoubleStorage";
    case PTH_S_I64: return "LongStorage";
    case PTH_S_I32: return "IntStorage";
    case PTH_S_I16: return "ShortStorage";
    case PTH_S_I8: return "CharStorage";
    case PTH_S_U8: return "ByteStorage";
    case PTH_S_BOOL: return "BoolStorage";
    }
    return "?";
}

static int is_float(pth_stype s) {
    return s == PTH_S_F32 || s == PTH_S_F16 || s == PTH_S_BF16 || s == PTH_S_F64;
}

/* Elements of t; -1 when the product passes PTH_MAX_COUNT. */
static int tensor_count(const pv *t, size_t *count) {
    uint64_t c = 1;
    for (int d = 0; d < t->u.t->ndim; d++) {
        const uint64_t s = (uint64_t)t->u.t->shape[d];
        if (s > PTH_MAX_COUNT || (s && c > PTH_MAX_COUNT / s)) return -1;
        c *= s;
    }
    *count = (size_t)c;
    return 0;
}

size_t pth_tensor_out_bytes(const pv *t, const char **bad) {
    size_t count = 0;
    *bad = NULL;
    if (tensor_count(t, &count)) {
        *bad = "more than 2^40 elements";
        return 0;
    }
    return count * (is_float(t->u.t->storage->u.sto->stype) ? 4 : 8);
}

/* n elements of storage type s at src, step elements apart, into dst[0..n). */
static void run_f32(pth_stype s, const unsigned char *src, int64_t step, size_t n, float *dst) {
    const size_t es = pth_stype_size(s), jump = (size_t)step * es;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * jump;
        switch (s) {
        case PTH_S_F32: { uint32_t u = pth_le32(p); memcpy(&dst[i], &u, 4); break; }
        case PTH_S_F16: dst[i] = mt_half_to_float(pth_le16(p)); break;
        case PTH_S_BF16: { uint32_t u = (uint32_t)pth_le16(p) << 16; memcpy(&dst[i], &u, 4); break; }
        case PTH_S_F64: { uint64_t u = pth_le64(p); double d; memcpy(&d, &u, 8); dst[i] = (float)d; break; }
        default: dst[i] = 0; break;
        }
    }
}

static void run_i64(pth_stype s, const unsigned char *src, int64_t step, size_t n, int64_t *dst) {
    const size_t es = pth_stype_size(s), jump = (size_t)step * es;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * jump;
        switch (s) {
        case PTH_S_I64: dst[i] = (int64_t)pth_le64(p); break;
        case PTH_S_I32: dst[i] = (int32_t)pth_le32(p); break;
        case PTH_S_I16: dst[i] = (int16_t)pth_le16(p); break;
        case PTH_S_I8: dst[i] = (int8_t)p[0]; break;
        case PTH_S_U8: dst[i] = p[0]; break;
        case PTH_S_BOOL: dst[i] = p[0] != 0; break;
        default: dst[i] = 0; break;
        }
    }
}

mt_status pth_tensor_build(const char *path, const pv *t, const unsigned char *data, pth_tensor *out,
                           char *err, size_t errlen) {
    const pv *s = t->u.t->storage;
    const pth_stype st = s->u.sto->stype;
    const size_t es = pth_stype_size(st);
    const int nd = t->u.t->ndim;
    size_t count = 0;
    if (tensor_count(t, &count))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: more than 2^40 elements", path, out->name);
    out->stored = st;
    out->dtype = is_float(st) ? PTH_F32 : PTH_I64;
    out->is_parameter = t->u.t->is_parameter;
    out->ndim = nd;
    for (int d = 0; d < nd; d++) out->shape[d] = t->u.t->shape[d];
    out->count = count;
    out->data = NULL;
    if (!count) return MT_OK;
    /* the last element's index: offset + sum (size - 1) * stride, inside the storage */
    uint64_t last = (uint64_t)t->u.t->offset;
    const uint64_t numel = (uint64_t)s->u.sto->numel;
    int over = last >= numel;
    for (int d = 0; d < nd && !over; d++) {
        const uint64_t k = (uint64_t)t->u.t->shape[d] - 1, r = (uint64_t)t->u.t->stride[d];
        if (k && r > (numel - 1 - last) / k) over = 1;
        else last += k * r;
    }
    if (over)
        return mt_errf(err, errlen, MT_ERR_FORMAT,
                       "%s: tensor %s: its view (offset %lld, %d dimensions) reaches past the end of "
                       "storage %s of %lld elements", path, out->name, (long long)t->u.t->offset, nd,
                       s->u.sto->key, (long long)s->u.sto->numel);
    const size_t osz = out->dtype == PTH_F32 ? 4 : 8;
    if (!(out->data = malloc(count * osz)))
        return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: tensor %s: cannot allocate %zu bytes", path,
                       out->name, count * osz);
    const unsigned char *base = data + ((size_t)s->u.sto->base + (size_t)t->u.t->offset) * es;
    /* rows along the last dimension; idx counts over the others */
    const size_t row = nd ? (size_t)t->u.t->shape[nd - 1] : 1;
    const int64_t step = nd ? t->u.t->stride[nd - 1] : 1;
    int64_t idx[PTH_MAX_DIMS] = {0};
    size_t off = 0; /* elements from base to the row's first */
    for (size_t done = 0; done < count; done += row) {
        if (out->dtype == PTH_F32) run_f32(st, base + off * es, step, row, (float *)out->data + done);
        else run_i64(st, base + off * es, step, row, (int64_t *)out->data + done);
        for (int d = nd - 2; d >= 0; d--) { /* next row */
            off += (size_t)t->u.t->stride[d];
            if (++idx[d] < t->u.t->shape[d]) break;
            off -= (size_t)t->u.t->stride[d] * (size_t)t->u.t->shape[d];
            idx[d] = 0;
        }
    }
    return MT_OK;
}
