/* shard_internal.h - what the shard writer and reader share (shard_format.c):
 * the task names in mask order, the lock around HDF5 and the one attribute
 * reader. Private to io/shards (the packer's copy of these files includes it
 * from here too). */
#ifndef MTLORA_SHARD_INTERNAL_H
#define MTLORA_SHARD_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "mtlora/base/status.h"

/* "semseg", "human_parts", "sal", "normals", "edge": bit t of a task mask. */
extern const char *const shard_task_names[];
enum { SHARD_NTASK_NAMES = 5 };

/* Debian's HDF5 builds are not thread-safe, and several loaders (train and
 * validation) each read from their own thread: every public entry point of
 * the writer and the reader holds this lock while it calls HDF5. It guards
 * HDF5's own global state, so it is process-wide by necessity, and one lock
 * for both (they share the one HDF5 library). */
void shard_h5_lock(void);
void shard_h5_unlock(void);

/* HDF5 prints its error stack to stderr by default; we report errors
 * ourselves with the file and record. (A library-wide HDF5 setting.) */
void shard_quiet_hdf5(void);

/* ---- the one attribute reader ----
 * Every attribute the shard code reads goes through shard_attr_read, so a
 * hostile file meets the same checks everywhere: the attribute exists, holds
 * exactly one value (a scalar or a 1-element dataspace), its datatype class
 * is one the caller allows, and a string (fixed or variable length) fits the
 * caller's limit and has no control characters. Refusals are MT_ERR_FORMAT,
 * "FILE: attribute NAME: ...". */
enum { SHARD_ATTR_STRING = 1, SHARD_ATTR_INT = 2, SHARD_ATTR_FLOAT = 4 };
#define SHARD_ATTR_STR_MAX 256 /* longest string value any caller accepts, + 1 */

typedef struct {
    int kind;                  /* which SHARD_ATTR_* was found */
    int64_t i;                 /* SHARD_ATTR_INT */
    double f;                  /* SHARD_ATTR_FLOAT */
    char s[SHARD_ATTR_STR_MAX]; /* SHARD_ATTR_STRING, NUL terminated */
} shard_attr;

/* Reads attribute `name` of obj (file: the path for messages). allowed: a
 * mask of SHARD_ATTR_*; maxlen: the longest string accepted (< SHARD_ATTR_STR_MAX). */
mt_status shard_attr_read(hid_t obj, const char *file, const char *name, int allowed, size_t maxlen,
                          shard_attr *out, char *err, size_t errlen);

/* The values of a record's uint8 label dataset d (nd x dims, n bytes) into
 * out, reading a single stored chunk by its own bytes (shard_chunk.c):
 * 0, or -1 when HDF5 cannot read it, -2 when the chunk does not hold n
 * bytes, -3 when the layout is not the format's one (deflated) chunk. */
int shard_read_label_values(hid_t d, int nd, const hsize_t *dims, size_t n, uint8_t *out);

#endif
