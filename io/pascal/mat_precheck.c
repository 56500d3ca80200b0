/* mat_precheck.c - the sizes a MAT file declares, checked against its
 * length before libmatio reads it (mat_reader.h): libmatio allocates what
 * a header says before it reads a byte of the data. Compressed variables
 * are inflated (bounded) and walked like the others. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "mtlora/io/pascal/mat_reader.h"
#include "mat_internal.h"


static uint32_t rd32(const unsigned char *p, int swap) {
    return swap ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* MAT v4: a sequence of variables, each a 20-byte header (type MOPT, rows,
 * cols, imagf, name length) then the name and rows x cols elements (twice
 * when complex). libmatio allocates what the header says before reading. */
static mt_status precheck_v4(const char *path, const unsigned char *buf, size_t size, char *err,
                             size_t errlen) {
    size_t off = 0;
    int nvar = 0;
    while (off < size) {
        if (size - off < 20)
            return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: not a MATLAB file (no v5/v7.3 header, and %zu "
                           "trailing bytes are no MAT v4 variable header)", path, size - off);
        /* M (the thousands digit of MOPT) 0 is little-endian, 1 big-endian;
         * a little-endian read of a big-endian header is then > 9999. */
        uint32_t type = rd32(buf + off, 0);
        const int swap = type > 9999;
        if (swap) type = rd32(buf + off, 1);
        const uint32_t rows = rd32(buf + off + 4, swap), cols = rd32(buf + off + 8, swap),
                       imagf = rd32(buf + off + 12, swap), namelen = rd32(buf + off + 16, swap);
        const unsigned P = type / 10 % 10, O = type / 100 % 10;
        static const size_t psize[6] = {8, 4, 4, 2, 2, 1};
        if (type > 4999 || O != 0 || P > 5 || imagf > 1 || namelen == 0 || namelen > 4096)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: not a MATLAB file (no v5/v7.3 header, and byte %zu starts no MAT v4 "
                           "variable: type %u, name length %u)", path, off, type, namelen);
        const double need = 20.0 + namelen + (double)rows * cols * psize[P] * (imagf ? 2 : 1);
        if (need > (double)(size - off))
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: MAT v4 variable %d declares %ux%u elements (%.0f bytes) but the file "
                           "holds %zu bytes from there (corrupt or truncated)", path, nvar + 1, rows, cols,
                           need, size - off);
        off += (size_t)need;
        nvar++;
    }
    return MT_OK;
}

/* A v5 data sub-element at p (within end): its type, byte count and
 * payload; the small form packs up to 4 bytes into the tag. 0 ok, -1 if it
 * does not fit. */
static int v5_sub(const unsigned char *p, const unsigned char *end, int swap, uint32_t *type, uint32_t *nbytes,
                  const unsigned char **data, const unsigned char **next) {
    if (end - p < 8) return -1;
    const uint32_t t = rd32(p, swap);
    if (t >> 16) { /* small element: type in the low half, count in the high half */
        *type = t & 0xffff;
        *nbytes = t >> 16;
        *data = p + 4;
        *next = p + 8;
        return *nbytes <= 4 ? 0 : -1;
    }
    *type = t;
    *nbytes = rd32(p + 4, swap);
    if (*nbytes > (size_t)(end - p - 8)) return -1;
    *data = p + 8;
    const size_t padded = ((size_t)*nbytes + 7) / 8 * 8;
    *next = padded <= (size_t)(end - p - 8) ? p + 8 + padded : end;
    return 0;
}

/* The walk over one variable's element tree: libmatio builds a matvar for
 * every struct field and cell of every element before it reads their data,
 * so a struct declaring 10^8 elements in a few bytes costs gigabytes of
 * small allocations (none of them large enough for a size cap to catch).
 * Every node is therefore checked to fit its bytes, and the whole tree is
 * bounded in nodes and depth: PASCAL's richest annotation (objects x parts
 * x fields) has a few thousand nodes. */
