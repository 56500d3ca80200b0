/* mat_internal.h - what mat_reader.c and mat_precheck.c share: MAT data
 * type sizes and the v7.3 header test. */
#ifndef MTLORA_MAT_INTERNAL_H
#define MTLORA_MAT_INTERNAL_H

#include <matio.h>
#include <stddef.h>

/* Bytes per element of a MAT data type, 0 for a non-element type. */
static inline size_t mat_type_size(enum matio_types t) {
    switch (t) {
    case MAT_T_INT8: case MAT_T_UINT8: case MAT_T_UTF8: return 1;
    case MAT_T_INT16: case MAT_T_UINT16: case MAT_T_UTF16: return 2;
    case MAT_T_INT32: case MAT_T_UINT32: case MAT_T_SINGLE: case MAT_T_UTF32: return 4;
    case MAT_T_DOUBLE: case MAT_T_INT64: case MAT_T_UINT64: return 8;
    default: return 0;
    }
}

static inline int mat_numeric_type(enum matio_types t) {
    return t == MAT_T_DOUBLE || t == MAT_T_SINGLE || (t >= MAT_T_INT8 && t <= MAT_T_UINT32) ||
           t == MAT_T_INT64 || t == MAT_T_UINT64;
}

/* 1 if the n bytes at h open a MAT v7.3 (HDF5) file: version 0x0200 at byte 124. */
static inline int mat_is_hdf5_header(const unsigned char *h, size_t n) {
    if (n < 128) return 0;
    const int le = h[126] == 'I' && h[127] == 'M';
    const unsigned ver = le ? (unsigned)(h[124] | h[125] << 8) : (unsigned)(h[124] << 8 | h[125]);
    return ver == 0x0200;
}

/* Routes libmatio's messages to the refusals (mat_reader.c); called before
 * the first fork of a worker (it calls HDF5, which a worker must not). */
void mat_log_init(void);

#endif
