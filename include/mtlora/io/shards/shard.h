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

/* Bounds a reader enforces before it allocates anything a file claims (and
 * the writer refuses to exceed), so a corrupt or hostile shard costs an
 * error, never gigabytes: records per shard, image side, pixels per image,
 * bytes of one JPEG, shards in a split. */
#define SHARD_MAX_RECORDS (1 << 24)
#define SHARD_MAX_SIDE 16384
#define SHARD_MAX_PIXELS (1 << 26)
#define SHARD_MAX_JPEG_BYTES (64 << 20)
#define SHARD_MAX_SHARDS 100000
#define SHARD_NAME_MAX 64 /* a shard's file name in a manifest, + 1 */

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

/* A manifest as read (shard_manifest_read): the header fields and one
 * entry per listed shard, in order. */
typedef struct {
    char name[SHARD_NAME_MAX]; /* a plain file name in the manifest's directory */
    int64_t records;
    int line; /* where it is listed, for messages */
} shard_manifest_entry;

typedef struct {
    char path[4096]; /* the manifest file, for messages */
    char split[16];
    int tasks;
    int64_t records, shard_size;
    int nshards;
    shard_manifest_entry *shards; /* [nshards], malloc'd */
} shard_manifest;

/* Reads and checks DIR/<split>.manifest (MT_ERR_IO if it cannot be read,
 * MT_ERR_FORMAT "MANIFEST line N: ..." otherwise): the first line
 * "mtlora-shards 1", then split, tasks, records, shard_size and shards each
 * exactly once, then exactly `shards` lines "<split>-NNNNN.h5 COUNT", every
 * shard listed once, a plain file name in DIR (no '/', so neither ".." nor
 * an absolute path), COUNT shard_size except the last (1..shard_size), the
 * counts adding up to `records`. The split line must name the split. */
mt_status shard_manifest_read(const char *dir, const char *split, shard_manifest *m, char *err,
                              size_t errlen);
/* The same checks on a manifest's bytes (text[0..len), no NUL needed); path
 * names it in messages and split, if not NULL, is the split it must name. */
mt_status shard_manifest_parse(const char *path, const char *split, const char *text, size_t len,
                               shard_manifest *m, char *err, size_t errlen);
void shard_manifest_free(shard_manifest *m);

/* ---- reading ---- */
typedef struct shard_file shard_file;
typedef struct {
    char split[16];
    int tasks;
    int64_t nrecords;
    int format_version;
} shard_info;

/* Opens and validates the root attributes and index (MT_ERR_FORMAT naming
 * the file and the attribute or dataset otherwise): every attribute through
 * one checked reader (class, a single value, string length), format_version
 * the integer 1, the index datasets of the documented types and shapes,
 * sizes within the SHARD_MAX_* bounds. A path that is not a regular file
 * is refused without opening it (a FIFO would block). */
mt_status shard_open(shard_file **f, const char *path, char *err, size_t errlen);
/* A shard as its manifest lists it: split and record count as the manifest
 * says (entry, from m), tasks those of the manifest. MT_ERR_FORMAT naming
 * the shard and the manifest otherwise. */
mt_status shard_check_listed(const shard_file *f, const shard_manifest *m,
                             const shard_manifest_entry *e, char *err, size_t errlen);
/* No image id twice in a split (a shard copied under another name, or a
 * record packed twice, would train on it twice): sorts every id of the n
 * open shards; MT_ERR_FORMAT names both places of the first repeat. */
mt_status shard_check_unique_ids(shard_file *const *files, int n, char *err, size_t errlen);
const char *shard_file_path(const shard_file *f);
void shard_close(shard_file *f);
const shard_info *shard_file_info(const shard_file *f);
/* Index entries (no record I/O). */
const char *shard_record_id(const shard_file *f, int64_t i);
void shard_record_size(const shard_file *f, int64_t i, int *h, int *w);
/* Reads record i (the tasks in `tasks` that the shard carries) and checks
 * every dataset is uint8 of its index size, label values in their domains
 * (semseg 0..20 or 255, human_parts 0..6, sal, edge and normals_mask 0 or
 * 1; normals are PNG values, any byte), the JPEG length the index's and,
 * when the record is read whole, its checksum.
 * Errors name the file and the record ("train-00001.h5 record 17
 * (2008_000123): semseg value 37 > 20"). */
mt_status shard_read(shard_file *f, int64_t i, int tasks, shard_record *r, char *err,
                     size_t errlen);

#endif