enum { MAT_MAX_NODES = 100000, MAT_MAX_DEPTH = 16 };
/* A compressed variable is inflated to be walked; PASCAL's largest inflates
 * to a few MB. */
#define MAT_MAX_INFLATED ((size_t)64 << 20)

typedef struct {
    const char *path;
    char *err;
    size_t errlen;
    long nodes;
    char top[64]; /* the top-level variable's name, for messages */
} mat_walk;

static mt_status walk_matrix(mat_walk *w, const unsigned char *e, uint32_t nbytes, int swap, int depth);

static mt_status malformed(mat_walk *w, const char *what) {
    return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: its %s element is malformed or does not "
                   "fit (corrupt or truncated)", w->path, w->top, what);
}

/* count miMATRIX elements from p (within end), each walked; the caller has
 * checked that count * 8 bytes fit. */
static mt_status walk_children(mat_walk *w, const unsigned char *p, const unsigned char *end, double count,
                               int swap, int depth, const char *what) {
    for (double i = 0; i < count; i++) {
        if (end - p < 8 || rd32(p, swap) != MAT_T_MATRIX || rd32(p + 4, swap) > (size_t)(end - p - 8))
            return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: %s %.0f of %.0f is not a "
                           "complete array element (corrupt or truncated)", w->path, w->top, what, i + 1, count);
        const uint32_t n = rd32(p + 4, swap);
        mt_status st = walk_matrix(w, p + 8, n, swap, depth + 1);
        if (st) return st;
        const size_t step = 8 + ((size_t)n + 7) / 8 * 8;
        p = step <= (size_t)(end - p) ? p + step : end;
    }
    return MT_OK;
}

/* One array element (e: its content, nbytes long): the element count of a
 * dense class fits the bytes, a numeric array's data element holds exactly
 * its elements (what libmatio reads), and a struct's or cell's children
 * are there, each walked in turn; a sparse array's nzmax fits the bytes.
 * A malformed array header is refused; what the header leaves to libmatio
 * (an unknown class, odd flags, complex data) is its to refuse. */
