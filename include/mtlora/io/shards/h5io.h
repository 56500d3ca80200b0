/* h5io.h - float32 datasets in HDF5 files, for mtlora-infer's inputs and
 * outputs (images, targets, logits). Integer datasets are converted to
 * float by HDF5 on read. Every failure names the file and the dataset. */
#ifndef MTLORA_H5IO_H
#define MTLORA_H5IO_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

#define H5IO_MAX_DIMS 8

typedef struct {
    int ndim;
    int64_t dims[H5IO_MAX_DIMS];
    size_t count;
    float *data; /* malloc'd */
} h5_array;

/* Reads dataset `name` of `path`. Returns MT_ERR_IO if the file cannot be
 * opened, MT_ERR_FORMAT if the dataset is missing or not numeric. */
mt_status h5_read_f32(const char *path, const char *name, h5_array *out, char *err, size_t errlen);
/* 1 if the dataset exists, 0 if not, negative when the file cannot be opened. */
int h5_has_dataset(const char *path, const char *name);
void h5_array_free(h5_array *a);

typedef struct h5_writer h5_writer;
/* Creates path; the file appears under its name only after
 * h5_writer_close(w, keep = 1) succeeds (HDF5 writes atomic_file's
 * temporary, which close commits; keep = 0 removes it). */
mt_status h5_writer_open(h5_writer **w, const char *path, char *err, size_t errlen);
mt_status h5_writer_put(h5_writer *w, const char *name, const float *data, int ndim,
                        const int64_t *dims, char *err, size_t errlen);
mt_status h5_writer_close(h5_writer *w, int keep, char *err, size_t errlen);

#endif
