/* mat_reader.h - the two MATLAB files of a PASCAL-Context record, read
 * through one bounds-checked accessor over libmatio, and the isolation of
 * libmatio in a worker process.
 *
 * libmatio trusts its input: a struct without field names or data crashes
 * Mat_VarGetStructFieldByName, element counts are not checked against the
 * data read, and a 20-byte MAT v4 header can make it allocate 2 GB. So:
 *
 *   1. Nothing here reads a matvar_t except through the accessor
 *      (mat_reader.c): class, data type, rank, dims, nbytes against the
 *      element count, data present, not sparse, not complex, struct field
 *      names and data present; numbers converted with range checks. Every
 *      refusal reads "FILE: variable V field F: what is wrong".
 *   2. Before libmatio sees a file, its declared sizes are checked against
 *      the file's size where the format allows it without inflating
 *      (mat_precheck: MAT v4 headers, MAT v5 top-level elements).
 *   3. The packer parses each MAT file in a forked worker under RLIMIT_AS
 *      and a time limit (mat_parse_isolated): a file that crashes libmatio,
 *      exhausts the cap or hangs costs its record, reported by name.
 *
 * The parse functions are thread-safe (MAT v7.3 files, read through serial
 * HDF5, are read one at a time under the lock below). */
#ifndef MTLORA_MAT_READER_H
#define MTLORA_MAT_READER_H

#include <stddef.h>
#include <stdint.h>

#include "mtlora/base/status.h"

/* What a MAT file of the layout holds. */
typedef enum {
    MAT_KIND_PARTS = 0,   /* human_parts/<id>.mat: struct anno */
    MAT_KIND_LABELMAP = 1 /* pascal-context/trainval/<id>.mat: LabelMap */
} mat_kind;

/* Largest side of a label matrix (rows or columns). */
#define MAT_MAX_SIDE 65535

/* In this process, through the accessor (the fuzzer's entry point):
 * human_parts: the 6-part person map as the official loader paints it,
 * row-major h x w uint8 (1 byte an element); *data NULL and *h = *w = 0 when
 * the file annotates no person with a non-empty mask.
 * labelmap: LabelMap as row-major h x w int32, every value an integer in
 * 0..PASCAL_CONTEXT_CLASSES. */
mt_status mat_parse_file(mat_kind kind, const char *path, void **data, int *h, int *w, char *err,
                         size_t errlen);

/* Checks the sizes a MAT file declares against its length before libmatio
 * reads it: a MAT v4 variable's rows x cols x element size, a MAT v5
 * element's byte count, an uncompressed v5 array's element count. MAT v7.3
 * (HDF5) files pass (HDF5 checks its own). MT_ERR_FORMAT naming the file. */
mt_status mat_precheck(const char *path, char *err, size_t errlen);

/* 1 if path starts with a MAT v7.3 (HDF5) header. */
int mat_file_is_hdf5(const char *path);

/* ---- isolation ---- */
typedef struct {
    int isolate;      /* 1 (default): each MAT file is parsed in a forked worker */
    double timeout_s; /* a worker still running after this is killed (default 60) */
    size_t mem_cap;   /* address space a worker may map beyond the packer's (1 GiB) */
    int fault;        /* tests only: MAT_FAULT_* done by the worker instead of parsing */
    const char *fault_match; /* ... for paths containing this (NULL: every file) */
} mat_limits;

enum { MAT_FAULT_NONE = 0, MAT_FAULT_CRASH, MAT_FAULT_HANG, MAT_FAULT_ALLOC };

void mat_limits_default(mat_limits *l);
/* Process-wide; set before packing starts (not while records are read). */
void mat_set_limits(const mat_limits *l);
void mat_get_limits(mat_limits *l);

/* mat_precheck, then mat_parse_file in a worker process (or in this one
 * when isolate is 0). The worker's result comes back through a pipe; a
 * worker that dies by a signal, exceeds the memory cap or the time limit
 * gives MT_ERR_FORMAT "FILE: libmatio crashed with signal N (name)",
 * "FILE: exceeded the N MiB memory cap of the MAT reader (...)" or
 * "FILE: timed out after N s in libmatio". */
mt_status mat_parse_isolated(mat_kind kind, const char *path, void **data, int *h, int *w,
                             char *err, size_t errlen);

/* A multi-threaded caller (the packer) starts one helper process per
 * thread before its threads exist, binds each thread to one, and stops
 * them at the end: mat_parse_isolated then asks the thread's helper, which
 * forks the worker from a single-threaded process (a fork from a thread
 * copies the locks other threads hold, and a worker could block on one).
 * Without helpers, mat_parse_isolated forks the worker itself (fine in a
 * single-threaded caller). */
mt_status mat_helpers_start(int n, char *err, size_t errlen);
void mat_helpers_bind(int i);
void mat_helpers_stop(void);

/* Held by whoever calls HDF5 in a process that forks MAT workers (the
 * packer's writer thread), and by mat_parse_isolated around fork() for a
 * v7.3 file: the child then starts from a quiescent HDF5 (serial HDF5 has
 * no locks of its own). Also serialises in-process v7.3 reads. */
void mat_hdf5_lock(void);
void mat_hdf5_unlock(void);

#endif
