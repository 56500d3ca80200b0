/* shard.h - PASCAL-Context multi-task records in HDF5 shard files (the
 * layout is specified for other writers in docs/data-format.md).
 *
 * One record per image at its original size: the original JPEG bytes and
 * the labels as the official loader produces them before augmentation
 * (semseg, human_parts, sal, edge as uint8 maps, the distilled normals as
 * their uint8 PNG values plus a validity mask). Each record is a group with
 * one chunk per dataset, so a reader fetches exactly one record per read.
 *
 * The writer, reader and manifest (io/shards/shard_format.c, shard_writer.c,
 * shard_reader.c, shard_manifest.c) are compiled twice: into the packer
 * against serial HDF5 (libmatio loads serial HDF5) and into the trainer
 * against parallel HDF5. Debian's
 * HDF5 builds are not thread-safe, so these calls take a process-wide lock:
 * any thread may use them, one at a time inside HDF5. */
#ifndef MTLORA_SHARD_H
#define MTLORA_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include "mtlora/base/status.h"

#define SHARD_FORMAT_NAME "mtlora-pascal-shard"
#define SHARD_FORMAT_VERSION 1
#define SHARD_ID_LEN 32 /* fixed-length image id strings, NUL padded */

/* Tasks a shard carries, as a bit mask over mt_task_kind order. */
enum {
    SHARD_SEMSEG = 1 << 0,
    SHARD_HUMAN_PARTS = 1 << 1,
    SHARD_SAL = 1 << 2,
    SHARD_NORMALS = 1 << 3,
    SHARD_EDGE = 1 << 4,
    SHARD_ALL_TASKS = 31
};

/* "semseg,human_parts" <-> mask. Parsing returns -1 on an unknown name
 * (the name is copied to bad if not NULL). */
int shard_tasks_parse(const char *list, char *bad, size_t badlen);
void shard_tasks_format(int mask, char *out, size_t outlen);

/* One decoded record; buffers malloc'd (shard_record_free). */
typedef struct {
    char id[SHARD_ID_LEN];
    int h, w;
    uint8_t *jpeg;     /* original JPEG file bytes */
    size_t jpeg_bytes;
    uint8_t *semseg, *human_parts, *sal, *edge; /* h*w or NULL */
    uint8_t *normals;                            /* h*w*3 or NULL */
    uint8_t *normals_mask;                       /* h*w or NULL */
} shard_record;

void shard_record_free(shard_record *r);
/* 64-bit FNV-1a over the id, size, JPEG bytes and every label present, in
 * the order documented in docs/data-format.md. */
uint64_t shard_record_checksum(const shard_record *r);

/* ---- writing ---- */
typedef struct shard_writer shard_writer;
/* Writes to atomic_file's temporary beside path ("<path>.tmp.<pid>");
 * shard_writer_finish renames it to path only after every record and the
 * index are written and the file is on disk, so a crash never leaves a
 * partial file under its final name. */
mt_status shard_writer_open(shard_writer **w, const char *path, const char *split, int tasks,
                            const char *source, char *err, size_t errlen);
mt_status shard_writer_add(shard_writer *w, const shard_record *r, char *err, size_t errlen);
mt_status shard_writer_finish(shard_writer *w, char *err, size_t errlen);
/* Closes and deletes the temporary; nothing appears under path. */
void shard_writer_abort(shard_writer *w);

/* Writes DIR/<split>.manifest atomically: format version, split, tasks,
 * record count, shard size and one line "<split>-NNNNN.h5 <records>" for
 * each of the nshards shards (shard_size records each, the last the rest).
 * The packer writes it last, so a reader that finds it knows the split is
 * whole. */
mt_status shard_manifest_write(const char *dir, const char *split, int tasks, int64_t nshards,
                               int64_t nrec, int64_t shard_size, char *err, size_t errlen);

/* ---- reading ---- */
typedef struct shard_file shard_file;
typedef struct {
    char split[16];
    int tasks;
    int64_t nrecords;
    int format_version;
} shard_info;

/* Opens and validates the root attributes and index (MT_ERR_FORMAT naming
 * the file and the attribute otherwise). */
mt_status shard_open(shard_file **f, const char *path, char *err, size_t errlen);
void shard_close(shard_file *f);
const shard_info *shard_file_info(const shard_file *f);
/* Index entries (no record I/O). */
const char *shard_record_id(const shard_file *f, int64_t i);
void shard_record_size(const shard_file *f, int64_t i, int *h, int *w);
/* Reads record i (the tasks in `tasks` that the shard carries) and checks
 * sizes, label ranges and, when the record is read whole, its checksum.
 * Errors name the file and the record ("train-00001.h5 record 17
 * (2008_000123): semseg value 37 > 20"). */
mt_status shard_read(shard_file *f, int64_t i, int tasks, shard_record *r, char *err,
                     size_t errlen);

#endif
