/* safetensors.c - see safetensors.h. The JSON header is parsed by a small
 * recursive-descent reader that accepts exactly the JSON subset the format
 * uses (objects, arrays, strings, integers) and rejects anything else. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mtlora/io/safetensors.h"

#define fail mt_errf

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

/* ---- JSON subset reader ------------------------------------------------ */

typedef struct {
    const char *p, *end;
    const char *path;
    char *err;
    size_t errlen;
} jr;

static void ws(jr *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static mt_status jfail(jr *j, const char *what) {
    return fail(j->err, j->errlen, MT_ERR_FORMAT, "%s: malformed safetensors header: %s", j->path,
                what);
}

static mt_status expect(jr *j, char c) {
    ws(j);
    if (j->p >= j->end || *j->p != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return jfail(j, msg);
    }
    j->p++;
    return MT_OK;
}

/* A string without escapes beyond \" \\ \/ (names never need more). */
static mt_status jstring(jr *j, char *out, size_t cap) {
    if (expect(j, '"')) return MT_ERR_FORMAT;
    size_t k = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end) return jfail(j, "unterminated escape");
            c = *j->p++;
            if (c != '"' && c != '\\' && c != '/') return jfail(j, "unsupported escape in a name");
        } else if ((unsigned char)c < 0x20) {
            return jfail(j, "control character in a string");
        }
        if (k + 1 >= cap) return jfail(j, "string too long");
        out[k++] = c;
    }
    if (j->p >= j->end) return jfail(j, "unterminated string");
    j->p++;
    out[k] = '\0';
    return MT_OK;
}

static mt_status jint(jr *j, int64_t *out) {
    ws(j);
    const char *s = j->p;
    int64_t v = 0;
    if (s >= j->end || *s < '0' || *s > '9') return jfail(j, "expected a non-negative integer");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return jfail(j, "integer too large");
        v = v * 10 + (*j->p++ - '0');
    }
    *out = v;
    return MT_OK;
}

static mt_status jint_array(jr *j, int64_t *v, int cap, int *n) {
    if (expect(j, '[')) return MT_ERR_FORMAT;
    *n = 0;
    ws(j);
    if (j->p < j->end && *j->p == ']') { j->p++; return MT_OK; }
    for (;;) {
        if (*n >= cap) return jfail(j, "array too long");
        if (jint(j, &v[(*n)++])) return MT_ERR_FORMAT;
        ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        return expect(j, ']');
    }
}

/* Skips a value of the metadata object (strings only, per the format). */
static mt_status jskip_metadata(jr *j) {
    char buf[4096];
    if (expect(j, '{')) return MT_ERR_FORMAT;
    ws(j);
    if (j->p < j->end && *j->p == '}') { j->p++; return MT_OK; }
    for (;;) {
        if (jstring(j, buf, sizeof buf) || expect(j, ':') || jstring(j, buf, sizeof buf))
            return MT_ERR_FORMAT;
        ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        return expect(j, '}');
    }
}

