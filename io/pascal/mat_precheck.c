/* mat_precheck.c - the sizes a MAT file declares, checked against its
 * length before libmatio reads it (mat_reader.h): libmatio allocates what
 * a header says before it reads a byte of the data. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* An uncompressed top-level array (e: its content, nbytes long): the
 * element count of a dense class fits the bytes, and a numeric array's
 * data element holds exactly its elements (what libmatio reads). */
static mt_status precheck_matrix(const char *path, const unsigned char *e, uint32_t nbytes, int swap, char *err,
                                 size_t errlen) {
    const unsigned char *end = e + nbytes, *p = e, *d, *next;
    uint32_t t, n;
    if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_UINT32 || n < 8) return MT_OK; /* libmatio refuses */
    const unsigned cls = rd32(d, swap) & 0xff, cplx = rd32(d, swap) >> 11 & 1;
    p = next;
    if (v5_sub(p, end, swap, &t, &n, &d, &next) || t != MAT_T_INT32 || n % 4) return MT_OK;
    double count = 1;
    char dims[96] = "";
    for (uint32_t k = 0; k < n / 4; k++) {
        const uint32_t dk = rd32(d + 4 * k, swap);
        count *= dk;
        const size_t L = strlen(dims);
        snprintf(dims + L, sizeof dims - L, "%s%u", k ? "x" : "", dk);
    }
    p = next;
    char name[64] = "?";
    if (!v5_sub(p, end, swap, &t, &n, &d, &next) && t == MAT_T_INT8) {
        const size_t L = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, d, L);
        name[L] = '\0';
        for (size_t i = 0; i < L; i++)
            if (name[i] < 32 || name[i] > 126) name[i] = '?';
    }
    const int dense = cls == MAT_C_CELL || cls == MAT_C_CHAR || (cls >= MAT_C_DOUBLE && cls <= MAT_C_UINT64);
    /* every element of these classes takes at least one byte */
    if (dense && count > (double)nbytes)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: variable %s: declares %s elements in %u bytes (corrupt)",
                       path, name, dims, nbytes);
    if (cls < MAT_C_DOUBLE || cls > MAT_C_UINT64 || cplx) return MT_OK;
    p = next;
    if (v5_sub(p, end, swap, &t, &n, &d, &next))
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: variable %s: its data element does not fit in the "
                       "variable (corrupt or truncated)", path, name);
    const size_t es = mat_type_size((enum matio_types)t);
    if (!mat_numeric_type((enum matio_types)t) || (double)n != count * (double)es)
        return mt_errf(err, errlen, MT_ERR_FORMAT, "%s: variable %s: declares %s elements but its data element "
                       "holds %u bytes of type %u (corrupt)", path, name, dims, n, t);
    return MT_OK;
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
        if (type == MAT_T_MATRIX) {
            mt_status st = precheck_matrix(path, buf + off + 8, nbytes, swap, err, errlen);
            if (st) return st;
        }
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
