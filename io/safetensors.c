/* safetensors.c - see safetensors.h. The JSON header is parsed strictly
 * (json_parse_strict: duplicate names refused, NUL refused, RFC 8259
 * numbers, bounded nesting), after the file has been found regular, its
 * header length checked against the file and a fixed bound, and the header
 * found to be one object padded with spaces only; then every tensor's
 * dtype, shape and offsets are checked against the data, and the offsets
 * must tile the data exactly. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "mtlora/io/atomic_file.h"
#include "mtlora/io/json_file.h"
#include "mtlora/io/safetensors.h"
#include "mtlora/io/regular_file.h"
#include "mtlora/base/half.h"

#define fail mt_errf

/* A header larger than this is refused unparsed: real ones are a few
 * hundred bytes per tensor, so 100 MiB is hundreds of thousands of tensors. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* A file larger than this is refused unread (Swin-L in float32 is 0.8 GB). */
#define ST_MAX_FILE ((uint64_t)64 << 30)

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

/* The tensors sorted by (begin, end) must tile the data section: the first
 * at 0, each where the previous ends, the last at its end. The format
 * forbids overlaps and holes; a reader that allowed them would accept
 * bytes that belong to two tensors, or to none. */
static int by_offsets(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static mt_status check_tiling(const st_file *f, const char *path, char *err, size_t errlen) {
    if (!f->count)
        return f->data_len ? fail(err, errlen, MT_ERR_FORMAT,
                                  "%s: %zu data bytes but no tensors: the format forbids bytes that "
                                  "belong to no tensor", path, f->data_len)
                           : MT_OK;
    const st_tensor **order = malloc((size_t)f->count * sizeof *order);
    if (!order) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory for %d tensors", path, f->count);
    for (int i = 0; i < f->count; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->count, sizeof *order, by_offsets);
    mt_status st = MT_OK;
    size_t at = 0;
    for (int i = 0; i < f->count && !st; i++) {
        const st_tensor *t = order[i];
        if (t->begin < at)
            st = fail(err, errlen, MT_ERR_FORMAT,
                      "%s: tensors %s [%zu, %zu) and %s [%zu, %zu) overlap in the data: the format "
                      "forbids it", path, order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end,
                      t->name, t->begin, t->end);
        else if (t->begin > at)
            st = fail(err, errlen, MT_ERR_FORMAT,
                      "%s: data bytes [%zu, %zu) before tensor %s belong to no tensor: the format "
                      "forbids holes", path, at, t->begin, t->name);
        at = t->end;
    }
    if (!st && at != f->data_len)
        st = fail(err, errlen, MT_ERR_FORMAT,
                  "%s: data bytes [%zu, %zu) after tensor %s belong to no tensor: the format forbids "
                  "trailing bytes", path, at, f->data_len, order[f->count - 1]->name);
    free(order);
    return st;
}

/* The header is one JSON object, first byte '{', padded at the end with
 * spaces (0x20) and nothing else: the format allows no other whitespace,
 * text or NUL after the object. */
static mt_status header_extent(const char *path, const char *hdr, size_t hlen, size_t *json_len,
                               char *err, size_t errlen) {
    if (!hlen) return malformed(path, "empty (0 bytes): expected '{'", err, errlen);
    if (hdr[0] != '{')
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: malformed safetensors header: expected '{' as its first byte, found 0x%02x",
                    path, (unsigned char)hdr[0]);
    size_t m = hlen;
    while (m > 1 && hdr[m - 1] == ' ') m--;
    if (hdr[m - 1] != '}')
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: malformed safetensors header: its last byte before the padding spaces is "
                    "0x%02x at header byte %zu, not the '}' closing the object (text after the object, "
                    "padding other than spaces, or a cut header)", path, (unsigned char)hdr[m - 1], m - 1);
    *json_len = m;
    return MT_OK;
}

/* Nesting of a header: the object, a tensor's entry, its shape. */
#define ST_MAX_DEPTH 3

