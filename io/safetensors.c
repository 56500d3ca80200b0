/* safetensors.c - see safetensors.h. The JSON header is parsed by jansson
 * (duplicate names refused, NUL in strings refused, 64-bit integers), after
 * its length has been checked against the file and a fixed bound; then
 * every tensor's dtype, shape and offsets are checked against the data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mtlora/io/atomic_file.h"
#include "mtlora/io/safetensors.h"

#define fail mt_errf

/* A header larger than this is refused unparsed: real ones are a few
 * hundred bytes per tensor, so 100 MiB is hundreds of thousands of tensors. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

static const struct {
    const char *name;
    st_dtype d;
    size_t size;
} DTYPES[] = {{"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
              {"I64", ST_I64, 8}, {"I32", ST_I32, 4}, {"U8", ST_U8, 1},    {"BOOL", ST_BOOL, 1}};

size_t st_dtype_size(st_dtype d) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
        if (DTYPES[i].d == d) return DTYPES[i].size;
    return 0;
}

const char *st_dtype_name(st_dtype d) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof *DTYPES; i++)
        if (DTYPES[i].d == d) return DTYPES[i].name;
    return "?";
}

/* ---- header reader ------------------------------------------------------- */

static mt_status malformed(const char *path, const char *what, char *err, size_t errlen) {
    return fail(err, errlen, MT_ERR_FORMAT, "%s: malformed safetensors header: %s", path, what);
}

/* An array of at most cap non-negative integers. */
static mt_status int_array(const char *path, const st_tensor *t, const char *field, const json_t *a,
                           int64_t *v, int cap, int *n, char *err, size_t errlen) {
    if (!json_is_array(a))
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: malformed safetensors header: tensor %s: %s is not an array", path, t->name,
                    field);
    if (json_array_size(a) > (size_t)cap)
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: malformed safetensors header: tensor %s: %s has more than %d values", path,
                    t->name, field, cap);
    *n = (int)json_array_size(a);
    for (int i = 0; i < *n; i++) {
        const json_t *x = json_array_get(a, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return fail(err, errlen, MT_ERR_FORMAT,
                        "%s: malformed safetensors header: tensor %s: %s: expected a non-negative "
                        "integer", path, t->name, field);
        v[i] = (int64_t)json_integer_value(x);
    }
    return MT_OK;
}

/* One tensor's entry: exactly dtype, shape and data_offsets. */
static mt_status parse_tensor(const char *path, json_t *o, st_tensor *t, char *err, size_t errlen) {
    if (!json_is_object(o))
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: malformed safetensors header: tensor %s: expected '{'", path, t->name);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: unknown field %s", path, t->name,
                        key);
    }
    const json_t *dt = json_object_get(o, "dtype"), *sh = json_object_get(o, "shape"),
                 *off = json_object_get(o, "data_offsets");
    if (!dt || !sh || !off)
        return fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s lacks dtype, shape or offsets", path,
                    t->name);
    size_t i = 0;
    const char *dname = json_is_string(dt) ? json_string_value(dt) : "(not a string)";
    while (i < sizeof DTYPES / sizeof *DTYPES && strcmp(DTYPES[i].name, dname)) i++;
    if (i == sizeof DTYPES / sizeof *DTYPES)
        return fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: unsupported dtype %s", path, t->name,
                    dname);
    t->dtype = DTYPES[i].d;
    mt_status st = int_array(path, t, "shape", sh, t->shape, ST_MAX_DIMS, &t->ndim, err, errlen);
    if (st) return st;
    int64_t o2[2];
    int n;
    if ((st = int_array(path, t, "data_offsets", off, o2, 2, &n, err, errlen))) return st;
    if (n != 2) return malformed(path, "data_offsets needs two values", err, errlen);
    t->begin = (size_t)o2[0];
    t->end = (size_t)o2[1];
    return MT_OK;
}

/* __metadata__ maps strings to strings (the format allows nothing else). */
static mt_status check_metadata(const char *path, json_t *m, char *err, size_t errlen) {
    if (!json_is_object(m)) return malformed(path, "__metadata__: expected '{'", err, errlen);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (!json_is_string(v))
            return fail(err, errlen, MT_ERR_FORMAT,
                        "%s: malformed safetensors header: __metadata__ value of %s is not a string",
                        path, key);
    }
    return MT_OK;
}

