/* safetensors.h - reading and writing the safetensors format:
 *   u64 little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"k": "v"}}, then the data (offsets relative to it).
 * The reader is strict to the format: only a regular file is opened (a
 * FIFO, directory or device is refused by stat before any open for
 * reading, so nothing blocks), of at most 64 GiB; the header is at most
 * 100 MiB, one JSON object starting at its first byte and padded with
 * spaces (0x20) only, parsed strictly (json_parse_strict: duplicate names,
 * including a second __metadata__, malformed numbers, NUL and bad UTF-8
 * refused); __metadata__ maps strings to strings; every tensor's dtype,
 * shape and offsets agree, and the tensors' data_offsets tile the data
 * exactly (sorted by begin: the first at 0, no overlap, no hole, the last
 * ending at the file's end). Every refusal names the file and the tensor
 * or key. So a truncated or malformed file is refused with a message and
 * never read out of bounds. */
#ifndef MTLORA_SAFETENSORS_H
#define MTLORA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

#define ST_NAME_LEN 160
#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_U8, ST_BOOL } st_dtype;

typedef struct {
    char name[ST_NAME_LEN];
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t count;        /* elements */
    size_t begin, end;   /* byte offsets into the data section */
} st_tensor;

typedef struct {
    st_tensor *tensors;
    int count;
    unsigned char *file; /* the file from its start (only length and header after st_load_header) */
    size_t file_len;
    const unsigned char *data; /* NULL after st_load_header */
    size_t data_len;           /* the data section's length in the file */
} st_file;

mt_status st_load(st_file *f, const char *path, char *err, size_t errlen);
/* As st_load with the same checks, reading only the length and header:
 * the tensors are listed (names, dtypes, shapes, offsets), data is NULL and
 * st_read_* refuse them (MT_ERR_ARG). For counting a large file's tensors. */
mt_status st_load_header(st_file *f, const char *path, char *err, size_t errlen);
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
size_t st_dtype_size(st_dtype d);
const char *st_dtype_name(st_dtype d);

/* Converts a tensor of any float dtype (or integer, for buffers) to float32. */
mt_status st_read_f32(const st_file *f, const st_tensor *t, float *dst, char *err, size_t errlen);
/* Reads a scalar or one-element I64/I32 tensor. */
mt_status st_read_i64(const st_file *f, const st_tensor *t, int64_t *out, char *err, size_t errlen);

typedef struct {
    const char *name;
    st_dtype dtype; /* ST_F32 or ST_I64 */
    int ndim;
    const int64_t *shape;
    const void *data;
} st_entry;

/* Writes the entries (plus optional metadata pairs) to path atomically
 * (atomic_file: a crash never leaves a half-written file under the final
 * name). A name given twice, "__metadata__" or one of ST_NAME_LEN bytes or
 * more is refused (MT_ERR_ARG): st_load could not read the file back. */
mt_status st_write(const char *path, const st_entry *entries, int n, const char *const *meta_kv,
                   int n_meta, char *err, size_t errlen);

#endif