static mt_status jtensor(jr *j, st_tensor *t) {
    char key[32], dtype[16];
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (expect(j, '{')) return MT_ERR_FORMAT;
    for (;;) {
        if (jstring(j, key, sizeof key) || expect(j, ':')) return MT_ERR_FORMAT;
        if (!strcmp(key, "dtype")) {
            if (jstring(j, dtype, sizeof dtype)) return MT_ERR_FORMAT;
            size_t i = 0;
            while (i < sizeof DTYPES / sizeof *DTYPES && strcmp(DTYPES[i].name, dtype)) i++;
            if (i == sizeof DTYPES / sizeof *DTYPES)
                return fail(j->err, j->errlen, MT_ERR_FORMAT, "%s: tensor %s: unsupported dtype %s",
                            j->path, t->name, dtype);
            t->dtype = DTYPES[i].d;
            have_dtype = 1;
        } else if (!strcmp(key, "shape")) {
            if (jint_array(j, t->shape, ST_MAX_DIMS, &t->ndim)) return MT_ERR_FORMAT;
            have_shape = 1;
        } else if (!strcmp(key, "data_offsets")) {
            int64_t off[2];
            int n;
            if (jint_array(j, off, 2, &n)) return MT_ERR_FORMAT;
            if (n != 2) return jfail(j, "data_offsets needs two values");
            t->begin = (size_t)off[0];
            t->end = (size_t)off[1];
            have_off = 1;
        } else {
            return fail(j->err, j->errlen, MT_ERR_FORMAT, "%s: tensor %s: unknown field %s",
                        j->path, t->name, key);
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        if (expect(j, '}')) return MT_ERR_FORMAT;
        break;
    }
    if (!have_dtype || !have_shape || !have_off)
        return fail(j->err, j->errlen, MT_ERR_FORMAT, "%s: tensor %s lacks dtype, shape or offsets",
                    j->path, t->name);
    return MT_OK;
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
    if (hlen > f->file_len - 8 || hlen > (100u << 20)) {
        st_free(f);
        return fail(err, errlen, MT_ERR_FORMAT,
                    "%s: header length %llu does not fit a %zu-byte file (truncated?)", path,
                    (unsigned long long)hlen, (size_t)len);
    }
    f->data = f->file + 8 + hlen;
    f->data_len = f->file_len - 8 - hlen;
    jr j = {(const char *)f->file + 8, (const char *)f->file + 8 + hlen, path, err, errlen};
    int cap = 64;
    f->tensors = malloc((size_t)cap * sizeof *f->tensors);
    if (!f->tensors) { st_free(f); return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path); }
    mt_status st = expect(&j, '{');
    ws(&j);
    int empty = !st && j.p < j.end && *j.p == '}';
    if (empty) j.p++;
    while (!st && !empty) {
        char name[ST_NAME_LEN];
        if ((st = jstring(&j, name, sizeof name)) || (st = expect(&j, ':'))) break;
        if (!strcmp(name, "__metadata__")) {
            st = jskip_metadata(&j);
        } else {
            if (f->count == cap) {
                cap *= 2;
                st_tensor *n = realloc(f->tensors, (size_t)cap * sizeof *n);
                if (!n) { st = fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path); break; }
                f->tensors = n;
            }
            st_tensor *t = &f->tensors[f->count];
            memset(t, 0, sizeof *t);
            memcpy(t->name, name, sizeof name);
            if ((st = jtensor(&j, t))) break;
            if (st_find(f, name)) {
                st = fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s appears twice", path, name);
                break;
            }
            f->count++;
            size_t count = 1;
            for (int d = 0; d < t->ndim; d++) {
                if (t->shape[d] > ((int64_t)1 << 40) || (t->shape[d] && count > ((size_t)1 << 40) / (size_t)t->shape[d])) {
                    st = fail(err, errlen, MT_ERR_FORMAT, "%s: tensor %s: shape too large", path, name);
                    break;
                }
                count *= (size_t)t->shape[d];
            }
            if (st) break;
            t->count = count;
            if (t->begin > t->end || t->end > f->data_len ||
                t->end - t->begin != count * st_dtype_size(t->dtype)) {
                st = fail(err, errlen, MT_ERR_FORMAT,
                          "%s: tensor %s: offsets [%zu, %zu) do not match its shape and dtype or "
                          "run past the %zu data bytes (truncated?)", path, name, t->begin, t->end,
                          f->data_len);
                break;
            }
        }
        if (st) break;
        ws(&j);
        if (j.p < j.end && *j.p == ',') { j.p++; continue; }
        st = expect(&j, '}');
        break;
    }
    if (st) { st_free(f); return st; }
    return MT_OK;
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

static int json_name(FILE *fp, const char *s) {
    if (fputc('"', fp) == EOF) return -1;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', fp);
        if (fputc(*s, fp) == EOF) return -1;
    }
    return fputc('"', fp) == EOF ? -1 : 0;
}

mt_status st_write(const char *path, const st_entry *e, int n, const char *const *meta_kv,
                   int n_meta, char *err, size_t errlen) {
    /* Build the header in memory first to know its length. */
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *hf = open_memstream(&hdr, &hlen);
    if (!hf) return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    fputc('{', hf);
    if (n_meta > 0) {
        fputs("\"__metadata__\":{", hf);
        for (int i = 0; i < n_meta; i++) {
            if (i) fputc(',', hf);
            json_name(hf, meta_kv[2 * i]);
            fputc(':', hf);
            json_name(hf, meta_kv[2 * i + 1]);
        }
        fputc('}', hf);
        if (n) fputc(',', hf);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t count = 1;
        for (int d = 0; d < e[i].ndim; d++) count *= (size_t)e[i].shape[d];
        size_t bytes = count * st_dtype_size(e[i].dtype);
        if (i) fputc(',', hf);
        json_name(hf, e[i].name);
        fprintf(hf, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(e[i].dtype));
        for (int d = 0; d < e[i].ndim; d++) fprintf(hf, d ? ",%lld" : "%lld", (long long)e[i].shape[d]);
        fprintf(hf, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    fputc('}', hf);
    fclose(hf);
    while (hlen % 8) { /* pad with spaces to keep the data 8-byte aligned */
        char *n2 = realloc(hdr, hlen + 1);
        if (!n2) { free(hdr); return fail(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path); }
        hdr = n2;
        hdr[hlen++] = ' ';
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(hdr);
        return fail(err, errlen, MT_ERR_ARG, "%s: path too long", path);
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(hdr);
        return fail(err, errlen, MT_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = fwrite(lenb, 1, 8, fp) != 8 || fwrite(hdr, 1, hlen, fp) != hlen;
    free(hdr);
    for (int i = 0; i < n && !bad; i++) {
        size_t count = 1;
        for (int d = 0; d < e[i].ndim; d++) count *= (size_t)e[i].shape[d];
        size_t bytes = count * st_dtype_size(e[i].dtype);
        bad = bytes && fwrite(e[i].data, 1, bytes, fp) != bytes;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) bad = 1;
    if (fclose(fp) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e2 = errno;
        remove(tmp);
        return fail(err, errlen, MT_ERR_IO, "%s: write failed: %s", path, strerror(e2));
    }
    return MT_OK;
}