static mt_status walk_matrix(mat_walk *w, const unsigned char *e, uint32_t nbytes, int swap, int depth) {
    if (++w->nodes > MAT_MAX_NODES)
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: more than %d nested arrays (a MAT "
                       "annotation has a few thousand; corrupt?)", w->path, w->top, MAT_MAX_NODES);
    if (depth > MAT_MAX_DEPTH)
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: arrays nested more than %d deep "
                       "(corrupt?)", w->path, w->top, MAT_MAX_DEPTH);
    if (nbytes == 0) return MT_OK; /* an empty array */
    const unsigned char *end = e + nbytes, *p = e, *d, *next;
    uint32_t t, n;
    /* Every array opens with flags, dimensions and a name; a file that
     * breaks that is refused here rather than trusted to libmatio, which
     * may allocate what the broken header implies first. */
    if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_UINT32 || n < 8)
        return malformed(w, "array flags");
    const unsigned cls = rd32(d, swap) & 0xff, cplx = rd32(d, swap) >> 11 & 1;
    p = next;
    if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_INT32 || n % 4 || n == 0)
        return malformed(w, "dimensions");
    double count = 1;
    char dims[96] = "";
    for (uint32_t k = 0; k < n / 4; k++) {
        const uint32_t dk = rd32(d + 4 * k, swap);
        count *= dk;
        const size_t L = strlen(dims);
        snprintf(dims + L, sizeof dims - L, "%s%u", k ? "x" : "", dk);
    }
    p = next;
    if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_INT8) return malformed(w, "name");
    if (depth == 0) {
        const size_t L = n < sizeof w->top - 1 ? n : sizeof w->top - 1;
        memcpy(w->top, d, L);
        w->top[L] = '\0';
        for (size_t i = 0; i < L; i++)
            if (w->top[i] < 32 || w->top[i] > 126) w->top[i] = '?';
    }
    p = next;
    const int dense = cls == MAT_C_CELL || cls == MAT_C_CHAR || (cls >= MAT_C_DOUBLE && cls <= MAT_C_UINT64);
    /* every element of these classes takes at least one byte */
    if (dense && count > (double)nbytes)
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: declares %s elements in %u bytes "
                       "(corrupt)", w->path, w->top, dims, nbytes);
    if (cls == MAT_C_SPARSE && (double)rd32(e + 12, swap) * 4 > (double)nbytes)
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: a sparse array of nzmax %u in %u bytes "
                       "(corrupt)", w->path, w->top, rd32(e + 12, swap), nbytes);
    if (cls == MAT_C_CELL) {
        if (count * 8 > (double)(end - p))
            return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: a %s cell array in %zu bytes "
                           "(each cell takes at least 8; corrupt)", w->path, w->top, dims, (size_t)(end - p));
        return walk_children(w, p, end, count, swap, depth, "cell");
    }
    if (cls == MAT_C_STRUCT) {
        uint32_t fnlen;
        if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_INT32 || n != 4)
            return malformed(w, "field name length");
        fnlen = rd32(d, swap);
        p = next;
        if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_INT8 || (fnlen && n % fnlen))
            return malformed(w, "field names");
        const double nfields = fnlen ? (double)(n / fnlen) : 0;
        p = next;
        if (count * nfields * 8 > (double)(end - p))
            return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: a %s struct of %.0f fields in "
                           "%zu bytes (each field takes at least 8; corrupt)", w->path, w->top, dims, nfields,
                           (size_t)(end - p));
        return walk_children(w, p, end, count * nfields, swap, depth, "struct field");
    }
    if (cls < MAT_C_DOUBLE || cls > MAT_C_UINT64 || cplx) return MT_OK;
    if (v5_sub(p, end, swap, &t, &n, &d, &next))
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: its data element does not fit in the "
                       "variable (corrupt or truncated)", w->path, w->top);
    const size_t es = mat_type_size((enum matio_types)t);
    if (!mat_numeric_type((enum matio_types)t) || (double)n != count * (double)es)
        return mt_errf(w->err, w->errlen, MT_ERR_FORMAT, "%s: variable %s: declares %s elements but its data "
                       "element holds %u bytes of type %u (corrupt)", w->path, w->top, dims, n, t);
    return MT_OK;
}

/* A compressed variable (z: nbytes of zlib stream) inflated into *out
 * (*outlen bytes, the caller frees), at most MAT_MAX_INFLATED. */
static mt_status mat_inflate(const char *path, size_t off, const unsigned char *z, uint32_t nbytes,
                             unsigned char **out, size_t *outlen, char *err, size_t errlen) {
    *out = NULL;
    *outlen = 0;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK) return mt_errf(err, errlen, MT_ERR_NOMEM, "%s: zlib: out of memory", path);
    size_t cap = (size_t)nbytes * 4 + 4096;
    if (cap > MAT_MAX_INFLATED) cap = MAT_MAX_INFLATED;
    unsigned char *buf = malloc(cap);
    mt_status st = MT_OK;
    s.next_in = (unsigned char *)z;
    s.avail_in = nbytes;
    int zr = Z_OK;
    while (buf && zr == Z_OK) {
        if (s.total_out == cap) {
            if (cap == MAT_MAX_INFLATED) break;
            const size_t ncap = cap * 2 < MAT_MAX_INFLATED ? cap * 2 : MAT_MAX_INFLATED;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap = ncap;
        }
        s.next_out = buf + s.total_out;
        s.avail_out = (uInt)(cap - s.total_out);
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && s.avail_out > 0) break; /* the input ended first */
        if (zr == Z_BUF_ERROR) zr = Z_OK;
    }
    if (!buf) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory inflating the variable at byte %zu", path, off);
    else if (zr != Z_STREAM_END && s.total_out == MAT_MAX_INFLATED)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: byte %zu: a compressed variable inflates beyond %zu MiB "
                     "(a MAT annotation holds a few MB; corrupt?)", path, off, MAT_MAX_INFLATED >> 20);
    else if (zr != Z_STREAM_END)
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: byte %zu: a compressed variable does not inflate (%s; "
                     "corrupt or truncated)", path, off, s.msg ? s.msg : "stream ends early");
    *outlen = s.total_out;
    inflateEnd(&s);
    if (st) free(buf);
    else *out = buf;
    return st;
}