/* Fills t's count and checks its offsets against the data section. */
static mt_status check_extent(const char *path, st_tensor *t, size_t data_len, char *err,
                              size_t errlen) {
    size_t count = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] > ((int64_t)1 << 40) ||
            (t->shape[d] && count > ((size_t)1 << 40) / (size_t)t->shape[d]))
            return fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: shape too large", path, t->name);
        count *= (size_t)t->shape[d];
    }
    t->count = count;
    if (t->begin > t->end || t->end > data_len || t->end - t->begin != count * st_dtype_size(t->dtype))
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: tensor %s: offsets [%zu, %zu) do not match its shape and dtype or run past "
                    "the %zu data bytes (truncated?)", path, t->name, t->begin, t->end, data_len);
    return MT_OK;
}

static mt_status parse_header(st_file *f, const char *path, const char *hdr, size_t hlen, char *err,
                              size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_duplicate_key)
            return fail(err, errlen, MT_ERR_FORMAT,
                        "%s: malformed safetensors header: a tensor or field appears twice (%s)", path,
                        je.text);
        return fail(err, errlen, MT_ERR_FORMAT, "%s: malformed safetensors header: %s (byte %d)", path,
                    je.text, je.position);
    }
    mt_status st = MT_OK;
    if (!json_is_object(root)) st = malformed(path, "expected '{' (the header is not an object)", err, errlen);
    const size_t cap = json_is_object(root) ? json_object_size(root) : 0;
    if (!st && cap && !(f->tensors = calloc(cap, sizeof *f->tensors)))
        st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    const char *name;
    json_t *v;
    if (!st) json_object_foreach(root, name, v) {
        if (!strcmp(name, "__metadata__")) {
            if ((st = check_metadata(path, v, err, errlen))) break;
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        if (strlen(name) >= sizeof t->name) {
            st = fail(err, errlen, MT_ERR_FORMAT,
                      "%s: malformed safetensors header: tensor name of %zu bytes (at most %d): %.60s...",
                      path, strlen(name), ST_NAME_LEN - 1, name);
            break;
        }
        memcpy(t->name, name, strlen(name) + 1);
        if ((st = parse_tensor(path, v, t, err, errlen)) ||
            (st = check_extent(path, t, f->data_len, err, errlen)))
            break;
        f->count++;
    }
    json_decref(root);
    return st;
}

void st_free(st_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->file);
    memset(f, 0, sizeof *f);
}

mt_status st_load(st_file *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail(err, errlen, MT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) {
        fclose(fp);
        return fail(err, errlen, MT_ERR_IO, "%s: cannot seek", path);
    }
    long len = ftell(fp);
    rewind(fp);
    if (len < 8) {
        fclose(fp);
        return fail(err, errlen, MT_ERR_FORMAT, "%s: %ld bytes: too short for safetensors", path, len);
    }
    f->file = malloc((size_t)len);
    if (!f->file) {
        fclose(fp);
        return fail(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %ld bytes", path, len);
    }
    size_t got = fread(f->file, 1, (size_t)len, fp);
    fclose(fp);
    if (got != (size_t)len) {
        st_free(f);
        return fail(err, errlen, MT_ERR_IO, "%s: short read", path);
    }
    f->file_len = (size_t)len;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->file[i];
    if (hlen > f->file_len - 8 || hlen > ST_MAX_HEADER) {
        st_free(f);
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: header length %llu does not fit a %zu-byte file (truncated?)", path,
                    (unsigned long long)hlen, (size_t)len);
    }
    f->data = f->file + 8 + hlen;
    f->data_len = f->file_len - 8 - hlen;
    mt_status st = parse_header(f, path, (const char *)f->file + 8, (size_t)hlen, err, errlen);
    if (st) st_free(f);
    return st;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

mt_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, char *err, size_t errlen) {
    const unsigned char *p = f->data + t->begin;
    for (size_t i = 0; i < t->count; i++) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], p + 4 * i, 4); break;
        case ST_F64: { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; break; }
        case ST_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = half_to_float(h); break; }
        case ST_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t b = (uint32_t)h << 16;
            memcpy(&dst[i], &b, 4);
            break;
        }
        case ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; break; }
        case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; break; }
        case ST_U8: case ST_BOOL: dst[i] = p[i]; break;
        default: return fail(err, errlen, MT_ERR_FORMAT, "tensor %s: unsupported dtype", t->name);
        }
    }
    return MT_OK;
}