static mt_status parse_header(st_file *f, const char *path, const char *hdr, size_t hlen, char *err,
                              size_t errlen) {
    size_t jlen = 0;
    mt_status st = header_extent(path, hdr, hlen, &jlen, err, errlen);
    if (st) return st;
    char what[600];
    snprintf(what, sizeof what, "%s: malformed safetensors header", path);
    json_t *root = NULL;
    if ((st = json_parse_strict(what, hdr, jlen, ST_MAX_DEPTH, &root, err, errlen))) return st;
    if (!json_is_object(root)) st = malformed(path, "expected '{' (the header is not an object)", err, errlen);
    const size_t cap = json_is_object(root) ? json_object_size(root) : 0;
    if (!st && cap && !(f->tensors = calloc(cap, sizeof *f->tensors)))
        st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    const char *name;
    json_t *v;
    /* a second __metadata__ is a duplicate key, refused by the parser */
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
    if (!st) st = check_tiling(f, path, err, errlen);
    return st;
}

void st_free(st_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->file);
    memset(f, 0, sizeof *f);
}

/* The file's size and header length, checked against each other and the
 * bounds, before anything is allocated. */
static mt_status read_prefix(int fd, const char *path, size_t size, unsigned char b[8], uint64_t *hlen,
                             char *err, size_t errlen) {
    if (size < 8)
        return fail(err, errlen, MT_ERR_FORMAT, "%s: %zu bytes: too short for safetensors", path, size);
    if ((uint64_t)size > ST_MAX_FILE)
        return fail(err, errlen, MT_ERR_FORMAT, "%s: %zu bytes, more than the %llu a safetensors file "
                    "may hold here", path, size, (unsigned long long)ST_MAX_FILE);
    mt_status st = mt_read_exact(fd, path, b, 8, err, errlen);
    if (st) return st;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | b[i];
    if (h > size - 8 || h > ST_MAX_HEADER)
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: header length %llu does not fit a %zu-byte file (truncated?)", path,
                    (unsigned long long)h, size);
    *hlen = h;
    return MT_OK;
}

static mt_status load(st_file *f, const char *path, int header_only, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    int fd = -1;
    size_t size = 0;
    uint64_t hlen = 0;
    unsigned char prefix[8];
    uint64_t size64 = 0;
    mt_status st = mt_open_regular(path, &fd, &size64, err, errlen);
    size = (size_t)size64;
    if (st) return st;
    if ((st = read_prefix(fd, path, size, prefix, &hlen, err, errlen))) {
        close(fd);
        return st;
    }
    const size_t want = header_only ? 8 + (size_t)hlen : size;
    if (!(f->file = malloc(want))) {
        close(fd);
        return fail(err, errlen, MT_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, want);
    }
    memcpy(f->file, prefix, 8); /* f->file is the file's bytes from its start */
    st = mt_read_exact(fd, path, f->file + 8, want - 8, err, errlen);
    close(fd); /* read-only: a close error cannot lose data */
    if (st) {
        st_free(f);
        return st;
    }
    f->file_len = want;
    f->data = header_only ? NULL : f->file + 8 + hlen;
    f->data_len = size - 8 - (size_t)hlen;
    if ((st = parse_header(f, path, (const char *)f->file + 8, (size_t)hlen, err, errlen))) st_free(f);
    return st;
}

mt_status st_load(st_file *f, const char *path, char *err, size_t errlen) {
    return load(f, path, 0, err, errlen);
}

mt_status st_load_header(st_file *f, const char *path, char *err, size_t errlen) {
    return load(f, path, 1, err, errlen);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

mt_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, char *err, size_t errlen) {
    if (!f->data) return fail(err, errlen, MT_ERR_ARG, "tensor %s: the file was loaded header only", t->name);
    const unsigned char *p = f->data + t->begin;
    for (size_t i = 0; i < t->count; i++) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], p + 4 * i, 4); break;
        case ST_F64: { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; break; }
        case ST_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = mt_half_to_float(h); break; }
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
    if (!f->data) return fail(err, errlen, MT_ERR_ARG, "tensor %s: the file was loaded header only", t->name);
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