/* One top-level element's content (type MATRIX, or the inflated bytes of
 * a COMPRESSED one, which hold a MATRIX element), walked. */
static mt_status precheck_variable(const char *path, size_t off, uint32_t type, const unsigned char *e,
                                   uint32_t nbytes, int swap, char *err, size_t errlen) {
    mat_walk w = {.path = path, .err = err, .errlen = errlen, .top = "?"};
    if (type == MAT_T_MATRIX) return walk_matrix(&w, e, nbytes, swap, 0);
    unsigned char *in;
    size_t len;
    mt_status st = mat_inflate(path, off, e, nbytes, &in, &len, err, errlen);
    if (st) return st;
    if (len >= 8 && rd32(in, swap) == MAT_T_MATRIX && rd32(in + 4, swap) <= len - 8)
        st = walk_matrix(&w, in + 8, rd32(in + 4, swap), swap, 0);
    else
        st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: byte %zu: a compressed variable that holds no complete "
                     "array element (corrupt)", path, off);
    free(in);
    return st;
}

/* MAT v5: after the 128-byte header, elements of (type, byte count). */
static mt_status precheck_v5(const char *path, const unsigned char *buf, size_t size, char *err,
                             size_t errlen) {
    const int swap = buf[126] == 'M' && buf[127] == 'I';
    size_t off = 128;
    while (size - off >= 8) {
        const uint32_t type = rd32(buf + off, swap), nbytes = rd32(buf + off + 4, swap);
        if (type != MAT_T_MATRIX && type != MAT_T_COMPRESSED)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: byte %zu: element type %u where a variable (matrix or compressed) is "
                           "expected (corrupt)", path, off, type);
        if (nbytes > size - off - 8)
            return mt_errf(err, errlen, MT_ERR_FORMAT,
                           "%s: byte %zu: a variable of %u bytes but the file holds %zu from there "
                           "(corrupt or truncated)", path, off, nbytes, size - off - 8);
        mt_status st = precheck_variable(path, off, type, buf + off + 8, nbytes, swap, err, errlen);
        if (st) return st;
        const size_t step = 8 + (size_t)nbytes;
        off += type == MAT_T_MATRIX ? (step + 7) / 8 * 8 : step;
        if (off > size) break; /* the last element's padding */
    }
    return MT_OK;
}

mt_status mat_precheck(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_errf(err, errlen, MT_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return mt_errf(err, errlen, MT_ERR_IO, "%s: not a regular file", path);
    }
    /* The annotation files are small (PASCAL's largest is a few MB); a
     * bigger one is refused before anything reads it. */
    if (sb.st_size > (off_t)256 << 20) {
        fclose(f);
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: %lld bytes, more than the 256 MiB a MAT "
                       "annotation file may have", path, (long long)sb.st_size);
    }
    const size_t size = (size_t)sb.st_size;
    unsigned char *buf = malloc(size ? size : 1);
    mt_status st = MT_OK;
    if (!buf) st = mt_errf(err, errlen, MT_ERR_NOMEM, "%s: out of memory", path);
    else if (fread(buf, 1, size, f) != size) st = mt_errf(err, errlen, MT_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!st) {
        const int v5 = size >= 128 && ((buf[126] == 'I' && buf[127] == 'M') || (buf[126] == 'M' && buf[127] == 'I'));
        if (size == 0) st = mt_errf(err, errlen, MT_ERR_FORMAT, "%s: empty file", path);
        else if (v5 && mat_is_hdf5_header(buf, size)) st = MT_OK;
        else if (v5) st = precheck_v5(path, buf, size, err, errlen);
        else st = precheck_v4(path, buf, size, err, errlen);
    }
    free(buf);
    return st;
}