mt_status st_read_i64(const st_file *f, const st_tensor *t, int64_t *out, char *err, size_t errlen) {
    if (t->count != 1 || (t->dtype != ST_I64 && t->dtype != ST_I32))
        return fail(err, errlen, MT_ERR_FORMAT, "tensor %s: expected one integer", t->name);
    if (t->dtype == ST_I64) memcpy(out, f->data + t->begin, 8);
    else { int32_t v; memcpy(&v, f->data + t->begin, 4); *out = v; }
    return MT_OK;
}

/* ---- writer ---------------------------------------------------------------- */

static size_t entry_bytes(const st_entry *e) {
    size_t count = 1;
    for (int d = 0; d < e->ndim; d++) count *= (size_t)e->shape[d];
    return count * st_dtype_size(e->dtype);
}

/* The header as compact JSON (metadata first, then the tensors in order),
 * padded with spaces to a multiple of 8 bytes so the data stays aligned. */
static mt_status build_header(const char *path, const st_entry *e, int n, const char *const *meta_kv,
                              int n_meta, char **out, size_t *out_len, char *err, size_t errlen) {
    json_t *root = json_object();
    mt_status st = root ? MT_OK : fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    if (!st && n_meta > 0) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta))
            st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
        for (int i = 0; i < n_meta && !st; i++)
            if (json_object_set_new(meta, meta_kv[2 * i], json_string(meta_kv[2 * i + 1])))
                st = fail(err, errlen, MT_ERR_ARG, "%s: metadata %s: not UTF-8 text (or out of memory)",
                          path, meta_kv[2 * i]);
    }
    size_t off = 0;
    for (int i = 0; i < n && !st; i++) {
        /* a second entry of a name would overwrite the first in the object
         * and leave its bytes in the file under no name */
        if (!strcmp(e[i].name, "__metadata__") || json_object_get(root, e[i].name) ||
            strlen(e[i].name) >= ST_NAME_LEN) {
            st = fail(err, errlen, MT_ERR_ARG, "%s: tensor name %s is reserved, repeated or longer "
                      "than %d bytes", path, e[i].name, ST_NAME_LEN - 1);
            break;
        }
        const size_t bytes = entry_bytes(&e[i]);
        json_t *shape = json_array();
        for (int d = 0; shape && d < e[i].ndim; d++)
            if (json_array_append_new(shape, json_integer((json_int_t)e[i].shape[d]))) {
                json_decref(shape);
                shape = NULL;
            }
        json_t *t = shape ? json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(e[i].dtype),
                                      "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + bytes))
                          : NULL;
        if (!t || json_object_set_new(root, e[i].name, t))
            st = fail(err, errlen, MT_ERR_ARG, "%s: tensor %s: name not UTF-8 text (or out of memory)",
                      path, e[i].name);
        off += bytes;
    }
    char *text = st ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (st) return st;
    if (!text) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    const size_t padded = (len + 7) / 8 * 8;
    char *p = realloc(text, padded ? padded : 1);
    if (!p) {
        free(text);
        return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(p + len, ' ', padded - len);
    *out = p;
    *out_len = padded;
    return MT_OK;
}

mt_status st_write(const char *path, const st_entry *e, int n, const char *const *meta_kv,
                   int n_meta, char *err, size_t errlen) {
    char *hdr = NULL;
    size_t hlen = 0;
    mt_status st = build_header(path, e, n, meta_kv, n_meta, &hdr, &hlen, err, errlen);
    if (st) return st;
    atomic_file af;
    if ((st = atomic_file_open(&af, path, err, errlen))) {
        free(hdr);
        return st;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = fwrite(lenb, 1, 8, af.f) != 8 || fwrite(hdr, 1, hlen, af.f) != hlen;
    free(hdr);
    for (int i = 0; i < n && !bad; i++) {
        const size_t bytes = entry_bytes(&e[i]);
        bad = bytes && fwrite(e[i].data, 1, bytes, af.f) != bytes;
    }
    if (bad) {
        const int e2 = errno;
        atomic_file_abort(&af);
        return fail(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e2 ? e2 : EIO));
    }
    return atomic_file_commit(&af, err, errlen);
}
